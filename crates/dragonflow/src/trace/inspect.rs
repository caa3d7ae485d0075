//! `dragonflow port` and `dragonflow flows --owner`: a port as its host realizes it
//! (binding, status, whether its host's controller has applied its last change, its flows
//! by app, its QoS meters with the rule each comes from and, read from the switch, their
//! counters), and the flows each host compiles for one Neutron object; from the same
//! compiled world as `dragonflow trace`.

use super::explain::describe;
use super::world::{Compiled, World};
use controller::apps::Owner;
use controller::pipeline::{Cookie, TABLES};
use controller::view::{Touched, View};
use model::Table;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The object named by an id or name: a port, network, router, security group rule or
/// floating IP (the owners flows are compiled for).
pub fn find_owner(view: &View, what: &str) -> Result<Owner, String> {
    let by = |table: Table, ids: Vec<&String>| -> Option<Result<Owner, String>> {
        match ids.as_slice() {
            [] => None,
            [id] => Some(Ok(Touched {
                table,
                id: (*id).clone(),
            })),
            many => Some(Err(format!(
                "{what} names {} {}s: give an id",
                many.len(),
                table.name()
            ))),
        }
    };
    let named = |table: Table, it: Vec<(&String, &str)>| {
        by(
            table,
            it.into_iter()
                .filter(|(id, name)| id.as_str() == what || *name == what)
                .map(|(id, _)| id)
                .collect(),
        )
    };
    named(
        Table::Port,
        view.ports
            .iter()
            .map(|(i, p)| (i, p.meta.name.as_str()))
            .collect(),
    )
    .or_else(|| {
        named(
            Table::Network,
            view.networks
                .iter()
                .map(|(i, n)| (i, n.meta.name.as_str()))
                .collect(),
        )
    })
    .or_else(|| {
        named(
            Table::Router,
            view.routers
                .iter()
                .map(|(i, r)| (i, r.meta.name.as_str()))
                .collect(),
        )
    })
    .or_else(|| {
        named(
            Table::SecurityGroupRule,
            view.rules.keys().map(|i| (i, "")).collect(),
        )
    })
    .or_else(|| {
        named(
            Table::FloatingIp,
            view.floating_ips.keys().map(|i| (i, "")).collect(),
        )
    })
    .unwrap_or_else(|| {
        Err(format!(
            "no port, network, router, security group rule or floating IP is called {what}"
        ))
    })
}

/// One compiled flow, readable: table, priority, match, instructions.
fn flow_line(k: &controller::reconcile::FlowKey, b: &controller::reconcile::FlowBody) -> Value {
    let table = TABLES
        .iter()
        .find(|t| t.id == k.table())
        .map_or("", |t| t.name);
    let m: Vec<String> = k.match_().fields.iter().map(|f| f.to_string()).collect();
    json!({
        "table": k.table(),
        "table_name": table,
        "priority": k.priority(),
        "cookie": format!("{:#x}", b.cookie),
        "match": m.join(","),
        "instructions": format!("{:?}", b.instructions()),
    })
}

/// The flows of `owner` on one host.
fn flows_of(c: &Compiled, owner: &Owner) -> Vec<Value> {
    let mut out: Vec<Value> = c
        .desired
        .table()
        .iter()
        .filter(|(k, _)| c.desired.owner_of(k) == Some(owner))
        .map(|(k, b)| flow_line(k, b))
        .collect();
    out.sort_by_key(|v| {
        (
            v["table"].as_u64(),
            std::cmp::Reverse(v["priority"].as_u64()),
        )
    });
    out
}

