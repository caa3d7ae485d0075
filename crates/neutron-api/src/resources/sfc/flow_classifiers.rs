//! `/v2.0/sfc/flow_classifiers`: what traffic a chain takes. networking-sfc's
//! normalisation (ethertype, protocol names, port values) and checks (ranges, prefixes
//! of the ethertype's family, ports that exist, no conflict with another classifier),
//! and its OVS driver's one: a logical source port is required.

use super::super::Resource;
use super::super::lifecycle::Lifecycle;
use super::super::ops::Plan;
use super::port_pairs::SFC_STANDARD;
use super::{all_classifiers, in_use, invalid, uuid_or_null};
use crate::Api;
use crate::body::{Attrs, bad_attr, show};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use ipnet::IpNet;
use model::sfc::Classifier;
use model::{FlowClassifier, Meta, Port};
use serde_json::{Map, Value, json};

const PROTOCOLS: [&str; 3] = ["tcp", "udp", "icmp"];
const ETHERTYPES: [&str; 2] = ["IPv4", "IPv6"];
const RULE_ATTRS: [&str; 11] = [
    "ethertype",
    "protocol",
    "source_port_range_min",
    "source_port_range_max",
    "destination_port_range_min",
    "destination_port_range_max",
    "source_ip_prefix",
    "destination_ip_prefix",
    "logical_source_port",
    "logical_destination_port",
    "l7_parameters",
];

impl Resource for FlowClassifier {
    const COLLECTION: &'static str = "flow_classifiers";
    const RESOURCE: &'static str = "flow_classifier";
    const STANDARD: super::super::Standard = SFC_STANDARD;
    const PATH: Option<&'static str> = Some("sfc/flow_classifiers");
    const OWN_ATTRS: &'static [&'static str] = &RULE_ATTRS;

    fn render_own(&self, m: &mut Map<String, Value>) {
        let r = &self.rule;
        m.insert("ethertype".into(), json!(r.ethertype));
        m.insert("protocol".into(), json!(r.protocol));
        m.insert(
            "source_port_range_min".into(),
            json!(r.source_port_range_min),
        );
        m.insert(
            "source_port_range_max".into(),
            json!(r.source_port_range_max),
        );
        m.insert(
            "destination_port_range_min".into(),
            json!(r.destination_port_range_min),
        );
        m.insert(
            "destination_port_range_max".into(),
            json!(r.destination_port_range_max),
        );
        let prefix = |p: &Option<IpNet>| json!(p.map(|p| p.to_string()));
        m.insert("source_ip_prefix".into(), prefix(&r.source_ip_prefix));
        m.insert(
            "destination_ip_prefix".into(),
            prefix(&r.destination_ip_prefix),
        );
        m.insert("logical_source_port".into(), json!(r.logical_source_port));
        m.insert(
            "logical_destination_port".into(),
            json!(r.logical_destination_port),
        );
        m.insert("l7_parameters".into(), json!(self.l7_parameters));
    }
}

/// `normalize_ethertype`: null is IPv4, any case is accepted.
fn ethertype(v: Option<Value>) -> ApiResult<String> {
    match v {
        None | Some(Value::Null) => Ok("IPv4".into()),
        Some(Value::String(s)) if ETHERTYPES.iter().any(|e| e.eq_ignore_ascii_case(&s)) => {
            Ok(ETHERTYPES
                .into_iter()
                .find(|e| e.eq_ignore_ascii_case(&s))
                .unwrap_or("IPv4")
                .to_string())
        }
        Some(v) => Err(invalid(
            "FlowClassifierInvalidEthertype",
            format!(
                "Flow Classifier does not support ethertype {}. Supported ethertype values \
                 are {ETHERTYPES:?}.",
                show(&v)
            ),
        )),
    }
}

/// `normalize_protocol`: `tcp`, `udp`, `icmp` in any case, or null.
fn protocol(v: Option<Value>) -> ApiResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if PROTOCOLS.contains(&s.to_lowercase().as_str()) => {
            Ok(Some(s.to_lowercase()))
        }
        Some(v) => Err(invalid(
            "FlowClassifierInvalidProtocol",
            format!(
                "Flow Classifier does not support protocol {}. Supported protocol values \
                 are {PROTOCOLS:?}.",
                show(&v)
            ),
        )),
    }
}

/// `normalize_port_value`: an integer (or a string of one) in 0..=65535, or null.
fn port_value(v: Option<Value>) -> ApiResult<Option<u16>> {
    let v = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let n = match &v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            invalid(
                "FlowClassifierInvalidPortValue",
                format!("Flow Classifier has invalid port value {}.", show(&v)),
            )
        })
}

/// `type:subnet_or_none`.
fn prefix(attrs: &mut Attrs, key: &str) -> ApiResult<Option<IpNet>> {
    match attrs.take(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crate::body::parse_cidr(key, &v).map(Some),
    }
}

