//! The [`Message`] enum: one variant per supported message, with encode/decode dispatch.
//!
//! `encode` appends a whole message (header included) to a `Vec<u8>` so that many messages
//! can be batched into one buffer and written with one syscall.

use crate::action::{NX_VENDOR_ID, ONF_VENDOR_ID};
use crate::buf::{Reader, patch_u16, put_u8, put_u16, put_u32};
use crate::bundle::{BundleCtrl, ONFT_BUNDLE_ADD_MESSAGE, ONFT_BUNDLE_CONTROL};
use crate::error::{Error, Result};
use crate::errors::ErrorMsg;
use crate::flow::{FlowMod, FlowRemoved, GroupMod, MeterMod};
use crate::header::{Header, OFP13_VERSION, msg_type as t};
use crate::multipart::{MultipartReply, MultipartRequest};
use crate::packet::{PacketIn, PacketIn2, PacketOut};
use crate::switch::{AsyncConfig, FeaturesReply, Hello, PortStatus, RoleMsg, SwitchConfig};

/// Nicira experimenter message subtypes used here.
pub mod nxt {
    /// NXT_SET_PACKET_IN_FORMAT.
    pub const SET_PACKET_IN_FORMAT: u32 = 16;
    /// NXT_RESUME.
    pub const RESUME: u32 = 28;
    /// NXT_CT_FLUSH_ZONE.
    pub const CT_FLUSH_ZONE: u32 = 29;
    /// NXT_CT_FLUSH (OVS 3.1+).
    pub const CT_FLUSH: u32 = 32;
    /// NXT_PACKET_IN2.
    pub const PACKET_IN2: u32 = 30;
}

/// Packet-in formats for [`Message::SetPacketInFormat`].
pub mod packet_in_format {
    /// OFPT_PACKET_IN of the negotiated version.
    pub const STANDARD: u32 = 0;
    /// NXT_PACKET_IN (old Nicira format).
    pub const NXT_PACKET_IN: u32 = 1;
    /// NXT_PACKET_IN2 (properties; needed for controller2 userdata and pause).
    pub const NXT_PACKET_IN2: u32 = 2;
}

/// An OpenFlow 1.3 message (OVS dialect).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// OFPT_HELLO.
    Hello(Hello),
    /// OFPT_ERROR.
    Error(ErrorMsg),
    /// OFPT_ECHO_REQUEST with its payload.
    EchoRequest(Vec<u8>),
    /// OFPT_ECHO_REPLY with its payload.
    EchoReply(Vec<u8>),
    /// OFPT_FEATURES_REQUEST.
    FeaturesRequest,
    /// OFPT_FEATURES_REPLY.
    FeaturesReply(FeaturesReply),
    /// OFPT_GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// OFPT_GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// OFPT_SET_CONFIG.
    SetConfig(SwitchConfig),
    /// OFPT_PACKET_IN.
    PacketIn(PacketIn),
    /// OFPT_FLOW_REMOVED.
    FlowRemoved(FlowRemoved),
    /// OFPT_PORT_STATUS.
    PortStatus(PortStatus),
    /// OFPT_PACKET_OUT.
    PacketOut(PacketOut),
    /// OFPT_FLOW_MOD.
    FlowMod(FlowMod),
    /// OFPT_GROUP_MOD.
    GroupMod(GroupMod),
    /// OFPT_METER_MOD.
    MeterMod(MeterMod),
    /// OFPT_MULTIPART_REQUEST.
    MultipartRequest {
        /// OFPMPF_* flags.
        flags: u16,
        /// Body.
        body: MultipartRequest,
    },
    /// OFPT_MULTIPART_REPLY.
    MultipartReply {
        /// OFPMPF_* flags (REPLY_MORE).
        flags: u16,
        /// Body.
        body: MultipartReply,
    },
    /// OFPT_BARRIER_REQUEST.
    BarrierRequest,
    /// OFPT_BARRIER_REPLY.
    BarrierReply,
    /// OFPT_ROLE_REQUEST.
    RoleRequest(RoleMsg),
    /// OFPT_ROLE_REPLY.
    RoleReply(RoleMsg),
    /// OFPT_GET_ASYNC_REQUEST.
    GetAsyncRequest,
    /// OFPT_GET_ASYNC_REPLY.
    GetAsyncReply(AsyncConfig),
    /// OFPT_SET_ASYNC.
    SetAsync(AsyncConfig),
    /// NXT_PACKET_IN2.
    PacketIn2(PacketIn2),
    /// NXT_RESUME.
    Resume(PacketIn2),
    /// NXT_SET_PACKET_IN_FORMAT ([`packet_in_format`]).
    SetPacketInFormat(u32),
    /// NXT_CT_FLUSH_ZONE: drop every conntrack entry of a zone (e.g. a deleted port's).
    CtFlushZone(u16),
    /// NXT_CT_FLUSH: drop the conntrack entries matching a zone and partial tuples.
    CtFlush(crate::ct_flush::CtFlush),
    /// ONF bundle control.
    BundleControl(BundleCtrl),
    /// ONF bundle add: `message` is sent inside with the same xid.
    BundleAdd {
        /// Bundle id.
        bundle_id: u32,
        /// Bundle flags.
        flags: u16,
        /// The wrapped message.
        message: Box<Message>,
    },
    /// Another experimenter message, raw.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Raw body.
        data: Vec<u8>,
    },
    /// A message type this crate does not decode, raw.
    Unknown {
        /// Message type.
        ty: u8,
        /// Raw body.
        data: Vec<u8>,
    },
}

