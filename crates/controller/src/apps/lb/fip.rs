//! Floating IPs on a VIP: the outside reaches the balancer. The VIP port is bound nowhere,
//! so one host holds its floating IP: the one the server chose (`fip_holder`: the first
//! host by name with a live controller and an ACTIVE port on the VIP's network, chosen
//! again when that host's controller dies), or before it chose, the first by name with
//! such a port ([`holder`]), which every host of the network works out alike. It
//! must reach the external network (a bridge mapping, as for any floating IP held
//! there); the other hosts send it the members' answers.
//!
//! On the holder, an arrival for the floating IP is DNATed to the VIP in the north-south
//! zone as any floating IP's (50), and then, in 51, marked ([`FROM_FIP`]) and handed to
//! services (`resubmit` to 20) on the VIP's network, where the listener's flows balance it
//! as a client's. Its connection is also source-NATed to the VIP in lb_out (23, the
//! hairpin zone), so that the member, wherever it is, answers the VIP: its own egress
//! (20, the hairpin reply flow) un-NATs it on the holder, or its host's L2 sends it to the
//! holder (75: the VIP port's frames go by tunnel to the holder, whose 100 takes them
//! through the hairpin zone). After both un-NATs (27, 28) the answer is from the VIP to
//! the outside: to the router (reg5) and L3, whose way out (70, 71) finds the floating IP's
//! connection and sends it from the floating IP.

use super::hairpin::{self, HAIRPIN_ZONE, Member};
use super::{AppId, ETH_IPV4};
use crate::apps::deliver::to_chassis;
use crate::apps::nat;
use crate::apps::{Flow, Host, flow};
use crate::pipeline::{reg, table};
use crate::view::View;
use model::{FloatingIp, LoadBalancer, Network};
use openflow::Instruction;
use openflow::action::Action;
use openflow::nx::{Ct, CtZone, Nat, nat_flags};
use openflow::oxm::{Field, Match, ct_state, mac_u128};
use std::net::{IpAddr, Ipv4Addr};

/// [`reg::LB_FLAGS`] bit: this connection came in by a floating IP of the VIP.
pub const FROM_FIP: u32 = 2;

/// Above the routers' flows in ingress_snat (100), the hairpin flows in lb_out (110),
/// the local ports' in from_tunnel and egress (100).
const PRIO_FIP: u16 = 120;
/// Below the members' hairpin replies in lb_hairpin_reply (110).
const PRIO_OUT: u16 = 50;

/// The host that holds the VIP's floating IPs: the server's choice, else the first by
/// name with an ACTIVE port of the VIP network ([`model::lb::first_holder`], as the
/// server chooses among the live ones).
pub fn holder<'a>(view: &'a View, lb: &'a LoadBalancer) -> Option<&'a str> {
    if let Some(h) = &lb.fip_holder {
        return Some(h);
    }
    model::lb::first_holder(view.ports_of(&lb.vip_network_id), &lb.vip_port_id, |_| true)
}

/// A floating IP of a VIP that this host holds, to announce on the external network
/// (`apps::nat`'s gratuitous ARP: the holder changed hosts, and the physical switches
/// must learn where the floating IP's MAC now is): its address, MAC and network.
pub fn held_here<'a>(
    view: &'a View,
    host: &Host,
    f: &FloatingIp,
) -> Option<(Ipv4Addr, [u8; 6], &'a Network)> {
    let vip_port = f.port_id.as_deref()?;
    let lb = view
        .loadbalancers
        .values()
        .find(|lb| lb.vip_port_id == vip_port && f.fixed_ip_address == Some(lb.vip_address))?;
    if holder(view, lb)? != view.chassis {
        return None;
    }
    let router = view.routers.get(f.router_id.as_ref()?)?;
    let g = nat::gateway(view, host, router)?;
    if g.net.meta.id != f.floating_network_id {
        return None;
    }
    let IpAddr::V4(fip) = f.floating_ip_address else {
        return None;
    };
    let mac = view.ports.get(&f.floating_port_id)?.mac_address.0;
    Some((fip, mac, g.net))
}

/// The floating IPs associated to the balancer's VIP.
fn fips<'a>(view: &'a View, lb: &'a LoadBalancer) -> impl Iterator<Item = &'a FloatingIp> {
    view.floating_ips.values().filter(|f| {
        f.port_id.as_deref() == Some(lb.vip_port_id.as_str())
            && f.fixed_ip_address == Some(lb.vip_address)
    })
}

