//! The OpenAPI 3.1 document of the HTTP API, built from the code (feature
//! `openapi`; the server enables it and serves the result).
//!
//! Nothing here is written twice: [`document`] walks the `endpoints!` list of
//! [`crate::api`] (each endpoint's method, pattern, path parameter types,
//! request and response types), so a new endpoint gets its operation by being
//! declared. What the types cannot say is the error codes an endpoint can
//! answer beyond those its shape implies; those are [`listed_errors`], one line per
//! endpoint, and `server/tests/integration/openapi.rs` fails for an endpoint
//! without one.
//!
//! How each endpoint becomes an operation:
//! - path parameters: one required `path` parameter per `{name}`, typed by
//!   the endpoint's [`crate::api::PathParams`] (ids are UUID strings);
//! - a `GET` request type: one `query` parameter per field of its schema,
//!   required when the field is;
//! - any other request type: the JSON body (`application/json`), or the raw
//!   bytes for [`Octets`] (`application/octet-stream`); `()` is no body;
//! - the response type: `204` for `()`, `101` for the WebSocket [`Upgrade`],
//!   the raw bytes for [`Octets`], otherwise a JSON `2XX` (the server answers
//!   200, 201 or 202 by endpoint);
//! - errors: one response per HTTP status among the endpoint's codes, whose
//!   body is [`crate::ErrorBody`] with `error` limited to those codes.

use std::any::TypeId;
use std::collections::BTreeMap;

use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AllOfBuilder, Components, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Content, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, Paths, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

use crate::ErrorCode;
use crate::api::{self, Csv, Endpoint, Method, Octets, PathParams, Upgrade};

/// The schemas a document refers to, by name, gathered while it is built.
type Schemas = Vec<(String, RefOr<Schema>)>;

/// The media type of JSON bodies.
const JSON: &str = "application/json";
/// The media type of CSV downloads ([`Csv`]).
const CSV: &str = "text/csv";
/// The media type of raw attachment bodies ([`Octets`]).
const OCTETS: &str = "application/octet-stream";

impl PartialSchema for Octets {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).content_media_type(OCTETS).description(Some("Raw bytes.")).into()
    }
}
impl ToSchema for Octets {}

impl PartialSchema for Csv {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).content_media_type(CSV).description(Some("CSV text (RFC 4180).")).into()
    }
}
impl ToSchema for Csv {}

impl PartialSchema for api::OpenApiDocument {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .required("openapi")
            .property("openapi", ObjectBuilder::new().schema_type(Type::String).pattern(Some("^3\\.1\\.")))
            .description(Some("An OpenAPI 3.1 document (this one)."))
            .into()
    }
}
impl ToSchema for api::OpenApiDocument {}

impl PartialSchema for Upgrade {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::empty().into()
    }
}
impl ToSchema for Upgrade {}

/// The error codes every endpoint can answer whatever it is: the store failed
/// (nothing was changed), or the server is starting or stopping.
pub const ALWAYS: &[ErrorCode] = &[Internal];

/// The codes an endpoint's shape implies, added to its [`listed_errors`] line:
/// a request other than `GET` from another site's page is `forbidden` (the
/// origin rule); a path parameter that names nothing (or is malformed) is `not_found`; a
/// `GET` query that does not parse is `validation_failed`; a JSON body can be
/// malformed, of the wrong shape, of the wrong media type or too large; a raw
/// body can be too large.
pub fn implied_errors<E: Endpoint>() -> Vec<ErrorCode>
where
    E::Request: 'static,
{
    let mut codes = ALWAYS.to_vec();
    if <E::Path as PathParams>::ARITY > 0 {
        codes.push(NotFound);
    }
    if E::METHOD != Method::Get {
        // The origin rule: a state-changing request from another site's page.
        codes.push(Forbidden);
    }
    let request = TypeId::of::<E::Request>();
    if request == TypeId::of::<Octets>() {
        codes.push(PayloadTooLarge);
    } else if request != TypeId::of::<()>() {
        if E::METHOD == Method::Get {
            codes.push(ValidationFailed);
        } else {
            codes.extend([MalformedJson, InvalidBody, UnsupportedMediaType, PayloadTooLarge]);
        }
    }
    codes
}

