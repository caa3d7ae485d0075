//! The session driven by hand: a scripted peer's bytes and explicit time.

use std::time::{Duration, Instant};

use super::*;
use crate::wire::{AFI_IPV4, AFI_IPV6, CEASE, OPEN_ERROR, SAFI_UNICAST, UPDATE_ERROR, decode};

fn cfg() -> Config {
    Config {
        local_as: 64512,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        peer_as: 65000,
        hold_time: 9,
        connect_retry: Duration::from_secs(5),
        families: vec![(AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST)],
        restart_time: 120,
    }
}

fn peer_open(asn: u32, hold: u16) -> Vec<u8> {
    Message::Open(Open::new(
        asn,
        hold,
        Ipv4Addr::new(10, 0, 0, 2),
        &[(AFI_IPV4, SAFI_UNICAST)],
    ))
    .encode(Codec::default())
}

fn ka() -> Vec<u8> {
    Message::Keepalive.encode(Codec::default())
}

fn sent(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(decode(b, Codec::default()).unwrap().unwrap().0),
            _ => None,
        })
        .collect()
}

fn notification(out: &[Output]) -> Notification {
    sent(out)
        .into_iter()
        .find_map(|m| match m {
            Message::Notification(n) => Some(n),
            _ => None,
        })
        .expect("a NOTIFICATION")
}

/// A session brought to Established at `t0`.
fn established(t0: Instant) -> Session {
    let mut s = Session::new(cfg());
    assert_eq!(s.handle(t0, Input::Start), vec![Output::Connect]);
    let out = s.handle(t0, Input::Connected);
    assert!(matches!(sent(&out)[..], [Message::Open(_)]));
    assert_eq!(s.state(), State::OpenSent);
    let out = s.handle(t0, Input::Bytes(&peer_open(65000, 90)));
    assert_eq!(sent(&out), vec![Message::Keepalive]);
    assert_eq!(s.state(), State::OpenConfirm);
    let out = s.handle(t0, Input::Bytes(&ka()));
    let Some(Output::Established(n)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(n.hold_time, 9);
    assert!(n.four_octet_as);
    assert!(!n.internal);
    // Only IPv4 is common to both OPENs.
    assert_eq!(n.families, vec![(AFI_IPV4, SAFI_UNICAST)]);
    assert_eq!(s.state(), State::Established);
    s
}

#[test]
fn comes_up_and_keeps_alive_every_third_of_the_hold_time() {
    let t0 = Instant::now();
    let mut s = established(t0);
    assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(3)));
    assert!(
        s.handle(t0 + Duration::from_secs(2), Input::Tick)
            .is_empty()
    );
    let out = s.handle(t0 + Duration::from_secs(3), Input::Tick);
    assert_eq!(sent(&out), vec![Message::Keepalive]);
    // The peer's keepalives keep the hold timer from running out.
    for i in 1..10 {
        let t = t0 + Duration::from_secs(5 * i);
        s.handle(t, Input::Bytes(&ka()));
        let out = s.handle(t, Input::Tick);
        assert!(!out.iter().any(|o| matches!(o, Output::Close)));
    }
    assert_eq!(s.state(), State::Established);
}

#[test]
fn the_hold_timer_expires_and_the_session_retries() {
    let t0 = Instant::now();
    let mut s = established(t0);
    let t = t0 + Duration::from_secs(9);
    let out = s.handle(t, Input::Tick);
    let n = notification(&out);
    assert_eq!((n.code, n.subcode), (HOLD_TIMER_EXPIRED, 0));
    assert!(out.contains(&Output::Close));
    assert!(out.iter().any(|o| matches!(o, Output::Down(_))));
    assert_eq!(s.state(), State::Connect);
    // Connect retry: nothing before it, a new attempt at it.
    assert!(s.handle(t + Duration::from_secs(4), Input::Tick).is_empty());
    assert_eq!(
        s.handle(t + Duration::from_secs(5), Input::Tick),
        vec![Output::Connect]
    );
}

#[test]
fn a_failed_connection_is_retried_after_connect_retry() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg());
    s.handle(t0, Input::Start);
    s.handle(t0, Input::ConnectFailed);
    assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(5)));
    assert_eq!(
        s.handle(t0 + Duration::from_secs(5), Input::Tick),
        vec![Output::Connect]
    );
}

#[test]
fn an_open_from_the_wrong_as_gets_bad_peer_as() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg());
    s.handle(t0, Input::Start);
    s.handle(t0, Input::Connected);
    let out = s.handle(t0, Input::Bytes(&peer_open(65099, 90)));
    let n = notification(&out);
    assert_eq!((n.code, n.subcode), (OPEN_ERROR, BAD_PEER_AS));
    assert_eq!(n.data, 65099u16.to_be_bytes());
    assert!(out.contains(&Output::Close));
    assert_eq!(s.state(), State::Connect);
    assert!(s.last_error().unwrap().contains("bad peer AS"));
}

