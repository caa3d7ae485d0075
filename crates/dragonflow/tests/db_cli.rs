//! `dragonflow db` against a running server (HTTP) and against the store file of a
//! stopped one, human-readable and `--json`.

mod common;

use common::Server;
use neutron_api::nb_auth::Principal;
use serde_json::{Value, json};
use std::process::Command;

/// `dragonflow db --nb nb ARGS`, with a reader token for a server's NB listener.
fn db(nb: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(["db", "--nb", nb])
        .env("DRAGONFLOW_NB_TOKEN", common::token(Principal::Reader))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run dragonflow db: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn db_reads_through_the_server_and_from_the_file() {
    let mut srv = Server::start();
    let net = srv.create("networks", "network", json!({"name": "blue"}));
    let id = net["id"].as_str().unwrap().to_string();
    let tables: Value =
        serde_json::from_str(&db(&srv.nb_url, &["--json", "tables"]).unwrap()).unwrap();
    assert_eq!(tables["tables"]["network"], 1, "{tables}");
    let ls = db(&srv.nb_url, &["ls", "network"]).unwrap();
    assert!(ls.contains(&id) && ls.contains("name blue"), "{ls}");
    let got: Value =
        serde_json::from_str(&db(&srv.nb_url, &["--json", "get", "network", &id]).unwrap())
            .unwrap();
    assert_eq!(got["value"]["name"], "blue");
    assert!(
        db(&srv.nb_url, &["ls", "widgets"])
            .unwrap_err()
            .contains("unknown table")
    );
    assert!(
        db(&srv.nb_url, &["get", "network", "nope"])
            .unwrap_err()
            .contains("not found")
    );
    let dump = db(&srv.nb_url, &["dump"]).unwrap();
    assert!(
        dump.contains("[network]") && dump.contains("key/network/1"),
        "{dump}"
    );
    // The file of a stopped server can be read directly.
    srv.stop();
    let file = format!("embedded:{}", srv.db_path().display());
    let ls = db(&file, &["ls", "network"]).unwrap();
    assert!(ls.contains(&id), "{ls}");
}

#[test]
fn db_watch_prints_changes_from_a_revision() {
    let srv = Server::start();
    srv.create("networks", "network", json!({"name": "w"}));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(["db", "--nb", &srv.nb_url, "--json", "watch", "--from", "1"])
        .env("DRAGONFLOW_NB_TOKEN", common::token(Principal::Reader))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["revision"], 1);
    srv.create("networks", "network", json!({"name": "later"}));
    let found = lines
        .by_ref()
        .take(20)
        .map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap())
        .any(|c| c["table"] == "network" && c["value"]["name"] == "later");
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "the watch saw the later network");
}

/// The embedded store's backup is its file (and the NB secret beside it), copied while the
/// server is stopped (docs/operations.md, "Backing up and restoring the store"): copied
/// back, the server serves what the backup held and nothing made after it, and goes on
/// from there.
#[test]
fn a_stopped_servers_store_file_is_its_backup_and_restores() {
    let mut srv = Server::start();
    srv.create("networks", "network", json!({"name": "before-backup"}));
    srv.stop();
    let backup = tempfile::tempdir().unwrap();
    for f in [srv.db_path(), srv.secret_file()] {
        std::fs::copy(&f, backup.path().join(f.file_name().unwrap())).unwrap();
    }
    srv.restart();
    srv.create("networks", "network", json!({"name": "after-backup"}));
    let names = |srv: &Server| -> Vec<String> {
        let (code, body) = srv.call("GET", "/v2.0/networks", None);
        assert_eq!(code, 200, "{body}");
        let mut n: Vec<String> = body["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&srv), ["after-backup", "before-backup"]);

    srv.stop();
    for f in [srv.db_path(), srv.secret_file()] {
        std::fs::copy(backup.path().join(f.file_name().unwrap()), &f).unwrap();
    }
    srv.restart();
    assert_eq!(names(&srv), ["before-backup"]);
    let file_rev = db(&srv.nb_url, &["revision"]).unwrap();
    srv.create("networks", "network", json!({"name": "after-restore"}));
    assert_eq!(names(&srv), ["after-restore", "before-backup"]);
    let rev = db(&srv.nb_url, &["revision"]).unwrap();
    assert!(
        rev.trim().parse::<u64>().unwrap() > file_rev.trim().parse::<u64>().unwrap(),
        "{file_rev} then {rev}"
    );
}
