//! The OpenStack Networking (Neutron) API v2.0: routes, Neutron JSON ⇄ NB model, IPAM and
//! validation. The NB store is the only state; this layer is the only writer of policy.

pub mod agents;
pub mod alloc;
pub mod availability_zones;
pub mod body;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod fwaas;
pub mod ip_availability;
pub mod keystone;
pub mod limits;
pub mod listing;
pub mod metrics;
pub mod model_version;
pub mod nb_auth;
pub mod nb_lb_health;
pub mod nb_mcast;
pub mod nb_stream;
pub mod nova;
pub mod octavia;
pub mod policy;
pub mod quotas;
pub mod resources;
pub mod taas;
pub mod versions;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::routing::{get, post, put};
use std::sync::Arc;

pub use config::{ApiConfig, Settings};
pub use error::{ApiError, ApiResult};

/// Everything a request handler needs.
pub struct Api {
    pub db: db::Db,
    pub config: Settings,
    pub alloc: alloc::Allocator,
    /// Turns true when the server stops, so long-lived streams end and let it exit.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The zones with a live controller, as last read, and when
    /// ([`availability_zones::serving`]).
    pub(crate) serving_zones: std::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>,
}

impl Api {
    pub fn new(store: Arc<dyn nbdb::Store>, config: Settings) -> Arc<Api> {
        let quotas = Arc::new(quotas::Quotas::new(config.quotas));
        Arc::new(Api {
            db: db::Db { store, quotas },
            config,
            alloc: alloc::Allocator::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            serving_zones: std::sync::Mutex::new(None),
        })
    }

