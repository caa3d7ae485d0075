//! Store URLs' user part: the credentials of `etcd://USER:PASSWORD@HOST:PORT/…` (Redis
//! reads its own, `redis://[USER]:PASSWORD@…`), and the same URL with the password
//! hidden, for logs, errors and the agents API. Pure.

/// Splits `USER:PASSWORD@REST` (percent-decoded; a password may hold any byte that way)
/// into the credentials and `REST`. No `@` before the first `/`: no credentials.
pub fn credentials(authority_and_path: &str) -> (Option<(String, String)>, &str) {
    let end = authority_and_path
        .find('/')
        .unwrap_or(authority_and_path.len());
    let Some(at) = authority_and_path[..end].rfind('@') else {
        return (None, authority_and_path);
    };
    let (user, rest) = (&authority_and_path[..at], &authority_and_path[at + 1..]);
    let (name, password) = user.split_once(':').unwrap_or((user, ""));
    (Some((decode(name), decode(password))), rest)
}

/// `url` with the password of its user part (if any) as `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else {
        return url.to_string();
    };
    let user = &rest[..at];
    let name = user.split_once(':').map_or(user, |(n, _)| n);
    let hidden = if user.contains(':') { ":***" } else { "" };
    format!("{scheme}://{name}{hidden}@{}", &rest[at + 1..])
}

/// Percent-decoding (RFC 3986); a malformed escape is kept as it is.
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_off_the_authority() {
        assert_eq!(
            credentials("root:s3cret@127.0.0.1:2379,127.0.0.1:2380/df"),
            (
                Some(("root".into(), "s3cret".into())),
                "127.0.0.1:2379,127.0.0.1:2380/df"
            )
        );
        assert_eq!(
            credentials("127.0.0.1:2379/a@b"),
            (None, "127.0.0.1:2379/a@b")
        );
        assert_eq!(
            credentials("u%40x:p%3Aa%2Fb%25@h:1"),
            (Some(("u@x".into(), "p:a/b%".into())), "h:1")
        );
        // A password with '@' must be escaped; the last '@' ends the user part.
        assert_eq!(
            credentials("u:a@b@h:1"),
            (Some(("u".into(), "a@b".into())), "h:1")
        );
        assert_eq!(
            credentials("u@h:1"),
            (Some(("u".into(), String::new())), "h:1")
        );
        assert_eq!(decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redacted("redis://:s3cret@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redacted("etcd://root:s3cret@h:2379/df"),
            "etcd://root:***@h:2379/df"
        );
        assert_eq!(redacted("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(redacted("redis://user@h:6379"), "redis://user@h:6379");
        assert_eq!(redacted("embedded:/var/lib/x@y"), "embedded:/var/lib/x@y");
    }
}
