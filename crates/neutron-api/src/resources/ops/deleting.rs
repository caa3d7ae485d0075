//! The `deleting` mark: how a delete of an object others refer to (network, subnet,
//! security group) never races with a create that adds a reference, on this server or
//! another one on the same store (docs/architecture.md, "Allocation: claims").
//!
//! The delete writes the mark with compare-and-swap, then looks for users. A create that
//! refers to the object checks the object's revision in its own transaction (so one that
//! read it before the mark fails and retries) and refuses a marked object.

use crate::Api;
use crate::db::Txn;
use crate::error::{ApiError, ApiResult};
use model::{Deletable, NbObject};
use nbdb::Revision;

/// Where an object keeps its mark (`None`: objects nobody refers to have none).
pub type Mark<T> = fn(&mut T) -> Option<&mut bool>;

/// Refuses to make a new reference to an object that is being deleted.
pub fn not_deleting<T: Deletable>(obj: &T) -> ApiResult<()> {
    if obj.deleting() {
        return Err(ApiError::conflict(
            "ResourceBeingDeleted",
            format!("{} {} is being deleted", T::KIND, obj.meta().id),
        ));
    }
    Ok(())
}

/// First step of a delete: writes the mark (if `T` has one and it is not set yet) and
/// returns the object's new revision. Once this returns, the in-use check sees every
/// reference there will ever be.
pub async fn mark<T: NbObject>(
    api: &Api,
    obj: &mut T,
    rev: Revision,
    mark: Mark<T>,
) -> ApiResult<Revision> {
    match mark(obj) {
        Some(on) if !*on => *on = true,
        _ => return Ok(rev),
    }
    let mut txn = Txn::new();
    txn.update(obj, rev);
    txn.commit(&api.db).await
}

/// Clears the mark when the delete is refused (the object is in use).
pub async fn unmark<T: NbObject>(api: &Api, obj: &mut T, rev: Revision, mark: Mark<T>) {
    match mark(obj) {
        Some(on) if *on => *on = false,
        _ => return,
    }
    let mut txn = Txn::new();
    txn.update(obj, rev);
    if let Err(e) = txn.commit(&api.db).await {
        // Harmless: a later delete of it proceeds, and creates report the mark clearly.
        tracing::warn!(id = %obj.meta().id, "could not clear the deleting mark: {e}");
    }
}
