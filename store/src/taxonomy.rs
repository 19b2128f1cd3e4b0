//! The specialty/category taxonomy and practices' requests to extend it.

use async_trait::async_trait;

use handoff_protocol::v1::{CategoryRequestStatus, Taxonomy, TaxonomyEdit};
use handoff_protocol::{CategoryRequestId, UnixMillis};

use crate::{BackendError, CategoryRequestRecord};

/// Why a [`TaxonomyStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaxonomyError {
    /// An edit adds a category under a specialty that does not exist.
    #[error("not found: specialty")]
    NoSuchSpecialty,
    /// An edit adds a subcategory under a category that does not exist.
    #[error("not found: category")]
    NoSuchCategory,
    /// [`create_category_request`](TaxonomyStore::create_category_request) was given an id that exists.
    #[error("already exists: category_request")]
    RequestExists,
    /// [`resolve_category_request`](TaxonomyStore::resolve_category_request) named a request
    /// that does not exist.
    #[error("not found: category_request")]
    NoSuchRequest,
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The taxonomy, curated by staff, and the category requests that feed it.
#[async_trait]
pub trait TaxonomyStore: Send + Sync + 'static {
    /// Loads the taxonomy if the store has none yet. Returns whether it seeded.
    async fn seed_taxonomy(&self, t: &Taxonomy) -> Result<bool, TaxonomyError>;
    /// The whole taxonomy, in display order.
    async fn taxonomy(&self) -> Result<Taxonomy, TaxonomyError>;
    /// Adds or renames one node. [`TaxonomyError::NoSuchSpecialty`] or
    /// [`TaxonomyError::NoSuchCategory`] if its parent does not exist.
    async fn edit_taxonomy(&self, e: &TaxonomyEdit) -> Result<(), TaxonomyError>;
    /// Records a category request. [`TaxonomyError::RequestExists`] if the id exists.
    async fn create_category_request(&self, r: CategoryRequestRecord) -> Result<(), TaxonomyError>;
    /// All category requests, newest first.
    async fn category_requests(&self) -> Result<Vec<CategoryRequestRecord>, TaxonomyError>;
    /// Sets a request's status. [`TaxonomyError::NoSuchRequest`] if absent.
    async fn resolve_category_request(
        &self,
        id: CategoryRequestId,
        status: CategoryRequestStatus,
        now: UnixMillis,
    ) -> Result<(), TaxonomyError>;
}
