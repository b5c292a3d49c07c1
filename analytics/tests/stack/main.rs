//! The analytics crate against the real stack (Kafka, the registry, Elasticsearch, S3): the sink,
//! its restarts and outages, the reports, and the Kibana visualizations' queries. Each test has its
//! own topic, consumer group, index and archive prefix. None is mocked and none skips: a server
//! that is down fails the test naming it and the command that starts it.

mod archive;
mod kibana;
mod orders;
mod outage;
mod proxy;
mod reports;
mod restart;
mod sink;
mod support;
