//! Referral work as a browser does it: encrypt before sending, decrypt after
//! receiving, sign and verify thread messages.

use handoff_crypto::item::{Item, OpenKey};
use handoff_crypto::referral::{AttachmentMeta, MessageBody, ReferralContent, ReferralKey};
use handoff_protocol::api::{GetBlob, GetReferral, GetUserKeys, ListReferrals, PutBlob, SetNotifications};
use handoff_protocol::v1::{DirectoryEntry, NotificationSettings, UserKeys};
use handoff_protocol::ws::{
    AckBody, Attachment, BlobId, Command, Destination, MessageId, NewReferral, Referral, ReferralId, RejectReason, Routing, ThreadMessage,
};
use handoff_protocol::{B64, PracticeId, UserId};

use crate::live::Live;
use crate::{Client, ClientError, Result};

/// A file to attach.
#[derive(Clone, Debug)]
pub struct File {
    /// The file name shown to recipients (sealed before upload).
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// The file's plaintext content.
    pub bytes: Vec<u8>,
}

/// Where to send.
#[derive(Clone, Copy, Debug)]
pub enum To {
    /// A named practice.
    Practice(PracticeId),
    /// "Choose for me".
    ChooseForMe,
}

impl Client {
    /// Checks a directory entry's public key signature against its signer's key.
    pub async fn verify_directory_entry(&self, e: &DirectoryEntry) -> Result<()> {
        let signer = self.user_keys(e.public_key.signer).await?;
        Ok(handoff_client_core::account::verify_directory_entry(e, signer.sign_pub.as_slice())?)
    }

    /// A user's public keys.
    pub async fn user_keys(&self, user: UserId) -> Result<UserKeys> {
        self.call::<GetUserKeys>(&user, &()).await
    }

    /// Opts in or out of status emails for a practice.
    pub async fn set_email_on_status(&self, practice: PracticeId, on: bool) -> Result<()> {
        self.call::<SetNotifications>(&practice, &NotificationSettings { email_on_status: on }).await?;
        Ok(())
    }

    /// Referrals a practice sent or received.
    pub async fn referrals(&self, practice: PracticeId) -> Result<Vec<Referral>> {
        Ok(self.call::<ListReferrals>(&practice, &()).await?.referrals)
    }

    /// One referral.
    pub async fn referral(&self, id: ReferralId) -> Result<Referral> {
        self.call::<GetReferral>(&id, &()).await
    }

    /// Encrypts and uploads a file under `R`.
    pub async fn upload(&self, r: &ReferralKey, f: &File) -> Result<Attachment> {
        let blob = BlobId(uuid::Uuid::new_v4());
        let sealed = r.seal_attachment(blob, &f.bytes)?;
        self.upload_octets::<PutBlob>(&blob, sealed).await?;
        let meta = r.seal_attachment_meta(
            blob,
            &AttachmentMeta { name: f.name.clone(), media_type: f.media_type.clone(), size: f.bytes.len() as u64 },
        )?;
        Ok(Attachment { blob, meta: B64(meta) })
    }

    /// Builds, encrypts and sends a referral. Returns the server's answer.
    pub async fn send_referral(
        &self,
        live: &Live,
        from: PracticeId,
        to: To,
        routing: Routing,
        content: &ReferralContent,
        files: &[File],
    ) -> Result<AckBody> {
        let (new, _) = self.prepare_referral(from, to, routing, content, files).await?;
        live.command(Command::SendReferral { referral: new }).await
    }

    /// Encrypts a referral without sending it (load tests and retry tests use this).
    pub async fn prepare_referral(
        &self,
        from: PracticeId,
        to: To,
        routing: Routing,
        content: &ReferralContent,
        files: &[File],
    ) -> Result<(NewReferral, ReferralKey)> {
        let id = ReferralId(uuid::Uuid::new_v4());
        let r = ReferralKey::generate()?;
        let mine = self.practice_key(from).await?;
        let dir = self.directory(Some(&routing.specialty), Some(&routing.region)).await?;
        let targets: Vec<DirectoryEntry> = match to {
            To::Practice(p) => dir.into_iter().filter(|e| e.id == p).collect(),
            To::ChooseForMe => dir,
        };
        if targets.is_empty() {
            return Err(ClientError::Protocol("no practice in the directory to send to".into()));
        }
        for e in &targets {
            self.verify_directory_entry(e).await?;
        }
        let mut attachments = Vec::new();
        for f in files {
            attachments.push(self.upload(&r, f).await?);
        }
        let destination = match to {
            To::Practice(practice) => Destination::Practice { practice },
            To::ChooseForMe => Destination::ChooseForMe,
        };
        let new = handoff_client_core::referral::seal_referral(
            id,
            &r,
            Some((from, &mine)),
            &targets,
            destination,
            routing,
            content,
            attachments,
        )?;
        Ok((new, r))
    }