/// Every error code an endpoint answers, by method and pattern: its
/// [`listed_errors`] line with the [`implied_errors`] of its shape, sorted and
/// without repeats; `None` for an endpoint [`listed_errors`] has no line for.
pub fn errors_of(method: Method, path: &str) -> Option<Vec<ErrorCode>> {
    let (_, _, listed) = listed_errors().into_iter().find(|(m, p, _)| *m == method && *p == path)?;
    let mut codes = api::implied_errors_of(method, path).unwrap_or_default();
    codes.extend(listed);
    codes.sort_by_key(|c| c.as_str());
    codes.dedup();
    Some(codes)
}

/// Builds the whole document: every endpoint of [`api::ALL`], and the
/// schemas they name under `components`.
pub fn document() -> OpenApi {
    let mut schemas: Schemas =
        vec![(ErrorCode::name().into_owned(), ErrorCode::schema()), ("ErrorBody".into(), crate::ErrorBody::schema())];
    let mut paths = Paths::new();
    api::add_operations(&mut paths, &mut schemas);
    let mut components = Components::new();
    for (name, schema) in schemas {
        components.schemas.entry(name).or_insert(schema);
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("Handoff HTTP API").version(env!("CARGO_PKG_VERSION")).description(Some(
            "Generated from `handoff_protocol::api`. Every error body is `ErrorBody`; \
                     clients match on `error`. A signed-in call carries the `handoff_session` cookie \
                     (or `Authorization: Bearer <token>`). A `429` carries `Retry-After`.",
        )))
        .paths(paths)
        .components(Some(components))
        .build()
}

/// The operation for endpoint `E`, added to `paths`; the schemas it names go
/// to `schemas`. Called for every endpoint by `api::add_operations`.
pub(crate) fn add_operation<E>(name: &str, summary: &str, paths: &mut Paths, schemas: &mut Schemas)
where
    E: Endpoint,
    E::Path: PathSchemas,
    E::Request: ToSchema + 'static,
    E::Response: ToSchema + 'static,
{
    let mut op = OperationBuilder::new().operation_id(Some(name)).summary(Some(summary.trim()));
    let path_schemas = <E::Path as PathSchemas>::schemas();
    for (placeholder, schema) in placeholders(E::PATH).into_iter().zip(path_schemas) {
        op = op.parameter(
            ParameterBuilder::new().name(placeholder).parameter_in(ParameterIn::Path).required(Required::True).schema(Some(schema)),
        );
    }
    let request = TypeId::of::<E::Request>();
    if request == TypeId::of::<Octets>() {
        op = op.request_body(Some(
            RequestBodyBuilder::new().required(Some(Required::True)).content(OCTETS, Content::new(Some(Octets::schema()))).build(),
        ));
    } else if request != TypeId::of::<()>() {
        E::Request::schemas(schemas);
        if E::METHOD == Method::Get {
            for p in query_parameters(&E::Request::schema()) {
                op = op.parameter(p);
            }
        } else {
            schemas.push((E::Request::name().into_owned(), E::Request::schema()));
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(JSON, Content::new(Some(schema_ref::<E::Request>())))
                    .build(),
            ));
        }
    }
    let response = TypeId::of::<E::Response>();
    op = if response == TypeId::of::<()>() {
        op.response("204", ResponseBuilder::new().description("Done; no body."))
    } else if response == TypeId::of::<Upgrade>() {
        op.response(
            "101",
            ResponseBuilder::new()
                .description("Switching Protocols: the connection becomes the live WebSocket (see `handoff_protocol::ws`)."),
        )
    } else if response == TypeId::of::<Octets>() {
        op.response("200", ResponseBuilder::new().description("The raw bytes.").content(OCTETS, Content::new(Some(Octets::schema()))))
    } else if response == TypeId::of::<Csv>() {
        op.response("200", ResponseBuilder::new().description("A CSV download.").content(CSV, Content::new(Some(Csv::schema()))))
    } else {
        E::Response::schemas(schemas);
        schemas.push((E::Response::name().into_owned(), E::Response::schema()));
        op.response("2XX", ResponseBuilder::new().description("Success.").content(JSON, Content::new(Some(schema_ref::<E::Response>()))))
    };
    for (status, codes) in by_status(&errors_of(E::METHOD, E::PATH).unwrap_or_else(implied_errors::<E>)) {
        op = op.response(status.to_string(), error_response(&codes));
    }
    let method = match E::METHOD {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Delete => HttpMethod::Delete,
    };
    let op: Operation = op.build();
    let item = PathItem::new(method, op);
    match paths.paths.get_mut(E::PATH) {
        Some(existing) => existing.merge_operations(item),
        None => {
            paths.paths.insert(E::PATH.to_string(), item);
        }
    }
}

