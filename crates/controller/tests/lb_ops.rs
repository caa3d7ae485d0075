//! A balancer's operator features on the fake switch (issue 23): statistics read the
//! counters of exactly the flows the balancer compiles, a failover repairs what was
//! deleted behind the controller's back, and backup members take new connections only
//! while no other member does.

mod support;

use support::lb::*;
use support::sim::Sim;

/// Statistics (`apps::lb::stats`) read the counters of the flows the balancer compiles:
/// among every flow installed, exactly one counts the listener's bytes in, one its new
/// connections and one its answers (the test fails when the compiled matches and the
/// counted ones part ways), and nothing else is counted.
#[test]
fn statistics_count_exactly_the_listeners_compiled_flows() {
    use controller::apps::lb::stats::Counted;
    use openflow::multipart::FlowStats;
    let sim = world(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    let installed: Vec<FlowStats> = (0..=u8::MAX)
        .flat_map(|t| sim.switch.flows(t))
        .map(|f| FlowStats {
            table_id: f.table,
            duration_sec: 0,
            duration_nsec: 0,
            priority: f.priority,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: f.cookie,
            packet_count: 1,
            byte_count: 100,
            match_: f.match_.clone(),
            instructions: f.instructions.clone(),
        })
        .collect();
    let counted = Counted::of(sim.core.view());
    let got = counted.tally(&installed);
    let l = got.get("l").expect("the listener is counted");
    assert_eq!(
        (l.bytes_in, l.total_connections, l.bytes_out),
        (100, 1, 100),
        "{got:?}"
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(counted.endpoints.len(), 1);
    assert_eq!(counted.endpoints[0].port, 53);
}

/// A failover (`failovers` counted up) makes the host read its switch back and repair
/// the balancer's flows and group that someone deleted behind its back; another change
/// of the balancer compiles the same flows, so it repairs nothing.
#[test]
fn a_failover_repairs_the_balancers_flows_and_group_deleted_behind_the_controllers_back() {
    use controller::pipeline::{App, Cookie};
    let mut sim = world(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    let balanced = |sim: &mut Sim, sport| {
        to_vip(sim, sport)
            .iter()
            .any(|(_, a, _, _)| a.octets()[3] == 11 || a.octets()[3] == 12)
    };
    assert!(balanced(&mut sim, 1000));
    let of_lb = |c: u64| Cookie::decode(c).is_some_and(|k| k.app == App::Lb && k.key == 7);
    sim.tamper(of_lb, &[controller::apps::lb::group_id(7, 0)]);
    sim.unchecked = true;
    assert!(!balanced(&mut sim, 1001), "nothing balanced without them");
    let mut lb = balancer(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    lb.meta.name = "renamed".into();
    sim.put(&lb);
    assert!(!balanced(&mut sim, 1002), "a rename repairs nothing");
    lb.failovers = 1;
    sim.put(&lb);
    sim.unchecked = false;
    sim.check();
    assert!(balanced(&mut sim, 1003), "repaired by the failover");
}

/// A backup member (Octavia's `backup`) gets no new connection while another member
/// takes traffic; it gets them all once the others are down, keeps the connections it
/// got when they come back, and new ones go to them again.
#[test]
fn a_backup_member_takes_new_connections_only_while_the_others_are_down() {
    let mut backup = member("m2", 12, 1);
    backup.backup = true;
    let mut sim = world(vec![member("m1", 11, 1), backup.clone()]);
    let last = |sim: &mut Sim, sport| {
        let out = to_vip(sim, sport);
        assert_eq!(out.len(), 1, "{out:?}");
        out[0].1.octets()[3]
    };
    assert!((1000..1032).all(|p| last(&mut sim, p) == 11), "all to m1");
    // m1 is marked down by its monitor: the backup takes every new connection.
    let mut down = member("m1", 11, 1);
    down.status.operating_status = "ERROR".into();
    sim.put(&balancer(vec![down, backup.clone()]));
    assert!(
        (2000..2032).all(|p| last(&mut sim, p) == 12),
        "all to the backup"
    );
    // m1 is back: new connections go to it, the backup's go on.
    sim.put(&balancer(vec![member("m1", 11, 1), backup]));
    assert!(
        (3000..3032).all(|p| last(&mut sim, p) == 11),
        "all to m1 again"
    );
    assert_eq!(last(&mut sim, 2000), 12, "the backup's connection goes on");
}
