//! Every HTTP endpoint, defined once: its method, its route pattern, and the
//! types of its path parameters, request and response.
//!
//! The model is LSP's `Request` trait (`type Params; type Result; const
//! METHOD`): one zero-sized type per endpoint implements [`Endpoint`], and
//! [`ALL`] lists every endpoint's method and pattern. The server registers its
//! route table from these definitions (and a test checks that it serves
//! exactly [`ALL`]); the clients call endpoints by type, so no path is written
//! anywhere else (`cargo xtask test` refuses path literals outside this crate).
//!
//! How a request travels follows from its method and its types, the same way
//! for every client ([`Endpoint::request`], [`Endpoint::response`]):
//! - `GET`: the request is the query string. `()` means none; otherwise a
//!   struct of scalar fields, percent-encoded, with `None` fields left out
//!   (e.g. [`GetDirectory`] with [`DirectoryQuery`]).
//! - Other methods: the request is the JSON body, and `()` means no body.
//! - [`Octets`] as a request or a response is the raw bytes of an
//!   `application/octet-stream` body (attachment blobs). It has no serde
//!   implementation, so the generic JSON call refuses those endpoints at
//!   compile time; clients reach them with their byte calls.
//! - A response of `()` is an empty body (the server answers 204).
//! - Path parameters are [`PathParams`]: `()`, one [`Segment`] or a pair of
//!   them, filled into the pattern's `{name}` placeholders in order and
//!   percent-encoded. A compile-time check holds each endpoint's parameter
//!   type to its pattern's number of placeholders.
//!
//! [`API_PREFIX`] is part of every pattern except [`GetHealth`] and
//! [`OpenLive`] (the WebSocket at [`WS_PATH`]), which sit at the root.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::free::{
    Block, BlockList, CodeSent, DraftId, DraftVerified, FreeIntake, FreeSend, FreeSent, LiftBlock, NewBlock, StartDraft, VerifyCode,
};
use crate::mls::{ClaimedKeyPackage, KeyPackageCount, LogQuery, MlsLog, MlsLogEntry, MlsPending, MlsState, MlsWelcome, SubmitCommit};
use crate::mls::{ReportEpoch, UnreadableReferrals};
use crate::v1::*;
use crate::ws::{BlobId, Referral, ReferralId, WsQuery};
use crate::{CategoryRequestId, PracticeId, RoomId, UserId};

/// Writes a pattern under [`API_PREFIX`] (a literal, so that patterns stay constants).
macro_rules! v1 {
    ($path:literal) => {
        concat!("/api/v1", $path)
    };
}

/// The prefix of every endpoint of version 1 of the API.
pub const API_PREFIX: &str = v1!("");

/// Where the server serves the browsable reference of this API (Swagger UI
/// over [`GetOpenApi`]'s document): an HTML page, not an endpoint.
pub const DOCS_PATH: &str = "/api/docs";

/// The path of the live WebSocket ([`OpenLive`]).
pub const WS_PATH: &str = "/ws";

/// An HTTP method an endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`: reads; the request travels as the query string.
    Get,
    /// `POST`: creates or acts; the request is the JSON body.
    Post,
    /// `PUT`: replaces; the request is the JSON body.
    Put,
    /// `DELETE`: removes; a request other than `()` is the JSON body.
    Delete,
}

impl Method {
    /// The method as HTTP spells it (`"GET"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The raw bytes of an `application/octet-stream` body, as the request or the
/// response of an endpoint (attachment blobs). Never constructed: it only
/// names how the body travels.
#[derive(Debug)]
pub enum Octets {}

/// A `text/csv` download (the audit log's export): the body is CSV text, not
/// JSON. Never constructed: it only names how the body travels.
#[derive(Debug)]
pub enum Csv {}

/// The response of [`OpenLive`]: the connection turns into a WebSocket
/// (see [`crate::ws`]); there is no HTTP body to decode. Never constructed.
#[derive(Debug)]
pub enum Upgrade {}

/// One HTTP endpoint: where it is, and what travels in each direction.
pub trait Endpoint {
    /// The method it answers.
    const METHOD: Method;
    /// The route pattern, prefix included, with `{name}` placeholders for
    /// the path parameters (e.g. `/api/v1/practices/{id}/members`).
    const PATH: &'static str;
    /// The typed path parameters, in the pattern's order (`()` for none).
    type Path: PathParams;
    /// The query (for `GET`) or the JSON body (other methods); `()` for none.
    type Request;
    /// What a successful answer carries; `()` for an empty body.
    type Response;