impl Message {
    fn msg_type(&self) -> u8 {
        use Message::*;
        match self {
            Hello(_) => t::HELLO,
            Error(_) => t::ERROR,
            EchoRequest(_) => t::ECHO_REQUEST,
            EchoReply(_) => t::ECHO_REPLY,
            FeaturesRequest => t::FEATURES_REQUEST,
            FeaturesReply(_) => t::FEATURES_REPLY,
            GetConfigRequest => t::GET_CONFIG_REQUEST,
            GetConfigReply(_) => t::GET_CONFIG_REPLY,
            SetConfig(_) => t::SET_CONFIG,
            PacketIn(_) => t::PACKET_IN,
            FlowRemoved(_) => t::FLOW_REMOVED,
            PortStatus(_) => t::PORT_STATUS,
            PacketOut(_) => t::PACKET_OUT,
            FlowMod(_) => t::FLOW_MOD,
            GroupMod(_) => t::GROUP_MOD,
            MeterMod(_) => t::METER_MOD,
            MultipartRequest { .. } => t::MULTIPART_REQUEST,
            MultipartReply { .. } => t::MULTIPART_REPLY,
            BarrierRequest => t::BARRIER_REQUEST,
            BarrierReply => t::BARRIER_REPLY,
            RoleRequest(_) => t::ROLE_REQUEST,
            RoleReply(_) => t::ROLE_REPLY,
            GetAsyncRequest => t::GET_ASYNC_REQUEST,
            GetAsyncReply(_) => t::GET_ASYNC_REPLY,
            SetAsync(_) => t::SET_ASYNC,
            PacketIn2(_)
            | Resume(_)
            | SetPacketInFormat(_)
            | CtFlushZone(_)
            | CtFlush(_)
            | BundleControl(_)
            | BundleAdd { .. }
            | Experimenter { .. } => t::EXPERIMENTER,
            Unknown { ty, .. } => *ty,
        }
    }

    /// Appends the encoded message with transaction id `xid` to `out`.
    ///
    /// Fails only when the message would exceed 65535 bytes (then nothing is appended).
    pub fn encode(&self, xid: u32, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        put_u8(out, OFP13_VERSION);
        put_u8(out, self.msg_type());
        put_u16(out, 0);
        put_u32(out, xid);
        if let Err(e) = self.encode_body(xid, out) {
            out.truncate(start);
            return Err(e);
        }
        let len = out.len() - start;
        if len > usize::from(u16::MAX) {
            out.truncate(start);
            return Err(Error::BadLength("message longer than 65535 bytes"));
        }
        patch_u16(out, start + 2, crate::buf::field_len(len));
        Ok(())
    }

