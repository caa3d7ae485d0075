//! `/v2.0/bgp-peers`: where a speaker connects. Only `name` and `password` change after
//! creation; the password is never shown (upstream's `is_visible: False`). Deleting a
//! peer takes it out of the speakers that name it, as upstream's cascade does.

use super::super::Resource;
use super::super::lifecycle::Lifecycle;
use super::super::ops::Plan;
use super::super::standard::Standard;
use super::{NO_STANDARD, asn, required};
use crate::Api;
use crate::body::{Attrs, bad_attr, parse_ip, show};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use model::{BgpPeer, BgpSpeaker, Meta};
use serde_json::{Map, Value, json};
use std::net::IpAddr;

impl Resource for BgpPeer {
    const COLLECTION: &'static str = "bgp_peers";
    const RESOURCE: &'static str = "bgp_peer";
    const PATH: Option<&'static str> = Some("bgp-peers");
    const STANDARD: Standard = NO_STANDARD;
    const OWN_ATTRS: &'static [&'static str] = &["peer_ip", "remote_as", "auth_type"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("peer_ip".into(), json!(self.peer_ip.to_string()));
        m.insert("remote_as".into(), json!(self.remote_as));
        m.insert("auth_type".into(), json!(self.auth_type));
    }
}

/// A POST's own attributes.
pub struct NewPeer {
    peer_ip: IpAddr,
    remote_as: u32,
    auth_type: String,
    password: Option<String>,
}

impl Lifecycle for BgpPeer {
    type Create = NewPeer;
    /// The new password, if given (`Some(None)`: null).
    type Update = Option<Option<String>>;
    const PUT_READ_ONLY: &'static [&'static str] = &["peer_ip", "remote_as", "auth_type"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewPeer> {
        let peer_ip = match attrs.take("peer_ip") {
            None => return Err(required("peer_ip")),
            Some(v) => parse_ip(&v).ok_or_else(|| {
                bad_attr(
                    "peer_ip",
                    format!("'{}' is not a valid IP address", show(&v)),
                )
            })?,
        };
        let remote_as = asn(attrs, "remote_as")?;
        let auth_type = match attrs.string("auth_type")? {
            None => return Err(required("auth_type")),
            Some(a) if a == "none" || a == "md5" => a,
            Some(a) => {
                return Err(bad_attr(
                    "auth_type",
                    format!("'{a}' is not in ['none', 'md5']"),
                ));
            }
        };
        let password = attrs.string_or_null("password")?.filter(|p| !p.is_empty());
        if auth_type == "md5" && password.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                "InvalidBgpPeerMd5Authentication",
                "A password must be supplied when using auth_type md5.",
            ));
        }
        Ok(NewPeer {
            peer_ip,
            remote_as,
            auth_type,
            password,
        })
    }

    async fn plan_create(
        _api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewPeer,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<BgpPeer> {
        Ok(BgpPeer {
            meta,
            peer_ip: req.peer_ip,
            remote_as: req.remote_as,
            auth_type: req.auth_type.clone(),
            password: req.password.clone(),
            deleting: false,
        })
    }

    fn parse_update(
        _ctx: &Context,
        peer: &BgpPeer,
        attrs: &mut Attrs,
    ) -> ApiResult<Option<Option<String>>> {
        if !attrs.has("password") {
            return Ok(None);
        }
        let password = attrs.string_or_null("password")?.filter(|p| !p.is_empty());
        if password.is_some() && peer.auth_type == "none" {
            return Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "BgpPeerNotAuthenticated",
                format!("BGP peer {} not authenticated.", peer.meta.id),
            ));
        }
        Ok(Some(password))
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        peer: &mut BgpPeer,
        password: Option<Option<String>>,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if let Some(p) = password {
            peer.password = p;
        }
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    /// The speakers that name it lose it in the same transaction; one marked peer cannot
    /// be added meanwhile (`actions::add_bgp_peer` refuses a peer being deleted).
    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        peer: &BgpPeer,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        for (mut s, rev) in api.db.all::<BgpSpeaker>().await? {
            if s.peers.contains(&peer.meta.id) {
                s.peers.retain(|p| p != &peer.meta.id);
                plan.txn.update(&s, rev);
            }
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!("{} AS {}", self.peer_ip, self.remote_as)
    }
}
