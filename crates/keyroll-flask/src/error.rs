//! Typed errors: why a Flask session cookie did not verify or decode.

use std::time::Duration;

use keyroll_core::kit::{Rejection, Unserved};
use keyroll_django::codec::PayloadError;

/// Why a Flask session cookie did not verify, decode or encode.
///
/// [`MissingSeparator`](Error::MissingSeparator), [`BadSignature`](Error::BadSignature),
/// [`BadTimestamp`](Error::BadTimestamp), [`Expired`](Error::Expired) and
/// [`FromTheFuture`](Error::FromTheFuture) are itsdangerous' `BadSignature`
/// family; the payload errors can only happen to a cookie with a valid
/// signature, i.e. one made by a key holder with other settings. Messages
/// never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `.` in the cookie: it is not a signed value.
    #[error("no \".\" found in the cookie: it is not a signed Flask session")]
    MissingSeparator,
    /// No accepted key produces this signature.
    #[error(
        "bad signature: the cookie was changed, or signed with another salt, \
         or with a key that is no longer in the key set"
    )]
    BadSignature,
    /// The signature is valid but the value carries no valid timestamp.
    #[error("the signed value carries no valid timestamp: it was not made by a timed serializer")]
    BadTimestamp,
    /// Older than the allowed maximum age (Flask's `PERMANENT_SESSION_LIFETIME`).
    #[error("session expired: signed {age:?} ago, at most {max_age:?} allowed")]
    Expired {
        /// How long ago it was signed.
        age: Duration,
        /// The allowed maximum.
        max_age: Duration,
    },
    /// Signed later than now (itsdangerous refuses a negative age).
    #[error("session signed {ahead:?} in the future; check the clocks of the replicas")]
    FromTheFuture {
        /// How far ahead.
        ahead: Duration,
    },
    /// The payload is not what Flask writes.
    #[error("the signed payload is not valid {what}")]
    Payload {
        /// What it should have been: `JSON`.
        what: &'static str,
    },
    /// A tagged value (` t`, ` b`, ` u`, ` d`, …) does not decode.
    #[error("the tagged value {tag:?} does not decode: {reason}")]
    Tag {
        /// The tag.
        tag: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The payload's encoding (base64, zlib, the bound on its inflated
    /// size): the layer Django and itsdangerous share.
    #[error(transparent)]
    Encoding(#[from] PayloadError),
    /// The value to sign cannot be written as Flask's JSON.
    #[error("the session cannot be serialized: {0}")]
    Serialize(String),
    /// The keys, not the value: the keyring has failed closed (nothing
    /// verifies) or nothing may sign.
    #[error(transparent)]
    Keys(#[from] Unserved),
}

impl Error {
    /// A short name for the kind of rejection (`missing_separator`,
    /// `bad_signature`, `bad_timestamp`, `expired`, `from_the_future`,
    /// `payload`, `tag`, `too_large`, `serialize`, `stale`, `closed`), as metrics label it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingSeparator => "missing_separator",
            Self::BadSignature => "bad_signature",
            Self::BadTimestamp => "bad_timestamp",
            Self::Expired { .. } => "expired",
            Self::FromTheFuture { .. } => "from_the_future",
            Self::Payload { .. } => "payload",
            Self::Tag { .. } => "tag",
            Self::Encoding(encoding) => encoding.reason(),
            Self::Serialize(_) => "serialize",
            Self::Keys(keys) => keys.reason(),
        }
    }

    /// The kind of refusal, in the words every format shares; `None` for
    /// [`Serialize`](Error::Serialize), which refuses no cookie: the value to
    /// sign is at fault. [`Keys`](Error::Keys), for a verification or a
    /// signature, is [`Rejection::Stale`] (the keyring serves nothing).
    pub fn rejection(&self) -> Option<Rejection> {
        Some(match self {
            Self::MissingSeparator => Rejection::Malformed,
            Self::BadSignature => Rejection::BadSignature,
            Self::Expired { .. } => Rejection::Expired,
            Self::FromTheFuture { .. } => Rejection::FromTheFuture,
            Self::BadTimestamp | Self::Payload { .. } | Self::Tag { .. } => Rejection::Payload,
            Self::Encoding(encoding) => encoding.rejection(),
            Self::Keys(keys) => keys.rejection(),
            Self::Serialize(_) => return None,
        })
    }

    /// Counts this refusal (`keyroll_rejections_total`, format `flask`).
    pub(crate) fn count(&self) {
        keyroll_core::record_rejection(keyroll_core::Format::Flask, self.reason());
    }

    /// True for the errors itsdangerous raises as `BadSignature` (Flask then
    /// starts an empty session).
    pub fn is_bad_signature(&self) -> bool {
        matches!(
            self,
            Self::MissingSeparator
                | Self::BadSignature
                | Self::BadTimestamp
                | Self::Expired { .. }
                | Self::FromTheFuture { .. }
        )
    }

    /// True for [`Expired`](Error::Expired).
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired { .. })
    }
}
