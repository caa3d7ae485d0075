//! Fuzz target: meter config and meter stats reply bodies (from the switch); what decodes
//! must re-encode to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::Message;
use openflow::multipart::MultipartReply;

fuzz_target!(|data: &[u8]| {
    for (i, reply) in [
        openflow::meter::decode_configs(data).map(MultipartReply::MeterConfig),
        openflow::meter::decode_stats(data).map(MultipartReply::MeterStats),
    ]
    .into_iter()
    .enumerate()
    {
        if let Ok(body) = reply {
            let m = Message::MultipartReply { flags: 0, body };
            let bytes = m.to_vec(i as u32).expect("encodes");
            let (_, back) = Message::decode(&bytes).expect("re-encoded reply decodes");
            assert_eq!(back, m);
        }
    }
});
