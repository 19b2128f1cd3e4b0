//! Pins the exact JSON of error bodies: clients match on these strings.
use handoff_protocol::{ErrorBody, ErrorCode};

#[test]
fn error_body_json_is_pinned() {
    let body = ErrorBody { error: ErrorCode::NotFound, message: "no such practice".into() };
    assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"error":"not_found","message":"no such practice"}"#);
}

#[test]
fn every_code_serializes_as_its_as_str() {
    use ErrorCode::*;
    for code in [
        MalformedJson,
        InvalidBody,
        ValidationFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unauthenticated,
        SessionExpired,
        InvalidCredentials,
        InvalidRecoveryKit,
        RateLimited,
        Forbidden,
        NotFound,
        EmailTaken,
        Conflict,
        LastAdmin,
        ConfirmationMismatch,
        InviteInvalid,
        InviteWrongAccount,
        NoRoute,
        Internal,
        Unavailable,
    ] {
        assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{}\"", code.as_str()));
        let back: ErrorCode = serde_json::from_str(&format!("\"{}\"", code.as_str())).unwrap();
        assert_eq!(back, code);
        assert!((400..600).contains(&code.http_status()));
    }
    assert_eq!(NotFound.http_status(), 404);
    assert_eq!(RateLimited.http_status(), 429);
    assert_eq!(SessionExpired.http_status(), 401);
}
