//! Test harness: a real `dragonflow server` process on free ports (the Neutron API and
//! the NB store endpoints) with its own embedded store, the real `openstack` CLI pointed at
//! it, and a small HTTP client. Every server uses [`TEST_SECRET`] for its NB tokens.

#![allow(dead_code)]

pub mod backends;
pub mod bgp;
pub mod cloud;
pub mod cni;
pub mod conn_rate;
pub mod hosts;
pub mod lifecycle;
pub mod metadata;
pub mod prom;
pub mod trace;

use neutron_api::nb_auth::{NbAuth, Principal};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The NB secret of every test server (tests are not about keeping it).
pub const TEST_SECRET: &str = "dragonflow-tests-nb-secret-0123456789";

/// The NB token of `who` for [`TEST_SECRET`].
pub fn token(who: Principal) -> String {
    NbAuth::new(TEST_SECRET.as_bytes())
        .expect("secret")
        .token(&who)
}

/// The NB token of host `name`'s controller.
pub fn host_token(name: &str) -> String {
    token(Principal::Host(name.to_string()))
}

pub struct Server {
    /// The Neutron API.
    pub url: String,
    pub addr: String,
    /// The NB store endpoints (`/nb/v1`), for hosts and tools.
    pub nb_url: String,
    nb_addr: String,
    /// The Octavia (load-balancer) API.
    pub octavia_url: String,
    octavia_addr: String,
    /// `--db` of the server; the embedded store in `dir` unless given.
    db: String,
    /// Flags after the listeners and the store (e.g. `--noauth-admin`).
    args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// How the `openstack` CLI authenticates (empty: `--os-auth-type none` at `url`).
    cli_auth: Vec<String>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Server {
    /// A server on its own embedded store, where a request without a project acts as the
    /// default project's admin (`--noauth-admin`, which most tests and the CLI rely on).
    pub fn start() -> Server {
        Self::start_args(&["--noauth-admin"])
    }

    /// Like [`Server::start`], with every quota unlimited (`[quotas]` at -1): for the
    /// benches and tests that make more of one project's objects than Neutron's default
    /// quotas allow (500 ports, 100 networks, 10 routers, ...).
    pub fn start_unlimited() -> Server {
        Self::start_unlimited_with(&[])
    }

    /// Like [`Server::start_unlimited`], with more flags.
    pub fn start_unlimited_with(args: &[&str]) -> Server {
        Self::start_unlimited_in(tempfile::tempdir().expect("tempdir"), None, args)
    }

    /// Like [`Server::start_unlimited`], on the store at `db` (shared with other servers).
    pub fn start_on_unlimited(db: &str) -> Server {
        Self::start_unlimited_in(tempfile::tempdir().expect("tempdir"), Some(db), &[])
    }

    fn start_unlimited_in(dir: tempfile::TempDir, db: Option<&str>, args: &[&str]) -> Server {
        let conf = dir.path().join("unlimited.toml");
        std::fs::write(&conf, testbed::bench::UNLIMITED_QUOTAS).expect("config");
        let db = db.map_or_else(
            || format!("embedded:{}", dir.path().join("nb.redb").display()),
            str::to_string,
        );
        let conf = conf.display().to_string();
        let mut all = vec!["--noauth-admin", "--config", &conf];
        all.extend_from_slice(args);
        Self::start_with(dir, db, &all)
    }

    /// A server on its own embedded store with `args` (no `--noauth-admin` unless given).
    pub fn start_args(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("embedded:{}", dir.path().join("nb.redb").display());
        Self::start_with(dir, db, args)
    }

    /// A server on the store at `db` (e.g. `etcd://…`, shared with other servers), with
    /// `--noauth-admin`.
    pub fn start_on(db: &str) -> Server {
        Self::start_with(
            tempfile::tempdir().expect("tempdir"),
            db.to_string(),
            &["--noauth-admin"],
        )
    }

    /// A server on the store at `db` with `args` (no `--noauth-admin` unless given).
    pub fn start_on_args(db: &str, args: &[&str]) -> Server {
        Self::start_with(tempfile::tempdir().expect("tempdir"), db.to_string(), args)
    }

    /// A server on its own embedded store with `auth_strategy = keystone` behind the
    /// Keystone at `ks_url` (its `neutron` service user, as `testbed::keystone` makes it).
    /// `extra` is appended to the config file right after `[keystone_authtoken]`'s keys
    /// (more of them, or further sections). The file stays in the server's directory, so
    /// a restart reads it too.
    pub fn start_keystone(ks_url: &str, extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("dragonflow.toml");
        std::fs::write(
            &conf,
            format!(
                "[neutron]\nauth_strategy = \"keystone\"\n\n[keystone_authtoken]\n\
                 auth_url = \"{ks_url}/v3\"\nwww_authenticate_uri = \"{ks_url}\"\n\
                 username = \"neutron\"\npassword = \"{}\"\nproject_name = \"service\"\n\
                 http_timeout = 30\n{extra}",
                testbed::keystone::NEUTRON_PASSWORD
            ),
        )
        .expect("config");
        let conf = conf.to_str().expect("path").to_string();
        let db = format!("embedded:{}", dir.path().join("nb.redb").display());
        Self::start_with(dir, db, &["--config", &conf])
    }

    fn start_with(dir: tempfile::TempDir, db: String, args: &[&str]) -> Server {
        std::fs::write(dir.path().join("nb-secret"), TEST_SECRET).expect("secret");
        let mut s = Server {
            url: String::new(),
            addr: String::new(),
            nb_url: String::new(),
            nb_addr: String::new(),
            octavia_url: String::new(),
            octavia_addr: String::new(),
            db,
            args: args.iter().map(|a| a.to_string()).collect(),
            dir,
            child: None,
            cli_auth: Vec::new(),
        };
        s.new_ports();
        s.launch();
        s.spawn_launched(true);
        s
    }

    /// Free ports for the three listeners.
    fn new_ports(&mut self) {
        self.addr = format!("127.0.0.1:{}", free_port());
        self.nb_addr = format!("127.0.0.1:{}", free_port());
        self.octavia_addr = format!("127.0.0.1:{}", free_port());
        self.url = format!("http://{}", self.addr);
        self.nb_url = format!("http://{}", self.nb_addr);
        self.octavia_url = format!("http://{}", self.octavia_addr);
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's NB secret file.
    pub fn secret_file(&self) -> PathBuf {
        self.dir.path().join("nb-secret")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("nb.redb")
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dragonflow"));
        // DF_SERVER_LOG: the servers' log filter (DRAGONFLOW_LOG), e.g. `info,nbdb=debug`
        // for the store's group commits in a benchmark.
        if let Ok(filter) = std::env::var("DF_SERVER_LOG") {
            cmd.env("DRAGONFLOW_LOG", filter);
        }
        let child = cmd
            .args(["server", "--listen", &self.addr, "--db", &self.db])
            .args(["--nb-listen", &self.nb_addr])
            .args(["--octavia-listen", &self.octavia_addr])
            .arg("--nb-secret-file")
            .arg(self.secret_file())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dragonflow server");
        self.child = Some(child);
    }

    fn spawn(&mut self) {
        self.launch();
        self.spawn_launched(false);
    }

    /// Waits for the launched server to answer, launching it again when it exits. On its
    /// first start (`relocatable`) a listener port that another process took between
    /// `free_port` and the server's bind (seen in CI) is replaced by new ones.
    fn spawn_launched(&mut self, relocatable: bool) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if ureq::get(&format!("{}/", self.url)).call().is_ok() {
                return;
            }
            // A store that was not ready yet makes the server exit: start it again.
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                if relocatable && self.log().contains("Address already in use") {
                    self.new_ports();
                }
                self.launch();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not come up: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(c.id().to_string())
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server with SIGKILL, as a crash would: no request is finished.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// An HTTP call; returns the status and the JSON body (Null when empty).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(method, path, body, &[])
    }

    pub fn call_as(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        http_call(&format!("{}{path}", self.url), method, body, headers)
    }

    /// A call to the NB listener with the admin token.
    pub fn nb_call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.nb_call_as(method, path, body, Some(&token(Principal::Admin)))
    }

