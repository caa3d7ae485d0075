//! Actions (`ofp_action_*`): the OpenFlow 1.3 ones and the dispatch to Nicira actions.
//!
//! Every action is a TLV `type(2) len(2) ...` whose length is a multiple of 8. Experimenter
//! actions with the Nicira vendor id are decoded by [`crate::nx`]; anything else is kept
//! raw so that a dump of a foreign flow still decodes.

use crate::buf::{Reader, pad_to_8, patch_u16, put_u16, put_u32, put_zeros};
use crate::error::{Error, Result};
use crate::nx::{self, Controller2, Ct, Learn, Nat, Subfield};
use crate::oxm::OxmField;

/// Reserved port numbers (OpenFlow 1.3).
pub mod port {
    /// Highest physical port number.
    pub const MAX: u32 = 0xffff_ff00;
    /// Send back out the input port.
    pub const IN_PORT: u32 = 0xffff_fff8;
    /// Submit to the first flow table (packet-out only).
    pub const TABLE: u32 = 0xffff_fff9;
    /// Normal L2 processing.
    pub const NORMAL: u32 = 0xffff_fffa;
    /// Flood.
    pub const FLOOD: u32 = 0xffff_fffb;
    /// All ports but the input port.
    pub const ALL: u32 = 0xffff_fffc;
    /// To the controller.
    pub const CONTROLLER: u32 = 0xffff_fffd;
    /// The local port.
    pub const LOCAL: u32 = 0xffff_fffe;
    /// Wildcard (any port) in deletes and stats requests.
    pub const ANY: u32 = 0xffff_ffff;
}

/// `max_len` meaning "send the whole packet, do not buffer".
pub const OFPCML_NO_BUFFER: u16 = 0xffff;

/// Nicira's experimenter (vendor) id.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;
/// The Open Networking Foundation's experimenter id.
pub const ONF_VENDOR_ID: u32 = 0x4f4e_4600;

const OFPAT_OUTPUT: u16 = 0;
const OFPAT_PUSH_VLAN: u16 = 17;
const OFPAT_POP_VLAN: u16 = 18;
const OFPAT_PUSH_MPLS: u16 = 19;
const OFPAT_POP_MPLS: u16 = 20;
const OFPAT_SET_QUEUE: u16 = 21;
const OFPAT_GROUP: u16 = 22;
const OFPAT_DEC_NW_TTL: u16 = 24;
const OFPAT_SET_FIELD: u16 = 25;
const OFPAT_EXPERIMENTER: u16 = 0xffff;

