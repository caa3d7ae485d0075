//! `provisioning_status` as Octavia defines it: PENDING_* while a change is not yet
//! realized on the hosts that need it. A write stores what it did on the nodes it touched
//! (PENDING_CREATE on a new node, PENDING_UPDATE on the changed node and the balancer);
//! a read shows that only while some host that balances for the VIP network (a live
//! controller with a port bound there) has not applied the balancer's store revision yet,
//! from the applied revisions the controllers report in their heartbeats. Realized, or
//! with no such host, every node reads ACTIVE. A health write (`nb_lb_health`) clears
//! the marks of a realized change, so it does not bring them back.

use crate::Api;
use model::LoadBalancer;
use model::agent::{self, Heartbeat};
use model::lb::provisioning::{ACTIVE, PENDING_UPDATE};
use nbdb::{Revision, StoreError};
use serde_json::Value;
use std::collections::BTreeSet;

/// What the hosts have applied: each live controller's host and applied revision, and
/// the store's last commit (a revision past it is reached there: etcd counts other
/// writes too).
pub struct Applied {
    hosts: Vec<(String, u64)>,
    last_commit: u64,
}

impl Applied {
    /// From the controllers' heartbeats (an unreadable one is left out: it cannot hold a
    /// balancer pending forever).
    pub async fn read(api: &Api) -> Result<Applied, StoreError> {
        let store = &api.db.store;
        let last_commit = store.last_commit().await?;
        let hosts = store
            .leases(agent::PREFIX)
            .await?
            .into_iter()
            .filter(|l| l.live)
            .filter_map(|l| serde_json::from_slice::<Heartbeat>(&l.value).ok())
            .filter(|h| h.report.binary == agent::CONTROLLER_BINARY)
            .map(|h| (h.report.host, h.report.applied_revision))
            .collect();
        Ok(Applied { hosts, last_commit })
    }

    /// Whether a change at `rev` is not yet applied by one of `needing`.
    pub fn behind(&self, needing: &BTreeSet<String>, rev: Revision) -> bool {
        let target = rev.min(self.last_commit);
        self.hosts
            .iter()
            .any(|(h, applied)| needing.contains(h) && *applied < target)
    }

    /// Whether any live controller is on one of `hosts`.
    pub fn any_of(&self, hosts: &BTreeSet<String>) -> bool {
        self.hosts.iter().any(|(h, _)| hosts.contains(h))
    }
}

/// The hosts that balance for `network`: those its ports (the VIP port aside: it is bound
/// nowhere) are bound to.
pub async fn needing(api: &Api, network: &str) -> Result<BTreeSet<String>, StoreError> {
    Ok(api
        .db
        .store
        .list_topic(model::Table::Port.name(), network, false)
        .await?
        .into_iter()
        .filter_map(|r| serde_json::from_slice::<model::Port>(&r.value).ok())
        .filter(|p| p.network_id == network && !p.binding_host_id.is_empty())
        .map(|p| p.binding_host_id)
        .collect())
}

/// Every node of the tree, as `f` sees its provisioning status.
fn each(lb: &mut LoadBalancer, mut f: impl FnMut(&str, &mut String)) {
    f(&lb.meta.id, &mut lb.status.provisioning_status);
    for l in &mut lb.listeners {
        f(&l.meta.id, &mut l.status.provisioning_status);
    }
    for p in &mut lb.pools {
        f(&p.meta.id, &mut p.status.provisioning_status);
        for m in &mut p.members {
            f(&m.meta.id, &mut m.status.provisioning_status);
        }
        if let Some(h) = &mut p.healthmonitor {
            f(&h.meta.id, &mut h.status.provisioning_status);
        }
    }
}

/// The tree as it reads once realized: every node ACTIVE.
pub fn settle(lb: &mut LoadBalancer) {
    each(lb, |_, s| {
        if s.starts_with("PENDING_") {
            *s = ACTIVE.into();
        }
    });
}

