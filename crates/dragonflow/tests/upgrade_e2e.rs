//! A rolling upgrade on real Open vSwitch, one version step either way. A newer server is
//! played by the test: it writes what a server of the next NB model version writes (the
//! store's version marker one up, and fields this build does not know in the objects).
//! Both sides of every other step are this build's real processes.
//!
//! This server keeps working on that store and keeps the newer fields; a host's controller
//! restarted as a package upgrade restarts it (SIGTERM, then the new process) while a VM
//! pings across hosts loses no packet; its flows then equal a compile from an empty switch;
//! and a store two versions ahead is refused by a controller with a message that says why.

mod common;

use common::Server;
use common::cloud::{Controller, addr, flows, groups, two_hosts_on, wait_until};
use model::version::{KEY, MODEL_VERSION, Marker, TABLE};
use nbdb::{Expect, Op, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

struct Db {
    rt: tokio::runtime::Runtime,
    store: Arc<dyn Store>,
}

impl Db {
    fn open(url: &str) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = rt.block_on(nbdb::connect(url)).expect("store");
        Db { rt, store }
    }

    fn marker(&self, version: Option<u32>) {
        let op = match version {
            Some(version) => Op::put(
                TABLE,
                KEY,
                serde_json::to_vec(&Marker {
                    version,
                    written_by: "the next dragonflow (played by the test)".into(),
                })
                .unwrap(),
                Expect::Any,
            ),
            None => Op::delete(TABLE, KEY, Expect::Any),
        };
        self.rt
            .block_on(self.store.commit(vec![op]))
            .expect("marker");
    }

    fn stored(&self, table: &str, id: &str) -> (Value, Option<String>) {
        let r = self
            .rt
            .block_on(self.store.get(table, id))
            .expect("read")
            .expect("stored");
        (serde_json::from_slice(&r.value).unwrap(), r.topic)
    }

    /// Adds `future_field` to `table/id` as the newer server writes it.
    fn graft(&self, table: &str, id: &str) {
        let (mut v, topic) = self.stored(table, id);
        v["future_field"] = json!({"written_by": "next"});
        let op = Op::put(table, id, serde_json::to_vec(&v).unwrap(), Expect::Any)
            .with_topic(topic.as_deref());
        self.rt
            .block_on(self.store.commit(vec![op]))
            .expect("graft");
    }
}

fn ready(c: &Controller) {
    wait_until(
        "the controller to be ready",
        Duration::from_secs(20),
        || c.log().contains("controller ready"),
    );
}

#[test]
fn a_host_upgraded_across_a_model_step_loses_no_packet_and_ends_with_fresh_flows() {
    if !testbed::require_root(
        "a_host_upgraded_across_a_model_step_loses_no_packet_and_ends_with_fresh_flows",
    ) {
        return;
    }
    let store = testbed::StoreServer::start(testbed::StoreKind::Etcd).expect("etcd");
    let srv = Server::start_on(&store.url());
    let nb = srv.nb_url.clone();
    let mut t = two_hosts_on(srv, &nb);
    let db = Db::open(&store.url());
    let net = t.srv.network("n", "10.0.0.0/24");
    let (a, _) = t.vm(&net, 0);
    let pb = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let (b, ip_b) = (t.plug(&pb, 1, 24), addr(&pb).1);
    assert!(a.pings(&ip_b), "{}", t.dumps());
    let net_id = net["id"].as_str().unwrap().to_string();
    let port_b = pb["id"].as_str().unwrap().to_string();

    // The next model version arrives: its marker, and fields this build does not know.
    db.marker(Some(MODEL_VERSION + 1));
    db.graft("network", &net_id);
    db.graft("port", &port_b);
    // This (older) server still serves, and keeps them through its own update.
    let (st, v) = t.srv.call(
        "PUT",
        &format!("/v2.0/networks/{net_id}"),
        Some(json!({"network": {"name": "renamed"}})),
    );
    assert_eq!(st, 200, "{v}");
    let (n, _) = db.stored("network", &net_id);
    assert_eq!(
        (&n["name"], &n["future_field"]),
        (&json!("renamed"), &json!({"written_by": "next"}))
    );

    // Host a's controller is upgraded the way the package does it: SIGTERM, then the new
    // process, while a VM on it pings host b every 50 ms.
    t.restart_under_ping(0, &nb, "TERM", &a, &ip_b);
    ready(&t.ctl[0]);
    let log = t.ctl[0].log();
    assert!(
        log.contains("one version step from this controller"),
        "the controller did not say it runs on a newer model:\n{log}"
    );
    // The host still binds what changes: a new port on it turns ACTIVE; the newer field is
    // still on host b's port.
    let (c, ip_c) = t.vm(&net, 0);
    assert!(c.pings(&ip_b), "{}", t.dumps());
    assert!(b.pings(&ip_c));
    let (p, _) = db.stored("port", &port_b);
    assert_eq!(p["future_field"], json!({"written_by": "next"}), "{p}");
    std::thread::sleep(Duration::from_millis(300));
    let (upgraded, upgraded_groups) = (flows(&t.ovs[0]), groups(&t.ovs[0]));

    // The upgraded host's flows are those of a fresh compile: the same controller started
    // on an emptied switch installs exactly them. This time the store is one step older
    // than the controller (an older server's store has no marker).
    db.marker(None);
    let _ = t.ctl[0].0.kill();
    let _ = t.ctl[0].0.wait();
    for what in ["del-flows", "del-groups"] {
        t.ovs[0]
            .ofctl(["-O", "OpenFlow13", what, "br-int"])
            .expect(what);
    }
    assert!(flows(&t.ovs[0]).is_empty());
    t.ctl[0] = Controller::start_nb(&nb, &t.ovs[0], "host-a", "192.0.2.1");
    ready(&t.ctl[0]);
    assert!(a.pings(&ip_b), "{}", t.dumps());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        flows(&t.ovs[0]),
        upgraded,
        "the upgraded host's flows differ from a fresh compile"
    );
    assert_eq!(groups(&t.ovs[0]), upgraded_groups);

    // Two steps ahead: host b's controller refuses to start, saying why, and the flows it
    // left keep forwarding.
    db.marker(Some(MODEL_VERSION + 2));
    let _ = t.ctl[1].0.kill();
    let _ = t.ctl[1].0.wait();
    t.ctl[1] = Controller::start_nb(&nb, &t.ovs[1], "host-b", "192.0.2.2");
    let mut status = None;
    wait_until("the controller to refuse", Duration::from_secs(20), || {
        status = t.ctl[1].0.try_wait().expect("wait");
        status.is_some()
    });
    assert!(!status.unwrap().success());
    let log = t.ctl[1].log();
    assert!(
        log.contains(&format!("model version {}", MODEL_VERSION + 2))
            && log.contains("newer dragonflow"),
        "{log}"
    );
    assert!(b.pings(&ip_c), "{}", t.dumps());
}
