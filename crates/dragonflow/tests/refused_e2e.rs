//! A batch that real Open vSwitch refuses: 500 ports made through the API and plugged by
//! one `ovs-vsctl`, one of them with a flow the switch refuses (the test build's fault
//! injection, `controller::apps::fault`). The other 499 turn ACTIVE with their flows on
//! the switch; the bad one is ERROR, without flows, and the controller's log names it and
//! the refused flow.

mod common;

use common::Server;
use common::cloud::{Controller, addr, wait_until};
use controller::apps::fault::REFUSED_FLOW_PORT;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PORTS: usize = 500;
/// Which of them has the refused flow.
const BAD: usize = 250;

#[test]
fn one_port_refused_by_real_ovs_among_500_plugged_at_once_is_error_and_the_rest_active() {
    if !testbed::require_root(
        "one_port_refused_by_real_ovs_among_500_plugged_at_once_is_error_and_the_rest_active",
    ) {
        return;
    }
    // 500 ports and the DHCP port: past Neutron's default port quota.
    let srv = Server::start_unlimited();
    let ovs = testbed::Ovs::start().expect("ovs");
    let ctl = Controller::start(&srv, &ovs, "host-a", "192.0.2.1");
    let net = srv.network("n", "10.0.0.0/22");
    let started = Instant::now();
    let ports: Vec<Value> = (0..PORTS)
        .map(|i| {
            let name = if i == BAD {
                REFUSED_FLOW_PORT.to_string()
            } else {
                format!("p{i}")
            };
            srv.create(
                "ports",
                "port",
                json!({"network_id": net["id"], "port_security_enabled": false, "name": name}),
            )
        })
        .collect();
    let id = |p: &Value| p["id"].as_str().expect("id").to_string();
    eprintln!("{PORTS} ports made in {:?}", started.elapsed());

    // One `ovs-vsctl` plugs them all (OVS internal ports with their iface-id): the
    // controller sees them in one batch.
    let mut args: Vec<String> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let name = format!("sp{i}");
        args.extend(
            [
                "--",
                "add-port",
                "br-int",
                &name,
                "--",
                "set",
                "Interface",
                &name,
                "type=internal",
            ]
            .map(str::to_string),
        );
        args.push(format!("external_ids:iface-id={}", id(p)));
    }
    let plugged = Instant::now();
    ovs.vsctl(&args).expect("ovs-vsctl add-port");

    let statuses = || -> BTreeMap<String, String> {
        let (st, v) = srv.call(
            "GET",
            &format!("/v2.0/ports?network_id={}", net["id"].as_str().unwrap()),
            None,
        );
        assert_eq!(st, 200, "{v}");
        v["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (id(p), p["status"].as_str().unwrap_or("").to_string()))
            .collect()
    };
    let bad = id(&ports[BAD]);
    let settled = |s: &BTreeMap<String, String>| {
        ports.iter().all(|p| {
            let want = if id(p) == bad { "ERROR" } else { "ACTIVE" };
            s.get(&id(p)).map(String::as_str) == Some(want)
        })
    };
    let mut last = BTreeMap::new();
    let deadline = Duration::from_secs(60);
    while !settled(&last) {
        assert!(
            plugged.elapsed() < deadline,
            "not settled in {deadline:?}: {} ACTIVE, the bad port {:?}\n{}",
            last.values().filter(|s| *s == "ACTIVE").count(),
            last.get(&bad),
            ctl.log()
        );
        std::thread::sleep(Duration::from_millis(100));
        last = statuses();
    }
    eprintln!(
        "499 ACTIVE and one ERROR {:?} after plugging",
        plugged.elapsed()
    );

    // The switch holds every other port's flows (its MAC as a destination), none of the
    // bad one's.
    let dump = ovs.ofctl(["dump-flows", "br-int"]).expect("dump-flows");
    for (i, p) in ports.iter().enumerate() {
        let mac = addr(p).0;
        assert_eq!(
            dump.contains(&format!("dl_dst={mac}")),
            i != BAD,
            "port {i} ({mac}) flows\n{dump}"
        );
    }
    assert!(!dump.contains("goto_table:0"), "{dump}");

    // The log names the port and the flow.
    wait_until("the log line", Duration::from_secs(5), || {
        ctl.log().lines().any(|l| {
            l.contains("ERROR")
                && l.contains("the switch refused a flow of this port")
                && l.contains(&bad)
                && l.contains("table=115")
                && l.contains("GotoTable(0)")
        })
    });
    // And only that port failed.
    let log = ctl.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the switch refused a flow"))
        .collect();
    eprintln!("{}", refused.join("\n"));
    assert!(!refused.is_empty(), "{log}");
    assert!(
        log.lines()
            .filter(|l| l.contains("the switch refused a flow"))
            .all(|l| l.contains(&bad)),
        "{log}"
    );
}
