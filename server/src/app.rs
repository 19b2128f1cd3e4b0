//! Assembling the app: store, mailer, routes, error handlers, and the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::dev::ServerHandle;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::middleware::Logger;
use actix_web::{App, FromRequest, Handler, HttpRequest, HttpResponse, Responder, guard, web};

use handoff_actors::mailer::{Mailer, MailerConfig, Transport};
use handoff_protocol::ErrorCode;
use handoff_protocol::api::*;
use handoff_protocol::v1::{Health, MAX_JSON_BODY, Taxonomy};
use handoff_store::Store;
use handoff_store::sqlite::SqliteStore;

use crate::config::Config;
use crate::error::ApiError;
use crate::ratelimit::{Limits, RateLimiter};
use crate::state::{AppState, random_bytes};
use crate::{admin, audit, auth, free, live, mls, origin, practices, referrals, sessions, two_factor};

/// The taxonomy compiled into the binary, from `migrations/seed/taxonomy.json`.
pub const TAXONOMY_SEED: &str = include_str!("../../migrations/seed/taxonomy.json");

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be opened, migrated or seeded.
    #[error("store: {0}")]
    Store(#[from] handoff_store::StoreError),
    /// The taxonomy seed file is invalid.
    #[error("taxonomy seed: {0}")]
    Seed(String),
    /// Mail settings are invalid.
    #[error("mail: {0}")]
    Mail(#[from] handoff_actors::mailer::MailError),
    /// Binding the socket failed.
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// Anything else at start-up.
    #[error("{0}")]
    Other(String),
    /// The web client in `static_dir` could not be read.
    #[error(transparent)]
    Static(#[from] crate::static_files::SiteError),
}

/// Start-up's store calls (open, seed the taxonomy, read the server secret) all fail as [`StartError::Store`].
macro_rules! start_error_from_store {
    ($($e:ty),*) => {$(
        impl From<$e> for StartError {
            fn from(e: $e) -> Self {
                StartError::Store(e.into())
            }
        }
    )*};
}

start_error_from_store!(handoff_store::OpenError, handoff_store::TaxonomyError, handoff_store::UserError, handoff_store::LimitError);

/// Parses and checks a taxonomy seed document.
pub fn parse_taxonomy(text: &str) -> Result<Taxonomy, StartError> {
    #[derive(serde::Deserialize)]
    struct Seed {
        version: u32,
        #[serde(flatten)]
        taxonomy: Taxonomy,
    }
    let seed: Seed = serde_json::from_str(text).map_err(|e| StartError::Seed(e.to_string()))?;
    if seed.version != 1 {
        return Err(StartError::Seed(format!("unsupported seed version {}", seed.version)));
    }
    Ok(seed.taxonomy)
}

/// Opens the store, seeds it, starts the mailer: everything but the socket.
pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    let store = SqliteStore::open(&config.data)?;
    store.set_group_commit(config.group_commit);
    let store: Arc<dyn Store> = Arc::new(store);
    let seed_text = match &config.taxonomy_seed {
        Some(p) => std::fs::read_to_string(p).map_err(|e| StartError::Seed(format!("{}: {e}", p.display())))?,
        None => TAXONOMY_SEED.to_string(),
    };
    if store.seed_taxonomy(&parse_taxonomy(&seed_text)?).await? {
        tracing::info!("taxonomy seeded");
    }
    let secret = store.server_secret("prelogin_decoy_salt", random_bytes(32).map_err(|e| StartError::Other(e.to_string()))?).await?;
    let transport = match &config.smtp_url {
        Some(url) => Transport::Smtp(url.clone()),
        None => {
            let dir = config.data.join("mail");
            tracing::info!(folder = %dir.display(), "no SMTP configured: outgoing mail is written to this folder");
            Transport::Folder(dir)
        }
    };
    let mailer = Mailer::new(
        store.clone(),
        MailerConfig {
            transport,
            from: config.mail_from.clone(),
            poll: Duration::from_millis(config.mail_poll_ms.max(10)),
            backoff_base: Duration::from_millis(config.mail_backoff_ms),
            backoff_max: Duration::from_millis(config.mail_backoff_max_ms),
        },
    )?
    .start();
    let metrics = Arc::new(handoff_actors::metrics::Metrics::new());
    let hub = handoff_actors::hub::Hub::start(
        store.clone(),
        mailer.clone(),
        handoff_actors::hub::HubConfig {
            public_url: config.public_url(),
            idle: Duration::from_secs(config.actor_idle_secs.max(1)),
            metrics: metrics.clone(),
            clock: config.clock.clone(),
            ..Default::default()
        },
    );
    let limit_secret = store.server_secret("rate_limit_keys", random_bytes(32).map_err(|e| StartError::Other(e.to_string()))?).await?;
    let limiter = RateLimiter::load(store.clone(), limit_secret, Duration::from_secs(config.rate_window_secs), Limits::of(&config)).await?;
    let free_secret = store.server_secret("free_code_keys", random_bytes(32).map_err(|e| StartError::Other(e.to_string()))?).await?;
    let config_idle = config.session_idle();
    Ok(AppState {
        hub,
        limiter: Arc::new(limiter),
        store,
        config: Arc::new(config),
        mailer,
        prelogin_secret: Arc::new(secret),
        sockets: Arc::default(),
        free_secret: Arc::new(free_secret),
        metrics,
        sessions: Arc::new(sessions::Sessions::new(config_idle)),
    })
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, format!("the body is larger than {limit} bytes"))
        }
        JsonPayloadError::ContentType => ApiError::new(ErrorCode::UnsupportedMediaType, "send Content-Type: application/json"),
        JsonPayloadError::Deserialize(de) if de.is_data() => ApiError::new(ErrorCode::InvalidBody, format!("invalid request body: {de}")),
        JsonPayloadError::Deserialize(de) => ApiError::new(ErrorCode::MalformedJson, format!("the body is not valid JSON: {de}")),
        other => ApiError::new(ErrorCode::MalformedJson, format!("could not read the body: {other}")),
    };
    e.into()
}

fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    // A malformed id cannot name anything: the same answer as an unknown one.
    ApiError::not_found("object").into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::invalid_query(err).into()
}

async fn no_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_route())
}

async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let v = state.store.schema_version().await.map_err(|_| ApiError::new(ErrorCode::Unavailable, "store unavailable"))?;
    let (p, r) = state.hub.live();
    Ok(HttpResponse::Ok().json(Health { status: "ok".into(), schema_version: v, live_practices: p as u64, live_referrals: r as u64 }))
}

/// Registers endpoints from their [`Endpoint`] definitions inside one scope
/// (the path literals live in `protocol` only), and records each route as
/// served: its method and full pattern.
struct Table<'c> {
    cfg: &'c mut web::ServiceConfig,
    /// The scope's prefix: what the scope itself adds to each pattern.
    prefix: &'static str,
    served: Vec<(Method, String)>,
}

impl<'c> Table<'c> {
    fn new(cfg: &'c mut web::ServiceConfig, prefix: &'static str) -> Self {
        Self { cfg, prefix, served: Vec::new() }
    }

    /// The pattern to register inside the scope, recorded with what the scope
    /// makes of it. An endpoint outside the scope is registered (and
    /// recorded) under the scope's prefix anyway, so the route test catches it.
    fn pattern<E: Endpoint>(&mut self) -> &'static str {
        let inner = E::PATH.strip_prefix(self.prefix).unwrap_or(E::PATH);
        self.served.push((E::METHOD, format!("{}{inner}", self.prefix)));
        inner
    }

    /// Serves `E` with `handler`; other methods on the same path fall through
    /// to the next route (as `ServiceConfig::route` does).
    fn at<E: Endpoint, F, Args>(&mut self, _: E, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let pattern = self.pattern::<E>();
        self.cfg.route(pattern, web::method(http_method(E::METHOD)).to(handler));
        self
    }

    /// As [`Table::at`], with `data` (e.g. a larger body limit) for this route only.
    fn at_with<E: Endpoint, F, Args, D: 'static>(&mut self, _: E, data: D, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let pattern = self.pattern::<E>();
        let method = http_method(E::METHOD);
        self.cfg.service(web::resource(pattern).guard(guard::Method(method.clone())).app_data(data).route(web::method(method).to(handler)));
        self
    }
}

fn http_method(m: Method) -> actix_web::http::Method {
    match m {
        Method::Get => actix_web::http::Method::GET,
        Method::Post => actix_web::http::Method::POST,
        Method::Put => actix_web::http::Method::PUT,
        Method::Delete => actix_web::http::Method::DELETE,
    }
}

