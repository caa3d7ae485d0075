//! Typed access to the NB store for the API: read objects, build a transaction of typed
//! writes and claims, commit it, and retry the whole operation when a compare-and-swap
//! race was lost. A transaction also carries the quota usage its creates and deletes
//! move (`crate::quotas`), committed with it.

use crate::error::{ApiError, ApiResult};
use model::{NbObject, Table};
use nbdb::{Expect, Op, Revision, Store, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How many times an operation that lost a race is retried before giving up with 409.
const MAX_ATTEMPTS: u32 = 50;

/// The store seen through the model's types.
#[derive(Clone)]
pub struct Db {
    pub store: Arc<dyn Store>,
    pub quotas: Arc<crate::quotas::Quotas>,
}

fn decode<T: NbObject>(id: &str, bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("stored {}/{id} is unreadable: {e}", T::TABLE)))
}

impl Db {
    /// The object and the store revision that last wrote it.
    pub async fn get<T: NbObject>(&self, id: &str) -> ApiResult<Option<(T, Revision)>> {
        match self.store.get(T::TABLE.name(), id).await? {
            Some(r) => Ok(Some((decode(id, &r.value)?, r.revision))),
            None => Ok(None),
        }
    }

    /// Like [`Db::get`] but a missing object is a Neutron 404.
    pub async fn fetch<T: NbObject>(&self, id: &str) -> ApiResult<(T, Revision)> {
        self.get(id)
            .await?
            .ok_or_else(|| ApiError::not_found(T::KIND, id))
    }

    /// Every object of the table. An object that cannot be decoded is logged with its key
    /// and left out, so one corrupt record does not take a whole listing down.
    pub async fn all<T: NbObject>(&self) -> ApiResult<Vec<(T, Revision)>> {
        let records = self.store.list(T::TABLE.name(), "").await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match decode::<T>(&r.id, &r.value) {
                Ok(obj) => Some((obj, r.revision)),
                Err(e) => {
                    tracing::error!(table = %T::TABLE, id = %r.id, "{}", e.message);
                    None
                }
            })
            .collect())
    }

    /// The store revision that last wrote `claim`, if claimed.
    pub async fn claim_revision(&self, claim: &str) -> ApiResult<Option<Revision>> {
        Ok(self
            .store
            .get(Table::Claim.name(), claim)
            .await?
            .map(|r| r.revision))
    }

    /// The owner recorded in a claim (`ip/…`, `mac/…`, `key/…`, `seg/…`), if claimed.
    pub async fn claim_owner(&self, claim: &str) -> ApiResult<Option<String>> {
        Ok(self
            .store
            .get(Table::Claim.name(), claim)
            .await?
            .map(|r| serde_json::from_slice(&r.value).unwrap_or_default()))
    }
}

/// A transaction being built: typed object writes plus claims.
#[derive(Default)]
pub struct Txn {
    ops: Vec<Op>,
    /// Claims the user asked for by value: losing them is their error, not a retry.
    requested: Vec<(String, ApiError)>,
    /// The quota usage the creates and deletes move.
    usage: crate::quotas::Usage,
}

fn encode<T: NbObject>(obj: &T) -> Vec<u8> {
    // Serializing plain data structs to JSON cannot fail.
    serde_json::to_vec(obj).unwrap_or_default()
}

