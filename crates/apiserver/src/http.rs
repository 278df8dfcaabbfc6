//! One HTTP request, start to finish: routing, authentication, authorization, faults, the handler, counting.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::Value;

use crate::counters::ConnectionId;
use crate::rbac::{Decision, RequestAttributes, UserInfo};
use crate::request::{Ctx, Reply};
use crate::route::{self, Route};
use crate::state::Shared;
use crate::status::ApiError;
use crate::{admin, decode, discovery, objects, openapi, watch};

/// The response body: a full buffer or a watch stream. One boxed type for both, so every handler and both
/// front ends (TCP and in-process) answer with the same type.
pub type Body = BoxBody<Bytes, Infallible>;

/// The user counted for requests that are refused before any user is known (a token nobody holds), or that need
/// none (`/version`).
const ANONYMOUS: &str = crate::rbac::ANONYMOUS_USER;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A JSON response.
pub fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A Status error response (with Retry-After for 429 and 504, as the real server sends).
pub fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = json_response(err.code, &err.body());
    if let Some(secs) = err
        .details
        .as_ref()
        .and_then(|d| d.get("retryAfterSeconds"))
        .and_then(Value::as_u64)
    {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Serves one request, whatever its body type: hyper's `Incoming` on the TCP path, any byte body in process.
/// Bodies over [`decode::MAX_BODY`] (or that fail to arrive) answer 413.
pub async fn handle<B>(state: Shared, server_address: String, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let query = parse_query(parts.uri.query());
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let path = parts.uri.path().to_string();
    let route = route::parse(&parts.method, &path, watching);
    // The real server's system:public-info-viewer role lets anyone, even unauthenticated, read /version and the
    // health endpoints. kubectl's version dispatcher relies on it: client-go sends no bearer token over plain HTTP.
    if matches!(route, Route::Version) {
        state.counters.request(ANONYMOUS, "get", "", 200);
        return json_response(200, &discovery::version());
    }
    if matches!(route, Route::Health) {
        let mut resp = Response::new(full("ok"));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return resp;
    }
    let token = header_str(&parts.headers, header::AUTHORIZATION);
    // No credentials at all: the anonymous user, when anonymous auth is on. Credentials nobody holds: 401.
    let user = if token.is_empty() && state.anonymous_auth {
        Some(UserInfo::anonymous())
    } else {
        token
            .strip_prefix("Bearer ")
            .and_then(|t| state.user_for(t.trim()))
    };
    let (verb, resource) = match &route {
        Route::Resource(r) => (r.verb, r.rt.plural.to_string()),
        Route::UnknownResource { verb, plural, .. } => (*verb, plural.clone()),
        _ => ("get", String::new()),
    };
    let Some(user) = user else {
        state.counters.request(ANONYMOUS, verb, &resource, 401);
        return error_response(&ApiError::unauthorized());
    };
    let body = match Limited::new(body, decode::MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            state.counters.request(&user.name, verb, &resource, 413);
            return error_response(&ApiError::too_large(decode::MAX_BODY));
        }
    };
    let resp = match route {
        Route::Admin(rest) => admin::handle(&state, &user, &parts.method, &rest, &body).await,
        Route::Resource(req) => {
            let ctx = Ctx {
                state: state.clone(),
                user: user.clone(),
                req,
                query,
                content_type: header_str(&parts.headers, header::CONTENT_TYPE),
                accept: header_str(&parts.headers, header::ACCEPT),
                user_agent: header_str(&parts.headers, header::USER_AGENT),
                body,
                warnings: Default::default(),
            };
            serve_resource(ctx).await
        }
        Route::UnknownResource {
            group,
            plural,
            namespace,
            name,
            verb,
        } => {
            let attrs = RequestAttributes {
                verb,
                api_group: &group,
                resource: &plural,
                subresource: "",
                namespace: &namespace,
                name: &name,
                resource_request: true,
                path: &path,
            };
            match state.authorizer.authorize(&user, &attrs) {
                Decision::Deny { message } => {
                    error_response(&ApiError::forbidden(message, &group, &plural, &name))
                }
                Decision::Allow => error_response(&ApiError::unknown_path()),
            }
        }
        other => {
            let accept = header_str(&parts.headers, header::ACCEPT);
            serve_non_resource(&state, &user, &path, &server_address, &accept, other)
        }
    };
    state
        .counters
        .request(&user.name, verb, &resource, resp.status().as_u16());
    if let Some(&id) = parts.extensions.get::<ConnectionId>() {
        state.counters.connection(id, &user.name, &resource);
    }
    resp
}

