//! What a traced packet went through, in Neutron terms: each flow it hit with its table,
//! app and the object that owns it, and a one-line verdict (delivered where, answered by
//! which responder, or dropped by what). Pure: the world and the switches' account in,
//! lines out.

use super::frame::Probe;
use super::rules;
use super::world::{Compiled, World};
use controller::apps::Owner;
use controller::pipeline::{Cookie, TABLES, table as t};
use controller::view::View;
use fake_switch::{Delivery, Step};
use model::{Direction, Table};
use serde::Serialize;

/// One flow hit.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub host: String,
    pub table: u8,
    pub table_name: &'static str,
    pub priority: u16,
    /// The app that compiled the flow (from its cookie).
    pub app: String,
    /// The Neutron object the flow was compiled for.
    pub owner: String,
    /// Resubmit depth (a recirculation through conntrack goes one deeper).
    pub depth: u8,
}

/// The whole account.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub steps: Vec<Line>,
    pub verdict: String,
    /// Where it ended: `delivered`, `dropped`, `controller`, `lost`, `left`.
    pub outcome: &'static str,
    /// Tables visited on the sender's host, in order (what `--real` compares).
    pub first_host_tables: Vec<u8>,
    /// What the trace took as known that only a controller's memory holds (a next hop's
    /// MAC learnt by ARP, listeners learnt by snooping), said with the verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn table_name(id: u8) -> &'static str {
    TABLES
        .iter()
        .find(|x| x.id == id)
        .map_or("(undeclared)", |x| x.name)
}

/// The owners of the flows a step may have hit: same table, priority and cookie.
fn owners_of(c: &Compiled, s: &Step) -> Vec<Owner> {
    let mut out: Vec<Owner> = c
        .desired
        .table()
        .iter()
        .filter(|(k, b)| k.table() == s.table && k.priority() == s.priority && b.cookie == s.cookie)
        .filter_map(|(k, _)| c.desired.owner_of(k).cloned())
        .collect();
    out.sort_by(|a, b| (a.table.name(), &a.id).cmp(&(b.table.name(), &b.id)));
    out.dedup();
    out
}

/// A port, network, router, group or rule as a reader knows it: its name, then its id.
pub fn describe(view: &View, o: &Owner) -> String {
    let named = |kind: &str, name: Option<&str>| match name.filter(|n| !n.is_empty()) {
        Some(n) => format!("{kind} {n} ({})", o.id),
        None => format!("{kind} {}", o.id),
    };
    match o.table {
        Table::Port => named("port", view.ports.get(&o.id).map(|p| p.meta.name.as_str())),
        Table::Network => named(
            "network",
            view.networks.get(&o.id).map(|n| n.meta.name.as_str()),
        ),
        Table::Router => named(
            "router",
            view.routers.get(&o.id).map(|r| r.meta.name.as_str()),
        ),
        Table::FloatingIp => named("floating IP", None),
        Table::SecurityGroupRule => match view.rules.get(&o.id) {
            Some(r) => {
                let group = view
                    .security_groups
                    .get(&r.security_group_id)
                    .map_or(r.security_group_id.as_str(), |g| g.meta.name.as_str());
                format!("security group {group}, rule {}", o.id)
            }
            None => named("security group rule", None),
        },
        Table::Chassis if o.id.is_empty() => "the base pipeline".to_string(),
        other => format!("{} {}", other.name(), o.id),
    }
}

