//! Quotas (Neutron's `quotas`, `quota_details`, `quota-check-limit`): per-project limits on
//! networks, subnets, ports, routers, floating IPs, security groups and their rules, the
//! usage counted by the store in the same transaction as every create and delete, and the
//! `/v2.0/quotas` API (`api.rs`). Usage of stores written before quotas is counted once
//! (`usage.rs`).
//!
//! Usage is a store counter per (project, resource) (`nbdb::Count`), moved by every commit
//! that creates or deletes a counted object ([`Usage`], filled by `db::Txn`). The object a
//! POST creates carries its limit, which the store checks inside its write transaction:
//! no read-modify-write race here, and nothing shared between concurrent creates but the
//! store's own single step (see docs/architecture.md, "Quotas").

pub mod api;
pub mod usage;

use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use model::Table;
use nbdb::Count;
use std::collections::BTreeMap;

/// The counted resources: Neutron's names, and the table of each.
pub const RESOURCES: [(&str, Table); N] = [
    ("network", Table::Network),
    ("subnet", Table::Subnet),
    ("port", Table::Port),
    ("router", Table::Router),
    ("floatingip", Table::FloatingIp),
    ("security_group", Table::SecurityGroup),
    ("security_group_rule", Table::SecurityGroupRule),
    ("rbac_policy", Table::RbacPolicy),
];

/// How many resources have quotas.
pub const N: usize = 8;

/// Where per-project limits live: `quota/<project>` = `{"network": 10, ...}` (only the
/// resources set for the project). Not a model table: hosts never follow it.
pub const QUOTA_TABLE: &str = "quota";

/// Unlimited.
pub const UNLIMITED: i64 = -1;

/// The largest limit Neutron accepts (its database column's).
pub const MAX_LIMIT: i64 = i32::MAX as i64;

/// The resource name of a counted table.
pub fn resource_of(table: Table) -> Option<&'static str> {
    RESOURCES.iter().find(|(_, t)| *t == table).map(|(r, _)| *r)
}

/// One limit per resource, in [`RESOURCES`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits(pub [i64; N]);

impl Default for Limits {
    /// Neutron's defaults.
    fn default() -> Limits {
        Limits([100, 100, 500, 10, 50, 10, 100, 10])
    }
}

impl Limits {
    pub fn get(&self, resource: &str) -> i64 {
        RESOURCES
            .iter()
            .position(|(r, _)| *r == resource)
            .map_or(UNLIMITED, |i| self.0[i])
    }

    /// Every limit unlimited (the scale benches' setting).
    pub fn unlimited() -> Limits {
        Limits([UNLIMITED; N])
    }

    /// These limits with a project's own on top.
    pub fn with(&self, own: &BTreeMap<String, i64>) -> Limits {
        let mut l = *self;
        for (i, (r, _)) in RESOURCES.iter().enumerate() {
            if let Some(v) = own.get(*r) {
                l.0[i] = *v;
            }
        }
        l
    }

    /// `{"network": 100, ...}`.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        RESOURCES
            .iter()
            .zip(self.0)
            .map(|((r, _), v)| (r.to_string(), v.into()))
            .collect()
    }
}

/// The counter of `project`'s `resource`.
pub fn counter(project: &str, resource: &str) -> String {
    format!("{project}/{resource}")
}

/// 409 `OverQuota`, in Neutron's words.
pub fn over_quota(resource: &str) -> ApiError {
    ApiError::conflict(
        "OverQuota",
        format!("Quota exceeded for resources: ['{resource}']."),
    )
}

/// The OverQuota of a store counter that hit its limit.
pub fn over_limit(counter: &str) -> ApiError {
    let resource = counter.rsplit_once('/').map_or(counter, |(_, r)| r);
    over_quota(resource)
}

