//! `dragonflow controller`: its flags, turned into the local controller's configuration
//! (`::controller::runtime::Config`, of the `controller` crate), and running it.

#[derive(clap::Args)]
pub struct Args {
    /// This host's chassis name.
    #[arg(long)]
    chassis: String,
    /// Where the NB model comes from: the server's NB listener (`http://HOST:9697`, the
    /// only way to its embedded store) or the store itself (`etcd://HOST:PORT`,
    /// `redis://HOST:PORT`, `zk://HOST:PORT[,…][/PREFIX]`).
    #[arg(long, default_value = "http://127.0.0.1:9697")]
    nb: String,
    /// A file holding this host's NB token (`dragonflow nb-token --host CHASSIS`); else
    /// the environment's DRAGONFLOW_NB_TOKEN.
    #[arg(long)]
    nb_token_file: Option<std::path::PathBuf>,
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
    /// IGMP/MLD membership messages a VM port may send per second before its messages
    /// are dropped in the switch (0: no limit). Snooping is per network: tag it
    /// `mcast_snoop`.
    #[arg(long, default_value_t = 20)]
    mcast_rate_limit: u32,
    /// How long a VM port past the IGMP/MLD rate has its messages dropped, in seconds.
    #[arg(long, default_value_t = 10)]
    mcast_block_seconds: u64,
    /// The IGMP/MLD querier's interval in seconds (listeners expire after twice this plus
    /// the 10 s response time without a report).
    #[arg(long, default_value_t = 125)]
    mcast_query_interval: u64,
    /// DNS servers for subnets without dns_nameservers, comma-separated IPv4 addresses.
    #[arg(long, default_value = "", value_delimiter = ',')]
    dns_servers: Vec<String>,
    /// DHCP lease time in seconds.
    #[arg(long, default_value_t = 86400)]
    dhcp_lease_seconds: u32,
    /// The internal DNS domain: handed out by DHCP (option 15) and answered by internal
    /// DNS. Set it to the server's `dns_domain`.
    #[arg(long, default_value = "openstacklocal")]
    domain: String,
    /// Resolvers that internal DNS forwards other names to, comma-separated (`IP` or
    /// `IP:PORT`, `[IPv6]:PORT`); none: such questions are refused.
    #[arg(long, default_value = "", value_delimiter = ',')]
    dns_upstream: Vec<String>,
    /// DNS queries a VM port may send per second (and in a burst) before its queries are
    /// dropped in the switch for a second.
    #[arg(long, default_value_t = 100)]
    dns_rate_limit: u32,
    /// The server's NB listener (`http://HOST:9697`), when --nb names a store (etcd://,
    /// redis://, zk://): a host's SNAT address is allocated through it.
    #[arg(long)]
    api: Option<String>,
    /// Receive the change stream from the server's publisher (`zmq://HOST:PORT` or
    /// `redis://HOST:PORT`, as the server's --pubsub), filling any loss from --nb. Off
    /// by default: the stream is read from --nb alone.
    #[arg(long)]
    pubsub: Option<String>,
    /// Physical networks and their bridges: `physnet1:br-ex[,physnet2:br-ex2]`.
    #[arg(long, default_value = "")]
    bridge_mappings: String,
    /// Seconds between this controller's heartbeats (Neutron's `report_interval`).
    #[arg(long, default_value_t = 30)]
    report_interval: u64,
    /// Seconds a heartbeat lives when written to etcd or Redis directly (through the
    /// server's NB listener, the server's `agent_down_time` applies).
    #[arg(long, default_value_t = 75)]
    agent_down_time: u64,
    /// Seconds between two counts of the balancer listeners' statistics (Octavia's
    /// `/stats`), reported with the heartbeat when they changed.
    #[arg(long, default_value_t = 10)]
    lb_stats_interval: u64,
    /// The availability zone this host is in (Neutron's `availability_zone`, `nova`):
    /// its agent shows it, and networks and routers may name it as a hint.
    #[arg(long, default_value = "nova")]
    availability_zone: String,
    /// Serve Prometheus metrics on `http://ADDR/metrics` (off by default).
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Do not serve the metadata service (169.254.169.254) on this host.
    #[arg(long)]
    no_metadata: bool,
    /// The metadata server's address (the range's first) and the addresses standing for
    /// VM ports (the server's plus the port key) on br-int's internal port `df-metadata`:
    /// a block this host uses for nothing else, large enough for the cloud's port keys.
    #[arg(long, default_value = "198.18.0.0/15")]
    metadata_range: ipnet::Ipv4Net,
    /// Metadata requests a VM may make per second (and five times as many in a burst, for
    /// a booting VM's crawl); past it, 429.
    #[arg(long, default_value_t = 20)]
    metadata_rate_limit: u32,
    /// Nova's metadata API (`http://HOST:8775`): requests are passed on to it, signed, as
    /// Neutron's metadata agent does. Without it, answers come from the ports.
    #[arg(long)]
    nova_metadata_url: Option<String>,
    /// The file holding Nova's `metadata_proxy_shared_secret` (needed with
    /// --nova-metadata-url).
    #[arg(long)]
    metadata_proxy_shared_secret_file: Option<std::path::PathBuf>,
}

/// The controller's configuration and where its metrics are served.
pub type Setup = (::controller::runtime::Config, Option<std::net::SocketAddr>);

