//! Timestamps as Neutron shows them: RFC 3339, UTC, whole seconds (`2026-11-21T05:23:09Z`).

use std::time::SystemTime;

/// The current time in Neutron's timestamp format.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
