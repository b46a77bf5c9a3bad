//! Framing: turning a built message into bytes a host reads in place, and
//! reading a host's bytes without copying them.
//!
//! Every message is the standard framed Cap'n Proto stream format (segment
//! table, then segments, unpacked), which C++ `FlatArrayMessageReader`,
//! pycapnp `from_bytes` and capnp-es `new Message(buf, false)` all read.

use std::{cell::RefCell, ptr::NonNull};

use capnp::{
    Word,
    message::{self, Allocator, HeapAllocator, ReaderOptions},
    serialize::{self, BufferSegments},
};

use crate::{
    error::DecodeError,
    spares::{self, Spares},
};

/// Bounds applied when reading bytes a host wrote.
///
/// The defaults accept any value a monty program can reasonably produce
/// (a 16 MiB bytes value, a million-element list) while keeping a hostile
/// message from making the reader allocate or walk without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The most 8-byte words the reader may visit in one message. This bounds
    /// both the message size and pointer tricks that revisit the same data.
    pub traversal_limit_words: u64,
    /// The most nodes one value arena may hold.
    pub max_nodes: u32,
    /// The deepest a value may nest (a scalar has depth 1, `[1]` depth 2).
    /// Decoding never recurses, and neither does importing a value into the
    /// sandbox or dropping it (values are flat arenas), so the bound asks
    /// nothing of the library's stack; it is for hosts whose code walks
    /// decoded values recursively, which can lower it to what their stack
    /// allows. (Inside the sandbox, ordering, hashing, repr, `json.dumps`
    /// and `deepcopy` of nested values do recurse, bounded by the session's
    /// recursion limit, on a stack sized for it.)
    pub max_depth: u32,
    /// An absolute cap on the heap bytes decoding one message may allocate.
    /// Each message's budget is also proportional to its size; see
    /// [`DecodeContext`].
    pub max_decoded_bytes: u64,
}

impl DecodeLimits {
    /// 256 MiB of message.
    pub const DEFAULT_TRAVERSAL_LIMIT_WORDS: u64 = 32 * 1024 * 1024;
    /// 4,194,304 nodes.
    pub const DEFAULT_MAX_NODES: u32 = 4 * 1024 * 1024;
    /// A hundred thousand levels. monty exports a result as deep as the
    /// session's recursion limit allows (deeper parts become a
    /// `<deeply nested>` repr), and hosts may raise that limit far past its
    /// default of 1000; a default here must not reject what monty produces.
    pub const DEFAULT_MAX_DEPTH: u32 = 100_000;
    /// 1 GiB: four times the largest default message.
    pub const DEFAULT_MAX_DECODED_BYTES: u64 = 1 << 30;

    pub(crate) fn reader_options(&self) -> ReaderOptions {
        let mut options = ReaderOptions::new();
        // `None` would mean "no limit", so a limit past `usize` (wasm32) saturates.
        options.traversal_limit_in_words(Some(usize::try_from(self.traversal_limit_words).unwrap_or(usize::MAX)));
        options
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            traversal_limit_words: Self::DEFAULT_TRAVERSAL_LIMIT_WORDS,
            max_nodes: Self::DEFAULT_MAX_NODES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_decoded_bytes: Self::DEFAULT_MAX_DECODED_BYTES,
        }
    }
}

/// The state of decoding one message: its limits and what is left of its
/// decoded-size budget. Every allocation a decoder makes from message data is
/// charged here first, so the budget fails before the allocator does.
///
/// The budget is proportional to the message: legitimate data decodes into at
/// most about three times its wire size (a node, a traceback frame, a field
/// name), so [`DecodeContext::AMPLIFICATION`] times the message length (plus
/// a small allowance) admits every honest message. It stops the one trick
/// the traversal limit misses: Cap'n Proto charges a list of empty structs one
/// word per element, so a few bytes could otherwise claim millions of
/// elements that each decode into a hundred bytes.
#[derive(Debug, Clone)]
pub struct DecodeContext {
    limits: DecodeLimits,
    remaining: u64,
    budget: u64,
}

impl DecodeContext {
    /// How many decoded bytes one byte of message may turn into.
    pub const AMPLIFICATION: u64 = 4;
    /// Decoded bytes allowed on top of the proportional budget.
    pub const ALLOWANCE: u64 = 4096;

