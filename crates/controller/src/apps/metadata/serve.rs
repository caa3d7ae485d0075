//! The metadata server's core, sans-IO: one request (method, path, the source address the
//! switch wrote) and the view in, one answer out: a reply, or what to ask Nova. The
//! source address names the port ([`super::key_of_ip`]); nothing the VM sends in the request
//! decides who it is. The runtime (`metadata_http`) owns the sockets.

use super::content::{self, Instance};
use crate::apps::Host;
use crate::apps::rate::Limiter;
use crate::view::View;
use hmac::{KeyInit, Mac};
use ipnet::Ipv4Net;
use model::Port;
use std::net::IpAddr;
use std::time::Instant;

/// The OpenStack versions listed under `/openstack` (cloud-init takes the newest it knows).
pub const OPENSTACK_VERSIONS: &[&str] = &[
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "latest",
];
/// The EC2 versions listed at `/`.
pub const EC2_VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "latest",
];
/// The longest path answered (anything longer is 414).
pub const MAX_PATH: usize = 1024;

/// Nova's metadata API, when the cloud has one: the controller asks it for the VM.
#[derive(Debug, Clone)]
pub struct Nova {
    /// `http://HOST:8775`.
    pub url: String,
    /// `metadata_proxy_shared_secret`, shared with Nova.
    pub secret: Vec<u8>,
}

/// A booting VM's first crawl (cloud-init reads the OpenStack files and walks the whole
/// EC2 tree: 30 requests and more in a second) must not meet a 429; a flood still does,
/// after this many seconds' worth.
pub const BURST: u32 = 5;

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests a second per VM, and [`BURST`] times as many in a burst.
    pub rate: u32,
    /// The DNS domain host names are given under (`--domain`).
    pub domain: String,
    /// This host's availability zone.
    pub availability_zone: String,
    pub nova: Option<Nova>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            rate: 20,
            domain: model::dns::DEFAULT_DOMAIN.into(),
            availability_zone: "nova".into(),
            nova: None,
        }
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// What the runtime asks Nova, as Neutron's metadata agent does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Nova's URL with the path (and query) asked.
    pub url: String,
    /// `X-Instance-ID`, `X-Tenant-ID`, `X-Forwarded-For`, `X-Instance-ID-Signature`.
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Reply(Reply),
    Proxy(Proxy),
}

/// One request as the runtime saw it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path and query, as sent.
    pub target: &'a str,
    /// The source address of the connection (written by the switch; either family).
    pub source: IpAddr,
}

/// Counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub answered: u64,
    pub proxied: u64,
    pub limited: u64,
    pub unknown_source: u64,
    pub not_found: u64,
}

/// The server's state: its settings, a token bucket per VM port, counters.
pub struct Server {
    pub cfg: Config,
    limiter: Limiter<u32>,
    pub stats: Stats,
}

fn text(status: u16, body: impl Into<Vec<u8>>) -> Answer {
    Answer::Reply(Reply {
        status,
        content_type: "text/plain; charset=UTF-8",
        body: body.into(),
    })
}

fn json(v: &serde_json::Value) -> Answer {
    Answer::Reply(Reply {
        status: 200,
        content_type: "application/json",
        body: v.to_string().into_bytes(),
    })
}

fn lines(items: &[&str]) -> Answer {
    text(200, items.join("\n"))
}

/// `hex(HMAC-SHA256(secret, instance_id))`: Nova's check that the proxy is trusted.
pub fn sign(secret: &[u8], instance_id: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(instance_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The port with datapath key `key` if it is plugged on this host: an interface of its
/// own, or a trunk subport wired through its parent's (its answers go back tagged).
pub fn local_port<'a>(view: &'a View, host: &Host, key: u32) -> Option<&'a Port> {
    host.ofports
        .keys()
        .chain(host.subports.keys())
        .filter_map(|id| view.ports.get(id))
        .find(|p| p.unique_key == key)
}

impl Server {
    pub fn new(cfg: Config) -> Server {
        Server {
            limiter: Limiter::with_burst(cfg.rate, cfg.rate.saturating_mul(BURST)),
            cfg,
            stats: Stats::default(),
        }
    }

    /// The answer to one request; `range` is the host side's address range.
    pub fn answer(
        &mut self,
        view: &View,
        host: &Host,
        range: Ipv4Net,
        req: Request<'_>,
        now: Instant,
    ) -> Answer {
        let Some(port) =
            super::key_of_ip(range, req.source).and_then(|k| local_port(view, host, k))
        else {
            // Not from a VM of this host (the host itself, or a port gone since).
            self.stats.unknown_source += 1;
            return text(403, "403 Forbidden\n");
        };
        if !self.limiter.allow(port.unique_key, now) {
            self.stats.limited += 1;
            return text(429, "429 Too Many Requests\n");
        }
        if req.method != "GET" && req.method != "HEAD" {
            return text(405, "405 Method Not Allowed\n");
        }
        if req.target.len() > MAX_PATH {
            return text(414, "414 URI Too Long\n");
        }
        if let Some(nova) = &self.cfg.nova {
            self.stats.proxied += 1;
            return proxy(nova, port, req.target);
        }
        let path = req.target.split(['?', '#']).next().unwrap_or("");
        let a = self.local(view, port, path);
        match &a {
            Answer::Reply(r) if r.status == 404 => self.stats.not_found += 1,
            _ => self.stats.answered += 1,
        }
        a
    }