    /// Encodes into a fresh buffer.
    pub fn to_vec(&self, xid: u32) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(64);
        self.encode(xid, &mut v)?;
        Ok(v)
    }

    fn encode_body(&self, xid: u32, out: &mut Vec<u8>) -> Result<()> {
        use Message::*;
        let exp = |out: &mut Vec<u8>, e: u32, ty: u32| {
            put_u32(out, e);
            put_u32(out, ty);
        };
        match self {
            Hello(h) => h.encode(out),
            Error(e) => e.encode(out),
            EchoRequest(d) | EchoReply(d) => out.extend_from_slice(d),
            FeaturesRequest | GetConfigRequest | BarrierRequest | BarrierReply
            | GetAsyncRequest => {}
            FeaturesReply(f) => f.encode(out),
            GetConfigReply(c) | SetConfig(c) => c.encode(out),
            PacketIn(p) => p.encode(out),
            FlowRemoved(f) => f.encode(out),
            PortStatus(p) => p.encode(out),
            PacketOut(p) => p.encode(out),
            FlowMod(f) => f.encode(out),
            GroupMod(g) => g.encode(out),
            MeterMod(m) => m.encode(out),
            MultipartRequest { flags, body } => body.encode(*flags, out),
            MultipartReply { flags, body } => body.encode(*flags, out),
            RoleRequest(r) | RoleReply(r) => r.encode(out),
            GetAsyncReply(a) | SetAsync(a) => a.encode(out),
            PacketIn2(p) => {
                exp(out, NX_VENDOR_ID, nxt::PACKET_IN2);
                p.encode(out);
            }
            Resume(p) => {
                exp(out, NX_VENDOR_ID, nxt::RESUME);
                p.encode(out);
            }
            SetPacketInFormat(f) => {
                exp(out, NX_VENDOR_ID, nxt::SET_PACKET_IN_FORMAT);
                put_u32(out, *f);
            }
            CtFlushZone(zone) => {
                exp(out, NX_VENDOR_ID, nxt::CT_FLUSH_ZONE);
                out.extend_from_slice(&[0; 6]);
                put_u16(out, *zone);
            }
            CtFlush(f) => {
                exp(out, NX_VENDOR_ID, nxt::CT_FLUSH);
                f.encode(out);
            }
            BundleControl(b) => {
                exp(out, ONF_VENDOR_ID, ONFT_BUNDLE_CONTROL);
                b.encode(out);
            }
            BundleAdd {
                bundle_id,
                flags,
                message,
            } => {
                exp(out, ONF_VENDOR_ID, ONFT_BUNDLE_ADD_MESSAGE);
                put_u32(out, *bundle_id);
                put_u16(out, 0);
                put_u16(out, *flags);
                message.encode(xid, out)?;
            }
            Experimenter {
                experimenter,
                exp_type,
                data,
            } => {
                exp(out, *experimenter, *exp_type);
                out.extend_from_slice(data);
            }
            Unknown { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }

    /// Decodes one whole message (header included; bytes past the header's length are
    /// ignored). Returns the xid and the message.
    pub fn decode(buf: &[u8]) -> Result<(u32, Message)> {
        let h = Header::parse(buf)?;
        let body = buf
            .get(Header::LEN..usize::from(h.length))
            .ok_or(crate::Error::Truncated("message"))?;
        if h.ty == t::HELLO {
            // Hello is version-independent: it is how versions are negotiated.
            return Ok((
                h.xid,
                Message::Hello(crate::switch::Hello::decode(&mut Reader::new(
                    body, "hello",
                ))?),
            ));
        }
        if h.version != OFP13_VERSION {
            return Err(crate::Error::BadVersion(h.version));
        }
        let mut r = Reader::new(body, "message body");
        let r = &mut r;
        use Message::*;
        let m = match h.ty {
            t::ERROR => Error(ErrorMsg::decode(r)?),
            t::ECHO_REQUEST => EchoRequest(r.take_rest().to_vec()),
            t::ECHO_REPLY => EchoReply(r.take_rest().to_vec()),
            t::FEATURES_REQUEST => FeaturesRequest,
            t::FEATURES_REPLY => FeaturesReply(crate::switch::FeaturesReply::decode(r)?),
            t::GET_CONFIG_REQUEST => GetConfigRequest,
            t::GET_CONFIG_REPLY => GetConfigReply(SwitchConfig::decode(r)?),
            t::SET_CONFIG => SetConfig(SwitchConfig::decode(r)?),
            t::PACKET_IN => PacketIn(crate::packet::PacketIn::decode(r)?),
            t::FLOW_REMOVED => FlowRemoved(crate::flow::FlowRemoved::decode(r)?),
            t::PORT_STATUS => PortStatus(crate::switch::PortStatus::decode(r)?),
            t::PACKET_OUT => PacketOut(crate::packet::PacketOut::decode(r)?),
            t::FLOW_MOD => FlowMod(crate::flow::FlowMod::decode(r)?),
            t::GROUP_MOD => GroupMod(crate::flow::GroupMod::decode(r)?),
            t::METER_MOD => MeterMod(crate::flow::MeterMod::decode(r)?),
            t::MULTIPART_REQUEST => {
                let (flags, body) = crate::multipart::MultipartRequest::decode(r)?;
                MultipartRequest { flags, body }
            }
            t::MULTIPART_REPLY => {
                let (flags, body) = crate::multipart::MultipartReply::decode(r)?;
                MultipartReply { flags, body }
            }
            t::BARRIER_REQUEST => BarrierRequest,
            t::BARRIER_REPLY => BarrierReply,
            t::ROLE_REQUEST => RoleRequest(RoleMsg::decode(r)?),
            t::ROLE_REPLY => RoleReply(RoleMsg::decode(r)?),
            t::GET_ASYNC_REQUEST => GetAsyncRequest,
            t::GET_ASYNC_REPLY => GetAsyncReply(AsyncConfig::decode(r)?),
            t::SET_ASYNC => SetAsync(AsyncConfig::decode(r)?),
            t::EXPERIMENTER => {
                let experimenter = r.u32()?;
                let exp_type = r.u32()?;
                match (experimenter, exp_type) {
                    (NX_VENDOR_ID, nxt::PACKET_IN2) => {
                        PacketIn2(crate::packet::PacketIn2::decode(r)?)
                    }
                    (NX_VENDOR_ID, nxt::RESUME) => Resume(crate::packet::PacketIn2::decode(r)?),
                    (NX_VENDOR_ID, nxt::SET_PACKET_IN_FORMAT) => SetPacketInFormat(r.u32()?),
                    (NX_VENDOR_ID, nxt::CT_FLUSH_ZONE) => {
                        r.skip(6)?;
                        CtFlushZone(r.u16()?)
                    }
                    (NX_VENDOR_ID, nxt::CT_FLUSH) => CtFlush(crate::ct_flush::CtFlush::decode(r)?),
                    (ONF_VENDOR_ID, ONFT_BUNDLE_CONTROL) => BundleControl(BundleCtrl::decode(r)?),
                    (ONF_VENDOR_ID, ONFT_BUNDLE_ADD_MESSAGE) => {
                        let bundle_id = r.u32()?;
                        r.skip(2)?;
                        let flags = r.u16()?;
                        let inner = r.rest();
                        let ih = Header::parse(inner)?;
                        if ih.ty == t::EXPERIMENTER
                            && inner
                                .get(8..16)
                                .is_some_and(|e| e.starts_with(&ONF_VENDOR_ID.to_be_bytes()))
                        {
                            // No bundles inside bundles: also bounds recursion on hostile input.
                            return Err(crate::Error::BadValue("bundle inside bundle"));
                        }
                        let (_, message) = Message::decode(inner)?;
                        BundleAdd {
                            bundle_id,
                            flags,
                            message: Box::new(message),
                        }
                    }
                    _ => Experimenter {
                        experimenter,
                        exp_type,
                        data: r.take_rest().to_vec(),
                    },
                }
            }
            ty => Unknown {
                ty,
                data: r.take_rest().to_vec(),
            },
        };
        Ok((h.xid, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Instruction;

    #[test]
    fn hello_and_barrier_bytes() {
        assert_eq!(
            Message::Hello(Hello::of13()).to_vec(1),
            Ok(vec![4, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x10])
        );
        assert_eq!(
            Message::BarrierRequest.to_vec(7),
            Ok(vec![4, 20, 0, 8, 0, 0, 0, 7])
        );
        // A hello from an OpenFlow 1.0 peer still decodes (version negotiation).
        assert_eq!(
            Message::decode(&[1, 0, 0, 8, 0, 0, 0, 3]),
            Ok((3, Message::Hello(Hello::default())))
        );
    }

    #[test]
    fn flow_mod_bytes() {
        let fm = FlowMod {
            instructions: vec![Instruction::GotoTable(1)],
            ..FlowMod::add(0, 10)
        };
        let want: Vec<u8> = vec![
            4, 14, 0, 64, 0, 0, 0, 5, // header
            0, 0, 0, 0, 0, 0, 0, 0, // cookie
            0, 0, 0, 0, 0, 0, 0, 0, // cookie mask
            0, 0, 0, 0, 0, 0, 0, 10, // table, command, idle, hard, priority
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // buffer id, out port
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, // out group, flags, pad
            0, 1, 0, 4, 0, 0, 0, 0, // empty match
            0, 1, 0, 8, 1, 0, 0, 0, // goto_table:1
        ];
        assert_eq!(Message::FlowMod(fm.clone()).to_vec(5), Ok(want.clone()));
        assert_eq!(Message::decode(&want), Ok((5, Message::FlowMod(fm))));
    }

    #[test]
    fn bundle_add_wraps_with_the_same_xid() {
        let m = Message::BundleAdd {
            bundle_id: 9,
            flags: 1,
            message: Box::new(Message::BarrierRequest),
        };
        let b = m.to_vec(0x42).expect("encode");
        assert_eq!(
            b,
            [
                4, 4, 0, 32, 0, 0, 0, 0x42, 0x4f, 0x4e, 0x46, 0, 0, 0, 0x08, 0xfd, 0, 0, 0, 9, 0,
                0, 0, 1, 4, 20, 0, 8, 0, 0, 0, 0x42
            ]
        );
        assert_eq!(Message::decode(&b), Ok((0x42, m)));
    }

    #[test]
    fn oversized_messages_are_refused() {
        let mut out = vec![1, 2, 3];
        let m = Message::EchoRequest(vec![0; 70_000]);
        assert!(m.encode(1, &mut out).is_err());
        assert_eq!(out, [1, 2, 3], "nothing appended on error");
        let wrapped = Message::BundleAdd {
            bundle_id: 1,
            flags: 0,
            message: Box::new(m),
        };
        assert!(wrapped.encode(1, &mut out).is_err());
        assert_eq!(
            out,
            [1, 2, 3],
            "nothing appended when the wrapped message fails"
        );
    }
}
