//! BGP (issue 25): the time from a floating IP's association in the API to its /32 in a
//! real bird2's table (via the VM's host), and from its disassociation to the route's
//! withdrawal, over many rounds: p50 and p99. Then many floating IPs associated at once:
//! the time until bird has every /32, and the speaker's resident memory with them.
//! A real `dragonflow server`, `dragonflow bgp` and bird2 in a namespace (the set-up of
//! tests/bgp_e2e.rs). Records in docs/benchmarks.md. Needs root:
//! `cargo bench -p dragonflow --bench bgp` (env: DF_BENCH_ROUNDS, default 50;
//! DF_BENCH_ROUTES, default 10000).

#[path = "../tests/common/mod.rs"]
mod common;

use common::Server;
use common::bgp::{BIRD_IP, Bird, HOST_A, Speaker, Tenant, hosts, id, scopeguard, tenant};
use neutron_api::nb_auth::Principal;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testbed::bench::{env, ms, percentile, write_section};

fn put(srv: &Server, uri: &str, body: Value) {
    let (st, v) = srv.call("PUT", uri, Some(body));
    assert_eq!(st, 200, "{uri}: {v}");
}

/// The UPDATE messages the speaker on `bgp-host` has sent, as its last heartbeat says
/// (written every second here).
fn updates_sent(srv: &Server) -> u64 {
    let (_, v) = srv.call("GET", "/v2.0/agents?agent_type=DF%20BGP%20speaker", None);
    v["agents"][0]["configurations"]["updates_sent"]
        .as_u64()
        .expect("updates_sent in the speaker's heartbeat")
}

