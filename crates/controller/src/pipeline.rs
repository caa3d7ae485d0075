//! The OpenFlow pipeline, declared once: every table with its role and the tables it may
//! continue to, the registers the apps share, and the cookie layout that ties a flow back
//! to its app and object. Table numbers are the original Dragonflow's, so dumps compare.

use openflow::oxm::Field;

/// One table of `br-int`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub id: u8,
    pub name: &'static str,
    pub role: &'static str,
    /// Tables a flow here may `goto` (always later ones: OVS refuses going back).
    pub next: &'static [u8],
}

/// Table numbers.
pub mod table {
    pub const CLASSIFY: u8 = 0;
    pub const PORT_SECURITY: u8 = 1;
    pub const EGRESS_CT: u8 = 10;
    pub const EGRESS_SG: u8 = 15;
    pub const EGRESS_FW: u8 = 16;
    pub const EGRESS_FW_RULES: u8 = 17;
    pub const SERVICES: u8 = 20;
    pub const LB: u8 = 21;
    pub const LB_SELECT: u8 = 22;
    pub const LB_OUT: u8 = 23;
    pub const LB_AFFINITY: u8 = 24;
    pub const ARP: u8 = 25;
    pub const LB_AFFINITY_SELECT: u8 = 26;
    pub const LB_HAIRPIN: u8 = 27;
    pub const LB_HAIRPIN_REPLY: u8 = 28;
    pub const DHCP: u8 = 30;
    pub const DHCPV6: u8 = 31;
    pub const DNS: u8 = 32;
    pub const METADATA: u8 = 35;
    pub const METADATA_REPLY: u8 = 40;
    pub const ND: u8 = 45;
    pub const RA: u8 = 46;
    pub const ND_REPLY: u8 = 47;
    pub const REPLY: u8 = 48;
    pub const INGRESS_NAT: u8 = 50;
    pub const INGRESS_SNAT: u8 = 51;
    pub const L2: u8 = 55;
    pub const ROUTER_FW_IN: u8 = 56;
    pub const ROUTER_FW_IN_RULES: u8 = 57;
    pub const L3: u8 = 60;
    pub const L3_ROUTES: u8 = 65;
    pub const EGRESS_NAT: u8 = 70;
    pub const EGRESS_SNAT: u8 = 71;
    pub const EGRESS: u8 = 75;
    pub const FIP_DNAT: u8 = 76;
    pub const FIP_SNAT: u8 = 77;
    pub const PROVIDER: u8 = 80;
    pub const FROM_TUNNEL: u8 = 100;
    pub const INGRESS_CT: u8 = 105;
    pub const LB_REPLY: u8 = 106;
    pub const INGRESS_SG: u8 = 110;
    pub const ROUTER_FW_OUT: u8 = 111;
    pub const ROUTER_FW_OUT_RULES: u8 = 112;
    pub const INGRESS_FW: u8 = 113;
    pub const INGRESS_FW_RULES: u8 = 114;
    pub const DISPATCH: u8 = 115;
}

use table::*;

/// Tables reached by `resubmit` rather than `goto` (from, to): a resubmit runs the other
/// table's actions and comes back, which a learned flow (it can only load and output)
/// needs to be followed by a `goto`.
pub const RESUBMITS: &[(u8, u8)] = &[
    (METADATA, METADATA_REPLY),
    (LB_REPLY, INGRESS_CT),
    (LB_SELECT, LB_AFFINITY),
    (INGRESS_SNAT, SERVICES),
    // Tap as a service: after the copy, the frame is looked up again where it was.
    (CLASSIFY, CLASSIFY),
    (DISPATCH, DISPATCH),
];

