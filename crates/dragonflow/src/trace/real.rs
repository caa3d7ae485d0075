//! `--real`: the same frame through this host's Open vSwitch (`ovs-appctl ofproto/trace`),
//! and the tables it went through compared with the compiled pipeline's. The commands find
//! their OVS instance as OVS's own tools do (`OVS_RUNDIR`, default `/var/run/openvswitch`).

use super::world::Iface;
use serde_json::Value;
use std::process::Command;

pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// This host's interfaces with an OpenFlow port, as `ovs-vsctl` lists them (`db`: its
/// `--db`, else OVS's default), of every bridge.
pub fn interfaces(db: Option<&str>) -> Result<Vec<Iface>, String> {
    let db = db.map(|d| format!("--db={d}"));
    let mut args: Vec<&str> = db.iter().map(String::as_str).collect();
    args.extend([
        "--format=json",
        "--columns=name,ofport,external_ids",
        "list",
        "Interface",
    ]);
    parse_interfaces(&run("ovs-vsctl", &args)?)
}

/// [`interfaces`] of `bridge` only: OpenFlow port numbers are per bridge, and another
/// bridge's (br-phy's, br-ex's) would be taken for br-int's.
pub fn bridge_interfaces(db: Option<&str>, bridge: &str) -> Result<Vec<Iface>, String> {
    let flag = db.map(|d| format!("--db={d}"));
    let mut args: Vec<&str> = flag.iter().map(String::as_str).collect();
    args.extend(["list-ifaces", bridge]);
    let mine: Vec<String> = run("ovs-vsctl", &args)?
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let all = interfaces(db)?;
    Ok(all.into_iter().filter(|i| mine.contains(&i.name)).collect())
}

/// Parses `ovs-vsctl --format=json --columns=name,ofport,external_ids list Interface`.
pub fn parse_interfaces(json: &str) -> Result<Vec<Iface>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("ovs-vsctl's JSON: {e}"))?;
    let rows = v["data"].as_array().ok_or("ovs-vsctl's JSON: no data")?;
    let mut out = Vec::new();
    for row in rows {
        let (Some(name), Some(ofport)) = (row[0].as_str(), row[1].as_i64()) else {
            continue;
        };
        let Ok(ofport) = u32::try_from(ofport) else {
            continue;
        };
        if ofport == 0 || ofport > 0xff00 {
            continue;
        }
        let iface_id = row[2][1].as_array().and_then(|pairs| {
            pairs.iter().find_map(|p| {
                (p[0].as_str() == Some("iface-id")).then(|| p[1].as_str().map(str::to_string))?
            })
        });
        out.push(Iface {
            name: name.to_string(),
            iface_id,
            ofport,
        });
    }
    Ok(out)
}

/// What `ofproto/trace` said: the tables it went through on the bridge, in order, and
/// where it could not follow the packet, if it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsTrace {
    pub tables: Vec<u8>,
    /// Set when OVS's trace ends at a select group whose bucket the datapath picks by
    /// `dp_hash` after a recirculation, which `ofproto/trace` does not follow (it prints
    /// `-> no live bucket` and a `hash(...)` datapath action): what it went through is
    /// then a prefix of the real path.
    pub unfollowed: Option<String>,
    pub text: String,
}

/// The frame through `bridge` by `ofproto/trace` (`target`: ovs-vswitchd's control
/// socket, else OVS's default).
pub fn ofproto_trace(
    target: Option<&str>,
    bridge: &str,
    in_port: u32,
    frame: &[u8],
) -> Result<OvsTrace, String> {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let flow = format!("in_port={in_port}");
    let mut args = Vec::new();
    if let Some(t) = target {
        args.extend(["-t", t]);
    }
    args.extend(["ofproto/trace", bridge, &flow, &hex]);
    let out = run("ovs-appctl", &args)?;
    Ok(parse(&out, bridge))
}

/// Parses an `ofproto/trace` account of `bridge`.
pub fn parse(text: &str, bridge: &str) -> OvsTrace {
    let tables = tables_of(text, bridge);
    OvsTrace {
        unfollowed: unfollowed_group(text, &tables),
        tables,
        text: text.to_string(),
    }
}

/// The dp_hash select group OVS's trace stopped at, described.
fn unfollowed_group(text: &str, tables: &[u8]) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| *l == "-> no live bucket")?;
    let hashed = lines
        .iter()
        .any(|l| l.starts_with("Datapath actions:") && l.contains("hash("));
    if !hashed {
        // A group with no live bucket and no hash: a real drop, compared as it is.
        return None;
    }
    let group = lines[..at]
        .iter()
        .rev()
        .find(|l| l.starts_with("group:"))
        .copied()
        .unwrap_or("a select group");
    let table = tables
        .last()
        .map_or(String::new(), |t| format!("table {t}, "));
    Some(format!(
        "Open vSwitch's ofproto/trace does not follow the bucket the datapath picks by dp_hash after a recirculation ({table}{group}): compared up to it, the rest is the compiled pipeline's alone"
    ))
}

