//! BGP dynamic routing end to end, control plane: a real `dragonflow server`, a real
//! `dragonflow bgp`, and bird2 in a namespace on the "underlay" (a veth to this namespace,
//! 198.18.25.0/24, which is also the external network's subnet, so every next hop is
//! directly connected for bird). Through the API: a router with its gateway on the
//! external network and a tenant subnet in the same address scope, a speaker and a peer.
//! `birdc show route` then shows the tenant /24 via the router's gateway address; a
//! floating IP associated with a port bound to host A adds a /32 via A's underlay
//! address, moving the port to host B moves the next hop, disassociating withdraws it
//! within a second, restarting the speaker advertises everything again, and so does
//! restarting bird; with TCP MD5 (bird's `password`), a peer with the right password gets
//! the session and one with a wrong password none. The hosts are
//! chassis records (no OVS here: what is advertised depends on the model only).

mod common;

use common::Server;
use neutron_api::nb_auth::Principal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SPEAKER_IP: &str = "198.18.25.1";
const BIRD_IP: &str = "198.18.25.2";
const HOST_A: &str = "198.18.25.11";
const HOST_B: &str = "198.18.25.12";

struct Bird {
    ns: testbed::Netns,
    child: Child,
    sock: String,
    dir: tempfile::TempDir,
}

impl Bird {
    fn start(link: &str) -> Bird {
        let ns = testbed::Netns::new("bgp-bird").expect("netns");
        testbed::veth(link, None, "eth0", Some(&ns)).expect("veth");
        run(
            "ip",
            &["addr", "add", &format!("{SPEAKER_IP}/24"), "dev", link],
        );
        run("ip", &["link", "set", link, "up"]);
        ns.ip(["addr", "add", &format!("{BIRD_IP}/24"), "dev", "eth0"])
            .expect("addr");
        ns.ip(["link", "set", "eth0", "up"]).expect("up");
        ns.ip(["link", "set", "lo", "up"]).expect("lo");
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("bird.ctl").display().to_string();
        let child = Self::spawn(&ns, &dir, &sock, None);
        Bird {
            ns,
            child,
            sock,
            dir,
        }
    }

    /// bird with its config in `dir`, asking the speaker for TCP MD5 with `password`.
    fn spawn(
        ns: &testbed::Netns,
        dir: &tempfile::TempDir,
        sock: &str,
        password: Option<&str>,
    ) -> Child {
        let conf = dir.path().join("bird.conf");
        let password = password.map_or(String::new(), |p| format!("  password \"{p}\";\n"));
        std::fs::write(
            &conf,
            format!(
                "router id {BIRD_IP};\n\
                 protocol device {{}}\n\
                 protocol direct {{ ipv4; interface \"eth0\"; }}\n\
                 protocol bgp df {{\n  local {BIRD_IP} as 65000;\n  neighbor {SPEAKER_IP} as 64512;\n  passive on;\n  hold time 9;\n{password}  ipv4 {{ import all; export none; }};\n}}\n"
            ),
        )
        .expect("bird.conf");
        ns.command(["bird", "-f", "-c", &conf.display().to_string(), "-s", sock])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bird (scripts/setup installs bird2)")
    }

    /// Stops bird and starts it again (asking for MD5 with `password`, when given): it
    /// knows nothing until the speaker connects again.
    fn restart(&mut self, password: Option<&str>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.sock);
        self.child = Self::spawn(&self.ns, &self.dir, &self.sock, password);
    }

    /// `birdc show route`: prefix → next hop, for the routes learnt over BGP.
    fn routes(&self) -> BTreeMap<String, String> {
        let out = Command::new("birdc")
            .args(["-s", &self.sock, "show", "route", "protocol", "df"])
            .output()
            .expect("birdc");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut routes = BTreeMap::new();
        let mut current = None;
        for line in text.lines() {
            let first = line.split_whitespace().next().unwrap_or_default();
            if !line.starts_with(char::is_whitespace) && first.contains('/') {
                current = Some(first.to_string());
            }
            if let (Some(p), Some(i)) = (&current, line.find("via ")) {
                let nh = line[i + 4..].split_whitespace().next().unwrap_or_default();
                routes.insert(p.clone(), nh.to_string());
            }
        }
        routes
    }

    /// Waits until `check` holds for bird's routes; the time it took.
    fn wait(&self, what: &str, check: impl Fn(&BTreeMap<String, String>) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            let r = self.routes();
            if check(&r) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what}: bird has {r:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.ns;
    }
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().expect(cmd);
    assert!(st.success(), "{cmd} {args:?}");
}

