//! Meters as the switch reports them: meter configurations (`OFPMP_METER_CONFIG`, what a
//! controller reads back at start to compare with what it wants) and meter statistics
//! (`OFPMP_METER`, packets and bytes in and per band), with the band codec that
//! meter-mods share.

use crate::buf::{Reader, patch_u16, put_u8, put_u16, put_u32, put_u64, put_zeros};
use crate::error::{Error, Result};
use crate::flow::MeterBand;

/// `OFPM_ALL`: every meter, in a meter config or stats request.
pub const OFPM_ALL: u32 = 0xffff_ffff;

const BAND_DROP: u16 = 1;
const BAND_DSCP_REMARK: u16 = 2;
const BAND_LEN: u16 = 16;

/// Encodes one band (16 bytes).
pub(crate) fn encode_band(b: &MeterBand, out: &mut Vec<u8>) {
    let (ty, rate, burst, prec) = match *b {
        MeterBand::Drop { rate, burst } => (BAND_DROP, rate, burst, 0),
        MeterBand::DscpRemark {
            rate,
            burst,
            prec_level,
        } => (BAND_DSCP_REMARK, rate, burst, prec_level),
    };
    put_u16(out, ty);
    put_u16(out, BAND_LEN);
    put_u32(out, rate);
    put_u32(out, burst);
    put_u8(out, prec);
    put_zeros(out, 3);
}

/// Decodes one band; other band types (experimenter) are refused.
pub(crate) fn decode_band(r: &mut Reader<'_>) -> Result<MeterBand> {
    let ty = r.u16()?;
    if r.u16()? != BAND_LEN {
        return Err(Error::BadLength("meter band"));
    }
    let rate = r.u32()?;
    let burst = r.u32()?;
    let prec_level = r.u8()?;
    r.skip(3)?;
    match ty {
        BAND_DROP => Ok(MeterBand::Drop { rate, burst }),
        BAND_DSCP_REMARK => Ok(MeterBand::DscpRemark {
            rate,
            burst,
            prec_level,
        }),
        _ => Err(Error::Unsupported("meter band type")),
    }
}

/// One meter's configuration (`ofp_meter_config`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterConfig {
    /// [`crate::flow::meter_flags`] bits.
    pub flags: u16,
    /// Meter id.
    pub meter_id: u32,
    /// Bands.
    pub bands: Vec<MeterBand>,
}

impl MeterConfig {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u16(out, self.flags);
        put_u32(out, self.meter_id);
        for b in &self.bands {
            encode_band(b, out);
        }
        let len = out.len() - start;
        patch_u16(out, start, crate::buf::field_len(len));
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let len = usize::from(r.peek_u16()?);
        if len < 8 || !(len - 8).is_multiple_of(usize::from(BAND_LEN)) {
            return Err(Error::BadLength("meter config"));
        }
        let mut b = Reader::new(r.take(len)?, "meter config");
        b.skip(2)?;
        let flags = b.u16()?;
        let meter_id = b.u32()?;
        let mut bands = Vec::new();
        while !b.is_empty() {
            bands.push(decode_band(&mut b)?);
        }
        Ok(MeterConfig {
            flags,
            meter_id,
            bands,
        })
    }
}

/// One band's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BandStats {
    /// Packets over the band's rate (dropped, for a drop band).
    pub packet_count: u64,
    /// Their bytes.
    pub byte_count: u64,
}

/// One meter's statistics (`ofp_meter_stats`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MeterStats {
    /// Meter id.
    pub meter_id: u32,
    /// Flows that use the meter.
    pub flow_count: u32,
    /// Packets that went into the meter.
    pub packet_in_count: u64,
    /// Their bytes.
    pub byte_in_count: u64,
    /// Seconds the meter has existed.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Counters of each band, in the meter's band order.
    pub bands: Vec<BandStats>,
}

const STATS_HEADER: usize = 40;

impl MeterStats {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.meter_id);
        let len = STATS_HEADER + 16 * self.bands.len();
        put_u16(out, crate::buf::field_len(len));
        put_zeros(out, 6);
        put_u32(out, self.flow_count);
        put_u64(out, self.packet_in_count);
        put_u64(out, self.byte_in_count);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        for b in &self.bands {
            put_u64(out, b.packet_count);
            put_u64(out, b.byte_count);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let head = r.rest();
        let len = match head.get(4..6) {
            Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
            _ => return Err(Error::BadLength("meter stats")),
        };
        if len < STATS_HEADER || !(len - STATS_HEADER).is_multiple_of(16) {
            return Err(Error::BadLength("meter stats"));
        }
        let mut b = Reader::new(r.take(len)?, "meter stats");
        let meter_id = b.u32()?;
        b.skip(8)?;
        let mut s = MeterStats {
            meter_id,
            flow_count: b.u32()?,
            packet_in_count: b.u64()?,
            byte_in_count: b.u64()?,
            duration_sec: b.u32()?,
            duration_nsec: b.u32()?,
            bands: Vec::new(),
        };
        while !b.is_empty() {
            s.bands.push(BandStats {
                packet_count: b.u64()?,
                byte_count: b.u64()?,
            });
        }
        Ok(s)
    }
}

/// Decodes a meter config reply body (the entries after the multipart header).
pub fn decode_configs(buf: &[u8]) -> Result<Vec<MeterConfig>> {
    let mut r = Reader::new(buf, "meter config reply");
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(MeterConfig::decode(&mut r)?);
    }
    Ok(v)
}

/// Decodes a meter stats reply body.
pub fn decode_stats(buf: &[u8]) -> Result<Vec<MeterStats>> {
    let mut r = Reader::new(buf, "meter stats reply");
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(MeterStats::decode(&mut r)?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::meter_flags;

    #[test]
    fn config_round_trips() {
        let c = MeterConfig {
            flags: meter_flags::KBPS | meter_flags::BURST | meter_flags::STATS,
            meter_id: 7,
            bands: vec![MeterBand::Drop {
                rate: 10_000,
                burst: 8_000,
            }],
        };
        let mut out = Vec::new();
        c.encode(&mut out);
        assert_eq!(out.len(), 24);
        assert_eq!(&out[..8], &[0, 24, 0, 13, 0, 0, 0, 7]);
        assert_eq!(decode_configs(&out).unwrap(), vec![c]);
    }

    #[test]
    fn stats_round_trip() {
        let s = MeterStats {
            meter_id: 3,
            flow_count: 1,
            packet_in_count: 100,
            byte_in_count: 150_000,
            duration_sec: 9,
            duration_nsec: 5,
            bands: vec![BandStats {
                packet_count: 4,
                byte_count: 6000,
            }],
        };
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(out.len(), 56);
        assert_eq!(decode_stats(&out).unwrap(), vec![s]);
    }

    #[test]
    fn short_and_odd_lengths_are_errors() {
        assert!(decode_configs(&[0, 7, 0, 0, 0, 0, 0, 1]).is_err());
        assert!(decode_configs(&[0, 24, 0, 0]).is_err());
        assert!(decode_stats(&[0; 20]).is_err());
        let mut bad = vec![0u8; 40];
        bad[5] = 41;
        assert!(decode_stats(&bad).is_err());
    }
}
