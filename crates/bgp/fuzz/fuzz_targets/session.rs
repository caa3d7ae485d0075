//! A session fed arbitrary bytes in arbitrary pieces after its OPEN: never panics, and
//! never sends anything it could not parse itself.
#![no_main]
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::fsm::{Config, Input, Output, Session};
use bgp::wire::{Codec, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut s = Session::new(Config {
        local_as: 64512,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        peer_as: 65000,
        hold_time: 9,
        connect_retry: Duration::from_secs(1),
        families: vec![(1, 1), (2, 1)],
        restart_time: 120,
    });
    s.handle(t0, Input::Start);
    s.handle(t0, Input::Connected);
    let (split, rest) = data.split_first().map_or((1, data), |(a, r)| (*a, r));
    for (i, piece) in rest.chunks(usize::from(split).max(1)).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 500);
        let mut out = s.handle(now, Input::Bytes(piece));
        out.extend(s.handle(now, Input::Tick));
        for o in out {
            match o {
                Output::Send(b) => {
                    decode(&b, Codec::default()).expect("our message parses");
                }
                Output::Connect => {
                    s.handle(now, Input::Connected);
                }
                _ => {}
            }
        }
    }
});
