//! Counters kept beside the objects (quota usage): a commit changes them in the same
//! transaction as its objects, and a limit on an increment is checked by the store inside
//! that transaction. Counters have no revision and are not in the change log, listings or
//! snapshots: watchers never see them.

use crate::{Result, StoreError};

/// A change to one counter, applied atomically with a commit's ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Count {
    /// Adds `delta`. With `limit`, a positive `delta` that takes the counter above `limit`
    /// fails the whole commit with [`StoreError::OverLimit`] (a decrement never fails).
    Add {
        name: String,
        delta: i64,
        limit: Option<i64>,
    },
    /// Sets the counter to `value` (a recount).
    Set { name: String, value: i64 },
}

impl Count {
    pub fn add(name: &str, delta: i64, limit: Option<i64>) -> Count {
        Count::Add {
            name: name.into(),
            delta,
            limit,
        }
    }

    pub fn set(name: &str, value: i64) -> Count {
        Count::Set {
            name: name.into(),
            value,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Count::Add { name, .. } | Count::Set { name, .. } => name,
        }
    }

    /// The counter's value after this change, from `current` (0 when it was never set).
    pub fn apply(&self, current: i64) -> Result<i64> {
        match self {
            Count::Set { value, .. } => Ok(*value),
            Count::Add { name, delta, limit } => {
                let next = current.saturating_add(*delta);
                match limit {
                    Some(l) if *delta > 0 && next > *l => Err(StoreError::OverLimit {
                        counter: name.clone(),
                    }),
                    _ => Ok(next),
                }
            }
        }
    }
}

/// Rejects counter changes no backend can apply: an empty name, or a counter twice.
pub(crate) fn validate(counts: &[Count]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for c in counts {
        if c.name().is_empty() {
            return Err(StoreError::Invalid("empty counter name".into()));
        }
        if !seen.insert(c.name()) {
            return Err(StoreError::Invalid(format!(
                "counter {} appears twice",
                c.name()
            )));
        }
    }
    Ok(())
}

/// Validates a commit: its ops (which may be none only when counters change) and counts.
pub(crate) fn validate_commit(ops: &[crate::Op], counts: &[Count]) -> Result<()> {
    if !ops.is_empty() || counts.is_empty() {
        crate::validate(ops)?;
    }
    validate(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_bind_increments_only() {
        let c = Count::add("p/network", 1, Some(2));
        assert_eq!(c.apply(1).unwrap(), 2);
        assert!(
            matches!(c.apply(2), Err(StoreError::OverLimit { counter }) if counter == "p/network")
        );
        // Already above a lowered limit: a decrement still goes through.
        assert_eq!(Count::add("p/network", -1, Some(2)).apply(5).unwrap(), 4);
        assert_eq!(Count::add("x", 1, None).apply(i64::MAX).unwrap(), i64::MAX);
        assert_eq!(Count::set("x", 7).apply(3).unwrap(), 7);
        assert!(validate(&[Count::set("a", 1), Count::add("a", 1, None)]).is_err());
        assert!(validate(&[Count::set("", 1)]).is_err());
        assert!(validate_commit(&[], &[Count::set("a", 1)]).is_ok());
        assert!(validate_commit(&[], &[]).is_err());
    }
}
