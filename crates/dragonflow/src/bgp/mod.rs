//! `dragonflow bgp`: the BGP speaker process. It follows the NB store (speakers, peers and
//! what their routes depend on), computes each speaker's routes with
//! `model::bgp::advertised_routes` (the function the API's `get_advertised_routes` uses),
//! and runs one session per (speaker, peer) with the `bgp` crate's FSM and Adj-RIB-Out
//! (`peer.rs`). Changes are applied in batches: what arrives within 20 ms of a change is
//! handled with it, so a thousand floating IPs become a few UPDATEs. Every second it also
//! reads the agents' heartbeats: a host whose controller died loses its floating IPs'
//! routes until it reports again. It reports itself to the agents API as a "DF BGP
//! speaker".
//!
//! Several hosts may run it for the same speakers: each peers on its own (peers see the
//! same routes from two neighbours). A peer with `auth_type` md5 gets TCP MD5 signatures
//! (`TCP_MD5SIG`, [`md5`]) with its password as the key.

mod md5;
mod peer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bgp::Prefix;
use bgp::fsm::Config;
use bgp::wire::{AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
use model::bgp::{World, advertised_routes};
use model::{BgpPeer, BgpSpeaker, Chassis, FloatingIp, Port, Router, Subnet, SubnetPool, Table};
use nbdb::source::Filter;
use nbdb::{Source, StoreError};
use tokio::sync::watch;

use peer::{PeerConfig, Routes};

#[derive(clap::Args)]
pub struct Args {
    /// A server's NB listener (`http://HOST:9697`) or a store URL (`etcd://…`, `redis://…`).
    #[arg(long, default_value = "http://127.0.0.1:9697")]
    nb: String,
    /// A file holding an NB token that reads every project (`dragonflow nb-token --reader`
    /// or `--admin`); heartbeats need the admin's or this host's token.
    #[arg(long)]
    nb_token_file: Option<std::path::PathBuf>,
    /// This host's name in the agents API.
    #[arg(long, env = "DRAGONFLOW_HOST")]
    host: String,
    /// The BGP identifier of this speaker (an IPv4 address of this host).
    #[arg(long)]
    router_id: Ipv4Addr,
    /// The hold time offered to peers, in seconds (0, or at least 3).
    #[arg(long, default_value_t = 90)]
    hold_time: u16,
    /// Seconds between connection attempts to a peer that is down.
    #[arg(long, default_value_t = 5)]
    connect_retry: u64,
    /// Graceful restart (RFC 4724): how long, in seconds, a peer keeps this speaker's
    /// routes when the session drops without a NOTIFICATION (the speaker restarted or
    /// died: the hosts go on forwarding); 0 turns it off. At most 4095.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u16).range(0..=4095))]
    restart_time: u16,
    /// The address to connect to peers from, once per IP version (e.g. this host's
    /// loopback address that the routers name as the neighbour); default: the address
    /// the kernel picks towards each peer.
    #[arg(long = "local-address")]
    local_addresses: Vec<IpAddr>,
    /// The peers' TCP port.
    #[arg(long, default_value_t = 179)]
    peer_port: u16,
    /// Seconds between heartbeats to the agents API.
    #[arg(long, default_value_t = 30)]
    report_interval: u64,
}

/// The tables the speaker follows.
const TABLES: [Table; 8] = [
    Table::BgpSpeaker,
    Table::BgpPeer,
    Table::Subnet,
    Table::SubnetPool,
    Table::Router,
    Table::FloatingIp,
    Table::Port,
    Table::Chassis,
];

pub fn run(args: Args) -> ExitCode {
    let token = match crate::nb_token::read(args.nb_token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dragonflow bgp: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dragonflow bgp: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main(args, token)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dragonflow bgp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The objects the routes are computed from, by table and id (JSON decoded lazily).
#[derive(Default)]
struct Model {
    objects: HashMap<String, BTreeMap<String, Vec<u8>>>,
}

impl Model {
    fn put(&mut self, table: &str, id: &str, value: Option<Vec<u8>>) {
        let t = self.objects.entry(table.to_string()).or_default();
        match value {
            Some(v) => {
                t.insert(id.to_string(), v);
            }
            None => {
                t.remove(id);
            }
        }
    }

    fn all<T: serde::de::DeserializeOwned>(&self, table: Table) -> Vec<T> {
        self.objects
            .get(table.name())
            .map(|t| {
                t.values()
                    .filter_map(|v| serde_json::from_slice(v).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A running session and what it was started with.
struct Running {
    config: PeerConfig,
    routes: watch::Sender<Routes>,
    task: tokio::task::JoinHandle<()>,
}

async fn main(args: Args, token: Option<String>) -> Result<(), String> {
    let source: Box<dyn Source> =
        if args.nb.starts_with("http://") || args.nb.starts_with("https://") {
            Box::new(nbdb::remote::Remote::with_token(&args.nb, token.as_deref()))
        } else {
            Box::new(
                nbdb::connect(&args.nb)
                    .await
                    .map_err(|e| format!("NB store {}: {e}", nbdb::url::redacted(&args.nb)))?,
            )
        };
    let beats = ::controller::nb::Nb::connect(&args.nb, None, token.as_deref())
        .await?
        .beats();
    let (status_tx, status_rx) = watch::channel((0usize, 0usize));
    tokio::spawn(heartbeat(
        beats,
        args.host.clone(),
        Duration::from_secs(args.report_interval),
        status_rx,
    ));
    let filter = Filter {
        tables: Some(TABLES.iter().map(|t| t.name().to_string()).collect()),
        topics: None,
    };
    let mut sessions: BTreeMap<(String, String), Running> = BTreeMap::new();
    let mut dead = dead_hosts(args.nb.clone(), token.clone());
    loop {
        let mut model = Model::default();
        let snap = match source.snapshot(&filter).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "NB snapshot failed; again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for r in snap.records {
            model.put(&r.table, &r.id, Some(r.value));
        }
        tracing::info!(
            revision = snap.revision,
            "BGP speaker following the NB store"
        );
        apply(&args, &model, &mut sessions, &status_tx, &dead.borrow());
        // The changes come through a channel, so that waiting for one can be given up
        // for a change of the hosts' liveness without losing it.
        let mut changes = source.watch(snap.revision, filter.clone());
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let forward = tokio::spawn(async move {
            loop {
                let c = changes.next().await;
                let failed = c.is_err();
                if tx.send(c).await.is_err() || failed {
                    return;
                }
            }
        });
        loop {
            let c = tokio::select! {
                c = rx.recv() => c,
                Ok(()) = dead.changed() => {
                    tracing::info!(dead = ?*dead.borrow(), "hosts' controllers alive or dead: routes again");
                    apply(&args, &model, &mut sessions, &status_tx, &dead.borrow());
                    continue;
                }
            };
            let c = match c {
                Some(Ok(c)) => c,
                None | Some(Err(StoreError::Compacted { .. })) => break,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "NB watch failed; taking a new snapshot");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            };
            model.put(&c.table, &c.id, c.value);
            // Whatever else arrives within 20 ms goes with it.
            let until = tokio::time::Instant::now() + Duration::from_millis(20);
            while let Ok(Some(Ok(c))) = tokio::time::timeout_at(until, rx.recv()).await {
                model.put(&c.table, &c.id, c.value);
            }
            apply(&args, &model, &mut sessions, &status_tx, &dead.borrow());
        }
        forward.abort();
    }
}

/// The hosts whose controller's heartbeat ran out, read every second from the agents'
/// heartbeats (`GET /nb/v1/agents`, or the store's lease space over one connection); a
/// change wakes the receiver. A failed read leaves the last answer standing.
fn dead_hosts(nb: String, token: Option<String>) -> watch::Receiver<Vec<String>> {
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(async move {
        let http = nb.starts_with("http://") || nb.starts_with("https://");
        let store = if http {
            None
        } else {
            nbdb::connect(&nb).await.ok()
        };
        loop {
            let read = match &store {
                Some(s) => crate::db::realized_in(s.as_ref()).await,
                None => {
                    let (nb, token) = (nb.clone(), token.clone());
                    tokio::task::spawn_blocking(move || crate::db::realized(&nb, token.as_deref()))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()))
                }
            };
            match read {
                Ok(hosts) => {
                    let mut now: Vec<String> = hosts
                        .into_iter()
                        .filter(|h| !h.alive)
                        .map(|h| h.host)
                        .collect();
                    now.sort();
                    tx.send_if_modified(|d| {
                        let changed = *d != now;
                        *d = now;
                        changed
                    });
                }
                Err(e) => tracing::debug!(error = %e, "the agents' heartbeats unreadable"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    rx
}

/// Computes every speaker's routes and brings the sessions in line: new ones started,
/// gone or changed ones stopped, routes handed to each.
fn apply(
    args: &Args,
    model: &Model,
    sessions: &mut BTreeMap<(String, String), Running>,
    status: &watch::Sender<(usize, usize)>,
    dead_hosts: &[String],
) {
    let speakers: Vec<BgpSpeaker> = model.all(Table::BgpSpeaker);
    let peers: HashMap<String, BgpPeer> = model
        .all::<BgpPeer>(Table::BgpPeer)
        .into_iter()
        .map(|p| (p.meta.id.clone(), p))
        .collect();
    let subnets: Vec<Subnet> = model.all(Table::Subnet);
    let pools: Vec<SubnetPool> = model.all(Table::SubnetPool);
    let routers: Vec<Router> = model.all(Table::Router);
    let fips: Vec<FloatingIp> = model.all(Table::FloatingIp);
    let ports: Vec<Port> = model.all(Table::Port);
    let chassis: Vec<Chassis> = model.all(Table::Chassis);
    let world = World {
        subnets: &subnets,
        pools: &pools,
        routers: &routers,
        floating_ips: &fips,
        ports: &ports,
        chassis: &chassis,
        dead_hosts,
    };
    let mut wanted = BTreeSet::new();
    let mut total = 0;
    for s in &speakers {
        let routes: BTreeMap<Prefix, std::net::IpAddr> = advertised_routes(s, &world)
            .into_iter()
            .filter_map(|(net, nh)| Some((Prefix::new(net.addr(), net.prefix_len())?, nh)))
            .collect();
        total += routes.len();
        let routes: Routes = Arc::new(routes);
        for peer_id in &s.peers {
            let Some(p) = peers.get(peer_id) else {
                continue;
            };
            let md5 = match (p.auth_type.as_str(), &p.password) {
                ("md5", Some(key)) if !key.is_empty() && key.len() <= md5::MAX_KEY => {
                    Some(peer::Key(key.clone()))
                }
                ("md5", _) => {
                    tracing::error!(
                        peer = %p.peer_ip,
                        "auth_type md5 needs a password of 1 to {} bytes: peer skipped",
                        md5::MAX_KEY
                    );
                    continue;
                }
                _ => None,
            };
            let family = if s.ip_version == 6 {
                (AFI_IPV6, SAFI_UNICAST)
            } else {
                (AFI_IPV4, SAFI_UNICAST)
            };
            let config = PeerConfig {
                fsm: Config {
                    local_as: s.local_as,
                    router_id: args.router_id,
                    peer_as: p.remote_as,
                    hold_time: args.hold_time,
                    connect_retry: Duration::from_secs(args.connect_retry.max(1)),
                    families: vec![family],
                    restart_time: args.restart_time,
                },
                peer: SocketAddr::new(p.peer_ip, args.peer_port),
                local: args
                    .local_addresses
                    .iter()
                    .find(|a| a.is_ipv4() == p.peer_ip.is_ipv4())
                    .copied(),
                md5,
            };
            let key = (s.meta.id.clone(), peer_id.clone());
            wanted.insert(key.clone());
            match sessions.get(&key) {
                Some(r) if r.config == config && !r.task.is_finished() => {
                    r.routes.send_if_modified(|old| {
                        if **old == *routes {
                            return false;
                        }
                        *old = routes.clone();
                        true
                    });
                }
                _ => {
                    if let Some(old) = sessions.remove(&key) {
                        old.task.abort();
                    }
                    tracing::info!(speaker = %s.meta.id, peer = %config.peer, local_as = s.local_as, remote_as = p.remote_as, "BGP session starting");
                    let (tx, rx) = watch::channel(routes.clone());
                    let task = tokio::spawn(peer::run(config.clone(), rx));
                    sessions.insert(
                        key,
                        Running {
                            config,
                            routes: tx,
                            task,
                        },
                    );
                }
            }
        }
    }
    // Sessions no longer wanted: dropping the sender tells the task to say CEASE.
    sessions.retain(|key, _| wanted.contains(key));
    let _ = status.send((speakers.len(), total));
}

/// Reports this process to the agents API every `interval`.
async fn heartbeat(
    beats: ::controller::nb::Beats,
    host: String,
    interval: Duration,
    mut status: watch::Receiver<(usize, usize)>,
) {
    let started_at = model::time::now();
    loop {
        let (speakers, routes) = *status.borrow_and_update();
        let mut configurations = BTreeMap::new();
        configurations.insert("bgp_speakers".into(), serde_json::json!(speakers));
        configurations.insert("advertise_routes".into(), serde_json::json!(routes));
        let updates = peer::UPDATES_SENT.load(std::sync::atomic::Ordering::Relaxed);
        configurations.insert("updates_sent".into(), serde_json::json!(updates));
        let report = model::agent::Report {
            agent_type: model::agent::BGP_TYPE.into(),
            binary: model::agent::BGP_BINARY.into(),
            host: host.clone(),
            topic: "bgp_dragent".into(),
            availability_zone: None,
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: started_at.clone(),
            applied_revision: 0,
            configurations,
            lb_stats: Default::default(),
        };
        if let Err(e) = beats.send(&report, Duration::from_secs(75)).await {
            tracing::warn!(error = %e, "heartbeat not written");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = status.changed() => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}
