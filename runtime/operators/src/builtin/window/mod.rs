//! Windows (Flink's windowing): assigners put each record into windows, triggers decide when
//! a window's contents are emitted, and the window operator keeps contents per key and
//! window, fires, handles allowed lateness and late data, and merges session windows.

mod assigner;
mod contents;
mod groups;
mod merging;
mod operator;
#[cfg(test)]
mod tests;
mod trigger;
mod windows;

pub use assigner::{
    EventTimeSessionWindows, GlobalWindows, ProcessingTimeSessionWindows, SessionWindows,
    SlidingEventTimeWindows, SlidingProcessingTimeWindows, SlidingWindows,
    TumblingEventTimeWindows, TumblingProcessingTimeWindows, TumblingWindows, WindowAssigner,
};
pub use contents::{
    AggregateContents, AggregateResult, ListContents, PassThrough, ProcessContents,
    ProcessWindowFunction, ReduceContents, WindowContents, WindowContext, WindowEmit,
};
pub use operator::{WindowOperator, WindowSettings};
pub use trigger::{
    CountTrigger, EventTimeTrigger, ProcessingTimeTrigger, PurgingTrigger, Trigger, TriggerContext,
    TriggerResult,
};
pub use windows::{GlobalWindow, TimeWindow, Window};
