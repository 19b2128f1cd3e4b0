use handoff_protocol::v1::{CategoryRequestStatus, Intake, PracticeKind, PracticePublicKey, Role};
use handoff_protocol::{CategoryRequestId, PracticeId, UnixMillis, UserId};

/// A stored user. Only public keys, sealed private keys and verifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The user's id.
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
    /// When the account was registered.
    pub created_at: UnixMillis,
    /// When the account's email address was confirmed (by the registration
    /// link, or by the invite link it registered with). `None`: unconfirmed.
    pub email_confirmed_at: Option<UnixMillis>,
}

/// A registration waiting for its emailed confirmation link. It is no account
/// yet: it cannot sign in, and it holds no address (several may wait for one
/// address; the first confirmed wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRegistration {
    /// SHA-256 of the emailed token.
    pub token_hash: Vec<u8>,
    /// The account to create on confirmation (its `id` is assigned then;
    /// `email_confirmed_at` is set to the confirmation time).
    pub user: UserRecord,
    /// After this the link no longer confirms anything.
    pub expires_at: UnixMillis,
}

/// What proves a pending registration: the salt its password was stretched
/// with and the verifier of the auth key it gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingProof {
    /// The salt chosen at registration.
    pub salt: Vec<u8>,
    /// Argon2id of the auth key, as a PHC string.
    pub auth_verifier: String,
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
    /// When the reset happened.
    pub now: UnixMillis,
}

/// A session; the token itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// The user the session signs in.
    pub user_id: UserId,
    /// When the session was started.
    pub created_at: UnixMillis,
    /// After this the session no longer signs anyone in.
    pub expires_at: UnixMillis,
    /// A random id naming the session in the user's session list; neither
    /// the token nor its hash, so a listed handle signs nobody in.
    pub handle: Vec<u8>,
    /// The last activity written through (see `touch_session`).
    pub last_seen_at: UnixMillis,
    /// The `User-Agent` the session was created with, truncated (empty if none).
    pub user_agent: String,
    /// The client address the session was created from (as the rate limits see it).
    pub client_addr: String,
}

/// A practice's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PracticeRecord {
    /// The practice's id, chosen by its creator's client.
    pub id: PracticeId,
    /// The display name.
    pub name: String,
    /// Whether it refers patients or receives referrals as a specialist.
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
    /// The user who created it (its first admin).
    pub created_by: UserId,
    /// When it was created.
    pub created_at: UnixMillis,
    /// Whether it receives free referrals (senders without an account); its
    /// admins opt out. Choose-for-me skips a practice that opted out.
    pub accepts_free: bool,
}

/// A member joined with their user record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The user.
    pub user: UserRecord,
    /// The member's role in the practice.
    pub role: Role,
    /// When they joined.
    pub joined_at: UnixMillis,
    /// Opted in to status emails.
    pub notify_email: bool,
    /// When the membership gives access.
    pub terms: Terms,
}

/// When a membership gives access, and on whose behalf (migration 0013).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Terms {
    /// Before this the membership gives no access (an invited one only).
    pub starts_at: Option<UnixMillis>,
    /// From this the membership gives no access.
    pub ends_at: Option<UnixMillis>,
    /// For a delegate: the member they act on behalf of.
    pub sponsor: Option<UserId>,
}

impl Terms {
    /// Whether the dates let the membership give access at `now`
    /// (from `starts_at` inclusive, to `ends_at` exclusive).
    pub fn in_force(&self, now: UnixMillis) -> bool {
        self.starts_at.is_none_or(|s| now >= s) && self.ends_at.is_none_or(|e| now < e)
    }
}

/// A practice key sealed to one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    /// The practice whose key this is.
    pub practice_id: PracticeId,
    /// The member the key is sealed to.
    pub user_id: UserId,
    /// The key epoch the grant is for.
    pub epoch: u64,
    /// HPKE box.
    pub sealed: Vec<u8>,
    /// Granting member.
    pub granted_by: UserId,
    /// When the grant was made.
    pub created_at: UnixMillis,
}

/// An invite; the token is stored only hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteRecord {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// The practice the invite joins.
    pub practice_id: PracticeId,
    /// Lower-cased email.
    pub email: String,
    /// Role on joining.
    pub role: Role,
    /// The member who sent the invite.
    pub invited_by: UserId,
    /// When it was sent.
    pub created_at: UnixMillis,
    /// After this the invite can no longer be accepted.
    pub expires_at: UnixMillis,
    /// The membership's start, if dated.
    pub starts_at: Option<UnixMillis>,
    /// The membership's end, if dated.
    pub ends_at: Option<UnixMillis>,
}

/// A request for a new category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryRequestRecord {
    /// The request's id.
    pub id: CategoryRequestId,
    /// The practice that asked.
    pub practice_id: PracticeId,
    /// Specialty slug.
    pub specialty: String,
    /// Requested name.
    pub name: String,
    /// The practice's explanation for staff.
    pub note: String,
    /// Where the request stands (stored as its wire text: `open`, `approved`, `declined`).
    pub status: CategoryRequestStatus,
    /// When it was made.
    pub created_at: UnixMillis,
}

/// Mail to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMail {
    /// The address to send to.
    pub recipient: String,
    /// The subject line.
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
    /// The address to send to.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body (emptied once sent).
    pub body: String,
    /// Attempts so far.
    pub attempts: u32,
}
