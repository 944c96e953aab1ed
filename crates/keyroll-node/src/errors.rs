//! Errors as JavaScript sees them: an `Error` whose `code` names the class
//! `index.js` gives it (`KeyrollError` and its kinds, `FailedClosed`,
//! `BadSignature`, `SignatureExpired`, `InvalidToken`).

use keyroll::{Closed, StartFailure};
use napi::Status;

/// The `code` of a rejected call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A bad URI, option or argument (`KeyrollError`, kind `config`).
    Config,
    /// The store answered without a usable key set (kind `keys`).
    Keys,
    /// The store did not answer (kind `unavailable`).
    Unavailable,
    /// The key ring was closed (kind `closed`).
    Closed,
    /// The core serves no key: failed closed, revoked or expired.
    FailedClosed,
    /// A token that does not verify.
    BadSignature,
    /// A valid signature past its maximum age.
    SignatureExpired,
    /// A Fernet token no key decrypts.
    InvalidToken,
    /// Node-API itself failed.
    Node(Status),
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        match self {
            Self::Config => "KEYROLL_CONFIG",
            Self::Keys => "KEYROLL_KEYS",
            Self::Unavailable => "KEYROLL_UNAVAILABLE",
            Self::Closed => "KEYROLL_CLOSED",
            Self::FailedClosed => "KEYROLL_FAILED_CLOSED",
            Self::BadSignature => "KEYROLL_BAD_SIGNATURE",
            Self::SignatureExpired => "KEYROLL_SIGNATURE_EXPIRED",
            Self::InvalidToken => "KEYROLL_INVALID_TOKEN",
            Self::Node(status) => status.as_ref(),
        }
    }
}

impl Code {
    /// The kind the library gives a failed start or operation.
    pub(crate) fn of(kind: StartFailure) -> Self {
        match kind {
            StartFailure::Config => Self::Config,
            StartFailure::Keys => Self::Keys,
            _ => Self::Unavailable,
        }
    }
}

impl From<Status> for Code {
    fn from(status: Status) -> Self {
        Self::Node(status)
    }
}

/// What every call returns: a JavaScript `Error` with a [`Code`].
pub type Result<T> = napi::Result<T, Code>;

pub(crate) fn error(code: Code, message: impl Into<String>) -> napi::Error<Code> {
    napi::Error::new(code, message.into())
}

/// The core's refusal to serve.
pub(crate) fn closed(closed: Closed) -> napi::Error<Code> {
    error(Code::FailedClosed, closed.to_string())
}
