//! Conformance tests: mail.

use super::*;

suite! {
    __conformance_mail;

    pub async fn mail_outbox_lifecycle(s: &dyn Store) {
        let id =
            s.enqueue_mail(NewMail { recipient: "x@example.org".into(), subject: "Hi".into(), body: "link".into(), now: 100 }).await.unwrap();
        assert!(s.due_mail(99, 10).await.unwrap().is_empty(), "not due before its time");
        let due = s.due_mail(100, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].id, due[0].attempts, due[0].body.as_str()), (id, 0, "link"));
        s.mail_failed(id, 200, "connection refused").await.unwrap();
        assert!(s.due_mail(150, 10).await.unwrap().is_empty(), "backed off");
        assert_eq!(s.due_mail(200, 10).await.unwrap()[0].attempts, 1);
        s.mail_sent(id, 210).await.unwrap();
        assert!(s.due_mail(i64::MAX, 10).await.unwrap().is_empty());
        assert!(matches!(s.mail_sent(id, 220).await, Err(MailError::NotQueued)), "sent exactly once");
    }

    pub async fn sent_mail_is_purged_and_queued_mail_is_not(s: &dyn Store) {
        let sent =
            s.enqueue_mail(NewMail { recipient: "a@example.org".into(), subject: "A".into(), body: "x".into(), now: 100 }).await.unwrap();
        let queued =
            s.enqueue_mail(NewMail { recipient: "b@example.org".into(), subject: "B".into(), body: "y".into(), now: 100 }).await.unwrap();
        s.mail_sent(sent, 150).await.unwrap();
        assert_eq!(s.purge_sent_mail(150).await.unwrap(), 0, "sent at the cut-off: kept");
        assert_eq!(s.purge_sent_mail(151).await.unwrap(), 1);
        assert_eq!(s.purge_sent_mail(i64::MAX).await.unwrap(), 0, "unsent mail is never purged");
        let due = s.due_mail(i64::MAX, 10).await.unwrap();
        assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), vec![queued]);
        assert!(matches!(s.mail_sent(sent, 160).await, Err(MailError::NotQueued)), "the purged record is gone");
    }

    pub async fn the_outbox_counts_unsent_mail_and_its_oldest_time(s: &dyn Store) {
        assert_eq!(s.outbox().await.unwrap(), Outbox { unsent: 0, oldest_queued_at: None }, "empty");
        let mail = |now| NewMail { recipient: "o@example.org".into(), subject: "O".into(), body: "z".into(), now };
        let first = s.enqueue_mail(mail(100)).await.unwrap();
        let second = s.enqueue_mail(mail(300)).await.unwrap();
        s.mail_failed(second, 10_000, "later").await.unwrap();
        assert_eq!(s.outbox().await.unwrap(), Outbox { unsent: 2, oldest_queued_at: Some(100) }, "a backed-off mail counts too");
        s.mail_sent(first, 400).await.unwrap();
        assert_eq!(s.outbox().await.unwrap(), Outbox { unsent: 1, oldest_queued_at: Some(300) }, "sent mail leaves the outbox");
    }
}
