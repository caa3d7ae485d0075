//! A real ISC `dhclient` configured by our DHCP server code: two network namespaces joined
//! by a veth pair; in the server one, a small Python relay moves raw frames between the
//! veth (AF_PACKET) and this test, which answers with `dhcpv4::reply_frame`. The client's
//! script dumps what dhclient accepted. dhclient checks our IP and UDP checksums itself.
//!
//! Needs root, `ip`, `dhclient` and `python3`; skipped (passing) when any is missing.

use packet::EthernetAddress;
use packet::dhcpv4::{self, ClasslessRoute, DhcpRepr, MessageType, Op};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RELAY: &str = r#"
import os, select, socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
def read_exact(n):
    b = b''
    while len(b) < n:
        c = os.read(0, n - len(b))
        if not c:
            sys.exit(0)
        b += c
    return b
while True:
    r, _, _ = select.select([s, 0], [], [])
    if s in r:
        f, addr = s.recvfrom(65535)
        # IPv4, UDP, destination port 67, not our own transmissions.
        if addr[2] != socket.PACKET_OUTGOING and len(f) > 38 and f[12:14] == b'\x08\x00' and f[23] == 17 and f[36:38] == b'\x00\x43':
            os.write(1, struct.pack('>I', len(f)) + f)
    if 0 in r:
        n = struct.unpack('>I', read_exact(4))[0]
        s.send(read_exact(n))
"#;

