//! Print output of one request: collected as ordered (stream, text)
//! segments for the response, and handed to the host's live sink as it is
//! written, fragment by fragment or gathered (see [`PrintDelivery`]).

use std::{borrow::Cow, time::Instant};

use monty_types::{DEFAULT_MAX_PRINT_COLLECT_BYTES, ExcType, MontyException, PrintStream, PrintWriterCallback};

use crate::protocol::{PrintDelivery, PrintSegment};

/// Where print output goes while code runs, for hosts that show it live.
///
/// It receives the text `print()` writes, in order: each fragment (an
/// argument, a separator, a newline) by default, or gathered as the
/// session's [`PrintDelivery`] says, every call carrying text of one stream.
/// It never receives empty text when output is gathered. The same text is
/// also in the response.
pub type PrintSink = Box<dyn FnMut(PrintStream, &str) + Send>;

/// The print output of one request.
///
/// Gathered text is never copied: it is the tail of the last segment, from
/// `delivered` on, since a write to the other stream delivers the rest of
/// the last segment before it starts a new one.
pub(crate) struct TurnOutput<'s> {
    segments: Vec<PrintSegment>,
    bytes: usize,
    sink: Option<&'s mut PrintSink>,
    delivery: PrintDelivery,
    /// Bytes of the last segment the sink has had (gathering modes only).
    delivered: usize,
    /// When the oldest text not yet delivered was written (`Interval` only).
    oldest: Option<Instant>,
}

impl<'s> TurnOutput<'s> {
    /// Output a response carries is capped, as monty caps its own collectors:
    /// past this, `print()` raises `MemoryError` in the sandbox.
    pub(crate) const MAX_BYTES: usize = DEFAULT_MAX_PRINT_COLLECT_BYTES;

    pub(crate) fn new(sink: Option<&'s mut PrintSink>, delivery: PrintDelivery) -> Self {
        let delivery = match delivery {
            PrintDelivery::Interval(every) if every.is_zero() => PrintDelivery::EveryFragment,
            delivery => delivery,
        };
        Self {
            segments: Vec::new(),
            bytes: 0,
            sink,
            delivery,
            delivered: 0,
            oldest: None,
        }
    }

    /// Delivers whatever is still gathered, and returns the request's
    /// output for its response.
    pub(crate) fn finish(mut self) -> Vec<PrintSegment> {
        self.deliver_gathered(usize::MAX);
        self.segments
    }

    fn append(&mut self, stream: PrintStream, text: &str) -> Result<(), MontyException> {
        if self.bytes.saturating_add(text.len()) > Self::MAX_BYTES {
            return Err(MontyException::new(
                ExcType::MemoryError,
                Some(format!("print output of one request exceeds {} bytes", Self::MAX_BYTES)),
            ));
        }
        self.bytes += text.len();
        let gathering = match (self.sink.as_mut(), self.delivery) {
            (None, _) => false,
            (Some(sink), PrintDelivery::EveryFragment) => {
                sink(stream, text);
                false
            }
            (Some(_), _) => true,
        };
        // Consecutive writes to one stream form one segment, so a response
        // has as many segments as the output has stream switches.
        match self.segments.last_mut() {
            Some(last) if last.stream == stream => last.text.push_str(text),
            _ => {
                if gathering {
                    // The other stream's text goes first.
                    self.deliver_gathered(usize::MAX);
                    self.delivered = 0;
                }
                self.segments.push(PrintSegment {
                    stream,
                    text: text.to_owned(),
                });
            }
        }
        if gathering {
            match self.delivery {
                PrintDelivery::Lines => {
                    if let Some(newline) = text.rfind('\n') {
                        let len = self.segments.last().map_or(0, |last| last.text.len());
                        self.deliver_gathered(len - text.len() + newline + 1);
                    }
                }
                PrintDelivery::Interval(every) => {
                    let now = Instant::now();
                    let oldest = *self.oldest.get_or_insert(now);
                    if now.duration_since(oldest) >= every {
                        self.deliver_gathered(usize::MAX);
                    }
                }
                PrintDelivery::EveryFragment => {}
            }
        }
        Ok(())
    }

    /// Hands the sink the gathered text of the last segment up to byte
    /// `end` (clamped to its length), if there is any.
    fn deliver_gathered(&mut self, end: usize) {
        let (Some(sink), Some(last)) = (self.sink.as_mut(), self.segments.last()) else {
            return;
        };
        if matches!(self.delivery, PrintDelivery::EveryFragment) {
            return;
        }
        let end = end.min(last.text.len());
        if end > self.delivered {
            sink(last.stream, &last.text[self.delivered..end]);
            self.delivered = end;
        }
        if self.delivered == last.text.len() {
            self.oldest = None;
        }
    }

    fn append_char(&mut self, stream: PrintStream, c: char) -> Result<(), MontyException> {
        self.append(stream, c.encode_utf8(&mut [0; 4]))
    }
}

impl PrintWriterCallback for TurnOutput<'_> {
    fn stdout_write(&mut self, output: Cow<'_, str>) -> Result<(), MontyException> {
        self.append(PrintStream::Stdout, &output)
    }

    fn stdout_push(&mut self, end: char) -> Result<(), MontyException> {
        self.append_char(PrintStream::Stdout, end)
    }

    fn stderr_write(&mut self, output: Cow<'_, str>) -> Result<(), MontyException> {
        self.append(PrintStream::Stderr, &output)
    }

    fn stderr_push(&mut self, end: char) -> Result<(), MontyException> {
        self.append_char(PrintStream::Stderr, end)
    }
}
