//! Frame reassembly without a socket: the bytes a client sent in, whole request frames or the
//! refusals to answer out. Pure, so it is unit tested and fuzzed on its own.

use ttrpc::Status;

use crate::status;
use crate::wire::{Header, HEADER_LEN, MAX_PAYLOAD, TYPE_REQUEST};

/// Capacity a reader keeps between frames; a larger buffer (left by a big frame) is given back.
const KEEP: usize = 64 * 1024;

/// A whole frame read from a client.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// A request frame's stream id and payload (a `ttrpc::Request`, still encoded).
    Request { stream_id: u32, payload: Vec<u8> },
    /// A frame refused before decoding (over the size limit, or an even stream id): the stream
    /// gets this status. An oversized payload is skipped, never buffered.
    Refused { stream_id: u32, status: Status },
}

/// The frames of one connection, reassembled from reads of any size.
#[derive(Default)]
pub struct Reader {
    /// Bytes of a partial frame: at most a header and MAX_PAYLOAD, plus what one push added.
    buf: Vec<u8>,
    /// Payload bytes of a refused (oversized) frame still to be skipped.
    skip: usize,
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Take `bytes`, the next bytes from the client, and append every frame they complete to
    /// `out`. Frames of other types (data, stray responses) carry nothing this shim serves and
    /// are dropped, as Go's ttrpc does.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Incoming>) {
        if self.skip > 0 {
            let n = self.skip.min(bytes.len());
            self.skip -= n;
            bytes = &bytes[n..];
        }
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        while self.buf.len() - at >= HEADER_LEN {
            let mut raw = [0u8; HEADER_LEN];
            raw.copy_from_slice(&self.buf[at..at + HEADER_LEN]);
            let head = Header::parse(&raw);
            let length = head.length as usize;
            if length > MAX_PAYLOAD {
                out.push(Incoming::Refused {
                    stream_id: head.stream_id,
                    status: status::oversized(length, MAX_PAYLOAD),
                });
                let have = self.buf.len() - at - HEADER_LEN;
                if have >= length {
                    at += HEADER_LEN + length;
                    continue;
                }
                self.skip = length - have;
                at = self.buf.len();
                break;
            }
            if self.buf.len() - at - HEADER_LEN < length {
                break;
            }
            let start = at + HEADER_LEN;
            at = start + length;
            if head.kind != TYPE_REQUEST {
                continue;
            }
            if head.stream_id % 2 == 0 {
                out.push(Incoming::Refused {
                    stream_id: head.stream_id,
                    status: status::even_stream(),
                });
                continue;
            }
            out.push(Incoming::Request {
                stream_id: head.stream_id,
                payload: self.buf[start..at].to_vec(),
            });
        }
        self.buf.drain(..at);
        if self.buf.capacity() > KEEP && self.buf.len() <= KEEP {
            self.buf.shrink_to(KEEP);
        }
    }

    /// Bytes held for a partial frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Payload bytes of a refused frame still to come and be skipped.
    pub fn skipping(&self) -> usize {
        self.skip
    }

    /// Bytes of buffer allocated (what a connection costs while it waits for a frame's rest).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{frame, TYPE_RESPONSE};

    fn request(stream_id: u32, payload: &[u8]) -> Incoming {
        Incoming::Request {
            stream_id,
            payload: payload.to_vec(),
        }
    }

    fn refused_code(i: &Incoming) -> Option<(u32, i32)> {
        match i {
            Incoming::Refused { stream_id, status } => Some((*stream_id, status.code)),
            Incoming::Request { .. } => None,
        }
    }

    fn push_all(r: &mut Reader, bytes: &[u8]) -> Vec<Incoming> {
        let mut out = Vec::new();
        r.push(bytes, &mut out);
        out
    }

    #[test]
    fn a_header_split_across_reads_is_reassembled() {
        let bytes = frame(1, TYPE_REQUEST, b"hello");
        for cut in 0..bytes.len() {
            let mut r = Reader::new();
            let mut out = push_all(&mut r, &bytes[..cut]);
            assert!(out.is_empty(), "cut at {cut}: {out:?}");
            out = push_all(&mut r, &bytes[cut..]);
            assert_eq!(out, vec![request(1, b"hello")], "cut at {cut}");
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn a_frame_fed_one_byte_at_a_time_comes_out_once_whole() {
        let bytes = frame(7, TYPE_REQUEST, b"payload");
        let mut r = Reader::new();
        let mut out = Vec::new();
        for b in &bytes {
            r.push(std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out, vec![request(7, b"payload")]);
    }

    #[test]
    fn many_frames_in_one_read_all_come_out_in_order() {
        let mut bytes = Vec::new();
        for id in (1..200u32).step_by(2) {
            bytes.extend(frame(id, TYPE_REQUEST, &id.to_be_bytes()));
        }
        bytes.extend(&frame(201, TYPE_REQUEST, b"partial")[..12]);
        let mut r = Reader::new();
        let out = push_all(&mut r, &bytes);
        let want: Vec<Incoming> = (1..200u32)
            .step_by(2)
            .map(|id| request(id, &id.to_be_bytes()))
            .collect();
        assert_eq!(out, want);
        assert_eq!(
            r.buffered(),
            12,
            "the partial frame's bytes wait for the rest"
        );
    }

    #[test]
    fn an_oversized_frame_is_refused_skipped_and_the_next_frame_parsed() {
        let big = MAX_PAYLOAD + 1;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(big as u32).to_be_bytes());
        bytes.extend_from_slice(&3u32.to_be_bytes());
        bytes.extend_from_slice(&[TYPE_REQUEST, 0]);
        let mut r = Reader::new();
        let out = push_all(&mut r, &bytes);
        assert_eq!(
            out.iter().map(refused_code).collect::<Vec<_>>(),
            [Some((3, 8))]
        );
        // The payload arrives in pieces and is never buffered; the next frame follows it.
        let chunk = vec![0xaa; 64 * 1024];
        let mut left = big;
        while left > chunk.len() {
            assert!(push_all(&mut r, &chunk).is_empty());
            assert_eq!(r.buffered(), 0);
            left -= chunk.len();
        }
        let mut tail = vec![0xaa; left];
        tail.extend(frame(5, TYPE_REQUEST, b"next"));
        assert_eq!(push_all(&mut r, &tail), vec![request(5, b"next")]);
    }

    #[test]
    fn an_oversized_frame_whole_in_one_read_is_skipped_too() {
        let mut bytes = frame(1, TYPE_REQUEST, &vec![0; MAX_PAYLOAD + 1]);
        bytes.extend(frame(3, TYPE_REQUEST, b"after"));
        let mut r = Reader::new();
        let out = push_all(&mut r, &bytes);
        assert_eq!(
            out.len(),
            2,
            "{:?}",
            out.iter().map(refused_code).collect::<Vec<_>>()
        );
        assert_eq!(refused_code(&out[0]), Some((1, 8)));
        assert_eq!(out[1], request(3, b"after"));
        assert!(r.capacity() <= KEEP, "{} bytes kept", r.capacity());
    }

    #[test]
    fn a_zero_length_payload_is_a_request_of_its_own() {
        let mut bytes = frame(1, TYPE_REQUEST, b"");
        bytes.extend(frame(3, TYPE_REQUEST, b""));
        let mut r = Reader::new();
        assert_eq!(
            push_all(&mut r, &bytes),
            vec![request(1, b""), request(3, b"")]
        );
    }

    #[test]
    fn frames_of_other_types_are_dropped_and_the_stream_goes_on() {
        let mut bytes = frame(1, TYPE_RESPONSE, b"stray response");
        bytes.extend(frame(3, 3, b"data frame"));
        bytes.extend(frame(4, 0x7f, b"unknown type, even id"));
        bytes.extend(frame(5, TYPE_REQUEST, b"served"));
        let mut r = Reader::new();
        assert_eq!(push_all(&mut r, &bytes), vec![request(5, b"served")]);
    }

    #[test]
    fn even_stream_ids_are_refused_as_go_ttrpc_does_and_odd_ones_served() {
        let mut bytes = Vec::new();
        for id in [0u32, 1, 2, 3, u32::MAX - 1, u32::MAX] {
            bytes.extend(frame(id, TYPE_REQUEST, b"x"));
        }
        let mut r = Reader::new();
        let out = push_all(&mut r, &bytes);
        assert_eq!(refused_code(&out[0]), Some((0, 3)));
        assert_eq!(out[1], request(1, b"x"));
        assert_eq!(refused_code(&out[2]), Some((2, 3)));
        assert_eq!(out[3], request(3, b"x"));
        assert_eq!(refused_code(&out[4]), Some((u32::MAX - 1, 3)));
        assert_eq!(out[5], request(u32::MAX, b"x"));
        let Incoming::Refused { status, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(
            status.message,
            "StreamID must be odd for client initiated streams"
        );
    }

    #[test]
    fn a_big_frame_leaves_no_big_buffer_behind() {
        let mut r = Reader::new();
        let bytes = frame(1, TYPE_REQUEST, &vec![1; 3 << 20]);
        let mut out = Vec::new();
        for chunk in bytes.chunks(8192) {
            r.push(chunk, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert!(r.capacity() <= KEEP, "{} bytes kept", r.capacity());
    }
}