/// The table numbers of the flows an `ofproto/trace` account hit on `bridge`: its lines
/// ` N. match, priority P, cookie C` (a table that matched nothing, ` N. No match.`, is left
/// out, as the compiled pipeline's account lists only flows hit). Sections of other bridges
/// (the underlay's, which a tunnelled packet enters next) are not counted; such a section
/// is nested, and ends where the lines come back to less indentation than its header (the
/// next bucket of a group on `bridge`).
pub fn tables_of(trace: &str, bridge: &str) -> Vec<u8> {
    let mine = format!("bridge(\"{bridge}\")");
    // The sections enclosing the current line: (indentation of the header, ours).
    let mut sections: Vec<(usize, bool)> = Vec::new();
    let mut out = Vec::new();
    for raw in trace.lines() {
        let l = raw.trim_start();
        if l.is_empty() {
            continue;
        }
        let indent = raw.len() - l.len();
        while sections.last().is_some_and(|(i, _)| indent < *i) {
            sections.pop();
        }
        if l.starts_with("bridge(\"") {
            // A header as indented as the current one starts the next section (after a
            // recirculation), not one inside it.
            if sections.last().is_some_and(|(i, _)| *i == indent) {
                sections.pop();
            }
            sections.push((indent, l == mine));
            continue;
        }
        if !sections.last().is_some_and(|(_, m)| *m) {
            continue;
        }
        let Some((n, rest)) = l.split_once(". ") else {
            continue;
        };
        if rest.starts_with("No match") {
            continue;
        }
        if let Ok(n) = n.parse() {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_read_with_their_iface_ids() {
        let json = r#"{"data":[["tap1",5,["map",[["attached-mac","fa:16:3e:00:00:01"],["iface-id","p1"]]]],["br-int",65534,["map",[]]],["tun-geneve",7,["map",[]]],["new",["set",[]],["map",[]]]],"headings":["name","ofport","external_ids"]}"#;
        let got = parse_interfaces(json).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|i| (i.name.as_str(), i.ofport, i.iface_id.as_deref()))
            .collect();
        assert_eq!(
            names,
            vec![("tap1", 5, Some("p1")), ("tun-geneve", 7, None)]
        );
        assert!(parse_interfaces("not json").is_err());
    }

    #[test]
    fn the_tables_of_an_ofproto_trace_are_its_numbered_lines_that_matched() {
        let trace = "Flow: icmp,in_port=5\n\nbridge(\"br-int\")\n----------------\n 0. in_port=5, priority 100, cookie 0x100000000000001\n    goto_table:1\n 1. reg6=0x1, priority 100\n    goto_table:10\n10. ip,metadata=0x1, priority 100\n    ct(table=15,zone=NXM_NX_REG4[0..15])\n    drop\n15. No match.\n     -> output to native tunnel\n         bridge(\"br-phy\")\n         ------------------\n          0. priority 0\n             NORMAL\n\nFinal flow: unchanged\n";
        assert_eq!(tables_of(trace, "br-int"), vec![0, 1, 10]);
    }

    /// A group's buckets on br-int, the first of which tunnels (a nested br-phy section):
    /// the second bucket's tables are br-int's again (a TaaS mirror, seen in taas_e2e).
    #[test]
    fn a_bucket_after_a_nested_underlay_section_counts_again() {
        let trace = "bridge(\"br-int\")\n----------------\n 0. reg0=0/0x1,in_port=5, priority 200, cookie 0x1600000000000002\n    group:536870914\n    bucket 0\n            set_field:192.0.2.2->tun_dst\n            output:1\n             -> output to native tunnel\n\n        bridge(\"br-phy\")\n        ----------------\n         0. priority 0\n            NORMAL\n    bucket 1\n            resubmit(,0)\n         0. in_port=5,vlan_tci=0x0000/0x1fff, priority 100, cookie 0x100000000000002\n            goto_table:1\n         1. ip,reg6=0x2, priority 100\n            goto_table:10\n        10. ip,metadata=0x1, priority 100\n            drop\n\nFinal flow: unchanged\n\n===\nrecirc(0x1)\n===\n\nbridge(\"br-int\")\n----------------\n    thaw\n        Resuming from table 15\n15. ip,reg6=0x2, priority 100\n    goto_table:16\n";
        let t = parse(trace, "br-int");
        assert_eq!(t.tables, vec![0, 0, 1, 10, 15]);
        assert_eq!(t.unfollowed, None);
    }

    /// A select group whose bucket the datapath picks by dp_hash: OVS's trace stops there,
    /// and says so; a group with no live bucket and no hash is a drop, compared as such.
    #[test]
    fn a_dp_hash_group_is_where_ovs_stops_following_and_is_named() {
        let trace = "bridge(\"br-int\")\n----------------\n    thaw\n        Resuming from table 22\n22. ct_state=+new-inv+trk,tcp, priority 100, cookie 0x1200000000000001\n    group:33554688\n     -> no live bucket\n\nFinal flow: unchanged\nMegaflow: recirc_id=0x6,eth,tcp\nDatapath actions: hash(sym_l4(0)),recirc(0x7)\n";
        let t = parse(trace, "br-int");
        assert_eq!(t.tables, vec![22]);
        let u = t.unfollowed.expect("named");
        assert!(
            u.contains("table 22") && u.contains("group:33554688"),
            "{u}"
        );
        let dead = trace.replace("hash(sym_l4(0)),recirc(0x7)", "drop");
        assert_eq!(parse(&dead, "br-int").unfollowed, None);
    }
}
