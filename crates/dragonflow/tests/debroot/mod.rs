//! A fresh Debian 12 root in a directory, for installing the package: made by `debootstrap
//! --variant=minbase` once and cached as a tarball in /var/cache/dragonflow (with apt's
//! lists and Open vSwitch's packages downloaded, so later runs need no network and take
//! seconds), unpacked into a temporary directory per test.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CACHE_DIR: &str = "/var/cache/dragonflow";
const CACHE: &str = "/var/cache/dragonflow/debian12-minbase-v2.tar.gz";
const MIRROR: &str = "http://deb.debian.org/debian";

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn ok(what: &str, cmd: &mut Command) -> String {
    let out = output(what, cmd);
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` and returns its output, whatever its status.
pub fn output(what: &str, cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"))
}

/// The cached root tarball, made first if missing (one process at a time: the others wait
/// on the lock and then find it).
pub fn cached_tarball() -> PathBuf {
    fs::create_dir_all(CACHE_DIR).expect("cache dir");
    let lock = fs::File::create(Path::new(CACHE_DIR).join("debian12-minbase.lock")).expect("lock");
    lock.lock().expect("lock the cache");
    if !Path::new(CACHE).exists() {
        make_tarball();
    }
    PathBuf::from(CACHE)
}

fn make_tarball() {
    let dir = tempfile::tempdir_in(CACHE_DIR).expect("tempdir");
    let root = dir.path().join("root");
    eprintln!(
        "debroot: debootstrap bookworm into {} (once)",
        root.display()
    );
    ok(
        "debootstrap",
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&root)
            .arg(MIRROR),
    );
    let tmp = Path::new(CACHE_DIR).join("debian12-minbase-v2.tar.gz.tmp");
    let r = Root {
        _dir: dir,
        path: root,
    };
    r.resolv_conf();
    r.ok("apt-get update", &["apt-get", "update", "-q"]);
    // Open vSwitch and what it pulls in, and systemd (for `systemd-analyze` on the
    // installed units), downloaded, not installed.
    r.ok(
        "apt-get download",
        &[
            "apt-get",
            "install",
            "-y",
            "-q",
            "--download-only",
            "--no-install-recommends",
            "openvswitch-switch",
            "systemd",
        ],
    );
    ok(
        "tar the root",
        Command::new("tar")
            .arg("-C")
            .arg(&r.path)
            .args(["--numeric-owner", "-czf"])
            .arg(&tmp)
            .arg("."),
    );
    fs::rename(&tmp, CACHE).expect("rename the tarball");
}

/// A Debian 12 root unpacked in a temporary directory (removed on drop: nothing is
/// mounted inside).
pub struct Root {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Root {
    /// A fresh root from the cache, where no service starts (`policy-rc.d`, as in any
    /// chroot).
    pub fn fresh() -> Root {
        let tarball = cached_tarball();
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let path = dir.path().join("root");
        fs::create_dir(&path).expect("root dir");
        ok(
            "untar the root",
            Command::new("tar")
                .arg("-C")
                .arg(&path)
                .args(["--numeric-owner", "-xzf"])
                .arg(&tarball),
        );
        let r = Root { _dir: dir, path };
        r.resolv_conf();
        r.write("usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755);
        r
    }

    fn resolv_conf(&self) {
        let _ = fs::copy("/etc/resolv.conf", self.path.join("etc/resolv.conf"));
    }

    /// Writes `text` to `rel` (a path inside the root) with `mode`.
    pub fn write(&self, rel: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
        fs::write(&p, text).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path.join(rel)).unwrap_or_default()
    }

    /// A command run inside the root (chroot), non-interactive.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("chroot");
        c.arg(&self.path)
            .args(argv)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env_remove("DRAGONFLOW_CONFIG")
            .env_remove("DRAGONFLOW_LOG");
        c
    }

    /// Runs `argv` inside the root, panicking unless it succeeds; its stdout.
    pub fn ok(&self, what: &str, argv: &[&str]) -> String {
        ok(what, &mut self.command(argv))
    }

    /// Every path in the root (relative, directories too), but the kernel's and the
    /// package managers' own records: what a package may leave must show here.
    pub fn files(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        walk(&self.path, &self.path, &mut all);
        all
    }
}

fn walk(root: &Path, dir: &Path, all: &mut BTreeSet<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        if bookkeeping(&rel) {
            continue;
        }
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        all.insert(rel);
        if is_dir {
            walk(root, &p, all);
        }
    }
}

/// The records dpkg, apt and debconf keep of every operation (logs, caches, backups of
/// their databases): they change with any install, whatever the package. And the
/// kernel's and the runtime's file systems (`/run` is a tmpfs on a running system;
/// in the root, `systemd-analyze` leaves its own marker there).
fn bookkeeping(rel: &str) -> bool {
    [
        "proc",
        "dev",
        "run",
        "var/log",
        "var/cache/apt",
        "var/cache/debconf",
        "var/lib/apt",
        "var/lib/dpkg",
        "tmp",
    ]
    .iter()
    .any(|p| rel == *p || rel.starts_with(&format!("{p}/")))
}
