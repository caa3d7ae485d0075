//! Wiring: which subports a host wires, and what changes when the trunk or the parent
//! does.

use super::*;
use crate::view::{removed, written};
use model::{SubPort, Trunk as TrunkObj, fixtures};

fn trunk(subs: &[(&str, u32)]) -> TrunkObj {
    TrunkObj {
        meta: fixtures::meta("t"),
        admin_state_up: true,
        port_id: "p".into(),
        network_id: "n1".into(),
        sub_ports: subs
            .iter()
            .map(|(id, vid)| SubPort {
                port_id: (*id).into(),
                segmentation_type: "vlan".into(),
                segmentation_id: *vid,
                network_id: "n2".into(),
            })
            .collect(),
    }
}

/// A subport as the API leaves it: marked.
fn subport(id: &str, n: u32) -> model::Port {
    model::Port {
        device_owner: model::trunk::SUBPORT_OWNER.into(),
        ..fixtures::port(id, "n2", n, "")
    }
}

fn ids(t: &[Touched]) -> Vec<&str> {
    t.iter().map(|t| t.id.as_str()).collect()
}

#[test]
fn subports_are_wired_where_their_parent_is_plugged() {
    let mut v = View::new("h");
    v.apply(&written(&fixtures::port("p", "n1", 1, "h"), 1));
    v.apply(&written(&subport("a", 2), 2));
    v.apply(&written(&subport("b", 3), 3));
    let touched = v.apply(&written(&trunk(&[("a", 101), ("b", 4095)]), 4));
    assert_eq!(
        ids(&touched),
        ["t", "a", "b", "p"],
        "the trunk touches its ports"
    );
    let mut host = Host::default();
    assert!(wire(&v, &mut host).is_empty(), "the parent is not plugged");
    host.ofports.insert("p".into(), 7);
    assert_eq!(ids(&wire(&v, &mut host)), ["a"], "b's VLAN is out of range");
    assert_eq!(
        host.subports["a"],
        Wired {
            ofport: 7,
            vid: 101,
            key: 2
        }
    );
    assert!(host.plugged("a") && host.door("a") == Some(7));
    assert!(wire(&v, &mut host).is_empty(), "nothing changed");
    // No longer marked (the API's unmarking arrived before the trunk's change): unwired.
    v.apply(&written(&fixtures::port("a", "n2", 2, ""), 40));
    assert_eq!(ids(&wire(&v, &mut host)), ["a"]);
    v.apply(&written(&subport("a", 2), 41));
    assert_eq!(ids(&wire(&v, &mut host)), ["a"]);
    // A new VLAN rewires it; a removed subport is unwired.
    v.apply(&written(&trunk(&[("a", 102), ("b", 5)]), 5));
    assert_eq!(ids(&wire(&v, &mut host)), ["a", "b"]);
    v.apply(&written(&trunk(&[("b", 5)]), 6));
    assert_eq!(ids(&wire(&v, &mut host)), ["a"]);
    assert!(!host.plugged("a"));
    // The parent unplugged, or the trunk gone: nothing is wired.
    host.ofports.remove("p");
    assert_eq!(ids(&wire(&v, &mut host)), ["b"]);
    host.ofports.insert("p".into(), 7);
    assert_eq!(ids(&wire(&v, &mut host)), ["b"]);
    v.apply(&removed("trunk", "t", 7));
    assert_eq!(ids(&wire(&v, &mut host)), ["b"]);
    assert!(host.subports.is_empty());
    assert!(v.trunk_of("p").is_none() && v.trunk_of("b").is_none());
}

#[test]
fn a_local_parent_brings_its_subports_networks() {
    let mut v = View::new("h");
    v.apply(&written(&fixtures::port("p", "n1", 1, "h"), 1));
    v.apply(&written(&trunk(&[("a", 101)]), 2));
    assert!(v.topics().contains("n2"), "{:?}", v.topics());
    v.apply(&written(&fixtures::port("p", "n1", 1, "elsewhere"), 3));
    assert!(!v.topics().contains("n2"));
}

#[test]
fn subport_flows_tag_and_untag() {
    let mut v = View::new("h");
    v.apply(&written(&fixtures::network("n2", 2), 1));
    v.apply(&written(&fixtures::port("p", "n1", 1, "h"), 2));
    v.apply(&written(&subport("a", 2), 3));
    v.apply(&written(&trunk(&[("a", 101)]), 4));
    let mut host = Host::default();
    host.ofports.insert("p".into(), 7);
    wire(&v, &mut host);
    let flows = compile(&v, &host, &v.ports["a"]);
    let tables: Vec<u8> = flows.iter().map(|f| f.key.table()).collect();
    assert_eq!(
        tables,
        [
            table::CLASSIFY,
            table::EGRESS,
            table::DISPATCH,
            table::DISPATCH,
            table::DISPATCH,
            table::REPLY
        ]
    );
    for f in &flows {
        super::super::check(f).unwrap();
    }
    let parent = compile(&v, &host, &v.ports["p"]);
    assert_eq!(parent.len(), 2, "hairpin and self-drop for the parent");
}
