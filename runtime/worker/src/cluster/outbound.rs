//! The producing side of remote channels: one thread per channel serializes what the
//! producing task wrote, waits for credit, and streams the frame to the consumer's worker.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};
use weir_rpc::tonic::transport::Channel;
use weir_rpc::v1::Frame;
use weir_rpc::v1::exchange_client::ExchangeClient;

use super::credit::Credits;
use super::{ChannelKey, FrameSource};
use crate::exchange::CancelToken;
use crate::{Error, Result};

/// How often a sender whose stream is full looks for a cancel.
const STALL_POLL: Duration = Duration::from_millis(2);

/// Starts sending `source`'s channel `key` to the worker behind `connection`.
pub(crate) fn send_channel(
    runtime: &tokio::runtime::Handle,
    connection: Channel,
    key: ChannelKey,
    source: Box<dyn FrameSource>,
    cancel: CancelToken,
) -> Result<std::thread::JoinHandle<()>> {
    let credits = Arc::new(Credits::default());
    let (frames, outgoing) = mpsc::channel(2);
    let hello = Frame { channel: Some(key.into()), payload: Vec::new() };
    frames.try_send(hello).expect("a new channel has room for its first frame");
    let granted = credits.clone();
    runtime.spawn(async move {
        let mut client = ExchangeClient::new(connection);
        match client.channel(ReceiverStream::new(outgoing)).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(credit)) => granted.grant(credit.bytes),
                        Ok(None) => break,
                        Err(status) => {
                            warn!(channel = %key, "consumer stopped the channel: {status}");
                            break;
                        }
                    }
                }
            }
            Err(status) => warn!(channel = %key, "cannot open the channel: {status}"),
        }
        granted.close();
    });
    std::thread::Builder::new()
        .name(format!("out {}>{}", key.producer, key.consumer))
        .spawn(move || send_frames(key, source, &credits, &frames, &cancel))
        .map_err(|source| Error::Spawn { task: format!("sender of channel {key}"), source })
}

/// Moves frames until the producer closes the channel, the consumer goes away or the
/// attempt is cancelled; returning drops the local channel's receiver, which fails the
/// producing task if it was still writing.
fn send_frames(
    key: ChannelKey,
    mut source: Box<dyn FrameSource>,
    credits: &Credits,
    frames: &mpsc::Sender<Frame>,
    cancel: &CancelToken,
) {
    while let Some(frame) = source.next_frame(cancel) {
        let payload = match frame {
            Ok(payload) => payload,
            Err(reason) => return warn!(channel = %key, "cannot serialize a message: {reason}"),
        };
        if !credits.acquire(payload.len() as u64, cancel) {
            return debug!(channel = %key, "no more credit: the consumer or the attempt ended");
        }
        let mut frame = Frame { channel: None, payload };
        // Credit covers the frame, so the stream takes it at once unless the connection
        // stalls; polling keeps a cancel from waiting on a stalled connection.
        loop {
            match frames.try_send(frame) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if !cancel.wait(STALL_POLL) => frame = back,
                Err(_) => return debug!(channel = %key, "the channel's stream closed"),
            }
        }
    }
}
