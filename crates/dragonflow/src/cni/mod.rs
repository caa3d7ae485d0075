//! `dragonflow-cni` (or `dragonflow cni`): a CNI 1.x plugin that gives a container a
//! Neutron port, as Kuryr does: ADD creates (or adopts, by container id) the port bound to
//! this host, makes the container's interface from it and answers once the port is ACTIVE;
//! DEL removes both and is idempotent; CHECK compares them; STATUS and GC as the
//! specification says. The protocol (environment, stdin, results, error JSON) is the
//! `rscni-plugin` crate's.

mod api;
mod config;
mod link;
mod nested;
mod result;

use api::Client;
use config::Config;
use link::{Place, tap_name};
use rscni_plugin::cni::{Cni, Plugin};
use rscni_plugin::error::Error;
use rscni_plugin::types::{Args, CNIResult};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Plugin-specific CNI error codes (100 and up are the plugin's).
const ALREADY_ATTACHED: u32 = 101;
const CHECK_FAILED: u32 = 102;

/// Runs one CNI invocation from the environment and stdin; the answer (or the error
/// JSON) on stdout.
pub fn run() -> ExitCode {
    let plugin = Plugin::default().msg("dragonflow-cni: Neutron ports for containers");
    match plugin.run(&Dragonflow) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::warn!(error = %e, "CNI command failed");
            ExitCode::FAILURE
        }
    }
}

struct Dragonflow;

fn io_failure(e: String) -> Error {
    Error::IOFailure(e)
}

/// The parts of an invocation ADD, DEL and CHECK share.
struct Call<'a> {
    cfg: Config,
    container: &'a str,
    netns: &'a Path,
    ifname: &'a str,
}

impl<'a> Call<'a> {
    fn new(args: &'a Args) -> Result<Call<'a>, Error> {
        let cfg =
            Config::from_custom(&args.config().custom).map_err(Error::InvalidNetworkConfig)?;
        let container = args
            .container_id()
            .map(|c| c.as_ref())
            .ok_or_else(|| Error::missing_env(&["CNI_CONTAINERID"]))?;
        let netns = args.netns().map(|p| p.as_path()).unwrap_or(Path::new(""));
        let ifname = args.ifname().map(|i| i.as_ref()).unwrap_or("eth0");
        Ok(Call {
            cfg,
            container,
            netns,
            ifname,
        })
    }

    fn place(&self) -> Place<'_> {
        Place {
            netns: self.netns,
            ifname: self.ifname,
            bridge: &self.cfg.bridge,
            ovsdb: &self.cfg.ovsdb,
            ovs_netns: self.cfg.ovs_netns.as_deref(),
        }
    }

