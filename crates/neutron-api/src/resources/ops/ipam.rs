//! Address management for ports: which subnet and address each fixed IP gets (requested,
//! automatic from the pools, or EUI-64 on SLAAC subnets), and the claims that make each
//! address unique.

use crate::Api;
use crate::alloc::{Reservation, ip_claim, ip_to_u128, u128_to_ip};
use crate::body::{bad_attr, parse_ip, show};
use crate::db::Txn;
use crate::error::{ApiError, ApiResult};
use model::{FixedIp, MacAddr, Network, Subnet};
use nbdb::Revision;
use serde_json::Value;
use std::net::{IpAddr, Ipv6Addr};

/// One entry of a request's `fixed_ips`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpRequest {
    pub subnet_id: Option<String>,
    pub ip: Option<IpAddr>,
}

pub fn parse_fixed_ips(items: Vec<Value>) -> ApiResult<Vec<IpRequest>> {
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut o) = item else {
                return Err(bad_attr("fixed_ips", "each entry must be a dictionary"));
            };
            let subnet_id = match o.remove("subnet_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(v) => {
                    return Err(bad_attr(
                        "fixed_ips",
                        format!("'{v}' is not a valid subnet id"),
                    ));
                }
            };
            let ip = match o.remove("ip_address") {
                None | Some(Value::Null) => None,
                Some(v) => Some(parse_ip(&v).ok_or_else(|| {
                    bad_attr(
                        "fixed_ips",
                        format!("'{}' is not a valid IP address", show(&v)),
                    )
                })?),
            };
            if let Some(k) = o.keys().next() {
                return Err(bad_attr("fixed_ips", format!("unrecognized key '{k}'")));
            }
            if subnet_id.is_none() && ip.is_none() {
                return Err(bad_attr(
                    "fixed_ips",
                    "an entry needs subnet_id or ip_address",
                ));
            }
            Ok(IpRequest { subnet_id, ip })
        })
        .collect()
}

