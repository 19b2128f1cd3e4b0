//! The referral state machine.
//!
//! `sent → accepted | rejected | cancelled`, and `accepted → cancelled`.
//! Rejected and cancelled referrals are closed: nothing moves them again, and
//! only open referrals (sent or accepted) are re-filed or change urgency.

use handoff_protocol::ws::Status;

/// A status change the state machine does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", format!("a {from:?} referral cannot become {to:?}").to_lowercase())]
pub struct TransitionError {
    /// The referral's status now.
    pub from: Status,
    /// The status the command asked for.
    pub to: Status,
}

/// `Ok` if a referral in status `from` may move to `to`.
pub fn transition(from: Status, to: Status) -> Result<(), TransitionError> {
    let ok = matches!(
        (from, to),
        (Status::Sent, Status::Accepted)
            | (Status::Sent, Status::Rejected)
            | (Status::Sent, Status::Cancelled)
            | (Status::Accepted, Status::Cancelled)
    );
    if ok { Ok(()) } else { Err(TransitionError { from, to }) }
}

/// Whether the referral is still open: sent or accepted. Only open referrals
/// are re-filed or change urgency.
pub fn is_open(s: Status) -> bool {
    match s {
        Status::Sent | Status::Accepted => true,
        Status::Rejected | Status::Cancelled => false,
    }
}

/// The status as it is written on the wire, in the store and in emails.
pub fn name(s: Status) -> &'static str {
    match s {
        Status::Sent => "sent",
        Status::Accepted => "accepted",
        Status::Rejected => "rejected",
        Status::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Status; 4] = [Status::Sent, Status::Accepted, Status::Rejected, Status::Cancelled];

    #[test]
    fn every_transition_is_allowed_or_refused_as_the_machine_says() {
        let allowed = [
            (Status::Sent, Status::Accepted),
            (Status::Sent, Status::Rejected),
            (Status::Sent, Status::Cancelled),
            (Status::Accepted, Status::Cancelled),
        ];
        for from in ALL {
            for to in ALL {
                let r = transition(from, to);
                assert_eq!(r.is_ok(), allowed.contains(&(from, to)), "{from:?} -> {to:?}: {r:?}");
                if let Err(e) = r {
                    assert_eq!(e, TransitionError { from, to });
                }
            }
        }
    }

    #[test]
    fn no_status_moves_to_itself_and_nothing_reopens() {
        for s in ALL {
            assert!(transition(s, s).is_err(), "{s:?} -> {s:?}");
            assert!(transition(s, Status::Sent).is_err(), "{s:?} -> sent");
        }
    }

    #[test]
    fn the_refusal_reads_as_the_clients_show_it() {
        assert_eq!(transition(Status::Rejected, Status::Accepted).unwrap_err().to_string(), "a rejected referral cannot become accepted");
        assert_eq!(transition(Status::Accepted, Status::Rejected).unwrap_err().to_string(), "a accepted referral cannot become rejected");
    }

    #[test]
    fn only_sent_and_accepted_are_open() {
        assert!(is_open(Status::Sent));
        assert!(is_open(Status::Accepted));
        assert!(!is_open(Status::Rejected));
        assert!(!is_open(Status::Cancelled));
    }

    #[test]
    fn names_match_the_wire_format() {
        for s in ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::String(name(s).into()), "{s:?}");
        }
    }
}
