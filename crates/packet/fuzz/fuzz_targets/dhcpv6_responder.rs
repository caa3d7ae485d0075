//! Arbitrary bytes, as a whole frame and as a bare message, to the DHCPv6 server core
//! (`dhcpv6_server::answer`, what the controller's responder calls with a port's
//! binding): never panics; a reply keeps the transaction, names this server, echoes only
//! the client's identifier and IAIDs, gives only the binding's addresses (or the client's
//! own with lifetimes 0), carries only the configured options and name, and parses back from the
//! frame it is sent in.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::EthernetAddress;
use packet::dhcpv6::{self, Dhcpv6Repr, Packet};
use packet::dhcpv6_server::{Binding, Lifetimes, Options, answer};
use std::net::Ipv6Addr;

fuzz_target!(|data: &[u8]| {
    let reqs = [
        dhcpv6::parse_frame(data).map(|f| f.dhcp),
        Packet::new_checked(data).and_then(|p| Dhcpv6Repr::parse(&p)),
    ];
    let duid = dhcpv6::duid_ll(EthernetAddress([2, 0, 0, 0, 0, 1]));
    let mine: [Ipv6Addr; 1] = ["2001:db8::5".parse().unwrap()];
    let options = Options {
        dns_servers: vec!["2001:db8::53".parse().unwrap()],
        domain_list: vec!["openstacklocal".into()],
        fqdn: Some("vm.openstacklocal.".into()),
        other: vec![(56, vec![0, 1, 0, 0]), (2, vec![1])],
    };
    for req in reqs.into_iter().flatten() {
        for addresses in [&mine[..], &[]] {
            let b = Binding {
                server_id: &duid,
                addresses,
                links: &[("2001:db8::".parse().unwrap(), 64)],
                lifetimes: Lifetimes {
                    preferred: 100,
                    valid: 200,
                    t1: 50,
                    t2: 80,
                },
                options: &options,
            };
            let Some(r) = answer(&b, &req) else {
                continue;
            };
            assert_eq!(r.transaction_id, req.transaction_id);
            assert_eq!(r.client_id, req.client_id);
            assert_eq!(r.server_id.as_deref(), Some(&duid[..]));
            for ia in &r.ia_na {
                assert!(req.ia_na.iter().any(|q| q.iaid == ia.iaid));
                for a in &ia.addresses {
                    let listed = req
                        .ia_na
                        .iter()
                        .flat_map(|q| &q.addresses)
                        .any(|x| x.addr == a.addr);
                    assert!(addresses.contains(&a.addr) || (listed && a.valid == 0));
                }
            }
            assert!(r.other_options.iter().all(|o| o == &options.other[0]));
            // The name is the server's, never the client's.
            assert!(
                r.client_fqdn
                    .as_ref()
                    .is_none_or(|f| Some(&f.name) == options.fqdn.as_ref())
            );
            let frame = dhcpv6::reply_frame(
                &r,
                (
                    EthernetAddress([2, 0, 0, 0, 0, 1]),
                    "fe80::1".parse().unwrap(),
                ),
                (
                    EthernetAddress([2, 0, 0, 0, 0, 2]),
                    "fe80::2".parse().unwrap(),
                ),
                None,
            );
            assert_eq!(dhcpv6::parse_frame(&frame).unwrap().dhcp, r);
        }
    }
});
