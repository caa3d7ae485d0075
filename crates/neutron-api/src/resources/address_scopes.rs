//! `/v2.0/address-scopes` (`address-scope`): scopes of one IP version in which subnet
//! pools have unique prefixes (checked when a pool joins one, in `subnet_pools`). As in
//! Neutron they have a name and a project, but no description, tags or timestamps.

use super::Resource;
use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::standard::Standard;
use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use model::{AddressScope, Meta, SubnetPool};
use serde_json::{Map, Value, json};

impl Resource for AddressScope {
    const COLLECTION: &'static str = "address_scopes";
    const RESOURCE: &'static str = "address_scope";
    const STANDARD: Standard = Standard {
        name: true,
        tags: false,
        described: false,
    };
    const OWN_ATTRS: &'static [&'static str] = &["ip_version", "shared"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("ip_version".into(), json!(self.ip_version));
        m.insert("shared".into(), json!(self.shared));
    }

    /// A shared scope is every project's to read (and to see its pools' scope).
    async fn targets(_api: &Api, _ctx: &Context, objs: &[AddressScope]) -> ApiResult<Vec<Target>> {
        Ok(objs
            .iter()
            .map(|s| Target {
                shared: s.shared,
                ..Target::project(&s.meta.project_id)
            })
            .collect())
    }
}

/// A POST's own attributes.
pub struct NewScope {
    ip_version: u8,
    shared: bool,
}

impl Lifecycle for AddressScope {
    type Create = NewScope;
    /// `shared`, if given.
    type Update = Option<bool>;
    const PUT_READ_ONLY: &'static [&'static str] = &["ip_version"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewScope> {
        let ip_version = match attrs.u32("ip_version")? {
            Some(4) => 4,
            Some(6) => 6,
            Some(v) => return Err(bad_attr("ip_version", format!("'{v}' is not in [4, 6]"))),
            None => return Err(bad_attr("ip_version", "ip_version is required")),
        };
        Ok(NewScope {
            ip_version,
            shared: attrs.bool("shared")?.unwrap_or(false),
        })
    }

    async fn plan_create(
        _api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewScope,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<AddressScope> {
        Ok(AddressScope {
            meta,
            ip_version: req.ip_version,
            shared: req.shared,
            deleting: false,
        })
    }

    fn parse_update(
        _ctx: &Context,
        scope: &AddressScope,
        attrs: &mut Attrs,
    ) -> ApiResult<Option<bool>> {
        let shared = attrs.bool("shared")?;
        if scope.shared && shared == Some(false) {
            return Err(ApiError::bad_request(
                "AddressScopeUpdateError",
                format!(
                    "Unable to update address scope {} : Shared address scope can't be unshared.",
                    scope.meta.id
                ),
            ));
        }
        Ok(shared)
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        scope: &mut AddressScope,
        shared: Option<bool>,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        scope.shared = shared.unwrap_or(scope.shared);
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    /// Refused while a pool is in the scope: pools joining it write the scope, so once it
    /// is marked none can join unseen.
    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        scope: &AddressScope,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let id = &scope.meta.id;
        let pools = api.db.all::<SubnetPool>().await?;
        if pools
            .iter()
            .any(|(p, _)| p.address_scope_id.as_ref() == Some(id))
        {
            return Err(ApiError::conflict(
                "AddressScopeInUse",
                format!(
                    "Unable to complete operation on address scope {id}. There are one or more subnet pools in use on the address scope."
                ),
            ));
        }
        Ok(())
    }
}