/// Every table, in order.
pub const TABLES: &[Table] = &[
    Table {
        id: CLASSIFY,
        name: "classify",
        role: "VM port: reg6 = port key, metadata = network key; tunnel: network by tun_id; a tapped port's frames to its copy group, tap copies by tunnel key to the service port",
        next: &[PORT_SECURITY, METADATA, FROM_TUNNEL, INGRESS_NAT],
    },
    Table {
        id: PORT_SECURITY,
        name: "port_security",
        role: "only the port's MACs and IPs (fixed and allowed address pairs) leave it; ARP/ND spoofing dropped",
        next: &[EGRESS_CT, SERVICES],
    },
    Table {
        id: EGRESS_CT,
        name: "egress_ct",
        role: "egress conntrack in the network's zone",
        next: &[EGRESS_SG, SERVICES],
    },
    Table {
        id: EGRESS_SG,
        name: "egress_sg",
        role: "egress security group rules",
        next: &[EGRESS_FW],
    },
    Table {
        id: EGRESS_FW,
        name: "egress_fw",
        role: "FWaaS: a VM port in a firewall group with an egress policy: IP to ct() in the firewall's zone of its network, recirculating to egress_fw_rules; the rest on to services",
        next: &[EGRESS_FW_RULES, SERVICES],
    },
    Table {
        id: EGRESS_FW_RULES,
        name: "egress_fw_rules",
        role: "FWaaS egress policy: replies, related and this side's accepted connections pass; then the rules in order (falling priorities: allow commits, deny drops, reject goes to the controller); the rest is the implicit deny",
        next: &[SERVICES],
    },
    Table {
        id: SERVICES,
        name: "services",
        role: "ARP, DHCP, DHCPv6, DNS, metadata, ND, router solicitations to their responders; the rest to L2",
        next: &[
            LB,
            LB_HAIRPIN,
            ARP,
            DHCP,
            DHCPV6,
            DNS,
            METADATA,
            ND,
            RA,
            INGRESS_NAT,
            L2,
        ],
    },
    Table {
        id: LB,
        name: "lb",
        role: "load balancer VIPs: ct(nat) in the balancers' zone, so established connections find their member",
        next: &[LB_SELECT],
    },
    Table {
        id: LB_SELECT,
        name: "lb_select",
        role: "new connections to a listener's select group (one bucket per member: ct(commit, nat(dst=member))), or, for SOURCE_IP pools, to the client's remembered member (resubmit to lb_affinity, then lb_affinity_select); established ones on",
        next: &[LB_OUT, LB_AFFINITY_SELECT],
    },
    Table {
        id: LB_OUT,
        name: "lb_out",
        role: "to the chosen member's MAC, then L2; a client balanced to itself (hairpin) source-NATed to the VIP in the hairpin zone",
        next: &[L2, LB_HAIRPIN],
    },
    Table {
        id: LB_AFFINITY,
        name: "lb_affinity",
        role: "SOURCE_IP pools: flows learned in lb_affinity_select, (network, client, VIP, protocol, port) → the remembered member's address and port in reg2 (xxreg2 for IPv6) and reg1; reached by resubmit",
        next: &[],
    },
    Table {
        id: ARP,
        name: "arp",
        role: "ARP responder for router interfaces and every known port IP",
        next: &[REPLY, L2],
    },
    Table {
        id: LB_AFFINITY_SELECT,
        name: "lb_affinity_select",
        role: "SOURCE_IP pools: the remembered or chosen member (reg2, reg1), if it takes traffic, learned into lb_affinity and ct(commit, nat(dst=member)) recirculating to lb_out; otherwise the select group, whose buckets load their member into reg2 and reg1 and resubmit here",
        next: &[],
    },
    Table {
        id: LB_HAIRPIN,
        name: "lb_hairpin",
        role: "hairpin connections after the hairpin zone: the way there on to L2; a member's reply (un-SNATed) to ct(nat) in the balancers' zone",
        next: &[L2, LB_HAIRPIN_REPLY],
    },
    Table {
        id: LB_HAIRPIN_REPLY,
        name: "lb_hairpin_reply",
        role: "a hairpin reply after un-DNAT (from the VIP): the VIP's MAC to the member's, then L2; an answer to the outside (a floating IP of the VIP) to the router, L3",
        next: &[L2, L3],
    },
    Table {
        id: DHCP,
        name: "dhcp",
        role: "DHCP to the controller, rate limited per port",
        next: &[L2],
    },
    Table {
        id: DHCPV6,
        name: "dhcpv6",
        role: "DHCPv6 to the controller, rate limited per port",
        next: &[L2],
    },
    Table {
        id: DNS,
        name: "dns",
        role: "DNS queries to the network's DNS address (the DHCP port's): UDP to the controller, TCP to the metadata table (the host's server)",
        next: &[METADATA, L2],
    },
    Table {
        id: METADATA,
        name: "metadata",
        role: "metadata service: a VM port's requests rewritten to the server (learning the way back), the server's replies through the learned flows to ingress",
        next: &[L2, INGRESS_CT],
    },
    Table {
        id: METADATA_REPLY,
        name: "metadata_reply",
        role: "metadata service replies: the flows learned in 35 (VM address, MAC, port and network restored), reached by resubmit",
        next: &[],
    },
    Table {
        id: ND,
        name: "nd",
        role: "IPv6 neighbour discovery responder",
        next: &[ND_REPLY, L2],
    },
    Table {
        id: RA,
        name: "ra",
        role: "router solicitations of ports on networks with router advertisements to the controller",
        next: &[L2],
    },
    Table {
        id: ND_REPLY,
        name: "nd_reply",
        role: "neighbour advertisements made in nd: the target link-layer address, back out of the asking port",
        next: &[REPLY],
    },
    Table {
        id: REPLY,
        name: "reply",
        role: "answers made in the switch (ARP, ND) back out of the asking port, tagged again for a trunk subport",
        next: &[],
    },
    Table {
        id: INGRESS_NAT,
        name: "ingress_nat",
        role: "from a provider network: floating IP DNAT and SNAT return (ct nat, recirculating to ingress_snat), ARP for local floating IP and SNAT addresses; the rest to the local ports",
        next: &[INGRESS_SNAT, L2, L3, FROM_TUNNEL],
    },
    Table {
        id: INGRESS_SNAT,
        name: "ingress_snat",
        role: "after ingress NAT: the connection's router (ct_mark) to reg5, on to L3",
        next: &[L2, L3],
    },
    Table {
        id: L2,
        name: "l2",
        role: "(network, eth_dst) to reg7; router MAC to L3 (by router_fw_in); broadcast and multicast to groups",
        next: &[ROUTER_FW_IN, L3, EGRESS],
    },
    Table {
        id: ROUTER_FW_IN,
        name: "router_fw_in",
        role: "FWaaS: into a router by an interface port in a firewall group with an ingress policy: IP to ct() in the router's firewall zone, recirculating to router_fw_in_rules; the rest on to L3",
        next: &[ROUTER_FW_IN_RULES, L3],
    },
    Table {
        id: ROUTER_FW_IN_RULES,
        name: "router_fw_in_rules",
        role: "FWaaS ingress policy of a router interface, as egress_fw_rules",
        next: &[L3],
    },
    Table {
        id: L3,
        name: "l3",
        role: "L3 lookup by router (reg5)",
        next: &[L3_ROUTES, EGRESS_NAT, EGRESS],
    },
    Table {
        id: L3_ROUTES,
        name: "l3_routes",
        role: "proactive routes: dec_ttl, rewrite MACs, set destination",
        next: &[EGRESS_NAT, EGRESS],
    },
    Table {
        id: EGRESS_NAT,
        name: "egress_nat",
        role: "a router's way out: ct commit with SNAT to the floating IP or this host's SNAT address, recirculating to egress_snat",
        next: &[EGRESS_SNAT, EGRESS],
    },
    Table {
        id: EGRESS_SNAT,
        name: "egress_snat",
        role: "after SNAT: dec_ttl, external MACs, the external network; on to egress",
        next: &[EGRESS],
    },
    Table {
        id: EGRESS,
        name: "egress",
        role: "local port to ingress, remote port to its host's tunnel, provider network to its bridge",
        next: &[FIP_DNAT, PROVIDER, INGRESS_CT],
    },
    Table {
        id: FIP_DNAT,
        name: "fip_dnat",
        role: "floating IP DNAT",
        next: &[FIP_SNAT, PROVIDER, INGRESS_CT],
    },
    Table {
        id: FIP_SNAT,
        name: "fip_snat",
        role: "floating IP SNAT",
        next: &[PROVIDER, INGRESS_CT],
    },
    Table {
        id: PROVIDER,
        name: "provider",
        role: "to the provider (flat/VLAN) bridge by the patch port, VLAN tag pushed",
        next: &[],
    },
    Table {
        id: FROM_TUNNEL,
        name: "from_tunnel",
        role: "from tunnels: (network, eth_dst) to reg7",
        next: &[INGRESS_CT],
    },
    Table {
        id: INGRESS_CT,
        name: "ingress_ct",
        role: "ingress conntrack in the network's zone; a port with port security off straight on to the firewall groups' tables",
        next: &[INGRESS_SG, ROUTER_FW_OUT, DISPATCH, LB_REPLY],
    },
    Table {
        id: LB_REPLY,
        name: "lb_reply",
        role: "replies of balanced connections after un-NAT (source back to the VIP), resubmitted to ingress conntrack",
        next: &[],
    },
    Table {
        id: INGRESS_SG,
        name: "ingress_sg",
        role: "ingress security group rules",
        next: &[ROUTER_FW_OUT],
    },
    Table {
        id: ROUTER_FW_OUT,
        name: "router_fw_out",
        role: "FWaaS: arrived from a router by an interface port in a firewall group with an egress policy (metadata, eth_src), on the destination's host: IP to ct() in the router's firewall zone there, recirculating to router_fw_out_rules; the rest on to ingress_fw",
        next: &[ROUTER_FW_OUT_RULES, INGRESS_FW],
    },
    Table {
        id: ROUTER_FW_OUT_RULES,
        name: "router_fw_out_rules",
        role: "FWaaS egress policy of a router interface, as egress_fw_rules",
        next: &[INGRESS_FW],
    },
    Table {
        id: INGRESS_FW,
        name: "ingress_fw",
        role: "FWaaS: to a VM port in a firewall group with an ingress policy: IP to ct() in the firewall's zone of its network, recirculating to ingress_fw_rules; the rest on to dispatch",
        next: &[INGRESS_FW_RULES, DISPATCH],
    },
    Table {
        id: INGRESS_FW_RULES,
        name: "ingress_fw_rules",
        role: "FWaaS ingress policy, as egress_fw_rules",
        next: &[DISPATCH],
    },
    Table {
        id: DISPATCH,
        name: "dispatch",
        role: "reg7 to the port; a tapped port's frames to its copy group first",
        next: &[],
    },
];

