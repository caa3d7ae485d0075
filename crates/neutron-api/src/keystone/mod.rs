//! `auth_strategy = keystone`: every request but version discovery carries an
//! `X-Auth-Token` that Keystone validates, the way keystonemiddleware does it
//! (`GET /v3/auth/tokens` with our own service token and `X-Subject-Token`).
//!
//! The decisions and the cache are pure ([`cache`]); this module does the HTTP (reqwest,
//! already in the workspace through `nbdb`) and the sharing: one service token, renewed
//! three quarters into its life; verdicts cached by token hash for
//! min(`token_cache_time`, the token's expiry), at most `cache_size` of them; and one
//! validation in flight per token however many requests wait on it.
//!
//! A missing or bad token gets 401 with `WWW-Authenticate: Keystone uri="…"`; a Keystone
//! that cannot answer gets 503, never a pass. Client `X-Project-Id`/`X-Roles` are dropped.

pub mod cache;

use crate::Api;
use crate::context::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use cache::{Judgement, Key, TokenCache, Verdict};
use serde::Deserialize;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// The `[keystone_authtoken]` table of the config file (keystonemiddleware's names).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeystoneConfig {
    /// Keystone's public URL, sent to clients in `WWW-Authenticate` (default: auth_url).
    pub www_authenticate_uri: Option<String>,
    /// Where this server reaches Keystone (`http://keystone:5000`; a trailing `/v3` is
    /// accepted).
    pub auth_url: String,
    /// The service user this server validates tokens as (needs the `service` or `admin`
    /// role), its password and project.
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    /// Most tokens whose verdict is kept.
    pub cache_size: usize,
    /// Seconds a verdict is kept (never past the token's expiry).
    pub token_cache_time: u64,
    /// Seconds to wait for Keystone (connecting and answering) before answering 503.
    pub http_timeout: u64,
}

impl Default for KeystoneConfig {
    fn default() -> KeystoneConfig {
        KeystoneConfig {
            www_authenticate_uri: None,
            auth_url: String::new(),
            username: "neutron".into(),
            password: String::new(),
            project_name: "service".into(),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
            cache_size: 10_000,
            token_cache_time: 300,
            http_timeout: 5,
        }
    }
}

// The password stays out of logs and error messages.
impl std::fmt::Debug for KeystoneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneConfig")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("project_name", &self.project_name)
            .field("cache_size", &self.cache_size)
            .field("token_cache_time", &self.token_cache_time)
            .finish_non_exhaustive()
    }
}

fn base_url(url: &str, key: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    let u = u.strip_suffix("/v3").unwrap_or(u).trim_end_matches('/');
    if u.starts_with("https://") {
        return Err(format!(
            "{key} {url:?}: https is not built in (reqwest without TLS); put Keystone behind a local http endpoint"
        ));
    }
    if !u.starts_with("http://") || u.len() <= "http://".len() {
        return Err(format!("{key} {url:?} must be an http:// URL"));
    }
    Ok(u.to_string())
}

/// The checked form of [`KeystoneConfig`].
#[derive(Clone, Debug)]
pub struct KeystoneSettings {
    /// Keystone's base URL, without `/v3`.
    pub auth_url: String,
    pub www_authenticate: HeaderValue,
    config: KeystoneConfig,
    pub cache_size: NonZeroUsize,
    pub cache_ttl: Duration,
    pub timeout: Duration,
}

impl KeystoneConfig {
    pub fn check(&self) -> Result<KeystoneSettings, String> {
        if self.auth_url.trim().is_empty() {
            return Err("auth_url is required with auth_strategy = keystone".into());
        }
        let auth_url = base_url(&self.auth_url, "auth_url")?;
        let public = match &self.www_authenticate_uri {
            Some(u) => u.trim().trim_end_matches('/').to_string(),
            None => auth_url.clone(),
        };
        let www_authenticate = HeaderValue::from_str(&format!("Keystone uri=\"{public}\""))
            .ok()
            .filter(|_| !public.contains('"'))
            .ok_or_else(|| format!("www_authenticate_uri {public:?} is not a URL"))?;
        for (k, v) in [
            ("username", &self.username),
            ("password", &self.password),
            ("project_name", &self.project_name),
            ("user_domain_name", &self.user_domain_name),
            ("project_domain_name", &self.project_domain_name),
        ] {
            if v.is_empty() {
                return Err(format!("{k} is required with auth_strategy = keystone"));
            }
        }
        let cache_size =
            NonZeroUsize::new(self.cache_size).ok_or("cache_size must be at least 1")?;
        if self.token_cache_time == 0 || self.http_timeout == 0 {
            return Err("token_cache_time and http_timeout must be at least 1 second".into());
        }
        Ok(KeystoneSettings {
            auth_url,
            www_authenticate,
            config: self.clone(),
            cache_size,
            cache_ttl: Duration::from_secs(self.token_cache_time),
            timeout: Duration::from_secs(self.http_timeout),
        })
    }
}

