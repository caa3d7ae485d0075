//! `/v2.0/sfc/port_chains`: ordered port pair groups and the classifiers whose traffic
//! goes through them. networking-sfc's checks (groups and classifiers exist, a
//! classifier serves one chain, no two chains with the same groups or with classifiers
//! that meet, correlations agree, chain ids unique), and this datapath's: one network, at
//! most [`MAX_HOPS`] groups, no service function port that is also a source. The chain
//! object carries its resolved path and classifiers: what the hosts compile.

use super::super::Resource;
use super::super::lifecycle::Lifecycle;
use super::super::ops::Plan;
use super::port_pairs::SFC_STANDARD;
use super::{all_classifiers, in_use, invalid, resolve_path, uuid_list};
use crate::Api;
use crate::body::{Attrs, bad_attr, parse_bool, show};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use model::sfc::{Classifier, MAX_CHAIN_ID, MAX_HOPS};
use model::{FlowClassifier, Meta, Network, NetworkType, Port, PortChain, PortPairGroup};
use serde_json::{Map, Value, json};

impl Resource for PortChain {
    const COLLECTION: &'static str = "port_chains";
    const RESOURCE: &'static str = "port_chain";
    const STANDARD: super::super::Standard = SFC_STANDARD;
    const PATH: Option<&'static str> = Some("sfc/port_chains");
    const OWN_ATTRS: &'static [&'static str] = &[
        "chain_id",
        "port_pair_groups",
        "flow_classifiers",
        "chain_parameters",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("chain_id".into(), json!(self.chain_id));
        m.insert("port_pair_groups".into(), json!(self.port_pair_groups));
        m.insert("flow_classifiers".into(), json!(self.flow_classifiers));
        m.insert(
            "chain_parameters".into(),
            json!({"correlation": self.correlation, "symmetric": self.symmetric}),
        );
    }
}

pub struct NewChain {
    chain_id: u32,
    groups: Vec<String>,
    classifiers: Vec<String>,
    correlation: String,
    symmetric: bool,
}

pub struct ChainChange {
    groups: Option<Vec<String>>,
    classifiers: Option<Vec<String>>,
}

fn groups_attr(attrs: &mut Attrs) -> ApiResult<Option<Vec<String>>> {
    let groups = uuid_list(attrs, "port_pair_groups")?;
    if groups.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid(
            "PortPairGroupNotSpecified",
            "Port Pair Group is not specified in Port Chain.",
        ));
    }
    Ok(groups)
}

/// `chain_parameters`: `correlation` (`mpls`, `nsh`; default `mpls`) and `symmetric`
/// (default false).
fn chain_parameters(v: Option<Value>) -> ApiResult<(String, bool)> {
    const KEY: &str = "chain_parameters";
    let map = match v {
        None | Some(Value::Null) => return Ok(("mpls".into(), false)),
        Some(Value::Object(m)) => m,
        Some(v) => return Err(bad_attr(KEY, format!("'{v}' is not a dictionary"))),
    };
    let mut correlation = "mpls".to_string();
    let mut symmetric = false;
    for (k, v) in map {
        match k.as_str() {
            "correlation" => match v.as_str() {
                Some(c @ ("mpls" | "nsh")) => correlation = c.to_string(),
                _ => {
                    return Err(bad_attr(
                        KEY,
                        format!("'{}' is not in ['mpls', 'nsh']", show(&v)),
                    ));
                }
            },
            "symmetric" => {
                symmetric = parse_bool(&v).ok_or_else(|| {
                    bad_attr(
                        KEY,
                        format!("'{}' cannot be converted to boolean", show(&v)),
                    )
                })?;
            }
            other => {
                return Err(bad_attr(
                    KEY,
                    format!("Unrecognized key '{other}' (expected correlation, symmetric)"),
                ));
            }
        }
    }
    Ok((correlation, symmetric))
}

