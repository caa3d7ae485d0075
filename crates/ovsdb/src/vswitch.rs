//! Idempotent helpers for the Open_vSwitch schema: bridges (with controllers), ports and
//! interfaces, as `ovs-vsctl` would write them.
//!
//! Each helper reads what exists, computes only the differences, and commits them in one
//! transaction guarded by `wait` operations on what it read (the IDL's "verify"): if another
//! client changed those rows in between, the transaction fails with "timed out" and the helper
//! re-reads and tries again. Like `ovs-vsctl`, a change bumps `Open_vSwitch:next_cfg`, so a
//! caller can wait for ovs-vswitchd to apply it ([`Client::wait_reconfigured`]).
//!
//! Rows of `Port`, `Interface` and `Controller` are not root rows: removing the last reference
//! (from `Bridge:ports` or `Bridge:controller`) deletes them, so deletions are mutations of
//! the referencing set.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::iface::InterfaceState;
use crate::ops::{Condition, Mutation, Mutator, OpResult, Operation, WaitUntil};
use crate::value::{Atom, Row, Uuid, Value};

/// `Bridge:fail_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Keep the installed flows when no controller is connected.
    Secure,
    /// Act as a learning switch when no controller is connected.
    Standalone,
}

impl FailMode {
    fn as_str(self) -> &'static str {
        match self {
            FailMode::Secure => "secure",
            FailMode::Standalone => "standalone",
        }
    }
}

/// The desired state of a bridge. `None`/empty fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BridgeSpec {
    /// Bridge name.
    pub name: String,
    /// `datapath_type`, e.g. `netdev` for the userspace datapath.
    pub datapath_type: Option<String>,
    /// `fail_mode`.
    pub fail_mode: Option<FailMode>,
    /// `protocols`, e.g. `["OpenFlow13"]` (exact set).
    pub protocols: Option<Vec<String>>,
    /// Controller targets, e.g. `unix:/path` or `tcp:127.0.0.1:6653` (exact set).
    pub controllers: Option<Vec<String>>,
    /// `other_config` keys to set (other keys are kept).
    pub other_config: BTreeMap<String, String>,
    /// `external_ids` keys to set (other keys are kept).
    pub external_ids: BTreeMap<String, String>,
}

impl BridgeSpec {
    /// A spec that only requires the bridge to exist.
    pub fn new(name: &str) -> BridgeSpec {
        BridgeSpec {
            name: name.to_string(),
            ..BridgeSpec::default()
        }
    }

    /// Sets `datapath_type`.
    pub fn datapath_type(mut self, t: &str) -> BridgeSpec {
        self.datapath_type = Some(t.to_string());
        self
    }

    /// Sets `fail_mode`.
    pub fn fail_mode(mut self, m: FailMode) -> BridgeSpec {
        self.fail_mode = Some(m);
        self
    }

    /// Sets `protocols`.
    pub fn protocols(mut self, p: &[&str]) -> BridgeSpec {
        self.protocols = Some(p.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Sets the controller targets.
    pub fn controllers(mut self, targets: &[&str]) -> BridgeSpec {
        self.controllers = Some(targets.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Sets one `other_config` key.
    pub fn other_config(mut self, k: &str, v: &str) -> BridgeSpec {
        self.other_config.insert(k.to_string(), v.to_string());
        self
    }

    /// Sets one `external_ids` key.
    pub fn external_id(mut self, k: &str, v: &str) -> BridgeSpec {
        self.external_ids.insert(k.to_string(), v.to_string());
        self
    }
}

/// Tunnel encapsulations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// `geneve`
    Geneve,
    /// `vxlan`
    Vxlan,
    /// `gre`
    Gre,
}

impl TunnelKind {
    /// The `Interface:type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Geneve => "geneve",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Gre => "gre",
        }
    }
}

/// The desired state of a port with its single interface of the same name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortSpec {
    /// Port and interface name.
    pub name: String,
    /// `Interface:type` (`""` for a system device, `internal`, `geneve`, `patch`, ...).
    pub iface_type: String,
    /// `Interface:options` (exact map).
    pub options: BTreeMap<String, String>,
    /// `Interface:external_ids` (exact map).
    pub external_ids: BTreeMap<String, String>,
    /// `Interface:ofport_request`.
    pub ofport_request: Option<i64>,
    /// `Port:tag` (access VLAN).
    pub tag: Option<i64>,
}

