//! FWaaS v2 on the fake switch (issue 24): a firewall group's policies on VM ports, after
//! their security groups. First match in rule order wins, below the rules the implicit
//! deny, `reject` answered by the controller (a RST, an ICMP port unreachable), rate
//! limited; traffic the firewall allows still needs the security groups; a rule inserted
//! before another is one commit and keeps the connections that stay allowed.

mod support;

use controller::apps::fwaas::reject::{DEFAULT_RATE, Reject};
use model::fwaas::FwAction;
use model::{Direction, FirewallRule, Port, SecurityGroupRule, Table, fixtures};
use packet::IpProtocol;
use packet::tcp::Flags;
use std::net::Ipv4Addr;
use support::fwaas::{self, group, policy, rule};
use support::sim::{Sent, Sim};
use support::{mac, open_port, put_open_group, udp_frame};

const A: u32 = 1;
const B: u32 = 2;
const C: u32 = 3;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// A VM port (the only kind a group takes besides router interfaces).
fn vm(id: &str, n: u8, groups: &[&str]) -> Port {
    Port {
        device_owner: "compute:nova".into(),
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        ..open_port(id, n, "h")
    }
}

/// Network n on host h: a (.5), b (.6) in security group "open"; c (.7) in "closed"
/// (egress only). Group fwg on b and c with the ingress policy [deny tcp/22, reject
/// tcp/23, reject udp/69, allow any].
fn world() -> Sim {
    let mut sim = Sim::new("h", 0);
    sim.put(&fixtures::network("n", 9));
    put_open_group(&mut sim);
    sim.put(&fixtures::security_group("closed"));
    sim.put(&SecurityGroupRule {
        ..fixtures::security_group_rule("closed-out", "closed", Direction::Egress)
    });
    for (p, ofport) in [
        (vm("a", 5, &["open"]), A),
        (vm("b", 6, &["open"]), B),
        (vm("c", 7, &["closed"]), C),
    ] {
        sim.put(&p);
        sim.plug(&p.meta.id, ofport);
    }
    sim.put(&rule("deny22", Some("tcp"), Some(22), FwAction::Deny));
    sim.put(&rule("rej23", Some("tcp"), Some(23), FwAction::Reject));
    sim.put(&rule("rej69", Some("udp"), Some(69), FwAction::Reject));
    sim.put(&rule("any", None, None, FwAction::Allow));
    sim.put(&policy("in", &["deny22", "rej23", "rej69", "any"]));
    sim.put(&group("fwg", Some("in"), None, &["b", "c"]));
    sim
}

/// A SYN from a (in by its port) to n `to`; what came of it.
fn tcp_frame(from: u8, to: u8, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    fwaas::tcp_frame(
        (mac(from), ip(from), sport),
        (mac(to), ip(to), dport),
        flags,
    )
}

/// The controller's answers to one frame.
fn answers(s: &Sent) -> Vec<(u32, IpProtocol, Ipv4Addr, Option<u8>)> {
    fwaas::answers(&s.answers)
}

fn syn(sim: &mut Sim, to: u8, sport: u16, dport: u16) -> Sent {
    sim.send(A, &tcp_frame(5, to, sport, dport, Flags::SYN))
}

/// The ports the frame itself left by (not the controller's answers).
fn reached(s: &Sent) -> Vec<u32> {
    s.outcome.ports()
}

#[test]
fn first_match_wins_and_reject_answers() {
    let mut sim = world();
    let s = syn(&mut sim, 6, 40000, 22);
    assert!(reached(&s).is_empty(), "deny tcp/22 drops");
    assert!(answers(&s).is_empty(), "deny answers nothing");
    let s = syn(&mut sim, 6, 40001, 23);
    assert!(reached(&s).is_empty(), "reject drops the SYN");
    assert_eq!(
        answers(&s),
        [(A, IpProtocol::Tcp, ip(6), Some(Flags::RST | Flags::ACK))],
        "and a RST from b comes back to a"
    );
    let s = sim.send(A, &udp_frame(mac(5), mac(6), (ip(5), 40002), (ip(6), 69)));
    assert!(reached(&s).is_empty());
    assert_eq!(
        answers(&s),
        [(A, IpProtocol::Icmp, ip(6), None)],
        "UDP gets a port unreachable"
    );
    assert_eq!(reached(&syn(&mut sim, 6, 40003, 80)), [B], "allow any");
    // Without a group, b's egress is not filtered: the reply of 80 passes, and so does
    // anything a starts towards another port with no group.
    let reply = tcp_frame(6, 5, 80, 40003, Flags::SYN | Flags::ACK);
    assert_eq!(reached(&sim.send(B, &reply)), [A]);
}

