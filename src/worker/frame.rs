//! The frames a library and its worker process exchange.
//!
//! A frame is an 8-byte header, its kind and its payload's length (both
//! `u32`, little-endian), then the payload. Requests and responses travel as
//! the same message bytes a host sends and reads in process; the other
//! frames carry what a message cannot: the handshake, print output as it is
//! written, and the library's settings for the worker.

use std::io::{self, Read, Write};

#[cfg(worker_processes)]
use capnp::Word;

/// The largest payload a frame carries: a header's length field.
pub(crate) const MAX_PAYLOAD: usize = u32::MAX as usize;

/// A frame from the library to its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToWorker {
    /// A request message, for the worker's session.
    Request = 1,
    /// Send print output as it is written (`Stdout` and `Stderr` frames).
    StreamPrints = 2,
    /// Stop sending print output as it is written.
    QuietPrints = 3,
    /// Drop the session and start an empty one; answered with `Ready`.
    Reset = 4,
}

impl ToWorker {
    fn from_wire(kind: u32) -> Option<Self> {
        Some(match kind {
            1 => Self::Request,
            2 => Self::StreamPrints,
            3 => Self::QuietPrints,
            4 => Self::Reset,
            _ => return None,
        })
    }
}

/// A frame from a worker to its library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FromWorker {
    /// The worker is ready for requests: the protocol version it speaks
    /// (`u32`), then 4 bytes of padding.
    Ready = 1,
    /// A response message, after 8 bytes: the time budget, in nanoseconds,
    /// of the session's next request that runs Python (`u64::MAX`: none).
    Response = 2,
    /// Text the sandbox printed to stdout.
    Stdout = 3,
    /// Text the sandbox printed to stderr.
    Stderr = 4,
}

// Reading what a worker sends is the library's side, which exists only
// where workers can be started.
#[cfg(worker_processes)]
impl FromWorker {
    fn from_wire(kind: u32) -> Option<Self> {
        Some(match kind {
            1 => Self::Ready,
            2 => Self::Response,
            3 => Self::Stdout,
            4 => Self::Stderr,
            _ => return None,
        })
    }
}

/// "No time budget" in a `Response` frame.
pub(crate) const NO_BUDGET: u64 = u64::MAX;

/// Appends a frame header for `len` payload bytes to `out`.
pub(crate) fn put_header(out: &mut Vec<u8>, kind: u32, len: usize) {
    let len = u32::try_from(len).expect("frame payloads are checked against MAX_PAYLOAD");
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

/// Reads a frame header: `None` at a clean end of the stream.
fn read_header(from: &mut impl Read) -> io::Result<Option<(u32, usize)>> {
    let mut header = [0u8; 8];
    let mut filled = 0;
    while filled < header.len() {
        match from.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    Ok(Some((kind, len as usize)))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads the next frame a worker receives: its kind and payload, or `None`
/// when the library has gone.
pub(crate) fn read_to_worker(from: &mut impl Read) -> io::Result<Option<(ToWorker, Vec<u8>)>> {
    let Some((kind, len)) = read_header(from)? else {
        return Ok(None);
    };
    let kind = ToWorker::from_wire(kind).ok_or_else(|| invalid(format!("unknown frame kind {kind}")))?;
    let mut payload = Vec::new();
    payload.try_reserve_exact(len).map_err(|e| invalid(e.to_string()))?;
    from.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some((kind, payload)))
}

/// A frame a library receives.
#[cfg(worker_processes)]
pub(crate) enum Received {
    Ready {
        protocol: u32,
    },
    /// A response message and the budget of the session's next request.
    Response {
        words: Vec<Word>,
        budget: u64,
    },
    Print {
        stderr: bool,
        text: String,
    },
}

/// Reads the next frame from a worker. Responses arrive in aligned words,
/// ready to hand to the host. `max_payload` bounds what a worker may make
/// the library allocate.
#[cfg(worker_processes)]
pub(crate) fn read_from_worker(from: &mut impl Read, max_payload: usize) -> io::Result<Received> {
    let (kind, len) = read_header(from)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    let kind = FromWorker::from_wire(kind).ok_or_else(|| invalid(format!("unknown frame kind {kind}")))?;
    if len > max_payload {
        return Err(invalid(format!(
            "a {len}-byte frame is larger than any the worker sends"
        )));
    }
    match kind {
        FromWorker::Ready => {
            let mut payload = [0u8; 8];
            if len != payload.len() {
                return Err(invalid(format!("a {len}-byte handshake")));
            }
            from.read_exact(&mut payload)?;
            Ok(Received::Ready {
                protocol: u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")),
            })
        }
        FromWorker::Response => {
            if len < 16 || len % 8 != 0 {
                return Err(invalid(format!("a {len}-byte response frame")));
            }
            let mut budget = [0u8; 8];
            from.read_exact(&mut budget)?;
            let mut words = Word::allocate_zeroed_vec((len - 8) / 8);
            from.read_exact(Word::words_to_bytes_mut(&mut words))?;
            Ok(Received::Response {
                words,
                budget: u64::from_le_bytes(budget),
            })
        }
        FromWorker::Stdout | FromWorker::Stderr => {
            let mut text = vec![0u8; len];
            from.read_exact(&mut text)?;
            let text = String::from_utf8(text).map_err(|e| invalid(e.to_string()))?;
            Ok(Received::Print {
                stderr: kind == FromWorker::Stderr,
                text,
            })
        }
    }
}

/// Writes one frame in one `write_all`, assembled in `scratch` (kept
/// between frames, so a turn allocates nothing).
pub(crate) fn write_frame(to: &mut impl Write, scratch: &mut Vec<u8>, kind: u32, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    if len > MAX_PAYLOAD {
        return Err(invalid(format!("a {len}-byte payload does not fit in a frame")));
    }
    scratch.clear();
    put_header(scratch, kind, len);
    for part in parts {
        scratch.extend_from_slice(part);
    }
    to.write_all(scratch)?;
    to.flush()
}

/// How long a side of the channel polls for the next frame before it sleeps
/// in the kernel (Unix).
///
/// A turn loop's frames follow each other within microseconds: the worker
/// answers a host call's result in a few, and a host answers the next call
/// in a few more. A process that went to sleep waiting for one pays to be
/// woken (a scheduler round trip; on a virtual machine, an idle virtual CPU
/// to restart), on both sides, every turn, and that was most of what an
/// isolated turn cost over an in-process one. A wait longer than this costs
/// this much CPU once, then sleeps as before.
#[cfg(unix)]
pub(crate) const POLL_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(50);

/// The channel's read end on Unix: each read polls the socket for
/// [`POLL_BEFORE_SLEEP`], then blocks. With one CPU the other side cannot
/// run while this one polls, so it blocks at once.
#[cfg(unix)]
pub(crate) struct PollingReader(pub(crate) std::os::unix::net::UnixStream);

#[cfg(unix)]
impl Read for PollingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::{os::fd::AsRawFd, sync::OnceLock, time::Instant};
        static POLL: OnceLock<bool> = OnceLock::new();
        let poll = *POLL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|cpus| cpus.get() > 1));
        if poll {
            let until = Instant::now() + POLL_BEFORE_SLEEP;
            loop {
                // SAFETY: the descriptor is this stream's own, open for the
                // call; `buf` is writable for `buf.len()` bytes.
                let received = unsafe {
                    libc::recv(
                        self.0.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if let Ok(received) = usize::try_from(received) {
                    return Ok(received);
                }
                let error = io::Error::last_os_error();
                match error.kind() {
                    io::ErrorKind::WouldBlock if Instant::now() < until => std::hint::spin_loop(),
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => {}
                    _ => return Err(error),
                }
            }
        }
        self.0.read(buf)
    }
}

