//! The pure half of token validation: reading Keystone's answers into verdicts, and the
//! bounded cache of verdicts with their deadlines. No I/O and no clock of its own: every
//! function takes `now`, so tests can drive time.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Whom a valid token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub project_id: String,
    /// Role names, as Keystone gives them (`admin`, `member`, `reader`, ...).
    pub roles: Vec<String>,
}

impl Identity {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

/// What a token is worth, once Keystone said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid(Arc<Identity>),
    /// Unknown, malformed, expired, revoked or not scoped to a project: 401.
    Invalid(&'static str),
}

/// What one `GET /v3/auth/tokens` answer means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// A verdict to cache, and the token's own expiry when it is valid.
    Verdict(Verdict, Option<SystemTime>),
    /// Keystone refused our service token: get a new one and ask again.
    ServiceTokenRejected,
    /// Keystone cannot answer (an error, a 403 on our own rights, a body it should not
    /// send): the request gets 503, nothing is cached.
    Unavailable(String),
}

#[derive(Deserialize)]
struct Body {
    token: Token,
}

#[derive(Deserialize)]
struct Token {
    expires_at: String,
    #[serde(default)]
    user: Option<Named>,
    #[serde(default)]
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Named>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

/// Keystone's `expires_at` (`2026-12-02T10:53:54.000000Z`).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(s).ok()
}

/// Reads Keystone's answer to a validation (`GET /v3/auth/tokens`, `X-Subject-Token`).
pub fn judge(status: u16, body: &[u8], wall_now: SystemTime) -> Judgement {
    match status {
        200 => {}
        // Keystone's answer for a token it cannot decrypt, does not know, or was revoked
        // or expired; 400 for one it cannot parse.
        404 | 400 => return Judgement::Verdict(Verdict::Invalid("token not found"), None),
        401 => return Judgement::ServiceTokenRejected,
        403 => {
            return Judgement::Unavailable(
                "Keystone refused the service user the right to validate tokens (403): give it the service or admin role".into(),
            );
        }
        s => return Judgement::Unavailable(format!("Keystone answered {s}")),
    }
    let Ok(Body { token }) = serde_json::from_slice::<Body>(body) else {
        return Judgement::Unavailable("Keystone's token body is not a token".into());
    };
    let Some(expires) = parse_time(&token.expires_at) else {
        return Judgement::Unavailable(format!(
            "Keystone's expires_at {:?} is not a time",
            token.expires_at
        ));
    };
    if expires <= wall_now {
        return Judgement::Verdict(Verdict::Invalid("token expired"), None);
    }
    let Some(project) = token.project.filter(|p| !p.id.is_empty()) else {
        return Judgement::Verdict(Verdict::Invalid("token not scoped to a project"), None);
    };
    let identity = Identity {
        user_id: token.user.map(|u| u.id).unwrap_or_default(),
        project_id: project.id,
        roles: token
            .roles
            .into_iter()
            .map(|r| r.name)
            .filter(|r| !r.is_empty())
            .collect(),
    };
    Judgement::Verdict(Verdict::Valid(Arc::new(identity)), Some(expires))
}

/// Until when a verdict may be served from the cache: `ttl` from now, and never past the
/// token's own expiry. None when it is already past.
pub fn cache_until(
    now: Instant,
    wall_now: SystemTime,
    ttl: Duration,
    expires: Option<SystemTime>,
) -> Option<Instant> {
    let left = match expires {
        Some(e) => e.duration_since(wall_now).ok()?.min(ttl),
        None => ttl,
    };
    (!left.is_zero()).then(|| now + left)
}

/// When to get a new service token: three quarters into its life, so it is renewed well
/// before it expires and a slow Keystone does not leave us with an expired one.
pub fn renew_at(now: Instant, wall_now: SystemTime, expires: SystemTime) -> Instant {
    let life = expires.duration_since(wall_now).unwrap_or_default();
    now + life * 3 / 4
}

/// Tokens are keyed by their SHA-256: the cache holds no bearer secret and each key is
/// 32 bytes whatever the token's length.
pub type Key = [u8; 32];

pub fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

/// Verdicts by token, at most `capacity` of them (least recently used go first), each
/// until its deadline.
pub struct TokenCache {
    entries: lru::LruCache<Key, (Verdict, Instant)>,
}

impl TokenCache {
    pub fn new(capacity: NonZeroUsize) -> TokenCache {
        TokenCache {
            entries: lru::LruCache::new(capacity),
        }
    }