fn check_range(min: Option<u16>, max: Option<u16>, protocol: &Option<String>) -> ApiResult<()> {
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        return Err(invalid(
            "FlowClassifierInvalidPortRange",
            format!(
                "Invalid IP protocol port range. min_port_range={a} must be lesser or equal \
                 to max_port_range={b}."
            ),
        ));
    }
    if (min.is_some() || max.is_some()) && !matches!(protocol.as_deref(), Some("tcp") | Some("udp"))
    {
        return Err(invalid(
            "FlowClassifierProtocolRequiredWithPorts",
            "IP protocol must be TCP or UDP, if port range is given.",
        ));
    }
    Ok(())
}

fn check_prefix(p: &Option<IpNet>, ethertype: &str) -> ApiResult<()> {
    match p {
        Some(net) if matches!(net, IpNet::V4(_)) != (ethertype == "IPv4") => Err(invalid(
            "FlowClassifierIpPrefixFormatConflictWithEthertype",
            format!("IP prefix {net} format conflicts with ethertype {ethertype}."),
        )),
        _ => Ok(()),
    }
}

impl Lifecycle for FlowClassifier {
    type Create = Classifier;
    type Update = ();
    const PUT_READ_ONLY: &'static [&'static str] = &RULE_ATTRS;

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<Classifier> {
        let ethertype = ethertype(attrs.take("ethertype"))?;
        let protocol = protocol(attrs.take("protocol"))?;
        let c = Classifier {
            id: String::new(),
            source_port_range_min: port_value(attrs.take("source_port_range_min"))?,
            source_port_range_max: port_value(attrs.take("source_port_range_max"))?,
            destination_port_range_min: port_value(attrs.take("destination_port_range_min"))?,
            destination_port_range_max: port_value(attrs.take("destination_port_range_max"))?,
            source_ip_prefix: prefix(attrs, "source_ip_prefix")?,
            destination_ip_prefix: prefix(attrs, "destination_ip_prefix")?,
            logical_source_port: uuid_or_null(attrs, "logical_source_port")?,
            logical_destination_port: uuid_or_null(attrs, "logical_destination_port")?,
            ethertype,
            protocol,
        };
        match attrs.take("l7_parameters") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(Value::Object(m)) => {
                let key = m.keys().next().cloned().unwrap_or_default();
                return Err(invalid(
                    "FlowClassifierInvalidL7Parameter",
                    format!(
                        "Invalid Flow Classifier parameters: Unknown key {key}.. Supported \
                         flow classifier parameters are {{}}."
                    ),
                ));
            }
            Some(v) => {
                return Err(bad_attr(
                    "l7_parameters",
                    format!("'{v}' is not a dictionary"),
                ));
            }
        }
        check_range(
            c.source_port_range_min,
            c.source_port_range_max,
            &c.protocol,
        )?;
        check_range(
            c.destination_port_range_min,
            c.destination_port_range_max,
            &c.protocol,
        )?;
        check_prefix(&c.source_ip_prefix, &c.ethertype)?;
        check_prefix(&c.destination_ip_prefix, &c.ethertype)?;
        Ok(c)
    }

    async fn plan_create(
        api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &Classifier,
        plan: &mut Plan<'_>,
    ) -> ApiResult<FlowClassifier> {
        for id in [&req.logical_source_port, &req.logical_destination_port]
            .into_iter()
            .flatten()
        {
            let (_, rev) = api.db.get::<Port>(id).await?.ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "FlowClassifierPortNotFound",
                    format!("Flow Classifier Neutron Port {id} not found."),
                )
            })?;
            plan.txn.check::<Port>(id, rev);
        }
        for (other, rev) in all_classifiers(api).await? {
            if req.conflicts(&other.rule) {
                return Err(invalid(
                    "FlowClassifierInConflict",
                    format!(
                        "Flow Classifier conflicts with another Flow Classifier {}.",
                        other.meta.id
                    ),
                ));
            }
            // The classifiers as they were checked.
            plan.txn.check::<FlowClassifier>(&other.meta.id, rev);
        }
        if req.logical_source_port.is_none() {
            // The datapath steers from the source port's own pipeline (networking-sfc's
            // OVS driver has the same rule).
            return Err(ApiError::bad_request(
                "FlowClassifierBadRequest",
                format!(
                    "FlowClassifier {} does not set logical source port in dragonflow driver",
                    meta.id
                ),
            ));
        }
        Ok(FlowClassifier {
            rule: Classifier {
                id: meta.id.clone(),
                ..req.clone()
            },
            meta,
            l7_parameters: Default::default(),
            chain: None,
        })
    }

    fn parse_update(_ctx: &Context, _: &FlowClassifier, _attrs: &mut Attrs) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        _c: &mut FlowClassifier,
        _req: (),
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_delete(
        _api: &Api,
        _ctx: &Context,
        c: &FlowClassifier,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if c.chain.is_some() {
            return Err(in_use(
                "FlowClassifierInUse",
                format!("Flow Classifier {} in use.", c.meta.id),
            ));
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "({} {} from {:?})",
            self.rule.ethertype,
            self.rule.protocol.as_deref().unwrap_or("any"),
            self.rule.logical_source_port
        )
    }
}
