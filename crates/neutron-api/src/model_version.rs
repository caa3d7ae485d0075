//! The API server's side of the NB model version (`model::version`): at start it reads the
//! store's marker, refuses a store it cannot read, and moves an older one up to its own
//! version (never down: a server one step older than the store runs, keeping the fields it
//! does not know).

use model::version::{self, Compat, KEY, MODEL_VERSION, Marker, TABLE};
use nbdb::{Expect, Op, Store, StoreError};

/// Settles the store's model version before the server serves; returns it.
pub async fn settle(store: &dyn Store, me: &str) -> Result<u32, String> {
    // A few rounds: another server starting at the same time may move the marker first.
    for _ in 0..5 {
        let marker = store
            .get(TABLE, KEY)
            .await
            .map_err(|e| format!("reading the NB model version: {e}"))?;
        let found = version::stored(marker.as_ref().map(|r| r.value.as_slice()))?;
        match version::check(found)? {
            Compat::Same => {
                tracing::info!(version = found, "NB model version");
                return Ok(found);
            }
            Compat::Newer => {
                tracing::warn!(
                    store = found,
                    this = MODEL_VERSION,
                    "the NB store's model is one version newer than this server's: serving it, keeping the fields this server does not know; upgrade this server"
                );
                return Ok(found);
            }
            Compat::Older => {
                // Version 1 → 2 only adds the marker; a later step's rewrite goes here,
                // in the same transaction as the marker.
                let value = serde_json::to_vec(&Marker {
                    version: MODEL_VERSION,
                    written_by: me.to_string(),
                })
                .map_err(|e| e.to_string())?;
                let expect = marker.map_or(Expect::Absent, |r| Expect::Revision(r.revision));
                match store.commit(vec![Op::put(TABLE, KEY, value, expect)]).await {
                    Ok(_) => {
                        tracing::info!(
                            from = found,
                            to = MODEL_VERSION,
                            "moved the NB model version up"
                        );
                        return Ok(MODEL_VERSION);
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(format!("writing the NB model version: {e}")),
                }
            }
        }
    }
    Err("the NB model version kept changing under this server; start it again".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (std::sync::Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("embedded:{}", dir.path().join("nb.redb").display());
        (nbdb::open(&url).unwrap(), dir)
    }

    async fn marker(store: &dyn Store) -> Option<Marker> {
        let r = store.get(TABLE, KEY).await.unwrap()?;
        Some(serde_json::from_slice(&r.value).unwrap())
    }

    async fn put_marker(store: &dyn Store, version: u32) {
        let m = serde_json::to_vec(&Marker {
            version,
            written_by: "test".into(),
        })
        .unwrap();
        store
            .commit(vec![Op::put(TABLE, KEY, m, Expect::Any)])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unmarked_store_is_moved_up_and_a_newer_one_left_alone() {
        let (store, _dir) = store();
        assert_eq!(settle(store.as_ref(), "me").await, Ok(MODEL_VERSION));
        let m = marker(store.as_ref()).await.unwrap();
        assert_eq!((m.version, m.written_by.as_str()), (MODEL_VERSION, "me"));
        // Again: nothing to do.
        assert_eq!(settle(store.as_ref(), "other").await, Ok(MODEL_VERSION));
        assert_eq!(marker(store.as_ref()).await.unwrap().written_by, "me");
        // One step newer: served as it is, not moved down.
        put_marker(store.as_ref(), MODEL_VERSION + 1).await;
        assert_eq!(settle(store.as_ref(), "me").await, Ok(MODEL_VERSION + 1));
        assert_eq!(
            marker(store.as_ref()).await.unwrap().version,
            MODEL_VERSION + 1
        );
    }

    #[tokio::test]
    async fn a_store_two_steps_away_is_refused() {
        let (store, _dir) = store();
        put_marker(store.as_ref(), MODEL_VERSION + 2).await;
        let e = settle(store.as_ref(), "me").await.unwrap_err();
        assert!(e.contains("newer dragonflow"), "{e}");
        put_marker(store.as_ref(), MODEL_VERSION - 2).await;
        assert!(settle(store.as_ref(), "me").await.is_err());
    }
}
