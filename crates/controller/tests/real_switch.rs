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
