//! The network between one simulated process and the in-process API server: a tower `Service` that the
//! process's real `kube::Client` sends through, and that decides from the run's seed what happens to each
//! request and each watch: latency, lost answers, injected 500/503/429, 410 Expired, closed or silent
//! watches, partitions, a frozen or dead process.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use k8s_openapi::api::coordination::v1::Lease;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::sync::watch;

use crate::{
    check::Requests,
    plan::Fault,
    trace::{Mark, Trace},
};

/// Requests in one virtual second from which a process counts as looping: its requests then hang for good, so
/// that the run's virtual clock can move on and the run can end and report it (invariant (d)).
const BUSY_LOOP: u32 = 1_000;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type SimBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the simulated network does to a request that the transport refuses.
#[derive(Debug)]
struct NetError(&'static str);

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for NetError {}

/// The faults every process's network shares: the request-level faults in force, the generator they draw
/// from, and the "close every watch" switch.
pub struct Net {
    rng: Mutex<StdRng>,
    active: Mutex<BTreeMap<u64, Fault>>,
    watch_generation: watch::Sender<u64>,
    /// Bumped when the API server restarts: a request held in the network (a partition, latency) across a
    /// restart was on a connection that died with the server, so it fails instead of arriving later.
    server_generation: std::sync::atomic::AtomicU64,
    trace: Trace,
    /// When each (holder, epoch) last entered the Lease's history: a create, or a write with a new acquireTime (an
    /// acquire; renewals keep it). A leadership that takes effect later (see the elector's `Lead::starts`) still
    /// dates from it.
    written: Mutex<Written>,
}

/// See `Net::written`.
#[derive(Default)]
struct Written {
    /// (holder, epoch) → (its acquireTime, when it was written).
    at: BTreeMap<(String, u64), (Option<String>, Mark)>,
}

impl Net {
    pub fn new(seed: u64, trace: Trace) -> Arc<Self> {
        Arc::new(Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x6e65_7477_6f72_6b00)),
            active: Mutex::default(),
            watch_generation: watch::Sender::new(0),
            server_generation: std::sync::atomic::AtomicU64::new(0),
            trace,
            written: Mutex::default(),
        })
    }

    /// When `epoch` under `holder` last entered the Lease's history by a candidate's successful write.
    pub fn written(&self, holder: &str, epoch: u64) -> Option<Mark> {
        self.written
            .lock()
            .at
            .get(&(holder.to_owned(), epoch))
            .map(|(_, at)| *at)
    }

    fn note_written(&self, verb: &str, body: &[u8]) {
        let Ok(l) = serde_json::from_slice::<Lease>(body) else {
            return;
        };
        let spec = l.spec.unwrap_or_default();
        let key = (
            spec.holder_identity.unwrap_or_default(),
            u64::try_from(spec.lease_transitions.unwrap_or_default()).unwrap_or(0),
        );
        let acquired = spec.acquire_time.map(|t| t.0.to_string());
        let now = self.trace.mark();
        let mut w = self.written.lock();
        if verb == "POST" || w.at.get(&key).is_none_or(|(a, _)| *a != acquired) {
            w.at.insert(key, (acquired, now));
        }
    }

    /// Puts a request-level fault in force under `id` until [`Net::lift`].
    pub fn impose(&self, id: u64, fault: Fault) {
        self.active.lock().insert(id, fault);
    }

    pub fn lift(&self, id: u64) {
        self.active.lock().remove(&id);
    }

    /// The server restarted: connections opened before now are dead.
    pub fn server_restarted(&self) {
        self.server_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn server_generation(&self) -> u64 {
        self.server_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Ends every open watch.
    pub fn close_watches(&self) {
        self.watch_generation.send_modify(|g| *g += 1);
    }

    fn faults(&self) -> Vec<Fault> {
        self.active.lock().values().cloned().collect()
    }

    fn chance(&self, p: f64) -> bool {
        self.rng.lock().random_bool(p.clamp(0.0, 1.0))
    }

    fn pick(&self, n: usize) -> usize {
        self.rng.lock().random_range(0..n)
    }

    fn delay(&self, max: Duration) -> Duration {
        let ms = max.as_millis() as u64;
        Duration::from_millis(self.rng.lock().random_range(0..=ms))
    }
}

/// Gates that hold a process's traffic: each is a count, so overlapping faults nest.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gates {
    /// New requests wait (a partition, a frozen process).
    pub requests: u32,
    /// Watch frames are held back (a partition, a silent watch, a frozen process).
    pub frames: u32,
    /// Requests get no answer, ever (a half-open connection).
    pub blackhole: u32,
    /// Lists and watches answer 403.
    pub forbidden: u32,
}

