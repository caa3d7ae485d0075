//! Reading a daemon's Prometheus metrics as Prometheus does: one scrape of `/metrics` over
//! HTTP, and the value of a sample picked by its name and first labels.

use std::net::TcpListener;

/// A free loopback address for a `--metrics-listen`.
pub fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// One scrape: the text exposition.
pub fn scrape(addr: &str) -> String {
    let (st, v) = super::http_call(&format!("http://{addr}/metrics"), "GET", None, &[]);
    assert_eq!(st, 200, "{v}");
    v.as_str().expect("text").to_string()
}

/// The value of the sample whose name and labels start with `prefix` (e.g.
/// `name{a="b"` or a bare name), summed over the matching samples; 0 when none.
pub fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(prefix)
                && matches!(
                    l.as_bytes().get(prefix.len()),
                    Some(b' ' | b',' | b'{' | b'}')
                )
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
