//! The HTTP API, as the browser calls it: same origin, session cookie
//! (HttpOnly, so this code never sees the token), JSON bodies, and the one
//! error format `{"error","message"}`.

use gloo_net::http::{Request, RequestBuilder, Response};
use handoff_protocol::v1::*;
use handoff_protocol::ws::BlobId;
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
            ErrorCode::RateLimited => format!("Too many attempts. {}", b.message),
            ErrorCode::EmailTaken => "An account with this email already exists. Sign in instead.".to_string(),
            ErrorCode::ConfirmationMismatch => "The name you typed does not match the practice's name exactly.".to_string(),
            ErrorCode::NoEligiblePractice => {
                "No verified specialist practice accepts this category in this region right now. Choose another region or category.".to_string()
            }
            ErrorCode::StaleKey => "A practice's key changed while you were sending. Please send again.".to_string(),
            ErrorCode::Internal | ErrorCode::Unavailable => "The server could not do this just now. Nothing was changed; please try again.".to_string(),
            _ => b.message.clone(),
        };
        Self { code: Some(b.error), message }
    }

    /// Whether the session is gone.
    pub fn session_ended(&self) -> bool {
        matches!(self.code, Some(ErrorCode::SessionExpired | ErrorCode::Unauthenticated))
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

fn url(path: &str) -> String {
    format!("/api/v1{path}")
}

async fn finish<R: DeserializeOwned>(resp: Response) -> ApiResult<R> {
    let status = resp.status();
    let text = resp.text().await?;
    if status >= 400 {
        return Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => ApiError::from_body(b),
            Err(_) => ApiError::local(format!("The server answered {status}.")),
        });
    }
    let text = if text.is_empty() { "null" } else { &text };
    serde_json::from_str(text).map_err(|e| ApiError::local(format!("Unexpected answer from the server: {e}")))
}

async fn send<R: DeserializeOwned>(rb: RequestBuilder, body: Option<&impl Serialize>) -> ApiResult<R> {
    let req = match body {
        Some(b) => rb.json(b)?,
        None => rb.build()?,
    };
    finish(req.send().await?).await
}

/// `GET` returning JSON.
pub async fn get<R: DeserializeOwned>(path: &str) -> ApiResult<R> {
    send(Request::get(&url(path)), None::<&()>).await
}

/// `POST` with a JSON body.
pub async fn post<B: Serialize, R: DeserializeOwned>(path: &str, body: &B) -> ApiResult<R> {
    send(Request::post(&url(path)), Some(body)).await
}

/// `POST` without a body.
pub async fn post_empty<R: DeserializeOwned>(path: &str) -> ApiResult<R> {
    send(Request::post(&url(path)), None::<&()>).await
}

/// `PUT` with a JSON body.
pub async fn put<B: Serialize, R: DeserializeOwned>(path: &str, body: &B) -> ApiResult<R> {
    send(Request::put(&url(path)), Some(body)).await
}

/// `DELETE`, optionally with a JSON body.
pub async fn delete<B: Serialize>(path: &str, body: Option<&B>) -> ApiResult<()> {
    let _: serde_json::Value = send(Request::delete(&url(path)), body).await?;
    Ok(())
}

/// Raw bytes (an encrypted blob).
pub async fn get_bytes(path: &str) -> ApiResult<Vec<u8>> {
    let resp = Request::get(&url(path)).send().await?;
    if resp.status() >= 400 {
        return finish::<()>(resp).await.map(|_| Vec::new());
    }
    Ok(resp.binary().await?)
}

/// Uploads an encrypted blob with `XMLHttpRequest`, which (unlike fetch)
/// reports upload progress. `progress` gets (sent, total) bytes.
pub async fn upload_blob(id: BlobId, bytes: Vec<u8>, progress: impl Fn(f64, f64) + 'static) -> ApiResult<BlobStored> {
    let xhr = web_sys::XmlHttpRequest::new().map_err(|_| ApiError::local("this browser cannot upload files"))?;
    xhr.open("POST", &url(&format!("/blobs/{id}"))).map_err(|_| ApiError::local("could not start the upload"))?;
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
    serde_json::from_str(&text).map_err(|e| ApiError::local(e.to_string()))
}

// Named calls, one per route the client uses.

/// Who is signed in (by the session cookie).
pub async fn me() -> ApiResult<Me> {
    get("/me").await
}
/// Signs out.
pub async fn logout() -> ApiResult<()> {
    let _: serde_json::Value = post_empty("/auth/logout").await?;
    Ok(())
}
/// The taxonomy.
pub async fn taxonomy() -> ApiResult<Taxonomy> {
    get("/taxonomy").await
}
/// My practices.
pub async fn practices() -> ApiResult<Vec<Practice>> {
    Ok(get::<PracticeList>("/practices").await?.practices)
}
/// Members and invites.
pub async fn members(id: PracticeId) -> ApiResult<MemberList> {
    get(&format!("/practices/{id}/members")).await
}
/// My grant of a practice's key.
pub async fn my_key(id: PracticeId) -> ApiResult<MyPracticeKey> {
    get(&format!("/practices/{id}/key")).await
}
/// Specialist practices that can receive.
pub async fn directory(specialty: &str, region: &str) -> ApiResult<Vec<DirectoryEntry>> {
    Ok(get::<Directory>(&format!("/directory?specialty={}&region={}", enc(specialty), enc(region))).await?.practices)
}
/// A user's public keys.
pub async fn user_keys(id: UserId) -> ApiResult<UserKeys> {
    get(&format!("/users/{id}/keys")).await
}
/// Staff: every practice.
pub async fn admin_practices() -> ApiResult<Vec<AdminPractice>> {
    Ok(get::<AdminPracticeList>("/admin/practices").await?.practices)
}
/// Staff: category requests.
pub async fn admin_category_requests() -> ApiResult<Vec<CategoryRequest>> {
    Ok(get::<CategoryRequestList>("/admin/category-requests").await?.requests)
}
/// Staff: resolve a category request.
pub async fn admin_resolve(id: CategoryRequestId, approve: bool, slug: Option<String>) -> ApiResult<()> {
    let _: serde_json::Value = post(&format!("/admin/category-requests/{id}/resolve"), &ResolveCategoryRequest { approve, slug }).await?;
    Ok(())
}

fn enc(s: &str) -> String {
    js_sys::encode_uri_component(s).into()
}
