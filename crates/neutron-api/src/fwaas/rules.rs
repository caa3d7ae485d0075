//! `/v2.0/fwaas/firewall_rules`: a rule's match (protocol, IP version, addresses, port
//! ranges `a:b`) and action, validated as neutron-fwaas does; `firewall_policy_id` lists
//! the policies that hold it, and a change to a rule clears their `audited`.

use super::{defaults, invalid, rule_not_found};
use crate::Api;
use crate::body::{Attrs, bad_attr, show};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy::Target;
use crate::resources::lifecycle::Lifecycle;
use crate::resources::ops::Plan;
use crate::resources::{Resource, Standard, render, touch};
use model::fwaas::{FW_PROTOCOLS, FwAction, FwAddress, PortRange};
use model::{FirewallPolicy, FirewallRule, Meta};
use serde_json::{Map, Value, json};

/// Firewall objects have no tags (Neutron's tag extension does not cover them).
pub const FW_STANDARD: Standard = Standard {
    name: true,
    tags: false,
    described: true,
};

impl Resource for FirewallRule {
    const COLLECTION: &'static str = "firewall_rules";
    const RESOURCE: &'static str = "firewall_rule";
    const PATH: Option<&'static str> = Some("fwaas/firewall_rules");
    const STANDARD: Standard = FW_STANDARD;
    const OWN_ATTRS: &'static [&'static str] = &[
        "shared",
        "protocol",
        "ip_version",
        "source_ip_address",
        "destination_ip_address",
        "source_port",
        "destination_port",
        "action",
        "enabled",
        "firewall_policy_id",
    ];

    /// `firewall_policy_id` is filled in by [`Resource::render_all`].
    fn render_own(&self, m: &mut Map<String, Value>) {
        let addr = |a: &Option<FwAddress>| a.as_ref().map(|a| a.text.clone());
        let port = |p: &Option<PortRange>| p.as_ref().map(PortRange::render);
        m.insert("shared".into(), json!(self.shared));
        m.insert("protocol".into(), json!(self.protocol));
        m.insert("ip_version".into(), json!(self.ip_version));
        m.insert(
            "source_ip_address".into(),
            json!(addr(&self.source_ip_address)),
        );
        let dst = addr(&self.destination_ip_address);
        m.insert("destination_ip_address".into(), json!(dst));
        m.insert("source_port".into(), json!(port(&self.source_port)));
        m.insert(
            "destination_port".into(),
            json!(port(&self.destination_port)),
        );
        m.insert("action".into(), json!(self.action.as_str()));
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("firewall_policy_id".into(), Value::Null);
    }

    async fn render_all(api: &Api, objs: &[FirewallRule]) -> ApiResult<Vec<Map<String, Value>>> {
        let policies = api.db.all::<FirewallPolicy>().await?;
        Ok(objs
            .iter()
            .map(|r| {
                let mut m = render(r);
                let holders: Vec<&str> = (policies.iter())
                    .filter(|(p, _)| p.firewall_rules.contains(&r.meta.id))
                    .map(|(p, _)| p.meta.id.as_str())
                    .collect();
                if !holders.is_empty() {
                    m.insert("firewall_policy_id".into(), json!(holders));
                }
                m
            })
            .collect())
    }

    async fn targets(_api: &Api, _ctx: &Context, objs: &[FirewallRule]) -> ApiResult<Vec<Target>> {
        Ok(objs
            .iter()
            .map(|r| Target {
                shared: r.shared,
                ..Target::project(&r.meta.project_id)
            })
            .collect())
    }

    async fn before_list(api: &Api, ctx: &Context, query: &Query) -> ApiResult<()> {
        defaults::ensure_listed(api, ctx, query).await
    }
}

/// A POST's or PUT's own attributes, as given (`Some(None)`: given as null).
#[derive(Clone, Default)]
pub struct RuleRequest {
    shared: Option<bool>,
    protocol: Option<Option<String>>,
    ip_version: Option<u8>,
    source_ip_address: Option<Option<FwAddress>>,
    destination_ip_address: Option<Option<FwAddress>>,
    /// Ranges as written: `min > max` is refused after the protocol checks, as
    /// neutron-fwaas does.
    source_port: Option<Option<PortRange>>,
    destination_port: Option<Option<PortRange>>,
    action: Option<FwAction>,
    enabled: Option<bool>,
}