struct ServiceToken {
    token: String,
    renew_at: Instant,
}

type Flight = Arc<tokio::sync::OnceCell<Result<Verdict, String>>>;

/// Validates tokens against Keystone; shared by every request.
pub struct Keystone {
    settings: KeystoneSettings,
    http: reqwest::Client,
    service: tokio::sync::Mutex<Option<ServiceToken>>,
    cache: Mutex<TokenCache>,
    /// Validations under way, by token: later requests for the same token wait on them.
    inflight: Mutex<HashMap<Key, Flight>>,
}

/// A panic elsewhere while holding the lock leaves the data usable (a cache).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Longest token looked at: Fernet tokens are ~200 bytes, JWS a few hundred.
const MAX_TOKEN_LEN: usize = 8192;

impl Keystone {
    pub fn new(settings: KeystoneSettings) -> Result<Arc<Keystone>, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .build()
            .map_err(|e| format!("cannot make the Keystone HTTP client: {e}"))?;
        Ok(Arc::new(Keystone {
            cache: Mutex::new(TokenCache::new(settings.cache_size)),
            settings,
            http,
            service: tokio::sync::Mutex::new(None),
            inflight: Mutex::new(HashMap::new()),
        }))
    }

    pub fn settings(&self) -> &KeystoneSettings {
        &self.settings
    }

    /// Gets the service token now, so the first request does not wait for it; a Keystone
    /// that is not up yet is only logged (requests get 503 until it is).
    pub async fn warm_up(&self) {
        match self.service_token(None).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "no service token from Keystone yet"),
        }
    }

    /// The verdict on `token`: from the cache, or from Keystone (once, however many ask
    /// at the same time). Err when Keystone cannot answer.
    pub async fn check(&self, token: &str) -> Result<Verdict, String> {
        if token.len() > MAX_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Ok(Verdict::Invalid("malformed token"));
        }
        let key = cache::key(token);
        if let Some(v) = lock(&self.cache).get(&key, Instant::now()) {
            return Ok(v);
        }
        let flight = lock(&self.inflight).entry(key).or_default().clone();
        flight
            .get_or_init(|| async {
                let r = self.validate(token).await;
                if let Ok((v, expires)) = &r
                    && let Some(until) = cache::cache_until(
                        Instant::now(),
                        SystemTime::now(),
                        self.settings.cache_ttl,
                        *expires,
                    )
                {
                    lock(&self.cache).insert(key, v.clone(), until);
                }
                // Cached first, then out of flight: a later request finds one or the other.
                lock(&self.inflight).remove(&key);
                r.map(|(v, _)| v)
            })
            .await
            .clone()
    }

    /// One validation, with one retry on a fresh service token if Keystone refused ours.
    async fn validate(&self, token: &str) -> Result<(Verdict, Option<SystemTime>), String> {
        let mut rejected = None;
        for _ in 0..2 {
            let service = self.service_token(rejected.as_deref()).await?;
            let resp = self
                .http
                .get(format!(
                    "{}/v3/auth/tokens?nocatalog",
                    self.settings.auth_url
                ))
                .header("x-auth-token", &service)
                .header("x-subject-token", token)
                .send()
                .await
                .map_err(|e| format!("Keystone unreachable: {e}"))?;
            let status = resp.status().as_u16();
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("Keystone's answer was cut: {e}"))?;
            tracing::debug!(status, "Keystone validated a token");
            match cache::judge(status, &body, SystemTime::now()) {
                Judgement::Verdict(v, expires) => return Ok((v, expires)),
                Judgement::Unavailable(why) => return Err(why),
                Judgement::ServiceTokenRejected => rejected = Some(service),
            }
        }
        Err("Keystone refused a fresh service token".into())
    }

    /// The service token: the current one, or a new one when it is due for renewal or is
    /// the one Keystone just `rejected`.
    /// The server's own token (renewed when due, or when `rejected` is the one we have):
    /// also what this server shows Nova.
    pub async fn service_token(&self, rejected: Option<&str>) -> Result<String, String> {
        let mut current = self.service.lock().await;
        if let Some(t) = current.as_ref()
            && Instant::now() < t.renew_at
            && rejected != Some(t.token.as_str())
        {
            return Ok(t.token.clone());
        }
        let fresh = self.issue_service_token().await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok(token)
    }

    /// `POST /v3/auth/tokens` with the service user's password, scoped to its project.
    async fn issue_service_token(&self) -> Result<ServiceToken, String> {
        let c = &self.settings.config;
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username, "domain": {"name": c.user_domain_name}, "password": c.password,
            }}},
            "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain_name}}},
        }});
        let resp = self
            .http
            .post(format!(
                "{}/v3/auth/tokens?nocatalog",
                self.settings.auth_url
            ))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("Keystone unreachable: {e}"))?;
        let status = resp.status().as_u16();
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("Keystone's answer was cut: {e}"))?;
        if status != 201 {
            return Err(format!(
                "Keystone refused the service user {:?} a token ({status})",
                c.username
            ));
        }
        let (now, wall) = (Instant::now(), SystemTime::now());
        let expires = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v["token"]["expires_at"]
                    .as_str()
                    .and_then(cache::parse_time)
            });
        let (Some(token), Some(expires)) = (token, expires) else {
            return Err("Keystone's service token answer has no token or expiry".into());
        };
        let renew_at = cache::renew_at(now, wall, expires);
        tracing::info!(
            user = %c.username,
            renew_in_s = renew_at.saturating_duration_since(now).as_secs(),
            "service token issued by Keystone"
        );
        Ok(ServiceToken { token, renew_at })
    }

    /// 401 as keystonemiddleware sends it.
    fn unauthorized(&self) -> Response {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The request you have made requires authentication.",
        );
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, self.settings.www_authenticate.clone());
        r
    }
}

fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body =
        serde_json::json!({"error": {"code": status.as_u16(), "title": title, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// Version discovery, open to anyone as in Neutron: `GET /` and `GET /v2.0`.
fn is_discovery(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && matches!(path, "/" | "/v2.0" | "/v2.0/")
}

/// Identity headers only Keystone may set: whatever a client sends under these names is
/// dropped before any handler sees the request.
const FORGEABLE: &[&str] = &[
    "x-project-id",
    "x-tenant-id",
    "x-tenant",
    "x-roles",
    "x-role",
    "x-user-id",
    "x-identity-status",
    "x-service-roles",
];

/// The middleware: the request's [`Context`] comes from its validated token only.
pub async fn authenticate(
    State(ks): State<Arc<Keystone>>,
    mut req: Request,
    next: Next,
) -> Response {
    for h in FORGEABLE {
        req.headers_mut().remove(*h);
    }
    if is_discovery(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let Some(token) = token else {
        return ks.unauthorized();
    };
    match ks.check(&token).await {
        Ok(Verdict::Valid(id)) => {
            req.extensions_mut().insert(Context {
                project_id: id.project_id.clone(),
                is_admin: id.is_admin(),
                roles: id.roles.clone(),
            });
            next.run(req).await
        }
        Ok(Verdict::Invalid(why)) => {
            tracing::debug!(why, "token refused");
            ks.unauthorized()
        }
        Err(why) => {
            tracing::warn!(error = %why, "cannot validate a token: answering 503");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "The server is currently unavailable. Please try again at a later time.",
            )
        }
    }
}

/// The Neutron routes ([`crate::router`]) behind Keystone.
pub fn router(api: Arc<Api>, ks: Arc<Keystone>) -> Router {
    crate::router(api).layer(from_fn_with_state(ks, authenticate))
}

/// The Octavia routes ([`crate::octavia::router`]) behind Keystone.
pub fn octavia_router(api: Arc<Api>, ks: Arc<Keystone>) -> Router {
    crate::octavia::router(api).layer(from_fn_with_state(ks, authenticate))
}

#[cfg(test)]
mod tests;
