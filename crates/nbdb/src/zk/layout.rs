//! Where the ZooKeeper backend keeps things, and the bytes of what it keeps there: znode
//! paths, the escaping of ids into one path component, revisions, leases, counters, and
//! the size of a request against ZooKeeper's 1 MB limit. Pure; stored bytes are untrusted.

use crate::{Revision, StoreError};

/// The base path when the URL names none.
pub const DEFAULT_PREFIX: &str = "/dragonflow";

/// ZooKeeper refuses (by closing the connection) any request over `jute.maxbuffer`,
/// 0xfffff bytes by default; a commit is kept under it with room for the multi's framing.
pub const MAX_REQUEST: usize = 0xfffff - 16 * 1024;

/// The znodes of one store under its base path.
#[derive(Clone, Debug)]
pub struct Layout {
    base: String,
}

impl Layout {
    /// `prefix` is a path like `/cloud-a` (no trailing slash; `/` alone is not allowed).
    pub fn new(prefix: &str) -> Result<Layout, StoreError> {
        let p = prefix.trim_end_matches('/');
        if !p.starts_with('/') || p.len() < 2 || p.contains("//") {
            return Err(StoreError::Invalid(format!(
                "bad zookeeper prefix {prefix:?}"
            )));
        }
        if p.split('/')
            .skip(1)
            .any(|c| c == "." || c == ".." || c.is_empty())
        {
            return Err(StoreError::Invalid(format!(
                "bad zookeeper prefix {prefix:?}"
            )));
        }
        Ok(Layout { base: p.into() })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The nodes every store needs, parents first.
    pub fn skeleton(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = String::new();
        for c in self.base.split('/').skip(1) {
            at.push('/');
            at.push_str(c);
            out.push(at.clone());
        }
        for n in ["o", "log", "n", "l", "rev", "clock", "trimmed"] {
            out.push(format!("{}/{n}", self.base));
        }
        out
    }

    /// The latest revision (decimal).
    pub fn rev(&self) -> String {
        format!("{}/rev", self.base)
    }

    /// Written to read the server's clock (its `mtime`).
    pub fn clock(&self) -> String {
        format!("{}/clock", self.base)
    }

    /// The revision up to which the change log was trimmed (decimal, empty: none).
    pub fn trimmed(&self) -> String {
        format!("{}/trimmed", self.base)
    }

    /// The parent of every table.
    pub fn tables(&self) -> String {
        format!("{}/o", self.base)
    }

    pub fn table(&self, table: &str) -> String {
        format!("{}/o/{}", self.base, escape(table))
    }

    pub fn object(&self, table: &str, id: &str) -> String {
        format!("{}/o/{}/{}", self.base, escape(table), escape(id))
    }

    pub fn log_dir(&self) -> String {
        format!("{}/log", self.base)
    }

    /// The change-log entry of a revision: zero-padded so names sort as numbers.
    pub fn log(&self, rev: Revision) -> String {
        format!("{}/log/{rev:020}", self.base)
    }

    pub fn counters(&self) -> String {
        format!("{}/n", self.base)
    }

    pub fn counter(&self, name: &str) -> String {
        format!("{}/n/{}", self.base, escape(name))
    }

    pub fn leases(&self) -> String {
        format!("{}/l", self.base)
    }

    pub fn lease(&self, key: &str) -> String {
        format!("{}/l/{}", self.base, escape(key))
    }
}

/// Bytes kept as they are in a path component; everything else is `%XX`. ZooKeeper
/// refuses `/`, control and some Unicode characters, and the components `.` and `..`.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.:~@+,".contains(&b)
}

