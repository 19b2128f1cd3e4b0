//! Input validation shared by handlers. Each failure is `validation_failed`
//! with a message naming the field.

use handoff_protocol::B64;
use handoff_protocol::v1::{MAX_EMAIL_LEN, MAX_NAME_LEN};

use crate::error::{ApiError, ApiResult};

/// Lower-cases and checks an email address: one `@`, no spaces or control
/// characters, a dot in the domain, at most 254 characters.
pub fn email(raw: &str) -> ApiResult<String> {
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= MAX_EMAIL_LEN
        && e.split('@').count() == 2
        && !e.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'));
    if ok { Ok(e) } else { Err(ApiError::invalid("email: not a valid email address")) }
}

/// A display or practice name: trimmed, 1 to 120 characters, no control characters.
pub fn name(field: &str, raw: &str) -> ApiResult<String> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME_LEN || n.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!("{field}: 1 to {MAX_NAME_LEN} characters, no control characters")));
    }
    Ok(n.to_string())
}

/// Free text up to `max` characters (control characters other than newlines refused).
pub fn text(field: &str, raw: &str, max: usize) -> ApiResult<String> {
    if raw.chars().count() > max || raw.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(ApiError::invalid(format!("{field}: at most {max} characters")));
    }
    Ok(raw.trim().to_string())
}

/// Exactly `len` bytes.
pub fn bytes_exact(field: &str, b: &B64, len: usize) -> ApiResult<()> {
    if b.0.len() == len { Ok(()) } else { Err(ApiError::invalid(format!("{field}: must be {len} bytes"))) }
}

/// Between `min` and `max` bytes.
pub fn bytes_range(field: &str, b: &B64, min: usize, max: usize) -> ApiResult<()> {
    if (min..=max).contains(&b.0.len()) { Ok(()) } else { Err(ApiError::invalid(format!("{field}: must be {min} to {max} bytes"))) }
}

/// A taxonomy slug: 1 to 48 of `a-z 0-9 -`.
pub fn slug(field: &str, s: &str) -> ApiResult<()> {
    if !s.is_empty() && s.len() <= 48 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("{field}: 1 to 48 lowercase letters, digits or hyphens")))
    }
}