/// The count once two heartbeats in a row agree (the speaker has flushed and reported).
fn settled_updates(srv: &Server) -> u64 {
    let mut last = updates_sent(srv);
    loop {
        std::thread::sleep(Duration::from_millis(2500));
        let now = updates_sent(srv);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// The resident memory of process `pid`, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !testbed::require_root("BGP benchmark") {
        return;
    }
    let rounds = env("DF_BENCH_ROUNDS", 50);
    let many = env("DF_BENCH_ROUTES", 10_000);
    let srv = Server::start_unlimited();
    let link = format!("bgpb{}", std::process::id() % 10000);
    let bird = Bird::start(&link);
    let _cleanup = scopeguard(link.clone());
    let Tenant { ext, net, cidr, gw } = tenant(&srv);
    let speaker = srv.create(
        "bgp-speakers",
        "bgp_speaker",
        json!({"name": "s1", "local_as": 64512, "ip_version": 4}),
    );
    let peer = srv.create(
        "bgp-peers",
        "bgp_peer",
        json!({"name": "bird", "peer_ip": BIRD_IP, "remote_as": 65000, "auth_type": "none"}),
    );
    let base = format!("/v2.0/bgp-speakers/{}", id(&speaker));
    put(
        &srv,
        &format!("{base}/add_bgp_peer"),
        json!({"bgp_peer_id": id(&peer)}),
    );
    put(
        &srv,
        &format!("{base}/add_gateway_network"),
        json!({"network_id": id(&ext)}),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, common::token(Principal::Admin)).expect("token");
    let spk = Speaker::start(&srv, &token_file);
    bird.wait("the tenant subnet", |r| r.get(&cidr) == Some(&gw));
    hosts(&srv);

    // One floating IP associated and disassociated, round after round.
    let port = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "binding:host_id": "host-a"}),
    );
    let fip = srv.create(
        "floatingips",
        "floatingip",
        json!({"floating_network_id": ext["id"]}),
    );
    let addr = format!("{}/32", fip["floating_ip_address"].as_str().expect("fip"));
    let uri = format!("/v2.0/floatingips/{}", id(&fip));
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        put(&srv, &uri, json!({"floatingip": {"port_id": port["id"]}}));
        bird.wait("the /32", |r| {
            r.get(&addr).map(String::as_str) == Some(HOST_A)
        });
        on.push(t.elapsed());
        let t = Instant::now();
        put(&srv, &uri, json!({"floatingip": {"port_id": null}}));
        bird.wait("the /32 withdrawn", |r| !r.contains_key(&addr));
        off.push(t.elapsed());
    }
    on.sort();
    off.sort();
    let (on50, on99) = (ms(percentile(&on, 0.5)), ms(percentile(&on, 0.99)));
    let (off50, off99) = (ms(percentile(&off, 0.5)), ms(percentile(&off, 0.99)));
    eprintln!(
        "association → bird p50 {on50:.1} p99 {on99:.1} ms; withdrawal p50 {off50:.1} p99 {off99:.1} ms"
    );

    // Many floating IPs at once: each on a port of its own (made first), then associated
    // as fast as the API takes them; until bird has them all. Their addresses come from a
    // second, larger external subnet (the first one's pool holds 101).
    let (_, pools) = srv.call("GET", "/v2.0/subnetpools?name=ext", None);
    let pool = id(&pools["subnetpools"][0]);
    put(
        &srv,
        &format!("/v2.0/subnetpools/{pool}"),
        json!({"subnetpool": {"prefixes": ["198.18.25.0/24", "100.64.0.0/18"]}}),
    );
    srv.create(
        "subnets",
        "subnet",
        json!({"network_id": ext["id"], "ip_version": 4, "cidr": "100.64.0.0/18",
               "subnetpool_id": pool, "gateway_ip": null}),
    );
    // And more tenant subnets on the router, one /24 for every 250 ports.
    let (_, pools) = srv.call("GET", "/v2.0/subnetpools?name=tenant", None);
    let tenant_pool = id(&pools["subnetpools"][0]);
    let (_, routers) = srv.call("GET", "/v2.0/routers", None);
    let router = id(&routers["routers"][0]);
    for _ in 0..many.div_ceil(250) {
        let sub = srv.create(
            "subnets",
            "subnet",
            json!({"network_id": net["id"], "ip_version": 4, "subnetpool_id": tenant_pool,
                   "prefixlen": 24}),
        );
        put(
            &srv,
            &format!("/v2.0/routers/{router}/add_router_interface"),
            json!({"subnet_id": id(&sub)}),
        );
    }
    let mut fips = Vec::with_capacity(many);
    for _ in 0..many {
        let p = srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "binding:host_id": "host-a"}),
        );
        let f = srv.create(
            "floatingips",
            "floatingip",
            json!({"floating_network_id": ext["id"]}),
        );
        fips.push((id(&f), id(&p)));
    }
    let rss_before = rss_mib(spk.pid());
    let updates_before = settled_updates(&srv);
    let t = Instant::now();
    for (f, p) in &fips {
        put(
            &srv,
            &format!("/v2.0/floatingips/{f}"),
            json!({"floatingip": {"port_id": p}}),
        );
    }
    let api = t.elapsed();
    bird.wait("every /32", |r| {
        r.keys().filter(|k| k.ends_with("/32")).count() >= many
    });
    let all = t.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss_mib(spk.pid());
    let updates_one_by_one = settled_updates(&srv) - updates_before;
    // The whole table at once: bird restarted, the speaker sends every route again.
    let mut bird = bird;
    let before = settled_updates(&srv);
    let t = Instant::now();
    bird.restart(None);
    bird.wait("every /32 after bird's restart", |r| {
        r.keys().filter(|k| k.ends_with("/32")).count() >= many
    });
    let table = t.elapsed();
    let updates_table = settled_updates(&srv) - before;
    eprintln!(
        "UPDATEs: {updates_one_by_one} for {many} associations one by one; the whole table to a restarted bird in {:.2} s, {updates_table} UPDATEs",
        table.as_secs_f64()
    );
    eprintln!(
        "{many} floating IPs: associated in {:.2} s, all in bird after {:.2} s; speaker {rss_before:.1} → {rss_after:.1} MiB",
        api.as_secs_f64(),
        all.as_secs_f64()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_string();
    write_section(
        "bgp-latency",
        &format!(
            "## BGP (issue 25): floating IP to bird's table, p50 and p99; many floating IPs at once\n\n\
             `cargo bench -p dragonflow --bench bgp` (as root; {profile} build; a real `dragonflow server`, \
             `dragonflow bgp` and bird2 in a namespace, as in tests/bgp_e2e.rs; 2 cores, load {load} at the end). \
             One floating IP associated with a port bound to host A, from the API call (its answer included) \
             until `birdc show route` has its /32 via host A, then disassociated until bird no longer has it, \
             {rounds} rounds (bird polled every 2 ms; each `birdc` call takes a few ms itself). Then {many} \
             floating IPs, each on a port of its own, associated one API call after another, until bird has \
             every /32 (their addresses from a second external subnet, 100.64.0.0/18); the speaker's resident memory before and after.\n\n\
             | measure | p50 | p99 |\n|---|---|---|\n\
             | association → the /32 in bird | {on50:.1} ms | {on99:.1} ms |\n\
             | disassociation → withdrawn from bird | {off50:.1} ms | {off99:.1} ms |\n\n\
             {many} floating IPs: the API took {api:.2} s to associate them all, and bird had every /32 \
             {all:.2} s after the first call. The speaker's resident memory: {rss_before:.1} MiB before the \
             associations (it already follows the {many} ports and floating IPs), {rss_after:.1} MiB \
             advertising {routes} routes. UPDATE messages the speaker sent (its heartbeat's `updates_sent`): \
             {updates_one_by_one} for the {many} associations one API call after another (the speaker \
             batches what arrives within 20 ms). Then bird restarted: the whole table ({routes} routes) \
             again in {table:.2} s from the restart until bird had every /32, in {updates_table} UPDATEs \
             (with the End-of-RIB).\n",
            profile = if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            api = api.as_secs_f64(),
            all = all.as_secs_f64(),
            routes = many + 1,
            table = table.as_secs_f64(),
        ),
    );
    drop(spk);
}