/// `protocol`: a name of `FW_PROTOCOLS` or null. neutron-lib's converter accepts a
/// number 0-255 too, which its value check then refuses.
fn protocol(v: Value) -> ApiResult<Option<String>> {
    let shown = show(&v);
    match &v {
        Value::Null => return Ok(None),
        Value::String(s) if FW_PROTOCOLS.contains(&s.as_str()) => return Ok(Some(s.clone())),
        _ => {}
    }
    let known_name = v
        .as_str()
        .is_some_and(|s| FW_PROTOCOLS.contains(&s.to_lowercase().as_str()));
    let number = match &v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if known_name || number.is_some_and(|n| (0..=255).contains(&n)) {
        return Err(bad_attr(
            "protocol",
            format!("{shown} is not in valid_values"),
        ));
    }
    Err(ApiError::invalid(format!(
        "IP protocol '{shown}' is not supported. Only protocol names and their integer \
         representation (0 to 255) are supported"
    )))
}

/// `ip_version`: 4 or 6 (an integer, or a string of one).
fn ip_version(v: Value) -> ApiResult<u8> {
    let shown = show(&v);
    let n = match &v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(4) => Ok(4),
        Some(6) => Ok(6),
        Some(_) => Err(bad_attr(
            "ip_version",
            format!("{shown} is not in valid_values"),
        )),
        None => Err(ApiError::invalid(format!("'{shown}' is not an integer"))),
    }
}

/// `source_ip_address` / `destination_ip_address`: an address or a prefix (host bits
/// allowed, as netaddr takes them), or null.
pub fn address(attr: &str, v: Value) -> ApiResult<Option<FwAddress>> {
    if v.is_null() {
        return Ok(None);
    }
    let bad = || {
        let shown = show(&v);
        bad_attr(
            attr,
            format!("'{shown}' is neither a valid IP address, nor is it a valid IP subnet"),
        )
    };
    let s = v.as_str().ok_or_else(bad)?;
    if let Ok(addr) = s.parse::<std::net::IpAddr>() {
        let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
        return Ok(Some(FwAddress {
            text: s.to_string(),
            addr,
            prefix_len,
        }));
    }
    let net: ipnet::IpNet = s.parse().map_err(|_| bad())?;
    Ok(Some(FwAddress {
        text: s.to_string(),
        addr: net.addr(),
        prefix_len: net.prefix_len(),
    }))
}