/// Before a change of node `id`: the previous change's marks go (it is older than this
/// one), and the balancer and the node read PENDING_UPDATE until this change is realized
/// (a node the change creates marks itself PENDING_CREATE).
pub fn mark_update(lb: &mut LoadBalancer, id: &str) {
    settle(lb);
    let lb_id = lb.meta.id.clone();
    each(lb, |node, s| {
        if node == id || node == lb_id {
            *s = PENDING_UPDATE.into();
        }
    });
}

/// An answer's JSON as it reads once realized.
pub fn settle_json(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if k == "provisioning_status" {
                    if v.as_str().is_some_and(|s| s.starts_with("PENDING_")) {
                        *v = Value::String(ACTIVE.into());
                    }
                } else {
                    settle_json(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(settle_json),
        _ => {}
    }
}

/// Balancers as they read now: settled unless a host that needs one is behind.
pub async fn shown(
    api: &Api,
    mut lbs: Vec<(LoadBalancer, Revision)>,
) -> Result<Vec<(LoadBalancer, Revision)>, StoreError> {
    if lbs.is_empty() {
        return Ok(lbs);
    }
    let applied = Applied::read(api).await?;
    let mut networks = std::collections::BTreeMap::new();
    for (lb, rev) in &mut lbs {
        if !networks.contains_key(&lb.vip_network_id) {
            let hosts = needing(api, &lb.vip_network_id).await?;
            networks.insert(lb.vip_network_id.clone(), hosts);
        }
        let hosts = &networks[&lb.vip_network_id];
        if !applied.behind(hosts, *rev) {
            settle(lb);
        }
    }
    Ok(lbs)
}

/// Whether a change just written for a balancer on `network` will read PENDING_*: some
/// live controller balances for the network (it cannot have applied a revision this new).
pub async fn will_pend(api: &Api, network: &str) -> Result<bool, StoreError> {
    let hosts = needing(api, network).await?;
    if hosts.is_empty() {
        return Ok(false);
    }
    Ok(Applied::read(api).await?.any_of(&hosts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(hosts: &[(&str, u64)], last_commit: u64) -> Applied {
        Applied {
            hosts: hosts.iter().map(|(h, r)| (h.to_string(), *r)).collect(),
            last_commit,
        }
    }

    fn set(hosts: &[&str]) -> BTreeSet<String> {
        hosts.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn a_change_is_pending_while_a_host_that_needs_it_is_behind() {
        let a = applied(&[("h1", 10), ("h2", 7)], 12);
        assert!(a.behind(&set(&["h1", "h2"]), 8));
        assert!(!a.behind(&set(&["h1", "h2"]), 7));
        // A host that does not balance for the network does not hold it.
        assert!(!a.behind(&set(&["h1"]), 8));
        // No host needs it: realized.
        assert!(!a.behind(&set(&[]), 11));
        // A host with no live controller does not hold it either.
        assert!(!a.behind(&set(&["h3"]), 11));
        // A revision past the last commit is reached at the last commit.
        assert!(!applied(&[("h1", 12)], 12).behind(&set(&["h1"]), 15));
    }

    #[test]
    fn marks_read_active_once_settled_and_json_answers_settle_too() {
        let mut v = serde_json::json!({"listener": {"provisioning_status": "PENDING_CREATE",
            "pools": [{"provisioning_status": "PENDING_UPDATE"}], "name": "PENDING_x"},
            "statuses": {"provisioning_status": "ERROR"}});
        settle_json(&mut v);
        assert_eq!(v["listener"]["provisioning_status"], "ACTIVE");
        assert_eq!(v["listener"]["pools"][0]["provisioning_status"], "ACTIVE");
        assert_eq!(v["listener"]["name"], "PENDING_x");
        assert_eq!(v["statuses"]["provisioning_status"], "ERROR");
    }
}
