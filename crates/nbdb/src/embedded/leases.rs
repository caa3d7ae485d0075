//! The embedded store's lease space ([`crate::Lease`]): a redb table of key → deadline
//! (ms since the epoch on the server's clock, big-endian; 0: none) followed by the value.
//! Outside the revisions and the change log; written by the writer thread with the
//! model's transactions (see `Job::Lease`), read here from any thread.

use super::io;
use crate::{Lease, Result, StoreError};
use redb::{Database, ReadableDatabase, TableDefinition};
use std::time::Duration;

pub(super) const LEASES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("leases");

/// Now, in ms since the epoch: the lease clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The deadline of a lease written now with `ttl` (`None`: 0, none; a deadline is never 0).
pub(super) fn deadline(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| {
        now_ms()
            .saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
            .max(1)
    })
}

/// A stored lease, read back; bytes too short to hold a deadline are corrupt.
fn decode(key: &str, bytes: &[u8], now: u64) -> Result<Lease> {
    let (deadline, value) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| StoreError::Corrupt(format!("lease {key}: {} bytes", bytes.len())))?;
    let deadline = u64::from_be_bytes(*deadline);
    Ok(Lease {
        key: key.to_string(),
        value: value.to_vec(),
        live: deadline == 0 || deadline > now,
    })
}

pub(super) fn get(db: &Database, key: &str) -> Result<Option<Lease>> {
    let txn = db.begin_read().map_err(io)?;
    let leases = txn.open_table(LEASES).map_err(io)?;
    let Some(v) = leases.get(key).map_err(io)? else {
        return Ok(None);
    };
    decode(key, v.value(), now_ms()).map(Some)
}

/// Every lease whose key starts with `prefix`, in key order; a corrupt one is logged and
/// left out.
pub(super) fn list(db: &Database, prefix: &str) -> Result<Vec<Lease>> {
    let txn = db.begin_read().map_err(io)?;
    let leases = txn.open_table(LEASES).map_err(io)?;
    let now = now_ms();
    let mut out = Vec::new();
    for entry in leases.range(prefix..).map_err(io)? {
        let (k, v) = entry.map_err(io)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        match decode(k.value(), v.value(), now) {
            Ok(l) => out.push(l),
            Err(e) => tracing::error!(error = %e, "corrupt lease skipped"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_reads_back_live_until_its_deadline_and_short_bytes_are_corrupt() {
        let mut bytes = 1000u64.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"v");
        assert!(decode("k", &bytes, 999).unwrap().live);
        assert!(!decode("k", &bytes, 1000).unwrap().live);
        let forever = [0u8; 8];
        assert!(decode("k", &forever, u64::MAX).unwrap().live);
        assert!(matches!(
            decode("k", b"short", 0),
            Err(StoreError::Corrupt(_))
        ));
        assert!(deadline(Some(Duration::ZERO)) > 0);
        assert_eq!(deadline(None), 0);
    }
}
