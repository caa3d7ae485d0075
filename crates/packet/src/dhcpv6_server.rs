//! The server side of DHCPv6 (RFC 8415 16 and 18.3) as one pure function: given what the
//! server knows of a client (its [`Binding`]: the server's DUID, the client's addresses,
//! the prefixes on its link, lifetimes and configuration options), the reply to one
//! client message, or `None` where the RFC says to stay silent. No state is kept: a
//! binding is whatever the caller says it is now, so an address that changed is given at
//! the next Renew or Rebind and the old one returned with lifetimes 0.
//!
//! Nothing from the client is echoed but its Client Identifier (validated by the parser)
//! and its IAIDs.

use crate::dhcpv6::{
    ClientFqdn, Dhcpv6Repr, IaAddress, IaNa, MessageType, StatusCode, code, fqdn_flag, status,
};
use std::net::Ipv6Addr;

/// Lifetimes of the addresses given, and the IAs' renewal and rebinding times (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime.
    pub valid: u32,
    /// T1.
    pub t1: u32,
    /// T2.
    pub t2: u32,
}

/// Configuration options a reply carries (when it configures).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Recursive DNS servers (23).
    pub dns_servers: Vec<Ipv6Addr>,
    /// Domain search list (24).
    pub domain_list: Vec<String>,
    /// The client's name (the Client FQDN option, 39), fully qualified or partial.
    pub fqdn: Option<String>,
    /// Any other option, raw; never one of [`server_only`].
    pub other: Vec<(u16, Vec<u8>)>,
}

/// What the server knows of the client that sent a message.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The server's DUID (its Server Identifier).
    pub server_id: &'a [u8],
    /// The client's addresses (stateful); empty: none to give.
    pub addresses: &'a [Ipv6Addr],
    /// The prefixes on the client's link, as (network, length), for Confirm.
    pub links: &'a [(Ipv6Addr, u8)],
    /// Lifetimes of what is given.
    pub lifetimes: Lifetimes,
    /// Configuration options.
    pub options: &'a Options,
}

/// Options only the server's own logic writes: configuration may not carry them.
pub fn server_only(c: u16) -> bool {
    matches!(
        c,
        0 | code::CLIENTID
            | code::SERVERID
            | code::IA_NA
            | code::IA_TA
            | code::IAADDR
            | code::ORO
            | code::PREFERENCE
            | code::ELAPSED_TIME
            | code::RELAY_MSG
            | code::AUTH
            | code::UNICAST
            | code::STATUS_CODE
            | code::RAPID_COMMIT
            | code::INTERFACE_ID
            | code::RECONF_MSG
            | code::RECONF_ACCEPT
            | code::IA_PD
            | code::IAPREFIX
            | code::CLIENT_FQDN
    )
}

/// Whether the message's identifiers let a server with DUID `duid` answer it (RFC 8415
/// 16): a Client Identifier everywhere but Information-request; no Server Identifier on
/// Solicit, Confirm, Rebind; this server's on Request, Renew, Release, Decline; an
/// Information-request may name this server and holds no IA.
pub fn acceptable(req: &Dhcpv6Repr, duid: &[u8]) -> bool {
    let ours = req.server_id.as_deref() == Some(duid);
    match req.message_type {
        Some(MessageType::Solicit | MessageType::Confirm | MessageType::Rebind) => {
            req.client_id.is_some() && req.server_id.is_none()
        }
        Some(
            MessageType::Request | MessageType::Renew | MessageType::Release | MessageType::Decline,
        ) => req.client_id.is_some() && ours,
        Some(MessageType::InformationRequest) => (req.server_id.is_none() || ours) && !req.has_ia(),
        _ => false,
    }
}

fn in_prefix(a: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0);
    u128::from(a) & mask == u128::from(net) & mask
}

/// The IA answering the client's `ia` with the binding's addresses: those with their
/// lifetimes, and those the client listed that are not in it with lifetimes 0 (RFC 8415
/// 18.3.4: no longer appropriate). With no binding: `empty`'s status.
fn ia_reply(ia: &IaNa, b: &Binding<'_>, empty: u16) -> IaNa {
    let l = b.lifetimes;
    if b.addresses.is_empty() {
        let text = if empty == status::NO_BINDING {
            "no binding for this client"
        } else {
            "no address for this client"
        };
        return IaNa {
            iaid: ia.iaid,
            t1: 0,
            t2: 0,
            addresses: Vec::new(),
            status: Some(StatusCode::new(empty, text)),
        };
    }
    let mut addresses: Vec<IaAddress> = b
        .addresses
        .iter()
        .map(|a| IaAddress {
            addr: *a,
            preferred: l.preferred,
            valid: l.valid,
            status: None,
        })
        .collect();
    for old in &ia.addresses {
        if !addresses.iter().any(|a| a.addr == old.addr) {
            addresses.push(IaAddress {
                addr: old.addr,
                preferred: 0,
                valid: 0,
                status: None,
            });
        }
    }
    IaNa {
        iaid: ia.iaid,
        t1: l.t1,
        t2: l.t2,
        addresses,
        status: None,
    }
}

