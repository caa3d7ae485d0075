//! The OPEN message (RFC 4271 §4.2) and its capabilities (RFC 5492): multiprotocol
//! (RFC 4760), route refresh (RFC 2918), graceful restart (RFC 4724), 4-octet AS numbers
//! (RFC 6793). What the OPEN
//! itself may get wrong is checked here; whether it suits the configured peer (its AS, the
//! hold time) is the session's check.

use std::net::Ipv4Addr;

use super::{AS_TRANS, Notification, UNSUPPORTED_OPTIONAL_PARAMETER, be16, be32};

const PARAM_CAPABILITIES: u8 = 2;
const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_GRACEFUL_RESTART: u8 = 64;
const CAP_FOUR_OCTET_AS: u8 = 65;
/// Graceful restart's Restart State bit, in the top nibble of its first two bytes.
const GR_RESTART_STATE: u16 = 0x8000;
/// The restart time's 12 bits.
const GR_TIME: u16 = 0x0fff;
/// A family's Forwarding State bit.
const GR_FORWARDING: u8 = 0x80;

/// One capability as advertised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    Multiprotocol {
        afi: u16,
        safi: u8,
    },
    RouteRefresh,
    /// RFC 4724: keep my routes for `restart_time` seconds when the session drops without
    /// a NOTIFICATION, until I send End-of-RIB again. `families`: (AFI, SAFI, forwarding
    /// state kept across the restart).
    GracefulRestart {
        restart_state: bool,
        restart_time: u16,
        families: Vec<(u16, u8, bool)>,
    },
    FourOctetAs(u32),
    /// Anything else is kept only to be ignored (RFC 5492 §3).
    Other {
        code: u8,
        value: Vec<u8>,
    },
}

