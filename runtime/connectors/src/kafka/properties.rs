//! Client properties shared by the Kafka source and sink, passed through to librdkafka.

use std::time::Duration;

use rdkafka::ClientConfig;

/// How long calls to the broker (metadata, offsets, transactions) may take.
pub(crate) const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// The brokers to reach and any librdkafka property (`security.protocol`,
/// `session.timeout.ms`, …), passed through unchanged; the connector sets only what its
/// guarantees need on top (the group id, transactional ids, `enable.auto.commit=false`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaProperties {
    properties: Vec<(String, String)>,
}

impl KafkaProperties {
    /// Properties reaching `bootstrap_servers` (`host:port,…`).
    pub fn new(bootstrap_servers: &str) -> Self {
        KafkaProperties::default().set("bootstrap.servers", bootstrap_servers)
    }

    /// Sets the property `key` (a later value wins).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.properties.retain(|(k, _)| k != key);
        self.properties.push((key.to_string(), value.into()));
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A librdkafka configuration with every property.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}
