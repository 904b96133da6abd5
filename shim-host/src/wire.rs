//! ttrpc framing: the 10-byte frame header, its limits, and one blocking client call.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use prost::Message;
use ttrpc::{Request, Response};

/// Bytes of a frame header: payload length, stream id (both big-endian u32), type, flags.
pub const HEADER_LEN: usize = 10;
/// The largest payload ttrpc (Go and Rust) accepts.
pub const MAX_PAYLOAD: usize = 4 << 20;
pub const TYPE_REQUEST: u8 = 1;
pub const TYPE_RESPONSE: u8 = 2;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: u32,
    pub stream_id: u32,
    pub kind: u8,
    pub flags: u8,
}

impl Header {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            length: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            kind: b[8],
            flags: b[9],
        }
    }
}

/// One whole frame: header then payload.
pub fn frame(stream_id: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(&[kind, 0]);
    out.extend_from_slice(payload);
    out
}

/// Why a client call failed.
#[derive(Debug)]
pub enum CallError {
    /// Nobody to talk to: the socket is missing or refuses connections.
    Connect(io::Error),
    /// The connection broke or timed out mid-call.
    Io(io::Error),
    /// The server answered with an error status (code, message).
    Status(i32, String),
    /// The server's answer is not a ttrpc response.
    Protocol(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "connect: {e}"),
            CallError::Io(e) => write!(f, "{e}"),
            CallError::Status(code, msg) => write!(f, "status {code}: {msg}"),
            CallError::Protocol(msg) => write!(f, "protocol: {msg}"),
        }
    }
}

/// Call `service`/`method` once over a fresh connection to `socket`, every read and write
/// bounded by `timeout`; the response payload on success.
pub fn call(
    socket: &Path,
    service: &str,
    method: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, CallError> {
    let mut sock = UnixStream::connect(socket).map_err(CallError::Connect)?;
    sock.set_read_timeout(Some(timeout))
        .map_err(CallError::Io)?;
    sock.set_write_timeout(Some(timeout))
        .map_err(CallError::Io)?;
    let request = Request {
        service: service.to_string(),
        method: method.to_string(),
        payload,
        timeout_nano: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
        metadata: Vec::new(),
    };
    sock.write_all(&frame(1, TYPE_REQUEST, &request.encode_to_vec()))
        .map_err(CallError::Io)?;
    let mut head = [0u8; HEADER_LEN];
    sock.read_exact(&mut head).map_err(CallError::Io)?;
    let head = Header::parse(&head);
    if head.kind != TYPE_RESPONSE || head.stream_id != 1 || head.length as usize > MAX_PAYLOAD {
        return Err(CallError::Protocol(format!("unexpected frame {head:?}")));
    }
    let mut body = vec![0u8; head.length as usize];
    sock.read_exact(&mut body).map_err(CallError::Io)?;
    let response =
        Response::decode(body.as_slice()).map_err(|e| CallError::Protocol(e.to_string()))?;
    match response.status {
        Some(s) if s.code != 0 => Err(CallError::Status(s.code, s.message)),
        _ => Ok(response.payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_starts_with_the_big_endian_header_ttrpc_expects() {
        let f = frame(7, TYPE_RESPONSE, b"abc");
        assert_eq!(&f[..HEADER_LEN], &[0, 0, 0, 3, 0, 0, 0, 7, 2, 0]);
        assert_eq!(&f[HEADER_LEN..], b"abc");
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&f[..HEADER_LEN]);
        assert_eq!(
            Header::parse(&h),
            Header {
                length: 3,
                stream_id: 7,
                kind: TYPE_RESPONSE,
                flags: 0
            }
        );
    }
}
