//! The `openstack` CLI with password auth through a real Keystone (the server found in its
//! catalog) does the whole lifecycle the noauth CLI tests do (`common::lifecycle`, as the
//! cloud's admin), and two projects' members each see and change only their own.

mod common;

use common::{Server, lifecycle};
use serde_json::Value;
use std::time::Duration;
use testbed::keystone::{ADMIN_PASSWORD, Keystone};

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|n| n["Name"].as_str().unwrap_or_default().to_string())
        .collect();
    n.sort();
    n
}

#[test]
fn the_cli_through_keystone_as_an_admin_and_two_projects() {
    if !testbed::require_root("the_cli_through_keystone_as_an_admin_and_two_projects") {
        return;
    }
    assert!(
        testbed::keystone::installed(),
        "Keystone is not installed: run scripts/setup"
    );
    let ks = Keystone::start(Duration::from_secs(3600)).expect("start Keystone");
    let alpha = ks.project("alpha").expect("project");
    let beta = ks.project("beta").expect("project");
    ks.user("alice", "alice-pw", &alpha, &["member"])
        .expect("user");
    ks.user("bob", "bob-pw", &beta, &["member"]).expect("user");
    let start = || {
        let mut srv = Server::start_keystone(&ks.url(), "");
        ks.point_network(&srv.url).expect("catalog");
        srv.set_cli_auth(&ks.url(), "admin", ADMIN_PASSWORD, "admin");
        srv
    };
    ks.register_network("http://127.0.0.1:1").expect("catalog");

    // The cloud's admin: every resource's lifecycle, as the noauth CLI tests run it (a
    // server each, as there, since they reuse names).
    let runs: [fn(&Server); 5] = [
        lifecycle::network_lifecycle,
        lifecycle::subnet_lifecycle,
        lifecycle::port_lifecycle,
        lifecycle::router_and_floating_ip_lifecycle,
        lifecycle::security_group_lifecycle,
    ];
    for run in runs {
        run(&start());
    }
    let mut srv = start();

    // Two projects: each member makes, sees and deletes its own, and not the other's.
    srv.set_cli_auth(&ks.url(), "alice", "alice-pw", "alpha");
    let a_net = srv.os(&["network", "create", "a-net"]);
    assert_eq!(a_net["project_id"], alpha.as_str(), "{a_net}");
    let a_id = a_net["id"].as_str().expect("id").to_string();
    srv.os(&[
        "subnet",
        "create",
        "a-sub",
        "--network",
        "a-net",
        "--subnet-range",
        "10.7.0.0/24",
    ]);
    srv.os(&["port", "create", "a-port", "--network", "a-net"]);
    srv.set_cli_auth(&ks.url(), "bob", "bob-pw", "beta");
    let b_net = srv.os(&["network", "create", "b-net"]);
    assert_eq!(b_net["project_id"], beta.as_str(), "{b_net}");
    assert_eq!(names(&srv.os(&["network", "list"])), ["b-net"]);
    assert!(
        srv.openstack(&["network", "show", &a_id]).is_err(),
        "bob sees alice's network"
    );
    assert!(
        srv.openstack(&["network", "delete", &a_id]).is_err(),
        "bob deletes alice's network"
    );
    assert!(
        srv.openstack(&["port", "create", "b-port", "--network", &a_id])
            .is_err(),
        "bob plugs into alice's network"
    );
    srv.set_cli_auth(&ks.url(), "alice", "alice-pw", "alpha");
    assert_eq!(names(&srv.os(&["network", "list"])), ["a-net"]);
    assert_eq!(
        names(&srv.os(&["port", "list"])).len(),
        2,
        "a-port and the DHCP port"
    );
    // The admin sees both projects' networks.
    srv.set_cli_auth(&ks.url(), "admin", ADMIN_PASSWORD, "admin");
    let all = names(&srv.os(&["network", "list"]));
    assert!(
        all.contains(&"a-net".to_string()) && all.contains(&"b-net".to_string()),
        "{all:?}"
    );
    srv.set_cli_auth(&ks.url(), "alice", "alice-pw", "alpha");
    srv.os_ok(&["port", "delete", "a-port"]);
    srv.os_ok(&["network", "delete", "a-net"]);
    assert!(names(&srv.os(&["network", "list"])).is_empty());
}
