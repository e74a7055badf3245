//! Weir's REST API: job status, per-subtask metrics, checkpoint history, savepoints and
//! cancel over HTTP/JSON, and `/metrics` in Prometheus' text format. The embedded runtime
//! serves it today; a distributed coordinator will serve the same routes, and a dashboard
//! reads only them.
//!
//! - [`Jobs`]: the jobs served, each a live [`weir_worker::JobStatus`] and its
//!   [`weir_worker::JobControl`];
//! - [`router`]: the endpoints, for any tokio application;
//! - [`serve`]: the endpoints on a thread of their own, for synchronous callers;
//! - [`model`] and [`graph`]: the JSON shapes; [`metrics`]: the Prometheus exposition;
//! - the web dashboard at `/`: static pages inside the binary that read only these routes.
//!
//! | route | answer |
//! |---|---|
//! | `GET /health` | `{"status":"ok"}` |
//! | `GET /jobs` | every job: name, state, start time, duration, restarts |
//! | `GET /jobs/{name}` | the same, with the graph (vertices with per-subtask counters, busy / backpressured / idle ratios and watermarks; edges) and the last failure |
//! | `GET /jobs/{name}/checkpoints` | checkpoint history and the latest savepoint |
//! | `POST /jobs/{name}/savepoints` | takes a savepoint (`{"dir": …, "stop": true}` optional) |
//! | `POST /jobs/{name}/cancel` | cancels the job (202) |
//! | `GET /jobs/{name}/exceptions` | failures, newest first, and the restarts left |
//! | `GET /workers` | the processes running jobs: slots and memory split |
//! | `GET /` | the web dashboard |
//! | `GET /metrics` | Prometheus text |
//!
//! Errors answer `{"error": "…"}` with 404 (unknown job), 400 (bad body), 409 (savepoint
//! impossible) or 500.
//!
//! ```
//! use weir::{ExecutionConfig, GeneratorConfig, StreamExecutionEnvironment};
//!
//! let mut env = StreamExecutionEnvironment::new(ExecutionConfig::default());
//! env.from_generator(GeneratorConfig::unbounded().with_rate(100.0), |i| i).print();
//! let client = env.execute_async().unwrap();
//! let server = weir_rest::serve(weir_rest::bind("127.0.0.1:0").unwrap(), (&client).into())
//!     .unwrap();
//! println!("web UI: http://{}/", server.local_addr());
//! client.cancel();
//! assert!(client.wait().is_err(), "a cancelled job ends with an error");
//! ```

mod dashboard;
mod error;
pub mod graph;
mod jobs;
pub mod metrics;
pub mod model;
mod routes;
mod server;

pub use error::{Error, Result};
pub use jobs::{Jobs, ServedJob};
pub use routes::router;
pub use server::{RestServer, bind, serve};
