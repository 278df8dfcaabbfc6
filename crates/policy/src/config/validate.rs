//! The rules that span several settings: the election timing, member timing, listeners,
//! tasks, and Lease names that would collide. Each error names the settings involved.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::layer::{RawTask, Setting};
use crate::config::model::{TaskConfig, TaskDefaults, TaskMode, Timing};
use leasehold_core::timing::{self, TimingViolation};

use crate::go_duration::go_duration;
use crate::lease_name::{LeaseName, LeasePrefix};

fn shown(s: &Setting<Duration>) -> String {
    go_duration(s.value)
}

/// LD > RD > 1.2·RP > 0 (`leasehold_core::timing`, the rule the elector checks too). LD is already whole
/// seconds ≥ 1 by parsing. The error names the setting to change and the one it is measured against.
pub(crate) fn timing(
    ld: &Setting<Duration>,
    rd: &Setting<Duration>,
    rp: &Setting<Duration>,
) -> Result<Timing, ConfigError> {
    let rule = timing::RULE;
    let err = |at: &Setting<Duration>, accepted: String| ConfigError::Invalid {
        key: at.key.clone(),
        value: shown(at),
        accepted: format!("{accepted} ({rule})"),
    };
    match timing::check(ld.value, rd.value, rp.value) {
        Ok(()) => {}
        Err(TimingViolation::RetryPeriodZero) => {
            return Err(err(
                rp,
                "the retry period must be greater than 0".to_owned(),
            ));
        }
        Err(TimingViolation::RenewDeadlineTooShort) => {
            return Err(err(
                rd,
                format!(
                    "it must be more than 1.2 × {}={} = {}, so a failed renew can be retried before \
                     the deadline",
                    rp.key,
                    shown(rp),
                    go_duration(rp.value.mul_f64(1.2))
                ),
            ));
        }
        Err(TimingViolation::LeaseDurationTooShort) => {
            return Err(err(
                rd,
                format!(
                    "it must be less than {}={}, so a leader stops acting before others may take \
                     its Lease",
                    ld.key,
                    shown(ld)
                ),
            ));
        }
        Err(other) => return Err(err(rd, other.to_string())),
    }
    Ok(Timing {
        lease_duration: ld.value,
        renew_deadline: rd.value,
        retry_period: rp.value,
    })
}

/// J < LD: a staggered takeover must not take longer than a whole lease term.
pub(crate) fn takeover_spread(
    spread: &Setting<Duration>,
    ld: &Setting<Duration>,
) -> Result<Duration, ConfigError> {
    if spread.value >= ld.value {
        return Err(ConfigError::Invalid {
            key: spread.key.clone(),
            value: shown(spread),
            accepted: format!(
                "it must be less than {}={}, or a staggered takeover would outlast a lease term",
                ld.key,
                shown(ld)
            ),
        });
    }
    Ok(spread.value)
}

/// 0 < member renew ≤ member duration / 2: one lost renew must not drop a member and
/// reshuffle the spread tasks.
pub(crate) fn member_timing(
    duration: &Setting<Duration>,
    renew: &Setting<Duration>,
) -> Result<(), ConfigError> {
    if renew.value.is_zero() || renew.value * 2 > duration.value {
        return Err(ConfigError::Invalid {
            key: renew.key.clone(),
            value: shown(renew),
            accepted: format!(
                "it must be greater than 0 and at most half of {}={}, so one lost renew never \
                 drops a member",
                duration.key,
                shown(duration)
            ),
        });
    }
    Ok(())
}

/// The two listeners must differ, and a control API off loopback needs a token.
pub(crate) fn listeners(
    listen: &Setting<SocketAddr>,
    probe: &Setting<SocketAddr>,
    token: Option<&Setting<String>>,
) -> Result<(), ConfigError> {
    if listen.value.port() != 0 && listen.value == probe.value {
        return Err(ConfigError::Invalid {
            key: probe.key.clone(),
            value: probe.value.to_string(),
            accepted: format!(
                "it must differ from {}={}: probes and the control API need separate listeners",
                listen.key, listen.value
            ),
        });
    }
    if !listen.value.ip().is_loopback() && token.is_none() {
        return Err(ConfigError::Invalid {
            key: listen.key.clone(),
            value: listen.value.to_string(),
            accepted: "the control API is off loopback, so its mutating endpoints need a token: \
                       set LEASEHOLD_API_TOKEN (api.token), or listen on 127.0.0.1"
                .into(),
        });
    }
    Ok(())
}

