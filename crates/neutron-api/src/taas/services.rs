//! `/v2.0/taas/tap_services`: the port mirrored traffic is delivered to. The port must be
//! one the caller sees (else `PortNotFound`) and of the service's project
//! (`PortDoesNotBelongToTenant`, 403). Only name and description change. A service gets
//! its own tunnel key for copies from other hosts: a segmentation id of its network's
//! tunnel type, claimed as networks claim theirs.

use super::{ACTIVE, TAAS_STANDARD, key_claim, not_authorized};
use crate::Api;
use crate::body::Attrs;
use crate::context::Context;
use crate::db::Txn;
use crate::error::ApiResult;
use crate::resources::lifecycle::Lifecycle;
use crate::resources::ops::Plan;
use crate::resources::sfc::{required, uuid};
use crate::resources::{Resource, Standard, networks, visible};
use model::{Meta, Network, Port, TapService};
use serde_json::{Map, Value, json};

impl Resource for TapService {
    const COLLECTION: &'static str = "tap_services";
    const RESOURCE: &'static str = "tap_service";
    const STANDARD: Standard = TAAS_STANDARD;
    const PATH: Option<&'static str> = Some("taas/tap_services");
    const OWN_ATTRS: &'static [&'static str] = &["port_id", "status"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("port_id".into(), json!(self.port_id));
        m.insert("status".into(), json!(self.status));
    }
}

/// Frees what a tap service holds (its tunnel key).
pub(crate) async fn release(api: &Api, txn: &mut Txn, s: &TapService) -> ApiResult<()> {
    if let Some(key) = s.tap_key
        && let Some((net, _)) = api.db.get::<Network>(&s.network_id).await?
    {
        txn.release(&key_claim(&net, key));
    }
    Ok(())
}

impl Lifecycle for TapService {
    type Create = String;
    type Update = ();
    const POST_FORBIDDEN: &'static [&'static str] = &["status"];
    const PUT_READ_ONLY: &'static [&'static str] = &["port_id", "status"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<String> {
        required(uuid(attrs, "port_id")?, "port_id")
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        port_id: &String,
        plan: &mut Plan<'_>,
    ) -> ApiResult<TapService> {
        let (port, prev) = visible::<Port>(api, ctx, port_id).await?;
        if port.meta.project_id != meta.project_id {
            return Err(not_authorized(
                "PortDoesNotBelongToTenant",
                "The specified port does not belong to the tenant",
            ));
        }
        let (net, _) = api.db.fetch::<Network>(&port.network_id).await?;
        let tap_key = if net.network_type.is_tunnel() {
            let ranges: Vec<(u128, u128)> = api
                .config
                .vni_ranges
                .iter()
                .map(|(a, b)| (u128::from(*a), u128::from(*b)))
                .collect();
            networks::claim_free(api, plan, &meta.id, net.network_type, None, &ranges)
                .await?
                .and_then(|s| s.segmentation_id)
                .map(Some)
                .ok_or_else(limit_reached)?
        } else {
            None
        };
        // The port as it was checked: one deleted meanwhile retries (and is not found).
        plan.txn.check::<Port>(&port.meta.id, prev);
        Ok(TapService {
            meta,
            port_id: port.meta.id,
            network_id: net.meta.id,
            tap_key,
            status: ACTIVE.into(),
        })
    }

    fn parse_update(_ctx: &Context, _: &TapService, _attrs: &mut Attrs) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        _s: &mut TapService,
        _req: (),
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        s: &TapService,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        super::delete_flows_into(api, &s.meta.id, &mut plan.txn).await?;
        release(api, &mut plan.txn, s).await
    }

    fn summary(&self) -> String {
        format!("(port {}, key {:?})", self.port_id, self.tap_key)
    }
}

/// `TapServiceLimitReached` (`OverQuota`, 409): no tunnel key is left.
fn limit_reached() -> crate::error::ApiError {
    crate::error::ApiError::conflict(
        "TapServiceLimitReached",
        "Reached the maximum quota for Tap Services",
    )
}
