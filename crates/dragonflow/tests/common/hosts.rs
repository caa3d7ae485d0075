//! The scale harness's scenario, shared by `tests/hosts.rs` (a few hosts, checked) and
//! `benches/hosts.rs` (up to a thousand, measured). A cloud in OVN's scale-test shape is
//! made through the API of a real server: per group of hosts, a project with a router
//! joining its networks, a security group whose rule admits its own members (a remote
//! group), and ports bound to the group's hosts. Then simulated hosts
//! (`controller::simhost`: the real core and NB follower, a counting switch) start in this
//! process, one task each, and waves of port creates, deletes and rule changes are timed
//! until every host that needs each change has it in its switch.
//!
//! Which hosts need a change is known from the shape alone: a group's hosts have ports on
//! every network of the group (and nothing else), so they, and only they, need the group's
//! ports and rules. Any other host that compiled one received what it did not need.

use super::{Server, host_token};
use controller::simhost::{self, Figures, Key, Taken};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

/// How a cloud is laid out.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub hosts: usize,
    pub ports_per_host: usize,
    pub hosts_per_group: usize,
    pub nets_per_group: usize,
}

impl Shape {
    /// OVN's scale-test shape at `hosts`: 20 ports a host, groups of 50 hosts with one
    /// router and 10 networks each (1,000 hosts: 20,000 ports, 200 networks, 20 routers).
    pub fn ovn(hosts: usize) -> Shape {
        Shape {
            hosts,
            ports_per_host: 20,
            hosts_per_group: 50,
            nets_per_group: 10,
        }
    }

    pub fn groups(&self) -> usize {
        self.hosts.div_ceil(self.hosts_per_group)
    }

    pub fn hosts_of(&self, group: usize) -> Range<usize> {
        group * self.hosts_per_group..((group + 1) * self.hosts_per_group).min(self.hosts)
    }

    pub fn group_of(&self, host: usize) -> usize {
        host / self.hosts_per_group
    }
}

/// One group's objects.
pub struct Group {
    pub project: String,
    pub networks: Vec<String>,
    pub security_group: String,
}

/// The cloud as made: the groups, and each host's ports.
pub struct Cloud {
    pub shape: Shape,
    pub groups: Vec<Group>,
    pub ports: Vec<Vec<String>>,
}

fn chassis(h: usize) -> String {
    format!("sim-{h:04}")
}

/// POST expecting 201. A 503 (the store away, e.g. just restarted) is tried again for a
/// while, as Neutron's clients do.
fn post(srv: &Server, collection: &str, body: Value) -> Value {
    let start = Instant::now();
    loop {
        let (st, v) = srv.call("POST", &format!("/v2.0/{collection}"), Some(body.clone()));
        if st == 503 && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(st, 201, "POST {collection}: {v}");
        return v;
    }
}

/// Creates one `resource` in `collection`; its id.
fn create(srv: &Server, collection: &str, resource: &str, attrs: Value) -> String {
    let v = post(srv, collection, json!({ resource: attrs }));
    v[resource]["id"].as_str().expect("an id").to_string()
}

