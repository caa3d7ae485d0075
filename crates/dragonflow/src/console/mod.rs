//! The web console, served by `dragonflow server` under `/console` on the Neutron API's
//! listener: the topology (hosts with their ports and realized state, networks, routers),
//! kept live by following the store's revisions, and a trace form that draws a packet's
//! path across hosts and tables with the owning Neutron objects and the verdict.
//!
//! It shows every project, so it needs an admin: under Keystone a token with the admin
//! role (the `X-Auth-Token` header, or the form at `/console/login`, which keeps it in an
//! HttpOnly cookie); under noauth only a server run with `noauth_default_admin` (what the
//! sandbox does) or a request with `X-Roles: admin`, as the API itself would take it.

mod page;
mod topology;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use neutron_api::keystone::{Keystone, cache::Verdict};
use page::TraceForm;
use std::sync::Arc;
use std::time::Duration;

/// The cookie that keeps a signed-in token.
const COOKIE: &str = "df_console_token";
/// How long `/console/wait` holds a request when nothing changes.
const WAIT: Duration = Duration::from_secs(25);

#[derive(Clone)]
pub struct Console {
    store: Arc<dyn nbdb::Store>,
    keystone: Option<Arc<Keystone>>,
    /// noauth with `noauth_default_admin`: anyone who reaches the listener is admin.
    open: bool,
    /// One trace at a time: each compiles every host's pipeline.
    tracing: Arc<tokio::sync::Semaphore>,
}

/// The console's routes, to merge into the Neutron API's router.
pub fn router(
    store: Arc<dyn nbdb::Store>,
    keystone: Option<Arc<Keystone>>,
    noauth_default_admin: bool,
) -> Router {
    let c = Console {
        store,
        keystone,
        open: noauth_default_admin,
        tracing: Arc::new(tokio::sync::Semaphore::new(1)),
    };
    Router::new()
        .route("/console", get(index))
        .route("/console/topology", get(topology_fragment))
        .route("/console/wait", get(wait))
        .route("/console/trace", get(trace))
        .route("/console/login", post(login))
        .with_state(c)
}

fn cookie_token(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn refused(status: StatusCode, body: String) -> Response {
    (status, Html(page::page("Dragonflow console", &body))).into_response()
}

impl Console {
    /// Ok when the request speaks for an admin; else the page to show instead.
    async fn gate(&self, h: &HeaderMap) -> Result<(), Response> {
        let Some(ks) = &self.keystone else {
            let roles = h.get("x-roles").and_then(|v| v.to_str().ok()).unwrap_or("");
            if self.open || roles.split(',').any(|r| r.trim() == "admin") {
                return Ok(());
            }
            return Err(refused(
                StatusCode::FORBIDDEN,
                page::error(
                    "The console shows every project and needs an admin: under noauth, run the server with noauth_default_admin (single-operator clouds, the sandbox) or use Keystone.",
                ),
            ));
        };
        let token = h
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| cookie_token(h));
        let Some(token) = token else {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                page::login("Not signed in."),
            ));
        };
        match ks.check(&token).await {
            Ok(Verdict::Valid(id)) if id.is_admin() => Ok(()),
            Ok(Verdict::Valid(_)) => Err(refused(
                StatusCode::FORBIDDEN,
                page::login("This token has no admin role."),
            )),
            Ok(Verdict::Invalid(why)) => Err(refused(
                StatusCode::UNAUTHORIZED,
                page::login(&format!("The token was refused: {why}.")),
            )),
            Err(e) => Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                page::error(&format!("Keystone cannot be asked: {e}")),
            )),
        }
    }

    async fn topology(&self) -> Result<topology::Topology, String> {
        let snap = self.store.snapshot().await.map_err(|e| e.to_string())?;
        let hosts = crate::db::realized_in(self.store.as_ref()).await?;
        let revision = self.store.last_commit().await.map_err(|e| e.to_string())?;
        let mut view = controller::view::View::new("");
        view.load(&snap);
        Ok(topology::topology(&view, revision, &hosts))
    }

    /// The topology block, or the error in its place.
    async fn topology_html(&self) -> String {
        match self.topology().await {
            Ok(t) => page::topology(&t),
            Err(e) => page::error(&format!("cannot read the store: {e}")),
        }
    }
}

