//! Many API servers (issue 26): three `dragonflow server` processes on one store, under
//! clients that spread their creates across them. Mid-burst one server and the store's
//! leader are killed with SIGKILL: a three-member etcd cluster, a three-member ZooKeeper
//! ensemble, or (one Redis, no member to kill) the server alone. Every create answered 201
//! must be there afterwards on the surviving servers, nothing may be half written (a port
//! without its network, an IP or MAC claim without its port or a port without its
//! claims), and a client whose request got no answer or a 5xx succeeds by retrying on
//! another server.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testbed::{EtcdCluster, StoreKind, StoreServer, ZooKeeperEnsemble};

/// Client threads, each with its own network and subnet made before the burst.
const CLIENTS: usize = 4;
/// Rounds per client in the burst: one network and two ports each.
const ROUNDS: usize = 40;
/// Answered creates before the kills: about a third of the burst.
const KILL_AFTER: usize = 160;
/// Attempts of one create over the servers before the client gives up.
const ATTEMPTS: usize = 12;

/// One HTTP call: the status and JSON body, or why there was no answer (refused, reset,
/// timed out).
fn call(url: &str, method: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(body.map(Value::to_string).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let mut resp = agent.run(req).map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// What every client shares: the servers' API URLs and the tallies.
struct Load {
    urls: Vec<String>,
    /// Creates answered 201: (collection, the object as answered).
    answered: Mutex<Vec<(&'static str, Value)>>,
    /// Why requests were retried, with how often.
    retried: Mutex<BTreeMap<String, usize>>,
}

impl Load {
    /// POSTs a `resource` to `collection` on server `*next`, moving on to the next server
    /// (round robin) after no answer or a 5xx, as a client of several servers should.
    /// A 4xx is the test's failure: the request was valid.
    fn create(&self, next: &mut usize, collection: &'static str, attrs: Value) -> Value {
        let resource = collection.trim_end_matches('s');
        let body = json!({ resource: attrs });
        let mut whys = Vec::new();
        for attempt in 0..ATTEMPTS {
            let url = format!("{}/v2.0/{collection}", self.urls[*next % self.urls.len()]);
            *next += 1;
            let why = match call(&url, "POST", Some(&body)) {
                Ok((201, v)) => {
                    let obj = v[resource].clone();
                    self.answered
                        .lock()
                        .unwrap()
                        .push((collection, obj.clone()));
                    return obj;
                }
                Ok((s, v)) if s >= 500 => {
                    // etcd's own words, without the transport's details.
                    let msg = v["NeutronError"]["message"].as_str().unwrap_or_default();
                    let words = msg.split("message: \"").nth(1).unwrap_or(msg);
                    format!("{s} {}", words.split('"').next().unwrap_or_default())
                }
                Ok((s, v)) => panic!("create {resource} on {url}: {s} {v}"),
                Err(e) => e.chars().take(40).collect(),
            };
            *self.retried.lock().unwrap().entry(why.clone()).or_default() += 1;
            whys.push(why);
            std::thread::sleep(Duration::from_millis(100 * attempt as u64));
        }
        panic!("create {resource}: no server succeeded in {ATTEMPTS} attempts: {whys:?}");
    }
}

fn list(url: &str, collection: &str) -> Vec<Value> {
    let (status, v) = call(&format!("{url}/v2.0/{collection}"), "GET", None).expect("answer");
    assert_eq!(status, 200, "list {collection} on {url}: {v}");
    v[collection].as_array().expect("list").clone()
}

fn ids(items: &[Value]) -> HashSet<String> {
    items
        .iter()
        .map(|o| o["id"].as_str().unwrap().into())
        .collect()
}

/// The claims in the store, `dragonflow db` reading etcd directly: claim -> owner.
fn claims(db: &str) -> HashMap<String, String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(["db", "--nb", db, "--json", "ls", "claim"])
        .output()
        .expect("dragonflow db");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            let owner = v["value"].as_str().unwrap_or_default().to_string();
            (v["id"].as_str().expect("id").to_string(), owner)
        })
        .collect()
}

