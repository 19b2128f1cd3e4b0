//! Version 1 of the HTTP API, served under `/api/v1`.
//!
//! Request types deny unknown fields: a misspelt field is an `invalid_body`
//! error, never silently ignored.

use serde::{Deserialize, Serialize};

use crate::{B64, CategoryRequestId, GuestId, PracticeId, RoomId, UnixMillis, UserId};

/// Largest JSON body any v1 endpoint accepts, in bytes.
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Longest email address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest display or practice name.
pub const MAX_NAME_LEN: usize = 120;

/// The password-stretching parameters the client must use. The server pins
/// them so that every client derives the same keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreloginRequest {
    /// The account's email.
    pub email: String,
}

/// Public halves of a user's key pairs, and the private halves wrapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's email.
    pub email: String,
    /// See [`RegisterRequest::auth_key`].
    pub auth_key: B64,
}

/// Answer to `POST /auth/register`.
///
/// Without an invite, the answer is the same whether the address is free or
/// taken (so it reveals no account): a confirmation link was emailed, and the
/// account exists once the link is confirmed (`POST /account/confirm`). The
/// owner of a taken address is told by email instead. With an invite token
/// addressed to the email, the invite mail has already proven the address,
/// so the account is created and signed in at once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RegisterResponse {
    /// A confirmation link was emailed to the address.
    ConfirmationSent {
        /// What to tell the person ("check your email").
        message: String,
        /// Seconds the link stays valid.
        expires_in_secs: u64,
    },
    /// The account exists and is signed in (registration through an invite).
    SignedIn(SessionResponse),
}

/// `POST /account/confirm`: the token from the emailed confirmation link, and
/// proof of the password the registration was made with (so a link opened by
/// the address's owner cannot confirm a registration a stranger made with it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The token from the link.
    pub token: String,
    /// The auth key stretched from the registration's password with the
    /// parameters [`ConfirmParamsRequest`] returns (32 bytes).
    pub auth_key: B64,
}

/// `POST /account/confirm/params`: the key-derivation parameters (the salt
/// chosen at registration) of the registration a link's token names.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmParamsRequest {
    /// The token from the link.
    pub token: String,
}

/// Answer to register, login and recovery: the session and what the client
/// needs to unlock its keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoverStartRequest {
    /// The account's email.
    pub email: String,
    /// See [`RegisterRequest::kit_auth`].
    pub kit_auth: B64,
    /// With two-factor sign-in on, the kit alone is refused
    /// (`second_factor_needed`): a code from the authenticator app…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// …or one unused recovery code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// Answer to `recover/start`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoverStartResponse {
    /// The account.
    pub user_id: UserId,
    /// The private keys sealed under the kit KEK.
    pub wrapped_by_kit: B64,
    /// With two-factor sign-in on: proof of the factor given to `recover/start`,
    /// for `recover/finish` (a code works once, so it cannot be sent twice).
    /// Valid for ten minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor_token: Option<String>,
}

/// `POST /auth/recover/finish`: set a new password. All sessions are revoked.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// [`RecoverStartResponse::second_factor_token`], required when two-factor sign-in is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor_token: Option<String>,
}

/// The signed-in user, as the user sees themself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The server's idle timeout, seconds: a session unused this long is
    /// ended, and the client warns ahead of it (0 from a server that predates it).
    #[serde(default)]
    pub idle_timeout_secs: u64,
}

/// What a practice is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PracticeKind {
    /// Primary care: sends referrals.
    Referring,
    /// Receives referrals in a specialty once verified by staff.
    Specialist,
}

/// A member's role in a practice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Invites and removes members, deletes the practice.
    Admin,
    /// Works referrals.
    Member,
    /// Acts on behalf of a sponsoring member (a resident, a student, a
    /// scribe) between a start and an end date: works referrals like a
    /// member, but cannot invite, remove or change practice settings.
    Delegate,
}

/// A category (and optionally one subcategory) a specialist practice receives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Practice {
    /// The practice's id.
    pub id: PracticeId,
    /// The practice's display name.
    pub name: String,
    /// Referring or specialist.
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
    /// Whether it receives free referrals (from senders without an account);
    /// its admins set it with `PUT /practices/{id}/free-referrals`.
    pub accepts_free_referrals: bool,
}

