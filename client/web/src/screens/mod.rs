//! One module per screen.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod call;
pub mod detail;
pub mod free;
pub mod key_group;
pub mod lists;
pub mod practices;
pub mod rooms;
pub mod rooms_patient;
pub mod send;
pub mod sessions;
pub mod settings;
pub mod shell;
pub mod two_factor;