/// A reference to `T`'s named schema, or `T`'s schema itself when it is
/// unnamed (a `Vec`, an `Option`, a primitive).
fn schema_ref<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// The `{name}`s of a pattern, in order.
fn placeholders(pattern: &str) -> Vec<String> {
    pattern.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string())).collect()
}

/// One `query` parameter per property of a `GET` request's object schema.
fn query_parameters(schema: &RefOr<Schema>) -> Vec<Parameter> {
    let RefOr::T(Schema::Object(object)) = schema else {
        return Vec::new();
    };
    object
        .properties
        .iter()
        .map(|(name, schema)| {
            let required = if object.required.contains(name) { Required::True } else { Required::False };
            ParameterBuilder::new().name(name).parameter_in(ParameterIn::Query).required(required).schema(Some(schema.clone())).build()
        })
        .collect()
}

/// The codes grouped by their HTTP status.
fn by_status(codes: &[ErrorCode]) -> BTreeMap<u16, Vec<ErrorCode>> {
    let mut out: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        out.entry(code.http_status()).or_default().push(*code);
    }
    out
}

/// The response for one status: an [`crate::ErrorBody`] whose `error` is one of `codes`.
fn error_response(codes: &[ErrorCode]) -> ResponseBuilder {
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let only = ObjectBuilder::new().property("error", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names.clone())));
    let schema = AllOfBuilder::new().item(Ref::from_schema_name("ErrorBody")).item(only);
    ResponseBuilder::new().description(format!("An error: {}.", names.join(", "))).content(JSON, Content::new(Some(schema)))
}

/// The schemas of an endpoint's path parameters, in order (one per
/// placeholder). Implemented for `()`, one [`api::Segment`] and a pair.
pub trait PathSchemas {
    /// One schema per parameter.
    fn schemas() -> Vec<RefOr<Schema>>;
}

impl PathSchemas for () {
    fn schemas() -> Vec<RefOr<Schema>> {
        Vec::new()
    }
}

impl<A: api::Segment + PartialSchema> PathSchemas for A {
    fn schemas() -> Vec<RefOr<Schema>> {
        vec![A::schema()]
    }
}

impl<A: api::Segment + PartialSchema, B: api::Segment + PartialSchema> PathSchemas for (A, B) {
    fn schemas() -> Vec<RefOr<Schema>> {
        vec![A::schema(), B::schema()]
    }
}

use ErrorCode::*;

/// Declares [`listed_errors`]: per endpoint, the slices of codes it answers.
macro_rules! errors {
    ($($endpoint:ident: $($set:expr),+;)*) => {
        /// The error codes each endpoint answers beyond [`implied_errors`], by
        /// method and pattern: one line per endpoint of [`api::ALL`] (a test
        /// fails for an endpoint without one), read from its handler.
        pub fn listed_errors() -> Vec<(Method, &'static str, Vec<ErrorCode>)> {
            vec![$((api::$endpoint::METHOD, api::$endpoint::PATH, [$(&$set[..]),+].concat())),*]
        }
    };
}

/// A signed-in route's: no session, or one expired, revoked or idle.
const SIGNED_IN: &[ErrorCode] = &[Unauthenticated, SessionExpired, SessionIdle];
/// A route of one practice's, for its members: not a member (or no such
/// practice), or a member held back by the practice's two-factor requirement.
const MEMBER: &[ErrorCode] = &[NotFound, TwoFactorRequired];
/// A route for the practice's admins: [`MEMBER`]'s, and a member who is not an admin.
const ADMIN: &[ErrorCode] = &[NotFound, TwoFactorRequired, Forbidden];
/// A staff route: the caller is not staff.
const STAFF: &[ErrorCode] = &[Forbidden];
/// A body whose fields are checked: a value out of range, too long, or not an email.
const CHECKED: &[ErrorCode] = &[ValidationFailed];
/// A free referral route: no verified draft.
const DRAFT: &[ErrorCode] = &[DraftUnverified];
/// Nothing beyond what every route of its shape answers.
const NONE: &[ErrorCode] = &[];

