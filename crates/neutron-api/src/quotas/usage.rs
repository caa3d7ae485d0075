//! Usage of a store written before quotas: its objects are counted once, before the first
//! counted commit of any server on it, and a marker object says it was done.

use super::{RESOURCES, counter, resource_of};
use crate::db::Db;
use crate::error::ApiResult;
use nbdb::{Count, Expect, Filter, Op, StoreError};
use std::collections::BTreeMap;

/// `quota_usage/counted`: present once usage counters exist for every object.
pub const MARKER_TABLE: &str = "quota_usage";
pub const MARKER_ID: &str = "counted";

/// Counter changes per commit: etcd takes at most 127 operations in one.
const CHUNK: usize = 100;

/// The owner of a stored object (its `meta` is flattened), read without decoding the
/// rest of it.
#[derive(serde::Deserialize)]
struct Owned {
    #[serde(default)]
    project_id: String,
}

/// Counts every object of the counted tables by project, unless a server did so already.
///
/// Exact because nothing counted is written meanwhile: every server with quotas waits for
/// this before its first counted commit, and a store without the marker has had none.
/// Each chunk of counters is written only while the marker is absent, so a slower server
/// counting the same store at the same time cannot overwrite counters that another
/// server, done first, has moved since.
pub async fn count_existing(db: &Db) -> ApiResult<()> {
    if db.store.get(MARKER_TABLE, MARKER_ID).await?.is_some() {
        return Ok(());
    }
    let tables = RESOURCES
        .iter()
        .map(|(_, t)| t.name().to_string())
        .collect();
    let snap = db
        .store
        .snapshot_filtered(&Filter {
            tables: Some(tables),
            topics: None,
        })
        .await?;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for r in &snap.records {
        let Some(resource) = model::Table::from_name(&r.table).and_then(resource_of) else {
            continue;
        };
        // An unreadable object is reported where it is read; it counts for nobody here.
        let Ok(o) = serde_json::from_slice::<Owned>(&r.value) else {
            continue;
        };
        if !o.project_id.is_empty() {
            *counts.entry(counter(&o.project_id, resource)).or_default() += 1;
        }
    }
    let objects = snap.records.len();
    let counts: Vec<Count> = counts.iter().map(|(n, v)| Count::set(n, *v)).collect();
    let absent = || vec![Op::check(MARKER_TABLE, MARKER_ID, Expect::Absent)];
    for chunk in counts.chunks(CHUNK) {
        match db.store.commit_counted(absent(), chunk.to_vec()).await {
            Ok(_) => {}
            // Another server finished first: its counters stand.
            Err(StoreError::Conflict { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let marker = Op::put(MARKER_TABLE, MARKER_ID, b"1".to_vec(), Expect::Absent);
    match db.store.commit(vec![marker]).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => {
            tracing::info!(
                objects,
                counters = counts.len(),
                "quota usage counted from the store"
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
