//! Fuzzes the decoder of the publish-subscribe messages (bytes from the network): any
//! bytes give a message or an error, never a panic; a decoded message encodes to bytes
//! that decode to it again; and a subscriber's tracker judges whatever decodes without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdb::pubsub::seq::{Tracker, Verdict};
use nbdb::pubsub::wire::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let mut tracker = Tracker::new(0);
    // Several messages, newline-separated, through one tracker.
    for part in data.split(|b| *b == b'\n') {
        let Ok(m) = decode(part) else {
            continue;
        };
        assert_eq!(decode(&encode(&m)).as_ref(), Ok(&m));
        if let Verdict::Gap { channel, upto, .. } = tracker.offer(&m) {
            tracker.filled(&channel, upto);
            assert_ne!(
                std::mem::discriminant(&tracker.offer(&m)),
                std::mem::discriminant(&Verdict::Gap {
                    channel,
                    after: 0,
                    upto: 0
                })
            );
        }
    }
});
