//! Classification and dispatch of local ports (port → reg6 and metadata at the door,
//! reg7 → the port at the end), and the pipeline's skeleton: what no service claims goes
//! on to L2.

use super::{App, Cx, Flow, Host, Object, Sink, flow};
use crate::pipeline::{App as AppId, table};
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
            AppId::Classifier,
            key,
            super::deliver::classified(key, net.unique_key, Vec::new()),
        ),
        flow(
            table::EGRESS,
            PRIO_PORT,
            Match::new().masked(Field::Reg(7), key, u32::MAX),
            AppId::Classifier,
            key,
            [Instruction::GotoTable(table::INGRESS_CT)],
        ),
        flow(
            table::DISPATCH,
            PRIO_PORT,
            Match::new().masked(Field::Reg(7), key, u32::MAX),
            AppId::Classifier,
            key,
            [Instruction::ApplyActions(vec![Action::output(*ofport)])],
        ),
    ]
}

/// What no service claims goes on to L2.
fn base() -> Flow {
    flow(
        table::SERVICES,
        PRIO_DEFAULT,
        Match::new(),
        AppId::Classifier,
        0,
        [Instruction::GotoTable(table::L2)],
    )
}

pub struct Classify;

impl App for Classify {
    fn id(&self) -> AppId {
        AppId::Classifier
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::CLASSIFY,
            table::SERVICES,
            table::EGRESS,
            table::DISPATCH,
        ]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.push(base()),
            Object::Port(p) => out.extend(compile(cx.view, cx.host, p)),
            _ => {}
        }
    }
}
