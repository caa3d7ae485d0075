//! HTTP backends in VM namespaces for the load-balancing tests: Python's `http.server`
//! answering every GET with its name, curl from a client VM, and a tally of who answered.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};

/// A child process killed when dropped (the HTTP servers).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP/1.1 server on port 8000 in the VM answering every GET with `name` (keep-alive,
/// so one connection can carry several requests), on IPv4 or, given "::", IPv6.
const SERVER: &str = r#"
import http.server, socket, sys
name = sys.argv[1].encode()
bind = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a):
        pass
Server((bind, 8000), H).serve_forever()
"#;

pub fn python() -> String {
    std::env::var("DF_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn serve(vm: &testbed::Vm, name: &str) -> Proc {
    serve_on(vm, name, "0.0.0.0")
}

/// [`serve`] on address `bind` ("::" for IPv6).
pub fn serve_on(vm: &testbed::Vm, name: &str, bind: &str) -> Proc {
    let mut c = vm.ns.command([&python(), "-c", SERVER, name, bind]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(c.spawn().expect("http server"))
}

/// A UDP server on port `port` of address `bind` ("::" for IPv6) in the VM, answering
/// every datagram with `name`.
const UDP_SERVER: &str = r#"
import socket, sys
name, bind, port = sys.argv[1].encode(), sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((bind, port))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(name, peer)
"#;

pub fn serve_udp(vm: &testbed::Vm, name: &str, bind: &str, port: u16) -> Proc {
    let mut c = vm
        .ns
        .command([&python(), "-c", UDP_SERVER, name, bind, &port.to_string()]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(c.spawn().expect("udp server"))
}

/// One datagram from a new socket (a new source port) to `addr`:`port`; the answer, or
/// None within 2 s.
pub fn ask_udp(vm: &testbed::Vm, addr: &str, port: u16) -> Option<String> {
    const ASK: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"?", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(2048)[0].decode())
"#;
    vm.ns
        .exec([&python(), "-c", ASK, addr, &port.to_string()])
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// One request through a new connection (curl); the member's name, or None.
pub fn curl(vm: &testbed::Vm, url: &str) -> Option<String> {
    vm.ns
        .exec(["curl", "-s", "--max-time", "2", url])
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `n` requests through new connections: how many each member answered.
pub fn tally(vm: &testbed::Vm, url: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let who = curl(vm, url).unwrap_or_else(|| "(no answer)".into());
        *seen.entry(who).or_default() += 1;
    }
    seen
}

/// One call to the server's Octavia API (noauth admin).
pub fn octavia(
    srv: &super::Server,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    super::http_call(&format!("{}{path}", srv.octavia_url), method, body, &[])
}

/// POSTs `body` to the Octavia `path` (201 expected): the object made.
pub fn octavia_made(srv: &super::Server, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (st, v) = octavia(srv, "POST", path, Some(body));
    assert_eq!(st, 201, "POST {path}: {v}\n{}", srv.log_tail());
    v.as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .expect("object")
}

/// The id of the first subnet of `net`.
pub fn first_subnet(srv: &super::Server, net: &serde_json::Value) -> String {
    let net_id = net["id"].as_str().expect("network id");
    let (_, v) = srv.call("GET", &format!("/v2.0/subnets?network_id={net_id}"), None);
    v["subnets"][0]["id"]
        .as_str()
        .expect("a subnet")
        .to_string()
}

/// A balancer made through the Octavia API with one TCP listener and its pool.
pub struct Balancer {
    pub id: String,
    pub vip: String,
    pub pool: serde_json::Value,
    /// The pool's members collection: `/v2/lbaas/pools/{id}/members`.
    pub members: String,
}

/// A balancer `name` on `subnet` with a TCP listener on `port` and a ROUND_ROBIN pool;
/// `pool` adds or overrides the pool's attributes (a `protocol` there is the listener's
/// too).
pub fn balancer(
    srv: &super::Server,
    subnet: &str,
    name: &str,
    port: u16,
    pool: serde_json::Value,
) -> Balancer {
    use serde_json::json;
    let b = octavia_made(
        srv,
        "/v2/lbaas/loadbalancers",
        json!({"loadbalancer": {"name": name, "vip_subnet_id": subnet}}),
    );
    let protocol = pool["protocol"].as_str().unwrap_or("TCP");
    let l = octavia_made(
        srv,
        "/v2/lbaas/listeners",
        json!({"listener": {"loadbalancer_id": b["id"], "protocol": protocol, "protocol_port": port}}),
    );
    let mut attrs =
        json!({"listener_id": l["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"});
    if let (Some(a), Some(extra)) = (attrs.as_object_mut(), pool.as_object()) {
        a.extend(extra.clone());
    }
    let pool = octavia_made(srv, "/v2/lbaas/pools", json!({ "pool": attrs }));
    Balancer {
        id: b["id"].as_str().expect("id").to_string(),
        vip: b["vip_address"].as_str().expect("vip").to_string(),
        members: format!(
            "/v2/lbaas/pools/{}/members",
            pool["id"].as_str().expect("id")
        ),
        pool,
    }
}

/// A router with an interface on each of `subnets` (the VIP's network and a member's, in
/// the tests of members behind a router).
pub fn router_on(srv: &super::Server, name: &str, subnets: &[&str]) -> serde_json::Value {
    use serde_json::json;
    let router = srv.create("routers", "router", json!({ "name": name }));
    let id = router["id"].as_str().expect("router id");
    for s in subnets {
        let (st, body) = srv.call(
            "PUT",
            &format!("/v2.0/routers/{id}/add_router_interface"),
            Some(json!({ "subnet_id": s })),
        );
        assert_eq!(st, 200, "{body}");
    }
    router
}
