//! What a name means to the port asking, from the local view: the names of the ports it
//! may see (its project's ports on its network and on the networks its network's routers
//! join), their addresses (A, AAAA) and reverse names (PTR). A name of another project
//! answers exactly as a name nobody has, so no answer tells one project anything of
//! another's. Names outside the internal domain and addresses outside the reachable
//! subnets are someone else's: the caller forwards them upstream or refuses.

use crate::apps::here::routers_on;
use crate::view::View;
use model::Port;
use packet::dns::{Answer, Data, Name, Question, rcode, rtype};
use std::net::IpAddr;

/// Seconds an answer may be kept: none, so a name changed through the API is answered anew
/// at once (dnsmasq's `local-ttl` is 0 too).
pub const TTL: u32 = 0;

/// What a question gets here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Answered with authority: the code and the records.
    Answer { rcode: u8, answers: Vec<Answer> },
    /// Not an internal name: for the upstream resolvers.
    Elsewhere,
}

/// The networks whose ports `asker` may name: its own and those of the routers on it.
pub fn reachable_networks<'a>(view: &'a View, asker: &'a Port) -> Vec<&'a str> {
    let mut nets = vec![asker.network_id.as_str()];
    for r in routers_on(view, &asker.network_id) {
        nets.extend(r.interfaces.iter().map(|i| i.network_id.as_str()));
    }
    nets.sort_unstable();
    nets.dedup();
    nets
}

/// The ports `asker` may name: its own project's, on the reachable networks.
fn visible<'a>(view: &'a View, asker: &'a Port) -> impl Iterator<Item = &'a Port> {
    reachable_networks(view, asker)
        .into_iter()
        .flat_map(move |n| view.ports_of(n))
        .filter(move |p| p.meta.project_id == asker.meta.project_id)
}

/// Whether `qname` (lowercase, absolute) is in the internal zone: the domain and under it,
/// and single labels (a bare host name).
fn internal(qname: &str, domain: &str) -> bool {
    (qname != "." && qname.matches('.').count() == 1)
        || (!domain.is_empty() && (qname == domain || qname.ends_with(&format!(".{domain}"))))
}

/// Answers `q` for `asker` under `domain` (lowercase, absolute: `openstacklocal.`).
pub fn resolve(view: &View, domain: &str, asker: &Port, q: &Question) -> Resolution {
    let Some(qname) = q.name.to_lowercase_dotted() else {
        return Resolution::Elsewhere;
    };
    if q.qclass != packet::dns::CLASS_IN {
        return Resolution::Elsewhere;
    }
    if let Some(ip) = packet::dns::reverse_address(&qname) {
        return reverse(view, domain, asker, q, ip);
    }
    if !internal(&qname, domain) {
        return Resolution::Elsewhere;
    }
    // The host part the name asks for (`vm1` of `vm1.openstacklocal.` or of `vm1.`), and
    // the address a default name (`host-10-0-0-5`) stands for: compared with each port's
    // name without building any (a look-up scans the reachable ports).
    let host = qname
        .strip_suffix(&format!(".{domain}"))
        .or_else(|| qname.strip_suffix('.'))
        .unwrap_or(&qname);
    let default_ip = default_address(host);
    let mut found = false;
    let mut answers = Vec::new();
    for p in visible(view, asker) {
        let named = match p.dns_name.as_str() {
            "" => None,
            n if n.ends_with('.') => Some(n == qname),
            n => Some(n == host),
        };
        for f in &p.fixed_ips {
            if !named.unwrap_or(default_ip == Some(f.ip_address)) {
                continue;
            }
            found = true;
            let data = match (f.ip_address, q.qtype) {
                (IpAddr::V4(ip), rtype::A | rtype::ANY) => Data::A(ip),
                (IpAddr::V6(ip), rtype::AAAA | rtype::ANY) => Data::Aaaa(ip),
                _ => continue,
            };
            answers.push(Answer {
                name: q.name.clone(),
                ttl: TTL,
                data,
            });
        }
    }
    Resolution::Answer {
        // A known name without an address of the type asked: no data, but no NXDOMAIN.
        rcode: if found {
            rcode::NOERROR
        } else {
            rcode::NXDOMAIN
        },
        answers,
    }
}

/// The address a default host name stands for: `host-10-0-0-5` is 10.0.0.5, `host-fd00--5`
/// is fd00::5 (`model::dns::default_hostname` backwards).
fn default_address(host: &str) -> Option<IpAddr> {
    let rest = host.strip_prefix("host-")?;
    let ip = if rest.matches('-').count() == 3 {
        rest.replace('-', ".")
            .parse::<std::net::Ipv4Addr>()
            .ok()?
            .into()
    } else {
        rest.replace('-', ":")
            .parse::<std::net::Ipv6Addr>()
            .ok()?
            .into()
    };
    (model::dns::default_hostname(ip) == host).then_some(ip)
}

/// A PTR question for `ip`: a visible port's address is named; another address of the
/// reachable subnets does not exist (it never leaves to ask upstream); any other is not
/// ours.
fn reverse(view: &View, domain: &str, asker: &Port, q: &Question, ip: IpAddr) -> Resolution {
    let named = visible(view, asker)
        .find(|p| p.fixed_ips.iter().any(|f| f.ip_address == ip))
        .and_then(|p| {
            model::dns::assignment(p, domain)
                .into_iter()
                .find(|a| a.ip_address == ip)
        });
    if let Some(a) = named {
        let answers = match (q.qtype, Name::from_dotted(&a.fqdn)) {
            (rtype::PTR | rtype::ANY, Ok(target)) => vec![Answer {
                name: q.name.clone(),
                ttl: TTL,
                data: Data::Ptr(target),
            }],
            _ => Vec::new(),
        };
        return Resolution::Answer {
            rcode: rcode::NOERROR,
            answers,
        };
    }
    let ours = reachable_networks(view, asker).into_iter().any(|n| {
        view.networks.get(n).is_some_and(|net| {
            net.subnets
                .iter()
                .filter_map(|s| view.subnets.get(s))
                .any(|s| s.cidr.contains(&ip))
        })
    });
    if ours {
        Resolution::Answer {
            rcode: rcode::NXDOMAIN,
            answers: Vec::new(),
        }
    } else {
        Resolution::Elsewhere
    }
}
