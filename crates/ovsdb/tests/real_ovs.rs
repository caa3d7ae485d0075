//! Against a real ovsdb-server and ovs-vswitchd (userspace datapath), each test with its own
//! private instance from `testbed`; `ovs-vsctl` is the oracle. Skipped only when not root.
//!
//! Each instance runs in its own network namespace: the userspace datapath of every
//! ovs-vswitchd opens a tap device named `ovs-netdev`, and a second instance in the same
//! namespace fails to create its netdev bridges while the first holds it.

use std::time::Duration;

use ovsdb::{
    BridgeSpec, Client, Condition, Error, ErrorKind, FailMode, InterfaceEvent, InterfaceState,
    InterfaceWatcher, Operation, PortSpec, Row, TunnelKind, Value,
};
use testbed::{Netns, Ovs};

const WAIT: Duration = Duration::from_secs(20);

/// An OVS instance in its own namespace (dropped before the namespace).
struct Host {
    ovs: Ovs,
    ns: Netns,
}

fn host(tag: &str) -> Host {
    let ns = Netns::new(&format!("odb-{tag}")).expect("netns");
    let ovs = Ovs::start_in_netns(&ns).expect("ovs");
    Host { ovs, ns }
}

fn client(ovs: &Ovs) -> Client {
    Client::new(&format!("unix:{}", ovs.db_sock().display())).expect("client")
}

fn vsctl(ovs: &Ovs, args: &[&str]) -> String {
    ovs.vsctl(args)
        .unwrap_or_else(|e| panic!("ovs-vsctl {args:?}: {e}"))
        .trim()
        .to_string()
}

fn br_int() -> BridgeSpec {
    BridgeSpec::new("br-int")
        .datapath_type("netdev")
        .fail_mode(FailMode::Secure)
        .protocols(&["OpenFlow13"])
        .other_config("disable-in-band", "true")
}

