//! The `dragonflow` command: parses the command line and the config file, sets up logging,
//! and runs a subcommand. No logic of its own.

mod config;
mod db;
mod sandbox;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
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
    Server {
        /// Address to listen on (default 127.0.0.1:9696).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// NB store: embedded:PATH (default embedded:/var/lib/dragonflow/nb.redb).
        #[arg(long)]
        db: Option<String>,
    },
    /// Run the local controller of this host.
    Controller {
        /// This host's chassis name.
        #[arg(long)]
        chassis: String,
        /// Where the NB model comes from: the API server (`http://HOST:9696`, the only way
        /// to its embedded store) or the store itself (`etcd://HOST:PORT`, `redis://HOST:PORT`).
        #[arg(long, default_value = "http://127.0.0.1:9696")]
        nb: String,
        /// ovsdb-server: unix:PATH or tcp:IP:PORT.
        #[arg(long, default_value = "unix:/var/run/openvswitch/db.sock")]
        ovsdb: String,
        /// br-int's OpenFlow management socket (unix:PATH).
        #[arg(long, default_value = "unix:/var/run/openvswitch/br-int.mgmt")]
        openflow: String,
        /// This host's tunnel endpoint address.
        #[arg(long)]
        local_ip: std::net::IpAddr,
        /// Tunnel types, comma-separated.
        #[arg(long, default_value = "geneve")]
        tunnel_types: String,
        /// netdev (userspace) or system.
        #[arg(long, default_value = "netdev")]
        datapath_type: String,
        /// ICMP errors (time exceeded, unreachable) each router port answers per second.
        #[arg(long, default_value_t = 3)]
        icmp_rate: u32,
        /// DHCP requests a VM port may send per second before it is blocked (0: no limit).
        #[arg(long, default_value_t = 3)]
        dhcp_rate_limit: u32,
        /// How long a VM port past the DHCP rate is blocked, in seconds.
        #[arg(long, default_value_t = 100)]
        dhcp_block_seconds: u64,
        /// DNS servers for subnets without dns_nameservers, comma-separated IPv4 addresses.
        #[arg(long, default_value = "", value_delimiter = ',')]
        dns_servers: Vec<String>,
        /// DHCP lease time in seconds.
        #[arg(long, default_value_t = 86400)]
        dhcp_lease_seconds: u32,
        /// Domain name handed out by DHCP.
        #[arg(long, default_value = "openstacklocal")]
        domain: String,
        /// The API server, when --nb names a store (etcd://, redis://): a host's SNAT address
        /// is allocated through it.
        #[arg(long)]
        api: Option<String>,
        /// Physical networks and their bridges: `physnet1:br-ex[,physnet2:br-ex2]`.
        #[arg(long, default_value = "")]
        bridge_mappings: String,
    },
    /// Inspect the NB store: tables, ls, get, dump, watch.
    Db {
        /// A server (`http://127.0.0.1:9696`) or a store URL (`embedded:PATH`).
        #[arg(long, default_value = "http://127.0.0.1:9696")]
        nb: String,
        /// Machine-readable output (one JSON document or JSON line per item).
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: db::DbCommand,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let file = match config::File::load(cli.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("dragonflow: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Server { listen, db } => run_server(file, listen, db),
        Command::Db { nb, json, command } => db::run(&nb, json, command),
        Command::Sandbox { command } => sandbox::run(command),
        Command::Controller {
            chassis,
            nb,
            ovsdb,
            openflow,
            local_ip,
            tunnel_types,
            datapath_type,
            icmp_rate,
            dhcp_rate_limit,
            dhcp_block_seconds,
            dns_servers,
            dhcp_lease_seconds,
            domain,
            bridge_mappings,
            api,
        } => {
            let mut dns = Vec::new();
            for d in dns_servers.iter().filter(|d| !d.is_empty()) {
                match d.trim().parse::<std::net::Ipv4Addr>() {
                    Ok(a) => dns.push(a),
                    Err(_) => {
                        eprintln!("dragonflow: --dns-servers: {d:?} is not an IPv4 address");
                        return ExitCode::from(2);
                    }
                }
            }
            let openflow = match openflow.strip_prefix("unix:") {
                Some(p) => std::path::PathBuf::from(p),
                None => {
                    eprintln!("dragonflow: --openflow takes unix:PATH");
                    return ExitCode::from(2);
                }
            };
            let cfg = controller::runtime::Config {
                chassis,
                nb,
                ovsdb,
                openflow,
                local_ip,
                datapath_type,
                tunnel_types: tunnel_types.split(',').map(str::to_string).collect(),
                icmp_rate,
                api,
                dhcp: controller::apps::dhcp::responder::Config {
                    rate_limit: dhcp_rate_limit,
                    block: std::time::Duration::from_secs(dhcp_block_seconds),
                    dns_servers: dns,
                    lease_seconds: dhcp_lease_seconds,
                    domain,
                },
                bridge_mappings: match controller::runtime::parse_bridge_mappings(&bridge_mappings)
                {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("dragonflow: --bridge-mappings: {e}");
                        std::process::exit(2);
                    }
                },
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(controller::runtime::run(cfg)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dragonflow: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn run_server(
    file: config::File,
    listen: Option<SocketAddr>,
    db: Option<String>,
) -> Result<(), String> {
    let listen = listen
        .or(file.server.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9696)));
    let db = db
        .or(file.server.db)
        .unwrap_or_else(|| "embedded:/var/lib/dragonflow/nb.redb".into());
    let settings = file
        .neutron
        .check()
        .map_err(|e| format!("config [neutron]: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let store = nbdb::connect(&db)
            .await
            .map_err(|e| format!("cannot open the NB store {db}: {e}"))?;
        let api = neutron_api::Api::new(store.clone(), settings);
        let app = neutron_api::router(api.clone());
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        tracing::info!(%listen, store = %store.describe(), "dragonflow server ready");
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stop_signal().await;
                tracing::info!("shutting down");
                api.stop();
            })
            .await
            .map_err(|e| format!("server failed: {e}"))
    })
}