    /// A call to the NB listener with `token` (or none).
    pub fn nb_call_as(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        http_call(&format!("{}{path}", self.nb_url), method, body, &headers)
    }

    /// POST expecting 201; returns the resource object.
    /// A network with one IPv4 subnet of `cidr`, as admin; returns the network.
    /// A network `name` with one subnet `cidr` (IPv4, or IPv6 for an IPv6 prefix).
    pub fn network(&self, name: &str, cidr: &str) -> Value {
        let net = self.create("networks", "network", serde_json::json!({"name": name}));
        let version = if cidr.contains(':') { 6 } else { 4 };
        self.create(
            "subnets",
            "subnet",
            serde_json::json!({"network_id": net["id"], "ip_version": version, "cidr": cidr}),
        );
        net
    }

    pub fn create(&self, collection: &str, resource: &str, attrs: Value) -> Value {
        let (st, v) = self.call(
            "POST",
            &format!("/v2.0/{collection}"),
            Some(serde_json::json!({ resource: attrs })),
        );
        assert_eq!(st, 201, "create {resource}: {v}");
        v[resource].clone()
    }

    /// The `openstack` CLI authenticates with password `user`/`password` on `project`
    /// at Keystone `keystone_url` and finds this server in its catalog.
    pub fn set_cli_auth(&mut self, keystone_url: &str, user: &str, password: &str, project: &str) {
        self.cli_auth = keystone_cli_auth(keystone_url, (user, password, project));
    }

