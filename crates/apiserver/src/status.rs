//! Kubernetes `Status` error bodies, shaped byte-for-byte like the real API server's.
//!
//! Every failure the server answers goes through [`ApiError`], so that clients (kube-rs, kubectl) see the
//! same `kind`, `reason`, `details` and `message` as from a kube-apiserver. The shapes were checked against
//! `crates/apiserver/tests/data/lease-api-corpus.jsonl`, recorded from a real kube-apiserver.

use serde_json::{Value, json};

use crate::resource::ResourceType;

/// One cause inside `details.causes`, as the real server reports field-level problems.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    /// Machine-readable reason, e.g. `FieldValueInvalid`.
    pub reason: String,
    /// Human-readable message for this field.
    pub message: String,
    /// The field path, e.g. `spec.leaseDurationSeconds`; `None` leaves the key out, as the real server does.
    pub field: Option<String>,
}

/// A failed API request, rendered as a `Status` object with the matching HTTP code.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status code, repeated in the body's `code`.
    pub code: u16,
    /// The `reason` word (`NotFound`, `Conflict`, ...); empty for plain internal errors.
    pub reason: &'static str,
    /// The `message`, in the real server's wording.
    pub message: String,
    /// The `details` object, or `None` to leave it out.
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `details` naming one object of a resource (`{"name","group","kind"}`), the form most errors use.
fn details_for(rt: &ResourceType, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": rt.plural });
    if !rt.group.is_empty() {
        d["group"] = json!(rt.group);
    }
    d
}

impl ApiError {
    /// The Status body the server writes for this error.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }

    /// 404 for an object that does not exist: `leases.coordination.k8s.io "x" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", rt.qualified()),
            details: Some(details_for(rt, name)),
        }
    }

    /// 404 for a create into a namespace that does not exist.
    pub fn namespace_not_found(ns: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("namespaces \"{ns}\" not found"),
            details: Some(json!({ "name": ns, "kind": "namespaces" })),
        }
    }

    /// 404 for a path the server does not serve.
    pub fn unknown_path() -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }

    /// 409 AlreadyExists on create.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", rt.qualified()),
            details: Some(details_for(rt, name)),
        }
    }

    /// 409 Conflict: the write carried a resourceVersion that is no longer current.
    pub fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a custom explanation after `Operation cannot be fulfilled on ...:`.
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified()
            ),
            details: Some(details_for(rt, name)),
        }
    }

    /// 409 Conflict for a uid precondition that does not match, in etcd's StorageError wording.
    pub fn uid_precondition(
        rt: &ResourceType,
        ns: &str,
        name: &str,
        want: &str,
        have: &str,
    ) -> Self {
        let key = if ns.is_empty() {
            format!("/registry/{}/{name}", rt.plural)
        } else {
            format!("/registry/{}/{ns}/{name}", rt.plural)
        };
        Self::conflict(
            rt,
            name,
            &format!(
                "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {want}, UID in object meta: {have}"
            ),
        )
    }

    /// 422 Invalid with field causes. `kind_style` picks between the validation form
    /// (`Lease.coordination.k8s.io`, kind `Lease`) and the storage form (`leases.coordination.k8s.io`, kind `leases`).
    pub fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>, by_kind: bool) -> Self {
        let (qual, kind) = if by_kind {
            (rt.qualified_kind(), rt.kind)
        } else {
            (rt.qualified(), rt.plural)
        };
        let parts: Vec<String> = causes
            .iter()
            .map(|c| match &c.field {
                Some(f) => format!("{f}: {}", c.message),
                None => c.message.clone(),
            })
            .collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let mut details = json!({ "name": name, "kind": kind });
        if !rt.group.is_empty() {
            details["group"] = json!(rt.group);
        }
        details["causes"] = causes_json(&causes);
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{qual} \"{name}\" is invalid: {joined}"),
            details: Some(details),
        }
    }

    /// 400 BadRequest with no details.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 401 for a missing or unknown bearer token.
    pub fn unauthorized() -> Self {
        Self {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
            details: None,
        }
    }

    /// 403 with the RBAC authorizer's message.
    pub fn forbidden(message: String, group: &str, plural: &str, name: &str) -> Self {
        let mut d = json!({});
        if !name.is_empty() {
            d["name"] = json!(name);
        }
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        if !plural.is_empty() {
            d["kind"] = json!(plural);
        }
        Self {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some(d),
        }
    }

    /// 405 for a verb a resource does not support.
    pub fn method_not_allowed(rt: &ResourceType, verb: &str) -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "the server does not allow this method on the requested resource ({verb} {})",
                rt.plural
            ),
            details: Some(json!({})),
        }
    }

    /// 413 for a body over the server's limit.
    pub fn too_large(limit: usize) -> Self {
        Self {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!("Request entity too large: limit is {limit}"),
            details: None,
        }
    }

    /// 500 InternalError, used by fault injection and by impossible states.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code: 500,
            reason: "InternalError",
            message: format!("Internal error occurred: {message}"),
            details: Some(json!({ "causes": [{ "message": message }] })),
        }
    }

    /// 429 TooManyRequests with `retryAfterSeconds`, as API Priority and Fairness answers.
    pub fn too_many_requests(retry_after: u32) -> Self {
        Self {
            code: 429,
            reason: "TooManyRequests",
            message: "Too many requests, please try again later.".into(),
            details: Some(json!({ "retryAfterSeconds": retry_after })),
        }
    }

    /// 504 for a list at a resourceVersion the server has not reached.
    pub fn too_large_rv(requested: u64, current: u64) -> Self {
        Self {
            code: 504,
            reason: "Timeout",
            message: format!(
                "Timeout: Too large resource version: {requested}, current: {current}"
            ),
            details: Some(json!({
                "causes": [{ "reason": "ResourceVersionTooLarge", "message": "Too large resource version" }],
                "retryAfterSeconds": 1
            })),
        }
    }

    /// 410 Expired for a watch or list from a resourceVersion that fell out of the history window.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {requested} ({oldest})"),
            details: None,
        }
    }
}

/// Renders causes as the real server does: `field` is left out when there is none.
pub fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| {
                let mut o = json!({ "reason": c.reason, "message": c.message });
                if let Some(f) = &c.field {
                    o["field"] = json!(f);
                }
                o
            })
            .collect(),
    )
}

/// The Status a successful delete answers with (`status: Success`).
pub fn delete_success(rt: &ResourceType, name: &str, uid: &str) -> Value {
    let mut d = details_for(rt, name);
    d["uid"] = json!(uid);
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d })
}
