//! `/v2.0/trunks` (Neutron's `trunk`, VLAN-aware VMs): a parent port and its subports,
//! each carried on the parent by a VLAN id unique in the trunk, with the
//! `add_subports`, `remove_subports` and `get_subports` actions. A subport is marked
//! `trunk:subport` and bound where its parent is; the hosts wire it (the controller's
//! `apps::trunk`). The trunk's status is derived from its ports' when it is shown.

use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::ops::trunks::port_claim;
use super::{Resource, render, touch, writable};
use crate::Api;
use crate::body::{Attrs, JsonBody, show};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use model::{Meta, Network, Port, PortStatus, SubPort, Trunk, trunk::SUBPORT_OWNER};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

impl Resource for Trunk {
    const COLLECTION: &'static str = "trunks";
    const RESOURCE: &'static str = "trunk";
    const OWN_ATTRS: &'static [&'static str] =
        &["admin_state_up", "port_id", "status", "sub_ports"];

    /// `status` is written again by [`Resource::render_all`], from the ports.
    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("admin_state_up".into(), json!(self.admin_state_up));
        m.insert("port_id".into(), json!(self.port_id));
        m.insert("status".into(), json!("DOWN"));
        m.insert("sub_ports".into(), subports_json(&self.sub_ports));
    }

    async fn render_all(api: &Api, trunks: &[Trunk]) -> ApiResult<Vec<Map<String, Value>>> {
        let statuses: BTreeMap<String, (PortStatus, bool)> = if trunks.is_empty() {
            BTreeMap::new()
        } else {
            (api.db.all::<Port>().await?)
                .into_iter()
                .map(|(p, _)| (p.meta.id, (p.status, !p.binding_host_id.is_empty())))
                .collect()
        };
        Ok(trunks
            .iter()
            .map(|t| {
                let mut m = render(t);
                m.insert("status".into(), json!(status(t, &statuses)));
                m
            })
            .collect())
    }
}

/// The trunk's status from its ports': DOWN until the parent is bound and up, ERROR
/// with the parent's, then ACTIVE once every subport is, DEGRADED when one failed, BUILD
/// while they are being wired.
fn status(t: &Trunk, ports: &BTreeMap<String, (PortStatus, bool)>) -> &'static str {
    match ports.get(&t.port_id) {
        Some((PortStatus::Error, _)) => "ERROR",
        Some((PortStatus::Active, true)) => {
            let subs: Vec<PortStatus> = t
                .sub_ports
                .iter()
                .map(|s| ports.get(&s.port_id).map_or(PortStatus::Down, |p| p.0))
                .collect();
            if subs.iter().all(|s| *s == PortStatus::Active) {
                "ACTIVE"
            } else if subs.contains(&PortStatus::Error) {
                "DEGRADED"
            } else {
                "BUILD"
            }
        }
        _ => "DOWN",
    }
}

fn subports_json(subs: &[SubPort]) -> Value {
    subs.iter()
        .map(|s| {
            json!({"segmentation_id": s.segmentation_id,
                   "segmentation_type": s.segmentation_type,
                   "port_id": s.port_id})
        })
        .collect()
}

/// One subport as a request names it, checked for shape only (neutron-lib's
/// `validate_subports`): the rest is checked against the ports.
#[derive(Debug, Clone)]
pub struct SubportRequest {
    port_id: String,
    segmentation_type: Option<String>,
    segmentation_id: Option<Value>,
    /// The request's dict, for the messages that quote it.
    shown: String,
}

