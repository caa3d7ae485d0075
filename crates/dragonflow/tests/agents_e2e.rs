//! Agents and realized state end to end: a server and two hosts with real OVS and real
//! controllers reporting every second (down after 3 s), the real `openstack` CLI.
//! `openstack network agent list` shows both controllers and the server alive; a
//! SIGSTOPped controller shows dead within the lease and alive again after SIGCONT;
//! `dragonflow db wait` returns once both hosts applied a security-group rule (a single
//! ping then passes, with no sleep), and fails naming a stopped host.

mod common;

use common::Server;
use common::cloud::{Controller, TwoHosts, underlay, wait_until};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

/// Two hosts whose controllers report every second to a server that takes an agent as
/// down 3 s after its last heartbeat.
fn cloud() -> TwoHosts {
    let srv = Server::start_args(&[
        "--noauth-admin",
        "--report-interval",
        "1",
        "--agent-down-time",
        "3",
        "--host",
        "api-host",
    ]);
    let (ovs_a, ovs_b) = (
        testbed::Ovs::start().expect("ovs a"),
        testbed::Ovs::start().expect("ovs b"),
    );
    testbed::veth("ul0", ovs_a.own_netns(), "ul0", ovs_b.own_netns()).expect("underlay wire");
    underlay(&ovs_a, "ul0", "192.0.2.1/24");
    underlay(&ovs_b, "ul0", "192.0.2.2/24");
    let args = ["--tunnel-types", "geneve", "--report-interval", "1"];
    let ctl = |ovs: &testbed::Ovs, name: &str, ip: &str| {
        let c = Controller::spawn(&srv.nb_url, ovs, name, ip, &args, None);
        c.wait_for_br_int(ovs);
        c
    };
    let (ctl_a, ctl_b) = (
        ctl(&ovs_a, "host-a", "192.0.2.1"),
        ctl(&ovs_b, "host-b", "192.0.2.2"),
    );
    TwoHosts {
        srv,
        ovs: [ovs_a, ovs_b],
        ctl: [ctl_a, ctl_b],
    }
}

