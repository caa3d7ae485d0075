//! Nested mode, as Kuryr's nested VLAN driver: the plugin runs in a VM whose port is a
//! trunk's parent. A container's port is made a subport of that trunk on a VLAN no other
//! subport holds, and its interface is an access port of that VLAN on the VM's own bridge,
//! whose trunk port is the VM's link (`link_iface`). The host's controller then wires the
//! subport as any other (the trunk app). The trunk calls are here; the VLAN choice is pure.

use super::api::Client;
use rscni_plugin::error::Error;
use serde_json::{Value, json};

/// The tag that names a nested container's port: a subport must have no `device_id`, so
/// the container id cannot be kept there as for a port of its own.
pub fn tag(container: &str) -> String {
    format!("{TAG_PREFIX}{container}")
}

pub const TAG_PREFIX: &str = "cni-container-";

/// The container a port's tag names, if it is a nested container's.
pub fn container_of(port: &Value) -> Option<&str> {
    port["tags"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|t| t.strip_prefix(TAG_PREFIX))
}

/// The VLAN `port_id` holds on `trunk`, if it is one of its subports.
pub fn vlan_of(trunk: &Value, port_id: &str) -> Option<u16> {
    trunk["sub_ports"]
        .as_array()?
        .iter()
        .find(|s| s["port_id"] == port_id)
        .and_then(|s| s["segmentation_id"].as_u64())
        .and_then(|v| u16::try_from(v).ok())
}

/// The lowest VLAN id (1–4094) no subport of `trunk` holds.
pub fn free_vlan(trunk: &Value) -> Option<u16> {
    let used: Vec<u64> = trunk["sub_ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["segmentation_id"].as_u64())
        .collect();
    (1..=4094u16).find(|v| !used.contains(&u64::from(*v)))
}

/// The trunk whose parent is the VM's `link_iface` (of MAC `mac`).
pub fn parent_trunk(api: &Client, link_iface: &str, mac: &str) -> Result<Value, Error> {
    let ports = api.call("GET", &format!("/v2.0/ports?mac_address={mac}"), None)?;
    let port = match ports["ports"].as_array().map(Vec::as_slice) {
        Some([p]) => p.clone(),
        _ => {
            return Err(Error::InvalidNetworkConfig(format!(
                "nested mode: no one port of the project has the MAC {mac} of the VM's {link_iface}"
            )));
        }
    };
    let id = port["id"].as_str().unwrap_or_default();
    let trunks = api.call("GET", &format!("/v2.0/trunks?port_id={id}"), None)?;
    trunks["trunks"]
        .as_array()
        .and_then(|t| t.first())
        .cloned()
        .ok_or_else(|| {
            Error::InvalidNetworkConfig(format!(
                "nested mode: port {id} (the VM's {link_iface}) is not a trunk's parent: make it one (`openstack network trunk create --parent-port {id} NAME`)"
            ))
        })
}

/// Makes `port_id` a subport of `trunk` on a free VLAN, or finds the one it holds already.
/// Two containers started at once may pick the same VLAN; the second add is refused
/// (`DuplicateSubPort`) and picks again.
pub fn attach(api: &Client, trunk: &Value, port_id: &str) -> Result<u16, Error> {
    let id = trunk["id"].as_str().unwrap_or_default();
    let mut trunk = trunk.clone();
    for _ in 0..8 {
        if let Some(v) = vlan_of(&trunk, port_id) {
            return Ok(v);
        }
        let vlan = free_vlan(&trunk).ok_or_else(|| {
            Error::TryAgainLater(format!("trunk {id} has a subport on every VLAN"))
        })?;
        let body = json!({"sub_ports": [
            {"port_id": port_id, "segmentation_type": "vlan", "segmentation_id": vlan}
        ]});
        match api.call(
            "PUT",
            &format!("/v2.0/trunks/{id}/add_subports"),
            Some(body),
        ) {
            Ok(_) => {
                tracing::info!(port = port_id, trunk = id, vlan, "subport added");
                return Ok(vlan);
            }
            Err(Error::Custom(_, _, d)) if d.starts_with("409") => {
                tracing::info!(port = port_id, trunk = id, vlan, refused = %d, "VLAN taken meanwhile: choosing again");
            }
            Err(e) => return Err(e),
        }
        trunk = api.call("GET", &format!("/v2.0/trunks/{id}"), None)?["trunk"].take();
    }
    Err(Error::TryAgainLater(format!(
        "trunk {id}: no free VLAN could be taken for port {port_id} in 8 tries"
    )))
}

/// Takes `port_id` out of whichever trunk of the project holds it; nothing when none does.
pub fn detach(api: &Client, port_id: &str) -> Result<(), Error> {
    let trunks = api.call("GET", "/v2.0/trunks", None)?;
    for t in trunks["trunks"].as_array().into_iter().flatten() {
        if vlan_of(t, port_id).is_none() {
            continue;
        }
        let id = t["id"].as_str().unwrap_or_default();
        let body = json!({"sub_ports": [{"port_id": port_id}]});
        match api.call(
            "PUT",
            &format!("/v2.0/trunks/{id}/remove_subports"),
            Some(body),
        ) {
            Err(Error::Custom(_, _, d)) if d.starts_with("404") => {}
            r => {
                r?;
                tracing::info!(port = port_id, trunk = id, "subport removed");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(vlans: &[(&str, u64)]) -> Value {
        json!({"id": "t1", "sub_ports": vlans.iter().map(|(p, v)|
            json!({"port_id": p, "segmentation_type": "vlan", "segmentation_id": v})).collect::<Vec<_>>()})
    }

    #[test]
    fn the_lowest_free_vlan_is_taken() {
        assert_eq!(free_vlan(&trunk(&[])), Some(1));
        assert_eq!(free_vlan(&trunk(&[("a", 1), ("b", 2), ("c", 4)])), Some(3));
        let full: Vec<(String, u64)> = (1..=4094).map(|v| (format!("p{v}"), v)).collect();
        let full: Vec<(&str, u64)> = full.iter().map(|(p, v)| (p.as_str(), *v)).collect();
        assert_eq!(free_vlan(&trunk(&full)), None);
    }

    #[test]
    fn a_subports_vlan_is_found_by_its_port() {
        let t = trunk(&[("a", 7), ("b", 9)]);
        assert_eq!(vlan_of(&t, "b"), Some(9));
        assert_eq!(vlan_of(&t, "c"), None);
        assert_eq!(vlan_of(&json!({}), "a"), None);
    }

    #[test]
    fn the_tag_names_the_container() {
        let p = json!({"tags": ["other", tag("c0ffee")]});
        assert_eq!(container_of(&p), Some("c0ffee"));
        assert_eq!(container_of(&json!({"tags": ["x"]})), None);
        assert_eq!(container_of(&json!({})), None);
        // Neutron's tag limit (255) holds a 64-digit container id.
        assert!(tag(&"f".repeat(64)).len() <= 255);
    }
}