/// `sub_ports`: a list of dicts, each with a unique valid port UUID and, unless it
/// inherits, both segmentation attributes, segmentation ids unique per type. The reason
/// when not: a POST's API layer answers it as `HTTPBadRequest`, the actions (checked by
/// the plugin in Neutron) as `InvalidInput`.
fn parse_subports(v: Value) -> Result<Vec<SubportRequest>, String> {
    let invalid = |m: String| m;
    let Value::Array(items) = v else {
        return Err(invalid(format!(
            "Invalid data format for subports: '{}' is not a list",
            show(&v)
        )));
    };
    let mut ids = BTreeSet::new();
    let mut segs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        let Value::Object(m) = &item else {
            return Err(invalid(format!(
                "Invalid data format for subport: '{}' is not a dict",
                show(&item)
            )));
        };
        let Some(port) = m.get("port_id") else {
            return Err(invalid("A valid port UUID must be specified".into()));
        };
        let port_id = port
            .as_str()
            .filter(|s| model::is_uuid(s))
            .ok_or_else(|| invalid(format!("Invalid UUID for subport: '{}'", show(port))))?;
        if !ids.insert(port_id.to_string()) {
            return Err(invalid(format!("Non unique UUID for subport: '{port_id}'")));
        }
        let seg_type = match m.get("segmentation_type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => Some(show(v)),
        };
        let seg_id = m.get("segmentation_id").filter(|v| !v.is_null()).cloned();
        let shown = show(&item);
        if seg_type.as_deref() != Some("inherit") {
            if (seg_type.is_none() || seg_id.is_none()) && m.len() > 1 {
                return Err(invalid(format!(
                    "Invalid subport details '{shown}': missing segmentation information. Must specify both segmentation_id and segmentation_type"
                )));
            }
            if let (Some(t), Some(id)) = (&seg_type, &seg_id)
                && !segs.insert((t.clone(), show(id)))
            {
                return Err(invalid(format!(
                    "Segmentation ID '{}' for '{port_id}' is not unique",
                    show(id)
                )));
            }
        }
        out.push(SubportRequest {
            port_id: port_id.to_string(),
            segmentation_type: seg_type,
            segmentation_id: seg_id,
            shown,
        });
    }
    Ok(out)
}

/// The segmentation id as Neutron converts it (an integer, or a string of one).
fn seg_id_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The trunk's project sees and changes ports the way the caller does: a port the
/// caller may not see is not found.
async fn port_for(api: &Api, ctx: &Context, id: &str) -> ApiResult<(Port, nbdb::Revision)> {
    super::visible::<Port>(api, ctx, id).await
}

/// The MTU of a port's network, if the network is there.
async fn mtu_of(api: &Api, network_id: &str) -> ApiResult<Option<u32>> {
    Ok(api.db.get::<Network>(network_id).await?.map(|(n, _)| n.mtu))
}

/// Checks subports to join the trunk of parent `parent` (Neutron's `SubPortsValidator`,
/// in its order), and adds their writes to `txn`: each marked `trunk:subport`, bound
/// where the parent is, and claimed for `trunk_id`.
async fn plan_subports(
    api: &Api,
    ctx: &Context,
    trunk_id: &str,
    parent: &Port,
    reqs: &[SubportRequest],
    txn: &mut Txn,
) -> ApiResult<Vec<SubPort>> {
    let parent_mtu = mtu_of(api, &parent.network_id).await?;
    let mut out = Vec::new();
    for r in reqs {
        let found = api.db.get::<Port>(&r.port_id).await?;
        let net = match &found {
            Some((p, _)) => api.db.get::<Network>(&p.network_id).await?.map(|(n, _)| n),
            None => None,
        };
        let (mut seg_type, mut seg_id) = (r.segmentation_type.clone(), r.segmentation_id.clone());
        if seg_type.as_deref() == Some("inherit")
            && let Some(n) = &net
        {
            seg_type = Some(n.network_type.as_str().to_string());
            seg_id = n.segmentation_id.map(|s| json!(s));
        }
        if r.port_id == parent.meta.id {
            return Err(parent_in_use(&r.port_id));
        }
        if let (Some(pm), Some(n)) = (parent_mtu, &net)
            && n.mtu > pm
        {
            return Err(ApiError::conflict(
                "SubPortMtuGreaterThanTrunkPortMtu",
                format!(
                    "MTU {} of subport {} cannot be greater than MTU {pm} of trunk {}.",
                    n.mtu, r.port_id, parent.meta.id
                ),
            ));
        }
        let (Some(seg_type), Some(seg_id)) = (seg_type, seg_id) else {
            return Err(ApiError::invalid(format!(
                "Invalid subport details '{}': missing segmentation information. Must specify both segmentation_id and segmentation_type",
                r.shown
            )));
        };
        let Some(id) = seg_id_of(&seg_id) else {
            return Err(ApiError::invalid(format!(
                "Invalid subport details: segmentation_id '{}' is not an integer",
                show(&seg_id)
            )));
        };
        if seg_type != "vlan" {
            return Err(ApiError::invalid(format!(
                "Unknown segmentation_type '{seg_type}'"
            )));
        }
        if !(1..=4094).contains(&id) {
            return Err(ApiError::invalid(format!(
                "Segmentation ID '{id}' is not in range"
            )));
        }
        in_other_trunk(api, &r.port_id).await?;
        // Only now is a missing port a 404, as in Neutron.
        let (mut p, rev) = port_for(api, ctx, &r.port_id).await?;
        if !p.device_id.is_empty() {
            return Err(ApiError::conflict(
                "PortInUse",
                format!(
                    "Unable to complete operation on port {} for network {}. Port already has an attached device {}.",
                    p.meta.id, p.network_id, p.device_id
                ),
            ));
        }
        p.device_owner = SUBPORT_OWNER.to_string();
        if !parent.binding_host_id.is_empty() {
            p.binding_host_id = parent.binding_host_id.clone();
        }
        touch(&mut p.meta);
        txn.update(&p, rev);
        txn.claim_requested(
            &port_claim(&p.meta.id),
            trunk_id,
            ApiError::conflict(
                "TrunkPortInUse",
                format!("Port {} is in use by another trunk.", p.meta.id),
            ),
        );
        out.push(SubPort {
            port_id: p.meta.id.clone(),
            segmentation_type: seg_type,
            segmentation_id: id as u32,
            network_id: p.network_id.clone(),
        });
    }
    Ok(out)
}