    /// Ends the watch streams (the server is shutting down).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Api::stop`] was called.
    pub async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// What every listener does around its routes: a Neutron error body for whatever axum
/// refuses itself, and the URL and body size limits.
fn limited(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .layer(from_fn(limits::check_url))
        .layer(map_response(limits::json_errors))
}

/// The HTTP routes of the Neutron API (never the NB store's: see [`nb_router`]).
pub fn router(api: Arc<Api>) -> Router {
    use model::{FloatingIp, Network, Port, SecurityGroup, SecurityGroupRule, Subnet};
    use resources::lifecycle::Lifecycle;
    use resources::{address_groups, routers, tags};
    /// The collection and object routes of a resource: list, create, show, update, delete.
    fn resource<T: Lifecycle>(r: Router<Arc<Api>>, path: &str) -> Router<Arc<Api>> {
        use resources::{lifecycle, list, show};
        r.route(path, get(list::<T>).post(lifecycle::create::<T>))
            .route(
                &format!("{path}/{{id}}"),
                get(show::<T>)
                    .put(lifecycle::update::<T>)
                    .delete(lifecycle::delete::<T>),
            )
    }
    let r = Router::new()
        .route("/", get(versions::versions))
        .route("/v2.0", get(versions::v2))
        .route("/v2.0/", get(versions::v2))
        .route("/v2.0/extensions", get(versions::extensions))
        .route("/v2.0/extensions/{alias}", get(versions::extension));
    let r = resource::<Network>(r, "/v2.0/networks");
    let r = resource::<Subnet>(r, "/v2.0/subnets");
    let r = resource::<Port>(r, "/v2.0/ports");
    let r = resource::<model::Router>(r, "/v2.0/routers");
    let r = resource::<FloatingIp>(r, "/v2.0/floatingips");
    let r = {
        use resources::port_forwardings as pf;
        r.route(
            "/v2.0/floatingips/{id}/port_forwardings",
            get(pf::list).post(pf::create),
        )
        .route(
            "/v2.0/floatingips/{id}/port_forwardings/{pf}",
            get(pf::show).put(pf::update).delete(pf::delete),
        )
    };
    let r = resource::<SecurityGroup>(r, "/v2.0/security-groups");
    let r = resource::<SecurityGroupRule>(r, "/v2.0/security-group-rules");
    let r = resource::<model::RbacPolicy>(r, "/v2.0/rbac-policies");
    let r = resource::<model::SubnetPool>(r, "/v2.0/subnetpools");
    let r = resource::<model::AddressScope>(r, "/v2.0/address-scopes");
    let r = resource::<model::AddressGroup>(r, "/v2.0/address-groups");
    let r = resource::<model::DefaultSecurityGroupRule>(r, "/v2.0/default-security-group-rules");
    let r = resource::<model::QosPolicy>(r, "/v2.0/qos/policies");
    let r = {
        use resources::qos::{rule_types, rules};
        r.route("/v2.0/qos/rule-types", get(rule_types::list))
            .route("/v2.0/qos/rule-types/{name}", get(rule_types::show))
            .route(
                "/v2.0/qos/policies/{id}/{rules}",
                get(rules::list).post(rules::create),
            )
            .route(
                "/v2.0/qos/policies/{id}/{rules}/{rule}",
                get(rules::show).put(rules::update).delete(rules::delete),
            )
            .route(
                "/v2.0/qos/{alias}/{rule}",
                get(rules::alias_show)
                    .put(rules::alias_update)
                    .delete(rules::alias_delete),
            )
    };
    let r = resource::<model::Trunk>(r, "/v2.0/trunks");
    let r = resource::<model::FirewallRule>(r, "/v2.0/fwaas/firewall_rules");
    let r = resource::<model::FirewallPolicy>(r, "/v2.0/fwaas/firewall_policies");
    let r = resource::<model::FirewallGroup>(r, "/v2.0/fwaas/firewall_groups");
    let r = r
        .route(
            "/v2.0/fwaas/firewall_policies/{id}/insert_rule",
            put(fwaas::policies::insert_rule),
        )
        .route(
            "/v2.0/fwaas/firewall_policies/{id}/remove_rule",
            put(fwaas::policies::remove_rule),
        );
    let r = resource::<model::BgpSpeaker>(r, "/v2.0/bgp-speakers");
    let r = resource::<model::BgpPeer>(r, "/v2.0/bgp-peers");
    let r = {
        use resources::bgp::actions as bgp;
        r.route(
            "/v2.0/bgp-speakers/{id}/add_bgp_peer",
            put(bgp::add_bgp_peer),
        )
        .route(
            "/v2.0/bgp-speakers/{id}/remove_bgp_peer",
            put(bgp::remove_bgp_peer),
        )
        .route(
            "/v2.0/bgp-speakers/{id}/add_gateway_network",
            put(bgp::add_gateway_network),
        )
        .route(
            "/v2.0/bgp-speakers/{id}/remove_gateway_network",
            put(bgp::remove_gateway_network),
        )
        .route(
            "/v2.0/bgp-speakers/{id}/get_advertised_routes",
            get(bgp::get_advertised_routes),
        )
    };
    let r = resource::<model::PortPair>(r, "/v2.0/sfc/port_pairs");
    let r = resource::<model::PortPairGroup>(r, "/v2.0/sfc/port_pair_groups");
    let r = resource::<model::FlowClassifier>(r, "/v2.0/sfc/flow_classifiers");
    let r = resource::<model::PortChain>(r, "/v2.0/sfc/port_chains");
    let r = resource::<model::TapService>(r, "/v2.0/taas/tap_services");
    let r = resource::<model::TapFlow>(r, "/v2.0/taas/tap_flows");
    let r = r
        .route(
            "/v2.0/routers/{id}/add_router_interface",
            put(routers::add_interface),
        )
        .route(
            "/v2.0/routers/{id}/remove_router_interface",
            put(routers::remove_interface),
        )
        .route(
            "/v2.0/routers/{id}/add_extraroutes",
            put(routers::add_extraroutes),
        )
        .route(
            "/v2.0/routers/{id}/remove_extraroutes",
            put(routers::remove_extraroutes),
        )
        .route(
            "/v2.0/subnetpools/{id}/add_prefixes",
            put(resources::subnet_pools::add_prefixes),
        )
        .route(
            "/v2.0/subnetpools/{id}/remove_prefixes",
            put(resources::subnet_pools::remove_prefixes),
        )
        .route(
            "/v2.0/address-groups/{id}/add_addresses",
            put(address_groups::add_addresses),
        )
        .route(
            "/v2.0/address-groups/{id}/remove_addresses",
            put(address_groups::remove_addresses),
        )
        .route(
            "/v2.0/trunks/{id}/add_subports",
            put(resources::trunks::add_subports),
        )
        .route(
            "/v2.0/trunks/{id}/remove_subports",
            put(resources::trunks::remove_subports),
        )
        .route(
            "/v2.0/trunks/{id}/get_subports",
            get(resources::trunks::get_subports),
        )
        .route(
            "/v2.0/network-ip-availabilities",
            get(ip_availability::list),
        )
        .route(
            "/v2.0/network-ip-availabilities/{id}",
            get(ip_availability::show),
        )
        .route("/v2.0/service-providers", get(versions::service_providers))
        .route("/v2.0/availability_zones", get(availability_zones::list))
        .route("/v2.0/agents", get(agents::list))
        .route(
            "/v2.0/agents/{id}",
            get(agents::show).put(agents::update).delete(agents::delete),
        )
        .route("/v2.0/quotas", get(quotas::api::list))
        .route(
            "/v2.0/quotas/{project_id}",
            get(quotas::api::show_one)
                .put(quotas::api::update)
                .delete(quotas::api::reset),
        )
        .route(
            "/v2.0/quotas/{project_id}/details",
            get(quotas::api::details),
        )
        .route(
            "/v2.0/quotas/{project_id}/default",
            get(quotas::api::defaults),
        )
        .route(
            "/v2.0/{collection}/{id}/tags",
            get(tags::get_all)
                .put(tags::replace_all)
                .delete(tags::remove_all),
        )
        .route(
            "/v2.0/{collection}/{id}/tags/{tag}",
            get(tags::check_one)
                .put(tags::add_one)
                .delete(tags::remove_one),
        )
        .fallback(versions::not_found)
        .method_not_allowed_fallback(versions::method_not_allowed)
        .with_state(api);
    limited(r)
}

/// The NB store's routes (`/nb/v1`), for hosts and tools, on a listener of their own:
/// every request, unknown paths included, needs a token of `auth`'s secret.
pub fn nb_router(api: Arc<Api>, auth: nb_auth::NbAuth) -> Router {
    let r = Router::new()
        .route("/nb/v1/revision", get(nb_stream::revision))
        .route("/nb/v1/snapshot", get(nb_stream::snapshot))
        .route("/nb/v1/watch", get(nb_stream::watch))
        .route("/nb/v1/objects/{table}/{id}", get(nb_stream::object))
        .route("/nb/v1/lookup", post(nb_stream::lookup))
        .route("/nb/v1/chassis/{name}", put(nb_stream::put_chassis))
        .route("/nb/v1/ports/{id}/binding", put(nb_stream::put_binding))
        .route("/nb/v1/bindings", put(nb_stream::put_bindings))
        .route("/nb/v1/snat/{network}", put(nb_stream::put_snat))
        .route("/nb/v1/mcast/{network}", put(nb_mcast::put_mcast))
        .route("/nb/v1/lb-health", put(nb_lb_health::put_health))
        .route("/nb/v1/agents", get(agents::beat::get))
        .route("/nb/v1/agents/{host}", put(agents::beat::put))
        .fallback(versions::not_found)
        .method_not_allowed_fallback(versions::method_not_allowed)
        .layer(from_fn_with_state(Arc::new(auth), nb_auth::authenticate))
        .with_state(api);
    limited(r)
}
