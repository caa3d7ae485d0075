//! `dragonflow sandbox`: a whole cloud on one machine. `up` starts N hosts (namespaces, each
//! with its own OVS and controller), the server, an outside namespace, creates a demo
//! topology through the API, addresses the VMs by DHCP and runs live checks; `status`,
//! `exec`, `env`, `openstack`, `check` use it; `down` removes everything it made.

mod checks;
mod host;
mod state;
mod sys;
mod topology;

use clap::{Subcommand, ValueEnum};
use state::State;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum SandboxCommand {
    /// Start the sandbox, create the demo topology and run the checks.
    Up {
        /// How many hosts (each a namespace with its own Open vSwitch and controller).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=8))]
        hosts: u8,
        /// The NB store behind the server.
        #[arg(long, value_enum, default_value_t = Db::Embedded)]
        db: Db,
        /// The API server's port on 127.0.0.1.
        #[arg(long, default_value_t = 9696)]
        port: u16,
    },
    /// Show the hosts, processes, VMs and the last checks.
    Status,
    /// Run the checks again on the running sandbox.
    Check,
    /// Run a command inside a VM (vm1..vm4) or the outside host: `exec vm1 -- ping 10.1.1.1`.
    Exec {
        vm: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Print the environment for the `openstack` CLI (`eval "$(dragonflow sandbox env)"`).
    Env,
    /// Run the `openstack` CLI against the sandbox: `sandbox openstack network list`.
    Openstack {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Remove every namespace, process and file of the sandbox (also after a crash).
    Down,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Db {
    Embedded,
    Etcd,
    Redis,
}

pub fn run(cmd: SandboxCommand) -> Result<(), String> {
    match cmd {
        SandboxCommand::Up { hosts, db, port } => up(hosts.into(), db, port),
        SandboxCommand::Status => status(),
        SandboxCommand::Check => check(),
        SandboxCommand::Exec { vm, cmd } => exec(&vm, &cmd),
        SandboxCommand::Env => {
            let st = running()?;
            print!("{}", env_text(&st));
            Ok(())
        }
        SandboxCommand::Openstack { args } => openstack(&args),
        SandboxCommand::Down => down(true).map(|_| ()),
    }
}

/// Progress: "what... " then "ok (0.4 s)" on the same line.
struct Step(Instant);

/// Set by Ctrl-C during `up`: the next step stops, and what was started is removed.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
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
            INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
}

fn step(what: &str) -> Result<Step, String> {
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

/// The state of a sandbox that `up` finished, or the line that says what to do.
fn running() -> Result<State, String> {
    match State::load() {
        Some(st) if st.ready => Ok(st),
        Some(_) => Err("the sandbox is not fully up (a failed or crashed `up`?): run `dragonflow sandbox down`, then `dragonflow sandbox up`".into()),
        None => Err("no sandbox is running: start one with `dragonflow sandbox up`".into()),
    }
}

/// Everything `up` needs from the machine, checked before anything is started.
fn preflight(db: Db, port: u16) -> Result<(), String> {
    if !sys::is_root() {
        return Err(
            "the sandbox needs root (network namespaces, Open vSwitch): run it with sudo".into(),
        );
    }
    if State::load().is_some()
        || Path::new(state::DIR).exists()
        || !sys::sandbox_namespaces().is_empty()
        || !sys::sandbox_links().is_empty()
    {
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
        .filter(|(t, _)| !sys::have(t))
        .map(|(_, p)| *p)
        .collect();
    if !missing.is_empty() {
        let mut pkgs = missing.clone();
        pkgs.dedup();
        return Err(format!(
            "missing tools: install them with `apt-get install {}` (or run scripts/setup)",
            pkgs.join(" ")
        ));
    }
    if !Path::new("/usr/share/openvswitch/vswitch.ovsschema").exists() {
        return Err(
            "Open vSwitch's schema is missing: reinstall openvswitch-common (or run scripts/setup)"
                .into(),
        );
    }
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        return Err(format!(
            "port {port} is in use (another dragonflow server?): stop it, or choose another with `--port`"
        ));
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn up(hosts: usize, db: Db, port: u16) -> Result<(), String> {
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
fn build(st: &mut State, hosts: usize, db: Db, port: u16) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I? {e}"))?;
    st.url = format!("http://127.0.0.1:{port}");
    st.nb_url = format!("http://127.0.0.1:{}", free_port()?);
    st.save()?;
    // The NB secret, made here so the hosts' tokens can be handed out before the server
    // is up; the admin token for `dragonflow db`.
    let (auth, _) = neutron_api::nb_auth::NbAuth::load_or_create(&state::nb_secret())?;
    write_token(
        &auth,
        &neutron_api::nb_auth::Principal::Admin,
        &state::nb_admin_token(),
    )?;

    let s = step("starting the store and the server")?;
    let server_db = match db {
        Db::Embedded => {
            st.db = "embedded".into();
            st.nb = st.nb_url.clone();
            format!("embedded:{}", state::dir().join("nb.redb").display())
        }
        Db::Etcd | Db::Redis => {
            let (client, peer) = (free_port()?, free_port()?);
            let d = state::dir().join("store");
            std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
            let mut c;
            let url;
            if db == Db::Etcd {
                st.db = "etcd".into();
                let (curl, purl) = (
                    format!("http://127.0.0.1:{client}"),
                    format!("http://127.0.0.1:{peer}"),
                );
                c = Command::new("etcd");
                c.args(["--name", "sandbox", "--data-dir"])
                    .arg(d.join("etcd"))
                    .args([
                        "--listen-client-urls",
                        &curl,
                        "--advertise-client-urls",
                        &curl,
                    ])
                    .args([
                        "--listen-peer-urls",
                        &purl,
                        "--initial-advertise-peer-urls",
                        &purl,
                    ])
                    .arg(format!("--initial-cluster=sandbox={purl}"))
                    .args(["--auto-compaction-retention", "1"]);
                url = format!("etcd://127.0.0.1:{client}");
            } else {
                st.db = "redis".into();
                c = Command::new("redis-server");
                c.args([
                    "--port",
                    &client.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                ])
                .arg(&d)
                .args(["--save", "", "--appendonly", "yes", "--daemonize", "no"]);
                url = format!("redis://127.0.0.1:{client}");
            }
            let pid = sys::spawn_detached(&mut c, &d.join("store.log"))?;
            st.processes.push((st.db.clone(), pid));
            st.nb = url.clone();
            st.save()?;
            if !sys::wait_for(Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", client)).is_ok()
            }) {
                return Err(format!(
                    "{} did not start: {}",
                    st.db,
                    sys::tail(&d.join("store.log"), 3)
                ));
            }
            url
        }
    };
    let log = state::dir().join("server.log");
    let launch = |st: &mut State| -> Result<u32, String> {
        let mut c = Command::new(&exe);
        c.args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
            &server_db,
            "--nb-listen",
            st.nb_url.trim_start_matches("http://"),
            // A single-operator cloud: the demo and `sandbox openstack` send no project.
            "--noauth-admin",
        ])
        .arg("--nb-secret-file")
        .arg(state::nb_secret());
        let pid = sys::spawn_detached(&mut c, &log)?;
        st.processes.push(("server".into(), pid));
        st.save()?;
        Ok(pid)
    };
    let mut pid = launch(st)?;
    let api = topology::Api::new(&st.url);
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.call(None, "GET", "/v2.0/networks", None).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "the server did not come up: {}",
                sys::tail(&log, 3)
            ));
        }
        // A store that is not ready yet makes the server exit: start it again.
        if !sys::alive(pid) {
            pid = launch(st)?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    s.ok();

    let s = step("wiring the underlay and the external network")?;
    host::wire()?;
    st.namespaces.push(host::WIRE.into());
    host::outside()?;
    st.namespaces.push(host::OUTSIDE.into());
    st.outside_ip = host::OUTSIDE_IP.into();
    st.save()?;
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
        let ok = sys::wait_for(Duration::from_secs(30), || {
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
            ));
        }
        s.ok();
    }

    let s = step("addressing the VMs by DHCP (dhclient in each)")?;
    let t = Instant::now();
    let mut clients = Vec::new();
    for vm in &vms {
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
    st.save()
}

