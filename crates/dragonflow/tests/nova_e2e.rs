//! Nova's port handshake, end to end except for Nova itself (no real Nova can run here):
//! a real Keystone, the server with `auth_strategy = keystone` and a `[nova]` url that
//! points at a recorder in this test, a real OVS and controller. Checked against Nova's
//! API reference for `POST /v2.1/os-server-external-events`: the body is
//! `{"events": [{"name", "server_uuid", "tag", "status"}]}`, `tag` the port id,
//! `server_uuid` the instance, with the server's own Keystone token.
//!
//! A port Nova binds before its interface is plugged stays DOWN with `vif_type` ovs; its
//! plugging sends `network-vif-plugged`, unplugging `network-vif-unplugged`, deleting
//! `network-vif-deleted`; an event Nova cannot take (503) is kept, retried with backoff,
//! and delivered after a server restart.

mod common;

use common::Server;
use common::cloud::{Controller, wait_until};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testbed::keystone::{ADMIN_PASSWORD, Keystone};

/// What the pretend Nova received: method, path, headers (lower-case names), body.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP endpoint that records every request and answers with `status` (Nova's 200
/// answer echoes the events with `code` 200, as Nova does).
struct Recorder {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Recorder {
    fn start() -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let mut r = BufReader::new(conn);
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let path = parts.next().unwrap_or_default().to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_lowercase(), v.trim().to_string()));
                    }
                }
                let len = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let code = s.load(Ordering::SeqCst);
                let answer = if code == 200 {
                    let mut events = body["events"].clone();
                    for e in events.as_array_mut().into_iter().flatten() {
                        e["code"] = json!(200);
                    }
                    json!({ "events": events }).to_string()
                } else {
                    r#"{"error": "not now"}"#.to_string()
                };
                g.lock().unwrap().push(Received {
                    method,
                    path,
                    headers,
                    body,
                });
                let mut conn = r.into_inner();
                let _ = write!(
                    conn,
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Recorder { url, got, status }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The events Nova took (those sent while it answered 200).
    fn delivered(&self, answered_ok: &dyn Fn(&Received) -> bool) -> Vec<Value> {
        self.received()
            .iter()
            .filter(|r| answered_ok(r))
            .flat_map(|r| r.body["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

fn call(srv: &Server, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (st, v) = srv.call_as(method, path, body, &[("X-Auth-Token", token)]);
    assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
    v
}

fn port_of(srv: &Server, token: &str, id: &str) -> Value {
    call(srv, token, "GET", &format!("/v2.0/ports/{id}"), None)["port"].clone()
}

#[test]
fn nova_hears_of_ports_plugged_unplugged_and_deleted() {
    if !testbed::require_root("nova_hears_of_ports_plugged_unplugged_and_deleted") {
        return;
    }
    assert!(
        testbed::keystone::installed(),
        "Keystone is not installed: run scripts/setup"
    );
    let ks = Keystone::start(Duration::from_secs(3600)).expect("start Keystone");
    let demo = ks.project("demo").expect("project");
    ks.user("dana", "dana-pw", &demo, &["member"])
        .expect("user");
    let nova = Recorder::start();
    let mut srv = Server::start_keystone(
        &ks.url(),
        &format!(
            "\n[nova]\nurl = \"{}/v2.1\"\nsend_events_interval = 1\n",
            nova.url
        ),
    );
    let ovs = testbed::Ovs::start().expect("ovs");
    let ctl = Controller::start(&srv, &ovs, "host-a", "192.0.2.1");
    ctl.wait_for_br_int(&ovs);
    let admin = ks.token("admin", ADMIN_PASSWORD, "admin").expect("token");
    let dana = ks.token("dana", "dana-pw", "demo").expect("token");

    let net = call(
        &srv,
        &dana,
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "n"}})),
    )["network"]["id"]
        .clone();
    call(
        &srv,
        &dana,
        "POST",
        "/v2.0/subnets",
        Some(json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}})),
    );
    // Nova's order: the port is made, then bound to the chosen host, then the VM plugged.
    let vm_uuid = "8c1f2a5e-0d8b-4f7e-9b43-6a2f1c0d9e11";
    let port = call(
        &srv,
        &dana,
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": net, "device_owner": "compute:nova", "device_id": vm_uuid}})),
    )["port"]
        .clone();
    let id = port["id"].as_str().expect("id").to_string();
    assert_eq!(port_of(&srv, &admin, &id)["binding:vif_type"], "unbound");
    // A host without a live controller cannot bind it, as ML2 answers.
    let failed = call(
        &srv,
        &admin,
        "PUT",
        &format!("/v2.0/ports/{id}"),
        Some(json!({"port": {"binding:host_id": "host-nowhere"}})),
    )["port"]
        .clone();
    assert_eq!(failed["binding:vif_type"], "binding_failed", "{failed}");
    assert_eq!(failed["binding:vif_details"], json!({}), "{failed}");
    // host-a's controller reports itself alive (and its datapath) by its heartbeat.
    let mut datapath = Value::Null;
    wait_until(
        "host-a's controller to report",
        Duration::from_secs(20),
        || {
            let agents = call(&srv, &admin, "GET", "/v2.0/agents?host=host-a", None);
            match agents["agents"].as_array().and_then(|a| a.first()) {
                Some(a) if a["alive"] == true => {
                    datapath = a["configurations"]["datapath_type"].clone();
                    true
                }
                _ => false,
            }
        },
    );
    assert!(datapath.is_string(), "{datapath}");
    let bound = call(
        &srv,
        &admin,
        "PUT",
        &format!("/v2.0/ports/{id}"),
        Some(json!({"port": {"binding:host_id": "host-a"}})),
    )["port"]
        .clone();
    assert_eq!(bound["binding:vif_type"], "ovs", "{bound}");
    let details = &bound["binding:vif_details"];
    assert_eq!(details["port_filter"], true, "{bound}");
    assert_eq!(details["ovs_hybrid_plug"], false, "{bound}");
    assert_eq!(details["bridge_name"], "br-int", "{bound}");
    assert_eq!(details["connectivity"], "l2", "{bound}");
    assert_eq!(details["datapath_type"], datapath, "{bound}");
    // Bound but not plugged: DOWN, and nothing for Nova, over several send intervals.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(port_of(&srv, &dana, &id)["status"], "DOWN");
    assert!(nova.received().is_empty(), "{:?}", nova.received());

    let mac = port["mac_address"].as_str().expect("mac");
    let ip = port["fixed_ips"][0]["ip_address"].as_str().expect("ip");
    let vm = testbed::Vm::plug(&ovs, "br-int", &id, mac, &format!("{ip}/24")).expect("plug");
    wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
        port_of(&srv, &dana, &id)["status"] == "ACTIVE"
    });
    let all_ok = |_: &Received| true;
    wait_until(
        "Nova to hear it is plugged",
        Duration::from_secs(10),
        || !nova.delivered(&all_ok).is_empty(),
    );
    let first = nova.received()[0].clone();
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v2.1/os-server-external-events");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(
        first.body,
        json!({"events": [{"name": "network-vif-plugged", "server_uuid": vm_uuid,
                           "tag": id, "status": "completed"}]})
    );
    // The token is the server's own, and Keystone knows it as the neutron user.
    let token = first.header("x-auth-token").expect("a token for Nova");
    let who: Value = ureq::get(&format!("{}/v3/auth/tokens", ks.url()))
        .header("x-auth-token", &admin)
        .header("x-subject-token", token)
        .call()
        .expect("Keystone validates the token Nova got")
        .body_mut()
        .read_json()
        .expect("json");
    assert_eq!(who["token"]["user"]["name"], "neutron", "{who}");

    drop(vm);
    wait_until("the port to go DOWN", Duration::from_secs(20), || {
        port_of(&srv, &dana, &id)["status"] == "DOWN"
    });
    wait_until(
        "Nova to hear it is unplugged",
        Duration::from_secs(10),
        || nova.delivered(&all_ok).len() == 2,
    );
    assert_eq!(
        nova.delivered(&all_ok)[1],
        json!({"name": "network-vif-unplugged", "server_uuid": vm_uuid, "tag": id, "status": "completed"})
    );

    // Nova cannot take events now: the delete's event is kept and retried...
    nova.status.store(503, Ordering::SeqCst);
    let before = nova.received().len();
    call(&srv, &dana, "DELETE", &format!("/v2.0/ports/{id}"), None);
    wait_until("two failed sends", Duration::from_secs(15), || {
        nova.received().len() >= before + 2
    });
    assert!(srv.log().contains("kept for later"), "{}", srv.log());
    // ...and survives the server's restart, to be delivered once Nova is back.
    srv.stop();
    nova.status.store(200, Ordering::SeqCst);
    let restarted_at = nova.received().len();
    srv.restart();
    wait_until("the delete to reach Nova", Duration::from_secs(20), || {
        nova.received().len() > restarted_at
    });
    let after: Vec<Value> = nova.received()[restarted_at..]
        .iter()
        .flat_map(|r| r.body["events"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        after,
        vec![
            json!({"name": "network-vif-deleted", "server_uuid": vm_uuid, "tag": id, "status": "completed"})
        ]
    );
    // Delivered once: nothing more comes.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        nova.received().len(),
        restarted_at + 1,
        "{:?}",
        nova.received()
    );
    drop(ctl);
}
