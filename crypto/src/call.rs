//! The built-in video call's signalling seal.
//!
//! The host's browser makes a fresh 32-byte *call key* at admission and seals
//! it to the guest with HPKE (see the room crypto). Every signalling message of
//! the call (offer, answer, ICE candidates, media state, hang-up) then travels
//! through the server sealed under that key with XChaCha20-Poly1305, so the
//! server relays bytes it can neither read nor alter:
//!
//! - wire format: `counter (u64, big-endian, 8 bytes) || version(1) || nonce(24) || ciphertext+tag`;
//! - AAD: `"handoff call v1" || room id (16) || guest id (16) || direction || counter (8, big-endian)`,
//!   where the direction is `"host-to-guest"` or `"guest-to-host"`.
//!
//! The counter starts at 1 and rises by one per message in each direction. A
//! receiver refuses any counter at or below the last one it accepted (a replay
//! or a reorder), a message sealed for the other direction (a host's own offer
//! reflected back to it), for another room or guest, or one whose bytes were
//! changed. The counter is authenticated through the AAD, so rewriting it
//! breaks the tag.

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::{CryptoError, random_array, seal};

/// The domain label at the head of every call AAD.
const LABEL: &[u8] = b"handoff call v1";
/// Length of the counter prefix on the wire.
const COUNTER_LEN: usize = 8;

/// Which way a signalling message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the host, read by the guest.
    HostToGuest,
    /// Sent by the guest, read by the host.
    GuestToHost,
}

impl Direction {
    fn label(self) -> &'static [u8] {
        match self {
            Direction::HostToGuest => b"host-to-guest",
            Direction::GuestToHost => b"guest-to-host",
        }
    }

    /// The other direction.
    pub fn reverse(self) -> Self {
        match self {
            Direction::HostToGuest => Direction::GuestToHost,
            Direction::GuestToHost => Direction::HostToGuest,
        }
    }
}

/// Why a signalling message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The message is shorter than its counter and sealed box.
    #[error("malformed signalling message")]
    Malformed,
    /// The counter is not above the last accepted one: a replay or a reorder.
    #[error("signalling message {counter} replayed or out of order (last accepted {last})")]
    Replayed {
        /// The counter the message carried.
        counter: u64,
        /// The highest counter accepted so far.
        last: u64,
    },
    /// The message did not authenticate: another key, room, guest or
    /// direction, or changed bytes.
    #[error("signalling message does not authenticate: {0}")]
    Open(CryptoError),
    /// The sending counter is exhausted (2^64 messages: never in practice).
    #[error("signalling counter exhausted")]
    Exhausted,
    /// The plaintext is not a signalling message.
    #[error("signalling message is not a known signal")]
    Format,
}

/// A fresh call key: 32 random bytes, wiped on drop.
pub struct CallKey([u8; 32]);

impl CallKey {
    /// Draws a new call key from the OS random source.
    pub fn generate() -> Result<Self, CryptoError> {
        random_array().map(Self)
    }

    /// Wraps received key bytes (from an opened admission).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes (to seal into the admission).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for CallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallKey(..)")
    }
}

impl Drop for CallKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// One side's end of the sealed signalling channel: it seals what it sends in
/// its own direction with a rising counter, and opens what it receives from the
/// other direction, refusing anything at or below the last counter accepted.
#[derive(Debug)]
pub struct CallSeal {
    key: CallKey,
    room: [u8; 16],
    guest: [u8; 16],
    sends: Direction,
    sent: u64,
    received: u64,
}

impl CallSeal {
    /// A channel end for the call of `guest` in `room` (raw UUID bytes) that
    /// sends in direction `sends` and receives in the reverse one.
    pub fn new(key: CallKey, room: [u8; 16], guest: [u8; 16], sends: Direction) -> Self {
        Self { key, room, guest, sends, sent: 0, received: 0 }
    }

    fn aad(&self, direction: Direction, counter: u64) -> Vec<u8> {
        let label = direction.label();
        let mut aad = Vec::with_capacity(LABEL.len() + 32 + label.len() + COUNTER_LEN);
        aad.extend_from_slice(LABEL);
        aad.extend_from_slice(&self.room);
        aad.extend_from_slice(&self.guest);
        aad.extend_from_slice(label);
        aad.extend_from_slice(&counter.to_be_bytes());
        aad
    }

