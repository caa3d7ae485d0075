//! `auth_strategy = keystone` against a real Keystone (testbed::keystone, installed by
//! scripts/setup): discovery open, 401 with `WWW-Authenticate` for missing and bad tokens,
//! forged `X-Project-Id`/`X-Roles` ignored, 1,000 concurrent requests on 50 tokens each
//! answered for its own project with one validation per token in Keystone's log, revoked
//! and expired tokens refused, 503 while Keystone is down and back after its restart, the
//! service token renewed, and the real openstack CLI through Keystone's catalog.
//!
//! One test: Keystone takes 20-40 s to set up, so it is started once and the phases run
//! in order on it (each assertion says its phase).

mod common;

use common::Server;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use testbed::keystone::Keystone;

/// Keystone's token lifetime here: short, so expiry and service-token renewal happen
/// within the test.
const TOKEN_LIFE: Duration = Duration::from_secs(40);

/// A server behind `ks`, keeping verdicts `cache_secs`.
fn server(ks: &Keystone, cache_secs: u64) -> Server {
    Server::start_keystone(&ks.url(), &format!("token_cache_time = {cache_secs}\n"))
}

fn get(srv: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    srv.call_as("GET", path, None, headers)
}

/// The names of the networks `token` sees.
fn names(srv: &Server, token: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let mut h = vec![("X-Auth-Token", token)];
    h.extend_from_slice(extra);
    let (st, v) = get(srv, "/v2.0/networks", &h);
    assert_eq!(st, 200, "{v}");
    let mut n: Vec<String> = v["networks"]
        .as_array()
        .expect("networks")
        .iter()
        .map(|n| n["name"].as_str().unwrap_or_default().to_string())
        .collect();
    n.sort();
    n
}

/// 401 with Keystone's address for clients.
fn assert_401(srv: &Server, ks: &Keystone, headers: &[(&str, &str)], phase: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(&format!("{}/v2.0/networks", srv.url));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.call().expect("call");
    assert_eq!(r.status().as_u16(), 401, "{phase}");
    let www = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(www, format!("Keystone uri=\"{}\"", ks.url()), "{phase}");
}

fn alice(ks: &Keystone) -> String {
    ks.token("alice", "alice-pw", "alpha").expect("token")
}

fn bob(ks: &Keystone) -> String {
    ks.token("bob", "bob-pw", "beta").expect("token")
}

