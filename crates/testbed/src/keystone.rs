//! A real Keystone (OpenStack Identity, from the venv scripts/setup makes) on a free
//! loopback port, in its own temp dir with a sqlite database, served by gunicorn; killed
//! on drop. Bootstrapped with an admin, a `service` project holding the `neutron` service
//! user (roles `admin` and `service`), and whatever projects and users a test adds.
//!
//! Its access log names the `X-Subject-Token` of every request, so a test can count how
//! often each token was validated ([`Keystone::validations`]).

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "admin-secret";
pub const NEUTRON_PASSWORD: &str = "neutron-secret";

/// Where scripts/setup installs Keystone and gunicorn.
pub fn venv() -> PathBuf {
    std::env::var_os("DF_KEYSTONE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/dragonflow/keystone-venv"))
}

/// True when Keystone is installed (scripts/setup).
pub fn installed() -> bool {
    venv().join("bin/keystone-manage").exists() && venv().join("bin/gunicorn").exists()
}

pub struct Keystone {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

// oslo.config in Keystone's WSGI app parses sys.argv, which under gunicorn holds
// gunicorn's flags: the shim empties it before the app loads.
const SHIM: &str = "import sys\nsys.argv = sys.argv[:1]\nfrom keystone.wsgi.api import application  # noqa: E402,F401\n";

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        io::Error::other(format!(
            "cannot run {:?} ({e}): run scripts/setup",
            cmd.get_program()
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{:?} failed: {}",
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// keystone.conf for an instance in `dir`. Password hashing at bcrypt's minimum cost:
/// tests issue many tokens.
fn conf(dir: &Path, expiration: Duration) -> String {
    let d = dir.display();
    format!(
        "[DEFAULT]\nlog_file = {d}/keystone.log\n\
         [database]\nconnection = sqlite:///{d}/keystone.db\n\
         [token]\nprovider = fernet\nexpiration = {}\n\
         [fernet_tokens]\nkey_repository = {d}/fernet-keys\n\
         [credential]\nkey_repository = {d}/credential-keys\n\
         [identity]\npassword_hash_rounds = 4\n",
        expiration.as_secs().max(1)
    )
}

/// The installed Keystone's version (its dist-info's name), naming its template.
fn version() -> String {
    let site = std::fs::read_dir(venv().join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages"));
    for dir in site {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("keystone-") && name.ends_with(".dist-info") {
                return name;
            }
        }
    }
    "keystone-unknown".into()
}

/// A bootstrapped Keystone's database and keys (admin `ADMIN_PASSWORD`, region
/// RegionOne, the identity endpoint on a placeholder port), made once per installed
/// version under the temp dir. Made aside and renamed into place, so a test that finds
/// it finds it whole; two tests making it at once both succeed (one copy stays).
fn template() -> io::Result<PathBuf> {
    let root = std::env::temp_dir().join("dragonflow-keystone-template");
    let done = root.join(version());
    if done.join("ready").exists() {
        return Ok(done);
    }
    std::fs::create_dir_all(&root)?;
    let work = tempfile::tempdir_in(&root)?;
    let conf_path = work.path().join("keystone.conf");
    std::fs::write(&conf_path, conf(work.path(), Duration::from_secs(3600)))?;
    let manage = |args: &[&str]| {
        let mut c = Command::new(venv().join("bin/keystone-manage"));
        c.arg("--config-file").arg(&conf_path).args(args);
        run(&mut c)
    };
    manage(&["db_sync"])?;
    let owner = ["--keystone-user", "root", "--keystone-group", "root"];
    manage(&[&["fernet_setup"][..], &owner].concat())?;
    manage(&[&["credential_setup"][..], &owner].concat())?;
    manage(&[
        "bootstrap",
        "--bootstrap-password",
        ADMIN_PASSWORD,
        "--bootstrap-region-id",
        "RegionOne",
        "--bootstrap-public-url",
        "http://127.0.0.1:1/v3",
    ])?;
    std::fs::write(work.path().join("ready"), "")?;
    let work = work.keep();
    if std::fs::rename(&work, &done).is_err() {
        // Another test put its copy there first.
        let _ = std::fs::remove_dir_all(&work);
    }
    if done.join("ready").exists() {
        Ok(done)
    } else {
        Err(io::Error::other(format!(
            "no Keystone template in {}",
            done.display()
        )))
    }
}

/// Copies a file, or a directory of files, keeping permissions.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

impl Keystone {
    /// Sets up and starts a Keystone whose tokens live `expiration` (a test of expiry
    /// and renewal wants it short). Its database and keys are copied from a template made
    /// once per installed Keystone ([`template`]), which saves the four `keystone-manage`
    /// runs (~20 s on a busy machine) on every start after the first.
    pub fn start(expiration: Duration) -> io::Result<Keystone> {
        // In memory where there is /dev/shm: sqlite's syncs are most of a write's time.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)?
        } else {
            tempfile::tempdir()?
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let tpl = template()?;
        for part in ["keystone.db", "fernet-keys", "credential-keys"] {
            copy_tree(&tpl.join(part), &dir.path().join(part))?;
        }
        std::fs::write(
            dir.path().join("keystone.conf"),
            conf(dir.path(), expiration),
        )?;
        std::fs::write(dir.path().join("df_keystone_wsgi.py"), SHIM)?;
        let mut k = Keystone {
            dir,
            port,
            child: None,
        };
        k.spawn()?;
        // The template's identity endpoint names a placeholder port: this one's.
        let public = format!("{}/v3", k.url());
        let endpoints = k.admin("GET", "/endpoints", None)?;
        for e in endpoints["endpoints"].as_array().into_iter().flatten() {
            if let Some(id) = e["id"].as_str() {
                k.admin(
                    "PATCH",
                    &format!("/endpoints/{id}"),
                    Some(json!({"endpoint": {"url": public}})),
                )?;
            }
        }
        // The service project and the user this server validates tokens as.
        let service = k.project("service")?;
        k.user("neutron", NEUTRON_PASSWORD, &service, &["admin", "service"])?;
        Ok(k)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("gunicorn.log"))?;
        let child = Command::new(venv().join("bin/gunicorn"))
            .arg("--pythonpath")
            .arg(d)
            .args(["--bind", &format!("127.0.0.1:{}", self.port)])
            // One request at a time: sqlite answers two writers at once with "database is
            // locked" (a 500), which tempest's dynamic credentials hit within minutes.
            // Validations are ~10 ms, so a queue of 50 is still well within timeouts.
            .args(["--workers", "1", "--threads", "1", "--timeout", "120"])
            .arg("--access-logfile")
            .arg(d.join("access.log"))
            .args([
                "--access-logformat",
                "%(m)s %(U)s %(s)s subject=%({x-subject-token}i)s",
            ])
            .arg("df_keystone_wsgi:application")
            .env("OS_KEYSTONE_CONFIG_FILES", d.join("keystone.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(90) {
            if let Ok(r) = agent().get(&format!("{}/v3", self.url())).call()
                && r.status().as_u16() == 200
            {
                return Ok(());
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::other(format!(
            "Keystone did not come up: {}",
            crate::tail(&d.join("gunicorn.log"), 10)
        )))
    }

    /// `http://127.0.0.1:PORT` (the auth_url, without `/v3`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops Keystone (SIGTERM to gunicorn, which ends its workers); data is kept.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, with the same keys and database.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    /// A token of `user` (password `password`) scoped to project `project` (names in the
    /// Default domain).
    pub fn token(&self, user: &str, password: &str, project: &str) -> io::Result<String> {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }});
        let r = agent()
            .post(&format!("{}/v3/auth/tokens?nocatalog", self.url()))
            .send_json(&body)
            .map_err(io::Error::other)?;
        if r.status().as_u16() != 201 {
            return Err(io::Error::other(format!(
                "token for {user}: {}",
                r.status()
            )));
        }
        r.headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| io::Error::other("no X-Subject-Token"))
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> io::Result<Value> {
        let token = self.token("admin", ADMIN_PASSWORD, "admin")?;
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}/v3{path}", self.url()))
            .header("x-auth-token", token)
            .header("content-type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .map_err(io::Error::other)?;
        let mut r = agent().run(req).map_err(io::Error::other)?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(io::Error::other(format!(
                "{method} {path}: {status} {text}"
            )));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Makes a project in the Default domain; returns its id.
    pub fn project(&self, name: &str) -> io::Result<String> {
        let v = self.admin(
            "POST",
            "/projects",
            Some(json!({"project": {"name": name, "domain_id": "default"}})),
        )?;
        Ok(v["project"]["id"].as_str().unwrap_or_default().to_string())
    }

    fn role_id(&self, name: &str) -> io::Result<String> {
        let v = self.admin("GET", &format!("/roles?name={name}"), None)?;
        if let Some(id) = v["roles"][0]["id"].as_str() {
            return Ok(id.to_string());
        }
        let v = self.admin("POST", "/roles", Some(json!({"role": {"name": name}})))?;
        Ok(v["role"]["id"].as_str().unwrap_or_default().to_string())
    }

    /// Makes a user with `roles` on project `project_id`; returns its id.
    pub fn user(
        &self,
        name: &str,
        password: &str,
        project_id: &str,
        roles: &[&str],
    ) -> io::Result<String> {
        let v = self.admin(
            "POST",
            "/users",
            Some(json!({"user": {"name": name, "password": password, "domain_id": "default"}})),
        )?;
        let user = v["user"]["id"].as_str().unwrap_or_default().to_string();
        for r in roles {
            let role = self.role_id(r)?;
            self.admin(
                "PUT",
                &format!("/projects/{project_id}/users/{user}/roles/{role}"),
                None,
            )?;
        }
        Ok(user)
    }

    /// Revokes a token (`DELETE /v3/auth/tokens`).
    pub fn revoke(&self, token: &str) -> io::Result<()> {
        let admin = self.token("admin", ADMIN_PASSWORD, "admin")?;
        let req = ureq::http::Request::builder()
            .method("DELETE")
            .uri(format!("{}/v3/auth/tokens", self.url()))
            .header("x-auth-token", admin)
            .header("x-subject-token", token)
            .body(String::new())
            .map_err(io::Error::other)?;
        let r = agent().run(req).map_err(io::Error::other)?;
        match r.status().as_u16() {
            204 => Ok(()),
            s => Err(io::Error::other(format!("revoke: {s}"))),
        }
    }

    /// Registers a `network` service whose public endpoint is `url` in the catalog, so
    /// the openstack CLI finds the Neutron API through Keystone.
    pub fn register_network(&self, url: &str) -> io::Result<()> {
        self.register_service("network", "neutron", url)
    }

    /// Registers a service of `kind` (`network`, `load-balancer`) named `name` whose
    /// public endpoint is `url`.
    pub fn register_service(&self, kind: &str, name: &str, url: &str) -> io::Result<()> {
        let v = self.admin(
            "POST",
            "/services",
            Some(json!({"service": {"type": kind, "name": name}})),
        )?;
        let id = v["service"]["id"].as_str().unwrap_or_default().to_string();
        self.admin(
            "POST",
            "/endpoints",
            Some(json!({"endpoint": {"service_id": id, "interface": "public",
                "url": url, "region_id": "RegionOne"}})),
        )?;
        Ok(())
    }

    /// Points the `network` endpoints of the catalog (see [`Keystone::register_network`])
    /// at `url`: a test that runs one server after another.
    pub fn point_network(&self, url: &str) -> io::Result<()> {
        let services = self.admin("GET", "/services?type=network", None)?;
        for s in services["services"].as_array().into_iter().flatten() {
            let Some(sid) = s["id"].as_str() else {
                continue;
            };
            let eps = self.admin("GET", &format!("/endpoints?service_id={sid}"), None)?;
            for e in eps["endpoints"].as_array().into_iter().flatten() {
                if let Some(id) = e["id"].as_str() {
                    self.admin(
                        "PATCH",
                        &format!("/endpoints/{id}"),
                        Some(json!({"endpoint": {"url": url}})),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// How many times each token was validated (`GET /v3/auth/tokens`), from the access
    /// log.
    pub fn validations(&self) -> HashMap<String, usize> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        let mut n = HashMap::new();
        for l in log.lines() {
            if let Some(rest) = l.strip_prefix("GET /v3/auth/tokens ")
                && let Some((_, subject)) = rest.split_once("subject=")
            {
                *n.entry(subject.trim().to_string()).or_default() += 1;
            }
        }
        n
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        self.stop();
    }
}
