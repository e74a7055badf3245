//! The consuming side of remote channels: the `Exchange` service every worker serves. It
//! hands each channel's frames to the local channel of the consuming task and grants their
//! bytes back as credit once the task's queue took them, so a slow task stops its producers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};
use weir_rpc::tonic::{Request, Response, Status, Streaming};
use weir_rpc::v1::exchange_server::Exchange;
use weir_rpc::v1::{Credit, Frame};

use super::{ChannelKey, FrameSink};
use crate::exchange::CancelToken;

/// How long a producer's stream waits for its consumer's attempt to be deployed here.
const DEPLOY_WAIT: Duration = Duration::from_secs(30);

/// A channel waiting for its producer to connect.
pub(crate) struct InboundChannel {
    /// Where its frames go.
    pub(crate) sink: Box<dyn FrameSink>,
    /// Bytes the producer may have in flight.
    pub(crate) window: u64,
    /// The attempt's cancellation.
    pub(crate) cancel: CancelToken,
}

/// The channels of the current attempt that producers elsewhere will fill.
#[derive(Clone, Default)]
pub(crate) struct Inbound {
    state: Arc<Mutex<InboundState>>,
    deployed: Arc<Notify>,
}

#[derive(Default)]
struct InboundState {
    attempt: u64,
    channels: HashMap<ChannelKey, InboundChannel>,
}

impl Inbound {
    /// Replaces whatever an earlier attempt left with the channels of `attempt`.
    pub(crate) fn deploy(&self, attempt: u64, channels: Vec<(ChannelKey, InboundChannel)>) {
        let mut state = self.state.lock().expect("inbound lock");
        state.attempt = attempt;
        state.channels = channels.into_iter().collect();
        self.deployed.notify_waiters();
    }

    /// The channel `key`, once its attempt is deployed here.
    async fn take(&self, key: ChannelKey) -> Result<InboundChannel, Status> {
        let deadline = tokio::time::Instant::now() + DEPLOY_WAIT;
        loop {
            let deployed = self.deployed.notified();
            {
                let mut state = self.state.lock().expect("inbound lock");
                if key.attempt < state.attempt {
                    return Err(Status::failed_precondition(format!(
                        "channel {key} belongs to an attempt that was replaced by {}",
                        state.attempt
                    )));
                }
                if let Some(channel) = state.channels.remove(&key) {
                    return Ok(channel);
                }
            }
            if tokio::time::timeout_at(deadline, deployed).await.is_err() {
                return Err(Status::not_found(format!("no channel {key} deployed here")));
            }
        }
    }
}

/// The `Exchange` gRPC service over an [`Inbound`] registry.
pub(crate) struct ExchangeService(pub(crate) Inbound);

#[weir_rpc::tonic::async_trait]
impl Exchange for ExchangeService {
    type ChannelStream = ReceiverStream<Result<Credit, Status>>;

    async fn channel(
        &self,
        request: Request<Streaming<Frame>>,
    ) -> Result<Response<Self::ChannelStream>, Status> {
        let mut frames = request.into_inner();
        let hello = frames
            .message()
            .await?
            .and_then(|frame| frame.channel)
            .ok_or_else(|| Status::invalid_argument("a channel stream starts with its id"))?;
        let key = ChannelKey::from(hello);
        let channel = self.0.take(key).await?;
        let (credits, stream) = mpsc::channel(64);
        let _ = credits.send(Ok(Credit { bytes: channel.window })).await;
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name(format!("in {}>{}", key.producer, key.consumer))
            .spawn(move || deliver(&runtime, key, frames, channel, &credits))
            .map_err(|e| Status::resource_exhausted(format!("no thread for {key}: {e}")))?;
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}

/// Hands frames to the consuming task until the producer closes the stream, granting each
/// frame's bytes back once the task's queue took it.
fn deliver(
    runtime: &tokio::runtime::Handle,
    key: ChannelKey,
    mut frames: Streaming<Frame>,
    mut channel: InboundChannel,
    credits: &mpsc::Sender<Result<Credit, Status>>,
) {
    let mut ended = false;
    loop {
        let frame = match runtime.block_on(frames.message()) {
            Ok(Some(frame)) => frame,
            // Closed after its end of input: done. Closed before: dropping the sink tells the
            // consuming task its input failed.
            Ok(None) if ended => return,
            Ok(None) => return debug!(channel = %key, "producer closed the channel early"),
            Err(status) => return debug!(channel = %key, "channel broke: {status}"),
        };
        let bytes = frame.payload.len() as u64;
        match channel.sink.deliver(&frame.payload, &channel.cancel) {
            Ok(end) => {
                ended |= end;
                if credits.blocking_send(Ok(Credit { bytes })).is_err() {
                    return;
                }
            }
            Err(reason) => {
                warn!(channel = %key, "channel stopped: {reason}");
                let _ = credits.blocking_send(Err(Status::aborted(reason)));
                return;
            }
        }
    }
}
