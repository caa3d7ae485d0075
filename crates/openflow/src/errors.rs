//! OFPT_ERROR bodies and the names of OpenFlow 1.3, Nicira and ONF error codes.

use crate::buf::{Reader, put_u16, put_u32};
use crate::error::Result;

/// Experimenter error type.
pub const OFPET_EXPERIMENTER: u16 = 0xffff;

/// An error message from the switch (or to it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorMsg {
    /// Error type (0xffff for experimenter errors).
    pub ty: u16,
    /// Error code (the exp_code for experimenter errors).
    pub code: u16,
    /// Experimenter id (only when `ty` is 0xffff).
    pub experimenter: u32,
    /// Usually the first bytes of the offending request.
    pub data: Vec<u8>,
}

impl ErrorMsg {
    /// Name of the error type (e.g. `OFPET_BAD_ACTION`).
    pub fn type_name(&self) -> Option<&'static str> {
        Some(match self.ty {
            0 => "OFPET_HELLO_FAILED",
            1 => "OFPET_BAD_REQUEST",
            2 => "OFPET_BAD_ACTION",
            3 => "OFPET_BAD_INSTRUCTION",
            4 => "OFPET_BAD_MATCH",
            5 => "OFPET_FLOW_MOD_FAILED",
            6 => "OFPET_GROUP_MOD_FAILED",
            7 => "OFPET_PORT_MOD_FAILED",
            8 => "OFPET_TABLE_MOD_FAILED",
            9 => "OFPET_QUEUE_OP_FAILED",
            10 => "OFPET_SWITCH_CONFIG_FAILED",
            11 => "OFPET_ROLE_REQUEST_FAILED",
            12 => "OFPET_METER_MOD_FAILED",
            13 => "OFPET_TABLE_FEATURES_FAILED",
            OFPET_EXPERIMENTER => "OFPET_EXPERIMENTER",
            _ => return None,
        })
    }

    /// Name of the error (e.g. `OFPBAC_BAD_OUT_PORT`, `NXBRC_NXM_INVALID`), as OVS names it.
    pub fn name(&self) -> Option<&'static str> {
        let find = |tab: &'static [(u16, &'static str)], c: u16| {
            tab.iter().find(|(k, _)| *k == c).map(|(_, n)| *n)
        };
        if self.ty == OFPET_EXPERIMENTER {
            match self.experimenter {
                crate::action::NX_VENDOR_ID => find(NX_CODES, self.code),
                crate::action::ONF_VENDOR_ID => find(ONF_CODES, self.code),
                _ => None,
            }
        } else {
            CODES
                .iter()
                .find(|(t, c, _)| *t == self.ty && *c == self.code)
                .map(|(_, _, n)| *n)
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.ty);
        put_u16(out, self.code);
        if self.ty == OFPET_EXPERIMENTER {
            put_u32(out, self.experimenter);
        }
        out.extend_from_slice(&self.data);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let ty = r.u16()?;
        let code = r.u16()?;
        let experimenter = if ty == OFPET_EXPERIMENTER {
            r.u32()?
        } else {
            0
        };
        Ok(ErrorMsg {
            ty,
            code,
            experimenter,
            data: r.take_rest().to_vec(),
        })
    }
}

