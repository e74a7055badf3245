//! Event time at the edge of a job: timestamp assigners, watermark generators and the
//! strategy that combines them (Flink's `WatermarkStrategy`).

mod assigner;
mod generator;
mod strategy;

pub use assigner::TimestampsAndWatermarks;
pub use generator::{BoundedOutOfOrderness, WatermarkGenerator, WatermarkOutput};
pub use strategy::WatermarkStrategy;