fn parent_in_use(port_id: &str) -> ApiError {
    ApiError::conflict(
        "ParentPortInUse",
        format!("Port {port_id} is currently in use and is not eligible for use as a parent port."),
    )
}

/// A port already in a trunk: a subport → `TrunkPortInUse`, a parent → `ParentPortInUse`.
async fn in_other_trunk(api: &Api, port_id: &str) -> ApiResult<()> {
    let Some(trunk_id) = api.db.claim_owner(&port_claim(port_id)).await? else {
        return Ok(());
    };
    let parent = api
        .db
        .get::<Trunk>(&trunk_id)
        .await?
        .is_some_and(|(t, _)| t.port_id == port_id);
    Err(if parent {
        parent_in_use(port_id)
    } else {
        ApiError::conflict(
            "TrunkPortInUse",
            format!("Port {port_id} is in use by another trunk."),
        )
    })
}

/// Takes the subports out of their trunk: no longer `trunk:subport`, unbound, DOWN.
async fn release_subports(api: &Api, subs: &[SubPort], txn: &mut Txn) -> ApiResult<()> {
    for s in subs {
        txn.release(&port_claim(&s.port_id));
        if let Some((mut p, rev)) = api.db.get::<Port>(&s.port_id).await? {
            if p.device_owner == SUBPORT_OWNER {
                p.device_owner.clear();
            }
            p.binding_host_id.clear();
            p.status = PortStatus::Down;
            touch(&mut p.meta);
            txn.update(&p, rev);
        }
    }
    Ok(())
}

fn disabled(t: &Trunk) -> ApiResult<()> {
    if t.admin_state_up {
        return Ok(());
    }
    Err(ApiError::conflict(
        "TrunkDisabled",
        format!("Trunk {} is currently disabled.", t.meta.id),
    ))
}

/// A POST's own attributes.
pub struct NewTrunk {
    port_id: String,
    admin_state_up: bool,
    sub_ports: Vec<SubportRequest>,
}

/// A PUT's own attribute.
pub struct TrunkUpdate {
    admin_state_up: Option<bool>,
}