/// Registers every route on an actix `ServiceConfig`, and returns the route
/// table as registered: each endpoint's method and full pattern, in order.
/// `tests/integration/routes.rs` holds it equal to `handoff_protocol::api::ALL`.
pub fn routes(cfg: &mut web::ServiceConfig) -> Vec<(Method, String)> {
    let mut root = Table::new(cfg, "");
    root.at(GetHealth, healthz).at(OpenLive, live::ws);
    let mut served = root.served;
    let mut api = Vec::new();
    cfg.service(
        web::scope(API_PREFIX)
            .configure(|c| {
                let mut t = Table::new(c, API_PREFIX);
                api_routes(&mut t);
                api = t.served;
            })
            .default_service(web::to(no_route)),
    );
    served.extend(api);
    served
}

/// The `/api/v1` routes, in match order (a `GET` of `/practices/{id}/key-grants/pending`
/// must meet its own route before `PUT /practices/{id}/key-grants/{user}`'s).
fn api_routes(t: &mut Table<'_>) {
    t.at(Prelogin, auth::prelogin)
        .at(Register, auth::register)
        .at(Login, auth::login)
        .at(Logout, auth::logout)
        .at(RecoverStart, auth::recover_start)
        .at(RecoverFinish, auth::recover_finish)
        .at(GetMe, auth::me)
        .at(GetTaxonomy, practices::taxonomy)
        .at(GetDirectory, practices::directory)
        .at(CreatePractice, practices::create)
        .at(ListPractices, practices::list)
        .at(GetPractice, practices::get)
        .at(DeletePractice, practices::delete)
        .at(ListMembers, practices::members)
        .at(RemoveMember, practices::remove_member)
        .at(InviteMember, practices::invite)
        .at(GetPracticeKey, practices::my_key)
        .at(ListPendingGrants, practices::pending_grants)
        .at(PutKeyGrant, practices::put_grant)
        .at(RequestCategory, practices::request_category)
        .at(ListReferrals, referrals::list)
        .at(SetNotifications, referrals::set_notifications)
        .at(GetReferral, referrals::get_referral)
        .at(PutBlob, referrals::put_blob)
        .at(GetBlob, referrals::get_blob)
        .at(GetUserKeys, referrals::user_keys)
        .at(GetInvite, practices::invite_info)
        .at(AcceptInvite, practices::accept_invite)
        .at(AdminListPractices, admin::practices)
        .at(AdminPracticeAction, admin::practice_action)
        .at(AdminEditTaxonomy, admin::edit_taxonomy)
        .at(AdminListCategoryRequests, admin::category_requests)
        .at(AdminResolveCategoryRequest, admin::resolve_category_request);
    // The MLS delivery service: bodies up to MAX_MLS_BODY (a commit adding
    // many members, its welcome, a user's whole sealed state).
    let json = || web::JsonConfig::default().error_handler(json_error).limit(mls::MAX_MLS_BODY);
    t.at_with(UploadKeyPackages, json(), mls::publish_key_packages)
        .at_with(CountKeyPackages, json(), mls::my_key_packages)
        .at_with(LoadMlsState, json(), mls::get_state)
        .at_with(SaveMlsState, json(), mls::put_state);
    // One resource for every method: a commit with another method is 405.
    let pattern = t.pattern::<SubmitMlsCommit>();
    t.cfg.service(
        web::resource(pattern)
            .app_data(json())
            .app_data(web::PayloadConfig::new(mls::MAX_MLS_BODY))
            .route(web::method(http_method(SubmitMlsCommit::METHOD)).to(mls::submit)),
    );
    t.at(ReadMlsLog, mls::log).at(GetMlsWelcome, mls::welcome).at(GetMlsPending, mls::pending).at(ClaimKeyPackage, mls::claim_key_package);
    t.at(GetReferralKeys, referrals::party_keys);
    // Registration confirmed by its emailed link.
    t.at(ConfirmAccount, auth::confirm).at(ConfirmParams, auth::confirm_params);
    t.at(ReportMlsEpoch, mls::report).at(ListUnreadableReferrals, mls::unreadable);
    // Free referrals: drafts verified by an emailed code, no session.
    t.at(StartFreeDraft, free::start)
        .at(ResendFreeCode, free::resend)
        .at(VerifyFreeCode, free::verify)
        .at(GetFreeDirectory, free::directory)
        .at(PutFreeBlob, free::put_blob)
        .at(SendFreeReferral, free::send)
        .at(SetFreeIntake, free::set_intake)
        .at(AdminListBlocks, admin::free_blocks)
        .at(AdminBlock, admin::add_free_block)
        .at(AdminLiftBlock, admin::lift_free_block)
        .at(GetFreeSignerKeys, free::signer_keys);
    // Two-factor sign-in.
    t.at(SecondFactorSignIn, two_factor::sign_in)
        .at(GetTwoFactor, two_factor::status)
        .at(StartTwoFactor, two_factor::start)
        .at(ConfirmTwoFactor, two_factor::confirm)
        .at(DisableTwoFactor, two_factor::disable)
        .at(RequirePracticeTwoFactor, two_factor::require);
    // Sessions (issue 14; wt-sessions). `end-others` comes before `{handle}`,
    // whose pattern would match it too.
    t.at(ListSessions, sessions::list).at(EndOtherSessions, sessions::end_others).at(EndSession, sessions::end_one);
    // The audit log (wt-audit).
    t.at(GetPracticeAudit, audit::practice_log).at(GetPracticeAuditCsv, audit::practice_csv).at(AdminGetAudit, audit::platform_log);
    // The HTTP contract (issue 17, wt-openapi).
    t.at(GetOpenApi, crate::api_docs::openapi_json);
    // Membership with dates (issue 14, wt-members).
    t.at(SetMemberDates, practices::set_dates);
    // The telehealth waiting room (issue 15, wt-rooms-server).
    t.at(CreateRoom, crate::rooms::create)
        .at(ListRooms, crate::rooms::list)
        .at(UpdateRoom, crate::rooms::update)
        .at(RotateRoomLink, crate::rooms::rotate)
        .at(DeleteRoom, crate::rooms::delete)
        .at(GetRoomInfo, crate::rooms::info)
        .at(CheckInRoom, crate::rooms::check_in);
    // The built-in video call (issue 15, wt-rooms-video).
    t.at(GetIceServers, ice_servers);
    // The inbox snapshot (issue 16, wt-inbox).
    t.at(GetInbox, referrals::inbox);
}