    /// The verdict on `key` if it is still good at `now`; a stale one is dropped.
    pub fn get(&mut self, key: &Key, now: Instant) -> Option<Verdict> {
        match self.entries.get(key) {
            Some((v, until)) if *until > now => Some(v.clone()),
            Some(_) => {
                self.entries.pop(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, key: Key, verdict: Verdict, until: Instant) {
        self.entries.put(key, (verdict, until));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> SystemTime {
        parse_time(s).unwrap()
    }

    fn body(expires: &str, project: Option<&str>, roles: &[&str]) -> Vec<u8> {
        let mut t = json!({
            "expires_at": expires,
            "user": {"id": "u1", "name": "demo"},
            "roles": roles.iter().map(|r| json!({"id": "x", "name": r})).collect::<Vec<_>>(),
        });
        if let Some(p) = project {
            t["project"] = json!({"id": p, "name": "demo"});
        }
        json!({ "token": t }).to_string().into_bytes()
    }

    #[test]
    fn a_valid_token_gives_project_roles_and_expiry() {
        let now = at("2026-12-02T10:00:00Z");
        let b = body(
            "2026-12-02T11:00:00.000000Z",
            Some("p1"),
            &["member", "admin"],
        );
        let Judgement::Verdict(Verdict::Valid(id), Some(exp)) = judge(200, &b, now) else {
            panic!("not valid");
        };
        assert_eq!(id.project_id, "p1");
        assert_eq!(id.user_id, "u1");
        assert!(id.is_admin());
        assert_eq!(exp, at("2026-12-02T11:00:00Z"));
        let b = body("2026-12-02T11:00:00Z", Some("p1"), &["member", "reader"]);
        let Judgement::Verdict(Verdict::Valid(id), _) = judge(200, &b, now) else {
            panic!("not valid");
        };
        assert!(!id.is_admin());
    }

    #[test]
    fn expired_unscoped_and_unknown_tokens_are_invalid() {
        let now = at("2026-12-02T10:00:00Z");
        let b = body("2026-12-02T09:59:59Z", Some("p1"), &["admin"]);
        assert!(matches!(
            judge(200, &b, now),
            Judgement::Verdict(Verdict::Invalid(_), None)
        ));
        let b = body("2026-12-02T11:00:00Z", None, &["admin"]);
        assert!(matches!(
            judge(200, &b, now),
            Judgement::Verdict(Verdict::Invalid(_), None)
        ));
        assert!(matches!(
            judge(404, b"{}", now),
            Judgement::Verdict(Verdict::Invalid(_), None)
        ));
    }

    #[test]
    fn keystone_trouble_is_never_a_verdict() {
        let now = at("2026-12-02T10:00:00Z");
        assert_eq!(judge(401, b"", now), Judgement::ServiceTokenRejected);
        for (status, b) in [
            (403, &b""[..]),
            (500, b""),
            (503, b"<html>"),
            (200, b"not json"),
            (200, b"{\"token\": {}}"),
            (200, b"{\"token\": {\"expires_at\": \"soon\"}}"),
            (302, b""),
        ] {
            assert!(
                matches!(judge(status, b, now), Judgement::Unavailable(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic() {
        let now = SystemTime::now();
        for b in [
            &b"\xff\xfe"[..],
            b"{\"token\": {\"expires_at\": \"9999-99-99T99:99:99Z\"}}",
            b"{\"token\": {\"expires_at\": \"2026-12-02T11:00:00Z\", \"project\": {\"id\": 5}}}",
            b"[]",
            b"null",
        ] {
            let _ = judge(200, b, now);
        }
    }

    #[test]
    fn the_cache_deadline_is_the_ttl_or_the_tokens_expiry_whichever_is_first() {
        let (now, wall) = (Instant::now(), at("2026-12-02T10:00:00Z"));
        let ttl = Duration::from_secs(300);
        assert_eq!(cache_until(now, wall, ttl, None), Some(now + ttl));
        let soon = at("2026-12-02T10:00:10Z");
        assert_eq!(
            cache_until(now, wall, ttl, Some(soon)),
            Some(now + Duration::from_secs(10))
        );
        let late = at("2026-12-02T12:00:00Z");
        assert_eq!(cache_until(now, wall, ttl, Some(late)), Some(now + ttl));
        assert_eq!(cache_until(now, wall, ttl, Some(wall)), None);
        assert_eq!(
            cache_until(now, wall, ttl, Some(at("2026-12-02T09:00:00Z"))),
            None
        );
    }

    #[test]
    fn service_tokens_are_renewed_three_quarters_into_their_life() {
        let (now, wall) = (Instant::now(), at("2026-12-02T10:00:00Z"));
        let r = renew_at(now, wall, at("2026-12-02T11:00:00Z"));
        assert_eq!(r, now + Duration::from_secs(45 * 60));
        assert_eq!(renew_at(now, wall, at("2026-12-02T09:00:00Z")), now);
    }

    #[test]
    fn the_cache_forgets_stale_and_least_recently_used_entries() {
        let mut c = TokenCache::new(NonZeroUsize::new(2).unwrap());
        let now = Instant::now();
        let v = Verdict::Invalid("x");
        c.insert(key("a"), v.clone(), now + Duration::from_secs(5));
        c.insert(key("b"), v.clone(), now + Duration::from_secs(1));
        assert_eq!(c.get(&key("a"), now), Some(v.clone()));
        // b is stale one second on, and dropped when asked for.
        assert_eq!(c.get(&key("b"), now + Duration::from_secs(1)), None);
        assert_eq!(c.len(), 1);
        c.insert(key("b"), v.clone(), now + Duration::from_secs(5));
        c.get(&key("a"), now);
        // A third entry evicts the least recently used (b), bounding memory.
        c.insert(key("c"), v.clone(), now + Duration::from_secs(5));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&key("b"), now), None);
        assert!(c.get(&key("a"), now).is_some() && c.get(&key("c"), now).is_some());
        assert_ne!(key("a"), key("b"));
    }
}