/// The subnets of a network with their revisions, leaving out any being deleted (they
/// take no new addresses).
pub async fn network_subnets(api: &Api, network: &Network) -> ApiResult<Vec<(Subnet, Revision)>> {
    let mut out = Vec::new();
    for id in &network.subnets {
        if let Some(s) = api.db.get::<Subnet>(id).await?
            && !s.0.deleting
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// The pools of a subnet as inclusive integer ranges.
pub fn pool_ranges(subnet: &Subnet) -> Vec<(u128, u128)> {
    subnet
        .allocation_pools
        .iter()
        .map(|p| (ip_to_u128(p.start), ip_to_u128(p.end)))
        .collect()
}

/// The SLAAC address of `mac` on an auto-address subnet.
pub fn eui64_address(subnet: &Subnet, mac: MacAddr) -> IpAddr {
    let prefix = match subnet.cidr.network() {
        IpAddr::V6(p) => p.octets(),
        IpAddr::V4(_) => return subnet.cidr.network(),
    };
    let mut b = prefix;
    b[8..].copy_from_slice(&mac.eui64());
    IpAddr::V6(Ipv6Addr::from(b))
}

fn invalid_for_subnet(ip: IpAddr, subnet: &str) -> ApiError {
    ApiError::bad_request(
        "InvalidIpForSubnet",
        format!("IP address {ip} is not a valid IP for the specified subnet {subnet}."),
    )
}

/// Checks that `ip` may be given to a port on `subnet`.
pub fn check_ip_in_subnet(subnet: &Subnet, ip: IpAddr) -> ApiResult<()> {
    let id = &subnet.meta.id;
    if !subnet.cidr.contains(&ip) || ip == subnet.cidr.network() {
        return Err(invalid_for_subnet(ip, id));
    }
    if ip.is_ipv4() && ip == subnet.cidr.broadcast() {
        return Err(invalid_for_subnet(ip, id));
    }
    Ok(())
}

pub fn already_allocated(ip: IpAddr, subnet: &str) -> ApiError {
    ApiError::conflict(
        "IpAddressAlreadyAllocated",
        format!("IP address {ip} already allocated in subnet {subnet}"),
    )
}

pub fn exhausted(network: &str) -> ApiError {
    ApiError::conflict(
        "IpAddressGenerationFailure",
        format!("No more IP addresses available on network {network}."),
    )
}

/// Addresses for a port being created or updated.
pub struct Allocation<'a> {
    api: &'a Api,
    pub reservation: Reservation<'a>,
}

impl<'a> Allocation<'a> {
    pub fn new(api: &'a Api) -> Allocation<'a> {
        Allocation {
            api,
            reservation: api.alloc.reservation(),
        }
    }

    /// Claims `ip` on `subnet` for `owner` as the user asked.
    async fn requested(
        &mut self,
        txn: &mut Txn,
        subnet: &Subnet,
        ip: IpAddr,
        owner: &str,
    ) -> ApiResult<FixedIp> {
        check_ip_in_subnet(subnet, ip)?;
        let claim = ip_claim(&subnet.meta.id, ip);
        let err = already_allocated(ip, &subnet.meta.id);
        if self.api.db.claim_owner(&claim).await?.is_some() {
            return Err(err);
        }
        match self.api.alloc.reserve(claim.clone()) {
            Some(r) => self.reservation.add(r),
            // Another request of this server is taking it right now.
            None => return Err(err),
        }
        txn.claim_requested(&claim, owner, err);
        Ok(FixedIp {
            subnet_id: subnet.meta.id.clone(),
            ip_address: ip,
        })
    }

    /// The next free address of `subnet`, or `None` when its pools are full.
    pub async fn automatic(
        &mut self,
        txn: &mut Txn,
        subnet: &Subnet,
        mac: MacAddr,
        owner: &str,
    ) -> ApiResult<Option<FixedIp>> {
        if subnet.is_auto_address() {
            let ip = eui64_address(subnet, mac);
            return self.requested(txn, subnet, ip, owner).await.map(Some);
        }
        let sid = subnet.meta.id.clone();
        let v6 = subnet.ip_version == 6;
        let picked = self
            .api
            .alloc
            .pick(
                &self.api.db,
                &format!("ip/{sid}"),
                &pool_ranges(subnet),
                |v| ip_claim(&sid, u128_to_ip(v, v6)),
            )
            .await?;
        let Some((v, r)) = picked else {
            return Ok(None);
        };
        self.reservation.add(r);
        let ip = u128_to_ip(v, v6);
        txn.claim(&ip_claim(&sid, ip), owner);
        Ok(Some(FixedIp {
            subnet_id: sid,
            ip_address: ip,
        }))
    }

    /// Resolves `requests` (or the defaults when `None`) into fixed IPs for the port
    /// `owner` with MAC `mac` (for SLAAC addresses),
    /// keeping addresses in `keep` that are asked for again. Claims go into `txn`.
    pub async fn assign(
        &mut self,
        txn: &mut Txn,
        network: &Network,
        subnets: &[(Subnet, Revision)],
        (owner, mac): (&str, MacAddr),
        requests: Option<Vec<IpRequest>>,
        keep: &[FixedIp],
    ) -> ApiResult<Vec<FixedIp>> {
        let net_id = &network.meta.id;
        // The addresses are only valid if the subnets did not change meanwhile (their pools,
        // or a delete that started: see `ops::deleting`).
        for (s, rev) in subnets {
            txn.check::<Subnet>(&s.meta.id, *rev);
        }
        let Some(requests) = requests else {
            return self.defaults(txn, network, subnets, owner, mac).await;
        };
        let mut out: Vec<FixedIp> = Vec::new();
        for req in requests {
            let subnet = match (&req.subnet_id, req.ip) {
                (Some(sid), _) => subnets.iter().map(|(s, _)| s).find(|s| &s.meta.id == sid).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Failed to create port on network {net_id}, because fixed_ips included invalid subnet {sid}"
                    ))
                })?,
                (None, Some(ip)) => subnets
                    .iter()
                    .map(|(s, _)| s)
                    .find(|s| s.cidr.contains(&ip))
                    .ok_or_else(|| invalid_for_subnet(ip, "(none of the network's subnets)"))?,
                (None, None) => return Err(bad_attr("fixed_ips", "an entry needs subnet_id or ip_address")),
            };
            let sid = &subnet.meta.id;
            if let Some(ip) = req.ip {
                if out.iter().any(|f| f.ip_address == ip) {
                    return Err(bad_attr("fixed_ips", format!("duplicate address {ip}")));
                }
                if let Some(k) = keep
                    .iter()
                    .find(|k| &k.subnet_id == sid && k.ip_address == ip)
                {
                    out.push(k.clone());
                    continue;
                }
                if subnet.is_auto_address()
                    && ip != eui64_address(subnet, mac)
                    && Some(ip) != subnet.gateway_ip
                {
                    return Err(ApiError::invalid(format!(
                        "IPv6 address {ip} cannot be directly assigned to a port on subnet {sid} since the subnet is configured for automatic addresses"
                    )));
                }
                out.push(self.requested(txn, subnet, ip, owner).await?);
            } else {
                if let Some(k) = keep
                    .iter()
                    .find(|k| &k.subnet_id == sid && !out.contains(k))
                {
                    out.push(k.clone());
                    continue;
                }
                let f = self
                    .automatic(txn, subnet, mac, owner)
                    .await?
                    .ok_or_else(|| exhausted(net_id))?;
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Neutron's defaults: one address from the first IPv4 subnet with room, one from the
    /// first stateful IPv6 subnet with room, and one on every SLAAC subnet.
    async fn defaults(
        &mut self,
        txn: &mut Txn,
        network: &Network,
        subnets: &[(Subnet, Revision)],
        owner: &str,
        mac: MacAddr,
    ) -> ApiResult<Vec<FixedIp>> {
        let mut out = Vec::new();
        let mut v4_done = false;
        let mut v6_done = false;
        let mut full = false;
        for (s, _) in subnets {
            if s.is_auto_address() {
                out.push(self.requested(txn, s, eui64_address(s, mac), owner).await?);
                continue;
            }
            let done = if s.ip_version == 4 {
                &mut v4_done
            } else {
                &mut v6_done
            };
            if *done {
                continue;
            }
            match self.automatic(txn, s, mac, owner).await? {
                Some(f) => {
                    out.push(f);
                    *done = true;
                }
                None => full = true,
            }
        }
        if out.is_empty() && full {
            return Err(exhausted(&network.meta.id));
        }
        Ok(out)
    }
}

/// Releases the claims of addresses a port gives up.
pub fn release(api: &Api, txn: &mut Txn, ips: &[FixedIp]) {
    for f in ips {
        txn.release(&ip_claim(&f.subnet_id, f.ip_address));
        api.alloc
            .freed(&format!("ip/{}", f.subnet_id), ip_to_u128(f.ip_address));
    }
}
