//! What Nova's answer to `POST /os-server-external-events` means for the events sent:
//! pure, so every answer (including garbage from the network) is decided in unit tests.

use serde_json::Value;

/// What to do with a batch after Nova answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nova took the batch: the events are done. `refused` names the events Nova answered
    /// with an error of their own (an unknown instance, one not on a host yet): Neutron
    /// drops those too, as sending them again cannot succeed.
    Delivered { refused: Vec<(String, String)> },
    /// Our token was refused: get a new one and send again.
    Unauthorized,
    /// Nova could not take it now (5xx, 429, a cut answer): keep the events, back off.
    Later(String),
    /// Nova will never take this batch (400, 403, ...): drop it, loudly.
    Rejected(String),
}

fn short(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(300).collect()
}

/// Judges Nova's answer: `status` and body.
pub fn judge(status: u16, body: &[u8]) -> Outcome {
    match status {
        200 | 207 => {
            // Each event comes back with its own code; anything but 200 is refused.
            let events = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("events").and_then(Value::as_array).cloned())
                .unwrap_or_default();
            let refused = events
                .iter()
                .filter(|e| e.get("code").and_then(Value::as_u64).unwrap_or(200) != 200)
                .map(|e| {
                    let tag = e.get("tag").and_then(Value::as_str).unwrap_or("?");
                    let code = e.get("code").and_then(Value::as_u64).unwrap_or(0);
                    let name = e.get("name").and_then(Value::as_str).unwrap_or("?");
                    (tag.to_string(), format!("{name}: code {code}"))
                })
                .collect();
            Outcome::Delivered { refused }
        }
        // None of the instances exists (any more): nothing to wait for them.
        404 => Outcome::Delivered {
            refused: vec![("*".into(), format!("404: {}", short(body)))],
        },
        401 => Outcome::Unauthorized,
        429 | 500..=599 => Outcome::Later(format!("HTTP {status}: {}", short(body))),
        _ => Outcome::Rejected(format!("HTTP {status}: {}", short(body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_answers_are_judged_as_neutron_judges_them() {
        let ok = br#"{"events": [{"name": "network-vif-plugged", "tag": "p1", "status": "completed", "code": 200}]}"#;
        assert_eq!(judge(200, ok), Outcome::Delivered { refused: vec![] });
        let mixed = br#"{"events": [{"name": "network-vif-plugged", "tag": "p1", "code": 200},
            {"name": "network-vif-unplugged", "tag": "p2", "code": 422}]}"#;
        assert_eq!(
            judge(207, mixed),
            Outcome::Delivered {
                refused: vec![("p2".into(), "network-vif-unplugged: code 422".into())]
            }
        );
        assert!(matches!(judge(404, b"{}"), Outcome::Delivered { refused } if refused.len() == 1));
        assert_eq!(judge(401, b""), Outcome::Unauthorized);
        assert!(matches!(judge(503, b"busy"), Outcome::Later(m) if m.contains("503")));
        assert!(matches!(judge(429, b""), Outcome::Later(_)));
        assert!(matches!(judge(400, b"bad"), Outcome::Rejected(m) if m.contains("bad")));
        assert!(matches!(judge(403, b""), Outcome::Rejected(_)));
        // Garbage in a 200 still means Nova took the batch.
        assert_eq!(
            judge(200, b"\xff\x00not json"),
            Outcome::Delivered { refused: vec![] }
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any answer from the network is judged without a panic, and a 200 is always
        /// delivered (Nova took the batch, whatever it says of the events).
        #[test]
        fn any_answer_is_judged(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let o = judge(status, &body);
            if status == 200 {
                let delivered = matches!(o, Outcome::Delivered { .. });
                prop_assert!(delivered, "a 200 is delivered: {:?}", o);
            }
        }

        /// Events echoed with arbitrary codes: those not 200 are the refused ones.
        #[test]
        fn refused_events_are_those_with_another_code(codes in proptest::collection::vec(0u64..1000, 0..20)) {
            let events: Vec<serde_json::Value> = codes
                .iter()
                .enumerate()
                .map(|(i, c)| serde_json::json!({"name": "network-vif-plugged", "tag": format!("p{i}"), "code": c}))
                .collect();
            let body = serde_json::json!({ "events": events }).to_string();
            let Outcome::Delivered { refused } = judge(207, body.as_bytes()) else {
                return Err(TestCaseError::fail("a 207 is delivered"));
            };
            prop_assert_eq!(refused.len(), codes.iter().filter(|c| **c != 200).count());
        }
    }
}
