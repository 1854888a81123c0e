//! Serving the router to the network, over HTTP or HTTPS (rustls), with every connection
//! bounded so that a stranger on the LAN cannot tie the server up:
//!
//! - **How many**: at most [`ServeOptions::max_connections`] open connections in all and
//!   [`ServeOptions::max_connections_per_client`] per client address (an IPv6 /64 counts as
//!   one); one over is closed at once, before any work.
//! - **First request**: the TLS handshake, HTTP version detection and the first request's
//!   headers must all be done within [`FIRST_REQUEST_TIMEOUT`] of the accept, or the
//!   connection is closed (hyper's own header timer starts only once HTTP/1 parsing does, and
//!   HTTP/2 has none).
//! - **Idle**: a connection on which no byte moved either way for [`IDLE_TIMEOUT`] is closed
//!   (keep-alive HTTP/1, idle HTTP/2, a WebSocket whose camera and viewer both went quiet).
//! - **Stalled writes**: a write that has waited [`WRITE_STALL_TIMEOUT`] for a client that
//!   stopped reading fails, which drops the connection and the response being streamed (the
//!   thread producing it sees its channel close).
//! - **Which host**: a request whose `Host` (or HTTP/2 authority) is not one of the server's
//!   own names gets 421, which stops DNS rebinding (a web page whose host name resolves to the
//!   recorder).
//!
//! Header blocks are capped at [`MAX_HEADER_BYTES`]; request bodies and handler time are
//! bounded by layers in [`crate::router`]. Connections are handed to hyper with upgrade
//! support, so the live WebSocket works either way.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use nvr_app::throttle::AddressBucket;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// HTTP/1 headers of each request must arrive within this time once they start.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// From accept to the first request's complete headers, TLS handshake included.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// No byte either way for this long closes a connection. Above the 30 s handler timeout, so a
/// slow answer is never cut; a browser reopens an idle connection when it needs one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A write waiting this long for the client to read closes the connection.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest header block accepted: far above any browser's (a few KiB), far below what would
/// let a client make the server buffer much.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Concurrent HTTP/2 streams per connection: a page's requests and a few videos.
pub const MAX_H2_STREAMS: u32 = 64;

/// Which `Host` values requests may carry: the server's own names and addresses.
#[derive(Clone, Debug, Default)]
pub struct HostAllowlist {
    /// Lowercase host names or addresses, without port or brackets; empty: any host.
    hosts: HashSet<String>,
}

impl HostAllowlist {
    /// Allows `names` (host names or IP addresses; any port).
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        HostAllowlist {
            hosts: names
                .into_iter()
                .map(|n| normalize_host(n.as_ref()))
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Allows any host (for tests of the router alone).
    pub fn any() -> Self {
        Self::default()
    }

    /// Whether a request naming `authority` (`host`, `host:port`, `[v6]:port`) may be served.
    pub fn allows(&self, authority: &str) -> bool {
        self.hosts.is_empty() || self.hosts.contains(&normalize_host(host_part(authority)))
    }
}

/// The host of an authority: without the port, and without IPv6 brackets.
fn host_part(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match a.rsplit_once(':') {
        // One colon: host:port. More: a bare IPv6 address.
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => a,
    }
}

fn normalize_host(h: &str) -> String {
    let h = h.trim().trim_start_matches('[').trim_end_matches(']');
    let h = h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
    // Compare addresses in their canonical form (e.g. IPv6 zero compression).
    match h.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => h,
    }
}

/// How the server bounds its connections.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub hosts: HostAllowlist,
}

/// Descriptors kept for the recorder itself whatever the web side does: camera sockets,
/// segment and key files, the index and its WAL, GStreamer's pipes, logs. A few per camera,
/// for up to 64 cameras, and some to spare.
pub const RESERVED_DESCRIPTORS: u64 = 512;

/// The connection cap to use given the configured one and the open-file limit: first raises
/// the soft limit to the hard one (systemd's default soft limit is 1,024), then keeps
/// [`RESERVED_DESCRIPTORS`] (and at least half the limit) out of the web side's reach, so an
/// attacker holding every connection still leaves cameras and segment files their
/// descriptors. Returns (cap, the open-file limit).
pub fn connection_budget(configured: usize) -> (usize, u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(cur), max) = (limit.current, limit.maximum)
        && max.is_none_or(|m| m > cur)
    {
        // An unlimited hard limit: go as far as the kernel's usual ceiling.
        let raised = max.unwrap_or(1 << 20);
        let attempt = rustix::process::Rlimit {
            current: Some(raised),
            maximum: max,
        };
        if setrlimit(Resource::Nofile, attempt).is_ok() {
            limit = attempt;
        }
    }
    let soft = limit.current.unwrap_or(u64::MAX);
    let for_web = (soft / 2)
        .min(soft.saturating_sub(RESERVED_DESCRIPTORS))
        .max(16);
    (
        configured.min(usize::try_from(for_web).unwrap_or(usize::MAX)),
        soft,
    )
}