/// Nesting limit for actions inside actions (ct exec), so hostile input cannot recurse deeply.
const MAX_DEPTH: u8 = 4;

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// Output to a port; `max_len` bytes go to the controller when `port` is CONTROLLER.
    Output {
        /// Port number (see [`port`]).
        port: u32,
        /// Bytes of the packet sent to the controller.
        max_len: u16,
    },
    /// Apply a group.
    Group(u32),
    /// Set a field (OFPAT_SET_FIELD, unmasked).
    SetField(OxmField),
    /// Push a VLAN tag with this TPID.
    PushVlan(u16),
    /// Pop the outer VLAN tag.
    PopVlan,
    /// Push an MPLS label stack entry; the ethertype is 0x8847 (unicast) or 0x8848.
    PushMpls(u16),
    /// Pop the outer MPLS label; the ethertype is what the packet becomes.
    PopMpls(u16),
    /// Decrement the IP TTL (OFPAT_DEC_NW_TTL).
    DecNwTtl,
    /// Set the output queue.
    SetQueue(u32),
    /// Nicira resubmit: look the packet up again.
    Resubmit {
        /// Input port for the lookup (OpenFlow 1.0 numbering; 0xfff8 = unchanged).
        in_port: u16,
        /// Table (255 = the current one).
        table: u8,
        /// Use the conntrack original-direction tuple (resubmit(,,ct)).
        ct: bool,
    },
    /// Nicira reg_move: copy `n_bits` between subfields (move:src->dst).
    RegMove {
        /// Source (its `n_bits` is the width moved).
        src: Subfield,
        /// Destination (same `n_bits`).
        dst: Subfield,
    },
    /// Nicira reg_load: load an immediate into a subfield (load:value->dst).
    RegLoad {
        /// Destination subfield.
        dst: Subfield,
        /// Value (right-aligned).
        value: u64,
    },
    /// Nicira reg_load2: set a whole field, optionally under a mask (set_field with mask).
    RegLoad2(OxmField),
    /// Nicira output to the port number held in a subfield.
    OutputReg {
        /// Subfield holding the port.
        src: Subfield,
        /// Bytes sent when the port is the controller.
        max_len: u16,
    },
    /// Nicira conntrack.
    Ct(Ct),
    /// Nicira NAT (only meaningful inside [`Action::Ct`]).
    Nat(Nat),
    /// Nicira ct_clear.
    CtClear,
    /// Nicira conjunction (clause is 0-based on the wire, shown 1-based by ovs-ofctl).
    Conjunction {
        /// Conjunction id.
        id: u32,
        /// Clause index (0-based).
        clause: u8,
        /// Number of clauses.
        n_clauses: u8,
    },
    /// Nicira learn.
    Learn(Learn),
    /// Nicira controller (the old fixed form).
    Controller {
        /// Bytes to send.
        max_len: u16,
        /// Controller connection id.
        controller_id: u16,
        /// Packet-in reason.
        reason: u8,
    },
    /// Nicira controller2 (properties: userdata, pause, ...).
    Controller2(Controller2),
    /// Nicira dec_ttl with the controller ids to notify when the TTL expires.
    DecTtlCntIds(Vec<u16>),
    /// Nicira note: opaque bytes (including the zero padding that follows them).
    Note(Vec<u8>),
    /// Nicira fin_timeout.
    FinTimeout {
        /// Idle timeout after FIN/RST.
        idle: u16,
        /// Hard timeout after FIN/RST.
        hard: u16,
    },
    /// Nicira exit: stop the pipeline.
    Exit,
    /// Nicira multipath.
    Multipath(nx::Multipath),
    /// An experimenter action this crate does not decode (body after the experimenter id).
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Raw body.
        data: Vec<u8>,
    },
    /// A standard action type this crate does not decode (body after type and length).
    Unknown {
        /// Action type.
        ty: u16,
        /// Raw body.
        data: Vec<u8>,
    },
}

impl Action {
    /// output:PORT.
    pub fn output(port: u32) -> Action {
        Action::Output { port, max_len: 0 }
    }

    /// output:CONTROLLER with `max_len`.
    pub fn controller(max_len: u16) -> Action {
        Action::Output {
            port: port::CONTROLLER,
            max_len,
        }
    }

    /// resubmit(,table).
    pub fn resubmit_table(table: u8) -> Action {
        Action::Resubmit {
            in_port: 0xfff8,
            table,
            ct: false,
        }
    }

    /// set_field: exact value.
    pub fn set_field(field: crate::oxm::Field, value: impl Into<u128>) -> Action {
        Action::SetField(OxmField::new(field, value))
    }

    /// load:value->field[ofs..ofs+n_bits].
    pub fn load(field: crate::oxm::Field, ofs: u16, n_bits: u16, value: u64) -> Action {
        Action::RegLoad {
            dst: Subfield { field, ofs, n_bits },
            value,
        }
    }

    /// move:src[0..n_bits]->dst[0..n_bits].
    pub fn move_field(src: crate::oxm::Field, dst: crate::oxm::Field, n_bits: u16) -> Action {
        Action::RegMove {
            src: Subfield {
                field: src,
                ofs: 0,
                n_bits,
            },
            dst: Subfield {
                field: dst,
                ofs: 0,
                n_bits,
            },
        }
    }