    /// A fresh budget for one message of `message_len` bytes.
    #[must_use]
    pub fn new(limits: &DecodeLimits, message_len: usize) -> Self {
        let budget = (message_len as u64)
            .saturating_mul(Self::AMPLIFICATION)
            .saturating_add(Self::ALLOWANCE)
            .min(limits.max_decoded_bytes);
        Self {
            limits: *limits,
            remaining: budget,
            budget,
        }
    }

    /// The limits this context enforces.
    #[must_use]
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// Charges `bytes` against the budget.
    pub fn charge(&mut self, bytes: u64) -> Result<(), DecodeError> {
        match self.remaining.checked_sub(bytes) {
            Some(rest) => {
                self.remaining = rest;
                Ok(())
            }
            None => Err(DecodeError::DecodedSizeLimit { limit: self.budget }),
        }
    }

    /// Charges for `count` values of `T`, then makes room for them.
    pub fn vec<T>(&mut self, count: u32) -> Result<Vec<T>, DecodeError> {
        self.charge(u64::from(count).saturating_mul(std::mem::size_of::<T>() as u64))?;
        Ok(Vec::with_capacity(count as usize))
    }

    /// Copies a text field out of the message, naming the field if it is not UTF-8.
    pub fn text(
        &mut self,
        r: capnp::Result<capnp::text::Reader<'_>>,
        field: &'static str,
    ) -> Result<String, DecodeError> {
        Ok(self.str(r, field)?.to_owned())
    }

    /// Borrows a text field after charging for the copy the caller will make.
    pub fn str<'a>(
        &mut self,
        r: capnp::Result<capnp::text::Reader<'a>>,
        field: &'static str,
    ) -> Result<&'a str, DecodeError> {
        let text = r?;
        self.charge(text.len() as u64)?;
        text.to_str().map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// Copies a data field out of the message.
    pub fn data(&mut self, r: capnp::Result<capnp::data::Reader<'_>>) -> Result<Vec<u8>, DecodeError> {
        let data = r?;
        self.charge(data.len() as u64)?;
        Ok(data.to_vec())
    }
}

/// A framed message in an 8-byte-aligned buffer.
///
/// Alignment matters to the foreign readers: C++ and pycapnp reject
/// misaligned segments, so the bytes live in [`Word`]s rather than a `Vec<u8>`
/// (whose alignment the allocator does not promise).
///
/// The buffer may have spare capacity past the message (a presized first
/// segment the message did not fill); it is never part of the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WireMessage {
    words: Vec<Word>,
}

impl WireMessage {
    /// Serializes a built message into one aligned buffer (a copy).
    pub fn from_builder<A: Allocator>(builder: &message::Builder<A>) -> Self {
        let len = serialize::compute_serialized_size_in_words(builder);
        let mut words = Word::allocate_zeroed_vec(len);
        let mut out: &mut [u8] = Word::words_to_bytes_mut(&mut words);
        serialize::write_message(&mut out, builder).expect("a buffer of the computed size holds the message");
        debug_assert!(out.is_empty(), "the computed size is exact");
        Self { words }
    }

    /// Finishes a message built by [`builder_with_capacity`]. A message that
    /// fit its first segment is framed where it was built: the segment table
    /// goes into the word reserved in front of the segment, and nothing is
    /// copied. A message that outgrew it is copied into one buffer.
    #[must_use]
    pub fn finish(builder: message::Builder<FramedAllocator>) -> Self {
        let segments = builder.get_segments_for_output();
        if segments.len() != 1 {
            return Self::from_builder(&builder);
        }
        let used = segments[0].len() / 8;
        let mut allocator = builder.into_allocator();
        let mut words = allocator
            .first
            .take()
            .expect("a message's first segment is in the framed buffer");
        let size = u32::try_from(used).expect("a segment is at most u32::MAX words");
        // The segment table of a one-segment message: the segment count
        // minus one (0), then the segment's size in words, little-endian.
        let table = Word::words_to_bytes_mut(&mut words[..1]);
        table[..4].copy_from_slice(&0u32.to_le_bytes());
        table[4..].copy_from_slice(&size.to_le_bytes());
        words.truncate(used + 1);
        Self { words }
    }

