//! The in-process harness the API's integration tests share: the server's router on a
//! fresh embedded store, and calls made as a project with its roles (noauth headers).

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::{Api, ApiConfig, router};
use serde_json::Value;
use tower::ServiceExt;

/// The caller: its project and roles (`x-project-id`, `x-roles`).
pub type Who = (&'static str, &'static str);
pub const OWNER: Who = ("p1", "member");
pub const OTHER: Who = ("p2", "member");
pub const READER: Who = ("p1", "reader");
pub const ADMIN: Who = ("admin", "admin");

/// A server on its own embedded store, with Neutron's default configuration.
pub struct Cloud {
    pub app: axum::Router,
    /// The Octavia routes on the same server.
    pub octavia: axum::Router,
    /// The NB routes (`/nb/v1`), and the secret their tokens are made with.
    pub nb: axum::Router,
    pub nb_auth: neutron_api::nb_auth::NbAuth,
    pub api: std::sync::Arc<Api>,
    _dir: tempfile::TempDir,
}

impl Cloud {
    pub fn new() -> Cloud {
        Cloud::with_config(ApiConfig::default())
    }

    /// A cloud whose API runs with `config` (checked).
    pub fn with_config(config: ApiConfig) -> Cloud {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nbdb::open(&format!(
            "embedded:{}",
            dir.path().join("nb.redb").display()
        ))
        .expect("store");
        let config = config.check().expect("config");
        let api = Api::new(store, config);
        let nb_auth =
            neutron_api::nb_auth::NbAuth::new(b"the operator's secret, 32 bytes!").expect("secret");
        Cloud {
            app: router(api.clone()),
            octavia: neutron_api::octavia::router(api.clone()),
            nb: neutron_api::nb_router(api.clone(), nb_auth.clone()),
            api,
            nb_auth,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        who: Who,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        call(&self.app, who, method, uri, body).await
    }

    /// One request with a JSON body (`call` with `Some(body)`).
    pub async fn send(&self, who: Who, method: &str, uri: &str, body: Value) -> (u16, Value) {
        self.call(who, method, uri, Some(body)).await
    }

    /// One request to the Octavia API.
    pub async fn lb(&self, who: Who, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.octavia, who, method, uri, body).await
    }

    /// One request to the NB routes as `who` (a host, the admin, the reader).
    pub async fn nb(
        &self,
        who: neutron_api::nb_auth::Principal,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let r = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header(
                "authorization",
                format!("Bearer {}", self.nb_auth.token(&who)),
            );
        let req = r
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        let resp = self.nb.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// POSTs `body` to `collection` (201 expected) and returns the object.
    pub async fn made(&self, who: Who, collection: &str, body: Value) -> Value {
        let (status, v) = self
            .call(who, "POST", &format!("/v2.0/{collection}"), Some(body))
            .await;
        assert_eq!(status, 201, "{collection}: {v}");
        v.as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .expect("object")
    }

    /// POSTs `body` to the Octavia `path` as the owner (201 expected) and returns the
    /// object.
    pub async fn lb_made(&self, path: &str, body: Value) -> Value {
        let (st, v) = self.lb(OWNER, "POST", path, Some(body)).await;
        assert_eq!(st, 201, "{path}: {v}");
        v.as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .expect("object")
    }

    /// The owner's network `lbnet` with its subnet 10.9.0.0/24: (network, subnet).
    pub async fn lb_net(&self) -> (Value, Value) {
        let n = self
            .made(
                OWNER,
                "networks",
                serde_json::json!({"network": {"name": "lbnet"}}),
            )
            .await;
        let s = self
            .made(
                OWNER,
                "subnets",
                serde_json::json!({"subnet": {"network_id": n["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}),
            )
            .await;
        (n, s)
    }
}

/// An object's id.
pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// One request to `app` as `who`: the status and the JSON answer (null if none).
pub async fn call(
    app: &axum::Router,
    who: Who,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("x-project-id", who.0)
        .header("x-roles", who.1)
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A Neutron error's message.
pub fn message(v: &Value) -> &str {
    v["NeutronError"]["message"].as_str().unwrap_or_default()
}

/// A Neutron error's type.
pub fn kind(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or_default()
}
