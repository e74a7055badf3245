//! A source task's output: its chain, and the side outputs its source emits to.

use weir_types::{CheckpointId, Record, Timestamp, Watermark, WatermarkStatus};

use crate::collector::Mark;
use crate::{Collector, Output, Result, SideOutput, SourceFunction, SubtaskInfo, TaskSnapshot};

/// Where a source's records go: the main output, which the task pushes polled batches into,
/// and the side outputs the source emits to with [`SourceFunction::side_outputs`]. Barriers,
/// watermarks, processing time and the end of input reach both.
pub struct SourceOutput<T> {
    main: Box<dyn Output<T>>,
    /// Holds the side outputs something reads; its main records are never sent.
    side: Collector<()>,
}

impl<T: Send + 'static> SourceOutput<T> {
    /// `main` with `side_outputs` for records the source sends by tag.
    pub fn new(main: Box<dyn Output<T>>, side_outputs: Vec<SideOutput>) -> Self {
        SourceOutput { main, side: Collector::new(side_outputs) }
    }

    /// Lets the source of subtask `info` emit what it set aside for side outputs since the
    /// last call, and sends it on.
    pub fn emit_side_outputs(
        &mut self,
        source: &mut dyn SourceFunction<T>,
        info: &SubtaskInfo,
    ) -> Result<()> {
        let side = &mut self.side;
        crate::run_guarded(info, || source.side_outputs(side))?;
        self.side.take_records();
        for port in self.side.side_outputs() {
            port.emit()?;
        }
        Ok(())
    }

    /// Passes `mark` to every side output.
    fn mark(&mut self, mark: Mark) -> Result<()> {
        for port in self.side.side_outputs() {
            port.mark(mark)?;
        }
        Ok(())
    }
}

impl<T: Send + 'static> Output<T> for SourceOutput<T> {
    fn open(&mut self) -> Result<()> {
        self.main.open()?;
        for port in self.side.side_outputs() {
            port.open()?;
        }
        Ok(())
    }

    fn push_batch(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.main.push_batch(batch)
    }

    fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.mark(Mark::Watermark(watermark))?;
        self.main.push_watermark(watermark)
    }

    fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
        self.mark(Mark::Status(status))?;
        self.main.push_watermark_status(status)
    }

    fn on_processing_time(&mut self, now: Timestamp) -> Result<()> {
        for port in self.side.side_outputs() {
            port.on_processing_time(now)?;
        }
        self.main.on_processing_time(now)
    }

    fn next_processing_deadline(&self) -> Option<Timestamp> {
        [self.main.next_processing_deadline(), self.side.side_output_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn checkpoint(&mut self, task: &mut TaskSnapshot) -> Result<()> {
        for port in self.side.side_outputs() {
            port.checkpoint(task)?;
        }
        self.main.checkpoint(task)
    }

    fn notify_checkpoint(&mut self, checkpoint: CheckpointId, complete: bool) -> Result<()> {
        for port in self.side.side_outputs() {
            port.notify_checkpoint(checkpoint, complete)?;
        }
        self.main.notify_checkpoint(checkpoint, complete)
    }

    fn flush(&mut self) -> Result<()> {
        for port in self.side.side_outputs() {
            port.flush()?;
        }
        self.main.flush()
    }

    fn finish(&mut self) -> Result<()> {
        for port in self.side.side_outputs() {
            port.finish()?;
        }
        self.main.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::function::FnResult;
    use crate::{OutputTag, SourcePoll};

    /// An output writing what reaches it into a shared log, prefixed with its name.
    struct Log(&'static str, Arc<Mutex<Vec<String>>>);

    impl Log {
        fn write(&self, entry: String) -> Result<()> {
            self.1.lock().unwrap().push(format!("{}: {entry}", self.0));
            Ok(())
        }
    }

    impl<T: std::fmt::Debug + Send> Output<T> for Log {
        fn push_batch(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
            let values: Vec<_> = batch.drain(..).map(|r| (r.value, r.timestamp)).collect();
            self.write(format!("{values:?}"))
        }
        fn push_watermark(&mut self, watermark: Watermark) -> Result<()> {
            self.write(format!("watermark {}", watermark.timestamp()))
        }
        fn push_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
            self.write(format!("{status:?}"))
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            self.write("finish".into())
        }
    }

    /// A source that sets aside every number it polls for the side output `odd` if odd.
    struct Numbers(Vec<u32>);

    impl SourceFunction<u32> for Numbers {
        fn poll(&mut self, _: &mut Vec<Record<u32>>, _: usize) -> FnResult<SourcePoll> {
            Ok(SourcePoll::Finished)
        }
        fn side_outputs(&mut self, out: &mut Collector<()>) -> FnResult {
            for n in self.0.drain(..).filter(|n| n % 2 == 1) {
                out.set_timestamp(Some(i64::from(n)));
                out.output(&OutputTag::<u32>::new("odd"), n);
            }
            Ok(())
        }
    }

    #[test]
    fn side_records_watermarks_and_the_end_reach_the_side_output() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let odd = SideOutput::new(&OutputTag::<u32>::new("odd"), Box::new(Log("odd", log.clone())));
        let mut output = SourceOutput::new(Box::new(Log("main", log.clone())), vec![odd]);
        let mut source = Numbers(vec![1, 2, 3]);
        output.push_batch(&mut vec![Record::with_timestamp(2, 2)]).unwrap();
        output.emit_side_outputs(&mut source, &SubtaskInfo::new("Numbers", 0, 1, 128)).unwrap();
        output.push_watermark(Watermark(3)).unwrap();
        output.finish().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                "main: [(2, Some(2))]",
                "odd: [(1, Some(1)), (3, Some(3))]",
                "odd: watermark 3",
                "main: watermark 3",
                "odd: finish",
                "main: finish",
            ]
        );
    }
}
