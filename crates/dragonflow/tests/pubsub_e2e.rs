//! Two hosts whose controllers follow the server's fan-out (`--pubsub zmq://…`) while the
//! publisher loses every third message: the VMs made after the controllers started (so
//! every object reaches them through the stream) ping each other both ways.

mod common;

use common::Server;
use common::cloud::two_hosts_with;

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
    let nb = srv.nb_url.clone();
    let flags: &[&str] = &["--pubsub", &pubsub];
    let t = two_hosts_with(srv, &nb, [flags, flags]);
    let net = t.srv.network("n", "10.0.0.0/24");
    let (a, ip_a) = t.vm(&net, 0);
    let (b, ip_b) = t.vm(&net, 1);
    assert!(a.pings(&ip_b), "{}\n{}", t.dumps(), t.ctl[0].log());
    assert!(b.pings(&ip_a));
    for c in &t.ctl {
        assert!(c.log().contains("pubsub: subscribed"), "{}", c.log());
    }
}
