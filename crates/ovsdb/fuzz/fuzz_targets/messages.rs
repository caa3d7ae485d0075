//! Fuzzes everything that decodes what a server sends, after framing and JSON parsing:
//! values and rows, error objects, transaction results, and `update`/`update2` notifications
//! applied to a replica (with a small schema covering scalar, optional, set and map columns).
//! None of it may panic.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ovsdb::framing::Splitter;
use ovsdb::replica::MonitoredColumns;
use ovsdb::{OvsdbError, Replica, Schema, Value};
use serde_json::{Value as Json, json};

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        Schema::from_json(&json!({"name": "F", "version": "1", "tables": {"T": {"columns": {
            "s": {"type": "string"},
            "o": {"type": {"key": "integer", "min": 0, "max": 1}},
            "set": {"type": {"key": "uuid", "min": 0, "max": "unlimited"}},
            "map": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
        }}}}))
        .unwrap_or_else(|e| panic!("fuzz schema: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let cols: MonitoredColumns = BTreeMap::from([("T".to_string(), None)]);
    let mut replica = Replica::new();
    let mut s = Splitter::default();
    s.push(data);
    while let Ok(Some(m)) = s.next_message() {
        let Ok(j) = serde_json::from_slice::<Json>(&m) else {
            continue;
        };
        let _ = Value::from_json(&j);
        let _ = ovsdb::value::row_from_json(&j);
        let _ = OvsdbError::from_json(&j);
        let _ = ovsdb::ops::decode_results(2, &j);
        let _ = Schema::from_json(&j);
        let updates = j.get("params").and_then(|p| p.get(1)).unwrap_or(&j);
        let _ = replica.apply_update2(schema(), &cols, updates);
        let _ = replica.apply_update(schema(), &cols, updates);
        let _ = replica.replace_with(replica.clone());
    }
});
