//! `dragonflow sandbox` end to end: `up` on real OVS and namespaces, its table of live
//! checks, `status`, `exec`, `openstack`, the web console in headless Chromium (topology,
//! live update, a drawn trace, a screenshot), a refused second `up`, and `down` leaving
//! nothing behind (namespaces, processes, OVS directories, /etc/netns entries).

#[path = "common/webdriver.rs"]
mod webdriver;

use std::process::{Command, Output};
use std::time::Duration;

/// The checks that must pass with the features in the tree (all of them, now that DHCP,
/// security groups and north-south are in; a new feature's check goes in both lists).
const REQUIRED: &[&str] = &[
    "dhcp",
    "switched",
    "routed",
    "across-hosts",
    "snat",
    "floating-ip",
    "security-group",
];
/// Every check the table must show (passing or not).
const ALL: &[&str] = &[
    "dhcp",
    "switched",
    "routed",
    "across-hosts",
    "snat",
    "floating-ip",
    "security-group",
];

const DIR: &str = "/run/dragonflow-sandbox";

fn sandbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .arg("sandbox")
        .args(args)
        .output()
        .expect("run dragonflow sandbox")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Namespaces of the sandbox still present.
fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("dfsb-"))
        .map(str::to_string)
        .collect()
}

/// Processes whose command line points into the sandbox directory.
fn processes() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        if cmd.contains(DIR) {
            out.push(format!("{name}: {cmd}"));
        }
    }
    out
}

/// Status and the controllers' and server's last log lines, for a failed assertion (the
/// sandbox and its logs are removed when the test ends).
fn diagnostics() -> String {
    let mut s = text(&sandbox(&["status"]));
    for log in ["server.log", "host1/controller.log", "host2/controller.log"] {
        let t = std::fs::read_to_string(format!("{DIR}/{log}")).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        s.push_str(&format!(
            "\n== {log}\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        ));
    }
    s
}

/// Brings the sandbox down when the test ends, whatever happened.
struct Down;
impl Drop for Down {
    fn drop(&mut self) {
        let _ = sandbox(&["down"]);
    }
}

/// The table's rows: (check, PASS/FAIL, the whole line).
fn rows(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, result) = (w.next()?, w.next()?);
            (ALL.contains(&name) && (result == "PASS" || result == "FAIL") && l.contains(" s  "))
                .then(|| (name.to_string(), result.to_string(), l.to_string()))
        })
        .collect()
}

/// One test, so the phases never run in parallel: the machine has one sandbox.
#[test]
fn sandbox_end_to_end() {
    if !testbed::require_root("sandbox_end_to_end") {
        return;
    }
    assert!(
        !std::path::Path::new(DIR).exists() && namespaces().is_empty(),
        "a sandbox is running on this machine; run `dragonflow sandbox down` first"
    );
    let _guard = Down;
    down_cleans_up_after_a_crashed_up();
    up_checks_and_down_leaves_nothing();
}