/// `GET /practices`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PracticeList {
    /// Practices the caller belongs to.
    pub practices: Vec<Practice>,
}

/// A member, as other members see them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Before this their membership gives no access (an invited one only).
    #[serde(default)]
    pub starts_at: Option<UnixMillis>,
    /// From this their membership gives no access.
    #[serde(default)]
    pub ends_at: Option<UnixMillis>,
    /// For a delegate: the member they act on behalf of.
    #[serde(default)]
    pub sponsor: Option<UserId>,
}

/// `PUT /practices/{id}/members/{user}/dates`: a membership's dates.
/// `None` clears a date; a delegate keeps both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberDates {
    /// Start (only for a member who has not started yet).
    #[serde(default)]
    pub starts_at: Option<UnixMillis>,
    /// End.
    #[serde(default)]
    pub ends_at: Option<UnixMillis>,
}

/// `GET /practices/{id}/members`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberList {
    /// The practice's members.
    pub members: Vec<Member>,
    /// Invites not yet accepted.
    pub pending_invites: Vec<PendingInvite>,
}

/// An invite not yet accepted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingInvite {
    /// Addressed to.
    pub email: String,
    /// Role on joining.
    pub role: Role,
    /// When the invite stops working.
    pub expires_at: UnixMillis,
    /// When the membership will start giving access, if dated.
    #[serde(default)]
    pub starts_at: Option<UnixMillis>,
    /// When the membership will end, if dated.
    #[serde(default)]
    pub ends_at: Option<UnixMillis>,
}

/// `POST /practices/{id}/invites`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Who to invite.
    pub email: String,
    /// Role on joining. A delegate acts on behalf of the inviter.
    pub role: Role,
    /// When the membership starts giving access (required for a delegate).
    #[serde(default)]
    pub starts_at: Option<UnixMillis>,
    /// When the membership ends (required for a delegate).
    #[serde(default)]
    pub ends_at: Option<UnixMillis>,
}

/// `GET /invites/{token}`: what the link is for, shown before joining.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MyPracticeKey {
    /// The practice's current public key.
    pub public_key: PracticePublicKey,
    /// The caller's grant, absent until a member's client completes it.
    pub grant: Option<KeyGrant>,
}

/// A member still waiting for the practice key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingGrants {
    /// Members without a grant for the current epoch.
    pub pending: Vec<PendingGrant>,
}

/// `DELETE /practices/{id}`: body confirming by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeletePracticeRequest {
    /// Must equal the practice's name exactly.
    pub confirm_name: String,
}

/// An entry in the directory of practices that can receive referrals.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectoryEntry {
    /// The practice.
    pub id: PracticeId,
    /// The practice's display name.
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

/// The query of `GET /directory`: either filter may be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DirectoryQuery {
    /// Only practices of this specialty (slug).
    pub specialty: Option<String>,
    /// Only practices in this region (slug).
    pub region: Option<String>,
}

/// `GET /directory?specialty=&region=`: only verified, unpaused specialist practices.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Directory {
    /// Matching practices.
    pub practices: Vec<DirectoryEntry>,
}

/// A subcategory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subcategory {
    /// Stable identifier, lowercase with dashes.
    pub slug: String,
    /// The name shown to people.
    pub name: String,
}

/// A category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Category {
    /// Stable identifier, lowercase with dashes.
    pub slug: String,
    /// The name shown to people.
    pub name: String,
    /// The category's subcategories.
    pub subcategories: Vec<Subcategory>,
}

/// A specialty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Specialty {
    /// Stable identifier, lowercase with dashes.
    pub slug: String,
    /// The name shown to people.
    pub name: String,
    /// The specialty's categories.
    pub categories: Vec<Category>,
}

/// A health region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Region {
    /// Stable identifier, lowercase with dashes.
    pub slug: String,
    /// The name shown to people.
    pub name: String,
}

/// `GET /taxonomy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Taxonomy {
    /// Every health region.
    pub regions: Vec<Region>,
    /// Specialties, categories, subcategories.
    pub specialties: Vec<Specialty>,
}