/// The flows of the VIP's floating IPs on this host (`net`: the VIP's network).
pub fn flows(
    view: &View,
    host: &Host,
    lb: &LoadBalancer,
    vip: Ipv4Addr,
    net: &Network,
    members: &[Member],
) -> Vec<Flow> {
    let key = lb.unique_key;
    let mut out = Vec::new();
    let Some(at) = holder(view, lb) else {
        return out;
    };
    if fips(view, lb).next().is_none() {
        return out;
    }
    let on_net = || {
        Match::new()
            .metadata(u64::from(net.unique_key))
            .eth_type(ETH_IPV4)
    };
    if at != view.chassis {
        // Elsewhere: the members' answers to the VIP go to the holder.
        if let (Some(vip_port), Some(actions)) = (
            view.ports.get(&lb.vip_port_id),
            to_chassis(view, host, net, at),
        ) {
            out.push(flow(
                table::EGRESS,
                PRIO_FIP,
                Match::new().masked(reg::DST_PORT, vip_port.unique_key, u32::MAX),
                AppId::Lb,
                key,
                [Instruction::ApplyActions(actions)],
            ));
        }
        return out;
    }
    let mut held = false;
    for f in fips(view, lb) {
        let (Some(router), IpAddr::V4(fip)) = (
            f.router_id.as_ref().and_then(|r| view.routers.get(r)),
            f.floating_ip_address,
        ) else {
            continue;
        };
        let Some(g) = nat::gateway(view, host, router) else {
            continue;
        };
        if g.net.meta.id != f.floating_network_id {
            continue;
        }
        let Some(mac) = view.ports.get(&f.floating_port_id).map(|p| p.mac_address.0) else {
            continue;
        };
        held = true;
        let rkey = router.unique_key;
        let on_router = || Match::new().masked(reg::ROUTER, rkey, u32::MAX);
        out.extend(nat::arp_as(AppId::Lb, host, g.net, fip, mac, key));
        // In: DNAT to the VIP, then to the balancer on the VIP's network.
        out.push(flow(
            table::INGRESS_NAT,
            PRIO_FIP,
            Match::new()
                .metadata(u64::from(g.net.unique_key))
                .eth_type(ETH_IPV4)
                .ipv4_dst(fip),
            AppId::Lb,
            key,
            [Instruction::ApplyActions(vec![nat::ct_nat(
                nat_flags::DST,
                vip,
                rkey,
                table::INGRESS_SNAT,
            )])],
        ));
        out.push(flow(
            table::INGRESS_SNAT,
            PRIO_FIP,
            Match::new()
                .metadata(u64::from(g.net.unique_key))
                .eth_type(ETH_IPV4)
                .ipv4_dst(vip)
                .ct_state(ct_state::TRK, ct_state::TRK)
                .masked(Field::CtMark, rkey, u32::MAX),
            AppId::Lb,
            key,
            // (Apply-Actions runs before Write-Metadata: the resubmit needs it set first.)
            [Instruction::ApplyActions(vec![
                Action::set_field(Field::Metadata, u64::from(net.unique_key)),
                Action::load(reg::LB_FLAGS, 0, 32, u64::from(FROM_FIP)),
                Action::set_field(Field::EthDst, mac_u128(lb.vip_mac.0)),
                Action::resubmit_table(table::SERVICES),
            ])],
        ));
        // Out: from the VIP to the outside, through the router, from the floating IP.
        out.push(flow(
            table::LB_HAIRPIN_REPLY,
            PRIO_OUT,
            on_net().ipv4_src(vip),
            AppId::Lb,
            key,
            [
                Instruction::ApplyActions(vec![Action::load(reg::ROUTER, 0, 32, u64::from(rkey))]),
                Instruction::GotoTable(table::L3),
            ],
        ));
        out.push(flow(
            table::EGRESS_NAT,
            PRIO_FIP,
            on_router().eth_type(ETH_IPV4).ipv4_src(vip),
            AppId::Lb,
            key,
            [Instruction::ApplyActions(vec![nat::ct_nat(
                nat_flags::SRC,
                fip,
                rkey,
                table::EGRESS_SNAT,
            )])],
        ));
        out.push(flow(
            table::EGRESS_SNAT,
            PRIO_FIP,
            on_router().eth_type(ETH_IPV4).ipv4_src(fip),
            AppId::Lb,
            key,
            nat::leave(&g, mac),
        ));
    }
    if !held {
        return out;
    }
    // The way to each member: from the VIP too.
    for m in members {
        out.push(flow(
            table::LB_OUT,
            PRIO_FIP,
            on_net()
                .ipv4_dst(m.addr)
                .masked(reg::LB_FLAGS, FROM_FIP, FROM_FIP),
            AppId::Lb,
            key,
            [Instruction::ApplyActions(vec![
                Action::set_field(Field::EthSrc, mac_u128(lb.vip_mac.0)),
                Action::set_field(Field::EthDst, mac_u128(m.mac)),
                hairpin::snat_to_vip(vip),
            ])],
        ));
    }
    // The answers of members on other hosts, sent here by tunnel.
    out.push(flow(
        table::FROM_TUNNEL,
        PRIO_FIP,
        on_net().eth_dst(lb.vip_mac.0).ipv4_dst(vip),
        AppId::Lb,
        key,
        [Instruction::ApplyActions(vec![Action::Ct(Ct {
            zone: CtZone::Imm(HAIRPIN_ZONE),
            recirc_table: table::LB_HAIRPIN,
            actions: vec![Action::Nat(Nat::default())],
            ..Ct::default()
        })])],
    ));
    out
}
