//! The cloud of the service function chaining tests and benchmark: two hosts, a client
//! VM on host A and a web server VM on host B in one network, service functions as VM
//! namespaces forwarding IPv4 between their two ports with `tc mirred`, the API calls
//! that chain them, and the counters that say which packets went where.

#![allow(dead_code)]

use crate::common;
use common::backends::{Proc, python};
use common::cloud::{TwoHosts, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

/// A service function: one namespace holding its ingress port (`eth0`) and its egress
/// port (`eth1`), every IPv4 packet arriving on one sent out of the other (ARP and IPv6
/// are not forwarded, so the network's floods do not loop through it).
pub struct Sf {
    pub vm: testbed::Vm,
    /// The egress port's VM, whose `eth0` was moved into `vm` as `eth1`; kept for its
    /// OVS port.
    _out: testbed::Vm,
    pub pair: String,
}

impl Sf {
    /// Ports `sf-in` and `sf-out` of one device on host `h`, plugged and joined, and
    /// their port pair.
    pub fn new(t: &TwoHosts, net: &Value, h: usize, name: &str) -> Sf {
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
    pub fn forward(&self, from: &str, to: &str) {
        let ns = &self.vm.ns;
        ns.exec(["tc", "qdisc", "add", "dev", from, "ingress"])
            .expect("ingress qdisc");
        ns.exec([
            "tc", "filter", "add", "dev", from, "parent", "ffff:", "protocol", "ip", "u32",
            "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", to,
        ])
        .expect("mirred");
    }

    /// Every IPv6 TCP segment arriving on `from` leaves by `to` too (not all IPv6: the
    /// network's neighbour discovery would loop through it).
    pub fn forward_tcp6(&self, from: &str, to: &str) {
        (self.vm.ns)
            .exec([
                "tc", "filter", "add", "dev", from, "parent", "ffff:", "protocol", "ipv6", "u32",
                "match", "ip6", "protocol", "6", "0xff", "action", "mirred", "egress", "redirect",
                "dev", to,
            ])
            .expect("mirred");
    }

    /// The packets it forwarded from `dev` (the mirred actions' counters).
    pub fn forwarded(&self, dev: &str) -> u64 {
        let out = (self.vm.ns)
            .exec(["tc", "-s", "filter", "show", "dev", dev, "ingress"])
            .unwrap_or_default();
        sent_packets(&out)
    }
}

/// The `N` of tc's "Sent X bytes N pkt" (0 when there is none).
pub fn sent_packets(tc: &str) -> u64 {
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
pub fn mtu(vm: &testbed::Vm, net: &Value, dev: &str) {
    let mtu = net["mtu"].as_u64().expect("network MTU").to_string();
    vm.ns.ip(["link", "set", dev, "mtu", &mtu]).expect("MTU");
}

/// The port's IPv6 address.
pub fn ipv6(port: &Value) -> String {
    (port["fixed_ips"].as_array().into_iter().flatten())
        .filter_map(|f| f["ip_address"].as_str())
        .find(|a| a.contains(':'))
        .expect("an IPv6 address")
        .to_string()
}

/// POSTs to `/v2.0/sfc/{collection}`; the new object's id.
pub fn sfc(t: &TwoHosts, collection: &str, resource: &str, attrs: Value) -> String {
    let v = t.srv.create(&format!("sfc/{collection}"), resource, attrs);
    v["id"].as_str().expect("id").to_string()
}

pub fn sfc_call(t: &TwoHosts, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    t.srv.call(method, &format!("/v2.0/sfc/{path}"), body)
}

/// The client's TCP packets to port 80 of the server so far (`OUTPUT`), or the answers
/// from port 80 it received (`INPUT`): the iptables counters [`setup`] put in its
/// namespace (both are counted at the client: the server's kernel may count a segmented
/// answer once).
pub fn http_count(vm: &testbed::Vm, chain: &str) -> u64 {
    let out = vm.ns.exec(["iptables", "-nvxL", chain]).unwrap_or_default();
    out.lines()
        .find(|l| l.contains("dpt:80") || l.contains("spt:80"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The client's TCP packets to port 80 of the server so far.
pub fn http_sent(vm: &testbed::Vm) -> u64 {
    http_count(vm, "OUTPUT")
}

/// A web server on `bind`:`port` in the VM (`::`: IPv6 and IPv4).
pub fn web(vm: &testbed::Vm, bind: &str, port: u16) -> Proc {
    let mut c = vm.ns.command([
        &python(),
        "-m",
        "http.server",
        "--bind",
        bind,
        &port.to_string(),
    ]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c.current_dir("/tmp");
    Proc(c.spawn().expect("http.server"))
}

/// One HTTP GET over a new connection; whether it was answered.
pub fn get(vm: &testbed::Vm, url: &str) -> bool {
    vm.ns
        .exec([
            "curl",
            "-g",
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "3",
            url,
        ])
        .is_ok()
}

/// Flows and groups of chain `chain_id` left on a host (cookie: app 20 in the top byte,
/// the chain id in the low bits; groups with bit 28).
pub fn chain_left(ovs: &testbed::Ovs, chain_id: u64) -> Vec<String> {
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
pub struct Setup {
    pub t: TwoHosts,
    pub net: Value,
    pub client: testbed::Vm,
    pub client_ip: String,
    pub client_port: String,
    pub server: testbed::Vm,
    pub server_ip: String,
    pub server_port: String,
    pub server_ip6: String,
    _web: [Proc; 3],
}

pub fn setup() -> Setup {
    setup_on("geneve")
}

/// [`setup`] on a network of type `kind` (`geneve`, `vxlan`, `gre`).
pub fn setup_on(kind: &str) -> Setup {
    let t = two_hosts();
    let net = t.srv.create(
        "networks",
        "network",
        json!({"name": "sfcnet", "provider:network_type": kind}),
    );
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.60.0.0/24"}),
    );
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 6, "cidr": "fd60::/64"}),
    );
    let cp = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let sp = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let client = t.plug(&cp, 0, 24);
    let server = t.plug(&sp, 1, 24);
    for (vm, port) in [(&client, &cp), (&server, &sp)] {
        mtu(vm, &net, "eth0");
        let v6 = format!("{}/64", ipv6(port));
        vm.ns
            .ip(["addr", "add", &v6, "dev", "eth0", "nodad"])
            .expect("IPv6 address");
    }
    let server_ip = common::cloud::addr(&sp).1;
    let server_ip6 = ipv6(&sp);
    let webs = [
        web(&server, "0.0.0.0", 80),
        web(&server, "0.0.0.0", 8080),
        web(&server, "::", 8081),
    ];
    for url in [80, 8080]
        .map(|p| format!("http://{server_ip}:{p}/"))
        .into_iter()
        .chain([format!("http://[{server_ip6}]:8081/")])
    {
        wait_until("the server to answer", Duration::from_secs(20), || {
            get(&client, &url)
        });
    }
    let client_ip = common::cloud::addr(&cp).1;
    client
        .ns
        .exec([
            "iptables", "-A", "OUTPUT", "-p", "tcp", "-d", &server_ip, "--dport", "80",
        ])
        .expect("iptables counter");
    client
        .ns
        .exec([
            "iptables", "-A", "INPUT", "-p", "tcp", "-s", &server_ip, "--sport", "80",
        ])
        .expect("iptables counter");
    Setup {
        client_port: cp["id"].as_str().unwrap().to_string(),
        server_port: sp["id"].as_str().unwrap().to_string(),
        t,
        net,
        client,
        server,
        server_ip,
        client_ip,
        server_ip6,
        _web: webs,
    }
}

impl Setup {
    pub fn url(&self, port: u16) -> String {
        format!("http://{}:{port}/", self.server_ip)
    }

    /// A classifier of TCP to `port` from the client (to the server when `to_server`).
    pub fn classifier(&self, port: u16, to_server: bool) -> String {
        let mut attrs = json!({"protocol": "tcp", "destination_port_range_min": port,
            "destination_port_range_max": port, "logical_source_port": self.client_port});
        if to_server {
            attrs["logical_destination_port"] = json!(self.server_port);
            attrs["destination_ip_prefix"] = json!(format!("{}/32", self.server_ip));
        }
        sfc(&self.t, "flow_classifiers", "flow_classifier", attrs)
    }

    /// Polls until an HTTP GET through the chain works and `sf` forwarded it (the
    /// chain's flows are on both hosts).
    pub fn steered(&self, sf: &Sf) {
        let before = sf.forwarded("eth0");
        wait_until("HTTP through the SF", Duration::from_secs(20), || {
            get(&self.client, &self.url(80)) && sf.forwarded("eth0") > before
        });
    }
}
