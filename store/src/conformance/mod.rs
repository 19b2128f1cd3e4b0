//! The storage conformance suite: every backend must pass every test here.
//!
//! Each test is a plain async function over `&dyn Store` that panics on
//! failure, in the file of its concept (`users.rs`, `practices.rs`, ...).
//! [`conformance_tests!`](crate::conformance_tests) turns the whole suite into
//! `#[tokio::test]`s for one backend, given an async factory that returns a
//! fresh, empty store and a guard that cleans it up. The SQLite run is in
//! `store/tests/conformance.rs`; a ScyllaDB run would invoke the same macro
//! with a factory that makes a unique keyspace, gated on `SCYLLA_URI`.
//!
//! Each test's name is written once: a concept file is one `suite!`
//! invocation, which defines that file's test functions and also emits the
//! (hidden, exported) macro that instantiates exactly those functions, so a
//! new test cannot be forgotten in a separate list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use handoff_protocol::v1::{
    Category, CategoryRequestStatus, Intake, PracticeKind, PracticePublicKey, Region, Role, Specialty, Subcategory, Taxonomy, TaxonomyEdit,
};
use handoff_protocol::ws::{BlobId, IdemKey, ReferralId, Status, StreamId};
use handoff_protocol::{B64, CategoryRequestId, PracticeId, UserId};

use crate::*;

/// Defines one concept's conformance tests and the exported macro
/// `$instantiate!($make)` that turns each into a `#[tokio::test]`.
macro_rules! suite {
    ($instantiate:ident; $($(#[$meta:meta])* pub async fn $name:ident($s:ident: &dyn Store) $body:block)*) => {
        suite!(@with_dollar ($) $instantiate; $($(#[$meta])* fn $name($s) $body)*);
    };
    (@with_dollar ($d:tt) $instantiate:ident; $($(#[$meta:meta])* fn $name:ident($s:ident) $body:block)*) => {
        $( $(#[$meta])* pub async fn $name($s: &dyn Store) $body )*

        #[doc(hidden)]
        #[macro_export]
        macro_rules! $instantiate {
            ($d make:expr) => {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let (store, _guard) = ($d make)().await;
                        $d crate::conformance::$name(&store).await;
                    }
                )*
            };
        }
    };
}

mod audit;
mod free;
mod limits;
mod mail;
mod mls;
mod practices;
mod referrals;
mod rooms;
mod taxonomy;
mod terms;
mod two_factor;
mod users;

pub use audit::*;
pub use free::*;
pub use limits::*;
pub use mail::*;
pub use mls::*;
pub use practices::*;
pub use referrals::*;
pub use rooms::*;
pub use taxonomy::*;
pub use terms::*;
pub use two_factor::*;
pub use users::*;

/// Generates one `#[tokio::test]` per conformance test for a backend.
///
/// `$make` is an expression callable with no arguments that returns a future of
/// `(S, G)` where `S: Store` is fresh and empty and `G` is dropped after the test.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__conformance_users!($make);
        $crate::__conformance_practices!($make);
        $crate::__conformance_taxonomy!($make);
        $crate::__conformance_mail!($make);
        $crate::__conformance_referrals!($make);
        $crate::__conformance_mls!($make);
        $crate::__conformance_limits!($make);
        $crate::__conformance_free!($make);
        $crate::__conformance_two_factor!($make);
        $crate::__conformance_audit!($make);
        $crate::__conformance_terms!($make);
        $crate::__conformance_rooms!($make);
    };
}

fn id16(n: u8) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = n;
    b[15] = 0x42;
    b
}

pub fn user(n: u8, email: &str) -> UserRecord {
    UserRecord {
        id: UserId::from_bytes(id16(n)),
        email: email.into(),
        display_name: format!("User {n}"),
        salt: vec![n; 16],
        auth_verifier: format!("$argon2id$v=19$m=19456,t=2,p=1$fake{n}"),
        kit_verifier: vec![n; 32],
        sign_pub: vec![n; 32],
        hpke_pub: vec![n.wrapping_add(1); 32],
        wrapped_by_password: vec![1, 2, 3, n],
        wrapped_by_kit: vec![4, 5, 6, n],
        is_staff: false,
        created_at: 1_000 + i64::from(n),
        email_confirmed_at: Some(1_000 + i64::from(n)),
    }
}

pub fn practice(n: u8, creator: UserId, kind: PracticeKind) -> PracticeRecord {
    PracticeRecord {
        id: PracticeId::from_bytes(id16(100 + n)),
        name: format!("Practice {n}"),
        kind,
        specialty: (kind == PracticeKind::Specialist).then(|| "cardiology".to_string()),
        region: (kind == PracticeKind::Specialist).then(|| "fraser".to_string()),
        intake: vec![Intake { category: "arrhythmia".into(), subcategory: None }],
        verified: false,
        paused: false,
        key_epoch: 0,
        public_key: PracticePublicKey { epoch: 0, hpke_pub: B64(vec![n; 32]), signer: creator, signature: B64(vec![n; 64]) },
        created_by: creator,
        created_at: 2_000 + i64::from(n),
        accepts_free: true,
    }
}

pub fn grant(p: PracticeId, u: UserId, by: UserId, epoch: u64) -> GrantRecord {
    GrantRecord { practice_id: p, user_id: u, epoch, sealed: vec![9; 80], granted_by: by, created_at: 3_000 }
}

async fn two_practices(s: &dyn Store) -> (UserRecord, PracticeRecord, PracticeRecord) {
    let a = user(1, "a@example.org");
    s.create_user(a.clone()).await.unwrap();
    let from = practice(1, a.id, PracticeKind::Referring);
    let to = practice(2, a.id, PracticeKind::Specialist);
    for p in [&from, &to] {
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    }
    (a, from, to)
}