struct Speaker(Child);

impl Speaker {
    fn start(srv: &Server, token_file: &std::path::Path) -> Speaker {
        Speaker(
            Command::new(env!("CARGO_BIN_EXE_dragonflow"))
                .args([
                    "bgp",
                    "--nb",
                    &srv.nb_url,
                    "--nb-token-file",
                    &token_file.display().to_string(),
                    "--host",
                    "bgp-host",
                    "--router-id",
                    SPEAKER_IP,
                    "--hold-time",
                    "9",
                    "--connect-retry",
                    "1",
                    "--report-interval",
                    "1",
                ])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("dragonflow bgp"),
        )
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

#[test]
fn bird_learns_tenant_networks_and_floating_ips_via_their_host() {
    let srv = Server::start();
    let link = format!("bgpv{}", std::process::id() % 10000);
    let mut bird = Bird::start(&link);
    let _cleanup = scopeguard(link.clone());

    // An address scope shared by the external subnet and the tenant subnet.
    let scope = srv.create(
        "address-scopes",
        "address_scope",
        json!({"name": "s", "ip_version": 4, "shared": true}),
    );
    let pool = |name: &str, prefix: &str| {
        srv.create("subnetpools", "subnetpool", json!({"name": name, "prefixes": [prefix], "address_scope_id": scope["id"], "shared": true}))
    };
    let ext_pool = pool("ext", "198.18.25.0/24");
    let tenant_pool = pool("tenant", "10.25.0.0/16");
    let ext = srv.create(
        "networks",
        "network",
        json!({"name": "public", "router:external": true}),
    );
    srv.create(
        "subnets",
        "subnet",
        json!({"network_id": ext["id"], "ip_version": 4, "cidr": "198.18.25.0/24",
        "subnetpool_id": ext_pool["id"], "gateway_ip": "198.18.25.254",
        "allocation_pools": [{"start": "198.18.25.100", "end": "198.18.25.200"}]}),
    );
    let net = srv.create("networks", "network", json!({"name": "tenant"}));
    let sub = srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4,
        "subnetpool_id": tenant_pool["id"], "prefixlen": 24}),
    );
    let router = srv.create(
        "routers",
        "router",
        json!({"name": "r", "external_gateway_info": {"network_id": ext["id"]}}),
    );
    let gw = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("gateway ip")
        .to_string();
    let (st, v) = srv.call(
        "PUT",
        &format!("/v2.0/routers/{}/add_router_interface", id(&router)),
        Some(json!({"subnet_id": sub["id"]})),
    );
    assert_eq!(st, 200, "{v}");
    let cidr = sub["cidr"].as_str().expect("cidr").to_string();

    // The speaker and its peer through the real `openstack bgp` commands.
    let speaker = srv.os(&[
        "bgp",
        "speaker",
        "create",
        "--local-as",
        "64512",
        "--ip-version",
        "4",
        "s1",
    ]);
    assert_eq!(speaker["local_as"], json!(64512), "{speaker}");
    let peer = srv.os(&[
        "bgp",
        "peer",
        "create",
        "--peer-ip",
        BIRD_IP,
        "--remote-as",
        "65000",
        "bird",
    ]);
    assert_eq!(peer["auth_type"], json!("none"), "{peer}");
    srv.os_ok(&["bgp", "speaker", "add", "peer", "s1", "bird"]);
    srv.os_ok(&["bgp", "speaker", "add", "network", "s1", "public"]);
    let base = format!("/v2.0/bgp-speakers/{}", id(&speaker));
    let (_, v) = srv.call("GET", &base, None);
    assert_eq!(v["bgp_speaker"]["peers"], json!([peer["id"]]), "{v}");

    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, common::token(Principal::Admin)).expect("token");
    let mut spk = Speaker::start(&srv, &token_file);

    let took = bird.wait("the tenant subnet via the gateway", |r| {
        r.get(&cidr) == Some(&gw)
    });
    eprintln!("tenant route in bird after {took:?}");

    // Two hosts (their chassis records) and a port bound to A.
    for (name, ip) in [("host-a", HOST_A), ("host-b", HOST_B)] {
        let (st, v) = srv.nb_call(
            "PUT",
            &format!("/nb/v1/chassis/{name}"),
            Some(json!({"ip": ip, "tunnel_types": ["geneve"]})),
        );
        assert!(st < 300, "{v}");
    }
    let port = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "binding:host_id": "host-a"}),
    );
    let fip = srv.create(
        "floatingips",
        "floatingip",
        json!({"floating_network_id": ext["id"]}),
    );
    let fip_addr = format!("{}/32", fip["floating_ip_address"].as_str().expect("fip"));
    let fip_uri = format!("/v2.0/floatingips/{}", id(&fip));
    let t = Instant::now();
    let (st, v) = srv.call(
        "PUT",
        &fip_uri,
        Some(json!({"floatingip": {"port_id": port["id"]}})),
    );
    assert_eq!(st, 200, "{v}");
    bird.wait("the floating IP via host A", |r| {
        r.get(&fip_addr).map(String::as_str) == Some(HOST_A)
    });
    eprintln!(
        "floating IP /32 in bird {:?} after the association",
        t.elapsed()
    );

    // The port moves to host B: so does the next hop.
    let (st, v) = srv.call(
        "PUT",
        &format!("/v2.0/ports/{}", id(&port)),
        Some(json!({"port": {"binding:host_id": "host-b"}})),
    );
    assert_eq!(st, 200, "{v}");
    bird.wait("the floating IP via host B", |r| {
        r.get(&fip_addr).map(String::as_str) == Some(HOST_B)
    });

    // Disassociated: withdrawn within a second.
    let t = Instant::now();
    let (st, v) = srv.call(
        "PUT",
        &fip_uri,
        Some(json!({"floatingip": {"port_id": null}})),
    );
    assert_eq!(st, 200, "{v}");
    bird.wait("the floating IP withdrawn", |r| !r.contains_key(&fip_addr));
    let withdrawn = t.elapsed();
    eprintln!("floating IP withdrawn from bird after {withdrawn:?}");
    assert!(withdrawn < Duration::from_secs(1), "{withdrawn:?}");
    assert_eq!(bird.routes().get(&cidr), Some(&gw));

    // The API says the same as bird, and so does the CLI.
    let (_, v) = srv.call("GET", &format!("{base}/get_advertised_routes"), None);
    assert_eq!(
        v["advertised_routes"],
        json!([{"destination": cidr, "next_hop": gw}])
    );
    let routes = srv.os(&["bgp", "speaker", "list", "advertised", "routes", "s1"]);
    assert_eq!(routes.as_array().map(Vec::len), Some(1), "{routes}");
    assert!(routes.to_string().contains(&cidr), "{routes}");

    // The agents API shows the speaker.
    let (_, v) = srv.call("GET", "/v2.0/agents?agent_type=DF%20BGP%20speaker", None);
    assert_eq!(v["agents"][0]["host"], json!("bgp-host"), "{v}");

    // A restarted speaker advertises everything again (bird dropped the session's routes).
    drop(spk);
    bird.wait("routes gone with the speaker", |r| r.is_empty());
    spk = Speaker::start(&srv, &token_file);
    bird.wait("the tenant subnet again", |r| r.get(&cidr) == Some(&gw));

    // A restarted bird learns everything again.
    bird.restart(None);
    bird.wait("the tenant subnet after bird's restart", |r| {
        r.get(&cidr) == Some(&gw)
    });

    // TCP MD5: bird asks for it; a peer with auth_type md5 and the right password gets
    // the session, a wrong password none (the kernels drop the unsigned or badly signed
    // segments), and the right one again brings the routes back.
    let md5 = srv.os(&[
        "bgp",
        "peer",
        "create",
        "--peer-ip",
        BIRD_IP,
        "--remote-as",
        "65000",
        "--auth-type",
        "md5",
        "--password",
        "s3cret",
        "bird-md5",
    ]);
    assert_eq!(md5["auth_type"], json!("md5"), "{md5}");
    srv.os_ok(&["bgp", "speaker", "remove", "peer", "s1", "bird"]);
    bird.restart(Some("s3cret"));
    srv.os_ok(&["bgp", "speaker", "add", "peer", "s1", "bird-md5"]);
    bird.wait("the tenant subnet over an MD5-signed session", |r| {
        r.get(&cidr) == Some(&gw)
    });
    srv.os_ok(&["bgp", "peer", "set", "--password", "wrong", "bird-md5"]);
    bird.restart(Some("s3cret"));
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        bird.routes().is_empty(),
        "no session with a wrong password: {:?}",
        bird.routes()
    );
    srv.os_ok(&["bgp", "peer", "set", "--password", "s3cret", "bird-md5"]);
    bird.wait("the routes with the right password again", |r| {
        r.get(&cidr) == Some(&gw)
    });
    drop(spk);
}

/// Removes the underlay link from this namespace at the end (the namespace's end goes
/// with the namespace).
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn scopeguard(link: String) -> LinkGuard {
    LinkGuard(link)
}