/// What one transaction changes in usage: a delta per (project, resource), and the
/// object a POST creates, whose increment is checked against the project's limit.
#[derive(Debug, Default)]
pub struct Usage {
    deltas: BTreeMap<(String, &'static str), i64>,
    limited: Vec<(String, &'static str)>,
}

impl Usage {
    /// Counts `delta` objects of `table` for `project` (objects with no project, such as
    /// router gateway and floating IP ports, are nobody's usage, as in Neutron).
    pub fn add(&mut self, table: Table, project: &str, delta: i64) {
        if let Some(r) = resource_of(table).filter(|_| !project.is_empty()) {
            *self.deltas.entry((project.to_string(), r)).or_default() += delta;
        }
    }

    /// The creates of `table` for `project` must fit in the quota: what the request asked
    /// for, and what Neutron also checks (a new group's rules). The other objects a
    /// create brings (a network's DHCP port) are counted but not refused, as in Neutron.
    pub fn limit(&mut self, table: Table, project: &str) {
        if let Some(r) = resource_of(table).filter(|_| !project.is_empty()) {
            let key = (project.to_string(), r);
            if !self.limited.contains(&key) {
                self.limited.push(key);
            }
        }
    }
}

/// The quota state of a server: the configured defaults, and whether usage was counted.
#[derive(Debug)]
pub struct Quotas {
    pub defaults: Limits,
    counted: tokio::sync::OnceCell<()>,
}

impl Quotas {
    pub fn new(defaults: Limits) -> Quotas {
        Quotas {
            defaults,
            counted: tokio::sync::OnceCell::new(),
        }
    }

    /// A project's own limits (those set through the API).
    pub async fn own(&self, db: &Db, project: &str) -> ApiResult<BTreeMap<String, i64>> {
        match db.store.get(QUOTA_TABLE, project).await? {
            // Unreadable bytes are logged and read as no limits of its own.
            Some(r) => Ok(serde_json::from_slice(&r.value).unwrap_or_else(|e| {
                tracing::error!(project, "stored quota is unreadable: {e}");
                BTreeMap::new()
            })),
            None => Ok(BTreeMap::new()),
        }
    }

    /// The limits that apply to `project`.
    pub async fn limits(&self, db: &Db, project: &str) -> ApiResult<Limits> {
        Ok(self.defaults.with(&self.own(db, project).await?))
    }

    /// Usage of `project` by resource (in [`RESOURCES`] order).
    pub async fn used(&self, db: &Db, project: &str) -> ApiResult<[i64; N]> {
        self.ready(db).await?;
        let prefix = counter(project, "");
        let mut used = [0; N];
        for (name, v) in db.store.counters(&prefix).await? {
            let r = name.get(prefix.len()..).unwrap_or_default();
            if let Some(i) = RESOURCES.iter().position(|(n, _)| *n == r) {
                used[i] = v;
            }
        }
        Ok(used)
    }

    /// Usage counted for stores written before quotas, once per server.
    async fn ready(&self, db: &Db) -> ApiResult<()> {
        self.counted
            .get_or_try_init(|| usage::count_existing(db))
            .await
            .map(|_| ())
    }

    /// The counter changes of a transaction: one per (project, resource) it moves, the
    /// requested create limited unless its quota is unlimited.
    pub async fn counts(&self, db: &Db, usage: &Usage) -> ApiResult<Vec<Count>> {
        if usage.deltas.is_empty() {
            return Ok(Vec::new());
        }
        self.ready(db).await?;
        let mut counts = Vec::with_capacity(usage.deltas.len());
        for ((project, resource), delta) in &usage.deltas {
            if *delta == 0 {
                continue;
            }
            let key = (project.clone(), *resource);
            let limit = if *delta > 0 && usage.limited.contains(&key) {
                Some(self.limits(db, project).await?.get(resource)).filter(|l| *l != UNLIMITED)
            } else {
                None
            };
            counts.push(Count::add(&counter(project, resource), *delta, limit));
        }
        Ok(counts)
    }
}
