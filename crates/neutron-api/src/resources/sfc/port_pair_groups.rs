//! `/v2.0/sfc/port_pair_groups`: the pairs that share one hop. A pair joins at most one
//! group (its `group` mark, written with the group); the pairs of a group share one
//! correlation; a change of the pairs is written into the chains using the group.

use super::super::Resource;
use super::super::lifecycle::Lifecycle;
use super::super::ops::Plan;
use super::port_pairs::SFC_STANDARD;
use super::{chains_with_group, in_use, invalid, uuid_list};
use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use model::{Meta, PortPair, PortPairGroup};
use serde_json::{Map, Value, json};

const LB_FIELDS: [&str; 8] = [
    "eth_src", "eth_dst", "ip_src", "ip_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst",
];
const N_TUPLE_KEYS: [&str; 6] = [
    "source_ip_prefix",
    "destination_ip_prefix",
    "source_port_range_min",
    "source_port_range_max",
    "destination_port_range_min",
    "destination_port_range_max",
];

impl Resource for PortPairGroup {
    const COLLECTION: &'static str = "port_pair_groups";
    const RESOURCE: &'static str = "port_pair_group";
    const STANDARD: super::super::Standard = SFC_STANDARD;
    const PATH: Option<&'static str> = Some("sfc/port_pair_groups");
    const OWN_ATTRS: &'static [&'static str] =
        &["group_id", "port_pairs", "port_pair_group_parameters"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("group_id".into(), json!(self.group_id));
        m.insert("port_pairs".into(), json!(self.port_pairs));
        let mapping = if self.ppg_n_tuple_mapping.is_object() {
            self.ppg_n_tuple_mapping.clone()
        } else {
            json!({"ingress_n_tuple": {}, "egress_n_tuple": {}})
        };
        m.insert(
            "port_pair_group_parameters".into(),
            json!({"lb_fields": self.lb_fields, "ppg_n_tuple_mapping": mapping}),
        );
    }
}

pub struct NewGroup {
    port_pairs: Vec<String>,
    lb_fields: Vec<String>,
    mapping: Value,
}

fn bad_mapping(message: String) -> ApiError {
    invalid(
        "PPGParametersInvalidNTupleMappingParameter",
        format!(
            "Invalid Port Pair Group N-Tuple Mapping parameters: {message}. Supported PPG \
             classifier N-Tuple Mapping parameters are {N_TUPLE_KEYS:?}."
        ),
    )
}

/// `port_pair_group_parameters`: `lb_fields` (of [`LB_FIELDS`]) and
/// `ppg_n_tuple_mapping` (`ingress_n_tuple`, `egress_n_tuple`, keys of
/// [`N_TUPLE_KEYS`]).
fn ppg_parameters(v: Option<Value>) -> ApiResult<(Vec<String>, Value)> {
    const KEY: &str = "port_pair_group_parameters";
    let empty = json!({"ingress_n_tuple": {}, "egress_n_tuple": {}});
    let map = match v {
        None | Some(Value::Null) => return Ok((vec![], empty)),
        Some(Value::Object(m)) => m,
        Some(v) => return Err(bad_attr(KEY, format!("'{v}' is not a dictionary"))),
    };
    let mut lb = Vec::new();
    let mut mapping = empty;
    for (k, v) in map {
        match k.as_str() {
            "lb_fields" => {
                let Value::Array(items) = v else {
                    return Err(bad_attr(KEY, format!("'{v}' is not a list")));
                };
                for i in items {
                    match i.as_str() {
                        Some(f) if LB_FIELDS.contains(&f) => lb.push(f.to_string()),
                        _ => {
                            return Err(bad_attr(
                                KEY,
                                format!("Illegal values in a list: {}", crate::body::show(&i)),
                            ));
                        }
                    }
                }
            }
            "ppg_n_tuple_mapping" => {
                let m = match v {
                    Value::Null => Map::new(),
                    Value::Object(m) => m,
                    v => return Err(bad_attr(KEY, format!("'{v}' is not a dictionary"))),
                };
                for (side, tuple) in &m {
                    if side != "ingress_n_tuple" && side != "egress_n_tuple" {
                        return Err(bad_mapping(format!("Unknown key {side}")));
                    }
                    let Some(t) = tuple.as_object() else {
                        return Err(bad_mapping(format!("{side} is not a dictionary")));
                    };
                    if let Some(k) = t.keys().find(|k| !N_TUPLE_KEYS.contains(&k.as_str())) {
                        return Err(bad_mapping(format!("Unknow key {k}.")));
                    }
                }
                let mut full = Map::new();
                for side in ["ingress_n_tuple", "egress_n_tuple"] {
                    full.insert(side.into(), m.get(side).cloned().unwrap_or(json!({})));
                }
                mapping = Value::Object(full);
            }
            other => {
                return Err(bad_attr(
                    KEY,
                    format!("Unrecognized key '{other}' (expected lb_fields, ppg_n_tuple_mapping)"),
                ));
            }
        }
    }
    Ok((lb, mapping))
}