    /// The concrete path for these parameters, without a query string.
    fn path(params: &Self::Path) -> String {
        params.fill(Self::PATH)
    }

    /// Everything an HTTP client needs to send this call: method, path with
    /// query string, and JSON body (see the module docs for the rules).
    fn request(params: &Self::Path, request: &Self::Request) -> Result<Prepared, EncodeError>
    where
        Self::Request: Serialize,
    {
        let mut path = Self::path(params);
        let value = serde_json::to_value(request).map_err(EncodeError::Json)?;
        let json = match (Self::METHOD, value) {
            (_, serde_json::Value::Null) => None,
            (Method::Get, value) => {
                let query = query_string(&value)?;
                if !query.is_empty() {
                    path.push('?');
                    path.push_str(&query);
                }
                None
            }
            (_, value) => Some(value.to_string()),
        };
        Ok(Prepared { method: Self::METHOD, path, json })
    }

    /// Decodes a successful answer's body (an empty body reads as JSON `null`,
    /// which is what `()` expects).
    fn response(body: &[u8]) -> Result<Self::Response, serde_json::Error>
    where
        Self::Response: DeserializeOwned,
    {
        serde_json::from_slice(if body.is_empty() { b"null" } else { body })
    }
}

/// A call ready for any HTTP client to send: prefix it with the server's
/// base URL, set the method, and send `json` (if any) as
/// `Content-Type: application/json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The endpoint's method.
    pub method: Method,
    /// The path with its parameters filled in and the query string, if any.
    pub path: String,
    /// The JSON body, absent when the request is `()` or a `GET` query.
    pub json: Option<String>,
}

/// Why a request could not be encoded.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// The request did not serialize to JSON.
    Json(serde_json::Error),
    /// A `GET` request is not a struct of scalar fields, so it has no query string; the
    /// text names the offending field or shape.
    NotAQuery(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Json(e) => write!(f, "the request does not serialize: {e}"),
            EncodeError::NotAQuery(what) => write!(f, "a GET request must be a struct of scalar fields: {what}"),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EncodeError::Json(e) => Some(e),
            EncodeError::NotAQuery(_) => None,
        }
    }
}

