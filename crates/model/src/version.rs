//! The NB model's version, and what keeps a rolling upgrade working one version step either
//! way: the version marker in the store, the rule for which marker a process accepts, and
//! the fields of a newer model that this one does not know ([`Unknown`]), kept as they
//! were written rather than dropped when an object is written back.
//!
//! The rule: a process reads a store whose model is its own version, the one before, or the
//! one after. An API server moves the marker up to its own version, never down, so the
//! servers go first and the controllers follow, or the other way round, one step at a time.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// This build's NB model version. Bump it when a stored object changes meaning in a way an
/// older reader would get wrong (a field added with a default is not such a change).
pub const MODEL_VERSION: u32 = 2;

/// The version of a store with no marker: every build before the marker existed wrote
/// the model that is version 1.
pub const UNMARKED: u32 = 1;

/// Where the marker lives in the store (a table of its own, which no host follows).
pub const TABLE: &str = "model";
pub const KEY: &str = "version";

/// The stored marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub version: u32,
    /// The software that last moved it (`dragonflow 0.1.0`), for the operator.
    #[serde(default)]
    pub written_by: String,
}

/// The store's model version from its marker record (`None`: no marker).
pub fn stored(value: Option<&[u8]>) -> Result<u32, String> {
    match value {
        None => Ok(UNMARKED),
        Some(v) => serde_json::from_slice::<Marker>(v)
            .map(|m| m.version)
            .map_err(|e| format!("the store's model version marker is unreadable: {e}")),
    }
}

/// How a store's model relates to this build's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compat {
    Same,
    /// The store is one version behind: this build reads it (and a server moves it up).
    Older,
    /// The store is one version ahead (a newer server wrote it): this build reads it and
    /// keeps what it does not know.
    Newer,
}

/// Whether this build may run on a store of model `store`; the error says what to do.
pub fn check(store: u32) -> Result<Compat, String> {
    match store {
        v if v == MODEL_VERSION => Ok(Compat::Same),
        v if v + 1 == MODEL_VERSION => Ok(Compat::Older),
        v if v == MODEL_VERSION + 1 => Ok(Compat::Newer),
        v if v > MODEL_VERSION => Err(format!(
            "the NB store holds model version {v}, written by a newer dragonflow; this one \
             reads versions {} to {}: upgrade it first (one version step at a time)",
            MODEL_VERSION - 1,
            MODEL_VERSION + 1
        )),
        v => Err(format!(
            "the NB store holds model version {v}, more than one step older than this \
             dragonflow's {MODEL_VERSION}: run a dragonflow of version {} against it first",
            v + 1
        )),
    }
}

/// Fields of a stored object that this build does not know: written by a newer model,
/// read and written back unchanged. Never shown by the API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Unknown(pub BTreeMap<String, serde_json::Value>);

// JSON values hold no NaN, so equality is total.
impl Eq for Unknown {}

impl Unknown {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_either_way_is_read_and_two_are_refused() {
        assert_eq!(check(MODEL_VERSION), Ok(Compat::Same));
        assert_eq!(check(MODEL_VERSION - 1), Ok(Compat::Older));
        assert_eq!(check(MODEL_VERSION + 1), Ok(Compat::Newer));
        let e = check(MODEL_VERSION + 2).unwrap_err();
        assert!(e.contains("newer dragonflow"), "{e}");
        let e = check(MODEL_VERSION - 2).unwrap_err();
        assert!(e.contains("older"), "{e}");
    }

    #[test]
    fn a_store_without_marker_is_version_one_and_a_bad_marker_is_an_error() {
        assert_eq!(stored(None), Ok(UNMARKED));
        assert_eq!(stored(Some(br#"{"version": 3, "written_by": "x"}"#)), Ok(3));
        assert_eq!(stored(Some(br#"{"version": 4}"#)), Ok(4));
        assert!(stored(Some(b"{")).is_err());
        assert!(stored(Some(br#"{"version": -1}"#)).is_err());
    }
}
