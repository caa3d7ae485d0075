//! `dragonflow server`: its flags, and starting the Neutron API (`neutron_api`) on the NB
//! store (`nbdb`) until SIGINT or SIGTERM.

use crate::config;
use std::net::SocketAddr;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (default 127.0.0.1:9696).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// NB store: embedded:PATH (default embedded:/var/lib/dragonflow/nb.redb).
    #[arg(long)]
    db: Option<String>,
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub fn run(file: config::File, args: Args) -> Result<(), String> {
    let Args { listen, db } = args;

    let listen = listen
        .or(file.server.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9696)));
    let db = db
        .or(file.server.db)
        .unwrap_or_else(|| "embedded:/var/lib/dragonflow/nb.redb".into());
    let settings = file
        .neutron
        .check()
        .map_err(|e| format!("config [neutron]: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let store = nbdb::connect(&db)
            .await
            .map_err(|e| format!("cannot open the NB store {db}: {e}"))?;
        let api = neutron_api::Api::new(store.clone(), settings);
        let app = neutron_api::router(api.clone());
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        tracing::info!(%listen, store = %store.describe(), "dragonflow server ready");
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stop_signal().await;
                tracing::info!("shutting down");
                api.stop();
            })
            .await
            .map_err(|e| format!("server failed: {e}"))
    })
}
