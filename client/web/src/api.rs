//! The HTTP API, as the browser calls it: same origin, session cookie
//! (HttpOnly, so this code never sees the token), JSON bodies, and the one
//! error format `{"error","message"}`. Every call names its endpoint type
//! from `handoff_protocol::api` ([`call`]); no path is written here.

use gloo_net::http::{RequestBuilder, Response};
use handoff_protocol::api::*;
use handoff_protocol::v1::*;
use handoff_protocol::{CategoryRequestId, ErrorBody, ErrorCode, PracticeId, UserId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;

/// A failed call, ready to show on screen.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The documented code, when the server answered with one.
    pub code: Option<ErrorCode>,
    /// What to tell the user.
    pub message: String,
}

impl ApiError {
    /// A local failure (crypto, network, a bad answer).
    pub fn local(message: impl Into<String>) -> Self {
        Self { code: None, message: message.into() }
    }

    /// From a server error body, with clearer words for the codes people meet.
    pub fn from_body(b: ErrorBody) -> Self {
        let message = match b.error {
            ErrorCode::InvalidCredentials => {
                "That email and password do not match. If you have lost your password, reset it with your Emergency Access Kit: Handoff cannot reset it by email.".to_string()
            }
            ErrorCode::InvalidRecoveryKit => "Those kit words do not match this account.".to_string(),
            ErrorCode::SessionExpired | ErrorCode::Unauthenticated => "Your session has ended. Please sign in again.".to_string(),
            ErrorCode::SessionIdle => "You were signed out for inactivity. Please sign in again.".to_string(),
            ErrorCode::RateLimited => format!("Too many attempts. {}", b.message),
            ErrorCode::EmailTaken => "An account with this email already exists. Sign in instead.".to_string(),
            ErrorCode::ConfirmationMismatch => "The name you typed does not match the practice's name exactly.".to_string(),
            ErrorCode::NoEligiblePractice => {
                "No verified specialist practice accepts this category in this region right now. Choose another region or category.".to_string()
            }
            ErrorCode::StaleKey => "A practice's key changed while you were sending. Please send again.".to_string(),
            ErrorCode::QuotaExceeded => format!("Your account is full. {}", b.message),
            ErrorCode::CodeExpired => "This code has expired or was already used. Press \"Send a new code\" and use the newest email.".to_string(),
            ErrorCode::CodeTriesExhausted => {
                "This code has had all its tries, so even the right code is refused now. Press \"Send a new code\" and use the newest email.".to_string()
            }
            ErrorCode::SenderBlocked => {
                "Handoff does not accept free referrals from this email address or network. If you think this is a mistake, contact Handoff support.".to_string()
            }
            ErrorCode::DraftUnverified => {
                "Your email check has ended (it lasts two hours). Go back to the first step and check your email address again.".to_string()
            }
            ErrorCode::DraftUsed => {
                "This email check has already sent its one referral. To refer another patient, start a new free referral.".to_string()
            }
            ErrorCode::Internal | ErrorCode::Unavailable => "The server could not do this just now. Nothing was changed; please try again.".to_string(),
            _ => b.message.clone(),
        };
        Self { code: Some(b.error), message }
    }

    /// Whether the session is gone.
    pub fn session_ended(&self) -> bool {
        matches!(self.code, Some(ErrorCode::SessionExpired | ErrorCode::SessionIdle | ErrorCode::Unauthenticated))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<handoff_crypto::CryptoError> for ApiError {
    fn from(e: handoff_crypto::CryptoError) -> Self {
        Self::local(e.to_string())
    }
}

impl From<gloo_net::Error> for ApiError {
    fn from(e: gloo_net::Error) -> Self {
        Self::local(format!("Could not reach Handoff ({e}). Check your connection and try again."))
    }
}

/// Result alias.
pub type ApiResult<T> = Result<T, ApiError>;

/// A successful answer's body, or the error the server (or the network) gave.
async fn body_of(resp: Response) -> ApiResult<Vec<u8>> {
    let status = resp.status();
    if status >= 400 {
        let text = resp.text().await?;
        return Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => ApiError::from_body(b),
            Err(_) => ApiError::local(format!("The server answered {status}.")),
        });
    }
    Ok(resp.binary().await?)
}

fn builder(method: Method, path: &str) -> RequestBuilder {
    let method = match method {
        Method::Get => gloo_net::http::Method::GET,
        Method::Post => gloo_net::http::Method::POST,
        Method::Put => gloo_net::http::Method::PUT,
        Method::Delete => gloo_net::http::Method::DELETE,
    };
    RequestBuilder::new(path).method(method)
}

