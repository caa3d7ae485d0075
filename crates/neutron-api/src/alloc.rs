//! Allocation of numbered resources: IP addresses, unique datapath keys, segmentation ids
//! and MAC addresses.
//!
//! The store's claims make every allocation unique across API servers (a claim is created
//! with "must not exist"). Within one server, candidates being tried by requests in flight
//! are reserved in memory so concurrent requests do not all race for the same lowest free
//! value, and a per-space hint remembers where the next free value probably is.

use crate::db::Db;
use crate::error::ApiResult;
use model::MacAddr;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

/// The most candidates examined before a space is declared exhausted.
pub const MAX_PROBES: u128 = 65_536;

#[derive(Default)]
pub struct Allocator {
    hints: Mutex<HashMap<String, u128>>,
    reserved: Mutex<HashSet<String>>,
}

/// Claims reserved by one request; released from the in-memory set when dropped.
pub struct Reservation<'a> {
    alloc: &'a Allocator,
    claims: Vec<String>,
}

impl Reservation<'_> {
    pub fn add(&mut self, mut other: Reservation<'_>) {
        self.claims.append(&mut other.claims);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.alloc.reserved.lock() {
            for c in &self.claims {
                r.remove(c);
            }
        }
    }
}

impl Allocator {
    /// An empty reservation to collect others into.
    pub fn reservation(&self) -> Reservation<'_> {
        Reservation {
            alloc: self,
            claims: Vec::new(),
        }
    }

    fn try_reserve(&self, claim: &str) -> bool {
        self.reserved
            .lock()
            .map(|mut r| r.insert(claim.to_string()))
            .unwrap_or(false)
    }

    /// Reserves a specific claim (a value the user asked for).
    pub fn reserve(&self, claim: String) -> Option<Reservation<'_>> {
        self.try_reserve(&claim).then(|| Reservation {
            alloc: self,
            claims: vec![claim],
        })
    }

    /// Finds a free value in `ranges` (inclusive) of `space`, starting from the hint and
    /// wrapping around; `claim_of` names the claim for a value.
    pub async fn pick(
        &self,
        db: &Db,
        space: &str,
        ranges: &[(u128, u128)],
        claim_of: impl Fn(u128) -> String,
    ) -> ApiResult<Option<(u128, Reservation<'_>)>> {
        let total: u128 = ranges.iter().map(|(a, b)| b.saturating_sub(*a) + 1).sum();
        if total == 0 {
            return Ok(None);
        }
        let hint = self.hints.lock().ok().and_then(|h| h.get(space).copied());
        let start = hint.and_then(|h| offset_of(ranges, h)).unwrap_or(0);
        for i in 0..total.min(MAX_PROBES) {
            let Some(value) = value_at(ranges, (start + i) % total) else {
                break;
            };
            let claim = claim_of(value);
            if !self.try_reserve(&claim) {
                continue;
            }
            let reservation = Reservation {
                alloc: self,
                claims: vec![claim.clone()],
            };
            if db.claim_owner(&claim).await?.is_some() {
                continue;
            }
            if let Ok(mut h) = self.hints.lock() {
                h.insert(space.to_string(), value.wrapping_add(1));
            }
            return Ok(Some((value, reservation)));
        }
        Ok(None)
    }

    /// Tells the allocator a value became free, so the lowest free value is reused.
    pub fn freed(&self, space: &str, value: u128) {
        if let Ok(mut h) = self.hints.lock() {
            let e = h.entry(space.to_string()).or_insert(value);
            *e = (*e).min(value);
        }
    }

    /// A random unused MAC under `base`, reserved.
    pub async fn pick_mac(
        &self,
        db: &Db,
        base: [u8; 3],
    ) -> ApiResult<Option<(MacAddr, Reservation<'_>)>> {
        for _ in 0..32 {
            let mac = MacAddr::random(base);
            let claim = mac_claim(&mac);
            let Some(r) = self.reserve(claim.clone()) else {
                continue;
            };
            if db.claim_owner(&claim).await?.is_none() {
                return Ok(Some((mac, r)));
            }
        }
        Ok(None)
    }
}

fn offset_of(ranges: &[(u128, u128)], value: u128) -> Option<u128> {
    let mut off = 0;
    for (a, b) in ranges {
        if (*a..=*b).contains(&value) {
            return Some(off + (value - a));
        }
        off += b - a + 1;
    }
    None
}

fn value_at(ranges: &[(u128, u128)], mut off: u128) -> Option<u128> {
    for (a, b) in ranges {
        let len = b - a + 1;
        if off < len {
            return Some(a + off);
        }
        off -= len;
    }
    None
}

pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn u128_to_ip(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

pub fn ip_claim(subnet_id: &str, ip: IpAddr) -> String {
    format!("ip/{subnet_id}/{ip}")
}

pub fn mac_claim(mac: &MacAddr) -> String {
    format!("mac/{mac}")
}

pub fn key_claim(kind: &str, key: u128) -> String {
    format!("key/{kind}/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_walk_ranges_in_order() {
        let r = [(10, 12), (20, 21)];
        let vals: Vec<_> = (0..5).map(|o| value_at(&r, o).unwrap()).collect();
        assert_eq!(vals, [10, 11, 12, 20, 21]);
        assert_eq!(value_at(&r, 5), None);
        assert_eq!(offset_of(&r, 20), Some(3));
        assert_eq!(offset_of(&r, 15), None);
    }

    #[test]
    fn reservations_are_exclusive_until_dropped() {
        let a = Allocator::default();
        let r = a.reserve("ip/s/1".into()).unwrap();
        assert!(a.reserve("ip/s/1".into()).is_none());
        drop(r);
        assert!(a.reserve("ip/s/1".into()).is_some());
    }
}
