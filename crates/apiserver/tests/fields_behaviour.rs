//! Field ownership and patch behaviour beyond the corpus, each test one rule of the real server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use leasehold_apiserver::fields::{
    ApplyError, Conflict, Operation, Schema, apply, conflict_causes, manager_from_user_agent,
    record_update,
};
use leasehold_apiserver::patch::{PatchKind, apply_patch, go_json_syntax_error, parse_apply_body};
use serde_json::{Value, json};

const V1: &str = "coordination.k8s.io/v1";
const T1: &str = "2026-11-26T01:00:00Z";
const T2: &str = "2026-11-26T02:00:00Z";

fn lease(spec: Value) -> Value {
    json!({"apiVersion": V1, "kind": "Lease", "metadata": {"name": "l"}, "spec": spec})
}

fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn fields_of(obj: &Value, manager: &str) -> Value {
    entries(obj)
        .into_iter()
        .find(|e| e["manager"] == manager)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn updated(old: Option<&Value>, mut new: Value, manager: &str, time: &str) -> Value {
    record_update(old, &mut new, manager, V1, time, &Schema::lease());
    new
}

#[test]
fn created_labels_and_annotations_maps_get_a_dot() {
    let mut obj = lease(json!({"holderIdentity": "a"}));
    obj["metadata"]["labels"] = json!({"app": "x"});
    obj["metadata"]["annotations"] = json!({"note": "y"});
    let obj = updated(None, obj, "m", T1);
    assert_eq!(
        fields_of(&obj, "m"),
        json!({
            "f:metadata": {
                "f:annotations": {".": {}, "f:note": {}},
                "f:labels": {".": {}, "f:app": {}}
            },
            "f:spec": {"f:holderIdentity": {}}
        })
    );
    assert_eq!(entries(&obj)[0]["fieldsType"], "FieldsV1");
    assert_eq!(entries(&obj)[0]["operation"], "Update");
    assert_eq!(entries(&obj)[0]["apiVersion"], V1);
    assert_eq!(entries(&obj)[0]["time"], T1);
}

#[test]
fn adding_a_label_to_an_existing_map_takes_only_the_key() {
    let mut first = lease(json!({"holderIdentity": "a"}));
    first["metadata"]["labels"] = json!({"app": "x"});
    let first = updated(None, first, "creator", T1);
    let mut second = first.clone();
    second["metadata"]["labels"]["tier"] = json!("db");
    let second = updated(Some(&first), second, "labeller", T2);
    assert_eq!(
        fields_of(&second, "labeller"),
        json!({"f:metadata": {"f:labels": {"f:tier": {}}}})
    );
    assert_eq!(fields_of(&second, "creator"), fields_of(&first, "creator"));
}

#[test]
fn removed_fields_leave_every_manager() {
    let mut first = lease(json!({"holderIdentity": "a", "leaseDurationSeconds": 15}));
    first["metadata"]["labels"] = json!({"app": "x", "tier": "db"});
    let first = updated(None, first, "creator", T1);

    // One label removed: the key goes, the map's "." stays.
    let mut second = first.clone();
    second["metadata"]["labels"] = json!({"app": "x"});
    let second = updated(Some(&first), second, "other", T2);
    assert_eq!(
        fields_of(&second, "creator"),
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}
        })
    );
    // Removing only takes nothing: no entry for "other", creator's time kept.
    assert_eq!(fields_of(&second, "other"), Value::Null);
    assert_eq!(entries(&second)[0]["time"], T1);

    // The whole map removed: "." goes too.
    let mut third = second.clone();
    third["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("labels");
    let third = updated(Some(&second), third, "other", T2);
    assert_eq!(
        fields_of(&third, "creator"),
        json!({"f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}})
    );
}

#[test]
fn a_second_manager_takes_what_it_changes() {
    let first = updated(
        None,
        lease(json!({"holderIdentity": "a", "leaseDurationSeconds": 15})),
        "a",
        T1,
    );
    let mut second = first.clone();
    second["spec"]["holderIdentity"] = json!("b");
    let second = updated(Some(&first), second, "b", T2);
    let all = entries(&second);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["manager"], "a");
    assert_eq!(
        all[0]["fieldsV1"],
        json!({"f:spec": {"f:leaseDurationSeconds": {}}})
    );
    assert_eq!(all[0]["time"], T1);
    assert_eq!(all[1]["manager"], "b");
    assert_eq!(
        all[1]["fieldsV1"],
        json!({"f:spec": {"f:holderIdentity": {}}})
    );
    assert_eq!(all[1]["time"], T2);

    // A manager that loses all its fields loses its entry.
    let mut third = second.clone();
    third["spec"]["leaseDurationSeconds"] = json!(30);
    let third = updated(Some(&second), third, "b", T2);
    assert_eq!(entries(&third).len(), 1);
    assert_eq!(
        fields_of(&third, "b"),
        json!({"f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}})
    );
}

#[test]
fn an_update_that_changes_nothing_keeps_managed_fields() {
    let first = updated(None, lease(json!({"holderIdentity": "a"})), "a", T1);
    let mut same = first.clone();
    same["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("managedFields");
    let same = updated(Some(&first), same, "b", T2);
    assert_eq!(
        same["metadata"]["managedFields"],
        first["metadata"]["managedFields"]
    );
}

#[test]
fn managed_fields_sent_on_update_are_the_starting_point() {
    let first = updated(None, lease(json!({"holderIdentity": "a"})), "a", T1);
    // `[{}]` resets them, as on the real server: nothing is owned afterwards.
    let mut reset = first.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    let reset = updated(Some(&first), reset, "b", T2);
    assert!(reset["metadata"].get("managedFields").is_none());
}

#[test]
fn entries_sort_like_the_real_server() {
    let first = updated(
        None,
        lease(json!({"holderIdentity": "a", "renewTime": "x"})),
        "zeta",
        T1,
    );
    let body = json!({"apiVersion": V1, "kind": "Lease", "metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 5}});
    let applied = apply(
        Some(&first),
        &body,
        "alpha",
        false,
        V1,
        T2,
        &Schema::lease(),
    )
    .expect("apply");
    let names: Vec<Value> = entries(&applied)
        .iter()
        .map(|e| e["operation"].clone())
        .collect();
    assert_eq!(names, vec![json!("Apply"), json!("Update")]);
}

#[test]
fn server_defaults_of_events_are_not_owned() {
    let mut ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
        "regarding": {"kind": "Lease", "name": "l"}, "note": "n",
        "deprecatedSource": {}, "deprecatedFirstTimestamp": null, "deprecatedLastTimestamp": null
    });
    record_update(None, &mut ev, "m", "events.k8s.io/v1", T1, &Schema::event());
    assert_eq!(
        fields_of(&ev, "m"),
        json!({"f:note": {}, "f:regarding": {}})
    );
}

#[test]
fn namespace_status_is_not_owned_on_the_main_resource() {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
    record_update(None, &mut ns, "m", "v1", T1, &Schema::namespace());
    assert_eq!(fields_of(&ns, "m"), json!({"f:spec": {"f:finalizers": {}}}));
}

#[test]
fn apply_sets_have_no_dot_and_prune_what_is_dropped() {
    let schema = Schema::lease();
    let body = json!({"apiVersion": V1, "kind": "Lease",
        "metadata": {"name": "l", "labels": {"a": "1", "b": "2"}},
        "spec": {"holderIdentity": "x", "leaseDurationSeconds": 5}});
    let first = apply(None, &body, "m", false, V1, T1, &schema).expect("create");
    assert_eq!(
        fields_of(&first, "m"),
        json!({"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}},
               "f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}})
    );
    let smaller = json!({"apiVersion": V1, "kind": "Lease",
        "metadata": {"name": "l", "labels": {"a": "1"}}, "spec": {"holderIdentity": "x"}});
    let second = apply(Some(&first), &smaller, "m", false, V1, T2, &schema).expect("apply");
    assert_eq!(second["metadata"]["labels"], json!({"a": "1"}));
    assert_eq!(second["spec"], json!({"holderIdentity": "x"}));
    assert_eq!(entries(&second)[0]["time"], T2);

    // Dropping the last label removes the map itself.
    let none = json!({"apiVersion": V1, "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}});
    let third = apply(Some(&second), &none, "m", false, V1, T2, &schema).expect("apply");
    assert!(third["metadata"].get("labels").is_none());

    // Re-applying the same thing changes nothing, not even the time.
    let again = apply(
        Some(&third),
        &none,
        "m",
        false,
        V1,
        "2030-01-01T00:00:00Z",
        &schema,
    )
    .expect("apply");
    assert_eq!(again, third);
}

#[test]
fn apply_with_the_same_value_shares_ownership() {
    let schema = Schema::lease();
    let live = updated(None, lease(json!({"holderIdentity": "a"})), "writer", T1);
    let body = json!({"apiVersion": V1, "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}});
    let out = apply(Some(&live), &body, "applier", false, V1, T2, &schema).expect("no conflict");
    assert_eq!(
        fields_of(&out, "writer"),
        json!({"f:spec": {"f:holderIdentity": {}}})
    );
    assert_eq!(
        fields_of(&out, "applier"),
        json!({"f:spec": {"f:holderIdentity": {}}})
    );
}

#[test]
fn conflicts_with_several_fields_and_update_owners() {
    let schema = Schema::lease();
    let live = updated(
        None,
        lease(json!({"holderIdentity": "a", "leaseDurationSeconds": 1})),
        "kubectl",
        T1,
    );
    let body = json!({"apiVersion": V1, "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "b", "leaseDurationSeconds": 2}});
    let err = apply(Some(&live), &body, "mine", false, V1, T2, &schema).expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl\" using coordination.k8s.io/v1:\n- .spec.holderIdentity\n- .spec.leaseDurationSeconds"
    );
    assert_eq!(err.code(), 409);
    assert_eq!(
        conflict_causes(&err),
        vec![
            (
                ".spec.holderIdentity".to_owned(),
                "conflict with \"kubectl\" using coordination.k8s.io/v1".to_owned()
            ),
            (
                ".spec.leaseDurationSeconds".to_owned(),
                "conflict with \"kubectl\" using coordination.k8s.io/v1".to_owned()
            ),
        ]
    );
}

#[test]
fn conflict_messages_group_by_sorted_manager() {
    let c = |manager: &str, field: &str| Conflict {
        manager: manager.to_owned(),
        operation: Operation::Apply,
        api_version: V1.to_owned(),
        field: field.to_owned(),
    };
    let err = ApplyError::Conflicts(vec![
        c("a", ".spec.x"),
        c("a", ".spec.y"),
        c("b", ".spec.z"),
    ]);
    assert_eq!(
        err.to_string(),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.x\n- .spec.y\nconflicts with \"b\":\n- .spec.z"
    );
}

#[test]
fn apply_refuses_bad_bodies() {
    let schema = Schema::lease();
    let with_mf =
        json!({"apiVersion": V1, "kind": "Lease", "metadata": {"name": "l", "managedFields": []}});
    let err = apply(None, &with_mf, "m", false, V1, T1, &schema).expect_err("managedFields");
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        (400, "metadata.managedFields must be nil")
    );
    let wrong = json!({"apiVersion": "v1", "kind": "Lease"});
    let err = apply(None, &wrong, "m", false, V1, T1, &schema).expect_err("version");
    assert_eq!(
        err.to_string(),
        "Incorrect version specified in apply patch. Specified patch version: v1, expected: coordination.k8s.io/v1"
    );
    let err = apply(None, &json!([1]), "m", false, V1, T1, &schema).expect_err("array");
    assert_eq!(err.reason(), "BadRequest");
}

#[test]
fn user_agent_prefix_is_the_default_manager() {
    assert_eq!(
        manager_from_user_agent("Python-urllib/3.11"),
        "Python-urllib"
    );
    assert_eq!(
        manager_from_user_agent("kubectl/v1.33.1 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(manager_from_user_agent(""), "unknown");
    assert_eq!(manager_from_user_agent("/x"), "unknown");
    assert_eq!(manager_from_user_agent(&"a".repeat(200)).len(), 128);
    assert_eq!(manager_from_user_agent("a\u{1}b\tc d/1"), "abc d");
}

#[test]
fn content_types() {
    assert_eq!(
        PatchKind::from_content_type("application/merge-patch+json"),
        Some(PatchKind::Merge)
    );
    assert_eq!(
        PatchKind::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
        Some(PatchKind::StrategicMerge)
    );
    assert_eq!(
        PatchKind::from_content_type("application/json-patch+json"),
        Some(PatchKind::Json)
    );
    assert_eq!(
        PatchKind::from_content_type("application/apply-patch+yaml"),
        Some(PatchKind::Apply)
    );
    assert_eq!(
        PatchKind::from_content_type("application/apply-patch+cbor"),
        None
    );
    assert_eq!(PatchKind::from_content_type("application/json"), None);
}

#[test]
fn merge_patch_errors() {
    let live = lease(json!({"holderIdentity": "a"}));
    let err = apply_patch(PatchKind::Merge, &live, b"null").expect_err("null");
    assert_eq!(
        (err.code(), err.reason(), err.to_string().as_str()),
        (400, "BadRequest", "Invalid JSON Patch")
    );
    let err = apply_patch(PatchKind::Merge, &live, b"\"x\"").expect_err("string");
    assert_eq!(
        err.to_string(),
        "error decoding patch: json: cannot unmarshal string into Go value of type map[string]interface {}"
    );
    let err = apply_patch(PatchKind::Merge, &live, b"{not json").expect_err("syntax");
    assert_eq!(
        err.to_string(),
        "error decoding patch: invalid character 'n' looking for beginning of object key string"
    );
    let out = apply_patch(
        PatchKind::Merge,
        &live,
        br#"{"spec":{"holderIdentity":null,"x":1}}"#,
    )
    .expect("merge");
    assert_eq!(out["spec"], json!({"x": 1}));
}

#[test]
fn json_patch_errors() {
    let live = lease(json!({"holderIdentity": "a"}));
    let err = apply_patch(PatchKind::Json, &live, b"{}").expect_err("object");
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.to_string(),
        "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
    );
    let err = apply_patch(PatchKind::Json, &live, br#"[{"op":1}]"#).expect_err("op type");
    assert_eq!(
        err.to_string(),
        "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.op of type string"
    );
    let err = apply_patch(
        PatchKind::Json,
        &live,
        br#"[{"op":"bogus","path":"/spec"}]"#,
    )
    .expect_err("op");
    assert_eq!((err.code(), err.reason()), (422, "Invalid"));
    let many = serde_json::to_vec(&vec![
        json!({"op": "test", "path": "/kind", "value": "Lease"});
        10_001
    ])
    .expect("serialize");
    assert_eq!(
        apply_patch(PatchKind::Json, &live, &many)
            .expect_err("too many")
            .code(),
        413
    );
    assert_eq!(
        apply_patch(PatchKind::Json, &live, b"null").expect("null is empty"),
        live
    );
    assert_eq!(
        apply_patch(PatchKind::Apply, &live, b"{}")
            .expect_err("apply")
            .code(),
        500
    );
}

#[test]
fn a_failing_json_patch_after_a_root_move_is_an_error_not_a_panic() {
    // json-patch's own rollback panics on this one (found by proptest).
    let body = br#"[{"op":"move","path":"","from":"/0"},{"op":"add","path":"/","value":null}]"#;
    let err = apply_patch(PatchKind::Json, &json!([null]), body).expect_err("fails");
    assert_eq!(err.code(), 422);
}

#[test]
fn strategic_merge_directives() {
    let mut live = lease(json!({"holderIdentity": "a", "leaseDurationSeconds": 5}));
    live["metadata"]["finalizers"] = json!(["x"]);
    live["metadata"]["ownerReferences"] =
        json!([{"uid": "1", "name": "one"}, {"uid": "2", "name": "two"}]);
    let smp = |body: Value| {
        apply_patch(
            PatchKind::StrategicMerge,
            &live,
            &serde_json::to_vec(&body).expect("json"),
        )
    };

    let out = smp(json!({"spec": {"$patch": "replace", "holderIdentity": "b"}})).expect("replace");
    assert_eq!(out["spec"], json!({"holderIdentity": "b"}));
    let out = smp(json!({"spec": {"$patch": "delete"}})).expect("delete");
    assert!(out.get("spec").is_none());
    let out = smp(json!({"spec": {"$retainKeys": ["holderIdentity"], "holderIdentity": "c"}}))
        .expect("retain");
    assert_eq!(out["spec"], json!({"holderIdentity": "c"}));
    let err = smp(json!({"spec": {"$retainKeys": ["holderIdentity"], "renewTime": "t"}}))
        .expect_err("mismatch");
    assert_eq!(err.code(), 422);
    let err = smp(json!({"spec": {"$retainKeys": "nope"}})).expect_err("format");
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        (400, "invalid patch format of retainKeys")
    );
    let err = smp(json!({"spec": {"$patch": "explode"}})).expect_err("unknown");
    assert!(err.to_string().starts_with("unknown patch type: explode"));

    let out = smp(json!({"metadata": {"finalizers": ["y", "x"]}})).expect("finalizers");
    assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
    let out = smp(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}))
        .expect("delete item");
    assert_eq!(out["metadata"]["finalizers"], json!([]));
    let out = smp(json!({"metadata": {"ownerReferences": [
        {"uid": "2", "name": "deux"}, {"uid": "1", "$patch": "delete"}, {"uid": "3", "name": "three"}
    ]}}))
    .expect("owner references");
    assert_eq!(
        out["metadata"]["ownerReferences"],
        json!([{"uid": "2", "name": "deux"}, {"uid": "3", "name": "three"}])
    );
    let err = apply_patch(PatchKind::StrategicMerge, &live, b"[1]").expect_err("array");
    assert_eq!(
        err.to_string(),
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    assert_eq!(
        apply_patch(PatchKind::StrategicMerge, &live, b"null").expect("null"),
        live
    );
}

#[test]
fn apply_bodies_are_yaml_or_json() {
    let yaml = b"apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: a\nspec:\n  holderIdentity: x\n  leaseDurationSeconds: 15\n";
    let v = parse_apply_body(yaml).expect("yaml");
    assert_eq!(
        v["spec"],
        json!({"holderIdentity": "x", "leaseDurationSeconds": 15})
    );
    let v = parse_apply_body(br#"{"kind": "Lease"}"#).expect("json");
    assert_eq!(v, json!({"kind": "Lease"}));
    assert_eq!(parse_apply_body(b"").expect("empty"), json!({}));
    let err = parse_apply_body(b"- a\n- b\n").expect_err("list");
    assert_eq!(
        err.to_string(),
        "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    let err = parse_apply_body(b"a: [1\n").expect_err("syntax");
    assert!(err.to_string().starts_with("error decoding YAML: "));
    assert_eq!(err.code(), 400);
}

#[test]
fn go_syntax_error_for_create_bodies() {
    assert_eq!(
        go_json_syntax_error(b"{not json").as_deref(),
        Some("invalid character 'n' looking for beginning of object key string")
    );
}
