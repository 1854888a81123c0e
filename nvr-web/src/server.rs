//! Serving the router to the network, over HTTP or HTTPS (rustls), with the limits that keep a
//! hostile or broken client from tying the server up: headers must arrive within
//! [`HEADER_READ_TIMEOUT`] (slow clients and idle keep-alive connections are dropped), header
//! blocks are capped at [`MAX_HEADER_BYTES`], and TLS handshakes must finish in
//! [`HANDSHAKE_TIMEOUT`]. Request bodies and handler time are bounded by layers in [`crate::router`].
//! Connections are handed to hyper with upgrade support, so the live WebSocket works either way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A client must send a request's complete headers within this time (also the longest an idle
/// keep-alive connection stays open).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest header block accepted: far above any browser's (a few KiB), far below what would
/// let a client make the server buffer much.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// A TLS handshake that has not finished in this time is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and serves `app` on each (over TLS when `tls` is given)
/// until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => connection(TokioIo::new(tcp), peer, app).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => connection(TokioIo::new(tls), peer, app).await,
                        Ok(Err(e)) => {
                            tracing::debug!(client = %peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(client = %peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn connection<I>(io: I, peer: SocketAddr, app: Router)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(req)
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
        tracing::debug!(client = %peer, error = %e, "connection ended with an error");
    }
}