/// A `GET` request as `key=value&...`, `None` fields left out.
fn query_string(value: &serde_json::Value) -> Result<String, EncodeError> {
    use serde_json::Value;
    let Value::Object(fields) = value else {
        return Err(EncodeError::NotAQuery(format!("not a struct: {value}")));
    };
    let mut pairs = Vec::new();
    for (key, v) in fields {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => return Err(EncodeError::NotAQuery(format!("field `{key}` is not a scalar"))),
        };
        pairs.push(format!("{}={}", percent_encode(key), percent_encode(&text)));
    }
    Ok(pairs.join("&"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so the
/// text stays one path segment or one query value.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A value that can fill one `{name}` placeholder of a route pattern.
pub trait Segment: fmt::Display {}

impl Segment for PracticeId {}
impl Segment for UserId {}
impl Segment for CategoryRequestId {}
impl Segment for ReferralId {}
impl Segment for BlobId {}
impl Segment for PracticeAction {}
impl Segment for DraftId {}
impl Segment for RoomId {}
/// An invite token.
impl Segment for String {}

/// The typed path parameters of an endpoint: `()`, one [`Segment`], or a pair.
pub trait PathParams {
    /// How many placeholders these parameters fill.
    const ARITY: usize;
    /// The parameters as text, in order.
    fn segments(&self) -> Vec<String>;

    /// `pattern` with each `{name}` replaced by the next parameter,
    /// percent-encoded. A placeholder with no parameter left stays as written
    /// (the compile-time arity check rules that out for endpoints).
    fn fill(&self, pattern: &str) -> String {
        let mut values = self.segments().into_iter();
        let mut out = String::with_capacity(pattern.len() + 40);
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            let (before, from) = rest.split_at(open);
            out.push_str(before);
            let Some(close) = from.find('}') else {
                break;
            };
            let (placeholder, after) = from.split_at(close + 1);
            match values.next() {
                Some(v) => out.push_str(&percent_encode(&v)),
                None => out.push_str(placeholder),
            }
            rest = after;
        }
        out.push_str(rest);
        out
    }
}

impl PathParams for () {
    const ARITY: usize = 0;
    fn segments(&self) -> Vec<String> {
        Vec::new()
    }
}

impl<A: Segment> PathParams for A {
    const ARITY: usize = 1;
    fn segments(&self) -> Vec<String> {
        vec![self.to_string()]
    }
}

impl<A: Segment, B: Segment> PathParams for (A, B) {
    const ARITY: usize = 2;
    fn segments(&self) -> Vec<String> {
        vec![self.0.to_string(), self.1.to_string()]
    }
}

/// How many `{name}` placeholders a pattern has (for the compile-time arity check).
pub const fn placeholders(pattern: &str) -> usize {
    let mut rest = pattern.as_bytes();
    let mut n = 0;
    while let [b, tail @ ..] = rest {
        if *b == b'{' {
            n += 1;
        }
        rest = tail;
    }
    n
}

/// Declares the endpoints, their [`Endpoint`] impls, their arity checks and [`ALL`].
macro_rules! endpoints {
    ($($(#[doc = $doc:literal])* $name:ident: $method:ident $path:expr, $params:ty, $req:ty => $resp:ty;)*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct $name;

            impl Endpoint for $name {
                const METHOD: Method = Method::$method;
                const PATH: &'static str = $path;
                type Path = $params;
                type Request = $req;
                type Response = $resp;
            }

            const _: () = assert!(
                placeholders($path) == <$params as PathParams>::ARITY,
                concat!(stringify!($name), ": the path parameters do not match the pattern's placeholders")
            );
        )*

        /// Every endpoint's method and route pattern: exactly what the server serves.
        pub const ALL: &[(Method, &str)] = &[$((Method::$method, $path)),*];

        /// Adds every endpoint's operation to `paths` (its doc comment is the
        /// summary), and the schemas they name to `schemas`.
        #[cfg(feature = "openapi")]
        pub(crate) fn add_operations(paths: &mut utoipa::openapi::Paths, schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
            $(crate::openapi::add_operation::<$name>(stringify!($name), concat!($($doc, "\n"),*), paths, schemas);)*
        }

        /// The error codes the endpoint at `method` and `path` answers by its
        /// shape ([`crate::openapi::implied_errors`]); `None` for no endpoint.
        #[cfg(feature = "openapi")]
        pub(crate) fn implied_errors_of(method: Method, path: &str) -> Option<Vec<crate::ErrorCode>> {
            $(if method == Method::$method && path == $path {
                return Some(crate::openapi::implied_errors::<$name>());
            })*
            None
        }
    };
}

endpoints! {
    /// `GET /healthz`: liveness, schema version and actor counts (no session needed).
    GetHealth: Get "/healthz", (), () => Health;
    /// `GET /ws?v=1`: the live WebSocket ([`WS_PATH`]). A plain `GET` that is
    /// not an upgrade is refused after the same checks.
    OpenLive: Get "/ws", (), WsQuery => Upgrade;

    /// `POST /auth/prelogin`: the salt and parameters to stretch the password with.
    Prelogin: Post v1!("/auth/prelogin"), (), PreloginRequest => KdfParams;
    /// `POST /auth/register`: emails a confirmation link (or, with an invite,
    /// creates the account and signs it in).
    Register: Post v1!("/auth/register"), (), RegisterRequest => RegisterResponse;
    /// `POST /auth/login`: signs in with the auth key.
    Login: Post v1!("/auth/login"), (), LoginRequest => crate::two_factor::LoginResponse;
    /// `POST /auth/logout`: ends this session.
    Logout: Post v1!("/auth/logout"), (), () => ();
    /// `POST /auth/recover/start`: proves the kit, returns the kit-wrapped keys.
    RecoverStart: Post v1!("/auth/recover/start"), (), RecoverStartRequest => RecoverStartResponse;
    /// `POST /auth/recover/finish`: sets a new password and signs in.
    RecoverFinish: Post v1!("/auth/recover/finish"), (), RecoverFinishRequest => SessionResponse;
    /// `GET /me`: the signed-in account.
    GetMe: Get v1!("/me"), (), () => Me;
    /// `GET /taxonomy`: regions, specialties, categories (public reference data).
    GetTaxonomy: Get v1!("/taxonomy"), (), () => Taxonomy;
    /// `GET /directory?specialty=&region=`: practices that can receive referrals now.
    GetDirectory: Get v1!("/directory"), (), DirectoryQuery => Directory;

    /// `POST /practices`: creates a practice with its epoch-0 key.
    CreatePractice: Post v1!("/practices"), (), CreatePracticeRequest => Practice;
    /// `GET /practices`: the practices the caller belongs to.
    ListPractices: Get v1!("/practices"), (), () => PracticeList;
    /// `GET /practices/{id}`: one practice of the caller's.
    GetPractice: Get v1!("/practices/{id}"), PracticeId, () => Practice;
    /// `DELETE /practices/{id}`: deletes a practice, confirmed by its name.
    DeletePractice: Delete v1!("/practices/{id}"), PracticeId, DeletePracticeRequest => ();
    /// `GET /practices/{id}/members`: members and pending invites.
    ListMembers: Get v1!("/practices/{id}/members"), PracticeId, () => MemberList;
    /// `DELETE /practices/{id}/members/{user}`: removes a member (or leaves, for one's own id).
    RemoveMember: Delete v1!("/practices/{id}/members/{user}"), (PracticeId, UserId), () => ();
    /// `POST /practices/{id}/invites`: invites someone by email.
    InviteMember: Post v1!("/practices/{id}/invites"), PracticeId, InviteRequest => PendingInvite;
    /// `GET /practices/{id}/key`: the caller's grant and the practice's public key.
    GetPracticeKey: Get v1!("/practices/{id}/key"), PracticeId, () => MyPracticeKey;
    /// `GET /practices/{id}/key-grants/pending`: members still waiting for the key.
    ListPendingGrants: Get v1!("/practices/{id}/key-grants/pending"), PracticeId, () => PendingGrants;
    /// `PUT /practices/{id}/key-grants/{user}`: seals the practice key to a member.
    PutKeyGrant: Put v1!("/practices/{id}/key-grants/{user}"), (PracticeId, UserId), KeyGrant => ();
    /// `POST /practices/{id}/category-requests`: a specialist asks staff for a new category.
    RequestCategory: Post v1!("/practices/{id}/category-requests"), PracticeId, CategoryRequestCreate => CategoryRequest;
    /// `GET /practices/{id}/referrals`: referrals the practice sent or received.
    ListReferrals: Get v1!("/practices/{id}/referrals"), PracticeId, () => ReferralList;
    /// `PUT /practices/{id}/notifications`: the caller's email preference; answers it back.
    SetNotifications: Put v1!("/practices/{id}/notifications"), PracticeId, NotificationSettings => NotificationSettings;

    /// `GET /referrals/{id}`: one referral.
    GetReferral: Get v1!("/referrals/{id}"), ReferralId, () => Referral;
    /// `POST /blobs/{id}`: uploads an encrypted attachment as raw bytes.
    PutBlob: Post v1!("/blobs/{id}"), BlobId, Octets => BlobStored;
    /// `GET /blobs/{id}`: downloads an encrypted attachment as raw bytes.
    GetBlob: Get v1!("/blobs/{id}"), BlobId, () => Octets;
    /// `GET /users/{id}/keys`: a user's public keys.
    GetUserKeys: Get v1!("/users/{id}/keys"), UserId, () => UserKeys;
    /// `GET /invites/{token}`: what an invite link is for.
    GetInvite: Get v1!("/invites/{token}"), String, () => InviteInfo;
    /// `POST /invites/{token}/accept`: joins the practice as the signed-in user.
    AcceptInvite: Post v1!("/invites/{token}/accept"), String, () => Practice;

    /// `GET /admin/practices`: staff see every practice's metadata.
    AdminListPractices: Get v1!("/admin/practices"), (), () => AdminPracticeList;
    /// `POST /admin/practices/{id}/{action}`: staff verify, unverify, pause or unpause a practice.
    AdminPracticeAction: Post v1!("/admin/practices/{id}/{action}"), (PracticeId, PracticeAction), () => ();
    /// `POST /admin/taxonomy`: staff add or rename a taxonomy node.
    AdminEditTaxonomy: Post v1!("/admin/taxonomy"), (), TaxonomyEdit => ();
    /// `GET /admin/category-requests`: every category request, newest first.
    AdminListCategoryRequests: Get v1!("/admin/category-requests"), (), () => CategoryRequestList;
    /// `POST /admin/category-requests/{id}/resolve`: staff approve or decline a request.
    AdminResolveCategoryRequest: Post v1!("/admin/category-requests/{id}/resolve"), CategoryRequestId, ResolveCategoryRequest => ();

    /// `POST /mls/key-packages`: publishes fresh key packages.
    UploadKeyPackages: Post v1!("/mls/key-packages"), (), crate::mls::PublishKeyPackages => KeyPackageCount;
    /// `GET /mls/key-packages`: how many of the caller's key packages are unclaimed.
    CountKeyPackages: Get v1!("/mls/key-packages"), (), () => KeyPackageCount;
    /// `GET /mls/state`: the caller's sealed MLS state.
    LoadMlsState: Get v1!("/mls/state"), (), () => MlsState;
    /// `PUT /mls/state`: saves the sealed MLS state (compare-and-swap on the version).
    SaveMlsState: Put v1!("/mls/state"), (), crate::mls::PutMlsState => MlsState;
    /// `POST /practices/{id}/mls/commits`: submits the change that makes the next epoch.
    SubmitMlsCommit: Post v1!("/practices/{id}/mls/commits"), PracticeId, SubmitCommit => MlsLogEntry;
    /// `GET /practices/{id}/mls?after=E`: the practice's MLS log after epoch `E`.
    ReadMlsLog: Get v1!("/practices/{id}/mls"), PracticeId, LogQuery => MlsLog;
    /// `GET /practices/{id}/mls/welcome`: the welcome addressed to the caller.
    GetMlsWelcome: Get v1!("/practices/{id}/mls/welcome"), PracticeId, () => MlsWelcome;
    /// `GET /practices/{id}/mls/pending`: members the group must add or remove.
    GetMlsPending: Get v1!("/practices/{id}/mls/pending"), PracticeId, () => MlsPending;
    /// `POST /practices/{id}/members/{user}/key-package`: claims one of a member's key packages.
    ClaimKeyPackage: Post v1!("/practices/{id}/members/{user}/key-package"), (PracticeId, UserId), () => ClaimedKeyPackage;

    /// `GET /referrals/{id}/keys`: each party practice's current public key, to wrap an added item's key to.
    GetReferralKeys: Get v1!("/referrals/{id}/keys"), ReferralId, () => ReferralKeys;
    /// `POST /account/confirm`: confirms a registration from its emailed link,
    /// creates the account and signs it in.
    ConfirmAccount: Post v1!("/account/confirm"), (), ConfirmRequest => SessionResponse;
    /// `POST /account/confirm/params`: the salt and parameters to stretch the
    /// registration's password with, for the link's token.
    ConfirmParams: Post v1!("/account/confirm/params"), (), ConfirmParamsRequest => KdfParams;
    /// `POST /practices/{id}/mls/reports`: the caller's client cannot process an epoch of the practice's group.
    ReportMlsEpoch: Post v1!("/practices/{id}/mls/reports"), PracticeId, ReportEpoch => ();
    /// `GET /practices/{id}/mls/unreadable`: referrals this practice sent whose receiver's key was revoked since.
    ListUnreadableReferrals: Get v1!("/practices/{id}/mls/unreadable"), PracticeId, () => UnreadableReferrals;

    /// `POST /free/drafts`: emails a code to the sender's address (no session).
    StartFreeDraft: Post v1!("/free/drafts"), (), StartDraft => CodeSent;
    /// `POST /free/drafts/{id}/resend`: a new code for the same draft (the old one stops working).
    ResendFreeCode: Post v1!("/free/drafts/{id}/resend"), DraftId, () => CodeSent;
    /// `POST /free/drafts/{id}/verify`: the code; sets the draft cookie.
    VerifyFreeCode: Post v1!("/free/drafts/{id}/verify"), DraftId, VerifyCode => DraftVerified;
    /// `GET /free/directory?specialty=&region=`: practices that take free referrals now (verified draft).
    GetFreeDirectory: Get v1!("/free/directory"), (), DirectoryQuery => Directory;
    /// `POST /free/blobs/{id}`: an encrypted attachment owned by the verified draft.
    PutFreeBlob: Post v1!("/free/blobs/{id}"), BlobId, Octets => BlobStored;
    /// `POST /free/referrals`: sends the draft's one referral.
    SendFreeReferral: Post v1!("/free/referrals"), (), FreeSend => FreeSent;
    /// `PUT /practices/{id}/free-referrals`: an admin opts the practice in or out.
    SetFreeIntake: Put v1!("/practices/{id}/free-referrals"), PracticeId, FreeIntake => FreeIntake;
    /// `GET /admin/free-blocks`: staff list blocked senders.
    AdminListBlocks: Get v1!("/admin/free-blocks"), (), () => BlockList;
    /// `POST /admin/free-blocks`: staff block an email address or client address.
    AdminBlock: Post v1!("/admin/free-blocks"), (), NewBlock => Block;
    /// `DELETE /admin/free-blocks`: staff lift a block.
    AdminLiftBlock: Delete v1!("/admin/free-blocks"), (), LiftBlock => ();
    /// `GET /free/users/{id}/keys`: the account keys of a user who signed a
    /// practice key in the free directory, so a free sender checks each
    /// directory entry's signature as account holders do (verified draft).
    GetFreeSignerKeys: Get v1!("/free/users/{id}/keys"), UserId, () => UserKeys;
    /// `POST /auth/2fa`: the second sign-in step: a pending-login token and a code (or recovery code) make the session.
    SecondFactorSignIn: Post v1!("/auth/2fa"), (), crate::two_factor::SecondFactorLogin => SessionResponse;
    /// `GET /account/2fa`: whether two-factor sign-in is on, and how many recovery codes are left.
    GetTwoFactor: Get v1!("/account/2fa"), (), () => crate::two_factor::TwoFactorStatus;
    /// `POST /account/2fa/start`: a new TOTP secret and its otpauth URI, not in force until confirmed.
    StartTwoFactor: Post v1!("/account/2fa/start"), (), () => crate::two_factor::TwoFactorEnrollment;
    /// `POST /account/2fa/confirm`: one code from the new secret turns two-factor sign-in on; answers the recovery codes, once.
    ConfirmTwoFactor: Post v1!("/account/2fa/confirm"), (), crate::two_factor::SecondFactorProof => crate::two_factor::RecoveryCodes;
    /// `POST /account/2fa/disable`: a code or a recovery code turns two-factor sign-in off.
    DisableTwoFactor: Post v1!("/account/2fa/disable"), (), crate::two_factor::SecondFactorProof => ();
    /// `PUT /practices/{id}/require-2fa`: admins require two-factor sign-in of every member (or stop requiring it).
    RequirePracticeTwoFactor: Put v1!("/practices/{id}/require-2fa"), PracticeId, crate::two_factor::RequireTwoFactor => ();
    // Sessions (issue 14, "Sessions"; wt-sessions).
    /// `GET /account/sessions`: the signed-in user's sessions, with the one asking marked.
    ListSessions: Get v1!("/account/sessions"), (), () => crate::sessions::SessionList;
    /// `DELETE /account/sessions/{handle}`: ends one of the user's own sessions
    /// and closes its sockets; another user's handle is `not_found`.
    EndSession: Delete v1!("/account/sessions/{handle}"), String, () => ();
    /// `POST /account/sessions/end-others`: ends every session of the user but this one.
    EndOtherSessions: Post v1!("/account/sessions/end-others"), (), () => crate::sessions::SessionsEnded;
    // The audit log (wt-audit, issue 14).
    /// `GET /practices/{id}/audit`: one page of the practice's audit log, newest first (the practice's admins).
    GetPracticeAudit: Get v1!("/practices/{id}/audit"), PracticeId, crate::audit::AuditQuery => crate::audit::AuditPage;
    /// `GET /practices/{id}/audit.csv`: every entry matching the same filters, as CSV (the practice's admins).
    GetPracticeAuditCsv: Get v1!("/practices/{id}/audit.csv"), PracticeId, crate::audit::AuditQuery => Csv;
    /// `GET /admin/audit`: one page of the platform's audit log (staff).
    AdminGetAudit: Get v1!("/admin/audit"), (), crate::audit::AuditQuery => crate::audit::AuditPage;

    // The HTTP contract (issue 17, wt-openapi).
    /// `GET /openapi.json`: the OpenAPI 3.1 document of this API, generated from these definitions (no session needed).
    GetOpenApi: Get v1!("/openapi.json"), (), () => OpenApiDocument;

    // Membership with dates (issue 14, wt-members).
    /// `PUT /practices/{id}/members/{user}/dates`: an admin sets or changes a member's end date (and a not-yet-started member's start date).
    SetMemberDates: Put v1!("/practices/{id}/members/{user}/dates"), (PracticeId, UserId), MemberDates => Member;

    // The telehealth waiting room (issue 15, wt-rooms-server).
    /// `POST /practices/{id}/rooms`: a member creates a waiting room (the server makes its patient link).
    CreateRoom: Post v1!("/practices/{id}/rooms"), PracticeId, NewRoom => Room;
    /// `GET /practices/{id}/rooms`: the practice's waiting rooms, for its members.
    ListRooms: Get v1!("/practices/{id}/rooms"), PracticeId, () => RoomList;
    /// `PUT /practices/{id}/rooms/{room}`: a member renames a room or changes its settings.
    UpdateRoom: Put v1!("/practices/{id}/rooms/{room}"), (PracticeId, RoomId), RoomUpdate => Room;
    /// `POST /practices/{id}/rooms/{room}/rotate`: a member gives a room a new secret and patient link; the old link stops at once.
    RotateRoomLink: Post v1!("/practices/{id}/rooms/{room}/rotate"), (PracticeId, RoomId), RotateRoom => Room;
    /// `DELETE /practices/{id}/rooms/{room}`: a member deletes a room; its live sockets are told it ended.
    DeleteRoom: Delete v1!("/practices/{id}/rooms/{room}"), (PracticeId, RoomId), () => ();
    /// `GET /rooms/{link}`: what a patient holding the link sees before check-in (no session).
    GetRoomInfo: Get v1!("/rooms/{link}"), String, () => RoomInfo;
    /// `POST /rooms/{link}/check-in`: a patient checks in with a sealed check-in and gets a guest token (no session; rate-limited per address).
    CheckInRoom: Post v1!("/rooms/{link}/check-in"), String, CheckIn => CheckedIn;

    // The built-in video call (issue 15, wt-rooms-video).
    /// `GET /call/ice-servers`: the STUN/TURN servers browsers use for a built-in call (`HANDOFF_ICE_SERVERS`; no session needed: a patient's browser asks too).
    GetIceServers: Get v1!("/call/ice-servers"), (), () => crate::call::IceServers;
    // The inbox snapshot (issue 16, wt-inbox).
    /// `GET /practices/{id}/inbox?before=&limit=`: one page of the practice's referrals, newest first, with the practice stream's head (members who may read).
    GetInbox: Get v1!("/practices/{id}/inbox"), PracticeId, InboxQuery => InboxPage;
}

/// The response of [`GetOpenApi`]: an OpenAPI 3.1 document, as JSON.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct OpenApiDocument(pub serde_json::Value);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_is_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for (m, p) in ALL {
            assert!(seen.insert((*m, *p)), "{m} {p} is defined twice");
            assert!(p.starts_with(API_PREFIX) || [GetHealth::PATH, WS_PATH].contains(p), "{p} is outside {API_PREFIX}");
        }
        assert_eq!(OpenLive::PATH, WS_PATH);
        assert_eq!(API_PREFIX, "/api/v1");
    }

    #[test]
    fn paths_fill_placeholders_in_order() {
        let (p, u) = (PracticeId(uuid::Uuid::from_u128(1)), UserId(uuid::Uuid::from_u128(2)));
        assert_eq!(RemoveMember::path(&(p, u)), format!("/api/v1/practices/{p}/members/{u}"));
        assert_eq!(AdminPracticeAction::path(&(p, PracticeAction::Unpause)), format!("/api/v1/admin/practices/{p}/unpause"));
        assert_eq!(ListPractices::path(&()), "/api/v1/practices");
        assert_eq!(GetInvite::path(&"a/b?c".to_string()), "/api/v1/invites/a%2Fb%3Fc");
        assert_eq!(GetInvite::path(&"Az09-_".to_string()), "/api/v1/invites/Az09-_");
    }

    #[test]
    fn get_requests_travel_as_the_query() {
        let q = DirectoryQuery { specialty: Some("cardiology".into()), region: None };
        let r = GetDirectory::request(&(), &q).unwrap();
        assert_eq!(r, Prepared { method: Method::Get, path: "/api/v1/directory?specialty=cardiology".into(), json: None });
        let q = DirectoryQuery { specialty: Some("a b&c".into()), region: Some("r".into()) };
        assert_eq!(GetDirectory::request(&(), &q).unwrap().path, "/api/v1/directory?region=r&specialty=a%20b%26c");
        let none = DirectoryQuery { specialty: None, region: None };
        assert_eq!(GetDirectory::request(&(), &none).unwrap().path, "/api/v1/directory");
        let p = PracticeId(uuid::Uuid::from_u128(7));
        assert_eq!(ReadMlsLog::request(&p, &LogQuery { after: 3 }).unwrap().path, format!("/api/v1/practices/{p}/mls?after=3"));
        let ws = OpenLive::request(&(), &WsQuery { v: Some(crate::ws::PROTOCOL_VERSION), guest: None }).unwrap();
        assert_eq!(ws.path, "/ws?v=1");
    }

    #[test]
    fn other_requests_travel_as_json_or_nothing() {
        let r = Prelogin::request(&(), &PreloginRequest { email: "a@b.example".into() }).unwrap();
        assert_eq!(r.json.as_deref(), Some(r#"{"email":"a@b.example"}"#));
        assert_eq!(r.method, Method::Post);
        let r = Logout::request(&(), &()).unwrap();
        assert_eq!((r.path.as_str(), r.json), ("/api/v1/auth/logout", None));
        let p = PracticeId(uuid::Uuid::from_u128(9));
        let r = DeletePractice::request(&p, &DeletePracticeRequest { confirm_name: "X".into() }).unwrap();
        assert_eq!((r.method, r.json.as_deref()), (Method::Delete, Some(r#"{"confirm_name":"X"}"#)));
    }

    #[test]
    fn empty_answers_decode_as_unit() {
        Logout::response(b"").unwrap();
        let me = GetMlsWelcome::response(br#"{"epoch":2,"welcome":"AAE"}"#).unwrap();
        assert_eq!(me.epoch, 2);
        assert!(GetMe::response(b"").is_err());
    }

    #[test]
    fn placeholder_count() {
        assert_eq!(placeholders("/a/{x}/b/{y}"), 2);
        assert_eq!(placeholders("/a"), 0);
    }
}