    /// Runs the real `openstack` CLI against this server; returns stdout or stderr.
    pub fn openstack(&self, args: &[&str]) -> Result<String, String> {
        let bin = openstack_bin();
        let mut cmd = Command::new(&bin);
        if self.cli_auth.is_empty() {
            cmd.args(["--os-auth-type", "none", "--os-endpoint", &self.url]);
        } else {
            cmd.args(&self.cli_auth);
        }
        let out = cmd
            .args(args)
            .env_remove("OS_CLOUD")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {bin} (run scripts/setup): {e}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `openstack ... -f json`, parsed; panics with the CLI's output on failure.
    pub fn os(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-f", "json"]);
        let out = self.openstack(&a).unwrap_or_else(|e| {
            panic!(
                "openstack {}: {e}\nserver log:\n{}",
                args.join(" "),
                self.log_tail()
            )
        });
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("openstack {}: not JSON ({e}): {out}", args.join(" ")))
    }

    /// An `openstack` command with no output (set, unset, delete, add, remove).
    pub fn os_ok(&self, args: &[&str]) {
        if let Err(e) = self.openstack(args) {
            panic!(
                "openstack {}: {e}\nserver log:\n{}",
                args.join(" "),
                self.log_tail()
            );
        }
    }

    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// An HTTP call with a JSON body; returns the status and the JSON body (Null when empty,
/// a string when not JSON).
pub fn http_call(
    url: &str,
    method: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(text).expect("request");
    let mut resp = agent.run(req).expect("http call");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The real `openstack` CLI: scripts/setup installs it; DF_OPENSTACK names another.
pub fn openstack_bin() -> String {
    std::env::var("DF_OPENSTACK").unwrap_or_else(|_| "/opt/dragonflow/venv/bin/openstack".into())
}

/// The CLI's arguments to log in with a password at Keystone `keystone_url` as `user` in
/// `project`: the Default domain, RegionOne, the public endpoints of the catalog.
fn keystone_cli_auth(
    keystone_url: &str,
    (user, password, project): (&str, &str, &str),
) -> Vec<String> {
    let url = format!("{keystone_url}/v3");
    [
        "--os-auth-type",
        "password",
        "--os-identity-api-version",
        "3",
        "--os-auth-url",
        &url,
        "--os-username",
        user,
        "--os-password",
        password,
        "--os-project-name",
        project,
        "--os-user-domain-name",
        "Default",
        "--os-project-domain-name",
        "Default",
        "--os-region-name",
        "RegionOne",
        "--os-interface",
        "public",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The `openstack` CLI logged in to Keystone `keystone_url` as `(user, password,
/// project)`, with no `OS_CLOUD` from the environment.
pub fn keystone_cli(keystone_url: &str, who: (&str, &str, &str)) -> Command {
    let mut cmd = Command::new(openstack_bin());
    cmd.args(keystone_cli_auth(keystone_url, who))
        .env_remove("OS_CLOUD");
    cmd
}