    /// Appends the action.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            Action::Output { port, max_len } => {
                put_u16(out, OFPAT_OUTPUT);
                put_u16(out, 16);
                put_u32(out, *port);
                put_u16(out, *max_len);
                put_zeros(out, 6);
                return;
            }
            Action::Group(g) => {
                put_u16(out, OFPAT_GROUP);
                put_u16(out, 8);
                put_u32(out, *g);
                return;
            }
            Action::SetQueue(q) => {
                put_u16(out, OFPAT_SET_QUEUE);
                put_u16(out, 8);
                put_u32(out, *q);
                return;
            }
            Action::PushVlan(tpid) => {
                put_u16(out, OFPAT_PUSH_VLAN);
                put_u16(out, 8);
                put_u16(out, *tpid);
                put_zeros(out, 2);
                return;
            }
            Action::PushMpls(ethertype) | Action::PopMpls(ethertype) => {
                let ty = if matches!(self, Action::PushMpls(_)) {
                    OFPAT_PUSH_MPLS
                } else {
                    OFPAT_POP_MPLS
                };
                put_u16(out, ty);
                put_u16(out, 8);
                put_u16(out, *ethertype);
                put_zeros(out, 2);
                return;
            }
            Action::PopVlan | Action::DecNwTtl => {
                let ty = if matches!(self, Action::PopVlan) {
                    OFPAT_POP_VLAN
                } else {
                    OFPAT_DEC_NW_TTL
                };
                put_u16(out, ty);
                put_u16(out, 8);
                put_zeros(out, 4);
                return;
            }
            Action::SetField(f) => {
                put_u16(out, OFPAT_SET_FIELD);
                put_u16(out, 0);
                // set_field carries no mask in OpenFlow 1.3; masked writes use RegLoad2.
                OxmField { mask: None, ..*f }.encode(out);
            }
            Action::Experimenter { experimenter, data } => {
                put_u16(out, OFPAT_EXPERIMENTER);
                put_u16(out, 0);
                put_u32(out, *experimenter);
                out.extend_from_slice(data);
            }
            Action::Unknown { ty, data } => {
                put_u16(out, *ty);
                put_u16(out, 0);
                out.extend_from_slice(data);
            }
            nxa => {
                put_u16(out, OFPAT_EXPERIMENTER);
                put_u16(out, 0);
                put_u32(out, NX_VENDOR_ID);
                nx::encode_body(nxa, out);
            }
        }
        pad_to_8(out, start);
        let len = out.len() - start;
        patch_u16(out, start + 2, crate::buf::field_len(len));
    }

    /// Reads one action.
    pub fn decode(r: &mut Reader<'_>) -> Result<Action> {
        Self::decode_at(r, 0)
    }

    pub(crate) fn decode_at(r: &mut Reader<'_>, depth: u8) -> Result<Action> {
        let ty = r.peek_u16()?;
        let len = usize::from(
            r.clone()
                .array::<4>()
                .map(|a| u16::from_be_bytes([a[2], a[3]]))?,
        );
        if len < 8 || len % 8 != 0 {
            return Err(Error::BadLength("action"));
        }
        let whole = r.take(len)?;
        let mut a = Reader::new(whole, "action");
        a.skip(4)?;
        Ok(match ty {
            OFPAT_OUTPUT => {
                let port = a.u32()?;
                let max_len = a.u16()?;
                Action::Output { port, max_len }
            }
            OFPAT_GROUP => Action::Group(a.u32()?),
            OFPAT_SET_QUEUE => Action::SetQueue(a.u32()?),
            OFPAT_PUSH_VLAN => Action::PushVlan(a.u16()?),
            OFPAT_POP_VLAN => Action::PopVlan,
            OFPAT_PUSH_MPLS => Action::PushMpls(a.u16()?),
            OFPAT_POP_MPLS => Action::PopMpls(a.u16()?),
            OFPAT_DEC_NW_TTL => Action::DecNwTtl,
            OFPAT_SET_FIELD => {
                let f = OxmField::decode(&mut a)?;
                if f.mask.is_some() {
                    return Err(Error::BadValue("masked set_field"));
                }
                Action::SetField(f)
            }
            OFPAT_EXPERIMENTER => {
                let exp = a.u32()?;
                if exp == NX_VENDOR_ID {
                    if depth >= MAX_DEPTH {
                        return Err(Error::BadValue("actions nested too deeply"));
                    }
                    nx::decode_body(&mut a, depth)?
                } else {
                    Action::Experimenter {
                        experimenter: exp,
                        data: a.take_rest().to_vec(),
                    }
                }
            }
            _ => Action::Unknown {
                ty,
                data: a.take_rest().to_vec(),
            },
        })
    }
}

