//! Merging the env layer over the TOML layer over the defaults, then validating.

use crate::config::error::ConfigError;
use crate::config::layer::{Layer, Setting, pick};
use crate::config::model::{
    ApiConfig, Config, ElectionSettings, LeaseConfig, MemberTiming, Timing,
};
use crate::config::{env, validate, values};
use crate::tags::Tags;

/// Env over TOML over defaults; `service_account_namespace` is the namespace the caller read
/// from the service-account token directory, if any.
pub(crate) fn merge(
    env_layer: Layer,
    file: Layer,
    service_account_namespace: Option<&str>,
) -> Result<Config, ConfigError> {
    let election_defaults = ElectionSettings::default();
    let lease_defaults = LeaseConfig::default();
    let api_defaults = ApiConfig::default();
    let timing_defaults = Timing::default();
    let member_defaults = MemberTiming::default();

    let enabled = pick(
        env_layer.enabled,
        file.enabled,
        election_defaults.enabled,
        "election.enable",
    );
    let namespaces = pick(
        env_layer.namespaces,
        file.namespaces,
        election_defaults.namespaces,
        "election.namespace",
    );
    let namespace_tag = pick(
        env_layer.namespace_tag,
        file.namespace_tag,
        election_defaults.namespace_tag,
        "election.enable_namespace_tag",
    );
    let whitelist = pick(
        env_layer.whitelist,
        file.whitelist,
        election_defaults.node_whitelist,
        "election.node_whitelist",
    );
    let mut election_tags = election_defaults.tags;
    election_tags.overlay(&file.election_tags);
    election_tags.overlay(&env_layer.election_tags);
    let mut host_tags = Tags::new();
    host_tags.overlay(&file.host_tags);
    host_tags.overlay(&env_layer.host_tags);
    if let Some(cluster) = env_layer.cluster_name.as_deref() {
        for tags in [&mut election_tags, &mut host_tags] {
            if tags.get(env::CLUSTER_NAME_TAG).is_none() {
                tags.insert(env::CLUSTER_NAME_TAG, cluster);
            }
        }
    }

    let lease_namespace = match (
        env_layer.lease_namespace,
        file.lease_namespace,
        env_layer.pod_namespace,
        service_account_namespace,
    ) {
        (Some(s), ..) | (None, Some(s), ..) | (None, None, Some(s), _) => s.value,
        (None, None, None, Some(sa)) => {
            values::parse_kube_namespace("the service-account namespace", sa)?
        }
        (None, None, None, None) => lease_defaults.namespace,
    };
    let prefix = pick(
        env_layer.prefix,
        file.prefix,
        lease_defaults.prefix,
        "lease.prefix",
    );
    let ld = pick(
        env_layer.lease_duration,
        file.lease_duration,
        timing_defaults.lease_duration,
        "lease.duration",
    );
    let rd = pick(
        env_layer.renew_deadline,
        file.renew_deadline,
        timing_defaults.renew_deadline,
        "lease.renew_deadline",
    );
    let rp = pick(
        env_layer.retry_period,
        file.retry_period,
        timing_defaults.retry_period,
        "lease.retry_period",
    );
    let timing = validate::timing(&ld, &rd, &rp)?;
    // The spread follows RP unless set: "J is the takeover spread (default RP)".
    let spread = env_layer
        .takeover_spread
        .or(file.takeover_spread)
        .unwrap_or_else(|| Setting::new(format!("{} (default: RP)", rp.key), rp.value));
    let takeover_spread = validate::takeover_spread(&spread, &ld)?;
    // The settle time follows RP unless set: issue 6 makes it 2×RP by default.
    let settle = env_layer
        .settle
        .or(file.settle)
        .unwrap_or_else(|| Setting::new(format!("{} (default: 2×RP)", rp.key), rp.value * 2));
    let member_duration = pick(
        env_layer.member_duration,
        file.member_duration,
        member_defaults.lease_duration,
        "lease.member_duration",
    );
    let member_renew = pick(
        env_layer.member_renew,
        file.member_renew,
        member_defaults.renew_period,
        "lease.member_renew",
    );
    validate::member_timing(&member_duration, &member_renew)?;

    let listen = pick(
        env_layer.listen,
        file.listen,
        api_defaults.listen,
        "api.listen",
    );
    let probe_listen = pick(
        env_layer.probe_listen,
        file.probe_listen,
        api_defaults.probe_listen,
        "api.probe_listen",
    );
    let token = env_layer.token.or(file.token);
    validate::listeners(&listen, &probe_listen, token.as_ref())?;
    let log_format = pick(
        env_layer.log_format,
        file.log_format,
        api_defaults.log_format,
        "api.log_format",
    );

    let tasks = validate::tasks(file.tasks, &namespaces, &timing, (&ld.key, &rd.key))?;
    validate::lease_names(&prefix.value, &namespaces, &tasks)?;

    Ok(Config {
        election: ElectionSettings {
            enabled: enabled.value,
            namespaces: namespaces.value,
            namespace_tag: namespace_tag.value,
            node_whitelist: whitelist.value,
            tags: election_tags,
        },
        global_host_tags: host_tags,
        lease: LeaseConfig {
            namespace: lease_namespace,
            prefix: prefix.value,
            timing,
            takeover_spread,
            settle: settle.value,
            member: MemberTiming {
                lease_duration: member_duration.value,
                renew_period: member_renew.value,
            },
        },
        api: ApiConfig {
            listen: listen.value,
            probe_listen: probe_listen.value,
            token: token.map(|t| t.value),
            log_format: log_format.value,
        },
        tasks,
    })
}
