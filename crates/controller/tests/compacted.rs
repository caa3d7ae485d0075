//! The NB stream falling behind the store's compacted log (`Event::Compacted`): the core
//! takes a new snapshot and its flows follow what the stream never delivered, also when
//! the news comes while a commit is out (the runtime then stops reading the stream until a
//! snapshot replaces it, so nothing else would ask again).

mod support;

use controller::engine::Event;
use model::{Table, fixtures};
use packet::EthernetAddress;
use packet::IpProtocol;
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use std::net::Ipv4Addr;
use support::open_port;
use support::sim::Sim;

const TUNNEL: u32 = 10;

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0xfa, 0x16, 0x3e, 0, 0, n])
}

/// A UDP frame from port n5 (10.0.0.5) to the port numbered `to`.
fn to(to: u8) -> Vec<u8> {
    let payload = [0u8; 12];
    let (src, dst) = (Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, to));
    let ip = Ipv4Repr::new(src, dst, IpProtocol::Udp, payload.len()).build(&payload);
    EthernetRepr {
        src_addr: mac(5),
        dst_addr: mac(to),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}

/// Port a (5) plugged here at OpenFlow port 1; c (7) on host o.
fn world() -> Sim {
    let mut sim = Sim::new("h", TUNNEL);
    sim.chassis("o", "192.0.2.2");
    sim.put(&fixtures::network("n", 9));
    support::put_open_group(&mut sim);
    sim.put(&open_port("a", 5, ""));
    sim.plug("a", 1);
    sim.put(&open_port("c", 7, "o"));
    sim
}

#[test]
fn a_compacted_stream_brings_a_snapshot_even_during_a_commit() {
    let mut sim = world();
    // c is known: a frame to it goes another way than one to a MAC nobody has.
    let unknown = |sim: &mut Sim| sim.send(1, &to(99)).outcome.trace;
    assert_eq!(sim.send(1, &to(7)).outcome.ports(), vec![TUNNEL]);
    assert_ne!(sim.send(1, &to(7)).outcome.trace, unknown(&mut sim));
    // What the stream never delivers: c deleted, d (8) made on host o.
    sim.forget(Table::Port, "c");
    let _ = sim.write(&open_port("d", 8, "o"));
    // A change it does deliver puts a commit out, and the stream fails before the commit
    // is confirmed.
    let e = sim.write(&open_port("e", 9, "o"));
    let fx = sim.core.handle(Event::Change(e), sim.now);
    assert!(sim.core.committing(), "a commit is out");
    let later = sim.core.handle(Event::Compacted, sim.now);
    sim.perform(fx);
    sim.perform(later);
    // The snapshot taken once the commit was confirmed: d reachable, c gone.
    let d = sim.send(1, &to(8)).outcome;
    assert_eq!(d.ports(), vec![TUNNEL], "{d}");
    let c = sim.send(1, &to(7)).outcome;
    assert_eq!(c.trace, unknown(&mut sim), "c's flows outlived it: {c}");
}