/// The client's IA with its addresses' lifetimes 0: a Rebind's answer when the client has
/// no binding any more (RFC 8415 18.3.5: the addresses are not appropriate for the link).
fn zeroed(client: &IaNa) -> IaNa {
    IaNa {
        iaid: client.iaid,
        t1: 0,
        t2: 0,
        addresses: client
            .addresses
            .iter()
            .map(|a| IaAddress {
                addr: a.addr,
                preferred: 0,
                valid: 0,
                status: None,
            })
            .collect(),
        status: None,
    }
}

/// The flags of the server's Client FQDN option (RFC 4704 6.1). The name is the
/// server's, not the client's, and the server's DNS answers it: S always, with O when the
/// client had asked to update the record itself; never N.
pub fn fqdn_flags(req: &Dhcpv6Repr) -> u8 {
    match &req.client_fqdn {
        Some(c) if c.flags & fqdn_flag::S == 0 => fqdn_flag::S | fqdn_flag::O,
        _ => fqdn_flag::S,
    }
}

fn configure(r: &mut Dhcpv6Repr, o: &Options, req: &Dhcpv6Repr) {
    r.dns_servers = o.dns_servers.clone();
    r.domain_list = o.domain_list.clone();
    // Sent whether or not the client asked, as dnsmasq (Neutron's DHCP server) does.
    r.client_fqdn = o.fqdn.as_ref().map(|name| ClientFqdn {
        flags: fqdn_flags(req),
        name: name.clone(),
    });
    r.other_options = o
        .other
        .iter()
        .filter(|(c, _)| !server_only(*c))
        .cloned()
        .collect();
}

/// The reply to client message `req`, or `None` when there is none to give.
///
/// - Solicit → Advertise (preference 255) with one IA_NA per IA_NA asked for, holding the
///   binding's addresses; with rapid commit asked for, Reply at once. No address to give:
///   Advertise with status NoAddrsAvail only (RFC 8415 18.3.9).
/// - Request → Reply (an IA with no address: NoAddrsAvail in it); Renew, Rebind → Reply
///   ([`ia_reply`]; no binding: NoBinding for Renew, the listed addresses with lifetimes 0
///   for Rebind).
/// - Confirm → Success when every listed address is on the link, else NotOnLink; no
///   address listed: no reply (RFC 8415 18.3.3).
/// - Release, Decline → Reply with Success.
/// - Information-request → Reply with the configuration.
pub fn answer(b: &Binding<'_>, req: &Dhcpv6Repr) -> Option<Dhcpv6Repr> {
    if !acceptable(req, b.server_id) {
        return None;
    }
    let t = req.message_type?;
    let reply = |t| Dhcpv6Repr::reply_to(req, t, b.server_id);
    let r = match t {
        MessageType::Solicit if b.addresses.is_empty() => {
            let mut r = reply(MessageType::Advertise);
            r.status = Some(StatusCode::new(
                status::NO_ADDRS_AVAIL,
                "no address for this client",
            ));
            r
        }
        MessageType::Solicit => {
            let rapid = req.rapid_commit;
            let mut r = reply(if rapid {
                MessageType::Reply
            } else {
                MessageType::Advertise
            });
            r.rapid_commit = rapid;
            // Preference 255: the client need not wait for other servers.
            r.preference = (!rapid).then_some(255);
            r.ia_na = req
                .ia_na
                .iter()
                .map(|ia| ia_reply(ia, b, status::NO_ADDRS_AVAIL))
                .collect();
            configure(&mut r, b.options, req);
            r
        }
        MessageType::Request | MessageType::Renew | MessageType::Rebind => {
            let empty = if t == MessageType::Request {
                status::NO_ADDRS_AVAIL
            } else {
                status::NO_BINDING
            };
            let mut r = reply(MessageType::Reply);
            r.ia_na = req
                .ia_na
                .iter()
                .map(|ia| {
                    if t == MessageType::Rebind
                        && b.addresses.is_empty()
                        && !ia.addresses.is_empty()
                    {
                        zeroed(ia)
                    } else {
                        ia_reply(ia, b, empty)
                    }
                })
                .collect();
            configure(&mut r, b.options, req);
            r
        }
        MessageType::Confirm => {
            let mut listed = req
                .ia_na
                .iter()
                .flat_map(|ia| ia.addresses.iter().map(|a| a.addr))
                .peekable();
            listed.peek()?;
            let on_link = listed.all(|a| b.links.iter().any(|l| in_prefix(a, *l)));
            let mut r = reply(MessageType::Reply);
            r.status = Some(if on_link {
                StatusCode::new(status::SUCCESS, "on link")
            } else {
                StatusCode::new(status::NOT_ON_LINK, "not on this link")
            });
            r
        }
        MessageType::Release | MessageType::Decline => {
            let mut r = reply(MessageType::Reply);
            r.status = Some(StatusCode::new(status::SUCCESS, "noted"));
            r
        }
        MessageType::InformationRequest => {
            let mut r = reply(MessageType::Reply);
            configure(&mut r, b.options, req);
            r
        }
        _ => return None,
    };
    Some(r)
}
