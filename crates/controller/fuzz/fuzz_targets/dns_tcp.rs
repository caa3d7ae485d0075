//! Any bytes a VM sends to DNS over TCP: the first byte picks how they are cut into reads,
//! the rest goes through the length-prefix framer (`apps::dns::tcp::Framer`, bounded) and
//! each whole message to the responder's TCP answer from a view holding two ports. Never a
//! panic; the framer never holds more than one message and its prefix; an answer is a DNS
//! response to that very query, and no larger than a TCP message can be.
#![no_main]

use controller::apps::Host;
use controller::apps::dns::responder::{Config, DnsResponder, TcpAnswer, answers};
use controller::apps::dns::tcp::{Framer, frame};
use controller::view::{View, written};
use libfuzzer_sys::fuzz_target;
use model::{Network, Port, fixtures};
use std::time::Instant;

fn world() -> (View, Host) {
    let mut view = View::new("h");
    let net = Network {
        subnets: vec!["s".into()],
        ..fixtures::network("n", 9)
    };
    view.apply(&written(&net, 1));
    view.apply(&written(&fixtures::subnet("s", "n", "10.0.0.0/24"), 2));
    for (i, (id, key)) in [("p", 5), ("q", 6)].into_iter().enumerate() {
        let mut p: Port = fixtures::port(id, "n", key, "h");
        p.fixed_ips = vec![fixtures::fixed_ip("s", &format!("10.0.0.{key}"))];
        p.dns_name = id.into();
        view.apply(&written(&p, 3 + i as u64));
    }
    let mut host = Host::default();
    host.ofports.insert("p".into(), 1);
    host.ofports.insert("q".into(), 2);
    (view, host)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).max(1);
    let (view, host) = world();
    let mut r = DnsResponder::new(Config {
        upstreams: vec!["192.0.2.53:53".parse().unwrap()],
        ..Config::default()
    });
    let mut f = Framer::new();
    let now = Instant::now();
    let mut rest = data;
    loop {
        while let Some(m) = f.next_message() {
            let Ok(q) = m else { return };
            match r.answer_tcp(&view, &host, now, 5, &q) {
                TcpAnswer::Reply(a) => {
                    assert!(answers(&q, &a), "an answer to another query");
                    assert!(frame(&a).is_some());
                }
                TcpAnswer::Forward { query, .. } => assert_eq!(query, q),
                TcpAnswer::Close => return,
            }
        }
        assert!(f.held() <= 2 + 65535);
        if rest.is_empty() {
            return;
        }
        let n = f.push(&rest[..cut.min(rest.len())]);
        rest = &rest[n..];
    }
});
