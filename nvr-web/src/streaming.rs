//! Long-lived response bodies (playback, transcoded video, bundle downloads): they end when the
//! viewer's session does (logout, expiry, the account disabled, deleted, demoted or its
//! password changed), and the threads that produce them never wait on a client that stopped
//! reading for longer than [`PRODUCER_SEND_TIMEOUT`].
//!
//! (A client that stops reading is also dropped by the connection's write timeout in
//! `server.rs`, which closes the socket and with it the body; the producer's own timeout frees
//! its thread and its decoding slot even if the connection lingers.)

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::AppState;
use crate::auth::CurrentUser;

/// The longest a blocking producer waits for room in its body's channel before it gives up on
/// the client.
pub const PRODUCER_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Ends `stream` when `user`'s session ends.
pub fn until_session_ends<S>(
    state: &AppState,
    user: &CurrentUser,
    stream: S,
) -> impl Stream<Item = S::Item> + Send + 'static
where
    S: Stream + Send + 'static,
{
    let app = state.app.clone();
    let mut watch = app.session_watch(user);
    let ended = async move { watch.ended(&app).await };
    stream.take_until(Box::pin(ended))
}

/// The receiving half of a body fed by a blocking producer, as a stream.
pub fn body_stream(
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// Sends from a blocking producer thread, waiting at most [`PRODUCER_SEND_TIMEOUT`] for room;
/// false when the body is gone or the client stopped reading (the producer should stop).
pub fn send_blocking(
    handle: &tokio::runtime::Handle,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    item: Result<Bytes, std::io::Error>,
) -> bool {
    handle
        .block_on(tokio::time::timeout(PRODUCER_SEND_TIMEOUT, tx.send(item)))
        .is_ok_and(|r| r.is_ok())
}
