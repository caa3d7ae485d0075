//! The flows IPv6 costs, next to IPv4's: a local VM port on an IPv4 subnet with DHCP
//! against one on an IPv6 slaac subnet (RA punt, ND answer), and a router with one IPv4
//! interface against one with an IPv6 interface (link-local address, ND answers). The
//! counts are exact so that docs/benchmarks.md ("IPv6 flows") stays true.

use controller::apps::{self, Host};
use controller::pipeline::Cookie;
use controller::view::{Touched, View, record};
use model::{
    MacAddr, Network, Port, PortStatus, Router, RouterInterface, Subnet, Table, fixtures, owner,
};
use std::collections::BTreeMap;

fn world(v6: bool) -> (View, Host) {
    let (cidr, vm_ip, gw) = if v6 {
        ("fd00::/64", "fd00::f816:3eff:fe00:5", "fd00::1")
    } else {
        ("10.0.0.0/24", "10.0.0.5", "10.0.0.1")
    };
    let mode = v6.then(|| "slaac".to_string());
    let records = vec![
        record(
            &Network {
                subnets: vec!["s".into()],
                ..fixtures::network("n", 1)
            },
            1,
        ),
        record(
            &Subnet {
                ipv6_ra_mode: mode.clone(),
                ipv6_address_mode: mode,
                ..fixtures::subnet("s", "n", cidr)
            },
            1,
        ),
        record(
            &Router {
                interfaces: vec![RouterInterface {
                    port_id: "rp".into(),
                    subnet_id: "s".into(),
                    network_id: "n".into(),
                    ip_address: gw.parse().unwrap(),
                    cidr: cidr.parse().unwrap(),
                    mac_address: MacAddr(fixtures::mac(200).0),
                }],
                ..fixtures::router("r", 7)
            },
            1,
        ),
        record(
            &Port {
                device_owner: owner::ROUTER_INTERFACE.into(),
                device_id: "r".into(),
                fixed_ips: vec![fixtures::fixed_ip("s", gw)],
                ..fixtures::port("rp", "n", 200, "")
            },
            1,
        ),
        record(
            &Port {
                fixed_ips: vec![fixtures::fixed_ip("s", vm_ip)],
                status: PortStatus::Active,
                ..fixtures::port("vm", "n", 5, "here")
            },
            1,
        ),
    ];
    let mut view = View::new("here");
    view.load(&nbdb::Snapshot {
        revision: 1,
        records,
    });
    let mut host = Host::default();
    host.ofports.insert("vm".into(), 1);
    (view, host)
}

/// The owner's flows, counted by app.
fn count(view: &View, host: &Host, table: Table, id: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for f in apps::compile(
        view,
        host,
        &Touched {
            table,
            id: id.into(),
        },
    ) {
        let app = Cookie::decode(f.body.cookie).expect("our cookie").app;
        *out.entry(format!("{app:?}")).or_default() += 1;
    }
    out
}

fn total(m: &BTreeMap<String, usize>) -> usize {
    m.values().sum()
}

#[test]
fn ipv6_flows_per_port_and_router_interface_next_to_ipv4() {
    let (v4, v6) = (world(false), world(true));
    let vm = (
        count(&v4.0, &v4.1, Table::Port, "vm"),
        count(&v6.0, &v6.1, Table::Port, "vm"),
    );
    let rp = (
        count(&v4.0, &v4.1, Table::Port, "rp"),
        count(&v6.0, &v6.1, Table::Port, "rp"),
    );
    let r = (
        count(&v4.0, &v4.1, Table::Router, "r"),
        count(&v6.0, &v6.1, Table::Router, "r"),
    );
    println!("VM port: IPv4 {:?}\n         IPv6 {:?}", vm.0, vm.1);
    println!("router port: IPv4 {:?}, IPv6 {:?}", rp.0, rp.1);
    println!("router: IPv4 {:?}, IPv6 {:?}", r.0, r.1);
    // A VM port: IPv4's ARP answer, DHCP punt and port security's ARP and DHCP
    // allowances against IPv6's ND answer, RA punt and its link-local allowance.
    assert_eq!((total(&vm.0), total(&vm.1)), (15, 13), "{vm:?}");
    assert_eq!(vm.1.get("Nd"), Some(&1));
    assert_eq!(vm.1.get("Ra"), Some(&1));
    assert_eq!(vm.1.get("Dhcp"), None);
    // A router interface port: one ARP answer against two ND answers (global, link-local).
    assert_eq!((total(&rp.0), total(&rp.1)), (1, 2), "{rp:?}");
    // The router: one own-address punt more (the link-local address).
    assert_eq!((total(&r.0), total(&r.1)), (8, 9), "{r:?}");
}
