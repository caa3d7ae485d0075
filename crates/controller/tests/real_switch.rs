//! The reconciler against a real Open vSwitch: desired flows committed in a bundle read
//! back equal (so a restarted controller finds nothing to change), and a later change is
//! exactly the flows that differ.

mod support;

use controller::reconcile::{FlowBody, FlowKey, FlowTable};
use controller::switch::SwitchError;
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::{Field, Match};
use support::open_port;

fn flow(t: &mut FlowTable, table: u8, prio: u16, m: Match, cookie: u64, ins: Vec<Instruction>) {
    t.insert(FlowKey::new(table, prio, m), FlowBody::new(cookie, &ins));
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
    let ovs = support::ovs();
    let mut s = support::session(&ovs).await;
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
        FlowBody::new(
            0x0300_0000_0000_0009,
            &[Instruction::ApplyActions(vec![Action::output(3)])],
        ),
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
    let ovs = support::ovs();
    let mut s = support::session(&ovs).await;
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
    // And a second one: every refused flow-mod is named, by its place in the commit.
    flow(
        &mut t,
        115,
        1,
        Match::new(),
        2,
        vec![Instruction::GotoTable(55)],
    );
    let mods = t.diff(&FlowTable::new());
    let bad: Vec<usize> = mods
        .iter()
        .enumerate()
        .filter(|(_, m)| m.cookie == 1 || m.cookie == 2)
        .map(|(i, _)| i)
        .collect();
    let err = s.commit(&mods).await.unwrap_err();
    let SwitchError::BundleRefused(refused) = err else {
        panic!("{err}");
    };
    let named: Vec<usize> = refused
        .iter()
        .map(|r| match r.what {
            controller::switch::Refused::Flow(i) => i,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(named, bad, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|r| r.error.name() == Some("OFPBIC_BAD_TABLE_ID")),
        "{refused:?}"
    );
    assert!(s.dump_flows().await.expect("dump").is_empty());
}

mod host {
    //! A host for the tests: one OVS, VMs plugged into its br-int, and the NB objects.
    use crate::support::open_group;
    use controller::apps::{Desired, Host};
    use controller::switch::Session;
    use controller::view::{View, record};
    use model::{AddressPair, Port, fixtures};

    pub use testbed::Vm;

    /// Plugs VM `n` (MAC fa:16:3e:00:00:n, address 10.0.0.n/24) as port `id`.
    pub fn plug(ovs: &testbed::Ovs, id: &str, n: u8) -> Vm {
        Vm::plug(
            ovs,
            "br-int",
            id,
            &format!("fa:16:3e:00:00:{n:02x}"),
            &format!("10.0.0.{n}/24"),
        )
        .expect("plug")
    }

    pub fn pair(ip: &str, n: u8) -> AddressPair {
        AddressPair {
            ip_address: ip.parse().unwrap(),
            mac_address: fixtures::mac(n.into()),
        }
    }

    /// Compiles the view of `ports` for "host-a" and makes the switch hold exactly that.
    pub async fn program(
        s: &mut Session<tokio::net::UnixStream>,
        ports: &[Port],
        vms: &[(&str, &Vm)],
    ) {
        let mut records = vec![record(&fixtures::network("n", 3), 1)];
        records.extend(ports.iter().map(|p| record(p, 2)));
        records.extend(open_group());
        let mut view = View::new("host-a");
        view.load(&nbdb::Snapshot {
            revision: 2,
            records,
        });
        let mut host = Host {
            ofports: vms
                .iter()
                .map(|(id, vm)| (id.to_string(), vm.ofport))
                .collect(),
            ..Host::default()
        };
        controller::apps::security_groups::assign_zones(&view, &mut host);
        let desired = Desired::full(&view, &host);
        let installed = s.dump_flows().await.expect("dump");
        let groups = s.dump_groups().await.expect("dump groups");
        s.commit_with_groups(
            &desired.groups().diff(&groups),
            &desired.table().diff(&installed),
        )
        .await
        .expect("the switch takes every compiled flow and group");
    }

    /// Gives the VM `ip` (/24) as its only address.
    pub fn readdress(vm: &Vm, ip: &str) {
        vm.ns
            .exec(["ip", "addr", "flush", "dev", "eth0"])
            .expect("flush");
        vm.ns
            .exec(["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"])
            .expect("addr");
        let shown = vm
            .ns
            .exec(["ip", "-4", "addr", "show", "dev", "eth0"])
            .expect("show");
        assert!(shown.contains(ip), "{shown}");
    }

    pub fn pings(vm: &Vm, ip: &str) -> bool {
        vm.pings(ip)
    }
}

/// The compiled pipeline on a real switch: a VM's ARP request for another port's address
/// is answered by the switch with that port's MAC.
#[tokio::test]
async fn arp_for_a_known_address_is_answered_by_the_switch() {
    if !testbed::require_root("arp_for_a_known_address_is_answered_by_the_switch") {
        return;
    }
    let ovs = support::ovs();
    let a = host::plug(&ovs, "a", 5);
    let mut s = support::session(&ovs).await;
    host::program(
        &mut s,
        &[open_port("a", 5, "host-a"), open_port("b", 6, "host-b")],
        &[("a", &a)],
    )
    .await;
    // The VM asks for 10.0.0.6: nothing answers but the switch.
    let _ = host::pings(&a, "10.0.0.6");
    let neigh =
        a.ns.exec(["ip", "neigh", "show", "10.0.0.6"])
            .expect("neigh");
    assert!(
        neigh.contains("lladdr fa:16:3e:00:00:06"),
        "no ARP answer: {neigh:?}\n{}",
        ovs.ofctl(["dump-flows", "br-int"]).unwrap_or_default()
    );
    // An address nobody has stays unanswered.
    let _ = host::pings(&a, "10.0.0.99");
    let neigh =
        a.ns.exec(["ip", "neigh", "show", "10.0.0.99"])
            .expect("neigh");
    assert!(!neigh.contains("lladdr"), "{neigh:?}");
}

/// Two VMs on one host ping each other; a spoofed source address is dropped unless port
/// security is off or an allowed address pair admits it.
#[tokio::test]
async fn local_switching_and_port_security() {
    if !testbed::require_root("local_switching_and_port_security") {
        return;
    }
    let ovs = support::ovs();
    let (a, b) = (host::plug(&ovs, "a", 5), host::plug(&ovs, "b", 6));
    let vms = [("a", &a), ("b", &b)];
    let mut s = support::session(&ovs).await;
    let (pa, pb) = (open_port("a", 5, "host-a"), open_port("b", 6, "host-a"));
    host::program(&mut s, &[pa.clone(), pb.clone()], &vms).await;
    assert!(
        host::pings(&a, "10.0.0.6"),
        "a reaches b\n{}",
        ovs.ofctl(["dump-flows", "br-int"]).unwrap_or_default()
    );
    assert!(host::pings(&b, "10.0.0.5"), "b reaches a");
    // a takes an address that is not its own: its packets are dropped.
    host::readdress(&a, "10.0.0.50");
    b.ns.exec([
        "ip",
        "neigh",
        "replace",
        "10.0.0.50",
        "lladdr",
        "fa:16:3e:00:00:05",
        "dev",
        "eth0",
    ])
    .expect("neigh");
    assert!(
        !host::pings(&a, "10.0.0.6"),
        "spoofed source must be dropped"
    );
    // An allowed address pair admits it.
    let mut pa2 = pa.clone();
    pa2.allowed_address_pairs = vec![host::pair("10.0.0.50/32", 5)];
    host::program(&mut s, &[pa2, pb.clone()], &vms).await;
    assert!(
        host::pings(&a, "10.0.0.6"),
        "allowed address pair\n{}",
        ovs.ofctl(["dump-flows", "br-int", "table=1"])
            .unwrap_or_default()
    );
    // So does turning port security off.
    let mut pa3 = pa;
    pa3.port_security_enabled = false;
    host::readdress(&a, "10.0.0.77");
    b.ns.exec([
        "ip",
        "neigh",
        "replace",
        "10.0.0.77",
        "lladdr",
        "fa:16:3e:00:00:05",
        "dev",
        "eth0",
    ])
    .expect("neigh");
    host::program(&mut s, &[pa3, pb], &vms).await;
    assert!(host::pings(&a, "10.0.0.6"), "port security off");
}

#[tokio::test]
async fn groups_commit_with_their_flows_and_read_back_equal() {
    if !testbed::require_root("groups_commit_with_their_flows_and_read_back_equal") {
        return;
    }
    use controller::reconcile::{GroupBody, GroupTable};
    use openflow::flow::{Bucket, GroupType};
    let ovs = support::ovs();
    let mut s = support::session(&ovs).await;
    let flood = |buckets: Vec<Vec<Action>>| GroupBody {
        group_type: GroupType::All,
        buckets: buckets.into_iter().map(Bucket::new).collect(),
    };
    let mut groups = GroupTable::default();
    groups.insert(
        7,
        flood(vec![
            vec![
                Action::load(Field::Reg(7), 0, 32, 9),
                Action::resubmit_table(115),
            ],
            vec![
                Action::set_field(Field::TunId, 5u64),
                Action::set_field(Field::TunIpv4Dst, 0xc000_0202u32),
                Action::output(3),
            ],
        ]),
    );
    let mut flows = FlowTable::new();
    flow(
        &mut flows,
        55,
        1,
        Match::new().metadata(7),
        0x0300_0000_0000_0007,
        vec![Instruction::ApplyActions(vec![Action::Group(7)])],
    );
    // The group goes in before the flow that uses it, in the same bundle.
    let gd = groups.diff(&s.dump_groups().await.expect("groups"));
    assert_eq!(gd.before.len(), 1);
    s.commit_with_groups(&gd, &flows.diff(&FlowTable::new()))
        .await
        .expect("commit");
    assert_eq!(s.dump_groups().await.expect("groups"), groups);
    let dump = ovs.ofctl(["dump-groups", "br-int"]).expect("dump-groups");
    assert!(dump.contains("group_id=7,type=all"), "{dump}");
    // A changed bucket list is a modify; then flow and group go together, the group last.
    let mut fewer = GroupTable::default();
    fewer.insert(
        7,
        flood(vec![vec![
            Action::load(Field::Reg(7), 0, 32, 9),
            Action::resubmit_table(115),
        ]]),
    );
    let gd = fewer.diff(&groups);
    s.commit_with_groups(&gd, &[]).await.expect("modify");
    assert_eq!(s.dump_groups().await.expect("groups"), fewer);
    let gd = GroupTable::default().diff(&fewer);
    assert_eq!(gd.after.len(), 1);
    s.commit_with_groups(&gd, &FlowTable::new().diff(&flows))
        .await
        .expect("delete");
    assert!(s.dump_groups().await.expect("groups").is_empty());
    assert!(s.dump_flows().await.expect("flows").is_empty());
}

#[tokio::test]
async fn meters_go_in_before_their_flows_change_in_place_and_go_after() {
    if !testbed::require_root("meters_go_in_before_their_flows_change_in_place_and_go_after") {
        return;
    }
    use controller::reconcile::{GroupTable, MeterBody};
    use openflow::flow::{MeterBand, MeterModCommand};
    let ovs = support::ovs();
    let mut s = support::session(&ovs).await;
    let meter = |rate| MeterBody {
        flags: controller::apps::qos::FLAGS,
        bands: vec![MeterBand::Drop {
            rate,
            burst: rate / 10 * 8,
        }],
    };
    let mut want = GroupTable::default();
    want.insert_meter(6, meter(10_000));
    let mut flows = FlowTable::new();
    flow(
        &mut flows,
        0,
        105,
        Match::new().in_port(1),
        0x1100_0000_0000_0003,
        vec![
            Instruction::Meter(6),
            Instruction::ApplyActions(vec![Action::load(Field::Reg(6), 0, 32, 3)]),
            Instruction::GotoTable(1),
        ],
    );
    // The meter goes first (outside the bundle: OVS 3.1 bundles no meter-mods), then the
    // flow naming it; both read back equal.
    let d = want.diff(&s.dump_groups().await.expect("read back"));
    assert_eq!(d.meters_before.len(), 1);
    s.commit_with_groups(&d, &flows.diff(&FlowTable::new()))
        .await
        .expect("commit");
    assert_eq!(s.dump_groups().await.expect("read back"), want);
    assert!(want.diff(&s.dump_groups().await.unwrap()).is_empty());
    // A new rate is a modify of the same meter: the flow stays.
    let mut faster = GroupTable::default();
    faster.insert_meter(6, meter(20_000));
    let d = faster.diff(&want);
    assert_eq!(d.meters_before[0].command, MeterModCommand::Modify);
    s.commit_with_groups(&d, &[]).await.expect("modify");
    assert_eq!(s.dump_groups().await.unwrap(), faster);
    assert_eq!(s.dump_flows().await.unwrap(), flows, "the flow is kept");
    let dump = ovs.ofctl(["dump-meters", "br-int"]).expect("dump-meters");
    assert!(dump.contains("rate=20000"), "{dump}");
    // An add of a meter that is there (a commit made again) becomes a modify.
    let d = faster.diff(&GroupTable::default());
    s.commit_with_groups(&d, &[]).await.expect("add again");
    // Gone: the flow first, then the meter.
    let d = GroupTable::default().diff(&faster);
    assert_eq!(d.meters_after.len(), 1);
    s.commit_with_groups(&d, &FlowTable::new().diff(&flows))
        .await
        .expect("delete");
    assert!(s.dump_groups().await.unwrap().is_empty());
    assert!(s.dump_flows().await.unwrap().is_empty());
}