#[test]
fn a_hold_time_of_two_is_unacceptable_and_zero_means_no_timers() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg());
    s.handle(t0, Input::Start);
    s.handle(t0, Input::Connected);
    let n = notification(&s.handle(t0, Input::Bytes(&peer_open(65000, 2))));
    assert_eq!((n.code, n.subcode), (OPEN_ERROR, UNACCEPTABLE_HOLD_TIME));

    let mut s = Session::new(cfg());
    s.handle(t0, Input::Start);
    s.handle(t0, Input::Connected);
    s.handle(t0, Input::Bytes(&peer_open(65000, 0)));
    s.handle(t0, Input::Bytes(&ka()));
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.deadline(), None);
    assert!(
        s.handle(t0 + Duration::from_secs(3600), Input::Tick)
            .is_empty()
    );
}

#[test]
fn a_malformed_update_gets_its_notification_and_the_session_goes_on_later() {
    let t0 = Instant::now();
    let mut s = established(t0);
    // An UPDATE with NLRI and no attributes at all.
    let bad = [
        0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0, 25, 2, 0, 0, 0, 0, 8, 10,
    ];
    let out = s.handle(t0, Input::Bytes(&bad));
    let n = notification(&out);
    assert_eq!((n.code, n.subcode), (UPDATE_ERROR, 3));
    assert!(out.iter().any(|o| matches!(o, Output::Down(_))));
    // Up again after the retry.
    let t = t0 + Duration::from_secs(5);
    assert_eq!(s.handle(t, Input::Tick), vec![Output::Connect]);
    s.handle(t, Input::Connected);
    s.handle(t, Input::Bytes(&peer_open(65000, 90)));
    let out = s.handle(t, Input::Bytes(&ka()));
    assert!(matches!(out[..], [Output::Established(_)]));
}

#[test]
fn bytes_may_arrive_in_any_split() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg());
    s.handle(t0, Input::Start);
    s.handle(t0, Input::Connected);
    let mut all = peer_open(65000, 90);
    all.extend(ka());
    let mut events = Vec::new();
    for b in all.chunks(3) {
        events.extend(s.handle(t0, Input::Bytes(b)));
    }
    assert!(events.iter().any(|o| matches!(o, Output::Established(_))));
}

#[test]
fn unexpected_messages_are_fsm_errors_and_notifications_end_the_session() {
    let t0 = Instant::now();
    let mut s = established(t0);
    let n = notification(&s.handle(t0, Input::Bytes(&peer_open(65000, 90))));
    assert_eq!((n.code, n.subcode), (FSM_ERROR, 3));

    let mut s = established(t0);
    let cease = Message::Notification(Notification::cease(2)).encode(Codec::default());
    let out = s.handle(t0, Input::Bytes(&cease));
    assert!(sent(&out).is_empty(), "a NOTIFICATION is never answered");
    assert!(out.contains(&Output::Close));
    assert_eq!(s.state(), State::Connect);

    let mut s = established(t0);
    let out = s.handle(t0, Input::Stop);
    assert_eq!(notification(&out).code, CEASE);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.deadline(), None);
}

#[test]
fn a_route_refresh_asks_for_the_table_again() {
    let t0 = Instant::now();
    let mut s = established(t0);
    let rr = Message::RouteRefresh { afi: 1, safi: 1 }.encode(Codec::default());
    assert_eq!(s.handle(t0, Input::Bytes(&rr)), vec![Output::RouteRefresh]);
}

#[test]
fn ibgp_refuses_our_own_identifier() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.peer_as = 64512;
    let mut s = Session::new(c);
    s.handle(t0, Input::Start);
    s.handle(t0, Input::Connected);
    let open = Message::Open(Open::new(64512, 90, Ipv4Addr::new(10, 0, 0, 1), &[]))
        .encode(Codec::default());
    let n = notification(&s.handle(t0, Input::Bytes(&open)));
    assert_eq!((n.code, n.subcode), (OPEN_ERROR, BAD_BGP_IDENTIFIER));
}

#[test]
fn the_open_offers_graceful_restart_only_with_a_restart_time() {
    for (time, want) in [(120, Some(120)), (0, None)] {
        let mut s = Session::new(Config {
            restart_time: time,
            ..cfg()
        });
        s.handle(Instant::now(), Input::Start);
        let out = s.handle(Instant::now(), Input::Connected);
        let [Message::Open(o)] = &sent(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(o.graceful_restart(), want);
    }
}