/// `GET /call/ice-servers`: the configured STUN/TURN servers, to anyone (a
/// patient's browser has no session). They are deployment settings, not
/// secrets of any user: see the README on TURN credentials.
async fn ice_servers(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(handoff_protocol::call::IceServers { ice_servers: state.config.ice_servers.clone() }))
}

fn app_config(
    state: AppState,
    site: Option<web::Data<crate::static_files::Site>>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state.clone()))
            .app_data(web::JsonConfig::default().limit(MAX_JSON_BODY).error_handler(json_error))
            .app_data(web::PayloadConfig::new(MAX_JSON_BODY))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .configure(|c| {
                routes(c);
            })
            // The API reference (issue 17, wt-openapi): outside the route table, like the static client.
            .configure(crate::api_docs::routes);
        if let Some(site) = site.clone() {
            crate::static_files::configure(cfg, site);
        } else {
            cfg.default_service(web::to(no_route));
        }
    }
}

/// A running server on its own thread and actix system.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The metrics listener's bound address, when `metrics_bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops gracefully and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            let h = self.handle.clone();
            // `stop` must be driven by some executor. A tiny runtime on its own
            // thread works whether or not the caller is inside a runtime.
            let stopper = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(h.stop(true));
                }
            });
            let _ = stopper.join();
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A bound server, not yet running.
pub struct Bound {
    /// The server future; await it to serve.
    pub server: actix_web::dev::Server,
    /// The bound address.
    pub addr: SocketAddr,
    /// The live hub, to stop after the server.
    pub hub: Arc<handoff_actors::hub::Hub>,
    /// The metrics listener's bound address, when `metrics_bind` is set.
    pub metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Bound {
    /// Serves until stopped, then stops the hub's actors.
    pub async fn serve(self) -> std::io::Result<()> {
        let r = self.server.await;
        self.hub.stop();
        r
    }
}

/// Connections each worker holds at most (actix-server's own default is
/// 25,000). The open-file limit is usually the tighter bound; README.md says how
/// to raise both.
pub const MAX_CONNECTIONS_PER_WORKER: usize = 100_000;
/// Listen backlog: connections the kernel queues before they are accepted (a
/// reconnect storm arrives at once).
const BACKLOG: i32 = 2048;

/// A listening socket on `addr` (address reuse on, so a restart can bind at once).
fn listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// Builds and binds the server.
///
/// This is actix-web's `HttpServer` taken apart by one step: the same App on
/// actix-http's HTTP/1 service, plus an upgrade service, so that WebSocket
/// upgrades get their socket from the HTTP/1 dispatcher instead of running
/// inside it (`live.rs` says why).
pub async fn bind(config: Config) -> Result<Bound, StartError> {
    let bind_addr = config.bind;
    let metrics_bind = config.metrics_bind;
    // The site is read before the store opens, so a wrong `static_dir` fails at once.
    let site = config.static_dir.as_deref().map(crate::static_files::Site::load).transpose()?.map(web::Data::new);
    let https = config.secure_cookies();
    let state = build_state(config).await?;
    crate::sweep::start(state.store.clone(), state.config.clone(), state.sessions.clone());
    crate::terms::start(state.clone());
    let hub = state.hub.clone();
    let configure = app_config(state.clone(), site);
    let lst = listener(bind_addr).map_err(|e| StartError::Bind(bind_addr, e))?;
    let addr = lst.local_addr().map_err(|e| StartError::Bind(bind_addr, e))?;
    let metrics_lst = match metrics_bind {
        Some(m) => {
            let l = listener(m).map_err(|e| StartError::Bind(m, e))?;
            let a = l.local_addr().map_err(|e| StartError::Bind(m, e))?;
            Some((l, a))
        }
        None => None,
    };
    let metrics_state = state.clone();
    let mut builder = actix_server::Server::build()
        .max_concurrent_connections(MAX_CONNECTIONS_PER_WORKER)
        .shutdown_timeout(5)
        .listen("handoff", lst, move || {
            let state = state.clone();
            let metrics = state.metrics.clone();
            let app = App::new()
                // Innermost: a cross-site state change is refused before any handler or extractor.
                .wrap(actix_web::middleware::from_fn(origin::check))
                .wrap(
                    // A socket's access-log entry would live (and hold its formatted
                    // fields) as long as the socket; live.rs logs sockets itself.
                    Logger::new("%{route}xi %s %Dms").exclude(WS_PATH).custom_request_replace("route", |req| {
                        format!("{} {}", req.method(), req.match_pattern().unwrap_or_else(|| "-".into()))
                    }),
                )
                .wrap(crate::headers::security_headers(https))
                // Outermost: every request is counted, by route pattern, whatever answers it.
                .wrap(actix_web::middleware::from_fn(move |req, next| crate::metrics::record(metrics.clone(), req, next)))
                .configure(configure.clone());
            let upgrade = actix_service::fn_factory(move || {
                let state = state.clone();
                async move { Ok::<_, ()>(actix_service::fn_service(move |(req, framed)| live::upgrade(state.clone(), req, framed))) }
            });
            actix_http::HttpService::build()
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(addr)
                .upgrade(upgrade)
                .finish(actix_service::map_config(app, |_| actix_web::dev::AppConfig::default()))
                .tcp()
        })
        .map_err(|e| StartError::Bind(bind_addr, e))?;
    let metrics_addr = metrics_lst.as_ref().map(|(_, a)| *a);
    if let Some((l, a)) = metrics_lst {
        // The metrics listener: its own tiny app, `GET /metrics` and nothing else.
        builder = builder
            .listen("metrics", l, move || {
                let state = web::Data::new(metrics_state.clone());
                let app = App::new().app_data(state).configure(crate::metrics::routes);
                actix_http::HttpService::build()
                    .local_addr(a)
                    .finish(actix_service::map_config(app, |_| actix_web::dev::AppConfig::default()))
                    .tcp()
            })
            .map_err(|e| StartError::Bind(a, e))?;
    }
    let server = builder.run();
    Ok(Bound { server, addr, hub, metrics_addr })
}

/// Starts the server on a thread of its own (tests and embedding use this).
pub fn spawn(config: Config) -> Result<RunningServer, StartError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let sys = actix_web::rt::System::new();
        sys.block_on(async move {
            match bind(config).await {
                Ok(bound) => {
                    let _ = tx.send(Ok((bound.addr, bound.metrics_addr, bound.server.handle())));
                    if let Err(e) = bound.serve().await {
                        tracing::error!(error = %e, "server stopped with an error");
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    let (addr, metrics_addr, handle) = rx.recv().map_err(|_| StartError::Other("server thread died".into()))??;
    Ok(RunningServer { addr, metrics_addr, handle, thread: Some(thread) })
}
