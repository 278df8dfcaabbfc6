//! The three requests an elector makes (GET, create, PUT), each with its own timeout and a classified answer.
//!
//! Requests go through [`kube::Client::send`] rather than [`kube::Api`] so that the answer keeps its
//! headers: a 429's delay may come in `Retry-After` as well as in `details.retryAfterSeconds`, and kube's own
//! error type drops the headers. The timeout is given per request by the caller: never longer than the time
//! left before the deadline that the answer is for.

use std::time::Duration;

use http_body_util::BodyExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Client,
    api::{GetParams, PostParams},
    core::{Request, Status},
};
use thiserror::Error;

/// Why a Lease request failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 409: the object changed since we observed it, or it already exists (create).
    #[error("Lease {name} changed since it was observed (409 Conflict): {message}")]
    Conflict {
        /// Lease name.
        name: String,
        /// The server's message.
        message: String,
    },
    /// 404: the Lease does not exist.
    #[error("Lease {name} not found (404)")]
    NotFound {
        /// Lease name.
        name: String,
    },
    /// 429: the server asks us to slow down, optionally saying for how long.
    #[error("API server throttled a request for Lease {name} (429); retry after {retry_after:?}")]
    TooManyRequests {
        /// Lease name.
        name: String,
        /// From `Retry-After` or `details.retryAfterSeconds`.
        retry_after: Option<Duration>,
    },
    /// No answer within the time the request was given.
    #[error("request for Lease {name} got no answer within {after:?}")]
    Timeout {
        /// Lease name.
        name: String,
        /// The timeout.
        after: Duration,
    },
    /// Any other error status.
    #[error("API server answered {code} for Lease {name}: {reason}: {message}")]
    Status {
        /// Lease name.
        name: String,
        /// HTTP status code.
        code: u16,
        /// Status reason.
        reason: String,
        /// Status message.
        message: String,
    },
    /// The request could not be sent or the answer not read.
    #[error("request for Lease {name} failed in transport")]
    Transport {
        /// Lease name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The request could not be built.
    #[error("could not build a request for Lease {name}")]
    Build {
        /// Lease name.
        name: String,
        /// The request-building error.
        #[source]
        source: kube::core::request::Error,
    },
    /// A 2xx answer whose body is not a Lease.
    #[error("API server answered for Lease {name} with a body that is not a Lease")]
    Decode {
        /// Lease name.
        name: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl ApiError {
    /// Whether the same request may succeed later without anything changing on our side.
    ///
    /// 400 and 422 mean our object is unacceptable and will stay so; 401 and 403 are retried, because
    /// credentials rotate and RBAC is sometimes applied after the pods start.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Status {
                code: 400 | 422,
                ..
            } | Self::Build { .. }
        )
    }

    /// The server's requested delay, for a 429.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TooManyRequests { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Lease requests for one Lease.
#[derive(Clone)]
pub(crate) struct LeaseApi {
    client: Client,
    request: Request,
    name: String,
}

impl LeaseApi {
    pub(crate) fn new(client: Client, namespace: &str, name: &str) -> Self {
        Self {
            client,
            request: Request::new(format!(
                "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
            )),
            name: name.to_owned(),
        }
    }

    /// GET the Lease; `Ok(None)` when it does not exist.
    pub(crate) async fn get(&self, timeout: Duration) -> Result<Option<Lease>, ApiError> {
        let req = self
            .request
            .get(&self.name, &GetParams::default())
            .map_err(|source| self.build_error(source))?;
        match self.send(req, timeout).await {
            Ok(lease) => Ok(Some(lease)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// POST a new Lease.
    pub(crate) async fn create(&self, lease: &Lease, timeout: Duration) -> Result<Lease, ApiError> {
        let body = self.encode(lease)?;
        let req = self
            .request
            .create(&PostParams::default(), body)
            .map_err(|source| self.build_error(source))?;
        self.send(req, timeout).await
    }

    /// PUT an observed Lease back; its uid and resourceVersion make the write conditional.
    pub(crate) async fn replace(
        &self,
        lease: &Lease,
        timeout: Duration,
    ) -> Result<Lease, ApiError> {
        let body = self.encode(lease)?;
        let req = self
            .request
            .replace(&self.name, &PostParams::default(), body)
            .map_err(|source| self.build_error(source))?;
        self.send(req, timeout).await
    }

    fn encode(&self, lease: &Lease) -> Result<Vec<u8>, ApiError> {
        serde_json::to_vec(lease).map_err(|source| ApiError::Decode {
            name: self.name.clone(),
            source,
        })
    }

    fn build_error(&self, source: kube::core::request::Error) -> ApiError {
        ApiError::Build {
            name: self.name.clone(),
            source,
        }
    }

    async fn send(
        &self,
        req: http::Request<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Lease, ApiError> {
        let name = &self.name;
        let exchange = async {
            let res = self
                .client
                .send(req.map(kube::client::Body::from))
                .await
                .map_err(|source| ApiError::Transport {
                    name: name.clone(),
                    source,
                })?;
            let (parts, body) = res.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|source| ApiError::Transport {
                    name: name.clone(),
                    source: kube::Error::Service(source.into()),
                })?
                .to_bytes();
            Ok::<_, ApiError>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ApiError::Timeout {
                name: name.clone(),
                after: timeout,
            })??;
        if parts.status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|source| ApiError::Decode {
                name: name.clone(),
                source,
            });
        }
        Err(classify(
            name,
            parts.status.as_u16(),
            &parts.headers,
            &bytes,
        ))
    }
}

/// Turns an error answer into an [`ApiError`].
fn classify(name: &str, code: u16, headers: &http::HeaderMap, body: &[u8]) -> ApiError {
    let status: Option<Status> = serde_json::from_slice(body).ok();
    let message = status.as_ref().map_or_else(
        || String::from_utf8_lossy(body).trim().to_owned(),
        |s| s.message.clone(),
    );
    let name = name.to_owned();
    match code {
        409 => ApiError::Conflict { name, message },
        404 => ApiError::NotFound { name },
        429 => {
            let from_header = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let from_details = status
                .as_ref()
                .and_then(|s| s.details.as_ref())
                .map(|d| u64::from(d.retry_after_seconds))
                .filter(|s| *s > 0);
            ApiError::TooManyRequests {
                name,
                retry_after: from_header.or(from_details).map(Duration::from_secs),
            }
        }
        _ => ApiError::Status {
            name,
            code,
            reason: status.map(|s| s.reason).unwrap_or_default(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_comes_from_the_header_or_the_details() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("3"),
        );
        let e = classify("l", 429, &h, b"");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":429,"reason":"TooManyRequests","message":"slow down","details":{"retryAfterSeconds":5}}"#;
        let e = classify("l", 429, &http::HeaderMap::new(), body);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
        let e = classify("l", 429, &http::HeaderMap::new(), b"plain");
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn statuses_are_classified() {
        let h = http::HeaderMap::new();
        assert!(matches!(
            classify("l", 409, &h, b"{}"),
            ApiError::Conflict { .. }
        ));
        assert!(matches!(
            classify("l", 404, &h, b""),
            ApiError::NotFound { .. }
        ));
        let e = classify("l", 500, &h, b"boom");
        assert!(matches!(&e, ApiError::Status { code: 500, message, .. } if message == "boom"));
        assert!(!e.is_permanent());
        assert!(classify("l", 422, &h, b"").is_permanent());
        assert!(!classify("l", 403, &h, b"").is_permanent());
    }
}
