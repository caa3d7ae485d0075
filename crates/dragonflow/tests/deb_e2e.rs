//! The Debian package end to end. `scripts/package --binary` makes the .deb (cargo-deb)
//! from the binary this test build already has; then lintian and `systemd-analyze verify`
//! judge it, and a fresh Debian 12 root (debootstrap, cached) installs it with its
//! dependencies through apt, runs it (the CLI, the CNI plugin's name, a server on the
//! packaged config), upgrades it (a changed conffile kept; the units restarted, never
//! stopped) and purges it, leaving no file behind. And the controller runs as its unit
//! runs it: root without any capability, no new privileges, on real Open vSwitch.

mod common;
mod debroot;

use debroot::{Root, ok, output};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const UNITS: [&str; 2] = ["dragonflow-server.service", "dragonflow-controller.service"];

/// The workspace's root (scripts/ lives there).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The .deb (version 0.1.0-1) of this build's binary, made once per binary and packaging
/// files (the tests of this file share it: packaging strips and compresses 120 MB, about
/// 20 s) in target/tmp/deb-package/.
fn package() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_dragonflow"));
    let meta = std::fs::metadata(bin).expect("the binary");
    let stamp = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb-package");
    std::fs::create_dir_all(&base).expect("deb-package dir");
    let lock = std::fs::File::create(base.join("lock")).expect("lock");
    lock.lock().expect("lock");
    // The packaging's inputs too: a change of the units or the metadata packages again.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = vec![
        crate_dir.join("Cargo.toml"),
        workspace().join("scripts/package"),
    ];
    let mut debian: Vec<PathBuf> = std::fs::read_dir(crate_dir.join("debian"))
        .expect("debian/")
        .flatten()
        .map(|e| e.path())
        .collect();
    debian.sort();
    inputs.extend(debian);
    for f in inputs {
        std::hash::Hash::hash(&std::fs::read(&f).expect("packaging input"), &mut h);
    }
    let inputs = std::hash::Hasher::finish(&h);
    let out = base.join(format!("{stamp}-{}-{inputs:016x}", meta.len()));
    let made = std::fs::read_dir(&out).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
    });
    if let Some(deb) = made {
        return deb;
    }
    // Older binaries' packages go.
    for e in std::fs::read_dir(&base).expect("read").flatten() {
        if e.path().is_dir() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let t = Instant::now();
    let stdout = ok(
        "scripts/package",
        Command::new(workspace().join("scripts/package"))
            .arg("--binary")
            .arg(bin)
            .args(["--fast", "--deb-version", "0.1.0-1", "--out"])
            .arg(&out),
    );
    let deb = PathBuf::from(stdout.lines().last().expect("the .deb's path").trim());
    eprintln!("packaged {} in {:?}", deb.display(), t.elapsed());
    assert!(
        deb.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("dragonflow_0.1.0-1_")),
        "{deb:?}"
    );
    deb
}

/// `deb` as version `version`, in `out`: the same files, for an upgrade (repacked rather
/// than packaged again, which strips and compresses the binary again for 20 s).
fn with_version(deb: &Path, version: &str, out: &Path) -> PathBuf {
    let tree = tempfile::tempdir().expect("tempdir");
    let dir = tree.path().join("pkg");
    ok(
        "dpkg-deb -R",
        Command::new("dpkg-deb").arg("-R").arg(deb).arg(&dir),
    );
    let control = dir.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).expect("control");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("Version: ") {
                format!("Version: {version}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&control, text).expect("control");
    let name = deb
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let arch = name.rsplit('_').next().expect("arch");
    let new = out.join(format!("dragonflow_{version}_{arch}"));
    ok(
        "dpkg-deb -b",
        Command::new("dpkg-deb")
            .args(["-Zgzip", "-z1", "-b"])
            .arg(&dir)
            .arg(&new),
    );
    new
}

#[test]
fn the_package_is_lintian_clean() {
    if !testbed::require_root("the_package_is_lintian_clean") {
        return;
    }
    let deb = package();

    // Errors and warnings fail (overrides, each with its reason, ship in the package);
    // the informational tags are printed.
    let lint = output(
        "lintian",
        Command::new("lintian")
            .args([
                "--fail-on",
                "error,warning",
                "--display-info",
                "--tag-display-limit",
                "0",
            ])
            .arg(&deb),
    );
    let text =
        String::from_utf8_lossy(&lint.stdout).into_owned() + &String::from_utf8_lossy(&lint.stderr);
    eprintln!("lintian:\n{text}");
    assert!(lint.status.success(), "lintian failed:\n{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "lintian:\n{text}"
    );

    // What the package installs, with its conffiles and their modes.
    let control = tempfile::tempdir().expect("tempdir");
    ok(
        "dpkg-deb -e",
        Command::new("dpkg-deb")
            .arg("-e")
            .arg(&deb)
            .arg(control.path()),
    );
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).expect("conffiles");
    for f in [
        "/etc/dragonflow/dragonflow.toml",
        "/etc/dragonflow/controller.env",
    ] {
        assert!(
            conffiles.lines().any(|l| l == f),
            "{f} not a conffile: {conffiles}"
        );
    }
    let depends = ok(
        "dpkg-deb -f",
        Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Depends"),
    );
    assert!(depends.contains("openvswitch-switch"), "Depends: {depends}");
}

