//! The DHCP port the server keeps on each network with DHCP subnets (it holds the DHCP
//! server's address on each): joined when a subnet enables DHCP, left when it disables
//! it or goes; the port goes with its last address.

use super::ports::{Addresses, SystemPort, build_system_port, remove_port};
use super::{Plan, ipam};
use crate::Api;
use crate::db::Txn;
use crate::error::ApiResult;
use crate::resources::touch;
use model::{Network, Port, Subnet, owner};

/// The device id of the DHCP port the server makes for a network (ports a user makes with
/// device owner `network:dhcp` are not it).
fn dhcp_device_id(network_id: &str) -> String {
    format!("dhcp-{network_id}")
}

/// The network's DHCP port (device owner `network:dhcp`), if it has one.
pub async fn dhcp_port(api: &Api, network_id: &str) -> ApiResult<Option<(Port, nbdb::Revision)>> {
    Ok(api.db.all::<Port>().await?.into_iter().find(|(p, _)| {
        p.network_id == network_id
            && p.device_owner == owner::DHCP
            && p.device_id == dhcp_device_id(network_id)
    }))
}

/// Gives the network's DHCP port an address on `subnet` (DHCP just enabled there), creating
/// the port for the network's first DHCP subnet. Everything goes into `plan`, so the
/// subnet and its DHCP address are written together or not at all.
pub async fn join(
    api: &Api,
    plan: &mut Plan<'_>,
    network: &Network,
    subnet: &Subnet,
) -> ApiResult<()> {
    match dhcp_port(api, &network.meta.id).await? {
        Some((mut p, prev)) => {
            if p.fixed_ips.iter().any(|f| f.subnet_id == subnet.meta.id) {
                return Ok(());
            }
            let f = (plan.alloc)
                .automatic(&mut plan.txn, subnet, p.mac_address, &p.meta.id)
                .await?;
            p.fixed_ips
                .push(f.ok_or_else(|| ipam::exhausted(&network.meta.id))?);
            touch(&mut p.meta);
            plan.txn.update(&p, prev);
        }
        None => {
            let sp = SystemPort {
                network,
                // The network's project, as in Neutron: the port is listed (and
                // distributed) with the network's other ports.
                project_id: network.meta.project_id.clone(),
                device_owner: owner::DHCP,
                device_id: dhcp_device_id(&network.meta.id),
                addresses: Addresses::On(subnet),
            };
            let port = build_system_port(api, plan, sp).await?;
            plan.txn.create(&port);
        }
    }
    Ok(())
}

/// Takes the DHCP port's address on `subnet` away (DHCP disabled there, or the subnet
/// deleted); the port goes with its last address.
pub async fn leave(api: &Api, txn: &mut Txn, subnet: &Subnet) -> ApiResult<()> {
    let Some((mut p, prev)) = dhcp_port(api, &subnet.network_id).await? else {
        return Ok(());
    };
    let (gone, kept): (Vec<_>, Vec<_>) = p
        .fixed_ips
        .iter()
        .cloned()
        .partition(|f| f.subnet_id == subnet.meta.id);
    if gone.is_empty() {
        return Ok(());
    }
    if kept.is_empty() {
        remove_port(api, txn, &p, prev);
    } else {
        ipam::release(api, txn, &gone);
        p.fixed_ips = kept;
        touch(&mut p.meta);
        txn.update(&p, prev);
    }
    Ok(())
}