/// The groups `ids` for chain `chain`: each exists, and no other chain has the same
/// sequence (networking-sfc's `InvalidPortPairGroups`).
async fn groups_for(
    api: &Api,
    chain: &str,
    ids: &[String],
) -> ApiResult<Vec<(PortPairGroup, nbdb::Revision)>> {
    let mut out = Vec::new();
    for id in ids {
        let g = api.db.get::<PortPairGroup>(id).await?;
        out.push(g.ok_or_else(|| ApiError::not_found("PortPairGroup", id))?);
    }
    for (other, _) in api.db.all::<PortChain>().await? {
        if other.meta.id != chain && other.port_pair_groups == ids {
            return Err(in_use(
                "InvalidPortPairGroups",
                format!(
                    "Port Pair Group(s) {ids:?} in use by Port Chain {}.",
                    other.meta.id
                ),
            ));
        }
    }
    Ok(out)
}

/// The classifiers `ids` for chain `chain`: each exists, serves no other chain, and
/// meets no classifier of another chain. A symmetric chain also classifies the answers
/// ([`reversed`]): those are compared too, both ways (networking-sfc compares the
/// forward classifiers only; here two chains would otherwise steer the same packets from
/// one port, with flows the same to the byte).
async fn classifiers_for(
    api: &Api,
    chain: &str,
    ids: &[String],
    symmetric: bool,
) -> ApiResult<Vec<(FlowClassifier, nbdb::Revision)>> {
    let all = all_classifiers(api).await?;
    let mut out = Vec::new();
    for id in ids {
        let found = all.iter().find(|(c, _)| c.meta.id == *id).cloned();
        let (c, rev) = found.ok_or_else(|| ApiError::not_found("FlowClassifier", id))?;
        if c.chain.as_deref().is_some_and(|x| x != chain) {
            return Err(in_use(
                "FlowClassifierInUse",
                format!("Flow Classifier {id} in use."),
            ));
        }
        out.push((c, rev));
    }
    let symmetric_chains: Vec<String> = (api.db.all::<PortChain>().await?)
        .into_iter()
        .filter(|(c, _)| c.symmetric)
        .map(|(c, _)| c.meta.id)
        .collect();
    let rules = |c: &FlowClassifier, both: bool| {
        let rev = if both { c.rule.reversed() } else { None };
        std::iter::once(c.rule.clone())
            .chain(rev)
            .collect::<Vec<_>>()
    };
    for (other, _) in &all {
        let Some(pc) = other.chain.as_deref().filter(|pc| *pc != chain) else {
            continue;
        };
        let theirs = rules(other, symmetric_chains.iter().any(|s| s == pc));
        let clash = out.iter().find(|(mine, _)| {
            let mine = rules(mine, symmetric);
            mine.iter().any(|m| theirs.iter().any(|t| m.meets(t)))
        });
        if let Some((mine, _)) = clash {
            return Err(invalid(
                "PortChainFlowClassifierInConflict",
                format!(
                    "Flow Classifier {} conflicts with Flow Classifier {} in port chain {pc}.",
                    mine.meta.id, other.meta.id
                ),
            ));
        }
    }
    Ok(out)
}

fn datapath_invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("Port Chain: {message}"))
}

