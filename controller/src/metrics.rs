//! Prometheus metrics of the controller: reconciles by result, errors by reason, and how
//! long reconciles take; rendered in the OpenMetrics text format.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of an error: its reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The error's reason (`KubeError`, `JobApiError`, …).
    pub reason: String,
}

/// The controller's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    errors: Family<ErrorLabels, Counter>,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("weir_operator");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let buckets = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];
        let duration = Histogram::new(buckets);
        registry.register("reconciles", "StreamJob reconciles started", reconciles.clone());
        registry.register("reconcile_errors", "StreamJob reconciles that failed", errors.clone());
        registry.register(
            "reconcile_duration_seconds",
            "How long StreamJob reconciles take",
            duration.clone(),
        );
        Metrics { registry, reconciles, errors, duration }
    }
}

impl Metrics {
    /// Counts a reconcile.
    pub fn reconcile_started(&self) {
        self.reconciles.inc();
    }

    /// Records a reconcile's duration.
    pub fn reconcile_finished(&self, took: Duration) {
        self.duration.observe(took.as_secs_f64());
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, error: &crate::Error) {
        self.errors.get_or_create(&ErrorLabels { reason: error.reason().to_string() }).inc();
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_and_errors_are_counted() {
        let metrics = Metrics::default();
        metrics.reconcile_started();
        metrics.reconcile_failed(&crate::Error::InvalidSpec("x".into()));
        metrics.reconcile_finished(Duration::from_millis(20));
        let text = metrics.render();
        assert!(text.contains("weir_operator_reconciles_total 1"), "{text}");
        assert!(
            text.contains("weir_operator_reconcile_errors_total{reason=\"InvalidSpec\"} 1"),
            "{text}"
        );
        assert!(text.contains("weir_operator_reconcile_duration_seconds_count 1"), "{text}");
    }
}
