//! `--real`: the same frame through this host's Open vSwitch (`ovs-appctl ofproto/trace`),
//! and the tables it went through compared with the compiled pipeline's. The commands find
//! their OVS instance as OVS's own tools do (`OVS_RUNDIR`, default `/var/run/openvswitch`).

use super::world::Iface;
use serde_json::Value;
use std::process::Command;

fn run(program: &str, args: &[&str]) -> Result<String, String> {
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
/// `--db`, else OVS's default).
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

/// The tables OVS's own trace of the frame went through, in order (`target`:
/// ovs-vswitchd's control socket, else OVS's default).
pub fn ofproto_trace(
    target: Option<&str>,
    bridge: &str,
    in_port: u32,
    frame: &[u8],
) -> Result<(Vec<u8>, String), String> {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let flow = format!("in_port={in_port}");
    let mut args = Vec::new();
    if let Some(t) = target {
        args.extend(["-t", t]);
    }
    args.extend(["ofproto/trace", bridge, &flow, &hex]);
    let out = run("ovs-appctl", &args)?;
    Ok((tables_of(&out, bridge), out))
}

/// The table numbers of the flows an `ofproto/trace` account hit on `bridge`: its lines
/// ` N. match, priority P, cookie C` (a table that matched nothing, ` N. No match.`, is left
/// out, as the compiled pipeline's account lists only flows hit). Sections of other bridges
/// (the underlay's, which a tunnelled packet enters next) are not counted.
pub fn tables_of(trace: &str, bridge: &str) -> Vec<u8> {
    let mine = format!("bridge(\"{bridge}\")");
    let mut on_mine = false;
    let mut out = Vec::new();
    for l in trace.lines() {
        let l = l.trim_start();
        if l.starts_with("bridge(\"") {
            on_mine = l == mine;
            continue;
        }
        if !on_mine {
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
}
