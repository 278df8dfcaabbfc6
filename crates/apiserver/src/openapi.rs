//! OpenAPI documents (TEMPORARY minimal form; the full Lease schema for kubectl apply comes next).
#![allow(missing_docs)]
use serde_json::{Value, json};
pub fn v2() -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.1"}, "paths": {}, "definitions": {}})
}
pub fn v3_index() -> Value {
    json!({"paths": {}})
}
pub fn v3(_path: &str) -> Option<Value> {
    None
}
