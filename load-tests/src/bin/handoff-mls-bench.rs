//! `handoff-mls-bench`: MLS practice-group costs at 200 members, with the
//! client-side crypto Handoff ships (mls-rs 0.57, RustCrypto provider,
//! CURVE25519_CHACHA), measured in this process (no network: these are the
//! client's CPU costs, the part that grows with the group).
//!
//! For a group of `--members` (default 200) it times, over `--rounds`
//! (default 5) rounds of add-one-then-remove-one:
//! - the committer's commit (build + apply) for adding one member and for removing one;
//! - one other member's processing of each commit;
//! - the new member's join from the welcome;
//! - the commit and welcome sizes.
//!
//! Prints one JSON object (medians in microseconds). Run in release:
//! `cargo run --release -p handoff-load-tests --bin handoff-mls-bench`.

use std::time::Instant;

use handoff_crypto::UserSecrets;
use handoff_crypto::mls::{Directory, MlsStore, MlsUser, Processed};
use handoff_protocol::{PracticeId, UserId};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn user(n: u32, dir: &Directory) -> anyhow::Result<MlsUser> {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    Ok(MlsUser::new(UserId::from_bytes(id), &UserSecrets::generate()?, MlsStore::new(), dir.clone()))
}

fn main() -> anyhow::Result<()> {
    let size = arg("--members", 200);
    let rounds = arg("--rounds", 5);
    let p = PracticeId(uuid::Uuid::new_v4());
    let dir = Directory::default();
    let members: Vec<MlsUser> = (0..size as u32).map(|n| user(n, &dir)).collect::<anyhow::Result<_>>()?;
    let admin = &members[0];
    let admin_id = {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&0u32.to_be_bytes());
        UserId::from_bytes(id)
    };
    let observer = &members[1];
    admin.create_group(p)?;
    let t = Instant::now();
    let kps: Vec<Vec<u8>> = members[1..].iter().map(|u| u.key_package()).collect::<Result<_, _>>()?;
    let pc = admin.commit(p, &kps, &[])?;
    admin.apply_pending(p)?;
    // The largest messages a practice makes: everyone added in one commit (the server's MLS size limits are sized from these).
    let (build_commit_bytes, build_welcome_bytes) = (pc.commit.len(), pc.welcome.as_ref().map_or(0, Vec::len));
    for u in &members[1..] {
        u.join(p, pc.welcome.as_deref().ok_or_else(|| anyhow::anyhow!("no welcome"))?)?;
    }
    let build_ms = t.elapsed().as_millis();

    let (mut add_commit, mut add_process, mut join, mut rm_commit, mut rm_process) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut add_bytes, mut welcome_bytes, mut rm_bytes) = (0, 0, 0);
    for r in 0..rounds {
        let newcomer = user(10_000 + r as u32, &dir)?;
        let kp = newcomer.key_package()?;
        let t = Instant::now();
        let add = admin.commit(p, &[kp], &[])?;
        admin.apply_pending(p)?;
        add_commit.push(t.elapsed().as_micros());
        add_bytes = add.commit.len();
        let welcome = add.welcome.clone().ok_or_else(|| anyhow::anyhow!("no welcome"))?;
        welcome_bytes = welcome.len();
        let t = Instant::now();
        let Processed::Advanced(_) = observer.process(p, &add.commit, &add.declared(admin_id))? else { anyhow::bail!("observer removed") };
        add_process.push(t.elapsed().as_micros());
        for u in &members[2..] {
            u.process(p, &add.commit, &add.declared(admin_id))?;
        }
        let t = Instant::now();
        newcomer.join(p, &welcome)?;
        join.push(t.elapsed().as_micros());

        let gone = newcomer.members(p)?.into_iter().find(|u| u.as_bytes()[..4] == (10_000 + r as u32).to_be_bytes());
        let gone = gone.ok_or_else(|| anyhow::anyhow!("newcomer not in group"))?;
        let t = Instant::now();
        let rm = admin.commit(p, &[], &[gone])?;
        admin.apply_pending(p)?;
        rm_commit.push(t.elapsed().as_micros());
        rm_bytes = rm.commit.len();
        let t = Instant::now();
        let Processed::Advanced(_) = observer.process(p, &rm.commit, &rm.declared(admin_id))? else { anyhow::bail!("observer removed") };
        rm_process.push(t.elapsed().as_micros());
        for u in &members[2..] {
            u.process(p, &rm.commit, &rm.declared(admin_id))?;
        }
        if newcomer.process(p, &rm.commit, &rm.declared(admin_id))? != Processed::Removed {
            anyhow::bail!("the removed member was not removed");
        }
        let k = admin.epoch_key(p)?;
        if observer.epoch_key(p)? != k || members[size - 1].epoch_key(p)? != k {
            anyhow::bail!("members disagree on the epoch key");
        }
    }
    let state_bytes = observer.store().to_bytes()?.len();
    println!(
        "{}",
        serde_json::json!({
            "members": size,
            "rounds": rounds,
            "cipher_suite": "CURVE25519_CHACHA",
            "build_group_ms": build_ms,
            "build_group_commit_bytes": build_commit_bytes,
            "build_group_welcome_bytes": build_welcome_bytes,
            "add_one": {
                "commit_us": median(add_commit),
                "process_us_per_member": median(add_process),
                "join_us": median(join),
                "commit_bytes": add_bytes,
                "welcome_bytes": welcome_bytes,
            },
            "remove_one": {
                "commit_us": median(rm_commit),
                "process_us_per_member": median(rm_process),
                "commit_bytes": rm_bytes,
            },
            "member_state_bytes": state_bytes,
            "admin_state_bytes": admin.store().to_bytes()?.len(),
        })
    );
    Ok(())
}
