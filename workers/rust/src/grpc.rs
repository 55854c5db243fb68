//! The small part of gRPC this worker needs, over hyper's HTTP/2 server (there is no tonic among Debian's
//! crates): length-prefixed messages read from a request body and written to a response body, the status in
//! the trailers (or in the headers of a trailers-only answer), and the caller's deadline (`grpc-timeout`).
//! grpc-java on the bridge's side is the peer it is tested against.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response};
use hyper::body::HttpBody;
use hyper::Body;

use crate::{error_text, log};

/// The largest message either side accepts (docs/protocol.md: "messages of up to 64 MiB").
pub const MAX_MESSAGE: usize = 64 << 20;
const PREFIX: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

#[derive(Debug)]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status { code, message: message.into() }
    }

    /// The status as headers, its message cut to what the bridge takes (docs/protocol.md, "Error texts"): a longer
    /// one would fail the call as a transport error that hides it. The whole text is logged first; it names the
    /// session, as every failure's message does.
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from((self.code as u32) as u16));
        if !self.message.is_empty() {
            let message = error_text::cut(&self.message, error_text::MAX_BYTES);
            if matches!(message, Cow::Owned(_)) {
                log!("a {:?} status, cut for the bridge; its whole text: {}", self.code, self.message);
            }
            headers.insert("grpc-message", HeaderValue::from_str(&percent_encode(&message)).expect("percent-encoded text is a valid header"));
        }
        headers
    }
}

/// grpc-message is percent-encoded UTF-8: everything outside printable ASCII, and '%' itself.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The caller's deadline, from `grpc-timeout` (an integer and a unit: H, M, S, m, u, n).
pub fn deadline(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (amount, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = amount.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The messages of a request body, one at a time.
pub struct Messages {
    body: Body,
    buffer: BytesMut,
}

impl Messages {
    pub fn new(body: Body) -> Messages {
        Messages { body, buffer: BytesMut::new() }
    }

    /// Puts `message` (as read by `next`) back in front of what is left to read.
    pub fn unread(&mut self, message: &[u8]) {
        let mut buffer = BytesMut::with_capacity(PREFIX + message.len() + self.buffer.len());
        buffer.extend_from_slice(&frame_raw(message));
        buffer.extend_from_slice(&self.buffer);
        self.buffer = buffer;
    }

    /// What is left of the call's body, messages not yet read included: to hand the call on as it came.
    /// `count` is told the message bytes of each chunk as it passes (prefixes not included).
    pub fn into_body(self, count: impl FnMut(u64) + Send + 'static) -> Body {
        let buffered = self.buffer.freeze();
        let rest = futures_util::stream::iter((!buffered.is_empty()).then_some(Ok::<_, hyper::Error>(buffered)));
        let mut sizes = MessageBytes::new(count);
        let counted = futures_util::StreamExt::inspect(futures_util::StreamExt::chain(rest, self.body), move |chunk| {
            if let Ok(chunk) = chunk {
                sizes.pass(chunk);
            }
        });
        Body::wrap_stream(counted)
    }

    /// The next message; None once the caller has completed its side. Cancel-safe: what was read stays buffered.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Status> {
        loop {
            if self.buffer.len() >= PREFIX {
                if self.buffer[0] != 0 {
                    return Err(Status::new(Code::Unimplemented, "compressed messages are not accepted"));
                }
                let length = u32::from_be_bytes(self.buffer[1..5].try_into().unwrap()) as usize;
                if length > MAX_MESSAGE {
                    return Err(Status::new(
                        Code::ResourceExhausted,
                        format!("a message of {length} bytes is larger than the {MAX_MESSAGE} bytes a message may have"),
                    ));
                }
                if self.buffer.len() >= PREFIX + length {
                    self.buffer.advance(PREFIX);
                    return Ok(Some(self.buffer.split_to(length).freeze()));
                }
                self.buffer.reserve(PREFIX + length - self.buffer.len());
            }
            match self.body.data().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(Status::new(Code::Cancelled, format!("the call broke: {e}"))),
                None if self.buffer.is_empty() => return Ok(None),
                None => return Err(Status::new(Code::Internal, "the call ended inside a message")),
            }
        }
    }
}

/// Counts the message bytes of a stream of length-prefixed messages as it passes in chunks cut anywhere, without
/// copying or parsing the messages: what a call handed on as it came received.
struct MessageBytes<F> {
    prefix: [u8; PREFIX],
    prefix_read: usize,
    message_left: u64,
    count: F,
}

impl<F: FnMut(u64)> MessageBytes<F> {
    fn new(count: F) -> Self {
        MessageBytes { prefix: [0; PREFIX], prefix_read: 0, message_left: 0, count }
    }

