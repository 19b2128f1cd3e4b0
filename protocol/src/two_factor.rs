//! Two-factor sign-in (TOTP, RFC 6238) on the wire: enrollment, the second
//! sign-in step, the factor a kit reset needs, and a practice's requirement.
//!
//! Codes are the six digits an authenticator app shows (SHA-1, 30-second
//! steps, the only parameters every app supports). A recovery code stands in
//! for a code once. The TOTP secret is an authentication secret the server
//! holds to check codes: it is not an encryption key and opens no data.

use serde::{Deserialize, Serialize};

use crate::UnixMillis;
use crate::v1::SessionResponse;

/// How many recovery codes enrollment hands out.
pub const RECOVERY_CODES: usize = 10;

/// Answer to `POST /auth/login`: a session, or, for an account with
/// two-factor sign-in on, the challenge for the second step. A session is
/// exactly the [`SessionResponse`] (untagged), so an answer without a second
/// step is unchanged on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum LoginResponse {
    /// The password was right and the account needs no second step: signed in.
    SignedIn(SessionResponse),
    /// The password was right; a code is needed before any session exists.
    SecondFactor(SecondFactorChallenge),
}

/// The second step of a sign-in: no session exists yet, only this token,
/// which [`SecondFactorLogin`] (`POST /auth/2fa`) turns into one with a code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecondFactorChallenge {
    /// Always `"totp"`: what the second step asks for.
    pub second_factor: String,
    /// The short-lived pending-login token (it signs in no one by itself).
    pub pending_token: String,
    /// When the pending token stops working.
    pub expires_at: UnixMillis,
}

/// `POST /auth/2fa`: the pending-login token and exactly one of a code or a
/// recovery code.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecondFactorLogin {
    /// From [`SecondFactorChallenge::pending_token`].
    pub pending_token: String,
    /// The six digits the authenticator app shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// One unused recovery code instead of a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// A second factor given alone: exactly one of a code or a recovery code
/// (`POST /account/2fa/confirm` takes a code only; disabling takes either).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecondFactorProof {
    /// The six digits the authenticator app shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// One unused recovery code instead of a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// Answer to `POST /account/2fa/start`: a new secret, not yet in force; it is
/// turned on by confirming one code from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorEnrollment {
    /// The secret in base32 (RFC 4648, no padding), to type into an app.
    pub secret: String,
    /// The `otpauth://totp/…` URI the QR code encodes.
    pub otpauth_uri: String,
}

/// Answer to `POST /account/2fa/confirm`: two-factor sign-in is on. The
/// recovery codes are shown this once; the server keeps only their hashes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    /// [`RECOVERY_CODES`] single-use codes.
    pub codes: Vec<String>,
}

/// Answer to `GET /account/2fa`: the caller's two-factor state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorStatus {
    /// Whether sign-in asks for a code.
    pub enabled: bool,
    /// Recovery codes not used yet (0 when off).
    pub recovery_codes_left: u32,
}

/// `PUT /practices/{id}/require-2fa`: whether members reach the practice
/// only with two-factor sign-in on (admins only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequireTwoFactor {
    /// On or off.
    pub required: bool,
}