    /// Seals `plaintext` as the next message of this side's direction.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CallError> {
        let counter = self.sent.checked_add(1).ok_or(CallError::Exhausted)?;
        let boxed = seal::seal(self.key.as_bytes(), &self.aad(self.sends, counter), plaintext).map_err(CallError::Open)?;
        self.sent = counter;
        let mut out = Vec::with_capacity(COUNTER_LEN + boxed.len());
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&boxed);
        Ok(out)
    }

    /// Opens a message from the other side. On any refusal the state is
    /// unchanged, so a forged message cannot push the counter forward.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, CallError> {
        let (counter, boxed) = sealed.split_first_chunk::<COUNTER_LEN>().ok_or(CallError::Malformed)?;
        let counter = u64::from_be_bytes(*counter);
        if counter <= self.received {
            return Err(CallError::Replayed { counter, last: self.received });
        }
        let plain = seal::open(self.key.as_bytes(), &self.aad(self.sends.reverse(), counter), boxed).map_err(CallError::Open)?;
        self.received = counter;
        Ok(plain)
    }

    /// Seals one [`Signal`] as JSON.
    pub fn seal_signal(&mut self, signal: &Signal) -> Result<Vec<u8>, CallError> {
        let json = serde_json::to_vec(signal).map_err(|_| CallError::Format)?;
        self.seal(&json)
    }

    /// Opens one [`Signal`].
    pub fn open_signal(&mut self, sealed: &[u8]) -> Result<Signal, CallError> {
        let plain = self.open(sealed)?;
        serde_json::from_slice(&plain).map_err(|_| CallError::Format)
    }
}

/// One signalling message of the call, the plaintext under the seal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Signal {
    /// The guest's call screen is up and has its camera: the host may offer.
    Ready,
    /// The host's SDP offer.
    Offer {
        /// The session description.
        sdp: String,
    },
    /// The guest's SDP answer.
    Answer {
        /// The session description.
        sdp: String,
    },
    /// A trickled ICE candidate.
    Candidate {
        /// The `candidate:` attribute line.
        candidate: String,
        /// The media stream identification tag.
        sdp_mid: Option<String>,
        /// The m-line index.
        sdp_m_line_index: Option<u16>,
    },
    /// Whether the sender's microphone and camera are on.
    Media {
        /// The microphone is on.
        audio: bool,
        /// The camera is on.
        video: bool,
    },
    /// The sender hung up.
    Hangup,
    /// The sender refused the call: a signal failed to open or the negotiated
    /// certificate did not match the authenticated SDP.
    Refused,
}

/// The `a=fingerprint:` attributes of an SDP, as `(algorithm, fingerprint)`
/// with the algorithm lower-cased and the hex fingerprint upper-cased, in
/// order of appearance (session level and media level alike).
pub fn sdp_fingerprints(sdp: &str) -> Vec<(String, String)> {
    sdp.lines()
        .filter_map(|line| line.trim().strip_prefix("a=fingerprint:"))
        .filter_map(|rest| {
            let (alg, fp) = rest.trim().split_once(' ')?;
            Some((alg.trim().to_ascii_lowercase(), fp.trim().to_ascii_uppercase()))
        })
        .collect()
}

