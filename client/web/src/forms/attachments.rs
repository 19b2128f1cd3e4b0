//! Choosing files to attach: each is read into memory here (and encrypted
//! only when the referral is sent), listed with its size, and can be removed.

use std::rc::Rc;

use yew::prelude::*;

use crate::api::ApiError;

/// A file chosen to attach, with its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickedFile {
    /// The file's name, as the browser gives it.
    pub name: String,
    /// Its media type (`application/octet-stream` when the browser does not know).
    pub media_type: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// Reads a file's bytes.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, ApiError> {
    if file.size() > handoff_protocol::ws::MAX_BLOB as f64 - 65536.0 {
        return Err(ApiError::local(format!("{} is larger than the 8 MB limit for one attachment.", file.name())));
    }
    let buf =
        wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await.map_err(|_| ApiError::local("The file could not be read."))?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// A byte count for people.
pub fn human_size(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.0} KB", n as f64 / 1024.0),
        _ => format!("{:.1} MB", n as f64 / 1_048_576.0),
    }
}

/// Props for [`AttachmentPicker`].
#[derive(Properties, PartialEq)]
pub struct AttachmentPickerProps {
    /// The files chosen so far, in order.
    pub files: Rc<Vec<PickedFile>>,
    /// Called with the files read from one choice (the owner appends them).
    pub onpick: Callback<Vec<PickedFile>>,
    /// Called with the position of a file to take off the list.
    pub onremove: Callback<usize>,
    /// Called when a chosen file cannot be used (too large, unreadable).
    pub onerror: Callback<ApiError>,
}

/// The file chooser and the list of chosen files.
#[function_component(AttachmentPicker)]
pub fn attachment_picker(p: &AttachmentPickerProps) -> Html {
    let pick = {
        let (onpick, onerror) = (p.onpick.clone(), p.onerror.clone());
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            let Some(list) = input.files() else { return };
            let chosen: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
            input.set_value("");
            let (onpick, onerror) = (onpick.clone(), onerror.clone());
            crate::ui::spawn(async move {
                let mut read = Vec::new();
                for f in chosen {
                    match read_file(&f).await {
                        Ok(bytes) => read.push(PickedFile {
                            name: f.name(),
                            media_type: if f.type_().is_empty() { "application/octet-stream".into() } else { f.type_() },
                            bytes,
                        }),
                        Err(e) => onerror.emit(e),
                    }
                }
                onpick.emit(read);
            });
        })
    };
    html! {
        <>
            <p>{ "Attach letters, lab results or imaging reports. Files are encrypted in this browser before upload (8 MB each at most)." }</p>
            <label for="s-files" class="file-add">{ "Choose files" }</label>
            <input id="s-files" type="file" multiple=true onchange={pick} />
            <ul class="files">
                { for p.files.iter().enumerate().map(|(i, f)| {
                    let remove = p.onremove.reform(move |_: MouseEvent| i);
                    html! { <li><span class="file">{ f.name.clone() }</span><small class="muted">{ format!(" {}", human_size(f.bytes.len() as u64)) }</small><button type="button" class="small" onclick={remove} aria-label={format!("Remove {}", f.name)}>{ "Remove" }</button></li> }
                }) }
            </ul>
        </>
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_as_bytes_kilobytes_and_megabytes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(200_000), "195 KB");
        assert_eq!(human_size(3 * 1_048_576 + 104_858), "3.1 MB");
    }
}
