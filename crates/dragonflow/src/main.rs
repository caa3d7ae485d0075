//! The `dragonflow` command: parses the command line and the config file, sets up logging,
//! and runs a subcommand. No logic of its own.

mod config;
mod db;
mod sandbox;

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where a server keeps the NB secret when the store is not an embedded file beside it.
const DEFAULT_SECRET: &str = "/var/lib/dragonflow/nb-secret";

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
        /// Address of the NB store endpoints (/nb/v1) for hosts and tools, never the
        /// Neutron listener (default 127.0.0.1:9697).
        #[arg(long)]
        nb_listen: Option<SocketAddr>,
        /// The secret NB tokens are derived from; made (mode 0600) if missing (default:
        /// nb-secret beside the embedded store, else /var/lib/dragonflow/nb-secret).
        #[arg(long)]
        nb_secret_file: Option<PathBuf>,
        /// Requests without X-Project-Id act as the default project's admin (a
        /// single-operator cloud on a trusted machine; `[neutron] noauth_default_admin`).
        #[arg(long)]
        noauth_admin: bool,
    },
    /// Print the NB token of a host (or of the admin, or a reader) for the server's secret.
    NbToken(NbTokenArgs),
    /// Run the local controller of this host.
    Controller {
        /// This host's chassis name.
        #[arg(long)]
        chassis: String,
        /// Where the NB model comes from: the server's NB listener (`http://HOST:9697`, the
        /// only way to its embedded store) or the store itself (`etcd://HOST:PORT`,
        /// `redis://HOST:PORT`).
        #[arg(long, default_value = "http://127.0.0.1:9697")]
        nb: String,
        /// A file holding this host's NB token (`dragonflow nb-token --host CHASSIS`); else
        /// the environment's DRAGONFLOW_NB_TOKEN.
        #[arg(long)]
        nb_token_file: Option<PathBuf>,
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
        /// The server's NB listener (`http://HOST:9697`), when --nb names a store (etcd://,
        /// redis://): a host's SNAT address is allocated through it.
        #[arg(long)]
        api: Option<String>,
        /// Physical networks and their bridges: `physnet1:br-ex[,physnet2:br-ex2]`.
        #[arg(long, default_value = "")]
        bridge_mappings: String,
    },
    /// Inspect the NB store: tables, ls, get, dump, watch.
    Db {
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
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// A whole cloud on one machine: hosts, VMs, a demo topology and live checks.
    Sandbox {
        #[command(subcommand)]
        command: sandbox::SandboxCommand,
    },
}

#[derive(Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["host", "admin", "reader"])))]
struct NbTokenArgs {
    /// The server's NB secret.
    #[arg(long, default_value = DEFAULT_SECRET)]
    secret_file: PathBuf,
    /// The token of this host's controller (its --chassis).
    #[arg(long)]
    host: Option<String>,
    /// The admin token: reads and writes anything (repairs).
    #[arg(long)]
    admin: bool,
    /// A read-only token (`dragonflow db`, monitoring).
    #[arg(long)]
    reader: bool,
}

/// `dragonflow nb-token`: the token, on one line.
fn nb_token_command(a: NbTokenArgs) -> Result<(), String> {
    use neutron_api::nb_auth::{NbAuth, Principal};
    let secret = std::fs::read(&a.secret_file).map_err(|e| {
        format!(
            "cannot read the NB secret {}: {e} (the server makes it at its first start)",
            a.secret_file.display()
        )
    })?;
    let auth = NbAuth::new(&secret).map_err(|e| format!("{}: {e}", a.secret_file.display()))?;
    let who = match (a.host, a.admin) {
        (Some(h), _) if h.is_empty() => return Err("--host needs a chassis name".into()),
        (Some(h), _) => Principal::Host(h),
        (None, true) => Principal::Admin,
        (None, false) => Principal::Reader,
    };
    println!("{}", auth.token(&who));
    Ok(())
}

