//! `dragonflow sandbox`: a whole cloud on one machine. `up` starts N hosts (namespaces, each
//! with its own OVS and controller), the server, an outside namespace, creates a demo
//! topology through the API, addresses the VMs by DHCP and runs live checks; `status`,
//! `exec`, `env`, `openstack`, `check` use it; `down` removes everything it made. The
//! namespaces, veths, OVS instances, VMs, stores and detached processes are the lab's
//! (`testbed::Detached`); this module owns the commands, the steps, the state file, the
//! demo topology and the checks.

mod checks;
mod host;
mod state;
mod topology;
mod up;

use clap::{Subcommand, ValueEnum};
use state::State;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use testbed::Netns;
use up::interrupted;

/// What the sandbox's steps fail with: one line for the user.
type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

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
    /// `dragonflow trace` against the sandbox (its NB endpoint, token, and with `--real` the
    /// sender's host's Open vSwitch): `sandbox trace --from vm1 --to 10.0.2.5:22`.
    Trace {
        #[command(flatten)]
        args: crate::trace::Args,
        /// Print the account as JSON.
        #[arg(long)]
        json: bool,
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
    let result = match cmd {
        SandboxCommand::Up { hosts, db, port } => up::up(hosts.into(), db, port),
        SandboxCommand::Status => status(),
        SandboxCommand::Check => check(),
        SandboxCommand::Exec { vm, cmd } => exec(&vm, &cmd),
        SandboxCommand::Env => running().map(|st| print!("{}", env_text(&st))),
        SandboxCommand::Openstack { args } => openstack(&args),
        SandboxCommand::Trace { args, json } => return trace(args, json),
        SandboxCommand::Down => down(true),
    };
    result.map_err(|e| e.to_string())
}

/// A trace in the running sandbox: its hosts' OVS instances are where `--real` looks.
fn trace(mut args: crate::trace::Args, json: bool) -> Result<(), String> {
    let st = running().map_err(|e| e.to_string())?;
    args.ovs_dirs = st
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.ovs_dir.clone()))
        .collect();
    let token = std::fs::read_to_string(state::nb_admin_token())
        .map_err(|e| format!("{}: {e}", state::nb_admin_token().display()))?;
    crate::trace::run(&st.nb_url, Some(token.trim()), json, args)
}

/// The state of a sandbox that `up` finished, or the line that says what to do.
fn running() -> Result<State> {
    match State::load() {
        Some(st) if st.ready => Ok(st),
        Some(_) => Err("the sandbox is not fully up (a failed or crashed `up`?): run `dragonflow sandbox down`, then `dragonflow sandbox up`".into()),
        None => Err("no sandbox is running: start one with `dragonflow sandbox up`".into()),
    }
}

fn print_check(r: &state::CheckResult) {
    println!(
        "  {:<15} {} ({:.1} s)",
        r.name,
        if r.pass { "PASS" } else { "FAIL" },
        r.seconds
    );
}

fn check() -> Result<()> {
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
    Ok(st.save()?)
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

fn status() -> Result<()> {
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
    // The sandbox's server runs with --noauth-admin (up.rs): say so, as Keystone exists.
    line!(
        "auth: noauth (no Keystone; a request without X-Project-Id acts as admin): a cloud uses auth_strategy = keystone (docs/operations.md)"
    );
    line!(
        "NB store endpoints: {} (dragonflow db --nb {} --nb-token-file {})",
        st.nb_url,
        st.nb_url,
        state::nb_admin_token().display()
    );
    line!("processes:");
    for (what, pid) in &st.processes {
        let ok = testbed::alive(*pid);
        line!(
            "  {what:<28} pid {pid:<8} {}",
            if ok { "running" } else { "GONE" }
        );
    }
    line!("hosts:");
    let namespaces = state::lab().namespaces();
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
fn namespace_of(st: &State, name: &str) -> Result<String> {
    if name == "outside" {
        return Ok(state::lab().ns_name(host::OUTSIDE));
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
        .into()
    })
}

fn exec(name: &str, cmd: &[String]) -> Result<()> {
    let st = running()?;
    let ns = namespace_of(&st, name)?;
    let status = Netns::attach(&ns)
        .command(cmd)
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

fn openstack(args: &[String]) -> Result<()> {
    let st = running()?;
    let bin = std::env::var("DF_OPENSTACK").unwrap_or_else(|_| OPENSTACK.into());
    if !testbed::have(&bin) {
        return Err(
            format!("{bin} is missing: run scripts/setup (it installs the openstack CLI)").into(),
        );
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

/// Removes everything (`testbed::Detached::sweep`): the processes and namespaces the state
/// file lists, and what a scan finds (every `dfsb-*` namespace and the processes inside,
/// every process whose command line points into the sandbox directory, stray `dfsb*` links,
/// `/etc/netns` entries), then the directory. Idempotent; needs no state file.
fn down(verbose: bool) -> Result<()> {
    if !testbed::is_root() {
        return Err("removing the sandbox needs root: run it with sudo".into());
    }
    let st = State::load().unwrap_or_default();
    let pids: Vec<u32> = st.processes.iter().map(|(_, p)| *p).collect();
    let swept = state::lab().sweep(&pids, &st.namespaces)?;
    if verbose {
        if swept.is_empty() {
            println!("no sandbox to remove");
        } else {
            println!(
                "sandbox removed: {} processes, {} namespaces{}{}",
                swept.processes,
                swept.namespaces,
                if swept.links > 0 {
                    format!(", {} stray links", swept.links)
                } else {
                    String::new()
                },
                if swept.dir {
                    format!(", {}", state::DIR)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}
