//! Tests of the view: indexes, snapshot loads and merges, and the topics it follows.

use super::*;
use model::{Meta, fixtures};

fn meta(id: &str, project: &str) -> Meta {
    Meta {
        project_id: project.into(),
        ..fixtures::meta(id)
    }
}

fn network(id: &str, project: &str) -> Network {
    Network {
        meta: meta(id, project),
        ..fixtures::network(id, 1)
    }
}

fn port(id: &str, project: &str, net: &str, host: &str) -> Port {
    Port {
        meta: meta(id, project),
        ..fixtures::port(id, net, 1, host)
    }
}

#[test]
fn changes_keep_objects_and_indexes() {
    let mut v = View::new("host-a");
    assert_eq!(v.apply(&written(&network("n1", "p1"), 1)).len(), 1);
    v.apply(&written(&port("a", "p1", "n1", "host-a"), 2));
    v.apply(&written(&port("b", "p1", "n1", "host-b"), 3));
    assert_eq!(v.ports_of("n1").count(), 2);
    assert_eq!(
        v.local_ports()
            .map(|p| p.meta.id.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    // The port moves to another network, then goes away.
    v.apply(&written(&port("b", "p1", "n2", "host-b"), 4));
    assert_eq!(v.ports_of("n1").count(), 1);
    assert_eq!(v.ports_of("n2").count(), 1);
    let gone = removed("port", "b", 5);
    assert_eq!(
        v.apply(&gone),
        [
            Touched {
                table: Table::Port,
                id: "b".into()
            },
            Touched {
                table: Table::Network,
                id: "n2".into()
            }
        ]
    );
    assert_eq!(v.ports_of("n2").count(), 0);
    assert_eq!(v.revision, 5);
    // Claims are not the controller's business; garbage is skipped, not fatal.
    let claim = Change {
        revision: 6,
        table: "claim".into(),
        id: "ip/x".into(),
        topic: None,
        value: Some(b"\"p\"".to_vec()),
    };
    assert!(v.apply(&claim).is_empty());
    let bad = Change {
        revision: 7,
        table: "port".into(),
        id: "z".into(),
        topic: None,
        value: Some(b"{".to_vec()),
    };
    assert!(v.apply(&bad).is_empty());
}

#[test]
fn snapshot_load_reports_exactly_the_differences() {
    let mut v = View::new("h");
    v.apply(&written(&network("n1", "p1"), 1));
    v.apply(&written(&network("n2", "p1"), 2));
    let mut changed = network("n2", "p1");
    changed.mtu = 1300;
    let snap = Snapshot {
        revision: 9,
        records: vec![
            record(&network("n1", "p1"), 1),
            record(&changed, 8),
            record(&network("n3", "p2"), 9),
        ],
    };
    let touched: Vec<String> = v.load(&snap).into_iter().map(|t| t.id).collect();
    assert_eq!(touched, ["n2", "n3"]);
    assert_eq!(v.revision, 9);
}

#[test]
fn a_merged_snapshot_adds_its_topics_and_the_resumed_stream_does_not_undo_it() {
    let mut v = View::new("host-a");
    let a = port("a", "p1", "n1", "host-a");
    v.load(&Snapshot {
        revision: 5,
        records: vec![record(&network("n1", "p1"), 1), record(&a, 5)],
    });
    let mut a6 = a.clone();
    a6.meta.name = "a6".into();
    v.apply(&written(&a6, 6));
    // n2 joins at revision 9; its port b was written at 7 and again at 8.
    let b7 = port("b", "p1", "n2", "host-b");
    let mut b8 = b7.clone();
    b8.meta.name = "b8".into();
    let snap = Snapshot {
        revision: 9,
        records: vec![
            record(&network("n1", "p1"), 1),
            record(&a6, 6),
            record(&network("n2", "p1"), 2),
            record(&b8, 8),
        ],
    };
    let new = BTreeSet::from([b8.topic().to_string(), "n2".to_string()]);
    let mut touched: Vec<String> = v.merge(&snap, &new).into_iter().map(|t| t.id).collect();
    touched.sort();
    assert_eq!(touched, ["b", "n2"], "only the new topics' objects");
    assert_eq!(v.revision, 6, "the old topics are as current as the stream");
    // The stream resumes from revision 5 for every topic: 6 again, then n2's past.
    assert_eq!(v.apply(&written(&a6, 6)).len(), 1);
    assert!(
        v.apply(&written(&b7, 7)).is_empty(),
        "older than the snapshot"
    );
    assert!(v.apply(&written(&b8, 8)).is_empty());
    assert_eq!(v.ports["b"].meta.name, "b8");
    let mut b10 = b7.clone();
    b10.meta.name = "b10".into();
    assert_eq!(
        v.apply(&written(&b10, 10)).len(),
        1,
        "newer than the snapshot"
    );
    assert_eq!(v.ports["b"].meta.name, "b10");
    assert!(
        v.merged_at.is_empty(),
        "forgotten once the stream is past it"
    );
    assert_eq!(v.ports_of("n2").count(), 1);
}

#[test]
fn topics_follow_local_ports_networks_and_routers() {
    let mut v = View::new("h");
    // p1's port on h, on p2's shared network; p3's router joins it to p4's network.
    let mut shared = network("n-shared", "p2");
    shared.shared = true;
    v.apply(&written(&shared, 1));
    v.apply(&written(&network("n-behind", "p4"), 2));
    v.apply(&written(&port("a", "p1", "n-shared", "h"), 3));
    v.apply(&written(&port("far", "p9", "n-other", "elsewhere"), 4));
    let iface = |net: &str| model::RouterInterface {
        port_id: format!("rp-{net}"),
        subnet_id: "s".into(),
        network_id: net.into(),
        ip_address: "10.0.0.1".parse().unwrap(),
        cidr: "10.0.0.0/24".parse().unwrap(),
        mac_address: model::MacAddr::default(),
    };
    let r = Router {
        meta: meta("r", "p3"),
        interfaces: vec![iface("n-shared"), iface("n-behind")],
        ..fixtures::router("r", 1)
    };
    // Before the router is known, its interface port on the local network names it.
    let mut rp = port("rp-n-shared", "p3", "n-shared", "");
    rp.device_owner = model::owner::ROUTER_INTERFACE.into();
    rp.device_id = "r".into();
    v.apply(&written(&rp, 5));
    let mut a = port("a", "p1", "n-shared", "h");
    a.security_groups = vec!["sg-unknown".into()];
    v.apply(&written(&a, 6));
    let missing: Vec<(Table, String)> = v.missing().into_iter().map(|t| (t.table, t.id)).collect();
    assert_eq!(
        missing,
        [
            (Table::Router, "r".to_string()),
            (Table::SecurityGroup, "sg-unknown".to_string())
        ]
    );
    v.apply(&written(&r, 7));
    let topics: Vec<String> = v.topics().into_iter().collect();
    assert_eq!(
        topics,
        ["n-behind", "n-shared", "p3"],
        "the local port's network, the router's project and the network behind it; nothing of n-other"
    );
    assert_eq!(v.missing().len(), 1, "only the group is still unknown");
}
