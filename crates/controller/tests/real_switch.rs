//! The reconciler against a real Open vSwitch: desired flows committed in a bundle read
//! back equal (so a restarted controller finds nothing to change), and a later change is
//! exactly the flows that differ.

use controller::reconcile::{FlowBody, FlowKey, FlowTable};
use controller::switch::{Session, SwitchError};
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::{Field, Match};

fn flow(t: &mut FlowTable, table: u8, prio: u16, m: Match, cookie: u64, ins: Vec<Instruction>) {
    t.insert(
        FlowKey::new(table, prio, m),
        FlowBody {
            cookie,
            instructions: ins,
        },
    );
}

fn desired() -> FlowTable {
    let mut t = FlowTable::new();
    flow(
        &mut t,
        0,
        100,
        Match::new().in_port(1),
        0x0100_0000_0000_0005,
        vec![
            Instruction::ApplyActions(vec![Action::load(Field::Reg(6), 0, 32, 5)]),
            Instruction::WriteMetadata {
                metadata: 7,
                mask: u64::MAX,
            },
            Instruction::GotoTable(1),
        ],
    );
    flow(
        &mut t,
        1,
        50,
        Match::new()
            .masked(Field::Metadata, 7u64, u64::MAX)
            .eth_src([0xfa, 0x16, 0x3e, 0, 0, 1]),
        0x0200_0000_0000_0005,
        vec![Instruction::GotoTable(55)],
    );
    flow(
        &mut t,
        55,
        100,
        Match::new()
            .metadata(7)
            .eth_dst([0xfa, 0x16, 0x3e, 0, 0, 2]),
        0x0300_0000_0000_0009,
        vec![
            Instruction::ApplyActions(vec![Action::load(Field::Reg(7), 0, 32, 9)]),
            Instruction::GotoTable(115),
        ],
    );
    flow(
        &mut t,
        115,
        100,
        Match::new().masked(Field::Reg(7), 9u32, u32::MAX),
        0x0300_0000_0000_0009,
        vec![Instruction::ApplyActions(vec![Action::output(2)])],
    );
    t
}

#[tokio::test]
async fn committed_flows_read_back_equal_and_changes_are_minimal() {
    if !testbed::require_root("committed_flows_read_back_equal_and_changes_are_minimal") {
        return;
    }
    let ovs = testbed::Ovs::start().expect("ovs");
    ovs.add_bridge("br-int").expect("bridge");
    let mut s = Session::connect_unix(&ovs.mgmt_sock("br-int"))
        .await
        .expect("session");
    let installed = s.dump_flows().await.expect("dump");
    assert!(
        installed.is_empty(),
        "a new secure bridge has no flows: {installed:?}"
    );
    let want = desired();
    let mods = want.diff(&installed);
    assert_eq!(mods.len(), 4);
    s.commit(&mods).await.expect("commit");
    let got = s.dump_flows().await.expect("dump");
    assert!(
        want.diff(&got).is_empty(),
        "read back differs: {:?}",
        want.diff(&got)
    );
    // Change one flow's output and drop another: exactly two flow-mods.
    let mut next = want.clone();
    let k115 = FlowKey::new(115, 100, Match::new().masked(Field::Reg(7), 9u32, u32::MAX));
    next.insert(
        k115,
        FlowBody {
            cookie: 0x0300_0000_0000_0009,
            instructions: vec![Instruction::ApplyActions(vec![Action::output(3)])],
        },
    );
    next.remove(&FlowKey::new(
        1,
        50,
        Match::new()
            .metadata(7)
            .eth_src([0xfa, 0x16, 0x3e, 0, 0, 1]),
    ));
    let mods = next.diff(&got);
    assert_eq!(mods.len(), 2, "{mods:?}");
    s.commit(&mods).await.expect("commit");
    let dump = ovs.ofctl(["dump-flows", "br-int"]).expect("dump-flows");
    assert!(dump.contains("actions=output:3"), "{dump}");
    assert!(!dump.contains("dl_src=fa:16:3e:00:00:01"), "{dump}");
    assert!(next.diff(&s.dump_flows().await.expect("dump")).is_empty());
}

#[tokio::test]
async fn a_refused_bundle_applies_nothing() {
    if !testbed::require_root("a_refused_bundle_applies_nothing") {
        return;
    }
    let ovs = testbed::Ovs::start().expect("ovs");
    ovs.add_bridge("br-int").expect("bridge");
    let mut s = Session::connect_unix(&ovs.mgmt_sock("br-int"))
        .await
        .expect("session");
    let mut t = desired();
    // A goto backwards: OVS refuses it, and the whole bundle with it.
    flow(
        &mut t,
        20,
        1,
        Match::new(),
        1,
        vec![Instruction::GotoTable(10)],
    );
    let err = s.commit(&t.diff(&FlowTable::new())).await.unwrap_err();
    assert!(matches!(err, SwitchError::Refused(_)), "{err}");
    assert!(s.dump_flows().await.expect("dump").is_empty());
}

