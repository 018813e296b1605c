//! Recent log events per mapping, for the dashboard's Logs tab: a `tracing` layer that keeps the
//! last events carrying a `mapping` field in a bounded ring buffer per mapping.
//!
//! Log events never hold secrets (connection errors are built without them), so what is kept
//! here is what the process already writes to stdout.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// One log event.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub at: SystemTime,
    pub level: Level,
    pub message: String,
    /// The event's other fields as `key=value`, space separated (the mapping left out).
    pub fields: String,
}

/// The buffer; clones share it.
#[derive(Clone)]
pub struct LogBuffer {
    entries: Arc<Mutex<HashMap<String, VecDeque<LogEntry>>>>,
    per_mapping: usize,
}

impl LogBuffer {
    /// Keeps the last `per_mapping` events of each mapping.
    pub fn new(per_mapping: usize) -> Self {
        LogBuffer {
            entries: Arc::default(),
            per_mapping: per_mapping.max(1),
        }
    }

    /// The layer to add to the process's subscriber.
    pub fn layer(&self) -> LogLayer {
        LogLayer(self.clone())
    }

    /// Adds an event (the layer calls this; tests may too).
    pub fn push(&self, mapping: &str, entry: LogEntry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let ring = entries.entry(mapping.to_owned()).or_default();
        if ring.len() == self.per_mapping {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// The mapping's events, newest first.
    pub fn recent(&self, mapping: &str) -> Vec<LogEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(mapping)
            .map(|ring| ring.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

/// Feeds [`LogBuffer`] from `tracing` events that have a `mapping` field.
pub struct LogLayer(LogBuffer);

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        if let Some(mapping) = visitor.mapping {
            self.0.push(
                &mapping,
                LogEntry {
                    at: SystemTime::now(),
                    level: *event.metadata().level(),
                    message: visitor.message,
                    fields: visitor.rest,
                },
            );
        }
    }
}

#[derive(Default)]
struct Fields {
    mapping: Option<String>,
    message: String,
    rest: String,
}

impl Fields {
    fn add(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "mapping" => self.mapping = Some(value),
            name => {
                if !self.rest.is_empty() {
                    self.rest.push(' ');
                }
                let _ = write!(self.rest, "{name}={value}");
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn keeps_the_last_events_of_each_mapping_newest_first() {
        let buffer = LogBuffer::new(2);
        let subscriber = tracing_subscriber::registry().with(buffer.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(mapping = "a", database = "shop", "first");
            tracing::warn!(mapping = "a", "second");
            tracing::info!(mapping = %"a", "third");
            tracing::info!(mapping = "b", "other");
            tracing::info!("no mapping");
        });
        let a = buffer.recent("a");
        let messages: Vec<&str> = a.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["third", "second"]);
        assert_eq!(a[1].level, Level::WARN);
        assert_eq!(buffer.recent("b").len(), 1);
        assert!(buffer.recent("c").is_empty());
    }

    #[test]
    fn other_fields_are_kept_as_key_value() {
        let buffer = LogBuffer::new(8);
        let subscriber = tracing_subscriber::registry().with(buffer.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(mapping = "a", database = "shop", tables = 3, "copied");
        });
        assert_eq!(buffer.recent("a")[0].fields, "database=shop tables=3");
    }
}