/// The store under the servers.
enum Nb {
    Etcd(EtcdCluster),
    /// One Redis: no member to kill (Sentinel or Cluster are not supported).
    Redis(StoreServer),
    ZooKeeper(ZooKeeperEnsemble),
}

impl Nb {
    fn url(&self) -> String {
        match self {
            Nb::Etcd(c) => c.url(),
            Nb::Redis(r) => r.url(),
            Nb::ZooKeeper(z) => z.url(),
        }
    }

    /// Kills the store's leader with SIGKILL, when it has members; names what was killed.
    /// The leader (as `etcdctl endpoint status` or ZooKeeper's `srvr` names it): losing it
    /// forces an election under the load, the harder case.
    fn kill_leader(&mut self) -> String {
        match self {
            Nb::Etcd(c) => {
                let leader = c.leader().expect("etcd leader");
                c.kill(leader).expect("kill etcd member");
                format!("etcd member {leader} of 3 (the leader)")
            }
            Nb::Redis(_) => "no store member (one Redis)".into(),
            Nb::ZooKeeper(z) => {
                let leader = z.leader().expect("ZooKeeper leader");
                z.kill(leader).expect("kill ZooKeeper member");
                format!("ZooKeeper member {leader} of 3 (the leader)")
            }
        }
    }
}

#[test]
fn servers_and_an_etcd_member_killed_mid_burst_lose_no_answered_create() {
    burst(Nb::Etcd(EtcdCluster::start(3).expect("etcd cluster")));
}

#[test]
fn a_server_killed_mid_burst_on_one_redis_loses_no_answered_create() {
    burst(Nb::Redis(
        StoreServer::start(StoreKind::Redis).expect("redis"),
    ));
}

#[test]
fn a_server_and_a_zookeeper_member_killed_mid_burst_lose_no_answered_create() {
    burst(Nb::ZooKeeper(
        ZooKeeperEnsemble::start(3).expect("ZooKeeper ensemble"),
    ));
}