#[test]
fn keystone_auth_end_to_end() {
    if !testbed::is_root() {
        eprintln!("SKIP keystone_auth_end_to_end: needs root (the real-services step)");
        return;
    }
    assert!(
        testbed::keystone::installed(),
        "Keystone is not installed: run scripts/setup"
    );
    let started = Instant::now();
    let mut ks = Keystone::start(TOKEN_LIFE).expect("start Keystone");
    eprintln!("Keystone up in {:.1} s", started.elapsed().as_secs_f64());
    let alpha = ks.project("alpha").expect("project");
    let beta = ks.project("beta").expect("project");
    ks.user("alice", "alice-pw", &alpha, &["member"])
        .expect("user");
    ks.user("bob", "bob-pw", &beta, &["member"]).expect("user");
    let srv = server(&ks, 300);
    let short = server(&ks, 2);
    let expiring = alice(&ks);
    let expiring_issued = Instant::now();

    // Discovery is open; everything else needs a token that Keystone knows.
    assert_eq!(get(&srv, "/", &[]).0, 200, "discovery");
    assert_eq!(get(&srv, "/v2.0", &[]).0, 200, "discovery");
    assert_401(&srv, &ks, &[], "no token");
    assert_401(
        &srv,
        &ks,
        &[("X-Project-Id", &alpha), ("X-Roles", "admin")],
        "headers, no token",
    );
    assert_401(&srv, &ks, &[("X-Auth-Token", "gAAAAABforged")], "bad token");
    assert_401(
        &srv,
        &ks,
        &[("X-Auth-Token", "gAAAAABforged")],
        "bad token again",
    );

    // A member's token, with forged headers beside it: the token's project, not admin.
    let forged = [("X-Project-Id", beta.as_str()), ("X-Roles", "admin")];
    let mut h = vec![("X-Auth-Token", expiring.as_str())];
    h.extend_from_slice(&forged);
    let (st, v) = srv.call_as(
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "a-net"}})),
        &h,
    );
    assert_eq!(st, 201, "create as alice: {v}");
    assert_eq!(v["network"]["project_id"], alpha.as_str(), "forged project");
    let b = bob(&ks);
    let (st, v) = srv.call_as(
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "b-net"}})),
        &[("X-Auth-Token", &b)],
    );
    assert_eq!(st, 201, "create as bob: {v}");
    let b_id = v["network"]["id"].as_str().expect("id").to_string();
    assert_eq!(names(&srv, &expiring, &forged), ["a-net"], "forged headers");
    let (st, _) = get(
        &srv,
        &format!("/v2.0/networks/{b_id}"),
        &[
            ("X-Auth-Token", &expiring),
            ("X-Project-Id", &beta),
            ("X-Roles", "admin"),
        ],
    );
    assert_eq!(
        st, 404,
        "alice must not see bob's network, whatever her headers say"
    );
    let (st, _) = srv.call_as(
        "DELETE",
        &format!("/v2.0/networks/{b_id}"),
        None,
        &[
            ("X-Auth-Token", &expiring),
            ("X-Project-Id", &beta),
            ("X-Roles", "admin"),
        ],
    );
    assert_eq!(st, 404, "alice must not delete bob's network");

    // 1,000 concurrent requests on 50 fresh tokens (and one bad one): each answered for
    // its own project, each token validated once.
    let tokens: Vec<(String, &str)> = (0..50)
        .map(|i| {
            if i % 2 == 0 {
                (alice(&ks), "a-net")
            } else {
                (bob(&ks), "b-net")
            }
        })
        .collect();
    let bad = "gAAAAABnot-a-token".to_string();
    let barrier = std::sync::Barrier::new(1000);
    let wrong: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..1000)
            .map(|i| {
                let (srv, tokens, barrier, bad) = (&srv, &tokens, &barrier, &bad);
                s.spawn(move || {
                    let (token, want) = if i % 100 == 99 {
                        (bad, "")
                    } else {
                        let (t, w) = &tokens[i % 50];
                        (t, *w)
                    };
                    barrier.wait();
                    let (st, v) = get(srv, "/v2.0/networks", &[("X-Auth-Token", token)]);
                    let got: Vec<&str> = v["networks"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|n| n["name"].as_str()).collect())
                        .unwrap_or_default();
                    let ok = if want.is_empty() {
                        st == 401
                    } else {
                        st == 200 && got == [want]
                    };
                    (!ok).then(|| format!("request {i}: {st} {v}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("client"))
            .collect()
    });
    assert!(
        wrong.is_empty(),
        "concurrent: {} wrong, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    let seen = ks.validations();
    for (t, _) in &tokens {
        assert_eq!(
            seen.get(t).copied().unwrap_or(0),
            1,
            "validations of one token"
        );
    }
    assert_eq!(
        seen.get(&bad).copied(),
        Some(1),
        "validations of a bad token"
    );
    assert_eq!(
        seen.get("gAAAAABforged").copied(),
        Some(1),
        "bad tokens are cached too"
    );

    // Revoked: refused once the short cache forgot its verdict.
    let r = alice(&ks);
    assert_eq!(
        get(&short, "/v2.0/networks", &[("X-Auth-Token", &r)]).0,
        200,
        "before revocation"
    );
    ks.revoke(&r).expect("revoke");
    std::thread::sleep(Duration::from_millis(2500));
    assert_401(&short, &ks, &[("X-Auth-Token", &r)], "revoked");

    // Keystone down: a token not in the cache gets 503 (never a pass, never a 500); a
    // cached one still works. Back after the restart.
    let fresh = alice(&ks);
    ks.stop();
    let (st, v) = get(&srv, "/v2.0/networks", &[("X-Auth-Token", &fresh)]);
    assert_eq!(st, 503, "Keystone down: {v}");
    assert_eq!(
        get(&srv, "/v2.0/networks", &[("X-Auth-Token", "gAAAAABother")]).0,
        503,
        "Keystone down, bad token"
    );
    assert_eq!(
        names(&srv, &tokens[0].0, &[]),
        ["a-net"],
        "cached while Keystone is down"
    );
    ks.restart().expect("restart Keystone");
    assert_eq!(
        names(&srv, &fresh, &[]),
        ["a-net"],
        "after Keystone's restart"
    );

    // The openstack CLI: password auth, the network endpoint from Keystone's catalog.
    ks.register_network(&srv.url)
        .expect("register the network endpoint");
    let cli = |args: &[&str]| -> Value {
        let out = common::keystone_cli(&ks.url(), ("alice", "alice-pw", "alpha"))
            .args(args)
            .args(["-f", "json"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run openstack (scripts/setup): {e}"));
        assert!(
            out.status.success(),
            "openstack {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let net = cli(&["network", "create", "cli-net"]);
    assert_eq!(
        net["project_id"],
        alpha.as_str(),
        "openstack network create: {net}"
    );
    let listed: HashSet<String> = cli(&["network", "list"])
        .as_array()
        .expect("list")
        .iter()
        .map(|n| n["Name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        listed,
        HashSet::from(["a-net".to_string(), "cli-net".to_string()]),
        "openstack network list"
    );

    // Expired: the verdict was cached for 300 s, but never past the token's expiry. By now
    // the service token (issued at the server's start) is past its renewal time as well.
    let left = (TOKEN_LIFE + Duration::from_secs(2)).saturating_sub(expiring_issued.elapsed());
    std::thread::sleep(left);
    assert_401(&srv, &ks, &[("X-Auth-Token", &expiring)], "expired");
    assert_eq!(
        names(&srv, &alice(&ks), &[]),
        ["a-net", "cli-net"],
        "after the service token's renewal"
    );
    let issued = srv.log().matches("service token issued").count();
    assert!(
        issued >= 2,
        "the service token was not renewed: {}",
        srv.log_tail()
    );
    assert!(!srv.log().contains("panicked"), "{}", srv.log_tail());
}