    /// A message another engine built, as framed words (a worker's
    /// response).
    #[must_use]
    #[cfg(worker_processes)]
    pub(crate) fn from_words(words: Vec<Word>) -> Self {
        Self { words }
    }

    /// The framed bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        Word::words_to_bytes(&self.words)
    }

    /// Length in bytes (always a multiple of 8).
    #[must_use]
    pub fn len(&self) -> usize {
        self.words.len() * 8
    }

    /// Whether the buffer is empty (never true for a built message).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The framed bytes as an owned vector (one copy), e.g. to embed them
    /// in another message.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// Gives up the aligned buffer, e.g. to hand it across a C boundary;
    /// its length is the message's.
    #[must_use]
    pub fn into_words(self) -> Vec<Word> {
        self.words
    }
}

impl std::fmt::Debug for WireMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireMessage").field("len", &self.len()).finish()
    }
}

impl AsRef<[u8]> for WireMessage {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Hands the aligned buffer to a cheaply clonable [`bytes::Bytes`] without
/// copying it, for Rust hosts that fan a response out to several consumers.
impl From<WireMessage> for bytes::Bytes {
    fn from(message: WireMessage) -> Self {
        bytes::Bytes::from_owner(message)
    }
}

/// A message builder whose first segment is `words` long, so that a message
/// whose size was estimated well ends up as one contiguous segment, which
/// [`WireMessage::finish`] frames without copying.
#[must_use]
pub fn builder_with_capacity(words: usize) -> message::Builder<FramedAllocator> {
    // Cap'n Proto segments are at most 2^32 - 1 words; an estimate past a
    // quarter of that is a hint the allocator may as well grow into.
    let first = u32::try_from(words.clamp(64, 1 << 30)).unwrap_or(1 << 30);
    message::Builder::new(FramedAllocator::new(first))
}

/// How many freed message buffers a thread keeps for its next messages.
const SPARE_BUFFERS: usize = 4;

/// The largest buffer kept (64 KiB): one that held a larger message goes
/// back to the allocator, so a thread never holds on to a bulk result.
const SPARE_BUFFER_WORDS: usize = 8 << 10;

thread_local! {
    /// Buffers of messages a host has freed, for the next messages this
    /// thread builds: a turn's response then costs no allocation and no
    /// free.
    static SPARES: Spares<Vec<Word>> = const { RefCell::new(Vec::new()) };
}

/// Keeps the buffer of a message the host is done with for the next message
/// this thread builds, or frees it.
pub(crate) fn recycle(words: Vec<Word>) {
    if words.capacity() <= SPARE_BUFFER_WORDS {
        spares::keep(&SPARES, words, SPARE_BUFFERS);
    }
}

/// `len` zeroed words, in a spare buffer when one is large enough.
fn zeroed_words(len: usize) -> Vec<Word> {
    match spares::take(&SPARES, |words| words.capacity() >= len) {
        Some(mut words) => {
            // Cap'n Proto builds into zeroed memory; a spare held a message.
            words.clear();
            words.resize(len, capnp::word(0, 0, 0, 0, 0, 0, 0, 0));
            words
        }
        None => Word::allocate_zeroed_vec(len),
    }
}

/// A Cap'n Proto allocator whose first segment sits one word into a buffer,
/// leaving room for the segment table in front of it.
///
/// Most messages fit the presized first segment, so the framed message is
/// that buffer: one zeroed allocation per message, and no copy. Further
/// segments come from an ordinary heap allocator.
pub struct FramedAllocator {
    first_words: u32,
    /// The segment table's word, then the first segment.
    first: Option<Vec<Word>>,
    rest: HeapAllocator,
}

impl FramedAllocator {
    fn new(first_words: u32) -> Self {
        Self {
            first_words,
            first: None,
            rest: HeapAllocator::new(),
        }
    }

