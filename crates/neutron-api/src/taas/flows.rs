//! `/v2.0/taas/tap_flows`: copies of a source port's traffic (`direction` `IN`, towards
//! the VM; `OUT`; `BOTH`) into a tap service, with `taas-vlan-filter`'s `vlan_filter`.
//! The service must be one the caller sees (`TapServiceNotFound`) and of the flow's
//! project (`TapServiceNotBelongToTenant`, 403); the source port one the caller sees
//! (`PortNotFound`). As upstream, the source may be on another network than the service
//! port, and nothing refuses a second flow of the same source into the same service
//! (the datapath copies once per source, service and direction all the same).

use super::{ACTIVE, TAAS_STANDARD, not_authorized};
use crate::Api;
use crate::body::{Attrs, bad_attr, show};
use crate::context::Context;
use crate::error::ApiResult;
use crate::resources::lifecycle::Lifecycle;
use crate::resources::ops::Plan;
use crate::resources::sfc::{required, uuid};
use crate::resources::{Resource, Standard, visible};
use model::{Meta, Port, TapDirection, TapFlow, TapService};
use serde_json::{Map, Value, json};

impl Resource for TapFlow {
    const COLLECTION: &'static str = "tap_flows";
    const RESOURCE: &'static str = "tap_flow";
    const STANDARD: Standard = TAAS_STANDARD;
    const PATH: Option<&'static str> = Some("taas/tap_flows");
    const OWN_ATTRS: &'static [&'static str] = &[
        "tap_service_id",
        "source_port",
        "direction",
        "status",
        "vlan_filter",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("tap_service_id".into(), json!(self.tap_service_id));
        m.insert("source_port".into(), json!(self.source_port));
        m.insert("direction".into(), json!(self.direction.as_str()));
        m.insert("status".into(), json!(self.status));
        m.insert("vlan_filter".into(), json!(self.vlan_filter));
    }
}

pub struct NewFlow {
    tap_service_id: String,
    source_port: String,
    direction: TapDirection,
    vlan_filter: Option<String>,
}

/// `direction`: `type:values` of `IN`, `OUT`, `BOTH` (required: it has no default).
fn direction(attrs: &mut Attrs) -> ApiResult<Option<TapDirection>> {
    let Some(v) = attrs.take("direction") else {
        return Ok(None);
    };
    match &v {
        Value::String(s) => TapDirection::parse(s).map(Some),
        _ => None,
    }
    .ok_or_else(|| {
        bad_attr(
            "direction",
            format!("'{}' is not in ['IN', 'OUT', 'BOTH']", show(&v)),
        )
    })
}

/// `vlan_filter`: `type:regex_or_none` with tap-as-a-service's range expression.
fn vlan_filter(attrs: &mut Attrs) -> ApiResult<Option<String>> {
    match attrs.take("vlan_filter") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if model::taas::vlan_ranges(&s).is_some() => Ok(Some(s)),
        Some(v) => Err(bad_attr(
            "vlan_filter",
            format!("'{}' is not a valid input", show(&v)),
        )),
    }
}

impl Lifecycle for TapFlow {
    type Create = NewFlow;
    type Update = ();
    const POST_FORBIDDEN: &'static [&'static str] = &["status"];
    const PUT_READ_ONLY: &'static [&'static str] = &[
        "tap_service_id",
        "source_port",
        "direction",
        "status",
        "vlan_filter",
    ];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewFlow> {
        let tap_service_id = required(uuid(attrs, "tap_service_id")?, "tap_service_id")?;
        let source_port = required(uuid(attrs, "source_port")?, "source_port")?;
        let direction = required(direction(attrs)?, "direction")?;
        let vlan_filter = vlan_filter(attrs)?;
        Ok(NewFlow {
            tap_service_id,
            source_port,
            direction,
            vlan_filter,
        })
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &NewFlow,
        plan: &mut Plan<'_>,
    ) -> ApiResult<TapFlow> {
        let (service, srev) = visible::<TapService>(api, ctx, &req.tap_service_id).await?;
        if service.meta.project_id != meta.project_id {
            return Err(not_authorized(
                "TapServiceNotBelongToTenant",
                "Specified Tap Service does not belong to the tenant",
            ));
        }
        let (source, prev) = visible::<Port>(api, ctx, &req.source_port).await?;
        // The service and the port as they were checked: either gone meanwhile retries.
        plan.txn.check::<TapService>(&service.meta.id, srev);
        plan.txn.check::<Port>(&source.meta.id, prev);
        Ok(TapFlow {
            meta,
            tap_service_id: service.meta.id,
            source_port: source.meta.id,
            direction: req.direction,
            vlan_filter: req.vlan_filter.clone(),
            status: ACTIVE.into(),
            network_id: source.network_id,
            service_port: service.port_id,
            service_network: service.network_id,
            tap_key: service.tap_key,
        })
    }

    fn parse_update(_ctx: &Context, _: &TapFlow, _attrs: &mut Attrs) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        _f: &mut TapFlow,
        _req: (),
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_delete(
        _api: &Api,
        _ctx: &Context,
        _f: &TapFlow,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "(source {} {} into {})",
            self.source_port,
            self.direction.as_str(),
            self.tap_service_id
        )
    }
}
