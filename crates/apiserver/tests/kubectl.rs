//! The real `kubectl` against leasehold-apiserver, with nothing but `--kubeconfig` (and a private discovery
//! cache): get (table, YAML, JSON, watch), describe with events, apply twice (create, then a client-side
//! strategic merge patch), server-side apply, strict field validation, delete, and namespaces.
//!
//! Every server here uses TLS: client-go sends no credentials at all to an `http://` server (kubectl#744), so a
//! kubeconfig for a plain-HTTP server cannot authenticate kubectl. CI has kubectl; without it these tests fail
//! and say so.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use leasehold_apiserver::{Options, Server};
use tempfile::TempDir;

/// A TLS server and a kubectl set up for it.
struct Cluster {
    /// Held so the server lives as long as the test's kubectl calls.
    #[allow(dead_code)]
    server: Server,
    dir: TempDir,
}

impl Cluster {
    async fn start() -> Self {
        assert_kubectl_installed();
        let server = leasehold_apiserver::start(Options {
            tls: true,
            ..Options::default()
        })
        .await
        .expect("server starts");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kubeconfig"),
            server.kubeconfig(&server.admin_token()),
        )
        .unwrap();
        Self { server, dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .arg("--request-timeout=20s")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs kubectl off the runtime's threads, so the in-process server keeps serving.
    async fn kubectl(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || cmd.output().expect("kubectl runs"))
            .await
            .unwrap()
    }

    /// Runs kubectl and returns its stdout, failing the test (with stderr) if it failed.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs kubectl expecting failure; returns stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

fn assert_kubectl_installed() {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "kubectl is not installed (or not on PATH): these tests run the real kubectl binary against \
         leasehold-apiserver. Install kubectl (CI has it) and run again."
    );
}

fn lease_yaml(name: &str, holder: &str) -> String {
    format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: {name}\n  labels:\n    app: demo\nspec:\n  holderIdentity: {holder}\n  leaseDurationSeconds: 15\n"
    )
}

