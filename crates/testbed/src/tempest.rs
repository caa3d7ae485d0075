//! The upstream Neutron API suites (tempest's `tempest.api.network`, neutron-tempest-
//! plugin's `neutron_tempest_plugin.api`), installed by scripts/setup into their own
//! venv: their config, reading a run's results, the known-failure list that docs/api.md
//! keeps, and the tables a run records.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where scripts/setup installs tempest and the plugin.
pub fn venv() -> PathBuf {
    std::env::var_os("DF_TEMPEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/dragonflow/tempest-venv"))
}

pub fn installed() -> bool {
    venv().join("bin/tempest").exists()
}

/// The selection run: the whole network API of both suites.
pub const SELECTION: &str = r"^(tempest\.api\.network|neutron_tempest_plugin\.api)\.";

/// How one test (or a class's set-up or tear-down) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped(String),
}

/// Settings of one run.
pub struct Conf<'a> {
    pub keystone_url: &'a str,
    pub admin_password: &'a str,
    pub public_network_id: &'a str,
    /// What `GET /v2.0/extensions` lists, as tempest's `api_extensions`.
    pub extensions: &'a [String],
}

/// tempest.conf for a run with dynamic credentials (fresh projects per test class, as
/// in the OpenStack gate) against Keystone and the server in its catalog.
pub fn conf(c: &Conf<'_>) -> String {
    format!(
        "[DEFAULT]\nlog_file = tempest.log\n\n\
         [auth]\nuse_dynamic_credentials = true\nadmin_username = admin\n\
         admin_password = {pw}\nadmin_project_name = admin\nadmin_domain_name = Default\n\n\
         [identity]\nuri_v3 = {ks}/v3\nauth_version = v3\nregion = RegionOne\n\n\
         [identity-feature-enabled]\napi_v2 = false\n\n\
         [service_available]\nneutron = true\nnova = false\ncinder = false\nglance = false\n\
         swift = false\n\n\
         [network]\npublic_network_id = {public}\nfloating_network_name = public\n\
         project_network_cidr = 10.100.0.0/16\nproject_network_mask_bits = 28\n\
         project_networks_reachable = false\n\n\
         [network-feature-enabled]\napi_extensions = {ext}\nipv6 = true\n\
         ipv6_subnet_attributes = true\n\n\
         [neutron_plugin_options]\nagent_availability_zone = nova\n",
        pw = c.admin_password,
        ks = c.keystone_url,
        public = c.public_network_id,
        ext = c.extensions.join(","),
    )
}

/// A test id without its `[id-…,tags]` suffix.
fn bare(id: &str) -> &str {
    id.split('[').next().unwrap_or(id).trim()
}

/// The results in `tempest run`'s output: lines `{N} ID [1.2s] ... ok`, `... FAILED`,
/// `... SKIPPED: reason`; a class whose set-up failed shows as `setUpClass (Class)`.
pub fn parse_run(output: &str) -> BTreeMap<String, Outcome> {
    let mut out = BTreeMap::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix('{') else {
            continue;
        };
        let Some((_, rest)) = rest.split_once("} ") else {
            continue;
        };
        let Some((id, verdict)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let outcome = match verdict.trim() {
            "ok" => Outcome::Passed,
            "FAILED" => Outcome::Failed,
            v => match v.strip_prefix("SKIPPED") {
                Some(why) => Outcome::Skipped(why.trim_start_matches(':').trim().to_string()),
                None => continue,
            },
        };
        // `setUpClass (pkg.Class) [0.0s]` → `pkg.Class.setUpClass`.
        let id = bare(id);
        let id = match id.split_once(" (") {
            Some((fixture, class)) => format!("{}.{fixture}", class.trim_end_matches(')')),
            None => id.to_string(),
        };
        out.insert(id, outcome);
    }
    out
}