impl Lifecycle for Trunk {
    type Create = NewTrunk;
    type Update = TrunkUpdate;
    const POST_FORBIDDEN: &'static [&'static str] = &["status"];
    const PUT_READ_ONLY: &'static [&'static str] = &["port_id", "sub_ports", "status"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewTrunk> {
        let sub_ports = match attrs.take("sub_ports") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_subports(v).map_err(|m| crate::body::bad_attr("sub_ports", m))?,
        };
        let port_id = match attrs.take("port_id") {
            Some(Value::String(s)) if model::is_uuid(&s) => s,
            Some(v) => {
                return Err(crate::body::bad_attr(
                    "port_id",
                    format!("'{}' is not a valid UUID", show(&v)),
                ));
            }
            None => {
                return Err(ApiError::bad_request(
                    "HTTPBadRequest",
                    "Failed to parse request. Required attribute 'port_id' not specified",
                ));
            }
        };
        Ok(NewTrunk {
            port_id,
            admin_state_up: attrs.bool("admin_state_up")?.unwrap_or(true),
            sub_ports,
        })
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &NewTrunk,
        plan: &mut Plan<'_>,
    ) -> ApiResult<Trunk> {
        let (parent, rev) = port_for(api, ctx, &req.port_id).await?;
        in_other_trunk(api, &parent.meta.id).await?;
        plan.txn.check::<Port>(&parent.meta.id, rev);
        plan.txn.claim_requested(
            &port_claim(&parent.meta.id),
            &meta.id,
            parent_in_use(&parent.meta.id),
        );
        let sub_ports =
            plan_subports(api, ctx, &meta.id, &parent, &req.sub_ports, &mut plan.txn).await?;
        Ok(Trunk {
            meta,
            admin_state_up: req.admin_state_up,
            port_id: parent.meta.id.clone(),
            network_id: parent.network_id,
            sub_ports,
        })
    }

    fn parse_update(_ctx: &Context, _t: &Trunk, attrs: &mut Attrs) -> ApiResult<TrunkUpdate> {
        Ok(TrunkUpdate {
            admin_state_up: attrs.bool("admin_state_up")?,
        })
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        t: &mut Trunk,
        req: TrunkUpdate,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if let Some(up) = req.admin_state_up {
            t.admin_state_up = up;
        }
        Ok(())
    }

    fn check_delete(&self, _ctx: &Context) -> ApiResult<()> {
        disabled(self)
    }

    /// A trunk whose parent is bound (a VM uses it) stays: `TrunkInUse`. Its subports
    /// leave it.
    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        t: &Trunk,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if let Some((parent, rev)) = api.db.get::<Port>(&t.port_id).await? {
            if !parent.binding_host_id.is_empty() {
                return Err(ApiError::conflict(
                    "TrunkInUse",
                    format!("Trunk {} is currently in use.", t.meta.id),
                ));
            }
            plan.txn.check::<Port>(&parent.meta.id, rev);
        }
        plan.txn.release(&port_claim(&t.port_id));
        release_subports(api, &t.sub_ports, &mut plan.txn).await
    }

    fn summary(&self) -> String {
        format!(
            "(parent {}, {} subports)",
            self.port_id,
            self.sub_ports.len()
        )
    }
}

/// The `sub_ports` list of an action's body (`{"sub_ports": [...]}`).
fn action_subports(body: Value) -> ApiResult<Vec<SubportRequest>> {
    let Value::Object(mut m) = body else {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            "Resource body required",
        ));
    };
    let v = m.remove("sub_ports").ok_or_else(|| {
        ApiError::bad_request(
            "HTTPBadRequest",
            "Unable to find 'sub_ports' in request body",
        )
    })?;
    parse_subports(v).map_err(ApiError::invalid)
}

/// The trunk as an action answers it: unwrapped, as Neutron's actions do.
async fn answer(api: &Api, t: &Trunk) -> ApiResult<Json<Value>> {
    let item = Trunk::render_all(api, std::slice::from_ref(t)).await?;
    Ok(Json(Value::Object(
        item.into_iter().next().unwrap_or_default(),
    )))
}

/// `PUT /v2.0/trunks/{id}/add_subports`.
pub async fn add_subports(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let reqs = action_subports(body)?;
    let t = retrying(|| async {
        let (mut t, rev) = writable::<Trunk>(&api, &ctx, &id, "add_subports", &[]).await?;
        let (parent, prev) = api.db.fetch::<Port>(&t.port_id).await?;
        let mut txn = Txn::new();
        let added = plan_subports(&api, &ctx, &t.meta.id, &parent, &reqs, &mut txn).await?;
        disabled(&t)?;
        for s in &added {
            if t.sub_ports.iter().any(|o| {
                o.segmentation_type == s.segmentation_type && o.segmentation_id == s.segmentation_id
            }) {
                return Err(ApiError::conflict(
                    "DuplicateSubPort",
                    format!(
                        "segmentation_type {} and segmentation_id {} already in use on trunk {}.",
                        s.segmentation_type, s.segmentation_id, t.meta.id
                    ),
                ));
            }
        }
        t.sub_ports.extend(added);
        touch(&mut t.meta);
        txn.update(&t, rev);
        txn.check::<Port>(&parent.meta.id, prev);
        txn.commit(&api.db).await?;
        Ok(t)
    })
    .await?;
    tracing::info!(%id, subports = t.sub_ports.len(), "trunk add_subports");
    answer(&api, &t).await
}

/// `PUT /v2.0/trunks/{id}/remove_subports`: each named port must be a subport of the
/// trunk (`SubPortNotFound`); only `port_id` is read.
pub async fn remove_subports(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let t = retrying(|| async {
        let (mut t, rev) = writable::<Trunk>(&api, &ctx, &id, "remove_subports", &[]).await?;
        disabled(&t)?;
        let reqs = action_subports(body.clone())?;
        let mut gone = Vec::new();
        for r in &reqs {
            let Some(i) = t.sub_ports.iter().position(|s| s.port_id == r.port_id) else {
                return Err(ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "SubPortNotFound",
                    format!(
                        "SubPort {} on trunk {} could not be found.",
                        r.port_id, t.meta.id
                    ),
                ));
            };
            gone.push(t.sub_ports.remove(i));
        }
        let mut txn = Txn::new();
        release_subports(&api, &gone, &mut txn).await?;
        touch(&mut t.meta);
        txn.update(&t, rev);
        txn.commit(&api.db).await?;
        Ok(t)
    })
    .await?;
    tracing::info!(%id, subports = t.sub_ports.len(), "trunk remove_subports");
    answer(&api, &t).await
}

