//! Waiting rooms (issue 15): a practice's rooms, their links and settings,
//! and the guests' check-ins. The waiting list itself is live state (the
//! RoomActor's); what is stored is what must survive a restart: the room,
//! and per guest its token's hash, check-in time, removal and expiry.

use async_trait::async_trait;

use handoff_protocol::v1::RoomSettings;
use handoff_protocol::{GuestId, PracticeId, RoomId, UnixMillis};

use crate::BackendError;

/// A stored room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    /// The room (client-generated).
    pub id: RoomId,
    /// Its practice.
    pub practice: PracticeId,
    /// Display name.
    pub name: String,
    /// The patient link's token (unique across rooms).
    pub link: String,
    /// The room secret, sealed under the practice key of `epoch`.
    pub sealed_secret: Vec<u8>,
    /// The practice key epoch of `sealed_secret`.
    pub epoch: u64,
    /// What the room asks and how it meets.
    pub settings: RoomSettings,
    /// When it was created.
    pub created_at: UnixMillis,
}

/// A stored guest: one check-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestRecord {
    /// The guest (server-generated).
    pub id: GuestId,
    /// Its room.
    pub room: RoomId,
    /// When it checked in: the waiting order.
    pub checked_in_at: UnixMillis,
    /// A host removed it: its token is dead.
    pub removed: bool,
    /// When its token stops working.
    pub expires_at: UnixMillis,
}

/// Why a room call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// [`create_room`](RoomStore::create_room) was given an id that exists.
    #[error("already exists: room")]
    RoomExists,
    /// A new or rotated link is already some room's (a 128-bit collision: retry).
    #[error("already exists: room link")]
    LinkTaken,
    /// The call named a practice that does not exist.
    #[error("not found: practice")]
    NoSuchPractice,
    /// The call named a room that does not exist.
    #[error("not found: room")]
    NoSuchRoom,
    /// The call named a guest that does not exist.
    #[error("not found: guest")]
    NoSuchGuest,
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Rooms and their guests' check-ins.
#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// Stores a new room. [`RoomError::RoomExists`], [`RoomError::LinkTaken`],
    /// [`RoomError::NoSuchPractice`].
    async fn create_room(&self, room: RoomRecord) -> Result<(), RoomError>;
    /// One room, or `None`.
    async fn room(&self, id: RoomId) -> Result<Option<RoomRecord>, RoomError>;
    /// The room whose current patient link is `link`, or `None` (an old, rotated link finds nothing).
    async fn room_by_link(&self, link: &str) -> Result<Option<RoomRecord>, RoomError>;
    /// A practice's rooms, oldest first.
    async fn rooms_of(&self, practice: PracticeId) -> Result<Vec<RoomRecord>, RoomError>;
    /// Renames a room and/or replaces its settings; returns it as stored. [`RoomError::NoSuchRoom`].
    async fn update_room(&self, id: RoomId, name: Option<String>, settings: Option<RoomSettings>) -> Result<RoomRecord, RoomError>;
    /// Gives a room a new link and sealed secret; returns it as stored.
    /// [`RoomError::NoSuchRoom`], [`RoomError::LinkTaken`].
    async fn rotate_room(&self, id: RoomId, link: String, sealed_secret: Vec<u8>, epoch: u64) -> Result<RoomRecord, RoomError>;
    /// Deletes a room and its guests. [`RoomError::NoSuchRoom`].
    async fn delete_room(&self, id: RoomId) -> Result<(), RoomError>;
    /// Records a check-in under its token's hash. [`RoomError::NoSuchRoom`].
    async fn add_guest(&self, guest: GuestRecord, token_hash: [u8; 32]) -> Result<(), RoomError>;
    /// The guest whose token hashes to `token_hash` (removed and expired ones included: the caller decides), or `None`.
    async fn guest_by_token(&self, token_hash: [u8; 32]) -> Result<Option<GuestRecord>, RoomError>;
    /// How many of a room's guests are neither removed nor expired at `now`.
    async fn live_guests(&self, room: RoomId, now: UnixMillis) -> Result<u64, RoomError>;
    /// Marks a guest removed: its token is dead. [`RoomError::NoSuchGuest`].
    async fn remove_guest(&self, guest: GuestId) -> Result<(), RoomError>;
    /// Deletes the guests whose tokens expired at or before `now`; returns how many.
    async fn sweep_guests(&self, now: UnixMillis) -> Result<u64, RoomError>;
}
