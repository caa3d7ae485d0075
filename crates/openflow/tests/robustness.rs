//! Decoders never panic: random bytes and mutated valid messages go into every decoder.
//! (The same inputs are also run by the cargo-fuzz targets in `fuzz/`.)

mod strategies;

use openflow::buf::Reader;
use openflow::{FrameReader, Match, Message};
use proptest::prelude::*;

/// Feeds `data` to every decoder; whatever decodes must re-encode and decode again.
fn all_decoders(data: &[u8]) {
    if let Ok((xid, m)) = Message::decode(data)
        && let Ok(bytes) = m.to_vec(xid)
    {
        let again = Message::decode(&bytes);
        assert!(again.is_ok(), "re-encoded {m:?} does not decode: {again:?}");
    }
    let _ = openflow::action::decode_actions(data);
    let _ = openflow::instruction::decode_instructions(data);
    let _ = openflow::oxm::decode_oxms(data);
    let _ = Match::decode(&mut Reader::new(data, "match"));
    let mut fr = FrameReader::new();
    fr.extend(data);
    while let Ok(Some(f)) = fr.next_frame() {
        let _ = Message::decode(f);
    }
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    for &(pos, v) in edits {
        let n = bytes.len();
        if let Some(b) = bytes.get_mut(pos % n) {
            *b = v;
        }
    }
    let keep = bytes.len() - cut % bytes.len();
    bytes.truncate(keep.max(8));
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        all_decoders(&data);
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(ty in 0u8..32, body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut data = vec![4, ty, 0, 0, 0, 0, 0, 1];
        data.extend_from_slice(&body);
        let len = data.len() as u16;
        data[2..4].copy_from_slice(&len.to_be_bytes());
        all_decoders(&data);
    }

    #[test]
    fn mutated_messages_never_panic(
        m in strategies::message(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let bytes = m.to_vec(7).expect("encode");
        // Keep the header's length consistent half of the time so bodies get parsed.
        let mut mutated = mutate(bytes, &edits, cut);
        if cut % 2 == 0 {
            let len = mutated.len() as u16;
            mutated[2..4].copy_from_slice(&len.to_be_bytes());
        }
        all_decoders(&mutated);
    }
}

#[test]
fn fuzz_regressions_replay() {
    // Inputs that once broke a fuzz target (see scripts/fuzz), replayed on every test run.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("regressions dir") {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        all_decoders(&data);
        if let Ok(actions) = openflow::action::decode_actions(&data) {
            let mut out = Vec::new();
            openflow::action::encode_actions(&actions, &mut out);
            assert_eq!(openflow::action::decode_actions(&out), Ok(actions));
        }
        n += 1;
    }
    assert!(n > 0, "no regression inputs found in {dir}");
}

#[test]
fn hostile_nesting_is_bounded() {
    // ct() inside ct() inside ... : decoding must stop with an error, not recurse forever.
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..2000 {
        let len = (24 + inner.len()) as u16;
        let mut ct = vec![0xff, 0xff];
        ct.extend_from_slice(&len.to_be_bytes());
        ct.extend_from_slice(&[
            0, 0, 0x23, 0x20, 0, 35, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0,
        ]);
        ct.extend_from_slice(&inner);
        inner = ct;
        if inner.len() > 60_000 {
            break;
        }
    }
    assert!(openflow::action::decode_actions(&inner).is_err());
}

#[test]
fn bad_lengths_are_errors() {
    // A header claiming less than 8 bytes cannot be framed.
    let mut fr = FrameReader::new();
    fr.extend(&[4, 0, 0, 4, 0, 0, 0, 1]);
    assert!(fr.next_frame().is_err());
    // An action with length 0 would loop forever if accepted.
    assert!(openflow::action::decode_actions(&[0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    // A truncated flow-mod.
    let m = Message::BarrierRequest.to_vec(1).expect("encode");
    assert!(Message::decode(m.get(..6).unwrap_or(&[])).is_err());
    // Not OpenFlow 1.3.
    assert_eq!(
        Message::decode(&[1, 20, 0, 8, 0, 0, 0, 1]),
        Err(openflow::Error::BadVersion(1))
    );
}