/// `openstack network agent list`: host → (alive, agent type, id).
fn agents(srv: &Server) -> Vec<(String, bool, String, String)> {
    let v = srv.os(&["network", "agent", "list"]);
    v.as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            // The CLI gives `true`/`false` in JSON (":-)"/"XXX" in its table).
            let alive = a["Alive"] == json!(true) || a["Alive"] == json!(":-)");
            (
                a["Host"].as_str().unwrap_or_default().to_string(),
                alive,
                a["Agent Type"].as_str().unwrap_or_default().to_string(),
                a["ID"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn alive(srv: &Server, host: &str) -> Option<bool> {
    agents(srv).into_iter().find(|a| a.0 == host).map(|a| a.1)
}

/// Whether `host`'s controller is alive, as `GET /v2.0/agents` says.
fn api_alive(srv: &Server, host: &str) -> Option<bool> {
    let (_, v) = srv.call(
        "GET",
        &format!("/v2.0/agents?host={host}&binary=dragonflow-controller"),
        None,
    );
    v["agents"][0]["alive"].as_bool()
}

/// `dragonflow db ARGS` against the server's NB listener with the reader token.
fn db(srv: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(["db", "--nb", &srv.nb_url])
        .args(args)
        .env(
            "DRAGONFLOW_NB_TOKEN",
            common::token(neutron_api::nb_auth::Principal::Reader),
        )
        .output()
        .expect("dragonflow db");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn signal(ctl: &Controller, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &ctl.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig}");
}

fn pings_once(vm: &testbed::Vm, ip: &str) -> bool {
    vm.ns.exec(["ping", "-c", "1", "-W", "2", ip]).is_ok()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

#[test]
fn agents_are_listed_alive_go_down_when_stopped_and_changes_are_waited_for() {
    if !testbed::require_root(
        "agents_are_listed_alive_go_down_when_stopped_and_changes_are_waited_for",
    ) {
        return;
    }
    let t = cloud();
    let srv = &t.srv;

    // Both controllers and the server are listed alive.
    wait_until(
        "both controllers and the server listed",
        Duration::from_secs(20),
        || {
            let a = agents(srv);
            ["host-a", "host-b", "api-host"]
                .iter()
                .all(|h| a.iter().any(|x| x.0 == *h && x.1))
        },
    );
    let listed = agents(srv);
    let kind = |h: &str| listed.iter().find(|a| a.0 == h).map(|a| a.2.clone());
    assert_eq!(kind("host-a").as_deref(), Some("DF local controller"));
    assert_eq!(kind("api-host").as_deref(), Some("DF API server"));
    let (_, v) = srv.call("GET", "/v2.0/agents?host=host-a", None);
    let a = &v["agents"][0];
    assert_eq!(a["binary"], "dragonflow-controller", "{v}");
    assert_eq!(
        a["configurations"]["tunnel_types"],
        json!(["geneve"]),
        "{v}"
    );
    assert!(
        a["configurations"]["flows"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );

    // Realized state: b's group lets nothing in; a's lets ICMP in, so b pings a (which
    // also teaches both underlays each other's MAC).
    let net = srv.network("n", "10.0.0.0/24");
    let closed = id(&srv.create(
        "security-groups",
        "security_group",
        json!({"name": "closed"}),
    ));
    let open = id(&srv.create("security-groups", "security_group", json!({"name": "open"})));
    srv.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": open, "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}),
    );
    let port = |sg: &str| {
        srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "security_groups": [sg]}),
        )
    };
    let (pa, pb) = (port(&open), port(&closed));
    let (vm_a, vm_b) = (t.plug(&pa, 0, 24), t.plug(&pb, 1, 24));
    let (ip_a, ip_b) = (common::cloud::addr(&pa).1, common::cloud::addr(&pb).1);
    assert!(vm_b.pings(&ip_a), "b reaches a\n{}", t.dumps());
    assert!(!pings_once(&vm_a, &ip_b), "b's group lets no ICMP in");
    srv.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": closed, "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}),
    );
    let (ok, rev) = db(srv, &["revision"]);
    assert!(ok, "{rev}");
    let rev = rev.trim().to_string();
    let start = Instant::now();
    let (ok, out) = db(srv, &["wait", "--revision", &rev, "--timeout", "20"]);
    assert!(ok, "db wait: {out}");
    assert!(out.contains("host-a") && out.contains("host-b"), "{out}");
    let waited = start.elapsed();
    // No sleep, one ping: the rule is in b's switch.
    assert!(
        pings_once(&vm_a, &ip_b),
        "after db wait ({waited:?}): {out}\n{}",
        t.dumps()
    );
    println!("db wait for revision {rev}: {waited:?}");

    // SIGSTOP host-a's controller: dead once its lease (3 s from its last heartbeat, at
    // most 1 s old) runs out, as the API says (polled closely) and then the CLI.
    signal(&t.ctl[0], "-STOP");
    let stopped = Instant::now();
    wait_until("host-a dead in the API", Duration::from_secs(10), || {
        api_alive(srv, "host-a") == Some(false)
    });
    let down_after = stopped.elapsed();
    assert!(
        down_after >= Duration::from_millis(1500) && down_after < Duration::from_millis(4500),
        "host-a dead {down_after:?} after SIGSTOP, with a 3 s lease renewed every second"
    );
    assert_eq!(alive(srv, "host-a"), Some(false), "the CLI shows it dead");
    assert_eq!(alive(srv, "host-b"), Some(true), "host-b goes on");
    println!("host-a shown dead {down_after:?} after SIGSTOP");
    // A change host-a cannot apply: waiting for it there fails, naming it.
    srv.create(
        "security-groups",
        "security_group",
        json!({"name": "later"}),
    );
    let (_, rev) = db(srv, &["revision"]);
    let (ok, out) = db(
        srv,
        &[
            "wait",
            "--revision",
            rev.trim(),
            "--hosts",
            "host-a,host-b",
            "--timeout",
            "2",
        ],
    );
    assert!(!ok, "waiting on a stopped host must fail: {out}");
    assert!(out.contains("host-a") && !out.contains("host-b ("), "{out}");
    // By default only live hosts are waited for.
    let (ok, out) = db(srv, &["wait", "--revision", rev.trim(), "--timeout", "10"]);
    assert!(
        ok && out.contains("host-b") && !out.contains("host-a"),
        "{out}"
    );

    // SIGCONT: alive again.
    signal(&t.ctl[0], "-CONT");
    let resumed = Instant::now();
    wait_until("host-a alive again", Duration::from_secs(10), || {
        api_alive(srv, "host-a") == Some(true)
    });
    println!("host-a alive {:?} after SIGCONT", resumed.elapsed());
    assert_eq!(alive(srv, "host-a"), Some(true), "the CLI shows it alive");
    let (ok, out) = db(
        srv,
        &[
            "wait",
            "--revision",
            rev.trim(),
            "--hosts",
            "host-a",
            "--timeout",
            "10",
        ],
    );
    assert!(ok, "{out}");

    // A change neither host follows (another project's network): both are current past
    // it as soon as their streams say how far they read, with no change to apply.
    let (st, other) = srv.call_as(
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "elsewhere"}})),
        &[("X-Project-Id", "elsewhere")],
    );
    assert_eq!(st, 201, "{other}");
    let (_, rev) = db(srv, &["revision"]);
    let (ok, out) = db(
        srv,
        &[
            "wait",
            "--revision",
            rev.trim(),
            "--hosts",
            "host-a,host-b",
            "--timeout",
            "10",
        ],
    );
    assert!(ok, "hosts past a change they do not follow: {out}");

    // The admin disables an agent, and deletes a dead one (it comes back when it reports).
    let a_id = agents(srv)
        .into_iter()
        .find(|a| a.0 == "host-a")
        .map(|a| a.3)
        .expect("host-a");
    srv.os_ok(&[
        "network",
        "agent",
        "set",
        "--disable",
        "--description",
        "draining",
        &a_id,
    ]);
    let shown = srv.os(&["network", "agent", "show", &a_id]);
    assert_eq!(shown["admin_state_up"], json!(false), "{shown}");
    assert_eq!(shown["description"], "draining", "{shown}");
    signal(&t.ctl[0], "-STOP");
    wait_until("host-a dead again", Duration::from_secs(10), || {
        alive(srv, "host-a") == Some(false)
    });
    srv.os_ok(&["network", "agent", "delete", &a_id]);
    assert!(alive(srv, "host-a").is_none(), "deleted");
    signal(&t.ctl[0], "-CONT");
    wait_until(
        "host-a back after its next heartbeat",
        Duration::from_secs(10),
        || alive(srv, "host-a") == Some(true),
    );
    let back = agents(srv)
        .into_iter()
        .find(|a| a.0 == "host-a")
        .expect("back");
    assert_ne!(back.3, a_id, "a new agent");
}

