//! Fuzz target: stream framing, fed in two chunks, then message decoding of each frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (a, b) = data.split_at(split);
    let mut fr = openflow::FrameReader::new();
    fr.extend(a);
    while let Ok(Some(f)) = fr.next_frame() {
        let _ = openflow::Message::decode(f);
    }
    fr.extend(b);
    while let Ok(Some(f)) = fr.next_frame() {
        let _ = openflow::Message::decode(f);
    }
});
