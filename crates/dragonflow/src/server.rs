//! `dragonflow server`: its flags, and starting the Neutron API (`neutron_api`) and the NB
//! store's endpoints for hosts, each on its listener, on the NB store (`nbdb`) until SIGINT
//! or SIGTERM.

use crate::config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (default 127.0.0.1:9696).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// NB store: embedded:PATH (default embedded:/var/lib/dragonflow/nb.redb),
    /// etcd://HOST:PORT[,…][/PREFIX], redis://HOST:PORT[/DB] or zk://HOST:PORT[,…][/PREFIX].
    #[arg(long)]
    db: Option<String>,
    /// Address of the NB store endpoints (/nb/v1) for hosts and tools, never the
    /// Neutron listener (default 127.0.0.1:9697).
    #[arg(long)]
    nb_listen: Option<SocketAddr>,
    /// Address of the Octavia v2 API, the `load-balancer` service (default
    /// 127.0.0.1:9876, Octavia's port; `[server] octavia_listen`).
    #[arg(long)]
    octavia_listen: Option<SocketAddr>,
    /// The secret NB tokens are derived from; made (mode 0600) if missing (default:
    /// nb-secret beside the embedded store, else /var/lib/dragonflow/nb-secret).
    #[arg(long)]
    nb_secret_file: Option<PathBuf>,
    /// Requests without X-Project-Id act as the default project's admin (a
    /// single-operator cloud on a trusted machine; `[neutron] noauth_default_admin`).
    #[arg(long)]
    noauth_admin: bool,
    /// Seconds between this server's heartbeats (`[neutron] report_interval`, 30).
    #[arg(long)]
    report_interval: Option<u64>,
    /// Seconds after its last heartbeat that an agent is down (`[neutron]
    /// agent_down_time`, 75).
    #[arg(long)]
    agent_down_time: Option<u64>,
    /// The name this server reports as its agent's host (default: the machine's
    /// hostname).
    #[arg(long)]
    host: Option<String>,
    /// Serve Prometheus metrics on `http://ADDR/metrics` (`[server] metrics_listen`; off
    /// by default).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Seconds an NB watcher (a host's controller) may take nothing before it is
    /// disconnected; it resumes from its revision (default 60).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    nb_stall_timeout: Option<u64>,
    /// Revisions of changes the embedded store's log keeps for hosts that resume (default
    /// 100000, `[server] nb_log_retention`); a host further behind takes a new snapshot.
    #[arg(long, value_parser = retention)]
    nb_log_retention: Option<u64>,
    /// Publish every change to the hosts' controllers, as well as serving the stream:
    /// `zmq://BIND_ADDR:PORT` (ZeroMQ PUB) or `redis://HOST:PORT` (Redis pub/sub);
    /// `[server] pubsub`. Off by default (docs/operations.md, "Publish-subscribe").
    #[arg(long)]
    pubsub: Option<String>,
}

/// `--nb-log-retention`: a whole number of revisions, at least 1.
fn retention(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("at least 1 revision must be kept in the log".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a number of revisions")),
    }
}

/// The machine's host name, as the kernel has it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
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