/// `POST /admin/taxonomy`: staff add or rename one node.
/// `category` absent: the node is a specialty; `subcategory` absent: a category.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryRequest {
    /// The request's id.
    pub id: CategoryRequestId,
    /// Requesting practice.
    pub practice_id: PracticeId,
    /// Its name.
    pub practice_name: String,
    /// Specialty slug.
    pub specialty: String,
    /// Requested name.
    pub name: String,
    /// The practice's note for staff.
    pub note: String,
    /// Open until staff approve or decline it.
    pub status: CategoryRequestStatus,
    /// When the practice asked.
    pub created_at: UnixMillis,
}

/// Where a category request stands. The wire text is the snake_case name
/// (`"open"`, `"approved"`, `"declined"`), which is also what the store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CategoryRequestStatus {
    /// Waiting for staff.
    Open,
    /// Staff added the category.
    Approved,
    /// Staff closed it without adding the category.
    Declined,
}

impl CategoryRequestStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 3] = [Self::Open, Self::Approved, Self::Declined];

    /// The wire text, e.g. `"open"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approved => "approved",
            Self::Declined => "declined",
        }
    }
}

impl std::fmt::Display for CategoryRequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CategoryRequestStatus {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| UnknownWord { what: "category request status", word: s.into() })
    }
}

/// A word that names no variant of a wire enum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownWord {
    /// What the word was meant to name, e.g. `"practice action"`.
    pub what: &'static str,
    /// The word as given.
    pub word: String,
}

impl std::fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.word)
    }
}

impl std::error::Error for UnknownWord {}

/// `GET /admin/category-requests`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryRequestList {
    /// Requests, newest first.
    pub requests: Vec<CategoryRequest>,
}

/// `POST /admin/category-requests/{id}/resolve`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResolveCategoryRequest {
    /// Approve adds the category (under `slug`); decline closes it.
    pub approve: bool,
    /// Slug for the new category when approving.
    #[serde(default)]
    pub slug: Option<String>,
}

/// A staff action on a practice: the last segment of
/// `POST /admin/practices/{id}/{action}`, and the `handoff admin` CLI's
/// practice tasks. The wire text is the snake_case name (`"verify"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PracticeAction {
    /// Mark verified: it may receive referrals.
    Verify,
    /// Withdraw verification.
    Unverify,
    /// Stop intake.
    Pause,
    /// Resume intake.
    Unpause,
}

impl PracticeAction {
    /// Every action.
    pub const ALL: [Self; 4] = [Self::Verify, Self::Unverify, Self::Pause, Self::Unpause];

    /// The wire text, e.g. `"verify"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Unverify => "unverify",
            Self::Pause => "pause",
            Self::Unpause => "unpause",
        }
    }
}

impl std::fmt::Display for PracticeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PracticeAction {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| UnknownWord { what: "practice action", word: s.into() })
    }
}

/// A practice as platform staff see it: metadata only.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminPractice {
    /// The practice's id.
    pub id: PracticeId,
    /// The practice's display name.
    pub name: String,
    /// Referring or specialist.
    pub kind: PracticeKind,
    /// Specialty slug (specialists).
    pub specialty: Option<String>,
    /// Region slug (specialists).
    pub region: Option<String>,
    /// Staff have verified it.
    pub verified: bool,
    /// Staff have paused its intake.
    pub paused: bool,
    /// Member count.
    pub members: u32,
    /// When it was created.
    pub created_at: UnixMillis,
}

/// `GET /admin/practices`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminPracticeList {
    /// Every practice.
    pub practices: Vec<AdminPractice>,
}

/// `GET /healthz`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always `"ok"` when the server answers.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferralList {
    /// The referrals.
    pub referrals: Vec<crate::ws::Referral>,
}

/// One party practice of a referral with its current published key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartyKey {
    /// The practice (the referral's sender or receiver).
    pub practice: PracticeId,
    /// Its current epoch's public key, signed by the member who published it.
    pub public_key: PracticePublicKey,
}

/// `GET /referrals/{id}/keys`: the current public key of each of a
/// referral's practices that still exists, so that a client can wrap the key
/// of an item it adds (a thread message, a note, an attachment) to every
/// party's current epoch. Clients verify each key's signature before use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferralKeys {
    /// The sender's and the receiver's keys (a deleted practice is left out).
    pub practices: Vec<PartyKey>,
}

/// `PUT /practices/{id}/notifications`: the caller's email preference for this practice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Email me when a referral this practice sent is accepted or rejected.
    pub email_on_status: bool,
}

