//! The tap groups' numbers stay clear of every other app's.

use super::*;

#[test]
fn tap_group_ids_are_their_own() {
    let out = group_id(5, false).unwrap();
    let inn = group_id(5, true).unwrap();
    assert_ne!(out, inn);
    for g in [out, inn, group_id(KEY_MASK, true).unwrap()] {
        assert!(
            g & GROUP_BIT != 0 && g & (1 << 28) == 0,
            "not a chain's: {g:#x}"
        );
        assert!(g < 0x4000_0000, "below the multicast groups: {g:#x}");
        assert!(g >= 1 << 26, "above the balancers' and floods': {g:#x}");
    }
    assert_eq!(
        group_id(KEY_MASK + 1, false),
        None,
        "no alias of a smaller key"
    );
}