/// Checks what this datapath needs and fills in the chain's resolved parts: its
/// network (every port of the chain on one), its path and its classifiers.
async fn resolve(
    api: &Api,
    chain: &mut PortChain,
    groups: &[(PortPairGroup, nbdb::Revision)],
    classifiers: &[(FlowClassifier, nbdb::Revision)],
) -> ApiResult<()> {
    if groups.len() > MAX_HOPS {
        return Err(datapath_invalid(format!(
            "at most {MAX_HOPS} port pair groups (the hop takes 4 bits of the MPLS label)"
        )));
    }
    let gs: Vec<PortPairGroup> = groups.iter().map(|(g, _)| g.clone()).collect();
    chain.path = resolve_path(api, &gs).await?;
    chain.classifiers = classifiers.iter().map(|(c, _)| c.rule.clone()).collect();
    check_ports(chain)?;
    // A symmetric chain's answers start at the logical destination ports.
    let sources: Vec<&String> = (chain.classifiers.iter())
        .flat_map(|c: &Classifier| {
            let dst = c
                .logical_destination_port
                .as_ref()
                .filter(|_| chain.symmetric);
            c.logical_source_port.iter().chain(dst)
        })
        .collect();
    let sf_ports: Vec<&String> = (chain.path.iter())
        .flat_map(|h| h.pairs.iter())
        .flat_map(|p| [&p.ingress, &p.egress])
        .collect();
    let mut network: Option<String> = None;
    for id in sources.iter().chain(sf_ports.iter()) {
        let Some((port, _)) = api.db.get::<Port>(id).await? else {
            continue;
        };
        match &network {
            None => network = Some(port.network_id),
            Some(n) if *n != port.network_id => {
                return Err(datapath_invalid(format!(
                    "every port of a chain must be on one network (port {id} is on {}, \
                     not {n})",
                    port.network_id
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(id) = &network
        && let Some((net, _)) = api.db.get::<Network>(id).await?
    {
        check_label_room(api, &net)?;
    }
    chain.network_id = network.unwrap_or_else(|| chain.meta.project_id.clone());
    Ok(())
}

/// The bytes a chain adds to a frame between hosts: its MPLS label.
const LABEL_BYTES: u32 = 4;

/// A full-size frame of `net` must still cross to another host with the chain's label:
/// VXLAN and GRE networks at their largest MTU fill the underlay to the byte (Geneve's
/// keeps room for options), and so do VLAN and flat ones the physical network. Open
/// vSwitch drops what does not fit, silently, so such a chain would pass small packets
/// and lose full-size ones.
fn check_label_room(api: &Api, net: &Network) -> ApiResult<()> {
    let t = net.network_type;
    let max = api.config.max_mtu(t);
    if matches!(t, NetworkType::Geneve | NetworkType::Local) || net.mtu + LABEL_BYTES <= max {
        return Ok(());
    }
    Err(datapath_invalid(format!(
        "network {} ({}, MTU {}) leaves no room for the {LABEL_BYTES} bytes of the MPLS \
         label that carries a chain between hosts: its MTU must be at most {}",
        net.meta.id,
        t.as_str(),
        net.mtu,
        max.saturating_sub(LABEL_BYTES)
    )))
}

/// The ports of a resolved chain, as this datapath needs them: no service function port
/// is where classified traffic starts (a classifier's logical source port, or for a
/// symmetric chain its logical destination port, where the answers start): its traffic
/// would loop; and no port serves two hops (its frames could not tell which hop they
/// left). Checked on every change of the chain or of one of its groups.
pub(crate) fn check_ports(chain: &PortChain) -> ApiResult<()> {
    let mut sources: Vec<&String> = (chain.classifiers.iter())
        .filter_map(|c| c.logical_source_port.as_ref())
        .collect();
    if chain.symmetric {
        sources
            .extend((chain.classifiers.iter()).filter_map(|c| c.logical_destination_port.as_ref()));
    }
    let mut hop_of: Vec<(&String, usize)> = Vec::new();
    for (h, hop) in chain.path.iter().enumerate() {
        for p in hop.pairs.iter().flat_map(|p| [&p.ingress, &p.egress]) {
            if sources.contains(&p) {
                return Err(datapath_invalid(format!(
                    "port {p} is a classifier's logical {} port and a service function \
                     port of the chain: its traffic would loop",
                    if (chain.classifiers.iter()).any(|c| c.logical_source_port.as_ref() == Some(p))
                    {
                        "source"
                    } else {
                        "destination"
                    }
                )));
            }
            if let Some((_, first)) = hop_of.iter().find(|(q, g)| *q == p && *g != h) {
                return Err(datapath_invalid(format!(
                    "port {p} is a service function port of two port pair groups of the \
                     chain (positions {first} and {h})"
                )));
            }
            hop_of.push((p, h));
        }
    }
    Ok(())
}

/// networking-sfc's OVS driver, on creating a symmetric chain: every classifier names
/// its logical destination port, where the answers start (message as upstream words it).
fn check_symmetric(classifiers: &[(FlowClassifier, nbdb::Revision)]) -> ApiResult<()> {
    for (fc, _) in classifiers {
        if fc.rule.logical_destination_port.is_none() {
            return Err(invalid(
                "SfcBadRequest",
                format!(
                    "FlowClassifier {} does not setlogical_destination_port. \
                     logical_destination_port needed when symmetric has been set. Please \
                     recreate FlowClassifier with logical_destination_port and \
                     destination_ip_prefix.",
                    fc.meta.id
                ),
            ));
        }
    }
    Ok(())
}

fn chain_id_claim(n: u32) -> String {
    format!("sfc-chain-id/{n}")
}

/// Writes the chain's marks on its groups and classifiers: `now` are its own,
/// `before_*` what it had (those that left are released).
async fn write_marks(
    api: &Api,
    chain: &str,
    before_groups: &[String],
    before_classifiers: &[String],
    groups: &[(PortPairGroup, nbdb::Revision)],
    classifiers: &[(FlowClassifier, nbdb::Revision)],
    plan: &mut Plan<'_>,
) -> ApiResult<()> {
    for id in before_groups {
        if groups.iter().any(|(g, _)| g.meta.id == *id) {
            continue;
        }
        if let Some((mut g, rev)) = api.db.get::<PortPairGroup>(id).await? {
            g.chains.retain(|c| c != chain);
            plan.txn.update(&g, rev);
        }
    }
    for (g, rev) in groups {
        let mut g = g.clone();
        if !g.chains.iter().any(|c| c == chain) {
            g.chains.push(chain.to_string());
        }
        plan.txn.update(&g, *rev);
    }
    for id in before_classifiers {
        if classifiers.iter().any(|(c, _)| c.meta.id == *id) {
            continue;
        }
        if let Some((mut c, rev)) = api.db.get::<FlowClassifier>(id).await? {
            c.chain = None;
            plan.txn.update(&c, rev);
        }
    }
    for (c, rev) in classifiers {
        let mut c = c.clone();
        c.chain = Some(chain.to_string());
        plan.txn.update(&c, *rev);
    }
    Ok(())
}

impl Lifecycle for PortChain {
    type Create = NewChain;
    type Update = ChainChange;
    const PUT_READ_ONLY: &'static [&'static str] = &["chain_id", "chain_parameters"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewChain> {
        let chain_id = match attrs.take("chain_id") {
            None | Some(Value::Null) => 0,
            Some(v) => {
                let n = match &v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                match n {
                    Some(n) if (0..=i64::from(MAX_CHAIN_ID)).contains(&n) => n as u32,
                    Some(_) => {
                        return Err(bad_attr(
                            "chain_id",
                            format!("'{}' is not in range 0 through {MAX_CHAIN_ID}", show(&v)),
                        ));
                    }
                    None => {
                        return Err(bad_attr(
                            "chain_id",
                            format!("'{}' is not an integer", show(&v)),
                        ));
                    }
                }
            }
        };
        let groups = super::required(groups_attr(attrs)?, "port_pair_groups")?;
        let classifiers = uuid_list(attrs, "flow_classifiers")?.unwrap_or_default();
        let (correlation, symmetric) = chain_parameters(attrs.take("chain_parameters"))?;
        Ok(NewChain {
            chain_id,
            groups,
            classifiers,
            correlation,
            symmetric,
        })
    }

    async fn plan_create(
        api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewChain,
        plan: &mut Plan<'_>,
    ) -> ApiResult<PortChain> {
        let groups = groups_for(api, &meta.id, &req.groups).await?;
        for (g, _) in &groups {
            for id in &g.port_pairs {
                let pp = api.db.get::<model::PortPair>(id).await?;
                if let Some(c) = pp.and_then(|(p, _)| p.correlation)
                    && c != req.correlation
                {
                    return Err(invalid(
                        "PortChainInconsistentCorrelations",
                        format!(
                            "Port Chain attempted creation included a Port Pair Group ({}) \
                             with a different protocol used as correlation type.",
                            g.meta.id
                        ),
                    ));
                }
            }
        }
        let classifiers = classifiers_for(api, &meta.id, &req.classifiers, req.symmetric).await?;
        if req.symmetric {
            check_symmetric(&classifiers)?;
        }
        let taken: Vec<(u32, String)> = (api.db.all::<PortChain>().await?)
            .into_iter()
            .map(|(c, _)| (c.chain_id, c.meta.id))
            .collect();
        let chain_id = if req.chain_id == 0 {
            let id = (1..=MAX_CHAIN_ID)
                .find(|n| !taken.iter().any(|(t, _)| t == n))
                .ok_or_else(|| {
                    invalid(
                        "PortChainUnavailableChainId",
                        format!("Port Chain {} no available chain id.", meta.id),
                    )
                })?;
            plan.txn.claim(&chain_id_claim(id), &meta.id);
            id
        } else {
            let conflict = |pc: &str| {
                invalid(
                    "PortChainChainIdInConflict",
                    format!(
                        "Chain id {} conflicts with Chain id in port chain {pc}.",
                        req.chain_id
                    ),
                )
            };
            if let Some((_, pc)) = taken.iter().find(|(t, _)| *t == req.chain_id) {
                return Err(conflict(pc));
            }
            let err = conflict("(another)");
            plan.txn
                .claim_requested(&chain_id_claim(req.chain_id), &meta.id, err);
            req.chain_id
        };
        let mut chain = PortChain {
            meta,
            chain_id,
            port_pair_groups: req.groups.clone(),
            flow_classifiers: req.classifiers.clone(),
            correlation: req.correlation.clone(),
            symmetric: req.symmetric,
            network_id: String::new(),
            path: vec![],
            classifiers: vec![],
        };
        resolve(api, &mut chain, &groups, &classifiers).await?;
        write_marks(api, &chain.meta.id, &[], &[], &groups, &classifiers, plan).await?;
        Ok(chain)
    }

    fn parse_update(_ctx: &Context, _: &PortChain, attrs: &mut Attrs) -> ApiResult<ChainChange> {
        Ok(ChainChange {
            groups: groups_attr(attrs)?,
            classifiers: uuid_list(attrs, "flow_classifiers")?,
        })
    }

    async fn plan_update(
        api: &Api,
        _ctx: &Context,
        chain: &mut PortChain,
        req: ChainChange,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if req.groups.is_none() && req.classifiers.is_none() {
            return Ok(());
        }
        let id = chain.meta.id.clone();
        let classifiers = match &req.classifiers {
            Some(ids) => classifiers_for(api, &id, ids, chain.symmetric).await?,
            None => classifiers_for(api, &id, &chain.flow_classifiers, chain.symmetric).await?,
        };
        let groups = match &req.groups {
            Some(ids) => groups_for(api, &id, ids).await?,
            None => groups_for(api, &id, &chain.port_pair_groups).await?,
        };
        let before_groups = chain.port_pair_groups.clone();
        let before_classifiers = chain.flow_classifiers.clone();
        if let Some(ids) = req.groups {
            chain.port_pair_groups = ids;
        }
        if let Some(ids) = req.classifiers {
            chain.flow_classifiers = ids;
        }
        resolve(api, chain, &groups, &classifiers).await?;
        write_marks(
            api,
            &id,
            &before_groups,
            &before_classifiers,
            &groups,
            &classifiers,
            plan,
        )
        .await
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        chain: &PortChain,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        write_marks(
            api,
            &chain.meta.id,
            &chain.port_pair_groups,
            &chain.flow_classifiers,
            &[],
            &[],
            plan,
        )
        .await?;
        plan.txn.release(&chain_id_claim(chain.chain_id));
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "(chain_id {} groups {:?} classifiers {:?})",
            self.chain_id, self.port_pair_groups, self.flow_classifiers
        )
    }
}