async fn index(State(c): State<Console>, h: HeaderMap) -> Response {
    if let Err(r) = c.gate(&h).await {
        return r;
    }
    let body = format!(
        "{}<div id=\"topology\">{}</div>",
        page::trace_form(&TraceForm::default()),
        c.topology_html().await
    );
    Html(page::page("Dragonflow console", &body)).into_response()
}

async fn topology_fragment(State(c): State<Console>, h: HeaderMap) -> Response {
    if let Err(r) = c.gate(&h).await {
        return r;
    }
    Html(c.topology_html().await).into_response()
}

#[derive(serde::Deserialize)]
struct After {
    #[serde(default)]
    after: u64,
}

/// Answers with the store's revision once it is past `after`, or after [`WAIT`].
async fn wait(State(c): State<Console>, h: HeaderMap, Query(q): Query<After>) -> Response {
    if let Err(r) = c.gate(&h).await {
        return r;
    }
    let mut rx = c.store.subscribe();
    let _ = tokio::time::timeout(WAIT, rx.wait_for(|r| *r > q.after)).await;
    let revision = *rx.borrow();
    axum::Json(serde_json::json!({ "revision": revision })).into_response()
}

async fn trace(State(c): State<Console>, h: HeaderMap, Query(f): Query<TraceForm>) -> Response {
    if let Err(r) = c.gate(&h).await {
        return r;
    }
    let result = run_trace(&c, &f).await;
    let shown = match &result {
        Ok(r) => page::trace(r),
        Err(e) => page::error(e),
    };
    tracing::info!(from = %f.from, to = %f.to, outcome = result.as_ref().map_or("error", |r| r.outcome), "console trace");
    let body = format!(
        "{}{shown}<div id=\"topology\">{}</div>",
        page::trace_form(&f),
        c.topology_html().await
    );
    let status = if result.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, Html(page::page("Dragonflow console: trace", &body))).into_response()
}

async fn run_trace(c: &Console, f: &TraceForm) -> Result<crate::trace::explain::Report, String> {
    use crate::trace::{Proto, State as Conn};
    if f.from.trim().is_empty() || f.to.trim().is_empty() {
        return Err(
            "Give the sender (a port's name, id or address) and the destination (IP or IP:port)."
                .into(),
        );
    }
    let proto = match f.proto.as_str() {
        "" => None,
        "tcp" => Some(Proto::Tcp),
        "udp" => Some(Proto::Udp),
        "icmp" => Some(Proto::Icmp),
        other => return Err(format!("unknown protocol {other:?}: tcp, udp or icmp")),
    };
    let state = match f.state.as_str() {
        "" | "new" => Conn::New,
        "established" => Conn::Established,
        other => return Err(format!("unknown state {other:?}: new or established")),
    };
    let _one = c.tracing.acquire().await.map_err(|e| e.to_string())?;
    let snap = c.store.snapshot().await.map_err(|e| e.to_string())?;
    let (from, to) = (f.from.trim().to_string(), f.to.trim().to_string());
    tokio::task::spawn_blocking(move || crate::trace::trace(&snap, &from, &to, proto, state))
        .await
        .map_err(|e| format!("the trace failed: {e}"))?
}

#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

/// Keeps a token that passes the gate in an HttpOnly cookie for the console's paths.
async fn login(State(c): State<Console>, Form(l): Form<Login>) -> Response {
    let token = l.token.trim().to_string();
    let mut h = HeaderMap::new();
    if let Ok(v) = token.parse() {
        h.insert("x-auth-token", v);
    }
    if let Err(r) = c.gate(&h).await {
        return r;
    }
    let cookie = format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict");
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/console".to_string()),
            (header::SET_COOKIE, cookie),
        ],
    )
        .into_response()
}