impl PortSpec {
    /// An existing network device (e.g. the host end of a VM's veth).
    pub fn system(name: &str) -> PortSpec {
        PortSpec {
            name: name.to_string(),
            ..PortSpec::default()
        }
    }

    /// An internal port (a device created by OVS).
    pub fn internal(name: &str) -> PortSpec {
        PortSpec {
            iface_type: "internal".into(),
            ..PortSpec::system(name)
        }
    }

    /// A flow-based tunnel port: `options:remote_ip=flow options:key=flow`, so one port
    /// reaches every peer, the remote IP and key being set by flows.
    pub fn tunnel(name: &str, kind: TunnelKind) -> PortSpec {
        PortSpec {
            iface_type: kind.as_str().into(),
            ..PortSpec::system(name)
        }
        .option("remote_ip", "flow")
        .option("key", "flow")
    }

    /// One end of a patch port pair (the other end names this one as its peer).
    pub fn patch(name: &str, peer: &str) -> PortSpec {
        PortSpec {
            iface_type: "patch".into(),
            ..PortSpec::system(name)
        }
        .option("peer", peer)
    }

    /// Sets one option.
    pub fn option(mut self, k: &str, v: &str) -> PortSpec {
        self.options.insert(k.to_string(), v.to_string());
        self
    }

    /// Sets one external id.
    pub fn external_id(mut self, k: &str, v: &str) -> PortSpec {
        self.external_ids.insert(k.to_string(), v.to_string());
        self
    }

    /// Sets `external_ids:iface-id` (the Neutron port id of the VM interface).
    pub fn iface_id(self, id: &str) -> PortSpec {
        self.external_id("iface-id", id)
    }

    /// Sets `ofport_request`.
    pub fn ofport_request(mut self, n: i64) -> PortSpec {
        self.ofport_request = Some(n);
        self
    }

    /// Sets the access VLAN tag.
    pub fn tag(mut self, vlan: i64) -> PortSpec {
        self.tag = Some(vlan);
        self
    }

    fn iface_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("name".into(), Value::from(self.name.as_str()));
        r.insert("type".into(), Value::from(self.iface_type.as_str()));
        r.insert("options".into(), Value::string_map(self.options.clone()));
        r.insert(
            "external_ids".into(),
            Value::string_map(self.external_ids.clone()),
        );
        r.insert("ofport_request".into(), opt_int(self.ofport_request));
        r
    }
}

fn opt_int(v: Option<i64>) -> Value {
    match v {
        Some(i) => Value::from(i),
        None => Value::empty_set(),
    }
}

/// What an idempotent helper did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The uuid of the bridge (or interface, for ports) that now matches the spec.
    pub uuid: Uuid,
    /// False when everything already matched and nothing was written.
    pub changed: bool,
    /// The `next_cfg` this change bumped to, when something changed.
    pub next_cfg: Option<i64>,
}

/// Times a helper re-reads and retries (see [`is_retryable`]).
const ATTEMPTS: usize = 5;

const OVS: &str = "Open_vSwitch";

/// Errors after which an idempotent helper simply starts over: a concurrent change (its
/// `wait` failed) or a connection lost mid-request (whether it committed or not, re-reading
/// tells).
fn is_retryable(e: &Error) -> bool {
    match e {
        Error::Transaction { op: Some(_), error } => error.kind == ErrorKind::TimedOut,
        Error::Disconnected => true,
        _ => false,
    }
}

fn named(n: &str) -> Atom {
    Atom::NamedUuid(n.to_string())
}

fn rows_of(r: Option<&OpResult>) -> &[Row] {
    r.and_then(|r| r.rows.as_deref()).unwrap_or(&[])
}

fn uuid_of(row: &Row) -> Result<Uuid> {
    row.get("_uuid")
        .and_then(Value::as_atom)
        .and_then(Atom::as_uuid)
        .cloned()
        .ok_or_else(|| Error::Protocol("row without _uuid".into()))
}

/// `wait` (timeout 0) that `table` rows matching `conditions` still have the values read.
fn verify(table: &str, conditions: Vec<Condition>, read: &[Row], columns: &[&str]) -> Operation {
    Operation::Wait {
        table: table.into(),
        conditions,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        until: WaitUntil::Equal,
        rows: read
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .filter_map(|c| Some((c.to_string(), r.get(*c)?.clone())))
                    .collect()
            })
            .collect(),
        timeout_ms: Some(0),
    }
}

