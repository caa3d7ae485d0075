//! `dragonflow trace --real` from an e2e scenario: the compiled pipeline's account of a VM's
//! packet checked table by table against the sender's Open vSwitch (`ofproto/trace`), and
//! optionally its verdict against what the scenario itself saw on the wire.

use super::Server;
use serde_json::Value;
use std::process::Command;
use std::time::Instant;

/// What a trace said: its outcome (`delivered`, `dropped`, ...), its verdict line, its
/// whole JSON and all it printed (for assertion messages).
pub struct Traced {
    pub outcome: String,
    pub verdict: String,
    pub json: Value,
    pub out: String,
}

/// `dragonflow trace ARGS --json` against `srv`'s NB, `ovs` being the sender's host (its
/// OVSDB and ovs-vswitchd for `--real`): whether it succeeded, its JSON, and all it
/// printed.
pub fn run(srv: &Server, ovs: &testbed::Ovs, args: &[&str]) -> (bool, Value, String) {
    let db = format!("unix:{}", ovs.db_sock().display());
    let ctl = ovs.dir().join("ovs-vswitchd.ctl").display().to_string();
    let mut all = vec!["trace", "--ovsdb", &db, "--vswitchd-ctl", &ctl];
    all.extend_from_slice(args);
    inspect(srv, &all)
}

/// `dragonflow ARGS --json` against `srv`'s NB with the reader token: whether it
/// succeeded, its JSON, and all it printed.
pub fn inspect(srv: &Server, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(args)
        .args(["--nb", &srv.nb_url, "--json"])
        .env(
            "DRAGONFLOW_NB_TOKEN",
            super::token(neutron_api::nb_auth::Principal::Reader),
        )
        .output()
        .expect("dragonflow");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), v, all)
}

/// Traces a packet from port `from` (id, name or fixed IP; bound to the host of `ovs`) to
/// `to` (IP, IP:PORT or [IPv6]:PORT) with `proto` (tcp, udp, icmp; default as the CLI's)
/// through the compiled pipeline and `ofproto/trace` of that host, and panics unless
/// Open vSwitch went through the same tables.
pub fn agrees(
    srv: &Server,
    ovs: &testbed::Ovs,
    from: &str,
    to: &str,
    proto: Option<&str>,
) -> Traced {
    let mut args = vec!["--from", from, "--to", to, "--real"];
    if let Some(p) = proto {
        args.extend(["--proto", p]);
    }
    let start = Instant::now();
    let (ok, json, out) = run(srv, ovs, &args);
    // For the suite's time budget: what each scenario's trace costs.
    eprintln!("trace {from} -> {to}: {} ms", start.elapsed().as_millis());
    assert!(ok, "dragonflow trace --real {from} -> {to} failed:\n{out}");
    assert!(
        json["ovs_tables"].is_array(),
        "no comparison with Open vSwitch was made: {out}"
    );
    if let Some(u) = json["ovs_unfollowed"].as_str() {
        eprintln!("trace {from} -> {to}: {u}");
    }
    Traced {
        outcome: json["outcome"].as_str().unwrap_or_default().to_string(),
        verdict: json["verdict"].as_str().unwrap_or_default().to_string(),
        json,
        out,
    }
}

/// [`agrees`], and its outcome is `outcome` (what the scenario saw: `delivered` when its
/// ping or connection worked, `dropped` when it was refused).
pub fn expect(
    srv: &Server,
    ovs: &testbed::Ovs,
    from: &str,
    to: &str,
    proto: Option<&str>,
    outcome: &str,
) -> Traced {
    let t = agrees(srv, ovs, from, to, proto);
    assert_eq!(
        t.outcome, outcome,
        "trace {from} -> {to}: the scenario saw {outcome}, the trace says {}:\n{}",
        t.verdict, t.out
    );
    t
}

/// [`expect`] `delivered`.
pub fn delivered(
    srv: &Server,
    ovs: &testbed::Ovs,
    from: &str,
    to: &str,
    proto: Option<&str>,
) -> Traced {
    expect(srv, ovs, from, to, proto, "delivered")
}
