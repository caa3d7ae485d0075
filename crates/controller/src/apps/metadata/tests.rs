use super::*;

#[test]
fn port_keys_map_to_addresses_and_back() {
    let r = DEFAULT_RANGE;
    assert_eq!(server(r), Ipv4Addr::new(198, 19, 255, 254));
    assert_eq!(host_bits(r), 17);
    assert_eq!(client(r, 1), Some(Ipv4Addr::new(198, 18, 0, 1)));
    assert_eq!(client(r, 0), None, "key 0 is no port");
    assert_eq!(key_of(r, Ipv4Addr::new(198, 18, 0, 1)), Some(1));
    assert_eq!(key_of(r, server(r)), None);
    assert_eq!(key_of(r, Ipv4Addr::new(198, 18, 0, 0)), None);
    // The key in the host bits, as the switch writes it with one move.
    assert_eq!(client(r, 0x1_0203), Some(Ipv4Addr::new(198, 19, 2, 3)));
    // The last key the range holds; the server's and the broadcast address left out.
    let last = (1u32 << 17) - 3;
    assert_eq!(client(r, last), Some(Ipv4Addr::new(198, 19, 255, 253)));
    assert_eq!(client(r, last + 1), None);
    assert_eq!(key_of(r, Ipv4Addr::new(198, 19, 255, 255)), None);
    assert_eq!(key_of(r, Ipv4Addr::new(10, 0, 0, 1)), None);
    for k in [1, 2, 77, 1000, last] {
        assert_eq!(key_of(r, client(r, k).unwrap()), Some(k));
    }
}

mod serving {
    use super::super::serve::{Answer, Config, Nova, Request, Server, sign};
    use super::*;
    use crate::view::{View, written};
    use model::instance::InstanceMetadata;
    use model::{Network, fixtures};
    use std::time::{Duration, Instant};

    /// A view with VM port p (key 5, device `instance-5`, user data "hello", a key) plugged
    /// here, and port q (key 6) on another host.
    fn world() -> (View, Host) {
        let mut view = View::new("h");
        let net = Network {
            subnets: vec!["s".into()],
            mtu: 1450,
            ..fixtures::network("n", 9)
        };
        let mut p = fixtures::port("p", "n", 5, "h");
        p.fixed_ips = vec![fixtures::fixed_ip("s", "10.0.0.5")];
        p.device_id = "instance-5".into();
        p.meta.name = "Web Server 1".into();
        let mut m = InstanceMetadata {
            user_data: Some("aGVsbG8=".into()),
            ..Default::default()
        };
        m.public_keys
            .insert("k".into(), "ssh-ed25519 AAAA me".into());
        m.meta.insert("role".into(), "web".into());
        p.instance_metadata = Some(m);
        let mut q = fixtures::port("q", "n", 6, "o");
        q.device_id = "instance-6".into();
        view.apply(&written(&net, 1));
        view.apply(&written(&fixtures::subnet("s", "n", "10.0.0.0/24"), 2));
        view.apply(&written(&p, 3));
        view.apply(&written(&q, 4));
        let mut host = Host::default();
        host.ofports.insert("p".into(), 1);
        (view, host)
    }

    fn ask(s: &mut Server, key: u32, target: &str) -> (u16, String) {
        let (view, host) = world();
        let source = client(DEFAULT_RANGE, key).unwrap().into();
        let req = Request {
            method: "GET",
            target,
            source,
        };
        match s.answer(&view, &host, DEFAULT_RANGE, req, Instant::now()) {
            Answer::Reply(r) => (r.status, String::from_utf8_lossy(&r.body).into_owned()),
            Answer::Proxy(p) => (0, format!("{p:?}")),
        }
    }

    /// `answer` for a request from `source` in `world()` with `host` changed by `edit`.
    fn ask_from(source: std::net::IpAddr, edit: impl Fn(&mut View, &mut Host)) -> u16 {
        let (mut view, mut host) = world();
        edit(&mut view, &mut host);
        let mut s = Server::new(Config::default());
        let req = Request {
            method: "GET",
            target: "/openstack",
            source,
        };
        match s.answer(&view, &host, DEFAULT_RANGE, req, Instant::now()) {
            Answer::Reply(r) => r.status,
            Answer::Proxy(_) => 0,
        }
    }

