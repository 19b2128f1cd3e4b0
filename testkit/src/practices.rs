//! Practices: a referring office that sends, specialist practices that receive
//! once verified, and who verifies them.

use std::path::Path;
use std::process::Command;

use handoff_client::Client;
use handoff_protocol::v1::{Intake, Practice, PracticeAction, PracticeKind};

use crate::{FixtureError, Result};

/// Who verifies a new specialist practice, as the platform would.
#[derive(Clone, Copy, Debug)]
pub enum Verifier<'a> {
    /// A platform staff member's client, through the admin API.
    Staff(&'a Client),
    /// The operator, with `handoff admin --data <data> verify-practice <id>`
    /// run by the `handoff` binary `bin` on the server's data directory.
    Operator {
        /// The `handoff` binary.
        bin: &'a Path,
        /// The server's data directory.
        data: &'a Path,
    },
}

impl Verifier<'_> {
    /// Verifies the practice `p`, so that it can receive referrals. The
    /// operator's CLI runs to completion on this thread (it takes milliseconds).
    pub async fn verify(&self, p: &Practice) -> Result<()> {
        match *self {
            Verifier::Staff(staff) => staff.admin_practice_action(p.id, PracticeAction::Verify).await?,
            Verifier::Operator { bin, data } => {
                let out = Command::new(bin).args(["admin", "--data"]).arg(data).args(["verify-practice", &p.id.to_string()]).output()?;
                if !out.status.success() {
                    return Err(FixtureError::VerifyFailed { stderr: String::from_utf8_lossy(&out.stderr).into_owned() });
                }
            }
        }
        Ok(())
    }
}

/// A referring practice (a family practice whose MOA sends referrals).
///
/// Defaults: "Kingsway Family Practice" in Fraser.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a practice is only a description until it is created"]
pub struct ReferringOffice {
    /// The practice's name.
    pub name: String,
    /// Its health region, if any.
    pub region: Option<String>,
}

/// The referring office every fixture uses unless a test overrides it.
pub fn referring_office() -> ReferringOffice {
    ReferringOffice { name: "Kingsway Family Practice".into(), region: Some("fraser".into()) }
}

impl ReferringOffice {
    /// Uses this practice name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Uses this health region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Creates the practice with `admin` (a signed-in client) as its first admin.
    pub async fn create(&self, admin: &Client) -> Result<Practice> {
        Ok(admin.create_practice(&self.name, PracticeKind::Referring, None, self.region.as_deref(), vec![]).await?)
    }
}

/// A specialist practice that is verified as soon as it is created.
///
/// Defaults: "Fraser Cardiology", cardiology in Fraser, taking arrhythmia and
/// heart-failure referrals.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a practice is only a description until it is created"]
pub struct SpecialistPractice {
    /// The practice's name.
    pub name: String,
    /// Its specialty (a taxonomy slug).
    pub specialty: String,
    /// Its health region.
    pub region: String,
    /// The categories (taxonomy slugs of the specialty) it accepts referrals in.
    pub intake: Vec<String>,
}

/// The verified specialist practice every fixture uses unless a test overrides it.
pub fn verified_specialist() -> SpecialistPractice {
    SpecialistPractice {
        name: "Fraser Cardiology".into(),
        specialty: "cardiology".into(),
        region: "fraser".into(),
        intake: vec!["arrhythmia".into(), "heart-failure".into()],
    }
}

impl SpecialistPractice {
    /// Uses this practice name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Uses this specialty (and, usually, intake categories of it).
    pub fn specialty(mut self, specialty: impl Into<String>) -> Self {
        self.specialty = specialty.into();
        self
    }

    /// Uses this health region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Accepts referrals in exactly these categories (no subcategories).
    pub fn intake<S: Into<String>>(mut self, categories: impl IntoIterator<Item = S>) -> Self {
        self.intake = categories.into_iter().map(Into::into).collect();
        self
    }

    /// Creates the practice with `owner` (a signed-in client) as its first
    /// admin, then has `verifier` verify it.
    pub async fn create(&self, owner: &Client, verifier: Verifier<'_>) -> Result<Practice> {
        let intake = self.intake.iter().map(|c| Intake { category: c.clone(), subcategory: None }).collect();
        let p = owner.create_practice(&self.name, PracticeKind::Specialist, Some(&self.specialty), Some(&self.region), intake).await?;
        verifier.verify(&p).await?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_default_and_override() {
        assert_eq!(
            referring_office().region("northern").name("North"),
            ReferringOffice { name: "North".into(), region: Some("northern".into()) }
        );
        let s = verified_specialist().name("Bench Cardiology").intake(["arrhythmia"]);
        assert_eq!((s.name.as_str(), s.specialty.as_str(), s.region.as_str()), ("Bench Cardiology", "cardiology", "fraser"));
        assert_eq!(s.intake, vec!["arrhythmia".to_string()]);
        assert_eq!(verified_specialist().specialty("dermatology").region("island").intake.len(), 2);
    }
}