/// A task name: 1–63 characters of letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit. It becomes `LEASEHOLD_TASK`, a metric label and (sanitised) a Lease name.
fn valid_task_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Applies the task defaults and checks each task and the set of tasks.
pub(crate) fn tasks(
    raw: Vec<RawTask>,
    namespaces: &Setting<Vec<String>>,
    timing: &Timing,
    timing_keys: (&str, &str),
) -> Result<Vec<TaskConfig>, ConfigError> {
    let defaults = TaskDefaults::default();
    let mut out: Vec<TaskConfig> = Vec::with_capacity(raw.len());
    for task in raw {
        let key = |k: &str| format!("{}.{k}", task.key);
        if !valid_task_name(&task.name) {
            return Err(ConfigError::Invalid {
                key: key("name"),
                value: format!("{:?}", task.name),
                accepted: "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or \
                           digit"
                    .into(),
            });
        }
        if let Some(i) = out.iter().position(|t| t.name == task.name) {
            return Err(ConfigError::Invalid {
                key: key("name"),
                value: format!("{:?}", task.name),
                accepted: format!("task names must be unique, and task[{i}] already uses it"),
            });
        }
        if task.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(ConfigError::Invalid {
                key: key("command"),
                value: format!("{:?}", task.command),
                accepted: "the command needs at least a program, like [\"/usr/bin/collector\"]"
                    .into(),
            });
        }
        let namespace = match task.namespace {
            None => namespaces.value.first().cloned().unwrap_or_default(),
            Some(ns) if namespaces.value.contains(&ns) => ns,
            Some(ns) => {
                return Err(ConfigError::Invalid {
                    key: key("namespace"),
                    value: format!("{ns:?}"),
                    accepted: format!(
                        "it must be one of the election namespaces {:?} (from {})",
                        namespaces.value, namespaces.key
                    ),
                });
            }
        };
        let election = task.election.unwrap_or(defaults.election);
        let mode = task.mode.unwrap_or(defaults.mode);
        if mode == TaskMode::Spread && !election {
            return Err(ConfigError::Invalid {
                key: key("mode"),
                value: "\"spread\"".into(),
                accepted: "a spread task is placed by task election, so it needs election = true"
                    .into(),
            });
        }
        let (grace_key, grace) = match task.grace {
            Some(g) => (key("grace"), g),
            None => (
                format!("default {}", key("grace")),
                defaults.grace_for(timing),
            ),
        };
        let window = timing.lease_duration.saturating_sub(timing.renew_deadline);
        if election && grace >= window {
            return Err(ConfigError::Invalid {
                key: grace_key,
                value: go_duration(grace),
                accepted: format!(
                    "it must be less than {} − {} = {}, so the task is gone before another \
                     leader may start it; set a shorter grace or a longer gap between LD and RD",
                    timing_keys.0,
                    timing_keys.1,
                    go_duration(window)
                ),
            });
        }
        out.push(TaskConfig {
            name: task.name,
            command: task.command,
            election,
            namespace,
            mode,
            grace,
            tags: task.tags,
        });
    }
    Ok(out)
}

/// No two configured Leases (election namespaces, spread tasks) may share a name; see
/// [`crate::lease_name`] for when that can happen.
pub(crate) fn lease_names(
    prefix: &LeasePrefix,
    namespaces: &Setting<Vec<String>>,
    tasks: &[TaskConfig],
) -> Result<(), ConfigError> {
    let mut seen: Vec<(LeaseName, String)> = Vec::new();
    let election = namespaces
        .value
        .iter()
        .map(|ns| (LeaseName::election(prefix, ns), namespaces.key.clone()));
    let spread = tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.mode == TaskMode::Spread)
        .map(|(i, t)| (LeaseName::task(prefix, &t.name), format!("task[{i}].name")));
    for (name, key) in election.chain(spread) {
        if let Some((first, _)) = seen.iter().find(|(n, _)| n.name() == name.name()) {
            return Err(ConfigError::Invalid {
                key,
                value: format!("{:?}", name.raw()),
                accepted: format!(
                    "its Lease name {:?} is also the Lease name of {} {:?}; rename one of them",
                    name.name(),
                    first.kind(),
                    first.raw()
                ),
            });
        }
        seen.push((name, key));
    }
    Ok(())
}
