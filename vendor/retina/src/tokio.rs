// Copyright (C) The Retina Authors
// SPDX-License-Identifier: MIT OR Apache-2.0

//! tokio-based [`Connection`].
//!
//! In theory there could be a similar async-std-based implementation.

use futures::{Sink, Stream};
use std::time::Instant;
use tokio::io::AsyncWrite;
use tokio::net::{TcpStream, UdpSocket};
use url::Host;

use crate::buf::MarkBuf;
use crate::inputs::{Input as _, Split};
use crate::rtsp::msg::OwnedMessage;
use crate::{Error, ErrorInt, RtspMessageContext};

use super::{ConnectionContext, ReceivedMessage, WallTime};

/// Default initial capacity for the read ring buffer (64 KiB).
const DEFAULT_READ_CAPACITY: usize = 64 * 1024;

/// nvr patch: bounds on what a peer may make the connection buffer (see
/// [`crate::client::SessionOptions::max_message_bytes`] and
/// [`crate::client::SessionOptions::max_held_bytes`]). The default bounds nothing: upstream's
/// behaviour.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Limits {
    /// The largest RTSP message (head + body) accepted.
    pub(crate) max_message_bytes: usize,
    /// The most the read buffer may hold: what is not parsed yet plus what marks pin (the
    /// frame a depacketizer is assembling, and anything received after its first packet).
    pub(crate) max_held_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: usize::MAX,
            max_held_bytes: usize::MAX,
        }
    }
}

/// nvr patch: how much is read from the socket at a time.
const READ_RESERVE: usize = 4096;

/// nvr patch: the least room offered to one read when reads are batched
/// ([`Connection::set_read_interval`]): everything a camera sent in one interval, in one read.
const BATCH_READ_RESERVE: usize = 64 * 1024;

/// A RTSP connection which implements `Stream`, `Sink`, and `Unpin`.
pub(crate) struct Connection {
    stream: TcpStream,
    ctx: ConnectionContext,
    parser: crate::rtsp::parse::Parser,
    read_buf: MarkBuf,
    /// Write buffer for outgoing messages (written then flushed).
    write_buf: Vec<u8>,
    /// nvr patch: reads happen at most once per this interval (zero: whenever the socket is
    /// readable, upstream's behaviour). See [`Connection::set_read_interval`].
    read_interval: std::time::Duration,
    /// nvr patch: after a read that drained the socket, the ticker whose next tick the next
    /// read waits for, and its generation at that read.
    waiting_tick: Option<(std::sync::Arc<crate::read_ticker::Ticker>, u64)>,
    /// nvr patch: `read` calls that returned data (what batching saves is visible in tests).
    reads: u64,
    /// nvr patch: see [`Connection::set_limits`].
    limits: Limits,
}

impl Connection {
    pub(crate) async fn connect(host: Host<&str>, port: u16) -> Result<Self, std::io::Error> {
        let stream = match host {
            Host::Domain(h) => TcpStream::connect((h, port)).await,
            Host::Ipv4(h) => TcpStream::connect((h, port)).await,
            Host::Ipv6(h) => TcpStream::connect((h, port)).await,
        }?;
        Self::from_stream(stream)
    }

    pub(crate) fn from_stream(stream: TcpStream) -> Result<Self, std::io::Error> {
        let established_wall = WallTime::now();
        let local_addr = stream.local_addr()?;
        let peer_addr = stream.peer_addr()?;
        Ok(Self {
            stream,
            ctx: ConnectionContext {
                local_addr,
                peer_addr,
                established_wall,
            },
            parser: crate::rtsp::parse::Parser::default(),
            read_buf: MarkBuf::new(DEFAULT_READ_CAPACITY),
            write_buf: Vec::new(),
            read_interval: std::time::Duration::ZERO,
            waiting_tick: None,
            reads: 0,
            limits: Limits::default(),
        })
    }

