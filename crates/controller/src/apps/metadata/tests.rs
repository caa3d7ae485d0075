use super::*;

#[test]
fn port_keys_map_to_addresses_and_back() {
    let r = DEFAULT_RANGE;
    assert_eq!(server(r), Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(client(r, 1), Some(Ipv4Addr::new(198, 18, 0, 2)));
    assert_eq!(client(r, 0), None, "key 0 is no port");
    assert_eq!(key_of(r, Ipv4Addr::new(198, 18, 0, 2)), Some(1));
    assert_eq!(key_of(r, server(r)), None);
    assert_eq!(key_of(r, Ipv4Addr::new(198, 18, 0, 0)), None);
    // The last key the range holds, and the broadcast address left out.
    let last = (1u32 << 17) - 3;
    assert_eq!(client(r, last), Some(Ipv4Addr::new(198, 19, 255, 254)));
    assert_eq!(client(r, last + 1), None);
    assert_eq!(key_of(r, Ipv4Addr::new(198, 19, 255, 255)), None);
    assert_eq!(key_of(r, Ipv4Addr::new(10, 0, 0, 1)), None);
    for k in [1, 2, 77, 1000, last] {
        assert_eq!(key_of(r, client(r, k).unwrap()), Some(k));
    }
}
