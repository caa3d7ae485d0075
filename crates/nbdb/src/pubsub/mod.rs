//! Publish-subscribe fan-out of the change stream, off by default (`--pubsub`): one
//! publisher (in the server) follows the store's whole stream once and publishes each
//! change with its revision on its topic's channel, over ZeroMQ PUB/SUB (the pure-Rust
//! `zeromq` crate) or Redis pub/sub; a subscriber (a host's controller) receives only its
//! topics' channels and the global one.
//!
//! Both transports lose messages by design (a slow or reconnecting subscriber, a
//! restarted publisher), so the revisioned stream stays the truth: each message names
//! the revision of its channel's previous one ([`seq`]), a subscriber that finds a link
//! missing reads the gap from the store ([`watch`]), and it starts from the store's
//! stream until the first message arrives. Layout: [`wire`] and [`seq`] are sans-IO,
//! [`transport`] owns the sockets, [`publish`] is the server's loop.

pub mod publish;
pub mod seq;
pub mod transport;
pub mod watch;
pub mod wire;

pub use watch::PubsubWatch;

/// Where messages are published or received, from a `--pubsub` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: Kind,
    /// Test knob (`?drop_every=N`): the publisher leaves out every Nth message, so tests
    /// can show that losses are filled. Never set in production.
    pub drop_every: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `zmq://HOST:PORT`: the publisher binds, subscribers connect (`tcp://HOST:PORT`).
    Zmq(String),
    /// `redis://…`: a Redis server's pub/sub, channels `dragonflow:pubsub:KEY`.
    Redis(String),
}

/// The Redis channel prefix.
pub const REDIS_PREFIX: &str = "dragonflow:pubsub:";

impl Endpoint {
    /// Parses `zmq://HOST:PORT` or `redis://[…@]HOST:PORT[/DB]`, either with an optional
    /// `?drop_every=N`.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut drop_every = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "drop_every" => {
                    drop_every = Some(
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| *n >= 2)
                            .ok_or_else(|| format!("--pubsub: drop_every={v} (2 or more)"))?,
                    );
                }
                other => return Err(format!("--pubsub: unknown parameter {other}")),
            }
        }
        let kind = if let Some(addr) = base.strip_prefix("zmq://") {
            let ok = addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(format!("--pubsub {url}: zmq://HOST:PORT"));
            }
            Kind::Zmq(format!("tcp://{addr}"))
        } else if base.starts_with("redis://") {
            Kind::Redis(base.to_string())
        } else {
            return Err(format!(
                "--pubsub {}: zmq://HOST:PORT or redis://HOST:PORT",
                crate::url::redacted(url)
            ));
        };
        Ok(Endpoint { kind, drop_every })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_and_bad_ones_named() {
        assert_eq!(
            Endpoint::parse("zmq://127.0.0.1:5556").unwrap(),
            Endpoint {
                kind: Kind::Zmq("tcp://127.0.0.1:5556".into()),
                drop_every: None
            }
        );
        let e = Endpoint::parse("redis://h:6379/2?drop_every=7").unwrap();
        assert_eq!(e.kind, Kind::Redis("redis://h:6379/2".into()));
        assert_eq!(e.drop_every, Some(7));
        for bad in [
            "zmq://h",
            "zmq://:1",
            "zmq://h:x",
            "tcp://h:1",
            "zmq://h:1?drop_every=1",
            "zmq://h:1?x=1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