/// Open connections, in all and per client address.
#[derive(Debug, Default)]
struct Connections {
    total: usize,
    per_client: HashMap<AddressBucket, usize>,
}

/// Counts open connections; admits a new one only under both caps.
#[derive(Debug)]
struct ConnectionTracker {
    state: Mutex<Connections>,
    max_total: usize,
    max_per_client: usize,
}

/// One admitted connection; frees its place when dropped.
#[derive(Debug)]
struct Admitted {
    tracker: Arc<ConnectionTracker>,
    client: AddressBucket,
}

impl ConnectionTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, &'static str> {
        let client = AddressBucket::of(ip);
        let mut st = self.lock();
        if st.total >= self.max_total {
            return Err("the server's connection limit is reached");
        }
        let n = st.per_client.entry(client).or_default();
        if *n >= self.max_per_client {
            return Err("this client's connection limit is reached");
        }
        *n += 1;
        st.total += 1;
        Ok(Admitted {
            tracker: self.clone(),
            client,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut st = self.tracker.lock();
        st.total = st.total.saturating_sub(1);
        if let Some(n) = st.per_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.per_client.remove(&self.client);
            }
        }
    }
}

/// Accepts connections on `listener` and serves `app` on each (over TLS when `tls` is given)
/// until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let tracker = Arc::new(ConnectionTracker {
        state: Mutex::default(),
        max_total: options.max_connections.max(1),
        max_per_client: options.max_connections_per_client.max(1),
    });
    let hosts = Arc::new(options.hosts);
    let mut refused: u64 = 0;
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
        let admitted = match tracker.admit(peer.ip()) {
            Ok(a) => a,
            Err(why) => {
                // Closed at once: the descriptor is free again before the next accept.
                drop(tcp);
                refused += 1;
                // Say so now and then, not once per connection of a flood.
                if refused.is_power_of_two() {
                    tracing::warn!(client = %peer.ip(), refused, "{why}: connection closed");
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (app, acceptor, hosts) = (app.clone(), acceptor.clone(), hosts.clone());
        tokio::spawn(async move {
            let _admitted = admitted;
            let deadline = Instant::now() + FIRST_REQUEST_TIMEOUT;
            match acceptor {
                None => connection(GuardedIo::new(tcp), peer, app, hosts, deadline).await,
                Some(acceptor) => {
                    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            connection(GuardedIo::new(tls), peer, app, hosts, deadline).await
                        }
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

fn misdirected(authority: &str) -> axum::response::Response {
    let shown: String = authority.chars().take(100).collect();
    let mut r = (
        StatusCode::MISDIRECTED_REQUEST,
        axum::Json(serde_json::json!({
            "error": format!("this server does not answer for host {shown:?}; use its own \
                             address or one of http.allowed_hosts")
        })),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::CSP),
    );
    r
}

async fn connection<I>(
    io: GuardedIo<I>,
    peer: SocketAddr,
    app: Router,
    hosts: Arc<HostAllowlist>,
    deadline: Instant,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let first_request = Arc::new(AtomicBool::new(false));
    let seen = first_request.clone();
    let service = hyper::service::service_fn(
        move |mut req: hyper::Request<hyper::body::Incoming>| {
            seen.store(true, Ordering::Relaxed);
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let authority = req
                .uri()
                .authority()
                .map(|a| a.as_str().to_owned())
                .or_else(|| {
                    req.headers()
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let allowed = hosts.allows(&authority);
            let app = app.clone();
            async move {
                if !allowed {
                    tracing::warn!(client = %peer, host = %authority.chars().take(100).collect::<String>(),
                        "refused a request for another host (DNS rebinding?)");
                    return Ok(misdirected(&authority));
                }
                app.oneshot(req).await
            }
        },
    );
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS)
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let first_request_deadline = async {
        tokio::time::sleep_until(deadline).await;
        if first_request.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = &mut conn => {
            if let Err(e) = r {
                tracing::debug!(client = %peer, error = %e, "connection ended with an error");
            }
        }
        _ = first_request_deadline => {
            tracing::debug!(client = %peer, "no request within the first-request deadline: closed");
        }
    }
}

/// A connection's byte stream with the idle and stalled-write timeouts of this module.
/// (Upgraded WebSockets keep it: the timeouts go with the bytes, not with hyper's state.)
pub struct GuardedIo<T> {
    inner: T,
    last_activity: Instant,
    idle_timer: Pin<Box<Sleep>>,
    write_pending_since: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
}

impl<T> std::fmt::Debug for GuardedIo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedIo")
            .field("last_activity", &self.last_activity)
            .field("write_pending_since", &self.write_pending_since)
            .finish_non_exhaustive()
    }
}

impl<T> GuardedIo<T> {
    pub fn new(inner: T) -> Self {
        let now = Instant::now();
        GuardedIo {
            inner,
            last_activity: now,
            idle_timer: Box::pin(tokio::time::sleep_until(now + IDLE_TIMEOUT)),
            write_pending_since: None,
            write_timer: Box::pin(tokio::time::sleep_until(now + WRITE_STALL_TIMEOUT)),
        }
    }

    fn timed_out(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
    }

    /// While a read waits: fails once nothing moved for [`IDLE_TIMEOUT`].
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let deadline = self.last_activity + IDLE_TIMEOUT;
        if Instant::now() >= deadline {
            return Poll::Ready(Err(Self::timed_out("connection idle")));
        }
        if self.idle_timer.deadline() != deadline {
            self.idle_timer.as_mut().reset(deadline);
        }
        match self.idle_timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Self::timed_out("connection idle"))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// While a write waits: fails once it waited [`WRITE_STALL_TIMEOUT`].
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let now = Instant::now();
        let since = *self.write_pending_since.get_or_insert(now);
        let deadline = since + WRITE_STALL_TIMEOUT;
        if now >= deadline {
            return Poll::Ready(Err(Self::timed_out("client stopped reading")));
        }
        if self.write_timer.deadline() != deadline {
            self.write_timer.as_mut().reset(deadline);
        }
        match self.write_timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Self::timed_out("client stopped reading"))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn wrote(&mut self) {
        self.write_pending_since = None;
        self.last_activity = Instant::now();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_idle(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.wrote();
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_stall(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.wrote();
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_stall(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                this.write_pending_since = None;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_stall(cx).map_ok(|_| ()),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_allowlist() {
        let h = HostAllowlist::new([
            "127.0.0.1",
            "localhost",
            "::1",
            "NVR.Site.LAN",
            "192.168.1.5",
        ]);
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "nvr.site.lan.:443",
            "192.168.1.5",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "",
            "[::2]:8080",
            "localhost.evil",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        assert!(HostAllowlist::any().allows("anything"));
    }

    #[test]
    fn connection_caps_per_client_and_in_all() {
        let t = Arc::new(ConnectionTracker {
            state: Mutex::default(),
            max_total: 5,
            max_per_client: 2,
        });
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let a1 = t.admit(a).expect("a1");
        let _a2 = t.admit(a).expect("a2");
        assert!(t.admit(a).is_err(), "per client");
        // An IPv6 /64 is one client.
        let v6 = |s: &str| s.parse::<IpAddr>().expect("ip");
        let _c1 = t.admit(v6("fd00::1")).expect("c1");
        let _c2 = t.admit(v6("fd00::ffff:2")).expect("c2");
        assert!(t.admit(v6("fd00::3:3")).is_err());
        let _b1 = t.admit(b).expect("b1");
        assert!(t.admit("10.0.0.3".parse().expect("ip")).is_err(), "in all");
        drop(a1);
        assert!(t.admit(a).is_ok(), "a place is freed on drop");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_times_out_and_a_stalled_write_fails() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(1024);
        let mut server = GuardedIo::new(server);
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let e = server.read(&mut buf).await.expect_err("idle");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= IDLE_TIMEOUT);
        // A client that never reads: writes fill the pipe, then fail after the stall timeout.
        let (_client2, server2) = tokio::io::duplex(1024);
        let mut server2 = GuardedIo::new(server2);
        let started = Instant::now();
        let e = server2
            .write_all(&vec![0u8; 1 << 20])
            .await
            .expect_err("stalled");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= WRITE_STALL_TIMEOUT);
        drop(client);
    }
}