/// Appends the `next_cfg` bump (and its read-back) to `ops`.
fn bump(ops: &mut Vec<Operation>) {
    ops.push(Operation::mutate(
        OVS,
        vec![],
        vec![Mutation::new("next_cfg", Mutator::Add, 1i64)],
    ));
    ops.push(Operation::select(OVS, vec![], Some(&["next_cfg"])));
}

fn bumped(results: &[OpResult]) -> Option<i64> {
    results
        .last()
        .and_then(|r| r.rows.as_ref())
        .and_then(|rows| rows.first())
        .and_then(|r| r.get("next_cfg"))
        .and_then(Value::as_integer)
}

fn merged(cur: Option<&Value>, want: &BTreeMap<String, String>) -> Option<Value> {
    let cur = cur.map(Value::as_string_map).unwrap_or_default();
    let mut m = cur.clone();
    m.extend(want.clone());
    (m != cur).then(|| Value::string_map(m))
}

impl Client {
    /// Makes bridge `spec.name` exist with the given settings, writing only what differs.
    pub async fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<Applied> {
        retry(|| self.ensure_bridge_once(spec)).await
    }

    async fn ensure_bridge_once(&self, spec: &BridgeSpec) -> Result<Applied> {
        const COLS: &[&str] = &[
            "datapath_type",
            "fail_mode",
            "protocols",
            "controller",
            "other_config",
            "external_ids",
        ];
        let by_name = || vec![Condition::eq("name", spec.name.as_str())];
        let read = self
            .transact(&[
                Operation::select(OVS, vec![], Some(&["_uuid"])),
                Operation::select("Bridge", by_name(), None),
                Operation::select("Controller", vec![], Some(&["_uuid", "target"])),
            ])
            .await?;
        let roots = rows_of(read.first());
        let bridges = rows_of(read.get(1));
        let ctl_targets: BTreeMap<Uuid, String> = rows_of(read.get(2))
            .iter()
            .filter_map(|r| Some((uuid_of(r).ok()?, r.get("target")?.as_str()?.to_string())))
            .collect();

        let mut ops = Vec::new();
        let mut want = Row::new();
        if let Some(t) = &spec.datapath_type {
            want.insert("datapath_type".into(), Value::from(t.as_str()));
        }
        if let Some(m) = spec.fail_mode {
            want.insert("fail_mode".into(), Value::from(m.as_str()));
        }
        if let Some(p) = &spec.protocols {
            want.insert("protocols".into(), Value::set(p.iter().map(String::as_str)));
        }

        let Some(existing) = bridges.first() else {
            // Create: the bridge, its local internal port, controllers; reference it from the
            // root row. The wait guards against a concurrent creator of the same name.
            ops.push(verify("Bridge", by_name(), &[], &["name"]));
            let mut iface = Row::new();
            iface.insert("name".into(), Value::from(spec.name.as_str()));
            iface.insert("type".into(), Value::from("internal"));
            ops.push(Operation::insert_named("Interface", iface, "iface"));
            let mut port = Row::new();
            port.insert("name".into(), Value::from(spec.name.as_str()));
            port.insert("interfaces".into(), Value::set([named("iface")]));
            ops.push(Operation::insert_named("Port", port, "port"));
            if let Some(targets) = &spec.controllers {
                want.insert("controller".into(), insert_controllers(&mut ops, targets));
            }
            want.insert("name".into(), Value::from(spec.name.as_str()));
            want.insert("ports".into(), Value::set([named("port")]));
            want.insert(
                "other_config".into(),
                Value::string_map(spec.other_config.clone()),
            );
            want.insert(
                "external_ids".into(),
                Value::string_map(spec.external_ids.clone()),
            );
            let bridge_op = ops.len();
            ops.push(Operation::insert_named("Bridge", want, "bridge"));
            if roots.is_empty() {
                // No root row yet (`ovs-vsctl init` never ran): create it, as init would.
                let mut root = Row::new();
                root.insert("bridges".into(), Value::set([named("bridge")]));
                ops.push(Operation::insert(OVS, root));
            } else {
                ops.push(Operation::mutate(
                    OVS,
                    vec![],
                    vec![Mutation::new(
                        "bridges",
                        Mutator::Insert,
                        Value::set([named("bridge")]),
                    )],
                ));
            }
            bump(&mut ops);
            let res = self.transact(&ops).await?;
            let uuid = res
                .get(bridge_op)
                .and_then(|r| r.uuid.clone())
                .ok_or_else(|| Error::Protocol("insert returned no uuid".into()))?;
            return Ok(Applied {
                uuid,
                changed: true,
                next_cfg: bumped(&res),
            });
        };

        let uuid = uuid_of(existing)?;
        let mut update = Row::new();
        for (col, v) in want {
            if existing.get(&col) != Some(&v) {
                update.insert(col, v);
            }
        }
        if let Some(targets) = &spec.controllers {
            let have: std::collections::BTreeSet<&str> = existing
                .get("controller")
                .map(Value::uuids)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|u| ctl_targets.get(u).map(String::as_str))
                .collect();
            let want: std::collections::BTreeSet<&str> =
                targets.iter().map(String::as_str).collect();
            let n_refs = existing.get("controller").map_or(0, |v| v.uuids().len());
            if have != want || n_refs != want.len() {
                // Replaced rows are garbage-collected once unreferenced.
                let refs = insert_controllers(&mut ops, targets);
                update.insert("controller".into(), refs);
            }
        }
        if let Some(v) = merged(existing.get("other_config"), &spec.other_config) {
            update.insert("other_config".into(), v);
        }
        if let Some(v) = merged(existing.get("external_ids"), &spec.external_ids) {
            update.insert("external_ids".into(), v);
        }
        if update.is_empty() {
            return Ok(Applied {
                uuid,
                changed: false,
                next_cfg: None,
            });
        }
        ops.insert(
            0,
            verify(
                "Bridge",
                vec![Condition::uuid(&uuid)],
                std::slice::from_ref(existing),
                COLS,
            ),
        );
        ops.push(Operation::update(
            "Bridge",
            vec![Condition::uuid(&uuid)],
            update,
        ));
        bump(&mut ops);
        let res = self.transact(&ops).await?;
        Ok(Applied {
            uuid,
            changed: true,
            next_cfg: bumped(&res),
        })
    }

    /// Deletes bridge `name` (with its ports); returns false when it did not exist.
    pub async fn del_bridge(&self, name: &str) -> Result<bool> {
        let read = self
            .transact(&[Operation::select(
                "Bridge",
                vec![Condition::eq("name", name)],
                Some(&["_uuid"]),
            )])
            .await?;
        let Some(row) = rows_of(read.first()).first() else {
            return Ok(false);
        };
        let uuid = uuid_of(row)?;
        let mut ops = vec![Operation::mutate(
            OVS,
            vec![],
            vec![Mutation::new(
                "bridges",
                Mutator::Delete,
                Value::set([Atom::Uuid(uuid)]),
            )],
        )];
        bump(&mut ops);
        self.transact(&ops).await?;
        Ok(true)
    }

    /// Makes port `spec.name` (with one interface of the same name) exist on `bridge` with
    /// the given type, options and external ids, writing only what differs. Fails with
    /// [`Error::Invalid`] when the bridge does not exist or the port is on another bridge.
    /// Returns the interface's uuid.
    pub async fn add_port(&self, bridge: &str, spec: &PortSpec) -> Result<Applied> {
        retry(|| self.add_port_once(bridge, spec)).await
    }

    async fn add_port_once(&self, bridge: &str, spec: &PortSpec) -> Result<Applied> {
        const ICOLS: &[&str] = &["type", "options", "external_ids", "ofport_request"];
        let name = spec.name.as_str();
        let read = self
            .transact(&[
                Operation::select(
                    "Bridge",
                    vec![Condition::eq("name", bridge)],
                    Some(&["_uuid", "ports"]),
                ),
                Operation::select(
                    "Port",
                    vec![Condition::eq("name", name)],
                    Some(&["_uuid", "interfaces", "tag"]),
                ),
                Operation::select(
                    "Interface",
                    vec![Condition::eq("name", name)],
                    Some(&["_uuid", "type", "options", "external_ids", "ofport_request"]),
                ),
            ])
            .await?;
        let br = rows_of(read.first())
            .first()
            .ok_or_else(|| Error::Invalid(format!("no bridge {bridge}")))?;
        let br_uuid = uuid_of(br)?;
        let br_ports = br.get("ports").map(Value::uuids).unwrap_or_default();
        let mut ops = Vec::new();

        if let Some(port) = rows_of(read.get(1)).first() {
            let port_uuid = uuid_of(port)?;
            if !br_ports.contains(&&port_uuid) {
                return Err(Error::Invalid(format!(
                    "port {name} exists on another bridge"
                )));
            }
            let port_ifaces = port.get("interfaces").map(Value::uuids).unwrap_or_default();
            let iface = rows_of(read.get(2))
                .iter()
                .find(|r| uuid_of(r).is_ok_and(|u| port_ifaces.contains(&&u)))
                .ok_or_else(|| Error::Invalid(format!("port {name} has no interface {name}")))?;
            let iface_uuid = uuid_of(iface)?;
            let mut update = Row::new();
            for (col, v) in spec.iface_row() {
                if col != "name" && iface.get(&col) != Some(&v) {
                    update.insert(col, v);
                }
            }
            let tag = opt_int(spec.tag);
            let retag = port.get("tag") != Some(&tag);
            if update.is_empty() && !retag {
                return Ok(Applied {
                    uuid: iface_uuid,
                    changed: false,
                    next_cfg: None,
                });
            }
            if !update.is_empty() {
                ops.push(verify(
                    "Interface",
                    vec![Condition::uuid(&iface_uuid)],
                    std::slice::from_ref(iface),
                    ICOLS,
                ));
                ops.push(Operation::update(
                    "Interface",
                    vec![Condition::uuid(&iface_uuid)],
                    update,
                ));
            }
            if retag {
                let mut row = Row::new();
                row.insert("tag".into(), tag);
                ops.push(Operation::update(
                    "Port",
                    vec![Condition::uuid(&port_uuid)],
                    row,
                ));
            }
            bump(&mut ops);
            let res = self.transact(&ops).await?;
            return Ok(Applied {
                uuid: iface_uuid,
                changed: true,
                next_cfg: bumped(&res),
            });
        }

        ops.push(verify(
            "Port",
            vec![Condition::eq("name", name)],
            &[],
            &["name"],
        ));
        ops.push(Operation::insert_named(
            "Interface",
            spec.iface_row(),
            "iface",
        ));
        let mut port = Row::new();
        port.insert("name".into(), Value::from(name));
        port.insert("interfaces".into(), Value::set([named("iface")]));
        port.insert("tag".into(), opt_int(spec.tag));
        ops.push(Operation::insert_named("Port", port, "port"));
        ops.push(Operation::mutate(
            "Bridge",
            vec![Condition::uuid(&br_uuid)],
            vec![Mutation::new(
                "ports",
                Mutator::Insert,
                Value::set([named("port")]),
            )],
        ));
        bump(&mut ops);
        let res = self.transact(&ops).await?;
        let uuid = res
            .get(1)
            .and_then(|r| r.uuid.clone())
            .ok_or_else(|| Error::Protocol("insert returned no uuid".into()))?;
        Ok(Applied {
            uuid,
            changed: true,
            next_cfg: bumped(&res),
        })
    }

    /// Removes port `name` from `bridge` (its interfaces go with it); returns false when the
    /// bridge has no such port.
    pub async fn del_port(&self, bridge: &str, name: &str) -> Result<bool> {
        let read = self
            .transact(&[
                Operation::select(
                    "Bridge",
                    vec![Condition::eq("name", bridge)],
                    Some(&["_uuid", "ports"]),
                ),
                Operation::select("Port", vec![Condition::eq("name", name)], Some(&["_uuid"])),
            ])
            .await?;
        let Some(br) = rows_of(read.first()).first() else {
            return Ok(false);
        };
        let Some(port) = rows_of(read.get(1)).first() else {
            return Ok(false);
        };
        let port_uuid = uuid_of(port)?;
        if !br
            .get("ports")
            .map(Value::uuids)
            .unwrap_or_default()
            .contains(&&port_uuid)
        {
            return Ok(false);
        }
        let mut ops = vec![Operation::mutate(
            "Bridge",
            vec![Condition::uuid(&uuid_of(br)?)],
            vec![Mutation::new(
                "ports",
                Mutator::Delete,
                Value::set([Atom::Uuid(port_uuid)]),
            )],
        )];
        bump(&mut ops);
        self.transact(&ops).await?;
        Ok(true)
    }

    /// Names of the ports of `bridge`, sorted, without the bridge's own local port (as
    /// `ovs-vsctl list-ports`).
    pub async fn list_ports(&self, bridge: &str) -> Result<Vec<String>> {
        let read = self
            .transact(&[
                Operation::select(
                    "Bridge",
                    vec![Condition::eq("name", bridge)],
                    Some(&["ports"]),
                ),
                Operation::select("Port", vec![], Some(&["_uuid", "name"])),
            ])
            .await?;
        let br = rows_of(read.first())
            .first()
            .ok_or_else(|| Error::Invalid(format!("no bridge {bridge}")))?;
        let ports = br.get("ports").map(Value::uuids).unwrap_or_default();
        let mut names: Vec<String> = rows_of(read.get(1))
            .iter()
            .filter(|r| uuid_of(r).is_ok_and(|u| ports.contains(&&u)))
            .filter_map(|r| r.get("name")?.as_str().map(str::to_string))
            .filter(|n| n != bridge)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The current state of interface `name`, if it exists.
    pub async fn get_interface(&self, name: &str) -> Result<Option<InterfaceState>> {
        let read = self
            .transact(&[Operation::select(
                "Interface",
                vec![Condition::eq("name", name)],
                Some(crate::iface::COLUMNS_WITH_UUID),
            )])
            .await?;
        match rows_of(read.first()).first() {
            None => Ok(None),
            Some(r) => Ok(Some(InterfaceState::from_row(uuid_of(r)?, r))),
        }
    }

    /// Names of all bridges, sorted.
    pub async fn list_bridges(&self) -> Result<Vec<String>> {
        let read = self
            .transact(&[Operation::select("Bridge", vec![], Some(&["name"]))])
            .await?;
        let mut names: Vec<String> = rows_of(read.first())
            .iter()
            .filter_map(|r| r.get("name")?.as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Waits until interface `name` has a valid OpenFlow port number assigned by
    /// ovs-vswitchd and returns it. Fails with [`Error::Timeout`] after `timeout` (also when
    /// ovs-vswitchd could not open the interface, `ofport` -1).
    pub async fn wait_ofport(&self, name: &str, timeout: Duration) -> Result<u32> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = self.get_interface(name).await?;
            if let Some(p) = state.as_ref().and_then(InterfaceState::ofport) {
                return Ok(p);
            }
            if tokio::time::Instant::now() >= deadline {
                let got = state.map(|s| s.ofport);
                return Err(Error::Timeout(format!(
                    "interface {name} has no valid ofport (ofport {got:?})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until ovs-vswitchd has applied configuration `next_cfg` (`cur_cfg` reached it).
    pub async fn wait_reconfigured(&self, next_cfg: i64, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let read = self
                .transact(&[Operation::select(OVS, vec![], Some(&["cur_cfg"]))])
                .await?;
            let cur = rows_of(read.first())
                .first()
                .and_then(|r| r.get("cur_cfg"))
                .and_then(Value::as_integer)
                .unwrap_or(0);
            if cur >= next_cfg {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "cur_cfg {cur} did not reach {next_cfg}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn insert_controllers(ops: &mut Vec<Operation>, targets: &[String]) -> Value {
    let mut refs = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let n = format!("ctl{i}");
        let mut row = Row::new();
        row.insert("target".into(), Value::from(t.as_str()));
        ops.push(Operation::insert_named("Controller", row, &n));
        refs.push(named(&n));
    }
    Value::set(refs)
}

async fn retry<F, Fut>(mut f: F) -> Result<Applied>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Applied>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if is_retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!("{e}; re-reading and retrying");
                attempt += 1;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_follow_ovs_conventions() {
        let t = PortSpec::tunnel("tun-geneve", TunnelKind::Geneve);
        assert_eq!(t.iface_type, "geneve");
        assert_eq!(t.options["remote_ip"], "flow");
        assert_eq!(t.options["key"], "flow");
        let p = PortSpec::patch("patch-int", "patch-ex");
        assert_eq!(p.iface_type, "patch");
        assert_eq!(p.options["peer"], "patch-ex");
        let v = PortSpec::system("tap1").iface_id("port-1");
        let row = v.iface_row();
        assert_eq!(
            row["external_ids"],
            Value::string_map([("iface-id", "port-1")])
        );
        assert_eq!(row["type"], Value::from(""));
        assert_eq!(row["ofport_request"], Value::empty_set());
    }

    #[test]
    fn merged_only_reports_real_changes() {
        let cur = Value::string_map([("a", "1"), ("b", "2")]);
        let want: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        assert_eq!(merged(Some(&cur), &want), None);
        let want: BTreeMap<String, String> = [("c".to_string(), "3".to_string())].into();
        assert_eq!(
            merged(Some(&cur), &want),
            Some(Value::string_map([("a", "1"), ("b", "2"), ("c", "3")]))
        );
        assert_eq!(merged(None, &BTreeMap::new()), None);
    }
}
