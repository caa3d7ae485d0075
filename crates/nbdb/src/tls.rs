//! TLS to a store server (etcd's `etcds://`, Redis's `rediss://`): the CA to trust and the
//! client's own certificate, named in the store URL's query (`?ca=PATH&cert=PATH&key=PATH`)
//! and read once when the store is opened. Without `ca`, the system's trust roots.

use crate::{Result, StoreError};

/// What a TLS connection to the store presents and trusts (PEM bytes).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// The CA certificates that sign the server's; `None`: the system's roots.
    pub ca: Option<Vec<u8>>,
    /// The client's certificate chain and key, for a server that asks for one.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: only whether there is one.
        f.debug_struct("Tls")
            .field("ca", &self.ca.as_ref().map(Vec::len))
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// The file paths a URL's query names, before they are read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Paths {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

/// Splits `REST[?QUERY]` into `REST` and the TLS files its query names. `secure`: the
/// scheme asked for TLS; a query on a plain scheme is an error rather than ignored.
pub fn split(rest: &str, secure: bool) -> Result<(&str, Paths)> {
    let Some((rest, query)) = rest.split_once('?') else {
        return Ok((rest, Paths::default()));
    };
    if !secure {
        return Err(invalid(format!(
            "?{query}: TLS options need the TLS scheme (etcds://, rediss://)"
        )));
    }
    let mut paths = Paths::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = crate::url::decode(v);
        if v.is_empty() {
            return Err(invalid(format!("{k}: a file path is needed")));
        }
        let slot = match k {
            "ca" => &mut paths.ca,
            "cert" => &mut paths.cert,
            "key" => &mut paths.key,
            other => {
                return Err(invalid(format!(
                    "unknown store URL option {other:?} (ca, cert, key)"
                )));
            }
        };
        *slot = Some(v);
    }
    if paths.cert.is_some() != paths.key.is_some() {
        return Err(invalid("cert and key go together".into()));
    }
    Ok((rest, paths))
}

impl Paths {
    /// Reads the files.
    pub fn read(&self) -> Result<Tls> {
        let read =
            |p: &String| std::fs::read(p).map_err(|e| invalid(format!("store TLS file {p}: {e}")));
        Ok(Tls {
            ca: self.ca.as_ref().map(read).transpose()?,
            identity: match (&self.cert, &self.key) {
                (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                _ => None,
            },
        })
    }
}

/// A Redis client of `url` that trusts `tls`'s CA and presents its certificate, when given.
pub(crate) fn redis_client(url: &str, tls: Option<&Tls>) -> redis::RedisResult<redis::Client> {
    match tls {
        Some(Tls { ca, identity }) if ca.is_some() || identity.is_some() => {
            let certs = redis::TlsCertificates {
                client_tls: identity.clone().map(|(client_cert, client_key)| {
                    redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    }
                }),
                root_cert: ca.clone(),
            };
            redis::Client::build_with_tls(url, certs)
        }
        _ => redis::Client::open(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_the_files_and_nothing_else() {
        assert_eq!(split("h:1/df", true).unwrap(), ("h:1/df", Paths::default()));
        let (rest, p) = split("h:1/df?ca=/etc/ca.pem&cert=/c%20d.pem&key=/k.pem", true).unwrap();
        assert_eq!(rest, "h:1/df");
        assert_eq!(
            p,
            Paths {
                ca: Some("/etc/ca.pem".into()),
                cert: Some("/c d.pem".into()),
                key: Some("/k.pem".into()),
            }
        );
        for (bad, secure) in [
            ("h:1?ca=/x", false),
            ("h:1?ca=", true),
            ("h:1?cafile=/x", true),
            ("h:1?cert=/x", true),
            ("h:1?key=/x", true),
        ] {
            assert!(
                matches!(split(bad, secure), Err(StoreError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let (_, p) = split("h:1?ca=/no/such/ca.pem", true).unwrap();
        let e = p.read().unwrap_err().to_string();
        assert!(e.contains("/no/such/ca.pem"), "{e}");
        let t = Tls {
            ca: None,
            identity: Some((b"c".to_vec(), b"SECRET".to_vec())),
        };
        assert!(!format!("{t:?}").contains("SECRET"));
    }
}
