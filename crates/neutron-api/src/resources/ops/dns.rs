//! DNS names of ports and networks (`dns-integration`, `dns-domain-ports`): reading and
//! checking `dns_name` and `dns_domain`, and the `dns_assignment` a port shows. As in
//! Neutron, a name is not unique on its network (its own API suite renames two ports of
//! one network to the same name); internal DNS then answers with every address. The rules themselves are
//! [`model::dns`]'s, shared with the controllers that answer the names.

use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::error::ApiResult;
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

/// Sets the port's `dns_name` to `new`, checked against the configured domain.
pub fn set_name(api: &Api, p: &mut Port, new: String) -> ApiResult<()> {
    if new == p.dns_name {
        return Ok(());
    }
    model::dns::validate_name(&new, &api.config.dns_domain).map_err(|e| bad_attr("dns_name", e))?;
    p.dns_name = new;
    Ok(())
}

/// The port's `dns_assignment` under the configured `domain`.
pub fn assignment(p: &Port, domain: &str) -> Value {
    model::dns::assignment(p, domain)
        .into_iter()
        .map(|a| json!({"hostname": a.hostname, "ip_address": a.ip_address, "fqdn": a.fqdn}))
        .collect()
}