    /// The first segment's address, one word into the buffer. Derived from
    /// `Vec::as_mut_ptr`, as capnp's own `ScratchSpaceHeapAllocator` does:
    /// the builder writes the whole message through this pointer, which a
    /// pointer derived from a shared reference (`&words[1]`) may not do,
    /// and `as_mut_ptr` materializes no reference to the buffer, so asking
    /// again (in `deallocate_segment`) leaves the pointer handed out valid.
    fn first_segment(&mut self) -> Option<NonNull<u8>> {
        self.first
            .as_mut()
            .and_then(|words| NonNull::new(words.as_mut_ptr().wrapping_add(1).cast::<u8>()))
    }
}

// SAFETY: the first segment is `size` zeroed words of a live `Vec<Word>` (so
// 8-byte aligned) that this allocator owns and never moves or resizes while
// the builder holds it; it is released with the allocator, never earlier.
// Every other segment comes from `HeapAllocator`, which upholds the same
// contract, and goes back to it.
unsafe impl Allocator for FramedAllocator {
    fn allocate_segment(&mut self, minimum_size: u32) -> (NonNull<u8>, u32) {
        if self.first.is_some() {
            return self.rest.allocate_segment(minimum_size);
        }
        let size = minimum_size.max(self.first_words);
        self.first = Some(zeroed_words(size as usize + 1));
        let segment = self.first_segment().expect("just allocated");
        (segment, size)
    }

    unsafe fn deallocate_segment(&mut self, ptr: NonNull<u8>, word_size: u32, words_used: u32) {
        if Some(ptr) == self.first_segment() {
            // Kept: `WireMessage::finish` frames it, or the drop frees it.
            return;
        }
        // SAFETY: every segment but the first came from `self.rest`, with
        // the sizes the caller passes back unchanged.
        unsafe { self.rest.deallocate_segment(ptr, word_size, words_used) }
    }
}

/// Reads a framed message from `bytes` in place: no copy, any alignment.
///
/// The whole slice must be the message; bytes left over are an error, so a
/// host that passes the wrong length finds out at once.
pub fn read_message<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<message::Reader<BufferSegments<&'a [u8]>>, DecodeError> {
    // Fewer bytes than the smallest segment table: capnp calls that
    // malformed, but it is a message cut short (an empty slice is no message
    // at all, and stays malformed).
    if (1..8).contains(&bytes.len()) {
        return Err(DecodeError::Truncated(format!(
            "{} bytes, fewer than the 8 of a segment table",
            bytes.len()
        )));
    }
    let mut rest = bytes;
    let reader = serialize::read_message_from_flat_slice(&mut rest, limits.reader_options())?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    Ok(reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::monty_wire_capnp as wire;

    /// A `Value` message of `count` int nodes, built in a builder whose first
    /// segment is `first_words` long.
    fn ints(first_words: usize, count: u32) -> message::Builder<FramedAllocator> {
        let mut builder = builder_with_capacity(first_words);
        let mut value = builder.init_root::<wire::value::Builder<'_>>();
        let mut nodes = value.reborrow().init_nodes(count);
        for i in 0..count {
            nodes.reborrow().get(i).set_int_value(i64::from(i));
        }
        value.set_root(count - 1);
        builder
    }

    fn read_ints(bytes: &[u8]) -> Vec<i64> {
        let reader = read_message(bytes, &DecodeLimits::default()).expect("a message");
        let value = reader.get_root::<wire::value::Reader<'_>>().expect("a Value");
        value
            .get_nodes()
            .expect("nodes")
            .iter()
            .map(|node| match node.which() {
                Ok(wire::node::Which::IntValue(i)) => i,
                _ => panic!("not an int node"),
            })
            .collect()
    }

    #[test]
    fn a_message_that_fits_its_first_segment_is_framed_in_place() {
        let builder = ints(256, 10);
        assert_eq!(builder.get_segments_for_output().len(), 1);
        let copied = WireMessage::from_builder(&builder);
        let framed = WireMessage::finish(builder);
        assert_eq!(
            framed.as_bytes(),
            copied.as_bytes(),
            "the same bytes as the copying path"
        );
        assert_eq!(read_ints(framed.as_bytes()), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_message_that_outgrows_its_first_segment_is_copied_into_one_buffer() {
        let builder = ints(64, 10_000);
        assert!(
            builder.get_segments_for_output().len() > 1,
            "the estimate was too small"
        );
        let framed = WireMessage::finish(builder);
        assert_eq!(framed.len() % 8, 0);
        assert_eq!(framed.as_bytes().as_ptr() as usize % 8, 0, "8-byte aligned");
        assert_eq!(read_ints(framed.as_bytes()), (0..10_000).collect::<Vec<_>>());
    }
}
