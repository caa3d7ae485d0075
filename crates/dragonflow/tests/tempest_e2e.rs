//! Neutron API conformance: the upstream suites, tempest's `tempest.api.network` and
//! neutron-tempest-plugin's `neutron_tempest_plugin.api` (scripts/setup installs them),
//! run against the server with a real Keystone, as the OpenStack gate runs them: dynamic
//! credentials (fresh projects per test class), an external network made as devstack
//! makes `public`, and `api_extensions` exactly what `GET /v2.0/extensions` lists.
//!
//! Every test that fails must be named, with its reason, in docs/api.md's known-failure
//! list: a failure not named there fails this test. The counts and the table of modules
//! are recorded in docs/benchmarks.md and docs/api.md on every run.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testbed::keystone::{ADMIN_PASSWORD, Keystone};
use testbed::tempest::{self, Outcome};

fn call(srv: &Server, token: &str, method: &str, path: &str, body: Value) -> Value {
    let (st, v) = srv.call_as(method, path, Some(body), &[("X-Auth-Token", token)]);
    assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
    v
}

#[test]
fn upstream_network_api_suites() {
    if !testbed::is_root() {
        eprintln!("SKIP upstream_network_api_suites: needs root (the real-services step)");
        return;
    }
    assert!(
        testbed::keystone::installed() && tempest::installed(),
        "Keystone or tempest is not installed: run scripts/setup"
    );
    let started = Instant::now();
    let ks = Keystone::start(Duration::from_secs(4 * 3600)).expect("start Keystone");
    // The quotas neutron-tempest-plugin's gate job sets (zuul.d/base.yaml): its router and
    // floating IP classes make more than Neutron's defaults allow one project.
    let srv = Server::start_keystone(
        &ks.url(),
        "\n[quotas]\nquota_router = 100\nquota_floatingip = 500\n\
         quota_security_group = 150\nquota_security_group_rule = 1000\n",
    );
    ks.register_network(&srv.url).expect("catalog");
    let admin = ks.token("admin", ADMIN_PASSWORD, "admin").expect("token");

    // devstack's `public`: external, flat on the physical network, a /24 without DHCP.
    let public = call(
        &srv,
        &admin,
        "POST",
        "/v2.0/networks",
        json!({"network": {"name": "public", "router:external": true,
            "provider:network_type": "flat", "provider:physical_network": "physnet1"}}),
    )["network"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    call(
        &srv,
        &admin,
        "POST",
        "/v2.0/subnets",
        json!({"subnet": {"name": "public-subnet", "network_id": public, "ip_version": 4,
            "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1", "enable_dhcp": false}}),
    );
    let (_, ext) = srv.call_as(
        "GET",
        "/v2.0/extensions",
        None,
        &[("X-Auth-Token", admin.as_str())],
    );
    let extensions: Vec<String> = ext["extensions"]
        .as_array()
        .expect("extensions")
        .iter()
        .filter_map(|e| e["alias"].as_str().map(str::to_string))
        .collect();

    let ws = tempfile::tempdir().expect("tempdir");
    let tempest_bin = tempest::venv().join("bin/tempest");
    // tempest keeps a registry of workspaces under $HOME: this run's own, thrown away.
    let home = ws.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let init = Command::new(&tempest_bin)
        .arg("init")
        .arg(ws.path().join("ws"))
        .env("HOME", &home)
        .output()
        .expect("tempest init");
    assert!(
        init.status.success(),
        "tempest init failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let ws = ws.path().join("ws");
    std::fs::write(
        ws.join("etc/tempest.conf"),
        tempest::conf(&tempest::Conf {
            keystone_url: &ks.url(),
            admin_password: ADMIN_PASSWORD,
            public_network_id: &public,
            extensions: &extensions,
        }),
    )
    .expect("tempest.conf");
    eprintln!(
        "set up in {:.0} s; running the suites",
        started.elapsed().as_secs_f64()
    );
    // A narrower selection for working on one module (DF_TEMPEST_REGEX): its results are
    // checked the same way but not recorded in the docs.
    let narrowed = std::env::var("DF_TEMPEST_REGEX").ok();
    let selection = narrowed.as_deref().unwrap_or(tempest::SELECTION);
    let run_started = Instant::now();
    let out = Command::new(&tempest_bin)
        .args(["run", "--concurrency", "2", "--regex", selection])
        .current_dir(&ws)
        .env("HOME", &home)
        .stderr(Stdio::inherit())
        .output()
        .expect("tempest run");
    let minutes = run_started.elapsed().as_secs_f64() / 60.0;
    let output = String::from_utf8_lossy(&out.stdout);
    // Kept for reading the failures: the run's output and tempest's request log.
    let keep = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::write(keep.join("tempest-run.log"), output.as_bytes());
    let _ = std::fs::copy(ws.join("tempest.log"), keep.join("tempest-requests.log"));
    let _ = std::fs::write(keep.join("tempest-server.log"), srv.log());
    eprintln!(
        "tempest's output and logs: {}/tempest-*.log",
        keep.display()
    );
    let results = tempest::parse_run(&output);
    let expected = if narrowed.is_some() { 1 } else { 500 };
    assert!(
        results.len() >= expected,
        "tempest ran too few tests ({}): its output ends\n{}",
        results.len(),
        output.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );

    let (passed, failed, skipped) = tempest::counts(results.values());
    let ran = passed + failed;
    let rate = 100.0 * passed as f64 / ran.max(1) as f64;
    let api_md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
        .expect("docs/api.md");
    let known = tempest::known_failures(&api_md);
    let failures: Vec<&String> = results
        .iter()
        .filter(|(_, o)| **o == Outcome::Failed)
        .map(|(id, _)| id)
        .collect();
    let unnamed: Vec<&&String> = failures
        .iter()
        .filter(|id| !known.contains_key(id.as_str()))
        .collect();
    let now_passing: Vec<&String> = known
        .keys()
        .filter(|id| results.get(*id) == Some(&Outcome::Passed))
        .collect();

    let summary = format!(
        "## Conformance: the upstream Neutron API suites\n\n\
         `cargo nextest run -p dragonflow --test tempest_e2e` (as root; part of `scripts/test ovs`): \
         tempest {t} and neutron-tempest-plugin {p} (`scripts/tempest-requirements.txt`), selection \
         `{sel}`, two workers, dynamic credentials on a real Keystone, against the debug server on the \
         embedded store. The suites took {minutes:.1} min.\n\n\
         | passed | failed | skipped | pass rate of the tests that ran | target |\n|---|---|---|---|---|\n\
         | {passed} | {failed} | {skipped} | {rate:.1} % | 97 % |\n\n\
         Every failure is named with its reason in docs/api.md (\"Conformance\"); {n} named failures now pass.\n",
        t = "47.0.0",
        p = "3.3.0",
        sel = tempest::SELECTION,
        n = now_passing.len(),
    );
    println!("{summary}");
    if narrowed.is_none() {
        testbed::bench::write_section("tempest", &summary);
        testbed::bench::write_doc_section(
            "api.md",
            "tempest-modules",
            &format!(
                "Results by test module, from the last run ({passed} passed, {failed} failed, {skipped} skipped):\n\n{}",
                tempest::module_table(&results)
            ),
        );
    } else {
        println!("{}", tempest::module_table(&results));
    }
    for id in &now_passing {
        println!("named as failing but passed: {id} (remove it from docs/api.md)");
    }
    assert!(
        unnamed.is_empty(),
        "{} failures are not named in docs/api.md's known failures:\n{}",
        unnamed.len(),
        unnamed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
