//! What a resource handler gets: the parsed request, who sent it, and the shared state.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

use crate::rbac::UserInfo;
use crate::route::ResourceRequest;
use crate::state::Shared;
use crate::status::ApiError;

/// One resource request, ready for a handler.
pub struct Ctx {
    /// Shared server state.
    pub state: Shared,
    /// The authenticated user.
    pub user: UserInfo,
    /// What the path asked for.
    pub req: ResourceRequest,
    /// Query parameters (the last value wins for repeated keys).
    pub query: HashMap<String, String>,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The `Accept` header.
    pub accept: String,
    /// The `User-Agent` header, which names the field manager when `fieldManager` is absent.
    pub user_agent: String,
    /// The request body.
    pub body: Bytes,
    /// Warnings for the client, sent as `Warning: 299 - "..."` headers (e.g. unknown fields dropped under
    /// `fieldValidation=Warn`). A mutex because handlers only get `&Ctx`.
    pub warnings: parking_lot::Mutex<Vec<String>>,
}

impl Ctx {
    /// A query parameter, or "".
    pub fn param(&self, key: &str) -> &str {
        self.query.get(key).map(String::as_str).unwrap_or("")
    }

    /// Whether a boolean query parameter is set to true.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), "true" | "1")
    }

    /// Whether the client asked for Table output (kubectl get).
    pub fn wants_table(&self) -> bool {
        self.accept
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    }

    /// The field manager for writes: `fieldManager`, or the User-Agent's product name.
    pub fn manager(&self) -> String {
        match self.param("fieldManager") {
            "" => crate::fields::manager_from_user_agent(&self.user_agent),
            m => m.to_string(),
        }
    }

    /// Adds a warning for the client (a `Warning` response header).
    pub fn warn(&self, text: String) {
        self.warnings.lock().push(text);
    }

    /// Whether this is a dry run (`dryRun=All`): validated and answered but not stored.
    pub fn dry_run(&self) -> bool {
        self.param("dryRun") == "All"
    }
}

/// What a handler answers.
pub enum Reply {
    /// A JSON body with a status code.
    Json(u16, Value),
    /// A watch stream.
    Watch(crate::watch::WatchStream),
}

/// Handler result.
pub type Result<T = Reply> = std::result::Result<T, ApiError>;
