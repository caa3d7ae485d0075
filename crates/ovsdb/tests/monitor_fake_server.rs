//! The monitor against a scripted fake server (no root needed): fallback from `monitor_cond`
//! to `monitor`, `update` and `update2` notifications, and a reconnect whose snapshot is
//! reported as the difference against what was held before the connection dropped.

use std::time::Duration;

use ovsdb::framing::Splitter;
use ovsdb::{
    Backoff, ChangeKind, MonitorEvent, MonitorSpec, RowChange, RpcOptions, Target, Uuid, Value,
};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const U1: &str = "11111111-1111-1111-1111-111111111111";
const U2: &str = "22222222-2222-2222-2222-222222222222";
const U3: &str = "33333333-3333-3333-3333-333333333333";

struct Peer {
    s: UnixStream,
    sp: Splitter,
}

impl Peer {
    async fn recv(&mut self) -> Json {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.sp.next_message().expect("client framing") {
                return serde_json::from_slice(&m).expect("client json");
            }
            let n = self.s.read(&mut buf).await.expect("read");
            assert!(n > 0, "client closed");
            self.sp.push(&buf[..n]);
        }
    }

    async fn send(&mut self, j: Json) {
        self.s
            .write_all(j.to_string().as_bytes())
            .await
            .expect("write");
    }

    /// Reads a request for `method` and returns (id, params).
    async fn expect(&mut self, method: &str) -> (Json, Json) {
        let m = self.recv().await;
        assert_eq!(m["method"], method, "{m}");
        (m["id"].clone(), m["params"].clone())
    }
}

fn schema() -> Json {
    json!({"name": "Test", "version": "1.0.0", "tables": {"T": {"columns": {
        "name": {"type": "string"},
        "n": {"type": {"key": "integer", "min": 0, "max": 1}}
    }}}})
}

async fn server(listener: UnixListener) {
    // First connection: an old server without monitor_cond.
    let (s, _) = listener.accept().await.expect("accept");
    let mut p = Peer {
        s,
        sp: Splitter::default(),
    };
    let (id, params) = p.expect("get_schema").await;
    assert_eq!(params, json!(["Test"]));
    p.send(json!({"id": id, "result": schema(), "error": null}))
        .await;
    let (id, _) = p.expect("monitor_cond").await;
    p.send(json!({"id": id, "result": null, "error": "unknown method"}))
        .await;
    let (id, params) = p.expect("monitor").await;
    assert_eq!(params[2], json!({"T": {}}));
    let mon = params[1].clone();
    p.send(json!({"id": id, "error": null, "result": {"T": {
        U1: {"new": {"name": "a", "n": 1}},
        U2: {"new": {"name": "b", "n": ["set", []]}}
    }}}))
    .await;
    p.send(
        json!({"id": null, "method": "update", "params": [mon, {"T": {
            U1: {"old": {"n": 1}, "new": {"name": "a", "n": 2}}
        }}]}),
    )
    .await;
    // Let the client take the update, then drop the connection as a restart would.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(p);

    // Second connection: monitor_cond works; the state changed meanwhile.
    let (s, _) = listener.accept().await.expect("accept again");
    let mut p = Peer {
        s,
        sp: Splitter::default(),
    };
    let (id, _) = p.expect("get_schema").await;
    p.send(json!({"id": id, "result": schema(), "error": null}))
        .await;
    let (id, params) = p.expect("monitor_cond").await;
    assert_eq!(params[2], json!({"T": [{}]}));
    let mon = params[1].clone();
    p.send(json!({"id": id, "error": null, "result": {"T": {
        U1: {"initial": {"name": "a", "n": 3}},
        U3: {"initial": {"name": "c"}}
    }}}))
    .await;
    // The server's own echo must be answered.
    p.send(json!({"id": "srv-echo", "method": "echo", "params": []}))
        .await;
    let echo = p.recv().await;
    assert_eq!(echo["id"], "srv-echo");
    p.send(
        json!({"id": null, "method": "update2", "params": [mon, {"T": {
            U3: {"delete": null}
        }}]}),
    )
    .await;
    // Keep the connection until the client closes it.
    let mut buf = [0u8; 256];
    while p.s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
}

fn summary(changes: &[RowChange]) -> Vec<(String, ChangeKind, Option<i64>)> {
    changes
        .iter()
        .map(|c| {
            let row = c.new.as_ref().or(c.old.as_ref());
            (
                c.uuid.to_string(),
                c.kind,
                row.and_then(|r| r.get("n")).and_then(Value::as_integer),
            )
        })
        .collect()
}

#[tokio::test]
async fn monitor_falls_back_then_resyncs_after_reconnect() {
    let path = std::env::temp_dir().join(format!("ovsdb-fake-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind");
    let srv = tokio::spawn(server(listener));

    let mut m = ovsdb::Monitor::start(
        Target::Unix(path.clone()),
        RpcOptions::default(),
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        MonitorSpec::new("Test").table("T", None),
    );
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), m.next())
            .await
            .expect("event in time")
            .expect("monitor alive")
    };

    let MonitorEvent::Snapshot { changes, reconnect } = next().await else {
        panic!("first event must be a snapshot")
    };
    assert!(!reconnect);
    assert_eq!(
        summary(&changes),
        vec![
            (U1.into(), ChangeKind::Insert, Some(1)),
            (U2.into(), ChangeKind::Insert, None)
        ]
    );
    let MonitorEvent::Update(changes) = next().await else {
        panic!("expected update")
    };
    assert_eq!(
        summary(&changes),
        vec![(U1.into(), ChangeKind::Modify, Some(2))]
    );
    assert_eq!(
        changes[0].old.as_ref().and_then(|o| o["n"].as_integer()),
        Some(1)
    );
    assert_eq!(next().await, MonitorEvent::Disconnected);
    let MonitorEvent::Snapshot { changes, reconnect } = next().await else {
        panic!("expected resync snapshot")
    };
    assert!(reconnect);
    assert_eq!(
        summary(&changes),
        vec![
            (U1.into(), ChangeKind::Modify, Some(3)),
            (U2.into(), ChangeKind::Delete, None),
            (U3.into(), ChangeKind::Insert, None)
        ]
    );
    let MonitorEvent::Update(changes) = next().await else {
        panic!("expected update2")
    };
    assert_eq!(
        summary(&changes),
        vec![(U3.into(), ChangeKind::Delete, None)]
    );

    let replica = m.replica();
    let t = replica.table("T").expect("table");
    assert_eq!(t.len(), 1);
    let u1 = Uuid::parse(U1).expect("uuid");
    assert_eq!(t[&u1]["n"], Value::from(3i64));
    assert_eq!(t[&u1]["name"], Value::from("a"));

    drop(m);
    // The server script ran to its end without a failed expectation.
    tokio::time::timeout(Duration::from_secs(5), srv)
        .await
        .expect("server ends once the monitor is dropped")
        .expect("server script passed");
    let _ = std::fs::remove_file(&path);
}