/// One process's side of the network.
pub struct Proc {
    pub name: String,
    /// Which candidate slot the process fills (faults name slots).
    pub slot: usize,
    dead: watch::Sender<bool>,
    gates: watch::Sender<Gates>,
    requests: Mutex<Requests>,
    gets: Mutex<Vec<Duration>>,
    /// When the server last answered a request of this process (any answer but a failure, a watch included).
    answered: watch::Sender<Duration>,
    /// How many of this process's watch bodies are open.
    watching: std::sync::atomic::AtomicUsize,
    busy: std::sync::atomic::AtomicBool,
}

impl Proc {
    pub fn new(name: String, slot: usize, born: Duration) -> Arc<Self> {
        Arc::new(Self {
            name,
            slot,
            dead: watch::Sender::new(false),
            gates: watch::Sender::new(Gates::default()),
            requests: Mutex::new(Requests {
                born,
                ..Requests::default()
            }),
            gets: Mutex::default(),
            answered: watch::Sender::new(Duration::ZERO),
            watching: std::sync::atomic::AtomicUsize::new(0),
            busy: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Waits until this process is in touch with the server at `now` or later: at once if one of its watches
    /// is open, else until the server answers one of its requests. Returns when.
    pub async fn back_in_touch(&self, now: Duration) -> Duration {
        if self.watching.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return now;
        }
        let mut answered = self.answered.subscribe();
        answered.wait_for(|t| *t >= now).await.map_or(now, |t| *t)
    }

    /// The process is gone: every request fails, every watch ends, nothing more is counted.
    pub fn kill(&self, at: Duration) {
        self.requests.lock().died.get_or_insert(at);
        self.dead.send_replace(true);
    }

    pub fn is_dead(&self) -> bool {
        *self.dead.borrow()
    }

    pub fn dead(&self) -> watch::Receiver<bool> {
        self.dead.subscribe()
    }

    /// Changes the gates (`+1` to close one, `-1` to open it again).
    pub fn gate(&self, requests: i32, frames: i32) {
        self.gates.send_modify(|g| {
            g.requests = g.requests.saturating_add_signed(requests);
            g.frames = g.frames.saturating_add_signed(frames);
        });
    }

    /// Opens (`-1`) or closes (`+1`) the blackhole and the 403 on lists and watches.
    pub fn refuse(&self, blackhole: i32, forbidden: i32) {
        self.gates.send_modify(|g| {
            g.blackhole = g.blackhole.saturating_add_signed(blackhole);
            g.forbidden = g.forbidden.saturating_add_signed(forbidden);
        });
    }

    /// When this process sent each GET of the Lease (not lists or watches).
    pub fn gets(&self) -> Vec<Duration> {
        self.gets.lock().clone()
    }

    pub fn requests(&self) -> Requests {
        self.requests.lock().clone()
    }

    /// Counts a request; returns whether the process is in a busy loop (so many requests in one virtual second
    /// that virtual time might never move on again).
    fn count(&self, now: Duration) -> bool {
        let mut r = self.requests.lock();
        if r.died.is_some() {
            return false;
        }
        let n = r.per_second.entry(now.as_secs()).or_default();
        *n += 1;
        *n > BUSY_LOOP
    }
}

/// The service a process's `kube::Client` sends through.
#[derive(Clone)]
pub struct Transport<S> {
    inner: S,
    net: Arc<Net>,
    proc: Arc<Proc>,
}

impl<S> Transport<S> {
    pub fn new(inner: S, net: Arc<Net>, proc: Arc<Proc>) -> Self {
        Self { inner, net, proc }
    }
}

type Req = http::Request<kube::client::Body>;

impl<S, B> tower::Service<Req> for Transport<S>
where
    S: tower::Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<SimBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        let (net, proc) = (Arc::clone(&self.net), Arc::clone(&self.proc));
        Box::pin(send_noting_answers(inner, net, proc, req))
    }
}

/// What kind of request this is, for the faults and the trace.
struct Kind {
    watch: bool,
    write: bool,
    resumed_watch: bool,
    verb: String,
}

fn kind(req: &Req) -> Kind {
    let query = req.uri().query().unwrap_or_default();
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let resumed_watch = watch
        && query
            .split('&')
            .filter_map(|p| p.strip_prefix("resourceVersion="))
            .any(|v| !v.is_empty() && v != "0");
    let method = req.method().as_str().to_owned();
    let write = !matches!(req.method(), &http::Method::GET);
    let verb = if watch {
        "WATCH".to_owned()
    } else if req.method() == http::Method::GET && !req.uri().path().contains("/leases/") {
        "LIST".to_owned()
    } else {
        method
    };
    Kind {
        watch,
        write,
        resumed_watch,
        verb,
    }
}

