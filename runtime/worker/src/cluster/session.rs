//! The coordinator's gRPC service: one session per worker. It accepts the registration,
//! answers with the job, and turns everything that follows — messages, a closed stream, a
//! missed heartbeat — into [`SessionEvent`]s for the coordinator's driver.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use weir_rpc::tonic::{Request, Response, Status, Streaming};
use weir_rpc::v1::coordinator_message::Kind as FromCoordinator;
use weir_rpc::v1::coordinator_server::Coordinator;
use weir_rpc::v1::worker_message::Kind as ToCoordinator;
use weir_rpc::v1::{Accepted, CoordinatorMessage, Register, WorkerMessage};

/// The coordinator's line to one worker. Unbounded, so that the coordinator's driver never
/// blocks on a worker that stopped reading: its messages are few (deploys, cancels,
/// checkpoint commands), and a stuck worker is found by the heartbeat timeout, which ends
/// its session and frees what was queued.
pub(crate) type WorkerLine = mpsc::UnboundedSender<Result<CoordinatorMessage, Status>>;

/// What happens on the sessions, for the driver.
pub(crate) enum SessionEvent {
    /// A worker registered.
    Registered {
        /// Its id.
        worker: u32,
        /// What it offers.
        register: Register,
        /// Where its commands go.
        line: WorkerLine,
    },
    /// A worker reported.
    Reported {
        /// Which worker.
        worker: u32,
        /// What it said.
        message: ToCoordinator,
    },
    /// A worker's session ended or went silent.
    Lost {
        /// Which worker.
        worker: u32,
        /// How it was lost.
        reason: String,
    },
}

/// The `Coordinator` gRPC service.
pub(crate) struct SessionService {
    /// Where session events go.
    pub(crate) events: Sender<SessionEvent>,
    /// The answer every registration gets (its worker id filled in).
    pub(crate) accepted: Accepted,
    /// A session silent this long is a lost worker.
    pub(crate) heartbeat_timeout: Duration,
    /// The next worker id.
    pub(crate) next_worker: Arc<AtomicU32>,
}

#[weir_rpc::tonic::async_trait]
impl Coordinator for SessionService {
    type SessionStream = UnboundedReceiverStream<Result<CoordinatorMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut incoming = request.into_inner();
        let Some(ToCoordinator::Register(register)) =
            incoming.message().await?.and_then(|m| m.kind)
        else {
            return Err(Status::invalid_argument("a worker's session starts with Register"));
        };
        let worker = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let (line, outgoing) = mpsc::unbounded_channel();
        let accepted = Accepted { worker, ..self.accepted.clone() };
        let _ =
            line.send(Ok(CoordinatorMessage { kind: Some(FromCoordinator::Accepted(accepted)) }));
        let _ = self.events.send(SessionEvent::Registered { worker, register, line });
        let events = self.events.clone();
        let timeout = self.heartbeat_timeout;
        tokio::spawn(async move {
            let reason = loop {
                match tokio::time::timeout(timeout, incoming.message()).await {
                    Err(_) => break format!("no heartbeat for {} ms", timeout.as_millis()),
                    Ok(Ok(Some(WorkerMessage { kind: Some(message) }))) => {
                        let _ = events.send(SessionEvent::Reported { worker, message });
                    }
                    Ok(Ok(Some(_))) => {}
                    Ok(Ok(None)) => break "it closed its session".to_string(),
                    Ok(Err(status)) => break format!("its session broke: {}", status.message()),
                };
            };
            let _ = events.send(SessionEvent::Lost { worker, reason });
        });
        Ok(Response::new(UnboundedReceiverStream::new(outgoing)))
    }
}