/// `source_port` / `destination_port`: `p` or `min:max` (a number is read as its
/// string), or null. `min > max` is kept for [`check`] to refuse.
pub fn port_range(attr: &str, v: Value) -> ApiResult<Option<PortRange>> {
    let s = match &v {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let parts: Vec<&str> = s.split(':').collect();
    let colon = || bad_attr(attr, "Port range must be two integers separated by a colon");
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(colon());
    }
    let mut ports = [0u16; 2];
    for (i, p) in parts.iter().enumerate() {
        let n: u64 = (p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
            .ok_or_else(|| bad_attr(attr, format!("Invalid port: {p}")))?;
        ports[i] = u16::try_from(n).map_err(|_| bad_attr(attr, format!("Invalid port: {p}")))?;
    }
    let max = if parts.len() == 2 { ports[1] } else { ports[0] };
    Ok(Some(PortRange { min: ports[0], max }))
}

fn action(v: Value) -> ApiResult<FwAction> {
    let Value::String(s) = &v else {
        return Err(ApiError::invalid(format!(
            "Input value {} must be string type",
            show(&v)
        )));
    };
    let lower = s.to_lowercase();
    FwAction::parse(&lower)
        .ok_or_else(|| bad_attr("action", format!("{lower} is not in valid_values")))
}

fn parse(attrs: &mut Attrs) -> ApiResult<RuleRequest> {
    let mut req = RuleRequest {
        shared: attrs.bool("shared")?,
        enabled: attrs.bool("enabled")?,
        ..RuleRequest::default()
    };
    if let Some(v) = attrs.take("protocol") {
        req.protocol = Some(protocol(v)?);
    }
    if let Some(v) = attrs.take("ip_version") {
        req.ip_version = Some(ip_version(v)?);
    }
    for (k, slot) in [
        ("source_ip_address", &mut req.source_ip_address),
        ("destination_ip_address", &mut req.destination_ip_address),
    ] {
        if let Some(v) = attrs.take(k) {
            *slot = Some(address(k, v)?);
        }
    }
    for (k, slot) in [
        ("source_port", &mut req.source_port),
        ("destination_port", &mut req.destination_port),
    ] {
        if let Some(v) = attrs.take(k) {
            *slot = Some(port_range(k, v)?);
        }
    }
    if let Some(v) = attrs.take("action") {
        req.action = Some(action(v)?);
    }
    Ok(req)
}

/// neutron-fwaas's checks of a whole rule: ports only with TCP or UDP, and a protocol
/// for them; addresses of the rule's IP version; `min <= max`.
pub fn check(r: &FirewallRule) -> ApiResult<()> {
    let ports = r.source_port.is_some() || r.destination_port.is_some();
    match r.protocol.as_deref() {
        Some("tcp" | "udp") => {}
        Some(_) if ports => {
            return Err(invalid(
                "FirewallRuleInvalidICMPParameter",
                "Source, destination port are not allowed when protocol is set to ICMP.",
            ));
        }
        Some(_) => {}
        None if ports => {
            return Err(invalid(
                "FirewallRuleWithPortWithoutProtocolInvalid",
                "Source/destination port requires a protocol.",
            ));
        }
        None => {}
    }
    let version = |a: &FwAddress| if a.addr.is_ipv4() { 4 } else { 6 };
    let addrs = [&r.source_ip_address, &r.destination_ip_address];
    if addrs
        .iter()
        .filter_map(|a| a.as_ref())
        .any(|a| version(a) != r.ip_version)
    {
        return Err(invalid(
            "FirewallIpAddressConflict",
            "Invalid input - IP addresses do not agree with IP Version.",
        ));
    }
    for p in [&r.source_port, &r.destination_port].into_iter().flatten() {
        if p.min > p.max {
            return Err(invalid(
                "FirewallRuleInvalidPortValue",
                format!("Invalid value for port {}:{}.", p.min, p.max),
            ));
        }
    }
    Ok(())
}

fn apply(r: &mut FirewallRule, req: RuleRequest) {
    if let Some(v) = req.shared {
        r.shared = v;
    }
    if let Some(v) = req.protocol {
        r.protocol = v;
    }
    if let Some(v) = req.ip_version {
        r.ip_version = v;
    }
    if let Some(v) = req.source_ip_address {
        r.source_ip_address = v;
    }
    if let Some(v) = req.destination_ip_address {
        r.destination_ip_address = v;
    }
    if let Some(v) = req.source_port {
        r.source_port = v;
    }
    if let Some(v) = req.destination_port {
        r.destination_port = v;
    }
    if let Some(v) = req.action {
        r.action = v;
    }
    if let Some(v) = req.enabled {
        r.enabled = v;
    }
}

/// A new rule with neutron-fwaas's defaults (IPv4, deny, enabled, not shared).
pub fn blank(meta: Meta) -> FirewallRule {
    FirewallRule {
        meta,
        shared: false,
        protocol: None,
        ip_version: 4,
        source_ip_address: None,
        destination_ip_address: None,
        source_port: None,
        destination_port: None,
        action: FwAction::Deny,
        enabled: true,
        deleting: false,
    }
}

/// The policies holding rule `id`, with their revisions.
pub async fn holders(api: &Api, id: &str) -> ApiResult<Vec<(FirewallPolicy, nbdb::Revision)>> {
    let all = api.db.all::<FirewallPolicy>().await?;
    Ok(all
        .into_iter()
        .filter(|(p, _)| p.firewall_rules.iter().any(|r| r == id))
        .collect())
}

impl Lifecycle for FirewallRule {
    type Create = RuleRequest;
    type Update = RuleRequest;
    const POST_FORBIDDEN: &'static [&'static str] = &["firewall_policy_id", "position"];
    const PUT_READ_ONLY: &'static [&'static str] = &["firewall_policy_id", "position"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<RuleRequest> {
        parse(attrs)
    }

    async fn plan_create(
        _api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &RuleRequest,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<FirewallRule> {
        let mut r = blank(meta);
        apply(&mut r, req.clone());
        check(&r)?;
        Ok(r)
    }

    fn parse_update(_ctx: &Context, _: &FirewallRule, attrs: &mut Attrs) -> ApiResult<RuleRequest> {
        parse(attrs)
    }

    /// The policies that hold the rule are no longer audited.
    async fn plan_update(
        api: &Api,
        _ctx: &Context,
        r: &mut FirewallRule,
        req: RuleRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        apply(r, req);
        check(r)?;
        for (mut p, rev) in holders(api, &r.meta.id).await? {
            if p.audited {
                p.audited = false;
                touch(&mut p.meta);
                plan.txn.update(&p, rev);
            }
        }
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        r: &FirewallRule,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if !holders(api, &r.meta.id).await?.is_empty() {
            return Err(ApiError::conflict(
                "FirewallRuleInUse",
                format!("Firewall rule {} is being used.", r.meta.id),
            ));
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "({} {} {:?})",
            self.action.as_str(),
            self.protocol.as_deref().unwrap_or("any"),
            self.destination_port.map(|p| p.render())
        )
    }
}

/// Reads rule `id` for a policy: 404 `FirewallRuleNotFound` when it does not exist or
/// `ctx` may not see it (another project's, not shared).
pub async fn fetch(
    api: &Api,
    ctx: &Context,
    id: &str,
) -> ApiResult<(FirewallRule, nbdb::Revision)> {
    match api.db.get::<FirewallRule>(id).await? {
        Some((r, _)) if r.deleting => Err(rule_not_found(id)),
        Some((r, _)) if !(ctx.owns(&r.meta.project_id) || r.shared) => Err(rule_not_found(id)),
        Some(found) => Ok(found),
        None => Err(rule_not_found(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_as_neutron_reads_them() {
        let r = port_range("p", json!("22")).unwrap().unwrap();
        assert_eq!((r.min, r.max), (22, 22));
        let r = port_range("p", json!(80)).unwrap().unwrap();
        assert_eq!((r.min, r.max), (80, 80));
        let r = port_range("p", json!("30:20")).unwrap().unwrap();
        assert_eq!((r.min, r.max), (30, 20));
        assert_eq!(port_range("p", json!(null)).unwrap(), None);
        for bad in ["1:2:3", ":5", "x", "70000", "-1", ""] {
            assert!(port_range("p", json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn protocols_and_versions() {
        assert_eq!(protocol(json!("tcp")).unwrap().as_deref(), Some("tcp"));
        assert_eq!(protocol(json!(null)).unwrap(), None);
        assert_eq!(protocol(json!("TCP")).unwrap_err().kind, "HTTPBadRequest");
        assert_eq!(protocol(json!(6)).unwrap_err().kind, "HTTPBadRequest");
        assert_eq!(protocol(json!("gre!")).unwrap_err().kind, "InvalidInput");
        assert_eq!(ip_version(json!("6")).unwrap(), 6);
        assert!(ip_version(json!(5)).is_err());
        assert_eq!(action(json!("ALLOW")).unwrap(), FwAction::Allow);
        assert!(action(json!("drop")).is_err());
    }

    #[test]
    fn whole_rule_checks() {
        let mut r = blank(Meta::default());
        r.destination_port = Some(PortRange { min: 22, max: 22 });
        assert_eq!(
            check(&r).unwrap_err().kind,
            "FirewallRuleWithPortWithoutProtocolInvalid"
        );
        r.protocol = Some("icmp".into());
        assert_eq!(
            check(&r).unwrap_err().kind,
            "FirewallRuleInvalidICMPParameter"
        );
        r.protocol = Some("tcp".into());
        assert!(check(&r).is_ok());
        r.destination_port = Some(PortRange { min: 30, max: 20 });
        assert_eq!(check(&r).unwrap_err().kind, "FirewallRuleInvalidPortValue");
        r.destination_port = None;
        r.source_ip_address = address("s", json!("2001:db8::/64")).unwrap();
        assert_eq!(check(&r).unwrap_err().kind, "FirewallIpAddressConflict");
        r.ip_version = 6;
        assert!(check(&r).is_ok());
        assert!(address("s", json!("10.0.0.5/24")).unwrap().is_some());
        assert!(address("s", json!("nope")).is_err());
    }
}
