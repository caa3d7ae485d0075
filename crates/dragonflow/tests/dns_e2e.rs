//! Internal DNS end to end: real OVS, `dragonflow controller` per host, names and domains
//! set with the real `openstack` CLI, and the real `dig` in a VM asking its network's DNS
//! address (the DHCP port's), answered by its own host's controller: a VM's name on the
//! other host and its reverse name, a rename answered within a second, another project's
//! name answered as no name at all, and other names forwarded to an upstream resolver
//! (`dnsmasq` in a namespace of its own) or refused where there is none.

mod common;

use common::Server;
use common::cloud::{Controller as Ctl, addr, underlay, wait_until};
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Two hosts whose controllers run with `extra` flags.
struct Cloud {
    srv: Server,
    ovs: [testbed::Ovs; 2],
    ctl: [Ctl; 2],
}

impl Cloud {
    fn start(extra: &[&str]) -> Cloud {
        let srv = Server::start();
        let ovs = [
            testbed::Ovs::start().expect("ovs a"),
            testbed::Ovs::start().expect("ovs b"),
        ];
        testbed::veth("ul0", ovs[0].own_netns(), "ul0", ovs[1].own_netns()).expect("wire");
        underlay(&ovs[0], "ul0", "192.0.2.1/24");
        underlay(&ovs[1], "ul0", "192.0.2.2/24");
        let mut args = vec!["--tunnel-types", "geneve"];
        args.extend_from_slice(extra);
        let ctl = [("host-a", "192.0.2.1", 0), ("host-b", "192.0.2.2", 1)].map(|(n, ip, h)| {
            let c = Ctl::spawn(
                &srv.nb_url,
                &ovs[h],
                n,
                ip,
                &args,
                Some("info,controller::apps::dns=debug"),
            );
            c.wait_for_br_int(&ovs[h]);
            c
        });
        Cloud { srv, ovs, ctl }
    }

    /// Plugs `port` into a VM on host `h`, addressed as the API says, once ACTIVE there.
    fn plug(&self, port: &Value, h: usize) -> testbed::Vm {
        let (mac, ip) = addr(port);
        let id = port["id"].as_str().unwrap();
        let vm =
            testbed::Vm::plug(&self.ovs[h], "br-int", id, &mac, &format!("{ip}/24")).expect("plug");
        let host = ["host-a", "host-b"][h];
        wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = self.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
        });
        vm
    }

    fn dumps(&self) -> String {
        format!(
            "host a:\n{}\ncontroller a:\n{}\ncontroller b:\n{}",
            self.ovs[0]
                .ofctl(["dump-flows", "br-int"])
                .unwrap_or_default(),
            self.ctl[0].log(),
            self.ctl[1].log()
        )
    }

    /// A network shared with every project (with `extra` flags) and its subnet, made with
    /// the CLI; returns the network and its DHCP port's address (the DNS address).
    fn network(&self, name: &str, cidr: &str, extra: &[&str]) -> (Value, String) {
        let mut args = vec!["network", "create", "--share", name];
        args.extend_from_slice(extra);
        let net = self.srv.os(&args);
        self.srv.os(&[
            "subnet",
            "create",
            "--network",
            name,
            "--subnet-range",
            cidr,
            &format!("{name}-v4"),
        ]);
        let id = net["id"].as_str().unwrap();
        let (_, ports) = self.srv.call(
            "GET",
            &format!("/v2.0/ports?network_id={id}&device_owner=network:dhcp"),
            None,
        );
        let dns = ports["ports"][0]["fixed_ips"][0]["ip_address"]
            .as_str()
            .expect("the DHCP port")
            .to_string();
        (net, dns)
    }
}

