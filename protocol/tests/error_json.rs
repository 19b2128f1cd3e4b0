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
        UnknownCommand,
        UnsupportedVersion,
        MissingIdempotencyKey,
        IdempotencyConflict,
        InvalidTransition,
        NotEligible,
        NoEligiblePractice,
        StaleKey,
        Internal,
        Unavailable,
        StaleEpoch,
        MalformedMls,
        KeyPackageUsed,
        NotMember,
        WrongRecipient,
        StaleState,
        AccessEnded,
        SeqAhead,
        ConfirmationInvalid,
        EmailUnconfirmed,
        QuotaExceeded,
        TooManySockets,
        InvalidCommit,
        GroupInfoRequired,
        CodeWrong,
        CodeExpired,
        CodeTriesExhausted,
        DraftUnverified,
        DraftUsed,
        SenderBlocked,
        TwoFactorCodeWrong,
        TwoFactorRequired,
        RecoveryCodeUsed,
        SecondFactorNeeded,
        SessionIdle,
    ] {
        assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{}\"", code.as_str()));
        let back: ErrorCode = serde_json::from_str(&format!("\"{}\"", code.as_str())).unwrap();
        assert_eq!(back, code);
        assert!((400..600).contains(&code.http_status()));
    }
    assert_eq!(NotFound.http_status(), 404);
    assert_eq!(RateLimited.http_status(), 429);
    assert_eq!(SessionExpired.http_status(), 401);
    assert_eq!(QuotaExceeded.http_status(), 507);
    assert_eq!(TooManySockets.http_status(), 429);
}

