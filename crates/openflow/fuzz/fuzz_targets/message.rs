//! Fuzz target: whole-message decoding; what decodes must re-encode and decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok((xid, m)) = Message::decode(data)
        && let Ok(bytes) = m.to_vec(xid)
    {
        assert!(
            Message::decode(&bytes).is_ok(),
            "re-encoded message does not decode"
        );
    }
});
