//! A host so far behind that the server's log no longer reaches back to it catches up by
//! a new snapshot. Host A's controller is stopped (SIGSTOP) on a server whose embedded
//! store keeps a short log (`--nb-log-retention`); once the server has cut A's stalled
//! watch, A's network changes (a port of it deleted, one updated, a new one plugged on A)
//! and then enough more that those changes leave the log. After SIGCONT, A's resume is
//! refused (410) and it takes a new snapshot: the deleted port's flows are gone, the
//! update is in, the new port turns ACTIVE, the trace agrees with Open vSwitch, and A's
//! flows equal a fresh compile on an emptied switch. Host B wires ports at its usual
//! latency all along. The same on etcd, whose history the test compacts once the changes
//! are past the server's in-memory buffer: the server answers 410 from etcd's compaction;
//! and on etcd uncompacted, where the host resumes from etcd's history instead.

mod common;

use common::Server;
use common::cloud::{
    Controller, addr, flows, groups, pad_port, signal, two_hosts_with, wait_until,
};
use common::prom::{free_addr, scrape, value};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Revisions the server's log keeps: small, so a stop of seconds falls off it.
const RETENTION: u64 = 500;
/// What the server logs when it cuts a stalled watcher.
const STALL_LINE: &str = "took nothing for the stall timeout";
/// What host A logs when its resume is refused (`nbdb::remote`).
const SNAPSHOT_LINE: &str = "taking a new snapshot";
/// What it logs when its resume is served.
const RESUMED_LINE: &str = "NB watch resumed after its revision";
/// The longest A stays stopped, should the server never cut it or the log never move.
const MAX_STOP: Duration = Duration::from_secs(90);
/// How long A may take, after SIGCONT, to have the port plugged while it was stopped
/// ACTIVE and its view at the store's revision (on a loaded 2-core machine). A snapshot
/// takes well under a second; a resume from etcd's history of some 5,000 revisions of
/// 5 kB took about a minute here (debug build): it is read in pages of 256 revisions, each
/// a new etcd watch whose first response holds up to 1000.
fn catch_up(log: &Log) -> Duration {
    Duration::from_secs(if log.gone() { 60 } else { 240 })
}
/// An address the update made while A was stopped allows on A's port.
const PAIR_IP: &str = "10.0.1.250";

fn revision(srv: &Server) -> u64 {
    let (_, v) = srv.nb_call("GET", "/nb/v1/revision", None);
    v["revision"].as_u64().expect("revision")
}

fn active_on(srv: &Server, id: &str, host: &str) -> bool {
    let (_, v) = srv.call("GET", &format!("/v2.0/ports/{id}"), None);
    v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
}

fn id(port: &Value) -> String {
    port["id"].as_str().expect("id").to_string()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Where the log ends for the stopped host.
enum Log {
    /// The server's embedded store, trimmed to [`RETENTION`] revisions.
    Embedded,
    /// etcd, once the changes are past the server's in-memory buffer of recent
    /// revisions: compacted by the test (as `--auto-compaction-retention` would), or
    /// not, and then the host resumes from etcd's history.
    Etcd {
        server: Box<testbed::StoreServer>,
        compacted: bool,
    },
}

impl Log {
    /// How many revisions past the changes the log must move before they are gone.
    fn reach(&self) -> u64 {
        match self {
            Log::Embedded => RETENTION + nbdb::embedded::trim_step(RETENTION) + 1,
            Log::Etcd { .. } => nbdb::etcd::DEFAULT_BUFFER as u64 + 100,
        }
    }

    /// Whether the host's revision leaves the log (it then takes a new snapshot).
    fn gone(&self) -> bool {
        match self {
            Log::Embedded => true,
            Log::Etcd { compacted, .. } => *compacted,
        }
    }

    /// Drops what is older than `revision` from the log (etcd; the embedded store trims
    /// itself on commit).
    fn compact(&self, revision: u64) {
        let Log::Etcd {
            server: etcd,
            compacted: true,
        } = self
        else {
            return;
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let endpoint = format!("http://127.0.0.1:{}", etcd.port());
            let admin = nbdb::Etcd::connect(
                vec![endpoint],
                nbdb::etcd::DEFAULT_PREFIX,
                nbdb::etcd::DEFAULT_BUFFER,
            )
            .await
            .expect("etcd");
            admin.compact(revision).await.expect("compact");
        });
    }
}