#[test]
fn below_the_rules_is_the_implicit_deny() {
    let mut sim = world();
    sim.put(&policy("in", &["deny22"]));
    assert!(reached(&syn(&mut sim, 6, 40000, 80)).is_empty());
    // What b starts is not filtered (no egress policy), and its replies are replies.
    let out = tcp_frame(6, 5, 41000, 80, Flags::SYN);
    assert_eq!(reached(&sim.send(B, &out)), [A]);
    let back = tcp_frame(5, 6, 80, 41000, Flags::SYN | Flags::ACK);
    assert_eq!(reached(&sim.send(A, &back)), [B], "a's reply reaches b");
    // A group with no ingress policy does not filter ingress.
    sim.put(&group("fwg", None, Some("in"), &["b", "c"]));
    assert_eq!(reached(&syn(&mut sim, 6, 40001, 80)), [B]);
    // Administratively down: everything its policies would filter is denied.
    let mut g = group("fwg", Some("in"), None, &["b"]);
    g.admin_state_up = false;
    sim.put(&policy("in", &["any"]));
    sim.put(&g);
    assert!(reached(&syn(&mut sim, 6, 40002, 80)).is_empty());
    // Out of the group, b is filtered by its security groups alone.
    sim.put(&group("fwg", Some("in"), None, &[]));
    assert_eq!(reached(&syn(&mut sim, 6, 40003, 22)), [B]);
}

#[test]
fn allowed_traffic_still_needs_the_security_groups() {
    let mut sim = world();
    // c's group "closed" has no ingress rule: the firewall's allow any is not enough.
    assert!(reached(&syn(&mut sim, 7, 40000, 80)).is_empty());
    sim.put(&fixtures::security_group_rule(
        "closed-in",
        "closed",
        Direction::Ingress,
    ));
    assert_eq!(reached(&syn(&mut sim, 7, 40001, 80)), [C]);
    // ...and the security groups allowing it does not get it past a deny.
    assert!(reached(&syn(&mut sim, 7, 40002, 22)).is_empty());
}

#[test]
fn inserting_a_rule_first_is_one_commit_and_keeps_what_stays_allowed() {
    let mut sim = world();
    assert_eq!(reached(&syn(&mut sim, 6, 40000, 80)), [B]);
    assert!(reached(&syn(&mut sim, 6, 40001, 22)).is_empty());
    sim.put(&rule("allow22", Some("tcp"), Some(22), FwAction::Allow));
    let commits = sim.commits;
    sim.put(&policy(
        "in",
        &["allow22", "deny22", "rej23", "rej69", "any"],
    ));
    assert_eq!(
        sim.commits,
        commits + 1,
        "the whole reordering in one bundle"
    );
    assert_eq!(reached(&syn(&mut sim, 6, 40002, 22)), [B], "22 is open");
    // The connection to 80 goes on: an ACK of it passes as established.
    let ack = tcp_frame(5, 6, 40000, 80, Flags::ACK);
    assert_eq!(reached(&sim.send(A, &ack)), [B]);
    // Removing the rule from the policy closes 22 again, for new connections and for the
    // one it let in: its next packet from a is dropped (b's answers still reach a, and
    // go nowhere).
    sim.put(&policy("in", &["deny22", "rej23", "rej69", "any"]));
    assert!(reached(&syn(&mut sim, 6, 40003, 22)).is_empty());
    let reply = tcp_frame(6, 5, 22, 40002, Flags::SYN | Flags::ACK);
    assert_eq!(reached(&sim.send(B, &reply)), [A]);
    let more = tcp_frame(5, 6, 40002, 22, Flags::ACK);
    assert!(reached(&sim.send(A, &more)).is_empty(), "cut");
    // The connection to 80 is still allowed, and goes on.
    assert_eq!(reached(&sim.send(A, &ack)), [B]);
    // A rule's own change (disabled) recompiles the ports of its policies' groups.
    let mut any = rule("any", None, None, FwAction::Allow);
    any.enabled = false;
    sim.put(&any);
    assert!(reached(&syn(&mut sim, 6, 40004, 80)).is_empty());
}

#[test]
fn egress_policies_and_the_answers_rate_limit() {
    let mut sim = world();
    sim.put(&rule("rej25", Some("tcp"), Some(25), FwAction::Reject));
    sim.put(&policy("out", &["rej25", "any"]));
    sim.put(&group("fwa", None, Some("out"), &["a"]));
    let s = syn(&mut sim, 6, 40000, 25);
    assert!(reached(&s).is_empty());
    assert_eq!(
        answers(&s),
        [(A, IpProtocol::Tcp, ip(6), Some(Flags::RST | Flags::ACK))],
        "refused on a's own host, straight back"
    );
    assert_eq!(reached(&syn(&mut sim, 6, 40001, 80)), [B]);
    // Past the rate in one instant (the bucket full again), the rest are dropped
    // unanswered.
    sim.now += std::time::Duration::from_secs(2);
    let n = DEFAULT_RATE as u16 + 5;
    let answered: usize = (0..n)
        .map(|i| answers(&syn(&mut sim, 6, 41000 + i, 25)).len())
        .sum();
    assert_eq!(answered, DEFAULT_RATE as usize);
    assert_eq!(sim.handler::<Reject>().limited, 5);
    // Deleting the group lifts it.
    sim.delete(Table::FirewallGroup, "fwa");
    assert_eq!(reached(&syn(&mut sim, 6, 42000, 25)), [B]);
}

