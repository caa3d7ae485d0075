//! The scale harness at a small size, checked: 20 simulated hosts in two groups (the real
//! core and NB follower each, in this process) against a real server on its embedded
//! store, then the same hosts reading a real etcd directly. Every port turns ACTIVE; each
//! host holds its group's networks and nothing else; port creates, deletes and rule changes
//! reach every host that needs them and no other; after the store restarts every host
//! follows again. `benches/hosts.rs` measures the same scenario up to 1,000 hosts.

mod common;

use common::Server;
use common::hosts::{self, Cloud, Hosts, Shape};
use std::time::{Duration, Instant};

const SHAPE: Shape = Shape {
    hosts: 20,
    ports_per_host: 10,
    hosts_per_group: 10,
    nets_per_group: 4,
};

/// Every change of a wave reached its hosts and no other.
fn waves(srv: &Server, cloud: &mut Cloud, h: &Hosts) {
    h.record(true);
    let gap = Duration::from_millis(20);
    let created = hosts::create_ports(srv, cloud, h, 12, gap);
    let out = hosts::settle(h, SHAPE, &created, Duration::from_secs(30));
    assert_eq!((out.missing, out.unneeded), (0, 0), "port creates: {out:?}");
    let deleted = hosts::delete_ports(srv, h, &created, gap);
    let out = hosts::settle(h, SHAPE, &deleted, Duration::from_secs(30));
    assert_eq!((out.missing, out.unneeded), (0, 0), "port deletes: {out:?}");
    let rules = hosts::add_rules(srv, cloud, 6, 1000, gap);
    let out = hosts::settle(h, SHAPE, &rules, Duration::from_secs(30));
    assert_eq!((out.missing, out.unneeded), (0, 0), "rule changes: {out:?}");
}

fn all_active(srv: &Server, n: usize) {
    let start = Instant::now();
    while hosts::active_ports(srv) < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "ports not ACTIVE"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn selective(cloud: &Cloud, h: &Hosts) {
    let figures = h.figures();
    let wrong = hosts::holds_own_networks(cloud, &figures);
    assert!(wrong.is_empty(), "hosts holding other networks: {wrong:?}");
    assert!(figures.iter().all(|f| f.flows > 0), "every host has flows");
}

/// Every host follows again after a restart: a rule added per group afterwards reaches all.
fn resync(srv: &Server, cloud: &Cloud, h: &Hosts) {
    let rules = hosts::add_rules(srv, cloud, cloud.groups.len(), 2000, Duration::ZERO);
    let out = hosts::settle(h, SHAPE, &rules, Duration::from_secs(60));
    assert_eq!(
        (out.missing, out.unneeded),
        (0, 0),
        "after the restart: {out:?}"
    );
}

#[test]
fn simulated_hosts_get_what_they_need_through_the_servers_stream() {
    let mut srv = Server::start_unlimited();
    let mut cloud = hosts::build(&srv, SHAPE);
    let h = Hosts::start(&cloud, &srv.nb_url.clone(), 2);
    all_active(&srv, SHAPE.hosts * SHAPE.ports_per_host);
    selective(&cloud, &h);
    waves(&srv, &mut cloud, &h);
    srv.restart();
    resync(&srv, &cloud, &h);
    h.stop();
}

#[test]
fn simulated_hosts_get_what_they_need_from_etcd_directly() {
    let mut etcd = testbed::StoreServer::start(testbed::StoreKind::Etcd).expect("etcd");
    let srv = Server::start_on_unlimited(&etcd.url());
    let mut cloud = hosts::build(&srv, SHAPE);
    let h = Hosts::start(&cloud, &etcd.url(), 2);
    all_active(&srv, SHAPE.hosts * SHAPE.ports_per_host);
    selective(&cloud, &h);
    waves(&srv, &mut cloud, &h);
    etcd.restart().expect("etcd restart");
    resync(&srv, &cloud, &h);
    h.stop();
}
