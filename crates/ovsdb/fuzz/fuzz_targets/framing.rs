//! Fuzzes the stream splitter: arbitrary bytes in arbitrary chunks never panic, and every
//! message it returns is bracket-delimited. The first byte chooses the chunk size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovsdb::framing::Splitter;

fuzz_target!(|data: &[u8]| {
    let Some((&c, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(c).max(1);
    let mut s = Splitter::new(4096);
    for part in rest.chunks(chunk) {
        s.push(part);
        while let Ok(Some(m)) = s.next_message() {
            let ends = (m.first().copied(), m.last().copied());
            assert!(matches!(
                ends,
                (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))
            ));
        }
    }
});
