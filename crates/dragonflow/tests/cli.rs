//! The real `openstack` CLI drives the whole lifecycle of every resource against a real
//! `dragonflow server` process, under noauth (`keystone_cli_e2e` runs the same through
//! Keystone).

mod common;

use common::{Server, lifecycle};

#[test]
fn network_lifecycle() {
    lifecycle::network_lifecycle(&Server::start());
}

#[test]
fn subnet_lifecycle() {
    lifecycle::subnet_lifecycle(&Server::start());
}

#[test]
fn port_lifecycle() {
    lifecycle::port_lifecycle(&Server::start());
}

#[test]
fn router_and_floating_ip_lifecycle() {
    lifecycle::router_and_floating_ip_lifecycle(&Server::start());
}

#[test]
fn security_group_lifecycle() {
    lifecycle::security_group_lifecycle(&Server::start());
}