errors! {
    GetHealth: &[Unavailable];
    OpenLive: SIGNED_IN, &[UnsupportedVersion, Forbidden, InvalidBody, TooManySockets, NoRoute, GuestRemoved];
    Prelogin: CHECKED, &[RateLimited];
    Register: CHECKED, &[RateLimited, EmailTaken, Conflict, InviteInvalid, InviteWrongAccount];
    Login: CHECKED, &[RateLimited, InvalidCredentials];
    Logout: SIGNED_IN;
    RecoverStart: CHECKED, &[RateLimited, InvalidRecoveryKit, SecondFactorNeeded, TwoFactorCodeWrong, RecoveryCodeUsed];
    RecoverFinish: CHECKED, &[RateLimited, InvalidRecoveryKit, SecondFactorNeeded, TwoFactorCodeWrong, RecoveryCodeUsed];
    GetMe: SIGNED_IN;
    GetTaxonomy: NONE;
    GetDirectory: SIGNED_IN;
    CreatePractice: SIGNED_IN, CHECKED, &[Conflict];
    ListPractices: SIGNED_IN;
    GetPractice: SIGNED_IN, MEMBER;
    DeletePractice: SIGNED_IN, ADMIN, &[ConfirmationMismatch];
    ListMembers: SIGNED_IN, MEMBER;
    RemoveMember: SIGNED_IN, ADMIN, &[LastAdmin];
    InviteMember: SIGNED_IN, ADMIN, CHECKED, &[Conflict, EmailUnconfirmed, RateLimited, InvalidDates];
    GetPracticeKey: SIGNED_IN, MEMBER;
    ListPendingGrants: SIGNED_IN, ADMIN;
    PutKeyGrant: SIGNED_IN, ADMIN, CHECKED, &[Conflict];
    RequestCategory: SIGNED_IN, MEMBER, CHECKED;
    ListReferrals: SIGNED_IN, MEMBER;
    SetNotifications: SIGNED_IN, MEMBER;
    GetReferral: SIGNED_IN, &[TwoFactorRequired];
    PutBlob: SIGNED_IN, CHECKED, &[Conflict, QuotaExceeded];
    GetBlob: SIGNED_IN, &[TwoFactorRequired];
    GetUserKeys: SIGNED_IN;
    GetInvite: &[InviteInvalid];
    AcceptInvite: SIGNED_IN, &[Conflict, InviteInvalid, InviteWrongAccount];
    AdminListPractices: SIGNED_IN, STAFF;
    AdminPracticeAction: SIGNED_IN, STAFF, &[NoRoute];
    AdminEditTaxonomy: SIGNED_IN, STAFF, CHECKED, &[Conflict, NotFound];
    AdminListCategoryRequests: SIGNED_IN, STAFF;
    AdminResolveCategoryRequest: SIGNED_IN, STAFF, CHECKED, &[Conflict];
    UploadKeyPackages: SIGNED_IN, CHECKED, &[MalformedMls, QuotaExceeded, KeyPackageUsed];
    CountKeyPackages: SIGNED_IN;
    LoadMlsState: SIGNED_IN, &[NotFound];
    SaveMlsState: SIGNED_IN, CHECKED, &[StaleState];
    SubmitMlsCommit: SIGNED_IN, MEMBER, CHECKED, &[Forbidden, GroupInfoRequired, InvalidCommit, NotMember, WrongRecipient, MalformedMls, StaleEpoch];
    ReadMlsLog: SIGNED_IN, MEMBER;
    GetMlsWelcome: SIGNED_IN, MEMBER;
    GetMlsPending: SIGNED_IN, MEMBER;
    ClaimKeyPackage: SIGNED_IN, MEMBER;
    GetReferralKeys: SIGNED_IN, &[TwoFactorRequired];
    ConfirmAccount: CHECKED, &[ConfirmationInvalid, InvalidCredentials, EmailTaken];
    ConfirmParams: &[ConfirmationInvalid];
    ReportMlsEpoch: SIGNED_IN, MEMBER, CHECKED;
    ListUnreadableReferrals: SIGNED_IN, MEMBER;
    StartFreeDraft: CHECKED, &[RateLimited, SenderBlocked];
    ResendFreeCode: &[RateLimited, SenderBlocked, CodeExpired];
    VerifyFreeCode: CHECKED, &[CodeExpired, CodeTriesExhausted, CodeWrong];
    GetFreeDirectory: DRAFT;
    PutFreeBlob: DRAFT, CHECKED, &[Conflict, QuotaExceeded, DraftUsed];
    SendFreeReferral: DRAFT, CHECKED, &[DraftUsed, SenderBlocked, NotEligible, NoEligiblePractice, StaleKey, IdempotencyConflict, Conflict];
    SetFreeIntake: SIGNED_IN, ADMIN, CHECKED;
    AdminListBlocks: SIGNED_IN, STAFF;
    AdminBlock: SIGNED_IN, STAFF, CHECKED;
    AdminLiftBlock: SIGNED_IN, STAFF, CHECKED;
    GetFreeSignerKeys: DRAFT;
    SecondFactorSignIn: CHECKED, &[RateLimited, SecondFactorNeeded, TwoFactorCodeWrong, RecoveryCodeUsed];
    GetTwoFactor: SIGNED_IN;
    StartTwoFactor: SIGNED_IN, &[Conflict];
    ConfirmTwoFactor: SIGNED_IN, CHECKED, &[Conflict, TwoFactorCodeWrong];
    DisableTwoFactor: SIGNED_IN, CHECKED, &[TwoFactorCodeWrong, RecoveryCodeUsed];
    RequirePracticeTwoFactor: SIGNED_IN, ADMIN;
    // The HTTP contract (issue 17, wt-openapi).
    GetOpenApi: NONE;
    ListSessions: SIGNED_IN;
    EndSession: SIGNED_IN;
    EndOtherSessions: SIGNED_IN;
    GetPracticeAudit: SIGNED_IN, ADMIN, CHECKED;
    GetPracticeAuditCsv: SIGNED_IN, ADMIN, CHECKED;
    AdminGetAudit: SIGNED_IN, STAFF, CHECKED;
    SetMemberDates: SIGNED_IN, ADMIN, CHECKED, &[InvalidDates, Conflict];
    // The telehealth waiting room (issue 15, wt-rooms-server).
    CreateRoom: SIGNED_IN, MEMBER, CHECKED, &[Forbidden, Conflict];
    ListRooms: SIGNED_IN, MEMBER;
    UpdateRoom: SIGNED_IN, MEMBER, CHECKED, &[Forbidden];
    RotateRoomLink: SIGNED_IN, MEMBER, CHECKED, &[Forbidden];
    DeleteRoom: SIGNED_IN, MEMBER, &[Forbidden];
    GetRoomInfo: NONE;
    CheckInRoom: CHECKED, &[RateLimited, RoomFull];
    // The built-in video call (issue 15, wt-rooms-video).
    GetIceServers: NONE;
    // The inbox snapshot (issue 16, wt-inbox).
    GetInbox: SIGNED_IN, MEMBER, CHECKED;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_reads_back_as_utoipas_openapi_model() {
        let text = serde_json::to_string(&document()).unwrap();
        let back: OpenApi = serde_json::from_str(&text).unwrap();
        assert_eq!(back.paths.paths.len(), document().paths.paths.len());
    }

    #[test]
    fn an_endpoint_with_several_methods_on_one_path_keeps_every_operation() {
        let doc = document();
        let item = doc.paths.get_path_item(api::ListPractices::PATH).unwrap();
        assert!(item.get.is_some() && item.post.is_some(), "GET and POST /practices");
    }

    #[test]
    fn placeholders_are_read_in_order() {
        assert_eq!(placeholders("/a/{id}/b/{user}"), vec!["id".to_string(), "user".to_string()]);
    }
}
