//! What the metadata service tells a VM beyond its port: user data, public keys and
//! free-form properties, kept on the port as `instance_metadata` (no Nova needed; with a
//! Nova configured, the controller asks Nova instead). Limits are Nova's.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Nova's limit on `user_data`: 65,535 bytes of base64.
pub const MAX_USER_DATA: usize = 65_535;
/// Nova's default `metadata_items` quota.
pub const MAX_META_ITEMS: usize = 128;
/// Nova's limit on a metadata key or value.
pub const MAX_META_LEN: usize = 255;
/// Keys a port may carry (Nova injects one; cloud-init takes any number).
pub const MAX_KEYS: usize = 32;
/// A public key line (an RSA 16384-bit OpenSSH key is about 2,800 characters).
pub const MAX_KEY_LEN: usize = 8_192;

/// The `instance_metadata` attribute of a port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceMetadata {
    /// Base64, as Nova takes it; served decoded as `user_data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Key name → OpenSSH public key line (`public_keys` in meta_data.json).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub public_keys: BTreeMap<String, String>,
    /// Free-form properties (`meta` in meta_data.json), as `openstack server create
    /// --property`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

impl InstanceMetadata {
    /// The user data as the VM gets it (`None`: none, or not base64, which the API refuses).
    pub fn user_data_bytes(&self) -> Option<Vec<u8>> {
        let s = self.user_data.as_deref()?;
        base64::engine::general_purpose::STANDARD.decode(s).ok()
    }

    /// Checks the limits and the base64; the reason names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(u) = &self.user_data {
            if u.len() > MAX_USER_DATA {
                return Err(format!(
                    "user_data is {} bytes of base64, more than {MAX_USER_DATA}",
                    u.len()
                ));
            }
            if base64::engine::general_purpose::STANDARD.decode(u).is_err() {
                return Err("user_data is not valid base64".into());
            }
        }
        if self.public_keys.len() > MAX_KEYS {
            return Err(format!("more than {MAX_KEYS} public_keys"));
        }
        for (name, key) in &self.public_keys {
            if name.is_empty() || name.len() > MAX_META_LEN {
                return Err(format!("public key name {name:?} is empty or too long"));
            }
            if key.trim().is_empty() || key.len() > MAX_KEY_LEN || key.contains(['\n', '\r']) {
                return Err(format!(
                    "public key {name:?} must be one line of at most {MAX_KEY_LEN} bytes"
                ));
            }
        }
        if self.meta.len() > MAX_META_ITEMS {
            return Err(format!("more than {MAX_META_ITEMS} meta items"));
        }
        for (k, v) in &self.meta {
            if k.is_empty() || k.len() > MAX_META_LEN || v.len() > MAX_META_LEN {
                return Err(format!(
                    "meta {k:?}: keys of 1 to {MAX_META_LEN} bytes and values of at most {MAX_META_LEN}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_base64_within_novas_limit() {
        let mut m = InstanceMetadata {
            user_data: Some("I2Nsb3VkLWNvbmZpZwo=".into()),
            ..Default::default()
        };
        assert!(m.validate().is_ok());
        assert_eq!(m.user_data_bytes().unwrap(), b"#cloud-config\n");
        m.user_data = Some("not base64!".into());
        assert!(m.validate().unwrap_err().contains("base64"));
        m.user_data = Some("A".repeat(MAX_USER_DATA + 1));
        assert!(m.validate().unwrap_err().contains("more than"));
    }

    #[test]
    fn keys_are_single_lines_and_meta_is_bounded() {
        let mut m = InstanceMetadata::default();
        m.public_keys
            .insert("k".into(), "ssh-ed25519 AAAA x\nroot".into());
        assert!(m.validate().is_err());
        m.public_keys
            .insert("k".into(), "ssh-ed25519 AAAA x".into());
        assert!(m.validate().is_ok());
        m.meta.insert("a".into(), "b".repeat(MAX_META_LEN + 1));
        assert!(m.validate().is_err());
    }
}