// Tables of (type, code, name) facts from the OpenFlow 1.3 spec and OVS's error list.
const CODES: &[(u16, u16, &str)] = &[
    (0, 0, "OFPHFC_INCOMPATIBLE"),
    (0, 1, "OFPHFC_EPERM"),
    (1, 0, "OFPBRC_BAD_VERSION"),
    (1, 1, "OFPBRC_BAD_TYPE"),
    (1, 2, "OFPBRC_BAD_STAT"),
    (1, 3, "OFPBRC_BAD_VENDOR"),
    (1, 4, "OFPBRC_BAD_SUBTYPE"),
    (1, 5, "OFPBRC_EPERM"),
    (1, 6, "OFPBRC_BAD_LEN"),
    (1, 7, "OFPBRC_BUFFER_EMPTY"),
    (1, 8, "OFPBRC_BUFFER_UNKNOWN"),
    (1, 9, "OFPBRC_BAD_TABLE_ID"),
    (1, 10, "OFPBRC_IS_SECONDARY"),
    (1, 11, "OFPBRC_BAD_PORT"),
    (1, 12, "OFPBRC_BAD_PACKET"),
    (1, 13, "OFPBRC_MULTIPART_BUFFER_OVERFLOW"),
    (2, 0, "OFPBAC_BAD_TYPE"),
    (2, 1, "OFPBAC_BAD_LEN"),
    (2, 2, "OFPBAC_BAD_VENDOR"),
    (2, 3, "OFPBAC_BAD_VENDOR_TYPE"),
    (2, 4, "OFPBAC_BAD_OUT_PORT"),
    (2, 5, "OFPBAC_BAD_ARGUMENT"),
    (2, 6, "OFPBAC_EPERM"),
    (2, 7, "OFPBAC_TOO_MANY"),
    (2, 8, "OFPBAC_BAD_QUEUE"),
    (2, 9, "OFPBAC_BAD_OUT_GROUP"),
    (2, 10, "OFPBAC_MATCH_INCONSISTENT"),
    (2, 11, "OFPBAC_UNSUPPORTED_ORDER"),
    (2, 12, "OFPBAC_BAD_TAG"),
    (2, 13, "OFPBAC_BAD_SET_TYPE"),
    (2, 14, "OFPBAC_BAD_SET_LEN"),
    (2, 15, "OFPBAC_BAD_SET_ARGUMENT"),
    (3, 0, "OFPBIC_UNKNOWN_INST"),
    (3, 1, "OFPBIC_UNSUP_INST"),
    (3, 2, "OFPBIC_BAD_TABLE_ID"),
    (3, 3, "OFPBIC_UNSUP_METADATA"),
    (3, 4, "OFPBIC_UNSUP_METADATA_MASK"),
    (3, 5, "OFPBIC_BAD_EXPERIMENTER"),
    (3, 6, "OFPBIC_BAD_EXP_TYPE"),
    (3, 7, "OFPBIC_BAD_LEN"),
    (3, 8, "OFPBIC_EPERM"),
    (4, 0, "OFPBMC_BAD_TYPE"),
    (4, 1, "OFPBMC_BAD_LEN"),
    (4, 2, "OFPBMC_BAD_TAG"),
    (4, 3, "OFPBMC_BAD_DL_ADDR_MASK"),
    (4, 4, "OFPBMC_BAD_NW_ADDR_MASK"),
    (4, 5, "OFPBMC_BAD_WILDCARDS"),
    (4, 6, "OFPBMC_BAD_FIELD"),
    (4, 7, "OFPBMC_BAD_VALUE"),
    (4, 8, "OFPBMC_BAD_MASK"),
    (4, 9, "OFPBMC_BAD_PREREQ"),
    (4, 10, "OFPBMC_DUP_FIELD"),
    (4, 11, "OFPBMC_EPERM"),
    (5, 0, "OFPFMFC_UNKNOWN"),
    (5, 1, "OFPFMFC_TABLE_FULL"),
    (5, 2, "OFPFMFC_BAD_TABLE_ID"),
    (5, 3, "OFPFMFC_OVERLAP"),
    (5, 4, "OFPFMFC_EPERM"),
    (5, 5, "OFPFMFC_BAD_TIMEOUT"),
    (5, 6, "OFPFMFC_BAD_COMMAND"),
    (5, 7, "OFPFMFC_BAD_FLAGS"),
    (6, 0, "OFPGMFC_GROUP_EXISTS"),
    (6, 1, "OFPGMFC_INVALID_GROUP"),
    (6, 2, "OFPGMFC_WEIGHT_UNSUPPORTED"),
    (6, 3, "OFPGMFC_OUT_OF_GROUPS"),
    (6, 4, "OFPGMFC_OUT_OF_BUCKETS"),
    (6, 5, "OFPGMFC_CHAINING_UNSUPPORTED"),
    (6, 6, "OFPGMFC_WATCH_UNSUPPORTED"),
    (6, 7, "OFPGMFC_LOOP"),
    (6, 8, "OFPGMFC_UNKNOWN_GROUP"),
    (6, 9, "OFPGMFC_CHAINED_GROUP"),
    (6, 10, "OFPGMFC_BAD_TYPE"),
    (6, 11, "OFPGMFC_BAD_COMMAND"),
    (6, 12, "OFPGMFC_BAD_BUCKET"),
    (6, 13, "OFPGMFC_BAD_WATCH"),
    (6, 14, "OFPGMFC_EPERM"),
    (7, 0, "OFPPMFC_BAD_PORT"),
    (7, 1, "OFPPMFC_BAD_HW_ADDR"),
    (7, 2, "OFPPMFC_BAD_CONFIG"),
    (7, 3, "OFPPMFC_BAD_ADVERTISE"),
    (7, 4, "OFPPMFC_EPERM"),
    (8, 0, "OFPTMFC_BAD_TABLE"),
    (8, 1, "OFPTMFC_BAD_CONFIG"),
    (8, 2, "OFPTMFC_EPERM"),
    (9, 0, "OFPQOFC_BAD_PORT"),
    (9, 1, "OFPQOFC_BAD_QUEUE"),
    (9, 2, "OFPQOFC_EPERM"),
    (10, 0, "OFPSCFC_BAD_FLAGS"),
    (10, 1, "OFPSCFC_BAD_LEN"),
    (10, 2, "OFPSCFC_EPERM"),
    (11, 0, "OFPRRFC_STALE"),
    (11, 1, "OFPRRFC_UNSUP"),
    (11, 2, "OFPRRFC_BAD_ROLE"),
    (12, 0, "OFPMMFC_UNKNOWN"),
    (12, 1, "OFPMMFC_METER_EXISTS"),
    (12, 2, "OFPMMFC_INVALID_METER"),
    (12, 3, "OFPMMFC_UNKNOWN_METER"),
    (12, 4, "OFPMMFC_BAD_COMMAND"),
    (12, 5, "OFPMMFC_BAD_FLAGS"),
    (12, 6, "OFPMMFC_BAD_RATE"),
    (12, 7, "OFPMMFC_BAD_BURST"),
    (12, 8, "OFPMMFC_BAD_BAND"),
    (12, 9, "OFPMMFC_BAD_BAND_VALUE"),
    (12, 10, "OFPMMFC_OUT_OF_METERS"),
    (12, 11, "OFPMMFC_OUT_OF_BANDS"),
    (13, 0, "OFPTFFC_BAD_TABLE"),
    (13, 1, "OFPTFFC_BAD_METADATA"),
    (13, 2, "OFPBPC_BAD_TYPE"),
    (13, 3, "OFPBPC_BAD_LEN"),
    (13, 4, "OFPBPC_BAD_VALUE"),
    (13, 5, "OFPTFFC_EPERM"),
];
const NX_CODES: &[(u16, &str)] = &[
    (2, "NXBRC_NXM_INVALID"),
    (3, "NXBRC_NXM_BAD_TYPE"),
    (4, "NXBRC_MUST_BE_ZERO"),
    (5, "NXBRC_BAD_REASON"),
    (6, "OFPMOFC_MONITOR_EXISTS"),
    (7, "OFPMOFC_BAD_FLAGS"),
    (8, "OFPMOFC_UNKNOWN_MONITOR"),
    (9, "NXBRC_FM_BAD_EVENT"),
    (10, "NXBRC_UNENCODABLE_ERROR"),
    (11, "NXBAC_MUST_BE_ZERO"),
    (12, "NXFMFC_HARDWARE"),
    (13, "NXFMFC_BAD_TABLE_ID"),
    (15, "NXBAC_BAD_CONJUNCTION"),
    (16, "NXTTMFC_BAD_COMMAND"),
    (17, "NXTTMFC_BAD_OPT_LEN"),
    (18, "NXTTMFC_BAD_FIELD_IDX"),
    (19, "NXTTMFC_TABLE_FULL"),
    (20, "NXTTMFC_ALREADY_MAPPED"),
    (21, "NXTTMFC_DUP_ENTRY"),
    (34, "NXR_NOT_SUPPORTED"),
    (35, "NXR_STALE"),
    (36, "NXST_NOT_CONFIGURED"),
    (37, "NXFMFC_INVALID_TLV_FIELD"),
    (38, "NXTTMFC_INVALID_TLV_DEL"),
    (39, "NXBAC_BAD_HEADER_TYPE"),
    (40, "NXBAC_UNKNOWN_ED_PROP"),
    (41, "NXBAC_BAD_ED_PROP"),
    (42, "NXBAC_CT_DATAPATH_SUPPORT"),
    (43, "NXBMC_CT_DATAPATH_SUPPORT"),
    (44, "NXTFFC_DUP_TABLE"),
];
const ONF_CODES: &[(u16, &str)] = &[
    (2300, "OFPBFC_UNKNOWN"),
    (2301, "OFPBFC_EPERM"),
    (2302, "OFPBFC_BAD_ID"),
    (2303, "OFPBFC_BUNDLE_EXIST"),
    (2304, "OFPBFC_BUNDLE_CLOSED"),
    (2305, "OFPBFC_OUT_OF_BUNDLES"),
    (2306, "OFPBFC_BAD_TYPE"),
    (2307, "OFPBFC_BAD_FLAGS"),
    (2308, "OFPBFC_MSG_BAD_LEN"),
    (2309, "OFPBFC_MSG_BAD_XID"),
    (2310, "OFPBFC_MSG_UNSUP"),
    (2311, "OFPBFC_MSG_CONFLICT"),
    (2312, "OFPBFC_MSG_TOO_MANY"),
    (2313, "OFPBFC_MSG_FAILED"),
    (2314, "OFPBFC_TIMEOUT"),
    (2315, "OFPBFC_BUNDLE_IN_PROGRESS"),
    (2360, "OFPFMFC_BAD_PRIORITY"),
    (2370, "OFPACFC_INVALID"),
    (2371, "OFPACFC_UNSUPPORTED"),
    (2372, "OFPACFC_EPERM"),
    (2640, "OFPBRC_MULTIPART_REQUEST_TIMEOUT"),
    (2641, "OFPBRC_MULTIPART_REPLY_TIMEOUT"),
    (4250, "OFPBAC_BAD_SET_MASK"),
    (4443, "OFPBPC_TOO_MANY"),
    (4444, "OFPBPC_DUP_TYPE"),
    (4445, "OFPBPC_BAD_EXPERIMENTER"),
    (4446, "OFPBPC_BAD_EXP_TYPE"),
    (4447, "OFPBPC_BAD_EXP_VALUE"),
    (4448, "OFPBPC_EPERM"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let e = ErrorMsg {
            ty: 2,
            code: 4,
            experimenter: 0,
            data: vec![],
        };
        assert_eq!(
            (e.type_name(), e.name()),
            (Some("OFPET_BAD_ACTION"), Some("OFPBAC_BAD_OUT_PORT"))
        );
        let nx = ErrorMsg {
            ty: 0xffff,
            code: 15,
            experimenter: crate::action::NX_VENDOR_ID,
            data: vec![],
        };
        assert_eq!(nx.name(), Some("NXBAC_BAD_CONJUNCTION"));
        let onf = ErrorMsg {
            ty: 0xffff,
            code: 2313,
            experimenter: crate::action::ONF_VENDOR_ID,
            data: vec![],
        };
        assert_eq!(onf.name(), Some("OFPBFC_MSG_FAILED"));
        assert_eq!(
            ErrorMsg {
                ty: 99,
                code: 0,
                experimenter: 0,
                data: vec![]
            }
            .name(),
            None
        );
    }

    #[test]
    fn experimenter_error_bytes() {
        let e = ErrorMsg {
            ty: 0xffff,
            code: 15,
            experimenter: 0x2320,
            data: vec![9],
        };
        let mut v = Vec::new();
        e.encode(&mut v);
        assert_eq!(v, [0xff, 0xff, 0, 15, 0, 0, 0x23, 0x20, 9]);
        assert_eq!(ErrorMsg::decode(&mut Reader::new(&v, "error")), Ok(e));
    }
}
