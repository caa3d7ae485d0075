//! A real browser for the tests: headless Chromium driven over W3C WebDriver by Debian's
//! `chromedriver` (package chromium-driver), spoken to in JSON over HTTP.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn call(method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let resp = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, b) => agent.post(url).send_json(b.unwrap_or_else(|| json!({}))),
    };
    let mut resp = resp.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status();
    let v: Value = resp
        .body_mut()
        .read_json()
        .map_err(|e| format!("{method} {url}: {e}"))?;
    if status.is_success() {
        Ok(v["value"].clone())
    } else {
        Err(format!("{method} {url}: {status}: {v}"))
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a window of `w`×`h`.
    pub fn start(w: u32, h: u32) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/setup installs chromium-driver)");
        let root = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        while call("GET", &format!("{root}/status"), None)
            .map(|v| v["ready"] != true)
            .unwrap_or(true)
        {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "chromedriver never ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("profile");
        // Root needs --no-sandbox; /dev/shm may be small in a container.
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={w},{h}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}});
        let s = call("POST", &format!("{root}/session"), Some(caps)).expect("a session");
        let id = s["sessionId"].as_str().expect("sessionId").to_string();
        Browser {
            driver,
            base: format!("{root}/session/{id}"),
            _profile: profile,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = match path {
            "" => self.base.clone(),
            p => format!("{}/{p}", self.base),
        };
        call(method, &url, body)
    }

    pub fn go(&self, url: &str) {
        self.cmd("POST", "url", Some(json!({ "url": url })))
            .expect("navigate");
    }

    fn find(&self, css: &str) -> Result<String, String> {
        let e = self.cmd(
            "POST",
            "element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        e[ELEMENT]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element {css}: {e}"))
    }

    /// The text of the element `css` (empty when there is none).
    pub fn text(&self, css: &str) -> String {
        self.find(css)
            .and_then(|e| self.cmd("GET", &format!("element/{e}/text"), None))
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    /// Waits until the text of `css` satisfies `ok`; returns it, or panics with the last.
    pub fn wait_text(&self, css: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let s = self.text(css);
            if ok(&s) {
                return s;
            }
            assert!(t.elapsed() < limit, "{css} after {limit:?}: {s:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).expect("input");
        self.cmd("POST", &format!("element/{e}/clear"), None)
            .expect("clear");
        self.cmd(
            "POST",
            &format!("element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .expect("type");
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css).expect("button");
        self.cmd("POST", &format!("element/{e}/click"), None)
            .expect("click");
    }

    /// The window as PNG bytes.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.cmd("GET", "screenshot", None).expect("screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("base64 PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.cmd("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
