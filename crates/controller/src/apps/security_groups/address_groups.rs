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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::written;
    use model::{AddressGroup, Direction, EtherType, Table, fixtures};

    #[test]
    fn a_rule_matches_each_prefix_of_its_version_and_follows_the_group() {
        let mut view = View::new("h");
        let rule = SecurityGroupRule {
            remote_address_group_id: Some("ag".into()),
            ..fixtures::security_group_rule("r", "g", Direction::Ingress)
        };
        view.apply(&written(&rule, 1));
        assert!(
            remotes(&view, &rule).is_empty(),
            "an unknown group: nothing"
        );
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let ag = AddressGroup {
            meta: fixtures::meta("ag"),
            addresses: vec![net("10.0.0.0/24"), net("10.1.0.0/16"), net("fd00::/64")],
            deleting: false,
        };
        let touched = view.apply(&written(&ag, 2));
        assert!(
            touched
                .iter()
                .any(|t| t.table == Table::SecurityGroup && t.id == "g"),
            "the group whose rule names it: {touched:?}"
        );
        assert_eq!(
            remotes(&view, &rule),
            [Some(net("10.0.0.0/24")), Some(net("10.1.0.0/16"))]
        );
        let v6 = SecurityGroupRule {
            ethertype: EtherType::IPv6,
            ..rule.clone()
        };
        assert_eq!(remotes(&view, &v6), [Some(net("fd00::/64"))]);
        // A prefix as given (host bits) is matched without them.
        let prefix = SecurityGroupRule {
            remote_ip_prefix: Some(net("10.0.0.34/24")),
            remote_address_group_id: None,
            ..rule.clone()
        };
        assert_eq!(remotes(&view, &prefix), [Some(net("10.0.0.0/24"))]);
        assert_eq!(
            remotes(
                &view,
                &fixtures::security_group_rule("x", "g", Direction::Egress)
            ),
            [None]
        );
    }
}