/// Calls endpoint `E`: the one way this client reaches the API (blobs aside,
/// see [`download`] and [`upload`]). The request travels as
/// [`Endpoint::request`] encodes it.
pub async fn call<E: Endpoint>(path: &E::Path, request: &E::Request) -> ApiResult<E::Response>
where
    E::Request: Serialize,
    E::Response: DeserializeOwned,
{
    let p = E::request(path, request).map_err(|e| ApiError::local(format!("Could not make the request: {e}")))?;
    let rb = builder(p.method, &p.path);
    let req = match p.json {
        Some(json) => rb.header("Content-Type", "application/json").body(json)?,
        None => rb.build()?,
    };
    let body = match body_of(req.send().await?).await {
        Ok(b) => b,
        Err(e) => {
            // A practice that requires two-factor sign-in, for a member without it: go enroll.
            if e.code == Some(ErrorCode::TwoFactorRequired) {
                crate::screens::two_factor::send_to_enrollment();
            }
            return Err(e);
        }
    };
    E::response(&body).map_err(|e| ApiError::local(format!("Unexpected answer from the server: {e}")))
}

/// The raw bytes endpoint `E` answers with (an encrypted blob).
pub async fn download<E: Endpoint<Request = (), Response = Octets>>(path: &E::Path) -> ApiResult<Vec<u8>> {
    body_of(builder(E::METHOD, &E::path(path)).build()?.send().await?).await
}

/// Uploads `bytes` as the raw body of endpoint `E` (an encrypted blob) with
/// `XMLHttpRequest`, which (unlike fetch) reports upload progress.
/// `progress` gets (sent, total) bytes.
pub async fn upload<E: Endpoint<Request = Octets>>(
    path: &E::Path,
    bytes: Vec<u8>,
    progress: impl Fn(f64, f64) + 'static,
) -> ApiResult<E::Response>
where
    E::Response: DeserializeOwned,
{
    let xhr = web_sys::XmlHttpRequest::new().map_err(|_| ApiError::local("this browser cannot upload files"))?;
    xhr.open(E::METHOD.as_str(), &E::path(path)).map_err(|_| ApiError::local("could not start the upload"))?;
    xhr.set_request_header("content-type", "application/octet-stream").ok();
    let (tx, rx) = futures_channel::oneshot::channel::<()>();
    let tx = std::rc::Rc::new(std::cell::RefCell::new(Some(tx)));
    let on_progress = Closure::<dyn Fn(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| progress(e.loaded(), e.total()));
    if let Ok(up) = xhr.upload() {
        up.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    }
    let done = {
        let tx = tx.clone();
        Closure::<dyn Fn()>::new(move || {
            if let Some(t) = tx.borrow_mut().take() {
                let _ = t.send(());
            }
        })
    };
    xhr.set_onloadend(Some(done.as_ref().unchecked_ref()));
    let arr = js_sys::Uint8Array::from(bytes.as_slice());
    xhr.send_with_opt_buffer_source(Some(&arr)).map_err(|_| ApiError::local("the upload could not start"))?;
    let _ = rx.await;
    drop((on_progress, done));
    let status = xhr.status().unwrap_or(0);
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    if status == 0 {
        return Err(ApiError::local("The upload was interrupted. Check your connection and try again."));
    }
    if status >= 400 {
        return Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => ApiError::from_body(b),
            Err(_) => ApiError::local(format!("The upload failed ({status}).")),
        });
    }
    E::response(text.as_bytes()).map_err(|e| ApiError::local(e.to_string()))
}

// Named calls for the routes several screens use.

/// Who is signed in (by the session cookie).
pub async fn me() -> ApiResult<Me> {
    call::<GetMe>(&(), &()).await
}
/// Signs out.
pub async fn logout() -> ApiResult<()> {
    call::<Logout>(&(), &()).await
}
/// The taxonomy.
pub async fn taxonomy() -> ApiResult<Taxonomy> {
    call::<GetTaxonomy>(&(), &()).await
}
/// My practices.
pub async fn practices() -> ApiResult<Vec<Practice>> {
    Ok(call::<ListPractices>(&(), &()).await?.practices)
}
/// Members and invites.
pub async fn members(id: PracticeId) -> ApiResult<MemberList> {
    call::<ListMembers>(&id, &()).await
}
/// My grant of a practice's key.
pub async fn my_key(id: PracticeId) -> ApiResult<MyPracticeKey> {
    call::<GetPracticeKey>(&id, &()).await
}
/// Specialist practices that can receive.
pub async fn directory(specialty: &str, region: &str) -> ApiResult<Vec<DirectoryEntry>> {
    let q = DirectoryQuery { specialty: Some(specialty.into()), region: Some(region.into()) };
    Ok(call::<GetDirectory>(&(), &q).await?.practices)
}
/// A user's public keys.
pub async fn user_keys(id: UserId) -> ApiResult<UserKeys> {
    call::<GetUserKeys>(&id, &()).await
}
/// Staff: every practice.
pub async fn admin_practices() -> ApiResult<Vec<AdminPractice>> {
    Ok(call::<AdminListPractices>(&(), &()).await?.practices)
}
/// Staff: category requests.
pub async fn admin_category_requests() -> ApiResult<Vec<CategoryRequest>> {
    Ok(call::<AdminListCategoryRequests>(&(), &()).await?.requests)
}
/// Staff: resolve a category request.
pub async fn admin_resolve(id: CategoryRequestId, approve: bool, slug: Option<String>) -> ApiResult<()> {
    call::<AdminResolveCategoryRequest>(&id, &ResolveCategoryRequest { approve, slug }).await
}
