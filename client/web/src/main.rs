//! The Handoff web client. Rendered client-side by Yew; every key is handled
//! here in the browser through `handoff-crypto`, and only ciphertext, public
//! keys and the password-derived auth key ever reach the server.
//!
//! This is the application shell; the screens (register with the Emergency
//! Access Kit, sign in, practices, referrals, inbox, staff admin) arrive with
//! the client issue.

use yew::prelude::*;

#[function_component(App)]
fn app() -> Html {
    html! {
        <main class="shell">
            <header class="brand">
                <h1>{ "Handoff" }</h1>
                <p class="tagline">{ "Secure e-referrals and clinical messaging. Patient data is encrypted in this browser; the service cannot read it." }</p>
            </header>
            <section class="notice" aria-live="polite">
                <p>{ "Without your password or your Emergency Access Kit, access to encrypted data is lost: Handoff cannot reset it by email." }</p>
            </section>
        </main>
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
