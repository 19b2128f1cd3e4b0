//! The browser's sealed search index (issue 16, wt-inbox): what the inbox
//! searches (patient names, by referral id) sealed with XChaCha20-Poly1305
//! under a key derived with HKDF from the user's unlocked private keys, so a
//! reload need not decrypt every referral again. The index holds no key; the
//! key is derived again after each unlock and never stored.

use zeroize::Zeroize as _;

use crate::CryptoError;
use crate::keys::UserSecrets;

const LABEL: &[u8] = b"handoff search index v1";

/// The key that seals one user's search index. Derived from their private
/// keys; only they can compute it. Wiped when dropped.
pub struct SearchIndexKey([u8; 32]);

impl std::fmt::Debug for SearchIndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchIndexKey(..)")
    }
}

impl Drop for SearchIndexKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

fn aad(user: &[u8; 16]) -> Vec<u8> {
    [LABEL, user.as_slice()].concat()
}

impl SearchIndexKey {
    /// The key of `secrets`' owner.
    pub fn derive(secrets: &UserSecrets) -> Self {
        Self(secrets.derive_key(LABEL))
    }

    /// Seals an index of `user` (the associated data names them, so one
    /// user's index cannot pass for another's).
    pub fn seal(&self, user: &[u8; 16], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        crate::seal::seal(&self.0, &aad(user), plain)
    }

    /// Opens an index sealed by [`seal`](Self::seal); `Decrypt` under another
    /// user's key, for another user, or if a byte was changed.
    pub fn open(&self, user: &[u8; 16], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        crate::seal::open(&self.0, &aad(user), sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_opens_only_with_its_owners_keys_and_hides_its_content() {
        let (me, other) = (UserSecrets::generate().unwrap(), UserSecrets::generate().unwrap());
        let user = [7u8; 16];
        let plain = br#"{"names":{"r1":"Ada Lovelace"}}"#;
        let sealed = SearchIndexKey::derive(&me).seal(&user, plain).unwrap();
        assert!(!sealed.windows(4).any(|w| w == b"Ada "), "no plaintext in the sealed bytes");
        assert_eq!(
            SearchIndexKey::derive(&me).open(&user, &sealed).unwrap(),
            plain,
            "the same keys derive the same key after a new unlock"
        );
        assert!(
            matches!(SearchIndexKey::derive(&other).open(&user, &sealed), Err(CryptoError::Decrypt)),
            "another user's keys open nothing"
        );
        assert!(SearchIndexKey::derive(&me).open(&[8u8; 16], &sealed).is_err(), "bound to its user");
        let mut tampered = sealed.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert!(SearchIndexKey::derive(&me).open(&user, &tampered).is_err());
        let master = me.expose_for_tests();
        assert!(!sealed.windows(32).any(|w| w == &master[..32] || w == &master[32..]), "no private key in it");
    }
}