    /// The answer from what the project knows (no Nova).
    fn local(&self, view: &View, port: &Port, path: &str) -> Answer {
        let i = Instance::of(port, &self.cfg.domain, &self.cfg.availability_zone);
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let user_data = port
            .instance_metadata
            .as_ref()
            .and_then(|m| m.user_data_bytes());
        let not_found = || text(404, "404 Not Found\n");
        match parts.as_slice() {
            [] => lines(EC2_VERSIONS),
            ["openstack"] => lines(OPENSTACK_VERSIONS),
            ["openstack", v, rest @ ..] if OPENSTACK_VERSIONS.contains(v) => match rest {
                [] => {
                    let mut l = vec!["meta_data.json", "network_data.json"];
                    if user_data.is_some() {
                        l.push("user_data");
                    }
                    l.extend(["vendor_data.json", "vendor_data2.json"]);
                    lines(&l)
                }
                ["meta_data.json"] => json(&content::meta_data(&i)),
                ["network_data.json"] => json(&content::network_data(view, port)),
                ["vendor_data.json" | "vendor_data2.json"] => json(&serde_json::json!({})),
                ["user_data"] => match user_data {
                    Some(u) => Answer::Reply(Reply {
                        status: 200,
                        content_type: "application/octet-stream",
                        body: u,
                    }),
                    None => not_found(),
                },
                _ => not_found(),
            },
            [v, rest @ ..] if EC2_VERSIONS.contains(v) => match rest {
                [] => {
                    let mut l = vec!["meta-data/"];
                    if user_data.is_some() {
                        l.push("user-data");
                    }
                    lines(&l)
                }
                ["user-data"] => match user_data {
                    Some(u) => Answer::Reply(Reply {
                        status: 200,
                        content_type: "application/octet-stream",
                        body: u,
                    }),
                    None => not_found(),
                },
                ["meta-data", rest @ ..] => self.ec2(view, &i, rest),
                _ => not_found(),
            },
            _ => not_found(),
        }
    }

    /// The EC2 `meta-data/` tree.
    fn ec2(&self, view: &View, i: &Instance<'_>, rest: &[&str]) -> Answer {
        let p = i.port;
        let keys: Vec<(&String, &String)> = p
            .instance_metadata
            .iter()
            .flat_map(|m| m.public_keys.iter())
            .collect();
        let ip = content::first_v4(p)
            .map(|a| a.to_string())
            .unwrap_or_default();
        match rest {
            [] => {
                let mut l = vec![
                    "ami-launch-index",
                    "hostname",
                    "instance-id",
                    "local-hostname",
                    "local-ipv4",
                    "placement/",
                ];
                if !keys.is_empty() {
                    l.push("public-keys/");
                }
                l.push("security-groups");
                lines(&l)
            }
            ["ami-launch-index"] => text(200, "0"),
            ["hostname" | "local-hostname"] => text(200, i.hostname.clone()),
            ["instance-id"] => text(200, content::ec2_instance_id(p)),
            ["local-ipv4"] => text(200, ip),
            ["placement"] => text(200, "availability-zone"),
            ["placement", "availability-zone"] => text(200, i.availability_zone.to_string()),
            ["security-groups"] => text(200, content::security_groups(view, p).join("\n")),
            ["public-keys"] if !keys.is_empty() => text(
                200,
                keys.iter()
                    .enumerate()
                    .map(|(n, (name, _))| format!("{n}={name}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            ["public-keys", n, rest @ ..] => {
                let Some((_, key)) = n.parse::<usize>().ok().and_then(|n| keys.get(n)) else {
                    return text(404, "404 Not Found\n");
                };
                match rest {
                    [] => text(200, "openssh-key"),
                    ["openssh-key"] => text(200, key.to_string()),
                    _ => text(404, "404 Not Found\n"),
                }
            }
            _ => text(404, "404 Not Found\n"),
        }
    }
}

/// What to ask Nova for `port`'s VM, as Neutron's metadata agent asks.
fn proxy(nova: &Nova, port: &Port, target: &str) -> Answer {
    if port.device_id.is_empty() {
        // Nova knows instances only.
        return text(404, "404 Not Found\n");
    }
    let target = if target.starts_with('/') {
        target.to_string()
    } else {
        format!("/{target}")
    };
    let mut headers = vec![
        ("X-Instance-ID", port.device_id.clone()),
        ("X-Tenant-ID", port.meta.project_id.clone()),
        (
            "X-Instance-ID-Signature",
            sign(&nova.secret, &port.device_id),
        ),
    ];
    if let Some(ip) = content::first_v4(port) {
        headers.push(("X-Forwarded-For", ip.to_string()));
    }
    Answer::Proxy(Proxy {
        url: format!("{}{target}", nova.url.trim_end_matches('/')),
        headers,
    })
}