    #[test]
    fn an_ipv6_source_and_a_trunk_subport_name_their_port() {
        let v6 = |k| client6(k).unwrap().into();
        assert_eq!(ask_from(v6(5), |_, _| {}), 200);
        // Port 6 is on another host; then a subport wired here through p's interface.
        assert_eq!(ask_from(v6(6), |_, _| {}), 403);
        assert_eq!(
            ask_from(client(DEFAULT_RANGE, 6).unwrap().into(), |_, _| {}),
            403
        );
        let wire = |view: &mut View, host: &mut Host| {
            let mut q = fixtures::port("q", "n", 6, "h");
            q.device_owner = "trunk:subport".into();
            view.apply(&written(&q, 9));
            host.subports.insert(
                "q".into(),
                crate::apps::trunk::Wired {
                    ofport: 1,
                    vid: 101,
                    key: 6,
                },
            );
        };
        assert_eq!(ask_from(v6(6), wire), 200);
        assert_eq!(
            ask_from(client(DEFAULT_RANGE, 6).unwrap().into(), wire),
            200
        );
        // Addresses standing for nothing.
        assert_eq!(ask_from(server6().into(), |_, _| {}), 403);
        assert_eq!(ask_from("fe80::a9fe:a9fe".parse().unwrap(), |_, _| {}), 403);
    }

    #[test]
    fn openstack_and_ec2_paths_answer_for_the_port_of_the_source_address() {
        let mut s = Server::new(Config::default());
        let (code, v) = ask(&mut s, 5, "/openstack");
        assert_eq!(code, 200);
        assert!(v.starts_with("2012-08-10\n") && v.ends_with("2018-08-27\nlatest"));
        let (code, md) = ask(&mut s, 5, "/openstack/latest/meta_data.json?x=1");
        assert_eq!(code, 200);
        let md: serde_json::Value = serde_json::from_str(&md).unwrap();
        assert_eq!(md["uuid"], "instance-5");
        assert_eq!(md["name"], "Web Server 1");
        assert_eq!(md["hostname"], "web-server-1.openstacklocal");
        assert_eq!(md["public_keys"]["k"], "ssh-ed25519 AAAA me");
        assert_eq!(md["keys"][0]["type"], "ssh");
        assert_eq!(md["meta"]["role"], "web");
        assert_eq!(md["devices"], serde_json::json!([]));
        let (_, nd) = ask(&mut s, 5, "/openstack/2018-08-27/network_data.json");
        let nd: serde_json::Value = serde_json::from_str(&nd).unwrap();
        assert_eq!(nd["links"][0]["mtu"], 1450);
        assert_eq!(nd["links"][0]["ethernet_mac_address"], "fa:16:3e:00:00:05");
        assert_eq!(nd["networks"][0]["ip_address"], "10.0.0.5");
        assert_eq!(nd["networks"][0]["routes"][0]["gateway"], "10.0.0.1");
        assert_eq!(
            ask(&mut s, 5, "/openstack/latest/user_data"),
            (200, "hello".into())
        );
        assert_eq!(
            ask(&mut s, 5, "/openstack/latest/vendor_data2.json"),
            (200, "{}".into())
        );
        assert_eq!(
            ask(&mut s, 5, "/openstack/2099-01-01/meta_data.json").0,
            404
        );
        assert_eq!(
            ask(&mut s, 5, "/2009-04-04/meta-data/instance-id"),
            (200, "i-00000005".into())
        );
        assert_eq!(
            ask(&mut s, 5, "/latest/meta-data/local-ipv4"),
            (200, "10.0.0.5".into())
        );
        assert_eq!(
            ask(&mut s, 5, "/latest/meta-data/public-keys/"),
            (200, "0=k".into())
        );
        assert_eq!(
            ask(&mut s, 5, "/latest/meta-data/public-keys/0/openssh-key"),
            (200, "ssh-ed25519 AAAA me".into())
        );
        assert_eq!(
            ask(&mut s, 5, "/latest/meta-data/public-keys/1/openssh-key").0,
            404
        );
        assert_eq!(ask(&mut s, 5, "/latest/user-data"), (200, "hello".into()));
        assert_eq!(ask(&mut s, 5, "/../../etc/passwd").0, 404);
    }

