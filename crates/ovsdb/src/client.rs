//! The client handle: a lazily (re)connected connection for requests and transactions, and
//! the factory of [`Monitor`]s (each on its own connection, so a slow consumer of updates
//! never delays a transaction reply and each can resync independently).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::monitor::{Backoff, Monitor, MonitorSpec};
use crate::ops::{OpResult, Operation, decode_results, transact_params};
use crate::rpc::{self, RpcHandle, RpcOptions, Target};
use crate::schema::Schema;

/// The database of Open vSwitch.
pub const OPEN_VSWITCH: &str = "Open_vSwitch";

/// Client tuning.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Database used by [`Client::transact`] and the schema helpers.
    pub db: String,
    /// Connection options (inactivity probe).
    pub rpc: RpcOptions,
    /// How long a request keeps trying to (re)connect before failing.
    pub connect_timeout: Duration,
    /// Reconnection delays (also used by monitors).
    pub backoff: Backoff,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            db: OPEN_VSWITCH.to_string(),
            rpc: RpcOptions::default(),
            connect_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
        }
    }
}

#[derive(Debug)]
struct Conn {
    rpc: RpcHandle,
    schema: Arc<Schema>,
}

#[derive(Debug)]
struct Inner {
    target: Target,
    opts: ClientOptions,
    conn: Mutex<Option<Conn>>,
}

/// A handle to one ovsdb-server (cheap to clone).
///
/// Requests reconnect when the connection was lost. A request in flight when the connection
/// drops fails with [`Error::Disconnected`] and is not retried, since a transaction may or may
/// not have committed; the idempotent helpers of [`crate::vswitch`] can simply be called again.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// A client for `target` (`unix:PATH` or `tcp:IP:PORT`) with default options; it connects
    /// on first use.
    pub fn new(target: &str) -> Result<Client> {
        Client::with_options(target, ClientOptions::default())
    }

    /// A client with explicit options.
    pub fn with_options(target: &str, opts: ClientOptions) -> Result<Client> {
        Ok(Client {
            inner: Arc::new(Inner {
                target: Target::parse(target)?,
                opts,
                conn: Mutex::new(None),
            }),
        })
    }

    /// A client that has connected and read the schema once.
    pub async fn connect(target: &str) -> Result<Client> {
        let c = Client::new(target)?;
        c.schema().await?;
        Ok(c)
    }

    /// The server address.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// The database name.
    pub fn db(&self) -> &str {
        &self.inner.opts.db
    }

    async fn conn(&self) -> Result<(RpcHandle, Arc<Schema>)> {
        let mut guard = self.inner.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && !c.rpc.is_closed()
        {
            return Ok((c.rpc.clone(), c.schema.clone()));
        }
        *guard = None;
        let deadline = Instant::now() + self.inner.opts.connect_timeout;
        let mut delay = self.inner.opts.backoff.initial;
        loop {
            match self.open().await {
                Ok(c) => {
                    let out = (c.rpc.clone(), c.schema.clone());
                    *guard = Some(c);
                    return Ok(out);
                }
                Err(e @ (Error::Io(_) | Error::Disconnected)) => {
                    if Instant::now() + delay > deadline {
                        return Err(e);
                    }
                    tracing::debug!("connecting to {}: {e}; retrying", self.inner.target);
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2).min(self.inner.opts.backoff.max);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn open(&self) -> Result<Conn> {
        // Notifications are not used on this connection (monitors have their own).
        let (rpc, _notes) = rpc::connect(&self.inner.target, &self.inner.opts.rpc).await?;
        let schema = rpc.call("get_schema", json!([self.inner.opts.db])).await?;
        Ok(Conn {
            rpc,
            schema: Arc::new(Schema::from_json(&schema)?),
        })
    }

    /// The database schema (read at connect time).
    pub async fn schema(&self) -> Result<Arc<Schema>> {
        Ok(self.conn().await?.1)
    }

    /// Sends a raw JSON-RPC request and returns its `result`.
    pub async fn call(&self, method: &str, params: Json) -> Result<Json> {
        self.conn().await?.0.call(method, params).await
    }

    /// Runs a transaction; fails with [`Error::Transaction`] when an operation or the commit
    /// fails (nothing is then applied).
    pub async fn transact(&self, ops: &[Operation]) -> Result<Vec<OpResult>> {
        let params = transact_params(self.db(), ops);
        tracing::trace!("transact {params}");
        let result = self.call("transact", params).await?;
        decode_results(ops.len(), &result)
    }

    /// Starts a [`Monitor`] on its own connection (needs a tokio runtime).
    pub fn monitor(&self, spec: MonitorSpec) -> Monitor {
        Monitor::start(
            self.inner.target.clone(),
            self.inner.opts.rpc.clone(),
            self.inner.opts.backoff.clone(),
            spec,
        )
    }
}
