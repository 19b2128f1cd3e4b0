use serde::{Deserialize, Serialize};

/// Every error the API can answer, with its fixed wire spelling.
///
/// The JSON body is always `{"error": "<code>", "message": "<human text>"}`.
/// Clients match on `error`; `message` is for people and may change.
/// The HTTP status for each code is [`ErrorCode::http_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not valid JSON (syntax error or truncated). 400.
    MalformedJson,
    /// The body is JSON but a field is missing, has the wrong type, or is unknown. 422.
    InvalidBody,
    /// A field has the right type but an unacceptable value (too long, empty, bad email). 422.
    ValidationFailed,
    /// The body is larger than the endpoint's documented limit. 413.
    PayloadTooLarge,
    /// The request needs `Content-Type: application/json`. 415.
    UnsupportedMediaType,
    /// No session, or an unknown session token. 401.
    Unauthenticated,
    /// The session existed but has expired or was revoked; log in again. 401.
    SessionExpired,
    /// Email and password did not match an account. Deliberately does not say which. 401.
    InvalidCredentials,
    /// The Emergency Access Kit did not match the account. 401.
    InvalidRecoveryKit,
    /// Too many attempts; retry after the `Retry-After` header's seconds. 429.
    RateLimited,
    /// The caller is signed in but may not do this (e.g. a non-admin member removing someone). 403.
    Forbidden,
    /// No such object, or one the caller may not see: the two are indistinguishable. 404.
    NotFound,
    /// An account with this email already exists. 409.
    EmailTaken,
    /// The object already exists or the request conflicts with current state. 409.
    Conflict,
    /// Removing this member would leave the practice without an admin. 409.
    LastAdmin,
    /// The typed confirmation did not match the practice's name. 422.
    ConfirmationMismatch,
    /// The invite link is unknown, used, revoked or expired. 410.
    InviteInvalid,
    /// The invite was addressed to a different email than the signed-in account's. 403.
    InviteWrongAccount,
    /// The route or method does not exist. 404.
    NoRoute,
    /// A WebSocket frame names a command this server does not know. 400.
    UnknownCommand,
    /// The client asked for a protocol version this server does not speak. 400.
    UnsupportedVersion,
    /// A command that changes state came without an `idem` key. 422.
    MissingIdempotencyKey,
    /// An `idem` key was reused for a different command. 409.
    IdempotencyConflict,
    /// The referral's status does not allow this (e.g. accepting a cancelled referral). 409.
    InvalidTransition,
    /// The chosen practice cannot receive referrals (unverified, paused, or not a specialist in that category). 409.
    NotEligible,
    /// "Choose for me" found no eligible practice among those the client wrapped keys for. 409.
    NoEligiblePractice,
    /// A key was wrapped to an old practice key epoch; fetch the directory again and retry. 409, retryable.
    StaleKey,
    /// The server failed; nothing was changed. Retry later. 500.
    Internal,
    /// An MLS commit was made for an epoch that is not the practice's current
    /// one (another member committed first). Retryable: process the log, commit again.
    StaleEpoch,
    /// Bytes that should be an MLS message are not one of the expected kind,
    /// group or epoch.
    MalformedMls,
    /// This key package was published or used before; key packages are single-use.
    KeyPackageUsed,
    /// The caller is a member of the practice but not (yet) of its MLS group.
    NotMember,
    /// A welcome or an added member names someone who is not a member of the practice.
    WrongRecipient,
    /// The stored MLS state changed since the caller read it (another tab). Reload and retry.
    StaleState,
    /// The server is starting or shutting down. 503.
    Unavailable,
    /// Sent unprompted on the WebSocket (an `error` frame with `id: null`) when
    /// the server cuts a subscription because the user lost access to the
    /// stream (removed from a practice, or the practice was deleted). The
    /// message names the stream; nothing more arrives on it, and subscribing
    /// again is refused with `not_found`. 403.
    AccessEnded,
    /// `subscribe` asked for the events after a seq the stream has not reached
    /// (`after_seq` past its head, e.g. a position kept from before the server's
    /// data was restored). Nothing was subscribed; subscribe again from at most
    /// the head (0 replays the whole stream). 422.
    SeqAhead,
    /// A registration confirmation link is unknown, used, expired, or its
    /// address was confirmed by another registration first. 410.
    ConfirmationInvalid,
    /// The account's email address is not confirmed, so it may not do this
    /// (send invites). 403.
    EmailUnconfirmed,
    /// The account holds as much as it may (attachment bytes, or unclaimed MLS
    /// key packages); nothing was stored. Free some first. 507.
    QuotaExceeded,
    /// The user has as many WebSockets open as they may; close one first. 429.
    TooManySockets,
    /// A well-formed MLS commit that the delivery service refuses: its
    /// signature does not verify against the group's public tree, it carries a
    /// proposal other than adds and removes, or its real adds, removes or
    /// committer differ from what the log entry declares. 422.
    InvalidCommit,
    /// The server does not observe this practice's MLS group yet (it predates
    /// the server's checks): send the commit again with `group_info`, the group
    /// info of the epoch the commit was made in. 409.
    GroupInfoRequired,
    /// A free referral's emailed code is not the one sent; the message says how
    /// many tries are left. 422.
    CodeWrong,
    /// The free referral's code has expired or was already used, or the draft
    /// is unknown: ask for a new code. 410.
    CodeExpired,
    /// The code has had all its tries (5); even the right code is refused now.
    /// Ask for a new code. 429.
    CodeTriesExhausted,
    /// A free referral route was called without a verified draft (no token, an
    /// unknown one, or one past its two hours): check the email address again. 401.
    DraftUnverified,
    /// This draft has already sent its one referral (with another idempotency
    /// key); start a new free referral for another patient. 409.
    DraftUsed,
    /// Staff have blocked this email address or client address from sending
    /// free referrals. 403.
    SenderBlocked,
    /// The two-factor code is wrong, was already used (each code signs in
    /// once), or is outside the ±30-second window; or the recovery code is
    /// unknown. Wait for the next code and try again. 401.
    TwoFactorCodeWrong,
    /// The practice requires two-factor sign-in and the caller has not turned
    /// it on: enroll in settings ("Two-factor sign-in"), then try again. 403.
    TwoFactorRequired,
    /// That recovery code was used before; each works once. Use another. 401.
    RecoveryCodeUsed,
    /// The account has two-factor sign-in on, so this step also needs a code
    /// from the authenticator app or a recovery code (a kit reset, or a
    /// pending sign-in token that is missing, expired or not one). 401.
    SecondFactorNeeded,
    /// The session went unused for longer than the server's idle timeout
    /// (`session_idle_secs`, 30 minutes by default) and is ended; sign in again. 401.
    SessionIdle,
    // Membership with dates (issue 14, wt-members).
    /// A membership's dates are refused: a date in the past, an end before
    /// the start, a start for a member who has already started, or a
    /// delegate invite without both dates. Nothing changed. 422.
    InvalidDates,
    // The telehealth waiting room (issue 15, wt-rooms-server).
    /// The waiting room holds as many guests as it may (`room_max_waiting`);
    /// try again later. 503.
    RoomFull,
    /// A host removed this guest from the waiting room: its token is dead and
    /// it cannot re-join with it. 403.
    GuestRemoved,
    /// A host command names a guest who has left the room (or was never in
    /// it). Nothing changed. 409.
    GuestGone,
}