#[test]
fn mls_error_codes_are_pinned() {
    use ErrorCode::*;
    let pinned = [
        (StaleEpoch, "stale_epoch", 409),
        (MalformedMls, "malformed_mls", 422),
        (KeyPackageUsed, "key_package_used", 409),
        (NotMember, "not_member", 403),
        (WrongRecipient, "wrong_recipient", 422),
        (StaleState, "stale_state", 409),
        (InvalidCommit, "invalid_commit", 422),
        (GroupInfoRequired, "group_info_required", 409),
    ];
    for (code, s, status) in pinned {
        assert_eq!(code.as_str(), s);
        assert_eq!(code.http_status(), status);
        let body = ErrorBody { error: code, message: "m".into() };
        assert_eq!(serde_json::to_string(&body).unwrap(), format!(r#"{{"error":"{s}","message":"m"}}"#));
    }
}

#[test]
fn stream_error_codes_are_pinned() {
    use ErrorCode::*;
    for (code, s, status) in [(AccessEnded, "access_ended", 403), (SeqAhead, "seq_ahead", 422)] {
        assert_eq!(code.as_str(), s);
        assert_eq!(code.http_status(), status);
        let frame = handoff_protocol::ws::ServerFrame::Error { id: None, error: code, message: "m".into() };
        assert_eq!(serde_json::to_string(&frame).unwrap(), format!(r#"{{"type":"error","id":null,"error":"{s}","message":"m"}}"#));
    }
}

#[test]
fn stream_ids_and_frames_have_a_stable_shape() {
    use handoff_protocol::ws::*;
    let p = handoff_protocol::PracticeId(uuid::Uuid::from_u128(1));
    let s = StreamId::Practice(p);
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"practice:00000000-0000-0000-0000-000000000001\"");
    assert_eq!(serde_json::from_str::<StreamId>("\"practice:00000000-0000-0000-0000-000000000001\"").unwrap(), s);
    assert!(serde_json::from_str::<StreamId>("\"planet:00000000-0000-0000-0000-000000000001\"").is_err());
    let f: ClientFrame = serde_json::from_str(
        r#"{"id":7,"cmd":{"type":"subscribe","stream":"practice:00000000-0000-0000-0000-000000000001","after_seq":3}}"#,
    )
    .unwrap();
    assert_eq!(f.cmd, Command::Subscribe { stream: s, after_seq: 3 });
    assert!(!f.cmd.mutates());
    let e = ServerFrame::Error { id: Some(7), error: ErrorCode::UnknownCommand, message: "x".into() };
    assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"error","id":7,"error":"unknown_command","message":"x"}"#);
}

#[test]
fn client_frames_decode_with_documented_errors() {
    use handoff_protocol::ws::parse_client_frame;
    assert_eq!(parse_client_frame("{").unwrap_err().1, ErrorCode::MalformedJson);
    let e = parse_client_frame(r#"{"id":3,"cmd":{"type":"fly"}}"#).unwrap_err();
    assert_eq!((e.0, e.1), (Some(3), ErrorCode::UnknownCommand));
    let e = parse_client_frame(r#"{"id":4,"cmd":{"type":"subscribe","stream":7}}"#).unwrap_err();
    assert_eq!((e.0, e.1), (Some(4), ErrorCode::InvalidBody));
    let e = parse_client_frame(r#"{"id":5,"cmd":{"type":"unsubscribe","stream":"practice:00000000-0000-0000-0000-000000000001"},"x":1}"#)
        .unwrap_err();
    assert_eq!(e.1, ErrorCode::InvalidBody, "unknown fields are refused");
    assert!(
        parse_client_frame(r#"{"id":5,"cmd":{"type":"unsubscribe","stream":"practice:00000000-0000-0000-0000-000000000001"}}"#).is_ok()
    );
    // Every documented command name decodes as a known command (maybe with missing fields).
    for name in handoff_protocol::ws::COMMANDS {
        let e = parse_client_frame(&format!(r#"{{"id":1,"cmd":{{"type":"{name}"}}}}"#));
        assert!(e.is_ok() || e.unwrap_err().1 == ErrorCode::InvalidBody, "{name}");
    }
}

#[test]
fn free_referral_error_codes_are_pinned() {
    use ErrorCode::*;
    for (code, s, status) in [
        (CodeWrong, "code_wrong", 422),
        (CodeExpired, "code_expired", 410),
        (CodeTriesExhausted, "code_tries_exhausted", 429),
        (DraftUnverified, "draft_unverified", 401),
        (DraftUsed, "draft_used", 409),
        (SenderBlocked, "sender_blocked", 403),
    ] {
        assert_eq!(code.as_str(), s);
        assert_eq!(code.http_status(), status);
    }
}

#[test]
fn two_factor_error_codes_are_pinned() {
    use ErrorCode::*;
    let pinned = [
        (TwoFactorCodeWrong, "two_factor_code_wrong", 401),
        (TwoFactorRequired, "two_factor_required", 403),
        (RecoveryCodeUsed, "recovery_code_used", 401),
        (SecondFactorNeeded, "second_factor_needed", 401),
        (SessionIdle, "session_idle", 401),
    ];
    for (code, text, status) in pinned {
        assert_eq!(code.as_str(), text);
        assert_eq!(code.http_status(), status);
    }
}

#[test]
fn room_error_codes_are_pinned() {
    use ErrorCode::*;
    let pinned = [(RoomFull, "room_full", 503), (GuestRemoved, "guest_removed", 403), (GuestGone, "guest_gone", 409)];
    for (code, text, status) in pinned {
        assert_eq!(code.as_str(), text);
        assert_eq!(code.http_status(), status);
    }
}

#[test]
fn room_frames_keep_their_wire_shape() {
    use handoff_protocol::ws::{COMMANDS, Command, RoomEvent, ServerFrame, parse_client_frame};
    let room = handoff_protocol::RoomId(uuid::Uuid::from_u128(1));
    let f = parse_client_frame(r#"{"id":3,"cmd":{"type":"guest_leave"}}"#).unwrap();
    assert_eq!(f.cmd, Command::GuestLeave {});
    assert!(f.cmd.is_guest() && !f.cmd.mutates());
    let f = parse_client_frame(&format!(r#"{{"id":4,"cmd":{{"type":"room_host","room":"{room}","status":"ready"}}}}"#)).unwrap();
    assert_eq!(f.cmd.room(), Some(room));
    assert!(COMMANDS.contains(&"room_signal") && COMMANDS.contains(&"guest_check_in"));
    let text = serde_json::to_string(&ServerFrame::Room { room, event: RoomEvent::Ended {} }).unwrap();
    assert_eq!(text, format!(r#"{{"type":"room","room":"{room}","event":{{"type":"ended"}}}}"#));
    assert_eq!(handoff_protocol::ws::close::GUEST_REMOVED, 4010);
}
