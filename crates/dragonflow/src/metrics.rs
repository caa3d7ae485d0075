//! The `/metrics` listener of the server and the controller: Prometheus's text format,
//! rendered by the caller at each scrape (the registries are the `prometheus` crate's).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;

/// Binds `addr` and serves `GET /metrics` from `render` in a task of its own; an address
/// that cannot be bound is an error now, not a silent absence later.
pub async fn serve<F, Fut>(addr: SocketAddr, render: F) -> Result<(), String>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let render = render.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render().await,
                )
                    .into_response()
            }
        }),
    );
    tracing::info!(%addr, "metrics served on /metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}
