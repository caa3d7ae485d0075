//! Neutron error bodies: `{"NeutronError": {"type", "message", "detail"}}` with the status
//! Neutron gives for each kind of failure.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nbdb::StoreError;

/// An API failure, rendered as a Neutron error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Neutron's exception name, e.g. `NetworkNotFound`, `IpAddressAlreadyAllocated`.
    pub kind: String,
    pub message: String,
    /// Set when the failure is a lost compare-and-swap race: the operation is retried.
    pub retry: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind: kind.into(),
            message: message.into(),
            retry: false,
        }
    }

    /// 400 `InvalidInput`, with Neutron's wording.
    pub fn invalid(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("Invalid input for operation: {message}."),
        )
    }

    /// 400 with a specific type.
    pub fn bad_request(kind: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, kind, message)
    }

    /// 404 `<Kind>NotFound`.
    pub fn not_found(kind: &str, id: &str) -> ApiError {
        // networking-sfc's own wording ("Port Pair <id> not found.").
        let sfc = match kind {
            "PortPair" => Some("Port Pair"),
            "PortPairGroup" => Some("Port Pair Group"),
            "FlowClassifier" => Some("Flow Classifier"),
            "PortChain" => Some("Port Chain"),
            _ => None,
        };
        if let Some(noun) = sfc {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                &format!("{kind}NotFound"),
                format!("{noun} {id} not found."),
            );
        }
        // tap-as-a-service's own wording (two spaces and all).
        let taas = match kind {
            "TapService" => Some("Tap Service"),
            "TapFlow" => Some("Tap Flow"),
            _ => None,
        };
        if let Some(noun) = taas {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                &format!("{kind}NotFound"),
                format!("{noun}  {id} does not exist"),
            );
        }
        let noun = match kind {
            "FloatingIP" => "Floating IP".to_string(),
            "SecurityGroup" => "Security group".to_string(),
            "SecurityGroupRule" => "Security group rule".to_string(),
            "SubnetPool" => "Subnet pool".to_string(),
            "AddressScope" => "Address scope".to_string(),
            "AddressGroup" => "Address group".to_string(),
            "PortForwarding" => "Port Forwarding".to_string(),
            "QosPolicy" => "QoS policy".to_string(),
            "FirewallRule" => "Firewall rule".to_string(),
            "FirewallPolicy" => "Firewall policy".to_string(),
            "FirewallGroup" => "Firewall group".to_string(),
            k => k.to_string(),
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            &format!("{kind}NotFound"),
            format!("{noun} {id} could not be found."),
        )
    }

    pub fn conflict(kind: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, kind, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "PolicyNotAuthorized", message)
    }

    /// A lost race on a key: the caller retries the whole operation.
    pub fn retry(what: &str) -> ApiError {
        ApiError {
            retry: true,
            ..ApiError::new(
                StatusCode::CONFLICT,
                "ConcurrentModification",
                format!("Concurrent modification of {what}; retry the request."),
            )
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict { table, id } => ApiError::retry(&format!("{table}/{id}")),
            StoreError::OverLimit { counter } => crate::quotas::over_limit(&counter),
            StoreError::Unavailable(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!("The NB store is unavailable: {m}"),
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), kind = %self.kind, "{}", self.message);
        } else {
            tracing::info!(status = self.status.as_u16(), kind = %self.kind, "{}", self.message);
        }
        let body = serde_json::json!({
            "NeutronError": {"type": self.kind, "message": self.message, "detail": ""}
        });
        (self.status, axum::Json(body)).into_response()
    }
}