#[cfg(all(test, worker_processes))]
mod tests {
    use super::*;

    #[test]
    fn a_response_frame_reads_back_as_aligned_words() {
        let message = [7u8; 16];
        let mut bytes = Vec::new();
        write_frame(
            &mut bytes,
            &mut Vec::new(),
            FromWorker::Response as u32,
            &[&5u64.to_le_bytes(), &message],
        )
        .unwrap();
        let Received::Response { words, budget } = read_from_worker(&mut bytes.as_slice(), 1 << 20).unwrap() else {
            panic!("not a response")
        };
        assert_eq!(budget, 5);
        assert_eq!(Word::words_to_bytes(&words), &message);
    }

    #[test]
    fn frames_that_break_the_rules_are_errors() {
        // An unknown kind, a response of a length no message has, a frame
        // longer than allowed, and one that ends early.
        for (kind, len, body) in [(9u32, 0usize, 0usize), (2, 12, 12), (3, 1 << 21, 0), (3, 10, 4)] {
            let mut bytes = Vec::new();
            put_header(&mut bytes, kind, len);
            bytes.resize(bytes.len() + body, b'x');
            assert!(
                read_from_worker(&mut bytes.as_slice(), 1 << 20).is_err(),
                "{kind} {len}"
            );
        }
        let mut bytes = Vec::new();
        put_header(&mut bytes, 77, 0);
        assert!(read_to_worker(&mut bytes.as_slice()).is_err());
        assert!(read_to_worker(&mut [].as_slice()).unwrap().is_none(), "a clean end");
    }

    /// Bytes already sent, bytes that come only after the poll gave up and
    /// the read sleeps, and the other end closing all reach the reader.
    #[cfg(unix)]
    #[test]
    fn a_polling_read_gets_early_and_late_bytes_and_the_end() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut reader = PollingReader(ours);
        let mut buf = [0u8; 8];
        (&theirs).write_all(b"early").unwrap();
        assert_eq!(reader.read(&mut buf).unwrap(), 5);
        let late = std::thread::spawn(move || {
            std::thread::sleep(POLL_BEFORE_SLEEP * 100);
            (&theirs).write_all(b"late").unwrap();
            theirs
        });
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"late");
        drop(late.join().unwrap());
        assert_eq!(reader.read(&mut buf).unwrap(), 0, "the other end closed");
    }
}