/// An OPEN message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet AS field: the AS, or AS_TRANS when it does not fit.
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The OPEN of a speaker in `asn`, with the 4-octet AS capability and the families.
    pub fn new(asn: u32, hold_time: u16, router_id: Ipv4Addr, families: &[(u16, u8)]) -> Open {
        let mut capabilities: Vec<Capability> = families
            .iter()
            .map(|&(afi, safi)| Capability::Multiprotocol { afi, safi })
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs(asn));
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            router_id,
            capabilities,
        }
    }

    /// Offers graceful restart (RFC 4724) for its families: a peer keeps this speaker's
    /// routes for `restart_time` seconds (at most 4095) after the session drops without a
    /// NOTIFICATION, with their forwarding state kept (the hosts forward, not the speaker).
    pub fn with_graceful_restart(mut self, restart_time: u16) -> Open {
        let families = self
            .families()
            .into_iter()
            .map(|(afi, safi)| (afi, safi, true))
            .collect();
        self.capabilities.push(Capability::GracefulRestart {
            restart_state: false,
            restart_time: restart_time.min(GR_TIME),
            families,
        });
        self
    }

    /// The restart time the peer offered, if it offers graceful restart.
    pub fn graceful_restart(&self) -> Option<u16> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart { restart_time, .. } => Some(*restart_time),
            _ => None,
        })
    }

    /// The speaker's AS: the 4-octet capability's when present (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
    }

    /// The (AFI, SAFI) pairs it speaks; with no multiprotocol capability, IPv4 unicast.
    pub fn families(&self) -> Vec<(u16, u8)> {
        let f: Vec<(u16, u8)> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi, safi } => Some((*afi, *safi)),
                _ => None,
            })
            .collect();
        if f.is_empty() {
            vec![(super::AFI_IPV4, super::SAFI_UNICAST)]
        } else {
            f
        }
    }

    pub(crate) fn parse(body: &[u8]) -> Result<Open, Notification> {
        // The header check guaranteed 10 bytes of body.
        let malformed = || Notification::open(0, Vec::new());
        let version = *body.first().ok_or_else(malformed)?;
        let my_as = be16(body, 1).ok_or_else(malformed)?;
        let hold_time = be16(body, 3).ok_or_else(malformed)?;
        let router_id = Ipv4Addr::from(be32(body, 5).ok_or_else(malformed)?);
        let opt_len = usize::from(*body.get(9).ok_or_else(malformed)?);
        if version != 4 {
            // The data is the highest version this speaker supports (RFC 4271 §6.2).
            return Err(Notification::open(super::UNSUPPORTED_VERSION, [0, 4]));
        }
        let mut params = &body[10..];
        if params.len() != opt_len {
            return Err(Notification::header(
                super::BAD_MESSAGE_LENGTH,
                u16::try_from(body.len() + super::HEADER_LEN)
                    .unwrap_or(u16::MAX)
                    .to_be_bytes(),
            ));
        }
        let mut capabilities = Vec::new();
        while let [kind, len, rest @ ..] = params {
            let value = rest.get(..usize::from(*len)).ok_or_else(malformed)?;
            if *kind != PARAM_CAPABILITIES {
                return Err(Notification::open(
                    UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                ));
            }
            parse_capabilities(value, &mut capabilities).ok_or_else(malformed)?;
            params = &rest[usize::from(*len)..];
        }
        if !params.is_empty() {
            return Err(malformed());
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            router_id,
            capabilities,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.router_id.octets());
        // All capabilities in one parameter: the most compact form, which any peer reads.
        let mut caps = Vec::new();
        for c in &self.capabilities {
            match c {
                Capability::Multiprotocol { afi, safi } => {
                    caps.extend_from_slice(&[CAP_MULTIPROTOCOL, 4]);
                    caps.extend_from_slice(&afi.to_be_bytes());
                    caps.extend_from_slice(&[0, *safi]);
                }
                Capability::RouteRefresh => caps.extend_from_slice(&[CAP_ROUTE_REFRESH, 0]),
                Capability::GracefulRestart {
                    restart_state,
                    restart_time,
                    families,
                } => {
                    // 2 + 4 a family; 63 families fill the 253 bytes a parameter can hold.
                    let families = &families[..families.len().min(62)];
                    caps.extend_from_slice(&[CAP_GRACEFUL_RESTART, (2 + 4 * families.len()) as u8]);
                    let flags = if *restart_state { GR_RESTART_STATE } else { 0 };
                    caps.extend_from_slice(&(flags | (restart_time & GR_TIME)).to_be_bytes());
                    for (afi, safi, fwd) in families {
                        caps.extend_from_slice(&afi.to_be_bytes());
                        caps.extend_from_slice(&[*safi, if *fwd { GR_FORWARDING } else { 0 }]);
                    }
                }
                Capability::FourOctetAs(a) => {
                    caps.extend_from_slice(&[CAP_FOUR_OCTET_AS, 4]);
                    caps.extend_from_slice(&a.to_be_bytes());
                }
                Capability::Other { code, value } => {
                    let len = u8::try_from(value.len()).unwrap_or(u8::MAX);
                    caps.extend_from_slice(&[*code, len]);
                    caps.extend_from_slice(&value[..usize::from(len)]);
                }
            }
        }
        // Parameters beyond 255 bytes need RFC 9072; nothing this speaker sends comes close.
        caps.truncate(253);
        if caps.is_empty() {
            out.push(0);
            return;
        }
        out.push(caps.len() as u8 + 2);
        out.extend_from_slice(&[PARAM_CAPABILITIES, caps.len() as u8]);
        out.extend_from_slice(&caps);
    }
}

fn parse_capabilities(mut b: &[u8], out: &mut Vec<Capability>) -> Option<()> {
    while let [code, len, rest @ ..] = b {
        let value = rest.get(..usize::from(*len))?;
        out.push(match (*code, value.len()) {
            (CAP_MULTIPROTOCOL, 4) => Capability::Multiprotocol {
                afi: be16(value, 0)?,
                safi: value[3],
            },
            (CAP_ROUTE_REFRESH, 0) => Capability::RouteRefresh,
            (CAP_FOUR_OCTET_AS, 4) => Capability::FourOctetAs(be32(value, 0)?),
            (CAP_GRACEFUL_RESTART, n) if n >= 2 && (n - 2) % 4 == 0 => {
                let head = be16(value, 0)?;
                Capability::GracefulRestart {
                    restart_state: head & GR_RESTART_STATE != 0,
                    restart_time: head & GR_TIME,
                    families: value[2..]
                        .chunks_exact(4)
                        .map(|f| {
                            (
                                u16::from_be_bytes([f[0], f[1]]),
                                f[2],
                                f[3] & GR_FORWARDING != 0,
                            )
                        })
                        .collect(),
                }
            }
            (
                CAP_MULTIPROTOCOL | CAP_ROUTE_REFRESH | CAP_FOUR_OCTET_AS | CAP_GRACEFUL_RESTART,
                _,
            ) => {
                return None;
            }
            _ => Capability::Other {
                code: *code,
                value: value.to_vec(),
            },
        });
        b = &rest[usize::from(*len)..];
    }
    b.is_empty().then_some(())
}
