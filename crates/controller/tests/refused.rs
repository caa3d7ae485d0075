//! Flows the switch refuses: a bundle refused as a whole loses only the ports whose flows
//! were refused (ERROR, flows left out); the rest go in with one more commit.

mod support;

use controller::apps;
use controller::view::Touched;
use model::{PortStatus, Table, fixtures};
use openflow::flow::FlowMod;
use openflow::oxm::Field;
use support::sim::Sim;

const PORTS: u32 = 500;
/// The port whose flows the switch refuses, and its OpenFlow port.
const BAD: u32 = 250;

fn id(i: u32) -> String {
    format!("p{i}")
}

fn owner(i: u32) -> Touched {
    Touched {
        table: Table::Port,
        id: id(i),
    }
}

/// Refuses the flow-mods that match on OpenFlow port `ofport`.
fn refuse_in_port(ofport: u32) -> support::sim::Refuse {
    Box::new(move |m| {
        m.match_
            .fields
            .iter()
            .any(|f| f.field == Field::InPort && f.value == u128::from(ofport))
    })
}

/// Port `i` (unbound, MAC and key from `i`) of network "n", at OpenFlow port `i`.
fn port(i: u32) -> model::Port {
    model::Port {
        port_security_enabled: false,
        ..fixtures::port(&id(i), "n", i, "")
    }
}

/// Whether every flow compiled for port `i` is desired and installed (`true`), or none of
/// them is (`false`); anything in between panics.
fn installed(sim: &Sim, i: u32) -> bool {
    let (view, host) = (sim.core.view(), sim.core.host());
    let flows = apps::compile(view, host, &owner(i));
    assert!(!flows.is_empty(), "port {i} compiles to no flow");
    let on_switch = |f: &apps::Flow| {
        sim.switch.flows(f.key.table()).iter().any(|s| {
            s.priority == f.key.priority()
                && controller::reconcile::canonical(s.match_.clone()) == f.key.match_()
        })
    };
    let desired = flows
        .iter()
        .filter(|f| sim.core.desired().table().get(&f.key).is_some())
        .count();
    let present = flows.iter().filter(|f| on_switch(f)).count();
    assert_eq!(desired, present, "port {i}: desired and installed differ");
    assert!(
        present == 0 || present == flows.len(),
        "port {i}: {present} of {} flows",
        flows.len()
    );
    present == flows.len()
}

fn status(sim: &Sim, i: u32) -> PortStatus {
    sim.core.view().ports[&id(i)].status
}

#[test]
fn one_refused_port_among_500_plugged_at_once_is_error_and_the_rest_go_in() {
    let mut sim = Sim::new("h", 0);
    // Checked once at the end: a full compile after each of the 500 status writes coming
    // back would take a while.
    sim.unchecked = true;
    sim.put(&fixtures::network("n", 9));
    for i in 1..=PORTS {
        sim.put(&port(i));
    }
    sim.refuse = Some(refuse_in_port(BAD));
    let batch: Vec<(String, u32)> = (1..=PORTS).map(|i| (id(i), i)).collect();
    let commits = sim.commits;

    sim.plug_batch(&batch);
    sim.check();
    sim.unchecked = false;

    assert_eq!(sim.refused, 1, "the switch refused one commit");
    assert_eq!(
        sim.commits - commits,
        2,
        "the refused commit and exactly one more"
    );
    for i in (1..=PORTS).filter(|i| *i != BAD) {
        assert_eq!(status(&sim, i), PortStatus::Active, "port {i}");
        assert!(installed(&sim, i), "port {i}'s flows are installed");
    }
    assert_eq!(status(&sim, BAD), PortStatus::Error);
    assert!(!installed(&sim, BAD), "the refused port's flows are out");
    assert_eq!(sim.core.failed().iter().collect::<Vec<_>>(), [&owner(BAD)]);
    assert!(
        sim.reports
            .iter()
            .filter(|(p, _)| *p == id(BAD))
            .all(|(_, s)| *s != PortStatus::Active),
        "the refused port was never reported ACTIVE: {:?}",
        sim.reports
    );

    // Other ports changing leave the failed one alone: it is not tried again.
    let commits = sim.commits;
    let mut p = port(1);
    p.meta.name = "renamed".into();
    p.binding_host_id = "h".into();
    sim.put(&p);
    sim.unplug(&id(2));
    sim.wait(std::time::Duration::from_secs(2));
    assert!(sim.commits > commits, "port 2's flows removed");
    assert_eq!(sim.refused, 1, "the failed port is not compiled again");
    assert_eq!(status(&sim, BAD), PortStatus::Error);

    // The failed port changing is compiled again: refused again, it stays ERROR.
    let mut bad = port(BAD);
    bad.binding_host_id = "h".into();
    bad.status = PortStatus::Error;
    bad.meta.name = "again".into();
    sim.put(&bad);
    assert_eq!(sim.refused, 2);
    assert_eq!(status(&sim, BAD), PortStatus::Error);
    assert!(!installed(&sim, BAD));

    // Once the switch takes its flows, its next change puts it in, ACTIVE.
    sim.refuse = None;
    bad.meta.name = "fixed".into();
    sim.put(&bad);
    assert_eq!(sim.refused, 2);
    assert!(sim.core.failed().is_empty());
    assert!(installed(&sim, BAD));
    assert_eq!(status(&sim, BAD), PortStatus::Active);
}

#[test]
fn a_refused_network_flow_leaves_its_network_out_and_the_ports_in() {
    let mut sim = Sim::new("h", 0);
    sim.put(&fixtures::network("n", 9));
    for i in 1..=3 {
        sim.put(&port(i));
    }
    // Network "n"'s flows (as compiled with ports 1 to 3 plugged) are refused.
    let network_flows = {
        let mut view = controller::view::View::new("h");
        let mut records = vec![controller::view::record(&fixtures::network("n", 9), 1)];
        records.extend((1..=3).map(|i| controller::view::record(&port(i), 1)));
        view.load(&nbdb::Snapshot {
            revision: 1,
            records,
        });
        let mut host = apps::Host::default();
        host.ofports.extend((1..=3).map(|i| (id(i), i)));
        apps::compile(
            &view,
            &host,
            &Touched {
                table: Table::Network,
                id: "n".into(),
            },
        )
    };
    assert!(!network_flows.is_empty(), "the network compiles to flows");
    let keys: Vec<_> = network_flows.into_iter().map(|f| f.key).collect();
    sim.refuse = Some(Box::new(move |m: &FlowMod| {
        let k = controller::reconcile::FlowKey::new(m.table_id, m.priority, m.match_.clone());
        keys.contains(&k)
    }));
    sim.plug_batch(&[(id(1), 1), (id(2), 2), (id(3), 3)]);
    // The network depends on its ports: their statuses coming back compile it again (and
    // the switch refuses it again), until they settle.
    let refused = sim.refused;
    assert!(refused >= 1);
    sim.wait(std::time::Duration::from_secs(2));
    assert_eq!(sim.refused, refused, "no retry without a change");
    assert_eq!(
        sim.core.failed().iter().collect::<Vec<_>>(),
        [&Touched {
            table: Table::Network,
            id: "n".into()
        }]
    );
    for i in 1..=3 {
        assert_eq!(status(&sim, i), PortStatus::Active, "port {i}");
        assert!(installed(&sim, i), "port {i}");
    }
}
