//! DNS messages: parsing never panics; an answer built to a parsed query parses back with
//! its id and question, within the size asked for (TC when cut); reverse names never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::dns::{self, Answer, Data, Message, Response};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else {
        return;
    };
    let _ = (m.opcode(), m.rcode(), m.truncated(), m.edns_udp_size());
    for q in &m.questions {
        if let Some(name) = q.name.to_lowercase_dotted() {
            let _ = dns::reverse_address(&name);
        }
    }
    let mut r = Response::to(&m, dns::rcode::NOERROR);
    if let Some(q) = &r.question {
        for i in 0..40u8 {
            r.answers.push(Answer {
                name: q.name.clone(),
                ttl: 0,
                data: Data::A(Ipv4Addr::new(10, 0, 0, i)),
            });
        }
    }
    let bytes = r.build(dns::MAX_UDP_LEN);
    let back = Message::parse(&bytes).expect("our answer parses");
    assert_eq!(back.id, m.id);
    assert_eq!(back.questions.first(), m.questions.first());
    assert!(bytes.len() <= dns::MAX_UDP_LEN || back.answers.is_empty());
});
