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
}