    /// nvr patch: bounds what the peer may make this connection buffer. A message larger than
    /// `max_message_bytes` (by its `Content-Length`, by its head, or still incomplete after
    /// that many bytes: an endless header line) and a read buffer that would hold more than
    /// `max_held_bytes` (a frame that never ends) end the connection with an error naming
    /// the limit. Set before the first message is read.
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.parser = crate::rtsp::parse::Parser::builder()
            .max_message_size(limits.max_message_bytes)
            .build();
    }

    /// nvr patch: batches reads. With a non-zero `interval`, once a read has taken everything
    /// the socket held, the next read waits for the next tick of that interval's ticker
    /// thread, shared by every connection (`read_ticker.rs`): the kernel buffers what arrives
    /// meanwhile, and one wake-up and one `read` take it all (with room for at least
    /// [`BATCH_READ_RESERVE`] bytes), instead of a wake-up and a `read` per packet; one tick
    /// wakes every waiting connection. Messages already in the buffer are
    /// returned without waiting. A read that fills the room it was given reads again at once,
    /// so throughput is not capped. Costs up to `interval` of latency per message.
    pub(crate) fn set_read_interval(&mut self, interval: std::time::Duration) {
        self.read_interval = interval;
        if interval.is_zero() {
            self.waiting_tick = None;
        }
    }

    pub(crate) fn ctx(&self) -> &ConnectionContext {
        &self.ctx
    }

    pub(crate) fn read_buf(&self) -> &MarkBuf {
        &self.read_buf
    }

    /// Reads body data from the ring buffer as `Bytes`.
    ///
    /// This copies the data out. Use for cold paths (RTSP responses) or the
    /// public `PacketItem` API. The `Demuxed` path reads directly from the
    /// ring buffer to avoid this copy.
    pub(crate) fn body_bytes(&self, body_pos: u64, body_len: u32) -> bytes::Bytes {
        let (s1, s2) = self.read_buf.split(body_pos, body_len as usize).slices();
        let mut buf = Vec::with_capacity(body_len as usize);
        buf.extend_from_slice(s1);
        buf.extend_from_slice(s2);
        bytes::Bytes::from(buf)
    }

    pub(crate) fn eof_ctx(&self) -> RtspMessageContext {
        RtspMessageContext {
            pos: self.parser.stream_pos() + self.read_buf.unparsed_len() as u64,
            received_wall: WallTime::now(),
            received: Instant::now(),
        }
    }
}

/// Tries to decode a message from the read buffer without I/O.
///
/// Separated from `Connection` methods to avoid self-borrow issues.
///
/// When `eof` is true, the TCP stream has closed. `Incomplete` and empty
/// `Ok(None)` with leftover data are promoted to errors.
fn try_decode(
    parser: &mut crate::rtsp::parse::Parser,
    read_buf: &mut MarkBuf,
    eof: bool,
    max_message_bytes: usize,
) -> Result<Option<ReceivedMessage>, CodecError> {
    use crate::rtsp::parse::FeedError;

    let pos = parser.stream_pos();
    let unparsed = read_buf.unparsed();
    let mut input = {
        let split = read_buf.unparsed_split();
        let (first, second) = split.slices();
        Split::new(first, second)
    };
    let initial_len = input.len();

    match parser.feed(&mut input) {
        Ok(None) => {
            // nvr patch: the parser may have skipped CRLFs between messages; release them, or
            // an endless run of them is buffered without bound.
            let consumed = initial_len - input.len();
            if consumed > 0 {
                read_buf.advance_unparsed(unparsed + consumed as u64);
            }
            Ok(None) // idle, no data; caller distinguishes EOF from "need more"
        }
        Ok(Some((msg, body_slice))) => {
            let consumed = initial_len - input.len();
            let body_len = body_slice.len();
            let body_pos = unparsed + (consumed - body_len) as u64;
            read_buf.advance_unparsed(unparsed + consumed as u64);
            Ok(Some(ReceivedMessage {
                msg,
                body_pos,
                body_len: body_len as u32,
                ctx: RtspMessageContext {
                    pos,
                    received_wall: WallTime::now(),
                    received: Instant::now(),
                },
            }))
        }
        Err(FeedError::Incomplete(_)) if !eof => {
            // On Incomplete, the parser may have stably consumed some bytes
            // (e.g. header lines). Advance past them.
            let consumed = initial_len - input.len();
            if consumed > 0 {
                read_buf.advance_unparsed(unparsed + consumed as u64);
            }
            // nvr patch: a message still incomplete after this many bytes (an endless header
            // line, say) is refused instead of buffered.
            if read_buf.unparsed_len() > max_message_bytes {
                return Err(CodecError::ParseError {
                    description: format!(
                        "Invalid RTSP message: message-too-large (over {max_message_bytes} bytes \
                         without an end); buffered:\n{:#?}",
                        crate::hex::LimitedHex::from_split(read_buf.unparsed_split(), 128),
                    ),
                    pos,
                });
            }
            Ok(None)
        }
        Err(FeedError::Incomplete(inc)) => {
            // EOF with incomplete data: the message is truncated.
            Err(CodecError::ParseError {
                description: format!(
                    "Incomplete RTSP message at EOF ({inc}); buffered:\n{:#?}",
                    crate::hex::LimitedHex::from_split(read_buf.unparsed_split(), 128),
                ),
                pos,
            })
        }
        Err(FeedError::Invalid(inv)) => Err(CodecError::ParseError {
            description: format!(
                "Invalid RTSP message: {inv}; buffered:\n{:#?}",
                crate::hex::LimitedHex::from_split(read_buf.unparsed_split(), 128),
            ),
            pos: inv.pos,
        }),
    }
}

