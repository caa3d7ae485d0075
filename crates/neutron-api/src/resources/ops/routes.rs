//! Routes in requests and answers: a subnet's host routes and a router's extra routes
//! share one format (`[{"destination", "nexthop"}]`) and one parser.

use crate::body::{bad_attr, parse_cidr, parse_ip};
use crate::error::ApiResult;
use ipnet::IpNet;
use model::HostRoute;
use serde_json::{Value, json};
use std::net::IpAddr;

/// Whether `a` is of `net`'s IP version.
pub fn same_family(a: &IpAddr, net: &IpNet) -> bool {
    a.is_ipv4() == matches!(net, IpNet::V4(_))
}

/// Parses `[{"destination", "nexthop"}]`; with `family`, every next hop must be of its
/// IP version.
pub fn parse_routes(
    attr: &str,
    items: Vec<Value>,
    family: Option<&IpNet>,
) -> ApiResult<Vec<HostRoute>> {
    let mut out: Vec<HostRoute> = Vec::new();
    for item in items {
        let dest = item
            .get("destination")
            .ok_or_else(|| bad_attr(attr, "each route needs a destination"))?;
        let destination = parse_cidr(attr, dest)?;
        let nexthop = item
            .get("nexthop")
            .and_then(parse_ip)
            .ok_or_else(|| bad_attr(attr, format!("'{item}' needs a valid nexthop")))?;
        if destination.addr().is_ipv4() != nexthop.is_ipv4()
            || family.is_some_and(|f| !same_family(&nexthop, f))
        {
            return Err(bad_attr(
                attr,
                format!("route {destination} via {nexthop} mixes IP versions"),
            ));
        }
        let r = HostRoute {
            destination,
            nexthop,
        };
        if out.contains(&r) {
            return Err(bad_attr(
                attr,
                format!("duplicate route {destination} via {nexthop}"),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

pub fn render_routes(routes: &[HostRoute]) -> Vec<Value> {
    routes
        .iter()
        .map(|r| json!({"destination": r.destination.to_string(), "nexthop": r.nexthop}))
        .collect()
}
