//! Print output of one request: collected as ordered (stream, text)
//! segments for the response, and handed to the host's live sink as it is
//! written.

use std::borrow::Cow;

use monty_types::{DEFAULT_MAX_PRINT_COLLECT_BYTES, ExcType, MontyException, PrintStream, PrintWriterCallback};

use crate::protocol::PrintSegment;

/// Where print output goes while code runs, for hosts that show it live.
///
/// It receives every fragment `print()` writes (an argument, a separator, a
/// newline), in order. The same text is also in the response.
pub type PrintSink = Box<dyn FnMut(PrintStream, &str) + Send>;

/// The print output of one request.
pub(crate) struct TurnOutput<'s> {
    segments: Vec<PrintSegment>,
    bytes: usize,
    sink: Option<&'s mut PrintSink>,
}

impl<'s> TurnOutput<'s> {
    /// Output a response carries is capped, as monty caps its own collectors:
    /// past this, `print()` raises `MemoryError` in the sandbox.
    pub(crate) const MAX_BYTES: usize = DEFAULT_MAX_PRINT_COLLECT_BYTES;

    pub(crate) fn new(sink: Option<&'s mut PrintSink>) -> Self {
        Self {
            segments: Vec::new(),
            bytes: 0,
            sink,
        }
    }

    pub(crate) fn into_segments(self) -> Vec<PrintSegment> {
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
        if let Some(sink) = self.sink.as_mut() {
            sink(stream, text);
        }
        // Consecutive writes to one stream form one segment, so a response
        // has as many segments as the output has stream switches.
        match self.segments.last_mut() {
            Some(last) if last.stream == stream => last.text.push_str(text),
            _ => self.segments.push(PrintSegment {
                stream,
                text: text.to_owned(),
            }),
        }
        Ok(())
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
