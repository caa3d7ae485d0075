//! OVS bundles for OpenFlow 1.3: ONF experimenter messages 2300 (control) and 2301 (add).
//!
//! OpenFlow 1.4 made bundles standard; OVS accepts the same bodies in OpenFlow 1.3 behind
//! the ONF experimenter id. A bundle-add carries a whole message whose xid equals the outer
//! xid.

use crate::buf::{Reader, put_u16, put_u32};
use crate::error::Result;

/// ONF experimenter type of bundle control.
pub const ONFT_BUNDLE_CONTROL: u32 = 2300;
/// ONF experimenter type of bundle add.
pub const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;

/// Bundle flags.
pub mod bundle_flags {
    /// Apply all or nothing.
    pub const ATOMIC: u16 = 1;
    /// Apply in order.
    pub const ORDERED: u16 = 2;
}

/// Bundle control type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleCtrlType {
    /// Open a bundle.
    OpenRequest,
    /// Reply to open.
    OpenReply,
    /// Close a bundle.
    CloseRequest,
    /// Reply to close.
    CloseReply,
    /// Commit.
    CommitRequest,
    /// Reply to commit.
    CommitReply,
    /// Discard.
    DiscardRequest,
    /// Reply to discard.
    DiscardReply,
    /// Another value.
    Other(u16),
}

impl BundleCtrlType {
    fn to_u16(self) -> u16 {
        use BundleCtrlType::*;
        match self {
            OpenRequest => 0,
            OpenReply => 1,
            CloseRequest => 2,
            CloseReply => 3,
            CommitRequest => 4,
            CommitReply => 5,
            DiscardRequest => 6,
            DiscardReply => 7,
            Other(v) => v,
        }
    }

    fn from_u16(v: u16) -> Self {
        use BundleCtrlType::*;
        match v {
            0 => OpenRequest,
            1 => OpenReply,
            2 => CloseRequest,
            3 => CloseReply,
            4 => CommitRequest,
            5 => CommitReply,
            6 => DiscardRequest,
            7 => DiscardReply,
            v => Other(v),
        }
    }
}

/// Bundle control message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleCtrl {
    /// Bundle id.
    pub bundle_id: u32,
    /// Control type.
    pub ty: BundleCtrlType,
    /// [`bundle_flags`] bits.
    pub flags: u16,
    /// Raw properties.
    pub properties: Vec<u8>,
}

impl BundleCtrl {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.bundle_id);
        put_u16(out, self.ty.to_u16());
        put_u16(out, self.flags);
        out.extend_from_slice(&self.properties);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(BundleCtrl {
            bundle_id: r.u32()?,
            ty: BundleCtrlType::from_u16(r.u16()?),
            flags: r.u16()?,
            properties: r.take_rest().to_vec(),
        })
    }
}
