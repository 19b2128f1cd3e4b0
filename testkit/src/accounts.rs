//! Accounts: who signs up, with a unique email unless a test needs a fixed one.

use handoff_client::Client;

use crate::{PASSWORD, RegisterConfirmed, Result};

/// A fresh email address `<local>-<uuid>@<domain>`, unique across every test
/// and every run, so fixtures never collide on a shared server.
pub fn unique_email(local: &str, domain: &str) -> String {
    format!("{local}-{}@{domain}", uuid::Uuid::new_v4())
}

/// An account to register: email, display name and password.
///
/// Start from a preset ([`moa_account`], [`specialist_account`],
/// [`staff_account`]) or [`Account::new`], override what the test cares about,
/// then [`register`](Account::register) it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "an account is only a description until it is registered"]
pub struct Account {
    /// The email it registers and signs in with.
    pub email: String,
    /// The name colleagues see.
    pub display_name: String,
    /// The password it registers and signs in with.
    pub password: String,
}

impl Account {
    /// An account with a unique email `<local>-<uuid>@<domain>`, shown to
    /// colleagues as `display_name`, with the fixtures' [`PASSWORD`].
    pub fn new(local: &str, domain: &str, display_name: &str) -> Self {
        Self { email: unique_email(local, domain), display_name: display_name.into(), password: PASSWORD.into() }
    }

    /// Uses exactly this email (for a test that looks for a known address).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = email.into();
        self
    }

    /// Uses this display name.
    pub fn name(mut self, display_name: impl Into<String>) -> Self {
        self.display_name = display_name.into();
        self
    }

    /// Uses this password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = password.into();
        self
    }

    /// Registers the account on the server at `url`, confirms it from the
    /// emailed link (the server's mailbox must be known:
    /// [`deliver_to`](crate::deliver_to)), and returns its signed-in client.
    pub async fn register(&self, url: &str) -> Result<Client> {
        let mut client = Client::new(url);
        client.register_confirmed(&self.email, &self.display_name, &self.password).await?;
        Ok(client)
    }
}

/// The referring office's medical office assistant: `moa-<uuid>@family.example`, "Pat (MOA)".
pub fn moa_account() -> Account {
    Account::new("moa", "family.example", "Pat (MOA)")
}

/// The specialist who owns the specialist practices: `dr.heart-<uuid>@cardio.example`, "Dr. Heart".
pub fn specialist_account() -> Account {
    Account::new("dr.heart", "cardio.example", "Dr. Heart")
}

/// A platform staff member (once granted): `ops-<uuid>@handoff.example`, "Ops".
pub fn staff_account() -> Account {
    Account::new("ops", "handoff.example", "Ops")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_unique_and_overridable() {
        let (a, b) = (moa_account(), moa_account());
        assert_ne!(a.email, b.email);
        assert!(a.email.starts_with("moa-") && a.email.ends_with("@family.example"), "{}", a.email);
        let fixed = specialist_account().email("dr.heart@cardio.example").name("Dr. Who").password("pw");
        assert_eq!(
            (fixed.email.as_str(), fixed.display_name.as_str(), fixed.password.as_str()),
            ("dr.heart@cardio.example", "Dr. Who", "pw")
        );
        assert_eq!(staff_account().password, PASSWORD);
    }
}
