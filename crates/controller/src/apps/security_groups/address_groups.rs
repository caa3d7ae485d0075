//! Rules whose remote end is an address group (`remote_address_group_id`): one flow per
//! prefix of the group (of the rule's IP version), as a `remote_ip_prefix` rule would
//! have. The rule's group is touched when the address group changes (`View::put`), so
//! the ports holding it are compiled again with the new prefixes.

use super::family;
use crate::view::View;
use ipnet::IpNet;
use model::SecurityGroupRule;

/// The remote ends a plain (not remote-group) rule matches: `None` for anywhere, else
/// one prefix each. Empty when it can match nothing: a prefix of the other IP version,
/// or an address group the view lacks or that holds no prefix of the rule's version.
pub fn remotes(view: &View, r: &SecurityGroupRule) -> Vec<Option<IpNet>> {
    if let Some(prefix) = r.remote_ip_prefix {
        // Stored as given: host bits are cleared here.
        return if family(&prefix) == r.ethertype {
            vec![Some(prefix.trunc())]
        } else {
            Vec::new()
        };
    }
    if let Some(ag) = &r.remote_address_group_id {
        return view
            .address_groups
            .get(ag)
            .into_iter()
            .flat_map(|g| &g.addresses)
            .filter(|a| family(a) == r.ethertype)
            .map(|a| Some(a.trunc()))
            .collect();
    }
    vec![None]
}
