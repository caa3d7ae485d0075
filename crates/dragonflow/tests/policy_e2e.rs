//! Roles and RBAC through a real Keystone and the real `openstack` CLI: a user with only
//! the `reader` role lists networks but cannot create one (403); a member shares its
//! network with another project (`openstack network rbac create`), which then sees it
//! and puts a port on it; the policy cannot be deleted while that port exists, can once
//! it is gone, and the network is hidden again; an admin's `--share` is a `*` policy
//! that only an admin may make.
//!
//! One test: Keystone takes 20-40 s to set up.

mod common;

use common::Server;
use serde_json::Value;
use std::time::Duration;
use testbed::keystone::{ADMIN_PASSWORD, Keystone};

fn server(ks: &Keystone) -> Server {
    Server::start_keystone(&ks.url(), "")
}

/// `openstack ARGS [-f json]` as `user` of `project`: its JSON, or its output on failure.
fn cli(
    ks: &Keystone,
    (user, password, project): (&str, &str, &str),
    args: &[&str],
) -> Result<Value, String> {
    let out = common::keystone_cli(&ks.url(), (user, password, project))
        .args(args)
        // Deletes print nothing and take no format.
        .args(if args.contains(&"delete") {
            &[][..]
        } else {
            &["-f", "json"][..]
        })
        .output()
        .unwrap_or_else(|e| panic!("cannot run openstack (scripts/setup): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(text);
    }
    if out.stdout.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {text}"))
}

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
fn roles_and_rbac_through_keystone_and_the_cli() {
    if !testbed::is_root() {
        eprintln!(
            "SKIP roles_and_rbac_through_keystone_and_the_cli: needs root (the real-services step)"
        );
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
    ks.user("rita", "rita-pw", &alpha, &["reader"])
        .expect("user");
    ks.user("bob", "bob-pw", &beta, &["member"]).expect("user");
    let srv = server(&ks);
    ks.register_network(&srv.url)
        .expect("register the network endpoint");
    let alice = ("alice", "alice-pw", "alpha");
    let rita = ("rita", "rita-pw", "alpha");
    let bob = ("bob", "bob-pw", "beta");
    let admin = ("admin", ADMIN_PASSWORD, "admin");

    // A member creates; a reader of the same project lists but may not create.
    let net = cli(&ks, alice, &["network", "create", "alpha-net"]).expect("alice creates");
    let net_id = net["id"].as_str().expect("id").to_string();
    cli(
        &ks,
        alice,
        &[
            "subnet",
            "create",
            "--network",
            &net_id,
            "--subnet-range",
            "10.7.0.0/24",
            "alpha-sub",
        ],
    )
    .expect("alice's subnet");
    let seen = cli(&ks, rita, &["network", "list"]).expect("rita lists");
    assert_eq!(names(&seen), ["alpha-net"], "the reader's list");
    let refused = cli(&ks, rita, &["network", "create", "rita-net"]).expect_err("a reader creates");
    assert!(
        refused.contains("403") || refused.contains("disallowed by policy"),
        "a reader's create must be 403: {refused}"
    );
    let refused = cli(&ks, rita, &["network", "delete", &net_id]).expect_err("a reader deletes");
    assert!(refused.contains("disallowed by policy"), "{refused}");
    // Another project sees nothing of it.
    assert_eq!(
        names(&cli(&ks, bob, &["network", "list"]).expect("bob lists")),
        Vec::<String>::new()
    );

    // Alice shares it with beta.
    let rbac = cli(
        &ks,
        alice,
        &[
            "network",
            "rbac",
            "create",
            "--type",
            "network",
            "--action",
            "access_as_shared",
            "--target-project",
            &beta,
            &net_id,
        ],
    )
    .expect("openstack network rbac create");
    let rbac_id = rbac["id"].as_str().expect("id").to_string();
    assert_eq!(rbac["target_project_id"], beta.as_str(), "{rbac}");
    let listed =
        cli(&ks, alice, &["network", "rbac", "list"]).expect("openstack network rbac list");
    assert!(
        listed
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["ID"] == rbac_id.as_str()),
        "{listed}"
    );
    // A member may not share with everyone.
    let refused = cli(
        &ks,
        alice,
        &[
            "network",
            "rbac",
            "create",
            "--type",
            "network",
            "--action",
            "access_as_shared",
            "--target-all-projects",
            &net_id,
        ],
    )
    .expect_err("a member's * policy");
    assert!(refused.contains("disallowed by policy"), "{refused}");

    // Beta sees it and puts a port on it; meanwhile the policy stays.
    assert_eq!(
        names(&cli(&ks, bob, &["network", "list"]).expect("bob lists")),
        ["alpha-net"]
    );
    let port = cli(
        &ks,
        bob,
        &["port", "create", "--network", &net_id, "bob-port"],
    )
    .expect("bob's port");
    let port_id = port["id"].as_str().expect("id").to_string();
    let refused =
        cli(&ks, alice, &["network", "rbac", "delete", &rbac_id]).expect_err("delete in use");
    assert!(
        refused.contains("RBAC policy on object") || refused.contains("409"),
        "{refused}"
    );
    cli(&ks, bob, &["port", "delete", &port_id]).expect("bob deletes his port");
    cli(&ks, alice, &["network", "rbac", "delete", &rbac_id])
        .expect("openstack network rbac delete");
    assert_eq!(
        names(&cli(&ks, bob, &["network", "list"]).expect("bob lists")),
        Vec::<String>::new()
    );

    // The admin's --share is the * policy.
    let shared =
        cli(&ks, admin, &["network", "create", "--share", "everyones"]).expect("admin shares");
    let everyone = cli(&ks, admin, &["network", "rbac", "list"]).expect("admin lists policies");
    let star = everyone
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["Object ID"] == shared["id"])
        .unwrap_or_else(|| panic!("no policy for the shared network: {everyone}"));
    let star = cli(
        &ks,
        admin,
        &["network", "rbac", "show", star["ID"].as_str().expect("id")],
    )
    .expect("openstack network rbac show");
    assert_eq!(
        (&star["target_project_id"], &star["action"]),
        (&Value::from("*"), &Value::from("access_as_shared")),
        "{star}"
    );
    assert_eq!(
        names(&cli(&ks, bob, &["network", "list"]).expect("bob lists")),
        ["everyones"]
    );
    assert!(!srv.log().contains("panicked"), "{}", srv.log_tail());
}
