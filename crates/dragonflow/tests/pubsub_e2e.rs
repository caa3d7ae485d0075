//! Two hosts whose controllers follow the server's fan-out (`--pubsub zmq://…`) while the
//! publisher loses every third message: the VMs made after the controllers started (so
//! every object reaches them through the stream) ping each other both ways.

mod common;

use common::Server;
use common::cloud::{Controller, HOSTS, TwoHosts, underlay};

#[test]
fn vms_ping_with_the_controllers_on_a_lossy_fan_out() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let pubsub = format!("zmq://127.0.0.1:{port}");
    let srv = Server::start_args(&[
        "--noauth-admin",
        "--pubsub",
        &format!("{pubsub}?drop_every=3"),
    ]);
    let (ovs_a, ovs_b) = (
        testbed::Ovs::start().expect("ovs a"),
        testbed::Ovs::start().expect("ovs b"),
    );
    testbed::veth("ul0", ovs_a.own_netns(), "ul0", ovs_b.own_netns()).expect("underlay wire");
    underlay(&ovs_a, "ul0", "192.0.2.1/24");
    underlay(&ovs_b, "ul0", "192.0.2.2/24");
    let start = |ovs: &testbed::Ovs, (name, ip): (&str, &str)| {
        let c = Controller::spawn(
            &srv.nb_url,
            ovs,
            name,
            ip,
            &["--tunnel-types", "geneve", "--pubsub", &pubsub],
            None,
        );
        c.wait_for_br_int(ovs);
        c
    };
    let ctl = [start(&ovs_a, HOSTS[0]), start(&ovs_b, HOSTS[1])];
    let t = TwoHosts {
        srv,
        ovs: [ovs_a, ovs_b],
        ctl,
    };
    let net = t.srv.network("n", "10.0.0.0/24");
    let (a, ip_a) = t.vm(&net, 0);
    let (b, ip_b) = t.vm(&net, 1);
    assert!(a.pings(&ip_b), "{}\n{}", t.dumps(), t.ctl[0].log());
    assert!(b.pings(&ip_a));
    for c in &t.ctl {
        assert!(c.log().contains("pubsub: subscribed"), "{}", c.log());
    }
}
