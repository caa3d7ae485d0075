//! The default external network (`is_default`), in process: admin only, one at a time,
//! only an external network, and its `*` access_as_external policy cannot be removed.

mod common;

use common::{ADMIN, Cloud, OWNER as MEMBER, kind};
use serde_json::json;

#[tokio::test]
async fn one_external_network_is_the_default_and_stays_shared_with_everyone() {
    let cloud = Cloud::new();
    let app = &cloud.app;
    let mut ext = Vec::new();
    for name in ["public", "public2", "internal"] {
        let body = json!({"network": {"name": name, "router:external": name != "internal"}});
        let (st, v) = common::call(app, ADMIN, "POST", "/v2.0/networks", Some(body)).await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(v["network"]["is_default"], json!(false));
        ext.push(format!(
            "/v2.0/networks/{}",
            v["network"]["id"].as_str().unwrap()
        ));
    }
    let default = json!({"network": {"is_default": true}});
    let (st, v) = common::call(app, MEMBER, "PUT", &ext[0], Some(default.clone())).await;
    assert!(st == 403 || st == 404, "a member may not: {st} {v}");
    let (st, v) = common::call(app, ADMIN, "PUT", &ext[0], Some(default.clone())).await;
    assert_eq!(
        (st, &v["network"]["is_default"]),
        (200, &json!(true)),
        "{v}"
    );
    let (st, v) = common::call(app, ADMIN, "PUT", &ext[1], Some(default.clone())).await;
    assert_eq!((st, kind(&v)), (409, "DefaultExternalNetworkExists"), "{v}");
    // An internal network is never the default (Neutron ignores the attribute there).
    let (st, v) = common::call(app, ADMIN, "PUT", &ext[2], Some(default.clone())).await;
    assert_eq!(
        (st, &v["network"]["is_default"]),
        (200, &json!(false)),
        "{v}"
    );

    let id = ext[0].rsplit('/').next().unwrap();
    let q = format!("/v2.0/rbac-policies?object_id={id}&action=access_as_external&target_tenant=*");
    let (_, v) = common::call(app, ADMIN, "GET", &q, None).await;
    let policy = format!(
        "/v2.0/rbac-policies/{}",
        v["rbac_policies"][0]["id"].as_str().unwrap()
    );
    let (st, v) = common::call(app, ADMIN, "DELETE", &policy, None).await;
    assert_eq!((st, kind(&v)), (409, "RbacPolicyInUse"), "{v}");

    // No longer the default: the policy may go, and another network may be the default.
    let off = json!({"network": {"is_default": false}});
    assert_eq!(
        common::call(app, ADMIN, "PUT", &ext[0], Some(off)).await.0,
        200
    );
    assert_eq!(
        common::call(app, ADMIN, "DELETE", &policy, None).await.0,
        204
    );
    let (st, v) = common::call(app, ADMIN, "PUT", &ext[1], Some(default)).await;
    assert_eq!(
        (st, &v["network"]["is_default"]),
        (200, &json!(true)),
        "{v}"
    );
}
