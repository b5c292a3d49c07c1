//! `orderflow topics`: make Kafka's topics match `orderflow_platform::topics::topology`. Creates what
//! is missing, puts managed settings (retention, cleanup policy) back where they drifted, and reports
//! what Kafka cannot change in place (fewer partitions or another replication factor) for a person to
//! decide. Idempotent: a second run reports every topic `unchanged`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use orderflow_platform::topics::TopicSpec;
use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

const TIMEOUT: Duration = Duration::from_secs(30);

/// What to do about topics that differ from the topology.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// Only report; change nothing.
    pub check: bool,
    /// Raise the partition count of a topic that has fewer than specified (moves keys between
    /// partitions, so per-key order across the change is lost: never done without this flag).
    pub add_partitions: bool,
}

/// What one topic looks like on the broker.
struct Existing {
    partitions: i32,
    replication: i32,
}

/// Bring every topic in line with `topology`; print one line per topic. Fails when a topic is still
/// not as specified afterwards (or, with `check`, when anything differs).
pub async fn ensure(bootstrap: &str, topology: &[TopicSpec], mode: Mode) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating a Kafka admin client")?;
    let existing = describe_topics(&admin, bootstrap)?;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let mut problems = 0;

    for spec in topology {
        let Some(current) = existing.get(&spec.name) else {
            if mode.check {
                report(spec, "MISSING", &describe(spec));
                problems += 1;
                continue;
            }
            create(&admin, spec, &options).await?;
            report(spec, "created", &describe(spec));
            continue;
        };

        let mut changes = Vec::new();
        let mut drift = Vec::new();
        if current.replication != spec.replication {
            drift.push(format!(
                "replication factor {} (want {}; change it with a partition reassignment)",
                current.replication, spec.replication
            ));
        }
        if current.partitions > spec.partitions {
            drift.push(format!(
                "{} partitions (want {}; Kafka cannot remove partitions)",
                current.partitions, spec.partitions
            ));
        } else if current.partitions < spec.partitions {
            if mode.add_partitions && !mode.check {
                admin
                    .create_partitions(
                        &[NewPartitions::new(&spec.name, spec.partitions as usize)],
                        &options,
                    )
                    .await
                    .context("adding partitions")?
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|(t, e)| anyhow::anyhow!("adding partitions to {t}: {e}"))?;
                changes.push(format!(
                    "partitions {} -> {}",
                    current.partitions, spec.partitions
                ));
            } else {
                drift.push(format!(
                    "{} partitions (want {}; adding partitions moves keys between partitions: \
                     rerun with --add-partitions if that is acceptable)",
                    current.partitions, spec.partitions
                ));
            }
        }

        let (differs, dynamic) = config_drift(&admin, spec, &options).await?;
        if !differs.is_empty() {
            let described = differs
                .iter()
                .map(|(key, have, want)| format!("{key} {have} -> {want}"))
                .collect::<Vec<_>>()
                .join(", ");
            if mode.check {
                drift.push(described);
            } else {
                alter(&admin, spec, &dynamic, &options).await?;
                changes.push(described);
            }
        }

        match (changes.is_empty(), drift.is_empty()) {
            (true, true) => report(spec, "unchanged", ""),
            (false, true) => report(spec, "updated", &changes.join(", ")),
            (_, false) => {
                let mut what = changes;
                what.extend(drift);
                report(spec, "DRIFT", &what.join("; "));
                problems += 1;
            }
        }
    }

    if problems > 0 {
        bail!(
            "{problems} topic(s) are not as platform/src/topics.rs specifies (see the lines marked above)"
        );
    }
    Ok(())
}

fn report(spec: &TopicSpec, status: &str, detail: &str) {
    println!("{:<40} {:<10} {detail}", spec.name, status);
}

fn describe(spec: &TopicSpec) -> String {
    let mut parts = vec![
        format!("partitions {}", spec.partitions),
        format!("replication {}", spec.replication),
    ];
    parts.extend(spec.configs.iter().map(|(k, v)| format!("{k} {v}")));
    parts.join(", ")
}

fn describe_topics(
    admin: &AdminClient<DefaultClientContext>,
    bootstrap: &str,
) -> anyhow::Result<HashMap<String, Existing>> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, TIMEOUT)
        .with_context(|| {
            format!("Kafka is not reachable at {bootstrap}: start it with `scripts/stack up kafka`")
        })?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| {
            let replication = t
                .partitions()
                .iter()
                .map(|p| p.replicas().len() as i32)
                .max()
                .unwrap_or(0);
            (
                t.name().to_string(),
                Existing {
                    partitions: t.partitions().len() as i32,
                    replication,
                },
            )
        })
        .collect())
}

async fn create(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
    options: &AdminOptions,
) -> anyhow::Result<()> {
    let mut topic = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication),
    );
    for (key, value) in &spec.configs {
        topic = topic.set(key, value);
    }
    let results = admin
        .create_topics(&[topic], options)
        .await
        .with_context(|| format!("creating topic {}", spec.name))?;
    for result in results {
        match result {
            Ok(_) => {}
            // Someone else created it between our look and our create: fine, it is checked next run.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, error)) => bail!("creating topic {topic}: {error}"),
        }
    }
    Ok(())
}

type Differences = Vec<(&'static str, String, String)>;

/// The managed settings whose value differs, and every setting set on the topic itself (which a
/// non-incremental alter must repeat, or Kafka would drop them).
async fn config_drift(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
    options: &AdminOptions,
) -> anyhow::Result<(Differences, Vec<(String, String)>)> {
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(&spec.name)], options)
        .await
        .with_context(|| format!("describing the configuration of {}", spec.name))?;
    let resource = results
        .into_iter()
        .next()
        .context("no configuration returned")?
        .map_err(|e| anyhow::anyhow!("describing the configuration of {}: {e}", spec.name))?;
    let entries = resource.entry_map();
    let differs = spec
        .configs
        .iter()
        .filter_map(|(key, want)| {
            let have = entries
                .get(key)
                .and_then(|e| e.value.clone())
                .unwrap_or_default();
            (have != *want).then(|| (*key, have, want.clone()))
        })
        .collect();
    let dynamic = resource
        .entries
        .iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic)
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    Ok((differs, dynamic))
}

async fn alter(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
    dynamic: &[(String, String)],
    options: &AdminOptions,
) -> anyhow::Result<()> {
    let mut wanted: Vec<(&str, &str)> = dynamic
        .iter()
        .filter(|(k, _)| spec.config(k).is_none())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    wanted.extend(spec.configs.iter().map(|(k, v)| (*k, v.as_str())));
    let mut change = AlterConfig::new(ResourceSpecifier::Topic(&spec.name));
    for (key, value) in wanted {
        change = change.set(key, value);
    }
    let results = admin
        .alter_configs(&[change], options)
        .await
        .with_context(|| format!("altering the configuration of {}", spec.name))?;
    for result in results {
        result.map_err(|(_, e)| {
            anyhow::anyhow!("altering the configuration of {}: {e}", spec.name)
        })?;
    }
    Ok(())
}
