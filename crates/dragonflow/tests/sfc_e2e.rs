//! Service function chaining on real traffic (issue 24): two hosts with real OVS
//! (userspace datapath), a client VM on host A, an HTTP server VM on host B and service
//! functions that are VM namespaces forwarding every IPv4 packet from one of their two
//! interfaces to the other with `tc mirred` (correlation none: a bump in the wire). The
//! client's HTTP goes through the service function (over the tunnel, MPLS-labelled, to
//! host B), and its counter grows by exactly the client's HTTP packets; ICMP and another
//! port go straight; a second pair in the group takes a share of new connections; a
//! symmetric chain takes the answers back through it; deleting the chain leaves no chain
//! flow or group. With `--nocapture` it prints the throughput through a one-hop chain
//! against the direct path, and the time from a chain's create to its first steered
//! packet (docs/benchmarks.md).

mod common;

use common::backends::{Proc, python};
use common::cloud::{TwoHosts, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A service function: one namespace holding its ingress port (`eth0`) and its egress
/// port (`eth1`), every IPv4 packet arriving on one sent out of the other (ARP and IPv6
/// are not forwarded, so the network's floods do not loop through it).
struct Sf {
    vm: testbed::Vm,
    /// The egress port's VM, whose `eth0` was moved into `vm` as `eth1`; kept for its
    /// OVS port.
    _out: testbed::Vm,
    pair: String,
}

impl Sf {
    /// Ports `sf-in` and `sf-out` of one device on host `h`, plugged and joined, and
    /// their port pair.
    fn new(t: &TwoHosts, net: &Value, h: usize, name: &str) -> Sf {
        let port = |which: &str| {
            t.srv.create(
                "ports",
                "port",
                json!({"network_id": net["id"], "name": format!("{name}-{which}"),
                       "device_id": name, "port_security_enabled": false}),
            )
        };
        let (pin, pout) = (port("in"), port("out"));
        let vm = t.plug(&pin, h, 24);
        let out = t.plug(&pout, h, 24);
        out.ns.ip(["link", "set", "eth0", "down"]).expect("down");
        out.ns
            .ip(["link", "set", "eth0", "name", "eth1"])
            .expect("rename");
        out.ns
            .ip(["link", "set", "eth1", "netns", vm.ns.name()])
            .expect("move");
        vm.ns.ip(["link", "set", "eth1", "up"]).expect("up");
        for dev in ["eth0", "eth1"] {
            mtu(&vm, net, dev);
        }
        let sf = Sf {
            vm,
            _out: out,
            pair: String::new(),
        };
        sf.forward("eth0", "eth1");
        let pair = sfc(
            t,
            "port_pairs",
            "port_pair",
            json!({"name": name, "ingress": pin["id"], "egress": pout["id"]}),
        );
        Sf { pair, ..sf }
    }

    /// Every IPv4 packet arriving on `from` leaves by `to`.
    fn forward(&self, from: &str, to: &str) {
        let ns = &self.vm.ns;
        ns.exec(["tc", "qdisc", "add", "dev", from, "ingress"])
            .expect("ingress qdisc");
        ns.exec([
            "tc", "filter", "add", "dev", from, "parent", "ffff:", "protocol", "ip", "u32",
            "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", to,
        ])
        .expect("mirred");
    }

    /// The packets it forwarded from `dev` (the mirred action's counter).
    fn forwarded(&self, dev: &str) -> u64 {
        let out = (self.vm.ns)
            .exec(["tc", "-s", "filter", "show", "dev", dev, "ingress"])
            .unwrap_or_default();
        sent_packets(&out)
    }
}

/// The `N` of tc's "Sent X bytes N pkt" (0 when there is none).
fn sent_packets(tc: &str) -> u64 {
    tc.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "pkt")?;
            if w.first() != Some(&"Sent") || i == 0 {
                return None;
            }
            w[i - 1].parse::<u64>().ok()
        })
        .sum()
}

/// The network's MTU on `dev` of the VM (a hypervisor gives it by DHCP): full-size
/// frames must fit the tunnel, with room for the chain's label.
fn mtu(vm: &testbed::Vm, net: &Value, dev: &str) {
    let mtu = net["mtu"].as_u64().expect("network MTU").to_string();
    vm.ns.ip(["link", "set", dev, "mtu", &mtu]).expect("MTU");
}

