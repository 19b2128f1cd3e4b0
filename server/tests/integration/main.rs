//! Integration tests: the real server, the real store on disk, a real SMTP
//! server, driven through the native client with real cryptography.

mod accounts;
mod bad_input;
mod harness;
pub mod hub;
mod mls;
mod practices;
mod privacy;
mod routes;
