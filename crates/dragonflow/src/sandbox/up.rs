//! `dragonflow sandbox up`: the checks before anything starts, then the steps, each printed
//! with its time (store and server, wire and outside, each host's OVS and controller, the
//! demo topology, plugging the VMs, DHCP, the live checks), recording everything in the
//! state file as it goes; on failure or Ctrl-C, what was started is removed.

use super::state::{self, State};
use super::{Db, Result, checks, down, host, print_check, topology};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use testbed::StoreKind;

/// Progress: "what... " then "ok (0.4 s)" on the same line.
struct Step(Instant);

/// Set by Ctrl-C during `up`: the next step stops, and what was started is removed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Catches Ctrl-C (the daemons, in their own process group, do not see it).
fn catch_interrupt() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
            INTERRUPTED.store(true, Ordering::Relaxed);
        }
    });
}

fn step(what: &str) -> Result<Step> {
    if interrupted() {
        return Err("interrupted".into());
    }
    print!("{what}... ");
    let _ = std::io::stdout().flush();
    Ok(Step(Instant::now()))
}

impl Step {
    fn part(&self, what: &str) {
        print!("{what}... ");
        let _ = std::io::stdout().flush();
    }
    fn ok(self) {
        println!("ok ({:.1} s)", self.0.elapsed().as_secs_f64());
    }
}

/// Everything `up` needs from the machine, checked before anything is started.
fn preflight(db: Db, port: u16) -> Result<()> {
    if !testbed::is_root() {
        return Err(
            "the sandbox needs root (network namespaces, Open vSwitch): run it with sudo".into(),
        );
    }
    if State::load().is_some() || state::lab().exists() {
        return Err("a sandbox is already running (or left over from a crash): run `dragonflow sandbox down` first".into());
    }
    let mut tools = vec![
        ("ovs-vswitchd", "openvswitch-switch"),
        ("ovsdb-server", "openvswitch-switch"),
        ("ovsdb-tool", "openvswitch-switch"),
        ("ovs-vsctl", "openvswitch-switch"),
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
        ("nc", "netcat-openbsd"),
        ("dhclient", "isc-dhcp-client"),
    ];
    match db {
        Db::Etcd => tools.push(("etcd", "etcd-server")),
        Db::Redis => tools.push(("redis-server", "redis-server")),
        Db::Embedded => {}
    }
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(t, _)| !testbed::have(t))
        .map(|(_, p)| *p)
        .collect();
    if !missing.is_empty() {
        let mut pkgs = missing.clone();
        pkgs.dedup();
        return Err(format!(
            "missing tools: install them with `apt-get install {}` (or run scripts/setup)",
            pkgs.join(" ")
        )
        .into());
    }
    if !Path::new(testbed::schema_path()).exists() {
        return Err(
            "Open vSwitch's schema is missing: reinstall openvswitch-common (or run scripts/setup)"
                .into(),
        );
    }
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        return Err(format!(
            "port {port} is in use (another dragonflow server?): stop it, or choose another with `--port`"
        )
        .into());
    }
    Ok(())
}