/// The names of a port's security groups.
fn groups_of(view: &View, port: &str) -> String {
    let Some(p) = view.ports.get(port) else {
        return String::new();
    };
    p.security_groups
        .iter()
        .map(|g| {
            view.security_groups
                .get(g)
                .map_or(g.clone(), |g| g.meta.name.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The port bound at an OpenFlow port of a host, by name (else id).
fn port_at(c: &Compiled, ofport: u32) -> Option<String> {
    let id = c.at.get(&ofport)?.iface_id.as_ref()?;
    Some(match c.view.ports.get(id) {
        Some(p) if !p.meta.name.is_empty() => format!("{} ({id})", p.meta.name),
        _ => id.clone(),
    })
}

/// The account of one traced packet.
pub fn explain(world: &World, sender_host: &str, probe: Option<&Probe>, d: &Delivery) -> Report {
    let mut steps = Vec::new();
    for (host, out) in &d.hops {
        let Some(c) = world.hosts.get(host) else {
            continue;
        };
        for s in &out.trace {
            let app = Cookie::decode(s.cookie)
                .map_or_else(|| format!("{:#x}", s.cookie), |k| format!("{:?}", k.app));
            let owner = owners_of(c, s)
                .iter()
                .map(|o| describe(&world.view, o))
                .collect::<Vec<_>>()
                .join("; ");
            steps.push(Line {
                host: host.clone(),
                table: s.table,
                table_name: table_name(s.table),
                priority: s.priority,
                app,
                owner,
                depth: s.depth,
            });
        }
    }
    if let Some(p) = probe {
        name_rules(world, p, &mut steps);
    }
    let first_host_tables = d
        .hops
        .first()
        .filter(|(h, _)| h == sender_host)
        .map(|(_, o)| o.trace.iter().map(|s| s.table).collect())
        .unwrap_or_default();
    let (outcome, verdict) = verdict(world, probe, d);
    // The next hops taken as resolved matter to a packet that left by a router's gateway.
    let mut notes = if steps.iter().any(|s| s.app == "Nat") {
        world.assumed.clone()
    } else {
        Vec::new()
    };
    if let Some(p) = probe
        && model::mcast::snoopable(&p.dst)
        && (world.view.networks.get(&p.from.network_id))
            .is_some_and(controller::apps::mcast::snoops)
    {
        notes.push(format!(
            "which ports listen to {} is learnt by snooping and kept in each controller's memory: the trace knows only which hosts have listeners (their mcast_group records), and no port listening on them",
            p.dst
        ));
    }
    Report {
        steps,
        verdict,
        outcome,
        first_host_tables,
        notes,
    }
}

/// The security group steps name the rules that admitted the packet (the switch's rule
/// flows belong to the port they were compiled for).
fn name_rules(world: &World, p: &Probe, steps: &mut [Line]) {
    let receiver = receiver(&world.view, p);
    for s in steps.iter_mut() {
        let (port, dir) = match s.table {
            t::EGRESS_SG => (Some(p.from.meta.id.clone()), Direction::Egress),
            t::INGRESS_SG => (receiver.clone(), Direction::Ingress),
            _ => continue,
        };
        let Some(port) = port else { continue };
        let admitted: Vec<String> = rules::admitting(&world.view, &port, dir, p)
            .into_iter()
            .map(|r| rules::describe(&world.view, r))
            .collect();
        if !admitted.is_empty() {
            s.owner = format!("{}; admitted by {}", s.owner, admitted.join(" / "));
        }
    }
}

fn verdict(world: &World, probe: Option<&Probe>, d: &Delivery) -> (&'static str, String) {
    let what = probe.map_or_else(
        || "the frame".to_string(),
        |p| match p.proto.as_str() {
            "icmp" => format!("icmp from {} to {}", p.src, p.dst),
            proto => format!("{proto}/{} from {} to {}", p.dport, p.src, p.dst),
        },
    );
    if !d.delivered.is_empty() {
        let mut places = Vec::new();
        for (host, ofport, _) in &d.delivered {
            let Some(c) = world.hosts.get(host) else {
                continue;
            };
            let via = match d.hops.len() {
                0 | 1 => String::new(),
                _ => format!(" via {}", tunnel_left_by(world, d)),
            };
            let place = match (port_at(c, *ofport), c.at.get(ofport)) {
                (Some(p), _) => format!("delivered to {p} on {host}{via}"),
                (None, Some(i)) if i.name.starts_with("patch-int-") => format!(
                    "left {host} to physical network {}",
                    &i.name["patch-int-".len()..]
                ),
                // An interface of no port: the host's own (the metadata and DNS-over-TCP
                // server's internal port), named as OVSDB names it.
                (None, Some(i)) => format!("left {host} by {} (OpenFlow port {ofport})", i.name),
                _ => format!("left {host} by OpenFlow port {ofport}"),
            };
            places.push(place);
        }
        return ("delivered", format!("{what}: {}", places.join("; ")));
    }
    if let Some((host, pi)) = d.to_controller.first() {
        let app =
            Cookie::decode(pi.cookie).map_or("an unknown app".into(), |k| format!("{:?}", k.app));
        return (
            "controller",
            format!(
                "{what}: sent to {host}'s controller from table {} ({}), answered there by the {app} handler",
                pi.table,
                table_name(pi.table)
            ),
        );
    }
    if let Some((host, _, dst)) = d.lost.first() {
        return (
            "lost",
            format!(
                "{what}: tunnelled from {host} to {}, which is no host's tunnel address",
                std::net::Ipv4Addr::from(*dst)
            ),
        );
    }
    ("dropped", dropped(world, probe, d, &what))
}

/// The type of the tunnel port the packet left the first host by (`a tunnel` if none of
/// its outputs was one).
fn tunnel_left_by(world: &World, d: &Delivery) -> String {
    let Some((host, out)) = d.hops.first() else {
        return "a tunnel".into();
    };
    let tunnels = world.hosts.get(host).map(|c| &c.host.tunnels);
    out.outputs
        .iter()
        .find_map(|o| {
            tunnels?
                .iter()
                .find(|(_, p)| **p == o.port)
                .map(|(kind, _)| kind.clone())
        })
        .unwrap_or_else(|| "a tunnel".into())
}

/// Where and why it was dropped: the last flow hit, and for the security group tables the
/// groups that had no rule for it.
fn dropped(world: &World, probe: Option<&Probe>, d: &Delivery, what: &str) -> String {
    let Some((host, out)) = d.hops.last() else {
        return format!("{what}: never entered a switch");
    };
    let missed = out.log.iter().rev().find_map(|l| {
        l.trim()
            .strip_prefix("table ")?
            .strip_suffix(": miss")?
            .parse::<u8>()
            .ok()
    });
    let last = out.trace.last();
    let table = missed.or(last.map(|s| s.table)).unwrap_or(0);
    let to = probe.and_then(|p| receiver(&world.view, p));
    if let Some(why) = super::fwaas::dropped(&world.view, probe, to, (host, table), what) {
        return why;
    }
    let sg = |port: Option<&str>, dir: &str, peer: String| {
        let port = port.unwrap_or_default();
        let name = world.view.ports.get(port).map_or(port.to_string(), |p| {
            if p.meta.name.is_empty() {
                p.meta.id.clone()
            } else {
                p.meta.name.clone()
            }
        });
        format!(
            "{what}: dropped on {host} by security group {} of port {name} (no {dir} rule admits {} {peer})",
            groups_of(&world.view, port),
            probe.map_or("it".to_string(), |p| match p.proto.as_str() {
                "icmp" => "icmp".to_string(),
                proto => format!("{proto}/{}", p.dport),
            }),
        )
    };
    match table {
        t::EGRESS_SG | t::EGRESS_CT => sg(
            probe.map(|p| p.from.meta.id.as_str()),
            "egress",
            probe.map_or(String::new(), |p| format!("to {}", p.dst)),
        ),
        t::INGRESS_SG | t::INGRESS_CT => sg(
            probe.and_then(|p| receiver(&world.view, p)).as_deref(),
            "ingress",
            probe.map_or(String::new(), |p| format!("from {}", p.src)),
        ),
        t::PORT_SECURITY => format!(
            "{what}: dropped on {host} by port security: the sender's MAC and addresses do not match its port"
        ),
        _ => {
            let by = match (missed, last) {
                (Some(_), _) | (None, None) => "no flow matched (table miss)".to_string(),
                (None, Some(s)) => {
                    let owners = world
                        .hosts
                        .get(host)
                        .map(|c| owners_of(c, s))
                        .unwrap_or_default();
                    let owners: Vec<String> =
                        owners.iter().map(|o| describe(&world.view, o)).collect();
                    format!("a flow of {}", owners.join("; "))
                }
            };
            format!(
                "{what}: dropped on {host} in table {table} ({}): {by}",
                table_name(table)
            )
        }
    }
}

/// The port the probe is addressed to: on the sender's network, else any port with the
/// address, else the port behind a floating IP of it.
fn receiver(view: &View, p: &Probe) -> Option<String> {
    if let Some(to) = &p.to_port {
        return Some(to.meta.id.clone());
    }
    view.ports
        .values()
        .find(|q| q.fixed_ips.iter().any(|f| f.ip_address == p.dst))
        .map(|q| q.meta.id.clone())
        .or_else(|| {
            view.floating_ips
                .values()
                .find(|f| f.floating_ip_address == p.dst)
                .and_then(|f| f.port_id.clone())
        })
}
