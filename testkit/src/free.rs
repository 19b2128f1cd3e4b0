//! A free referral's sender: no account, an email address proven by the
//! code the server emails to it, and the verified draft's token.
//!
//! [`FreeSender::verified`] does what a person does on the public page: asks
//! for a code, reads it from the mail (the server's mailbox must be known,
//! [`deliver_to`](crate::deliver_to)), types it in, and keeps the token, which
//! every later call sends as `Authorization: Draft <token>`. [`FreeSender::prepare`]
//! seals a referral as the public page does (no sending practice), and
//! [`FreeSender::send`] sends it.

use handoff_client::referrals::{File, To};
use handoff_client::{ClientError, RawResponse};
use handoff_crypto::referral::{AttachmentMeta, ReferralContent, ReferralKey};
use handoff_protocol::B64;
use handoff_protocol::api::{
    Endpoint, GetFreeDirectory, GetFreeSignerKeys, Method, Octets, PutFreeBlob, ResendFreeCode, SendFreeReferral, StartFreeDraft,
    VerifyFreeCode,
};
use handoff_protocol::free::{CodeSent, DraftId, DraftVerified, FreeSend, FreeSent, StartDraft, VerifyCode, draft_authorization};
use handoff_protocol::v1::{DirectoryEntry, DirectoryQuery};
use handoff_protocol::ws::{Attachment, BlobId, Destination, IdemKey, NewReferral, ReferralId, Routing};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::mail::{mailbox_of, messages_in, token_after, wait_in};
use crate::{FixtureError, Result};

/// What a code email's subject and first line start with; the code follows.
pub const CODE_MARKER: &str = "Your Handoff code is ";

/// A sender of one free referral.
#[derive(Debug)]
pub struct FreeSender {
    http: reqwest::Client,
    base: String,
    /// The address the codes (and later the status emails) go to.
    pub email: String,
    /// The draft.
    pub draft: DraftId,
    /// The verified draft's token, once the right code was given.
    pub token: Option<String>,
    /// The code emails this sender has read (a new code is the next one).
    seen: Vec<String>,
}

impl FreeSender {
    /// Asks for a code for `email` on the server at `url` and reads it from
    /// the mail: the draft and its code, not yet verified.
    pub async fn start(url: &str, email: &str) -> Result<(Self, String)> {
        let dir = mailbox_of(url).ok_or_else(|| FixtureError::NoMailbox { url: url.into() })?;
        let header = format!("To: {email}");
        // Code mail already there for this address (an earlier draft) is not ours.
        let seen: Vec<String> = messages_in(&dir).into_iter().filter(|m| m.contains(&header)).collect();
        let mut s = Self {
            http: reqwest::Client::new(),
            base: url.trim_end_matches('/').to_owned(),
            email: email.to_owned(),
            draft: DraftId::NIL,
            token: None,
            seen,
        };
        let sent: CodeSent = s.call::<StartFreeDraft>(&(), &StartDraft { email: email.to_owned() }).await?;
        s.draft = sent.draft;
        let code = s.next_code().await?;
        Ok((s, code))
    }

    /// A verified sender: [`start`](Self::start), then the code from the mail.
    pub async fn verified(url: &str, email: &str) -> Result<Self> {
        let (mut s, code) = Self::start(url, email).await?;
        s.verify(&code).await?;
        Ok(s)
    }

    /// The next code email to this sender's address, and the code in it.
    pub async fn next_code(&mut self) -> Result<String> {
        let dir = mailbox_of(&self.base).ok_or_else(|| FixtureError::NoMailbox { url: self.base.clone() })?;
        let mail = wait_in(&dir, &self.email, CODE_MARKER, &self.seen).await?;
        let code = token_after(&mail, CODE_MARKER).ok_or_else(|| FixtureError::NoMail {
            to: self.email.clone(),
            needle: format!("{CODE_MARKER}<code>"),
            dir: dir.clone(),
        })?;
        self.seen.push(mail);
        Ok(code)
    }

    /// The last code email this sender read, whole (to check what it says).
    pub fn last_code_mail(&self) -> Option<&str> {
        self.seen.last().map(String::as_str)
    }

    /// Asks for a new code and reads it from the mail.
    pub async fn resend(&mut self) -> Result<(CodeSent, String)> {
        let sent = self.call::<ResendFreeCode>(&self.draft, &()).await?;
        let code = self.next_code().await?;
        Ok((sent, code))
    }

    /// Types in `code`; on the right one, keeps the verified draft's token.
    pub async fn verify(&mut self, code: &str) -> handoff_client::Result<DraftVerified> {
        let v = self.call::<VerifyFreeCode>(&self.draft, &VerifyCode { code: code.to_owned() }).await?;
        self.token = Some(v.token.clone());
        Ok(v)
    }

