//! Counters on etcd: each spread over shards of its own keys beside the prefix, moved by
//! compare-and-write in a commit's transaction (etcd has no arithmetic in one).

use super::{Etcd, prefix_end};
use crate::{Count, Result, StoreError};
use etcd_client::{Compare, CompareOp, GetOptions, TxnOp};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

impl Etcd {
    /// The compares and writes that move `counts` on from their current values. etcd has
    /// no arithmetic in a transaction, so a counter is read, then compared when written (a
    /// moved counter fails the txn, which is tried again). To keep concurrent commits off
    /// one key, a counter is [`SHARDS`] keys and an increment moves one picked at random:
    /// - without a limit (an unlimited quota, a delete) only that shard is compared;
    /// - with one, the room left under the limit is shared out: each other shard may have
    ///   grown by at most its share (compared by value, the values being encoded so that
    ///   byte order is numeric order) when this one commits, so the sum cannot pass the
    ///   limit; near the limit the share is 0 and every shard is compared exactly.
    pub(super) async fn counted(&self, counts: &[Count]) -> Result<(Vec<Compare>, Vec<TxnOp>)> {
        let (mut compares, mut writes) = (Vec::new(), Vec::new());
        if counts.is_empty() {
            return Ok((compares, writes));
        }
        for count in counts {
            let name = count.name();
            let base = format!("{}/", self.shared.counter(name));
            let opts = GetOptions::new().with_range(prefix_end(base.as_bytes()));
            let resp = self
                .shared
                .members
                .get(base.clone().into_bytes(), Some(opts))
                .await?;
            let mut shards = [None; SHARDS];
            for kv in resp.kvs() {
                if let Some(i) = shard_of(&kv.key()[base.len()..]) {
                    shards[i] = Some((number(name, kv.value())?, kv.mod_revision()));
                }
            }
            let key = |i: usize| format!("{base}{i:02}");
            let unchanged = |i: usize| match shards[i] {
                Some((_, r)) => Compare::mod_revision(key(i), CompareOp::Equal, r),
                None => Compare::create_revision(key(i), CompareOp::Equal, 0),
            };
            match count {
                Count::Add { delta, limit, .. } => {
                    let i = (RandomState::new().hash_one(name) % SHARDS as u64) as usize;
                    let own = shards[i].map_or(0, |s| s.0);
                    compares.push(unchanged(i));
                    writes.push(TxnOp::put(
                        key(i),
                        encode_count(own.saturating_add(*delta)),
                        None,
                    ));
                    if let (Some(limit), true) = (limit, *delta > 0) {
                        let sum: i64 = shards.iter().flatten().map(|s| s.0).sum();
                        count.apply(sum)?;
                        let share = (limit - sum - delta) / (SHARDS as i64 - 1);
                        for j in (0..SHARDS).filter(|j| *j != i) {
                            compares.push(match shards[j] {
                                Some((v, _)) if share > 0 => Compare::value(
                                    key(j),
                                    CompareOp::Less,
                                    encode_count(v.saturating_add(share + 1)),
                                ),
                                _ => unchanged(j),
                            });
                        }
                    }
                }
                Count::Set { value, .. } => {
                    writes.push(TxnOp::put(key(0), encode_count(*value), None));
                    for i in (1..SHARDS).filter(|i| shards[*i].is_some()) {
                        writes.push(TxnOp::delete(key(i), None));
                    }
                }
            }
        }
        Ok((compares, writes))
    }
}

/// How many keys a counter is spread over (see [`Etcd::counted`]).
const SHARDS: usize = 16;

/// A counter shard's stored form: the value with its sign bit flipped, as 20 decimal
/// digits, so that comparing the bytes compares the numbers.
fn encode_count(v: i64) -> String {
    format!("{:020}", (v ^ i64::MIN) as u64)
}

/// A counter's stored value.
pub(super) fn number(name: &str, bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|v| v.len() == 20)
        .and_then(|v| v.parse::<u64>().ok())
        .map(|v| (v as i64) ^ i64::MIN)
        .ok_or_else(|| StoreError::Corrupt(format!("counter {name} is not a number")))
}

/// The shard a counter key's last part names (`00` to `15`).
pub(super) fn shard_of(rest: &[u8]) -> Option<usize> {
    let i: usize = std::str::from_utf8(rest).ok()?.parse().ok()?;
    (rest.len() == 2 && i < SHARDS).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::{encode_count, number, shard_of};

    #[test]
    fn counter_values_sort_as_bytes_as_they_do_as_numbers() {
        let values = [i64::MIN, -5_000, -1, 0, 1, 9, 10, 499, 500, i64::MAX];
        for w in values.windows(2) {
            assert!(encode_count(w[0]) < encode_count(w[1]), "{w:?}");
        }
        for v in values {
            assert_eq!(number("c", encode_count(v).as_bytes()).unwrap(), v);
        }
        assert!(number("c", b"12").is_err());
        assert_eq!(shard_of(b"07"), Some(7));
        assert_eq!(shard_of(b"16"), None);
        assert_eq!(shard_of(b"7"), None);
    }
}
