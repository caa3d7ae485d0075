//! One OpenFlow session with `br-int`: the OpenFlow 1.3 handshake, reading the installed
//! flows, groups and meters back, and committing flow-mods and group-mods atomically in a
//! bundle (meter-mods around it: OVS does not take them in bundles). Messages the
//! switch sends unasked (packet-ins, port status) while a request waits are kept for the
//! runtime to take.

use crate::reconcile::{FlowBody, FlowKey, FlowTable, GroupBody, GroupDiff, GroupTable, MeterBody};
use openflow::bundle::{BundleCtrl, BundleCtrlType, bundle_flags};
use openflow::errors::ErrorMsg;
use openflow::flow::{FlowMod, MeterMod, MeterModCommand};
use openflow::multipart::{FlowStatsRequest, MultipartReply, MultipartRequest, OFPMPF_REPLY_MORE};
use openflow::switch::{Hello, SwitchConfig};
use openflow::{FrameReader, Message, XidAllocator};
use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a request may wait for its answer before the session is declared dead.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("switch connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("OpenFlow protocol: {0}")]
    Protocol(#[from] openflow::Error),
    #[error("the switch refused: {}", describe(.0))]
    Refused(ErrorMsg),
    /// A bundle was refused: these of its messages, each for its reason. The bundle was
    /// discarded (nothing of it applied).
    #[error("the switch refused {} message(s) of a bundle, the first: {}", .0.len(), .0.first().map(|r| describe(&r.error)).unwrap_or_default())]
    BundleRefused(Vec<Refusal>),
    #[error("the switch does not speak OpenFlow 1.3")]
    Version,
    #[error("no answer from the switch within {0:?}")]
    Timeout(Duration),
}

impl SwitchError {
    /// True when the switch no longer holds the bundle being sent (it discarded it after
    /// its idle timeout, e.g. while this process was stopped): nothing of it was applied,
    /// so reading the switch back and comparing again recovers.
    pub fn bundle_lost(&self) -> bool {
        matches!(self, SwitchError::Refused(e) if matches!(
            e.name(),
            Some("OFPBFC_BAD_ID" | "OFPBFC_TIMEOUT" | "OFPBFC_BUNDLE_CLOSED")
        ))
    }
}

fn describe(e: &ErrorMsg) -> String {
    format!(
        "{} {}",
        e.type_name().unwrap_or("?"),
        e.name().unwrap_or("?")
    )
}

pub type Result<T> = std::result::Result<T, SwitchError>;

/// One message of a bundle that the switch refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub what: Refused,
    pub error: ErrorMsg,
}

/// Which message of a commit was refused. A flow-mod by its position among the commit's
/// flow-mods: they are made one at a time as they are sent and not kept, and the one who
/// made the commit knows what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The n-th flow-mod (from 0).
    Flow(usize),
    /// The group-mod of this group.
    Group(u32),
}

/// Messages the switch sends on its own, kept for the runtime.
fn is_async(m: &Message) -> bool {
    matches!(
        m,
        Message::PacketIn(_)
            | Message::PacketIn2(_)
            | Message::PortStatus(_)
            | Message::FlowRemoved(_)
    )
}

/// An OpenFlow session over any byte stream (a unix or TCP socket).
pub struct Session<S> {
    stream: S,
    frames: FrameReader,
    xids: XidAllocator,
    /// Asynchronous messages received while waiting for a reply.
    pending: VecDeque<(u32, Message)>,
    next_bundle: u32,
    /// The read buffer, on the heap: kept inside every pending future it would make each
    /// one 64 KiB larger.
    read_buf: Box<[u8]>,
    /// Messages encoded and not yet written: a bundle goes out in few large writes.
    out: Vec<u8>,
}

/// How much of a bundle is written at a time.
const OUT_CHUNK: usize = 256 * 1024;

