//! What a handler answers when a required cookie is missing or invalid.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A required cookie was missing or did not verify. Answers
/// `401 Unauthorized` with a fixed body: whether the cookie was absent,
/// tampered, expired or signed with a retired key is logged at debug level,
/// never told to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieRejection {
    /// The request carries no cookie of that name.
    #[error("the request carries no such cookie")]
    Missing,
    /// The cookie is there but does not verify.
    #[error("the cookie does not verify")]
    Invalid,
    /// Nothing signs: the keyring has failed closed or its signing key is
    /// past its expiry (a `503`: the keys are unavailable, not the user
    /// unauthorized).
    #[error(transparent)]
    Closed(#[from] keyroll_core::Closed),
}

impl IntoResponse for CookieRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Closed(_) => (StatusCode::SERVICE_UNAVAILABLE, "keys unavailable\n").into_response(),
            _ => (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response(),
        }
    }
}

/// The extractors were used without a
/// [`CookieManagerLayer`](tower_cookies::CookieManagerLayer) around the route:
/// a programming error, answered `500` (and logged) on every request until
/// the layer is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no CookieManagerLayer around this route: add `.layer(tower_cookies::CookieManagerLayer::new())`")]
#[non_exhaustive]
pub struct MissingCookieLayer;

impl IntoResponse for MissingCookieLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response()
    }
}
