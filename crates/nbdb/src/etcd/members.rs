//! Which etcd member a store talks to: one at a time, moving to the next when it does not
//! answer.
//!
//! etcd-client spreads requests over every endpoint through tonic's balanced channel, which
//! keeps choosing a dead member: its connection attempts fail at once, so it looks the least
//! loaded. With one member of three killed nearly every request failed (tests/ha_e2e.rs).
//! etcd's own Go client pins one endpoint and switches when it fails; so does this.

use super::io;
use crate::{Result, StoreError};
use etcd_client::{Client, ConnectOptions, GetOptions, GetResponse, Txn, TxnResponse};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// The cluster's members, a client for each built on first use.
pub(super) struct Members {
    endpoints: Vec<String>,
    access: Access,
    clients: Vec<OnceCell<Client>>,
    /// The member requests go to.
    current: AtomicUsize,
}

/// How the store reaches the cluster: etcd's user and password, when its authentication is
/// on, and TLS for `https://` endpoints.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub user: Option<(String, String)>,
    pub tls: Option<crate::tls::Tls>,
}

/// A client of one member, and which one (for [`Members::lost`]).
pub(super) struct Pinned {
    member: usize,
    client: Client,
}

impl Deref for Pinned {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Pinned {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Members {
    /// Starts at a random member, so that several servers spread over the cluster.
    pub(super) fn new(endpoints: Vec<String>, access: Access) -> Members {
        let first = RandomState::new().hash_one(&endpoints) as usize;
        Members {
            clients: endpoints.iter().map(|_| OnceCell::new()).collect(),
            current: AtomicUsize::new(first % endpoints.len().max(1)),
            endpoints,
            access,
        }
    }

    pub(super) fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// A client of the current member.
    pub(super) async fn client(&self) -> Result<Pinned> {
        let member = self.current.load(Ordering::Relaxed) % self.clients.len();
        let endpoint = &self.endpoints[member..=member];
        // A client reconnects by itself once built; only building it can fail here.
        match self.clients[member]
            .get_or_try_init(|| connect(endpoint, &self.access))
            .await
        {
            Ok(client) => Ok(Pinned {
                member,
                client: client.clone(),
            }),
            Err(e) => {
                self.next(member);
                Err(e)
            }
        }
    }

    /// The error of a request to `c`'s member, after which the next request goes to the
    /// next member if this one did not answer.
    pub(super) fn lost(&self, c: &Pinned, e: etcd_client::Error) -> StoreError {
        if unanswered(&e) {
            self.next(c.member);
        }
        io(e)
    }

    /// A read of `key`, tried on each member in turn while one does not answer: a read is
    /// safe to repeat, and a one-shot reader (`dragonflow db`) has no next request.
    pub(super) async fn get(&self, key: Vec<u8>, opts: Option<GetOptions>) -> Result<GetResponse> {
        let mut tries = self.clients.len();
        loop {
            let mut c = self.client().await?;
            match c.get(key.clone(), opts.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) if tries > 1 && unanswered(&e) => self.next(c.member),
                Err(e) => return Err(self.lost(&c, e)),
            }
            tries -= 1;
        }
    }

    /// A transaction of reads only, tried as [`Members::get`] is.
    pub(super) async fn read(&self, txn: Txn) -> Result<TxnResponse> {
        let mut tries = self.clients.len();
        loop {
            let mut c = self.client().await?;
            match c.txn(txn.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) if tries > 1 && unanswered(&e) => self.next(c.member),
                Err(e) => return Err(self.lost(&c, e)),
            }
            tries -= 1;
        }
    }

    /// Moves on from `member`, once however many requests saw it fail.
    fn next(&self, member: usize) {
        let next = (member + 1) % self.clients.len();
        if self
            .current
            .compare_exchange(member, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
            && self.clients.len() > 1
        {
            tracing::warn!(
                from = %self.endpoints[member],
                to = %self.endpoints[next],
                "etcd member did not answer: using the next"
            );
        }
    }
}

/// True for an error that says the member did not answer (refused, reset, timed out) or
/// cannot serve now (no leader, leader changed), rather than the cluster's answer.
fn unanswered(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => unanswered_code(i32::from(s.code())),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// The gRPC status codes (tonic's `Code`) of [`unanswered`]: cancelled, unknown (a reset
/// connection), deadline exceeded, unavailable.
fn unanswered_code(code: i32) -> bool {
    matches!(code, 1 | 2 | 4 | 14)
}

async fn connect(endpoints: &[String], access: &Access) -> Result<Client> {
    let user = access.user.as_ref();
    let mut options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        // Detects a dead server under a long-lived watch stream.
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    if let Some((name, password)) = user {
        options = options.with_user(name.clone(), password.clone());
    }
    if let Some(tls) = &access.tls {
        let mut t = etcd_client::TlsOptions::new();
        t = match &tls.ca {
            Some(ca) => t.ca_certificate(etcd_client::Certificate::from_pem(ca)),
            None => t.with_native_roots(),
        };
        if let Some((cert, key)) = &tls.identity {
            t = t.identity(etcd_client::Identity::from_pem(cert, key));
        }
        options = options.with_tls(t);
    }
    Client::connect(endpoints, Some(options))
        .await
        .map_err(|e| match user {
            // etcd's answer names what is wrong ("authentication failed, invalid user ID
            // or password"); the password itself is never in it.
            Some((name, _)) if e.to_string().contains("auth") => StoreError::Unavailable(format!(
                "etcd refused the credentials of user {name:?}: {e}"
            )),
            _ => io(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_that_does_not_answer_is_left_for_the_next() {
        assert!(unanswered_code(14) && unanswered_code(2));
        // The cluster's own answers (a compacted revision, a bad request) stay put.
        assert!(!unanswered_code(11) && !unanswered_code(3));
        assert!(!unanswered(&etcd_client::Error::InvalidArgs("x".into())));
        let m = Members::new(vec!["a".into(), "b".into(), "c".into()], Access::default());
        let first = m.current.load(Ordering::Relaxed);
        assert!(first < 3);
        // Two requests on one member failing move the store on once, not twice.
        m.next(first);
        m.next(first);
        assert_eq!(m.current.load(Ordering::Relaxed), (first + 1) % 3);
        m.next((first + 1) % 3);
        m.next((first + 2) % 3);
        assert_eq!(m.current.load(Ordering::Relaxed), first);
    }
}
