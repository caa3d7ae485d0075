//! BGP end-to-end helpers (tests/bgp_e2e.rs and benches/bgp.rs): bird2 in a namespace on
//! an "underlay" veth (198.18.25.0/24, also the external network's subnet, so every next
//! hop is directly connected for bird), a `dragonflow bgp` process, and a tenant subnet
//! behind a router in the external network's address scope.

use super::Server;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SPEAKER_IP: &str = "198.18.25.1";
/// A second speaker process's address (bird's protocol `df2`), bound with `--local-address`.
pub const SPEAKER2_IP: &str = "198.18.25.3";
pub const BIRD_IP: &str = "198.18.25.2";
pub const HOST_A: &str = "198.18.25.11";
pub const HOST_B: &str = "198.18.25.12";
/// FRR's bgpd, beside bird in its namespace (a second peer implementation, AS 65001).
pub const FRR_IP: &str = "198.18.25.4";
/// The second session's ends (bird's protocol `df6`, IPv6 routes with IPv6 next hops).
pub const SPEAKER_IP6: &str = "fd00:25::1";
pub const BIRD_IP6: &str = "fd00:25::2";

pub struct Bird {
    ns: testbed::Netns,
    child: Child,
    sock: String,
    dir: tempfile::TempDir,
}

impl Bird {
    pub fn start(link: &str) -> Bird {
        let ns = testbed::Netns::new("bgp-bird").expect("netns");
        testbed::veth(link, None, "eth0", Some(&ns)).expect("veth");
        run(
            "ip",
            &["addr", "add", &format!("{SPEAKER_IP}/24"), "dev", link],
        );
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{SPEAKER_IP6}/64"),
                "dev",
                link,
                "nodad",
            ],
        );
        run(
            "ip",
            &["addr", "add", &format!("{SPEAKER2_IP}/24"), "dev", link],
        );
        run("ip", &["link", "set", link, "up"]);
        ns.ip(["addr", "add", &format!("{BIRD_IP}/24"), "dev", "eth0"])
            .expect("addr");
        ns.ip([
            "addr",
            "add",
            &format!("{BIRD_IP6}/64"),
            "dev",
            "eth0",
            "nodad",
        ])
        .expect("addr6");
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
                 protocol direct {{ ipv4; ipv6; interface \"eth0\"; }}\n\
                 protocol bgp df {{\n  local {BIRD_IP} as 65000;\n  neighbor {SPEAKER_IP} as 64512;\n  passive on;\n  strict bind on;\n  hold time 9;\n{password}  ipv4 {{ import all; export none; }};\n}}\n\
                 protocol bgp df2 {{\n  local {BIRD_IP} as 65000;\n  neighbor {SPEAKER2_IP} as 64512;\n  passive on;\n  strict bind on;\n  hold time 9;\n  ipv4 {{ import all; export none; }};\n}}\n\
                 protocol bgp df6 {{\n  local {BIRD_IP6} as 65000;\n  neighbor {SPEAKER_IP6} as 64512;\n  passive on;\n  strict bind on;\n  hold time 9;\n  ipv6 {{ import all; export none; }};\n}}\n"
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
    pub fn restart(&mut self, password: Option<&str>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.sock);
        self.child = Self::spawn(&self.ns, &self.dir, &self.sock, password);
    }

    /// `birdc show route`: prefix → next hop, for the routes learnt over the IPv4 session.
    pub fn routes(&self) -> BTreeMap<String, String> {
        self.routes_of("df")
    }

    /// The same for bird's protocol `proto` (`df6`: the IPv6 session).
    pub fn routes_of(&self, proto: &str) -> BTreeMap<String, String> {
        let out = Command::new("birdc")
            .args(["-s", &self.sock, "show", "route", "protocol", proto])
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
    pub fn wait(&self, what: &str, check: impl Fn(&BTreeMap<String, String>) -> bool) -> Duration {
        self.wait_on("df", what, check)
    }

    /// [`Bird::wait`] for protocol `proto`.
    pub fn wait_on(
        &self,
        proto: &str,
        what: &str,
        check: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let r = self.routes_of(proto);
            if check(&r) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what}: bird has {r:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// FRR's bgpd in bird's namespace, on [`FRR_IP`], passive towards the speaker at
/// [`SPEAKER_IP`]: no zebra (it installs nothing), its vty on a socket in its directory.
pub struct Frr {
    child: Child,
    dir: tempfile::TempDir,
}

impl Frr {
    pub fn start(bird: &Bird) -> Frr {
        bird.ns
            .ip(["addr", "add", &format!("{FRR_IP}/24"), "dev", "eth0"])
            .expect("FRR's address");
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("bgpd.conf");
        std::fs::write(
            &conf,
            format!(
                "frr defaults traditional\nhostname frr\n!\nrouter bgp 65001\n bgp router-id {FRR_IP}\n no bgp ebgp-requires-policy\n neighbor {SPEAKER_IP} remote-as 64512\n neighbor {SPEAKER_IP} passive\n neighbor {SPEAKER_IP} timers 3 9\n!\n"
            ),
        )
        .expect("bgpd.conf");
        let d = dir.path().display().to_string();
        let child = bird
            .ns
            .command([
                "/usr/lib/frr/bgpd",
                "-f",
                &conf.display().to_string(),
                "-i",
                &format!("{d}/bgpd.pid"),
                "--vty_socket",
                &d,
                "-P",
                "0",
                "-Z",
                "-S",
                "-l",
                FRR_IP,
                "--log",
                &format!("file:{d}/bgpd.log"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bgpd (scripts/setup installs frr)");
        Frr { child, dir }
    }

    /// `show bgp ipv4 unicast json`: prefix → next hop of its best path.
    pub fn routes(&self) -> BTreeMap<String, String> {
        let out = Command::new("vtysh")
            .args(["--vty_socket", &self.dir.path().display().to_string()])
            .args(["-d", "bgpd", "-c", "show bgp ipv4 unicast json"])
            .output()
            .expect("vtysh");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let mut routes = BTreeMap::new();
        for (prefix, paths) in v["routes"].as_object().into_iter().flatten() {
            for p in paths.as_array().into_iter().flatten() {
                if p["bestpath"] == true || p["bestpath"]["overall"] == true {
                    let nh = p["nexthops"][0]["ip"].as_str().unwrap_or_default();
                    routes.insert(prefix.clone(), nh.to_string());
                }
            }
        }
        routes
    }

    /// Waits until `check` holds for FRR's best routes; the time it took.
    pub fn wait(&self, what: &str, check: impl Fn(&BTreeMap<String, String>) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            let r = self.routes();
            if check(&r) {
                return start.elapsed();
            }
            let log = std::fs::read_to_string(self.dir.path().join("bgpd.log")).unwrap_or_default();
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what}: FRR has {r:?}\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.ns;
    }
}

pub fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().expect(cmd);
    assert!(st.success(), "{cmd} {args:?}");
}

pub struct Speaker(Child);

impl Speaker {
    pub fn start(srv: &Server, token_file: &std::path::Path) -> Speaker {
        Self::start_as(srv, token_file, "bgp-host", SPEAKER_IP, &[])
    }

    /// A speaker process on `host` with BGP identifier `router_id`, and `extra` arguments.
    pub fn start_as(
        srv: &Server,
        token_file: &std::path::Path,
        host: &str,
        router_id: &str,
        extra: &[&str],
    ) -> Speaker {
        Speaker(
            Command::new(env!("CARGO_BIN_EXE_dragonflow"))
                .args([
                    "bgp",
                    "--nb",
                    &srv.nb_url,
                    "--nb-token-file",
                    &token_file.display().to_string(),
                    "--host",
                    host,
                    "--router-id",
                    router_id,
                    "--hold-time",
                    "9",
                    "--connect-retry",
                    "1",
                    "--report-interval",
                    "1",
                ])
                .args(extra)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("dragonflow bgp"),
        )
    }
}

impl Speaker {
    /// The speaker's process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// What [`tenant`] made.
pub struct Tenant {
    pub ext: Value,
    pub net: Value,
    /// The tenant subnet.
    pub cidr: String,
    /// The router's gateway address on the external network: the subnet's next hop.
    pub gw: String,
}

/// An external network and a tenant subnet in one address scope, joined by a router.
pub fn tenant(srv: &Server) -> Tenant {
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
    Tenant { ext, net, cidr, gw }
}

/// Hosts A and B as chassis records (their underlay addresses are the next hops).
pub fn hosts(srv: &Server) {
    for (name, ip) in [("host-a", HOST_A), ("host-b", HOST_B)] {
        let (st, v) = srv.nb_call(
            "PUT",
            &format!("/nb/v1/chassis/{name}"),
            Some(json!({"ip": ip, "tunnel_types": ["geneve"]})),
        );
        assert!(st < 300, "{v}");
    }
}

/// One heartbeat of `host`'s controller (as the admin writes it: the test has no
/// controller), alive for the server's `agent_down_time`.
pub fn controller_beat(srv: &Server, host: &str) {
    let report = json!({"agent_type": "DF local controller", "binary": "dragonflow-controller",
        "host": host, "topic": "N/A", "availability_zone": "nova", "version": "test",
        "started_at": "2026-01-01T00:00:00Z", "applied_revision": 0, "configurations": {}});
    let (st, v) = srv.nb_call("PUT", &format!("/nb/v1/agents/{host}"), Some(report));
    assert!(st < 300, "{v}");
}

/// Removes the underlay link from this namespace at the end (the namespace's end goes
/// with the namespace).
pub struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

pub fn scopeguard(link: String) -> LinkGuard {
    LinkGuard(link)
}