/// `GET /users/{id}/keys`: a user's public keys (to verify their signatures).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlobStored {
    /// The blob.
    pub id: crate::ws::BlobId,
    /// Its size.
    pub size: u64,
}

// The telehealth waiting room (issue 15, wt-rooms-server).

/// Longest room name, in characters.
pub const MAX_ROOM_NAME_LEN: usize = 100;
/// Largest sealed room secret or sealed external link, bytes.
pub const MAX_ROOM_SEALED: usize = 4 * 1024;
/// The shortest and longest wait, in minutes, after which a waiting guest is highlighted.
pub const WAIT_ALERT_MINUTES: std::ops::RangeInclusive<u32> = 1..=120;

/// How an admitted guest meets the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum RoomVideo {
    /// The clinic's own web-conference link, sealed under the room key.
    #[default]
    External,
    /// The browser's 1:1 WebRTC call, signalled through the room.
    BuiltIn,
}

/// What a room asks at check-in and how it meets. Nothing here is patient data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RoomSettings {
    /// Ask the patient's date of birth at check-in.
    #[serde(default)]
    pub ask_dob: bool,
    /// Ask the reason for the visit at check-in.
    #[serde(default)]
    pub ask_reason: bool,
    /// Minutes after which a waiting guest is highlighted ([`WAIT_ALERT_MINUTES`]; 5 by default).
    #[serde(default = "default_wait_alert_minutes")]
    pub wait_alert_minutes: u32,
    /// External link or built-in call.
    #[serde(default)]
    pub video: RoomVideo,
    /// The external meeting link sealed under the room key (at most
    /// [`MAX_ROOM_SEALED`] bytes); only hosts ever receive it.
    #[serde(default)]
    pub sealed_external_link: Option<B64>,
}

fn default_wait_alert_minutes() -> u32 {
    5
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            ask_dob: false,
            ask_reason: false,
            wait_alert_minutes: default_wait_alert_minutes(),
            video: RoomVideo::External,
            sealed_external_link: None,
        }
    }
}

/// `POST /practices/{practice}/rooms`: a new room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRoom {
    /// Client-generated id.
    pub id: RoomId,
    /// Display name (1 to [`MAX_ROOM_NAME_LEN`] characters), e.g. "Dr. Lee's virtual clinic".
    pub name: String,
    /// The room secret sealed under the practice key of `epoch` (at most [`MAX_ROOM_SEALED`] bytes).
    pub sealed_secret: B64,
    /// The practice key epoch `sealed_secret` is sealed under.
    pub epoch: u64,
    /// What the room asks and how it meets.
    #[serde(default)]
    pub settings: RoomSettings,
}

/// A room, as its practice's members see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    /// The room.
    pub id: RoomId,
    /// Its practice.
    pub practice: PracticeId,
    /// Display name.
    pub name: String,
    /// The patient link's token (server-made, 128 bits, unpadded base64url):
    /// the patient page is `/room/<link>#<secret>`; only the token reaches the server.
    pub link: String,
    /// The room secret, sealed under the practice key.
    pub sealed_secret: B64,
    /// The practice key epoch of `sealed_secret`.
    pub epoch: u64,
    /// What the room asks and how it meets.
    pub settings: RoomSettings,
    /// When it was created.
    pub created_at: UnixMillis,
}

/// `GET /practices/{practice}/rooms`: the practice's rooms, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomList {
    /// The rooms.
    pub rooms: Vec<Room>,
}

/// `PUT /practices/{practice}/rooms/{room}`: rename, or change the settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RoomUpdate {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// New settings (replacing the old ones whole).
    #[serde(default)]
    pub settings: Option<RoomSettings>,
}

/// `POST /practices/{practice}/rooms/{room}/rotate`: a new secret and a new
/// patient link; the old link answers `not_found` at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateRoom {
    /// The new room secret, sealed under the practice key of `epoch`.
    pub sealed_secret: B64,
    /// Its practice key epoch.
    pub epoch: u64,
}

/// `GET /rooms/{link}`: what the patient page needs before check-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomInfo {
    /// The room (bound into the room key's derivation).
    pub room: RoomId,
    /// The room's display name.
    pub name: String,
    /// The practice's display name.
    pub practice_name: String,
    /// Whether the check-in asks a date of birth.
    pub ask_dob: bool,
    /// Whether the check-in asks a reason.
    pub ask_reason: bool,
}

