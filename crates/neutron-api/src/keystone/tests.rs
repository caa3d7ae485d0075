//! The middleware and the sharing against a mock Keystone (an in-process axum server that
//! counts what it is asked); the real Keystone is in dragonflow's `keystone_e2e` tests.

use super::*;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::routing::get;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

#[derive(Default)]
struct Mock {
    issued: AtomicUsize,
    validations: Mutex<HashMap<String, usize>>,
    /// Service tokens the mock no longer accepts.
    revoked: Mutex<Vec<String>>,
}

fn in_an_hour() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600)).to_string()
}

async fn issue(AxState(m): AxState<Arc<Mock>>) -> Response {
    let n = m.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let body = serde_json::json!({"token": {"expires_at": in_an_hour()}});
    let mut r = (StatusCode::CREATED, axum::Json(body)).into_response();
    r.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_str(&format!("svc-{n}")).unwrap(),
    );
    r
}

/// `good-P` is a member of project P, `admin-P` an admin of P; anything else is unknown.
async fn validate(AxState(m): AxState<Arc<Mock>>, h: HeaderMap) -> Response {
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (service, subject) = (get("x-auth-token"), get("x-subject-token"));
    if !service.starts_with("svc-") || lock(&m.revoked).contains(&service) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    *lock(&m.validations).entry(subject.clone()).or_default() += 1;
    // Slow enough that concurrent requests overlap.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (role, project) = match subject.split_once('-') {
        Some(("good", p)) => ("member", p),
        Some(("admin", p)) => ("admin", p),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    axum::Json(serde_json::json!({"token": {
        "expires_at": in_an_hour(), "user": {"id": "u"},
        "project": {"id": project}, "roles": [{"name": role}, {"name": "reader"}],
    }}))
    .into_response()
}

