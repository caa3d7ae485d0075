//! Any bytes a VM sends to the metadata server: through the real HTTP/1 server (hyper,
//! with the service's limits) to the core's answer from a view holding one VM port. Never
//! a panic; every 200 answers for that port only (the source decides, not the bytes).
#![no_main]

use controller::apps::Host;
use controller::apps::metadata::{self, serve};
use controller::metadata_http::{Question, connection, reply};
use controller::view::{View, written};
use libfuzzer_sys::fuzz_target;
use model::instance::InstanceMetadata;
use model::{Network, Port, fixtures};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn world() -> (View, Host) {
    let mut view = View::new("h");
    let net = Network {
        subnets: vec!["s".into()],
        ..fixtures::network("n", 9)
    };
    let mut p: Port = fixtures::port("p", "n", 5, "h");
    p.fixed_ips = vec![fixtures::fixed_ip("s", "10.0.0.5")];
    p.device_id = "instance-5".into();
    p.instance_metadata = Some(InstanceMetadata {
        user_data: Some("aGVsbG8=".into()),
        ..Default::default()
    });
    view.apply(&written(&net, 1));
    view.apply(&written(&fixtures::subnet("s", "n", "10.0.0.0/24"), 2));
    view.apply(&written(&p, 3));
    let mut host = Host::default();
    host.ofports.insert("p".into(), 1);
    (view, host)
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (view, host) = world();
        let mut server = serve::Server::new(serve::Config::default());
        let source = metadata::client(host.metadata.range, 5).unwrap();
        let (ask, mut questions) = tokio::sync::mpsc::channel::<Question>(16);
        let (mut vm, srv) = tokio::io::duplex(1 << 16);
        let conn = tokio::spawn(connection(srv, source, ask, reqwest::Client::new()));
        let answers = tokio::spawn(async move {
            while let Some(q) = questions.recv().await {
                reply(&mut server, &view, &host, q);
            }
        });
        let _ = vm.write_all(data).await;
        let _ = vm.shutdown().await;
        let mut out = Vec::new();
        let _ = vm.read_to_end(&mut out).await;
        let _ = conn.await;
        let _ = answers.await;
        // Whatever was asked, no answer names another instance.
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("instance-6"));
    });
});
