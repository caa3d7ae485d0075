//! Trunks (Neutron's `trunk` extension, VLAN-aware VMs): a parent port whose VM sends
//! and receives tagged frames, each VLAN standing for a subport on a network of its own.

use crate::{Meta, NbObject};
use serde::{Deserialize, Serialize};

/// The device owner of a port while it is a trunk's subport.
pub const SUBPORT_OWNER: &str = "trunk:subport";

/// One subport: the port, and the VLAN that carries it on the parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubPort {
    pub port_id: String,
    /// `vlan` (an `inherit` request is stored as what it inherited).
    pub segmentation_type: String,
    pub segmentation_id: u32,
    /// The subport's network (a port never moves): hosts of the parent follow it.
    pub network_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trunk {
    #[serde(flatten)]
    pub meta: Meta,
    pub admin_state_up: bool,
    /// The parent port.
    pub port_id: String,
    /// The parent's network: the trunk's topic, so the hosts that follow the parent
    /// see it.
    pub network_id: String,
    #[serde(default)]
    pub sub_ports: Vec<SubPort>,
}

impl Trunk {
    /// The subport with port `id`, if it is one of this trunk's.
    pub fn subport(&self, id: &str) -> Option<&SubPort> {
        self.sub_ports.iter().find(|s| s.port_id == id)
    }

    /// The VLAN id of a subport (only `vlan` subports are wired).
    pub fn vlan_of(&self, id: &str) -> Option<u16> {
        self.subport(id)
            .filter(|s| s.segmentation_type == "vlan")
            .and_then(|s| u16::try_from(s.segmentation_id).ok())
            .filter(|v| (1..=4094).contains(v))
    }
}

impl NbObject for Trunk {
    const TABLE: crate::Table = crate::Table::Trunk;
    const KIND: &'static str = "Trunk";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
    fn topic(&self) -> &str {
        &self.network_id
    }
}