/// The declaration of table `id`, if there is one.
pub fn table(id: u8) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.id == id)
}

/// Whether a flow in table `from` may continue to table `to`.
pub fn may_goto(from: u8, to: u8) -> bool {
    table(from).is_some_and(|t| t.next.contains(&to))
}

/// Registers the apps share; the network key travels in `metadata`.
pub mod reg {
    use super::Field;
    /// The router key while routing.
    pub const ROUTER: Field = Field::Reg(5);
    /// The source port key, set at classification.
    pub const SRC_PORT: Field = Field::Reg(6);
    /// The destination port key, set by L2 lookup or routing.
    pub const DST_PORT: Field = Field::Reg(7);
    /// The conntrack zone of the packet's network on this host (security groups).
    pub const CT_ZONE: Field = Field::Reg(4);
    /// Load balancing flags (bit 0: the reply was un-NATed already).
    pub const LB_FLAGS: Field = Field::Reg(3);
    /// SOURCE_IP affinity: the remembered (or just chosen) member's IPv4 address (0: none).
    pub const LB_MEMBER_ADDR: Field = Field::Reg(2);
    /// SOURCE_IP affinity of an IPv6 VIP: the remembered (or just chosen) member's IPv6
    /// address (`xxreg2`, that is reg8 to reg11; 0: none).
    pub const LB_MEMBER_ADDR6: Field = Field::XxReg(2);
    /// SOURCE_IP affinity: the remembered member's port (low 16 bits).
    pub const LB_MEMBER_PORT: Field = Field::Reg(1);
    /// Tap as a service: bit 0 once a frame from a tapped port was copied (classify),
    /// bit 1 once a frame to one was (dispatch), so the lookup after the copy takes the
    /// ordinary flow.
    pub const TAPPED: Field = Field::Reg(0);
}