async fn mock() -> (Arc<Mock>, String) {
    let m = Arc::new(Mock::default());
    let app = Router::new()
        .route("/v3/auth/tokens", get(validate).post(issue))
        .with_state(m.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (m, url)
}

fn keystone(url: &str) -> Arc<Keystone> {
    let c = KeystoneConfig {
        auth_url: format!("{url}/v3"),
        www_authenticate_uri: Some("http://keystone.example:5000".into()),
        password: "pw".into(),
        ..KeystoneConfig::default()
    };
    Keystone::new(c.check().unwrap()).unwrap()
}

fn validations(m: &Mock, token: &str) -> usize {
    lock(&m.validations).get(token).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_token_cause_one_validation() {
    let (m, url) = mock().await;
    let ks = keystone(&url);
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let ks = ks.clone();
            tokio::spawn(async move {
                let t = match i % 3 {
                    0 => format!("good-p{}", i % 10),
                    1 => "admin-root".to_string(),
                    _ => "forged".to_string(),
                };
                (t.clone(), ks.check(&t).await)
            })
        })
        .collect();
    for t in tasks {
        let (token, v) = t.await.unwrap();
        match v.unwrap() {
            Verdict::Valid(id) => {
                assert!(token.ends_with(&id.project_id), "{token} {id:?}");
                assert_eq!(id.is_admin(), token.starts_with("admin"));
            }
            Verdict::Invalid(_) => assert_eq!(token, "forged"),
        }
    }
    for t in ["admin-root", "forged", "good-p0", "good-p3"] {
        assert_eq!(validations(&m, t), 1, "{t}");
    }
    // Warm: nothing more reaches Keystone, bad tokens included.
    for t in ["admin-root", "forged", "good-p0"] {
        ks.check(t).await.unwrap();
        assert_eq!(validations(&m, t), 1, "{t}");
    }
    assert_eq!(m.issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rejected_service_token_is_renewed_and_the_validation_retried() {
    let (m, url) = mock().await;
    let ks = keystone(&url);
    assert!(matches!(ks.check("good-a").await, Ok(Verdict::Valid(_))));
    lock(&m.revoked).push("svc-1".into());
    assert!(matches!(ks.check("good-b").await, Ok(Verdict::Valid(_))));
    assert_eq!(m.issued.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_keystone_is_an_error_never_a_verdict() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ks = keystone(&format!("http://127.0.0.1:{port}"));
    assert!(ks.check("good-a").await.is_err());
    // Nothing cached: the next try asks again.
    assert!(ks.check("good-a").await.is_err());
    assert!(lock(&ks.cache).is_empty());
    // Malformed tokens never reach Keystone.
    assert!(matches!(
        ks.check("a b").await,
        Ok(Verdict::Invalid("malformed token"))
    ));
    assert!(matches!(
        ks.check(&"x".repeat(MAX_TOKEN_LEN + 1)).await,
        Ok(Verdict::Invalid(_))
    ));
}

fn api() -> (Arc<Api>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = nbdb::open(&format!(
        "embedded:{}",
        dir.path().join("nb.redb").display()
    ))
    .unwrap();
    let config = crate::ApiConfig {
        auth_strategy: "keystone".into(),
        ..crate::ApiConfig::default()
    };
    (Api::new(store, config.check().unwrap()), dir)
}

async fn call(app: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut r = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let body = if method == "POST" {
        r = r.header("content-type", "application/json");
        Body::from(r#"{"network": {"name": "n"}}"#)
    } else {
        Body::empty()
    };
    app.clone().oneshot(r.body(body).unwrap()).await.unwrap()
}

async fn json(r: Response) -> serde_json::Value {
    let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&b).unwrap()
}

#[tokio::test]
async fn the_middleware_answers_401_503_and_takes_the_project_from_the_token_only() {
    let (m, url) = mock().await;
    let (api, _dir) = api();
    let app = router(api.clone(), keystone(&url));
    // Version discovery is open.
    assert_eq!(call(&app, "GET", "/", &[]).await.status(), 200);
    assert_eq!(call(&app, "GET", "/v2.0", &[]).await.status(), 200);
    // No token, or a bad one: 401 with where to get one.
    for h in [
        &[][..],
        &[("x-auth-token", "forged")],
        &[("x-project-id", "p1"), ("x-roles", "admin")],
    ] {
        let r = call(&app, "GET", "/v2.0/networks", h).await;
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            "Keystone uri=\"http://keystone.example:5000\""
        );
        assert_eq!(json(r).await["error"]["code"], 401);
    }
    // Forged headers beside a member's token change nothing.
    let forged = [
        ("x-auth-token", "good-p1"),
        ("x-project-id", "p2"),
        ("x-roles", "admin"),
    ];
    let r = call(&app, "POST", "/v2.0/networks", &forged).await;
    assert_eq!(r.status(), 201);
    assert_eq!(json(r).await["network"]["project_id"], "p1");
    let r = call(
        &app,
        "POST",
        "/v2.0/networks",
        &[("x-auth-token", "good-p2")],
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = call(&app, "GET", "/v2.0/networks", &forged).await;
    let nets = json(r).await;
    assert_eq!(nets["networks"].as_array().unwrap().len(), 1, "{nets}");
    // The admin of a project sees both.
    let r = call(
        &app,
        "GET",
        "/v2.0/networks",
        &[("x-auth-token", "admin-p3")],
    )
    .await;
    assert_eq!(json(r).await["networks"].as_array().unwrap().len(), 2);
    assert_eq!(validations(&m, "good-p1"), 1);

    // Keystone unreachable: 503 for a token not in the cache.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = router(api, keystone(&format!("http://127.0.0.1:{port}")));
    let r = call(
        &app,
        "GET",
        "/v2.0/networks",
        &[("x-auth-token", "good-p1")],
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(json(r).await["error"]["code"], 503);
}

#[test]
fn settings_are_checked() {
    let ok = KeystoneConfig {
        auth_url: "http://k:5000/v3/".into(),
        password: "pw".into(),
        ..KeystoneConfig::default()
    };
    let s = ok.check().unwrap();
    assert_eq!(s.auth_url, "http://k:5000");
    assert_eq!(s.www_authenticate, "Keystone uri=\"http://k:5000\"");
    assert!(!format!("{ok:?}").contains("pw"));
    for bad in [
        KeystoneConfig {
            auth_url: String::new(),
            ..ok.clone()
        },
        KeystoneConfig {
            auth_url: "k:5000".into(),
            ..ok.clone()
        },
        KeystoneConfig {
            password: String::new(),
            ..ok.clone()
        },
        KeystoneConfig {
            cache_size: 0,
            ..ok.clone()
        },
        KeystoneConfig {
            token_cache_time: 0,
            ..ok.clone()
        },
        KeystoneConfig {
            www_authenticate_uri: Some("http://x\"y".into()),
            ..ok.clone()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}
