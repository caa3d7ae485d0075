//! Groups (all / select / indirect / fast-failover) and the deterministic select-bucket
//! choice.

use std::collections::BTreeMap;

use openflow::Field;
use openflow::flow::{Bucket, GroupMod, GroupModCommand, GroupType, OFPG_ALL};

use crate::Error;
use crate::fields::Packet;

/// One installed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Type.
    pub group_type: GroupType,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

/// All groups.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    map: BTreeMap<u32, Group>,
}

impl Groups {
    /// A group by id.
    pub fn get(&self, id: u32) -> Option<&Group> {
        self.map.get(&id)
    }

    /// Whether the group exists.
    pub fn contains(&self, id: u32) -> bool {
        self.map.contains_key(&id)
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Applies a group-mod; returns the ids of deleted groups.
    pub(crate) fn apply(&mut self, gm: &GroupMod) -> Result<Vec<u32>, Error> {
        let g = Group {
            group_type: gm.group_type,
            buckets: gm.buckets.clone(),
        };
        match gm.command {
            GroupModCommand::Add => {
                if gm.group_id > 0xffff_ff00 {
                    return Err(Error::BadGroup(gm.group_id));
                }
                if self.map.contains_key(&gm.group_id) {
                    return Err(Error::GroupExists(gm.group_id));
                }
                if gm.group_type == GroupType::Indirect && gm.buckets.len() != 1 {
                    return Err(Error::BadGroup(gm.group_id));
                }
                self.map.insert(gm.group_id, g);
                Ok(vec![])
            }
            GroupModCommand::Modify => {
                let Some(old) = self.map.get_mut(&gm.group_id) else {
                    return Err(Error::UnknownGroup(gm.group_id));
                };
                *old = g;
                Ok(vec![])
            }
            GroupModCommand::Delete => {
                if gm.group_id == OFPG_ALL {
                    let ids = self.map.keys().copied().collect();
                    self.map.clear();
                    Ok(ids)
                } else {
                    Ok(self
                        .map
                        .remove(&gm.group_id)
                        .map(|_| gm.group_id)
                        .into_iter()
                        .collect())
                }
            }
        }
    }
}

/// FNV-1a over the packet's flow fields: the same flow always picks the same bucket.
pub(crate) fn flow_hash(pkt: &Packet) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let fields = [
        Field::EthSrc,
        Field::EthDst,
        Field::EthType,
        Field::IpProto,
        Field::Ipv4Src,
        Field::Ipv4Dst,
        Field::Ipv6Src,
        Field::Ipv6Dst,
        Field::TcpSrc,
        Field::TcpDst,
        Field::UdpSrc,
        Field::UdpDst,
    ];
    for f in fields {
        let v = pkt.get(f).unwrap_or(0);
        for b in v.to_be_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The bucket a select group uses for this packet (weights respected; weight 0 buckets
/// are never chosen unless all are 0).
pub(crate) fn select_bucket<'a>(buckets: &'a [Bucket], pkt: &Packet) -> Option<&'a Bucket> {
    let total: u64 = buckets.iter().map(|b| u64::from(b.weight)).sum();
    if total == 0 {
        let n = buckets.len() as u64;
        return buckets.get((flow_hash(pkt) % n.max(1)) as usize);
    }
    let mut x = flow_hash(pkt) % total;
    for b in buckets {
        let w = u64::from(b.weight);
        if x < w {
            return Some(b);
        }
        x -= w;
    }
    buckets.last()
}
