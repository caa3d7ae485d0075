//! From a Neutron port and its subnets to what the container gets (its addresses with
//! their prefixes, gateways, DNS) and to the CNI result the runtime reads. Pure.

use super::link::Attachment;
use rscni_plugin::error::Error;
use rscni_plugin::types::{CNIResult, Dns, Interface, IpConfig, Route};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// The subnets of the port's fixed IPs, each read once.
pub fn subnets_of(
    port: &Value,
    mut fetch: impl FnMut(&str) -> Result<Value, Error>,
) -> Result<BTreeMap<String, Value>, Error> {
    let mut out = BTreeMap::new();
    for ip in port["fixed_ips"].as_array().into_iter().flatten() {
        if let Some(id) = ip["subnet_id"].as_str()
            && !out.contains_key(id)
        {
            out.insert(id.to_string(), fetch(id)?);
        }
    }
    Ok(out)
}

/// Each fixed IP with its subnet's prefix length, and the subnet's gateway.
fn addresses(port: &Value, subnets: &BTreeMap<String, Value>) -> Vec<(IpAddr, u8, Option<IpAddr>)> {
    port["fixed_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let ip: IpAddr = f["ip_address"].as_str()?.parse().ok()?;
            let subnet = subnets.get(f["subnet_id"].as_str()?)?;
            let prefix = subnet["cidr"].as_str()?.split_once('/')?.1.parse().ok()?;
            let gw = subnet["gateway_ip"].as_str().and_then(|g| g.parse().ok());
            Some((ip, prefix, gw))
        })
        .collect()
}

/// What the container's interface gets from the port.
pub fn attachment(
    port: &Value,
    subnets: &BTreeMap<String, Value>,
    container: &str,
    mtu: u32,
) -> Attachment {
    let addrs = addresses(port, subnets);
    let mut gateways: Vec<IpAddr> = Vec::new();
    for (_, _, gw) in &addrs {
        // One default route per IP version: the first subnet's gateway.
        if let Some(gw) = gw
            && !gateways.iter().any(|g| g.is_ipv4() == gw.is_ipv4())
        {
            gateways.push(*gw);
        }
    }
    Attachment {
        port_id: port["id"].as_str().unwrap_or_default().to_string(),
        container_id: container.to_string(),
        mac: port["mac_address"].as_str().unwrap_or_default().to_string(),
        mtu,
        addresses: addrs.iter().map(|(ip, p, _)| format!("{ip}/{p}")).collect(),
        gateways,
        vlan: None,
    }
}

/// The ADD result: the container's interface (index 0, which the addresses name), the
/// host end of its veth (index 1, no sandbox: what a chained `bandwidth` plugin shapes),
/// its addresses, default routes and the subnets' DNS servers.
pub fn cni_result(
    port: &Value,
    subnets: &BTreeMap<String, Value>,
    ifname: &str,
    netns: &Path,
    host_end: &str,
) -> CNIResult {
    let a = attachment(port, subnets, "", 0);
    let ips = addresses(port, subnets)
        .into_iter()
        .filter_map(|(ip, prefix, gateway)| {
            Some(IpConfig {
                interface: Some(0),
                address: format!("{ip}/{prefix}").parse().ok()?,
                gateway,
            })
        })
        .collect();
    let routes = a
        .gateways
        .iter()
        .map(|gw| Route {
            dst: if gw.is_ipv4() { "0.0.0.0/0" } else { "::/0" }
                .parse()
                .unwrap(),
            gw: Some(*gw),
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        })
        .collect();
    let mut nameservers: Vec<String> = Vec::new();
    for s in subnets.values() {
        for d in s["dns_nameservers"].as_array().into_iter().flatten() {
            if let Some(d) = d.as_str().map(str::to_string)
                && !nameservers.contains(&d)
            {
                nameservers.push(d);
            }
        }
    }
    CNIResult {
        interfaces: vec![
            Interface {
                name: ifname.to_string(),
                mac: a.mac,
                mtu: None,
                sandbox: Some(netns.display().to_string()),
                socket_path: None,
                pci_id: None,
            },
            Interface {
                name: host_end.to_string(),
                mac: String::new(),
                mtu: None,
                sandbox: None,
                socket_path: None,
                pci_id: None,
            },
        ],
        ips,
        routes,
        dns: Some(Dns {
            nameservers,
            domain: None,
            search: None,
            options: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn port() -> Value {
        json!({"id": "p1", "mac_address": "fa:16:3e:00:00:01", "network_id": "n1", "fixed_ips": [
            {"subnet_id": "s4", "ip_address": "10.0.0.5"},
            {"subnet_id": "s6", "ip_address": "fd00::5"},
            {"subnet_id": "s4b", "ip_address": "10.1.0.5"}
        ]})
    }

    fn subnets() -> BTreeMap<String, Value> {
        subnets_of(&port(), |id| {
            Ok(match id {
                "s4" => json!({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "dns_nameservers": ["10.0.0.53"]}),
                "s6" => json!({"cidr": "fd00::/64", "gateway_ip": "fd00::1", "dns_nameservers": []}),
                _ => json!({"cidr": "10.1.0.0/16", "gateway_ip": null, "dns_nameservers": ["10.0.0.53", "1.1.1.1"]}),
            })
        })
        .unwrap()
    }

    #[test]
    fn the_container_gets_every_address_and_one_default_route_per_version() {
        let a = attachment(&port(), &subnets(), "c1", 1442);
        assert_eq!(a.addresses, ["10.0.0.5/24", "fd00::5/64", "10.1.0.5/16"]);
        assert_eq!(
            a.gateways,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
        assert_eq!(
            (a.mac.as_str(), a.mtu, a.port_id.as_str()),
            ("fa:16:3e:00:00:01", 1442, "p1")
        );
    }

    #[test]
    fn the_result_names_the_interface_addresses_routes_and_dns() {
        let r = cni_result(
            &port(),
            &subnets(),
            "eth0",
            Path::new("/var/run/netns/x"),
            "tapabc",
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["interfaces"][0]["name"], "eth0");
        assert_eq!(v["interfaces"][0]["sandbox"], "/var/run/netns/x");
        assert_eq!(v["interfaces"][1]["name"], "tapabc");
        assert!(v["interfaces"][1]["sandbox"].is_null(), "{v}");
        assert_eq!(v["ips"][0]["address"], "10.0.0.5/24");
        assert_eq!(v["ips"][0]["gateway"], "10.0.0.1");
        assert_eq!(v["ips"][0]["interface"], 0);
        assert!(v["ips"][2].get("gateway").is_none() || v["ips"][2]["gateway"].is_null());
        assert_eq!(v["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(v["routes"][1]["dst"], "::/0");
        assert_eq!(v["dns"]["nameservers"], json!(["10.0.0.53", "1.1.1.1"]));
    }

    #[test]
    fn a_subnet_read_failure_is_the_answer() {
        let e = subnets_of(&port(), |_| Err(Error::TryAgainLater("down".into()))).unwrap_err();
        assert!(matches!(e, Error::TryAgainLater(_)));
    }
}
