use handoff_protocol::v1::{Intake, PracticeKind, PracticePublicKey, Role};
use handoff_protocol::{CategoryRequestId, PracticeId, UnixMillis, UserId};

/// A stored user. Only public keys, sealed private keys and verifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Lower-cased email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Client's Argon2id salt.
    pub salt: Vec<u8>,
    /// PHC string: Argon2id of the client's auth key.
    pub auth_verifier: String,
    /// SHA-256 of the kit auth key.
    pub kit_verifier: Vec<u8>,
    /// Ed25519 public key.
    pub sign_pub: Vec<u8>,
    /// HPKE public key.
    pub hpke_pub: Vec<u8>,
    /// Private keys sealed under the password KEK.
    pub wrapped_by_password: Vec<u8>,
    /// Private keys sealed under the kit KEK.
    pub wrapped_by_kit: Vec<u8>,
    /// Platform staff.
    pub is_staff: bool,
    /// Created.
    pub created_at: UnixMillis,
}

/// New password material after a kit reset.
#[derive(Clone, Debug)]
pub struct PasswordChange {
    /// New salt.
    pub salt: Vec<u8>,
    /// New verifier.
    pub auth_verifier: String,
    /// Keys sealed under the new KEK.
    pub wrapped_by_password: Vec<u8>,
    /// When.
    pub now: UnixMillis,
}

/// A session; the token itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Owner.
    pub user_id: UserId,
    /// Created.
    pub created_at: UnixMillis,
    /// Expires.
    pub expires_at: UnixMillis,
}

/// A practice's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PracticeRecord {
    /// Id.
    pub id: PracticeId,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: PracticeKind,
    /// Specialty slug.
    pub specialty: Option<String>,
    /// Region slug.
    pub region: Option<String>,
    /// Received categories.
    pub intake: Vec<Intake>,
    /// Verified by staff.
    pub verified: bool,
    /// Intake paused by staff.
    pub paused: bool,
    /// Current key epoch.
    pub key_epoch: u64,
    /// Current public key.
    pub public_key: PracticePublicKey,
    /// Creator.
    pub created_by: UserId,
    /// Created.
    pub created_at: UnixMillis,
}

/// A member joined with their user record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The user.
    pub user: UserRecord,
    /// Role.
    pub role: Role,
    /// Joined.
    pub joined_at: UnixMillis,
    /// Opted in to status emails.
    pub notify_email: bool,
}

/// A practice key sealed to one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    /// Practice.
    pub practice_id: PracticeId,
    /// Recipient.
    pub user_id: UserId,
    /// Epoch.
    pub epoch: u64,
    /// HPKE box.
    pub sealed: Vec<u8>,
    /// Granting member.
    pub granted_by: UserId,
    /// When.
    pub created_at: UnixMillis,
}

/// An invite; the token is stored only hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteRecord {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Practice.
    pub practice_id: PracticeId,
    /// Lower-cased email.
    pub email: String,
    /// Role on joining.
    pub role: Role,
    /// Inviter.
    pub invited_by: UserId,
    /// Created.
    pub created_at: UnixMillis,
    /// Expires.
    pub expires_at: UnixMillis,
}

/// A request for a new category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryRequestRecord {
    /// Id.
    pub id: CategoryRequestId,
    /// Practice.
    pub practice_id: PracticeId,
    /// Specialty slug.
    pub specialty: String,
    /// Requested name.
    pub name: String,
    /// Note.
    pub note: String,
    /// `open`, `approved`, `declined`.
    pub status: String,
    /// Created.
    pub created_at: UnixMillis,
}

/// Mail to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMail {
    /// To.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body. Never patient data.
    pub body: String,
    /// Queued at (also first attempt time).
    pub now: UnixMillis,
}

/// Queued mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailRecord {
    /// Outbox id.
    pub id: i64,
    /// To.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Attempts so far.
    pub attempts: u32,
}