#[test]
fn installs_runs_upgrades_and_purges_in_a_fresh_debian_12_root() {
    if !testbed::require_root("installs_runs_upgrades_and_purges_in_a_fresh_debian_12_root") {
        return;
    }
    let started = Instant::now();
    let out = tempfile::tempdir().expect("tempdir");
    let v1 = package();
    let v2 = with_version(&v1, "0.1.0-2", out.path());
    let root = Root::fresh();
    eprintln!("root ready after {:?}", started.elapsed());

    // The dependencies first (apt, from the cached archives), so that the file lists
    // before and after name only what our package adds; and systemd, for its checks of
    // the installed units.
    let depends = ok(
        "dpkg-deb -f",
        Command::new("dpkg-deb").arg("-f").arg(&v1).arg("Depends"),
    );
    root.ok(
        "apt-get satisfy",
        &[
            "apt-get",
            "satisfy",
            "-y",
            "-q",
            "--no-install-recommends",
            depends.trim(),
        ],
    );
    root.ok(
        "apt-get install systemd",
        &[
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "systemd",
        ],
    );
    // systemd is not running in the root: a stand-in deb-systemd-invoke and systemctl
    // record what the maintainer scripts ask of it.
    std::fs::create_dir_all(root.path.join("run/systemd/system")).expect("run/systemd");
    let recorder = "#!/bin/sh\necho \"$(basename \"$0\") $*\" >>/root/systemd.log\n";
    root.write("usr/local/sbin/deb-systemd-invoke", recorder, 0o755);
    root.write("usr/local/bin/systemctl", recorder, 0o755);
    root.write("root/systemd.log", "", 0o644);
    let before = root.files();

    for deb in [&v1, &v2] {
        std::fs::copy(
            deb,
            root.path.join("root").join(deb.file_name().expect("name")),
        )
        .expect("copy the .deb");
    }
    let v1_name = format!("/root/{}", v1.file_name().expect("name").to_string_lossy());
    let v2_name = format!("/root/{}", v2.file_name().expect("name").to_string_lossy());
    let t = Instant::now();
    root.ok(
        "apt-get install ./dragonflow.deb",
        &[
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            &v1_name,
        ],
    );
    eprintln!("installed in {:?}", t.elapsed());

    // The CLI, and the CNI plugin by its name (a runtime runs it with no arguments).
    let version = root.ok("dragonflow --version", &["dragonflow", "--version"]);
    assert!(version.starts_with("dragonflow 0.1.0"), "{version}");
    let cni = output(
        "dragonflow-cni VERSION",
        root.command(&["/usr/lib/cni/dragonflow-cni"])
            .env("CNI_COMMAND", "VERSION")
            .stdin(std::process::Stdio::null()),
    );
    let cni_out = String::from_utf8_lossy(&cni.stdout);
    assert!(
        cni.status.success() && cni_out.contains("supportedVersions"),
        "dragonflow-cni VERSION: {}: {cni_out}",
        cni.status
    );
    let mode = |rel: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(root.path.join(rel))
            .expect(rel)
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("etc/dragonflow/dragonflow.toml"), 0o640);
    assert_eq!(mode("etc/dragonflow/controller.env"), 0o644);
    assert!(root.files().contains("usr/share/man/man1/dragonflow.1.gz"));

    units_verify_and_are_hardened(&root);
    server_on_the_packaged_config(&root);

    // Upgrade: the operator's change to a conffile stays; the units are restarted, if
    // running (try-restart), and never stopped.
    let env_file = root.path.join("etc/dragonflow/controller.env");
    let changed = root.read("etc/dragonflow/controller.env") + "# this host's own line\n";
    std::fs::write(&env_file, &changed).expect("change the conffile");
    root.write("root/systemd.log", "", 0o644);
    root.ok(
        "dpkg -i (upgrade)",
        &["dpkg", "-i", "--force-confold", &v2_name],
    );
    assert_eq!(root.read("etc/dragonflow/controller.env"), changed);
    let status = root.ok("dpkg-query", &["dpkg-query", "-W", "dragonflow"]);
    assert_eq!(status.trim(), "dragonflow\t0.1.0-2");
    let log = root.read("root/systemd.log");
    eprintln!("systemd calls during the upgrade:\n{log}");
    for unit in UNITS {
        assert!(
            log.lines()
                .any(|l| l.starts_with("deb-systemd-invoke try-restart") && l.contains(unit)),
            "no try-restart of {unit} on upgrade:\n{log}"
        );
        assert!(
            !log.lines()
                .any(|l| l.starts_with("deb-systemd-invoke stop") && l.contains(unit)),
            "{unit} stopped on upgrade:\n{log}"
        );
    }

    // Purge: the units are stopped, everything of ours goes (the state directory the
    // server made too).
    root.write("root/systemd.log", "", 0o644);
    root.ok("dpkg -P", &["dpkg", "-P", "dragonflow"]);
    let log = root.read("root/systemd.log");
    for unit in UNITS {
        assert!(
            log.lines()
                .any(|l| l.starts_with("deb-systemd-invoke stop") && l.contains(unit)),
            "{unit} not stopped on removal:\n{log}"
        );
    }
    for deb in [&v1_name, &v2_name] {
        std::fs::remove_file(root.path.join(deb.trim_start_matches('/'))).expect("rm .deb");
    }
    let after = root.files();
    let left: BTreeSet<_> = after.difference(&before).collect();
    let gone: BTreeSet<_> = before.difference(&after).collect();
    assert!(
        left.is_empty() && gone.is_empty(),
        "dpkg -P left {left:?} and removed {gone:?}"
    );
    eprintln!("whole test: {:?}", started.elapsed());
}

