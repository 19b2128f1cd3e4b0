//! The one error Handoff answers clients with, and the one place internal
//! errors become wire errors.
//!
//! [`ApiError`] is what every HTTP handler, every WebSocket command and every
//! actor fails with: a wire code ([`ErrorCode`], which also gives the HTTP
//! status), words for people, and for `rate_limited` a `Retry-After`. Over
//! HTTP it is the JSON error body (the [`ResponseError`] impl); over the
//! socket, the same body in an `error` frame. Every store error becomes a wire
//! code here, one `From` per concept.
//!
//! It is its own crate because both the actors and the server produce it, and
//! Rust's orphan rule lets actix's `ResponseError` be implemented only next to
//! the type.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use handoff_protocol::{ErrorBody, ErrorCode};
use handoff_store::{
    AuditError, FreeError, LimitError, MailError, MlsError, PracticeError, ReferralError, RoomError, TaxonomyError, UserError,
};

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The machine-readable code clients match on.
    pub code: ErrorCode,
    /// What went wrong, in words clients show to people.
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
    /// `validation_failed`, with what is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }
    /// `forbidden`, with why.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    /// `internal`; the cause is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "the server failed; nothing was changed, please retry")
    }
}

impl std::error::Error for ApiError {}

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

// Store errors become wire errors here, one `From` per concept. A variant a
// handler does not match itself gets the answer below; handlers match a
// variant only where the answer depends on the request (a retried practice
// creation, an invite accepted on its own page, a stale MLS epoch that reports
// the current one).

/// `conflict`, worded "<what> already exists".
fn exists(what: &str) -> ApiError {
    ApiError::new(ErrorCode::Conflict, format!("{what} already exists"))
}

/// The one answer to a confirmation link that confirms nothing: unknown,
/// used, expired, or for an address another registration confirmed first.
pub const CONFIRMATION_INVALID: &str =
    "this confirmation link is unknown, used or expired; register again, or sign in if you already have an account";

/// What an invite over the per-user or per-practice quota is answered with.
pub const INVITES_LIMITED: &str = "too many invites sent; wait and try again";

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::EmailTaken => {
                ApiError::new(ErrorCode::EmailTaken, "an account with this email exists; sign in, or reset with your Emergency Access Kit")
            }
            UserError::NoSuchUser => ApiError::not_found("user"),
            UserError::SessionExists => exists("session"),
            UserError::RegistrationExists => exists("registration"),
            UserError::NoSuchRegistration => ApiError::new(ErrorCode::ConfirmationInvalid, CONFIRMATION_INVALID),
            UserError::TotpEnabled => {
                ApiError::new(ErrorCode::Conflict, "two-factor sign-in is on already; turn it off first to enroll again")
            }
            UserError::NoTotp => ApiError::new(ErrorCode::Conflict, "two-factor sign-in is not on, or its enrollment was not started"),
            UserError::NoSuchSession => ApiError::not_found("session"),
            other => ApiError::internal(other),
        }
    }
}

impl From<PracticeError> for ApiError {
    fn from(e: PracticeError) -> Self {
        match e {
            PracticeError::PracticeExists => exists("practice"),
            PracticeError::NoSuchPractice => ApiError::not_found("practice"),
            PracticeError::AlreadyMember => exists("member"),
            PracticeError::NotMember => ApiError::not_found("member"),
            PracticeError::LastAdmin => {
                ApiError::new(ErrorCode::LastAdmin, "a practice needs an admin; make someone else admin first, or delete the practice")
            }
            PracticeError::GrantTargetMissing => ApiError::not_found("practice or user"),
            PracticeError::InviteExists => exists("invite"),
            PracticeError::InviteUsed => ApiError::not_found("invite"),
            PracticeError::PracticeIdRetired => exists("practice"),
            PracticeError::InviteQuotaExceeded { .. } => ApiError::new(ErrorCode::RateLimited, INVITES_LIMITED),
            other => ApiError::internal(other),
        }
    }
}

impl From<TaxonomyError> for ApiError {
    fn from(e: TaxonomyError) -> Self {
        match e {
            TaxonomyError::NoSuchSpecialty => ApiError::not_found("specialty"),
            TaxonomyError::NoSuchCategory => ApiError::not_found("category"),
            TaxonomyError::RequestExists => exists("category_request"),
            TaxonomyError::NoSuchRequest => ApiError::not_found("category_request"),
            other => ApiError::internal(other),
        }
    }
}

