//! New TCP connections per second between VM namespaces, for the benchmarks that compare
//! a path through a feature (a VIP, a firewall policy) with the plain one: a server that
//! writes its name and closes, and a client loop of connect, read to the end, close.

use super::backends::{Proc, python};
use std::process::Stdio;

/// The port the server listens on.
pub const PORT: &str = "9000";
/// Seconds of one measuring round.
pub const ROUND_SECONDS: &str = "3";

/// A TCP server on port 9000 that writes its name and closes: the cheapest answer a
/// connection can get, so that the rate measures the connections, not the server.
const SERVER: &str = r#"
import asyncio, sys
name = sys.argv[1].encode()
async def answer(r, w):
    w.write(name)
    await w.drain()
    w.close()
async def main():
    s = await asyncio.start_server(answer, "0.0.0.0", 9000, backlog=4096, reuse_address=True)
    await s.serve_forever()
asyncio.run(main())
"#;

/// New connections one after another for `secs` seconds: prints connections per second.
const RATE: &str = r#"
import socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n, failed, end = 0, 0, time.monotonic() + secs
start = time.monotonic()
while time.monotonic() < end:
    try:
        s = socket.create_connection((host, port), timeout=2)
        while s.recv(64):
            pass
        s.close()
        n += 1
    except OSError:
        failed += 1
print(n / (time.monotonic() - start), failed)
"#;

/// Starts the name server in `vm`.
pub fn serve_name(vm: &testbed::Vm, name: &str) -> Proc {
    let mut c = vm.ns.command([&python(), "-c", SERVER, name]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(c.spawn().expect("server"))
}

/// Connections per second from `vm` to `host` over one round, and how many failed.
pub fn rate(vm: &testbed::Vm, host: &str) -> (f64, u64) {
    let out = vm
        .ns
        .exec([&python(), "-c", RATE, host, PORT, ROUND_SECONDS])
        .expect("rate client");
    let mut it = out.split_whitespace();
    let r = it.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let f = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (r, f)
}

/// The median of a non-empty list.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The machine's one-minute load average, as /proc/loadavg says it.
pub fn load() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    l.split_whitespace().next().unwrap_or("?").to_string()
}

/// "debug" or "release": the profile the bench was built with.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}
