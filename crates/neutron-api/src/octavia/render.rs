//! Octavia's JSON for each node of a load balancer's tree, and listings with its
//! filters and `fields`.

use model::LoadBalancer;
use model::Meta;
use model::lb::{HealthMonitor, Listener, Member, Pool};
use serde_json::{Map, Value, json};

fn ids<'a>(it: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(it.map(|id| json!({ "id": id })).collect())
}

fn standard(m: &mut Map<String, Value>, meta: &Meta) {
    m.insert("id".into(), json!(meta.id));
    m.insert("name".into(), json!(meta.name));
    m.insert("project_id".into(), json!(meta.project_id));
    m.insert("tags".into(), json!(meta.tags));
    m.insert("created_at".into(), json!(meta.created_at));
    m.insert(
        "updated_at".into(),
        if meta.updated_at == meta.created_at {
            Value::Null
        } else {
            json!(meta.updated_at)
        },
    );
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub fn loadbalancer(lb: &LoadBalancer) -> Map<String, Value> {
    let mut m = object(json!({
        "description": lb.meta.description,
        "provisioning_status": lb.status.provisioning_status,
        "operating_status": lb.status.operating_status,
        "admin_state_up": lb.admin_state_up,
        "vip_address": lb.vip_address.to_string(),
        "vip_port_id": lb.vip_port_id,
        "vip_subnet_id": lb.vip_subnet_id,
        "vip_network_id": lb.vip_network_id,
        "vip_qos_policy_id": null,
        "vip_sg_ids": [],
        "additional_vips": [],
        "listeners": ids(lb.listeners.iter().map(|l| l.meta.id.as_str())),
        "pools": ids(lb.pools.iter().map(|p| p.meta.id.as_str())),
        "provider": lb.provider,
        "flavor_id": null,
        "availability_zone": null,
        "vip_vnic_type": "normal",
    }));
    standard(&mut m, &lb.meta);
    m
}

pub fn listener(lb: &LoadBalancer, l: &Listener) -> Map<String, Value> {
    let mut m = object(json!({
        "description": l.meta.description,
        "provisioning_status": l.status.provisioning_status,
        "operating_status": l.status.operating_status,
        "admin_state_up": l.admin_state_up,
        "protocol": l.protocol.as_str(),
        "protocol_port": l.protocol_port,
        "connection_limit": l.connection_limit,
        "default_tls_container_ref": null,
        "sni_container_refs": [],
        "default_pool_id": l.default_pool_id,
        "l7policies": [],
        "insert_headers": {},
        "loadbalancers": [{"id": lb.meta.id}],
        "timeout_client_data": 50000,
        "timeout_member_connect": 5000,
        "timeout_member_data": 50000,
        "timeout_tcp_inspect": 0,
        "client_ca_tls_container_ref": null,
        "client_authentication": "NONE",
        "client_crl_container_ref": null,
        "allowed_cidrs": if l.allowed_cidrs.is_empty() {
            Value::Null
        } else {
            json!(l.allowed_cidrs.iter().map(|c| c.to_string()).collect::<Vec<_>>())
        },
        "tls_ciphers": null,
        "tls_versions": null,
        "alpn_protocols": null,
        "hsts_max_age": null,
        "hsts_include_subdomains": false,
        "hsts_preload": false,
    }));
    standard(&mut m, &l.meta);
    m
}

fn persistence(p: &Pool) -> Value {
    match &p.session_persistence {
        None => Value::Null,
        Some(sp) => json!({
            "type": sp.kind,
            "cookie_name": null,
            "persistence_timeout": sp.persistence_timeout,
            "persistence_granularity": sp.persistence_granularity.map(|g| g.to_string()),
        }),
    }
}

pub fn pool(lb: &LoadBalancer, p: &Pool) -> Map<String, Value> {
    let mut m = object(json!({
        "description": p.meta.description,
        "provisioning_status": p.status.provisioning_status,
        "operating_status": p.status.operating_status,
        "admin_state_up": p.admin_state_up,
        "protocol": p.protocol.as_str(),
        "lb_algorithm": p.lb_algorithm.as_str(),
        "session_persistence": persistence(p),
        "loadbalancers": [{"id": lb.meta.id}],
        "listeners": ids(lb.listeners_of(&p.meta.id).map(|l| l.meta.id.as_str())),
        "healthmonitor_id": p.healthmonitor.as_ref().map(|h| h.meta.id.clone()),
        "members": ids(p.members.iter().map(|m| m.meta.id.as_str())),
        "tls_container_ref": null,
        "ca_tls_container_ref": null,
        "crl_container_ref": null,
        "tls_enabled": false,
        "tls_ciphers": null,
        "tls_versions": null,
        "alpn_protocols": null,
    }));
    standard(&mut m, &p.meta);
    m
}

pub fn member(mb: &Member) -> Map<String, Value> {
    let mut m = object(json!({
        "provisioning_status": mb.status.provisioning_status,
        "operating_status": mb.status.operating_status,
        "admin_state_up": mb.admin_state_up,
        "address": mb.address.to_string(),
        "protocol_port": mb.protocol_port,
        "weight": mb.weight,
        "backup": mb.backup,
        "subnet_id": mb.subnet_id,
        "monitor_address": mb.monitor_address.map(|a| a.to_string()),
        "monitor_port": mb.monitor_port,
        "vnic_type": "normal",
    }));
    standard(&mut m, &mb.meta);
    m
}

pub fn healthmonitor(p: &Pool, h: &HealthMonitor) -> Map<String, Value> {
    let mut m = object(json!({
        "provisioning_status": h.status.provisioning_status,
        "operating_status": h.status.operating_status,
        "admin_state_up": h.admin_state_up,
        "type": h.kind,
        "delay": h.delay,
        "timeout": h.timeout,
        "max_retries": h.max_retries,
        "max_retries_down": h.max_retries_down,
        "http_method": h.http_method,
        "url_path": h.url_path,
        "expected_codes": h.expected_codes,
        "pools": [{"id": p.meta.id}],
        "http_version": null,
        "domain_name": null,
    }));
    standard(&mut m, &h.meta);
    m
}

/// `GET /status`: the tree with only ids, names and statuses.
pub fn status_tree(lb: &LoadBalancer) -> Value {
    let pool = |p: &Pool| {
        let mut v = json!({
            "id": p.meta.id, "name": p.meta.name,
            "provisioning_status": p.status.provisioning_status,
            "operating_status": p.status.operating_status,
            "members": p.members.iter().map(|m| json!({
                "id": m.meta.id, "name": m.meta.name, "address": m.address.to_string(),
                "protocol_port": m.protocol_port,
                "provisioning_status": m.status.provisioning_status,
                "operating_status": m.status.operating_status,
            })).collect::<Vec<_>>(),
        });
        if let Some(h) = &p.healthmonitor {
            v["health_monitor"] = json!({
                "id": h.meta.id, "name": h.meta.name, "type": h.kind,
                "provisioning_status": h.status.provisioning_status,
                "operating_status": h.status.operating_status,
            });
        }
        v
    };
    json!({"statuses": {"loadbalancer": {
        "id": lb.meta.id, "name": lb.meta.name,
        "provisioning_status": lb.status.provisioning_status,
        "operating_status": lb.status.operating_status,
        "listeners": lb.listeners.iter().map(|l| json!({
            "id": l.meta.id, "name": l.meta.name,
            "provisioning_status": l.status.provisioning_status,
            "operating_status": l.status.operating_status,
            "pools": lb.pool(l.default_pool_id.as_deref().unwrap_or("")).map(pool).into_iter().collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "pools": lb.pools.iter().map(pool).collect::<Vec<_>>(),
    }}})
}

/// The query's `fields` (repeated or comma separated), if any.
pub fn fields(query: &[(String, String)]) -> Vec<String> {
    query
        .iter()
        .filter(|(k, _)| k == "fields")
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Keeps only `fields` (all when empty).
pub fn select(mut m: Map<String, Value>, fields: &[String]) -> Value {
    if !fields.is_empty() {
        m.retain(|k, _| fields.iter().any(|f| f == k));
    }
    Value::Object(m)
}

/// Query keys that are not filters.
const NOT_FILTERS: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "page_reverse",
];

/// True when `m` matches every filter of the query (Octavia filters on any attribute by
/// equality; tags by `tags`/`tags-any`/`not-tags`/`not-tags-any`).
pub fn matches(m: &Map<String, Value>, query: &[(String, String)]) -> bool {
    let tags: Vec<&str> = m
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    query
        .iter()
        .filter(|(k, _)| !NOT_FILTERS.contains(&k.as_str()))
        .all(|(k, v)| {
            let wanted: Vec<&str> = v.split(',').filter(|s| !s.is_empty()).collect();
            match k.as_str() {
                "tags" => wanted.iter().all(|t| tags.contains(t)),
                "tags-any" => wanted.iter().any(|t| tags.contains(t)),
                "not-tags" => !wanted.iter().all(|t| tags.contains(t)),
                "not-tags-any" => !wanted.iter().any(|t| tags.contains(t)),
                _ => match m.get(k) {
                    Some(Value::String(s)) => s == v,
                    Some(Value::Bool(b)) => v.eq_ignore_ascii_case(&b.to_string()),
                    Some(Value::Number(n)) => n.to_string() == *v,
                    Some(Value::Null) => false,
                    // Unknown attributes match nothing (Octavia answers 400 for some).
                    _ => false,
                },
            }
        })
}