/// `POST /rooms/{link}/check-in`: a sealed check-in (at most [`crate::ws::MAX_CHECK_IN`] bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    /// The check-in sealed under the room key (name, optional date of birth
    /// and reason, the guest's ephemeral public key).
    pub sealed: B64,
}

/// The answer to a check-in: the guest's id and its token for `/ws?guest=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckedIn {
    /// The new guest.
    pub guest: GuestId,
    /// The guest token (256 bits, unpadded base64url): valid 12 hours, for
    /// this guest in this room on `/ws` only.
    pub token: String,
    /// When the check-in was recorded: the waiting list's order.
    pub checked_in_at: UnixMillis,
}

// The inbox snapshot (issue 16, wt-inbox).

/// How many rows a page of [`InboxPage`] holds when the query names no `limit`.
pub const INBOX_PAGE_DEFAULT: u32 = 50;
/// The most rows one page of [`InboxPage`] holds.
pub const INBOX_PAGE_MAX: u32 = 500;

/// `GET /practices/{id}/inbox?before=&limit=`, as the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Paging: only referrals older than this cursor (the previous page's
    /// `next_before`, opaque to clients); `validation_failed` if malformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// How many rows, 1 to [`INBOX_PAGE_MAX`] (default [`INBOX_PAGE_DEFAULT`]);
    /// `validation_failed` outside that range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One row of an [`InboxPage`]: a referral's current metadata, its sealed
/// content and wrapped keys as stored (never plaintext), and what the list
/// needs besides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxRow {
    /// The referral as it is now (status, routing, first open, attachments).
    pub referral: crate::ws::Referral,
    /// The head of the referral's own stream (`referral:<id>`) this row
    /// reflects: a client following that stream treats events up to it as
    /// already applied.
    pub seq: u64,
    /// How many of the referral's events someone other than the caller made
    /// (what the client's unread marks count).
    pub foreign: u64,
}

/// One page of a practice's referrals (sent and received), newest first,
/// with the practice stream's head at the moment the page was read.
/// Subscribing to `practice:<id>` from `head_seq` delivers every later event
/// exactly once: the page reflects every event up to it and none after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxPage {
    /// The practice.
    pub practice: PracticeId,
    /// The rows, newest first.
    pub rows: Vec<InboxRow>,
    /// The practice stream's head when the page was read.
    pub head_seq: u64,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<String>,
}

/// The cursor of an [`InboxPage`]: the last row's time and id.
pub fn inbox_cursor(created_at: UnixMillis, id: crate::ws::ReferralId) -> String {
    format!("{created_at}.{id}")
}

/// Reads an [`inbox_cursor`]; `None` if it is not one.
pub fn parse_inbox_cursor(s: &str) -> Option<(UnixMillis, crate::ws::ReferralId)> {
    let (at, id) = s.split_once('.')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn practice_actions_keep_their_wire_text() {
        let words: Vec<&str> = PracticeAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(words, ["verify", "unverify", "pause", "unpause"]);
        for a in PracticeAction::ALL {
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
            assert_eq!(a.as_str().parse::<PracticeAction>(), Ok(a));
        }
        let e = "delete".parse::<PracticeAction>().unwrap_err();
        assert_eq!(e.to_string(), "unknown practice action \"delete\"");
    }

    #[test]
    fn category_request_statuses_keep_their_wire_text() {
        let words: Vec<&str> = CategoryRequestStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words, ["open", "approved", "declined"]);
        for s in CategoryRequestStatus::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
            assert_eq!(s.as_str().parse::<CategoryRequestStatus>(), Ok(s));
        }
        assert!("pending".parse::<CategoryRequestStatus>().is_err());
    }

    #[test]
    fn an_inbox_cursor_reads_back_and_garbage_is_refused() {
        let id = crate::ws::ReferralId(uuid::Uuid::from_u128(5));
        assert_eq!(parse_inbox_cursor(&inbox_cursor(-3, id)), Some((-3, id)));
        for bad in ["", "12", "x.00000000-0000-0000-0000-000000000005", "12.nope", "12.5.5"] {
            assert_eq!(parse_inbox_cursor(bad), None, "{bad}");
        }
    }
}
