//! One commit on ZooKeeper: read `rev` and what the ops touch, check the expectations,
//! then one multi-op conditional on `rev`'s version (see the module above for why that
//! serialises commits).

use super::layout;
use super::{PERSISTENT, ZooKeeper, err};
use crate::codec::{self, LogEntry};
use crate::{Count, Op, Result, Revision, StoreError};
use std::collections::BTreeSet;
use zookeeper_client as zk;

/// What one attempt at a commit came to.
pub(super) enum Attempt {
    Done(Revision),
    /// Another commit came in between: read again.
    Retry,
}

impl ZooKeeper {
    pub(super) async fn commit_once(
        &self,
        c: &zk::Client,
        ops: &[Op],
        counts: &[Count],
    ) -> Result<Attempt> {
        let l = &self.inner.layout;
        // All reads go out at once; the session's order puts `rev` first, so every object
        // read is at least as new as the revision read, and the version condition on
        // `rev` below makes sure nothing newer committed before this multi.
        let rev_read = c.get_data(&l.rev());
        let object_reads: Vec<_> = ops
            .iter()
            .map(|op| {
                let (t, i) = op.key();
                c.get_data(&l.object(t, i))
            })
            .collect();
        let put_tables: BTreeSet<&str> = ops
            .iter()
            .filter(|op| matches!(op, Op::Put { .. }))
            .map(|op| op.key().0)
            .collect();
        let table_reads: Vec<_> = put_tables
            .iter()
            .map(|t| (*t, c.check_stat(&l.table(t))))
            .collect();
        let counter_reads: Vec<_> = counts
            .iter()
            .map(|n| c.get_data(&l.counter(n.name())))
            .collect();

        let (rev_data, rev_stat) = rev_read.await.map_err(err)?;
        let current: Revision = layout::decode_number("revision", &rev_data)?;
        let next = current + 1;
        // (exists, revision, topic) of each op's object; an undecodable one is present at
        // revision 0, which no expectation names.
        let mut existing = Vec::with_capacity(ops.len());
        for read in object_reads {
            existing.push(match read.await {
                Ok((data, _)) => match codec::decode_object(&data) {
                    Ok(o) => Some((o.revision, o.topic.to_string())),
                    Err(_) => Some((0, String::new())),
                },
                Err(zk::Error::NoNode) => None,
                Err(e) => return Err(err(e)),
            });
        }
        let mut missing_tables = Vec::new();
        for (t, read) in table_reads {
            if read.await.map_err(err)?.is_none() {
                missing_tables.push(t);
            }
        }
        let mut counters = Vec::with_capacity(counts.len());
        for read in counter_reads {
            counters.push(match read.await {
                Ok((data, _)) => Some(layout::decode_number::<i64>("counter", &data)?),
                Err(zk::Error::NoNode) => None,
                Err(e) => return Err(err(e)),
            });
        }
        for (op, cur) in ops.iter().zip(&existing) {
            if !crate::expect_holds(op.expect(), cur.as_ref().map(|c| c.0)) {
                let (table, id) = op.key();
                return Err(StoreError::Conflict {
                    table: table.into(),
                    id: id.into(),
                });
            }
        }
        let mut new_counts = Vec::with_capacity(counts.len());
        for (n, cur) in counts.iter().zip(&counters) {
            new_counts.push(n.apply(cur.unwrap_or(0))?);
        }

        let mut m = c.new_multi_writer();
        let mut size = 0;
        let rev_bytes = next.to_string();
        size += layout::op_size(&l.rev(), rev_bytes.len());
        m.add_set_data(&l.rev(), rev_bytes.as_bytes(), Some(rev_stat.version))
            .map_err(err)?;
        for t in missing_tables {
            let p = l.table(t);
            size += layout::op_size(&p, 0);
            m.add_create(&p, b"", &PERSISTENT).map_err(err)?;
        }
        let mut log = Vec::new();
        for (op, cur) in ops.iter().zip(&existing) {
            let (table, id) = op.key();
            let path = l.object(table, id);
            match op {
                Op::Put { value, topic, .. } => {
                    let topic = topic.as_deref().unwrap_or("");
                    let data = codec::encode_object(next, topic, value);
                    size += layout::op_size(&path, data.len());
                    if cur.is_some() {
                        m.add_set_data(&path, &data, None).map_err(err)?;
                    } else {
                        m.add_create(&path, &data, &PERSISTENT).map_err(err)?;
                    }
                    log.push(LogEntry {
                        table,
                        id,
                        topic,
                        value: Some(value),
                    });
                }
                Op::Delete { .. } => {
                    if let Some((_, topic)) = cur {
                        size += layout::op_size(&path, 0);
                        m.add_delete(&path, None).map_err(err)?;
                        log.push(LogEntry {
                            table,
                            id,
                            topic,
                            value: None,
                        });
                    }
                }
                Op::Check { .. } => {}
            }
        }
        for ((n, cur), value) in counts.iter().zip(&counters).zip(&new_counts) {
            let path = l.counter(n.name());
            let data = value.to_string();
            size += layout::op_size(&path, data.len());
            match (cur, value) {
                (None, 0) => {}
                (Some(_), 0) => m.add_delete(&path, None).map_err(err)?,
                (Some(_), _) => m.add_set_data(&path, data.as_bytes(), None).map_err(err)?,
                (None, _) => m
                    .add_create(&path, data.as_bytes(), &PERSISTENT)
                    .map_err(err)?,
            }
        }
        let entry = codec::encode_changes(&log);
        size += layout::op_size(&l.log(next), entry.len());
        layout::check_size("a commit", size)?;
        m.add_create(&l.log(next), &entry, &PERSISTENT)
            .map_err(err)?;
        match m.commit().await {
            Ok(_) => Ok(Attempt::Done(next)),
            // `rev` moved (another commit), or a node changed outside the protocol.
            Err(zk::MultiWriteError::OperationFailed {
                source: zk::Error::BadVersion | zk::Error::NodeExists | zk::Error::NoNode,
                ..
            }) => Ok(Attempt::Retry),
            Err(zk::MultiWriteError::OperationFailed { source, .. })
            | Err(zk::MultiWriteError::RequestFailed { source }) => Err(err(source)),
        }
    }
}
