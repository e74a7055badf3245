//! Where records go after an operator: the [`Output`] contract and its plain implementations.

use weir_types::{CheckpointId, Record, Timestamp, Watermark, WatermarkStatus};

use crate::{Result, TaskSnapshot};

/// The receiving end of a stream inside a task: the next operator of a chain, a network
/// writer, a fan-out to several. Batches are handed over by `&mut Vec` and drained, so the
/// sender keeps its allocation.
pub trait Output<T>: Send {
    /// Called once on the task's thread before anything is pushed; opens what follows.
    fn open(&mut self) -> Result<()> {
        Ok(())
    }
    /// Takes every record out of `batch`.
    fn push_batch(&mut self, batch: &mut Vec<Record<T>>) -> Result<()>;
    /// Event time advanced.
    fn push_watermark(&mut self, watermark: Watermark) -> Result<()>;
    /// The stream became idle or active.
    fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()>;
    /// Processing time reached `now`: operators with due processing-time work run it.
    fn on_processing_time(&mut self, _now: Timestamp) -> Result<()> {
        Ok(())
    }
    /// The earliest processing time at which something downstream has work to do.
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        None
    }
    /// A checkpoint barrier passes: operators add their state to `task`, network writers
    /// send the barrier after what they buffered.
    fn checkpoint(&mut self, _task: &mut TaskSnapshot) -> Result<()> {
        Ok(())
    }
    /// A checkpoint completed (`complete`) or was aborted.
    fn notify_checkpoint(&mut self, _checkpoint: CheckpointId, _complete: bool) -> Result<()> {
        Ok(())
    }
    /// Sends what is buffered now (called when the task is about to wait).
    fn flush(&mut self) -> Result<()>;
    /// End of input: nothing is pushed after this.
    fn finish(&mut self) -> Result<()>;
}

/// An output that drops everything: the end of a sink's chain, or an unused stream.
#[derive(Debug, Default)]
pub struct DiscardOutput;

impl<T> Output<T> for DiscardOutput {
    fn push_batch(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        batch.clear();
        Ok(())
    }
    fn push_watermark(&mut self, _: Watermark) -> Result<()> {
        Ok(())
    }
    fn push_watermark_status(&mut self, _: WatermarkStatus) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Copies every batch to several outputs (a stream consumed more than once).
pub struct FanOut<T> {
    outputs: Vec<Box<dyn Output<T>>>,
    scratch: Vec<Record<T>>,
}

impl<T> FanOut<T> {
    /// Fans out to `outputs` (at least two).
    pub fn new(outputs: Vec<Box<dyn Output<T>>>) -> Self {
        FanOut { outputs, scratch: Vec::new() }
    }
}

impl<T: Clone + Send> Output<T> for FanOut<T> {
    fn push_batch(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let Some((last, rest)) = self.outputs.split_last_mut() else {
            batch.clear();
            return Ok(());
        };
        for output in rest {
            self.scratch.extend_from_slice(batch);
            output.push_batch(&mut self.scratch)?;
        }
        last.push_batch(batch)
    }
    fn open(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.open())
    }
    fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.push_watermark(watermark))
    }
    fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.push_watermark_status(status))
    }
    fn on_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.on_processing_time(now))
    }
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.outputs.iter().filter_map(|o| o.next_processing_deadline()).min()
    }
    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.checkpoint(task))
    }
    fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.notify_checkpoint(checkpoint, complete))
    }
    fn flush(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.flush())
    }
    fn finish(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.finish())
    }
}
