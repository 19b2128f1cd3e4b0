//! Account requests as every client builds them: keys made and sealed
//! locally, only the auth key, public keys and sealed private keys sent.

use handoff_crypto::keys::UserSecrets;
use handoff_crypto::practice::verify_practice_public_key;
use handoff_crypto::{CryptoError, EmergencyKit, PasswordKeys};
use handoff_protocol::B64;
use handoff_protocol::v1::{DirectoryEntry, RecoverFinishRequest, RegisterRequest, UserKeyBundle};

/// A new account, before it is sent.
#[derive(Debug)]
pub struct NewAccount {
    /// The request for `POST /auth/register`.
    pub request: RegisterRequest,
    /// The private keys (kept in memory by the client).
    pub secrets: UserSecrets,
    /// The Emergency Access Kit's 24 words in grid order: shown once, stored nowhere.
    pub kit_words: Vec<String>,
}

/// Makes a user's keys, a password salt and an Emergency Access Kit, and the
/// registration request sealing the private keys under both.
pub fn new_account(email: &str, display_name: &str, password: &str, invite_token: Option<String>) -> Result<NewAccount, CryptoError> {
    let salt = handoff_crypto::password::new_salt()?;
    let pw = PasswordKeys::derive(password, &salt)?;
    let kit = EmergencyKit::generate()?;
    let secrets = UserSecrets::generate()?;
    let public = secrets.public();
    let request = RegisterRequest {
        email: email.into(),
        display_name: display_name.into(),
        salt: B64(salt.to_vec()),
        auth_key: B64(pw.auth_key.to_vec()),
        kit_auth: B64(kit.auth_key().to_vec()),
        keys: UserKeyBundle {
            sign_pub: B64(public.sign_pub.to_vec()),
            hpke_pub: B64(public.hpke_pub.to_vec()),
            wrapped_by_password: B64(secrets.wrap(&pw.kek)?),
            wrapped_by_kit: B64(secrets.wrap(&kit.kek())?),
        },
        invite_token,
    };
    Ok(NewAccount { request, secrets, kit_words: kit.words() })
}

/// The request that finishes a kit reset: the same keys sealed under a new
/// password. For an account with two-factor sign-in on, set its
/// `second_factor_token` to the one `recover/start` answered.
pub fn recover_finish(email: &str, kit_auth: B64, new_password: &str, secrets: &UserSecrets) -> Result<RecoverFinishRequest, CryptoError> {
    let salt = handoff_crypto::password::new_salt()?;
    let pw = PasswordKeys::derive(new_password, &salt)?;
    Ok(RecoverFinishRequest {
        email: email.into(),
        kit_auth,
        salt: B64(salt.to_vec()),
        auth_key: B64(pw.auth_key.to_vec()),
        wrapped_by_password: B64(secrets.wrap(&pw.kek)?),
        second_factor_token: None,
    })
}

/// Checks a directory entry's published practice key against its signer's
/// account signing key (fetched by the caller from the user directory).
pub fn verify_directory_entry(e: &DirectoryEntry, signer_sign_pub: &[u8]) -> Result<(), CryptoError> {
    verify_practice_public_key(
        e.id,
        e.public_key.epoch,
        e.public_key.hpke_pub.as_slice(),
        signer_sign_pub,
        e.public_key.signature.as_slice(),
    )
}
