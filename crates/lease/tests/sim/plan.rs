//! The plan of one simulated run, drawn from its seed before anything runs: timings, candidates, and a
//! schedule of faults. Everything random about a run is decided here or drawn later from generators seeded
//! from the same seed, so a seed names exactly one run.

use std::{fmt, time::Duration};

use rand::{Rng, SeedableRng, rngs::StdRng};

/// Faults start no earlier than this, so that the first election happens undisturbed at least sometimes.
const FIRST_FAULT: Duration = Duration::from_secs(3);
/// Faults start before this.
const FAULT_WINDOW: Duration = Duration::from_secs(50);

/// The election timings of one run.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub ld: Duration,
    pub rd: Duration,
    pub rp: Duration,
}

impl Timings {
    /// The takeover spread J: RP, the elector's default.
    pub fn spread(&self) -> Duration {
        self.rp
    }
}

/// What a server-wide or per-request fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Every request of `who` (or everyone's) waits a random 0..=max before it is served.
    Latency { who: Option<usize>, max: Duration },
    /// A fraction of `who`'s writes are applied but their answer is lost: an error, or no answer at all.
    LostAnswers { who: Option<usize>, rate: f64 },
    /// A fraction of requests answer 500, 503, or 429 with Retry-After, without being served.
    Errors { who: Option<usize>, rate: f64 },
    /// Every open watch ends now.
    CloseWatches,
    /// `who`'s watches stop delivering (the connection stays open) for the fault's duration.
    SilentWatches { who: usize },
    /// A fraction of watch requests that resume from a resourceVersion get 410 Expired.
    Expired { rate: f64 },
    /// The API server restarts, keeping its state.
    RestartKeep,
    /// The API server restarts with its state wiped: new uids, resourceVersions start over.
    RestartWipe,
    /// Take a backup of the server's state now (used by a later restore).
    Snapshot,
    /// Restore the last backup: state and resourceVersion rewound, uids kept (an etcd restore). `bumped`: done as
    /// the Kubernetes documentation recommends (etcdutl `--bump-revision --mark-compacted`), so resourceVersions
    /// are never reused; plain: new writes reuse resourceVersions clients saw before, with other content.
    Restore { bumped: bool },
    /// A third party rewrites the Lease's labels or annotations every `every`, for the fault's duration.
    LabelChurn { every: Duration },
    /// A third party removes our managed-by label (a label-selected watch sees DELETED).
    LabelRemoved,
    /// A third party blanks the holder without the release annotation.
    HolderBlanked,
    /// A third party sets `leaseDurationSeconds`.
    Duration { seconds: i64 },
    /// A third party sets `leaseTransitions`.
    Transitions { value: i32 },
    /// A third party deletes the Lease.
    Deleted,
    /// `who` is cut off: its requests hang and its watches freeze for the fault's duration.
    Partition { who: usize },
    /// `who` crashes (no release) and a new process with a new instance starts after the fault's duration.
    Crash { who: usize },
    /// `who` shuts down gracefully (stops, releases) and a new process starts after the fault's duration.
    Restart { who: usize },
    /// `who` stalls: its elector and its I/O stop while the clock runs on, for the fault's duration.
    Freeze { who: usize },
    /// A second process starts with `who`'s identity (two containers of one pod sharing `POD_UID`) and runs to
    /// the end.
    SharedIdentity { who: usize },
    /// `who` restarts with its wall clock shifted by this many seconds (renewTime and acquireTime lie).
    WallClock { who: usize, offset_secs: i64 },
    /// `who`'s requests sent during the fault never get an answer (a half-open connection).
    Blackhole { who: usize },
    /// `who`'s lists and watches are refused with 403 (a Role without list and watch) during the fault.
    WatchForbidden { who: usize },
    /// The fault inside, aimed at whichever candidate leads when it begins (slot 0 when none does).
    AtLeader(Box<Fault>),
}

