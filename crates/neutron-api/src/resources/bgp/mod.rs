//! neutron-dynamic-routing: `/v2.0/bgp-speakers` (`bgp_speaker`) and `/v2.0/bgp-peers`
//! (`bgp_peer`), extensions `bgp` and `bgp_4byte_asn`. Both are the admin's, with a name
//! and a project and no other standard attribute, as upstream. The speaker's `peers` and
//! `networks` change only through its actions (`actions.rs`); what it advertises is
//! `model::bgp::advertised_routes`, the same function the speaker process runs.

pub mod actions;
mod peers;

use super::Resource;
use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::standard::Standard;
use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::ApiResult;
use model::{BgpSpeaker, Meta};
use serde_json::{Map, Value, json};

/// The largest AS number: 4-octet ones are accepted (`bgp_4byte_asn`).
const MAX_ASN: u64 = u32::MAX as u64;

const NO_STANDARD: Standard = Standard {
    name: true,
    tags: false,
    described: false,
};

/// Neutron's message for a required attribute left out.
fn required(attr: &str) -> crate::error::ApiError {
    crate::error::ApiError::bad_request(
        "HTTPBadRequest",
        format!("Failed to parse request. Required attribute '{attr}' not specified"),
    )
}

/// An AS number in 1..=4294967295 (neutron-lib's `type:range` messages).
fn asn(attrs: &mut Attrs, key: &str) -> ApiResult<u32> {
    let Some(v) = attrs.take(key) else {
        return Err(required(key));
    };
    let n = match &v {
        Value::Number(n) => n.as_i64().map(i128::from),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    let Some(n) = n else {
        return Err(bad_attr(key, format!("'{v}' is not an integer")));
    };
    if n < 1 {
        return Err(bad_attr(
            key,
            format!("'{n}' is too small - must be at least '1'"),
        ));
    }
    if n > i128::from(MAX_ASN) {
        return Err(bad_attr(
            key,
            format!("'{n}' is too large - must be no larger than '{MAX_ASN}'"),
        ));
    }
    Ok(n as u32)
}

impl Resource for BgpSpeaker {
    const COLLECTION: &'static str = "bgp_speakers";
    const RESOURCE: &'static str = "bgp_speaker";
    const PATH: Option<&'static str> = Some("bgp-speakers");
    const STANDARD: Standard = NO_STANDARD;
    const OWN_ATTRS: &'static [&'static str] = &[
        "local_as",
        "ip_version",
        "peers",
        "networks",
        "advertise_floating_ip_host_routes",
        "advertise_tenant_networks",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("local_as".into(), json!(self.local_as));
        m.insert("ip_version".into(), json!(self.ip_version));
        m.insert("peers".into(), json!(self.peers));
        m.insert("networks".into(), json!(self.networks));
        m.insert(
            "advertise_floating_ip_host_routes".into(),
            json!(self.advertise_floating_ip_host_routes),
        );
        m.insert(
            "advertise_tenant_networks".into(),
            json!(self.advertise_tenant_networks),
        );
    }
}

/// A POST's own attributes.
pub struct NewSpeaker {
    local_as: u32,
    ip_version: u8,
    fip_routes: bool,
    tenant_networks: bool,
}

/// A PUT's: the two switches.
pub struct SpeakerUpdate {
    fip_routes: Option<bool>,
    tenant_networks: Option<bool>,
}

impl Lifecycle for BgpSpeaker {
    type Create = NewSpeaker;
    type Update = SpeakerUpdate;
    const POST_FORBIDDEN: &'static [&'static str] = &["peers", "networks"];
    const PUT_READ_ONLY: &'static [&'static str] = &["local_as", "ip_version", "peers", "networks"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewSpeaker> {
        let local_as = asn(attrs, "local_as")?;
        let ip_version = match attrs.u32("ip_version")? {
            Some(4) => 4,
            Some(6) => 6,
            Some(v) => return Err(bad_attr("ip_version", format!("'{v}' is not in [4, 6]"))),
            None => return Err(required("ip_version")),
        };
        Ok(NewSpeaker {
            local_as,
            ip_version,
            fip_routes: attrs
                .bool("advertise_floating_ip_host_routes")?
                .unwrap_or(true),
            tenant_networks: attrs.bool("advertise_tenant_networks")?.unwrap_or(true),
        })
    }

    async fn plan_create(
        _api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewSpeaker,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<BgpSpeaker> {
        Ok(BgpSpeaker {
            meta,
            ip_version: req.ip_version,
            local_as: req.local_as,
            advertise_floating_ip_host_routes: req.fip_routes,
            advertise_tenant_networks: req.tenant_networks,
            peers: Vec::new(),
            networks: Vec::new(),
        })
    }

    fn parse_update(
        _ctx: &Context,
        _s: &BgpSpeaker,
        attrs: &mut Attrs,
    ) -> ApiResult<SpeakerUpdate> {
        Ok(SpeakerUpdate {
            fip_routes: attrs.bool("advertise_floating_ip_host_routes")?,
            tenant_networks: attrs.bool("advertise_tenant_networks")?,
        })
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        s: &mut BgpSpeaker,
        req: SpeakerUpdate,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if let Some(v) = req.fip_routes {
            s.advertise_floating_ip_host_routes = v;
        }
        if let Some(v) = req.tenant_networks {
            s.advertise_tenant_networks = v;
        }
        Ok(())
    }

    /// Its bindings go with it (upstream's cascade): nothing else refers to a speaker.
    async fn plan_delete(
        _api: &Api,
        _ctx: &Context,
        _s: &BgpSpeaker,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    fn summary(&self) -> String {
        format!("AS {} IPv{}", self.local_as, self.ip_version)
    }
}