/// `dragonflow server --config /etc/dragonflow/dragonflow.toml` in the root, in a network
/// namespace of its own: the shipped config parses, the store and the NB secret go to
/// /var/lib/dragonflow, and the NB listener answers a reader.
fn server_on_the_packaged_config(root: &Root) {
    let ns = testbed::Netns::new(&testbed::unique_name("deb")).expect("netns");
    let chroot = |argv: &[&str]| {
        let mut c = ns.command(["chroot".as_ref(), root.path.as_os_str()]);
        c.args(argv).env_remove("DRAGONFLOW_CONFIG");
        c
    };
    let log = root.path.join("root/server.log");
    let mut server = chroot(&[
        "dragonflow",
        "server",
        "--config",
        "/etc/dragonflow/dragonflow.toml",
    ])
    .stdout(std::fs::File::create(&log).expect("log"))
    .stderr(std::fs::File::create(&log).expect("log"))
    .spawn()
    .expect("start the server");
    let deadline = Instant::now() + Duration::from_secs(30);
    let secret = root.path.join("var/lib/dragonflow/nb-secret");
    let revision = loop {
        if let Ok(Some(status)) = server.try_wait() {
            panic!(
                "the server stopped: {status}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if secret.exists() {
            let out = output(
                "dragonflow db revision",
                chroot(&[
                    "sh",
                    "-c",
                    "DRAGONFLOW_NB_TOKEN=$(dragonflow nb-token --secret-file \
                     /var/lib/dragonflow/nb-secret --reader) dragonflow db revision",
                ])
                .env_remove("DRAGONFLOW_NB_TOKEN"),
            );
            if out.status.success() {
                break String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server did not answer in 30 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(revision.parse::<u64>().is_ok(), "revision: {revision:?}");
    assert!(root.path.join("var/lib/dragonflow/nb.redb").exists());
    std::fs::remove_file(&log).expect("rm server.log");
}

/// systemd's own checks of the installed units, in the root where they are installed (the
/// binary, Open vSwitch's unit, systemd's targets): `verify` says nothing (no unknown
/// key, no missing command), and `security` rates each unit's exposure at most 2.5 of 10
/// ("OK").
fn units_verify_and_are_hardened(root: &Root) {
    let paths: Vec<String> = UNITS
        .iter()
        .map(|u| format!("/usr/lib/systemd/system/{u}"))
        .collect();
    let mut argv = vec!["systemd-analyze", "verify", "--man=no"];
    argv.extend(paths.iter().map(String::as_str));
    let verify = output("systemd-analyze verify", &mut root.command(&argv));
    let text = String::from_utf8_lossy(&verify.stdout).into_owned()
        + &String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && text.trim().is_empty(),
        "systemd-analyze verify: {}\n{text}",
        verify.status
    );
    for path in &paths {
        let sec = root.ok(
            "systemd-analyze security",
            &[
                "systemd-analyze",
                "security",
                "--offline=true",
                "--no-pager",
                path,
            ],
        );
        let line = sec
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| panic!("no exposure level:\n{sec}"));
        let level: f64 = line
            .split(": ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        eprintln!("{line}");
        assert!(level <= 2.5, "{path} too exposed:\n{sec}");
    }
}

/// dragonflow-controller.service runs the controller as root with an empty capability
/// bounding set and no new privileges, on a read-only file system (systemd is not PID 1
/// here: `unshare`, a read-only bind mount and `setpriv` make the same process). So run,
/// on real Open vSwitch, it still makes br-int, installs its flows and binds two VMs'
/// ports, which then ping each other.
#[test]
fn the_controller_works_without_capabilities_as_its_unit_runs_it() {
    if !testbed::require_root("the_controller_works_without_capabilities_as_its_unit_runs_it") {
        return;
    }
    let srv = common::Server::start();
    let ovs = testbed::Ovs::start().expect("ovs");
    let log = tempfile::NamedTempFile::new().expect("log");
    // ProtectSystem=strict's view: the whole file system read-only (a read-only bind of /
    // in a mount namespace of its own, /proc, /sys and /dev as they are), checked by a
    // write that must fail before the controller starts there.
    let view = tempfile::tempdir().expect("mount point");
    let mut ctl = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            r#"v=$1; shift
               mount --rbind / "$v" && mount -o remount,bind,ro "$v" || exit 98
               touch "$v/etc/dragonflow-write-probe" 2>/dev/null && exit 99
               exec chroot "$v" "$@""#,
        )
        .arg("sh")
        .arg(view.path())
        .arg("setpriv")
        .args([
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--no-new-privs",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_dragonflow"))
        .args([
            "controller",
            "--chassis",
            "host-a",
            "--local-ip",
            "192.0.2.1",
        ])
        .args(["--nb", &srv.nb_url])
        .arg(format!("--ovsdb=unix:{}", ovs.db_sock().display()))
        .arg(format!(
            "--openflow=unix:{}",
            ovs.mgmt_sock("br-int").display()
        ))
        .env("DRAGONFLOW_NB_TOKEN", common::host_token("host-a"))
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect("setpriv dragonflow controller");
    let dump = |ctl_log: &tempfile::NamedTempFile| {
        format!(
            "flows:\n{}\ncontroller:\n{}",
            ovs.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            std::fs::read_to_string(ctl_log.path()).unwrap_or_default()
        )
    };

    // What the process holds once it is the controller (unshare, sh, chroot and setpriv
    // each exec the next): no capability at all, and no way to gain one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{}/comm", ctl.id())).unwrap_or_default()
        != "dragonflow\n"
    {
        if let Ok(Some(st)) = ctl.try_wait() {
            panic!("the controller's wrapper stopped: {st}\n{}", dump(&log));
        }
        assert!(Instant::now() < deadline, "no controller:\n{}", dump(&log));
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", ctl.id())).expect("status");
    for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("{field}: {status}"));
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    assert!(status.lines().any(|l| l == "NoNewPrivs:\t1"), "{status}");
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t0\t")),
        "{status}"
    );

    common::cloud::wait_until("br-int", Duration::from_secs(20), || {
        ovs.vsctl(["br-exists", "br-int"]).is_ok()
    });
    let net = srv.network("caps", "10.77.0.0/24");
    let mut vms = Vec::new();
    let mut ips = Vec::new();
    for _ in 0..2 {
        let p = srv.create(
            "ports",
            "port",
            serde_json::json!({"network_id": net["id"]}),
        );
        let (mac, ip) = common::cloud::addr(&p);
        let id = p["id"].as_str().expect("id").to_string();
        vms.push(testbed::Vm::plug(&ovs, "br-int", &id, &mac, &format!("{ip}/24")).expect("plug"));
        ips.push(ip);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v) = srv.call("GET", &format!("/v2.0/ports/{id}"), None);
            if v["port"]["status"] == "ACTIVE" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "port not ACTIVE:\n{}",
                dump(&log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(vms[0].pings(&ips[1]), "no ping:\n{}", dump(&log));
    let _ = ctl.kill();
    let _ = ctl.wait();
}