/// One path component for any string: `=` then the string with `%` and every byte that is
/// not [`plain`] percent-encoded (so `.`, `..` and the empty string are valid names too).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('=');
    for &b in s.as_bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The string [`escape`] made `name` from; `None` for a name it cannot have made (a node
/// someone else put there).
pub fn unescape(name: &str) -> Option<String> {
    let rest = name.strip_prefix('=')?.as_bytes();
    let mut out = Vec::with_capacity(rest.len());
    let mut i = 0;
    while i < rest.len() {
        let b = rest[i];
        if b == b'%' {
            let hex = rest.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if plain(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// A decimal number stored as data (a revision, a counter); empty is 0.
pub fn decode_number<T: std::str::FromStr + Default>(
    what: &str,
    data: &[u8],
) -> Result<T, StoreError> {
    if data.is_empty() {
        return Ok(T::default());
    }
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("zookeeper: {what} is not a number")))
}

/// A lease's data: its time to live in ms (u64 LE, 0: until deleted), then the value.
pub fn encode_lease(ttl_ms: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&ttl_ms.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// (time to live in ms, value) of a lease's data.
pub fn decode_lease(data: &[u8]) -> Result<(u64, &[u8]), StoreError> {
    let (ttl, value) = data
        .split_first_chunk::<8>()
        .ok_or_else(|| StoreError::Corrupt("zookeeper: truncated lease".into()))?;
    Ok((u64::from_le_bytes(*ttl), value))
}

/// Whether a lease written at `mtime` (server ms) with `ttl_ms` is live at `now`.
pub fn lease_live(ttl_ms: u64, mtime: i64, now: i64) -> bool {
    ttl_ms == 0 || i128::from(mtime) + i128::from(ttl_ms) > i128::from(now)
}

/// About what one operation of a request costs on the wire: path, data and framing.
pub fn op_size(path: &str, data: usize) -> usize {
    path.len() + data + 64
}

/// Refuses a request ZooKeeper would refuse, with a clear error instead of a dropped
/// connection.
pub fn check_size(what: &str, size: usize) -> Result<(), StoreError> {
    if size > MAX_REQUEST {
        return Err(StoreError::Invalid(format!(
            "{what} of {size} bytes is over ZooKeeper's request limit of {MAX_REQUEST} bytes \
             (jute.maxbuffer, 1 MB; a commit carries each value twice: the object and its \
             change-log entry)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_makes_one_valid_component() {
        for s in [
            "",
            ".",
            "..",
            "a",
            "ip/s1/a",
            "100%",
            "=x",
            "é/ü",
            "\u{0}\u{1f}\u{7f}",
            "a b",
            "zookeeper",
            "%41",
        ] {
            let e = escape(s);
            assert!(e.starts_with('='), "{e}");
            assert!(!e.contains('/') && e.is_ascii(), "{e}");
            assert!(e.bytes().all(|b| b == b'=' || b == b'%' || plain(b)), "{e}");
            assert_eq!(unescape(&e).as_deref(), Some(s), "{e}");
        }
        // Distinct strings stay distinct.
        assert_ne!(escape("a/b"), escape("a%2Fb"));
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for bad in ["x", "", "=%", "=%4", "=%zz", "=a b", "=%FF", "=/"] {
            assert_eq!(unescape(bad), None, "{bad}");
        }
    }

    #[test]
    fn leases_and_numbers_decode_or_fail_cleanly() {
        let d = encode_lease(2000, b"v");
        assert_eq!(decode_lease(&d).unwrap(), (2000, &b"v"[..]));
        assert!(decode_lease(b"short").is_err());
        assert!(lease_live(0, 0, i64::MAX));
        assert!(lease_live(2000, 1000, 2999));
        assert!(!lease_live(2000, 1000, 3000));
        assert!(lease_live(u64::MAX, i64::MAX, i64::MIN));
        assert_eq!(decode_number::<u64>("rev", b"").unwrap(), 0);
        assert_eq!(decode_number::<u64>("rev", b"42").unwrap(), 42);
        assert_eq!(decode_number::<i64>("n", b"-3").unwrap(), -3);
        assert!(decode_number::<u64>("rev", b"x").is_err());
    }

    /// Names and bytes from the store are untrusted: every short input over an alphabet
    /// of the interesting bytes decodes or fails, never panics, and a name that decodes is
    /// the escape of what it decodes to.
    #[test]
    fn arbitrary_names_and_bytes_never_panic() {
        let alphabet = [
            b'=', b'%', b'0', b'f', b'F', b'z', b'/', b' ', 0xc3, 0xa9, 0xff, 0,
        ];
        let n = alphabet.len();
        for len in 0..=5u32 {
            for mut code in 0..n.pow(len) {
                let mut bytes = Vec::new();
                for _ in 0..len {
                    bytes.push(alphabet[code % n]);
                    code /= n;
                }
                if let Ok(name) = std::str::from_utf8(&bytes)
                    && let Some(s) = unescape(name)
                {
                    assert_eq!(unescape(&escape(&s)).as_deref(), Some(s.as_str()));
                }
                let _ = decode_lease(&bytes);
                let _ = decode_number::<u64>("n", &bytes);
                let _ = decode_number::<i64>("n", &bytes);
                let _ = crate::codec::decode_object(&bytes);
                let _ = crate::codec::decode_changes(1, &bytes);
            }
        }
    }

    #[test]
    fn paths_and_prefixes() {
        let l = Layout::new("/cloud-a/").unwrap();
        assert_eq!(l.object("port", "ip/1"), "/cloud-a/o/=port/=ip%2F1");
        assert_eq!(l.log(7), "/cloud-a/log/00000000000000000007");
        assert_eq!(
            Layout::new("/a/b").unwrap().skeleton()[..3],
            ["/a", "/a/b", "/a/b/o"]
        );
        for bad in ["", "/", "x", "/a//b", "/a/../b"] {
            assert!(Layout::new(bad).is_err(), "{bad}");
        }
        assert!(check_size("commit", MAX_REQUEST).is_ok());
        assert!(matches!(
            check_size("commit", MAX_REQUEST + 1),
            Err(StoreError::Invalid(m)) if m.contains("jute.maxbuffer")
        ));
    }
}
