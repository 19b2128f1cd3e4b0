//! Version 1 of the HTTP API, served under `/api/v1`.
//!
//! Request types deny unknown fields: a misspelt field is an `invalid_body`
//! error, never silently ignored.

use serde::{Deserialize, Serialize};

use crate::{B64, CategoryRequestId, PracticeId, UnixMillis, UserId};

/// Largest JSON body any v1 endpoint accepts, in bytes.
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Longest email address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest display or practice name.
pub const MAX_NAME_LEN: usize = 120;

/// The password-stretching parameters the client must use. The server pins
/// them so that every client derives the same keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Always `"argon2id"`.
    pub alg: String,
    /// Memory in KiB (19456, OWASP).
    pub m_kib: u32,
    /// Iterations (2).
    pub t: u32,
    /// Parallelism (1).
    pub p: u32,
    /// Per-account random salt, 16 bytes.
    pub salt: B64,
}

/// `POST /auth/prelogin`: which salt and parameters to stretch the password with.
/// Answers for unknown emails too (with a salt derived from a server secret), so
/// it does not reveal whether an account exists.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreloginRequest {
    /// The account's email.
    pub email: String,
}

/// Public halves of a user's key pairs, and the private halves wrapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserKeyBundle {
    /// Ed25519 verifying key, 32 bytes.
    pub sign_pub: B64,
    /// X25519 HPKE public key, 32 bytes.
    pub hpke_pub: B64,
    /// Private keys sealed under the password KEK (XChaCha20-Poly1305).
    pub wrapped_by_password: B64,
    /// Private keys sealed under the Emergency Access Kit KEK.
    pub wrapped_by_kit: B64,
}

/// `POST /auth/register`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Login email; also where invites are addressed.
    pub email: String,
    /// Name shown to colleagues.
    pub display_name: String,
    /// The salt the client stretched the password with (16 bytes).
    pub salt: B64,
    /// `HKDF(Argon2id(password, salt), "handoff auth key")`, 32 bytes. The server
    /// stores only an Argon2id hash of it.
    pub auth_key: B64,
    /// `HKDF(kit entropy, "handoff kit auth")`, 32 bytes: proves possession of
    /// the kit at reset time. Stored hashed.
    pub kit_auth: B64,
    /// The user's keys.
    pub keys: UserKeyBundle,
    /// An invite token from an email link: the new account joins that practice.
    #[serde(default)]
    pub invite_token: Option<String>,
}

/// `POST /auth/login`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's email.
    pub email: String,
    /// See [`RegisterRequest::auth_key`].
    pub auth_key: B64,
}

/// Answer to register, login and recovery: the session and what the client
/// needs to unlock its keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionResponse {
    /// The signed-in user.
    pub user: Me,
    /// Bearer token, also set as the `handoff_session` HttpOnly cookie.
    pub token: String,
    /// When the session expires.
    pub expires_at: UnixMillis,
}

/// `POST /auth/recover/start`: prove the kit, receive the kit-wrapped keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverStartRequest {
    /// The account's email.
    pub email: String,
    /// See [`RegisterRequest::kit_auth`].
    pub kit_auth: B64,
}

/// Answer to `recover/start`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoverStartResponse {
    /// The account.
    pub user_id: UserId,
    /// The private keys sealed under the kit KEK.
    pub wrapped_by_kit: B64,
}

/// `POST /auth/recover/finish`: set a new password. All sessions are revoked.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverFinishRequest {
    /// The account's email.
    pub email: String,
    /// Proof of the kit again: the server keeps no state between the two calls.
    pub kit_auth: B64,
    /// New salt, 16 bytes.
    pub salt: B64,
    /// New auth key derived from the new password.
    pub auth_key: B64,
    /// The same private keys, sealed under the new password KEK.
    pub wrapped_by_password: B64,
}

/// The signed-in user, as the user sees themself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Me {
    /// The account id.
    pub id: UserId,
    /// Login email.
    pub email: String,
    /// Shown to colleagues.
    pub display_name: String,
    /// Platform staff: may verify and pause practices and edit the taxonomy.
    pub is_staff: bool,
    /// The user's keys.
    pub keys: UserKeyBundle,
}

/// What a practice is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PracticeKind {
    /// Primary care: sends referrals.
    Referring,
    /// Receives referrals in a specialty once verified by staff.
    Specialist,
}

/// A member's role in a practice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Invites and removes members, deletes the practice.
    Admin,
    /// Works referrals.
    Member,
}

/// A category (and optionally one subcategory) a specialist practice receives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intake {
    /// Category slug within the practice's specialty.
    pub category: String,
    /// Subcategory slug; `None` means every subcategory of the category.
    #[serde(default)]
    pub subcategory: Option<String>,
}