#[test]
fn a_shared_policy_of_another_project_is_looked_up_and_followed() {
    let mut sim = Sim::new("h", 0);
    sim.put(&fixtures::network("n", 9));
    put_open_group(&mut sim);
    sim.put(&vm("a", 5, &["open"]));
    sim.plug("a", A);
    sim.put(&vm("b", 6, &["open"]));
    sim.plug("b", B);
    // Policy and rules of project q, which no port of this host is in.
    let theirs = |mut r: FirewallRule| {
        r.meta.project_id = "q".into();
        r.shared = true;
        r
    };
    sim.put(&theirs(rule(
        "deny22",
        Some("tcp"),
        Some(22),
        FwAction::Deny,
    )));
    sim.put(&theirs(rule("any", None, None, FwAction::Allow)));
    let mut shared = policy("in", &["deny22", "any"]);
    shared.meta.project_id = "q".into();
    shared.shared = true;
    sim.put(&shared);
    assert!(sim.core.view().fw_policies.is_empty(), "not followed yet");
    sim.put(&group("fwg", Some("in"), None, &["b"]));
    assert!(reached(&syn(&mut sim, 6, 40000, 22)).is_empty());
    assert_eq!(reached(&syn(&mut sim, 6, 40001, 80)), [B]);
    // A rule changed there now reaches this host.
    sim.put(&theirs(rule("any", Some("udp"), None, FwAction::Allow)));
    assert!(reached(&syn(&mut sim, 6, 40002, 80)).is_empty());
}

/// Whatever a VM makes the switch punt, the reject handler answers or drops it; it never
/// panics. Random bytes, and valid segments and datagrams with random bytes changed, from
/// each of the four rules tables.
#[test]
fn punted_garbage_never_panics_the_reject_handler() {
    use controller::pipeline::{App, Cookie, table};
    use openflow::oxm::{Field, Match, OxmField};
    use openflow::packet::PacketIn;
    let mut sim = world();
    // The pipeline is not what changes here: no need to compare it after each packet.
    sim.unchecked = true;
    let mut rnd = support::rng();
    let valid = [
        tcp_frame(5, 6, 40000, 23, Flags::SYN),
        tcp_frame(5, 6, 40000, 23, Flags::ACK),
        tcp_frame(5, 6, 40000, 23, Flags::RST),
        udp_frame(mac(5), mac(6), (ip(5), 40000), (ip(6), 69)),
    ];
    let tables = [
        table::EGRESS_FW_RULES,
        table::INGRESS_FW_RULES,
        table::ROUTER_FW_IN_RULES,
        table::ROUTER_FW_OUT_RULES,
    ];
    let mut answered = 0;
    for i in 0..20_000u32 {
        if i > 0 && i % 250 == 0 {
            sim.wait(std::time::Duration::from_secs(1));
        }
        let mut frame = if i % 2 == 0 {
            valid[(rnd() % valid.len() as u64) as usize].clone()
        } else {
            (0..rnd() % 200).map(|_| rnd() as u8).collect()
        };
        for _ in 0..rnd() % 4 {
            if !frame.is_empty() {
                let at = (rnd() % frame.len() as u64) as usize;
                frame[at] = rnd() as u8;
            }
        }
        if rnd().is_multiple_of(8) {
            frame.truncate((rnd() % 80) as usize);
        }
        let pi = PacketIn {
            buffer_id: u32::MAX,
            total_len: frame.len() as u16,
            reason: 1,
            table_id: tables[(rnd() % 4) as usize],
            cookie: Cookie {
                app: App::Fwaas,
                key: 6,
            }
            .encode(),
            match_: Match::new()
                .in_port(A)
                .metadata(9)
                .with(OxmField::new(Field::Reg(6), 5u32))
                .with(OxmField::new(Field::Reg(7), 6u32)),
            data: frame,
        };
        answered += sim.packet_in(pi).packets.len();
    }
    assert!(answered > 0, "valid frames among them were answered");
    let h = sim.handler::<Reject>();
    assert!(h.ignored > 0, "garbage among them was not: {h:?}");
}