/// `dig` in the VM against `server`: the status and the answers (`+short` lines).
fn dig(vm: &testbed::Vm, server: &str, args: &[&str]) -> (String, Vec<String>) {
    let mut argv = vec![
        "dig".to_string(),
        format!("@{server}"),
        "+time=1".into(),
        "+tries=2".into(),
        "+noall".into(),
        "+comments".into(),
        "+answer".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = vm
        .ns
        .exec(&argv)
        .unwrap_or_else(|e| format!("dig failed: {e}"));
    let status = out
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_string();
    let answers = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    (status, answers)
}

#[test]
fn dig_from_a_vm_finds_its_neighbours_across_hosts_by_name_and_address() {
    if !testbed::require_root("dig_from_a_vm_finds_its_neighbours_across_hosts") {
        return;
    }
    assert!(testbed::have("dig"), "dig is missing: run scripts/setup");
    let c = Cloud::start(&[]);
    let (net, dns) = c.network("dnsnet", "10.53.0.0/24", &["--dns-domain", "Example.ORG."]);
    assert_eq!(net["dns_domain"], "example.org.", "{net}");
    // The CLI sets and shows the attributes.
    let p1 = c.srv.os(&[
        "port",
        "create",
        "--network",
        "dnsnet",
        "--dns-name",
        "vm1",
        "p1",
    ]);
    let p2 = c.srv.os(&[
        "port",
        "create",
        "--network",
        "dnsnet",
        "--dns-name",
        "VM2",
        "p2",
    ]);
    assert_eq!(p2["dns_name"], "vm2", "{p2}");
    let ip2 = addr(&p2).1;
    let assignment = &p2["dns_assignment"][0];
    assert_eq!(assignment["hostname"], "vm2", "{p2}");
    assert_eq!(assignment["fqdn"], "vm2.openstacklocal.");
    assert_eq!(assignment["ip_address"], ip2.as_str());
    let vm1 = c.plug(&p1, 0);
    let _vm2 = c.plug(&p2, 1);

    // vm2 lives on the other host; vm1's own host answers.
    let (status, answers) = dig(&vm1, &dns, &["vm2.openstacklocal", "A"]);
    assert_eq!(
        (status.as_str(), answers.clone()),
        ("NOERROR", vec![ip2.clone()]),
        "{}",
        c.dumps()
    );
    let (_, answers) = dig(&vm1, &dns, &["-x", &ip2]);
    assert_eq!(answers, ["vm2.openstacklocal."]);
    assert!(
        c.ctl[0].log().contains("DNS answered") && !c.ctl[1].log().contains("DNS answered"),
        "answered on vm1's host only:\n{}",
        c.dumps()
    );
    // vm1's query goes to its own host's controller, in OVS too.
    let vm1_ip = addr(&p1).1;
    common::trace::expect(
        &c.srv,
        &c.ovs[0],
        &vm1_ip,
        &format!("{dns}:53"),
        Some("udp"),
        "controller",
    );

    // A rename through the API is answered within a second.
    c.srv.os_ok(&[
        "port",
        "set",
        "--dns-name",
        "web",
        p2["id"].as_str().unwrap(),
    ]);
    let renamed = Instant::now();
    loop {
        let (_, answers) = dig(&vm1, &dns, &["web.openstacklocal", "A"]);
        if answers == [ip2.clone()] {
            break;
        }
        assert!(
            renamed.elapsed() < Duration::from_secs(1),
            "the new name is not answered after {:?}",
            renamed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("rename answered after {:?}", renamed.elapsed());
    let (status, _) = dig(&vm1, &dns, &["vm2.openstacklocal", "A"]);
    assert_eq!(status, "NXDOMAIN", "the old name is gone");

    // Another project's port on the same shared network: not its name, not its address.
    let (code, theirs) = c.srv.call_as(
        "POST",
        "/v2.0/ports",
        Some(serde_json::json!({"port": {"network_id": net["id"], "dns_name": "secret"}})),
        &[("X-Project-Id", "other"), ("X-Roles", "member")],
    );
    assert_eq!(code, 201, "{theirs}");
    let their_ip = addr(&theirs["port"]).1;
    let (status, answers) = dig(&vm1, &dns, &["secret.openstacklocal", "A"]);
    assert_eq!((status.as_str(), answers.len()), ("NXDOMAIN", 0));
    let (status, answers) = dig(&vm1, &dns, &["-x", &their_ip]);
    assert_eq!((status.as_str(), answers.len()), ("NXDOMAIN", 0));
    // With no upstream resolver, other names are refused.
    let (status, _) = dig(&vm1, &dns, &["example.com", "A"]);
    assert_eq!(status, "REFUSED");
}

/// `dnsmasq` in a namespace of its own at 198.51.100.2, reached from the controllers'
/// namespace over a veth: it knows `outside.test` and nothing else.
struct Upstream {
    child: Child,
    _ns: testbed::Netns,
}

impl Upstream {
    fn start() -> Upstream {
        let ns = testbed::Netns::new(&testbed::unique_name("dfdns")).expect("netns");
        let here = testbed::unique_name("dnsu");
        testbed::veth(&here, None, "eth0", Some(&ns)).expect("veth");
        testbed::ip(["addr", "add", "198.51.100.1/30", "dev", &here]).expect("addr");
        testbed::ip(["link", "set", &here, "up"]).expect("up");
        ns.ip(["addr", "add", "198.51.100.2/30", "dev", "eth0"])
            .expect("addr");
        ns.ip(["link", "set", "eth0", "up"]).expect("up");
        let child = ns
            .command([
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--pid-file",
                "--bind-interfaces",
                "--listen-address=198.51.100.2",
                "--address=/outside.test/203.0.113.7",
                "--log-queries",
                "--log-facility=-",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq");
        Upstream { child, _ns: ns }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn other_names_are_forwarded_to_the_upstream_resolver() {
    if !testbed::require_root("other_names_are_forwarded_to_the_upstream_resolver") {
        return;
    }
    assert!(
        testbed::have("dnsmasq"),
        "dnsmasq is missing: run scripts/setup"
    );
    let _up = Upstream::start();
    let c = Cloud::start(&["--dns-upstream", "198.51.100.2"]);
    let (_, dns) = c.network("fwdnet", "10.54.0.0/24", &[]);
    let p1 = c.srv.os(&[
        "port",
        "create",
        "--network",
        "fwdnet",
        "--dns-name",
        "vm1",
        "p1",
    ]);
    let vm1 = c.plug(&p1, 0);
    let (status, answers) = dig(&vm1, &dns, &["www.outside.test", "A"]);
    assert_eq!(
        (status.as_str(), answers),
        ("NOERROR", vec!["203.0.113.7".to_string()]),
        "{}",
        c.dumps()
    );
    // The upstream's NXDOMAIN comes back as it is; internal names stay internal.
    let (status, _) = dig(&vm1, &dns, &["nothing.example", "A"]);
    assert!(status == "NXDOMAIN" || status == "REFUSED", "{status}");
    let (_, answers) = dig(&vm1, &dns, &["vm1.openstacklocal", "A"]);
    assert_eq!(answers, [addr(&p1).1]);
    // Over TCP the question goes upstream over TCP too.
    let (status, answers) = dig(&vm1, &dns, &["+tcp", "www.outside.test", "A"]);
    assert_eq!(
        (status.as_str(), answers),
        ("NOERROR", vec!["203.0.113.7".to_string()]),
        "{}",
        c.dumps()
    );
}

/// The addresses of a port with `n` fixed IPs on `subnet` from 10.55.0.(100 + i).
fn many_fixed_ips(n: usize, subnet: &str) -> Vec<String> {
    (0..n)
        .flat_map(|i| {
            [
                "--fixed-ip".to_string(),
                format!("subnet={subnet},ip-address=10.55.0.{}", 100 + i),
            ]
        })
        .collect()
}

#[test]
fn an_answer_over_512_bytes_is_truncated_over_udp_and_whole_over_tcp() {
    if !testbed::require_root("an_answer_over_512_bytes_is_truncated_over_udp") {
        return;
    }
    assert!(testbed::have("dig"), "dig is missing: run scripts/setup");
    let c = Cloud::start(&[]);
    let (_, dns) = c.network("bignet", "10.55.0.0/24", &[]);
    // 40 addresses: 40 A records of 16 bytes, over the 512 bytes of a UDP answer.
    let mut args: Vec<String> = ["port", "create", "--network", "bignet", "--dns-name", "big"]
        .map(String::from)
        .into();
    args.extend(many_fixed_ips(40, "bignet-v4"));
    args.push("big".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let big = c.srv.os(&args);
    assert_eq!(big["fixed_ips"].as_array().map(Vec::len), Some(40), "{big}");
    let want: std::collections::BTreeSet<String> =
        (0..40).map(|i| format!("10.55.0.{}", 100 + i)).collect();
    let asker = c.srv.os(&[
        "port",
        "create",
        "--network",
        "bignet",
        "--dns-name",
        "asker",
        "asker",
    ]);
    let vm = c.plug(&asker, 0);
    let _big_vm = c.plug(&big, 1);
    let set = |a: Vec<String>| a.into_iter().collect::<std::collections::BTreeSet<_>>();

    // Over UDP alone: TC set, and only what fits in 512 bytes.
    let out = vm
        .ns
        .exec([
            "dig",
            &format!("@{dns}"),
            "+time=1",
            "+tries=2",
            "+notcp",
            "+ignore",
            "big.openstacklocal",
            "A",
        ])
        .expect("dig");
    assert!(out.contains("flags: qr aa tc rd"), "{out}\n{}", c.dumps());
    let msg_size: usize = out
        .split("MSG SIZE  rcvd: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("a size");
    assert!(msg_size <= 512, "{out}");
    // dig as it comes: the truncated answer makes it ask again over TCP, and it gets all.
    let (status, answers) = dig(&vm, &dns, &["big.openstacklocal", "A"]);
    assert_eq!(status, "NOERROR", "{}", c.dumps());
    assert_eq!(set(answers), want, "{}", c.dumps());
    // +tcp from the start, and a reverse name over TCP.
    let (status, answers) = dig(&vm, &dns, &["+tcp", "big.openstacklocal", "A"]);
    assert_eq!((status.as_str(), set(answers)), ("NOERROR", want.clone()));
    let (_, answers) = dig(&vm, &dns, &["+tcp", "-x", "10.55.0.117"]);
    assert_eq!(answers, ["big.openstacklocal."]);
    // A query over TCP goes to the asker's host's own server (behind the internal port it
    // shares with metadata), in OVS too.
    let asker_ip = addr(&asker).1;
    let r = common::trace::delivered(&c.srv, &c.ovs[0], &asker_ip, &format!("{dns}:53"), None);
    assert!(r.verdict.contains("df-metadata"), "{}", r.out);
    // Several queries on one connection (+keepopen), in order.
    let (_, answers) = dig(
        &vm,
        &dns,
        &[
            "+tcp",
            "+keepopen",
            "asker.openstacklocal",
            "A",
            "-x",
            &addr(&asker).1,
        ],
    );
    assert_eq!(
        answers,
        [addr(&asker).1, "asker.openstacklocal.".to_string()],
        "{}",
        c.dumps()
    );
    // The answers came back through the port's ingress conntrack: the learned reply flows
    // (table 40) carry the server's TCP port 53.
    let flows = c.ovs[0]
        .ofctl(["dump-flows", "br-int", "table=40"])
        .unwrap_or_default();
    assert!(flows.contains("tp_src=53"), "{flows}");
}

#[test]
fn a_vm_flooding_queries_is_blocked_in_the_switch_and_its_neighbour_still_answered() {
    if !testbed::require_root("a_vm_flooding_queries_is_blocked_in_the_switch") {
        return;
    }
    let c = Cloud::start(&[]);
    let (_, dns) = c.network("floodnet", "10.55.0.0/24", &[]);
    let mk = |name: &str| {
        c.srv.os(&[
            "port",
            "create",
            "--network",
            "floodnet",
            "--dns-name",
            name,
            name,
        ])
    };
    let (p1, p2) = (mk("flooder"), mk("quiet"));
    let flooder = c.plug(&p1, 0);
    let quiet = c.plug(&p2, 0);
    // Raw queries for quiet.openstacklocal as fast as Python sends them, for 3 s.
    let script = format!(
        "import socket,time\n\
         q=bytes([0,1,1,0,0,1,0,0,0,0,0,0,5])+b'quiet'+bytes([14])+b'openstacklocal'+bytes([0,0,1,0,1])\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         t=time.time();n=0\n\
         while time.time()-t<3:\n    s.sendto(q,('{dns}',53));n+=1\n\
         print(n)\n"
    );
    let flood = flooder
        .ns
        .command(["python3", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    std::thread::sleep(Duration::from_millis(700));
    let table = c.ovs[0]
        .ofctl(["dump-flows", "br-int", "table=32"])
        .unwrap_or_default();
    let (status, answers) = dig(&quiet, &dns, &["flooder.openstacklocal", "A"]);
    let sent = String::from_utf8_lossy(&flood.wait_with_output().expect("flood").stdout)
        .trim()
        .to_string();
    println!("the flooder sent {sent} queries in 3 s");
    assert!(
        table.contains("priority=200") && table.contains("hard_timeout=1"),
        "the flooder's block in table 32:\n{table}\n{}",
        c.dumps()
    );
    assert_eq!(
        (status.as_str(), answers),
        ("NOERROR", vec![addr(&p1).1]),
        "the neighbour is answered during the flood"
    );
    assert!(
        c.ctl[0].log().contains("DNS flood"),
        "logged once:\n{}",
        c.ctl[0].log()
    );
}
