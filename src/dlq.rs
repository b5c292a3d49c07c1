//! `orderflow dlq`: an operator's view of a consumer's dead letters. `list` reads the dead-letter
//! topic; `parked` lists the keys held back behind a dead letter (the saga's consumers sequence
//! their dead letters in their own database); `redrive` puts dead letters back on their topics;
//! `discard` drops one for good and lets its key's parked events be applied.

use std::sync::Arc;

use anyhow::Context;
use orderflow_consumer::dead_letter;
use orderflow_consumer::{Reactions, Transactional, parking};
use orderflow_platform::StackConfig;
use orderflow_schemas::registry::EventCodec;
use orderflow_service_kit::Outbox;
use orderflow_stream_workers::consumers::{ConsumerSpec, saga};
use sqlx::PgPool;
use uuid::Uuid;

/// The saga consumer of that name, if it is one (the analytics sink, say, has no database).
fn saga_consumer(name: &str) -> anyhow::Result<Option<ConsumerSpec>> {
    let gateway = orderflow_payments::GatewayConfig::from_env()?;
    Ok(saga(gateway).into_iter().find(|c| c.name == name))
}

/// The consumer's database, as it is: migrating it is its worker's business (a newer schema than
/// the worker's would stop that worker from starting).
async fn database_of(stack: &StackConfig, spec: &ConsumerSpec) -> anyhow::Result<PgPool> {
    let pool = PgPool::connect_with(orderflow_service_kit::database::service_options(
        &stack.postgres,
        spec.database,
    )?)
    .await
    .with_context(|| {
        format!(
            "connecting to database {} of {} at {}:{} as its role",
            spec.database, spec.name, stack.postgres.host, stack.postgres.port
        )
    })?;
    let sequenced: bool = sqlx::query_scalar("SELECT to_regclass('parked_events') IS NOT NULL")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        sequenced,
        "database {} has no parked_events table: start the {} worker of this version once (its migrations create it)",
        spec.database,
        spec.name
    );
    Ok(pool)
}

/// One line per dead letter on the topic: where it came from, why, and whether it was redriven.
pub fn list(bootstrap: &str, consumer: &str) -> anyhow::Result<()> {
    let letters = dead_letter::list(bootstrap, consumer)?;
    println!(
        "{:<10} {:<9} {:<34} {:<12} {:<9} ERROR",
        "DLQ", "REDRIVEN", "FROM", "REASON", "KEY"
    );
    for letter in &letters {
        let from = format!(
            "{}:{}:{}",
            letter.header(dead_letter::ORIGINAL_TOPIC),
            letter.header(dead_letter::ORIGINAL_PARTITION),
            letter.header(dead_letter::ORIGINAL_OFFSET)
        );
        println!(
            "{:<10} {:<9} {:<34} {:<12} {:<9} {}",
            format!("{}:{}", letter.partition, letter.offset),
            if letter.redriven { "yes" } else { "no" },
            from,
            letter.header(dead_letter::REASON),
            letter
                .key
                .as_deref()
                .unwrap_or("-")
                .chars()
                .take(8)
                .collect::<String>(),
            letter.header(dead_letter::ERROR)
        );
    }
    println!("{} dead letter(s) of {consumer}", letters.len());
    Ok(())
}

/// One line per parked key: its dead letter (the head), its state and how many events wait
/// behind it.
pub async fn parked(stack: &StackConfig, consumer: &str) -> anyhow::Result<()> {
    let spec = saga_consumer(consumer)?.with_context(|| {
        format!("{consumer} is not a saga consumer; only they park events behind dead letters")
    })?;
    let pool = database_of(stack, &spec).await?;
    let rows = parking::all(&pool, consumer).await?;
    println!(
        "{:<38} {:<36} {:<14} {:<7} {:<26} ERROR",
        "KEY", "DEAD LETTER (event id)", "STATE", "PARKED", "SINCE"
    );
    let mut keys = 0;
    for group in rows.chunk_by(|a, b| a.record_key == b.record_key) {
        let head = &group[0];
        keys += 1;
        println!(
            "{:<38} {:<36} {:<14} {:<7} {:<26} {}",
            head.record_key,
            head.event_id,
            head.state,
            group.len() - 1,
            head.parked_at.to_rfc3339(),
            head.error.as_deref().unwrap_or("")
        );
    }
    println!("{keys} parked key(s) of {consumer}");
    pool.close().await;
    Ok(())
}

pub async fn redrive(stack: &StackConfig, consumer: &str, again: bool) -> anyhow::Result<()> {
    let pool = match saga_consumer(consumer)? {
        Some(spec) => Some(database_of(stack, &spec).await?),
        None => None,
    };
    let report =
        dead_letter::redrive(&stack.kafka_bootstrap, consumer, pool.as_ref(), again).await?;
    println!(
        "redrove {} dead letter(s) of {consumer}; {} on the topic left alone (applied, discarded or parked)",
        report.produced, report.skipped
    );
    Ok(())
}

pub async fn discard(stack: &StackConfig, consumer: &str, event_id: &str) -> anyhow::Result<()> {
    let event_id = Uuid::parse_str(event_id)
        .with_context(|| format!("{event_id:?} is not an event id (a UUID)"))?;
    let spec = saga_consumer(consumer)?.with_context(|| {
        format!("{consumer} is not a saga consumer; only they park events behind dead letters")
    })?;
    let pool = database_of(stack, &spec).await?;
    let handler = Transactional {
        reactions: spec.reactions.clone() as Arc<dyn Reactions>,
        pool: pool.clone(),
        outbox: Outbox::new(&stack.registry_url)?,
    };
    let codec = EventCodec::new(&stack.registry_url)?;
    let producer = dead_letter::redrive_producer(&stack.kafka_bootstrap)?;
    let discarded = handler
        .discard(spec.name, event_id, &codec, &producer)
        .await?;
    println!(
        "discarded {event_id} of {consumer}; applied the {} event(s) parked behind it (key {})",
        discarded.drained, discarded.key
    );
    if let Some(next) = discarded.new_dead_letter {
        println!("a parked event was refused on the way: {next} is the key's dead letter now");
    }
    pool.close().await;
    Ok(())
}
