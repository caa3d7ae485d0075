//! The plugin's Neutron client: a Keystone token (or noauth headers), and the few calls
//! ADD, DEL and CHECK make, with failures already in CNI's terms (an unreachable or failing
//! server is "try again later"; a refusal names what Neutron said).

use super::config::{Api, Auth};
use rscni_plugin::error::Error;
use serde_json::{Value, json};
use std::time::Duration;

/// A plugin-specific CNI error code (the specification leaves 100 and up to plugins):
/// Neutron refused a request the configuration made.
pub const NEUTRON_REFUSED: u32 = 100;

pub struct Client {
    url: String,
    agent: ureq::Agent,
    headers: Vec<(&'static str, String)>,
}

/// What is wrong with the server, not with the request: the runtime may retry.
fn unreachable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::TryAgainLater(format!("{what}: {e}"))
}

impl Client {
    /// A client with its credentials: a Keystone token is taken once per invocation.
    pub fn connect(api: &Api) -> Result<Client, Error> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let headers = match &api.auth {
            Auth::Noauth { project_id, roles } => vec![
                ("X-Project-Id", project_id.clone()),
                ("X-Roles", roles.clone()),
            ],
            Auth::Keystone { .. } => vec![("X-Auth-Token", token(&agent, &api.auth)?)],
        };
        Ok(Client {
            url: api.url.trim_end_matches('/').to_string(),
            agent,
            headers,
        })
    }

    /// One call: the body of a 2xx answer; a 4xx is Neutron's refusal (its message), a
    /// 5xx or no answer is "try again later".
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .header("accept", "application/json");
        for (k, v) in &self.headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .map_err(|e| Error::InvalidNetworkConfig(format!("API url {}: {e}", self.url)))?;
        let what = format!("{method} {path}");
        let mut resp = self.agent.run(req).map_err(|e| unreachable(&what, e))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(v),
            500.. => Err(unreachable(&what, format!("{status} {text}"))),
            _ => Err(Error::Custom(
                NEUTRON_REFUSED,
                format!("Neutron refused {what}"),
                format!(
                    "{status} {}",
                    v["NeutronError"]["message"].as_str().unwrap_or(&text)
                ),
            )),
        }
    }

    /// The one object of `collection` (`networks`, `subnets`, `security-groups`) with this
    /// id, or else this name. None when there is none; an ambiguous name is an error.
    pub fn find(&self, collection: &str, name_or_id: &str) -> Result<Option<Value>, Error> {
        let key = collection.trim_end_matches('s').replace('-', "_");
        let enc = encode(name_or_id);
        match self.call("GET", &format!("/v2.0/{collection}/{enc}"), None) {
            Ok(mut v) => return Ok(Some(v[&key].take())),
            Err(Error::Custom(_, _, d)) if d.starts_with("404") => {}
            Err(e) => return Err(e),
        }
        let v = self.call("GET", &format!("/v2.0/{collection}?name={enc}"), None)?;
        let found = v[format!("{key}s")].as_array().cloned().unwrap_or_default();
        match found.len() {
            0 | 1 => Ok(found.into_iter().next()),
            n => Err(Error::InvalidNetworkConfig(format!(
                "{n} {collection} are named {name_or_id:?}: name one by its id"
            ))),
        }
    }

    /// The container's port, found by its container id.
    pub fn container_port(&self, container_id: &str) -> Result<Option<Value>, Error> {
        let v = self.call(
            "GET",
            &format!(
                "/v2.0/ports?device_owner=compute:container&device_id={}",
                encode(container_id)
            ),
            None,
        )?;
        Ok(v["ports"].as_array().and_then(|p| p.first()).cloned())
    }

    /// The port carrying `tag` (nested mode's container ports are found by theirs).
    pub fn tagged_port(&self, tag: &str) -> Result<Option<Value>, Error> {
        let v = self.call("GET", &format!("/v2.0/ports?tags={}", encode(tag)), None)?;
        Ok(v["ports"].as_array().and_then(|p| p.first()).cloned())
    }

    pub fn port(&self, id: &str) -> Result<Value, Error> {
        Ok(self.call("GET", &format!("/v2.0/ports/{id}"), None)?["port"].take())
    }

    pub fn subnet(&self, id: &str) -> Result<Value, Error> {
        Ok(self.call("GET", &format!("/v2.0/subnets/{id}"), None)?["subnet"].take())
    }

    pub fn create_port(&self, port: Value) -> Result<Value, Error> {
        Ok(self.call("POST", "/v2.0/ports", Some(json!({ "port": port })))?["port"].take())
    }

    /// Deletes a port; one already gone is fine.
    pub fn delete_port(&self, id: &str) -> Result<(), Error> {
        match self.call("DELETE", &format!("/v2.0/ports/{id}"), None) {
            Err(Error::Custom(_, _, d)) if d.starts_with("404") => Ok(()),
            r => r.map(drop),
        }
    }
}

/// A Keystone v3 token by password, scoped to the configured project.
fn token(agent: &ureq::Agent, auth: &Auth) -> Result<String, Error> {
    let Auth::Keystone {
        auth_url,
        username,
        password,
        project_name,
        user_domain_name,
        project_domain_name,
    } = auth
    else {
        unreachable!("only Keystone has tokens");
    };
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": username, "password": password, "domain": {"name": user_domain_name}}}},
        "scope": {"project": {"name": project_name, "domain": {"name": project_domain_name}}}
    }});
    let url = format!("{}/auth/tokens", auth_url.trim_end_matches('/'));
    let resp = agent
        .post(&url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .map_err(|e| unreachable("Keystone", e))?;
    match resp.status().as_u16() {
        201 | 200 => resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|t| t.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| unreachable("Keystone", "no X-Subject-Token in its answer")),
        s @ 500.. => Err(unreachable("Keystone", s)),
        s => Err(Error::InvalidNetworkConfig(format!(
            "Keystone refused the configured credentials ({s})"
        ))),
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(super::encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(super::encode("pods-1.x_~"), "pods-1.x_~");
    }
}
