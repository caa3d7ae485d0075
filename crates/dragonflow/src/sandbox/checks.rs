//! Live checks on a running sandbox (real ping and nc between the VM and outside
//! namespaces), and the table that shows them. A check passes only on what it saw.

use super::host::{OUTSIDE, OUTSIDE_IP};
use super::state::{self, CheckResult, State, Vm};
use std::process::Stdio;
use std::time::{Duration, Instant};
use testbed::Netns;

/// How long a reachability check retries (flows land a moment after the API answers).
const PATIENCE: Duration = Duration::from_secs(15);

fn one_ping(ns: &str, ip: &str) -> bool {
    let ns = Netns::attach(ns);
    let _ = ns.ip(["neigh", "flush", "dev", "eth0"]);
    ns.exec(["ping", "-c", "2", "-i", "0.2", "-W", "1", ip])
        .is_ok()
}

/// Pings from namespace `ns` until `ip` answers or the patience runs out.
fn pings(ns: &str, ip: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < PATIENCE && !super::interrupted() {
        if one_ping(ns, ip) {
            return true;
        }
    }
    false
}

/// Whether a TCP connection from `ns` to `ip:port` is accepted within 2 s.
fn connects(ns: &str, ip: &str, port: u16) -> bool {
    Netns::attach(ns)
        .exec(["nc", "-z", "-n", "-w", "2", ip, &port.to_string()])
        .is_ok()
}

/// What a failed ping check adds to its detail.
fn no_answer(ok: bool) -> String {
    if ok {
        String::new()
    } else {
        format!(": no answer in {} s", PATIENCE.as_secs())
    }
}

fn timed(name: &str, f: impl FnOnce() -> (bool, String)) -> CheckResult {
    let start = Instant::now();
    let (pass, detail) = f();
    CheckResult {
        name: name.into(),
        pass,
        seconds: start.elapsed().as_secs_f64(),
        detail,
    }
}

fn host_of(st: &State, vm: &Vm) -> String {
    st.hosts
        .get(vm.host)
        .map(|h| h.name.clone())
        .unwrap_or_default()
}

fn ping_check(st: &State, name: &str, from: &Vm, to: &Vm, what: &str) -> CheckResult {
    timed(name, || {
        let ok = pings(&from.ns, &to.ip);
        let detail = format!(
            "{} ({}, {}) pings {} ({}, {}): {what}{}",
            from.name,
            from.network,
            host_of(st, from),
            to.name,
            to.network,
            host_of(st, to),
            no_answer(ok)
        );
        (ok, detail)
    })
}

/// The DHCP check, from what `up` recorded when it addressed the VMs.
pub fn dhcp(st: &State, seconds: f64) -> CheckResult {
    let by_dhcp = st.vms.iter().filter(|v| v.addressing == "dhcp").count();
    let pass = by_dhcp == st.vms.len() && !st.vms.is_empty();
    let detail = if pass {
        format!(
            "{by_dhcp}/{} VMs got their port's address by DHCP",
            st.vms.len()
        )
    } else {
        format!(
            "{by_dhcp}/{} VMs got their port's address by DHCP; addresses: static (DHCP not available)",
            st.vms.len()
        )
    };
    CheckResult {
        name: "dhcp".into(),
        pass,
        seconds,
        detail,
    }
}