/// Three servers on `nb` under the clients; server 0 and the store's leader killed after
/// [`KILL_AFTER`] creates; then the checks.
fn burst(mut nb: Nb) {
    let db = nb.url();
    let mut servers: Vec<Server> = (0..3).map(|_| Server::start_on_unlimited(&db)).collect();
    let load = Load {
        urls: servers.iter().map(|s| s.url.clone()).collect(),
        answered: Mutex::new(Vec::new()),
        retried: Mutex::new(BTreeMap::new()),
    };
    // Each client's network with a subnet for its ports' addresses, one per server.
    let homes: Vec<String> = (0..CLIENTS)
        .map(|c| {
            let net = servers[c % 3].network(&format!("home{c}"), &format!("10.{c}.0.0/20"));
            net["id"].as_str().unwrap().to_string()
        })
        .collect();

    let done = AtomicUsize::new(0);
    let start = Instant::now();
    let (killed_at, done_at_kill, member) = std::thread::scope(|s| {
        for (c, home) in homes.iter().enumerate() {
            let (load, done) = (&load, &done);
            s.spawn(move || {
                let mut next = c;
                for r in 0..ROUNDS {
                    let net = json!({"name": format!("c{c}r{r}")});
                    load.create(&mut next, "networks", net);
                    for _ in 0..2 {
                        load.create(&mut next, "ports", json!({"network_id": home}));
                    }
                    done.fetch_add(3, Ordering::SeqCst);
                }
            });
        }
        while done.load(Ordering::SeqCst) < KILL_AFTER {
            std::thread::sleep(Duration::from_millis(10));
        }
        servers[0].kill();
        let member = nb.kill_leader();
        (start.elapsed(), done.load(Ordering::SeqCst), member)
    });
    let burst = start.elapsed();
    let answered = load.answered.into_inner().unwrap();
    let retried = load.retried.into_inner().unwrap();
    let retries: usize = retried.values().sum();
    eprintln!(
        "ha_e2e: {} creates answered in {:.1} s ({:.0}/s) by 3 servers on {db}; server 0 \
         and {member} killed at {:.1} s after {} creates; {retries} retries: {retried:?}",
        answered.len(),
        burst.as_secs_f64(),
        answered.len() as f64 / burst.as_secs_f64(),
        killed_at.as_secs_f64(),
        done_at_kill,
    );
    // Every client finished its rounds: the retries got every create through.
    assert_eq!(answered.len(), CLIENTS * ROUNDS * 3);
    assert!(
        done_at_kill < answered.len(),
        "the kills came after the burst"
    );
    assert!(
        retries > 0,
        "no request failed: the kills did not land mid-burst"
    );

    // Every answered create is on both survivors, as answered.
    let survivors = &servers[1..];
    for (i, srv) in survivors.iter().enumerate() {
        let networks = ids(&list(&srv.url, "networks"));
        let ports: HashMap<String, Value> = list(&srv.url, "ports")
            .into_iter()
            .map(|p| (p["id"].as_str().unwrap().to_string(), p))
            .collect();
        for (collection, obj) in &answered {
            let id = obj["id"].as_str().unwrap();
            match *collection {
                "networks" => assert!(networks.contains(id), "network {id} lost"),
                "ports" => {
                    let p = ports.get(id).unwrap_or_else(|| panic!("port {id} lost"));
                    assert_eq!(p["fixed_ips"], obj["fixed_ips"], "port {id}");
                    assert_eq!(p["mac_address"], obj["mac_address"], "port {id}");
                }
                _ => {}
            }
            // Half the objects read one by one too, each from one survivor.
            if id.as_bytes()[0] % 2 == i as u8 {
                let url = format!("{}/v2.0/{collection}/{id}", srv.url);
                let (status, v) = call(&url, "GET", None).expect("answer");
                assert_eq!(status, 200, "{url}: {v}");
            }
        }
    }

    // Nothing half written: every port has its network, subnet and claims, and every IP or
    // MAC claim its port (a create that failed mid-way would leave one without the other).
    let url = &survivors[0].url;
    let networks = ids(&list(url, "networks"));
    let subnets = ids(&list(url, "subnets"));
    let ports = list(url, "ports");
    let claims = claims(&db);
    let mut addresses = 0;
    for p in &ports {
        let id = p["id"].as_str().unwrap();
        assert!(networks.contains(p["network_id"].as_str().unwrap()), "{p}");
        let mac = format!("mac/{}", p["mac_address"].as_str().unwrap());
        assert_eq!(claims.get(&mac).map(String::as_str), Some(id), "{mac}");
        for ip in p["fixed_ips"].as_array().unwrap() {
            let subnet = ip["subnet_id"].as_str().unwrap();
            assert!(subnets.contains(subnet), "{p}");
            let claim = format!("ip/{subnet}/{}", ip["ip_address"].as_str().unwrap());
            assert_eq!(claims.get(&claim).map(String::as_str), Some(id), "{claim}");
            addresses += 1;
        }
    }
    let port_ids = ids(&ports);
    let (mut ip_claims, mut mac_claims) = (0, 0);
    for (claim, owner) in &claims {
        if claim.starts_with("ip/") || claim.starts_with("mac/") {
            assert!(
                port_ids.contains(owner),
                "{claim} held by {owner}, no such port"
            );
            *(if claim.starts_with("ip/") {
                &mut ip_claims
            } else {
                &mut mac_claims
            }) += 1;
        }
    }
    assert_eq!(ip_claims, addresses);
    assert_eq!(mac_claims, ports.len());
    eprintln!(
        "ha_e2e: afterwards {} networks, {} ports ({} answered), {} claims, all consistent",
        networks.len(),
        ports.len(),
        answered.iter().filter(|(c, _)| *c == "ports").count(),
        claims.len()
    );

    // The survivors keep serving, each at its first try.
    for srv in survivors {
        let (status, v) = call(
            &format!("{}/v2.0/networks", srv.url),
            "POST",
            Some(&json!({"network": {"name": "after"}})),
        )
        .expect("answer");
        assert_eq!(status, 201, "{v}");
    }
}