/// An intermediate error type used internally.
#[derive(Debug)]
#[allow(dead_code)] // IoError reserved for future use
enum CodecError {
    IoError(std::io::Error),
    ParseError { description: String, pos: u64 },
}

impl Stream for Connection {
    type Item = Result<ReceivedMessage, Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            // Try decoding from existing buffered data.
            match try_decode(
                &mut this.parser,
                &mut this.read_buf,
                false,
                this.limits.max_message_bytes,
            ) {
                Ok(Some(msg)) => return std::task::Poll::Ready(Some(Ok(msg))),
                Ok(None) => {}
                Err(e) => {
                    return std::task::Poll::Ready(Some(Err(codec_err_to_error(
                        &this.ctx,
                        &this.parser,
                        &this.read_buf,
                        e,
                    ))));
                }
            }

            // nvr patch: batched reads wait for their tick.
            if let Some((ticker, seen)) = &this.waiting_tick {
                if !ticker.poll_tick(*seen, cx.waker()) {
                    return std::task::Poll::Pending;
                }
                this.waiting_tick = None;
            }

            // Need more data. Read from the stream into the ring buffer
            // using vectored I/O to fill both halves of the ring.
            match this.stream.poll_read_ready(cx) {
                std::task::Poll::Ready(Ok(())) => {}
                std::task::Poll::Ready(Err(error)) => {
                    let pos = this.parser.stream_pos() + this.read_buf.unparsed_len() as u64;
                    return std::task::Poll::Ready(Some(Err(wrap!(ErrorInt::RtspReadError {
                        conn_ctx: this.ctx,
                        msg_ctx: RtspMessageContext {
                            pos,
                            received_wall: WallTime::now(),
                            received: Instant::now(),
                        },
                        source: error,
                    }))));
                }
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
            let batched = !this.read_interval.is_zero();
            let reserve = if batched { BATCH_READ_RESERVE } else { READ_RESERVE };
            let Some((first, second)) = this
                .read_buf
                .spare_capacity_bounded(reserve, this.limits.max_held_bytes)
            else {
                return std::task::Poll::Ready(Some(Err(codec_err_to_error(
                    &this.ctx,
                    &this.parser,
                    &this.read_buf,
                    CodecError::ParseError {
                        description: format!(
                            "held-too-large: the peer sent over {} bytes without completing a \
                             frame or message",
                            this.limits.max_held_bytes
                        ),
                        pos: this.parser.stream_pos(),
                    },
                ))));
            };
            let offered = first.len() + second.len();
            let mut bufs = [
                std::io::IoSliceMut::new(first),
                std::io::IoSliceMut::new(second),
            ];
            match this.stream.try_read_vectored(&mut bufs) {
                Ok(0) => {
                    // EOF. Try decode with eof=true.
                    return match try_decode(
                        &mut this.parser,
                        &mut this.read_buf,
                        true,
                        this.limits.max_message_bytes,
                    ) {
                        Ok(Some(msg)) => std::task::Poll::Ready(Some(Ok(msg))),
                        Ok(None) => std::task::Poll::Ready(None),
                        Err(e) => std::task::Poll::Ready(Some(Err(codec_err_to_error(
                            &this.ctx,
                            &this.parser,
                            &this.read_buf,
                            e,
                        )))),
                    };
                }
                Ok(n) => {
                    this.read_buf.advance_end(n);
                    this.reads += 1;
                    if batched && n < offered {
                        // The socket is drained: the next read waits for the next tick.
                        let ticker = crate::read_ticker::ticker(this.read_interval);
                        let seen = ticker.generation();
                        this.waiting_tick = Some((ticker, seen));
                    }
                    // Loop to try decoding again.
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    // Spurious readiness; re-register and wait.
                    continue;
                }
                Err(error) => {
                    let pos = this.parser.stream_pos() + this.read_buf.unparsed_len() as u64;
                    return std::task::Poll::Ready(Some(Err(wrap!(ErrorInt::RtspReadError {
                        conn_ctx: this.ctx,
                        msg_ctx: RtspMessageContext {
                            pos,
                            received_wall: WallTime::now(),
                            received: Instant::now(),
                        },
                        source: error,
                    }))));
                }
            }
        }
    }
}

