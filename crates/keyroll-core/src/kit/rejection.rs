//! One vocabulary of refusals, with one wording per kind.

use std::fmt;

/// What kind of refusal a format's error is: the same words for the same
/// thing in every format (each format's error says which with its
/// `rejection()`, and its `Display` for the kinds below that carry no
/// detail is this one's).
///
/// ```
/// use keyroll_core::kit::Rejection;
///
/// assert_eq!(Rejection::Stale.reason(), "stale");
/// assert!(Rejection::Expired.to_string().contains("expired"));
/// assert!(Rejection::BadSignature.is_untrusted());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// Not a token of this format (layout, encoding, header).
    Malformed,
    /// Names a key this keyring does not accept (unknown, or retired).
    UnknownKey,
    /// No accepted key produces this signature (or MAC).
    BadSignature,
    /// Valid, but older than the allowed maximum age.
    Expired,
    /// Valid, but stamped later than clock skew explains.
    FromTheFuture,
    /// Longer than the configured bound (checked before decoding).
    TooLarge,
    /// Valid, but what was signed is not what the caller asked for (a
    /// payload, claims or a timestamp of another shape).
    Payload,
    /// The keyring has failed closed (or no key may sign): nothing
    /// verifies, nothing signs.
    Stale,
}

impl Rejection {
    /// A short name (`malformed`, `unknown_key`, `bad_signature`,
    /// `expired`, `from_the_future`, `too_large`, `payload`, `stale`).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::FromTheFuture => "from_the_future",
            Self::TooLarge => "too_large",
            Self::Payload => "payload",
            Self::Stale => "stale",
        }
    }

    /// True when the token is not to be trusted because of what it is
    /// (every kind but [`Stale`](Self::Stale), which says the keyring
    /// cannot judge).
    pub fn is_untrusted(self) -> bool {
        self != Self::Stale
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed token: not a token of this format",
            Self::UnknownKey => "signed with a key that is not (or no longer) accepted",
            Self::BadSignature => {
                "bad signature: the token was changed, or signed with other settings or a key that is not in the key set"
            }
            Self::Expired => "expired: older than the allowed maximum age; sign it again",
            Self::FromTheFuture => {
                "signed in the future, beyond the allowed clock skew; check the clocks of the replicas"
            }
            Self::TooLarge => "the token is longer than the configured bound",
            Self::Payload => "the signed payload is not what was asked for",
            Self::Stale => {
                "the keyring has failed closed (the store has not confirmed the keys within the limit, revoked the signing key, or every key expired); nothing signs or verifies until the store offers a usable key"
            }
        })
    }
}

/// Why a format signed or verified nothing at all: the keys, not the token.
/// Nested in every Django and Flask error (`Error::Keys`), after rustls'
/// nested errors: one vocabulary, one wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unserved {
    /// The keyring has failed closed: the store has not confirmed the keys
    /// within the configured limit, so nothing verifies.
    #[error("{}", Rejection::Stale)]
    Stale,
    /// Nothing signs: the keyring has failed closed or its signing key is
    /// past its expiry.
    #[error(transparent)]
    Closed(#[from] crate::Closed),
}

impl Unserved {
    /// `stale` or `closed`, as metrics label it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::Closed(_) => "closed",
        }
    }

    /// [`Rejection::Stale`], for a refused verification and for a refused
    /// signature alike: the keyring serves nothing, which every door reports
    /// as failing closed (Python's and Node's `FailedClosed`), never as a bad
    /// token or a configuration error.
    pub fn rejection(&self) -> Rejection {
        Rejection::Stale
    }
}
