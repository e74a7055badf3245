//! The execution environment: job-wide settings, sources, and running the job.

use std::path::PathBuf;
use std::sync::Arc;

use weir_connectors::source::nexmark::{self, Event, NexmarkConfig};
use weir_connectors::source::{
    CollectionSource, DataGeneratorSource, SocketTextSource, TextFileSource,
};
use weir_operators::{SourceFunction, SubtaskInfo};
use weir_types::Data;
use weir_worker::cluster::{ClusterCoordinator, CoordinatorOptions, Worker};
use weir_worker::plan::JobPlan;
use weir_worker::{
    ExecutionConfig, JobClient, JobResult, LocalExecutor, NodeFactory, StreamGraph, TypedStream,
};

use crate::job::{JobHandle, JobState, NodeSpec, OperatorSettings};
use crate::{DataStream, Parameters, Result};

/// How many records a data generator produces and how fast.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GeneratorConfig {
    /// Total records over all subtasks; `None` generates forever.
    pub count: Option<u64>,
    /// Total records per second over all subtasks; `None` is as fast as possible.
    pub rate_per_second: Option<f64>,
}

impl GeneratorConfig {
    /// Exactly `count` records, as fast as possible.
    pub fn bounded(count: u64) -> Self {
        GeneratorConfig { count: Some(count), rate_per_second: None }
    }

    /// Records forever, as fast as possible.
    pub fn unbounded() -> Self {
        GeneratorConfig::default()
    }

    /// At most `rate` records per second in total.
    pub fn with_rate(self, rate: f64) -> Self {
        GeneratorConfig { rate_per_second: Some(rate), ..self }
    }
}

/// The entry point of a job: settings, sources, execution (Flink's
/// `StreamExecutionEnvironment`).
pub struct StreamExecutionEnvironment {
    job: JobHandle,
}

impl StreamExecutionEnvironment {
    /// An environment with `config` and no job parameters.
    pub fn new(config: ExecutionConfig) -> Self {
        Self::with_parameters(config, Parameters::default())
    }

    /// An environment with `config` and the job's `parameters` (from the command line).
    pub fn with_parameters(config: ExecutionConfig, parameters: Parameters) -> Self {
        let job_name = std::env::args()
            .next()
            .and_then(|arg0| PathBuf::from(arg0).file_stem().map(|s| s.to_string_lossy().into()))
            .unwrap_or_else(|| "weir-job".to_string());
        StreamExecutionEnvironment {
            job: JobHandle::new(JobState {
                graph: StreamGraph::new(),
                config,
                code_parallelism: None,
                job_name,
                parameters,
            }),
        }
    }

    /// Parallelism of operators created from now on that set none; overrides the command
    /// line (as in Flink, operators created before keep the parallelism they got).
    pub fn set_parallelism(&mut self, parallelism: usize) -> &mut Self {
        self.job.with_state(|s| s.code_parallelism = Some(parallelism));
        self
    }

    /// The parallelism that operators created now get.
    pub fn parallelism(&self) -> usize {
        self.job.with_state(|s| s.code_parallelism.unwrap_or(s.config.parallelism))
    }

    /// Number of key groups, the upper bound for any operator's parallelism (default 128).
    pub fn set_max_parallelism(&mut self, max_parallelism: usize) -> &mut Self {
        self.job.with_state(|s| s.config.max_parallelism = max_parallelism);
        self
    }

    /// Turns operator chaining off for the whole job.
    pub fn disable_operator_chaining(&mut self) -> &mut Self {
        self.job.with_state(|s| s.config.chaining = false);
        self
    }

    /// Names the job (default: the binary's name).
    pub fn set_job_name(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.job.with_state(|s| s.job_name = name);
        self
    }

    /// The execution settings in effect.
    pub fn config(&self) -> ExecutionConfig {
        self.job.with_state(|s| s.config.clone())
    }

    /// The job's command-line parameters (`--key value` after the engine's options).
    pub fn parameters(&self) -> Parameters {
        self.job.with_state(|s| s.parameters.clone())
    }

    /// A non-parallel source emitting `values` in order.
    pub fn from_collection<T: Data>(&mut self, values: Vec<T>) -> DataStream<T> {
        self.add_source("Collection Source", true, move |_| CollectionSource::new(values.clone()))
    }

    /// A non-parallel source emitting what `values` yields (collected up front).
    pub fn from_iter<T: Data>(&mut self, values: impl IntoIterator<Item = T>) -> DataStream<T> {
        self.from_collection(values.into_iter().collect())
    }

    /// A parallel source calling `generator` with indexes `0, 1, 2, …` spread over its
    /// subtasks, bounded and rate-limited as `config` says.
    pub fn from_generator<T: Data>(
        &mut self,
        config: GeneratorConfig,
        generator: impl Fn(u64) -> T + Send + Sync + 'static,
    ) -> DataStream<T> {
        let generator: Arc<dyn Fn(u64) -> T + Send + Sync> = Arc::new(generator);
        self.add_source("Data Generator", false, move |_| {
            DataGeneratorSource::new(config.count, generator.clone(), config.rate_per_second)
        })
    }

    /// The numbers `from..=to`, in parallel (Flink's `fromSequence`).
    pub fn from_sequence(&mut self, from: i64, to: i64) -> DataStream<i64> {
        let count = u64::try_from(to.saturating_sub(from).saturating_add(1)).unwrap_or(0);
        self.from_generator(GeneratorConfig::bounded(count), move |i| from + i as i64)
            .name("Sequence Source")
    }

    /// The Nexmark benchmark's events (people, auctions and bids), generated in parallel with
    /// event-time timestamps and watermarks; fails when `config` cannot generate events.
    pub fn nexmark(&mut self, config: NexmarkConfig) -> Result<DataStream<Event>> {
        let source = nexmark::source(config)?;
        Ok(self.add_source("Nexmark Source", false, move |_| source.clone()))
    }

