//! The cloud of the metadata end-to-end tests (metadata_e2e.rs, metadata_nova_e2e.rs): one
//! or two hosts whose controllers serve 169.254.169.254, ports made with the CLI, and
//! `curl` in a VM against the metadata address.

use super::Server;
use super::cloud::{Controller as Ctl, addr, underlay, wait_until};
use serde_json::Value;
use std::time::Duration;

/// Hosts whose controllers run with `extra` flags.
pub struct Cloud {
    pub srv: Server,
    pub ovs: Vec<testbed::Ovs>,
    pub ctl: Vec<Ctl>,
}

const HOSTS: [(&str, &str); 2] = [("host-a", "192.0.2.1"), ("host-b", "192.0.2.2")];

impl Cloud {
    pub fn start(hosts: usize, extra: &[&str]) -> Cloud {
        let srv = Server::start();
        let ovs: Vec<testbed::Ovs> = (0..hosts)
            .map(|_| testbed::Ovs::start().expect("ovs"))
            .collect();
        if hosts == 2 {
            testbed::veth("ul0", ovs[0].own_netns(), "ul0", ovs[1].own_netns()).expect("wire");
        }
        for (h, o) in ovs.iter().enumerate() {
            if hosts == 2 {
                underlay(o, "ul0", &format!("{}/24", HOSTS[h].1));
            }
        }
        let mut args = vec!["--tunnel-types", "geneve"];
        args.extend_from_slice(extra);
        let ctl = (0..hosts)
            .map(|h| {
                let (name, ip) = HOSTS[h];
                let c = Ctl::spawn(
                    &srv.nb_url,
                    &ovs[h],
                    name,
                    ip,
                    &args,
                    Some("info,controller::metadata_http=debug"),
                );
                c.wait_for_br_int(&ovs[h]);
                c
            })
            .collect();
        Cloud { srv, ovs, ctl }
    }

    /// Plugs `port` into a VM on host `h` with its address, once ACTIVE there.
    pub fn plug(&self, port: &Value, h: usize) -> testbed::Vm {
        let (mac, ip) = addr(port);
        let id = port["id"].as_str().unwrap();
        let vm =
            testbed::Vm::plug(&self.ovs[h], "br-int", id, &mac, &format!("{ip}/24")).expect("plug");
        self.active(id, h);
        vm
    }

    pub fn active(&self, id: &str, h: usize) {
        wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = self.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == HOSTS[h].0
        });
    }

    pub fn dumps(&self) -> String {
        let mut s = String::new();
        for (h, o) in self.ovs.iter().enumerate() {
            s += &format!(
                "host {h} flows:\n{}\ncontroller {h}:\n{}\n",
                o.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
                self.ctl[h].log()
            );
        }
        s
    }

    /// A network and its subnet, made with the CLI.
    pub fn network(&self, name: &str, cidr: &str) -> Value {
        let net = self.srv.os(&["network", "create", name]);
        self.srv.os(&[
            "subnet",
            "create",
            "--network",
            name,
            "--subnet-range",
            cidr,
            &format!("{name}-v4"),
        ]);
        net
    }

    /// A port made with the CLI (`--device-id`, `--dns-name`).
    pub fn port(&self, net: &str, name: &str, device: &str, dns: &str) -> Value {
        let mut args = vec![
            "port",
            "create",
            "--network",
            net,
            "--device",
            device,
            "--device-owner",
            "compute:nova",
        ];
        if !dns.is_empty() {
            args.extend(["--dns-name", dns]);
        }
        args.push(name);
        self.srv.os(&args)
    }
}

/// `curl` in `vm`: status and body.
pub fn curl(vm: &testbed::Vm, args: &[&str]) -> (u16, String) {
    let mut argv = vec!["curl", "-s", "-m", "3", "-w", "\n%{http_code}"];
    argv.extend_from_slice(args);
    let out = vm.ns.exec(&argv).unwrap_or_else(|e| format!("\n000 {e}"));
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

pub fn md(path: &str) -> String {
    format!("http://169.254.169.254{path}")
}
