//! Limits on one referral that the routing rules enforce.

/// The most attachments one referral carries.
pub const MAX_ATTACHMENTS: usize = 50;

/// The most receiving practices a "choose for me" referral may wrap its key
/// to (one wrap per candidate in the directory).
pub const MAX_CANDIDATES: usize = 200;

/// The most intake entries (categories or subcategories) a practice declares.
pub const MAX_INTAKE: usize = 200;