    #[test]
    fn other_sources_are_refused_and_each_vm_is_rate_limited() {
        let mut s = Server::new(Config {
            rate: 3,
            ..Config::default()
        });
        // Port q is not plugged here; the server's own address names no port.
        assert_eq!(ask(&mut s, 6, "/openstack").0, 403);
        let (view, host) = world();
        let req = Request {
            method: "GET",
            target: "/",
            source: server(DEFAULT_RANGE).into(),
        };
        let a = s.answer(&view, &host, DEFAULT_RANGE, req, Instant::now());
        assert!(matches!(a, Answer::Reply(r) if r.status == 403));
        let t0 = Instant::now();
        let source = client(DEFAULT_RANGE, 5).unwrap().into();
        // A burst of BURST times the rate (15), then 429.
        let codes: Vec<u16> = (0..17)
            .map(|_| {
                let req = Request {
                    method: "GET",
                    target: "/openstack",
                    source,
                };
                match s.answer(&view, &host, DEFAULT_RANGE, req, t0) {
                    Answer::Reply(r) => r.status,
                    Answer::Proxy(_) => 0,
                }
            })
            .collect();
        assert_eq!(codes[..15], [200; 15]);
        assert_eq!(codes[15..], [429, 429]);
        let later = Request {
            method: "POST",
            target: "/openstack",
            source,
        };
        let a = s.answer(
            &view,
            &host,
            DEFAULT_RANGE,
            later,
            t0 + Duration::from_secs(1),
        );
        assert!(matches!(a, Answer::Reply(r) if r.status == 405));
        assert_eq!(s.stats.limited, 2);
    }

    #[test]
    fn with_nova_the_request_is_signed_for_the_ports_device() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut s = Server::new(Config {
            nova: Some(Nova {
                url: "http://nova:8775/".into(),
                secret: b"Jefe".to_vec(),
            }),
            ..Config::default()
        });
        let (view, host) = world();
        let req = Request {
            method: "GET",
            target: "/openstack/latest/meta_data.json",
            source: client(DEFAULT_RANGE, 5).unwrap().into(),
        };
        let Answer::Proxy(p) = s.answer(&view, &host, DEFAULT_RANGE, req, Instant::now()) else {
            panic!("a request for Nova");
        };
        assert_eq!(p.url, "http://nova:8775/openstack/latest/meta_data.json");
        let h = |k: &str| {
            p.headers
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(h("X-Instance-ID").as_deref(), Some("instance-5"));
        assert_eq!(
            h("X-Tenant-ID").as_deref(),
            Some(view.ports["p"].meta.project_id.as_str())
        );
        assert_eq!(h("X-Forwarded-For").as_deref(), Some("10.0.0.5"));
        assert_eq!(
            h("X-Instance-ID-Signature"),
            Some(sign(b"Jefe", "instance-5"))
        );
    }
}

#[test]
fn ipv6_port_keys_map_to_addresses_and_back() {
    assert_eq!(server6(), "2001:2::1:0:0".parse::<Ipv6Addr>().unwrap());
    assert_eq!(client6(0), None, "key 0 is no port");
    assert_eq!(client6(1), Some("2001:2::1".parse().unwrap()));
    assert_eq!(
        client6(0x0102_0304),
        Some("2001:2::102:304".parse().unwrap())
    );
    assert_eq!(key_of6(server6()), None);
    assert_eq!(key_of6("2001:2::1:0:0:0".parse().unwrap()), None);
    assert_eq!(key_of6("fe80::2".parse().unwrap()), None);
    for k in [1, 2, 77, (1 << 24) - 1, u32::MAX - 1] {
        assert_eq!(key_of6(client6(k).unwrap()), Some(k));
        assert_eq!(
            key_of_ip(DEFAULT_RANGE, client6(k).unwrap().into()),
            Some(k)
        );
    }
}
