//! The one error answered to clients, [`ApiError`], lives in `handoff-error`
//! (`error/src/lib.rs`), where every store error becomes a wire code: the
//! actors produce it too. The extractor failures (JSON, path, query) are mapped
//! in `app.rs`.

pub use handoff_error::{ApiError, ApiResult};
