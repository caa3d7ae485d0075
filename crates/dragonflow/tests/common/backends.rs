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
/// so one connection can carry several requests).
const SERVER: &str = r#"
import http.server, sys
name = sys.argv[1].encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"#;

pub fn python() -> String {
    std::env::var("DF_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn serve(vm: &testbed::Vm, name: &str) -> Proc {
    let mut c = vm.ns.command([&python(), "-c", SERVER, name]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(c.spawn().expect("http server"))
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