pub fn run(file: config::File, args: Args) -> Result<(), String> {
    let listen = args
        .listen
        .or(file.server.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9696)));
    let nb_listen = args
        .nb_listen
        .or(file.server.nb_listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9697)));
    let octavia_listen = args
        .octavia_listen
        .or(file.server.octavia_listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9876)));
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
            None => PathBuf::from(crate::nb_token::DEFAULT_SECRET),
        });
    let mut neutron = file.neutron;
    neutron.noauth_default_admin |= args.noauth_admin;
    neutron.report_interval = args.report_interval.unwrap_or(neutron.report_interval);
    neutron.agent_down_time = args.agent_down_time.unwrap_or(neutron.agent_down_time);
    let host = args.host.unwrap_or_else(hostname);
    let metrics_listen = args.metrics_listen.or(file.server.metrics_listen);
    let pubsub = args
        .pubsub
        .or(file.server.pubsub)
        .map(|u| nbdb::pubsub::Endpoint::parse(&u))
        .transpose()?;
    let nb_stall = args.nb_stall_timeout.map_or(
        neutron_api::nb_stream::DEFAULT_STALL_TIMEOUT,
        std::time::Duration::from_secs,
    );
    let log_retention = args.nb_log_retention.or(file.server.nb_log_retention);
    if log_retention == Some(0) {
        return Err("config [server] nb_log_retention: at least 1 revision must be kept".into());
    }
    if log_retention.is_some() && nbdb::embedded_path(&db).is_none() {
        return Err(format!(
            "--nb-log-retention is for the embedded store, not {} (etcd: set its own \
             --auto-compaction-retention)",
            nbdb::url::redacted(&db)
        ));
    }
    let mut settings = neutron
        .check()
        .map_err(|e| format!("config [neutron]: {e}"))?;
    settings.quotas = file
        .quotas
        .check()
        .map_err(|e| format!("config [quotas]: {e}"))?;
    let keystone = match settings.auth_strategy {
        neutron_api::config::AuthStrategy::Keystone => {
            let ks = file
                .keystone_authtoken
                .check()
                .map_err(|e| format!("config [keystone_authtoken]: {e}"))?;
            Some(neutron_api::keystone::Keystone::new(ks)?)
        }
        neutron_api::config::AuthStrategy::NoAuth => None,
    };
    let nova = file.nova;
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
    let console_open = settings.noauth_default_admin;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let store = match log_retention {
            Some(n) => nbdb::connect_with_retention(&db, n).await,
            None => nbdb::connect(&db).await,
        };
        let store = store.map_err(|e| format!("cannot open the NB store {}: {e}", nbdb::url::redacted(&db)))?;
        if let Some(ep) = &pubsub {
            // Runs as long as the server.
            let _ = nbdb::pubsub::publish::start(store.clone(), ep).await?;
        }
        let me = format!("dragonflow {}", env!("CARGO_PKG_VERSION"));
        neutron_api::model_version::settle(store.as_ref(), &me).await?;
        let api = neutron_api::Api::new(store.clone(), settings);
        let nova = nova
            .sender(store.clone(), keystone.clone())
            .map_err(|e| format!("config [nova]: {e}"))?;
        {
            let api = api.clone();
            tokio::spawn(async move { nova.run(api.stopped()).await });
        }
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))
        };
        let (listener, nb_listener) = (bind(listen).await?, bind(nb_listen).await?);
        let octavia_listener = bind(octavia_listen).await?;
        let neutron = match &keystone {
            Some(ks) => {
                let warm = ks.clone();
                tokio::spawn(async move { warm.warm_up().await });
                neutron_api::keystone::router(api.clone(), ks.clone())
            }
            None => neutron_api::router(api.clone()),
        };
        let octavia = match &keystone {
            Some(ks) => neutron_api::keystone::octavia_router(api.clone(), ks.clone()),
            None => neutron_api::octavia::router(api.clone()),
        };
        let metrics = std::sync::Arc::new(
            neutron_api::metrics::ApiMetrics::new().map_err(|e| format!("metrics: {e}"))?,
        );
        let neutron = neutron
            .route_layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                neutron_api::metrics::track,
            ))
            // After the API's own auth and metrics layers: the console has its own gate.
            .merge(crate::console::router(
                store.clone(),
                keystone.clone(),
                console_open,
            ));
        if let Some(addr) = metrics_listen {
            let store = store.clone();
            crate::metrics::serve(addr, move || {
                let (m, store) = (metrics.clone(), store.clone());
                async move { m.render(store.as_ref()).await }
            })
            .await?;
        }
        let auth_strategy = if keystone.is_some() { "keystone" } else { "noauth" };
        tracing::info!(%listen, %nb_listen, %octavia_listen, store = %store.describe(), secret = %secret_file.display(), auth_strategy, "dragonflow server ready");
        // This server's own heartbeat: an agent `DF API server` on `host`.
        tokio::spawn(neutron_api::agents::beat::serve(api.clone(), host));
        // Members whose checking host died are marked down (`nb_lb_health::sweep`).
        tokio::spawn(neutron_api::nb_lb_health::sweep(api.clone()));
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
            serve(listener, neutron),
            async {
                let app = neutron_api::nb_router(api.clone(), auth);
                let stop = {
                    let api = api.clone();
                    async move { api.stopped().await }
                };
                neutron_api::nb_stream::serve(nb_listener, app, nb_stall, stop)
                    .await
                    .map_err(|e| format!("server failed: {e}"))
            },
            serve(octavia_listener, octavia),
        );
        stopping.abort();
        result.map(|_| ())
    })
}