pub fn up(hosts: usize, db: Db, port: u16) -> Result<()> {
    preflight(db, port)?;
    let started = Instant::now();
    std::fs::create_dir_all(state::dir())
        .map_err(|e| format!("cannot create {}: {e}", state::DIR))?;
    let mut st = State::default();
    catch_interrupt();
    let result = build(&mut st, hosts, db, port);
    if let Err(e) = result {
        println!("failed");
        eprintln!("dragonflow sandbox: {e}");
        eprintln!("removing what was started");
        let _ = down(false);
        return Err("sandbox up failed (see above)".into());
    }
    println!();
    print!("{}", checks::table(&st.checks));
    println!(
        "sandbox up in {:.1} s: `dragonflow sandbox status`, `dragonflow sandbox exec vm1 -- ip addr`,\n\
         `dragonflow sandbox openstack network list`... and `dragonflow sandbox down` to remove it.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Starts everything and runs the checks, recording each thing made in `st`.
fn build(st: &mut State, hosts: usize, db: Db, port: u16) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I? {e}"))?;
    st.url = format!("http://127.0.0.1:{port}");
    st.nb_url = format!("http://127.0.0.1:{}", free_port()?);
    st.save()?;
    // The NB secret, made here so the hosts' tokens can be handed out before the server
    // is up; the admin token for `dragonflow db`.
    let (auth, _) = neutron_api::nb_auth::NbAuth::load_or_create(&state::nb_secret())?;
    super::write_token(
        &auth,
        &neutron_api::nb_auth::Principal::Admin,
        &state::nb_admin_token(),
    )?;

    let s = step("starting the store and the server")?;
    let server_db = start_store(st, db)?;
    start_server(st, &exe, port, &server_db)?;
    s.ok();

    let s = step("wiring the underlay and the external network")?;
    host::wire(st)?;
    host::outside(st)?;
    s.ok();

    for i in 0..hosts {
        let s = step(&format!("starting host {}/{hosts}: ovs", i + 1))?;
        host::start_ovs(st, i)?;
        s.part("controller");
        host::start_controller(st, i, &exe)?;
        st.save()?;
        s.ok();
    }

    let s = step(
        "creating the demo topology through the API (2 projects, 3 networks, 2 routers, 4 ports, a floating IP, security groups)",
    )?;
    let api = topology::Api::new(&st.url);
    let mut vms = topology::create(&api, hosts)?;
    s.ok();

    for vm in &vms {
        let s = step(&format!(
            "plugging {} ({}, {}) into {}",
            vm.name, vm.network, vm.ip, st.hosts[vm.host].name
        ))?;
        st.namespaces.push(vm.ns.clone());
        st.vms.push(vm.clone());
        st.save()?;
        host::plug(st, vm)?;
        let ok = testbed::wait_for(Duration::from_secs(30), || {
            api.get("port", &vm.port_id)
                .map(|p| p["status"] == "ACTIVE")
                .unwrap_or(false)
        });
        if !ok {
            return Err(format!(
                "{}'s port did not turn ACTIVE on {}: see {}",
                vm.name,
                st.hosts[vm.host].name,
                st.hosts[vm.host].ovs_dir.join("controller.log").display()
            )
            .into());
        }
        s.ok();
    }

    let s = step("addressing the VMs by DHCP (dhclient in each)")?;
    let t = Instant::now();
    address_vms(&mut vms)?;
    st.vms = vms.clone();
    let dhcp_seconds = t.elapsed().as_secs_f64();
    st.save()?;
    let fallback = vms.iter().filter(|v| v.addressing == "static").count();
    if fallback > 0 {
        s.part(&format!(
            "{fallback} without a lease, addressed statically so the other checks can run"
        ));
    }
    s.ok();

    if interrupted() {
        return Err("interrupted".into());
    }
    println!("running the checks:");
    let mut results = vec![checks::dhcp(st, dhcp_seconds)];
    print_check(&results[0]);
    results.extend(checks::run(st, print_check));
    if interrupted() {
        return Err("interrupted".into());
    }
    st.checks = results;
    st.ready = true;
    st.save()?;
    Ok(())
}

/// Starts etcd or Redis (detached, on free loopback ports) for `--db etcd|redis`, recorded
/// in `st`; returns the server's `--db`.
fn start_store(st: &mut State, db: Db) -> Result<String> {
    let kind = match db {
        Db::Embedded => {
            st.db = "embedded".into();
            st.nb = st.nb_url.clone();
            return Ok(format!(
                "embedded:{}",
                state::dir().join("nb.redb").display()
            ));
        }
        Db::Etcd => StoreKind::Etcd,
        Db::Redis => StoreKind::Redis,
    };
    st.db = if kind == StoreKind::Etcd {
        "etcd"
    } else {
        "redis"
    }
    .into();
    let lab = state::lab();
    let srv = lab.store(kind, "store", &lab.dir().join("store").join("store.log"))?;
    if let Some(pid) = srv.pid() {
        st.processes.push((st.db.clone(), pid));
    }
    st.nb = srv.url();
    st.save()?;
    Ok(st.nb.clone())
}

/// Starts `dragonflow server` on `port` with the store `db` (detached, logging to
/// `server.log`), recorded in `st`, and waits until it answers.
fn start_server(st: &mut State, exe: &Path, port: u16, db: &str) -> Result<()> {
    let log = state::dir().join("server.log");
    let octavia = format!("127.0.0.1:{}", port.wrapping_add(180));
    let launch = |st: &mut State| -> Result<u32> {
        let mut c = Command::new(exe);
        c.args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
            db,
            "--nb-listen",
            st.nb_url.trim_start_matches("http://"),
            // Octavia's port beside Neutron's (9876 beside 9696).
            "--octavia-listen",
            octavia.as_str(),
            // A single-operator cloud: the demo and `sandbox openstack` send no project.
            "--noauth-admin",
        ])
        .arg("--nb-secret-file")
        .arg(state::nb_secret());
        let pid = testbed::spawn_detached(&mut c, &log)?;
        st.processes.push(("server".into(), pid));
        st.save()?;
        Ok(pid)
    };
    let mut pid = launch(st)?;
    let api = topology::Api::new(&st.url);
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.call(None, "GET", "/v2.0/networks", None).is_err() {
        if Instant::now() > deadline {
            return Err(format!("the server did not come up: {}", testbed::tail(&log, 3)).into());
        }
        // A store that is not ready yet makes the server exit: start it again.
        if !testbed::alive(pid) {
            pid = launch(st)?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Runs dhclient in every VM at once; a VM with no lease (or not its port's address) within
/// 20 s is addressed statically. Sets each VM's `addressing`.
fn address_vms(vms: &mut [state::Vm]) -> Result<()> {
    let mut clients = Vec::new();
    for vm in vms.iter() {
        clients.push(host::dhclient(vm)?);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (vm, mut c) in vms.iter_mut().zip(clients) {
        let got = loop {
            match c.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break false;
                }
            }
        };
        vm.addressing = if got && host::addresses(vm).contains(&vm.ip) {
            "dhcp".into()
        } else {
            host::static_address(vm)?;
            "static".into()
        };
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))?)
}