    /// The practice of ours a referral involves (the receiver first).
    async fn side(&self, r: &Referral) -> Result<PracticeId> {
        let mine: Vec<PracticeId> = self.practices().await?.into_iter().map(|p| p.id).collect();
        handoff_client_core::referral::my_side(r, &mine)
            .ok_or_else(|| ClientError::Protocol("this referral involves none of our practices".into()))
    }

    /// Unwraps a referral's key with whichever of our practices it involves.
    pub async fn referral_key(&self, r: &Referral) -> Result<ReferralKey> {
        let side = self.side(r).await?;
        handoff_client_core::referral::referral_key(&self.mls, self, self.who()?, r, side).await
    }

    /// The key `item` of `r` opens with: its own item key, or `R` for older items.
    pub async fn open_key(&self, r: &Referral, item: Item, sealed: &[u8]) -> Result<OpenKey> {
        let side = self.side(r).await?;
        handoff_client_core::referral::open_key(&self.mls, self, self.who()?, r, side, item, sealed).await
    }

    /// Decrypts a referral's content.
    pub async fn open_referral(&self, r: &Referral) -> Result<ReferralContent> {
        let k = self.referral_key(r).await?;
        Ok(k.open_content(r.id, r.content.as_slice())?)
    }

    /// Downloads and decrypts an attachment (sent with the referral, or added later).
    pub async fn download(&self, r: &Referral, a: &Attachment) -> Result<(AttachmentMeta, Vec<u8>)> {
        let k = self.open_key(r, Item::Attachment(a.blob), a.meta.as_slice()).await?;
        let meta = k.open_attachment_meta(r.id, a.blob, a.meta.as_slice())?;
        let bytes = self.download_octets::<GetBlob>(&a.blob).await?;
        Ok((meta, k.open_attachment(r.id, a.blob, &bytes)?))
    }

    /// Adds an attachment after sending, under a fresh item key wrapped to
    /// both practices' current epoch keys.
    pub async fn add_attachment(&self, live: &Live, r: &Referral, f: &File) -> Result<Attachment> {
        let side = self.side(r).await?;
        let blob = BlobId(uuid::Uuid::new_v4());
        let meta = AttachmentMeta { name: f.name.clone(), media_type: f.media_type.clone(), size: f.bytes.len() as u64 };
        let (sealed, a) =
            handoff_client_core::referral::seal_added_attachment(&self.mls, self, self.who()?, r, side, blob, &meta, &f.bytes).await?;
        self.upload_octets::<PutBlob>(&blob, sealed).await?;
        live.command(Command::AddAttachment { referral: r.id, attachment: a.clone() }).await?;
        Ok(a)
    }

    /// Rejects with a reason and a note sealed under a fresh item key.
    pub async fn reject(&self, live: &Live, r: &Referral, reason: RejectReason, note: &str) -> Result<AckBody> {
        let side = self.side(r).await?;
        let note = handoff_client_core::referral::seal_note(&self.mls, self, self.who()?, r, side, note).await?;
        live.command(Command::Reject { referral: r.id, reason, note }).await
    }

    /// Builds a signed thread message sealed under a fresh item key.
    pub async fn seal_message(&self, r: &Referral, text: &str) -> Result<ThreadMessage> {
        let side = self.side(r).await?;
        let id = MessageId(uuid::Uuid::new_v4());
        let body = MessageBody { text: text.into(), written_at: handoff_protocol_now() };
        handoff_client_core::referral::seal_message(&self.mls, self, self.who()?, r, side, id, &body).await
    }

    /// Posts a thread message.
    pub async fn post_message(&self, live: &Live, r: &Referral, text: &str) -> Result<AckBody> {
        let m = self.seal_message(r, text).await?;
        live.command(Command::PostMessage { referral: r.id, message: m }).await
    }

    /// Verifies the author's signature and decrypts a thread message.
    pub async fn open_message(&self, r: &Referral, author: UserId, m: &ThreadMessage) -> Result<MessageBody> {
        let k = self.open_key(r, Item::Message(m.id), m.body.as_slice()).await?;
        let keys = self.user_keys(author).await?;
        Ok(k.open_message(r.id, m.id, keys.sign_pub.as_slice(), m.body.as_slice(), m.signature.as_slice())?)
    }

    /// Decrypts a rejection note.
    pub async fn open_note(&self, r: &Referral, note: &B64) -> Result<String> {
        Ok(self.open_key(r, Item::Note, note.as_slice()).await?.open_note(r.id, note.as_slice())?)
    }
}

fn handoff_protocol_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