/// The whitespace-separated cells of each line of a kubectl table.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_twice_then_get_shows_the_new_holder_and_delete_removes_it() {
    let c = Cluster::start().await;
    let file = c.write("lease.yaml", &lease_yaml("demo", "pod-a"));
    let out = c.ok(&["apply", "-f", &file]).await;
    assert_eq!(out.trim(), "lease.coordination.k8s.io/demo created");

    let table = rows(&c.ok(&["get", "lease"]).await);
    assert_eq!(table[0], ["NAME", "HOLDER", "AGE"]);
    assert_eq!(table[1][..2], ["demo", "pod-a"]);
    assert_eq!(table.len(), 2);

    // The second apply is a client-side-apply strategic merge patch built from the v3 OpenAPI schema.
    let file = c.write("lease.yaml", &lease_yaml("demo", "pod-b"));
    // diff is a dryRun=All patch: it shows the change (exit 1) and stores nothing.
    let diff = c.kubectl(&["diff", "-f", &file]).await;
    assert_eq!(diff.status.code(), Some(1), "{diff:?}");
    let diff_text = String::from_utf8_lossy(&diff.stdout);
    assert!(
        diff_text.contains("+  holderIdentity: pod-b"),
        "{diff_text}"
    );
    let holder = c
        .ok(&[
            "get",
            "lease",
            "demo",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .await;
    assert_eq!(holder, "pod-a");
    let out = c.ok(&["apply", "-f", &file]).await;
    assert_eq!(out.trim(), "lease.coordination.k8s.io/demo configured");
    let out = c.ok(&["apply", "-f", &file]).await;
    assert_eq!(out.trim(), "lease.coordination.k8s.io/demo unchanged");

    let json: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "lease", "demo", "-o", "json"]).await).unwrap();
    assert_eq!(json["spec"]["holderIdentity"], "pod-b");
    assert_eq!(json["spec"]["leaseDurationSeconds"], 15);
    let last_applied =
        json["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap();
    assert!(last_applied.contains("pod-b"), "{last_applied}");

    let list: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "lease", "-o", "json"]).await).unwrap();
    assert_eq!(list["items"][0]["metadata"]["name"], "demo");
    let yaml = c.ok(&["get", "lease", "demo", "-o", "yaml"]).await;
    assert!(yaml.contains("holderIdentity: pod-b"), "{yaml}");
    assert!(yaml.contains("kind: Lease"), "{yaml}");

    let out = c.ok(&["delete", "lease", "demo"]).await;
    assert_eq!(out.trim(), "lease.coordination.k8s.io \"demo\" deleted");
    let out = c.kubectl(&["get", "lease"]).await;
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No resources found in default namespace."),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_takes_ownership_and_reports_conflicts() {
    let c = Cluster::start().await;
    let file = c.write("lease.yaml", &lease_yaml("ssa", "pod-a"));
    let out = c.ok(&["apply", "--server-side", "-f", &file]).await;
    assert_eq!(
        out.trim(),
        "lease.coordination.k8s.io/ssa serverside-applied"
    );

    // Another manager changing the holder conflicts, until it forces.
    let file = c.write("lease.yaml", &lease_yaml("ssa", "pod-b"));
    let err = c
        .fails(&[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "-f",
            &file,
        ])
        .await;
    assert!(err.contains("conflict"), "{err}");
    assert!(err.contains(".spec.holderIdentity"), "{err}");
    c.ok(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "--force-conflicts",
        "-f",
        &file,
    ])
    .await;
    let holder = c
        .ok(&[
            "get",
            "lease",
            "ssa",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .await;
    assert_eq!(holder, "pod-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_fail_strict_apply_and_warn_otherwise() {
    let c = Cluster::start().await;
    let bad = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: bad\nspec:\n  holderIdentity: x\n  foo: 1\n";
    let file = c.write("bad.yaml", bad);

    // kubectl leaves validation to the server (the v3 document declares fieldValidation) and asks for Strict.
    let err = c.fails(&["apply", "-f", &file]).await;
    assert!(
        err.contains(
            r#"Lease in version "v1" cannot be handled as a Lease: strict decoding error: unknown field "spec.foo""#
        ),
        "{err}"
    );

    let out = c.kubectl(&["create", "--validate=warn", "-f", &file]).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"Warning: unknown field "spec.foo""#),
        "{stderr}"
    );
    // Like the real server, Warn drops the field.
    let spec = c
        .ok(&["get", "lease", "bad", "-o", "jsonpath={.spec}"])
        .await;
    assert_eq!(spec, r#"{"holderIdentity":"x"}"#);

    let err = c.fails(&["apply", "--server-side", "-f", &file]).await;
    assert!(
        err.contains(".spec.foo: field not declared in schema"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_get_events_show_events_about_the_lease() {
    let c = Cluster::start().await;
    let file = c.write("lease.yaml", &lease_yaml("demo", "pod-a"));
    c.ok(&["apply", "-f", &file]).await;
    let uid = c
        .ok(&["get", "lease", "demo", "-o", "jsonpath={.metadata.uid}"])
        .await;
    // What kube-runtime's Recorder writes: an events.k8s.io/v1 Event regarding the lease.
    let event = format!(
        "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: demo.leader\neventTime: \"{}\"\nreportingController: leasehold\nreportingInstance: pod-a\naction: Acquire\nreason: LeaderElected\nnote: pod-a became leader\ntype: Normal\nregarding:\n  apiVersion: coordination.k8s.io/v1\n  kind: Lease\n  name: demo\n  namespace: default\n  uid: {uid}\n",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
    );
    let event_file = c.write("event.yaml", &event);
    c.ok(&["create", "-f", &event_file]).await;

    // describe lists core v1 events with fieldSelector involvedObject.*.
    let out = c.ok(&["describe", "lease", "demo"]).await;
    assert!(out.contains("Holder Identity:"), "{out}");
    assert!(out.contains("pod-a"), "{out}");
    let events = out.split("Events:").nth(1).unwrap_or("");
    assert!(events.contains("LeaderElected"), "{out}");
    assert!(events.contains("pod-a became leader"), "{out}");

    let table = rows(&c.ok(&["get", "events"]).await);
    assert_eq!(
        table[0],
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert!(
        table[1].contains(&"LeaderElected".to_string()) && table[1].contains(&"lease/demo".into()),
        "{table:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_list_and_create() {
    let c = Cluster::start().await;
    let table = rows(&c.ok(&["get", "ns"]).await);
    assert_eq!(table[0], ["NAME", "STATUS", "AGE"]);
    assert!(
        table.iter().any(|r| r[..2] == ["default", "Active"]),
        "{table:?}"
    );

    // kubectl's typed client sends this one as protobuf.
    let out = c.ok(&["create", "ns", "team-a"]).await;
    assert_eq!(out.trim(), "namespace/team-a created");
    let table = rows(&c.ok(&["get", "ns", "team-a", "--show-labels"]).await);
    assert_eq!(table[1][..2], ["team-a", "Active"]);
    assert_eq!(table[1][3], "kubernetes.io/metadata.name=team-a");

    let file = c.write("lease.yaml", &lease_yaml("in-team", "pod-a"));
    c.ok(&["apply", "-n", "team-a", "-f", &file]).await;
    let table = rows(&c.ok(&["get", "lease", "-A"]).await);
    assert_eq!(table[0], ["NAMESPACE", "NAME", "HOLDER", "AGE"]);
    assert_eq!(table[1][..3], ["team-a", "in-team", "pod-a"]);
}

/// Reads a child's stdout lines on a thread, so the test can wait for a line with a deadline.
fn line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (off the runtime) until a line matching `pred` arrives; panics with every line seen after `wait`.
async fn wait_for_line(
    rx: mpsc::Receiver<String>,
    wait: Duration,
    pred: impl Fn(&str) -> bool + Send + 'static,
) -> (mpsc::Receiver<String>, Vec<String>) {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + wait;
        let mut seen = vec![];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    seen.push(line);
                    if hit {
                        return (rx, seen);
                    }
                }
                Err(_) => panic!("no matching line within {wait:?}; saw {seen:?}"),
            }
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_a_row_for_each_change() {
    let c = Cluster::start().await;
    let file = c.write("lease.yaml", &lease_yaml("demo", "pod-a"));
    c.ok(&["apply", "-f", &file]).await;

    let mut child = c
        .command(&["get", "lease", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w starts");
    let rx = line_reader(child.stdout.take().unwrap());
    let (rx, seen) = wait_for_line(rx, Duration::from_secs(20), |l| l.contains("pod-a")).await;
    assert_eq!(rows(&seen.join("\n"))[0], ["NAME", "HOLDER", "AGE"]);

    let file = c.write("lease.yaml", &lease_yaml("demo", "pod-b"));
    c.ok(&["apply", "-f", &file]).await;
    let (_rx, seen) = wait_for_line(rx, Duration::from_secs(20), |l| l.contains("pod-b")).await;
    let _ = child.kill();
    let _ = child.wait();
    let last = rows(seen.last().unwrap());
    assert_eq!(last[0][..2], ["demo", "pod-b"]);
    // One header: later Table events carry no column definitions, and kubectl prints no second header.
    assert!(!seen.iter().any(|l| l.starts_with("NAME")), "{seen:?}");
}

/// The Table watch stream itself, as kubectl reads it: only the first event carries column definitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_watch_events_carry_columns_only_in_the_first() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    for name in ["a", "b"] {
        let ans = support::send(
            &base,
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            &token,
            "application/json",
            &support::lease(name, "pod-a"),
        )
        .await;
        assert_eq!(ans.code, 201, "{}", ans.text);
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let req = http::Request::builder()
        .uri(format!(
            "{base}/apis/coordination.k8s.io/v1/namespaces/default/leases?watch=true"
        ))
        .header("authorization", format!("Bearer {token}"))
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut events: Vec<serde_json::Value> = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < 2 {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("two events in time")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            events.push(serde_json::from_slice(&line).unwrap());
        }
    }
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(ev["type"], "ADDED");
        assert_eq!(ev["object"]["kind"], "Table");
        let columns = ev["object"]["columnDefinitions"].as_array().unwrap();
        let names: Vec<&str> = columns.iter().filter_map(|c| c["name"].as_str()).collect();
        if i == 0 {
            assert_eq!(names, ["Name", "Holder", "Age"]);
        } else {
            assert!(names.is_empty(), "event {i} repeats the columns: {ev}");
        }
        assert_eq!(ev["object"]["rows"][0]["cells"][1], "pod-a");
    }
    server.shutdown().await;
}
