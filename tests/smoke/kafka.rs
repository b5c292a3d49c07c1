//! Kafka: create a topic through the admin API, produce a record with rdkafka, consume it back.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::support::{Server, stack, unique};

#[tokio::test]
async fn produce_and_consume_a_record() {
    let config = stack();
    Server::Kafka.require(&config);
    let topic = unique("smoke");
    let client = |extra: &[(&str, &str)]| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &config.kafka_bootstrap);
        for (k, v) in extra {
            c.set(*k, *v);
        }
        c
    };

    let admin: AdminClient<DefaultClientContext> = client(&[])
        .create()
        .unwrap_or_else(|e| Server::Kafka.failed(&config, "create an admin client", e));
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .unwrap_or_else(|e| Server::Kafka.failed(&config, "create a topic", e));
    assert!(
        created.iter().all(Result::is_ok),
        "create topic {topic}: {created:?}"
    );

    let producer: FutureProducer = client(&[("message.timeout.ms", "20000")])
        .create()
        .unwrap_or_else(|e| Server::Kafka.failed(&config, "create a producer", e));
    let delivery = producer
        .send(
            FutureRecord::to(&topic)
                .key("order-1")
                .payload("hello from orderflow")
                .headers(OwnedHeaders::new().insert(Header {
                    key: "event_type",
                    value: Some("Smoke"),
                })),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|(e, _)| Server::Kafka.failed(&config, "produce a record", e));

    let consumer: StreamConsumer = client(&[
        ("group.id", &unique("smoke-group")),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ])
    .create()
    .unwrap_or_else(|e| Server::Kafka.failed(&config, "create a consumer", e));
    consumer
        .subscribe(&[&topic])
        .unwrap_or_else(|e| Server::Kafka.failed(&config, "subscribe", e));
    let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .unwrap_or_else(|_| {
            Server::Kafka.failed(&config, "deliver the record within 60s", "timeout")
        })
        .unwrap_or_else(|e| Server::Kafka.failed(&config, "consume", e));

    assert_eq!(
        (message.partition(), message.offset()),
        (delivery.partition, delivery.offset)
    );
    assert_eq!(message.key(), Some(&b"order-1"[..]));
    assert_eq!(message.payload(), Some(&b"hello from orderflow"[..]));
    let header = message.headers().expect("headers").get(0);
    assert_eq!(
        (header.key, header.value),
        ("event_type", Some(&b"Smoke"[..]))
    );

    admin
        .delete_topics(&[&topic], &AdminOptions::new())
        .await
        .unwrap_or_else(|e| Server::Kafka.failed(&config, "delete the topic", e));
}
