//! The API server's Prometheus metrics: requests and their latency by route template
//! (`/v2.0/ports/{id}`, so the label set stays bounded), method and status; the NB store's
//! revision; the process's own (memory, CPU). The `prometheus` crate keeps and encodes them.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::Arc;
use std::time::Instant;

pub struct ApiMetrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    revision: IntGauge,
}

impl ApiMetrics {
    /// Every metric, registered (with the process collector) under `dragonflow_server_`.
    pub fn new() -> Result<ApiMetrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("dragonflow_server".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "API requests answered, by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "request_seconds",
                "API request latency, by route and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
            &["route", "method"],
        )?;
        let revision = IntGauge::new("store_revision", "The NB store's revision at the scrape")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(revision.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(ApiMetrics {
            registry,
            requests,
            latency,
            revision,
        })
    }

    /// The text exposition, with the store's revision read now.
    pub async fn render(&self, store: &dyn nbdb::Store) -> String {
        if let Ok(r) = store.revision().await {
            self.revision.set(r as i64);
        }
        let mut out = String::new();
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            tracing::warn!(error = %e, "metrics not encoded");
        }
        out
    }
}

/// Middleware (a route layer, where the matched route is known): counts and times each
/// request.
pub async fn track(
    State(m): State<Arc<ApiMetrics>>,
    route: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().as_str().to_string();
    let route = route.map_or_else(|| "unmatched".to_string(), |r| r.as_str().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    m.latency
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[&route, &method, resp.status().as_str()])
        .inc();
    resp
}