    fn host(&self) -> String {
        self.cfg.host.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default()
        })
    }

    /// Nested mode: the VM's trunk, whose parent is the port of the VM's link.
    fn trunk(&self, api: &Client) -> Result<Option<Value>, Error> {
        let Some(n) = &self.cfg.nested else {
            return Ok(None);
        };
        let mac = self.place().mac_of(&n.link_iface).map_err(|e| {
            Error::InvalidNetworkConfig(format!("nested mode: the VM's {}: {e}", n.link_iface))
        })?;
        nested::parent_trunk(api, &n.link_iface, &mac).map(Some)
    }

    /// The container's port, if it has one: found by its `device_id`, or in nested mode
    /// (where a subport has none) by its tag.
    fn existing(&self, api: &Client) -> Result<Option<Value>, Error> {
        match self.cfg.nested {
            Some(_) => api.tagged_port(&nested::tag(self.container)),
            None => api.container_port(self.container),
        }
    }

    /// Removes a container's interface and port (and its subport first, in nested mode).
    fn remove(&self, api: &Client, port_id: &str) -> Result<(), Error> {
        if self.cfg.nested.is_some() {
            nested::detach(api, port_id)?;
        }
        for step in self.place().remove(&tap_name(port_id)) {
            let _ = link::run(&step);
        }
        api.delete_port(port_id)
    }

    /// The port to attach: the container's own (left by an ADD that did not finish), else
    /// a new one on the configured network. True when made now.
    fn port(&self, api: &Client) -> Result<(Value, bool), Error> {
        if let Some(p) = self.existing(api)? {
            tracing::info!(port = %p["id"], container = self.container, "adopting the container's port");
            return Ok((p, false));
        }
        let missing = |what: &str, name: &str| {
            Error::InvalidNetworkConfig(format!("no {what} {name:?} visible to the project"))
        };
        let net = api
            .find("networks", &self.cfg.network)?
            .ok_or_else(|| missing("network", &self.cfg.network))?;
        let mut port = json!({
            "network_id": net["id"],
            "name": format!("cni-{}", self.container.chars().take(12).collect::<String>()),
            "device_owner": "compute:container",
            "device_id": self.container,
        });
        // No `binding:host_id`: setting it is an admin's right, and this host's controller
        // binds the port to itself when its interface appears in br-int (a subport gets
        // its parent's).
        if self.cfg.nested.is_some() {
            let obj = port.as_object_mut().expect("an object");
            obj.remove("device_owner");
            obj.remove("device_id");
            obj.insert("tags".into(), json!([nested::tag(self.container)]));
        }
        if let Some(s) = &self.cfg.subnet {
            let sub = api
                .find("subnets", s)?
                .ok_or_else(|| missing("subnet", s))?;
            port["fixed_ips"] = json!([{ "subnet_id": sub["id"] }]);
        }
        if let Some(groups) = &self.cfg.security_groups {
            let mut ids = Vec::new();
            for g in groups {
                let sg = api
                    .find("security-groups", g)?
                    .ok_or_else(|| missing("security group", g))?;
                ids.push(sg["id"].clone());
            }
            port["security_groups"] = Value::Array(ids);
        }
        let p = api.create_port(port)?;
        tracing::info!(port = %p["id"], container = self.container, "port created");
        Ok((p, true))
    }

    /// Waits for the controller of this host to report the port ACTIVE (its flows in).
    fn wait_active(&self, api: &Client, id: &str) -> Result<Value, Error> {
        let deadline = Instant::now() + self.cfg.wait_active();
        loop {
            let p = api.port(id)?;
            if p["status"] == "ACTIVE" {
                return Ok(p);
            }
            if Instant::now() >= deadline {
                return Err(Error::TryAgainLater(format!(
                    "port {id} is {} after {} s: is this host's controller running as chassis {:?}?",
                    p["status"],
                    self.cfg.wait_active_seconds,
                    self.host()
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn add(&self) -> Result<CNIResult, Error> {
        if !self.netns.exists() {
            return Err(Error::InvalidNetNS(format!(
                "{}: no such network namespace",
                self.netns.display()
            )));
        }
        let api = Client::connect(&self.cfg.api)?;
        let place = self.place();
        // Before any port is made: a VM without a trunk is the configuration's error.
        let trunk = self.trunk(&api)?;
        let (port, made) = self.port(&api)?;
        let id = port["id"].as_str().unwrap_or_default().to_string();
        let tap = tap_name(&id);
        if place.plugged_id(&tap).as_deref() == Some(id.as_str()) && place.ifname_exists() {
            return Err(Error::Custom(
                ALREADY_ATTACHED,
                "container already attached".into(),
                format!(
                    "{} of container {} is port {id} already: DEL it first",
                    self.ifname, self.container
                ),
            ));
        }
        // What an interrupted ADD left behind goes; the container end goes with the host's.
        for step in place.remove(&tap) {
            let _ = link::run(&step);
        }
        let undo = |e: Error| {
            if made {
                let _ = self.remove(&api, &id);
            } else {
                for step in place.remove(&tap) {
                    let _ = link::run(&step);
                }
            }
            e
        };
        if place.ifname_exists() {
            return Err(undo(Error::Custom(
                ALREADY_ATTACHED,
                "interface exists".into(),
                format!("{} already exists in {}", self.ifname, self.netns.display()),
            )));
        }
        let subnets = result::subnets_of(&port, |s| api.subnet(s)).map_err(undo)?;
        let mtu = api
            .call(
                "GET",
                &format!(
                    "/v2.0/networks/{}",
                    port["network_id"].as_str().unwrap_or("")
                ),
                None,
            )
            .map(|n| n["network"]["mtu"].as_u64().unwrap_or(1500) as u32)
            .map_err(undo)?;
        let mut attachment = result::attachment(&port, &subnets, self.container, mtu);
        if let Some(t) = &trunk {
            attachment.vlan = Some(nested::attach(&api, t, &id).map_err(undo)?);
        }
        let offload_off = place
            .datapath_is_netdev()
            .map_err(io_failure)
            .map_err(undo)?;
        link::make(&place, &attachment, offload_off)
            .map_err(io_failure)
            .map_err(undo)?;
        let port = self.wait_active(&api, &id).map_err(undo)?;
        tracing::info!(port = %id, container = self.container, tap = %tap, "container attached");
        Ok(result::cni_result(
            &port,
            &subnets,
            self.ifname,
            self.netns,
            &tap,
        ))
    }

    fn del(&self) -> Result<(), Error> {
        let api = Client::connect(&self.cfg.api)?;
        if let Some(p) = self.existing(&api)? {
            let id = p["id"].as_str().unwrap_or_default();
            self.remove(&api, id)?;
            tracing::info!(port = %id, container = self.container, "container detached");
        }
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        let api = Client::connect(&self.cfg.api)?;
        let failed = |what: String| Error::Custom(CHECK_FAILED, "check failed".into(), what);
        let port = self
            .existing(&api)?
            .ok_or_else(|| failed(format!("container {} has no port", self.container)))?;
        let id = port["id"].as_str().unwrap_or_default();
        if port["status"] != "ACTIVE" {
            return Err(failed(format!("port {id} is {}", port["status"])));
        }
        if self.cfg.nested.is_some() && port["device_owner"] != model::trunk::SUBPORT_OWNER {
            return Err(failed(format!(
                "port {id} is not a subport of the VM's trunk"
            )));
        }
        let place = self.place();
        if place.plugged_id(&tap_name(id)).as_deref() != Some(id) {
            return Err(failed(format!(
                "{} is not plugged as port {id}",
                tap_name(id)
            )));
        }
        let (mac, addrs) = place.inspect().map_err(failed)?;
        let subnets = result::subnets_of(&port, |s| api.subnet(s))?;
        let want = result::attachment(&port, &subnets, self.container, 0);
        if mac != want.mac {
            return Err(failed(format!(
                "{} has MAC {mac}, port {id} {}",
                self.ifname, want.mac
            )));
        }
        for a in &want.addresses {
            if !addrs.contains(a) {
                return Err(failed(format!("{} lacks {a} of port {id}", self.ifname)));
            }
        }
        Ok(())
    }
}

impl Cni for Dragonflow {
    fn add(&self, args: Args) -> Result<CNIResult, Error> {
        Call::new(&args)?.add()
    }

    fn del(&self, args: Args) -> Result<(), Error> {
        Call::new(&args)?.del()
    }

    fn check(&self, args: Args) -> Result<(), Error> {
        Call::new(&args)?.check()
    }

    /// Ready when the API answers with the configured credentials.
    fn status(&self, args: Args) -> Result<(), Error> {
        let cfg =
            Config::from_custom(&args.config().custom).map_err(Error::InvalidNetworkConfig)?;
        let api =
            Client::connect(&cfg.api).map_err(|e| Error::PluginNotAvailable(e.to_string()))?;
        api.call("GET", "/v2.0/networks?limit=1", None)
            .map(drop)
            .map_err(|e| Error::PluginNotAvailable(e.to_string()))
    }

    /// Removes this host's container ports that the runtime no longer knows.
    fn gc(&self, args: Args) -> Result<(), Error> {
        let call = Call {
            cfg: Config::from_custom(&args.config().custom).map_err(Error::InvalidNetworkConfig)?,
            container: "",
            netns: Path::new(""),
            ifname: "",
        };
        let valid: Vec<&str> = args
            .config()
            .valid_attachments
            .iter()
            .flatten()
            .map(|a| a.container_id.as_str())
            .collect();
        let api = Client::connect(&call.cfg.api)?;
        // The container ports this host holds, each with the container it names.
        let ports: Vec<(Value, String)> = match call.trunk(&api)? {
            Some(trunk) => {
                let mut ports = Vec::new();
                for s in trunk["sub_ports"].as_array().into_iter().flatten() {
                    let p = api.port(s["port_id"].as_str().unwrap_or_default())?;
                    if let Some(c) = nested::container_of(&p).map(str::to_string) {
                        ports.push((p, c));
                    }
                }
                ports
            }
            None => {
                let host = call.host();
                let v = api.call(
                    "GET",
                    &format!("/v2.0/ports?device_owner=compute:container&binding:host_id={host}"),
                    None,
                )?;
                v["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| (p.clone(), p["device_id"].as_str().unwrap_or("").to_string()))
                    .collect()
            }
        };
        for (p, owner) in ports {
            if valid.contains(&owner.as_str()) {
                continue;
            }
            let id = p["id"].as_str().unwrap_or("");
            call.remove(&api, id)?;
            tracing::info!(port = %id, container = owner, "stale container port collected");
        }
        Ok(())
    }
}