/// The app that owns a flow: the top byte of its cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum App {
    Classifier = 1,
    PortSecurity = 2,
    L2 = 3,
    Arp = 4,
    Nd = 5,
    Tunnel = 6,
    Dhcp = 7,
    L3 = 8,
    SecurityGroup = 9,
    Nat = 10,
    Provider = 11,
    Metadata = 12,
    Dhcpv6 = 13,
    Ra = 14,
    Dns = 15,
    Trunk = 16,
    Mcast = 17,
    Lb = 18,
    Qos = 19,
    Sfc = 20,
    Fwaas = 21,
    Taas = 22,
}

impl App {
    pub const ALL: [App; 22] = [
        App::Classifier,
        App::PortSecurity,
        App::L2,
        App::Arp,
        App::Nd,
        App::Tunnel,
        App::Dhcp,
        App::L3,
        App::SecurityGroup,
        App::Nat,
        App::Provider,
        App::Metadata,
        App::Dhcpv6,
        App::Ra,
        App::Dns,
        App::Trunk,
        App::Mcast,
        App::Lb,
        App::Qos,
        App::Sfc,
        App::Fwaas,
        App::Taas,
    ];
}

/// A flow's cookie: `app (8 bits) | reserved (24 bits) | object key (32 bits)`, so that a
/// dumped flow names the app and the network/port/router key it was compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    pub app: App,
    pub key: u32,
}