/// Appends a list of actions.
pub fn encode_actions(actions: &[Action], out: &mut Vec<u8>) {
    for a in actions {
        a.encode(out);
    }
}

/// Decodes actions until `buf` is exhausted.
pub fn decode_actions(buf: &[u8]) -> Result<Vec<Action>> {
    decode_actions_at(buf, 0)
}

pub(crate) fn decode_actions_at(buf: &[u8], depth: u8) -> Result<Vec<Action>> {
    let mut r = Reader::new(buf, "actions");
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(Action::decode_at(&mut r, depth)?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nx::{Ct, CtZone, Subfield};
    use crate::oxm::Field;

    fn bytes(a: &Action) -> Vec<u8> {
        let mut v = Vec::new();
        a.encode(&mut v);
        v
    }

    #[test]
    fn standard_actions() {
        assert_eq!(
            bytes(&Action::controller(128)),
            [
                0, 0, 0, 16, 0xff, 0xff, 0xff, 0xfd, 0, 128, 0, 0, 0, 0, 0, 0
            ]
        );
        assert_eq!(bytes(&Action::Group(3)), [0, 22, 0, 8, 0, 0, 0, 3]);
        // set_field tun_id: OXM_OF_TUNNEL_ID (38) padded to 16 bytes.
        assert_eq!(
            bytes(&Action::set_field(Field::TunId, 0x42u64)),
            [0, 25, 0, 16, 0x80, 0, 0x4c, 8, 0, 0, 0, 0, 0, 0, 0, 0x42]
        );
    }

    #[test]
    fn nicira_actions_match_ovs_layout() {
        // resubmit(,20): NXAST_RESUBMIT_TABLE with in_port OFPP_IN_PORT (0xfff8).
        assert_eq!(
            bytes(&Action::resubmit_table(20)),
            [
                0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 14, 0xff, 0xf8, 20, 0, 0, 0
            ]
        );
        // load:5->NXM_NX_REG6[]: ofs_nbits = 31.
        assert_eq!(
            bytes(&Action::load(Field::Reg(6), 0, 32, 5)),
            [
                0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, 7, 0, 31, 0, 1, 0x0c, 4, 0, 0, 0, 0, 0, 0,
                0, 5
            ]
        );
        // ct(table=15,zone=NXM_NX_REG6[0..15]), as ovs-ofctl encodes it.
        let ct = Action::Ct(Ct {
            zone: CtZone::Field(Subfield::new(Field::Reg(6), 0, 16)),
            recirc_table: 15,
            ..Ct::default()
        });
        assert_eq!(
            bytes(&ct),
            [
                0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, 35, 0, 0, 0, 1, 0x0c, 4, 0, 15, 15, 0, 0,
                0, 0, 0
            ]
        );
        assert_eq!(decode_actions(&bytes(&ct)), Ok(vec![ct]));
    }

    #[test]
    fn old_resubmit_and_unknown_subtypes_decode() {
        // NXAST_RESUBMIT (1) has no table: it means the current table (255).
        let old = [0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 1, 0, 5, 0, 0, 0, 0];
        assert_eq!(
            decode_actions(&old),
            Ok(vec![Action::Resubmit {
                in_port: 5,
                table: 255,
                ct: false
            }])
        );
        // An NX subtype we do not know is kept raw (subtype first).
        let unknown = [
            0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 200, 1, 2, 3, 4, 5, 6,
        ];
        assert_eq!(
            decode_actions(&unknown),
            Ok(vec![Action::Experimenter {
                experimenter: NX_VENDOR_ID,
                data: vec![0, 200, 1, 2, 3, 4, 5, 6]
            }])
        );
    }

    #[test]
    fn bad_action_lengths() {
        assert_eq!(
            decode_actions(&[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadLength("action"))
        );
        assert_eq!(
            decode_actions(&[0, 0, 0, 16, 0, 0, 0, 0]),
            Err(Error::Truncated("actions"))
        );
    }
}
