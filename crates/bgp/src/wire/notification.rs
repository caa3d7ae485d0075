//! The NOTIFICATION message (RFC 4271 §4.5) and the error codes a malformed message from a
//! peer maps to (§6): the parser's error type is the NOTIFICATION to send back.

use std::fmt;

pub const HEADER_ERROR: u8 = 1;
pub const OPEN_ERROR: u8 = 2;
pub const UPDATE_ERROR: u8 = 3;
pub const HOLD_TIMER_EXPIRED: u8 = 4;
pub const FSM_ERROR: u8 = 5;
pub const CEASE: u8 = 6;

// Message Header Error subcodes.
pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
pub const BAD_MESSAGE_LENGTH: u8 = 2;
pub const BAD_MESSAGE_TYPE: u8 = 3;

// OPEN Message Error subcodes.
pub const UNSUPPORTED_VERSION: u8 = 1;
pub const BAD_PEER_AS: u8 = 2;
pub const BAD_BGP_IDENTIFIER: u8 = 3;
pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;

// UPDATE Message Error subcodes.
pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
pub const MISSING_WELL_KNOWN: u8 = 3;
pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
pub const INVALID_ORIGIN: u8 = 6;
pub const INVALID_NEXT_HOP: u8 = 8;
pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
pub const INVALID_NETWORK_FIELD: u8 = 10;
pub const MALFORMED_AS_PATH: u8 = 11;

// Cease subcodes (RFC 4486).
pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
pub const PEER_DECONFIGURED: u8 = 3;
pub const ADMINISTRATIVE_RESET: u8 = 4;

/// A NOTIFICATION: error code, subcode and the data that shows what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: impl Into<Vec<u8>>) -> Notification {
        Notification {
            code,
            subcode,
            data: data.into(),
        }
    }

    pub fn header(subcode: u8, data: impl Into<Vec<u8>>) -> Notification {
        Notification::new(HEADER_ERROR, subcode, data)
    }

    pub fn open(subcode: u8, data: impl Into<Vec<u8>>) -> Notification {
        Notification::new(OPEN_ERROR, subcode, data)
    }

    pub fn update(subcode: u8, data: impl Into<Vec<u8>>) -> Notification {
        Notification::new(UPDATE_ERROR, subcode, data)
    }

    pub fn cease(subcode: u8) -> Notification {
        Notification::new(CEASE, subcode, Vec::new())
    }

    pub(crate) fn parse(body: &[u8]) -> Option<Notification> {
        let (&code, rest) = body.split_first()?;
        let (&subcode, data) = rest.split_first()?;
        Some(Notification::new(code, subcode, data))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.code {
            HEADER_ERROR => "message header error",
            OPEN_ERROR => "OPEN message error",
            UPDATE_ERROR => "UPDATE message error",
            HOLD_TIMER_EXPIRED => "hold timer expired",
            FSM_ERROR => "finite state machine error",
            CEASE => "cease",
            _ => "unknown error",
        };
        let sub = match (self.code, self.subcode) {
            (HEADER_ERROR, CONNECTION_NOT_SYNCHRONIZED) => "connection not synchronized",
            (HEADER_ERROR, BAD_MESSAGE_LENGTH) => "bad message length",
            (HEADER_ERROR, BAD_MESSAGE_TYPE) => "bad message type",
            (OPEN_ERROR, UNSUPPORTED_VERSION) => "unsupported version number",
            (OPEN_ERROR, BAD_PEER_AS) => "bad peer AS",
            (OPEN_ERROR, BAD_BGP_IDENTIFIER) => "bad BGP identifier",
            (OPEN_ERROR, UNSUPPORTED_OPTIONAL_PARAMETER) => "unsupported optional parameter",
            (OPEN_ERROR, UNACCEPTABLE_HOLD_TIME) => "unacceptable hold time",
            (UPDATE_ERROR, MALFORMED_ATTRIBUTE_LIST) => "malformed attribute list",
            (UPDATE_ERROR, UNRECOGNIZED_WELL_KNOWN) => "unrecognized well-known attribute",
            (UPDATE_ERROR, MISSING_WELL_KNOWN) => "missing well-known attribute",
            (UPDATE_ERROR, ATTRIBUTE_FLAGS_ERROR) => "attribute flags error",
            (UPDATE_ERROR, ATTRIBUTE_LENGTH_ERROR) => "attribute length error",
            (UPDATE_ERROR, INVALID_ORIGIN) => "invalid ORIGIN attribute",
            (UPDATE_ERROR, INVALID_NEXT_HOP) => "invalid NEXT_HOP attribute",
            (UPDATE_ERROR, OPTIONAL_ATTRIBUTE_ERROR) => "optional attribute error",
            (UPDATE_ERROR, INVALID_NETWORK_FIELD) => "invalid network field",
            (UPDATE_ERROR, MALFORMED_AS_PATH) => "malformed AS_PATH",
            (CEASE, ADMINISTRATIVE_SHUTDOWN) => "administrative shutdown",
            (CEASE, PEER_DECONFIGURED) => "peer de-configured",
            (CEASE, ADMINISTRATIVE_RESET) => "administrative reset",
            _ => "",
        };
        write!(f, "{code} ({}/{}", self.code, self.subcode)?;
        if !sub.is_empty() {
            write!(f, " {sub}")?;
        }
        write!(f, ")")
    }
}