/// Sends one request (see [`send`]) and notes when the server answered it with anything but a failure the elector
/// backs off after (an error status: 403, 410, 429, 5xx; or no answer at all): from then on the process is back in
/// touch, and liveness can be judged.
async fn send_noting_answers<S, B>(
    inner: S,
    net: Arc<Net>,
    proc: Arc<Proc>,
    req: Req,
) -> Result<http::Response<SimBody>, BoxError>
where
    S: tower::Service<Req, Response = http::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let r = send(inner, Arc::clone(&net), Arc::clone(&proc), req).await;
    let answered = r.as_ref().is_ok_and(|resp| {
        let code = resp.status().as_u16();
        !matches!(code, 403 | 410 | 429) && code < 500
    });
    if answered {
        proc.answered.send_replace(net.trace.now());
    }
    r
}

async fn send<S, B>(
    mut inner: S,
    net: Arc<Net>,
    proc: Arc<Proc>,
    req: Req,
) -> Result<http::Response<SimBody>, BoxError>
where
    S: tower::Service<Req, Response = http::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if proc.is_dead() {
        return Err(Box::new(NetError(
            "connection refused: the process is dead",
        )));
    }
    let k = kind(&req);
    let connected = net.server_generation();
    if proc.count(net.trace.now()) {
        if !proc.busy.swap(true, std::sync::atomic::Ordering::SeqCst) {
            net.trace.log(format!(
                "{} is in a busy loop: its requests hang from now on",
                proc.name
            ));
        }
        std::future::pending::<()>().await;
    }
    let mut dead = proc.dead();
    let mut gates = proc.gates.subscribe();
    // A partitioned or frozen process's request waits; a dead one's fails.
    tokio::select! {
        biased;
        _ = dead.wait_for(|d| *d) => return Err(Box::new(NetError("connection reset"))),
        _ = gates.wait_for(|g| g.requests == 0) => {}
    }
    if k.verb == "GET" {
        proc.gets.lock().push(net.trace.now());
    }
    let refused = *gates.borrow();
    if refused.blackhole > 0 {
        net.trace
            .log(format!("{} {}: no answer (blackhole)", proc.name, k.verb));
        let _ = dead.wait_for(|d| *d).await;
        return Err(Box::new(NetError("connection reset")));
    }
    if refused.forbidden > 0 && (k.watch || k.verb == "LIST") {
        net.trace.log(format!("{} {} -> 403", proc.name, k.verb));
        return Ok(status_response(403, "Forbidden"));
    }
    let faults = net.faults();
    let mine = |who: &Option<usize>| who.is_none_or(|w| w == proc.slot);
    for f in &faults {
        if let Fault::Latency { who, max } = f
            && mine(who)
        {
            let d = net.delay(*max);
            tokio::time::sleep(d).await;
        }
    }
    for f in &faults {
        match f {
            Fault::Errors { who, rate } if mine(who) && net.chance(*rate) => {
                let (code, reason) = [
                    (500, "InternalError"),
                    (503, "ServiceUnavailable"),
                    (429, "TooManyRequests"),
                ][net.pick(3)];
                net.trace
                    .log(format!("{} {} -> injected {code}", proc.name, k.verb));
                return Ok(status_response(code, reason));
            }
            Fault::Expired { rate } if k.resumed_watch && net.chance(*rate) => {
                net.trace
                    .log(format!("{} WATCH -> injected 410 Expired", proc.name));
                return Ok(expired_watch());
            }
            _ => {}
        }
    }
    if net.server_generation() != connected {
        net.trace.log(format!(
            "{} {}: connection died with the server while the request was held",
            proc.name, k.verb
        ));
        return Err(Box::new(NetError("connection reset: the server restarted")));
    }
    let lose = k.write
        && faults.iter().any(
            |f| matches!(f, Fault::LostAnswers { who, rate } if mine(who) && net.chance(*rate)),
        );
    let resp = tokio::select! {
        biased;
        _ = dead.wait_for(|d| *d) => return Err(Box::new(NetError("connection reset"))),
        r = inner.call(req) => r.map_err(Into::into)?,
    };
    let (parts, body) = resp.into_parts();
    if k.watch && parts.status.is_success() {
        let body = watch_body(body, &net, &proc);
        return Ok(http::Response::from_parts(parts, body));
    }
    let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
    net.trace
        .log(describe(&proc.name, &k.verb, parts.status.as_u16(), &bytes));
    if k.write && parts.status.is_success() {
        net.note_written(&k.verb, &bytes);
    }
    if lose {
        if net.chance(0.5) {
            net.trace.log(format!(
                "{} {}: answer lost (connection reset)",
                proc.name, k.verb
            ));
            return Err(Box::new(NetError(
                "connection reset after the request was sent",
            )));
        }
        net.trace.log(format!(
            "{} {}: answer lost (no answer ever)",
            proc.name, k.verb
        ));
        let _ = dead.wait_for(|d| *d).await;
        return Err(Box::new(NetError("connection reset")));
    }
    Ok(http::Response::from_parts(
        parts,
        Full::new(bytes).map_err(|e| match e {}).boxed_unsync(),
    ))
}

