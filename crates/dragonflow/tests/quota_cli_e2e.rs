//! Quotas with the real `openstack` CLI through a real Keystone (testbed::keystone,
//! installed by scripts/setup): the admin shows, sets and deletes a project's network
//! quotas (the CLI's limit check against the usage, and `--force`), the usage is what the
//! project made, a member is refused past the quota and may show its own project's quotas
//! but not set them.
//!
//! One test: Keystone takes 20-40 s to set up.

mod common;

use common::Server;
use serde_json::Value;
use std::time::Duration;
use testbed::keystone::{ADMIN_PASSWORD, Keystone};

/// A server behind `ks`.
fn server(ks: &Keystone) -> Server {
    Server::start_keystone(&ks.url(), "")
}

/// Runs the CLI as `user` of `project`: its stdout, or its stdout and stderr on failure.
fn openstack(ks: &Keystone, who: (&str, &str, &str), args: &[&str]) -> Result<String, String> {
    let out = common::keystone_cli(&ks.url(), who)
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

/// `quota show ... -f json` as rows by resource name: (limit, in use).
fn rows(out: &str) -> std::collections::BTreeMap<String, (Value, Value)> {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v.as_array()
        .unwrap_or_else(|| panic!("rows: {out}"))
        .iter()
        .map(|r| {
            // The CLI's column headers are the keys.
            let name = r["Resource"].as_str().unwrap_or_default().to_string();
            (name, (r["Limit"].clone(), r["In Use"].clone()))
        })
        .collect()
}

#[test]
fn openstack_quota_show_set_and_delete_through_keystone() {
    if !testbed::is_root() {
        eprintln!("SKIP openstack_quota_show_set_and_delete_through_keystone: needs root");
        return;
    }
    assert!(
        testbed::keystone::installed(),
        "Keystone is not installed: run scripts/setup"
    );
    let ks = Keystone::start(Duration::from_secs(3600)).expect("start Keystone");
    let alpha = ks.project("alpha").expect("project");
    ks.user("alice", "alice-pw", &alpha, &["member"])
        .expect("user");
    let srv = server(&ks);
    ks.register_network(&srv.url)
        .expect("register the network endpoint");
    let admin = ("admin", ADMIN_PASSWORD, "admin");
    let alice = ("alice", "alice-pw", "alpha");
    let show = |who, args: &[&str]| {
        let mut a = vec!["quota", "show", "--network"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-f", "json"]);
        rows(&openstack(&ks, who, &a).unwrap_or_else(|e| panic!("quota show {args:?}: {e}")))
    };
    let limit = |rows: &std::collections::BTreeMap<String, (Value, Value)>, r: &str| {
        rows.get(r)
            .map(|x| x.0.clone())
            .unwrap_or_else(|| panic!("{r} in {rows:?}"))
    };

    // Neutron's defaults.
    let q = show(admin, &["alpha"]);
    for (r, want) in [
        ("networks", 100),
        ("subnets", 100),
        ("ports", 500),
        ("routers", 10),
        ("floating_ips", 50),
        ("security_groups", 10),
        ("security_group_rules", 100),
        ("rbac_policies", 10),
    ] {
        assert_eq!(limit(&q, r), want, "default {r}: {q:?}");
    }

    // The admin sets two; `quota show` has them, `--default` does not.
    openstack(
        &ks,
        admin,
        &["quota", "set", "--networks", "1", "--ports", "7", "alpha"],
    )
    .expect("quota set");
    let q = show(admin, &["alpha"]);
    assert_eq!(
        (limit(&q, "networks"), limit(&q, "ports")),
        (1.into(), 7.into())
    );
    let q = show(admin, &["--default", "alpha"]);
    assert_eq!(limit(&q, "networks"), 100, "{q:?}");

    // The member makes one network; the second is over the quota.
    openstack(&ks, alice, &["network", "create", "one"]).expect("network create");
    let e = openstack(&ks, alice, &["network", "create", "two"]).expect_err("over quota");
    assert!(
        e.contains("Quota exceeded for resources: ['network']"),
        "{e}"
    );
    let q = show(admin, &["--usage", "alpha"]);
    assert_eq!(q["networks"], (1.into(), 1.into()), "{q:?}");

    // The CLI asks Neutron to check the limit against the usage unless forced.
    let e = openstack(&ks, admin, &["quota", "set", "--networks", "0", "alpha"])
        .expect_err("a limit below the usage");
    assert!(e.contains("Change would make usage less than 0"), "{e}");
    openstack(
        &ks,
        admin,
        &["quota", "set", "--force", "--networks", "0", "alpha"],
    )
    .expect("quota set --force");
    assert_eq!(limit(&show(admin, &["alpha"]), "networks"), 0);

    // The member may show its own project's quotas (by id), not set them.
    let q = show(alice, &[alpha.as_str()]);
    assert_eq!(limit(&q, "networks"), 0);
    let e = openstack(&ks, alice, &["quota", "set", "--networks", "5", &alpha])
        .expect_err("a member setting quotas");
    assert!(e.contains("update_quota") || e.contains("403"), "{e}");

    // Deleted: the defaults again, and room for the second network.
    openstack(&ks, admin, &["quota", "delete", "--network", "alpha"]).expect("quota delete");
    let q = show(admin, &["alpha"]);
    assert_eq!(limit(&q, "networks"), 100);
    openstack(&ks, alice, &["network", "create", "two"]).expect("network create after reset");
}