fn up_checks_and_down_leaves_nothing() {
    let port = free_port();
    let up = sandbox(&["up", "--port", &port.to_string()]);
    let out = text(&up);
    println!("{out}");
    assert!(up.status.success(), "sandbox up failed:\n{out}");
    assert!(
        out.contains("starting host 1/2: ovs... controller... ok"),
        "{out}"
    );

    // The table: every check once, the required ones passing.
    let table = rows(&out);
    let names: Vec<&str> = table.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ALL, "one row per check, in order:\n{out}");
    for req in REQUIRED {
        let (_, result, line) = table.iter().find(|(n, _, _)| n == req).expect("row");
        if result != "PASS" {
            panic!("required check failed: {line}\n{out}\n{}", diagnostics());
        }
    }
    // A failing check says so in the summary line.
    let passed = table.iter().filter(|(_, r, _)| r == "PASS").count();
    assert!(
        out.contains(&format!("{passed} of {} checks passed", ALL.len())),
        "{out}"
    );

    // A second sandbox is refused with one line saying what to do, and harms nothing.
    let again = sandbox(&["up", "--port", &free_port().to_string()]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("sandbox down"), "{err}");

    // status, exec (vm1 holds its Neutron address), openstack through the CLI.
    let st = sandbox(&["status"]);
    let st_out = text(&st);
    assert!(st.status.success(), "{st_out}");
    assert!(
        st_out.contains("sandbox up") && !st_out.contains("GONE"),
        "{st_out}"
    );
    // The sandbox keeps noauth, and says so.
    assert!(st_out.contains("auth: noauth"), "{st_out}");
    let vm1_ip = st_out
        .lines()
        .find(|l| l.trim_start().starts_with("vm1 "))
        .and_then(|l| l.split_whitespace().nth(4))
        .expect("vm1 row in status")
        .to_string();
    let ex = sandbox(&[
        "exec", "vm1", "--", "ip", "-4", "addr", "show", "dev", "eth0",
    ]);
    assert!(ex.status.success(), "{}", text(&ex));
    assert!(
        text(&ex).contains(&format!("inet {vm1_ip}/24")),
        "{}",
        text(&ex)
    );
    // A trace from vm1 to vm2 (same network, the other host) is delivered, and the
    // sender's real Open vSwitch agrees with the compiled pipeline (--real).
    let vm2_ip = st_out
        .lines()
        .find(|l| l.trim_start().starts_with("vm2 "))
        .and_then(|l| l.split_whitespace().nth(4))
        .expect("vm2 row in status")
        .to_string();
    let tr = sandbox(&[
        "trace", "--from", "vm1", "--to", &vm2_ip, "--real", "--json",
    ]);
    assert!(tr.status.success(), "{}", text(&tr));
    let report: serde_json::Value =
        serde_json::from_slice(&tr.stdout).unwrap_or(serde_json::Value::Null);
    assert_eq!(report["outcome"], "delivered", "{}", text(&tr));
    assert!(report["ovs_tables"].is_array(), "{}", text(&tr));
    console(port, &vm2_ip);
    let fails = sandbox(&["exec", "vm1", "--", "false"]);
    assert!(!fails.status.success(), "exec passes on the exit status");
    if std::path::Path::new("/opt/dragonflow/venv/bin/openstack").exists() {
        let os = sandbox(&["openstack", "network", "list", "-f", "value", "-c", "Name"]);
        let os_out = text(&os);
        assert!(os.status.success(), "{os_out}");
        for net in ["public", "net-a1", "net-a2", "net-b1"] {
            assert!(os_out.lines().any(|l| l.trim() == net), "{net}: {os_out}");
        }
    }

    // down removes everything; a second down is a no-op.
    let down = sandbox(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        namespaces().is_empty(),
        "namespaces left: {:?}",
        namespaces()
    );
    assert!(processes().is_empty(), "processes left: {:?}", processes());
    assert!(!std::path::Path::new(DIR).exists(), "{DIR} left");
    let etc: Vec<_> = std::fs::read_dir("/etc/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("dfsb-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(etc.is_empty(), "/etc/netns entries left: {etc:?}");
    let again = sandbox(&["down"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("no sandbox"), "{}", text(&again));
}

/// The web console in a real browser: the sandbox's hosts and VMs, a network made
/// through the API appearing without a reload, a trace from vm1 to vm2 drawn across the
/// two hosts and delivered; the screenshot shows the green verdict.
fn console(port: u16, vm2_ip: &str) {
    let b = webdriver::Browser::start(1280, 1000);
    b.go(&format!("http://127.0.0.1:{port}/console"));
    let topo = b.wait_text("#topology", Duration::from_secs(20), |t| {
        ["vm1", "vm2", "vm3", "vm4", "net-a1", "public"]
            .iter()
            .all(|w| t.contains(w))
    });
    assert!(
        topo.contains("ACTIVE") && topo.contains("realized"),
        "{topo}"
    );
    // Live: a network made through the API shows up in the open page.
    let made = ureq::post(&format!("http://127.0.0.1:{port}/v2.0/networks"))
        .send_json(serde_json::json!({"network": {"name": "console-live"}}));
    assert!(made.is_ok(), "{made:?}");
    b.wait_text("#topology", Duration::from_secs(10), |t| {
        t.contains("console-live")
    });
    b.type_into("#from", "vm1");
    b.type_into("#to", vm2_ip);
    b.click("#go");
    let verdict = b.wait_text("#verdict", Duration::from_secs(30), |t| !t.is_empty());
    assert!(verdict.contains("delivered"), "{verdict}");
    let path = b.text("#path");
    assert!(
        path.contains("host1") && path.contains("host2") && path.contains("tunnel"),
        "the path crosses both hosts: {path}"
    );
    let png = b.screenshot();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let _ = std::fs::write(dir.join("console.png"), &png);
    if std::env::var_os("DF_RECORD").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::write(docs.join("console.png"), &png).expect("docs/console.png");
    }
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    assert!(info.width >= 1000 && info.height >= 600, "{info:?}");
    let step = info.color_type.samples();
    // The verdict's green (#1a7f37) fills its banner: thousands of pixels.
    let green = buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p.len() >= 3 && p[0] == 0x1a && p[1] == 0x7f && p[2] == 0x37)
        .count();
    assert!(
        green > 5_000,
        "{green} verdict-green pixels in the screenshot"
    );
}

/// A crashed `up` (killed midway) leaves pieces; `down` still removes them all.
fn down_cleans_up_after_a_crashed_up() {
    let mut up = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(["sandbox", "up", "--port", &free_port().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("up");
    // Kill it once the first host's OVS runs.
    let ok = testbed::wait_for(std::time::Duration::from_secs(60), || {
        std::path::Path::new(DIR)
            .join("host1/ovs-vswitchd.pid")
            .exists()
    });
    let _ = up.kill();
    let _ = up.wait();
    assert!(ok, "up never got to host 1");
    assert!(
        !namespaces().is_empty(),
        "nothing to clean: the test proves nothing"
    );
    let down = sandbox(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        namespaces().is_empty(),
        "namespaces left: {:?}",
        namespaces()
    );
    assert!(processes().is_empty(), "processes left: {:?}", processes());
    assert!(!std::path::Path::new(DIR).exists(), "{DIR} left");
}