    /// Counts `chunk`'s message bytes, told to `count` once per chunk.
    fn pass(&mut self, mut chunk: &[u8]) {
        let mut counted = 0;
        while !chunk.is_empty() {
            if self.message_left > 0 {
                let taken = self.message_left.min(chunk.len() as u64);
                counted += taken;
                self.message_left -= taken;
                chunk = &chunk[taken as usize..];
            } else {
                self.prefix[self.prefix_read] = chunk[0];
                self.prefix_read += 1;
                chunk = &chunk[1..];
                if self.prefix_read == PREFIX {
                    self.prefix_read = 0;
                    self.message_left = u32::from_be_bytes(self.prefix[1..].try_into().unwrap()) as u64;
                }
            }
        }
        if counted > 0 {
            (self.count)(counted);
        }
    }
}

/// An encoded message with its length prefix.
pub fn frame_raw(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(PREFIX + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.extend_from_slice(message);
    out.freeze()
}

/// One message with its length prefix.
pub fn frame(message: &impl prost::Message) -> Bytes {
    let length = message.encoded_len();
    let mut out = BytesMut::with_capacity(PREFIX + length);
    out.put_u8(0);
    out.put_u32(length as u32);
    message.encode(&mut out).expect("the buffer has room for the message");
    out.freeze()
}

fn ok_trailers() -> HeaderMap {
    Status::new(Code::Ok, "").headers()
}

fn started(body: Reply) -> Response<Reply> {
    let mut response = Response::new(body);
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

/// A call's answer: one message then OK, an error with no message (trailers-only), or a stream of messages
/// whose writer sends the trailers (`Streamed::finish`).
pub enum Reply {
    Unary { message: Option<Bytes>, trailers: Option<HeaderMap> },
    Stream(Body),
}

impl Reply {
    pub fn unary(message: &impl prost::Message) -> Response<Reply> {
        started(Reply::Unary { message: Some(frame(message)), trailers: Some(ok_trailers()) })
    }

    pub fn status(status: Status) -> Response<Reply> {
        let mut response = started(Reply::Unary { message: None, trailers: None });
        response.headers_mut().extend(status.headers());
        response
    }

    /// A trailers-only answer as hyper's own body type, for answers made where a forwarded answer is expected.
    pub fn status_response(status: Status) -> Response<Body> {
        let mut response = Response::new(Body::empty());
        response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
        response.headers_mut().extend(status.headers());
        response
    }

    /// Another server's answer to a call handed on to it, as it comes: headers, messages and trailers.
    pub fn forwarded(response: Response<Body>) -> Response<Reply> {
        response.map(Reply::Stream)
    }

    /// A streamed answer and the writer of its messages and trailers.
    pub fn stream() -> (Streamed, Response<Reply>) {
        let (sender, body) = Body::channel();
        (Streamed { sender }, started(Reply::Stream(body)))
    }
}

impl HttpBody for Reply {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_data(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, hyper::Error>>> {
        match self.get_mut() {
            Reply::Unary { message, .. } => Poll::Ready(message.take().map(Ok)),
            Reply::Stream(body) => Pin::new(body).poll_data(cx),
        }
    }

    fn poll_trailers(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Option<HeaderMap>, hyper::Error>> {
        match self.get_mut() {
            Reply::Unary { trailers, .. } => Poll::Ready(Ok(trailers.take())),
            Reply::Stream(body) => Pin::new(body).poll_trailers(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Unary { message, trailers } => message.is_none() && trailers.is_none(),
            Reply::Stream(body) => body.is_end_stream(),
        }
    }
}

/// Writes a streamed answer. Each send waits until HTTP/2's flow control takes the message, so a slow reader
/// holds the writer back instead of messages piling up here.
pub struct Streamed {
    sender: hyper::body::Sender,
}

/// The caller is gone: nothing more can be sent.
#[derive(Debug)]
pub struct CallerGone;

impl Streamed {
    pub async fn send(&mut self, message: &impl prost::Message) -> Result<(), CallerGone> {
        self.sender.send_data(frame(message)).await.map_err(|_| CallerGone)
    }

    pub async fn finish(mut self, status: Status) {
        // A caller gone by now learns nothing from the trailers anyway.
        let _ = self.sender.send_trailers(status.headers()).await;
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    #[test]
    fn timeouts_are_read_in_every_unit() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [("3S", Duration::from_secs(3)), ("250m", Duration::from_millis(250)), ("1M", Duration::from_secs(60)), ("7u", Duration::from_micros(7))] {
            headers.insert("grpc-timeout", HeaderValue::from_static(value));
            assert_eq!(deadline(&headers), Some(expected));
        }
        headers.insert("grpc-timeout", HeaderValue::from_static("x"));
        assert_eq!(deadline(&headers), None);
    }

    #[test]
    fn a_status_message_is_percent_encoded() {
        assert_eq!(percent_encode("100% ü\n"), "100%25 %C3%BC%0A");
    }

    /// The message of a status answer as a client reads it: grpc-message, percent-decoded; and its encoded length.
    pub fn grpc_message(response: &Response<Reply>) -> (String, usize) {
        let encoded = response.headers()["grpc-message"].as_bytes();
        let mut decoded = Vec::with_capacity(encoded.len());
        let mut i = 0;
        while i < encoded.len() {
            if encoded[i] == b'%' {
                decoded.push(u8::from_str_radix(std::str::from_utf8(&encoded[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                decoded.push(encoded[i]);
                i += 1;
            }
        }
        (String::from_utf8(decoded).expect("a message cut on character boundaries"), encoded.len())
    }

    #[test]
    fn a_long_status_message_is_cut_to_what_the_bridge_takes() {
        let long = format!("session s: cannot build segment 0: {}(its end)", "ünïcödé € ".repeat(8_000));
        let (message, encoded) = grpc_message(&Reply::status(Status::new(Code::InvalidArgument, long.clone())));
        assert!(encoded <= crate::error_text::MAX_BYTES, "{encoded} bytes");
        let (start, _, end) = crate::error_text::tests::parts(&message).expect("the marker");
        assert!(start.starts_with("session s: cannot build segment 0: ü") && long.starts_with(start), "{start}");
        assert!(end.ends_with("(its end)") && long.ends_with(end), "{end}");
        let short = Reply::status(Status::new(Code::NotFound, "no open session x"));
        assert_eq!(grpc_message(&short).0, "no open session x");
    }

    #[tokio::test]
    async fn a_message_put_back_is_read_again_and_handed_on_with_the_rest() {
        let mut stream = frame(&crate::proto::SessionRef { session_id: "one".into() }).to_vec();
        stream.extend_from_slice(&frame(&crate::proto::SessionRef { session_id: "two".into() }));
        let mut messages = Messages::new(Body::from(stream.clone()));
        let first = messages.next().await.unwrap().unwrap();
        messages.unread(&first);
        assert_eq!(messages.next().await.unwrap().unwrap(), first);
        messages.unread(&first);
        let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&counted);
        let body = messages.into_body(move |bytes| {
            counter.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        });
        let handed_on = hyper::body::to_bytes(body).await.unwrap();
        assert_eq!(handed_on.to_vec(), stream);
        assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 2 * first.len() as u64);
    }

    #[test]
    fn message_bytes_are_counted_wherever_the_chunks_are_cut() {
        let mut stream = frame_raw(&[7; 300]).to_vec();
        stream.extend_from_slice(&frame_raw(&[]));
        stream.extend_from_slice(&frame_raw(&[1, 2, 3]));
        for cut in [1, 2, 4, 5, 6, 64, stream.len()] {
            let mut total = 0;
            let mut sizes = MessageBytes::new(|bytes| total += bytes);
            stream.chunks(cut).for_each(|chunk| sizes.pass(chunk));
            assert_eq!(total, 303, "chunks of {cut} bytes");
        }
    }

    #[tokio::test]
    async fn messages_are_cut_at_their_prefixes_and_oversized_ones_refused() {
        let mut stream = frame(&crate::proto::Ack {}).to_vec();
        stream.extend_from_slice(&frame(&crate::proto::SessionRef { session_id: "abc".into() }));
        let (mut sender, body) = Body::channel();
        let (a, b) = stream.split_at(3);
        let (a, b) = (Bytes::copy_from_slice(a), Bytes::copy_from_slice(b));
        tokio::spawn(async move {
            sender.send_data(a).await.unwrap();
            sender.send_data(b).await.unwrap();
        });
        let mut messages = Messages::new(body);
        assert_eq!(messages.next().await.unwrap().unwrap().len(), 0);
        let second = messages.next().await.unwrap().unwrap();
        assert_eq!(<crate::proto::SessionRef as prost::Message>::decode(second).unwrap().session_id, "abc");
        assert!(messages.next().await.unwrap().is_none());

        let mut huge = vec![0u8, 0, 0, 0, 0];
        huge[1..5].copy_from_slice(&((MAX_MESSAGE + 1) as u32).to_be_bytes());
        let mut messages = Messages::new(Body::from(huge));
        assert_eq!(messages.next().await.unwrap_err().code, Code::ResourceExhausted);
    }
}
