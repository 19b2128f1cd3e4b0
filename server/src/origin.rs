//! Cross-site request defence: a request that changes state, and every
//! WebSocket upgrade, must come from this server's own pages.
//!
//! SameSite=Strict cookies already keep a browser from attaching the session
//! to another site's request; this is the second, independent check (OWASP's
//! "verifying origin with standard headers" and Fetch Metadata), so that a
//! browser without SameSite, or a cookie set some other way, still cannot be
//! used to accept an invite, sign out, claim key packages or act as an admin
//! from another site.
//!
//! The rule, for `POST`, `PUT`, `DELETE` and `PATCH` (and every `GET /ws`):
//!
//! 1. If the request carries `Origin`, it must be this server's own origin:
//!    `http://<Host>` or `https://<Host>`, or the origin of the configured
//!    `public_url` (behind a proxy that rewrites `Host`). `Origin: null`
//!    (sandboxed frames, some redirects) is refused.
//! 2. Otherwise, if it carries `Sec-Fetch-Site`, that must be `same-origin`
//!    or `none` (`same-site` is refused: a sibling subdomain is another site
//!    to us).
//! 3. A request with neither header is not from a browser (browsers send
//!    `Origin` with every cross-origin request and every non-`GET` one), so
//!    native clients and tools are allowed.
//!
//! A refusal is `403 forbidden` before the handler runs, so nothing changes.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::ApiError;
use crate::state::AppState;

/// The origin (`scheme://host[:port]`) of a URL, without path or trailing slash.
fn origin_of(url: &str) -> &str {
    let rest_at = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url.get(rest_at..).and_then(|rest| rest.find('/')) {
        Some(slash) => url.get(..rest_at + slash).unwrap_or(url),
        None => url,
    }
}

/// Whether a request's headers say it comes from this server's own pages (or
/// from no browser at all). `public_url` is the configured public URL.
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    if let Some(origin) = headers.get("origin") {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        if !public_url.is_empty() && origin == origin_of(public_url) {
            return true;
        }
        let Some(host) = headers.get("host").and_then(|h| h.to_str().ok()) else {
            return false;
        };
        return origin == format!("http://{host}") || origin == format!("https://{host}");
    }
    match headers.get("sec-fetch-site") {
        Some(site) => matches!(site.to_str(), Ok("same-origin" | "none")),
        None => true,
    }
}

/// Whether a request with this method changes state (and so is checked).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The refusal of a cross-site request.
pub fn refusal() -> ApiError {
    ApiError::forbidden("this request must come from this server's own pages (its Origin is another site)")
}

/// Middleware: refuses a state-changing request from another site before any
/// handler (or body extractor) runs.
pub async fn check(req: ServiceRequest, next: Next<impl MessageBody>) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if changes_state(req.method()) {
        let public = req.app_data::<web::Data<AppState>>().map(|s| s.config.public_url()).unwrap_or_default();
        if !same_origin(req.headers(), &public) {
            return Err(refusal().into());
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    const PUBLIC: &str = "https://handoff.example/";

    #[test]
    fn origins_of_urls() {
        assert_eq!(origin_of("https://handoff.example/"), "https://handoff.example");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("https://h.example:8443/app/x"), "https://h.example:8443");
    }

    #[test]
    fn own_origins_pass() {
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:9"), ("host", "127.0.0.1:9")]), PUBLIC));
        assert!(same_origin(&headers(&[("origin", "https://handoff.example"), ("host", "10.0.0.5:8080")]), PUBLIC));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")]), PUBLIC));
        assert!(same_origin(&headers(&[("sec-fetch-site", "none")]), PUBLIC));
        // Not a browser.
        assert!(same_origin(&headers(&[("host", "127.0.0.1:9")]), PUBLIC));
    }

    #[test]
    fn other_sites_are_refused() {
        assert!(!same_origin(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:9")]), PUBLIC));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:9")]), PUBLIC));
        // A look-alike that only starts with our origin.
        assert!(!same_origin(&headers(&[("origin", "https://handoff.example.evil.example"), ("host", "x")]), PUBLIC));
        assert!(!same_origin(&headers(&[("origin", "http://127.0.0.1:9"), ("host", "127.0.0.1:10")]), PUBLIC));
        assert!(!same_origin(&headers(&[("origin", "http://127.0.0.1:9")]), PUBLIC));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")]), PUBLIC));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")]), PUBLIC));
        // No configured public URL: an empty Origin matches nothing.
        assert!(!same_origin(&headers(&[("origin", ""), ("host", "x")]), ""));
    }

    #[test]
    fn reads_do_not_change_state() {
        assert!(!changes_state(&Method::GET));
        assert!(!changes_state(&Method::HEAD));
        assert!(changes_state(&Method::POST));
        assert!(changes_state(&Method::PUT));
        assert!(changes_state(&Method::DELETE));
        assert!(changes_state(&Method::PATCH));
    }
}
