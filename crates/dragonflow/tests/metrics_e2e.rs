//! Prometheus metrics of the server and a controller, scraped over HTTP as Prometheus
//! does, move with the load: a port created through the API, plugged into a real OVS, and
//! a real `dhclient` answered by the controller.

mod common;

use common::Server;
use common::cloud::{Controller, wait_until};
use common::prom::{free_addr, scrape, value};
use serde_json::json;
use std::time::Duration;

#[test]
fn server_and_controller_metrics_move_with_the_load() {
    if !testbed::require_root("server_and_controller_metrics_move_with_the_load") {
        return;
    }
    let (srv_metrics, ctl_metrics) = (free_addr(), free_addr());
    let srv = Server::start_args(&["--noauth-admin", "--metrics-listen", &srv_metrics]);
    let ovs = testbed::Ovs::start().expect("ovs");
    let ctl = Controller::spawn(
        &srv.nb_url,
        &ovs,
        "host-a",
        "192.0.2.1",
        &["--metrics-listen", &ctl_metrics],
        None,
    );
    ctl.wait_for_br_int(&ovs);
    // Served from the start; the first resync once the switch is read back.
    wait_until(
        "the controller's start in its metrics",
        Duration::from_secs(10),
        || {
            common::http_call(&format!("http://{ctl_metrics}/metrics"), "GET", None, &[]).0 == 200
                && value(
                    &scrape(&ctl_metrics),
                    "dragonflow_controller_resyncs_total{cause=\"start\"",
                ) == 1.0
        },
    );
    let (s0, c0) = (scrape(&srv_metrics), scrape(&ctl_metrics));
    assert_eq!(
        value(&c0, "dragonflow_controller_resyncs_total{cause=\"start\""),
        1.0,
        "{c0}"
    );
    assert!(
        value(&s0, "dragonflow_server_process_resident_memory_bytes") > 1e6,
        "{s0}"
    );
    assert!(value(&c0, "dragonflow_controller_process_resident_memory_bytes") > 1e6);

    let net = srv.network("n", "10.0.0.0/24");
    let port = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let id = port["id"].as_str().unwrap();
    let mac = port["mac_address"].as_str().unwrap();
    let vm = testbed::Vm::plug_unaddressed(&ovs, "br-int", id, mac).expect("plug");
    wait_until("the port ACTIVE", Duration::from_secs(20), || {
        srv.call("GET", &format!("/v2.0/ports/{id}"), None).1["port"]["status"] == "ACTIVE"
    });
    let dir = tempfile::tempdir().unwrap();
    let (pf, lf) = (dir.path().join("pid"), dir.path().join("leases"));
    let out = vm
        .ns
        .dhclient("eth0", &pf, &lf, &["-1"])
        .expect("dhclient")
        .output()
        .expect("dhclient");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = vm
        .ns
        .dhclient("eth0", &pf, &lf, &["-x"])
        .map(|mut c| c.output());

    // The controller's figures are taken after each batch: wait for the DHCP answers.
    wait_until(
        "the DHCP packet-ins counted",
        Duration::from_secs(10),
        || {
            value(
                &scrape(&ctl_metrics),
                "dragonflow_controller_packet_ins_total{app=\"Dhcp\"",
            ) >= 2.0
        },
    );
    wait_until("the flows counted", Duration::from_secs(5), || {
        value(
            &scrape(&ctl_metrics),
            "dragonflow_controller_flows{app=\"L2\"",
        ) > 0.0
    });
    let (s1, c1) = (scrape(&srv_metrics), scrape(&ctl_metrics));
    assert_eq!(
        value(
            &s1,
            "dragonflow_server_requests_total{method=\"POST\",route=\"/v2.0/ports\",status=\"201\""
        ),
        1.0,
        "{s1}"
    );
    assert_eq!(
        value(
            &s1,
            "dragonflow_server_request_seconds_count{method=\"POST\",route=\"/v2.0/ports\""
        ),
        1.0
    );
    assert!(
        value(
            &s1,
            "dragonflow_server_requests_total{method=\"GET\",route=\"/v2.0/ports/{id}\",status=\"200\""
        ) >= 1.0,
        "{s1}"
    );
    assert!(
        value(&s1, "dragonflow_server_store_revision")
            > value(&s0, "dragonflow_server_store_revision")
    );
    // DISCOVER and REQUEST answered: two packets out at least.
    assert!(
        value(&c1, "dragonflow_controller_packets_out_total")
            >= value(&c0, "dragonflow_controller_packets_out_total") + 2.0,
        "{c1}"
    );
    assert_eq!(value(&c1, "dragonflow_controller_local_ports"), 1.0, "{c1}");
    assert!(
        value(&c1, "dragonflow_controller_nb_revision")
            > value(&c0, "dragonflow_controller_nb_revision")
    );
    assert!(value(&c1, "dragonflow_controller_bundle_commit_seconds_count") >= 1.0);
    assert!(
        value(&c1, "dragonflow_controller_flows{app=\"Dhcp\"") > 0.0,
        "{c1}"
    );
}
