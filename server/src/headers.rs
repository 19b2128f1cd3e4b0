//! The security headers on every answer of the public listener.
//!
//! The web client needs nothing inline: its one script is a file
//! (`boot.<hash>.js`, the CSP forbids inline scripts), its styles are classes
//! of the stylesheet (`app.<hash>.css`, no `style=` attribute and no `<style>`
//! element anywhere, so `style-src` is `'self'` alone), and the wasm module is
//! compiled under `'wasm-unsafe-eval'`, which allows WebAssembly compilation
//! and nothing else. The browser tests fail on any CSP violation.

use actix_web::middleware::DefaultHeaders;

/// The Content-Security-Policy of every answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
                                           connect-src 'self'; frame-ancestors 'none'";

/// `Strict-Transport-Security`, sent only when the public URL is https: a
/// year, and every subdomain (a health region's host names are its own).
/// Never sent over plain http, where it would be ignored anyway and would
/// pin a development host to https if it were not.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// The headers every answer carries; `https`: whether the public URL is
/// https ([`crate::Config::secure_cookies`]), which adds HSTS.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY));
    if https { headers.add(("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)) } else { headers }
}
