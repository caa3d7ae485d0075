//! The Octavia API with the real client (issue 23): python-octaviaclient's `openstack
//! loadbalancer …` (installed by scripts/setup) through a real Keystone whose catalog
//! names the server's `load-balancer` endpoint: a balancer, listener, pool, member and
//! health monitor made with `--wait`, the status tree shown, and the cascade delete.
//!
//! One test: Keystone takes 20-40 s to set up.

mod common;

use common::Server;
use serde_json::Value;
use std::time::Duration;
use testbed::keystone::{ADMIN_PASSWORD, Keystone};

/// Runs the CLI as the admin: its stdout, or its stdout and stderr on failure.
fn openstack(ks: &Keystone, args: &[&str]) -> Result<String, String> {
    let out = common::keystone_cli(&ks.url(), ("admin", ADMIN_PASSWORD, "admin"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openstack (scripts/setup): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// A command with `-f json` whose answer is an object.
fn json_of(ks: &Keystone, srv: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend_from_slice(&["-f", "json"]);
    let out =
        openstack(ks, &a).unwrap_or_else(|e| panic!("openstack {args:?}: {e}\n{}", srv.log_tail()));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn openstack_loadbalancer_builds_a_tree_and_shows_its_status() {
    if !testbed::is_root() {
        eprintln!("SKIP openstack_loadbalancer_builds_a_tree_and_shows_its_status: needs root");
        return;
    }
    assert!(
        testbed::keystone::installed(),
        "Keystone is not installed: run scripts/setup"
    );
    let ks = Keystone::start(Duration::from_secs(3600)).expect("start Keystone");
    let srv = Server::start_keystone(&ks.url(), "");
    ks.register_network(&srv.url).expect("network endpoint");
    ks.register_service("load-balancer", "octavia", &srv.octavia_url)
        .expect("load-balancer endpoint");

    let net = json_of(&ks, &srv, &["network", "create", "lbnet"]);
    let subnet = json_of(
        &ks,
        &srv,
        &[
            "subnet",
            "create",
            "--network",
            "lbnet",
            "--subnet-range",
            "10.60.0.0/24",
            "lbsub",
        ],
    );
    assert_eq!(subnet["network_id"], net["id"]);
    let lb = json_of(
        &ks,
        &srv,
        &[
            "loadbalancer",
            "create",
            "--name",
            "web",
            "--vip-subnet-id",
            "lbsub",
            "--wait",
        ],
    );
    assert_eq!(lb["provisioning_status"], "ACTIVE", "{lb}");
    assert_eq!(lb["provider"], "dragonflow");
    let vip = lb["vip_address"].as_str().unwrap_or_default().to_string();
    assert!(vip.starts_with("10.60.0."), "{lb}");
    let listener = json_of(
        &ks,
        &srv,
        &[
            "loadbalancer",
            "listener",
            "create",
            "--name",
            "http",
            "--protocol",
            "TCP",
            "--protocol-port",
            "80",
            "web",
            "--wait",
        ],
    );
    assert_eq!(listener["protocol_port"], 80, "{listener}");
    let pool = json_of(
        &ks,
        &srv,
        &[
            "loadbalancer",
            "pool",
            "create",
            "--name",
            "backends",
            "--listener",
            "http",
            "--protocol",
            "TCP",
            "--lb-algorithm",
            "ROUND_ROBIN",
            "--wait",
        ],
    );
    assert_eq!(pool["lb_algorithm"], "ROUND_ROBIN", "{pool}");
    // SOURCE_IP persistence, as the client sends and shows it.
    openstack(
        &ks,
        &[
            "loadbalancer",
            "pool",
            "set",
            "--session-persistence",
            "type=SOURCE_IP",
            "backends",
            "--wait",
        ],
    )
    .unwrap_or_else(|e| panic!("pool set: {e}\n{}", srv.log_tail()));
    let shown = json_of(&ks, &srv, &["loadbalancer", "pool", "show", "backends"]);
    assert!(
        shown["session_persistence"]
            .to_string()
            .contains("SOURCE_IP"),
        "{shown}"
    );
    let member = json_of(
        &ks,
        &srv,
        &[
            "loadbalancer",
            "member",
            "create",
            "--address",
            "10.60.0.11",
            "--protocol-port",
            "8000",
            "--subnet-id",
            "lbsub",
            "--weight",
            "3",
            "backends",
            "--wait",
        ],
    );
    assert_eq!(member["weight"], 3, "{member}");
    let hm = json_of(
        &ks,
        &srv,
        &[
            "loadbalancer",
            "healthmonitor",
            "create",
            "--name",
            "check",
            "--type",
            "HTTP",
            "--delay",
            "2",
            "--timeout",
            "1",
            "--max-retries",
            "2",
            "--max-retries-down",
            "3",
            "--url-path",
            "/healthz",
            "--expected-codes",
            "200-204",
            "backends",
            "--wait",
        ],
    );
    assert_eq!(hm["type"], "HTTP", "{hm}");
    assert_eq!(hm["url_path"], "/healthz");
    assert_eq!(hm["max_retries_down"], 3);
    // The status tree, as the CLI prints it.
    let out = openstack(&ks, &["loadbalancer", "status", "show", "web"])
        .unwrap_or_else(|e| panic!("status show: {e}"));
    let tree: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let l = &tree["loadbalancer"];
    assert_eq!(l["name"], "web", "{tree}");
    assert_eq!(l["listeners"][0]["name"], "http", "{tree}");
    let p = &l["listeners"][0]["pools"][0];
    assert_eq!(p["name"], "backends", "{tree}");
    assert_eq!(p["health_monitor"]["name"], "check", "{tree}");
    // Nobody checks 10.60.0.11 (no such port, no host): it stays unchecked.
    assert_eq!(p["members"][0]["operating_status"], "NO_MONITOR", "{tree}");
    // Statistics (no host balances here: all zero) and a failover, as the CLI asks them.
    let stats = json_of(&ks, &srv, &["loadbalancer", "stats", "show", "web"]);
    assert_eq!(stats["total_connections"], 0, "{stats}");
    assert_eq!(stats["bytes_in"], 0, "{stats}");
    let stats = json_of(
        &ks,
        &srv,
        &["loadbalancer", "listener", "stats", "show", "http"],
    );
    assert_eq!(stats["active_connections"], 0, "{stats}");
    openstack(&ks, &["loadbalancer", "failover", "web", "--wait"])
        .unwrap_or_else(|e| panic!("failover: {e}\n{}", srv.log_tail()));
    let lb = json_of(&ks, &srv, &["loadbalancer", "show", "web"]);
    assert_eq!(lb["provisioning_status"], "ACTIVE", "{lb}");
    // Refusals come back through the CLI with Octavia's words.
    let e = openstack(
        &ks,
        &[
            "loadbalancer",
            "listener",
            "create",
            "--protocol",
            "HTTPS",
            "--protocol-port",
            "443",
            "web",
        ],
    )
    .expect_err("HTTPS is not this provider's");
    assert!(
        e.contains("HTTPS") || e.contains("501") || e.contains("not"),
        "{e}"
    );
    // Cascade delete takes the tree and the VIP port.
    openstack(
        &ks,
        &["loadbalancer", "delete", "--cascade", "--wait", "web"],
    )
    .unwrap_or_else(|e| panic!("delete: {e}"));
    let out = openstack(&ks, &["loadbalancer", "list", "-f", "json"]).expect("list");
    assert_eq!(out.trim(), "[]", "{out}");
    let ports =
        openstack(&ks, &["port", "list", "--network", "lbnet", "-f", "json"]).expect("ports");
    let ports: Value = serde_json::from_str(&ports).unwrap();
    assert!(
        ports
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["Fixed IP Addresses"].to_string().contains(&vip)),
        "the VIP port is gone: {ports}"
    );
}
