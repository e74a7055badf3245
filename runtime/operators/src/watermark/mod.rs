//! Event time at the edge of a job: timestamp assigners, watermark generators and the
//! strategy that combines them (Flink's `WatermarkStrategy`).

mod assigner;
mod generator;
mod splits;
mod strategy;

pub use assigner::TimestampsAndWatermarks;
pub use generator::{BoundedOutOfOrderness, WatermarkGenerator, WatermarkOutput};
pub use splits::SplitWatermarks;
pub use strategy::WatermarkStrategy;
