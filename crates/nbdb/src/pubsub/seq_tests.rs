//! The chains: a lost message is noticed and its range named, a duplicate dropped, an
//! out-of-order one dropped after the fill that covered it, a lost tail noticed.

use super::*;

fn change(rev: Revision, topic: Option<&str>) -> Change {
    Change {
        revision: rev,
        table: "port".into(),
        id: format!("p{rev}"),
        topic: topic.map(str::to_string),
        value: Some(b"{}".to_vec()),
    }
}

fn t(name: &str) -> Channel {
    Channel::Topic(name.into())
}

/// Publishes revisions `from..=to`, each one change on the topic `topic_of(rev)`.
fn publish(
    seq: &mut Sequencer,
    revs: impl IntoIterator<Item = (Revision, Option<&'static str>)>,
) -> Vec<Message> {
    revs.into_iter()
        .flat_map(|(r, topic)| seq.revision(r, vec![change(r, topic)]))
        .collect()
}

#[test]
fn each_channel_chains_back_to_its_previous_message_or_the_start() {
    let mut seq = Sequencer::new(10);
    let ms = publish(
        &mut seq,
        [
            (11, Some("a")),
            (12, Some("b")),
            (13, Some("a")),
            (14, None),
        ],
    );
    let links: Vec<(Channel, Revision, Revision)> = ms
        .iter()
        .map(|m| match m {
            Message::Data {
                channel,
                prev,
                revision,
                ..
            } => (channel.clone(), *prev, *revision),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        links,
        [
            (t("a"), 10, 11),
            (t("b"), 10, 12),
            (t("a"), 11, 13),
            (Channel::Global, 10, 14)
        ]
    );
    // One revision's changes on one channel travel together.
    let ms = seq.revision(
        15,
        vec![
            change(15, Some("a")),
            change(15, Some("b")),
            change(15, Some("a")),
        ],
    );
    assert_eq!(ms.len(), 2);
    assert!(matches!(&ms[0], Message::Data { changes, prev: 13, .. } if changes.len() == 2));
}

#[test]
fn a_subscriber_delivers_an_unbroken_chain() {
    let mut seq = Sequencer::new(0);
    let ms = publish(&mut seq, [(1, Some("a")), (2, Some("b")), (3, Some("a"))]);
    let mut tr = Tracker::new(0);
    for m in &ms {
        assert_eq!(tr.offer(m), Verdict::Deliver);
    }
    assert_eq!(
        (tr.known(&t("a")), tr.known(&t("b")), tr.position()),
        (3, 2, 3)
    );
}

#[test]
fn a_lost_message_is_a_gap_filled_from_the_store() {
    let mut seq = Sequencer::new(0);
    let ms = publish(&mut seq, [(1, Some("a")), (2, Some("a")), (3, Some("a"))]);
    let mut tr = Tracker::new(0);
    assert_eq!(tr.offer(&ms[0]), Verdict::Deliver);
    // Revision 2 is lost: 3 names it.
    let gap = tr.offer(&ms[2]);
    assert_eq!(
        gap,
        Verdict::Gap {
            channel: t("a"),
            after: 1,
            upto: 2
        }
    );
    // Until filled, the message stays a gap; after, it is delivered.
    assert_eq!(tr.offer(&ms[2]), gap);
    tr.filled(&t("a"), 2);
    assert_eq!(tr.offer(&ms[2]), Verdict::Deliver);
}

#[test]
fn a_gap_on_one_channel_leaves_the_others_alone() {
    let mut seq = Sequencer::new(0);
    let ms = publish(
        &mut seq,
        [
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("a")),
            (4, Some("b")),
        ],
    );
    let mut tr = Tracker::new(0);
    assert_eq!(tr.offer(&ms[1]), Verdict::Deliver); // b@2; a@1 lost
    assert!(matches!(
        tr.offer(&ms[2]),
        Verdict::Gap {
            after: 0,
            upto: 1,
            ..
        }
    ));
    assert_eq!(tr.offer(&ms[3]), Verdict::Deliver);
}

#[test]
fn duplicates_and_late_messages_are_dropped() {
    let mut seq = Sequencer::new(0);
    let ms = publish(&mut seq, [(1, Some("a")), (2, Some("a")), (3, Some("a"))]);
    let mut tr = Tracker::new(0);
    assert_eq!(tr.offer(&ms[0]), Verdict::Deliver);
    assert_eq!(tr.offer(&ms[0]), Verdict::Drop, "a duplicate");
    // Out of order: 3 before 2 is a gap up to 2; the fill brings 2; 2 arriving late is
    // then old news.
    assert!(matches!(tr.offer(&ms[2]), Verdict::Gap { upto: 2, .. }));
    tr.filled(&t("a"), 2);
    assert_eq!(tr.offer(&ms[2]), Verdict::Deliver);
    assert_eq!(tr.offer(&ms[1]), Verdict::Drop);
    // Anything at or before where the subscriber started is old news too.
    let mut late = Tracker::new(5);
    assert_eq!(late.offer(&ms[2]), Verdict::Drop);
}

#[test]
fn a_lost_last_message_is_noticed_by_its_tail() {
    let mut seq = Sequencer::new(0);
    let ms = publish(&mut seq, [(1, Some("a")), (2, Some("a"))]);
    let mut tr = Tracker::new(0);
    assert_eq!(tr.offer(&ms[0]), Verdict::Deliver);
    // 2 is lost and the channel goes quiet: the sweep's tail names it.
    let sweep = seq.sweep();
    assert!(sweep.contains(&Message::Tail {
        channel: t("a"),
        last: 2
    }));
    assert_eq!(sweep.last(), Some(&Message::Tick { revision: 2 }));
    let gaps: Vec<Verdict> = sweep.iter().map(|m| tr.offer(m)).collect();
    assert!(gaps.contains(&Verdict::Gap {
        channel: t("a"),
        after: 1,
        upto: 2
    }));
    tr.filled(&t("a"), 2);
    assert!(sweep.iter().all(|m| tr.offer(m) == Verdict::Drop));
    // Tails are re-sent a few sweeps, then the channel is quiet.
    assert_eq!(seq.sweep().len(), 2);
    assert_eq!(seq.sweep().len(), 2);
    assert_eq!(seq.sweep(), [Message::Tick { revision: 2 }]);
}

#[test]
fn a_restarted_publisher_links_back_to_its_start_so_its_downtime_is_a_gap() {
    let mut tr = Tracker::new(0);
    let mut first = Sequencer::new(0);
    for m in publish(&mut first, [(1, Some("a"))]) {
        assert_eq!(tr.offer(&m), Verdict::Deliver);
    }
    // Revisions 2..=9 were written while no publisher ran.
    let mut second = Sequencer::new(9);
    let ms = publish(&mut second, [(10, Some("a"))]);
    assert_eq!(
        tr.offer(&ms[0]),
        Verdict::Gap {
            channel: t("a"),
            after: 1,
            upto: 9
        }
    );
}

#[test]
fn ticks_move_the_position_not_the_floor() {
    let mut tr = Tracker::new(0);
    for r in 1..=10 {
        assert_eq!(tr.offer(&Message::Tick { revision: r * 10 }), Verdict::Drop);
    }
    assert_eq!((tr.position(), tr.safe()), (100, 0));
    tr.raise_floor(40);
    assert_eq!((tr.position(), tr.safe()), (100, 40));
}
