//! Watchers that never read, against a real `dragonflow server` with a short stall timeout
//! (`--nb-stall-timeout 2`), while thousands of networks are written: the server's memory
//! stays bounded, each stalled watcher is cut (its connection reset, the bytes the kernel
//! queued for it freed, a log line naming it and its revision), and a `RemoteWatch` that
//! stopped reading resumes afterwards with every change exactly once, in order.

mod common;

use common::Server;
use nbdb::Filter;
use nbdb::remote::Remote;
use neutron_api::nb_auth::Principal;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The stall timeout the server runs with, in seconds.
const STALL: u64 = 2;

/// What the server logs when it cuts a stalled watcher.
const STALL_LINE: &str = "took nothing for the stall timeout";

type Seen = Vec<(u64, String, String, bool)>;

/// The server-side TCP connections on local `port` (established), as (peer port, bytes
/// queued for sending), from /proc/net/tcp.
fn server_side(port: u16) -> Vec<(u16, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let hex_port = |a: &str| {
        a.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, remote, state, queues) = (f.get(1)?, f.get(2)?, f.get(3)?, f.get(4)?);
            let tx = u64::from_str_radix(queues.split(':').next()?, 16).ok()?;
            (hex_port(local)? == port && *state == "01")
                .then(|| (hex_port(remote).unwrap_or(0), tx))
        })
        .collect()
}

/// The server's resident memory, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// A watch opened by hand that never reads a byte of its answer.
fn never_reading(nb_addr: &str, after: u64) -> TcpStream {
    let mut s = TcpStream::connect(nb_addr).expect("connect");
    let token = common::token(Principal::Reader);
    write!(
        s,
        "GET /nb/v1/watch?after={after} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .expect("request");
    s
}

/// Follows the stream from `after`: reads until `stall` is set (at least one change), waits
/// while it is, then reads on up to revision `until` (from the channel). Returns what it
/// saw and how many times its stream was resumed.
fn follow(
    url: String,
    after: u64,
    stalled: &AtomicBool,
    until: std::sync::mpsc::Receiver<u64>,
) -> (Seen, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Bounded, so that a failing test ends rather than wait for this thread forever.
    let watching = async move {
        let token = common::token(Principal::Reader);
        let mut w = Remote::with_token(&url, Some(&token)).watch(after, Filter::default());
        let mut seen = Vec::new();
        let mut target = None;
        loop {
            if !seen.is_empty() && stalled.load(Ordering::SeqCst) {
                // Not reading: the server's writes pile up in the sockets, then stop.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            match tokio::time::timeout(Duration::from_millis(300), w.next()).await {
                Ok(Ok(c)) => seen.push((c.revision, c.table, c.id, c.value.is_some())),
                Ok(Err(e)) => panic!("watch failed: {e}"),
                Err(_) => {
                    if target.is_none() {
                        target = until.try_recv().ok();
                    }
                    if target.is_some_and(|t| w.revision() >= t) {
                        return (seen, w.resumes());
                    }
                }
            }
        }
    };
    rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(300), watching)
            .await
            .expect("the watch ends within 5 minutes")
    })
}

