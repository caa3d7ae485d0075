//! What the benchmarks share: percentiles, milliseconds, and recording their figures in
//! docs/benchmarks.md (each benchmark owns one section).

use std::time::Duration;

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(i.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Replaces (or appends) the section between `<!-- begin NAME -->` and `<!-- end NAME -->`
/// of the repository's docs/benchmarks.md.
pub fn write_section(name: &str, body: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let (begin, end) = (
        format!("<!-- begin {name} -->"),
        format!("<!-- end {name} -->"),
    );
    let block = format!("{begin}\n{body}{end}");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &old[..a], &old[b + end.len()..]),
        _ => format!("{}\n\n{block}\n", old.trim_end()),
    };
    match std::fs::write(&path, new) {
        Ok(()) => println!("recorded in docs/benchmarks.md"),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}