/// The practice's key as its creator publishes it: the HPKE public key derived
/// from the practice key, signed by the publishing member, so that outsiders
/// can encrypt referrals to the practice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticePublicKey {
    /// Key epoch (0 until MLS epochs replace it).
    pub epoch: u64,
    /// X25519 HPKE public key, 32 bytes.
    pub hpke_pub: B64,
    /// The member who published it.
    pub signer: UserId,
    /// Ed25519 signature by `signer` over the crypto crate's
    /// `practice_public_key_message(practice, epoch, hpke_pub)`.
    pub signature: B64,
}

/// A practice key sealed to one member's HPKE public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGrant {
    /// Key epoch.
    pub epoch: u64,
    /// HPKE encapsulated key followed by the ciphertext.
    pub sealed: B64,
    /// The member whose client made the grant.
    pub granted_by: UserId,
}

/// `POST /practices`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePracticeRequest {
    /// Client-generated id (UUIDv4); retrying with the same id and body is safe.
    pub id: PracticeId,
    /// Display name; also what the admin types to delete the practice.
    pub name: String,
    /// Referring or specialist.
    pub kind: PracticeKind,
    /// Specialist only: specialty slug.
    #[serde(default)]
    pub specialty: Option<String>,
    /// Specialist only: region slug.
    #[serde(default)]
    pub region: Option<String>,
    /// Specialist only: what it receives. Empty means every category of the specialty.
    #[serde(default)]
    pub intake: Vec<Intake>,
    /// Epoch-0 public key.
    pub public_key: PracticePublicKey,
    /// Epoch-0 practice key sealed to the creator.
    pub creator_grant: KeyGrant,
}

/// A practice as its members see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Practice {
    /// Id.
    pub id: PracticeId,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: PracticeKind,
    /// Specialty slug (specialists).
    pub specialty: Option<String>,
    /// Region slug (specialists).
    pub region: Option<String>,
    /// What it receives (specialists).
    pub intake: Vec<Intake>,
    /// Staff have verified it.
    pub verified: bool,
    /// Staff have paused its intake.
    pub paused: bool,
    /// Verified, not paused, and a specialist: referrals can be sent to it.
    pub can_receive: bool,
    /// The caller's role.
    pub my_role: Role,
    /// Current public key.
    pub public_key: PracticePublicKey,
    /// When it was created.
    pub created_at: UnixMillis,
}

/// `GET /practices`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PracticeList {
    /// Practices the caller belongs to.
    pub practices: Vec<Practice>,
}

/// A member, as other members see them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    /// The user.
    pub user_id: UserId,
    /// Their email.
    pub email: String,
    /// Their name.
    pub display_name: String,
    /// Their role.
    pub role: Role,
    /// Their Ed25519 public key.
    pub sign_pub: B64,
    /// Their HPKE public key (grants are sealed to it).
    pub hpke_pub: B64,
    /// Whether they hold a grant for the current key epoch.
    pub has_key: bool,
    /// Whether they get status emails for referrals this practice sent.
    pub email_on_status: bool,
    /// When they joined.
    pub joined_at: UnixMillis,
}

/// `GET /practices/{id}/members`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberList {
    /// Members.
    pub members: Vec<Member>,
    /// Invites not yet accepted.
    pub pending_invites: Vec<PendingInvite>,
}

/// An invite not yet accepted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingInvite {
    /// Addressed to.
    pub email: String,
    /// Role on joining.
    pub role: Role,
    /// Expires.
    pub expires_at: UnixMillis,
}

/// `POST /practices/{id}/invites`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Who to invite.
    pub email: String,
    /// Role on joining.
    pub role: Role,
}

/// `GET /invites/{token}`: what the link is for, shown before joining.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteInfo {
    /// The practice.
    pub practice_id: PracticeId,
    /// Its name.
    pub practice_name: String,
    /// Who sent it.
    pub invited_by: String,
    /// Addressed to.
    pub email: String,
    /// Whether an account already exists for that email (log in vs register).
    pub account_exists: bool,
}

/// `GET /practices/{id}/key`: the caller's grant and the public key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MyPracticeKey {
    /// The practice's current public key.
    pub public_key: PracticePublicKey,
    /// The caller's grant, absent until a member's client completes it.
    pub grant: Option<KeyGrant>,
}

/// A member still waiting for the practice key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingGrant {
    /// The member.
    pub user_id: UserId,
    /// Their email, to show who is waiting.
    pub email: String,
    /// Their HPKE public key to seal to.
    pub hpke_pub: B64,
    /// Their signing key, for the client's sanity checks.
    pub sign_pub: B64,
    /// Epoch the grant must be for.
    pub epoch: u64,
}

