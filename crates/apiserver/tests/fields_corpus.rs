//! Replays the recorded real-apiserver steps that write fields (corpus steps 0, 2, 5, 10-12, 22-25, 29-32
//! and 51, counted from 0) and checks that our managedFields are the real server's, times aside.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use leasehold_apiserver::fields::{Schema, apply, conflict_causes, record_update};
use leasehold_apiserver::patch::{PatchKind, apply_patch, parse_apply_body};
use serde_json::{Value, json};

/// Where the corpus lives; `LEASE_CORPUS` overrides it.
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/lease-api-corpus.jsonl"
);
const LEASES: &str = "coordination.k8s.io/v1";
const NOW: &str = "2026-11-26T01:10:16Z";

fn corpus() -> Vec<Value> {
    let path = std::env::var("LEASE_CORPUS").unwrap_or_else(|_| CORPUS.to_owned());
    let text = std::fs::read_to_string(&path).expect("corpus file readable");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("corpus line is JSON"))
        .collect()
}

fn request_body(step: &Value) -> &Value {
    &step["request"]["body"]
}

fn response_body(step: &Value) -> &Value {
    &step["response"]["body"]
}

fn body_bytes(step: &Value) -> Vec<u8> {
    match request_body(step) {
        Value::String(s) => s.clone().into_bytes(),
        other => serde_json::to_vec(other).expect("serialize body"),
    }
}

/// managedFields without their times.
fn managed_fields(obj: &Value) -> Value {
    let mut mf = obj["metadata"]["managedFields"].clone();
    if let Value::Array(entries) = &mut mf {
        for e in entries {
            if let Value::Object(m) = e {
                m.remove("time");
            }
        }
    }
    mf
}

fn assert_same_fields(step: &Value, ours: &Value) {
    assert_eq!(
        managed_fields(ours),
        managed_fields(response_body(step)),
        "managedFields differ at step {:?}\nours: {ours:#}",
        step["step"]
    );
}

/// What the server stores after a write: the real answer with our managedFields, so that later steps
/// start from exactly what the real server had.
fn stored(step: &Value, ours: &Value) -> Value {
    let mut out = response_body(step).clone();
    out["metadata"]["managedFields"] = ours["metadata"]["managedFields"].clone();
    out
}

fn create(step: &Value, schema: &Schema, api_version: &str) -> Value {
    let mut new = request_body(step).clone();
    record_update(None, &mut new, "Python-urllib", api_version, NOW, schema);
    assert_same_fields(step, &new);
    stored(step, &new)
}

#[test]
fn namespace_create_owns_its_defaulted_label() {
    let c = corpus();
    let mut new = request_body(&c[0]).clone();
    // The real server's defaulting adds this label before the field manager runs.
    new["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": "corpus-31597"});
    record_update(
        None,
        &mut new,
        "Python-urllib",
        "v1",
        NOW,
        &Schema::namespace(),
    );
    assert_same_fields(&c[0], &new);
}

#[test]
fn lease_create_update_and_patches() {
    let c = corpus();
    let schema = Schema::lease();
    let l1 = create(&c[2], &schema, LEASES);

    // Step 5: PUT that drops acquireTime/renewTime and changes holder and transitions.
    let mut updated = request_body(&c[5]).clone();
    record_update(
        Some(&l1),
        &mut updated,
        "Python-urllib",
        LEASES,
        NOW,
        &schema,
    );
    assert_same_fields(&c[5], &updated);
    let mut live = stored(&c[5], &updated);

    // Steps 22-24: merge, strategic merge and JSON patch by the same manager: owner unchanged.
    for (i, kind) in [
        (22, PatchKind::Merge),
        (23, PatchKind::StrategicMerge),
        (24, PatchKind::Json),
    ] {
        let step = &c[i];
        let ct = step["request"]["content_type"]
            .as_str()
            .expect("content type");
        assert_eq!(PatchKind::from_content_type(ct), Some(kind));
        let mut patched = apply_patch(kind, &live, &body_bytes(step)).expect("patch applies");
        assert_eq!(patched["spec"], response_body(step)["spec"], "step {i}");
        record_update(
            Some(&live),
            &mut patched,
            "Python-urllib",
            LEASES,
            NOW,
            &schema,
        );
        assert_same_fields(step, &patched);
        live = stored(step, &patched);
    }

    // Step 25: JSON patch of a path that does not exist.
    let err = apply_patch(PatchKind::Json, &live, &body_bytes(&c[25])).expect_err("bad path");
    let want = response_body(&c[25]);
    assert_eq!(u64::from(err.code()), want["code"].as_u64().expect("code"));
    assert_eq!(err.reason(), want["reason"]);
    assert_eq!(err.to_string(), want["message"]);
}

#[test]
fn create_on_update_owns_what_was_sent() {
    let c = corpus();
    for i in [10, 11, 12] {
        create(&c[i], &Schema::lease(), LEASES);
    }
}

#[test]
fn server_side_apply_create_conflict_force_and_omit() {
    let c = corpus();
    let schema = Schema::lease();
    let apply_step = |live: Option<&Value>, i: usize, manager: &str, force: bool| {
        let body = parse_apply_body(&body_bytes(&c[i])).expect("apply body parses");
        apply(live, &body, manager, force, LEASES, NOW, &schema)
    };

    // Step 29: apply that creates.
    let created = apply_step(None, 29, "mgr-one", false).expect("apply creates");
    assert_same_fields(&c[29], &created);
    assert_eq!(created["spec"], response_body(&c[29])["spec"]);
    assert_eq!(created["metadata"]["name"], "a1");
    let live = stored(&c[29], &created);

    // Step 30: another manager changes an owned field: 409 with the real message and causes.
    let err = apply_step(Some(&live), 30, "mgr-two", false).expect_err("conflict");
    let want = response_body(&c[30]);
    assert_eq!(u64::from(err.code()), want["code"].as_u64().expect("code"));
    assert_eq!(err.reason(), want["reason"]);
    assert_eq!(err.to_string(), want["message"]);
    let causes: Vec<Value> = conflict_causes(&err)
        .into_iter()
        .map(|(field, message)| json!({"field": field, "message": message, "reason": "FieldManagerConflict"}))
        .collect();
    assert_eq!(Value::Array(causes), want["details"]["causes"]);

    // Step 31: the same with force: ownership of holderIdentity moves, leaseDurationSeconds is shared.
    let forced = apply_step(Some(&live), 31, "mgr-two", true).expect("forced apply");
    assert_same_fields(&c[31], &forced);
    assert_eq!(forced["spec"], response_body(&c[31])["spec"]);
    let live = stored(&c[31], &forced);

    // Step 32: the first manager omits leaseDurationSeconds; mgr-two still owns it, so it stays.
    let omitted = apply_step(Some(&live), 32, "mgr-one", false).expect("apply");
    assert_same_fields(&c[32], &omitted);
    assert_eq!(omitted["spec"], response_body(&c[32])["spec"]);
}

#[test]
fn event_create_owns_regarding_whole() {
    let c = corpus();
    create(&c[51], &Schema::event(), "events.k8s.io/v1");
}
