//! The metadata service's Nova proxy mode end to end: a controller on real OVS passes a
//! VM's requests on to a recording stand-in for Nova's metadata API, signed as Neutron's
//! metadata agent signs them (checked against Python's `hmac`), with the VM's own headers
//! replaced by its port's identity.

mod common;

use common::cloud::addr;
use common::metadata::{Cloud, curl, md};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};

/// A recording stand-in for Nova's metadata API: answers 200 only to requests whose
/// `X-Instance-ID-Signature` is `expected` for their `X-Instance-ID`.
struct Nova {
    port: u16,
    seen: Arc<Mutex<Vec<Headers>>>,
}

/// One request's line (as `request`) and headers (names in lower case).
type Headers = Vec<(String, String)>;

impl Nova {
    fn start(expected: std::collections::BTreeMap<String, String>) -> Nova {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                let mut headers = vec![("request".to_string(), first.trim().to_string())];
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let get = |k: &str| {
                    headers
                        .iter()
                        .find(|(h, _)| h == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let id = get("x-instance-id");
                let ok = expected.get(&id) == Some(&get("x-instance-id-signature"));
                let body = if ok {
                    json!({"uuid": id, "served_by": "nova"}).to_string()
                } else {
                    "bad signature".to_string()
                };
                let status = if ok { "200 OK" } else { "403 Forbidden" };
                rec.lock().unwrap().push(headers);
                let mut s = s;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Nova { port, seen }
    }
}

/// HMAC-SHA256 of `msg` with `key`, hex, by Python's hmac (not the code under test).
fn python_hmac(key: &str, msg: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,sys;print(hmac.new(sys.argv[1].encode(),sys.argv[2].encode(),hashlib.sha256).hexdigest())",
            key,
            msg,
        ])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn with_nova_requests_are_passed_on_signed_as_neutrons_agent_does() {
    if !testbed::require_root("with_nova_requests_are_passed_on_signed") {
        return;
    }
    let secret = "nova-shared-secret-for-tests";
    let dev = "0a0a0a0a-0000-4000-8000-00000000000a";
    let nova = Nova::start([(dev.to_string(), python_hmac(secret, dev))].into());
    let dir = tempfile::tempdir().expect("tmp");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("secret");
    let url = format!("http://127.0.0.1:{}", nova.port);
    let secret_arg = secret_file.display().to_string();
    let c = Cloud::start(
        1,
        &[
            "--nova-metadata-url",
            &url,
            "--metadata-proxy-shared-secret-file",
            &secret_arg,
        ],
    );
    c.network("novanet", "10.63.0.0/24");
    let p = c.port("novanet", "server-1", dev, "server-1");
    let vm = c.plug(&p, 0);
    vm.ns
        .exec(["ip", "route", "add", "169.254.169.254/32", "dev", "eth0"])
        .expect("route");
    let (code, body) = curl(
        &vm,
        &[
            "-H",
            "X-Instance-ID: someone-else",
            &md("/openstack/latest/meta_data.json?x=1"),
        ],
    );
    assert_eq!(code, 200, "{body}\n{}", c.dumps());
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (v["uuid"].as_str(), v["served_by"].as_str()),
        (Some(dev), Some("nova"))
    );
    let seen = nova.seen.lock().unwrap().clone();
    let h = seen.last().expect("a request reached Nova");
    let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        get("request"),
        Some("GET /openstack/latest/meta_data.json?x=1 HTTP/1.1")
    );
    assert_eq!(
        get("x-instance-id"),
        Some(dev),
        "the VM's header is not passed on"
    );
    assert_eq!(get("x-tenant-id"), p["project_id"].as_str());
    assert_eq!(get("x-forwarded-for"), Some(addr(&p).1.as_str()));
    assert_eq!(
        get("x-instance-id-signature"),
        Some(python_hmac(secret, dev).as_str())
    );
}
