//! Running the system's tools and following processes: a tool's output or one line saying
//! what failed, daemons detached into their own process group, finding processes by their
//! command line or namespace, stopping them, waiting for a condition.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` (stdin closed); its stdout on success, else an error naming the command, its
/// arguments and its stderr.
pub fn run(cmd: &mut Command) -> io::Result<String> {
    let mut shown = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        shown.push(' ');
        shown.push_str(&a.to_string_lossy());
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {shown}: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `ip ARGS` in this process's namespace.
pub fn ip<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> io::Result<String> {
    run(Command::new("ip").args(args))
}

/// True when this process runs as root (needed for OVS and namespaces).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// True when `program` is on PATH (or in /usr/sbin, /sbin), or is an existing path.
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

/// Starts `cmd` detached from this process: its own process group (a Ctrl-C to the caller
/// does not reach it), no terminal, stdout and stderr to `log`. It outlives the caller.
/// Returns its pid.
pub fn spawn_detached(cmd: &mut Command, log: &Path) -> io::Result<u32> {
    spawn_detached_child(cmd, log).map(|c| c.id())
}

/// [`spawn_detached`], keeping the handle (to see an early exit).
pub(crate) fn spawn_detached_child(cmd: &mut Command, log: &Path) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let at = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", log.display()));
    let file = std::fs::File::create(log).map_err(at)?;
    let err = file.try_clone().map_err(at)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start {}: {e}", cmd.get_program().to_string_lossy()),
            )
        })?;
    Ok(child)
}

/// The pid in a pid file.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
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

/// Running processes (other than this one) whose command line mentions `needle`.
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

/// Processes (other than this one) running inside network namespace `ns`.
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
    wait_for(grace, || !pids.iter().any(|&p| alive(p)));
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    send("-KILL", &left);
}

/// Polls `cond` until it holds or `timeout` passes (every 10 ms at first, then every 50 ms);
/// returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
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
        let e = e.to_string();
        assert!(e.contains("sh -c") && e.contains("oops"), "{e}");
        assert_eq!(
            run(Command::new("echo").arg("hi")).ok().as_deref(),
            Some("hi\n")
        );
        assert!(have("sh") && !have("no-such-tool-here"));
    }

    #[test]
    fn a_detached_process_has_its_own_group_and_log() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("out.log");
        let pid = spawn_detached(
            Command::new("sh").args(["-c", "echo started; exec sleep 30.654321"]),
            &log,
        )
        .expect("spawn");
        assert!(wait_for(Duration::from_secs(5), || tail(&log, 1) == "started"));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        // Field 5 (after the command in parentheses) is the process group.
        let pgrp: u32 = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(2)?.parse().ok())
            .expect("pgrp");
        assert_eq!(pgrp, pid, "not a group of its own");
        terminate(&[pid], Duration::from_secs(5));
        assert!(wait_for(Duration::from_secs(5), || !alive(pid)));
    }
}
