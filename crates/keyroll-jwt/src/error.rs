//! Typed errors: why a token did not verify, and why a signer could not be built.

use keyroll_core::kit::Rejection;

/// Why a JWT did not verify, or could not be made.
///
/// Every variant but [`Serialize`](Error::Serialize) means: do not trust the
/// token. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Longer than the configured bound (checked before anything is decoded).
    #[error("the token is longer than {limit} bytes; raise max_token_len() if such tokens are legitimate")]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
    /// Not a JWS in compact form: three base64url parts, a JSON object header
    /// and payload.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg: none`: an unsigned token.
    #[error("unsigned token (alg \"none\") refused")]
    NoneAlgorithm,
    /// An asymmetric `alg` (RS/PS/ES/EdDSA) against this HMAC key ring: the
    /// algorithm-confusion attack, or a token for another verifier.
    #[error("algorithm {0:?} refused: this key ring holds HMAC keys only (HS256/HS384/HS512)")]
    AsymmetricAlgorithm(String),
    /// An HMAC `alg` the verifier was not configured to accept, or an unknown one.
    #[error(
        "algorithm {0:?} is not accepted by this verifier; accept it with accept_algorithm() if intended"
    )]
    AlgorithmNotAccepted(String),
    /// The header lists `crit` extensions, none of which this crate implements
    /// (RFC 7515 §4.1.11 requires refusing them).
    #[error("the token requires header extensions this verifier does not implement (crit: {0:?})")]
    UnsupportedCritical(Vec<String>),
    /// The header has no `kid` and the verifier refuses such tokens.
    #[error("the token names no key (no kid header) and this verifier requires one")]
    MissingKeyId,
    /// The `kid` names no key this key ring accepts: unknown, or retired.
    #[error("the token's kid names a key that is not (or no longer) accepted")]
    UnknownKey,
    /// No accepted key produces this MAC: tampered, or signed with another key.
    #[error("bad signature: the token was changed, or signed with a key that is not in the key set")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired at {exp} (Unix seconds); sign a new one")]
    Expired {
        /// The token's `exp`.
        exp: i64,
    },
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    #[error("token not valid yet ({claim} {at} is in the future)")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// Its value (Unix seconds).
        at: i64,
    },
    /// A claim the verifier requires is absent.
    #[error("the token has no {0} claim, which this verifier requires")]
    MissingClaim(&'static str),
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not the one this verifier accepts")]
    InvalidIssuer,
    /// `aud` names none of the configured audiences, or names one while the
    /// verifier has none configured.
    #[error("the token's audience is not one this verifier accepts")]
    InvalidAudience,
    /// The claims are not what was asked for (a registered claim of the wrong
    /// type, or claims that do not deserialize into the requested type).
    #[error("the token's claims do not decode: {0}")]
    Claims(String),
    /// The claims to sign cannot be written as a JSON object.
    #[error("the claims cannot be serialized as a JSON object: {0}")]
    Serialize(String),
    /// The keyring has failed closed ([`Keyring::serving_at`](keyroll_core::Keyring::serving_at)):
    /// the store has not confirmed the keys within the configured limit, or
    /// revoked the signing key, or every key expired, so nothing signs or
    /// verifies.
    #[error("{}", Rejection::Stale)]
    Stale,
}

impl Error {
    /// A short name for the kind of rejection (`too_large`, `malformed`,
    /// `none_algorithm`, `asymmetric_algorithm`, `algorithm_not_accepted`,
    /// `unsupported_critical`, `missing_key_id`, `unknown_key`,
    /// `bad_signature`, `expired`, `not_yet_valid`, `missing_claim`,
    /// `invalid_issuer`, `invalid_audience`, `claims`, `serialize`, `stale`),
    /// as metrics label it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed(_) => "malformed",
            Self::NoneAlgorithm => "none_algorithm",
            Self::AsymmetricAlgorithm(_) => "asymmetric_algorithm",
            Self::AlgorithmNotAccepted(_) => "algorithm_not_accepted",
            Self::UnsupportedCritical(_) => "unsupported_critical",
            Self::MissingKeyId => "missing_key_id",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::Claims(_) => "claims",
            Self::Serialize(_) => "serialize",
            Self::Stale => "stale",
        }
    }

    /// The kind of refusal, in the words every format shares; `None` for
    /// [`Serialize`](Error::Serialize) (nothing was signed).
    pub fn rejection(&self) -> Option<Rejection> {
        Some(match self {
            Self::TooLarge { .. } => Rejection::TooLarge,
            Self::Malformed(_)
            | Self::NoneAlgorithm
            | Self::AsymmetricAlgorithm(_)
            | Self::AlgorithmNotAccepted(_)
            | Self::UnsupportedCritical(_)
            | Self::MissingKeyId => Rejection::Malformed,
            Self::UnknownKey => Rejection::UnknownKey,
            Self::BadSignature => Rejection::BadSignature,
            Self::Expired { .. } => Rejection::Expired,
            Self::NotYetValid { .. } => Rejection::FromTheFuture,
            Self::MissingClaim(_) | Self::InvalidIssuer | Self::InvalidAudience | Self::Claims(_) => {
                Rejection::Payload
            }
            Self::Stale => Rejection::Stale,
            Self::Serialize(_) => return None,
        })
    }

    /// Counts this refusal (`keyroll_rejections_total`, format `jwt`).
    pub(crate) fn count(&self) {
        keyroll_core::record_rejection(keyroll_core::Format::Jwt, self.reason());
    }

    /// True for [`Expired`](Error::Expired).
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired { .. })
    }
}

/// Why a signer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An algorithm name this crate does not implement.
    #[error("{0:?} is not an algorithm keyroll-jwt implements: use HS256, HS384 or HS512")]
    Algorithm(String),
}