#[test]
fn a_host_behind_the_compacted_log_catches_up_by_snapshot() {
    if !testbed::require_root("a_host_behind_the_compacted_log_catches_up_by_snapshot") {
        return;
    }
    catches_up(Log::Embedded);
}

#[test]
fn a_host_behind_compacted_etcd_catches_up_by_snapshot() {
    if !testbed::require_root("a_host_behind_compacted_etcd_catches_up_by_snapshot") {
        return;
    }
    catches_up(etcd(true));
}

/// The same without compaction: the host's resume reads a few thousand revisions of
/// etcd's history through the server (in responses over gRPC's default 4 MiB).
#[test]
fn a_host_behind_the_buffer_on_etcd_resumes_from_its_history() {
    if !testbed::require_root("a_host_behind_the_buffer_on_etcd_resumes_from_its_history") {
        return;
    }
    catches_up(etcd(false));
}

fn etcd(compacted: bool) -> Log {
    Log::Etcd {
        server: testbed::StoreServer::start(testbed::StoreKind::Etcd)
            .expect("etcd")
            .into(),
        compacted,
    }
}

fn catches_up(log: Log) {
    let retention = RETENTION.to_string();
    let mut args = vec!["--noauth-admin", "--nb-stall-timeout", "2"];
    let srv = match &log {
        Log::Embedded => {
            args.extend(["--nb-log-retention", &retention]);
            Server::start_args(&args)
        }
        Log::Etcd { server, .. } => Server::start_on_args(&server.url(), &args),
    };
    let nb = srv.nb_url.clone();
    let metrics = free_addr();
    let mut h = two_hosts_with(srv, &nb, [&["--metrics-listen", &metrics], &[]]);
    let (net_a, net_b) = (
        h.srv.network("a", "10.0.1.0/24"),
        h.srv.network("b", "10.0.2.0/24"),
    );
    // On A's network: a VM on A, and two on B (one to stay, one whose port goes while A
    // is stopped). B's wiring latency on a network of its own, as usual.
    let pa = h
        .srv
        .create("ports", "port", json!({"network_id": net_a["id"]}));
    let vm_a = h.plug(&pa, 0, 24);
    let (ip_a, id_a) = (addr(&pa).1, id(&pa));
    let (vm_b, ip_b) = h.vm(&net_a, 1);
    let gone = h
        .srv
        .create("ports", "port", json!({"network_id": net_a["id"]}));
    let _vm_gone = h.plug(&gone, 1, 24);
    let (gone_mac, gone_ip) = addr(&gone);
    let (mut vms, usual) = h.timed_vms(&net_b, 1, 2);
    assert!(vm_a.pings(&ip_b), "{}", h.dumps());
    assert!(vm_a.pings(&gone_ip), "{}", h.dumps());
    wait_until("A's flows for B's port", Duration::from_secs(10), || {
        flows(&h.ovs[0]).iter().any(|f| f.contains(&gone_mac))
    });
    // Ports on A's network that nobody plugs: renaming them changes A's topic only.
    let filler: Vec<String> = (0..6)
        .map(|_| {
            id(&h
                .srv
                .create("ports", "port", json!({"network_id": net_a["id"]})))
        })
        .collect();
    // A applied everything before it stops (a bundle left open for OVS's 10 s bundle
    // timeout is another fault; see stall_e2e).
    let now = revision(&h.srv);
    wait_until(
        "host A to apply everything",
        Duration::from_secs(30),
        || value(&scrape(&metrics), "dragonflow_controller_nb_revision") >= now as f64,
    );
    let compacted_before = value(
        &scrape(&metrics),
        "dragonflow_controller_resyncs_total{cause=\"nb_compacted\"",
    );

    let pid_a = h.ctl[0].0.id();
    signal(pid_a, "-STOP");
    let stopped = Instant::now();
    let (done, renames) = (AtomicBool::new(false), AtomicUsize::new(0));
    let mut during = Vec::new();
    // The revision once the changes were made, and the port plugged on A meanwhile.
    let mut changed: Option<(u64, String, testbed::Vm)> = None;
    let mut pushed = false;
    std::thread::scope(|s| {
        for pid in &filler {
            let (done, renames, url) = (&done, &renames, &h.srv.url);
            s.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                let mut i = 0;
                while !done.load(Ordering::SeqCst) && stopped.elapsed() < MAX_STOP {
                    // A's sockets fill after about a thousand, and the server cuts it.
                    pad_port(&agent, url, pid, i);
                    renames.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
            });
        }
        while stopped.elapsed() < MAX_STOP {
            // B wires new ports, one after another, all along.
            if during.len() < 4 {
                let t = Instant::now();
                vms.push(h.vm(&net_b, 1));
                during.push(t.elapsed());
            } else {
                std::thread::sleep(Duration::from_millis(200));
            }
            match &changed {
                // Once A is cut, nothing after the store's revision now reached it: the
                // changes it must learn from the snapshot.
                None if h
                    .srv
                    .log()
                    .lines()
                    .any(|l| l.contains(STALL_LINE) && l.contains("host:host-a")) =>
                {
                    let (st, v) = h
                        .srv
                        .call("DELETE", &format!("/v2.0/ports/{}", id(&gone)), None);
                    assert_eq!(st, 204, "{v}");
                    let body =
                        json!({"port": {"allowed_address_pairs": [{"ip_address": PAIR_IP}]}});
                    let (st, v) = h
                        .srv
                        .call("PUT", &format!("/v2.0/ports/{id_a}"), Some(body));
                    assert_eq!(st, 200, "{v}");
                    let late = h
                        .srv
                        .create("ports", "port", json!({"network_id": net_a["id"]}));
                    let (mac, ip) = addr(&late);
                    let vm = testbed::Vm::plug(
                        &h.ovs[0],
                        "br-int",
                        &id(&late),
                        &mac,
                        &format!("{ip}/24"),
                    )
                    .expect("plug");
                    changed = Some((revision(&h.srv), id(&late), vm));
                }
                // Then enough more that those changes leave the log.
                Some((at, _, _)) if revision(&h.srv) > at + log.reach() => {
                    log.compact(revision(&h.srv));
                    pushed = true;
                    break;
                }
                _ => {}
            }
        }
        done.store(true, Ordering::SeqCst);
    });
    let stop_for = stopped.elapsed();
    let renames = renames.load(Ordering::SeqCst);
    let end = revision(&h.srv);
    signal(pid_a, "-CONT");
    let resumed = Instant::now();
    eprintln!(
        "A stopped {:.1} s, {renames} renames on its network (store at revision {end}, the \
         changes {} revisions back); B's wiring: usual {usual:?}, while A was stopped \
         {during:?}",
        stop_for.as_secs_f64(),
        log.reach()
    );
    let Some((at, late, late_vm)) = changed else {
        panic!(
            "the server never cut the stopped host after {renames} renames:\n{}",
            h.srv.log_tail()
        );
    };
    assert!(
        pushed,
        "the log did not move {} revisions past {at} in {MAX_STOP:?}",
        log.reach()
    );
    assert!(!during.is_empty(), "B wired ports while A was stopped");
    // Generous: the machine is busy with the renames, but B never waits for A.
    let worst = during.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_secs(10),
        "B wired a port in {worst:?} while A was stopped (usual {usual:?})"
    );

    // A continues: its resume is refused, it takes a new snapshot, and the port plugged
    // while it was stopped (known only from that snapshot) turns ACTIVE.
    while !active_on(&h.srv, &late, "host-a") {
        assert!(
            resumed.elapsed() < catch_up(&log),
            "host A did not catch up within {:?} of SIGCONT:\n{}\nserver:\n{}",
            catch_up(&log),
            tail(&h.ctl[0].log()),
            h.srv.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let caught_up = resumed.elapsed();
    let ctl_log = h.ctl[0].log();
    let m = scrape(&metrics);
    let compacted = value(
        &m,
        "dragonflow_controller_resyncs_total{cause=\"nb_compacted\"",
    );
    if log.gone() {
        assert!(
            ctl_log.contains(SNAPSHOT_LINE),
            "host A did not take a new snapshot:\n{}",
            tail(&ctl_log)
        );
        // One refused resume, one resync: the stream is not asked again until the snapshot.
        assert_eq!(
            compacted,
            compacted_before + 1.0,
            "one nb_compacted resync for one catch-up:\n{m}"
        );
    } else {
        assert!(
            ctl_log.contains(RESUMED_LINE) && !ctl_log.contains(SNAPSHOT_LINE),
            "host A did not resume after its revision:\n{}",
            tail(&ctl_log)
        );
        assert_eq!(compacted, compacted_before, "{m}");
    }
    // A port is bound from a look-up, before a resume has read all it missed: the view
    // is current once it holds the store's revision of SIGCONT.
    let applied = || value(&scrape(&metrics), "dragonflow_controller_nb_revision");
    while applied() < end as f64 {
        assert!(
            resumed.elapsed() < catch_up(&log),
            "A's view is still behind the store's revision {end}: {}",
            applied()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let current = resumed.elapsed();
    // The deleted port's flows are gone, the updated one's pair is in.
    let t = Instant::now();
    let (stale, pair) = loop {
        let f = flows(&h.ovs[0]);
        let stale: Vec<String> = f
            .iter()
            .filter(|l| l.contains(&gone_mac))
            .cloned()
            .collect();
        let pair = f.iter().any(|l| l.contains(PAIR_IP));
        if (stale.is_empty() && pair) || t.elapsed() > Duration::from_secs(10) {
            break (stale, pair);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        stale.is_empty(),
        "the port deleted while A was stopped still has flows on A: {stale:#?}"
    );
    assert!(
        pair,
        "the pair added while A was stopped is not in A's flows"
    );
    assert!(vm_a.pings(&ip_b), "{}", h.dumps());
    let late_ip = addr(&h.srv.call("GET", &format!("/v2.0/ports/{late}"), None).1["port"]).1;
    assert!(late_vm.pings(&ip_b), "{}", h.dumps());
    assert!(vm_b.pings(&late_ip));
    eprintln!(
        "A {}; the port plugged while it was stopped was ACTIVE {:.1} s after SIGCONT, its \
         view at the store's revision {:.1} s after",
        if log.gone() {
            "took a new snapshot"
        } else {
            "resumed after its revision"
        },
        caught_up.as_secs_f64(),
        current.as_secs_f64()
    );
    common::trace::delivered(&h.srv, &h.ovs[0], &ip_a, &ip_b, None);
    common::trace::delivered(&h.srv, &h.ovs[0], &late_ip, &ip_b, None);

    // What the snapshot left on A is what a fresh compile installs on an emptied switch.
    std::thread::sleep(Duration::from_millis(300));
    let (caught, caught_groups) = (flows(&h.ovs[0]), groups(&h.ovs[0]));
    let _ = h.ctl[0].0.kill();
    let _ = h.ctl[0].0.wait();
    for what in ["del-flows", "del-groups"] {
        h.ovs[0]
            .ofctl(["-O", "OpenFlow13", what, "br-int"])
            .expect(what);
    }
    h.ctl[0] = Controller::start_nb(&nb, &h.ovs[0], "host-a", "192.0.2.1");
    assert!(late_vm.pings(&ip_b), "{}", h.dumps());
    let fresh = Instant::now();
    while flows(&h.ovs[0]) != caught && fresh.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let now = flows(&h.ovs[0]);
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|l| !b.contains(l)).cloned().collect()
    };
    assert!(
        now == caught,
        "A's flows after the snapshot differ from a fresh compile: only after the snapshot \
         {:#?}\nonly in the fresh compile {:#?}",
        only(&caught, &now),
        only(&now, &caught)
    );
    assert_eq!(groups(&h.ovs[0]), caught_groups);
}