/// Runs every check but `dhcp` (which `up` measures while addressing the VMs).
pub fn run(st: &State, mut progress: impl FnMut(&CheckResult)) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let vm = |n: &str| st.vm(n).cloned();
    let (Some(vm1), Some(vm2), Some(vm3), Some(vm4)) = (vm("vm1"), vm("vm2"), vm("vm3"), vm("vm4"))
    else {
        return out;
    };
    let mut push = |r: CheckResult| {
        progress(&r);
        out.push(r);
    };
    push(ping_check(st, "switched", &vm1, &vm2, "same network"));
    push(ping_check(st, "routed", &vm1, &vm3, "through router-a"));
    push(ping_check(
        st,
        "across-hosts",
        &vm3,
        &vm2,
        "routed, then tunnelled to the other host",
    ));
    push(timed("snat", || {
        let ok = pings(&vm4.ns, OUTSIDE_IP);
        (
            ok,
            format!(
                "{} (demo-b, no floating IP, {}) pings the outside host {OUTSIDE_IP}{}",
                vm4.name,
                host_of(st, &vm4),
                no_answer(ok)
            ),
        )
    }));
    push(timed("floating-ip", || match &vm1.floating_ip {
        Some(fip) => {
            let ok = pings(&state::lab().ns_name(OUTSIDE), fip);
            let detail = format!(
                "the outside host pings {} at its floating IP {fip}{}",
                vm1.name,
                no_answer(ok)
            );
            (ok, detail)
        }
        None => (false, "vm1 has no floating IP".into()),
    }));
    push(timed("security-group", || security_group(&vm1, &vm2)));
    out
}

/// vm2 listens on tcp 22 (allowed by its group) and tcp 23 (not allowed); vm1 must reach
/// the first and not the second.
fn security_group(from: &Vm, to: &Vm) -> (bool, String) {
    let mut listeners = Vec::new();
    for port in ["22", "23"] {
        if let Ok(c) = Netns::attach(&to.ns)
            .command(["nc", "-l", "-k", "-n", "-p", port])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            listeners.push(c);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let mut allowed = connects(&from.ns, &to.ip, 22);
    while !allowed && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(200));
        allowed = connects(&from.ns, &to.ip, 22);
    }
    let blocked = !connects(&from.ns, &to.ip, 23);
    for mut c in listeners {
        let _ = c.kill();
        let _ = c.wait();
    }
    let detail = format!(
        "{} -> {} tcp 22 (allowed): {}, tcp 23 (no rule): {}",
        from.name,
        to.name,
        if allowed { "connects" } else { "REFUSED" },
        if blocked { "blocked" } else { "NOT BLOCKED" }
    );
    (allowed && blocked, detail)
}

/// The table: check, result, time, detail.
pub fn table(results: &[CheckResult]) -> String {
    let w = results
        .iter()
        .map(|r| r.name.len())
        .chain([5])
        .max()
        .unwrap_or(5);
    let mut s = format!("{:<w$}  {:<6}  {:>7}  detail\n", "check", "result", "time");
    s.push_str(&format!("{}\n", "-".repeat(w + 2 + 6 + 2 + 7 + 2 + 6)));
    for r in results {
        s.push_str(&format!(
            "{:<w$}  {:<6}  {:>5.1} s  {}\n",
            r.name,
            if r.pass { "PASS" } else { "FAIL" },
            r.seconds,
            r.detail
        ));
    }
    let passed = results.iter().filter(|r| r.pass).count();
    s.push_str(&format!("{passed} of {} checks passed\n", results.len()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, pass: bool) -> CheckResult {
        CheckResult {
            name: name.into(),
            pass,
            seconds: 1.25,
            detail: format!("{name} detail"),
        }
    }

    #[test]
    fn the_table_has_a_row_per_check_and_counts_passes() {
        let t = table(&[r("switched", true), r("security-group", false)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[0].starts_with("check ") && lines[0].ends_with("detail"));
        assert_eq!(lines[2], "switched        PASS      1.2 s  switched detail");
        assert!(lines[3].starts_with("security-group  FAIL "), "{t}");
        assert_eq!(lines[4], "1 of 2 checks passed");
    }

    #[test]
    fn dhcp_passes_only_when_every_vm_got_a_lease() {
        let vm = |a: &str| Vm {
            addressing: a.into(),
            ..Vm::default()
        };
        let mut st = State {
            vms: vec![vm("dhcp"), vm("dhcp")],
            ..State::default()
        };
        assert!(dhcp(&st, 0.1).pass);
        st.vms.push(vm("static"));
        let c = dhcp(&st, 0.1);
        assert!(!c.pass);
        assert!(
            c.detail.contains("2/3") && c.detail.contains("static"),
            "{}",
            c.detail
        );
        assert!(!dhcp(&State::default(), 0.0).pass, "no VM is no pass");
    }
}
