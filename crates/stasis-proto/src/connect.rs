//! Connect protocol v1: error codes, the error body, and envelope framing.
//!
//! A streaming message is an *envelope*: one flag byte, a big-endian `u32` length, then the
//! payload. Flag bit `0x01` marks a compressed payload, bit `0x02` the end of the stream, whose
//! payload is `{}` or `{"error": {"code", "message"}}`. Unary errors are a plain JSON body with
//! the HTTP status given by [`Code::http_status`].

use serde::{Deserialize, Serialize};

/// Flag of a compressed envelope.
pub const FLAG_COMPRESSED: u8 = 0x01;
/// Flag of the end-of-stream envelope.
pub const FLAG_END_STREAM: u8 = 0x02;
/// Size of an envelope header.
pub const ENVELOPE_HEADER_LEN: usize = 5;

/// Content type of unary JSON requests and responses.
pub const CONTENT_TYPE_UNARY_JSON: &str = "application/json";
/// Content type of streaming JSON requests and responses.
pub const CONTENT_TYPE_STREAM_JSON: &str = "application/connect+json";

/// Connect (and gRPC) status codes, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    /// The HTTP status of a unary error with this code (Connect protocol table).
    pub fn http_status(self) -> u16 {
        match self {
            Code::Canceled => 499,
            Code::Unknown => 500,
            Code::InvalidArgument => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::FailedPrecondition => 400,
            Code::Aborted => 409,
            Code::OutOfRange => 400,
            Code::Unimplemented => 501,
            Code::Internal => 500,
            Code::Unavailable => 503,
            Code::DataLoss => 500,
            Code::Unauthenticated => 401,
        }
    }

    /// The wire name, e.g. `not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Connect error: the body of a unary error response, and the `error` of an end envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ConnectError {
    pub code: Code,
    #[serde(default)]
    pub message: String,
}

impl ConnectError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, message)
    }
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }
}

/// The payload of an end-of-stream envelope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndStream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ConnectError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub flags: u8,
    pub data: Vec<u8>,
}

impl Envelope {
    pub fn is_end_stream(&self) -> bool {
        self.flags & FLAG_END_STREAM != 0
    }
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
}

/// Why an envelope stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("stream ended inside an envelope ({0} bytes left over)")]
    Truncated(usize),
}

impl From<EnvelopeError> for ConnectError {
    fn from(err: EnvelopeError) -> Self {
        match err {
            EnvelopeError::TooLarge { .. } => ConnectError::new(Code::ResourceExhausted, err.to_string()),
            EnvelopeError::Truncated(_) => ConnectError::invalid_argument(err.to_string()),
        }
    }
}

/// Frame `data` as one envelope.
pub fn encode_envelope(flags: u8, data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(ENVELOPE_HEADER_LEN + data.len());
    out.push(flags);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Serialize `msg` as JSON and frame it as a data envelope.
pub fn encode_message<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain data types cannot fail (string keys only).
    let json = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    encode_envelope(0, &json)
}

/// Frame the end of a stream, with an optional error.
pub fn encode_end_stream(error: Option<&ConnectError>) -> Vec<u8> {
    let end = EndStream { error: error.cloned(), metadata: None };
    let json = serde_json::to_vec(&end).unwrap_or_else(|_| b"{}".to_vec());
    encode_envelope(FLAG_END_STREAM, &json)
}

/// Incremental envelope decoder: feed it bytes as they arrive, take whole envelopes out.
#[derive(Debug)]
pub struct EnvelopeDecoder {
    buf: Vec<u8>,
    limit: usize,
}

impl EnvelopeDecoder {
    /// A decoder that rejects any message larger than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { buf: Vec::new(), limit }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete envelope, `Ok(None)` if more bytes are needed.
    pub fn next_envelope(&mut self) -> Result<Option<Envelope>, EnvelopeError> {
        if self.buf.len() < ENVELOPE_HEADER_LEN {
            return Ok(None);
        }
        let size = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if size > self.limit {
            return Err(EnvelopeError::TooLarge { size, limit: self.limit });
        }
        if self.buf.len() < ENVELOPE_HEADER_LEN + size {
            return Ok(None);
        }
        let flags = self.buf[0];
        let data = self.buf[ENVELOPE_HEADER_LEN..ENVELOPE_HEADER_LEN + size].to_vec();
        self.buf.drain(..ENVELOPE_HEADER_LEN + size);
        Ok(Some(Envelope { flags, data }))
    }

    /// Call at end of input: fails if a partial envelope is left.
    pub fn finish(&self) -> Result<(), EnvelopeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(EnvelopeError::Truncated(self.buf.len()))
        }
    }
}

/// Decode a complete body holding exactly one data envelope (a server-streaming request).
pub fn decode_single(body: &[u8], limit: usize) -> Result<Envelope, ConnectError> {
    let mut dec = EnvelopeDecoder::new(limit);
    dec.push(body);
    let env = dec
        .next_envelope()?
        .ok_or_else(|| ConnectError::invalid_argument("request body holds no complete envelope"))?;
    dec.finish()
        .map_err(|_| ConnectError::invalid_argument("request body holds more than one envelope"))?;
    if env.is_compressed() {
        return Err(ConnectError::new(Code::Unimplemented, "compressed envelopes are not supported"));
    }
    Ok(env)
}

/// Parse a JSON message, mapping a wrong shape to `invalid_argument`.
pub fn parse_json<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, ConnectError> {
    // An empty unary body is the empty message.
    let data: &[u8] = if data.iter().all(u8::is_ascii_whitespace) { b"{}" } else { data };
    serde_json::from_slice(data).map_err(|e| ConnectError::invalid_argument(format!("invalid request message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_roundtrip_in_pieces() {
        let mut bytes = encode_envelope(0, b"{\"a\":1}");
        bytes.extend(encode_end_stream(Some(&ConnectError::not_found("nope"))));
        let mut dec = EnvelopeDecoder::new(1024);
        let mut out = Vec::new();
        for b in &bytes {
            dec.push(std::slice::from_ref(b));
            while let Some(e) = dec.next_envelope().unwrap() {
                out.push(e);
            }
        }
        dec.finish().unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, b"{\"a\":1}");
        assert!(out[1].is_end_stream());
        let end: EndStream = serde_json::from_slice(&out[1].data).unwrap();
        assert_eq!(end.error.unwrap().code, Code::NotFound);
    }

    #[test]
    fn oversized_and_truncated() {
        let mut dec = EnvelopeDecoder::new(3);
        dec.push(&encode_envelope(0, b"toolong"));
        assert!(matches!(dec.next_envelope(), Err(EnvelopeError::TooLarge { size: 7, .. })));
        assert_eq!(decode_single(&[0, 0, 0], 10).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(decode_single(&[0, 0, 0, 0, 9, 1], 10).unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn error_json_shape() {
        let e = ConnectError::new(Code::PermissionDenied, "no");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"code":"permission_denied","message":"no"}"#);
        assert_eq!(Code::PermissionDenied.http_status(), 403);
        assert_eq!(encode_end_stream(None), [2, 0, 0, 0, 2, b'{', b'}']);
    }
}