/// The pairs `ids` for group `group`: each exists, is in no other group, and all share
/// one correlation (networking-sfc's order of checks).
async fn pairs_for(
    api: &Api,
    group: &str,
    ids: &[String],
) -> ApiResult<Vec<(PortPair, nbdb::Revision)>> {
    let mut out: Vec<(PortPair, nbdb::Revision)> = Vec::new();
    for id in ids {
        let (pp, rev) = api
            .db
            .get::<PortPair>(id)
            .await?
            .ok_or_else(|| ApiError::not_found("PortPair", id))?;
        if let Some((first, _)) = out.first()
            && first.correlation != pp.correlation
        {
            return Err(invalid(
                "InconsistentCorrelations",
                "Port Pair Group attempted creation included Port Pairs with inconsistent \
                 correlation types.",
            ));
        }
        if pp.group.as_deref().is_some_and(|g| g != group) {
            return Err(in_use(
                "PortPairInUse",
                format!("Port Pair {} in use.", pp.meta.id),
            ));
        }
        out.push((pp, rev));
    }
    Ok(out)
}

/// Marks the pairs of `now` as the group's and those of `before` that left as free.
async fn write_pairs(
    api: &Api,
    group: &str,
    before: &[String],
    now: Vec<(PortPair, nbdb::Revision)>,
    plan: &mut Plan<'_>,
) -> ApiResult<()> {
    for id in before
        .iter()
        .filter(|id| !now.iter().any(|(p, _)| p.meta.id == **id))
    {
        if let Some((mut pp, rev)) = api.db.get::<PortPair>(id).await? {
            pp.group = None;
            plan.txn.update(&pp, rev);
        }
    }
    for (mut pp, rev) in now {
        if pp.group.as_deref() != Some(group) {
            pp.group = Some(group.to_string());
            plan.txn.update(&pp, rev);
        } else {
            plan.txn.check::<PortPair>(&pp.meta.id, rev);
        }
    }
    Ok(())
}

fn group_id_claim(n: u32) -> String {
    format!("sfc-group-id/{n}")
}

impl Lifecycle for PortPairGroup {
    type Create = NewGroup;
    type Update = Option<Vec<String>>;
    const POST_FORBIDDEN: &'static [&'static str] = &["group_id"];
    const PUT_READ_ONLY: &'static [&'static str] = &["group_id", "port_pair_group_parameters"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewGroup> {
        let port_pairs = uuid_list(attrs, "port_pairs")?.unwrap_or_default();
        let (lb_fields, mapping) = ppg_parameters(attrs.take("port_pair_group_parameters"))?;
        Ok(NewGroup {
            port_pairs,
            lb_fields,
            mapping,
        })
    }

    async fn plan_create(
        api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewGroup,
        plan: &mut Plan<'_>,
    ) -> ApiResult<PortPairGroup> {
        let pairs = pairs_for(api, &meta.id, &req.port_pairs).await?;
        let taken: Vec<u32> = (api.db.all::<PortPairGroup>().await?)
            .into_iter()
            .map(|(g, _)| g.group_id)
            .collect();
        let group_id = (1..).find(|n| !taken.contains(n)).unwrap_or(1);
        plan.txn.claim(&group_id_claim(group_id), &meta.id);
        write_pairs(api, &meta.id, &[], pairs, plan).await?;
        Ok(PortPairGroup {
            meta,
            group_id,
            port_pairs: req.port_pairs.clone(),
            lb_fields: req.lb_fields.clone(),
            ppg_n_tuple_mapping: req.mapping.clone(),
            chains: vec![],
        })
    }

    fn parse_update(
        _ctx: &Context,
        _: &PortPairGroup,
        attrs: &mut Attrs,
    ) -> ApiResult<Option<Vec<String>>> {
        uuid_list(attrs, "port_pairs")
    }

    async fn plan_update(
        api: &Api,
        _ctx: &Context,
        g: &mut PortPairGroup,
        req: Option<Vec<String>>,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let Some(ids) = req else {
            return Ok(());
        };
        let pairs = pairs_for(api, &g.meta.id, &ids).await?;
        let before = std::mem::replace(&mut g.port_pairs, ids);
        write_pairs(api, &g.meta.id, &before, pairs, plan).await?;
        for (chain, rev) in chains_with_group(api, g).await? {
            plan.txn.update(&chain, rev);
        }
        Ok(())
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        g: &PortPairGroup,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if !g.chains.is_empty() {
            return Err(in_use(
                "PortPairGroupInUse",
                format!("Port Pair Group {} in use.", g.meta.id),
            ));
        }
        write_pairs(api, &g.meta.id, &g.port_pairs, vec![], plan).await?;
        plan.txn.release(&group_id_claim(g.group_id));
        Ok(())
    }

    fn summary(&self) -> String {
        format!("(group_id {} pairs {:?})", self.group_id, self.port_pairs)
    }
}
