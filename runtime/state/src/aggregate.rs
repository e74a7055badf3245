//! Incremental aggregation, shared by aggregating state and window aggregates.

/// Folds inputs into an accumulator and reads a result out of it, like Flink's
/// `AggregateFunction`. `merge` combines accumulators when session windows merge.
pub trait AggregateFunction<In, Acc, Out>: Send + Sync {
    /// A fresh, empty accumulator.
    fn create_accumulator(&self) -> Acc;
    /// Adds one input to an accumulator.
    fn add(&self, value: In, accumulator: &mut Acc);
    /// The result for an accumulator.
    fn get_result(&self, accumulator: &Acc) -> Out;
    /// Combines two accumulators into one.
    fn merge(&self, a: Acc, b: Acc) -> Acc;
}