/// `dragonflow db --nb URL ARGS` straight on a store.
fn db_on(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(["db", "--nb", url])
        .args(args)
        .output()
        .expect("dragonflow db");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A controller reading and writing etcd itself: its heartbeat is held by an etcd lease
/// of its `--agent-down-time`, which etcd runs out when the controller stops; `db wait`
/// reads the store directly, and etcd's revision (which counts the leases too) is reached
/// at the model's last commit.
#[test]
fn a_controller_on_etcd_lives_by_an_etcd_lease() {
    if !testbed::require_root("a_controller_on_etcd_lives_by_an_etcd_lease") {
        return;
    }
    let etcd = testbed::StoreServer::start(testbed::StoreKind::Etcd).expect("etcd");
    let url = etcd.url();
    let srv = Server::start_on(&url);
    let ovs = testbed::Ovs::start().expect("ovs");
    let args = [
        "--tunnel-types",
        "geneve",
        "--report-interval",
        "1",
        "--agent-down-time",
        "3",
    ];
    let ctl = Controller::spawn(&url, &ovs, "host-e", "192.0.2.9", &args, None);
    ctl.wait_for_br_int(&ovs);
    wait_until("host-e alive", Duration::from_secs(20), || {
        api_alive(&srv, "host-e") == Some(true)
    });
    srv.network("n", "10.0.0.0/24");
    let (ok, rev) = db_on(&url, &["revision"]);
    assert!(ok, "{rev}");
    let (ok, out) = db_on(&url, &["wait", "--revision", rev.trim(), "--timeout", "20"]);
    assert!(ok && out.contains("host-e"), "{out}\n{}", ctl.log());

    signal(&ctl, "-STOP");
    let stopped = Instant::now();
    wait_until(
        "etcd to run host-e's lease out",
        Duration::from_secs(10),
        || api_alive(&srv, "host-e") == Some(false),
    );
    let down_after = stopped.elapsed();
    // 3 s from the last heartbeat (at most about 1 s old), etcd checking every 0.5 s.
    assert!(
        down_after >= Duration::from_millis(1500) && down_after < Duration::from_secs(5),
        "host-e dead {down_after:?} after SIGSTOP"
    );
    println!("host-e (etcd lease) shown dead {down_after:?} after SIGSTOP");
    let (ok, out) = db_on(
        &url,
        &[
            "wait",
            "--revision",
            rev.trim(),
            "--hosts",
            "host-e",
            "--timeout",
            "1",
        ],
    );
    assert!(!ok && out.contains("host-e (not alive"), "{out}");
    signal(&ctl, "-CONT");
    wait_until("host-e alive again", Duration::from_secs(10), || {
        api_alive(&srv, "host-e") == Some(true)
    });
}
