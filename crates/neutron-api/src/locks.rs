//! In-process striped locks that order deletes against creates referring to the deleted
//! object (a port being created on a network that is being deleted), which a per-object
//! compare-and-swap alone cannot see. Creates take read locks, deletes a write lock; stripes
//! are always taken in index order, so lockers never deadlock.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

const STRIPES: usize = 256;

pub struct Locks {
    stripes: Vec<RwLock<()>>,
}

impl Default for Locks {
    fn default() -> Locks {
        Locks {
            stripes: (0..STRIPES).map(|_| RwLock::new(())).collect(),
        }
    }
}

fn stripe(id: &str) -> usize {
    // FNV-1a: stable and cheap; ids are UUIDs so the spread is even.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

impl Locks {
    /// Read locks on the stripes of `ids`, taken in stripe order.
    pub async fn read(&self, ids: &[&str]) -> Vec<RwLockReadGuard<'_, ()>> {
        let mut idx: Vec<usize> = ids.iter().map(|i| stripe(i)).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].read().await);
        }
        guards
    }

    /// The write lock on the stripe of `id`.
    pub async fn write(&self, id: &str) -> RwLockWriteGuard<'_, ()> {
        self.stripes[stripe(id)].write().await
    }
}
