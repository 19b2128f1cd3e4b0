//! Shared test fixtures for Handoff: the people, practices and referrals that
//! tests and benchmarks set up before they exercise the server.
//!
//! Everything here drives a real server through the native client
//! ([`handoff_client::Client`]) with real cryptography; nothing is mocked. The
//! server's integration tests (`server/tests/integration`) and the load tests
//! (`load-tests`) both build their worlds from these pieces:
//!
//! - [`accounts`]: [`Account`] builders with a unique random email each
//!   (`moa-<uuid>@family.example`), so no two fixtures ever collide, and the
//!   named presets [`moa_account`], [`specialist_account`] and [`staff_account`].
//! - [`practices`]: [`referring_office`] and [`verified_specialist`], practice
//!   builders with sensible defaults (Fraser, cardiology, two intake
//!   categories) and overrides for name, specialty, region and intake; a
//!   [`Verifier`] says who verifies a specialist practice (platform staff
//!   through the admin API, or the operator's CLI).
//! - [`referrals`]: the [`routing`] and patient [`content`] every fixture
//!   referral uses, and [`ContentBuilder`] to change or size the content.
//! - [`mail`]: where a server's mail arrives ([`deliver_to`]) and reading it,
//!   so registration can follow its emailed confirmation link
//!   ([`RegisterConfirmed`]).
//! - [`free`]: [`FreeSender`], a free referral's sender without an account:
//!   asks for the emailed code, reads it from the mail, verifies, and calls
//!   the free routes with the verified draft's token.
//! - [`world`]: [`World`], a referring practice and `n` verified specialist
//!   practices owned by one specialist, with a staff member, built by
//!   [`WorldBuilder`] from the builders above.
//!
//! Fixture calls return [`Result`]: a test unwraps, a benchmark propagates.

pub mod accounts;
pub mod free;
pub mod mail;
pub mod practices;
pub mod referrals;
pub mod world;

pub use accounts::{Account, moa_account, specialist_account, staff_account, unique_email};
pub use free::FreeSender;
pub use mail::{RegisterConfirmed, deliver_to};
pub use practices::{ReferringOffice, SpecialistPractice, Verifier, referring_office, verified_specialist};
pub use referrals::{ContentBuilder, content, referral_content, routing};
pub use world::{World, WorldBuilder};

/// The password of every fixture account unless a builder overrides it.
pub const PASSWORD: &str = "correct horse battery staple";

/// Every way building a fixture can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// A client call failed (the server refused, or the transport or local crypto failed).
    #[error(transparent)]
    Client(#[from] handoff_client::ClientError),
    /// The operator's CLI could not be run at all.
    #[error("running the handoff CLI: {0}")]
    Cli(#[from] std::io::Error),
    /// No message arrived in time.
    #[error("no mail to {to} containing {needle:?} in {}", dir.display())]
    NoMail {
        /// The address it was expected for.
        to: String,
        /// What it should contain.
        needle: String,
        /// Where it was looked for.
        dir: std::path::PathBuf,
    },
    /// Nobody said where this server's mail arrives ([`mail::deliver_to`]).
    #[error("no mailbox is known for the server at {url}; call handoff_testkit::deliver_to")]
    NoMailbox {
        /// The server's URL.
        url: String,
    },
    /// The operator's CLI ran and refused to verify the practice.
    #[error("verify failed: {stderr}")]
    VerifyFailed {
        /// What the CLI wrote to standard error.
        stderr: String,
    },
}

/// The result of building a fixture.
pub type Result<T> = std::result::Result<T, FixtureError>;
