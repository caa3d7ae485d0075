//! Who may call the NB store endpoints (`/nb/v1`, served on their own listener): bearer
//! tokens derived from one operator secret, each naming its holder (a host by its chassis
//! name, the admin, or a read-only reader), and the check every `/nb/v1` request passes.
//!
//! A token is `<principal>:<hex HMAC-SHA256(secret, principal)>`, e.g. `host:compute1:3f…`.
//! The principal travels in clear so the server knows whom to check it against; only the
//! holder of the secret can make the MAC. The server keeps no list of tokens: a new host's
//! token is made with `dragonflow nb-token`, and a new secret revokes every token at once.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::Path;
use std::sync::Arc;

/// The shortest secret accepted (bytes, after trimming): shorter ones are guessable.
pub const MIN_SECRET_LEN: usize = 16;

/// The holder of a valid token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// Reads everything and may make any write (`dragonflow db`, repair tools).
    Admin,
    /// Reads everything, writes nothing (monitoring, `dragonflow db` read-only).
    Reader,
    /// A host's controller: reads, and writes only its own chassis and bindings.
    Host(String),
}

impl Principal {
    /// The text the token's MAC covers.
    pub fn label(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::Reader => "reader".into(),
            Principal::Host(h) => format!("host:{h}"),
        }
    }

    fn parse(label: &str) -> Option<Principal> {
        match label {
            "admin" => Some(Principal::Admin),
            "reader" => Some(Principal::Reader),
            _ => label
                .strip_prefix("host:")
                .filter(|h| !h.is_empty())
                .map(|h| Principal::Host(h.to_string())),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// The operator's secret, from which every token is derived and checked.
#[derive(Clone)]
pub struct NbAuth {
    secret: Vec<u8>,
}

impl std::fmt::Debug for NbAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NbAuth(..)")
    }
}

impl NbAuth {
    /// The secret's surrounding whitespace is not part of it (`echo … > file` works).
    pub fn new(secret: &[u8]) -> Result<NbAuth, String> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the NB secret must be at least {MIN_SECRET_LEN} bytes (it has {})",
                secret.len()
            ));
        }
        Ok(NbAuth {
            secret: secret.to_vec(),
        })
    }

    fn mac(&self, label: &str) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts a key of any length");
        m.update(label.as_bytes());
        m
    }

    /// The token of `p`.
    pub fn token(&self, p: &Principal) -> String {
        let label = p.label();
        let tag = self.mac(&label).finalize().into_bytes();
        format!("{label}:{}", hex::encode(tag))
    }

    /// The holder of `token`, if its MAC is right (compared in constant time).
    pub fn verify(&self, token: &str) -> Option<Principal> {
        let (label, tag) = token.trim().rsplit_once(':')?;
        let tag = hex::decode(tag).ok()?;
        self.mac(label).verify_slice(&tag).ok()?;
        Principal::parse(label)
    }

    /// Reads the secret at `path`; when there is no file, makes a random one there (mode
    /// 0600, its directory created). Returns whether it was made.
    pub fn load_or_create(path: &Path) -> Result<(NbAuth, bool), String> {
        match std::fs::read(path) {
            Ok(bytes) => {
                warn_if_readable_by_others(path);
                let auth = NbAuth::new(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok((auth, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
                let text = format!("{}\n", hex::encode(bytes));
                write_private(path, text.as_bytes())
                    .map_err(|e| format!("cannot write the NB secret {}: {e}", path.display()))?;
                Ok((NbAuth::new(text.as_bytes())?, true))
            }
            Err(e) => Err(format!("cannot read the NB secret {}: {e}", path.display())),
        }
    }
}

/// Creates `path` (never over an existing file) readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the NB secret is readable by other users: chmod 600 it");
    }
}

/// 401 with the challenge a bearer-token client expects.
fn unauthorized(message: &str) -> Response {
    let mut resp =
        ApiError::new(StatusCode::UNAUTHORIZED, "HTTPUnauthorized", message).into_response();
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"dragonflow-nb\""),
    );
    resp
}

/// The bearer token of a request (`Authorization: Bearer T`, scheme in any case).
fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Middleware of the NB router: a request with a valid token goes on with its
/// [`Principal`] in its extensions; any other gets 401.
pub async fn authenticate(
    State(auth): State<Arc<NbAuth>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(&req) else {
        return unauthorized(
            "The NB API needs a token: Authorization: Bearer <token> (dragonflow nb-token)",
        );
    };
    match auth.verify(token) {
        Some(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        None => {
            tracing::warn!(path = %req.uri().path(), "NB request with an invalid token refused");
            unauthorized("The NB token is not valid for this server's secret")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> NbAuth {
        NbAuth::new(b"0123456789abcdef0123456789abcdef\n").unwrap()
    }

    #[test]
    fn a_token_names_its_holder_and_only_verifies_with_its_secret() {
        let a = auth();
        let t = a.token(&Principal::Host("host-a".into()));
        assert!(t.starts_with("host:host-a:"), "{t}");
        assert_eq!(a.verify(&t), Some(Principal::Host("host-a".into())));
        assert_eq!(
            a.verify(&a.token(&Principal::Admin)),
            Some(Principal::Admin)
        );
        assert_eq!(
            a.verify(&a.token(&Principal::Reader)),
            Some(Principal::Reader)
        );
        let other = NbAuth::new(b"another secret of enough length").unwrap();
        assert_eq!(other.verify(&t), None, "another secret's token");
        // The principal cannot be changed without the MAC changing.
        let forged = t.replacen("host-a", "host-b", 1);
        assert_eq!(a.verify(&forged), None);
        let mac = t.rsplit_once(':').unwrap().1;
        assert_eq!(a.verify(&format!("admin:{mac}")), None);
        for junk in [
            "",
            "admin",
            "admin:",
            "admin:zz",
            "host::00",
            &t[..t.len() - 2],
        ] {
            assert_eq!(a.verify(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(NbAuth::new(b"  short \n").is_err());
    }

    #[test]
    fn a_missing_secret_is_made_private_and_then_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/nb-secret");
        let (a, made) = NbAuth::load_or_create(&path).unwrap();
        assert!(made);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let (b, made) = NbAuth::load_or_create(&path).unwrap();
        assert!(!made);
        let t = a.token(&Principal::Admin);
        assert_eq!(b.verify(&t), Some(Principal::Admin), "the same secret");
    }
}