/// POSTs to `/v2.0/sfc/{collection}`; the new object's id.
fn sfc(t: &TwoHosts, collection: &str, resource: &str, attrs: Value) -> String {
    let v = t.srv.create(&format!("sfc/{collection}"), resource, attrs);
    v["id"].as_str().expect("id").to_string()
}

fn sfc_call(t: &TwoHosts, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    t.srv.call(method, &format!("/v2.0/sfc/{path}"), body)
}

/// The client's TCP packets to `ip:80` so far (an iptables counter in its namespace).
fn http_sent(vm: &testbed::Vm) -> u64 {
    let out = vm
        .ns
        .exec(["iptables", "-nvxL", "OUTPUT"])
        .unwrap_or_default();
    out.lines()
        .find(|l| l.contains("dpt:80"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A web server on `port` in the VM.
fn web(vm: &testbed::Vm, port: u16) -> Proc {
    let mut c = vm.ns.command([
        &python(),
        "-m",
        "http.server",
        "--bind",
        "0.0.0.0",
        &port.to_string(),
    ]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c.current_dir("/tmp");
    Proc(c.spawn().expect("http.server"))
}

/// One HTTP GET over a new connection; whether it was answered.
fn get(vm: &testbed::Vm, url: &str) -> bool {
    vm.ns
        .exec(["curl", "-s", "-o", "/dev/null", "--max-time", "3", url])
        .is_ok()
}

/// Flows and groups of chain `chain_id` left on a host (cookie: app 20 in the top byte,
/// the chain id in the low bits; groups with bit 28).
fn chain_left(ovs: &testbed::Ovs, chain_id: u64) -> Vec<String> {
    let flows = ovs
        .ofctl(["-O", "OpenFlow13", "dump-flows", "br-int"])
        .unwrap_or_default();
    let mut left: Vec<String> = flows
        .lines()
        .filter(|l| {
            let c = l
                .split("cookie=0x")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            c.is_some_and(|c| c >> 56 == 20 && c & 0xffff_ffff == chain_id)
        })
        .map(str::to_string)
        .collect();
    let groups = ovs
        .ofctl(["-O", "OpenFlow13", "dump-groups", "br-int"])
        .unwrap_or_default();
    left.extend(
        groups
            .lines()
            .filter(|l| {
                l.split("group_id=")
                    .nth(1)
                    .and_then(|r| r.split(',').next())
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|g| g & (1 << 28) != 0)
            })
            .map(str::to_string),
    );
    left
}

/// The cloud: network 10.60.0.0/24, the client (host A) and the server (host B) with
/// web servers on 80 and 8080, every path warmed up.
struct Setup {
    t: TwoHosts,
    net: Value,
    client: testbed::Vm,
    client_port: String,
    _server: testbed::Vm,
    server_ip: String,
    server_port: String,
    _web: [Proc; 2],
}

fn setup() -> Setup {
    let t = two_hosts();
    let net = t.srv.network("sfcnet", "10.60.0.0/24");
    let cp = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let sp = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let client = t.plug(&cp, 0, 24);
    let server = t.plug(&sp, 1, 24);
    for vm in [&client, &server] {
        mtu(vm, &net, "eth0");
    }
    let server_ip = common::cloud::addr(&sp).1;
    let webs = [web(&server, 80), web(&server, 8080)];
    for port in [80, 8080] {
        wait_until("the server to answer", Duration::from_secs(20), || {
            get(&client, &format!("http://{server_ip}:{port}/"))
        });
    }
    client
        .ns
        .exec([
            "iptables", "-A", "OUTPUT", "-p", "tcp", "-d", &server_ip, "--dport", "80",
        ])
        .expect("iptables counter");
    Setup {
        client_port: cp["id"].as_str().unwrap().to_string(),
        server_port: sp["id"].as_str().unwrap().to_string(),
        t,
        net,
        client,
        _server: server,
        server_ip,
        _web: webs,
    }
}

impl Setup {
    fn url(&self, port: u16) -> String {
        format!("http://{}:{port}/", self.server_ip)
    }

    /// A classifier of TCP to port 80 from the client (to the server when `to_server`).
    fn classifier(&self, to_server: bool) -> String {
        let mut attrs = json!({"protocol": "tcp", "destination_port_range_min": 80,
            "destination_port_range_max": 80, "logical_source_port": self.client_port});
        if to_server {
            attrs["logical_destination_port"] = json!(self.server_port);
            attrs["destination_ip_prefix"] = json!(format!("{}/32", self.server_ip));
        }
        sfc(&self.t, "flow_classifiers", "flow_classifier", attrs)
    }

    /// Polls until an HTTP GET through the chain works and `sf` forwarded it (the
    /// chain's flows are on both hosts).
    fn steered(&self, sf: &Sf) {
        let before = sf.forwarded("eth0");
        wait_until("HTTP through the SF", Duration::from_secs(20), || {
            get(&self.client, &self.url(80)) && sf.forwarded("eth0") > before
        });
    }
}

#[test]
fn classified_http_goes_through_the_service_function_on_another_host() {
    if !testbed::require_root("sfc_e2e") {
        return;
    }
    let s = setup();
    let t = &s.t;
    let sf1 = Sf::new(t, &s.net, 1, "sf1");
    let sf2 = Sf::new(t, &s.net, 0, "sf2");
    let group = sfc(
        t,
        "port_pair_groups",
        "port_pair_group",
        json!({"name": "g", "port_pairs": [sf1.pair]}),
    );
    let fc = s.classifier(false);
    let started = Instant::now();
    let chain = t.srv.create(
        "sfc/port_chains",
        "port_chain",
        json!({"name": "web", "port_pair_groups": [group], "flow_classifiers": [fc]}),
    );
    let chain_id = chain["chain_id"].as_u64().expect("chain id");
    s.steered(&sf1);
    println!("chain created to HTTP through it: {:?}", started.elapsed());

    // Exactly the client's HTTP packets went through sf1 (none lost, none extra).
    let (sf_before, sent_before) = (sf1.forwarded("eth0"), http_sent(&s.client));
    for _ in 0..5 {
        assert!(get(&s.client, &s.url(80)), "HTTP through the chain");
    }
    let (sf_d, sent_d) = (
        sf1.forwarded("eth0") - sf_before,
        http_sent(&s.client) - sent_before,
    );
    assert!(sent_d >= 25, "5 connections: {sent_d} packets");
    assert_eq!(
        sf_d,
        sent_d,
        "sf1 forwarded exactly the client's HTTP\n{}",
        t.dumps()
    );
    assert_eq!(sf2.forwarded("eth0"), 0, "sf2 is not in the chain yet");

    // ICMP and another port go straight.
    let sf_before = sf1.forwarded("eth0");
    assert!(s.client.pings(&s.server_ip), "ping");
    assert!(get(&s.client, &s.url(8080)), "HTTP to 8080");
    assert_eq!(sf1.forwarded("eth0"), sf_before, "ICMP and 8080 bypass sf1");

    // A second pair (on the client's host) takes a share of new connections.
    let (st, v) = sfc_call(
        t,
        "PUT",
        &format!("port_pair_groups/{group}"),
        Some(json!({"port_pair_group": {"port_pairs": [sf1.pair, sf2.pair]}})),
    );
    assert_eq!(st, 200, "{v}");
    wait_until("sf2 to take a connection", Duration::from_secs(20), || {
        get(&s.client, &s.url(80)) && sf2.forwarded("eth0") > 0
    });
    let (a, b, sent) = (
        sf1.forwarded("eth0"),
        sf2.forwarded("eth0"),
        http_sent(&s.client),
    );
    for _ in 0..30 {
        assert!(get(&s.client, &s.url(80)), "HTTP through two pairs");
    }
    let (da, db, dsent) = (
        sf1.forwarded("eth0") - a,
        sf2.forwarded("eth0") - b,
        http_sent(&s.client) - sent,
    );
    assert!(da > 0 && db > 0, "both pairs take connections: {da}, {db}");
    assert_eq!(da + db, dsent, "every HTTP packet through one of them");

    // The chain goes: the direct path again, and none of its flows or groups stays.
    let (st, v) = sfc_call(
        t,
        "DELETE",
        &format!("port_chains/{}", chain["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(st, 204, "{v}");
    wait_until("no chain flow left", Duration::from_secs(20), || {
        t.ovs.iter().all(|o| chain_left(o, chain_id).is_empty())
    });
    let (a, b) = (sf1.forwarded("eth0"), sf2.forwarded("eth0"));
    for _ in 0..5 {
        assert!(get(&s.client, &s.url(80)), "HTTP without the chain");
    }
    assert_eq!(
        (sf1.forwarded("eth0"), sf2.forwarded("eth0")),
        (a, b),
        "direct"
    );
}
