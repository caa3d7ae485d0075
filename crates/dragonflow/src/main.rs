//! The `dragonflow` command: parses the command line and the config file, sets up logging,
//! and runs a subcommand. No logic of its own.

mod bgp;
mod capture;
mod cni;
mod config;
mod console;
// The `controller` subcommand; the `controller` crate is `::controller`.
mod controller;
mod db;
mod metrics;
mod nb_token;
mod sandbox;
mod server;
mod trace;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dragonflow",
    version,
    about = "A distributed SDN controller for Neutron-style clouds"
)]
struct Cli {
    /// Config file (TOML); flags override it.
    #[arg(long, global = true, env = "DRAGONFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start: the size of its largest variant (the controller's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the Neutron-compatible API server.
    Server(server::Args),
    /// Print the NB token of a host (or of the admin, or a reader) for the server's secret.
    NbToken(nb_token::Args),
    /// Run the local controller of this host.
    Controller(controller::Args),
    /// Run the BGP speaker: advertise tenant networks and floating IPs to BGP peers.
    Bgp(bgp::Args),
    /// Inspect the NB store: tables, ls, get, dump, watch.
    Db {
        #[command(flatten)]
        nb: NbArgs,
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// Follows a packet through the pipeline each host compiles, in Neutron terms: every
    /// flow it hits with the object that owns it, and a one-line verdict.
    Trace {
        #[command(flatten)]
        nb: NbArgs,
        #[command(flatten)]
        args: trace::Args,
    },
    /// A port as its host realizes it: binding, status, whether the host's controller has
    /// applied its last change, its flows by app.
    Port {
        /// The port's id, name or fixed IP.
        port: String,
        /// Also read its QoS meters' counters from its host's integration bridge (the
        /// bridge's management socket, e.g. /var/run/openvswitch/br-int.mgmt; run on the
        /// port's host, as root).
        #[arg(long)]
        switch: Option<std::path::PathBuf>,
        #[command(flatten)]
        nb: NbArgs,
    },
    /// The flows each host compiles for one Neutron object (port, network, router, security
    /// group rule or floating IP, by id or name).
    Flows {
        #[arg(long)]
        owner: String,
        #[command(flatten)]
        nb: NbArgs,
    },
    /// A tcpdump of one port on its host, through an OVS mirror that is removed afterwards:
    /// `dragonflow capture vm1 -- -c 10 icmp`.
    Capture {
        #[command(flatten)]
        args: capture::Args,
        #[command(flatten)]
        nb: NbArgs,
    },
    /// A CNI plugin invocation (`CNI_COMMAND` and the rest in the environment, the network
    /// configuration on stdin); installed as `dragonflow-cni`, the binary runs this by itself.
    Cni,
    /// A whole cloud on one machine: hosts, VMs, a demo topology and live checks.
    Sandbox {
        #[command(subcommand)]
        command: sandbox::SandboxCommand,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRAGONFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A bad flag or config file: one line, exit status 2.
fn usage(e: &str) -> ExitCode {
    eprintln!("dragonflow: {e}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // A container runtime runs a plugin by the name its configuration's `type` gives,
    // with no arguments: as `dragonflow-cni`, this binary is that plugin.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if Path::new(&argv0).file_name() == Some("dragonflow-cni".as_ref()) {
        init_logging(false);
        return cni::run();
    }
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let file = match config::File::load(cli.config.as_deref()) {
        Ok(f) => f,
        Err(e) => return usage(&e),
    };
    let result = match cli.command {
        Command::Server(args) => server::run(file, args),
        Command::Controller(args) => match controller::config(args) {
            Ok(cfg) => controller::run(cfg),
            Err(e) => return usage(&e),
        },
        Command::NbToken(args) => nb_token::print(args),
        Command::Bgp(args) => return bgp::run(args),
        Command::Db { nb, command } => return nb.run(|u, t, j| db::run(u, t, j, command)),
        Command::Trace { nb, args } => return nb.run(|u, t, j| trace::run(u, t, j, args)),
        Command::Port { port, switch, nb } => {
            return nb.run(|u, t, j| trace::port(u, t, &port, switch.as_deref(), j));
        }
        Command::Flows { owner, nb } => return nb.run(|u, t, j| trace::flows(u, t, &owner, j)),
        Command::Capture { args, nb } => return nb.run(|u, t, _| capture::run(u, t, args)),
        Command::Sandbox { command } => sandbox::run(command),
        Command::Cni => return cni::run(),
    };
    finish(result)
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dragonflow: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How the tools that read the NB store reach it.
#[derive(clap::Args)]
struct NbArgs {
    /// A server's NB listener (`http://127.0.0.1:9697`) or a store URL (`embedded:PATH`).
    #[arg(long, default_value = "http://127.0.0.1:9697")]
    nb: String,
    /// A file holding an NB token (`dragonflow nb-token --admin` or `--reader`); else
    /// the environment's DRAGONFLOW_NB_TOKEN.
    #[arg(long)]
    nb_token_file: Option<PathBuf>,
    /// Machine-readable output (one JSON document or JSON line per item).
    #[arg(long)]
    json: bool,
}

impl NbArgs {
    /// Runs `f` with the store's URL, the token and `--json`; an unreadable token file is a
    /// usage error.
    fn run(self, f: impl FnOnce(&str, Option<&str>, bool) -> Result<(), String>) -> ExitCode {
        match nb_token::read(self.nb_token_file.as_deref()) {
            Ok(token) => finish(f(&self.nb, token.as_deref(), self.json)),
            Err(e) => usage(&e),
        }
    }
}
