//! The demo topology, made through the Neutron REST API like any client would: an external
//! network, two projects (demo-a: two networks behind a router with a gateway, a security
//! group, three VMs, one with a floating IP; demo-b: one network, its own router, one VM).

use super::host::{EXT_CIDR, OUTSIDE_IP, PHYSNET};
use super::state::Vm;
use serde_json::{Value, json};
use std::time::Duration;

/// A Neutron API client acting as admin of `project` (None: the default project).
pub struct Api {
    pub url: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(url: &str) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Api {
            url: url.to_string(),
            agent,
        }
    }

    /// One call; the JSON body on 2xx, else one line with the Neutron error.
    pub fn call(
        &self,
        project: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("content-type", "application/json");
        if let Some(p) = project {
            req = req.header("X-Project-Id", p).header("X-Roles", "admin");
        }
        let req = req
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            let msg = v["NeutronError"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or(text);
            Err(format!("{method} {path}: {status} {msg}"))
        }
    }

    pub fn create(&self, project: Option<&str>, what: &str, attrs: Value) -> Result<Value, String> {
        // The collection: `security_group` is posted to `/v2.0/security-groups`.
        let collection = format!("{}s", what.replace('_', "-"));
        let v = self.call(
            project,
            "POST",
            &format!("/v2.0/{collection}"),
            Some(json!({ what: attrs })),
        )?;
        Ok(v[what].clone())
    }

    pub fn get(&self, what: &str, id: &str) -> Result<Value, String> {
        let v = self.call(None, "GET", &format!("/v2.0/{what}s/{id}"), None)?;
        Ok(v[what].clone())
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// A network with one IPv4 subnet; returns (network id, subnet).
fn network(api: &Api, project: &str, name: &str, cidr: &str) -> Result<(String, Value), String> {
    let net = api.create(Some(project), "network", json!({"name": name}))?;
    let sub = api.create(
        Some(project),
        "subnet",
        json!({"name": format!("{name}-v4"), "network_id": id(&net), "ip_version": 4, "cidr": cidr}),
    )?;
    Ok((id(&net), sub))
}

/// A router on `subnets` with its gateway on the external network.
fn router(
    api: &Api,
    project: &str,
    name: &str,
    ext: &str,
    subnets: &[&Value],
) -> Result<(), String> {
    let r = api.create(
        Some(project),
        "router",
        json!({"name": name, "external_gateway_info": {"network_id": ext}}),
    )?;
    for s in subnets {
        api.call(
            Some(project),
            "PUT",
            &format!("/v2.0/routers/{}/add_router_interface", id(&r)),
            Some(json!({"subnet_id": id(s)})),
        )?;
    }
    Ok(())
}

/// A security group letting ping and ssh (tcp 22) in from anywhere; every other inbound
/// connection is blocked (what the security-group check probes).
fn security_group(api: &Api, project: &str) -> Result<String, String> {
    let g = api.create(
        Some(project),
        "security_group",
        json!({"name": "demo-web", "description": "ping and ssh from anywhere"}),
    )?;
    for (proto, port) in [("icmp", None), ("tcp", Some(22))] {
        let mut rule = json!({"security_group_id": id(&g), "direction": "ingress",
            "ethertype": "IPv4", "protocol": proto, "remote_ip_prefix": "0.0.0.0/0"});
        if let Some(p) = port {
            rule["port_range_min"] = json!(p);
            rule["port_range_max"] = json!(p);
        }
        api.create(Some(project), "security_group_rule", rule)?;
    }
    Ok(id(&g))
}

/// A port for a VM; returns the VM record (not plugged yet).
#[allow(clippy::too_many_arguments)]
fn vm(
    api: &Api,
    project: &str,
    name: &str,
    host: usize,
    net: (&str, &str),
    subnet: &Value,
    sg: &str,
) -> Result<Vm, String> {
    let p = api.create(
        Some(project),
        "port",
        json!({"name": name, "network_id": net.1, "security_groups": [sg]}),
    )?;
    let prefix_len = subnet["cidr"]
        .as_str()
        .and_then(|c| c.split_once('/'))
        .and_then(|(_, l)| l.parse().ok())
        .unwrap_or(24);
    Ok(Vm {
        name: name.into(),
        ns: super::state::lab().ns_name(name),
        host,
        project: project.into(),
        network: net.0.into(),
        port_id: id(&p),
        mac: p["mac_address"].as_str().unwrap_or_default().into(),
        ip: p["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap_or_default()
            .into(),
        prefix_len,
        gateway: subnet["gateway_ip"].as_str().unwrap_or_default().into(),
        floating_ip: None,
        addressing: String::new(),
    })
}

/// Creates the demo topology for `hosts` hosts; returns the VMs in order vm1..vm4.
pub fn create(api: &Api, hosts: usize) -> Result<Vec<Vm>, String> {
    let ext = api.create(
        None,
        "network",
        json!({"name": "public", "router:external": true,
            "provider:network_type": "flat", "provider:physical_network": PHYSNET}),
    )?;
    api.create(
        None,
        "subnet",
        json!({"name": "public-v4", "network_id": id(&ext), "ip_version": 4,
            "cidr": EXT_CIDR, "gateway_ip": OUTSIDE_IP, "enable_dhcp": false,
            "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.99"}]}),
    )?;
    let ext = id(&ext);

    let a = "demo-a";
    let (a1, s1) = network(api, a, "net-a1", "10.1.1.0/24")?;
    let (a2, s2) = network(api, a, "net-a2", "10.1.2.0/24")?;
    router(api, a, "router-a", &ext, &[&s1, &s2])?;
    let sg_a = security_group(api, a)?;
    let b = "demo-b";
    let (b1, s3) = network(api, b, "net-b1", "10.2.1.0/24")?;
    router(api, b, "router-b", &ext, &[&s3])?;
    let sg_b = security_group(api, b)?;

    let mut vms = vec![
        vm(api, a, "vm1", 0, ("net-a1", &a1), &s1, &sg_a)?,
        vm(api, a, "vm2", 1 % hosts, ("net-a1", &a1), &s1, &sg_a)?,
        vm(api, a, "vm3", 2 % hosts, ("net-a2", &a2), &s2, &sg_a)?,
        vm(api, b, "vm4", 3 % hosts, ("net-b1", &b1), &s3, &sg_b)?,
    ];
    let fip = api.create(
        Some(a),
        "floatingip",
        json!({"floating_network_id": ext, "port_id": vms[0].port_id}),
    )?;
    vms[0].floating_ip = fip["floating_ip_address"].as_str().map(str::to_string);
    Ok(vms)
}