impl Fault {
    /// The same fault aimed at `slot`, for faults that name one.
    pub fn aimed_at(&self, slot: usize) -> Self {
        let mut f = self.clone();
        match &mut f {
            Self::Latency { who, .. }
            | Self::LostAnswers { who, .. }
            | Self::Errors { who, .. } => {
                *who = Some(slot);
            }
            Self::SilentWatches { who }
            | Self::Partition { who }
            | Self::Crash { who }
            | Self::Restart { who }
            | Self::Freeze { who }
            | Self::SharedIdentity { who }
            | Self::WallClock { who, .. }
            | Self::Blackhole { who }
            | Self::WatchForbidden { who } => *who = slot,
            _ => {}
        }
        f
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = |w: &Option<usize>| w.map_or("everyone".to_owned(), |c| format!("c{c}"));
        match self {
            Self::Latency { who: w, max } => write!(f, "latency up to {max:?} for {}", who(w)),
            Self::LostAnswers { who: w, rate } => {
                write!(
                    f,
                    "lost answers to {:.0}% of {}'s writes",
                    rate * 100.0,
                    who(w)
                )
            }
            Self::Errors { who: w, rate } => {
                write!(
                    f,
                    "500/503/429 for {:.0}% of {}'s requests",
                    rate * 100.0,
                    who(w)
                )
            }
            Self::CloseWatches => write!(f, "every watch closed"),
            Self::SilentWatches { who } => write!(f, "c{who}'s watches silent"),
            Self::Expired { rate } => {
                write!(f, "410 Expired for {:.0}% of resumed watches", rate * 100.0)
            }
            Self::RestartKeep => write!(f, "server restart, state kept"),
            Self::RestartWipe => write!(f, "server restart, state wiped"),
            Self::Snapshot => write!(f, "server backup taken"),
            Self::Restore { bumped: true } => write!(
                f,
                "server restored from backup (resourceVersion rewound, uids kept, revision bumped)"
            ),
            Self::Restore { bumped: false } => write!(
                f,
                "server restored from backup (resourceVersion rewound, uids kept, resourceVersions reused)"
            ),
            Self::LabelChurn { every } => write!(f, "third party rewrites labels every {every:?}"),
            Self::LabelRemoved => write!(f, "third party removes the managed-by label"),
            Self::HolderBlanked => write!(f, "third party blanks the holder"),
            Self::Duration { seconds } => {
                write!(f, "third party sets leaseDurationSeconds {seconds}")
            }
            Self::Transitions { value } => write!(f, "third party sets leaseTransitions {value}"),
            Self::Deleted => write!(f, "third party deletes the Lease"),
            Self::Partition { who } => write!(f, "c{who} partitioned"),
            Self::Crash { who } => write!(f, "c{who} crashes, restarts with a new instance"),
            Self::Restart { who } => write!(f, "c{who} shuts down gracefully, restarts"),
            Self::Freeze { who } => write!(f, "c{who} frozen"),
            Self::SharedIdentity { who } => {
                write!(f, "a second process with c{who}'s identity starts")
            }
            Self::Blackhole { who } => write!(f, "c{who}'s requests get no answer"),
            Self::WatchForbidden { who } => write!(f, "c{who}'s lists and watches answer 403"),
            Self::AtLeader(inner) => write!(f, "at the leader: {inner}"),
            Self::WallClock { who, offset_secs } => {
                write!(
                    f,
                    "c{who} restarts with its wall clock {offset_secs:+} s off"
                )
            }
        }
    }
}

/// One fault: from `at`, for `lasting` (zero for instant faults).
#[derive(Debug, Clone)]
pub struct Scheduled {
    pub at: Duration,
    pub lasting: Duration,
    pub fault: Fault,
}

impl Scheduled {
    /// When the fault's effect ends.
    pub fn end(&self) -> Duration {
        self.at + self.lasting
    }
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub timings: Timings,
    /// How many candidates start at time zero.
    pub candidates: usize,
    /// Faults, in order of start.
    pub faults: Vec<Scheduled>,
    /// Written by a test rather than drawn from the seed (the seed then only drives the jitter).
    pub scripted: bool,
}

impl Plan {
    /// The plan for `seed`.
    pub fn draw(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let timings = [
            (2, 1500, 500),
            (3, 2000, 500),
            (3, 2500, 1000),
            (4, 3000, 1000),
            (5, 3000, 2000),
        ][rng.random_range(0..5)];
        let timings = Timings {
            ld: Duration::from_secs(timings.0),
            rd: Duration::from_millis(timings.1),
            rp: Duration::from_millis(timings.2),
        };
        let candidates = rng.random_range(2..=5);
        let n_faults = rng.random_range(1..=6);
        let mut faults: Vec<Scheduled> = (0..n_faults)
            .flat_map(|_| draw_fault(&mut rng, timings, candidates))
            .collect();
        faults.sort_by_key(|f| f.at);
        Self {
            seed,
            timings,
            candidates,
            faults,
            scripted: false,
        }
    }

    /// Whether a plain restore reuses resourceVersions in this run. Then no client can be safe: a write prepared
    /// against a version seen before the restore passes its resourceVersion precondition against another
    /// version that reuses the number. Such runs check liveness only.
    pub fn reuses_resource_versions(&self) -> bool {
        self.faults
            .iter()
            .any(|f| f.fault == Fault::Restore { bumped: false })
    }

