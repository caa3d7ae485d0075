//! Internal DNS names (Neutron's `dns-integration`): the rules a port's `dns_name` and a
//! network's or port's `dns_domain` follow, and the names a port's addresses get
//! (`dns_assignment`), shared by the API server (which shows and checks them) and the
//! controllers (whose DHCP hands them out and whose DNS responder answers them).

use crate::Port;
use std::net::IpAddr;

/// The domain of internal names when none is configured (Neutron's `dns_domain` default).
pub const DEFAULT_DOMAIN: &str = "openstacklocal";
/// The longest name (Neutron's `FQDN_FIELD_SIZE`).
pub const FQDN_MAX_LEN: usize = 255;
/// The longest label.
pub const LABEL_MAX_LEN: usize = 63;

/// One address's names, as `dns_assignment` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub hostname: String,
    pub ip_address: IpAddr,
    /// With the trailing dot.
    pub fqdn: String,
}

/// `domain` as an absolute name (`openstacklocal.`); empty stays empty.
pub fn absolute(domain: &str) -> String {
    match domain {
        "" => String::new(),
        d if d.ends_with('.') => d.to_string(),
        d => format!("{d}."),
    }
}

/// The name an address gets when its port has no `dns_name`: `host-10-0-0-5`,
/// `host-fd00--5` (dots and colons to dashes).
pub fn default_hostname(ip: IpAddr) -> String {
    format!("host-{}", ip.to_string().replace(['.', ':'], "-"))
}

/// The names of each of the port's addresses under `domain` (the configured one).
pub fn assignment(port: &Port, domain: &str) -> Vec<Assignment> {
    let domain = absolute(domain);
    let name = port.dns_name.as_str();
    port.fixed_ips
        .iter()
        .map(|f| {
            let (hostname, fqdn) = match name {
                "" => {
                    let h = default_hostname(f.ip_address);
                    let fqdn = join(&h, &domain);
                    (h, fqdn)
                }
                n if n.ends_with('.') => (n.to_string(), n.to_string()),
                n => (n.to_string(), join(n, &domain)),
            };
            Assignment {
                hostname,
                ip_address: f.ip_address,
                fqdn,
            }
        })
        .collect()
}

fn join(host: &str, domain: &str) -> String {
    if domain.is_empty() {
        host.to_string()
    } else {
        format!("{host}.{domain}")
    }
}

/// The absolute name a `dns_name` stands for under `domain` (lowercase, trailing dot):
/// what must be unique on a network. `None` for an empty name.
pub fn claimed_name(dns_name: &str, domain: &str) -> Option<String> {
    match dns_name {
        "" => None,
        n if n.ends_with('.') => Some(n.to_ascii_lowercase()),
        n => Some(join(n, &absolute(domain)).to_ascii_lowercase()),
    }
}

/// Neutron's check of a DNS name's form (RFC 1123 labels): `Err` holds its message.
fn format(data: &str) -> Result<(), String> {
    if data.is_empty() {
        return Ok(());
    }
    let trimmed = data.strip_suffix('.').unwrap_or(data);
    let why = (|| {
        if trimmed.len() > FQDN_MAX_LEN {
            return Err(format!(
                "'{trimmed}' exceeds the {FQDN_MAX_LEN} character FQDN limit"
            ));
        }
        let labels: Vec<&str> = trimmed.split('.').collect();
        for label in &labels {
            if label.is_empty() {
                return Err("Encountered an empty component".to_string());
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!(
                    "Name '{label}' must not start or end with a hyphen"
                ));
            }
            if label.len() > LABEL_MAX_LEN
                || !label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!(
                    "Name '{label}' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"
                ));
            }
        }
        if let [_, .., last] = labels.as_slice()
            && last.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!("TLD '{last}' must not be all numeric"));
        }
        Ok(())
    })();
    why.map_err(|reason| format!("'{data}' not a valid PQDN or FQDN. Reason: {reason}"))
}

/// A port's `dns_name` (already lowercased, as Neutron converts it), checked as Neutron's
/// `dns_host_name` validator does against the configured `domain`.
pub fn validate_name(data: &str, domain: &str) -> Result<(), String> {
    format(data)?;
    if data.is_empty() {
        return Ok(());
    }
    let domain = absolute(domain);
    let higher = if domain.is_empty() {
        String::new()
    } else {
        format!(".{domain}")
    };
    if !data.ends_with('.') {
        if data.len() + higher.len() > FQDN_MAX_LEN {
            return Err(format!(
                "The dns_name passed is a PQDN and its size is '{}'. The dns_domain option in neutron.conf is set to {domain}, with a length of '{}'. When the two are concatenated to form a FQDN (with a '.' at the end), the resulting length exceeds the maximum size of '{FQDN_MAX_LEN}'",
                data.len(),
                higher.len()
            ));
        }
        return Ok(());
    }
    if data.len() <= higher.len() || !data.ends_with(&higher) {
        return Err(format!(
            "The dns_name passed is a FQDN. Its higher level labels must be equal to the dns_domain option in neutron.conf, that has been set to '{domain}'. It must also include one or more valid DNS labels to the left of '{domain}'"
        ));
    }
    Ok(())
}

