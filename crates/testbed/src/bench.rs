//! What the benchmarks share: percentiles, milliseconds, reading the time of a log line,
//! recording their figures in docs/benchmarks.md (each benchmark owns one section), and the
//! config that lifts quotas for scale runs.

use std::time::{Duration, SystemTime};

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
    write_doc_section("benchmarks.md", name, body);
}

/// [`write_section`] for any file of the repository's docs/.
pub fn write_doc_section(doc: &str, name: &str, body: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(doc);
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
        Ok(()) => println!("recorded in docs/{doc}"),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

/// The time of a log line that starts with an RFC 3339 UTC timestamp with fractional
/// seconds (`2026-11-21T11:19:17.550580Z`, as `dragonflow` logs), to line up a process's
/// log with a benchmark's clock.
pub fn log_time(line: &str) -> Option<SystemTime> {
    let ts = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (h, min) = (
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
    );
    let secs: f64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let whole = days * 86_400 + h * 3600 + min * 60;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(whole) + Duration::from_secs_f64(secs))
}

/// A numeric setting from the environment, or `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) a process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15, which
    // are 11 and 12 after the state.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of a process, MiB.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// A `dragonflow` config file whose `[quotas]` make every resource unlimited: for the
/// benches (and the few tests) that make more of one project's objects than Neutron's
/// default quotas allow (500 ports, 100 networks, 10 routers, ...).
pub const UNLIMITED_QUOTAS: &str = "[quotas]\nquota_network = -1\nquota_subnet = -1\n\
    quota_port = -1\nquota_router = -1\nquota_floatingip = -1\nquota_security_group = -1\n\
    quota_security_group_rule = -1\nquota_rbac_policy = -1\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_are_read() {
        let t = |s: &str| {
            log_time(s).map(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64()
            })
        };
        assert_eq!(t("1970-01-01T00:00:00Z x"), Some(0.0));
        // `date -u -d 2026-11-21T11:19:17Z +%s`
        let v = t("2026-11-21T11:19:17.550580Z  INFO controller::runtime: port").unwrap();
        assert!((v - 1_795_259_957.550_58).abs() < 1e-6, "{v}");
        assert_eq!(t("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(t("2026-13-01T00:00:00Z"), None);
        assert_eq!(t("port status reported"), None);
    }
}