    /// A request for `path` with the draft's token, if there is one.
    fn request(&self, method: &str, path: &str) -> handoff_client::Result<reqwest::RequestBuilder> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let rb = self.http.request(method, format!("{}{path}", self.base));
        Ok(match &self.token {
            Some(t) => rb.header(reqwest::header::AUTHORIZATION, draft_authorization(t)),
            None => rb,
        })
    }

    /// Calls endpoint `E` as this sender (as [`handoff_client::Client::call`] does).
    pub async fn call<E: Endpoint>(&self, path: &E::Path, request: &E::Request) -> handoff_client::Result<E::Response>
    where
        E::Request: Serialize,
        E::Response: DeserializeOwned,
    {
        let p = E::request(path, request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut rb = self.request(E::METHOD.as_str(), &p.path)?;
        if let Some(json) = p.json {
            rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json").body(json);
        }
        let body = handoff_client::answer(&p.path, rb.send().await?).await?;
        E::response(&body).map_err(|e| ClientError::Protocol(format!("{}: {e}", p.path)))
    }

    /// Uploads `bytes` as the raw body of endpoint `E` (an encrypted attachment).
    pub async fn upload<E: Endpoint<Request = Octets>>(&self, path: &E::Path, bytes: Vec<u8>) -> handoff_client::Result<E::Response>
    where
        E::Response: DeserializeOwned,
    {
        debug_assert_eq!(E::METHOD, Method::Post);
        let path = E::path(path);
        let rb = self.request(E::METHOD.as_str(), &path)?.header(reqwest::header::CONTENT_TYPE, "application/octet-stream").body(bytes);
        let body = handoff_client::answer(&path, rb.send().await?).await?;
        E::response(&body).map_err(|e| ClientError::Protocol(format!("{path}: {e}")))
    }

    /// Encrypts a free referral as the public page does: `R` made here, the
    /// content sealed under it, `R` wrapped to the named practice (or every
    /// practice the free directory lists for the routing, for choose-for-me)
    /// and to no sending practice; the files encrypted under `R` and uploaded
    /// against the draft.
    pub async fn prepare(
        &self,
        to: To,
        routing: Routing,
        content: &ReferralContent,
        files: &[File],
    ) -> handoff_client::Result<NewReferral> {
        let id = ReferralId(uuid::Uuid::new_v4());
        let r = ReferralKey::generate()?;
        let q = DirectoryQuery { specialty: Some(routing.specialty.clone()), region: Some(routing.region.clone()) };
        let dir = self.call::<GetFreeDirectory>(&(), &q).await?.practices;
        let targets: Vec<DirectoryEntry> = match to {
            To::Practice(p) => dir.into_iter().filter(|e| e.id == p).collect(),
            To::ChooseForMe => dir,
        };
        // Each practice key is checked against its signer's account key before `R` is wrapped to it.
        for e in &targets {
            let signer = self.call::<GetFreeSignerKeys>(&e.public_key.signer, &()).await?;
            handoff_client_core::account::verify_directory_entry(e, signer.sign_pub.as_slice())?;
        }
        let mut attachments = Vec::new();
        for f in files {
            let blob = BlobId(uuid::Uuid::new_v4());
            self.upload::<PutFreeBlob>(&blob, r.seal_attachment(blob, &f.bytes)?).await?;
            let meta = AttachmentMeta { name: f.name.clone(), media_type: f.media_type.clone(), size: f.bytes.len() as u64 };
            attachments.push(Attachment { blob, meta: B64(r.seal_attachment_meta(blob, &meta)?) });
        }
        let destination = match to {
            To::Practice(practice) => Destination::Practice { practice },
            To::ChooseForMe => Destination::ChooseForMe,
        };
        Ok(handoff_client_core::referral::seal_referral(id, &r, None, &targets, destination, routing, content, attachments)?)
    }

    /// Sends the draft's referral with the idempotency key `idem`.
    pub async fn send(&self, idem: IdemKey, referral: NewReferral) -> handoff_client::Result<FreeSent> {
        self.call::<SendFreeReferral>(&(), &FreeSend { idem, referral }).await
    }

    /// Sends arbitrary bytes with the draft's token, for tests of malformed input.
    pub async fn raw(&self, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> handoff_client::Result<RawResponse> {
        let mut rb = self.request(method, path)?.body(body);
        if let Some(ct) = content_type {
            rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
        }
        let resp = rb.send().await?;
        Ok(RawResponse { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.text().await? })
    }
}
