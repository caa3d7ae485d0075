//! The routes a speaker advertises, on a small cloud: two routers on one external
//! network, subnets in and out of the gateway network's address scope, floating IPs bound
//! and unbound.

use super::*;
use crate::fixtures::{chassis, fixed_ip, meta, port, router, subnet};
use crate::{ExternalGateway, FloatingIp, RouterInterface};

fn pool(id: &str, scope: Option<&str>) -> SubnetPool {
    SubnetPool {
        meta: meta(id),
        ip_version: 4,
        prefixes: vec![],
        default_prefixlen: 24,
        min_prefixlen: 8,
        max_prefixlen: 32,
        default_quota: None,
        shared: false,
        is_default: false,
        address_scope_id: scope.map(str::to_string),
        deleting: false,
    }
}

fn in_pool(mut s: Subnet, pool: &str) -> Subnet {
    s.subnetpool_id = Some(pool.to_string());
    s
}

fn gateway_router(id: &str, key: u32, gw_ip: &str, subnets: &[&Subnet]) -> Router {
    let mut r = router(id, key);
    r.external_gateway = Some(ExternalGateway {
        network_id: "ext".into(),
        enable_snat: true,
        external_fixed_ips: vec![fixed_ip("ext-sub", gw_ip)],
        port_id: format!("{id}-gw"),
    });
    r.interfaces = subnets
        .iter()
        .map(|s| RouterInterface {
            port_id: format!("{id}-{}", s.meta.id),
            subnet_id: s.meta.id.clone(),
            network_id: s.network_id.clone(),
            ip_address: s.gateway_ip.unwrap(),
            cidr: s.cidr,
            mac_address: crate::fixtures::mac(key),
        })
        .collect();
    r
}

fn fip(id: &str, addr: &str, port: Option<&str>) -> FloatingIp {
    FloatingIp {
        meta: meta(id),
        floating_network_id: "ext".into(),
        floating_ip_address: addr.parse().unwrap(),
        floating_subnet_id: "ext-sub".into(),
        floating_port_id: format!("{id}-port"),
        port_id: port.map(str::to_string),
        fixed_ip_address: None,
        router_id: Some("r1".into()),
        port_forwardings: vec![],
    }
}

fn speaker() -> BgpSpeaker {
    BgpSpeaker {
        meta: meta("sp"),
        ip_version: 4,
        local_as: 64512,
        advertise_floating_ip_host_routes: true,
        advertise_tenant_networks: true,
        peers: vec![],
        networks: vec!["ext".into()],
    }
}

fn routes(sp: &BgpSpeaker, w: &World<'_>) -> Vec<(String, String)> {
    advertised_routes(sp, w)
        .into_iter()
        .map(|(d, n)| (d.to_string(), n.to_string()))
        .collect()
}

#[test]
fn tenant_subnets_in_scope_go_via_the_gateway_and_floating_ips_via_their_host() {
    let ext = in_pool(subnet("ext-sub", "ext", "172.24.4.0/24"), "ext-pool");
    let a = in_pool(subnet("a", "net-a", "10.0.0.0/24"), "tenant-pool");
    let other = in_pool(subnet("b", "net-b", "10.9.0.0/24"), "other-pool");
    let unscoped = subnet("c", "net-c", "10.8.0.0/24");
    let subnets = [ext, a.clone(), other.clone(), unscoped.clone()];
    let pools = [
        pool("ext-pool", Some("scope")),
        pool("tenant-pool", Some("scope")),
        pool("other-pool", Some("scope2")),
    ];
    let routers = [
        gateway_router("r1", 1, "172.24.4.10", &[&a, &other, &unscoped]),
        // A router on no gateway network of the speaker.
        {
            let mut r = gateway_router("r2", 2, "172.25.0.10", &[&a]);
            r.external_gateway.as_mut().unwrap().network_id = "ext2".into();
            r
        },
    ];
    let ports = [
        port("vm1", "net-a", 1, "host1"),
        port("vm2", "net-a", 2, ""),
        port("vm3", "net-a", 3, "host-gone"),
    ];
    let fips = [
        fip("f1", "172.24.4.100", Some("vm1")),
        fip("f2", "172.24.4.101", Some("vm2")),
        fip("f3", "172.24.4.102", None),
        fip("f4", "172.24.4.103", Some("vm3")),
    ];
    let chassis = [chassis("host1", "192.168.100.11")];
    let w = World {
        subnets: &subnets,
        pools: &pools,
        routers: &routers,
        floating_ips: &fips,
        ports: &ports,
        chassis: &chassis,
        dead_hosts: &[],
    };
    let sp = speaker();
    assert_eq!(
        routes(&sp, &w),
        vec![
            ("10.0.0.0/24".into(), "172.24.4.10".into()),
            ("172.24.4.100/32".into(), "192.168.100.11".into()),
        ]
    );
    let mut only_fips = sp.clone();
    only_fips.advertise_tenant_networks = false;
    assert_eq!(routes(&only_fips, &w).len(), 1);
    let mut only_nets = sp.clone();
    only_nets.advertise_floating_ip_host_routes = false;
    assert_eq!(
        routes(&only_nets, &w),
        vec![("10.0.0.0/24".into(), "172.24.4.10".into())]
    );
    // An IPv6 speaker on the same network has nothing of IPv4.
    let mut v6 = sp.clone();
    v6.ip_version = 6;
    assert!(routes(&v6, &w).is_empty());
    // A host whose controller died takes its floating IPs' routes with it.
    let dead = ["host1".to_string()];
    assert_eq!(
        routes(
            &sp,
            &World {
                dead_hosts: &dead,
                ..w
            }
        ),
        vec![("10.0.0.0/24".into(), "172.24.4.10".into())]
    );
    // No gateway network, no routes.
    let mut none = sp;
    none.networks.clear();
    assert!(routes(&none, &w).is_empty());
}

#[test]
fn objects_keep_their_json_shape() {
    let p = BgpPeer {
        meta: meta("p"),
        peer_ip: "192.0.2.1".parse().unwrap(),
        remote_as: 4_200_000_000,
        auth_type: "md5".into(),
        password: Some("s".into()),
        deleting: false,
    };
    let j = serde_json::to_value(&p).unwrap();
    assert_eq!(j["remote_as"], 4_200_000_000u64);
    assert!(j.get("deleting").is_none());
    assert_eq!(serde_json::from_value::<BgpPeer>(j).unwrap(), p);
}
