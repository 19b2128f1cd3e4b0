//! What one `subscribe` replays: the events after the subscriber's position,
//! up to the stream's head, at most a page at a time.
//!
//! A stream numbers its events 1, 2, 3…, and its head is the highest seq it
//! has. A subscriber says where it is (`after_seq`: it has everything up to
//! there); a position past the head is refused, since no event could follow it
//! and a subscriber kept there would never be sent anything again. The
//! arithmetic is checked for every `u64`: this is the one place the position a
//! client sends meets the stream's numbers.

/// The events a `subscribe` replays: seqs `after + 1 ..= after + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The subscriber's position: it has every event up to this seq.
    pub after: u64,
    /// How many events follow it in this page (at most the page size).
    pub count: u32,
    /// More events than one page follow: the subscriber asks again after the last one sent.
    pub more: bool,
}

impl Replay {
    /// The seq of the last event this page replays (`after` if none).
    pub fn last(&self) -> u64 {
        // `after + count <= head` (see `replay`), so this cannot overflow.
        self.after.saturating_add(u64::from(self.count))
    }
}

/// A position past the stream's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("subscribe after {after_seq}, but the stream has only reached {head}; subscribe after at most {head} (0 replays it all)")]
pub struct SeqAhead {
    /// The stream's head.
    pub head: u64,
    /// The position asked for.
    pub after_seq: u64,
}

/// The replay for a subscriber at `after_seq` on a stream whose head is
/// `head`, pages of at most `page` events; [`SeqAhead`] if `after_seq` is past
/// the head.
pub fn replay(head: u64, after_seq: u64, page: u32) -> Result<Replay, SeqAhead> {
    let behind = head.checked_sub(after_seq).ok_or(SeqAhead { head, after_seq })?;
    let count = u32::try_from(behind).unwrap_or(u32::MAX).min(page);
    Ok(Replay { after: after_seq, count, more: behind > u64::from(count) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXTREMES: [u64; 10] = [0, 1, 2, 499, 500, 501, u32::MAX as u64, i64::MAX as u64, u64::MAX - 1, u64::MAX];

    /// What every answer must satisfy, for any input.
    fn check(head: u64, after: u64, page: u32) {
        match replay(head, after, page) {
            Err(e) => {
                assert!(after > head, "refused at or below the head: {head} {after}");
                assert_eq!(e, SeqAhead { head, after_seq: after });
            }
            Ok(r) => {
                assert!(after <= head);
                assert_eq!(r.after, after);
                assert!(r.count <= page);
                assert!(r.last() <= head, "replays past the head: {r:?} {head}");
                assert_eq!(r.more, r.last() < head, "{r:?} {head}");
                assert_eq!(u64::from(r.count), (head - after).min(u64::from(page)));
            }
        }
    }

    #[test]
    fn positions_past_the_head_are_refused() {
        assert_eq!(replay(4, 5, 500), Err(SeqAhead { head: 4, after_seq: 5 }));
        assert_eq!(replay(4, u64::MAX, 500), Err(SeqAhead { head: 4, after_seq: u64::MAX }));
        assert_eq!(replay(0, 1, 500), Err(SeqAhead { head: 0, after_seq: 1 }));
        assert!(replay(4, u64::MAX, 500).unwrap_err().to_string().contains("at most 4"));
    }

    #[test]
    fn positions_at_or_below_the_head_replay_what_follows_in_pages() {
        assert_eq!(replay(0, 0, 500), Ok(Replay { after: 0, count: 0, more: false }));
        assert_eq!(replay(4, 4, 500), Ok(Replay { after: 4, count: 0, more: false }));
        assert_eq!(replay(4, 0, 500), Ok(Replay { after: 0, count: 4, more: false }));
        assert_eq!(replay(1200, 100, 500), Ok(Replay { after: 100, count: 500, more: true }));
        assert_eq!(replay(600, 100, 500), Ok(Replay { after: 100, count: 500, more: false }));
        assert_eq!(replay(u64::MAX, 0, 500), Ok(Replay { after: 0, count: 500, more: true }));
        assert_eq!(replay(u64::MAX, u64::MAX, 500).map(|r| r.last()), Ok(u64::MAX));
    }

    #[test]
    fn every_extreme_combination_holds_the_invariants() {
        for head in EXTREMES {
            for after in EXTREMES.iter().copied().chain([head.wrapping_sub(1), head, head.wrapping_add(1)]) {
                for page in [0, 1, 500, u32::MAX] {
                    check(head, after, page);
                }
            }
        }
    }

    #[test]
    fn random_inputs_hold_the_invariants() {
        // xorshift64: deterministic, spread over the whole range and near the edges.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..100_000 {
            let (a, b, c) = (next(), next(), next());
            let head = if a & 1 == 0 { a } else { a >> (a % 64) };
            let after = match b % 4 {
                0 => b,
                1 => head.wrapping_add(b % 3).wrapping_sub(1),
                2 => b >> (b % 64),
                _ => head.saturating_sub(b % 1000),
            };
            check(head, after, (c % 1001) as u32);
        }
    }
}