/// The compiled pipeline on a real switch: a VM's ARP request for another port's address
/// is answered by the switch with that port's MAC.
#[tokio::test]
async fn arp_for_a_known_address_is_answered_by_the_switch() {
    use controller::apps::{Desired, Host};
    use controller::view::{View, record};
    use model::{FixedIp, MacAddr, Meta, Network, NetworkType, Port, PortStatus};

    if !testbed::require_root("arp_for_a_known_address_is_answered_by_the_switch") {
        return;
    }
    let ovs = testbed::Ovs::start().expect("ovs");
    ovs.add_bridge("br-int").expect("bridge");
    let vm = testbed::Netns::new(&testbed::unique_name("vm")).expect("vm");
    testbed::veth("eth0", Some(&vm), "tap-a", ovs.own_netns()).expect("veth");
    vm.exec(["ip", "link", "set", "eth0", "address", "fa:16:3e:00:00:05"])
        .expect("mac");
    vm.exec(["ip", "addr", "add", "10.0.0.5/24", "dev", "eth0"])
        .expect("addr");
    vm.exec(["ip", "link", "set", "eth0", "up"]).expect("up");
    ovs.cmd("ip")
        .args(["link", "set", "tap-a", "up"])
        .output()
        .expect("up");
    ovs.vsctl([
        "add-port",
        "br-int",
        "tap-a",
        "--",
        "set",
        "Interface",
        "tap-a",
        "external_ids:iface-id=a",
    ])
    .expect("add-port");
    let ofport: u32 = ovs
        .vsctl(["get", "Interface", "tap-a", "ofport"])
        .expect("ofport")
        .trim()
        .parse()
        .expect("number");

    let meta = |id: &str| Meta {
        id: id.into(),
        project_id: "p".into(),
        ..Meta::default()
    };
    let net = Network {
        meta: meta("n"),
        admin_state_up: true,
        mtu: 1400,
        shared: false,
        external: false,
        port_security_enabled: true,
        network_type: NetworkType::Geneve,
        physical_network: None,
        segmentation_id: Some(3),
        subnets: vec![],
        unique_key: 3,
        deleting: false,
    };
    let port = |id: &str, key: u32, last: u8, host: &str| Port {
        meta: meta(id),
        network_id: "n".into(),
        admin_state_up: true,
        mac_address: MacAddr([0xfa, 0x16, 0x3e, 0, 0, last]),
        fixed_ips: vec![FixedIp {
            subnet_id: "s".into(),
            ip_address: format!("10.0.0.{last}").parse().unwrap(),
        }],
        security_groups: vec![],
        allowed_address_pairs: vec![],
        port_security_enabled: true,
        device_owner: String::new(),
        device_id: String::new(),
        binding_host_id: host.into(),
        binding_profile: Default::default(),
        binding_vnic_type: "normal".into(),
        extra_dhcp_opts: vec![],
        status: PortStatus::Down,
        unique_key: key,
    };
    let mut view = View::new("host-a");
    let snap = nbdb::Snapshot {
        revision: 3,
        records: vec![
            record(&net, 1),
            record(&port("a", 1, 5, "host-a"), 2),
            record(&port("b", 2, 6, "host-b"), 3),
        ],
    };
    view.load(&snap);
    let host = Host {
        ofports: [("a".to_string(), ofport)].into(),
    };
    let desired = Desired::full(&view, &host);
    let mut s = Session::connect_unix(&ovs.mgmt_sock("br-int"))
        .await
        .expect("session");
    let installed = s.dump_flows().await.expect("dump");
    s.commit(&desired.table().diff(&installed))
        .await
        .expect("the switch takes every compiled flow");

    // The VM asks for 10.0.0.6: nothing answers but the switch.
    let _ = vm.exec(["ping", "-c", "1", "-W", "1", "10.0.0.6"]);
    let neigh = vm.exec(["ip", "neigh", "show", "10.0.0.6"]).expect("neigh");
    assert!(
        neigh.contains("lladdr fa:16:3e:00:00:06"),
        "no ARP answer: {neigh:?}\n{}",
        ovs.ofctl(["dump-flows", "br-int"]).unwrap_or_default()
    );
    // An address nobody has stays unanswered.
    let _ = vm.exec(["ping", "-c", "1", "-W", "1", "10.0.0.99"]);
    let neigh = vm
        .exec(["ip", "neigh", "show", "10.0.0.99"])
        .expect("neigh");
    assert!(!neigh.contains("lladdr"), "{neigh:?}");
}