    /// When the last fault's effect ends (zero without faults).
    pub fn quiet_at(&self) -> Duration {
        self.faults
            .iter()
            .map(Scheduled::end)
            .max()
            .unwrap_or_default()
    }
}

/// How long a watch resumed beyond the server's resourceVersion waits before it fails (the watch cache's 3 s).
pub const WATCH_CACHE_WAIT: Duration = Duration::from_secs(3);

/// A restore at `at`. A plain one reuses resourceVersions, so watches resumed from a reused one wait
/// [`WATCH_CACHE_WAIT`] before they fail and relist: its effect lasts that long.
pub fn restore(at: Duration, bumped: bool) -> Scheduled {
    Scheduled {
        at,
        lasting: if bumped {
            Duration::ZERO
        } else {
            WATCH_CACHE_WAIT
        },
        fault: Fault::Restore { bumped },
    }
}

fn ms(rng: &mut StdRng, lo: Duration, hi: Duration) -> Duration {
    Duration::from_millis(rng.random_range(lo.as_millis() as u64..=hi.as_millis() as u64))
}

/// One fault (a restore comes with the backup it restores, taken earlier).
fn draw_fault(rng: &mut StdRng, t: Timings, candidates: usize) -> Vec<Scheduled> {
    let at = ms(rng, FIRST_FAULT, FAULT_WINDOW);
    let who = rng.random_range(0..candidates);
    let anyone = if rng.random_bool(0.5) {
        Some(who)
    } else {
        None
    };
    let short = ms(rng, Duration::from_millis(100), t.ld * 3);
    let (fault, lasting) = match rng.random_range(0..23) {
        0 => (
            Fault::Latency {
                who: anyone,
                max: ms(rng, Duration::ZERO, Duration::from_secs(3)),
            },
            short,
        ),
        1 | 2 => (
            Fault::LostAnswers {
                who: anyone,
                rate: rng.random_range(0.1..=1.0),
            },
            short,
        ),
        3 => (
            Fault::Errors {
                who: anyone,
                rate: rng.random_range(0.1..=1.0),
            },
            short,
        ),
        4 => (Fault::CloseWatches, Duration::ZERO),
        5 => (Fault::SilentWatches { who }, short),
        6 => (
            Fault::Expired {
                rate: rng.random_range(0.2..=1.0),
            },
            short,
        ),
        7 => (Fault::RestartKeep, Duration::ZERO),
        // Like a plain restore's, a wipe's effect lasts the watch cache's wait: a watch resumed from a
        // resourceVersion the wiped server has not reached waits that long before it fails and relists.
        8 => (Fault::RestartWipe, WATCH_CACHE_WAIT),
        9 | 10 => {
            let backup = ms(rng, Duration::ZERO, at);
            return vec![
                Scheduled {
                    at: backup,
                    lasting: Duration::ZERO,
                    fault: Fault::Snapshot,
                },
                restore(at, rng.random_bool(0.5)),
            ];
        }
        11 => (
            Fault::LabelChurn {
                every: ms(rng, Duration::from_millis(100), t.ld / 2),
            },
            short,
        ),
        12 => (Fault::LabelRemoved, Duration::ZERO),
        13 => (Fault::HolderBlanked, Duration::ZERO),
        14 => {
            let ld = t.ld.as_secs() as i64;
            let seconds = [0, -5, 1, ld * 5, 3600, i64::from(i32::MAX)][rng.random_range(0..6)];
            (Fault::Duration { seconds }, Duration::ZERO)
        }
        15 => (
            Fault::Transitions {
                value: rng.random_range(-1..=12),
            },
            Duration::ZERO,
        ),
        16 => (Fault::Deleted, Duration::ZERO),
        17 => (Fault::Partition { who }, short),
        18 => (Fault::Crash { who }, short),
        19 => (Fault::Restart { who }, short),
        20 => (
            Fault::Freeze { who },
            ms(rng, Duration::from_millis(100), t.ld * 2),
        ),
        21 if rng.random_bool(0.5) => (Fault::Blackhole { who }, short),
        21 => (Fault::WatchForbidden { who }, short),
        _ => {
            if rng.random_bool(0.5) {
                (Fault::SharedIdentity { who }, Duration::ZERO)
            } else {
                let offset_secs = [-3600, -30, 30, 3600][rng.random_range(0..4)];
                (Fault::WallClock { who, offset_secs }, short)
            }
        }
    };
    let fault = if rng.random_bool(0.3) && fault.aimed_at(usize::MAX) != fault {
        Fault::AtLeader(Box::new(fault))
    } else {
        fault
    };
    vec![Scheduled { at, lasting, fault }]
}