/// `GET /v2.0/trunks/{id}/get_subports`.
pub async fn get_subports(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (t, _) = writable::<Trunk>(&api, &ctx, &id, "get_subports", &[]).await?;
    Ok(Json(json!({"sub_ports": subports_json(&t.sub_ports)})))
}

/// The `trunk_details` of the parent ports among `ports` (by port id): the trunk and its
/// subports with their MACs. One read of the trunks per listing.
pub async fn trunk_details(api: &Api, ports: &[Port]) -> ApiResult<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    if ports.is_empty() {
        return Ok(out);
    }
    let ids: BTreeSet<&str> = ports.iter().map(|p| p.meta.id.as_str()).collect();
    for (t, _) in api.db.all::<Trunk>().await? {
        if !ids.contains(t.port_id.as_str()) {
            continue;
        }
        let mut subs = Vec::new();
        for s in &t.sub_ports {
            let mac = match ports.iter().find(|p| p.meta.id == s.port_id) {
                Some(p) => Some(p.mac_address),
                None => api
                    .db
                    .get::<Port>(&s.port_id)
                    .await?
                    .map(|(p, _)| p.mac_address),
            };
            subs.push(json!({"segmentation_id": s.segmentation_id,
                             "segmentation_type": s.segmentation_type,
                             "port_id": s.port_id,
                             "mac_address": mac}));
        }
        out.insert(
            t.port_id.clone(),
            json!({"trunk_id": t.meta.id, "sub_ports": subs}),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "11111111-1111-1111-1111-111111111111";
    const B: &str = "22222222-2222-2222-2222-222222222222";

    #[test]
    fn subports_are_checked_as_neutron_lib_does() {
        let bad = |v: Value| parse_subports(v).unwrap_err();
        assert!(bad(json!({"port_id": A})).contains("is not a list"));
        assert!(bad(json!(["x"])).contains("is not a dict"));
        assert!(bad(json!([{"segmentation_id": 2}])).contains("valid port UUID"));
        assert!(bad(json!([{"port_id": "nope"}])).contains("Invalid UUID"));
        assert!(
            bad(json!([{"port_id": A, "segmentation_type": "vlan"}]))
                .contains("missing segmentation information"),
            "one segmentation attribute without the other"
        );
        assert!(
            bad(
                json!([{"port_id": A, "segmentation_type": "vlan", "segmentation_id": 2},
                       {"port_id": B, "segmentation_type": "vlan", "segmentation_id": 2}])
            )
            .contains("is not unique"),
            "segmentation ids are unique"
        );
        assert!(
            bad(json!([{"port_id": A}, {"port_id": A}])).contains("Non unique UUID"),
            "port ids are unique"
        );
        // A bare port id (what remove_subports needs) and inherit pass.
        let ok = parse_subports(json!([{"port_id": A},
            {"port_id": B, "segmentation_type": "inherit"}]))
        .unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn status_follows_the_parent_then_the_subports() {
        let t = Trunk {
            meta: Meta {
                id: "t".into(),
                ..Meta::default()
            },
            admin_state_up: true,
            port_id: "p".into(),
            network_id: "n".into(),
            sub_ports: vec![SubPort {
                port_id: "s".into(),
                segmentation_type: "vlan".into(),
                segmentation_id: 101,
                network_id: "n2".into(),
            }],
        };
        let ports = |p: PortStatus, bound: bool, s: PortStatus| {
            BTreeMap::from([("p".to_string(), (p, bound)), ("s".to_string(), (s, bound))])
        };
        use PortStatus::*;
        assert_eq!(status(&t, &BTreeMap::new()), "DOWN");
        assert_eq!(status(&t, &ports(Down, false, Down)), "DOWN");
        assert_eq!(status(&t, &ports(Active, true, Build)), "BUILD");
        assert_eq!(status(&t, &ports(Active, true, Active)), "ACTIVE");
        assert_eq!(status(&t, &ports(Active, true, Error)), "DEGRADED");
        assert_eq!(status(&t, &ports(Error, true, Active)), "ERROR");
    }
}