/// The controller's configuration, or what is wrong with a flag.
pub fn config(args: Args) -> Result<Setup, String> {
    let Args {
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
        mcast_rate_limit,
        mcast_block_seconds,
        mcast_query_interval,
        dns_servers,
        dhcp_lease_seconds,
        domain,
        dns_upstream,
        dns_rate_limit,
        bridge_mappings,
        api,
        pubsub,
        report_interval,
        agent_down_time,
        lb_stats_interval,
        availability_zone,
        metrics_listen,
        no_metadata,
        metadata_range,
        metadata_rate_limit,
        nova_metadata_url,
        metadata_proxy_shared_secret_file,
    } = args;
    if report_interval == 0 || agent_down_time == 0 {
        return Err("--report-interval and --agent-down-time must be at least 1".into());
    }
    // Neutron's limit on a zone's name; an empty one would be a zone nobody can name.
    if availability_zone.is_empty() || availability_zone.len() > 255 {
        return Err("--availability-zone takes a name of 1 to 255 bytes".into());
    }
    let mut dns = Vec::new();
    for d in dns_servers.iter().filter(|d| !d.is_empty()) {
        match d.trim().parse::<std::net::Ipv4Addr>() {
            Ok(a) => dns.push(a),
            Err(_) => return Err(format!("--dns-servers: {d:?} is not an IPv4 address")),
        }
    }
    let mut upstreams = Vec::new();
    for u in dns_upstream
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
    {
        let addr = u
            .parse::<std::net::SocketAddr>()
            .or_else(|_| u.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
            .map_err(|_| format!("--dns-upstream: {u:?} is not IP or IP:PORT"))?;
        upstreams.push(addr);
    }
    let nb_token = crate::nb_token::read(nb_token_file.as_deref())?;
    let openflow = match openflow.strip_prefix("unix:") {
        Some(p) => std::path::PathBuf::from(p),
        None => return Err("--openflow takes unix:PATH".into()),
    };
    let bridge_mappings = ::controller::runtime::parse_bridge_mappings(&bridge_mappings)
        .map_err(|e| format!("--bridge-mappings: {e}"))?;
    let nova = match (nova_metadata_url, metadata_proxy_shared_secret_file) {
        (None, None) => None,
        (Some(url), Some(file)) => {
            let secret = std::fs::read(&file)
                .map_err(|e| format!("--metadata-proxy-shared-secret-file: {e}"))?;
            let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err("--nova-metadata-url takes http://HOST:PORT".into());
            }
            Some(::controller::apps::metadata::serve::Nova { url, secret })
        }
        _ => {
            return Err(
                "--nova-metadata-url and --metadata-proxy-shared-secret-file go together".into(),
            );
        }
    };
    if metadata_range.prefix_len() > 30 {
        return Err("--metadata-range needs room for the server and ports (/30 at most)".into());
    }
    let metadata = (!no_metadata).then(|| {
        (
            metadata_range,
            ::controller::apps::metadata::serve::Config {
                rate: metadata_rate_limit,
                domain: domain.clone(),
                availability_zone: availability_zone.clone(),
                nova,
            },
        )
    });
    let cfg = ::controller::runtime::Config {
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
        pubsub,
        dhcp: ::controller::apps::dhcp::responder::Config {
            rate_limit: dhcp_rate_limit,
            block: std::time::Duration::from_secs(dhcp_block_seconds),
            dns_servers: dns,
            lease_seconds: dhcp_lease_seconds,
            domain: domain.clone(),
            metadata_route: !no_metadata,
        },
        dns: ::controller::apps::dns::responder::Config {
            domain,
            upstreams,
            rate_limit: dns_rate_limit,
            ..Default::default()
        },
        mcast: ::controller::apps::mcast::snoop::Config {
            rate: mcast_rate_limit,
            block: std::time::Duration::from_secs(mcast_block_seconds),
            query_interval: std::time::Duration::from_secs(mcast_query_interval.max(1)),
            ..Default::default()
        },
        bridge_mappings,
        report_interval: std::time::Duration::from_secs(report_interval),
        agent_down_time: std::time::Duration::from_secs(agent_down_time),
        availability_zone,
        metadata,
        lb_stats_interval: std::time::Duration::from_secs(lb_stats_interval.max(1)),
    };
    Ok((cfg, metrics_listen))
}

/// Threads of the controller's runtime, whatever the host's core count: its core is one
/// task, and the rest (OVSDB, OpenFlow, the NB stream, metadata and DNS) waits on I/O.
/// Tokio's default, one per core, would grow a per-host agent with the host.
const WORKERS: usize = 2;

/// One malloc arena for the whole process. glibc gives threads that allocate at once
/// arenas of their own (up to 8 per core), each keeping freed memory; the controller
/// allocates little at a time, and one arena saved 2.6 to 3.7 MiB of its 24 to 28 MiB
/// at 500 ports, at no cost in wiring time (docs/benchmarks.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // glibc's mallopt has no safe binding; see the SAFETY note.
fn one_malloc_arena() {
    // SAFETY: `mallopt` only sets an allocator tunable and takes no pointers; it runs
    // before the runtime starts any thread.
    let done = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    if done != 1 {
        tracing::debug!("mallopt(M_ARENA_MAX) refused; glibc keeps its arenas");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

/// Runs the controller until it stops.
pub fn run((cfg, metrics_listen): Setup) -> Result<(), String> {
    one_malloc_arena();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async move {
                let metrics = std::sync::Arc::new(
                    ::controller::metrics::Metrics::new(&cfg.chassis)
                        .map_err(|e| format!("metrics: {e}"))?,
                );
                if let Some(addr) = metrics_listen {
                    let m = metrics.clone();
                    crate::metrics::serve(addr, move || {
                        let m = m.clone();
                        async move { m.render() }
                    })
                    .await?;
                }
                ::controller::runtime::run(cfg, metrics).await
            })
        })
}