/// Takes events until `pred` accepts one; fails after [`WAIT`].
async fn until(
    w: &mut InterfaceWatcher,
    what: &str,
    mut pred: impl FnMut(&InterfaceEvent) -> bool,
) -> InterfaceEvent {
    let fut = async {
        loop {
            let e = w.next().await.expect("watcher ended");
            if pred(&e) {
                return e;
            }
        }
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn has_ofport(e: &InterfaceEvent, name: &str) -> Option<InterfaceState> {
    match e {
        InterfaceEvent::Added(s) | InterfaceEvent::Changed { new: s, .. }
            if s.name == name && s.ofport().is_some() =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

fn removed(e: &InterfaceEvent, name: &str) -> bool {
    matches!(e, InterfaceEvent::Removed(s) if s.name == name)
}

async fn ofport_of(c: &Client, name: &str) -> u32 {
    c.wait_ofport(name, WAIT).await.expect("ofport")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_bridge_creates_then_fixes_only_differences() {
    if !testbed::require_root("ensure_bridge_creates_then_fixes_only_differences") {
        return;
    }
    let h = host("bridge");
    let ovs = &h.ovs;
    let c = client(ovs);
    let ctl = format!("unix:{}", ovs.dir().join("ctl.sock").display());
    let spec = br_int()
        .controllers(&[&ctl])
        .external_id("owner", "dragonflow");

    let first = c.ensure_bridge(&spec).await.expect("create");
    assert!(first.changed);
    let cfg = first.next_cfg.expect("next_cfg bumped");
    c.wait_reconfigured(cfg, WAIT)
        .await
        .expect("vswitchd applied");
    assert_eq!(
        vsctl(ovs, &["get", "bridge", "br-int", "datapath_type"]),
        "netdev"
    );
    assert_eq!(
        vsctl(ovs, &["get", "bridge", "br-int", "fail_mode"]),
        "secure"
    );
    assert_eq!(
        vsctl(ovs, &["get", "bridge", "br-int", "protocols"]),
        "[OpenFlow13]"
    );
    assert_eq!(
        vsctl(
            ovs,
            &["get", "bridge", "br-int", "other_config:disable-in-band"]
        ),
        r#""true""#
    );
    assert_eq!(
        vsctl(ovs, &["get", "bridge", "br-int", "external_ids:owner"]),
        "dragonflow"
    );
    assert_eq!(vsctl(ovs, &["get-controller", "br-int"]), ctl);
    assert_eq!(vsctl(ovs, &["list-br"]), "br-int");
    assert_eq!(
        c.list_bridges().await.expect("list_bridges"),
        vec!["br-int"]
    );
    // Like add-br: the bridge has its local internal port, and ovs-vswitchd made it.
    assert_eq!(
        vsctl(ovs, &["get", "interface", "br-int", "type"]),
        "internal"
    );
    assert!(
        testbed::wait_for(WAIT, || ovs.mgmt_sock("br-int").exists()),
        "ovs-vswitchd did not create br-int"
    );
    assert_eq!(
        c.list_ports("br-int").await.expect("list"),
        Vec::<String>::new()
    );

    // Idempotent: nothing to write the second time.
    let controller_row = vsctl(ovs, &["get", "bridge", "br-int", "controller"]);
    let again = c.ensure_bridge(&spec).await.expect("again");
    assert!(!again.changed);
    assert_eq!(again.uuid, first.uuid);
    assert_eq!(again.next_cfg, None);

    // Drift behind our back: only what differs is fixed, the rest (and keys we do not own)
    // is kept, and the controller row is not replaced.
    vsctl(
        ovs,
        &[
            "set",
            "bridge",
            "br-int",
            "fail_mode=standalone",
            "other_config:foreign=kept",
        ],
    );
    let fixed = c.ensure_bridge(&spec).await.expect("fix");
    assert!(fixed.changed);
    assert_eq!(fixed.uuid, first.uuid);
    assert_eq!(
        vsctl(ovs, &["get", "bridge", "br-int", "fail_mode"]),
        "secure"
    );
    assert_eq!(
        vsctl(ovs, &["get", "bridge", "br-int", "other_config:foreign"]),
        "kept"
    );
    assert_eq!(
        vsctl(ovs, &["get", "bridge", "br-int", "controller"]),
        controller_row
    );

    // A new controller target replaces the old one.
    let ctl2 = "tcp:127.0.0.1:16653";
    let moved = c
        .ensure_bridge(&br_int().controllers(&[ctl2]))
        .await
        .expect("move controller");
    assert!(moved.changed);
    assert_eq!(vsctl(ovs, &["get-controller", "br-int"]), ctl2);
    assert_eq!(
        vsctl(ovs, &["--columns=target", "--bare", "list", "controller"]),
        ctl2,
        "the replaced Controller row was not garbage-collected"
    );

    assert!(c.del_bridge("br-int").await.expect("del"));
    assert!(!c.del_bridge("br-int").await.expect("del again"));
    assert_eq!(vsctl(ovs, &["list-br"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_of_every_kind() {
    if !testbed::require_root("ports_of_every_kind") {
        return;
    }
    let h = host("ports");
    let ovs = &h.ovs;
    let c = client(ovs);
    c.ensure_bridge(&br_int()).await.expect("br-int");
    c.ensure_bridge(&BridgeSpec::new("br-ex").datapath_type("netdev"))
        .await
        .expect("br-ex");
    testbed::veth("odbvm1", Some(&h.ns), "odbtap1", Some(&h.ns)).expect("veth");

    let specs = [
        PortSpec::internal("odb-int1"),
        PortSpec::system("odbtap1")
            .iface_id("3f1c-port")
            .external_id("attached-mac", "fa:16:3e:11:22:33"),
        PortSpec::tunnel("tun-geneve", TunnelKind::Geneve),
        PortSpec::tunnel("tun-vxlan", TunnelKind::Vxlan),
        PortSpec::tunnel("tun-gre", TunnelKind::Gre),
        PortSpec::patch("patch-ex", "patch-int").ofport_request(100),
    ];
    for s in &specs {
        let a = c.add_port("br-int", s).await.expect("add_port");
        assert!(a.changed, "{}", s.name);
    }
    c.add_port("br-ex", &PortSpec::patch("patch-int", "patch-ex"))
        .await
        .expect("patch peer");

    let mut want: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    want.sort();
    assert_eq!(c.list_ports("br-int").await.expect("list"), want);
    assert_eq!(
        vsctl(ovs, &["list-ports", "br-int"]),
        want.join("\n"),
        "ovs-vsctl disagrees"
    );
    for t in ["geneve", "vxlan", "gre"] {
        let name = format!("tun-{t}");
        assert_eq!(vsctl(ovs, &["get", "interface", &name, "type"]), t);
        assert_eq!(
            vsctl(ovs, &["get", "interface", &name, "options:remote_ip"]),
            "flow"
        );
        assert_eq!(
            vsctl(ovs, &["get", "interface", &name, "options:key"]),
            "flow"
        );
    }
    assert_eq!(
        vsctl(
            ovs,
            &["get", "interface", "odbtap1", "external_ids:iface-id"]
        ),
        r#""3f1c-port""#
    );
    assert_eq!(
        vsctl(ovs, &["get", "interface", "patch-int", "options:peer"]),
        "patch-ex"
    );
    assert_eq!(vsctl(ovs, &["port-to-br", "patch-int"]), "br-ex");

    // ovs-vswitchd opened every port: each has a valid ofport, the requested one included.
    for s in &specs {
        let p = ofport_of(&c, &s.name).await;
        assert!(p > 0, "{}", s.name);
    }
    assert_eq!(ofport_of(&c, "patch-ex").await, 100);
    let tap = c
        .get_interface("odbtap1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(tap.iface_id.as_deref(), Some("3f1c-port"));
    assert_eq!(tap.attached_mac.as_deref(), Some("fa:16:3e:11:22:33"));

    // Idempotent, then a real change of one interface only.
    for s in &specs {
        assert!(
            !c.add_port("br-int", s).await.expect("again").changed,
            "{}",
            s.name
        );
    }
    let moved = PortSpec::system("odbtap1").iface_id("other-port");
    assert!(c.add_port("br-int", &moved).await.expect("retag").changed);
    assert_eq!(
        vsctl(ovs, &["get", "interface", "odbtap1", "external_ids"]),
        r#"{iface-id=other-port}"#
    );

    // A port of another bridge and an unknown bridge are refused, typed.
    assert!(matches!(
        c.add_port("br-int", &PortSpec::patch("patch-int", "x"))
            .await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        c.add_port("br-nope", &PortSpec::internal("x")).await,
        Err(Error::Invalid(_))
    ));

    assert!(c.del_port("br-int", "tun-gre").await.expect("del"));
    assert!(!c.del_port("br-int", "tun-gre").await.expect("del again"));
    assert!(
        !c.del_port("br-int", "patch-int")
            .await
            .expect("not on br-int")
    );
    assert!(
        !vsctl(ovs, &["list-ports", "br-int"]).contains("tun-gre"),
        "tun-gre still there"
    );
    assert!(c.get_interface("tun-gre").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interface_watcher_sees_ofport_assignment_and_removal() {
    if !testbed::require_root("interface_watcher_sees_ofport_assignment_and_removal") {
        return;
    }
    let h = host("watch");
    let ovs = &h.ovs;
    let c = client(ovs);
    c.ensure_bridge(&br_int()).await.expect("br-int");
    let mut w = c.watch_interfaces();
    let first = until(&mut w, "initial resync", |e| {
        matches!(e, InterfaceEvent::Resync(_))
    })
    .await;
    let InterfaceEvent::Resync(all) = first else {
        unreachable!()
    };
    assert!(all.iter().any(|s| s.name == "br-int"), "{all:?}");

    // Added by our helper: first without ofport, then ovs-vswitchd assigns it.
    c.add_port("br-int", &PortSpec::internal("odbw1").iface_id("vm-1"))
        .await
        .expect("add");
    let e = until(&mut w, "odbw1 ofport", |e| has_ofport(e, "odbw1").is_some()).await;
    let s = has_ofport(&e, "odbw1").expect("state");
    assert_eq!(s.iface_id.as_deref(), Some("vm-1"));
    assert_eq!(
        Some(s.ofport().expect("ofport")),
        Some(ofport_of(&c, "odbw1").await)
    );
    assert!(w.current().iter().any(|x| x.name == "odbw1"));

    c.del_port("br-int", "odbw1").await.expect("del");
    until(&mut w, "odbw1 removal", |e| removed(e, "odbw1")).await;

    // Behind our back, with ovs-vsctl.
    vsctl(
        ovs,
        &[
            "add-port",
            "br-int",
            "odbw2",
            "--",
            "set",
            "interface",
            "odbw2",
            "type=internal",
            "external_ids:iface-id=vm-2",
        ],
    );
    let e = until(&mut w, "odbw2 ofport", |e| has_ofport(e, "odbw2").is_some()).await;
    assert_eq!(
        has_ofport(&e, "odbw2").and_then(|s| s.iface_id),
        Some("vm-2".to_string())
    );
    vsctl(
        ovs,
        &["set", "interface", "odbw2", "external_ids:iface-id=vm-3"],
    );
    until(&mut w, "iface-id change", |e| {
        matches!(e, InterfaceEvent::Changed { old, new }
            if new.name == "odbw2" && old.iface_id.as_deref() == Some("vm-2")
                && new.iface_id.as_deref() == Some("vm-3"))
    })
    .await;
    vsctl(ovs, &["del-port", "odbw2"]);
    until(&mut w, "odbw2 removal", |e| removed(e, "odbw2")).await;
    assert!(!w.current().iter().any(|x| x.name == "odbw2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_and_client_survive_ovsdb_restart() {
    if !testbed::require_root("monitor_and_client_survive_ovsdb_restart") {
        return;
    }
    let h = host("restart");
    let ovs = &h.ovs;
    let c = client(ovs);
    c.ensure_bridge(&br_int()).await.expect("br-int");
    c.add_port("br-int", &PortSpec::internal("odbr1"))
        .await
        .expect("port");
    let mut w = c.watch_interfaces();
    until(&mut w, "odbr1 with ofport", |e| {
        has_ofport(e, "odbr1").is_some()
    })
    .await;

    ovs.restart_ovsdb().expect("restart ovsdb-server");
    until(&mut w, "disconnect", |e| {
        matches!(e, InterfaceEvent::Disconnected)
    })
    .await;
    let resync = until(&mut w, "resync", |e| matches!(e, InterfaceEvent::Resync(_))).await;
    let InterfaceEvent::Resync(all) = resync else {
        unreachable!()
    };
    assert!(all.iter().any(|s| s.name == "odbr1"), "{all:?}");

    // A change made after the restart is seen, and the client reconnects by itself.
    vsctl(
        ovs,
        &[
            "add-port",
            "br-int",
            "odbr2",
            "--",
            "set",
            "interface",
            "odbr2",
            "type=internal",
        ],
    );
    until(&mut w, "odbr2 after restart", |e| {
        has_ofport(e, "odbr2").is_some()
    })
    .await;
    c.add_port("br-int", &PortSpec::internal("odbr3"))
        .await
        .expect("transact after restart");
    until(&mut w, "odbr3 after restart", |e| {
        has_ofport(e, "odbr3").is_some()
    })
    .await;
    assert_eq!(
        c.list_ports("br-int").await.expect("list"),
        vec!["odbr1", "odbr2", "odbr3"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_errors_are_typed() {
    if !testbed::require_root("transaction_errors_are_typed") {
        return;
    }
    let h = host("errors");
    let ovs = &h.ovs;
    let c = client(ovs);

    // A value outside the column's constraints (ofport_request is 1..=65279).
    let mut iface = Row::new();
    iface.insert("name".into(), Value::from("bad"));
    iface.insert("ofport_request".into(), Value::from(70000i64));
    let err = c
        .transact(&[Operation::insert("Interface", iface)])
        .await
        .expect_err("out of range");
    match &err {
        Error::Transaction { op: Some(0), error } => {
            assert_eq!(error.kind, ErrorKind::ConstraintViolation, "{error}");
            assert!(error.details.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }

    // A value outside an enum.
    let mut br = Row::new();
    br.insert("name".into(), Value::from("br-bad"));
    br.insert("fail_mode".into(), Value::from("sometimes"));
    let err = c
        .transact(&[Operation::insert("Bridge", br)])
        .await
        .expect_err("bad enum");
    assert_eq!(
        err.ovsdb_kind(),
        Some(&ErrorKind::ConstraintViolation),
        "{err}"
    );

    // A strong reference to a row that does not exist fails at commit.
    let mut port = Row::new();
    port.insert("name".into(), Value::from("p"));
    port.insert(
        "interfaces".into(),
        Value::set([ovsdb::Atom::Uuid(
            ovsdb::Uuid::parse("01234567-89ab-cdef-0123-456789abcdef").expect("uuid"),
        )]),
    );
    let err = c
        .transact(&[Operation::insert("Port", port)])
        .await
        .expect_err("dangling reference");
    assert!(
        matches!(
            err.ovsdb_kind(),
            Some(ErrorKind::ReferentialIntegrityViolation | ErrorKind::ConstraintViolation)
        ),
        "{err}"
    );

    // Unknown table: a request error, still typed.
    let err = c
        .transact(&[Operation::select("Nope", vec![], None)])
        .await
        .expect_err("unknown table");
    assert!(err.ovsdb_kind().is_some(), "{err:?}");

    // A failed `wait` is "timed out"; the database is unchanged after all of these.
    let err = c
        .transact(&[Operation::Wait {
            table: "Open_vSwitch".into(),
            conditions: vec![],
            columns: vec!["bridges".into()],
            until: ovsdb::WaitUntil::NotEqual,
            rows: vec![[("bridges".to_string(), Value::empty_set())].into()],
            timeout_ms: Some(0),
        }])
        .await
        .expect_err("wait");
    assert_eq!(err.ovsdb_kind(), Some(&ErrorKind::TimedOut), "{err}");
    let rows = c
        .transact(&[Operation::select(
            "Interface",
            vec![Condition::eq("name", "bad")],
            None,
        )])
        .await
        .expect("select");
    assert_eq!(rows[0].rows.as_ref().map(Vec::len), Some(0));

    // An RPC-level error (unknown database) is typed too.
    match c.call("get_schema", serde_json::json!(["Nope"])).await {
        Err(Error::Rpc(e)) => assert!(e.error.contains("unknown database"), "{e}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_over_tcp() {
    if !testbed::require_root("works_over_tcp") {
        return;
    }
    let owned = Ovs::start_here().expect("ovs");
    let ovs = &owned;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    vsctl(ovs, &["set-manager", &format!("ptcp:{port}:127.0.0.1")]);
    let target = format!("tcp:127.0.0.1:{port}");
    // ovsdb-server opens the listener shortly after the manager row appears.
    let deadline = tokio::time::Instant::now() + WAIT;
    let c = loop {
        match Client::connect(&target).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "{target}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let dbs = c
        .call("list_dbs", serde_json::json!([]))
        .await
        .expect("list_dbs");
    assert!(
        dbs.as_array()
            .is_some_and(|a| a.iter().any(|d| d == "Open_vSwitch")),
        "{dbs}"
    );
    // Database content only (this instance shares the root namespace, so no netdev bridge).
    let a = c
        .ensure_bridge(&BridgeSpec::new("br-tcp").fail_mode(FailMode::Secure))
        .await
        .expect("bridge over tcp");
    assert!(a.changed);
    assert_eq!(vsctl(ovs, &["list-br"]), "br-tcp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ensures_create_one_bridge_and_one_port() {
    if !testbed::require_root("concurrent_ensures_create_one_bridge_and_one_port") {
        return;
    }
    let h = host("race");
    let ovs = &h.ovs;
    // Separate clients, so the transactions really interleave on the server.
    let spec = br_int();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let c = client(ovs);
            let spec = spec.clone();
            tokio::spawn(async move { c.ensure_bridge(&spec).await })
        })
        .collect();
    let mut uuids = Vec::new();
    for t in tasks {
        uuids.push(t.await.expect("join").expect("ensure").uuid);
    }
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 1, "every caller sees the same bridge");
    assert_eq!(vsctl(ovs, &["list-br"]), "br-int");

    let port = PortSpec::tunnel("tun-geneve", TunnelKind::Geneve);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let c = client(ovs);
            let port = port.clone();
            tokio::spawn(async move { c.add_port("br-int", &port).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await.expect("join").expect("add_port").changed);
    }
    assert_eq!(created, 1, "exactly one caller created the port");
    assert_eq!(vsctl(ovs, &["list-ports", "br-int"]), "tun-geneve");
    assert_eq!(
        vsctl(
            ovs,
            &[
                "--columns=name",
                "--bare",
                "find",
                "interface",
                "type=geneve"
            ]
        ),
        "tun-geneve"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactivity_probe_detects_a_hung_server() {
    if !testbed::require_root("inactivity_probe_detects_a_hung_server") {
        return;
    }
    let h = host("probe");
    let ovs = &h.ovs;
    let opts = ovsdb::ClientOptions {
        rpc: ovsdb::RpcOptions {
            probe_interval: Some(Duration::from_millis(500)),
            ..ovsdb::RpcOptions::default()
        },
        ..ovsdb::ClientOptions::default()
    };
    let c =
        Client::with_options(&format!("unix:{}", ovs.db_sock().display()), opts).expect("client");
    c.ensure_bridge(&br_int()).await.expect("br-int");
    let mut w = c.watch_interfaces();
    until(&mut w, "initial resync", |e| {
        matches!(e, InterfaceEvent::Resync(_))
    })
    .await;

    // A stopped server keeps the socket open but never answers: only the probe can tell.
    let pid = std::fs::read_to_string(ovs.dir().join("ovsdb-server.pid")).expect("pid");
    let pid = pid.trim().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let started = tokio::time::Instant::now();
    let disconnected = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if matches!(w.next().await, Some(InterfaceEvent::Disconnected) | None) {
                return;
            }
        }
    })
    .await;
    signal("-CONT");
    assert!(disconnected.is_ok(), "probe did not notice the hung server");
    assert!(started.elapsed() >= Duration::from_millis(500));

    // Once the server runs again, the watcher resyncs and sees new changes.
    until(&mut w, "resync", |e| matches!(e, InterfaceEvent::Resync(_))).await;
    c.add_port("br-int", &PortSpec::internal("odbp1"))
        .await
        .expect("add after resume");
    until(&mut w, "odbp1", |e| has_ofport(e, "odbp1").is_some()).await;
}