impl From<ReferralError> for ApiError {
    fn from(e: ReferralError) -> Self {
        match e {
            ReferralError::IdempotencyKeyUsed => exists("idempotency"),
            ReferralError::ReferralExists => exists("referral"),
            ReferralError::NoSuchReferral => ApiError::not_found("referral"),
            ReferralError::BlobUnavailable => ApiError::not_found("blob"),
            ReferralError::BlobExists => ApiError::new(ErrorCode::Conflict, "a blob with this id exists; generate a new id"),
            ReferralError::QuotaExceeded => {
                ApiError::new(ErrorCode::QuotaExceeded, "your attachments use all the storage your account may hold; nothing was stored")
            }
            ReferralError::NoSuchUpload => ApiError::not_found("upload"),
            ReferralError::ChainBroken => {
                ApiError::new(ErrorCode::Unavailable, "an earlier change to this referral failed, so this one was not applied; retry")
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<MlsError> for ApiError {
    fn from(e: MlsError) -> Self {
        match e {
            MlsError::KeyPackageReused => {
                ApiError::new(ErrorCode::KeyPackageUsed, "a key package was published before; key packages are single-use, make fresh ones")
            }
            MlsError::KeyPackageClaimed => ApiError::not_found("key_package"),
            MlsError::StaleState => ApiError::new(
                ErrorCode::StaleState,
                "your MLS state changed in another tab or browser since you loaded it; reload it and retry",
            ),
            MlsError::StaleEpoch => exists("stale_epoch"),
            MlsError::NoSuchPractice => ApiError::not_found("practice"),
            MlsError::NoSuchEntry => ApiError::not_found("MLS log entry"),
            other => ApiError::internal(other),
        }
    }
}

impl From<MailError> for ApiError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::NotQueued => ApiError::not_found("mail"),
            other => ApiError::internal(other),
        }
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        // A lock-out key is made by the server, never sent by a client: a bad
        // one is the server's own fault.
        ApiError::internal(e)
    }
}

impl From<FreeError> for ApiError {
    fn from(e: FreeError) -> Self {
        match e {
            FreeError::DraftExists => exists("draft"),
            FreeError::NoSuchDraft => ApiError::not_found("draft"),
            FreeError::ResendsExhausted => {
                ApiError::new(ErrorCode::RateLimited, "this draft has had all the codes it may; start again with your email address")
            }
            FreeError::AlreadyVerified => {
                ApiError::new(ErrorCode::Conflict, "this email address is verified already; no new code is needed")
            }
            FreeError::DraftSent => {
                ApiError::new(ErrorCode::DraftUsed, "this draft has sent its one referral; start a new one for another")
            }
            FreeError::TooManyBlobs => {
                ApiError::new(ErrorCode::QuotaExceeded, "a referral holds at most 50 attachments; nothing was stored")
            }
            FreeError::BlobExists => ApiError::new(ErrorCode::Conflict, "a blob with this id exists; generate a new id"),
            FreeError::NoSuchBlock => ApiError::not_found("block"),
            FreeError::NoSuchPractice => ApiError::not_found("practice"),
            other => ApiError::internal(other),
        }
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        // Audit entries are made by the server from ids it holds, never sent by
        // a client: any failure is the server's own (or the stored log's).
        ApiError::internal(e)
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::RoomExists => exists("room"),
            RoomError::NoSuchRoom => ApiError::not_found("room"),
            RoomError::NoSuchPractice => ApiError::not_found("practice"),
            RoomError::NoSuchGuest => ApiError::new(ErrorCode::GuestGone, "that guest has left the room"),
            // A link collision (128 random bits) is the server's to retry, never the client's.
            other => ApiError::internal(other),
        }
    }
}

/// The result of a handler, a command or an actor's work.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use actix_web::http::header;

    use super::*;

    #[test]
    fn each_store_error_gets_its_wire_code() {
        let cases: Vec<(ApiError, ErrorCode)> = vec![
            (UserError::EmailTaken.into(), ErrorCode::EmailTaken),
            (UserError::NoSuchUser.into(), ErrorCode::NotFound),
            (UserError::TotpEnabled.into(), ErrorCode::Conflict),
            (UserError::NoTotp.into(), ErrorCode::Conflict),
            (PracticeError::LastAdmin.into(), ErrorCode::LastAdmin),
            (PracticeError::NotMember.into(), ErrorCode::NotFound),
            (PracticeError::AlreadyMember.into(), ErrorCode::Conflict),
            (TaxonomyError::NoSuchCategory.into(), ErrorCode::NotFound),
            (ReferralError::BlobExists.into(), ErrorCode::Conflict),
            (ReferralError::BlobUnavailable.into(), ErrorCode::NotFound),
            (ReferralError::QuotaExceeded.into(), ErrorCode::QuotaExceeded),
            (ReferralError::NoSuchUpload.into(), ErrorCode::NotFound),
            (MlsError::KeyPackageReused.into(), ErrorCode::KeyPackageUsed),
            (MlsError::StaleState.into(), ErrorCode::StaleState),
            (MailError::NotQueued.into(), ErrorCode::NotFound),
            (FreeError::DraftSent.into(), ErrorCode::DraftUsed),
            (FreeError::NoSuchDraft.into(), ErrorCode::NotFound),
            (FreeError::TooManyBlobs.into(), ErrorCode::QuotaExceeded),
        ];
        for (e, code) in cases {
            assert_eq!(e.code, code, "{e}");
        }
    }

    #[test]
    fn not_found_reads_the_same_for_absent_and_foreign_objects() {
        assert_eq!(ApiError::not_found("referral").message, "no such referral, or you do not have access to it");
        assert_eq!(ApiError::from(ReferralError::NoSuchReferral), ApiError::not_found("referral"));
    }

    #[test]
    fn a_backend_failure_is_internal_and_its_cause_is_not_sent() {
        let e = ApiError::from(PracticeError::Backend(handoff_store::BackendError::new("disk I/O error at /var/lib/handoff")));
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.message.contains("/var/lib"), "{e}");
    }

    #[test]
    fn the_http_answer_carries_the_status_no_store_and_retry_after() {
        let mut e = ApiError::new(ErrorCode::RateLimited, "slow down");
        e.retry_after = Some(30);
        let r = e.error_response();
        assert_eq!(r.status().as_u16(), ErrorCode::RateLimited.http_status());
        assert_eq!(r.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
        assert_eq!(r.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("30"));
        let plain = ApiError::forbidden("no").error_response();
        assert_eq!(plain.status().as_u16(), 403);
        assert!(plain.headers().get(header::RETRY_AFTER).is_none());
    }
}
