//! `/v2.0/sfc/port_pairs`: a service function's ingress and egress ports, its
//! correlation and weight. Both ports must exist and belong to one device; one pair per
//! (ingress, egress); a pair in a group cannot be deleted.

use super::super::lifecycle::Lifecycle;
use super::super::ops::Plan;
use super::super::{Resource, Standard};
use super::{in_use, invalid, required, uuid};
use crate::Api;
use crate::body::{Attrs, bad_attr, show};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use model::{Meta, Port, PortPair};
use serde_json::{Map, Value, json};

/// name, description and project; no tags (networking-sfc has none).
pub(crate) const SFC_STANDARD: Standard = Standard {
    name: true,
    tags: false,
    described: true,
};

impl Resource for PortPair {
    const COLLECTION: &'static str = "port_pairs";
    const RESOURCE: &'static str = "port_pair";
    const STANDARD: Standard = SFC_STANDARD;
    const PATH: Option<&'static str> = Some("sfc/port_pairs");
    const OWN_ATTRS: &'static [&'static str] =
        &["ingress", "egress", "service_function_parameters"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("ingress".into(), json!(self.ingress));
        m.insert("egress".into(), json!(self.egress));
        m.insert(
            "service_function_parameters".into(),
            json!({"correlation": self.correlation, "weight": self.weight}),
        );
    }
}

pub struct NewPair {
    ingress: String,
    egress: String,
    correlation: Option<String>,
    weight: u32,
}

/// `service_function_parameters`: `correlation` (null, `mpls`, `nsh`) and `weight` (a
/// non-negative integer), defaults null and 1.
fn sf_parameters(v: Option<Value>) -> ApiResult<(Option<String>, u32)> {
    const KEY: &str = "service_function_parameters";
    let map = match v {
        None | Some(Value::Null) => return Ok((None, 1)),
        Some(Value::Object(m)) => m,
        Some(v) => return Err(bad_attr(KEY, format!("'{v}' is not a dictionary"))),
    };
    let mut correlation = None;
    let mut weight = 1;
    for (k, v) in map {
        match k.as_str() {
            "correlation" => {
                correlation = match v {
                    Value::Null => None,
                    Value::String(s) if s == "mpls" || s == "nsh" => Some(s),
                    v => {
                        return Err(bad_attr(
                            KEY,
                            format!("'{}' is not in [None, 'mpls', 'nsh']", show(&v)),
                        ));
                    }
                }
            }
            "weight" => {
                weight = match &v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                }
                .and_then(|w| u32::try_from(w).ok())
                .ok_or_else(|| bad_attr(KEY, format!("'{}' should be non-negative", show(&v))))?;
            }
            other => {
                return Err(bad_attr(
                    KEY,
                    format!("Unrecognized key '{other}' (expected correlation, weight)"),
                ));
            }
        }
    }
    Ok((correlation, weight))
}

impl Lifecycle for PortPair {
    type Create = NewPair;
    type Update = ();
    const PUT_READ_ONLY: &'static [&'static str] =
        &["ingress", "egress", "service_function_parameters"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewPair> {
        let ingress = required(uuid(attrs, "ingress")?, "ingress")?;
        let egress = required(uuid(attrs, "egress")?, "egress")?;
        let (correlation, weight) = sf_parameters(attrs.take("service_function_parameters"))?;
        Ok(NewPair {
            ingress,
            egress,
            correlation,
            weight,
        })
    }

    async fn plan_create(
        api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewPair,
        plan: &mut Plan<'_>,
    ) -> ApiResult<PortPair> {
        let pairs = api.db.all::<PortPair>().await?;
        if let Some((used, _)) = pairs
            .iter()
            .find(|(p, _)| p.ingress == req.ingress && p.egress == req.egress)
        {
            return Err(invalid(
                "PortPairIngressEgressInUse",
                format!(
                    "Port Pair with ingress port {} and egress port {} is already used by \
                     another Port Pair {}.",
                    req.ingress, req.egress, used.meta.id
                ),
            ));
        }
        let port = |id: String| async move {
            api.db.get::<Port>(&id).await?.ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "PortPairPortNotFound",
                    format!("Port Pair port {id} not found."),
                )
            })
        };
        let (ingress, irev) = port(req.ingress.clone()).await?;
        let (egress, erev) = port(req.egress.clone()).await?;
        if ingress.device_id.is_empty() {
            return Err(invalid(
                "PortPairIngressNoHost",
                format!(
                    "Port Pair ingress port {} does not belong to a host.",
                    req.ingress
                ),
            ));
        }
        if egress.device_id.is_empty() {
            return Err(invalid(
                "PortPairEgressNoHost",
                format!(
                    "Port Pair egress port {} does not belong to a host.",
                    req.egress
                ),
            ));
        }
        if ingress.device_id != egress.device_id {
            return Err(invalid(
                "PortPairIngressEgressDifferentHost",
                format!(
                    "Port Pair ingress port {} and egress port {} not in the same host.",
                    req.ingress, req.egress
                ),
            ));
        }
        // The ports as they were checked: a port that changes meanwhile retries.
        plan.txn.check::<Port>(&ingress.meta.id, irev);
        if egress.meta.id != ingress.meta.id {
            plan.txn.check::<Port>(&egress.meta.id, erev);
        }
        // One pair per (ingress, egress), also against a concurrent create.
        plan.txn.claim(
            &format!("sfc-pair/{}/{}", req.ingress, req.egress),
            &meta.id,
        );
        Ok(PortPair {
            meta,
            ingress: req.ingress.clone(),
            egress: req.egress.clone(),
            correlation: req.correlation.clone(),
            weight: req.weight,
            group: None,
        })
    }

    fn parse_update(_ctx: &Context, _: &PortPair, _attrs: &mut Attrs) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        _p: &mut PortPair,
        _req: (),
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_delete(
        _api: &Api,
        _ctx: &Context,
        p: &PortPair,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if p.group.is_some() {
            return Err(in_use(
                "PortPairInUse",
                format!("Port Pair {} in use.", p.meta.id),
            ));
        }
        plan.txn
            .release(&format!("sfc-pair/{}/{}", p.ingress, p.egress));
        Ok(())
    }

    fn summary(&self) -> String {
        format!("(ingress {} egress {})", self.ingress, self.egress)
    }
}