/// `dragonflow flows --owner X`: per host, the flows compiled for X.
pub fn flows(world: &World, what: &str, json_out: bool) -> Result<(), String> {
    let owner = find_owner(&world.view, what)?;
    let mut by_host = BTreeMap::new();
    for (name, c) in &world.hosts {
        let f = flows_of(c, &owner);
        if !f.is_empty() {
            by_host.insert(name.clone(), f);
        }
    }
    if json_out {
        println!(
            "{}",
            json!({"owner": describe(&world.view, &owner), "hosts": by_host})
        );
        return Ok(());
    }
    println!("{}", describe(&world.view, &owner));
    if by_host.is_empty() {
        println!("  no host compiles a flow for it");
    }
    for (host, flows) in by_host {
        println!("{host}: {} flows", flows.len());
        for f in flows {
            println!(
                "  {:>3} {:<14} prio {:<5} {} -> {}",
                f["table"],
                f["table_name"].as_str().unwrap_or_default(),
                f["priority"],
                f["match"].as_str().unwrap_or_default(),
                f["instructions"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `dragonflow port X`: the port, its host, whether the host has applied its last change,
/// and its flows by app.
/// `stored_at`: the store revision of the port's last write; `applied`: its host's
/// controller's applied revision and liveness, from its heartbeat.
pub fn port(
    world: &World,
    what: &str,
    stored_at: impl Fn(&str) -> u64,
    applied: impl Fn(&str) -> Option<(u64, bool)>,
    counters: Option<&[openflow::meter::MeterStats]>,
    json_out: bool,
) -> Result<(), String> {
    let p = super::frame::find_port(&world.view, what)?;
    let owner = Touched {
        table: Table::Port,
        id: p.meta.id.clone(),
    };
    let host = world.hosts.get(&p.binding_host_id);
    let mut by_app: BTreeMap<String, usize> = BTreeMap::new();
    let mut ofport = None;
    if let Some(c) = host {
        ofport = c.ofport_of(&p.meta.id);
        for (k, b) in c.desired.table().iter() {
            if c.desired.owner_of(k) == Some(&owner) {
                let app = Cookie::decode(b.cookie).map_or("?".into(), |k| format!("{:?}", k.app));
                *by_app.entry(app).or_default() += 1;
            }
        }
    }
    let stored = stored_at(&p.meta.id);
    let realized = match applied(&p.binding_host_id) {
        Some((rev, alive)) => json!({
            "realized": alive && rev >= stored,
            "store_revision": stored,
            "host_applied_revision": rev,
            "host_alive": alive,
        }),
        None => json!({"realized": false, "store_revision": stored, "host_alive": false}),
    };
    let v = json!({
        "id": p.meta.id,
        "name": p.meta.name,
        "network": describe(&world.view, &Touched { table: Table::Network, id: p.network_id.clone() }),
        "mac_address": p.mac_address.to_string(),
        "fixed_ips": p.fixed_ips.iter().map(|f| f.ip_address.to_string()).collect::<Vec<_>>(),
        "status": p.status.as_str(),
        "binding_host_id": p.binding_host_id,
        "plugged_at_ofport": ofport,
        "revision_number": p.meta.revision_number,
        "realized": realized,
        "flows_by_app": by_app,
        "security_groups": p.security_groups,
        "qos": qos(&world.view, &p, host, counters),
    });
    if json_out {
        println!("{v}");
        return Ok(());
    }
    for (k, val) in v.as_object().into_iter().flatten() {
        println!("{k:<18} {val}");
    }
    if host.is_none() {
        println!("(bound to no host with a chassis record: no flows are compiled for it anywhere)");
    }
    Ok(())
}

/// The port's QoS: the policy that applies (its own or its network's), its DSCP mark, and
/// each meter with the rule it comes from, whether its host compiles it, and (read from
/// the switch) its counters: packets and bytes in, and dropped by its band.
fn qos(
    view: &View,
    p: &model::Port,
    host: Option<&Compiled>,
    counters: Option<&[openflow::meter::MeterStats]>,
) -> Value {
    use controller::apps::qos;
    let Some(policy) = view.qos_policy_of(p) else {
        return Value::Null;
    };
    let meters: Vec<Value> = qos::meters_of(view, p)
        .into_iter()
        .map(|m| {
            let compiled = host.is_some_and(|c| c.desired.groups().meter(m.id).is_some());
            let mut v = json!({
                "meter": m.id,
                "direction": m.direction.as_str(),
                "rate_kbps": m.rate_kbps,
                "burst_kb": m.burst_kb,
                "rule": m.rule_id,
                "policy": m.policy_id,
                "on_host": compiled,
            });
            if let Some(s) = counters.and_then(|c| c.iter().find(|s| s.meter_id == m.id)) {
                v["packets_in"] = json!(s.packet_in_count);
                v["bytes_in"] = json!(s.byte_in_count);
                let dropped = s.bands.first();
                v["packets_dropped"] = json!(dropped.map(|b| b.packet_count));
                v["bytes_dropped"] = json!(dropped.map(|b| b.byte_count));
            }
            v
        })
        .collect();
    json!({
        "policy": policy,
        "from": if p.qos_policy_id.is_some() { "port" } else { "network" },
        "dscp_mark": qos::mark_of(view, p),
        "meters": meters,
    })
}