#[test]
fn a_watcher_that_never_reads_is_cut_after_the_stall_timeout_and_resumes_exactly_once() {
    let conf_dir = tempfile::tempdir().expect("tempdir");
    let conf = conf_dir.path().join("unlimited.toml");
    std::fs::write(&conf, testbed::bench::UNLIMITED_QUOTAS).expect("config");
    let stall = STALL.to_string();
    let srv = Server::start_args(&[
        "--noauth-admin",
        "--nb-stall-timeout",
        &stall,
        "--config",
        conf.to_str().expect("path"),
    ]);
    let nb_addr = srv.nb_url.trim_start_matches("http://").to_string();
    let nb_port: u16 = nb_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let pid = srv.pid().expect("pid");
    let (_, v) = srv.nb_call("GET", "/nb/v1/revision", None);
    let start = v["revision"].as_u64().expect("revision");

    // A watcher that reads its first change and then stops reading.
    let stalled = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel();
    let base_rss = rss_kb(pid);
    let raw: Vec<TcpStream> = (0..4).map(|_| never_reading(&nb_addr, start)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let raw_ports: Vec<u16> = raw
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect();
    assert_eq!(
        server_side(nb_port)
            .iter()
            .filter(|(p, _)| raw_ports.contains(p))
            .count(),
        4,
        "the never-reading watchers are connected"
    );

    std::thread::scope(|s| {
        let stalled = &stalled;
        let follower = {
            let url = srv.nb_url.clone();
            s.spawn(move || follow(url, start, stalled, rx))
        };
        // Long names and descriptions: about 1 kB a change, so the sockets fill sooner.
        let long = "x".repeat(250);
        let write = |agent: &ureq::Agent, name: String| {
            let body = json!({"network": {"name": name, "description": long}});
            let r = agent
                .post(&format!("{}/v2.0/networks", srv.url))
                .send_json(&body)
                .expect("network");
            assert_eq!(r.status().as_u16(), 201);
        };
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        write(&agent, format!("first-{}", "y".repeat(200)));
        std::thread::sleep(Duration::from_millis(500));
        stalled.store(true, Ordering::SeqCst);

        // Write until every never-reading watcher was cut (a stalled watcher costs the
        // server nothing once cut), or give up.
        let (written, cut) = (AtomicUsize::new(0), AtomicBool::new(false));
        let (mut peak_queued, mut peak_rss) = (0u64, base_rss);
        const MAX_WRITES: usize = 15_000;
        let began = Instant::now();
        std::thread::scope(|w| {
            for t in 0..4 {
                let (written, cut, write) = (&written, &cut, &write);
                let long = &long;
                w.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                    let mut i = 0;
                    while !cut.load(Ordering::SeqCst)
                        && written.fetch_add(1, Ordering::SeqCst) < MAX_WRITES
                    {
                        write(
                            &agent,
                            format!("w{t}-{i}-{long}").chars().take(255).collect(),
                        );
                        i += 1;
                    }
                });
            }
            while !cut.load(Ordering::SeqCst) && written.load(Ordering::SeqCst) < MAX_WRITES {
                std::thread::sleep(Duration::from_millis(200));
                let conns = server_side(nb_port);
                let queued: u64 = conns
                    .iter()
                    .filter(|(p, _)| raw_ports.contains(p))
                    .map(|(_, q)| q)
                    .sum();
                peak_queued = peak_queued.max(queued);
                peak_rss = peak_rss.max(rss_kb(pid));
                // Every hand-made watcher is gone, and the RemoteWatch was cut too.
                if !conns.iter().any(|(p, _)| raw_ports.contains(p))
                    && srv.log().matches(STALL_LINE).count() >= 5
                {
                    cut.store(true, Ordering::SeqCst);
                }
            }
        });
        let written = written.load(Ordering::SeqCst).min(MAX_WRITES);
        eprintln!(
            "{written} networks in {:.1} s; server RSS {base_rss} kB before, peak {peak_rss} kB \
             (+{} kB); peak bytes queued in the kernel for the 4 stalled watchers: {peak_queued}",
            began.elapsed().as_secs_f64(),
            peak_rss - base_rss
        );
        if !cut.load(Ordering::SeqCst) {
            // Let the follower end before failing (the scope waits for it).
            stalled.store(false, Ordering::SeqCst);
            let _ = tx.send(0);
        }
        assert!(
            cut.load(Ordering::SeqCst),
            "after {written} writes the never-reading watchers are still connected: {:?}\n{}",
            server_side(nb_port),
            srv.log_tail()
        );
        // Bounded: the server's own memory did not take the stalled watchers' stream (10,000s
        // of changes, 1 kB each, four times over).
        assert!(
            peak_rss - base_rss < 150_000,
            "server RSS grew by {} kB",
            peak_rss - base_rss
        );
        // Cut, not just idle: the watcher's socket was reset.
        for mut s in raw {
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut buf = vec![0u8; 1 << 20];
            let ended = loop {
                match s.read(&mut buf) {
                    Ok(0) => break "closed",
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
                    Err(e) => panic!("the stalled watcher's connection was not cut: {e}"),
                }
            };
            assert_eq!(ended, "reset", "a stalled watcher is reset");
        }
        let log = srv.log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(STALL_LINE)).collect();
        assert!(
            lines.len() >= 5,
            "each stalled watcher (4 by hand, 1 RemoteWatch) is logged: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .all(|l| l.contains("reader") && l.contains("revision")),
            "the log line names the watcher and its revision: {lines:?}"
        );

        // The RemoteWatch reads again: it resumes after its revision.
        stalled.store(false, Ordering::SeqCst);
        let (_, v) = srv.nb_call("GET", "/nb/v1/revision", None);
        let last = v["revision"].as_u64().expect("revision");
        tx.send(last).expect("send");
        let (seen, resumes) = follower.join().expect("follower");
        assert!(resumes >= 1, "the stalled RemoteWatch was cut and resumed");
        let (tx2, rx2) = std::sync::mpsc::channel();
        tx2.send(last).expect("send");
        let (reference, _) = follow(srv.nb_url.clone(), start, &AtomicBool::new(false), rx2);
        assert!(
            reference.len() >= written * 3,
            "each network write is 3 changes: {} for {written}",
            reference.len()
        );
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "in order");
        assert_eq!(seen.len(), reference.len(), "every change exactly once");
        assert!(seen == reference, "the same sequence as an unbroken watch");
    });
}
