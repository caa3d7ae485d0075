//! QoS (Neutron's `qos` policies) on this host's ports: bandwidth limits as OpenFlow
//! meters, one per port and direction, and DSCP marking with `set_field` on `ip_dscp`.
//! A port's policy is its own, else its network's ([`View::qos_policy_of`]).
//!
//! - From the VM (Neutron's `egress`): flows in table 0 that shadow the port's
//!   classification (same match, higher priority, the same classification through
//!   `deliver::classified`) with the meter first and the DSCP mark applied with it; a
//!   mark needs an `eth_type` match, so a marked port has one flow for IPv4 and one for
//!   IPv6 above the one for the rest.
//! - To the VM (`ingress`): a flow in table 115 that shadows the port's dispatch with the
//!   meter before the output.
//!
//! A meter's id is the port's key and direction, so a rule change is a meter-mod
//! `modify` of the same meter: the flows stay and no connection is cut. Minimum bandwidth
//! rules compile to nothing (docs/architecture.md, "QoS", says what they cannot
//! guarantee on this datapath).

use super::{App, Cx, Meter, Object, Owner, Sink};
use crate::pipeline::{App as AppId, table};
use crate::reconcile::MeterBody;
use crate::view::{Touched, View};
use model::{Port, QosDirection, Table};
use openflow::Instruction;
use openflow::action::Action;
use openflow::flow::{MeterBand, meter_flags};
use openflow::oxm::{Field, Match};

/// Above classification's and dispatch's port flows (100), which they shadow.
const PRIO_MARK: u16 = 110;
const PRIO_LIMIT: u16 = 105;
/// `vlan_vid` of a frame with no 802.1Q header (as classification matches).
const OFPVID_NONE: u16 = 0;
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
/// OpenFlow's largest meter id (`OFPM_MAX`).
const METER_MAX: u32 = 0xffff_0000;
/// Meter flags: rates in kbit/s, the band's burst used, counters kept.
pub const FLAGS: u16 = meter_flags::KBPS | meter_flags::BURST | meter_flags::STATS;

/// One meter of a port, with the rule it comes from (what `dragonflow port` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMeter {
    pub id: u32,
    pub direction: QosDirection,
    /// Drop above this rate, kbit/s.
    pub rate_kbps: u32,
    /// Burst, kbit.
    pub burst_kb: u32,
    pub policy_id: String,
    pub rule_id: String,
}

/// The meter id of port key `key` in `direction` (`None`: no id left for such a key).
pub fn meter_id(key: u32, direction: QosDirection) -> Option<u32> {
    let id = u64::from(key) * 2
        + match direction {
            QosDirection::Egress => 0,
            QosDirection::Ingress => 1,
        };
    u32::try_from(id)
        .ok()
        .filter(|&id| id > 0 && id <= METER_MAX)
}

/// The burst of a limit: Neutron's (80 % of the rate when none is given, as its OVS
/// agent), and never under 10 % of the rate: a small bucket makes TCP back off far below
/// the limit.
pub fn burst(max_kbps: u32, max_burst_kbps: u32) -> u32 {
    let floor = max_kbps / 10;
    if max_burst_kbps == 0 {
        (u64::from(max_kbps) * 8 / 10) as u32
    } else {
        max_burst_kbps
    }
    .max(floor)
    .max(1)
}

/// The meters port `p` gets from its policy (own or its network's), egress first.
pub fn meters_of(view: &View, p: &Port) -> Vec<PortMeter> {
    let Some(policy) = view
        .qos_policy_of(p)
        .and_then(|id| view.qos_policies.get(id))
    else {
        return Vec::new();
    };
    [QosDirection::Egress, QosDirection::Ingress]
        .into_iter()
        .filter_map(|d| {
            let (rule, max_kbps, max_burst) = policy.limit(d)?;
            // A zero rate would drop everything: Neutron takes 0 as "no limit" too.
            (max_kbps > 0).then_some(())?;
            Some(PortMeter {
                id: meter_id(p.unique_key, d)?,
                direction: d,
                rate_kbps: max_kbps,
                burst_kb: burst(max_kbps, max_burst),
                policy_id: policy.meta.id.clone(),
                rule_id: rule.id.clone(),
            })
        })
        .collect()
}

/// The DSCP mark of port `p`'s packets, from its policy.
pub fn mark_of(view: &View, p: &Port) -> Option<u8> {
    let policy = view.qos_policies.get(view.qos_policy_of(p)?)?;
    policy.dscp().map(|(_, m)| m)
}

fn compile(cx: Cx<'_>, p: &Port, out: &mut Sink<'_>) {
    let (Some(&ofport), Some(net)) = (
        cx.host.ofports.get(&p.meta.id),
        cx.view.networks.get(&p.network_id),
    ) else {
        return;
    };
    if !super::is_local(cx.view, cx.host, p) {
        return;
    }
    let meters = meters_of(cx.view, p);
    let mark = mark_of(cx.view, p);
    let meter = |d| meters.iter().find(|m| m.direction == d).map(|m| m.id);
    for m in &meters {
        out.meter(Meter {
            id: m.id,
            body: MeterBody {
                flags: FLAGS,
                bands: vec![MeterBand::Drop {
                    rate: m.rate_kbps,
                    burst: m.burst_kb,
                }],
            },
        });
    }
    let key = p.unique_key;
    let door = Match::new().in_port(ofport).vlan_vid(OFPVID_NONE);
    let limited = |extra| {
        let mut i: Vec<Instruction> = meter(QosDirection::Egress)
            .map(Instruction::Meter)
            .into_iter()
            .collect();
        i.extend(super::deliver::classified(key, net.unique_key, extra));
        i
    };
    if let Some(dscp) = mark {
        for eth in [ETH_IPV4, ETH_IPV6] {
            let set = vec![Action::set_field(Field::IpDscp, dscp)];
            out.flow(
                table::CLASSIFY,
                PRIO_MARK,
                door.clone().eth_type(eth),
                key,
                limited(set),
            );
        }
    }
    if meter(QosDirection::Egress).is_some() {
        out.flow(table::CLASSIFY, PRIO_LIMIT, door, key, limited(Vec::new()));
    }
    if let Some(id) = meter(QosDirection::Ingress) {
        out.flow(
            table::DISPATCH,
            PRIO_MARK,
            Match::new().masked(Field::Reg(7), key, u32::MAX),
            key,
            [
                Instruction::Meter(id),
                Instruction::ApplyActions(vec![Action::output(ofport)]),
            ],
        );
    }
}

pub struct Qos;

impl App for Qos {
    fn id(&self) -> AppId {
        AppId::Qos
    }

    fn tables(&self) -> &'static [u8] {
        &[table::CLASSIFY, table::DISPATCH]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        if let Object::Port(p) = obj {
            compile(cx, p, out);
        }
    }

    /// A policy's change reaches the ports it applies to (their own, or their
    /// network's when they have none). A network's change already recompiles its ports.
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        if changed.table != Table::QosPolicy {
            return;
        }
        // Every port of the view, not only those bound here: a port plugged here before
        // its binding is compiled as local too, and the others compile to nothing.
        out.extend(
            view.ports
                .values()
                .filter(|p| view.qos_policy_of(p) == Some(changed.id.as_str()))
                .map(|p| Touched {
                    table: Table::Port,
                    id: p.meta.id.clone(),
                }),
        );
    }
}

#[cfg(test)]
mod tests;
