//! Integration tests: the real server, the real store on disk, a real SMTP
//! server, driven through the native client with real cryptography.
//!
//! # Where new tests go
//!
//! This is the crate's one integration-test binary (`[[test]] integration` in
//! `server/Cargo.toml`): a new test file is a module declared below, never a
//! new file directly under `server/tests/`, so everything links once. Put a
//! test in the module of its concern:
//!
//! - `accounts`: registration, sign-in, sessions and cookies, the kit reset,
//!   the `handoff admin` CLI, restarts, where mail goes.
//! - `practices`: membership, invites, roles, removal and deletion, key
//!   grants, the taxonomy and staff tools.
//! - `hub`: the live WebSocket hub: referral lifecycle, resume, routing
//!   (choose for me, eligibility), status email, slow readers, bad frames,
//!   the upgrade, crash recovery, actor passivation.
//! - `mls`: practice groups over MLS: the delivery service, key packages,
//!   welcomes, the key-history chain, removal, concurrency, bad MLS input.
//! - `security_mls`: attacks on a practice's key group by one of its members
//!   (garbage and hidden-effect commits, a forged group creation), refused by
//!   the server as an MLS external observer.
//! - `privacy`: scans of every stored byte for secrets and patient data.
//! - `bad_input`: malformed, oversized or mistyped input, rate limits and
//!   foreign ids: a documented error, never a panic or a 500.
//! - `security_<area>`: one attack per test, named after the attack it stops
//!   (issue 12): `security_csrf` (cross-site requests), `security_purge`
//!   (nothing outlives its use), `security_limits` (the sign-in and kit-check
//!   rate limits: parallel guesses, lock-outs by strangers, forged
//!   `X-Forwarded-For`, IPv6 neighbours, restarts), `security_streams`
//!   (ending access cuts every live stream it reached; `subscribe` positions
//!   past a stream's head are refused), `security_items` (items added to a
//!   referral after a member's removal are sealed under item keys the removed
//!   member cannot open), `security_accounts` (deleted practice ids are never
//!   reused; registration reveals no account and cannot be squatted; invite
//!   limits), `security_resources` (the bound on each account's resources:
//!   blob quota and sweep, streamed uploads, sockets per user, the outgoing
//!   queue in bytes, key packages, MLS message sizes, what an MLS sync reads).
//! - `backup`: `handoff admin backup` under a load of referral commands,
//!   restored into a fresh data directory and served again; every refusal of
//!   `handoff admin restore` (newer schema, not a store, damage, an existing
//!   store without `--force`, a running server).
//! - `free`: free referrals without an account (issue 13): the emailed code
//!   and its tries, the verified draft, blocks, limits, opt-out, draft-owned
//!   uploads, and every bad input of those routes.
//! - `governance`: access governance (issue 14): membership start and end
//!   dates on the server's test clock, delegates and their sponsors, the
//!   rights a delegate lacks, the end-date reminder to admins.
//! - `metrics`: the metrics listener (issue 17): a scrape after a scenario
//!   has every expected series and no identifier; not on the public port.
//! - `authz_matrix`: the authorization matrix (issue 14): every route and
//!   WebSocket command called as each persona (anonymous, a free sender, a
//!   member of another practice, a member, an admin, staff), each answer
//!   held to `rights`, the rights table that README.md reproduces.
//! - `sessions`: the idle timeout (what is activity and what is not),
//!   ending a session closes its sockets at once, and the session list
//!   (issue 14, "Sessions").
//! - `openapi`: the HTTP contract (issue 17): the OpenAPI document has an
//!   operation for every route and documents each one's errors, is valid
//!   3.1, and `/api/docs` is served with its own CSP; regressions found by
//!   schemathesis.
//! - `static_files`: the built web client (issue 17): the coding chosen by
//!   `Accept-Encoding`, cache headers, 404s, refused traversal, HSTS, the CSP.
//! - `call`: the built-in video call's ICE servers reach a session-less browser.
//!
//! Shared pieces: `harness` starts servers (in process, or the `handoff`
//! binary as a child for crash tests) and the SMTP server, reads mail (from
//! SMTP or the data folder's mail directory) and scans stored bytes; the
//! fixtures (accounts with unique emails, [`handoff_testkit::referring_office`],
//! [`handoff_testkit::verified_specialist`], [`handoff_testkit::World`],
//! [`handoff_testkit::routing`], [`handoff_testkit::content`]) live in the
//! `handoff-testkit` crate (`testkit/`), which the load tests use too. Add a
//! fixture there when more than one module (or the load tests) needs it; keep
//! a helper local to its module when only that module does.

mod accounts;
mod audit;
mod authz_matrix;
mod backup;
mod bad_input;
mod free;
mod governance;
mod harness;
mod hub;
mod metrics;
mod mls;
mod openapi;
mod practices;
mod privacy;
mod rights;
mod rooms;
mod routes;
mod security_accounts;
mod security_csrf;
mod security_items;
mod security_limits;
mod security_mls;
mod security_purge;
mod security_resources;
mod security_streams;
mod sessions;
mod totp;
// Issue 17 part 3: static serving and security headers.
mod static_files;
// Issue 15: the built-in video call's ICE servers (wt-rooms-video).
mod call;
// Issue 16 part 2: group commit (store batches, pipelined routing and referral actors).
mod group_commit;
// Issue 16 part 1: the inbox snapshot (wt-inbox).
mod inbox;