/// The known failures listed in a markdown block between `<!-- begin tempest-known -->`
/// and `<!-- end tempest-known -->`: table rows `| test id | reason |`.
pub fn known_failures(markdown: &str) -> BTreeMap<String, String> {
    let begin = "<!-- begin tempest-known -->";
    let end = "<!-- end tempest-known -->";
    let block = match (markdown.find(begin), markdown.find(end)) {
        (Some(a), Some(b)) if b > a => &markdown[a + begin.len()..b],
        _ => "",
    };
    block
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').collect();
            let id = cells.first()?.trim().trim_matches('`');
            let reason = cells.get(1)?.trim();
            (id.contains('.') && !reason.is_empty()).then(|| (id.to_string(), reason.to_string()))
        })
        .collect()
}

/// The module of a test id (`tempest.api.network.test_ports`): everything before the
/// class, the first part that starts with a capital letter.
pub fn module(id: &str) -> String {
    id.split('.')
        .take_while(|p| !p.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Passed, failed and skipped counts.
pub fn counts<'a>(results: impl IntoIterator<Item = &'a Outcome>) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for o in results {
        match o {
            Outcome::Passed => c.0 += 1,
            Outcome::Failed => c.1 += 1,
            Outcome::Skipped(_) => c.2 += 1,
        }
    }
    c
}

/// A markdown table, one row per test module: passed, failed, skipped, and the skip
/// reasons tempest gave.
pub fn module_table(results: &BTreeMap<String, Outcome>) -> String {
    let mut by_module: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
    for (id, o) in results {
        by_module.entry(module(id)).or_default().push(o);
    }
    let mut t = String::from(
        "| module | passed | failed | skipped | why skipped |\n|---|---|---|---|---|\n",
    );
    for (m, os) in &by_module {
        let (p, f, s) = counts(os.iter().copied());
        let mut why: Vec<&str> = os
            .iter()
            .filter_map(|o| match o {
                Outcome::Skipped(w) => Some(w.as_str()),
                _ => None,
            })
            .collect();
        why.sort_unstable();
        why.dedup();
        let why = why.join("; ").replace('|', "/");
        t.push_str(&format!("| `{m}` | {p} | {f} | {s} | {why} |\n"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "\
{0} tempest.api.network.test_ports.PortsTestJSON.test_create_port[id-0435,smoke] [0.51s] ... ok
{1} tempest.api.network.test_ports.PortsTestJSON.test_bulk[id-1] [0.2s] ... FAILED
{1} setUpClass (tempest.api.network.test_tags.TagsExtTest) ... FAILED
{0} neutron_tempest_plugin.api.test_trunk.TrunkTest.test_x[id-9] ... SKIPPED: trunk extension not enabled.
Captured traceback: ... ok
";

    #[test]
    fn a_run_is_read_test_by_test() {
        let r = parse_run(RUN);
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(
            r["tempest.api.network.test_ports.PortsTestJSON.test_create_port"],
            Outcome::Passed
        );
        assert_eq!(
            r["tempest.api.network.test_ports.PortsTestJSON.test_bulk"],
            Outcome::Failed
        );
        assert_eq!(
            r["tempest.api.network.test_tags.TagsExtTest.setUpClass"],
            Outcome::Failed
        );
        assert_eq!(
            r["neutron_tempest_plugin.api.test_trunk.TrunkTest.test_x"],
            Outcome::Skipped("trunk extension not enabled.".into())
        );
        assert_eq!(counts(r.values()), (1, 2, 1));
        assert_eq!(
            module("tempest.api.network.test_tags.TagsExtTest.setUpClass"),
            "tempest.api.network.test_tags"
        );
        let t = module_table(&r);
        assert!(
            t.contains("| `tempest.api.network.test_ports` | 1 | 1 | 0 |  |"),
            "{t}"
        );
        assert!(t.contains("trunk extension not enabled."), "{t}");
    }

    #[test]
    fn known_failures_come_from_their_block_only() {
        let md = "| `a.b.C.test_outside` | not in the block |\n\
                  <!-- begin tempest-known -->\n| test | reason |\n|---|---|\n\
                  | `tempest.api.network.x.C.test_a` | bulk create |\n\
                  | tempest.api.network.x.C.test_b | subnet pools |\n\
                  <!-- end tempest-known -->\n";
        let k = known_failures(md);
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(k["tempest.api.network.x.C.test_a"], "bulk create");
        assert!(!k.contains_key("a.b.C.test_outside"));
    }
}