/// Makes the cloud of `shape` through `srv`'s API; ports in bulk requests.
pub fn build(srv: &Server, shape: Shape) -> Cloud {
    let mut groups = Vec::new();
    let mut ports = vec![Vec::new(); shape.hosts];
    for g in 0..shape.groups() {
        let project = format!("scale-{g:03}");
        let router = create(
            srv,
            "routers",
            "router",
            json!({"name": format!("r{g}"), "project_id": project}),
        );
        let mut networks = Vec::new();
        for i in 0..shape.nets_per_group {
            let x = g * shape.nets_per_group + i;
            let net = create(
                srv,
                "networks",
                "network",
                json!({"name": format!("n{x}"), "project_id": project}),
            );
            let subnet = create(
                srv,
                "subnets",
                "subnet",
                json!({"network_id": net, "project_id": project, "ip_version": 4,
                    "cidr": format!("10.{}.{}.0/24", x / 256, x % 256), "enable_dhcp": false}),
            );
            let (st, v) = srv.call(
                "PUT",
                &format!("/v2.0/routers/{router}/add_router_interface"),
                Some(json!({"subnet_id": subnet})),
            );
            assert_eq!(st, 200, "router interface: {v}");
            networks.push(net);
        }
        let sg = create(
            srv,
            "security-groups",
            "security_group",
            json!({"name": format!("sg{g}"), "project_id": project}),
        );
        post(
            srv,
            "security-group-rules",
            json!({"security_group_rule": {"security_group_id": sg, "project_id": project,
                "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "remote_group_id": sg}}),
        );
        let mut bodies = Vec::new();
        for h in shape.hosts_of(g) {
            for k in 0..shape.ports_per_host {
                bodies.push((
                    h,
                    port_body(&project, &networks[k % networks.len()], &sg, h),
                ));
            }
        }
        for chunk in bodies.chunks(500) {
            let v = post(
                srv,
                "ports",
                json!({"ports": chunk.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>()}),
            );
            let made = v["ports"].as_array().expect("ports");
            for ((h, _), p) in chunk.iter().zip(made) {
                ports[*h].push(p["id"].as_str().expect("port id").to_string());
            }
        }
        groups.push(Group {
            project,
            networks,
            security_group: sg,
        });
    }
    Cloud {
        shape,
        groups,
        ports,
    }
}

fn port_body(project: &str, network: &str, sg: &str, host: usize) -> Value {
    json!({"network_id": network, "project_id": project, "security_groups": [sg],
        "binding:host_id": chassis(host), "device_owner": "compute:nova"})
}

/// The ports the server reports ACTIVE.
pub fn active_ports(srv: &Server) -> usize {
    let (st, v) = srv.call("GET", "/v2.0/ports?status=ACTIVE&fields=id", None);
    assert_eq!(st, 200, "list ports: {v}");
    v["ports"].as_array().map_or(0, Vec::len)
}

/// The simulated hosts, running in a runtime of their own.
pub struct Hosts {
    pub rt: tokio::runtime::Runtime,
    pub handles: Vec<simhost::Handle>,
}

impl Hosts {
    /// Starts a host per host of `cloud`, reading `nb` (the server's NB listener, with
    /// each host's token, or a store's URL), each with its ports plugged.
    pub fn start(cloud: &Cloud, nb: &str, threads: usize) -> Hosts {
        Hosts::start_with(cloud, nb, None, threads)
    }

    /// The same, each host's change stream from the fan-out at `pubsub` (filled from `nb`).
    pub fn start_with(cloud: &Cloud, nb: &str, pubsub: Option<&str>, threads: usize) -> Hosts {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("runtime");
        let token = nb.starts_with("http");
        let handles = (0..cloud.shape.hosts)
            .map(|h| {
                let cfg = simhost::Config {
                    chassis: chassis(h),
                    ip: std::net::Ipv4Addr::new(172, 16, (h / 250) as u8, (h % 250 + 1) as u8)
                        .into(),
                    nb: nb.to_string(),
                    token: token.then(|| host_token(&chassis(h))),
                    plugged: cloud.ports[h].clone(),
                    pubsub: pubsub.map(str::to_string),
                };
                rt.block_on(simhost::start(cfg)).expect("a simulated host")
            })
            .collect();
        Hosts { rt, handles }
    }

    pub fn figures(&self) -> Vec<Figures> {
        self.rt.block_on(async {
            let mut out = Vec::with_capacity(self.handles.len());
            for h in &self.handles {
                out.push(h.figures().await.expect("a running host"));
            }
            out
        })
    }

    pub fn record(&self, on: bool) {
        for h in &self.handles {
            h.seen.record(on);
        }
    }

    pub fn take(&self) -> Vec<Taken> {
        self.handles.iter().map(|h| h.seen.take()).collect()
    }

    pub fn stop(self) {
        for h in &self.handles {
            h.send(simhost::Command::Stop);
        }
        self.rt.shutdown_timeout(Duration::from_secs(5));
    }
}

/// A change the driver made, and what counts as it having arrived.
#[derive(Debug, Clone)]
pub struct Op {
    pub key: Key,
    pub group: usize,
    /// The host a port is bound to: its ACTIVE report is its arrival there.
    pub bound: Option<usize>,
    pub at: Instant,
}

/// A wave's result.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Per change, from the request to the last needing host having it in its switch.
    pub latencies: Vec<Duration>,
    /// (change, host) pairs never reached before the deadline.
    pub missing: usize,
    /// (change, host) pairs where a host compiled a change it did not need.
    pub unneeded: usize,
    /// Per (change, needing host): from the host taking the change to its commit, which
    /// is the host's own share of the latency (the rest is waiting for the stream and,
    /// with every host in one process, for a core).
    pub on_host: Vec<Duration>,
}

/// Creates `n` ports, round-robin over the groups, `gap` apart; each is plugged on its
/// host as soon as the API answers (as Nova plugs a VIF).
pub fn create_ports(
    srv: &Server,
    cloud: &mut Cloud,
    hosts: &Hosts,
    n: usize,
    gap: Duration,
) -> Vec<Op> {
    let mut ops = Vec::new();
    for j in 0..n {
        let g = j % cloud.groups.len();
        let range = cloud.shape.hosts_of(g);
        let h = range.start + (j / cloud.groups.len()) % range.len();
        let group = &cloud.groups[g];
        let net = &group.networks[j % group.networks.len()];
        let at = Instant::now();
        let id = create(
            srv,
            "ports",
            "port",
            port_body(&group.project, net, &group.security_group, h),
        );
        hosts.handles[h].send(simhost::Command::Plug(id.clone()));
        cloud.ports[h].push(id.clone());
        ops.push(Op {
            key: Key {
                table: model::Table::Port.name().into(),
                id,
                gone: false,
            },
            group: g,
            bound: Some(h),
            at,
        });
        pace(at, gap);
    }
    ops
}

/// Unplugs and deletes the ports of `created`, `gap` apart.
pub fn delete_ports(srv: &Server, hosts: &Hosts, created: &[Op], gap: Duration) -> Vec<Op> {
    let mut ops = Vec::new();
    for op in created {
        let at = Instant::now();
        if let Some(h) = op.bound {
            hosts.handles[h].send(simhost::Command::Unplug(op.key.id.clone()));
        }
        let (st, v) = srv.call("DELETE", &format!("/v2.0/ports/{}", op.key.id), None);
        assert_eq!(st, 204, "delete port: {v}");
        ops.push(Op {
            key: Key {
                gone: true,
                ..op.key.clone()
            },
            group: op.group,
            bound: None,
            at,
        });
        pace(at, gap);
    }
    ops
}

/// Adds `n` rules to the groups' security groups (round-robin), `gap` apart: TCP to a
/// port of its own from the group's members.
pub fn add_rules(
    srv: &Server,
    cloud: &Cloud,
    n: usize,
    first_port: usize,
    gap: Duration,
) -> Vec<Op> {
    let mut ops = Vec::new();
    for j in 0..n {
        let g = j % cloud.groups.len();
        let group = &cloud.groups[g];
        let at = Instant::now();
        let port = first_port + j;
        let id = create(
            srv,
            "security-group-rules",
            "security_group_rule",
            json!({"security_group_id": group.security_group,
                "project_id": group.project, "direction": "ingress", "ethertype": "IPv4",
                "protocol": "tcp", "port_range_min": port, "port_range_max": port,
                "remote_group_id": group.security_group}),
        );
        ops.push(Op {
            key: Key {
                table: model::Table::SecurityGroupRule.name().into(),
                id,
                gone: false,
            },
            group: g,
            bound: None,
            at,
        });
        pace(at, gap);
    }
    ops
}

fn pace(since: Instant, gap: Duration) {
    if let Some(rest) = gap.checked_sub(since.elapsed()) {
        std::thread::sleep(rest);
    }
}

/// Waits (up to `deadline`) until every host that needs each change of `ops` has it,
/// then counts: each change's latency to its last needing host, the pairs never reached,
/// and the hosts that compiled a change they did not need.
pub fn settle(hosts: &Hosts, shape: Shape, ops: &[Op], deadline: Duration) -> Outcome {
    let start = Instant::now();
    let mut seen: Vec<Taken> = hosts.handles.iter().map(|_| Taken::default()).collect();
    let arrived = |seen: &[Taken], op: &Op, h: usize| -> Option<Instant> {
        if op.bound == Some(h) {
            seen[h].active.get(&op.key.id).copied()
        } else {
            seen[h].installed.get(&op.key).copied()
        }
    };
    loop {
        for (acc, new) in seen.iter_mut().zip(hosts.take()) {
            for (k, t) in new.installed {
                acc.installed.entry(k).or_insert(t);
            }
            for (k, t) in new.active {
                acc.active.entry(k).or_insert(t);
            }
            for (k, t) in new.received {
                acc.received.entry(k).or_insert(t);
            }
        }
        let all = ops.iter().all(|op| {
            shape
                .hosts_of(op.group)
                .all(|h| arrived(&seen, op, h).is_some())
        });
        if all || start.elapsed() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A moment more for any host that should not get them at all.
    std::thread::sleep(Duration::from_millis(200));
    for (acc, new) in seen.iter_mut().zip(hosts.take()) {
        acc.installed.extend(new.installed);
    }
    let mut out = Outcome::default();
    for op in ops {
        let mut last = Some(op.at);
        for h in shape.hosts_of(op.group) {
            match arrived(&seen, op, h) {
                Some(t) => last = last.map(|l| l.max(t)),
                None => {
                    out.missing += 1;
                    last = None;
                }
            }
        }
        if let Some(t) = last {
            out.latencies.push(t - op.at);
        }
        for h in shape.hosts_of(op.group) {
            if let (Some(r), Some(i)) = (
                seen[h].received.get(&op.key),
                seen[h].installed.get(&op.key),
            ) {
                out.on_host.push(*i - *r);
            }
        }
        let needed = shape.hosts_of(op.group);
        out.unneeded += (0..shape.hosts)
            .filter(|h| !needed.contains(h))
            .filter(|&h| {
                seen[h]
                    .installed
                    .keys()
                    .any(|k| k.table == op.key.table && k.id == op.key.id)
            })
            .count();
    }
    out.latencies.sort();
    out.on_host.sort();
    out
}

/// Per host, the networks it holds that no port of its own is on (selective distribution
/// working: none), with the host's index.
pub fn foreign_networks(figures: &[Figures]) -> Vec<(usize, usize)> {
    figures
        .iter()
        .enumerate()
        .map(|(h, f)| (h, f.networks.difference(&f.local_networks).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The least, the median and the most of a per-host figure.
pub fn spread(values: impl Iterator<Item = usize>) -> (usize, usize, usize) {
    let mut v: Vec<usize> = values.collect();
    v.sort_unstable();
    if v.is_empty() {
        return (0, 0, 0);
    }
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Whether each host of `cloud` holds exactly its group's networks.
pub fn holds_own_networks(cloud: &Cloud, figures: &[Figures]) -> Vec<String> {
    let mut wrong = Vec::new();
    let by_group: HashMap<usize, std::collections::BTreeSet<String>> = cloud
        .groups
        .iter()
        .enumerate()
        .map(|(g, grp)| (g, grp.networks.iter().cloned().collect()))
        .collect();
    for (h, f) in figures.iter().enumerate() {
        let own = &by_group[&cloud.shape.group_of(h)];
        if &f.networks != own {
            wrong.push(format!(
                "{}: holds {} networks, {} of its group",
                chassis(h),
                f.networks.len(),
                f.networks.intersection(own).count()
            ));
        }
    }
    wrong
}
