//! The HTTP contract: the OpenAPI 3.1 document at `GET /api/v1/openapi.json`
//! ([`handoff_protocol::openapi::document`], built once from the endpoint
//! definitions), and a browsable reference at `/api/docs`: npm
//! `swagger-ui-dist`'s files from [`crate::Config::api_docs_dir`], served from
//! this origin, around a page and a start script of our own (no inline
//! script, no other site).
//!
//! The reference's pages carry their own Content-Security-Policy, the
//! server's strict one with one relaxation: `style-src 'unsafe-inline'`,
//! because Swagger UI sets inline styles. Scripts stay `'self'` only (and
//! lose `'wasm-unsafe-eval'`, which the reference does not need). Every other
//! response keeps the server's policy (`DefaultHeaders` adds a header only
//! where none is set).

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use handoff_protocol::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

use handoff_protocol::api::{DOCS_PATH, Endpoint, GetOpenApi};

/// The Content-Security-Policy of the reference's responses (see the module docs).
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// The files of `swagger-ui-dist` the page loads; nothing else of the folder is served.
const ASSETS: &[(&str, &str)] =
    &[("swagger-ui-bundle.js", "text/javascript; charset=utf-8"), ("swagger-ui.css", "text/css; charset=utf-8")];

/// The page: Swagger UI's stylesheet and bundle, and our start script.
fn index_page() -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Handoff API reference</title>\n\
         <link rel=\"stylesheet\" href=\"{DOCS_PATH}/swagger-ui.css\">\n</head>\n<body>\n<div id=\"swagger-ui\"></div>\n\
         <script src=\"{DOCS_PATH}/swagger-ui-bundle.js\"></script>\n<script src=\"{DOCS_PATH}/start.js\"></script>\n</body>\n</html>\n"
    )
}

/// The start script: Swagger UI on this server's own document.
fn start_script() -> String {
    format!("window.ui = SwaggerUIBundle({{ url: \"{}\", dom_id: \"#swagger-ui\", deepLinking: true }});\n", GetOpenApi::PATH)
}

/// The document, built on first use (it depends only on the code).
fn document() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(handoff_protocol::openapi::document()).unwrap_or(serde_json::Value::Null))
}

/// `GET /api/v1/openapi.json`: the OpenAPI 3.1 document.
pub async fn openapi_json() -> Result<HttpResponse, ApiError> {
    match document() {
        serde_json::Value::Null => Err(ApiError::internal("the OpenAPI document did not serialize")),
        doc => Ok(HttpResponse::Ok().json(doc)),
    }
}

/// Registers `/api/docs` (the page), `/api/docs/start.js` and the two
/// `swagger-ui-dist` files.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(DOCS_PATH, web::get().to(index))
        .route(&format!("{DOCS_PATH}/"), web::get().to(index))
        .route(&format!("{DOCS_PATH}/start.js"), web::get().to(start))
        .route(&format!("{DOCS_PATH}/{{file}}"), web::get().to(asset));
}

fn docs_response(content_type: &str) -> actix_web::HttpResponseBuilder {
    let mut r = HttpResponse::Ok();
    r.content_type(content_type).insert_header(("Content-Security-Policy", DOCS_CSP)).insert_header(("Cache-Control", "no-cache"));
    r
}

/// The folder of `swagger-ui-dist`, or `no_route` when none is configured.
fn docs_dir(state: &AppState) -> Result<&std::path::Path, ApiError> {
    state
        .config
        .api_docs_dir
        .as_deref()
        .ok_or_else(|| ApiError::new(ErrorCode::NoRoute, "the API reference is not installed on this server"))
}

async fn index(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    docs_dir(&state)?;
    Ok(docs_response("text/html; charset=utf-8").body(index_page()))
}

async fn start(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    docs_dir(&state)?;
    Ok(docs_response("text/javascript; charset=utf-8").body(start_script()))
}

async fn asset(state: web::Data<AppState>, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let dir = docs_dir(&state)?;
    let Some((name, content_type)) = ASSETS.iter().find(|(name, _)| *name == file.as_str()) else {
        return Err(ApiError::no_route());
    };
    let bytes = tokio::fs::read(dir.join(name)).await.map_err(|e| ApiError::new(ErrorCode::NoRoute, format!("{name}: {e}")))?;
    Ok(docs_response(content_type).body(bytes))
}