impl ErrorCode {
    /// The HTTP status the server answers with this code.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedJson | UnknownCommand | UnsupportedVersion => 400,
            MissingIdempotencyKey => 422,
            IdempotencyConflict | InvalidTransition | NotEligible | NoEligiblePractice | StaleKey => 409,
            StaleEpoch | KeyPackageUsed | StaleState => 409,
            MalformedMls | WrongRecipient => 422,
            NotMember => 403,
            InvalidBody | ValidationFailed | ConfirmationMismatch => 422,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            Unauthenticated | SessionExpired | InvalidCredentials | InvalidRecoveryKit => 401,
            RateLimited => 429,
            Forbidden | InviteWrongAccount => 403,
            NotFound | NoRoute => 404,
            EmailTaken | Conflict | LastAdmin => 409,
            InviteInvalid => 410,
            Internal => 500,
            Unavailable => 503,
            AccessEnded => 403,
            SeqAhead => 422,
            ConfirmationInvalid => 410,
            EmailUnconfirmed => 403,
            QuotaExceeded => 507,
            TooManySockets => 429,
            InvalidCommit => 422,
            GroupInfoRequired => 409,
            CodeWrong => 422,
            CodeExpired => 410,
            CodeTriesExhausted => 429,
            DraftUnverified => 401,
            DraftUsed => 409,
            SenderBlocked => 403,
            TwoFactorCodeWrong | RecoveryCodeUsed | SecondFactorNeeded => 401,
            InvalidDates => 422,
            TwoFactorRequired => 403,
            SessionIdle => 401,
            RoomFull => 503,
            GuestRemoved => 403,
            GuestGone => 409,
        }
    }

    /// The wire spelling, e.g. `"not_found"`.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedJson => "malformed_json",
            InvalidBody => "invalid_body",
            ValidationFailed => "validation_failed",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            Unauthenticated => "unauthenticated",
            SessionExpired => "session_expired",
            InvalidCredentials => "invalid_credentials",
            InvalidRecoveryKit => "invalid_recovery_kit",
            RateLimited => "rate_limited",
            Forbidden => "forbidden",
            NotFound => "not_found",
            EmailTaken => "email_taken",
            Conflict => "conflict",
            LastAdmin => "last_admin",
            ConfirmationMismatch => "confirmation_mismatch",
            InviteInvalid => "invite_invalid",
            InviteWrongAccount => "invite_wrong_account",
            NoRoute => "no_route",
            UnknownCommand => "unknown_command",
            UnsupportedVersion => "unsupported_version",
            MissingIdempotencyKey => "missing_idempotency_key",
            IdempotencyConflict => "idempotency_conflict",
            InvalidTransition => "invalid_transition",
            NotEligible => "not_eligible",
            NoEligiblePractice => "no_eligible_practice",
            StaleKey => "stale_key",
            Internal => "internal",
            StaleEpoch => "stale_epoch",
            MalformedMls => "malformed_mls",
            KeyPackageUsed => "key_package_used",
            NotMember => "not_member",
            WrongRecipient => "wrong_recipient",
            StaleState => "stale_state",
            Unavailable => "unavailable",
            AccessEnded => "access_ended",
            SeqAhead => "seq_ahead",
            ConfirmationInvalid => "confirmation_invalid",
            EmailUnconfirmed => "email_unconfirmed",
            QuotaExceeded => "quota_exceeded",
            TooManySockets => "too_many_sockets",
            InvalidCommit => "invalid_commit",
            GroupInfoRequired => "group_info_required",
            CodeWrong => "code_wrong",
            CodeExpired => "code_expired",
            CodeTriesExhausted => "code_tries_exhausted",
            DraftUnverified => "draft_unverified",
            DraftUsed => "draft_used",
            SenderBlocked => "sender_blocked",
            TwoFactorCodeWrong => "two_factor_code_wrong",
            TwoFactorRequired => "two_factor_required",
            RecoveryCodeUsed => "recovery_code_used",
            SecondFactorNeeded => "second_factor_needed",
            SessionIdle => "session_idle",
            InvalidDates => "invalid_dates",
            RoomFull => "room_full",
            GuestRemoved => "guest_removed",
            GuestGone => "guest_gone",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Machine-readable code.
    pub error: ErrorCode,
    /// Human-readable explanation, safe to show on screen.
    pub message: String,
}