/// `GET /practices/{id}/key-grants/pending`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingGrants {
    /// Members without a grant for the current epoch.
    pub pending: Vec<PendingGrant>,
}

/// `DELETE /practices/{id}`: body confirming by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletePracticeRequest {
    /// Must equal the practice's name exactly.
    pub confirm_name: String,
}

/// An entry in the directory of practices that can receive referrals.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// The practice.
    pub id: PracticeId,
    /// Name.
    pub name: String,
    /// Specialty slug.
    pub specialty: String,
    /// Region slug.
    pub region: String,
    /// What it receives.
    pub intake: Vec<Intake>,
    /// Its public key, to encrypt referrals to.
    pub public_key: PracticePublicKey,
}

/// `GET /directory?specialty=&region=`: only verified, unpaused specialist practices.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Directory {
    /// Matching practices.
    pub practices: Vec<DirectoryEntry>,
}

/// A subcategory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subcategory {
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
}

/// A category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Subcategories.
    pub subcategories: Vec<Subcategory>,
}

/// A specialty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specialty {
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Categories.
    pub categories: Vec<Category>,
}

/// A health region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
}

/// `GET /taxonomy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxonomy {
    /// Regions.
    pub regions: Vec<Region>,
    /// Specialties, categories, subcategories.
    pub specialties: Vec<Specialty>,
}

/// `POST /admin/taxonomy`: staff add or rename one node.
/// `category` absent: the node is a specialty; `subcategory` absent: a category.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxonomyEdit {
    /// Specialty slug.
    pub specialty: String,
    /// Category slug, for a category or subcategory.
    #[serde(default)]
    pub category: Option<String>,
    /// Subcategory slug, for a subcategory.
    #[serde(default)]
    pub subcategory: Option<String>,
    /// The node's name (new or renamed).
    pub name: String,
}

/// `POST /practices/{id}/category-requests`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRequestCreate {
    /// The category name the practice wants added to its specialty.
    pub name: String,
    /// Why, for staff.
    #[serde(default)]
    pub note: String,
}

/// A category request, as staff see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CategoryRequest {
    /// Id.
    pub id: CategoryRequestId,
    /// Requesting practice.
    pub practice_id: PracticeId,
    /// Its name.
    pub practice_name: String,
    /// Specialty slug.
    pub specialty: String,
    /// Requested name.
    pub name: String,
    /// Note.
    pub note: String,
    /// `open`, `approved` or `declined`.
    pub status: String,
    /// When.
    pub created_at: UnixMillis,
}

/// `GET /admin/category-requests`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CategoryRequestList {
    /// Requests, newest first.
    pub requests: Vec<CategoryRequest>,
}

/// `POST /admin/category-requests/{id}/resolve`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveCategoryRequest {
    /// Approve adds the category (under `slug`); decline closes it.
    pub approve: bool,
    /// Slug for the new category when approving.
    #[serde(default)]
    pub slug: Option<String>,
}

/// A practice as platform staff see it: metadata only.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminPractice {
    /// Id.
    pub id: PracticeId,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: PracticeKind,
    /// Specialty.
    pub specialty: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Verified.
    pub verified: bool,
    /// Paused.
    pub paused: bool,
    /// Member count.
    pub members: u32,
    /// Created.
    pub created_at: UnixMillis,
}

/// `GET /admin/practices`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminPracticeList {
    /// Every practice.
    pub practices: Vec<AdminPractice>,
}

/// `GET /healthz`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"`.
    pub status: String,
    /// Schema version the store is at.
    pub schema_version: u32,
    /// Live practice actors (inbox streams) right now.
    pub live_practices: u64,
    /// Live referral actors right now.
    pub live_referrals: u64,
}

/// `GET /practices/{id}/referrals`: referrals the practice sent or received, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferralList {
    /// The referrals.
    pub referrals: Vec<crate::ws::Referral>,
}

/// `PUT /practices/{id}/notifications`: the caller's email preference for this practice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Email me when a referral this practice sent is accepted or rejected.
    pub email_on_status: bool,
}

/// `GET /users/{id}/keys`: a user's public keys (to verify their signatures).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserKeys {
    /// The user.
    pub user_id: UserId,
    /// Display name.
    pub display_name: String,
    /// Ed25519 public key.
    pub sign_pub: B64,
    /// HPKE public key.
    pub hpke_pub: B64,
}

/// `POST /blobs/{id}` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlobStored {
    /// The blob.
    pub id: crate::ws::BlobId,
    /// Its size.
    pub size: u64,
}
