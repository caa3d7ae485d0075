//! The Adj-RIB-Out of one peer: the routes it should have (prefix → next hop), the routes it
//! has been sent, and the prefixes changed since the last flush. A flush turns any number
//! of changes into few UPDATEs: withdrawals packed together, announcements grouped by next
//! hop (one attribute set each) and packed up to the 4,096-byte limit, so 1,000 floating
//! IPs created at once cost a handful of messages (about 700 host routes fit in one).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use crate::prefix::Prefix;
use crate::wire::update::{AS_SEQUENCE, ORIGIN_IGP};
use crate::wire::{
    AFI_IPV4, AFI_IPV6, AS_TRANS, AsSegment, Attr, Codec, HEADER_LEN, MAX_LEN, Message,
    SAFI_UNICAST, Update,
};

/// What the attributes of our routes depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Speaker {
    pub local_as: u32,
    /// iBGP: an empty AS_PATH and a LOCAL_PREF.
    pub internal: bool,
}

/// The routes of one peer.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    desired: BTreeMap<Prefix, IpAddr>,
    sent: HashMap<Prefix, IpAddr>,
    dirty: BTreeSet<Prefix>,
    /// An End-of-RIB is owed once the first full table is out (RFC 4724).
    end_of_rib: bool,
}

impl AdjRibOut {
    pub fn new() -> AdjRibOut {
        AdjRibOut::default()
    }

    /// The routes the peer should have.
    pub fn desired(&self) -> &BTreeMap<Prefix, IpAddr> {
        &self.desired
    }

    /// The routes the peer was sent (and holds, while the session is up).
    pub fn sent(&self) -> &HashMap<Prefix, IpAddr> {
        &self.sent
    }

    /// Advertise `prefix` via `next_hop` (an update when it had another next hop).
    pub fn insert(&mut self, prefix: Prefix, next_hop: IpAddr) {
        if self.desired.insert(prefix, next_hop) != Some(next_hop) {
            self.dirty.insert(prefix);
        }
    }

    /// Withdraw `prefix`.
    pub fn remove(&mut self, prefix: Prefix) {
        if self.desired.remove(&prefix).is_some() {
            self.dirty.insert(prefix);
        }
    }

    /// Replaces the whole table; only what differs is sent.
    pub fn replace(&mut self, routes: BTreeMap<Prefix, IpAddr>) {
        let gone: Vec<Prefix> = self
            .desired
            .keys()
            .filter(|p| !routes.contains_key(p))
            .copied()
            .collect();
        for p in gone {
            self.remove(p);
        }
        for (p, nh) in routes {
            self.insert(p, nh);
        }
    }

    /// The session went down: the peer holds nothing, everything goes again next time.
    pub fn reset(&mut self) {
        self.sent.clear();
        self.dirty = self.desired.keys().copied().collect();
        self.end_of_rib = true;
    }

    /// Whether a flush would send anything.
    pub fn pending(&self) -> bool {
        !self.dirty.is_empty() || self.end_of_rib
    }

