//! The subscribe decision: what `subscribe` replays for any stream head, any
//! client-chosen `after_seq` and any page size (`handoff_domain::replay`).
//! Never panics; refuses exactly the positions past the head; never replays
//! past the head or more than a page; says `more` exactly when events remain.
#![no_main]
use handoff_domain::replay::{SeqAhead, replay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u64, u64, u32)| {
    let (head, after_seq, page) = input;
    match replay(head, after_seq, page) {
        Err(e) => {
            assert!(after_seq > head);
            assert_eq!(e, SeqAhead { head, after_seq });
        }
        Ok(r) => {
            assert!(after_seq <= head);
            assert_eq!(r.after, after_seq);
            assert!(r.count <= page);
            assert!(r.last() <= head);
            assert_eq!(u64::from(r.count), (head - after_seq).min(u64::from(page)));
            assert_eq!(r.more, r.last() < head);
        }
    }
});