impl Cookie {
    pub fn encode(self) -> u64 {
        (u64::from(self.app as u8) << 56) | u64::from(self.key)
    }

    /// Decodes a cookie read from the switch; `None` for flows this controller did not make.
    pub fn decode(cookie: u64) -> Option<Cookie> {
        let app = (cookie >> 56) as u8;
        let app = App::ALL.into_iter().find(|a| *a as u8 == app)?;
        Some(Cookie {
            app,
            key: cookie as u32,
        })
    }

    /// The mask that selects every flow of one app (for deletes by cookie).
    pub const APP_MASK: u64 = 0xff00_0000_0000_0000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_unique_ordered_and_only_go_forward_to_declared_tables() {
        assert!(
            TABLES.windows(2).all(|w| w[0].id < w[1].id),
            "ids in increasing order"
        );
        for t in TABLES {
            for n in t.next {
                assert!(*n > t.id, "table {} goes back to {n}", t.id);
                assert!(table(*n).is_some(), "table {} goes to undeclared {n}", t.id);
            }
        }
        assert!(may_goto(CLASSIFY, PORT_SECURITY));
        assert!(!may_goto(DISPATCH, CLASSIFY));
    }

    #[test]
    fn every_table_is_reachable_from_classification() {
        let mut seen = vec![CLASSIFY];
        let mut i = 0;
        while i < seen.len() {
            let from = seen[i];
            let resubmits = RESUBMITS.iter().filter(|(f, _)| *f == from);
            for n in table(from)
                .map(|t| t.next)
                .unwrap_or_default()
                .iter()
                .chain(resubmits.map(|(_, t)| t))
            {
                if !seen.contains(n) {
                    seen.push(*n);
                }
            }
            i += 1;
        }
        for t in TABLES {
            assert!(
                seen.contains(&t.id),
                "table {} ({}) is unreachable",
                t.id,
                t.name
            );
        }
    }

    #[test]
    fn docs_describe_every_table() {
        let doc = include_str!("../../../docs/pipeline.md");
        for t in TABLES {
            let row = format!("| {} | `{}` |", t.id, t.name);
            assert!(
                doc.contains(&row),
                "docs/pipeline.md has no row `{row}` for table {}",
                t.id
            );
        }
    }

    #[test]
    fn cookies_round_trip_and_foreign_cookies_are_ignored() {
        let c = Cookie {
            app: App::L3,
            key: 0xdead_beef,
        };
        assert_eq!(Cookie::decode(c.encode()), Some(c));
        assert_eq!(c.encode() & Cookie::APP_MASK, 8 << 56);
        assert_eq!(Cookie::decode(0), None);
        assert_eq!(Cookie::decode(0xab00_0000_0000_0001), None);
    }
}