/// The NB token from `file`, else from `DRAGONFLOW_NB_TOKEN` (never a flag: a command
/// line is visible to every user of the machine).
fn nb_token(file: Option<&Path>) -> Result<Option<String>, String> {
    let token = match file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read the NB token {}: {e}", f.display()))?,
        ),
        None => std::env::var("DRAGONFLOW_NB_TOKEN").ok(),
    };
    Ok(token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
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
        Command::Server {
            listen,
            db,
            nb_listen,
            nb_secret_file,
            noauth_admin,
        } => run_server(
            file,
            ServerArgs {
                listen,
                db,
                nb_listen,
                nb_secret_file,
                noauth_admin,
            },
        ),
        Command::NbToken(a) => nb_token_command(a),
        Command::Db {
            nb,
            nb_token_file,
            json,
            command,
        } => nb_token(nb_token_file.as_deref())
            .and_then(|token| db::run(&nb, token.as_deref(), json, command)),
        Command::Sandbox { command } => sandbox::run(command),
        Command::Controller {
            chassis,
            nb,
            nb_token_file,
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
            let nb_token = match nb_token(nb_token_file.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("dragonflow: {e}");
                    return ExitCode::from(2);
                }
            };
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
                nb_token,
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

/// The server's flags (each overrides the config file's `[server]` key).
struct ServerArgs {
    listen: Option<SocketAddr>,
    db: Option<String>,
    nb_listen: Option<SocketAddr>,
    nb_secret_file: Option<PathBuf>,
    noauth_admin: bool,
}

fn run_server(file: config::File, args: ServerArgs) -> Result<(), String> {
    let listen = args
        .listen
        .or(file.server.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9696)));
    let nb_listen = args
        .nb_listen
        .or(file.server.nb_listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9697)));
    let db = args
        .db
        .or(file.server.db)
        .unwrap_or_else(|| "embedded:/var/lib/dragonflow/nb.redb".into());
    // The secret lives with the server's state: beside an embedded store's file.
    let secret_file = args
        .nb_secret_file
        .or(file.server.nb_secret_file)
        .unwrap_or_else(|| match db.strip_prefix("embedded:").map(Path::new) {
            Some(p) => p.with_file_name("nb-secret"),
            None => PathBuf::from(DEFAULT_SECRET),
        });
    let mut neutron = file.neutron;
    neutron.noauth_default_admin |= args.noauth_admin;
    let settings = neutron
        .check()
        .map_err(|e| format!("config [neutron]: {e}"))?;
    let (auth, made) = neutron_api::nb_auth::NbAuth::load_or_create(&secret_file)?;
    if made {
        tracing::warn!(
            path = %secret_file.display(),
            "made a new NB secret: give each host its token with `dragonflow nb-token --secret-file {} --host CHASSIS`",
            secret_file.display()
        );
    }
    if settings.noauth_default_admin {
        tracing::warn!(
            project = %settings.default_project,
            "noauth_default_admin is on: any request without X-Project-Id, from anyone who can reach {listen}, acts as admin"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let store = nbdb::connect(&db)
            .await
            .map_err(|e| format!("cannot open the NB store {db}: {e}"))?;
        let api = neutron_api::Api::new(store.clone(), settings);
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))
        };
        let (listener, nb_listener) = (bind(listen).await?, bind(nb_listen).await?);
        tracing::info!(%listen, %nb_listen, store = %store.describe(), secret = %secret_file.display(), "dragonflow server ready");
        let stopping = {
            let api = api.clone();
            tokio::spawn(async move {
                stop_signal().await;
                tracing::info!("shutting down");
                api.stop();
            })
        };
        let serve = |l, app| {
            let api = api.clone();
            async move {
                axum::serve(l, app)
                    .with_graceful_shutdown(async move { api.stopped().await })
                    .await
                    .map_err(|e| format!("server failed: {e}"))
            }
        };
        let result = tokio::try_join!(
            serve(listener, neutron_api::router(api.clone())),
            serve(nb_listener, neutron_api::nb_router(api.clone(), auth)),
        );
        stopping.abort();
        result.map(|_| ())
    })
}