const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0x77, 2]);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 5);

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Cleanup {
    namespaces: Vec<String>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            sh(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn answer(request: &DhcpRepr) -> Option<DhcpRepr> {
    let ty = match request.message_type {
        MessageType::Discover => MessageType::Offer,
        MessageType::Request => MessageType::Ack,
        _ => return None,
    };
    let mut r = DhcpRepr::reply_to(request, ty, CLIENT_IP, SERVER_IP);
    r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
    r.router = vec![Ipv4Addr::new(10, 77, 0, 1)];
    r.dns_servers = vec![Ipv4Addr::new(10, 77, 0, 3), Ipv4Addr::new(10, 77, 0, 4)];
    r.domain_name = Some("openstacklocal".into());
    r.hostname = Some("host-10-77-0-5".into());
    r.lease_time = Some(600);
    r.renewal_time = Some(300);
    r.rebinding_time = Some(525);
    r.interface_mtu = Some(1400);
    r.classless_routes = vec![
        ClasslessRoute::new(Ipv4Addr::new(169, 254, 169, 254), 32, SERVER_IP),
        ClasslessRoute::new(Ipv4Addr::new(10, 50, 0, 0), 16, Ipv4Addr::new(10, 77, 0, 1)),
        ClasslessRoute::new(Ipv4Addr::UNSPECIFIED, 0, Ipv4Addr::new(10, 77, 0, 1)),
    ];
    Some(r)
}

#[test]
fn dhclient_accepts_our_offer_and_ack() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !root || !sh(&["which", "dhclient"]) || !sh(&["which", "python3"]) {
        eprintln!("skipped: needs root, dhclient and python3");
        return;
    }
    let id = std::process::id();
    let (nc, ns) = (format!("pkdh-c-{id}"), format!("pkdh-s-{id}"));
    let (ic, is) = (format!("pkd{id}c"), format!("pkd{id}s"));
    let dir = std::env::temp_dir().join(format!("packet-dhclient-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut guard = Cleanup {
        namespaces: vec![],
        children: vec![],
        dir: dir.clone(),
    };
    for n in [&nc, &ns] {
        if !sh(&["ip", "netns", "add", n]) {
            eprintln!("skipped: cannot create network namespaces");
            return;
        }
        guard.namespaces.push(n.clone());
    }
    let mac = SERVER_MAC.to_string();
    for cmd in [
        vec![
            "ip", "link", "add", &ic, "netns", &nc, "type", "veth", "peer", "name", &is, "netns",
            &ns,
        ],
        vec!["ip", "-n", &ns, "link", "set", &is, "address", &mac],
        vec!["ip", "-n", &ns, "addr", "add", "10.77.0.2/24", "dev", &is],
        vec!["ip", "-n", &ns, "link", "set", &is, "up"],
        vec!["ip", "-n", &nc, "link", "set", &ic, "up"],
    ] {
        assert!(sh(&cmd), "{cmd:?}");
    }

    let mut relay = Command::new("ip")
        .args(["netns", "exec", &ns, "python3", "-u", "-c", RELAY, &is])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut from_relay, mut to_relay) =
        (relay.stdout.take().unwrap(), relay.stdin.take().unwrap());
    guard.children.push(relay);
    let server = std::thread::spawn(move || {
        let mut answered = Vec::new();
        let mut len = [0u8; 4];
        while from_relay.read_exact(&mut len).is_ok() {
            let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
            if from_relay.read_exact(&mut frame).is_err() {
                break;
            }
            let Ok(parsed) = dhcpv4::parse_frame(&frame) else {
                continue;
            };
            if parsed.dhcp.op != Op::Request {
                continue;
            }
            let Some(reply) = answer(&parsed.dhcp) else {
                continue;
            };
            let out = dhcpv4::reply_frame(&reply, SERVER_MAC, SERVER_IP, None).unwrap();
            answered.push((parsed.dhcp.message_type, reply.message_type));
            let mut msg = (out.len() as u32).to_be_bytes().to_vec();
            msg.extend_from_slice(&out);
            if to_relay
                .write_all(&msg)
                .and_then(|_| to_relay.flush())
                .is_err()
            {
                break;
            }
        }
        answered
    });
    // Give the relay time to bind before the client starts.
    std::thread::sleep(Duration::from_millis(500));

    let result = dir.join("bound.env");
    let script = dir.join("script.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$reason\" = BOUND ] && env > {0}.tmp && mv {0}.tmp {0}\nexit 0\n",
            result.display()
        ),
    )
    .unwrap();
    assert!(sh(&["chmod", "+x", script.to_str().unwrap()]));
    let client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &nc,
            "dhclient",
            "-d",
            "-1",
            "-sf",
            script.to_str().unwrap(),
        ])
        .args([
            "-pf",
            dir.join("pid").to_str().unwrap(),
            "-lf",
            dir.join("leases").to_str().unwrap(),
            &ic,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    guard.children.push(client);

    let deadline = Instant::now() + Duration::from_secs(30);
    while !result.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let env = std::fs::read_to_string(&result).expect("dhclient never reached BOUND");
    drop(guard);
    let answered = server.join().unwrap();
    assert_eq!(
        answered,
        [
            (MessageType::Discover, MessageType::Offer),
            (MessageType::Request, MessageType::Ack)
        ]
    );

    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(|v| v.trim_matches('\'').to_string())
            .unwrap_or_else(|| panic!("{k} missing from:\n{env}"))
    };
    assert_eq!(get("new_ip_address"), "10.77.0.5");
    assert_eq!(get("new_subnet_mask"), "255.255.255.0");
    assert_eq!(get("new_routers"), "10.77.0.1");
    assert_eq!(get("new_domain_name_servers"), "10.77.0.3 10.77.0.4");
    assert_eq!(get("new_domain_name"), "openstacklocal");
    assert_eq!(get("new_host_name"), "host-10-77-0-5");
    assert_eq!(get("new_interface_mtu"), "1400");
    assert_eq!(get("new_dhcp_lease_time"), "600");
    assert_eq!(get("new_dhcp_renewal_time"), "300");
    assert_eq!(get("new_dhcp_rebinding_time"), "525");
    assert_eq!(get("new_dhcp_server_identifier"), "10.77.0.2");
    assert_eq!(
        get("new_rfc3442_classless_static_routes"),
        "32 169 254 169 254 10 77 0 2 16 10 50 10 77 0 1 0 10 77 0 1"
    );
}
