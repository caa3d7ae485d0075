//! `dragonflow db`: inspect the NB store. Reads through a server's `/nb/v1` endpoints
//! (`http://…` of its NB listener, with an NB token: the only way into an embedded store
//! that a running server holds) or directly from a store URL (`embedded:PATH` of a
//! stopped server, etcd, Redis).

pub(crate) mod wait;

use clap::Subcommand;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

#[derive(Subcommand)]
pub enum DbCommand {
    /// List the tables with their object counts.
    Tables,
    /// List the objects of a table.
    Ls { table: String },
    /// Show one object.
    Get { table: String, id: String },
    /// Print every object of every table.
    Dump,
    /// Print the store's current revision: what `db wait` waits for after a change.
    Revision,
    /// Wait until the hosts' controllers have applied a revision (their switches reflect
    /// every change up to it); fail naming the hosts behind on timeout.
    Wait {
        #[arg(long)]
        revision: u64,
        /// Hosts (chassis names), comma-separated; default: every live controller.
        #[arg(long, value_delimiter = ',')]
        hosts: Option<Vec<String>>,
        /// Seconds to wait at most.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Follow the change stream (from a revision; default: now).
    Watch {
        #[arg(long)]
        from: Option<u64>,
        /// Only these topics (projects), comma-separated.
        #[arg(long)]
        topics: Option<String>,
    },
}

/// One object as the store holds it.
struct Obj {
    table: String,
    id: String,
    revision: u64,
    topic: Option<String>,
    value: Value,
}

fn obj_from_json(v: &Value) -> Obj {
    Obj {
        table: v["table"].as_str().unwrap_or_default().to_string(),
        id: v["id"].as_str().unwrap_or_default().to_string(),
        revision: v["revision"].as_u64().unwrap_or_default(),
        topic: v["topic"].as_str().map(str::to_string),
        value: v["value"].clone(),
    }
}

fn obj_json(o: &Obj) -> Value {
    json!({"table": o.table, "id": o.id, "revision": o.revision, "topic": o.topic, "value": o.value})
}

enum Source {
    /// A server's NB listener and the token to show it.
    Http(String, Option<String>),
    Store(std::sync::Arc<dyn nbdb::Store>, tokio::runtime::Runtime),
}

impl Source {
    fn open(url: &str, token: Option<&str>) -> Result<Source, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Source::Http(
                url.trim_end_matches('/').to_string(),
                token.map(str::to_string),
            ));
        }
        // etcd and Redis clients keep background tasks: a multi-thread runtime runs them.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let store = rt.block_on(nbdb::connect(url)).map_err(|e| {
            format!(
                "cannot open {}: {e} (is a server holding it? use --nb http://HOST:9697)",
                nbdb::url::redacted(url)
            )
        })?;
        Ok(Source::Store(store, rt))
    }

    fn snapshot(&self) -> Result<(u64, Vec<Obj>), String> {
        match self {
            Source::Http(base, token) => {
                let url = format!("{base}/nb/v1/snapshot");
                let mut resp = get(&url, token.as_deref())?;
                let v: Value = resp
                    .body_mut()
                    .read_json()
                    .map_err(|e| format!("{url}: {e}"))?;
                let records = v["records"]
                    .as_array()
                    .map(|a| a.iter().map(obj_from_json).collect())
                    .unwrap_or_default();
                Ok((v["revision"].as_u64().unwrap_or_default(), records))
            }
            Source::Store(store, rt) => {
                let snap = rt.block_on(store.snapshot()).map_err(|e| e.to_string())?;
                let records = snap
                    .records
                    .into_iter()
                    .map(|r| Obj {
                        value: serde_json::from_slice(&r.value).unwrap_or(Value::Null),
                        table: r.table,
                        id: r.id,
                        revision: r.revision,
                        topic: r.topic,
                    })
                    .collect();
                Ok((snap.revision, records))
            }
        }
    }

    /// Calls `each` for every change after `after` until the stream ends or `each` says stop.
    fn watch(
        &self,
        after: u64,
        topics: Option<&str>,
        mut each: impl FnMut(Value) -> bool,
    ) -> Result<(), String> {
        match self {
            Source::Http(base, token) => {
                let mut url = format!("{base}/nb/v1/watch?after={after}");
                if let Some(t) = topics {
                    url.push_str(&format!("&topics={t}"));
                }
                let resp = get(&url, token.as_deref())?;
                for line in BufReader::new(resp.into_body().into_reader()).lines() {
                    let line = line.map_err(|e| e.to_string())?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let v: Value =
                        serde_json::from_str(&line).map_err(|e| format!("bad stream line: {e}"))?;
                    if nbdb::source::wire::progress(&v).is_some() {
                        continue;
                    }
                    if !each(v) {
                        break;
                    }
                }
                Err("the server closed the stream".into())
            }
            Source::Store(store, rt) => {
                let topics = topics.map(|t| t.split(',').map(str::to_string).collect());
                let mut w = nbdb::Watch::new(store.clone(), after, topics);
                loop {
                    let c = rt.block_on(w.next()).map_err(|e| e.to_string())?;
                    let value = c
                        .value
                        .as_deref()
                        .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
                        .unwrap_or(Value::Null);
                    let v = json!({"revision": c.revision, "table": c.table, "id": c.id, "topic": c.topic, "value": value});
                    if !each(v) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

impl Source {
    /// The store's current revision.
    fn revision(&self) -> Result<u64, String> {
        match self {
            Source::Http(base, token) => {
                let url = format!("{base}/nb/v1/revision");
                let v: Value = get(&url, token.as_deref())?
                    .body_mut()
                    .read_json()
                    .map_err(|e| format!("{url}: {e}"))?;
                v["revision"]
                    .as_u64()
                    .ok_or_else(|| format!("{url}: no revision in {v}"))
            }
            Source::Store(store, rt) => rt.block_on(store.revision()).map_err(|e| e.to_string()),
        }
    }

    /// The realized state: the last commit and every agent's heartbeat.
    fn realized(&self) -> Result<wait::Realized, String> {
        let v = match self {
            Source::Http(base, token) => {
                let url = format!("{base}/nb/v1/agents");
                get(&url, token.as_deref())?
                    .body_mut()
                    .read_json()
                    .map_err(|e| format!("{url}: {e}"))?
            }
            Source::Store(store, rt) => rt.block_on(realized_json(store.as_ref()))?,
        };
        wait::Realized::from_json(&v)
    }
}

/// The realized state as `GET /nb/v1/agents` gives it, read from `store` itself: the
/// last commit and every agent's heartbeat.
async fn realized_json(store: &dyn nbdb::Store) -> Result<Value, String> {
    let last_commit = store.last_commit().await.map_err(|e| e.to_string())?;
    let leases = store
        .leases(model::agent::PREFIX)
        .await
        .map_err(|e| e.to_string())?;
    let agents: Vec<Value> = leases
        .iter()
        .filter_map(|l| {
            let hb: model::agent::Heartbeat = serde_json::from_slice(&l.value).ok()?;
            Some(json!({"host": hb.report.host, "binary": hb.report.binary,
                "alive": l.live, "applied_revision": hb.report.applied_revision}))
        })
        .collect();
    Ok(json!({"last_commit": last_commit, "agents": agents}))
}

/// Every host controller's applied revision and liveness, read from `store` (a server's
/// own: the web console).
pub async fn realized_in(store: &dyn nbdb::Store) -> Result<Vec<wait::Host>, String> {
    Ok(wait::Realized::from_json(&realized_json(store).await?)?.hosts)
}

/// A GET of the server's NB listener with `token`; a refusal says what to do.
/// Every object of the store, as records (what `dragonflow trace` compiles from).
pub fn snapshot(nb: &str, token: Option<&str>) -> Result<nbdb::Snapshot, String> {
    let (revision, objs) = Source::open(nb, token)?.snapshot()?;
    let records = objs
        .into_iter()
        .map(|o| nbdb::Record {
            value: serde_json::to_vec(&o.value).unwrap_or_default(),
            table: o.table,
            id: o.id,
            revision: o.revision,
            topic: o.topic,
        })
        .collect();
    Ok(nbdb::Snapshot { revision, records })
}

/// Every host controller's applied revision and liveness (from their heartbeats).
pub fn realized(nb: &str, token: Option<&str>) -> Result<Vec<wait::Host>, String> {
    Ok(Source::open(nb, token)?.realized()?.hosts)
}

fn get(url: &str, token: Option<&str>) -> Result<ureq::http::Response<ureq::Body>, String> {
    let mut req = ureq::get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(r) => Ok(r),
        Err(ureq::Error::StatusCode(401)) => Err(format!(
            "{url}: 401: the NB listener needs a token (--nb-token-file, or DRAGONFLOW_NB_TOKEN; made with `dragonflow nb-token --reader`)"
        )),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

/// A one-line summary of an object for listings.
fn summary(o: &Obj) -> String {
    let name = o
        .value
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    let extra = match o.table.as_str() {
        "port" => o.value.get("fixed_ips").map(|f| {
            f.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x["ip_address"].as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        }),
        "subnet" => o
            .value
            .get("cidr")
            .and_then(Value::as_str)
            .map(str::to_string),
        "claim" => o.value.as_str().map(|owner| format!("-> {owner}")),
        _ => None,
    };
    let mut s = format!(
        "{:<45} rev {:<8} topic {:<12}",
        o.id,
        o.revision,
        o.topic.as_deref().unwrap_or("-")
    );
    if let Some(n) = name {
        s.push_str(&format!(" name {n}"));
    }
    if let Some(e) = extra.filter(|e| !e.is_empty()) {
        s.push_str(&format!(" {e}"));
    }
    s
}

pub fn run(nb: &str, token: Option<&str>, json_out: bool, cmd: DbCommand) -> Result<(), String> {
    let src = Source::open(nb, token)?;
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut print = |s: String| {
        // A closed pipe (e.g. `| head`) just ends the listing.
        let _ = writeln!(out, "{s}");
    };
    match cmd {
        DbCommand::Tables => {
            let (rev, objs) = src.snapshot()?;
            let mut counts: BTreeMap<String, usize> = model::Table::ALL
                .iter()
                .map(|t| (t.name().to_string(), 0))
                .collect();
            for o in &objs {
                *counts.entry(o.table.clone()).or_default() += 1;
            }
            if json_out {
                print(json!({"revision": rev, "tables": counts}).to_string());
            } else {
                print(format!("revision {rev}"));
                for (t, n) in counts {
                    print(format!("{t:<16} {n}"));
                }
            }
        }
        DbCommand::Ls { table } => {
            let (_, objs) = src.snapshot()?;
            if model::Table::from_name(&table).is_none() {
                return Err(format!(
                    "unknown table {table:?}; see `dragonflow db tables`"
                ));
            }
            for o in objs.iter().filter(|o| o.table == table) {
                print(if json_out {
                    obj_json(o).to_string()
                } else {
                    summary(o)
                });
            }
        }
        DbCommand::Get { table, id } => {
            let (_, objs) = src.snapshot()?;
            let o = objs
                .iter()
                .find(|o| o.table == table && o.id == id)
                .ok_or_else(|| format!("{table}/{id} not found"))?;
            print(if json_out {
                obj_json(o).to_string()
            } else {
                format!(
                    "{}/{} (revision {}, topic {})\n{}",
                    o.table,
                    o.id,
                    o.revision,
                    o.topic.as_deref().unwrap_or("-"),
                    serde_json::to_string_pretty(&o.value).unwrap_or_default()
                )
            });
        }
        DbCommand::Dump => {
            let (rev, objs) = src.snapshot()?;
            if json_out {
                print(json!({"revision": rev, "records": objs.iter().map(obj_json).collect::<Vec<_>>()}).to_string());
            } else {
                print(format!("revision {rev}"));
                let mut current = String::new();
                for o in &objs {
                    if o.table != current {
                        current = o.table.clone();
                        print(format!("\n[{current}]"));
                    }
                    print(summary(o));
                }
            }
        }
        DbCommand::Revision => {
            let rev = src.revision()?;
            print(if json_out {
                json!({ "revision": rev }).to_string()
            } else {
                rev.to_string()
            });
        }
        DbCommand::Wait {
            revision,
            hosts,
            timeout,
        } => {
            let timeout = Duration::try_from_secs_f64(timeout)
                .map_err(|_| format!("--timeout {timeout}: not a number of seconds"))?;
            let done = wait::wait(|| src.realized(), revision, hosts.as_deref(), timeout)?;
            print(if json_out {
                json!({"revision": revision, "hosts": done}).to_string()
            } else if done.is_empty() {
                format!("revision {revision}: no live controller to wait for")
            } else {
                format!("revision {revision} applied on {}", done.join(", "))
            });
        }
        DbCommand::Watch { from, topics } => {
            let after = match from {
                Some(r) => r.saturating_sub(1),
                None => src.snapshot()?.0,
            };
            src.watch(after, topics.as_deref(), |c| {
                let line = if json_out {
                    c.to_string()
                } else {
                    let op = if c["value"].is_null() {
                        "delete"
                    } else {
                        "put"
                    };
                    format!(
                        "{:<8} {:<6} {}/{} topic {}",
                        c["revision"],
                        op,
                        c["table"].as_str().unwrap_or_default(),
                        c["id"].as_str().unwrap_or_default(),
                        c["topic"].as_str().unwrap_or("-")
                    )
                };
                writeln!(std::io::stdout(), "{line}").is_ok()
            })?;
        }
    }
    Ok(())
}