/// A write of `obj`, distributed under its topic (its network, or its project).
fn put<T: NbObject>(obj: &T, expect: Expect) -> Op {
    Op::put(T::TABLE.name(), &obj.meta().id, encode(obj), expect).with_topic(Some(obj.topic()))
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    pub fn create<T: NbObject>(&mut self, obj: &T) {
        self.ops.push(put(obj, Expect::Absent));
        self.usage.add(T::TABLE, &obj.meta().project_id, 1);
    }

    /// Makes the create of `obj` (already in the transaction) fit in its project's quota:
    /// the object a POST asked for.
    pub fn within_quota<T: NbObject>(&mut self, obj: &T) {
        self.usage.limit(T::TABLE, &obj.meta().project_id);
    }

    /// Writes `obj` if it is still at revision `rev`.
    pub fn update<T: NbObject>(&mut self, obj: &T, rev: Revision) {
        self.ops.push(put(obj, Expect::Revision(rev)));
    }

    /// Deletes `obj` if it is still at revision `rev` (its usage released with it).
    pub fn delete<T: NbObject>(&mut self, obj: &T, rev: Revision) {
        let meta = obj.meta();
        self.ops
            .push(Op::delete(T::TABLE.name(), &meta.id, Expect::Revision(rev)));
        self.usage.add(T::TABLE, &meta.project_id, -1);
    }

    /// Commits only if the object is still at revision `rev` (writes nothing to it).
    pub fn check<T: NbObject>(&mut self, id: &str, rev: Revision) {
        self.ops
            .push(Op::check(T::TABLE.name(), id, Expect::Revision(rev)));
    }

    /// Claims a key allocated by the server; losing it means retrying.
    pub fn claim(&mut self, claim: &str, owner: &str) {
        self.ops.push(Op::put(
            Table::Claim.name(),
            claim,
            // A JSON string, like every other stored value.
            serde_json::to_vec(owner).unwrap_or_default(),
            Expect::Absent,
        ));
    }

    /// Claims a key the user asked for; if it is taken the request fails with `err`.
    pub fn claim_requested(&mut self, claim: &str, owner: &str, err: ApiError) {
        self.claim(claim, owner);
        self.requested.push((claim.to_string(), err));
    }

    /// Commits only if nobody holds `claim`.
    pub fn check_unclaimed(&mut self, claim: &str) {
        self.ops
            .push(Op::check(Table::Claim.name(), claim, Expect::Absent));
    }

    /// Writes (`keep`) or removes a claim shared by several owners, as it was at `rev`
    /// (`None`: absent): concurrent writers of the same claim conflict and retry.
    pub fn shared_claim(&mut self, claim: &str, owner: &str, rev: Option<Revision>, keep: bool) {
        let expect = rev.map_or(Expect::Absent, Expect::Revision);
        let table = Table::Claim.name();
        self.ops.push(match (keep, rev) {
            (true, _) => Op::put(
                table,
                claim,
                serde_json::to_vec(owner).unwrap_or_default(),
                expect,
            ),
            (false, Some(_)) => Op::delete(table, claim, expect),
            (false, None) => Op::check(table, claim, expect),
        });
    }

    pub fn release(&mut self, claim: &str) {
        self.ops
            .push(Op::delete(Table::Claim.name(), claim, Expect::Any));
    }

    /// Queues Nova's events of this transaction's port changes (one outbox record; none
    /// without events): delivered by [`crate::nova`] once the transaction is in.
    pub fn nova_events(&mut self, events: Vec<model::nova::Event>) {
        if let Some((key, value)) = model::nova::Outbox::record(events) {
            self.ops
                .push(Op::put(model::nova::OUTBOX, &key, value, Expect::Absent));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub async fn commit(self, db: &Db) -> ApiResult<Revision> {
        let counts = db.quotas.counts(db, &self.usage).await?;
        match db.store.commit_counted(self.ops, counts).await {
            Ok(rev) => Ok(rev),
            Err(StoreError::OverLimit { counter }) => Err(crate::quotas::over_limit(&counter)),
            Err(StoreError::Conflict { table, id }) if table == Table::Claim.name() => {
                match self.requested.into_iter().find(|(c, _)| *c == id) {
                    Some((_, err)) => Err(err),
                    None => Err(ApiError::retry(&format!("{table}/{id}"))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `op` until it does not lose a race, with a short jittered pause between attempts.
pub async fn retrying<T, F, Fut>(mut op: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResult<T>>,
{
    let mut last = None;
    for attempt in 0..MAX_ATTEMPTS {
        match op().await {
            Err(e) if e.retry => {
                tracing::debug!(attempt, "{}", e.message);
                last = Some(e);
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 8);
                tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(10)) + jitter))
                    .await;
            }
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| ApiError::retry("the store")))
}