/// One trace line for a served request: verb, code, and for a Lease the version's holder and epoch.
fn describe(proc: &str, verb: &str, code: u16, body: &[u8]) -> String {
    if (200..300).contains(&code)
        && verb != "LIST"
        && let Ok(l) = serde_json::from_slice::<Lease>(body)
    {
        let spec = l.spec.unwrap_or_default();
        return format!(
            "{proc} {verb} -> {code} rv {} holder {:?} epoch {} ld {}",
            l.metadata.resource_version.unwrap_or_default(),
            spec.holder_identity.unwrap_or_default(),
            spec.lease_transitions.unwrap_or_default(),
            spec.lease_duration_seconds.unwrap_or_default(),
        );
    }
    format!("{proc} {verb} -> {code}")
}

fn status_response(code: u16, reason: &str) -> http::Response<SimBody> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "injected by the simulation", "reason": reason, "code": code,
        "details": { "retryAfterSeconds": 1 },
    });
    let mut resp = http::Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *resp.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if code == 429 {
        resp.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    resp
}

/// A watch that a real server answers for a resourceVersion its watch cache no longer has: 200, then one
/// ERROR event with 410 Expired, then the end.
fn expired_watch() -> http::Response<SimBody> {
    let event = serde_json::json!({
        "type": "ERROR",
        "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version (injected by the simulation)", "reason": "Expired", "code": 410,
        },
    });
    http::Response::new(
        Full::new(Bytes::from(format!("{event}\n")))
            .map_err(|e| match e {})
            .boxed_unsync(),
    )
}

/// A watch body that ends when the process dies or every watch is closed, and holds its frames back while the
/// process's frame gate is closed.
fn watch_body<B>(body: B, net: &Net, proc: &Arc<Proc>) -> SimBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// Counts the body as an open watch of its process until it is dropped.
    struct Open(Arc<Proc>);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0
                .watching
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    struct St<B> {
        body: Pin<Box<B>>,
        dead: watch::Receiver<bool>,
        gates: watch::Receiver<Gates>,
        closed: watch::Receiver<u64>,
        _open: Open,
    }
    proc.watching
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut closed = net.watch_generation.subscribe();
    closed.mark_unchanged();
    // SIM_TRACE_WATCH=1 traces every watch event delivered (long traces; for reading one seed).
    let traced =
        std::env::var_os("SIM_TRACE_WATCH").map(|_| (net.trace.clone(), proc.name.clone()));
    let st = St {
        body: Box::pin(body),
        dead: proc.dead(),
        gates: proc.gates.subscribe(),
        closed,
        _open: Open(Arc::clone(proc)),
    };
    let frames = futures::stream::unfold(st, move |mut st| {
        let traced = traced.clone();
        async move {
            let frame = tokio::select! {
                biased;
                _ = st.dead.wait_for(|d| *d) => return None,
                _ = st.closed.changed() => return None,
                f = st.body.frame() => f?,
            };
            let frame: Result<Frame<Bytes>, BoxError> = frame.map_err(Into::into);
            tokio::select! {
                biased;
                _ = st.dead.wait_for(|d| *d) => return None,
                _ = st.closed.changed() => return None,
                r = st.gates.wait_for(|g| g.frames == 0) => r.ok()?,
            };
            if let (Some((trace, name)), Ok(f)) = (&traced, &frame)
                && let Some(data) = f.data_ref()
            {
                for line in String::from_utf8_lossy(data).lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                    let o = &v["object"];
                    trace.log(format!(
                        "{name} watch {} rv {} holder {} epoch {}",
                        v["type"],
                        o["metadata"]["resourceVersion"],
                        o["spec"]["holderIdentity"],
                        o["spec"]["leaseTransitions"]
                    ));
                }
            }
            Some((frame, st))
        }
    });
    StreamBody::new(frames.boxed()).boxed_unsync()
}
