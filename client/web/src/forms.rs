//! Forms that stand on their own: props in, callbacks out, and no signed-in
//! session. The send wizard uses them, and so can any other flow that asks
//! for the same things (for example a referral sent without an account).
//!
//! - [`patient`]: the patient's demographics, the reason for referral and the
//!   clinical details.
//! - [`attachments`]: choosing files to attach, read into memory here.

pub mod attachments;
pub mod patient;
