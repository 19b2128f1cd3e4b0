//! The one place internal errors become wire errors.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use handoff_protocol::{ErrorBody, ErrorCode};
use handoff_store::StoreError;

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Wire code.
    pub code: ErrorCode,
    /// Human message.
    pub message: String,
    /// Seconds for `Retry-After`, with `rate_limited`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }
    /// `not_found`, worded the same whether the object is absent or foreign.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}, or you do not have access to it"))
    }
    /// `no_route`: no such path or method (the App's default service, and
    /// upgrades to any path but `/ws`).
    pub fn no_route() -> Self {
        Self::new(ErrorCode::NoRoute, "no such API route or method")
    }
    /// `validation_failed` for a query string that does not parse.
    pub fn invalid_query(err: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::ValidationFailed, format!("invalid query string: {err}"))
    }
    /// `validation_failed`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }
    /// `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    /// `internal`; the cause is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "the server failed; nothing was changed, please retry")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status_code());
        b.insert_header(("Cache-Control", "no-store"));
        if let Some(s) = self.retry_after {
            b.insert_header(("Retry-After", s.to_string()));
        }
        b.json(ErrorBody { error: self.code, message: self.message.clone() })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::new(ErrorCode::Conflict, format!("{what} already exists")),
            StoreError::NotFound(what) => ApiError::not_found(what),
            other => ApiError::internal(other),
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