/// A network's or port's `dns_domain` (lowercased), checked as Neutron's
/// `dns_domain_name` validator does: empty, or an absolute name with room for a label.
pub fn validate_domain(data: &str) -> Result<(), String> {
    if data.is_empty() {
        return Ok(());
    }
    if !data.ends_with('.') {
        return Err(format!("'{data}' is not a FQDN"));
    }
    format(data)?;
    if data.len() > FQDN_MAX_LEN - 2 {
        return Err(format!(
            "'{data}' contains {} characters. Adding a sub-domain will cause it to exceed the maximum length of a FQDN of '{FQDN_MAX_LEN}'",
            data.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedIp;

    fn port(name: &str, ips: &[&str]) -> Port {
        let mut p = crate::fixtures::port("p", "n", 1, "");
        p.dns_name = name.into();
        p.fixed_ips = ips
            .iter()
            .map(|a| FixedIp {
                subnet_id: "s".into(),
                ip_address: a.parse().unwrap(),
            })
            .collect();
        p
    }

    #[test]
    fn assignment_is_the_name_or_host_dashes_under_the_domain() {
        let a = assignment(&port("", &["10.0.0.5", "fd00::5"]), "openstacklocal");
        assert_eq!(a[0].hostname, "host-10-0-0-5");
        assert_eq!(a[0].fqdn, "host-10-0-0-5.openstacklocal.");
        assert_eq!(a[1].hostname, "host-fd00--5");
        let a = assignment(&port("vm1", &["10.0.0.5"]), "example.org.");
        assert_eq!(
            (a[0].hostname.as_str(), a[0].fqdn.as_str()),
            ("vm1", "vm1.example.org.")
        );
        let a = assignment(&port("vm1.example.org.", &["10.0.0.5"]), "example.org");
        assert_eq!(a[0].fqdn, "vm1.example.org.");
        assert!(assignment(&port("vm1", &[]), "d").is_empty());
        assert_eq!(a[0].hostname, "vm1.example.org.");
        assert_eq!(
            claimed_name("vm1", "example.org").as_deref(),
            Some("vm1.example.org.")
        );
        assert_eq!(claimed_name("", "example.org"), None);
    }

    #[test]
    fn names_follow_neutrons_rules() {
        for ok in ["", "vm1", "vm-1.a", "a1.b2.", "x".repeat(63).as_str()] {
            assert_eq!(
                validate_name(ok, "").map_err(|e| (ok.to_string(), e)),
                Ok(())
            );
        }
        for bad in [
            "-vm",
            "vm-",
            "a..b",
            "vm_1",
            "Vm1",
            "vm1.123",
            &"x".repeat(64),
            ".",
        ] {
            assert!(validate_name(bad, "").is_err(), "{bad:?} accepted");
        }
        assert!(validate_name("vm1.example.org.", "example.org").is_ok());
        assert!(validate_name("vm1.other.org.", "example.org").is_err());
        assert!(validate_name("example.org.", "example.org").is_err());
        let long = format!("{}.{}", "a".repeat(63), "b".repeat(63));
        let long = format!("{long}.{long}");
        assert!(
            validate_name(&long, "openstacklocal").is_err(),
            "too long with the domain"
        );
    }

    #[test]
    fn objects_stored_before_dns_still_read() {
        let p = crate::fixtures::port("p", "n", 1, "");
        let v = serde_json::to_value(&p).unwrap();
        assert!(v.get("dns_name").is_none() && v.get("dns_domain").is_none());
        let back: Port = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        let n = crate::fixtures::network("n", 1);
        let v = serde_json::to_value(&n).unwrap();
        assert!(v.get("dns_domain").is_none());
        assert_eq!(serde_json::from_value::<crate::Network>(v).unwrap(), n);
    }

    #[test]
    fn domains_are_absolute_names() {
        assert!(validate_domain("").is_ok());
        assert!(validate_domain("example.org.").is_ok());
        assert!(validate_domain("example.org").is_err());
        assert!(validate_domain("ex ample.org.").is_err());
        assert!(validate_domain(&format!("{}.", "a.".repeat(126))).is_err());
    }
}
