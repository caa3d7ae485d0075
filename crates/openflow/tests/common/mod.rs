//! Helpers shared by the real-OVS tests.
#![allow(dead_code)]

use std::io::Write;
use std::process::Command;

/// Whether tests that only need the OVS tools (not a running switch) can run.
pub fn can_use_ovs_tools(test: &str) -> bool {
    if testbed::have_ovs() {
        return true;
    }
    // Without OVS: a root machine is a broken set-up (require_root asserts); else skip.
    testbed::require_root(test)
}

/// Runs `ovs-ofctl ofp-parse` on raw OpenFlow bytes and returns its text.
pub fn ofp_parse(bytes: &[u8]) -> String {
    let mut f = tempfile::NamedTempFile::new().expect("tempfile");
    f.write_all(bytes).expect("write");
    let out = Command::new("ovs-ofctl")
        .arg("ofp-parse")
        .arg(f.path())
        .output()
        .expect("run ovs-ofctl");
    assert!(
        out.status.success(),
        "ofp-parse failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

use openflow::{FrameReader, Message, XidAllocator};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A blocking OpenFlow connection over a unix socket, for tests.
pub struct Conn {
    pub sock: UnixStream,
    pub frames: FrameReader,
    pub xids: XidAllocator,
    /// Messages received while waiting for something else.
    pub backlog: Vec<(u32, Message)>,
}

impl Conn {
    /// Connects and does hello (OpenFlow 1.3).
    pub fn connect(path: &Path) -> Conn {
        let sock = UnixStream::connect(path).expect("connect mgmt socket");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut c = Conn {
            sock,
            frames: FrameReader::new(),
            xids: XidAllocator::new(),
            backlog: Vec::new(),
        };
        c.send(&Message::Hello(openflow::switch::Hello::of13()));
        match c.recv() {
            (_, Message::Hello(h)) => assert!(h.supports(4), "switch does not speak 1.3: {h:?}"),
            other => panic!("expected hello, got {other:?}"),
        }
        c
    }

    /// Sends a message with a fresh xid; returns the xid.
    pub fn send(&mut self, m: &Message) -> u32 {
        let xid = self.xids.next_xid();
        let buf = m.to_vec(xid).expect("encode");
        self.sock.write_all(&buf).expect("write");
        xid
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, buf: &[u8]) {
        self.sock.write_all(buf).expect("write");
    }

    /// Receives the next message (answering echo requests).
    pub fn recv(&mut self) -> (u32, Message) {
        loop {
            if let Some(f) = self.frames.next_frame().expect("framing") {
                let (xid, m) = Message::decode(f).expect("decode message from OVS");
                if let Message::EchoRequest(d) = &m {
                    let b = Message::EchoReply(d.clone()).to_vec(xid).expect("encode");
                    self.sock.write_all(&b).expect("write");
                    continue;
                }
                return (xid, m);
            }
            let mut buf = [0u8; 65536];
            let n = self.sock.read(&mut buf).expect("read from OVS");
            assert!(n > 0, "OVS closed the connection");
            self.frames.extend(buf.get(..n).unwrap_or(&[]));
        }
    }

    /// Receives until `pred` matches, keeping other messages in the backlog.
    pub fn recv_until(&mut self, mut pred: impl FnMut(u32, &Message) -> bool) -> (u32, Message) {
        if let Some(i) = self.backlog.iter().position(|(x, m)| pred(*x, m)) {
            return self.backlog.remove(i);
        }
        loop {
            let (x, m) = self.recv();
            if pred(x, &m) {
                return (x, m);
            }
            self.backlog.push((x, m));
        }
    }

    /// Sends a barrier and waits for its reply; returns every message received before it
    /// that answers an earlier xid (errors, replies).
    pub fn barrier(&mut self) -> Vec<(u32, Message)> {
        let xid = self.send(&Message::BarrierRequest);
        let mut before = Vec::new();
        loop {
            let (x, m) = self.recv();
            if x == xid && m == Message::BarrierReply {
                return before;
            }
            before.push((x, m));
        }
    }

    /// Sends `m` then a barrier; panics on any error reply.
    pub fn send_ok(&mut self, m: &Message) {
        self.send(m);
        let got = self.barrier();
        assert!(
            got.iter().all(|(_, m)| !matches!(m, Message::Error(_))),
            "switch said {got:?}"
        );
    }
}

/// Removes duration/n_packets/n_bytes/idle_age from `ovs-ofctl dump-flows` text and drops
/// the reply header line, so flows compare across runs.
pub fn normalise_dump(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .filter(|l| !l.contains("reply"))
        .map(|l| {
            l.trim()
                .split(", ")
                .filter(|p| {
                    !(p.starts_with("duration=")
                        || p.starts_with("n_packets=")
                        || p.starts_with("n_bytes=")
                        || p.starts_with("idle_age=")
                        || p.starts_with("hard_age="))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}
