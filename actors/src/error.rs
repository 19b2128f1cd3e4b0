//! A command's failure, with its wire code.

use handoff_protocol::ErrorCode;

/// A command's failure: the wire code and the words clients show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CmdError {
    /// The wire code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl CmdError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    /// `not_found`, worded the same for absent and foreign objects.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}, or you do not have access to it"))
    }
}

/// A store failure a command did not handle is logged and answered as `internal`.
macro_rules! cmd_error_from_store {
    ($($e:ty),* $(,)?) => {$(
        impl From<$e> for CmdError {
            fn from(e: $e) -> Self {
                tracing::error!(error = %e, "store failure in a command");
                CmdError::new(ErrorCode::Internal, "the server failed; nothing was changed, please retry")
            }
        }
    )*};
}

cmd_error_from_store!(
    handoff_store::UserError,
    handoff_store::PracticeError,
    handoff_store::TaxonomyError,
    handoff_store::ReferralError,
    handoff_store::MlsError,
    handoff_store::MailError,
);

/// A command's result.
pub type CmdResult<T> = Result<T, CmdError>;