impl Session<tokio::net::UnixStream> {
    /// Connects to a unix socket (e.g. the bridge's `br-int.mgmt`) and does the handshake.
    pub async fn connect_unix(path: &Path) -> Result<Self> {
        Session::handshake(tokio::net::UnixStream::connect(path).await?).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Hello (OpenFlow 1.3), then asks for whole packets on packet-in: a service
    /// connection gets no asynchronous messages until `miss_send_len` is set.
    pub async fn handshake(stream: S) -> Result<Self> {
        let mut s = Session {
            stream,
            frames: FrameReader::new(),
            xids: XidAllocator::new(),
            pending: VecDeque::new(),
            next_bundle: 1,
            read_buf: vec![0u8; 65536].into_boxed_slice(),
            out: Vec::new(),
        };
        s.send(&Message::Hello(Hello::of13())).await?;
        match s.recv().await? {
            (_, Message::Hello(h)) if h.supports(4) => {}
            _ => return Err(SwitchError::Version),
        }
        s.send(&Message::SetConfig(SwitchConfig {
            flags: 0,
            miss_send_len: 0xffff,
        }))
        .await?;
        s.barrier().await?;
        Ok(s)
    }

    async fn send(&mut self, m: &Message) -> Result<u32> {
        let xid = self.queue(m)?;
        self.flush_out().await?;
        Ok(xid)
    }

    /// Encodes `m` behind what is queued, to go out with the next [`Session::flush_out`].
    fn queue(&mut self, m: &Message) -> Result<u32> {
        let xid = self.xids.next_xid();
        self.out.extend_from_slice(&m.to_vec(xid)?);
        Ok(xid)
    }

    /// Writes everything queued.
    async fn flush_out(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// The next message from the switch (echo requests are answered here); with a
    /// timeout, silence that long is an error.
    async fn next_message(&mut self, timeout: Option<Duration>) -> Result<(u32, Message)> {
        loop {
            if let Some(frame) = self.frames.next_frame()? {
                let (xid, m) = Message::decode(frame)?;
                if let Message::EchoRequest(data) = &m {
                    let reply = Message::EchoReply(data.clone()).to_vec(xid)?;
                    self.stream.write_all(&reply).await?;
                    continue;
                }
                return Ok((xid, m));
            }
            // Reading is cancel-safe: a read that did not complete consumed nothing.
            let n = match timeout {
                Some(t) => tokio::time::timeout(t, self.stream.read(&mut self.read_buf))
                    .await
                    .map_err(|_| SwitchError::Timeout(t))??,
                None => self.stream.read(&mut self.read_buf).await?,
            };
            if n == 0 {
                return Err(SwitchError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.frames
                .extend(self.read_buf.get(..n).unwrap_or_default());
        }
    }

    async fn recv(&mut self) -> Result<(u32, Message)> {
        self.next_message(Some(REPLY_TIMEOUT)).await
    }

    /// Waits for what the switch sends on its own (packet-ins, port status); fails when
    /// the connection is lost, which is how a restarted ovs-vswitchd is noticed.
    pub async fn next_event(&mut self) -> Result<(u32, Message)> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(m);
        }
        self.next_message(None).await
    }

    /// Waits for the answers to `xid`: errors for it fail the request; messages that answer
    /// nothing of ours are kept in `pending`.
    async fn answer(&mut self, xid: u32, done: impl Fn(&Message) -> bool) -> Result<Message> {
        loop {
            let (x, m) = self.recv().await?;
            match m {
                Message::Error(e) if x == xid => return Err(SwitchError::Refused(e)),
                m if x == xid && done(&m) => return Ok(m),
                m if is_async(&m) => self.pending.push_back((x, m)),
                other => tracing::debug!(xid = x, "unexpected message while waiting: {other:?}"),
            }
        }
    }

    /// Sends a barrier and waits for it: everything sent before is done.
    pub async fn barrier(&mut self) -> Result<()> {
        let xid = self.send(&Message::BarrierRequest).await?;
        self.answer(xid, |m| *m == Message::BarrierReply)
            .await
            .map(|_| ())
    }

    /// Sends a multipart request and collects every reply body, following
    /// `OFPMPF_REPLY_MORE` to the last part.
    async fn multipart(&mut self, body: MultipartRequest) -> Result<Vec<MultipartReply>> {
        let xid = self
            .send(&Message::MultipartRequest { flags: 0, body })
            .await?;
        let mut out = Vec::new();
        loop {
            let m = self
                .answer(xid, |m| matches!(m, Message::MultipartReply { .. }))
                .await?;
            let Message::MultipartReply { flags, body } = m else {
                continue;
            };
            out.push(body);
            if flags & OFPMPF_REPLY_MORE == 0 {
                return Ok(out);
            }
        }
    }

    /// Every flow installed on the switch.
    pub async fn dump_flows(&mut self) -> Result<FlowTable> {
        let mut table = FlowTable::new();
        let parts = self
            .multipart(MultipartRequest::Flow(FlowStatsRequest::default()))
            .await?;
        for part in parts {
            if let MultipartReply::Flow(stats) = part {
                for f in stats {
                    let key = FlowKey::new(f.table_id, f.priority, f.match_);
                    table.insert(key, FlowBody::new(f.cookie, &f.instructions));
                }
            }
        }
        Ok(table)
    }

    /// The flows (with their counters) that `req` selects.
    pub async fn flow_stats(
        &mut self,
        req: FlowStatsRequest,
    ) -> Result<Vec<openflow::multipart::FlowStats>> {
        let parts = self.multipart(MultipartRequest::Flow(req)).await?;
        Ok(parts
            .into_iter()
            .flat_map(|part| match part {
                MultipartReply::Flow(stats) => stats,
                _ => Vec::new(),
            })
            .collect())
    }

    /// Every group installed on the switch, and every meter (the third reconciled kind).
    pub async fn dump_groups(&mut self) -> Result<GroupTable> {
        let mut table = GroupTable::default();
        for part in self.multipart(MultipartRequest::GroupDesc).await? {
            if let MultipartReply::GroupDesc(groups) = part {
                for g in groups {
                    let body = GroupBody {
                        group_type: g.group_type,
                        buckets: g.buckets,
                    };
                    table.insert(g.group_id, body);
                }
            }
        }
        let all = openflow::meter::OFPM_ALL;
        for part in self.multipart(MultipartRequest::MeterConfig(all)).await? {
            if let MultipartReply::MeterConfig(meters) = part {
                for c in meters {
                    let body = MeterBody {
                        flags: c.flags,
                        bands: c.bands,
                    };
                    table.insert_meter(c.meter_id, body);
                }
            }
        }
        Ok(table)
    }

    /// Every meter's counters (`dragonflow port` and tests read them).
    pub async fn meter_stats(&mut self) -> Result<Vec<openflow::meter::MeterStats>> {
        let all = openflow::meter::OFPM_ALL;
        let parts = self.multipart(MultipartRequest::MeterStats(all)).await?;
        Ok(parts
            .into_iter()
            .flat_map(|part| match part {
                MultipartReply::MeterStats(v) => v,
                _ => Vec::new(),
            })
            .collect())
    }

    /// Sends meter-mods outside any bundle (OVS 3.1 does not bundle them) and waits for
    /// them behind a barrier. An add of a meter that exists (a commit made again after a
    /// refused bundle: its meters went in) is sent again as a modify; a delete of a
    /// missing one is nothing to do. Any other refusal is logged: the flows naming the
    /// meter are then refused in the bundle, and their owner is left out as for any
    /// refused flow.
    async fn meter_mods(&mut self, mods: &[MeterMod]) -> Result<()> {
        let mut again = Vec::new();
        let mut sent = std::collections::HashMap::new();
        for m in mods {
            sent.insert(self.send(&Message::MeterMod(m.clone())).await?, m);
        }
        let barrier = self.send(&Message::BarrierRequest).await?;
        loop {
            match self.recv().await? {
                (x, Message::BarrierReply) if x == barrier => break,
                (x, Message::Error(error)) if sent.contains_key(&x) => {
                    let m = sent[&x];
                    match (m.command, error.name()) {
                        (MeterModCommand::Add, Some("OFPMMFC_METER_EXISTS")) => {
                            again.push(MeterMod {
                                command: MeterModCommand::Modify,
                                ..m.clone()
                            })
                        }
                        (MeterModCommand::Delete, Some("OFPMMFC_UNKNOWN_METER")) => {}
                        _ => tracing::warn!(
                            meter = m.meter_id,
                            command = ?m.command,
                            "the switch refused a meter-mod: {}",
                            describe(&error)
                        ),
                    }
                }
                (x, m) if is_async(&m) => self.pending.push_back((x, m)),
                (x, other) => {
                    tracing::debug!(xid = x, "unexpected message after meter-mods: {other:?}")
                }
            }
        }
        if !again.is_empty() {
            Box::pin(self.meter_mods(&again)).await?;
        }
        Ok(())
    }

    /// Applies `mods` atomically: all of them or, if the switch refuses any, none
    /// ([`SwitchError::BundleRefused`] names each one refused).
    pub async fn commit(&mut self, mods: &[FlowMod]) -> Result<()> {
        self.commit_with_groups(&GroupDiff::default(), mods).await
    }

    /// Applies group-mods and flow-mods atomically, in the order that keeps every flow's
    /// group present: new and changed groups, then the flows, then the groups no flow
    /// uses any more.
    pub async fn commit_with_groups(&mut self, groups: &GroupDiff, mods: &[FlowMod]) -> Result<()> {
        if mods.is_empty() && groups.is_empty() {
            return Ok(());
        }
        self.commit_stream(groups, mods.iter().cloned()).await
    }

    /// [`Session::commit_with_groups`] with the flow-mods made one at a time as they are
    /// sent: a first sync of a hundred thousand flows never holds them all decoded. New
    /// and changed meters go first, outside the bundle (a meter without flows is harmless;
    /// a flow naming a missing meter is refused); meters no flow names any more go after
    /// the commit (deleting a meter deletes its flows).
    pub async fn commit_stream(
        &mut self,
        groups: &GroupDiff,
        mods: impl Iterator<Item = FlowMod>,
    ) -> Result<()> {
        if !groups.meters_before.is_empty() {
            self.meter_mods(&groups.meters_before).await?;
        }
        self.bundle(groups, mods).await?;
        if !groups.meters_after.is_empty() {
            self.meter_mods(&groups.meters_after).await?;
        }
        Ok(())
    }

    async fn bundle(
        &mut self,
        groups: &GroupDiff,
        mods: impl Iterator<Item = FlowMod>,
    ) -> Result<()> {
        let messages = groups
            .before
            .iter()
            .cloned()
            .map(Message::GroupMod)
            .chain(mods.map(Message::FlowMod))
            .chain(groups.after.iter().cloned().map(Message::GroupMod));
        let bundle_id = self.next_bundle;
        self.next_bundle = self.next_bundle.wrapping_add(1).max(1);
        let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
        let ctrl = |ty| {
            Message::BundleControl(BundleCtrl {
                bundle_id,
                ty,
                flags,
                properties: vec![],
            })
        };
        // Open, adds and a barrier go out in one write, without waiting for the open's
        // reply: on a busy switch every round trip waits for a turn of ovs-vswitchd's main
        // loop (about 20 ms on a userspace bridge of 500 ports), and the switch handles a
        // connection's messages in order anyway.
        let started = std::time::Instant::now();
        let open = self.queue(&ctrl(BundleCtrlType::OpenRequest))?;
        // Each add's xid, to what it carried: OVS answers every refused add (not only the
        // first) with an error under that add's xid.
        let mut adds = std::collections::HashMap::new();
        let mut flows = 0usize;
        for m in messages {
            let what = match &m {
                Message::GroupMod(g) => Refused::Group(g.group_id),
                _ => {
                    flows += 1;
                    Refused::Flow(flows - 1)
                }
            };
            let add = Message::BundleAdd {
                bundle_id,
                flags,
                message: Box::new(m),
            };
            adds.insert(self.queue(&add)?, what);
            if self.out.len() >= OUT_CHUNK {
                self.flush_out().await?;
            }
        }
        // OVS checks each message as it is added and leaves a refused one out of the bundle
        // (a commit would apply the rest): collect those errors first, behind a barrier.
        let barrier = self.queue(&Message::BarrierRequest)?;
        self.flush_out().await?;
        let mut refused = Vec::new();
        let mut open_error = None;
        loop {
            match self.recv().await? {
                (x, Message::BarrierReply) if x == barrier => break,
                (x, Message::BundleControl(c))
                    if x == open && c.ty == BundleCtrlType::OpenReply => {}
                (x, Message::Error(error)) if x == open => open_error = Some(error),
                (x, Message::Error(error)) if adds.contains_key(&x) => {
                    if let Some(what) = adds.remove(&x) {
                        refused.push(Refusal { what, error });
                    }
                }
                (x, m) if is_async(&m) => self.pending.push_back((x, m)),
                (x, other) => tracing::debug!(xid = x, "unexpected message in a bundle: {other:?}"),
            }
        }
        if let Some(error) = open_error {
            return Err(SwitchError::Refused(error));
        }
        if !refused.is_empty() {
            let discard = self.send(&ctrl(BundleCtrlType::DiscardRequest)).await?;
            let _ = self
                .answer(discard, |m| matches!(m, Message::BundleControl(c) if c.ty == BundleCtrlType::DiscardReply))
                .await;
            return Err(SwitchError::BundleRefused(refused));
        }
        let checked = started.elapsed();
        let commit = self.send(&ctrl(BundleCtrlType::CommitRequest)).await?;
        self.answer(
            commit,
            |m| matches!(m, Message::BundleControl(c) if c.ty == BundleCtrlType::CommitReply),
        )
        .await?;
        tracing::debug!(
            checked_ms = checked.as_secs_f64() * 1e3,
            committed_ms = started.elapsed().as_secs_f64() * 1e3,
            "bundle committed"
        );
        Ok(())
    }

    /// Sends a packet out (an answer the controller made); no reply is awaited.
    pub async fn packet_out(&mut self, p: openflow::packet::PacketOut) -> Result<()> {
        self.send(&Message::PacketOut(p)).await.map(|_| ())
    }

    /// Sends a flow-mod outside the reconciled table (a short-lived flow with a timeout);
    /// an error for it arrives later and is logged, not awaited.
    pub async fn flow_mod(&mut self, m: FlowMod) -> Result<()> {
        self.send(&Message::FlowMod(m)).await.map(|_| ())
    }

    /// Sends a conntrack flush (NXT_CT_FLUSH or NXT_CT_FLUSH_ZONE); an error for it arrives
    /// later and is logged, not awaited.
    pub async fn ct_flush(&mut self, m: Message) -> Result<()> {
        self.send(&m).await.map(|_| ())
    }

    /// Takes the asynchronous messages received so far.
    pub fn take_pending(&mut self) -> Vec<(u32, Message)> {
        self.pending.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onf(code: u16) -> SwitchError {
        SwitchError::Refused(ErrorMsg {
            ty: 0xffff,
            code,
            experimenter: openflow::action::ONF_VENDOR_ID,
            data: Vec::new(),
        })
    }

    #[test]
    fn a_dropped_bundle_is_recovered_and_a_refused_flow_is_not() {
        // OFPBFC_BAD_ID, OFPBFC_TIMEOUT: the switch no longer holds the bundle.
        assert!(onf(2302).bundle_lost());
        assert!(onf(2314).bundle_lost());
        // OFPBFC_MSG_FAILED: its contents were refused (`BundleRefused` names them).
        assert!(!onf(2313).bundle_lost());
        assert!(!SwitchError::Timeout(Duration::from_secs(1)).bundle_lost());
    }
}