    /// Lines of text from a TCP server (what `nc -lk PORT` feeds), until it closes.
    pub fn socket_text_stream(&mut self, host: &str, port: u16) -> DataStream<String> {
        self.socket_text_stream_with(host, port, b'\n', 0)
    }

    /// Like [`Self::socket_text_stream`] with a delimiter and reconnect attempts.
    pub fn socket_text_stream_with(
        &mut self,
        host: &str,
        port: u16,
        delimiter: u8,
        max_retries: u32,
    ) -> DataStream<String> {
        let host = host.to_string();
        self.add_source("Socket Stream", true, move |_| {
            SocketTextSource::new(host.clone(), port, delimiter, max_retries)
        })
    }

    /// Lines of a text file, or of every file in a directory, split over subtasks.
    pub fn read_text_file(&mut self, path: impl Into<PathBuf>) -> DataStream<String> {
        let path = path.into();
        self.add_source("Text File Source", false, move |_| TextFileSource::new(path.clone()))
    }

    /// Lines of the files in the directory `path` and of every file moved into it later,
    /// listed every `interval` (Flink's `FileSource.monitorContinuously`); never ends.
    pub fn monitor_text_files(
        &mut self,
        path: impl Into<PathBuf>,
        interval: std::time::Duration,
    ) -> DataStream<String> {
        let source = TextFileSource::new(path.into()).monitor_continuously(interval);
        self.add_source("Text File Monitor", false, move |_| source.clone())
    }

    /// A custom source: `make` builds one instance per subtask; `non_parallel` forces
    /// parallelism 1.
    pub fn add_source<T, S, M>(&mut self, name: &str, non_parallel: bool, make: M) -> DataStream<T>
    where
        T: Data,
        S: SourceFunction<T> + 'static,
        M: Fn(&SubtaskInfo) -> S + Send + 'static,
    {
        let spec = NodeSpec {
            name: format!("Source: {name}"),
            inputs: Vec::new(),
            output_type: TypedStream::<T>::arc(),
            non_parallel,
        };
        let id = self.job.add(spec, NodeFactory::source(make));
        DataStream::produced_by(self.job.clone(), id)
    }

    /// The tasks the job would run, one line each: chained operator names and parallelism
    /// (Flink's `getExecutionPlan`, as text).
    pub fn execution_plan(&self) -> Result<String> {
        self.job.with_state(|s| Ok(JobPlan::new(&s.graph, &s.config)?.describe()))
    }

    /// Runs the job in this process until its input ends; fails with the first operator error.
    /// With `rest.bind` set, serves the REST API while the job runs.
    pub fn execute(&mut self) -> Result<JobResult> {
        let (graph, config, name) = self.take_job();
        let Some(listener) = rest_listener(&config)? else {
            return Ok(LocalExecutor::new(config).execute(&name, &graph)?);
        };
        let client = LocalExecutor::new(config).execute_async(&name, graph)?;
        let server = serve_rest(listener, &client)?;
        let result = client.wait();
        drop(server);
        Ok(result?)
    }

    /// Coordinates the job across the workers that register with it (`JOB coordinator`):
    /// schedules its subtasks into their slots and restarts it after failures as the restart
    /// strategy allows; returns when it ends. With `rest.bind` set, serves the REST API.
    pub fn execute_coordinated(&mut self, options: CoordinatorOptions) -> Result<JobResult> {
        let (graph, config, name) = self.take_job();
        let listener = rest_listener(&config)?;
        let client = ClusterCoordinator::new(config, options).execute_async(&name, graph)?;
        let server = listener.map(|listener| serve_rest(listener, &client)).transpose()?;
        let result = client.wait();
        drop(server);
        Ok(result?)
    }

    /// Runs this worker's share of the job (`JOB worker`) for every attempt its coordinator
    /// deploys, until the coordinator shuts it down.
    pub fn serve_as_worker(&mut self, worker: Worker) -> Result<()> {
        let (graph, config, name) = self.take_job();
        Ok(worker.serve(&name, &graph, &config)?)
    }

    /// Starts the job in the background (Flink's `executeAsync`): the client takes
    /// savepoints, stops the job with one, cancels it, and waits for its result. With
    /// `rest.bind` set, serves the REST API for the rest of the process.
    pub fn execute_async(&mut self) -> Result<JobClient> {
        let (graph, config, name) = self.take_job();
        let listener = rest_listener(&config)?;
        let client = LocalExecutor::new(config).execute_async(&name, graph)?;
        if let Some(listener) = listener {
            serve_rest(listener, &client)?.detach();
        }
        Ok(client)
    }

    fn take_job(&mut self) -> (StreamGraph, ExecutionConfig, String) {
        self.job
            .with_state(|s| (std::mem::take(&mut s.graph), s.config.clone(), s.job_name.clone()))
    }
}

/// Listens where `rest.bind` says, before the job starts, so that a bad address fails early.
fn rest_listener(config: &ExecutionConfig) -> Result<Option<std::net::TcpListener>> {
    Ok(config.rest.bind.as_deref().map(weir_rest::bind).transpose()?)
}

/// Serves the REST API for the job `client` runs; cancels the job if it cannot.
fn serve_rest(
    listener: std::net::TcpListener,
    client: &JobClient,
) -> Result<weir_rest::RestServer> {
    let server = weir_rest::serve(listener, client.into()).inspect_err(|_| client.cancel())?;
    // The one line that tells a user where to look (the REST API is under the same address),
    // on standard error beside the coordinator's own, away from the job's printed output.
    eprintln!("web UI: http://{}/", server.local_addr());
    Ok(server)
}
