//! Classification and dispatch of local ports (port → reg6 and metadata at the door,
//! reg7 → the port at the end), and the flows every pipeline has.

use super::{Flow, Host, flow};
use crate::pipeline::{App, reg, table};
use crate::view::View;
use model::Port;
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::{Field, Match};

const PRIO_PORT: u16 = 100;
const PRIO_DEFAULT: u16 = 1;
/// `vlan_vid` of a frame with no 802.1Q header.
const OFPVID_NONE: u16 = 0;

/// The flows of a local port: classification in table 0, dispatch in table 115, and
/// the hand-over from egress to ingress for traffic to it.
pub fn compile(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    let (Some(ofport), Some(net)) = (
        host.ofports.get(&p.meta.id),
        view.networks.get(&p.network_id),
    ) else {
        return Vec::new();
    };
    if !super::is_local(view, host, p) {
        return Vec::new();
    }
    let key = p.unique_key;
    vec![
        // Untagged frames only: an access port's tagged frames (priority tags included)
        // miss and are dropped, or they would carry their tag into other ports, the
        // underlay and the physical network's VLANs.
        flow(
            table::CLASSIFY,
            PRIO_PORT,
            Match::new().in_port(*ofport).vlan_vid(OFPVID_NONE),
            App::Classifier,
            key,
            vec![
                Instruction::ApplyActions(vec![Action::load(reg::SRC_PORT, 0, 32, u64::from(key))]),
                Instruction::WriteMetadata {
                    metadata: u64::from(net.unique_key),
                    mask: u64::MAX,
                },
                Instruction::GotoTable(table::PORT_SECURITY),
            ],
        ),
        flow(
            table::EGRESS,
            PRIO_PORT,
            Match::new().masked(Field::Reg(7), key, u32::MAX),
            App::L2,
            key,
            [Instruction::GotoTable(table::INGRESS_CT)],
        ),
        flow(
            table::DISPATCH,
            PRIO_PORT,
            Match::new().masked(Field::Reg(7), key, u32::MAX),
            App::Classifier,
            key,
            [Instruction::ApplyActions(vec![Action::output(*ofport)])],
        ),
    ]
}

/// The default path through the tables no app has claimed yet: straight on.
pub fn base() -> Vec<Flow> {
    let on = |from: u8, to: u8| {
        flow(
            from,
            PRIO_DEFAULT,
            Match::new(),
            App::Classifier,
            0,
            [Instruction::GotoTable(to)],
        )
    };
    let arp = flow(
        table::SERVICES,
        PRIO_PORT,
        Match::new().eth_type(0x0806),
        App::Arp,
        0,
        [Instruction::GotoTable(table::ARP)],
    );
    // DHCP requests to the DHCP table, which punts those of ports with DHCP (apps::dhcp).
    let dhcp = flow(
        table::SERVICES,
        PRIO_PORT,
        Match::new().eth_type(0x0800).ip_proto(17).udp_dst(67),
        App::Dhcp,
        0,
        [Instruction::GotoTable(table::DHCP)],
    );
    vec![
        on(table::PORT_SECURITY, table::SERVICES),
        on(table::SERVICES, table::L2),
        arp,
        // A request for an address nobody here knows goes on like any broadcast.
        on(table::ARP, table::L2),
        dhcp,
        // No DHCP here (enable_dhcp off): the request goes on like any broadcast.
        on(table::DHCP, table::L2),
        on(table::INGRESS_CT, table::DISPATCH),
        // Untracked traffic of filtered ports (ARP) goes on; security_groups adds the rest.
        on(table::EGRESS_CT, table::SERVICES),
    ]
}
