//! The referral world most hub, MLS and privacy tests start from.

use handoff_client::Client;
use handoff_protocol::v1::Practice;

use crate::{
    Account, ReferringOffice, Result, SpecialistPractice, Verifier, moa_account, referring_office, specialist_account, staff_account,
    verified_specialist,
};

/// A referring practice (its MOA is the admin) and `n` verified specialist
/// practices, all owned by one specialist; plus a platform staff member.
///
/// By default: the referring practice is "Kingsway Family Practice" in Fraser,
/// the specialist practices are "Fraser Cardiology 0" … "Fraser Cardiology
/// n-1" (cardiology in Fraser, taking arrhythmia and heart-failure), and every
/// account has a unique email.
#[derive(Debug)]
pub struct World {
    /// The referring practice's MOA (its admin).
    pub moa: Client,
    /// The referring practice.
    pub referring: Practice,
    /// The specialist, admin of every specialist practice.
    pub spec: Client,
    /// The specialist practices, verified.
    pub specialists: Vec<Practice>,
    /// A platform staff member (who verified the specialist practices).
    pub staff: Client,
    /// The MOA's account (to sign in again, or to look for its mail).
    pub moa_account: Account,
    /// The specialist's account.
    pub spec_account: Account,
    /// The staff member's account.
    pub staff_account: Account,
}

impl World {
    /// A builder with the defaults and one specialist practice.
    pub fn builder() -> WorldBuilder {
        WorldBuilder::default()
    }
}

/// Builds a [`World`]: which accounts and practices, and how many specialist practices.
#[derive(Clone, Debug)]
#[must_use = "call build() to set the world up on a server"]
pub struct WorldBuilder {
    moa: Account,
    referring: ReferringOffice,
    spec: Account,
    specialist: SpecialistPractice,
    staff: Account,
    specialists: usize,
}

impl Default for WorldBuilder {
    fn default() -> Self {
        Self {
            moa: moa_account(),
            referring: referring_office(),
            spec: specialist_account(),
            specialist: verified_specialist(),
            staff: staff_account(),
            specialists: 1,
        }
    }
}

impl WorldBuilder {
    /// Uses this account for the referring practice's MOA.
    pub fn moa(mut self, account: Account) -> Self {
        self.moa = account;
        self
    }

    /// Uses this referring practice.
    pub fn referring(mut self, office: ReferringOffice) -> Self {
        self.referring = office;
        self
    }

    /// Uses this account for the specialist.
    pub fn spec(mut self, account: Account) -> Self {
        self.spec = account;
        self
    }

    /// Uses this template for the specialist practices; practice `i` is
    /// named `"<name> <i>"`.
    pub fn specialist(mut self, practice: SpecialistPractice) -> Self {
        self.specialist = practice;
        self
    }

    /// Uses this account for the staff member.
    pub fn staff(mut self, account: Account) -> Self {
        self.staff = account;
        self
    }

    /// Creates `n` specialist practices.
    pub fn specialists(mut self, n: usize) -> Self {
        self.specialists = n;
        self
    }

    /// Sets the world up on the server at `url`. `grant_staff` makes the
    /// given email platform staff, as an operator would (the server's own
    /// `handoff admin grant-staff`).
    pub async fn build(self, url: &str, grant_staff: impl Fn(&str)) -> Result<World> {
        let moa = self.moa.register(url).await?;
        let referring = self.referring.create(&moa).await?;
        let spec = self.spec.register(url).await?;
        let staff = self.staff.register(url).await?;
        grant_staff(&self.staff.email);
        let mut specialists = Vec::with_capacity(self.specialists);
        for i in 0..self.specialists {
            let practice = self.specialist.clone().name(format!("{} {i}", self.specialist.name));
            specialists.push(practice.create(&spec, Verifier::Staff(&staff)).await?);
        }
        Ok(World { moa, referring, spec, specialists, staff, moa_account: self.moa, spec_account: self.spec, staff_account: self.staff })
    }
}
