//! Typed errors: why a value did not verify, and why a signer could not be built.

use std::time::Duration;

use crate::codec::PayloadError;
use keyroll_core::kit::{Rejection, Unserved};

/// Why a Django-format value did not verify or decode.
///
/// [`MissingSeparator`](Error::MissingSeparator), [`BadSignature`](Error::BadSignature)
/// and [`SignatureExpired`](Error::SignatureExpired) are Django's `BadSignature`
/// family ([`is_bad_signature`](Error::is_bad_signature)); the other variants can only
/// happen to a value that carries a valid signature, i.e. one made by a key holder with
/// different settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The separator does not occur in the value: it was never signed, or was signed
    /// with another separator.
    #[error(
        "no {separator:?} found in the value: it is not a signed value, or it was signed with another separator"
    )]
    MissingSeparator {
        /// The separator that was looked for.
        separator: String,
    },
    /// No accepted key produces this signature.
    #[error(
        "bad signature: the value was changed, or signed with another salt, separator or algorithm, \
         or with a key that is no longer in the key set"
    )]
    BadSignature,
    /// The signature is valid but older than the allowed maximum age.
    #[error("signature expired: signed {age:?} ago, at most {max_age:?} allowed; sign the value again")]
    SignatureExpired {
        /// How long ago it was signed.
        age: Duration,
        /// The allowed maximum.
        max_age: Duration,
    },
    /// The signature is valid but the signed value carries no valid base62
    /// timestamp: it was made by a plain `Signer` with the same salt, not a
    /// `TimestampSigner`.
    #[error("the signed value carries no base62 timestamp: verify it with a Signer, not a TimestampSigner")]
    BadTimestamp,
    /// The signature is valid but the payload of a signed object is not what
    /// Django's `dumps` produces.
    #[error("the signed payload is not valid {what}: it was not made by dumps/sign_object with JSON")]
    Payload {
        /// What it should have been: `JSON`.
        what: &'static str,
    },
    /// The payload's encoding (base64, zlib, the bound on its inflated
    /// size): the layer Django and itsdangerous share.
    #[error(transparent)]
    Encoding(#[from] PayloadError),
    /// The value to sign cannot be written as JSON.
    #[error("the value cannot be serialized as JSON: {0}")]
    Serialize(String),
    /// The keys, not the value: the keyring has failed closed (nothing
    /// verifies) or nothing may sign.
    #[error(transparent)]
    Keys(#[from] Unserved),
}

impl Error {
    /// True for the errors Django raises as `BadSignature` (including its subclass
    /// `SignatureExpired`): the value is not to be trusted.
    pub fn is_bad_signature(&self) -> bool {
        matches!(
            self,
            Self::MissingSeparator { .. } | Self::BadSignature | Self::SignatureExpired { .. }
        )
    }

    /// A short name for the kind of rejection (`missing_separator`,
    /// `bad_signature`, `expired`, `bad_timestamp`, `payload`, `too_large`,
    /// `serialize`, `stale`, `closed`), as metrics label it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingSeparator { .. } => "missing_separator",
            Self::BadSignature => "bad_signature",
            Self::SignatureExpired { .. } => "expired",
            Self::BadTimestamp => "bad_timestamp",
            Self::Payload { .. } => "payload",
            Self::Encoding(encoding) => encoding.reason(),
            Self::Serialize(_) => "serialize",
            Self::Keys(keys) => keys.reason(),
        }
    }

    /// The kind of refusal, in the words every format shares; `None` for
    /// [`Serialize`](Error::Serialize), which refuses no token: the value to
    /// sign is at fault. [`Keys`](Error::Keys), for a verification or a
    /// signature, is [`Rejection::Stale`] (the keyring serves nothing).
    pub fn rejection(&self) -> Option<Rejection> {
        Some(match self {
            Self::MissingSeparator { .. } => Rejection::Malformed,
            Self::BadSignature => Rejection::BadSignature,
            Self::SignatureExpired { .. } => Rejection::Expired,
            Self::BadTimestamp | Self::Payload { .. } => Rejection::Payload,
            Self::Encoding(encoding) => encoding.rejection(),
            Self::Keys(keys) => keys.rejection(),
            Self::Serialize(_) => return None,
        })
    }

    /// Counts this refusal (`keyroll_rejections_total`, format `django`).
    pub(crate) fn count(&self) {
        keyroll_core::record_rejection(keyroll_core::Format::Django, self.reason());
    }

    /// True for [`SignatureExpired`](Error::SignatureExpired).
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::SignatureExpired { .. })
    }
}

/// Why a signer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Django's `_SEP_UNSAFE` rule: a separator that is empty or made only of
    /// characters of `[A-z0-9-_=]` could occur inside base64 or base62 text.
    #[error(
        "unsafe Signer separator: {0:?} (cannot be empty or consist of only A-z0-9-_=); \
         use ':' (the default), '/', ',' or another character outside that set"
    )]
    UnsafeSeparator(String),
    /// An algorithm name keyroll-django does not implement.
    #[error(
        "{0:?} is not an algorithm keyroll-django accepts: use sha256 (Django's default), \
         or sha1 / sha512 to read legacy values"
    )]
    InvalidAlgorithm(String),
}
