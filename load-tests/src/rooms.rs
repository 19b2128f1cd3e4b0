//! The waiting room (issue 15): one room, 500 guests waiting and 3 hosts.
//!
//! Guests check in over HTTP first (untimed), open their guest sockets, and
//! then each sends `guest_check_in` in turn: the clock runs from just before
//! the send to the `guest_waiting` event on each of the 3 host sockets (one
//! sample per host). Then a host admits each guest in turn: the clock runs
//! from just before `room_admit` to the `admitted` event on that guest's
//! socket. In the same run, the tokio-tungstenite baseline relays a frame of
//! the same size from one client to another: its one-hop latency is the floor.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use handoff_client::live::Live;
use handoff_protocol::api::{CheckInRoom, CreateRoom};
use handoff_protocol::v1::{CheckIn, NewRoom, RoomSettings};
use handoff_protocol::ws::{Command, HostStatus, RoomEvent};
use handoff_protocol::{B64, GuestId, RoomId};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, Baseline, Target, World, pct, small_config, start_baseline, start_ours_with};

/// What the rooms scenario measured.
#[derive(Clone, Debug, Serialize)]
pub struct RoomsResult {
    /// Guests waiting.
    pub guests: usize,
    /// Host sockets.
    pub hosts: usize,
    /// From a guest's `guest_check_in` to each host socket's `guest_waiting`, ms.
    pub checkin_to_hosts_p50_ms: f64,
    /// As above, 99th percentile.
    pub checkin_to_hosts_p99_ms: f64,
    /// From a host's `room_admit` to the guest socket's `admitted`, ms.
    pub admit_to_guest_p50_ms: f64,
    /// As above, 99th percentile.
    pub admit_to_guest_p99_ms: f64,
    /// The tokio-tungstenite baseline: one client's frame to another client, ms.
    pub baseline_one_hop_p50_ms: f64,
    /// As above, 99th percentile.
    pub baseline_one_hop_p99_ms: f64,
}

const SEALED: usize = 300;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the scenario against our `bin` and the baseline at `baseline_bin`.
pub async fn run(bin: &Path, baseline_bin: &Path, guests: usize) -> Result<RoomsResult> {
    let extra = format!("room_max_waiting = {}\nroom_checkins_per_minute_per_address = 1000000\n", guests * 2);
    let server = start_ours_with(bin, None, None, &extra).await?;
    let w = World::new(&server).await?;
    let room = w
        .moa
        .call::<CreateRoom>(
            &w.from,
            &NewRoom {
                id: RoomId(uuid::Uuid::new_v4()),
                name: "Bench room".into(),
                sealed_secret: B64(vec![1; 48]),
                epoch: 0,
                settings: RoomSettings::default(),
            },
        )
        .await?;
    // Three host sockets, each read by its own task that stamps every guest_waiting.
    let seen: Arc<Mutex<HashMap<GuestId, Vec<Instant>>>> = Arc::default();
    let mut hosts = Vec::new();
    for _ in 0..3 {
        let live = w.moa.live().await?;
        live.live_command(Command::RoomHost { room: room.id, status: HostStatus::Ready }).await?;
        hosts.push(live);
    }
    let mut admitter = hosts.pop().context("a host")?;
    let mut readers = Vec::new();
    for mut live in hosts {
        let seen = seen.clone();
        readers.push(tokio::spawn(async move {
            while let Some((_, e)) = live.next_room_event(Duration::from_secs(30)).await {
                if let RoomEvent::GuestWaiting { guest, .. } = e {
                    seen.lock().map(|mut m| m.entry(guest).or_default().push(Instant::now())).ok();
                }
            }
        }));
    }
    // The admitting host's socket is read on this task, between check-ins.
    // Check in over HTTP and open the guest sockets (untimed).
    let anon = handoff_client::Client::new(server.url.clone());
    let mut socks = Vec::with_capacity(guests);
    for _ in 0..guests {
        let c = anon.call::<CheckInRoom>(&room.link, &CheckIn { sealed: B64(vec![7; SEALED]) }).await?;
        socks.push((c.guest, Live::connect_guest(&server.url, &c.token).await?));
    }
    // Timed: each guest checks in on its socket; 3 hosts see it.
    let mut sent: HashMap<GuestId, Instant> = HashMap::new();
    let mut admitter_seen: HashMap<GuestId, Instant> = HashMap::new();
    for (guest, live) in &socks {
        sent.insert(*guest, Instant::now());
        live.live_command(Command::GuestCheckIn { sealed: B64(vec![7; SEALED]) }).await?;
        // The admitting host's copy.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match admitter.next_room_event(Duration::from_secs(10)).await {
                Some((_, RoomEvent::GuestWaiting { guest: g, .. })) if g == *guest => {
                    admitter_seen.insert(g, Instant::now());
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut checkin = Vec::new();
    {
        let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        for (guest, t0) in &sent {
            for t in seen.get(guest).into_iter().flatten().chain(admitter_seen.get(guest)) {
                checkin.push(ms(t.saturating_duration_since(*t0)));
            }
        }
    }
    if checkin.len() < guests * 3 {
        bail!("only {} of {} host deliveries arrived", checkin.len(), guests * 3);
    }
    // Timed: each guest admitted in turn.
    let mut admit = Vec::new();
    for (guest, live) in socks.iter_mut() {
        let t0 = Instant::now();
        let cmd = admitter.live_command(Command::RoomAdmit { room: room.id, guest: *guest, sealed_admission: B64(vec![9; 200]) });
        let arrival = async {
            let got = live.wait_room(Duration::from_secs(10), |e| matches!(e, RoomEvent::Admitted { .. })).await;
            got.map(|_| t0.elapsed())
        };
        let (ack, took) = tokio::join!(cmd, arrival);
        ack?;
        admit.push(ms(took.context("a guest's admission never arrived")?));
    }
    for r in readers {
        r.abort();
    }
    drop(server);
    // The baseline's one hop, with a frame of the same size.
    let base = start_baseline(Baseline::Rust, baseline_bin).await?;
    let t = Target::baseline(&base);
    let mut a = common::connect(&t, None, small_config()).await?;
    let mut b = common::connect(&t, None, small_config()).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let payload = "x".repeat(SEALED * 4 / 3 + 120);
    let mut hop = Vec::new();
    for _ in 0..guests {
        let t0 = Instant::now();
        a.send(Message::Text(payload.clone().into())).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), b.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => break,
                Ok(Some(Ok(_))) => {}
                _ => bail!("the baseline dropped a frame"),
            }
        }
        hop.push(ms(t0.elapsed()));
    }
    for v in [&mut checkin, &mut admit, &mut hop] {
        v.sort_by(f64::total_cmp);
    }
    let r = RoomsResult {
        guests,
        hosts: 3,
        checkin_to_hosts_p50_ms: pct(&checkin, 0.5),
        checkin_to_hosts_p99_ms: pct(&checkin, 0.99),
        admit_to_guest_p50_ms: pct(&admit, 0.5),
        admit_to_guest_p99_ms: pct(&admit, 0.99),
        baseline_one_hop_p50_ms: pct(&hop, 0.5),
        baseline_one_hop_p99_ms: pct(&hop, 0.99),
    };
    eprintln!("  rooms: {r:?}");
    Ok(r)
}