    /// The UPDATEs that bring the peer from what it was sent to what it should have, for
    /// the families the session negotiated; marks them sent. Routes whose next hop is not
    /// of their prefix's family are not sent (IPv4 next hops for IPv6 need RFC 8950).
    pub fn flush(&mut self, speaker: Speaker, codec: Codec, families: &[(u16, u8)]) -> Vec<Update> {
        let v4 = families.contains(&(AFI_IPV4, SAFI_UNICAST));
        let v6 = families.contains(&(AFI_IPV6, SAFI_UNICAST));
        let mut withdraw4 = Vec::new();
        let mut withdraw6 = Vec::new();
        let mut announce: BTreeMap<IpAddr, Vec<Prefix>> = BTreeMap::new();
        for p in std::mem::take(&mut self.dirty) {
            if !(if p.is_ipv6() { v6 } else { v4 }) {
                continue;
            }
            let want = self
                .desired
                .get(&p)
                .copied()
                .filter(|nh| nh.is_ipv6() == p.is_ipv6());
            let have = self.sent.get(&p).copied();
            if want == have {
                continue;
            }
            match want {
                Some(nh) => {
                    self.sent.insert(p, nh);
                    announce.entry(nh).or_default().push(p);
                }
                None => {
                    self.sent.remove(&p);
                    if p.is_ipv6() {
                        withdraw6.push(p);
                    } else {
                        withdraw4.push(p);
                    }
                }
            }
        }
        let mut out = Vec::new();
        pack(&mut out, withdraw4, codec, |w| Update {
            withdrawn: w,
            ..Update::default()
        });
        pack(&mut out, withdraw6, codec, |w| Update {
            attrs: vec![Attr::MpUnreach {
                afi: AFI_IPV6,
                safi: SAFI_UNICAST,
                withdrawn: w,
            }],
            ..Update::default()
        });
        for (nh, prefixes) in announce {
            let mut attrs = path_attrs(speaker, codec);
            match nh {
                IpAddr::V4(a) => {
                    attrs.push(Attr::NextHop(a));
                    pack(&mut out, prefixes, codec, |n| Update {
                        attrs: attrs.clone(),
                        nlri: n,
                        ..Update::default()
                    });
                }
                IpAddr::V6(_) => pack(&mut out, prefixes, codec, |n| {
                    let mut a = attrs.clone();
                    a.push(Attr::MpReach {
                        afi: AFI_IPV6,
                        safi: SAFI_UNICAST,
                        next_hops: vec![nh],
                        nlri: n,
                    });
                    Update {
                        attrs: a,
                        ..Update::default()
                    }
                }),
            }
        }
        if std::mem::take(&mut self.end_of_rib) {
            if v4 {
                out.push(Update::end_of_rib(AFI_IPV4, SAFI_UNICAST));
            }
            if v6 {
                out.push(Update::end_of_rib(AFI_IPV6, SAFI_UNICAST));
            }
        }
        out
    }
}

/// ORIGIN IGP, the AS_PATH of a route we originate, LOCAL_PREF for iBGP. A 4-octet AS to
/// a peer without the capability is AS_TRANS with the real path in AS4_PATH (RFC 6793).
fn path_attrs(s: Speaker, codec: Codec) -> Vec<Attr> {
    let mut attrs = vec![Attr::Origin(ORIGIN_IGP)];
    if s.internal {
        attrs.push(Attr::AsPath(Vec::new()));
        attrs.push(Attr::LocalPref(100));
    } else if codec.four_octet_as || s.local_as <= u32::from(u16::MAX) {
        attrs.push(Attr::AsPath(vec![AsSegment {
            kind: AS_SEQUENCE,
            asns: vec![s.local_as],
        }]));
    } else {
        attrs.push(Attr::AsPath(vec![AsSegment {
            kind: AS_SEQUENCE,
            asns: vec![u32::from(AS_TRANS)],
        }]));
        attrs.push(Attr::As4Path(vec![AsSegment {
            kind: AS_SEQUENCE,
            asns: vec![s.local_as],
        }]));
    }
    attrs
}

/// Splits `prefixes` into as few UPDATEs built by `make` as fit in [`MAX_LEN`].
fn pack(
    out: &mut Vec<Update>,
    prefixes: Vec<Prefix>,
    codec: Codec,
    make: impl Fn(Vec<Prefix>) -> Update,
) {
    if prefixes.is_empty() {
        return;
    }
    // The empty message's size, plus one byte for an attribute growing an extended length.
    let base = Message::Update(make(Vec::new())).encode(codec).len() + 1;
    debug_assert!(base > HEADER_LEN);
    let mut chunk = Vec::new();
    let mut size = base;
    for p in prefixes {
        if size + p.wire_len() > MAX_LEN && !chunk.is_empty() {
            out.push(make(std::mem::take(&mut chunk)));
            size = base;
        }
        size += p.wire_len();
        chunk.push(p);
    }
    out.push(make(chunk));
}

#[cfg(test)]
mod tests;
