//! The test-only admin endpoint (`/leasehold-admin/...`, outside `/api` and `/apis`): counters, users, faults,
//! restarts and snapshot restores over HTTP, for tests and benches that drive the server as a separate process.
//!
//! Only members of `system:masters` (the admin token) may use it. `restart` and `restore` drop every connection,
//! the admin request's own included, so their answer may be lost; the effect happens either way. Snapshot ids
//! count up from 0 and are kept until the process exits.
//!
//! | method and path | body | effect |
//! |---|---|---|
//! | `GET counters` | | the counters snapshot |
//! | `POST users` | `{"name","groups":[..]}` | registers a user, answers `{"token"}` |
//! | `POST partition` | `{"user","mode":"hangRequests"\|"freezeWatches"\|"full"}` | cuts a user off |
//! | `POST heal` | `{"user"}` or `{}` for everyone | ends partitions |
//! | `POST latency` | `{"millis": n}` or `{"millis": null}` | adds latency to every API request |
//! | `POST errors` | an [`ErrorInjection`](crate::faults::ErrorInjection) | injects 500/429 answers |
//! | `DELETE errors` | | removes injections |
//! | `POST close-watches` | | ends every open watch |
//! | `POST restart` | `{"keepState": bool}` | drops every connection, wiping the store unless keepState |
//! | `POST snapshot` | | keeps a copy of the store (an etcd backup), answers `{"id","resourceVersion"}` |
//! | `POST restore` | `{"id", "bumpRevision"?}` | restores that snapshot (an etcd restore, with etcdutl's `--bump-revision N --mark-compacted` when `bumpRevision` is given) and drops every connection; 404 for an unknown id |
//! | `POST clear` | | removes every fault |

use std::time::Duration;

use http::{Method, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::{ErrorInjection, PartitionMode};
use crate::http::{Body, error_response, json_response};
use crate::rbac::UserInfo;
use crate::state::Shared;
use crate::status::ApiError;

#[derive(Deserialize)]
struct NewUser {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct Partition {
    user: String,
    mode: PartitionMode,
}

#[derive(Deserialize, Default)]
struct Heal {
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct Latency {
    millis: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Restart {
    #[serde(default)]
    keep_state: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Restore {
    id: usize,
    /// etcdutl's `--bump-revision` (with `--mark-compacted`); 0 or absent: a plain restore.
    #[serde(default)]
    bump_revision: u64,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|e| ApiError::bad_request(format!("admin request body: {e}")))
}

/// Serves one admin request.
pub async fn handle(
    state: &Shared,
    user: &UserInfo,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Response<Body> {
    if !user.groups.iter().any(|g| g == "system:masters") {
        return error_response(&ApiError::forbidden(
            format!(
                "forbidden: User \"{}\" cannot use the admin endpoint",
                user.name
            ),
            "",
            "",
            "",
        ));
    }
    match serve(state, method, path.trim_end_matches('/'), body).await {
        Ok(v) => json_response(200, &v),
        Err(e) => error_response(&e),
    }
}

async fn serve(
    state: &Shared,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let ok = json!({ "ok": true });
    match (method.as_str(), path) {
        ("GET", "counters") => {
            serde_json::to_value(state.counters()).map_err(|e| ApiError::internal(e.to_string()))
        }
        ("POST", "users") => {
            let u: NewUser = parse(body)?;
            let token = crate::new_token();
            state.add_token(
                token.clone(),
                UserInfo {
                    name: u.name.clone(),
                    uid: u.name,
                    groups: u.groups,
                },
            );
            Ok(json!({ "token": token }))
        }
        ("POST", "partition") => {
            let p: Partition = parse(body)?;
            state.faults.partition(&p.user, p.mode);
            Ok(ok)
        }
        ("POST", "heal") => {
            match parse::<Heal>(body)?.user {
                Some(u) => state.faults.heal(&u),
                None => state.faults.heal_all(),
            }
            Ok(ok)
        }
        ("POST", "latency") => {
            let l: Latency = parse(body)?;
            state.faults.latency(l.millis.map(Duration::from_millis));
            Ok(ok)
        }
        ("POST", "errors") => {
            state.faults.inject(parse::<ErrorInjection>(body)?);
            Ok(ok)
        }
        ("DELETE", "errors") => {
            state.faults.clear_errors();
            Ok(ok)
        }
        ("POST", "close-watches") => {
            state.faults.close_watches();
            Ok(ok)
        }
        ("POST", "restart") => {
            let r: Restart = parse(body)?;
            state.restart(r.keep_state);
            Ok(ok)
        }
        ("POST", "snapshot") => {
            let (id, rv) = state.save_snapshot();
            Ok(json!({ "id": id, "resourceVersion": rv.to_string() }))
        }
        ("POST", "restore") => {
            let r: Restore = parse(body)?;
            let snapshot = state.saved_snapshot(r.id).ok_or_else(|| ApiError {
                code: 404,
                reason: "NotFound",
                message: format!("no snapshot with id {}", r.id),
                details: None,
            })?;
            state.restore(&snapshot, r.bump_revision);
            Ok(ok)
        }
        ("POST", "clear") => {
            state.faults.clear();
            Ok(ok)
        }
        _ => Err(ApiError::unknown_path()),
    }
}