fn serve_non_resource(
    state: &Shared,
    user: &UserInfo,
    path: &str,
    server_address: &str,
    accept: &str,
    route: Route,
) -> Response<Body> {
    let attrs = RequestAttributes {
        verb: "get",
        api_group: "",
        resource: "",
        subresource: "",
        namespace: "",
        name: "",
        resource_request: false,
        path,
    };
    if let Decision::Deny { message } = state.authorizer.authorize(user, &attrs) {
        return error_response(&ApiError::forbidden(message, "", "", ""));
    }
    let found = match route {
        Route::Version => Some(discovery::version()),
        Route::CoreVersions => Some(discovery::core_versions(server_address)),
        Route::CoreResources => discovery::resources("", "v1"),
        Route::Groups => Some(discovery::groups()),
        Route::Group(g) => discovery::group(&g),
        Route::GroupResources(g, v) => discovery::resources(&g, &v),
        Route::OpenApiV2 if !openapi::v2_acceptable(accept) => {
            return error_response(&ApiError {
                code: 406,
                reason: "NotAcceptable",
                message: "only the following media types are accepted: application/json".into(),
                details: None,
            });
        }
        Route::OpenApiV2 | Route::OpenApiV3Index | Route::OpenApiV3(_) => {
            let doc = match &route {
                Route::OpenApiV2 => openapi::v2().map(Some),
                Route::OpenApiV3(p) => openapi::v3(p),
                _ => openapi::v3_index().map(Some),
            };
            return match doc {
                Ok(Some(doc)) => json_response(200, doc),
                Ok(None) => error_response(&ApiError::unknown_path()),
                Err(e) => error_response(&ApiError::internal(e.to_string())),
            };
        }
        _ => None,
    };
    match found {
        Some(doc) => json_response(200, &doc),
        None => error_response(&ApiError::unknown_path()),
    }
}

async fn serve_resource(ctx: Ctx) -> Response<Body> {
    let state = ctx.state.clone();
    let r = &ctx.req;
    // As the real RequestInfoFactory does, a namespace object's own name is its namespace for RBAC, so that
    // namespace-scoped RoleBindings cover `get namespace <ns>`.
    let namespace = if r.rt.plural == "namespaces" {
        &r.name
    } else {
        &r.namespace
    };
    let attrs = RequestAttributes {
        verb: r.verb,
        api_group: r.rt.group,
        resource: r.rt.plural,
        subresource: &r.subresource,
        namespace,
        name: &r.name,
        resource_request: true,
        path: "",
    };
    if let Decision::Deny { message } = state.authorizer.authorize(&ctx.user, &attrs) {
        return error_response(&ApiError::forbidden(
            message,
            r.rt.group,
            r.rt.plural,
            &r.name,
        ));
    }
    let user = ctx.user.name.clone();
    state.faults.wait_unpartitioned(&user).await;
    if let Some(delay) = state.faults.current_latency() {
        tokio::time::sleep(delay).await;
    }
    if let Some((code, retry_after)) = state.faults.take_error(&user) {
        let err = if code == 429 {
            ApiError::too_many_requests(retry_after)
        } else {
            ApiError::internal("injected fault")
        };
        return error_response(&err);
    }
    let (result, warnings) = if ctx.req.verb == "watch" {
        (watch::start(ctx), vec![])
    } else {
        let result = objects::handle(&ctx);
        let warnings = ctx.warnings.into_inner();
        (result, warnings)
    };
    let mut resp = match result {
        Ok(Reply::Json(code, body)) => json_response(code, &body),
        Ok(Reply::Watch(stream)) => {
            let body = StreamBody::new(stream.map(|b| Ok::<_, Infallible>(Frame::data(b))));
            let mut resp = Response::new(BodyExt::boxed(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => error_response(&e),
    };
    for text in warnings {
        // RFC 7234 warn-text is a quoted string: escape quotes and backslashes, as the real server does.
        let quoted = text.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}