fn print_check(r: &state::CheckResult) {
    println!(
        "  {:<15} {} ({:.1} s)",
        r.name,
        if r.pass { "PASS" } else { "FAIL" },
        r.seconds
    );
}

fn check() -> Result<(), String> {
    let mut st = running()?;
    let dhcp = st
        .checks
        .iter()
        .find(|c| c.name == "dhcp")
        .cloned()
        .unwrap_or_else(|| checks::dhcp(&st, 0.0));
    let mut results = vec![dhcp];
    results.extend(checks::run(&st, print_check));
    print!("{}", checks::table(&results));
    st.checks = results;
    st.save()
}

/// Writes `who`'s NB token to `path`, readable by root only.
fn write_token(
    auth: &neutron_api::nb_auth::NbAuth,
    who: &neutron_api::nb_auth::Principal,
    path: &Path,
) -> Result<(), String> {
    neutron_api::nb_auth::write_private(path, format!("{}\n", auth.token(who)).as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn status() -> Result<(), String> {
    // Written at once, and a closed pipe (`status | head`) is not an error.
    let mut out = String::new();
    macro_rules! line {
        ($($t:tt)*) => {{
            out.push_str(&format!($($t)*));
            out.push('\n');
        }};
    }
    let Some(st) = State::load() else {
        println!("no sandbox (start one with `dragonflow sandbox up`)");
        return Ok(());
    };
    line!(
        "sandbox {} in {}: server {} (store: {})",
        if st.ready {
            "up"
        } else {
            "NOT fully up (run `dragonflow sandbox down`)"
        },
        state::DIR,
        st.url,
        st.db
    );
    line!(
        "NB store endpoints: {} (dragonflow db --nb {} --nb-token-file {})",
        st.nb_url,
        st.nb_url,
        state::nb_admin_token().display()
    );
    line!("processes:");
    for (what, pid) in &st.processes {
        let ok = sys::alive(*pid);
        line!(
            "  {what:<28} pid {pid:<8} {}",
            if ok { "running" } else { "GONE" }
        );
    }
    line!("hosts:");
    let namespaces = sys::sandbox_namespaces();
    for h in &st.hosts {
        line!(
            "  {:<8} namespace {:<12} tunnel {:<12} ovs {}  {}",
            h.name,
            h.ns,
            h.ip,
            h.ovs_dir.display(),
            if namespaces.contains(&h.ns) {
                ""
            } else {
                "(namespace GONE)"
            }
        );
    }
    line!("VMs:");
    for v in &st.vms {
        let host = st.hosts.get(v.host).map(|h| h.name.as_str()).unwrap_or("?");
        line!(
            "  {:<4} {:<7} {:<7} {:<8} {:<15} {:<10} floating {}",
            v.name,
            host,
            v.project,
            v.network,
            v.ip,
            format!("({})", v.addressing),
            v.floating_ip.as_deref().unwrap_or("-")
        );
    }
    line!(
        "  outside  {} on the external network {}",
        st.outside_ip,
        host::EXT_CIDR
    );
    if !st.checks.is_empty() {
        line!("last checks:");
        out.push_str(&checks::table(&st.checks));
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// The namespace of a VM name (vm1..vm4, or `outside`).
fn namespace_of(st: &State, name: &str) -> Result<String, String> {
    if name == "outside" {
        return Ok(host::OUTSIDE.into());
    }
    if let Some(h) = st.hosts.iter().find(|h| h.name == name) {
        return Ok(h.ns.clone());
    }
    st.vm(name).map(|v| v.ns.clone()).ok_or_else(|| {
        let names: Vec<&str> = st.vms.iter().map(|v| v.name.as_str()).collect();
        format!(
            "no VM {name:?}: the sandbox has {} and outside",
            names.join(", ")
        )
    })
}

fn exec(name: &str, cmd: &[String]) -> Result<(), String> {
    let st = running()?;
    let ns = namespace_of(&st, name)?;
    let status = sys::in_ns(&ns, cmd)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cmd.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        std::process::exit(status.code().unwrap_or(1));
    }
}

const OPENSTACK: &str = "/opt/dragonflow/venv/bin/openstack";

fn env_text(st: &State) -> String {
    format!(
        "export OS_AUTH_TYPE=none\nexport OS_ENDPOINT={}\nunset OS_CLOUD\nexport PATH={}:$PATH\n",
        st.url,
        Path::new(OPENSTACK)
            .parent()
            .map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_default()
    )
}

fn openstack(args: &[String]) -> Result<(), String> {
    let st = running()?;
    let bin = std::env::var("DF_OPENSTACK").unwrap_or_else(|_| OPENSTACK.into());
    if !sys::have(&bin) {
        return Err(format!(
            "{bin} is missing: run scripts/setup (it installs the openstack CLI)"
        ));
    }
    let status = Command::new(&bin)
        .args(["--os-auth-type", "none", "--os-endpoint", &st.url])
        .args(args)
        .env_remove("OS_CLOUD")
        .status()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// Removes everything: processes (from the state file, inside sandbox namespaces, and any
/// whose command line points into the sandbox directory), namespaces, links with the
/// sandbox prefix, `/etc/netns` entries and the directory. Idempotent.
fn down(verbose: bool) -> Result<usize, String> {
    if !sys::is_root() {
        return Err("removing the sandbox needs root: run it with sudo".into());
    }
    let st = State::load().unwrap_or_default();
    let mut pids: Vec<u32> = st
        .processes
        .iter()
        .map(|(_, p)| *p)
        .filter(|&p| sys::alive(p))
        .collect();
    let mut namespaces = sys::sandbox_namespaces();
    for ns in &st.namespaces {
        if !namespaces.contains(ns) && Path::new("/run/netns").join(ns).exists() {
            namespaces.push(ns.clone());
        }
    }
    for ns in &namespaces {
        pids.extend(sys::pids_in_ns(ns));
    }
    pids.extend(sys::pids_mentioning(state::DIR));
    pids.sort_unstable();
    pids.dedup();
    sys::terminate(&pids, Duration::from_secs(5));
    // Processes that started while we were stopping the others (none expected).
    let late = sys::pids_mentioning(state::DIR);
    sys::terminate(&late, Duration::from_secs(2));
    for ns in &namespaces {
        let _ = sys::ip(["netns", "del", ns]);
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(ns));
    }
    // /etc/netns entries of namespaces already gone.
    if let Ok(rd) = std::fs::read_dir("/etc/netns") {
        for e in rd.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{}-", sys::PREFIX))
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    // Veth halves left in the machine's namespace by a crash between creation and move.
    let links = sys::sandbox_links();
    for l in &links {
        let _ = sys::ip(["link", "del", l]);
    }
    let nlinks = links.len();
    let had_dir = Path::new(state::DIR).exists();
    if had_dir {
        std::fs::remove_dir_all(state::DIR)
            .map_err(|e| format!("cannot remove {}: {e}", state::DIR))?;
    }
    let left = sys::sandbox_namespaces();
    if !left.is_empty() {
        return Err(format!("namespaces still present: {}", left.join(", ")));
    }
    let removed = pids.len() + namespaces.len() + nlinks + usize::from(had_dir);
    if verbose {
        if removed == 0 {
            println!("no sandbox to remove");
        } else {
            println!(
                "sandbox removed: {} processes, {} namespaces{}{}",
                pids.len(),
                namespaces.len(),
                if nlinks > 0 {
                    format!(", {nlinks} stray links")
                } else {
                    String::new()
                },
                if had_dir {
                    format!(", {}", state::DIR)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(removed)
}
