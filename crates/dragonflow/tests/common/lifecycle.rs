//! The whole lifecycle of every resource, driven by the real `openstack` CLI against a
//! real `dragonflow server`: run by `cli` under noauth and by `keystone_cli_e2e` through
//! Keystone (the CLI's auth is the server's [`Server::set_cli_auth`]). Each acts as a
//! cloud admin.

use super::Server;
use serde_json::Value;

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn network_lifecycle(srv: &Server) {
    let net = srv.os(&[
        "network",
        "create",
        "net1",
        "--mtu",
        "1300",
        "--description",
        "first",
        "--tag",
        "blue",
    ]);
    let id = s(&net, "id");
    assert_eq!(net["mtu"], 1300);
    assert_eq!(s(&net, "description"), "first");
    let list = srv.os(&["network", "list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|n| n["ID"] == id.as_str()),
        "{list}"
    );
    srv.os_ok(&[
        "network",
        "set",
        "net1",
        "--name",
        "net1b",
        "--tag",
        "red",
        "--disable-port-security",
    ]);
    let shown = srv.os(&["network", "show", "net1b"]);
    assert_eq!(shown["port_security_enabled"], false);
    assert_eq!(shown["tags"], serde_json::json!(["blue", "red"]));
    assert!(shown["revision_number"].as_u64().unwrap() >= 2, "{shown}");
    srv.os_ok(&["network", "unset", "--tag", "blue", &id]);
    assert_eq!(
        srv.os(&["network", "show", &id])["tags"],
        serde_json::json!(["red"])
    );
    let tagged = srv.os(&["network", "list", "--tags", "red"]);
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    // Provider networks and external networks (the default context is admin).
    let ext = srv.os(&[
        "network",
        "create",
        "public",
        "--external",
        "--provider-network-type",
        "flat",
        "--provider-physical-network",
        "physnet1",
    ]);
    assert_eq!(ext["router:external"], true);
    assert_eq!(ext["provider:network_type"], "flat");
    let vl = srv.os(&[
        "network",
        "create",
        "vl",
        "--provider-network-type",
        "vlan",
        "--provider-physical-network",
        "physnet1",
        "--provider-segment",
        "101",
    ]);
    assert_eq!(vl["provider:segmentation_id"], 101);
    assert!(
        srv.openstack(&[
            "network",
            "create",
            "vl2",
            "--provider-network-type",
            "vlan",
            "--provider-physical-network",
            "physnet1",
            "--provider-segment",
            "101"
        ])
        .is_err()
    );
    srv.os_ok(&["network", "delete", &id, "public", "vl"]);
    assert!(srv.openstack(&["network", "show", &id]).is_err());
}

pub fn subnet_lifecycle(srv: &Server) {
    srv.os(&["network", "create", "net1"]);
    let sub = srv.os(&[
        "subnet",
        "create",
        "sub1",
        "--network",
        "net1",
        "--subnet-range",
        "10.0.1.0/24",
        "--allocation-pool",
        "start=10.0.1.10,end=10.0.1.100",
        "--dns-nameserver",
        "10.0.0.53",
        "--host-route",
        "destination=192.168.0.0/16,gateway=10.0.1.254",
        "--tag",
        "t1",
    ]);
    assert_eq!(s(&sub, "gateway_ip"), "10.0.1.1");
    assert_eq!(s(&sub, "cidr"), "10.0.1.0/24");
    let sub = srv.os(&["subnet", "show", "sub1"]);
    assert_eq!(
        sub["allocation_pools"],
        serde_json::json!([{"start": "10.0.1.10", "end": "10.0.1.100"}])
    );
    assert!(
        sub["host_routes"].to_string().contains("192.168.0.0/16"),
        "{sub}"
    );
    srv.os_ok(&[
        "subnet",
        "set",
        "sub1",
        "--name",
        "sub1b",
        "--no-dhcp",
        "--dns-nameserver",
        "10.0.0.54",
    ]);
    let sub = srv.os(&["subnet", "show", "sub1b"]);
    assert_eq!(sub["enable_dhcp"], false);
    assert!(
        sub["dns_nameservers"].to_string().contains("10.0.0.54"),
        "{sub}"
    );
    srv.os_ok(&[
        "subnet",
        "unset",
        "--dns-nameserver",
        "10.0.0.53",
        "--host-route",
        "destination=192.168.0.0/16,gateway=10.0.1.254",
        "sub1b",
    ]);
    let sub = srv.os(&["subnet", "show", "sub1b"]);
    assert!(
        !sub["dns_nameservers"].to_string().contains("10.0.0.53"),
        "{sub}"
    );
    assert!(!sub["host_routes"].to_string().contains("192.168"), "{sub}");
    let nogw = srv.os(&[
        "subnet",
        "create",
        "sub2",
        "--network",
        "net1",
        "--subnet-range",
        "10.0.2.0/24",
        "--gateway",
        "none",
    ]);
    assert_eq!(nogw["gateway_ip"], Value::Null);
    let v6 = srv.os(&[
        "subnet",
        "create",
        "sub6",
        "--network",
        "net1",
        "--ip-version",
        "6",
        "--subnet-range",
        "fd00:1::/64",
        "--ipv6-ra-mode",
        "slaac",
        "--ipv6-address-mode",
        "slaac",
    ]);
    assert_eq!(v6["ip_version"], 6);
    assert_eq!(s(&v6, "gateway_ip"), "fd00:1::1");
    let listed = srv.os(&["subnet", "list", "--network", "net1"]);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    srv.os_ok(&["subnet", "delete", "sub1b", "sub2", "sub6"]);
    assert_eq!(srv.os(&["subnet", "list"]).as_array().unwrap().len(), 0);
}

pub fn port_lifecycle(srv: &Server) {
    srv.os(&["network", "create", "net1"]);
    srv.os(&[
        "subnet",
        "create",
        "sub1",
        "--network",
        "net1",
        "--subnet-range",
        "10.0.1.0/24",
    ]);
    srv.os(&["security", "group", "create", "web"]);
    let p = srv.os(&[
        "port",
        "create",
        "p1",
        "--network",
        "net1",
        "--fixed-ip",
        "subnet=sub1,ip-address=10.0.1.50",
        "--mac-address",
        "fa:16:3e:00:00:01",
        "--security-group",
        "web",
        "--allowed-address",
        "ip-address=10.0.1.200",
        "--host",
        "compute1",
        "--device-owner",
        "compute:nova",
        "--extra-dhcp-option",
        "name=domain-search,value=example.org",
    ]);
    let id = s(&p, "id");
    assert!(p["fixed_ips"].to_string().contains("10.0.1.50"), "{p}");
    assert_eq!(s(&p, "mac_address"), "fa:16:3e:00:00:01");
    assert_eq!(s(&p, "binding_host_id"), "compute1");
    // No controller runs on compute1: ML2 would not bind it either.
    assert_eq!(s(&p, "binding_vif_type"), "binding_failed");
    assert!(
        p["allowed_address_pairs"]
            .to_string()
            .contains("10.0.1.200"),
        "{p}"
    );
    assert!(
        p["extra_dhcp_opts"].to_string().contains("example.org"),
        "{p}"
    );
    let auto = srv.os(&["port", "create", "p2", "--network", "net1"]);
    assert!(auto["fixed_ips"].to_string().contains("10.0.1."), "{auto}");
    assert_ne!(s(&auto, "mac_address"), s(&p, "mac_address"));
    srv.os_ok(&[
        "port",
        "set",
        "p1",
        "--name",
        "p1b",
        "--fixed-ip",
        "subnet=sub1,ip-address=10.0.1.51",
        "--no-security-group",
        "--no-allowed-address",
        "--disable-port-security",
    ]);
    let p = srv.os(&["port", "show", "p1b"]);
    assert!(p["fixed_ips"].to_string().contains("10.0.1.51"), "{p}");
    assert_eq!(p["port_security_enabled"], false);
    srv.os_ok(&[
        "port",
        "unset",
        "--fixed-ip",
        "subnet=sub1,ip-address=10.0.1.50",
        "p1b",
    ]);
    let p = srv.os(&["port", "show", "p1b"]);
    assert!(!p["fixed_ips"].to_string().contains("10.0.1.50"), "{p}");
    let filtered = srv.os(&["port", "list", "--fixed-ip", "ip-address=10.0.1.51"]);
    assert_eq!(filtered.as_array().unwrap().len(), 1, "{filtered}");
    srv.os_ok(&["port", "delete", &id, "p2"]);
    // What is left is the subnet's DHCP port, listed as in Neutron.
    assert_eq!(srv.os(&["port", "list"]).as_array().unwrap().len(), 1);
    let dhcp = srv.os(&["port", "list", "--device-owner", "network:dhcp"]);
    assert_eq!(dhcp.as_array().unwrap().len(), 1, "{dhcp}");
    // The address is free again.
    let again = srv.os(&[
        "port",
        "create",
        "p3",
        "--network",
        "net1",
        "--fixed-ip",
        "ip-address=10.0.1.51",
    ]);
    assert!(again["fixed_ips"].to_string().contains("10.0.1.51"));
}

pub fn router_and_floating_ip_lifecycle(srv: &Server) {
    srv.os(&["network", "create", "public", "--external"]);
    srv.os(&[
        "subnet",
        "create",
        "public-sub",
        "--network",
        "public",
        "--subnet-range",
        "172.24.4.0/24",
    ]);
    srv.os(&["network", "create", "net1"]);
    srv.os(&[
        "subnet",
        "create",
        "sub1",
        "--network",
        "net1",
        "--subnet-range",
        "10.0.1.0/24",
    ]);
    srv.os(&["network", "create", "net2"]);
    srv.os(&[
        "subnet",
        "create",
        "sub2",
        "--network",
        "net2",
        "--subnet-range",
        "10.0.2.0/24",
    ]);
    let r = srv.os(&["router", "create", "r1"]);
    let rid = s(&r, "id");
    srv.os_ok(&[
        "router",
        "set",
        "r1",
        "--external-gateway",
        "public",
        "--fixed-ip",
        "subnet=public-sub,ip-address=172.24.4.10",
    ]);
    let r = srv.os(&["router", "show", "r1"]);
    assert!(
        r["external_gateway_info"]
            .to_string()
            .contains("172.24.4.10"),
        "{r}"
    );
    srv.os_ok(&["router", "add", "subnet", "r1", "sub1"]);
    srv.os(&[
        "port",
        "create",
        "rp2",
        "--network",
        "net2",
        "--fixed-ip",
        "subnet=sub2,ip-address=10.0.2.1",
    ]);
    srv.os_ok(&["router", "add", "port", "r1", "rp2"]);
    let ifaces = srv.os(&["port", "list", "--router", "r1"]);
    // Two interfaces and the gateway port.
    assert_eq!(ifaces.as_array().unwrap().len(), 3, "{ifaces}");
    srv.os_ok(&[
        "router",
        "add",
        "route",
        "r1",
        "--route",
        "destination=192.168.5.0/24,gateway=10.0.1.254",
    ]);
    let r = srv.os(&["router", "show", "r1"]);
    assert!(r["routes"].to_string().contains("192.168.5.0/24"), "{r}");
    // Floating IP: allocate, associate with a VM port, move, release.
    let vm = srv.os(&["port", "create", "vm1", "--network", "net1"]);
    let fip = srv.os(&["floating", "ip", "create", "public"]);
    let fid = s(&fip, "id");
    assert!(
        s(&fip, "floating_ip_address").starts_with("172.24.4."),
        "{fip}"
    );
    let listed = srv.os(&["floating", "ip", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let routers = srv.os(&["router", "list"]);
    assert_eq!(routers.as_array().unwrap()[0]["Name"], "r1", "{routers}");
    srv.os_ok(&["floating", "ip", "set", "--port", &s(&vm, "id"), &fid]);
    let fip = srv.os(&["floating", "ip", "show", &fid]);
    assert_eq!(s(&fip, "router_id"), rid);
    assert_eq!(s(&fip, "status"), "ACTIVE");
    srv.os_ok(&["floating", "ip", "unset", "--port", &fid]);
    let fip = srv.os(&["floating", "ip", "show", &fid]);
    assert_eq!(fip["port_id"], Value::Null);
    srv.os_ok(&["floating", "ip", "delete", &fid]);
    srv.os_ok(&[
        "router",
        "remove",
        "route",
        "r1",
        "--route",
        "destination=192.168.5.0/24,gateway=10.0.1.254",
    ]);
    srv.os_ok(&["router", "remove", "subnet", "r1", "sub1"]);
    srv.os_ok(&["router", "remove", "port", "r1", "rp2"]);
    srv.os_ok(&["router", "unset", "--external-gateway", "r1"]);
    srv.os_ok(&["router", "delete", "r1"]);
    srv.os_ok(&["port", "delete", "vm1"]);
    srv.os_ok(&["network", "delete", "net1", "net2", "public"]);
    assert_eq!(srv.os(&["port", "list"]).as_array().unwrap().len(), 0);
}

pub fn security_group_lifecycle(srv: &Server) {
    let groups = srv.os(&["security", "group", "list"]);
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["Name"] == "default"),
        "{groups}"
    );
    let web = srv.os(&[
        "security",
        "group",
        "create",
        "web",
        "--description",
        "web servers",
    ]);
    let wid = s(&web, "id");
    let r1 = srv.os(&[
        "security",
        "group",
        "rule",
        "create",
        "web",
        "--protocol",
        "tcp",
        "--dst-port",
        "22",
        "--remote-ip",
        "10.0.1.0/24",
    ]);
    assert_eq!(r1["port_range_min"], 22);
    srv.os(&[
        "security",
        "group",
        "rule",
        "create",
        "web",
        "--protocol",
        "icmp",
    ]);
    srv.os(&[
        "security",
        "group",
        "rule",
        "create",
        "web",
        "--protocol",
        "udp",
        "--dst-port",
        "1000:2000",
        "--remote-group",
        "default",
    ]);
    srv.os(&[
        "security",
        "group",
        "rule",
        "create",
        "web",
        "--ethertype",
        "IPv6",
        "--protocol",
        "ipv6-icmp",
    ]);
    let dup = srv.openstack(&[
        "security",
        "group",
        "rule",
        "create",
        "web",
        "--protocol",
        "tcp",
        "--dst-port",
        "22",
        "--remote-ip",
        "10.0.1.0/24",
    ]);
    assert!(dup.is_err(), "a duplicate rule must be refused");
    let rules = srv.os(&["security", "group", "rule", "list", "web"]);
    assert_eq!(
        rules.as_array().unwrap().len(),
        6,
        "2 egress defaults + 4: {rules}"
    );
    let shown = srv.os(&["security", "group", "rule", "show", &s(&r1, "id")]);
    assert_eq!(s(&shown, "remote_ip_prefix"), "10.0.1.0/24");
    assert_eq!(s(&shown, "protocol"), "tcp");
    srv.os_ok(&["security", "group", "rule", "delete", &s(&r1, "id")]);
    srv.os_ok(&["security", "group", "set", "web", "--name", "web2"]);
    assert_eq!(
        s(&srv.os(&["security", "group", "show", &wid]), "name"),
        "web2"
    );
    srv.os_ok(&["security", "group", "delete", "web2"]);
    assert!(srv.openstack(&["security", "group", "show", &wid]).is_err());
}