/// Whether the certificate fingerprint the DTLS handshake actually negotiated
/// (`algorithm`, `fingerprint` from `getStats()`) is one the authenticated SDP
/// declared. An SDP with no fingerprint never matches.
pub fn fingerprint_matches(declared: &[(String, String)], algorithm: &str, fingerprint: &str) -> bool {
    let (alg, fp) = (algorithm.trim().to_ascii_lowercase(), fingerprint.trim().to_ascii_uppercase());
    declared.iter().any(|(a, f)| *a == alg && *f == fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: [u8; 16] = [1; 16];
    const GUEST: [u8; 16] = [2; 16];

    fn pair() -> (CallSeal, CallSeal) {
        let key = CallKey::generate().unwrap();
        let bytes = *key.as_bytes();
        (
            CallSeal::new(key, ROOM, GUEST, Direction::HostToGuest),
            CallSeal::new(CallKey::from_bytes(bytes), ROOM, GUEST, Direction::GuestToHost),
        )
    }

    #[test]
    fn a_sealed_signal_opens_on_the_other_side_in_both_directions() {
        let (mut host, mut guest) = pair();
        let offer = Signal::Offer { sdp: "v=0\r\na=fingerprint:sha-256 AB:CD\r\n".into() };
        let sealed = host.seal_signal(&offer).unwrap();
        assert_eq!(guest.open_signal(&sealed).unwrap(), offer);
        let answer = Signal::Answer { sdp: "v=0".into() };
        assert_eq!(host.open_signal(&guest.seal_signal(&answer).unwrap()).unwrap(), answer);
    }

    #[test]
    fn a_replayed_signal_is_refused() {
        let (mut host, mut guest) = pair();
        let sealed = host.seal(b"offer").unwrap();
        guest.open(&sealed).unwrap();
        assert_eq!(guest.open(&sealed), Err(CallError::Replayed { counter: 1, last: 1 }));
    }

    #[test]
    fn a_signal_reordered_below_the_last_is_refused() {
        let (mut host, mut guest) = pair();
        let first = host.seal(b"one").unwrap();
        let second = host.seal(b"two").unwrap();
        assert_eq!(guest.open(&second).unwrap(), b"two");
        assert_eq!(guest.open(&first), Err(CallError::Replayed { counter: 1, last: 2 }));
    }

    #[test]
    fn a_skipped_counter_is_accepted_but_never_one_below() {
        let (mut host, mut guest) = pair();
        let _lost = host.seal(b"lost").unwrap();
        let next = host.seal(b"next").unwrap();
        assert_eq!(guest.open(&next).unwrap(), b"next");
    }

    #[test]
    fn a_signal_reflected_back_to_its_sender_is_refused() {
        let (mut host, _guest) = pair();
        let own = host.seal(b"offer").unwrap();
        assert!(matches!(host.open(&own), Err(CallError::Open(_))));
    }

    #[test]
    fn a_signal_for_another_room_or_guest_is_refused() {
        let key = CallKey::generate().unwrap();
        let bytes = *key.as_bytes();
        let mut host = CallSeal::new(key, ROOM, GUEST, Direction::HostToGuest);
        let sealed = host.seal(b"offer").unwrap();
        let mut other_room = CallSeal::new(CallKey::from_bytes(bytes), [9; 16], GUEST, Direction::GuestToHost);
        assert!(matches!(other_room.open(&sealed), Err(CallError::Open(_))));
        let mut other_guest = CallSeal::new(CallKey::from_bytes(bytes), ROOM, [9; 16], Direction::GuestToHost);
        assert!(matches!(other_guest.open(&sealed), Err(CallError::Open(_))));
    }

    #[test]
    fn a_signal_under_another_call_key_is_refused() {
        let (mut host, _) = pair();
        let (_, mut stranger) = pair();
        assert!(matches!(stranger.open(&host.seal(b"offer").unwrap()), Err(CallError::Open(_))));
    }

    #[test]
    fn a_tampered_signal_is_refused_and_does_not_advance_the_counter() {
        let (mut host, mut guest) = pair();
        let sealed = host.seal(b"a=fingerprint:sha-256 AB").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0x01;
            }
            assert!(guest.open(&bad).is_err(), "flipping byte {i} went unnoticed");
        }
        // The genuine message still opens: the forgeries moved nothing.
        assert_eq!(guest.open(&sealed).unwrap(), b"a=fingerprint:sha-256 AB");
    }

    #[test]
    fn a_rewritten_counter_is_refused() {
        let (mut host, mut guest) = pair();
        let mut sealed = host.seal(b"offer").unwrap();
        if let Some(last) = sealed.get_mut(7) {
            *last = 5;
        }
        assert!(matches!(guest.open(&sealed), Err(CallError::Open(_))));
    }

    #[test]
    fn a_plaintext_sdp_injected_in_place_of_a_sealed_one_is_refused() {
        let (_, mut guest) = pair();
        let injected = serde_json::to_vec(&Signal::Offer { sdp: "v=0\r\na=fingerprint:sha-256 00:11\r\n".into() }).unwrap();
        assert!(guest.open_signal(&injected).is_err());
        assert_eq!(guest.open(&[0, 0, 0]), Err(CallError::Malformed));
    }

    #[test]
    fn the_negotiated_fingerprint_must_be_one_the_sdp_declared() {
        let sdp = "v=0\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 ab:cd:EF\r\n";
        let declared = sdp_fingerprints(sdp);
        assert_eq!(declared, vec![("sha-256".to_string(), "AB:CD:EF".to_string())]);
        assert!(fingerprint_matches(&declared, "SHA-256", "AB:CD:ef"));
        assert!(!fingerprint_matches(&declared, "sha-256", "AB:CD:00"));
        assert!(!fingerprint_matches(&declared, "sha-1", "AB:CD:EF"));
        assert!(!fingerprint_matches(&sdp_fingerprints("v=0\r\n"), "sha-256", "AB:CD:EF"));
    }
}
