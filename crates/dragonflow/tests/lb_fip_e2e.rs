//! A floating IP on a load balancer's VIP, end to end (issue 23), on the north-south cloud
//! of `ns` (two hosts with real OVS and `br-ex`, an outside namespace on the physical
//! network): members serving HTTP on both hosts, a balancer made through the Octavia API,
//! a floating IP associated to its VIP port; curl from the outside to the floating IP
//! reaches both members, and they see the VIP as the client (the holder host source-NATs
//! the connection so that their answers come back to it). When the holder host dies (its
//! controller and its switch killed), the other host takes the floating IP over within a
//! lease and announces it, and the dead host's member is left out by its health.

mod common;

mod ns;

use common::backends::{balancer, first_subnet, octavia as lb, octavia_made as made, serve};
use common::cloud::{addr, wait_until};
use ns::{Cloud, routed_inside};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// One request from the outside through a new connection: who answered.
fn curl(ns: &testbed::Netns, url: &str) -> Option<String> {
    ns.exec(["curl", "-s", "--max-time", "2", url])
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Members m1 (host A) and m2 (host B) serving HTTP (their VMs and servers kept) on the inside network of
/// `routed_inside`, a balancer over them on port 80, and a floating IP on its VIP port.
struct Public {
    _vms: [testbed::Vm; 2],
    _servers: [common::backends::Proc; 2],
    bal: common::backends::Balancer,
    fip: serde_json::Value,
}

fn public_balancer(t: &Cloud) -> Public {
    let (ext, net) = routed_inside(t);
    let subnet = first_subnet(&t.srv, &net);
    let ports = [t.port(&net), t.port(&net)];
    let vms = [t.plug(&ports[0], 0), t.plug(&ports[1], 1)];
    for vm in &vms {
        vm.ns
            .exec(["ip", "route", "add", "default", "via", "10.0.0.1"])
            .expect("route");
    }
    let servers = [serve(&vms[0], "m1"), serve(&vms[1], "m2")];
    // Both serving before anything is counted (Python starts slowly on a loaded machine).
    for p in &ports {
        let direct = format!("http://{}:8000/", addr(p).1);
        wait_until("a member to serve", Duration::from_secs(30), || {
            vms[0]
                .ns
                .exec(["curl", "-s", "--max-time", "2", &direct])
                .is_ok_and(|s| !s.trim().is_empty())
        });
    }
    let bal = balancer(&t.srv, &subnet, "public", 80, json!({}));
    for p in &ports {
        made(
            &t.srv,
            &bal.members,
            json!({"member": {"address": addr(p).1, "protocol_port": 8000, "subnet_id": subnet}}),
        );
    }
    let (_, v) = lb(
        &t.srv,
        "GET",
        &format!("/v2/lbaas/loadbalancers/{}", bal.id),
        None,
    );
    let fip = t.srv.create(
        "floatingips",
        "floatingip",
        json!({"floating_network_id": ext["id"], "port_id": v["loadbalancer"]["vip_port_id"]}),
    );
    Public {
        _vms: vms,
        _servers: servers,
        bal,
        fip,
    }
}

#[test]
fn the_outside_reaches_the_members_through_a_floating_ip_on_the_vip() {
    if !testbed::require_root("the_outside_reaches_the_members_through_a_floating_ip_on_the_vip") {
        return;
    }
    let t = Cloud::start(None);
    let p = public_balancer(&t);
    let (fip, bal) = (&p.fip, &p.bal);
    assert_eq!(fip["fixed_ip_address"], bal.vip.as_str(), "{fip}");
    let url = format!("http://{}/", fip["floating_ip_address"].as_str().unwrap());
    wait_until("the floating IP to answer", Duration::from_secs(30), || {
        curl(&t.outside, &url).is_some()
    });
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        let who = curl(&t.outside, &url).unwrap_or_else(|| "(no answer)".into());
        *seen.entry(who).or_default() += 1;
    }
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["m1", "m2"],
        "both members answer the outside, every time: {seen:?}\n{}",
        t.dumps()
    );

    // Disassociated: the floating IP answers no more.
    let fid = fip["id"].as_str().unwrap();
    let (st, v) = t.srv.call(
        "PUT",
        &format!("/v2.0/floatingips/{fid}"),
        Some(json!({"floatingip": {"port_id": null}})),
    );
    assert_eq!(st, 200, "{v}");
    wait_until(
        "the floating IP to go quiet",
        Duration::from_secs(20),
        || curl(&t.outside, &url).is_none(),
    );
}

#[test]
fn the_floating_ip_moves_to_another_host_when_its_holder_dies() {
    if !testbed::require_root("the_floating_ip_moves_to_another_host_when_its_holder_dies") {
        return;
    }
    // Heartbeats every second that live 3 s: a host's death shows within the test.
    let conf = tempfile::NamedTempFile::new().expect("config");
    std::fs::write(
        conf.path(),
        "[neutron]\nreport_interval = 1\nagent_down_time = 3\n",
    )
    .expect("config");
    let srv = common::Server::start_args(&[
        "--noauth-admin",
        "--config",
        &conf.path().display().to_string(),
    ]);
    let mut t = Cloud::start_on(srv, None, &["--report-interval", "1"]);
    let p = public_balancer(&t);
    let fip = &p.fip;
    made(
        &t.srv,
        "/v2/lbaas/healthmonitors",
        json!({"healthmonitor": {"pool_id": p.bal.pool["id"], "type": "TCP", "delay": 1,
            "timeout": 1, "max_retries": 1, "max_retries_down": 2}}),
    );
    let url = format!("http://{}/", fip["floating_ip_address"].as_str().unwrap());
    let answers = |t: &Cloud, n: usize| {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..n {
            let who = curl(&t.outside, &url).unwrap_or_else(|| "(no answer)".into());
            *seen.entry(who).or_default() += 1;
        }
        seen
    };
    wait_until(
        "both members to answer the outside",
        Duration::from_secs(30),
        || answers(&t, 10).keys().cloned().collect::<Vec<_>>() == ["m1", "m2"],
    );
    // host-a (the first by name) holds the floating IP: its br-ex path DNATs it.
    let held_on = |o: &testbed::Ovs| {
        o.ofctl(["dump-flows", "br-int", "table=50"])
            .unwrap_or_default()
            .contains(fip["floating_ip_address"].as_str().unwrap())
    };
    assert!(held_on(&t.ovs[0]) && !held_on(&t.ovs[1]), "{}", t.dumps());

    // host-a dies: its controller, then its switch, killed.
    let dead = std::time::Instant::now();
    drop(t.ctl.remove(0));
    for (_, pid) in t.ovs[0].pids() {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    wait_until(
        "host-b to hold the floating IP",
        Duration::from_secs(20),
        || held_on(&t.ovs[1]),
    );
    let moved = dead.elapsed();
    // m1 died with its host: its health leaves it out; every request is m2's.
    wait_until(
        "the floating IP to answer again",
        Duration::from_secs(30),
        || curl(&t.outside, &url).is_some(),
    );
    let answered = dead.elapsed();
    let seen = answers(&t, 20);
    assert_eq!(
        seen,
        BTreeMap::from([("m2".to_string(), 20)]),
        "{}",
        t.dumps()
    );
    eprintln!(
        "holder moved {:.1} s after host-a died, answered again after {:.1} s",
        moved.as_secs_f64(),
        answered.as_secs_f64()
    );
}
