//! Every Kafka topic orderflow uses, as data: the `<aggregate>.events` topics the connectors write,
//! one dead-letter topic per consumer, and the heartbeat topic of each connector. The broker never
//! creates a topic by itself (`auto.create.topics.enable=false`), and no connector creates one either:
//! `orderflow topics` creates what is missing from this list and puts back the settings it manages.

/// Each service owns a database of its name and publishes `<service>.events` through its connector.
pub const SERVICES: [&str; 5] = ["orders", "inventory", "payments", "shipping", "customers"];

/// Every consumer group of the platform; each has its own dead-letter topic.
pub const CONSUMERS: [&str; 5] = [
    "orders-saga",
    "inventory-saga",
    "payments-saga",
    "shipping-saga",
    "analytics-sink",
];

/// Partitions of an events topic. Every saga event is keyed by order id, so one order's events
/// stay in order on one partition; adding partitions later would move keys, so it is not done
/// automatically.
pub const EVENT_PARTITIONS: i32 = 3;
/// How long an events topic keeps a record: 7 days, enough to replay a consumer after an outage.
pub const EVENT_RETENTION_MS: i64 = 7 * DAY_MS;
/// How long a dead-letter topic keeps a record: 30 days, for a person to look and redrive.
pub const DEAD_LETTER_RETENTION_MS: i64 = 30 * DAY_MS;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The prefix Debezium puts before a connector's `topic.prefix` to name its heartbeat topic
/// (its default `topic.heartbeat.prefix`).
pub const HEARTBEAT_TOPIC_PREFIX: &str = "__debezium-heartbeat";

/// What a topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// `<aggregate>.events`: written by a service's connector, read by the saga and the sink.
    Events,
    /// `<consumer>.dlq`: messages a consumer could not process, with the error in headers.
    DeadLetter,
    /// `__debezium-heartbeat.cdc.<database>`: a connector's heartbeats. Their offsets are what
    /// lets Debezium confirm WAL positions of an idle database (see `connectors/` and the README).
    Heartbeat,
}

/// One topic as it must exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub kind: TopicKind,
    pub partitions: i32,
    pub replication: i32,
    /// The topic-level settings orderflow manages; anything else is left at the broker default.
    pub configs: Vec<(&'static str, String)>,
}

impl TopicSpec {
    /// The value orderflow wants for a managed setting.
    pub fn config(&self, key: &str) -> Option<&str> {
        self.configs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `<aggregate>.events`
pub fn events_topic(aggregate: &str) -> String {
    format!("{aggregate}.events")
}

/// `<consumer>.dlq`
pub fn dead_letter_topic(consumer: &str) -> String {
    format!("{consumer}.dlq")
}

/// The `topic.prefix` of the connector of a service database: `cdc.<database>`.
pub fn connector_topic_prefix(database: &str) -> String {
    format!("cdc.{database}")
}

/// Where the connector of a service database sends its heartbeats.
pub fn heartbeat_topic(database: &str) -> String {
    format!(
        "{HEARTBEAT_TOPIC_PREFIX}.{}",
        connector_topic_prefix(database)
    )
}

/// Every topic of the platform, with `replication` replicas each (1 on the single-node stack).
pub fn topology(replication: i32) -> Vec<TopicSpec> {
    let delete = |retention_ms: i64| {
        vec![
            ("cleanup.policy", "delete".to_string()),
            ("retention.ms", retention_ms.to_string()),
        ]
    };
    let events = SERVICES.iter().map(|service| TopicSpec {
        name: events_topic(service),
        kind: TopicKind::Events,
        partitions: EVENT_PARTITIONS,
        replication,
        configs: delete(EVENT_RETENTION_MS),
    });
    let dead_letters = CONSUMERS.iter().map(|consumer| TopicSpec {
        name: dead_letter_topic(consumer),
        kind: TopicKind::DeadLetter,
        partitions: 1,
        replication,
        configs: delete(DEAD_LETTER_RETENTION_MS),
    });
    // A heartbeat carries only the connector's position, under one key: compaction keeps the last.
    let heartbeats = SERVICES.iter().map(|database| TopicSpec {
        name: heartbeat_topic(database),
        kind: TopicKind::Heartbeat,
        partitions: 1,
        replication,
        configs: vec![("cleanup.policy", "compact".to_string())],
    });
    events.chain(dead_letters).chain(heartbeats).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_is_named_once() {
        let topics = topology(1);
        let mut names: Vec<_> = topics.iter().map(|t| t.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), topics.len());
        assert_eq!(topics.len(), SERVICES.len() * 2 + CONSUMERS.len());
    }

    #[test]
    fn events_topics_are_partitioned_and_retained() {
        let topics = topology(3);
        let orders = topics.iter().find(|t| t.name == "orders.events").unwrap();
        assert_eq!(orders.kind, TopicKind::Events);
        assert_eq!((orders.partitions, orders.replication), (3, 3));
        assert_eq!(orders.config("retention.ms"), Some("604800000"));
        let dlq = topics.iter().find(|t| t.name == "orders-saga.dlq").unwrap();
        assert_eq!(dlq.config("retention.ms"), Some("2592000000"));
        let retention = |t: &TopicSpec| t.config("retention.ms").unwrap().parse::<i64>().unwrap();
        assert!(retention(dlq) > retention(orders));
        assert_eq!(heartbeat_topic("orders"), "__debezium-heartbeat.cdc.orders");
    }
}
