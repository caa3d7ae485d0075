//! Thin wrappers over the system tools the sandbox drives (`ip`, OVS tools, `kill`) and
//! over `/proc`: running a command for its output, detaching a daemon, finding processes.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Prefix of every namespace, and of every link made in the machine's own namespace.
pub const PREFIX: &str = "dfsb";

/// Runs `cmd`; its stdout on success, else one line with the command and its stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{:?}", cmd.get_program());
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} {} failed: {}",
            shown.trim_matches('"'),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip ARGS` in the machine's namespace.
pub fn ip<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Result<String, String> {
    run(Command::new("ip").args(args))
}

/// A command to run inside namespace `ns`.
pub fn in_ns<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(ns: &str, argv: I) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(argv);
    c
}

/// Runs `argv` inside namespace `ns`.
pub fn ns_exec<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(
    ns: &str,
    argv: I,
) -> Result<String, String> {
    run(&mut in_ns(ns, argv))
}

/// Creates namespace `ns` with `lo` up.
pub fn netns_add(ns: &str) -> Result<(), String> {
    ip(["netns", "add", ns])?;
    ns_exec(ns, ["ip", "link", "set", "lo", "up"]).map(|_| ())
}

/// The namespaces whose name starts with the sandbox prefix.
pub fn sandbox_namespaces() -> Vec<String> {
    let out = ip(["netns", "list"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{PREFIX}-")))
        .map(str::to_string)
        .collect()
}

/// Links in the machine's own namespace with the sandbox prefix (veth halves a crash left
/// between their creation and their move into a namespace).
pub fn sandbox_links() -> Vec<String> {
    ip(["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(PREFIX))
        .collect()
}

/// A veth pair: `a` in namespace `ns_a`, `b` in `ns_b`, both up. Made under temporary names
/// (with the sandbox prefix, so a crash in between leaves something `down` finds) and
/// renamed where it lands, so `a` may be `eth0`.
pub fn veth(a: &str, ns_a: &str, b: &str, ns_b: &str) -> Result<(), String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (ta, tb) = (format!("{PREFIX}{n}a"), format!("{PREFIX}{n}b"));
    ip(["link", "add", &ta, "type", "veth", "peer", "name", &tb])?;
    for (tmp, dev, ns) in [(&ta, a, ns_a), (&tb, b, ns_b)] {
        ip(["link", "set", tmp, "netns", ns])?;
        ip(["-n", ns, "link", "set", tmp, "name", dev])?;
        ip(["-n", ns, "link", "set", dev, "up"])?;
    }
    Ok(())
}

/// Starts `cmd` detached from this process (own process group, no terminal, stderr and
/// stdout to `log`): it outlives `sandbox up`. Returns its pid.
pub fn spawn_detached(cmd: &mut Command, log: &Path) -> Result<u32, String> {
    use std::os::unix::process::CommandExt;
    let file =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    Ok(child.id())
}

/// True while process `pid` runs (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Processes (other than this one) whose command line mentions `needle`.
pub fn pids_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// Processes running inside namespace `ns`.
pub fn pids_in_ns(ns: &str) -> Vec<u32> {
    ip(["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p != std::process::id())
        .collect()
}

/// SIGTERM to each of `pids`, SIGKILL to those still running after `grace`.
pub fn terminate(pids: &[u32], grace: Duration) {
    let send = |sig: &str, pids: &[u32]| {
        if pids.is_empty() {
            return;
        }
        let _ = Command::new("kill")
            .arg(sig)
            .args(pids.iter().map(u32::to_string))
            .stderr(Stdio::null())
            .status();
    };
    send("-TERM", pids);
    let start = Instant::now();
    while start.elapsed() < grace && pids.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    send("-KILL", &left);
}

/// Polls `ok` every 50 ms for up to `timeout`; whether it held.
pub fn wait_for(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if ok() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when `program` can be found on PATH (or is an existing path).
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(program).is_file())
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The last `n` lines of a log file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_processes_by_their_command_line() {
        let mut child = Command::new("sleep")
            .arg("30.123456")
            .spawn()
            .expect("sleep");
        assert!(wait_for(Duration::from_secs(5), || pids_mentioning(
            "30.123456"
        )
        .contains(&child.id())));
        assert!(alive(child.id()));
        terminate(&[child.id()], Duration::from_secs(5));
        let _ = child.wait();
        assert!(!alive(child.id()));
        assert!(pids_mentioning("30.123456").is_empty());
        assert!(!pids_mentioning(&std::process::id().to_string()).contains(&std::process::id()));
    }

    #[test]
    fn run_reports_the_failing_command() {
        let e = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        assert!(e.contains("sh -c") && e.contains("oops"), "{e}");
        assert_eq!(run(Command::new("echo").arg("hi")).as_deref(), Ok("hi\n"));
        assert!(have("sh") && !have("no-such-tool-here"));
    }
}
