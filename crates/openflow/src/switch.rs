//! Switch-level bodies: hello, features, switch config, ports, role and async config.

use crate::buf::{Reader, pad_to_8, put_u8, put_u16, put_u32, put_u64, put_zeros};
use crate::error::{Error, Result};

/// OFPT_HELLO body: the version bitmap element, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Hello {
    /// Bitmap words of supported versions (bit n = wire version n), if the element is present.
    pub version_bitmap: Option<Vec<u32>>,
}

impl Hello {
    /// A hello advertising OpenFlow 1.3 only.
    pub fn of13() -> Self {
        Hello {
            version_bitmap: Some(vec![1 << crate::header::OFP13_VERSION]),
        }
    }

    /// Whether the peer advertises `version` (true when it sends no bitmap, per the spec
    /// the header version is then its highest and we accept it if it is ≥ ours).
    pub fn supports(&self, version: u8) -> bool {
        match &self.version_bitmap {
            Some(words) => words
                .get(usize::from(version / 32))
                .is_some_and(|w| w & (1 << (version % 32)) != 0),
            None => true,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        if let Some(words) = &self.version_bitmap {
            let start = out.len();
            put_u16(out, 1);
            put_u16(out, crate::buf::field_len(4 + 4 * words.len()));
            for w in words {
                put_u32(out, *w);
            }
            pad_to_8(out, start);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let mut h = Hello::default();
        while r.remaining() >= 4 {
            let ty = r.u16()?;
            let len = usize::from(r.u16()?);
            let body = r.take(
                len.checked_sub(4)
                    .ok_or(Error::BadLength("hello element"))?,
            )?;
            r.skip((crate::buf::round8(len) - len).min(r.remaining()))?;
            if ty == 1 {
                let mut b = Reader::new(body, "version bitmap");
                let mut words = Vec::new();
                while b.remaining() >= 4 {
                    words.push(b.u32()?);
                }
                h.version_bitmap = Some(words);
            }
        }
        Ok(h)
    }
}

/// OFPT_FEATURES_REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeaturesReply {
    /// Datapath id.
    pub datapath_id: u64,
    /// Packets the switch can buffer.
    pub n_buffers: u32,
    /// Number of tables.
    pub n_tables: u8,
    /// Auxiliary connection id (0 = main).
    pub auxiliary_id: u8,
    /// OFPC_* capability bits.
    pub capabilities: u32,
}

impl FeaturesReply {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.datapath_id);
        put_u32(out, self.n_buffers);
        put_u8(out, self.n_tables);
        put_u8(out, self.auxiliary_id);
        put_zeros(out, 2);
        put_u32(out, self.capabilities);
        put_u32(out, 0);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let datapath_id = r.u64()?;
        let n_buffers = r.u32()?;
        let n_tables = r.u8()?;
        let auxiliary_id = r.u8()?;
        r.skip(2)?;
        let capabilities = r.u32()?;
        Ok(FeaturesReply {
            datapath_id,
            n_buffers,
            n_tables,
            auxiliary_id,
            capabilities,
        })
    }
}

/// Switch configuration (get-config reply / set-config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwitchConfig {
    /// OFPC_FRAG_* flags.
    pub flags: u16,
    /// Bytes of table-miss packets sent to the controller.
    pub miss_send_len: u16,
}

impl SwitchConfig {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.flags);
        put_u16(out, self.miss_send_len);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(SwitchConfig {
            flags: r.u16()?,
            miss_send_len: r.u16()?,
        })
    }
}

/// Controller role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Do not change the role (query).
    NoChange,
    /// Full access, shared.
    Equal,
    /// Full access, at most one (called primary by OVS).
    Master,
    /// Read-only.
    Slave,
}

/// Role request / reply body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoleMsg {
    /// Role.
    pub role: Role,
    /// Master election generation id.
    pub generation_id: u64,
}

impl RoleMsg {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.role as u32);
        put_zeros(out, 4);
        put_u64(out, self.generation_id);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let role = match r.u32()? {
            0 => Role::NoChange,
            1 => Role::Equal,
            2 => Role::Master,
            3 => Role::Slave,
            _ => return Err(Error::BadValue("role")),
        };
        r.skip(4)?;
        Ok(RoleMsg {
            role,
            generation_id: r.u64()?,
        })
    }
}

/// Asynchronous message configuration (masks for [master/equal, slave]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AsyncConfig {
    /// Packet-in reasons (bit per reason).
    pub packet_in_mask: [u32; 2],
    /// Port-status reasons.
    pub port_status_mask: [u32; 2],
    /// Flow-removed reasons.
    pub flow_removed_mask: [u32; 2],
}

impl AsyncConfig {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for m in [
            self.packet_in_mask,
            self.port_status_mask,
            self.flow_removed_mask,
        ] {
            put_u32(out, m[0]);
            put_u32(out, m[1]);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let mut pair = || -> Result<[u32; 2]> { Ok([r.u32()?, r.u32()?]) };
        Ok(AsyncConfig {
            packet_in_mask: pair()?,
            port_status_mask: pair()?,
            flow_removed_mask: pair()?,
        })
    }
}

/// A port description (`ofp_port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Port {
    /// Port number.
    pub port_no: u32,
    /// MAC address.
    pub hw_addr: [u8; 6],
    /// Name (up to 15 bytes).
    pub name: String,
    /// OFPPC_* bits.
    pub config: u32,
    /// OFPPS_* bits.
    pub state: u32,
    /// Current features.
    pub curr: u32,
    /// Advertised features.
    pub advertised: u32,
    /// Supported features.
    pub supported: u32,
    /// Peer features.
    pub peer: u32,
    /// Current speed in kb/s.
    pub curr_speed: u32,
    /// Maximum speed in kb/s.
    pub max_speed: u32,
}

impl Port {
    /// Length on the wire.
    pub const LEN: usize = 64;

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.port_no);
        put_zeros(out, 4);
        out.extend_from_slice(&self.hw_addr);
        put_zeros(out, 2);
        let mut name = [0u8; 16];
        for (d, s) in name.iter_mut().zip(self.name.bytes().take(15)) {
            *d = s;
        }
        out.extend_from_slice(&name);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            put_u32(out, v);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array::<6>()?;
        r.skip(2)?;
        let raw = r.array::<16>()?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let name = String::from_utf8_lossy(raw.get(..end).unwrap_or(&[])).into_owned();
        Ok(Port {
            port_no,
            hw_addr,
            name,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }
}

/// OFPT_PORT_STATUS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortStatus {
    /// 0 add, 1 delete, 2 modify.
    pub reason: u8,
    /// The port.
    pub port: Port,
}

impl PortStatus {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u8(out, self.reason);
        put_zeros(out, 7);
        self.port.encode(out);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let reason = r.u8()?;
        r.skip(7)?;
        Ok(PortStatus {
            reason,
            port: Port::decode(r)?,
        })
    }
}
