//! DNS names of ports and networks (`dns-integration`, `dns-domain-ports`): reading and
//! checking `dns_name` and `dns_domain`, the claim that keeps a `dns_name` unique on its
//! network, and the `dns_assignment` a port shows. The rules themselves are
//! [`model::dns`]'s, shared with the controllers that answer the names.

use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::db::Txn;
use crate::error::{ApiError, ApiResult};
use model::Port;
use serde_json::{Value, json};

/// A `dns_domain` from a request: lowercased (Neutron's case-insensitive conversion) and
/// checked; `null` is empty.
pub fn domain(attrs: &mut Attrs) -> ApiResult<Option<String>> {
    let Some(d) = lowercase(attrs, "dns_domain")? else {
        return Ok(None);
    };
    model::dns::validate_domain(&d).map_err(|e| bad_attr("dns_domain", e))?;
    Ok(Some(d))
}

/// A `dns_name` from a request, lowercased; checked by [`check_name`] once the configured
/// domain is at hand.
pub fn name(attrs: &mut Attrs) -> ApiResult<Option<String>> {
    lowercase(attrs, "dns_name")
}

fn lowercase(attrs: &mut Attrs, key: &str) -> ApiResult<Option<String>> {
    Ok(attrs.string_or_null(key)?.map(|s| s.to_lowercase()))
}

/// Sets the port's `dns_name` to `new`: checked against the configured domain, claimed on
/// its network (another port there holding it is a 409) and the old claim released.
pub fn set_name(api: &Api, txn: &mut Txn, p: &mut Port, new: String) -> ApiResult<()> {
    if new == p.dns_name {
        return Ok(());
    }
    model::dns::validate_name(&new, &api.config.dns_domain).map_err(|e| bad_attr("dns_name", e))?;
    if !new.is_empty() {
        let err = duplicate(&p.network_id, &new);
        txn.claim_requested(&claim(&p.network_id, &new), &p.meta.id, err);
    }
    release_name(txn, p);
    p.dns_name = new;
    Ok(())
}

/// Gives back the port's name claim (the port goes, or takes another name).
pub fn release_name(txn: &mut Txn, p: &Port) {
    if !p.dns_name.is_empty() {
        txn.release(&claim(&p.network_id, &p.dns_name));
    }
}

/// `dns/<network>/<dns_name>`: the name as the user wrote it (lowercased), so releasing it
/// never depends on the configured domain.
fn claim(network_id: &str, name: &str) -> String {
    format!("dns/{network_id}/{name}")
}

/// Neutron checks no uniqueness itself (dnsmasq would answer one of the two); a second
/// port with a name on one network would make internal DNS ambiguous, so it is refused
/// with the Conflict Neutron's DNS drivers use for a duplicate name.
fn duplicate(network_id: &str, name: &str) -> ApiError {
    ApiError::conflict(
        "DuplicateRecordSet",
        format!("Name {name} is duplicated in the internal DNS of network {network_id}"),
    )
}

/// The port's `dns_assignment` under the configured `domain`.
pub fn assignment(p: &Port, domain: &str) -> Value {
    model::dns::assignment(p, domain)
        .into_iter()
        .map(|a| json!({"hostname": a.hostname, "ip_address": a.ip_address, "fqdn": a.fqdn}))
        .collect()
}