fn codec_err_to_error(
    ctx: &ConnectionContext,
    parser: &crate::rtsp::parse::Parser,
    read_buf: &MarkBuf,
    e: CodecError,
) -> Error {
    wrap!(match e {
        CodecError::IoError(error) => ErrorInt::RtspReadError {
            conn_ctx: *ctx,
            msg_ctx: RtspMessageContext {
                pos: parser.stream_pos() + read_buf.unparsed_len() as u64,
                received_wall: WallTime::now(),
                received: Instant::now(),
            },
            source: error,
        },
        CodecError::ParseError { description, pos } => ErrorInt::RtspFramingError {
            conn_ctx: *ctx,
            msg_ctx: RtspMessageContext {
                pos,
                received_wall: WallTime::now(),
                received: Instant::now(),
            },
            description,
        },
    })
}

impl Sink<OwnedMessage> for Connection {
    type Error = ErrorInt;

    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn start_send(
        mut self: std::pin::Pin<&mut Self>,
        item: OwnedMessage,
    ) -> Result<(), Self::Error> {
        self.write_buf.clear();
        item.write(&mut self.write_buf)
            .expect("Vec Writer is infallible");
        Ok(())
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        let this = &mut *self;
        while !this.write_buf.is_empty() {
            match std::pin::Pin::new(&mut this.stream).poll_write(cx, &this.write_buf) {
                std::task::Poll::Ready(Ok(n)) => {
                    this.write_buf.drain(..n);
                }
                std::task::Poll::Ready(Err(e)) => {
                    return std::task::Poll::Ready(Err(ErrorInt::WriteError {
                        conn_ctx: this.ctx,
                        source: e,
                    }));
                }
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
        match std::pin::Pin::new(&mut this.stream).poll_flush(cx) {
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(())),
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(ErrorInt::WriteError {
                conn_ctx: this.ctx,
                source: e,
            })),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        match self.as_mut().poll_flush(cx) {
            std::task::Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.stream).poll_shutdown(cx) {
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(())),
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(ErrorInt::WriteError {
                conn_ctx: this.ctx,
                source: e,
            })),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

/// tokio-specific version of [`crate::UdpPair`].
pub(crate) struct UdpPair {
    pub(crate) rtp_port: u16,
    pub(crate) rtp_socket: UdpSocket,
    pub(crate) rtcp_socket: UdpSocket,
}

impl UdpPair {
    pub(crate) fn for_ip(ip_addr: std::net::IpAddr) -> Result<Self, std::io::Error> {
        let inner = crate::UdpPair::for_ip(ip_addr)?;
        inner.rtp_socket.set_nonblocking(true)?;
        inner.rtcp_socket.set_nonblocking(true)?;
        Ok(Self {
            rtp_port: inner.rtp_port,
            rtp_socket: UdpSocket::from_std(inner.rtp_socket)?,
            rtcp_socket: UdpSocket::from_std(inner.rtcp_socket)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_data() {
        let mut read_buf = MarkBuf::new(64);
        let data = b"\r\n$\x00\x00\x04asdfrest";
        let (first, _) = read_buf.spare_capacity(data.len());
        first[..data.len()].copy_from_slice(data);
        read_buf.advance_end(data.len());

        let mut parser = crate::rtsp::parse::Parser::default();
        let msg = try_decode(&mut parser, &mut read_buf, false, usize::MAX)
            .unwrap()
            .unwrap();
        // Read body from ring buffer.
        let (s1, s2) = read_buf.split(msg.body_pos, msg.body_len as usize).slices();
        assert_eq!(s1, b"asdf");
        assert!(s2.is_empty());
        assert_eq!(read_buf.unparsed_len(), 4); // "rest" remains
    }

    /// nvr patch: with a read interval, messages sent 1 ms apart are taken a tick's worth per
    /// read (at most one read per interval elapsed, plus the first), all of them, in order.
    #[tokio::test]
    async fn batched_reads_take_a_tick_of_messages_at_once() {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        const MESSAGES: usize = 200;
        const BODY_BYTES: usize = 96;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for i in 0..MESSAGES {
                let mut m = vec![b'$', 0, 0, BODY_BYTES as u8];
                m.extend_from_slice(&[i as u8; BODY_BYTES]);
                s.write_all(&m).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            s // kept open until the reader is done
        });
        let mut conn = Connection::from_stream(TcpStream::connect(addr).await.unwrap()).unwrap();
        let interval = std::time::Duration::from_millis(40);
        conn.set_read_interval(interval);
        let started = Instant::now();
        for i in 0..MESSAGES {
            let msg = conn.next().await.unwrap().unwrap();
            assert!(matches!(msg.msg, crate::rtsp::msg::Message::Data(_)));
            assert_eq!(
                conn.body_bytes(msg.body_pos, msg.body_len).as_ref(),
                &[i as u8; BODY_BYTES][..]
            );
        }
        let ticks = started.elapsed().as_millis() / interval.as_millis() + 2;
        assert!(
            u128::from(conn.reads) <= ticks,
            "{} reads in {ticks} intervals",
            conn.reads
        );
        drop(sender.await.unwrap());
    }

    /// nvr patch: a connection with `limits` that reads what a peer sends (`bytes`, then the
    /// connection held open); the first thing it yields.
    async fn first_item(limits: Limits, bytes: Vec<u8>) -> Option<Result<ReceivedMessage, Error>> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(&bytes).await.unwrap();
            s
        });
        let mut conn = Connection::from_stream(TcpStream::connect(addr).await.unwrap()).unwrap();
        conn.set_limits(limits);
        // Without the limits the connection would wait for more forever: a bound on the test.
        let item = tokio::time::timeout(std::time::Duration::from_secs(10), conn.next())
            .await
            .expect("an item, not a wait for more");
        drop(peer.await.unwrap());
        item
    }

    /// nvr patch: with `max_message_bytes`, a header line that never ends is refused once that
    /// many bytes are buffered, and so is a `Content-Length` over it, before its body comes.
    #[tokio::test]
    async fn max_message_bytes_refuses_endless_and_oversized_messages() {
        let limits = Limits {
            max_message_bytes: 4096,
            ..Limits::default()
        };
        let mut endless = b"RTSP/1.0 200 OK\r\nX-Endless: ".to_vec();
        endless.extend(std::iter::repeat_n(b'a', 16 * 1024));
        let e = first_item(limits, endless).await.unwrap().err().unwrap();
        assert!(e.to_string().contains("message-too-large"), "{e}");
        let huge =
            b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 1099511627776\r\n\r\n".to_vec();
        let e = first_item(limits, huge).await.unwrap().err().unwrap();
        assert!(e.to_string().contains("message-too-large"), "{e}");
        // Under the limit, a message is read as before.
        let ok = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 4\r\n\r\nbody".to_vec();
        let m = first_item(limits, ok).await.unwrap().unwrap();
        assert_eq!(m.body_len, 4);
    }

    /// nvr patch: with `max_held_bytes`, the read buffer never holds more: an interleaved
    /// message still arriving past it ends the connection with `held-too-large`.
    #[tokio::test]
    async fn max_held_bytes_bounds_the_read_buffer() {
        let limits = Limits {
            max_held_bytes: 8192,
            ..Limits::default()
        };
        let mut partial = vec![b'$', 0, 0xff, 0xff];
        partial.extend(std::iter::repeat_n(0u8, 20 * 1024));
        let e = first_item(limits, partial).await.unwrap().err().unwrap();
        assert!(e.to_string().contains("held-too-large"), "{e}");
    }

    #[test]
    fn response_decode() {
        let mut read_buf = MarkBuf::new(64);
        let data = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n";
        let (first, _) = read_buf.spare_capacity(data.len());
        first[..data.len()].copy_from_slice(data);
        read_buf.advance_end(data.len());

        let mut parser = crate::rtsp::parse::Parser::default();
        let msg = try_decode(&mut parser, &mut read_buf, false, usize::MAX)
            .unwrap()
            .unwrap();
        assert!(matches!(msg.msg, crate::rtsp::msg::Message::Response(_)));
        assert_eq!(msg.body_len, 0);
        assert_eq!(read_buf.unparsed_len(), 0);
    }
}
