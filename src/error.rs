//! Every error of the crate, and how each becomes what a host reads.
//!
//! - [`DecodeError`] and [`EncodeError`]: the codec. Decoding reads bytes a
//!   host wrote, so every way those bytes can be wrong has its own variant: a
//!   host (or a test) can tell a truncated message from a forward reference
//!   from a bad bigint without parsing a string.
//! - [`DumpError`] and [`DumpEncodeError`]: dump envelopes.
//! - [`ProtocolError`] and its [`ErrorCode`]: what a refused request answers
//!   (`protocolError` in the schema). The conversions at the end of this file
//!   are the one place that decides which code each error gets.

use thiserror::Error;

/// Why bytes could not be decoded into a monty value or exception.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a well-formed Cap'n Proto message: a bad segment
    /// table, a pointer out of bounds, a pointer of the wrong kind, ...
    #[error("malformed message: {0}")]
    Malformed(capnp::Error),

    /// The bytes end before the message does: fewer than the 8 bytes of the
    /// smallest segment table, or fewer than the table announces.
    #[error("truncated message: {0}")]
    Truncated(String),

    /// Bytes were left over after the message ended.
    #[error("{count} trailing bytes after the end of the message")]
    TrailingBytes {
        /// How many bytes followed the message.
        count: usize,
    },

    /// The message asked the reader to visit more words than
    /// [`DecodeLimits::traversal_limit_words`](crate::DecodeLimits::traversal_limit_words)
    /// allows (a huge message, or pointers that make the reader revisit data).
    #[error("message exceeds the reader's traversal limit")]
    TraversalLimit,

    /// Structs or lists nest deeper than the reader allows.
    #[error("message nests structs deeper than the reader allows")]
    NestingLimit,

    /// A value's arena has no nodes, so it has no root.
    #[error("value has no nodes, so it has no root")]
    MissingRoot,

    /// The root index is outside the arena.
    #[error("value root {root} is out of range for an arena of {len} nodes")]
    RootOutOfRange {
        /// The root index the message carries.
        root: u32,
        /// The number of nodes.
        len: u32,
    },

    /// A node refers to a child index past the end of the arena.
    #[error("node {node} refers to node {child}, but the arena has only {len} nodes")]
    NodeIndexOutOfRange {
        /// The holding node.
        node: u32,
        /// The child index it names.
        child: u32,
        /// The number of nodes.
        len: u32,
    },

    /// A node refers to itself or to a node after it; arenas are post-order,
    /// so that would be a forward reference or a cycle.
    #[error("node {node} refers to node {child}, which is not below it (arenas are post-order)")]
    ForwardReference {
        /// The holding node.
        node: u32,
        /// The child index it names.
        child: u32,
    },

    /// A class instance's `classType` is not a `classType` node.
    #[error("class instance node {node} does not point at a class type node")]
    ClassTypeNotAClass {
        /// The instance node.
        node: u32,
    },

    /// A text field is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The schema field, e.g. `Node.strValue`.
        field: &'static str,
    },

    /// An enum field holds a value this version of the schema does not define.
    #[error("{enum_name} has no value {value}")]
    UnknownEnumValue {
        /// The schema enum, e.g. `ExcType`.
        enum_name: &'static str,
        /// The ordinal found.
        value: u16,
    },

    /// A union holds an arm this version of the schema does not define.
    #[error("{union_name} has no arm {value}")]
    UnknownUnionArm {
        /// The schema union, e.g. `Node`.
        union_name: &'static str,
        /// The discriminant found.
        value: u16,
    },

    /// A node of a value arena holds something no value can be: a bigint,
    /// a UUID or a name that is wrong (`source` says which and how).
    #[error("node {node}: {source}")]
    InNode {
        /// The node's index in its arena.
        node: u32,
        /// What is wrong with it.
        source: Box<DecodeError>,
    },

    /// A bigint is not in canonical form.
    #[error("invalid bigint: {reason}")]
    InvalidBigInt {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A UUID field is not exactly 16 bytes.
    #[error("{field} must be a 16-byte UUID, got {len} bytes")]
    InvalidUuid {
        /// The schema field.
        field: &'static str,
        /// The length found.
        len: usize,
    },

    /// A name (type, builtin function) that monty does not know.
    #[error("unknown {kind} name {name:?}")]
    UnknownName {
        /// What the name should denote: `type`, `builtin function`.
        kind: &'static str,
        /// The name found.
        name: String,
    },

    /// A field set to something the schema allows but monty's values cannot
    /// hold, so it would be lost.
    #[error("{field} cannot be set: {reason}")]
    UnsupportedField {
        /// The schema field.
        field: &'static str,
        /// Why monty cannot hold it.
        reason: &'static str,
    },

    /// A named time zone the bundled IANA database does not hold.
    #[error("unknown time zone {name:?}")]
    UnknownTimeZone {
        /// The name found.
        name: String,
    },

    /// A module stub whose name monty refuses (not an identifier path, or a
    /// name the sandbox reserves).
    #[error("invalid module stub {module:?}: {reason}")]
    InvalidModuleStub {
        /// The module name found.
        module: String,
        /// Why monty refuses it.
        reason: String,
    },

    /// An integer does not fit the type monty uses for it on this platform.
    #[error("{field} value {value} is out of range on this platform")]
    IntegerOutOfRange {
        /// The schema field.
        field: &'static str,
        /// The value found.
        value: u64,
    },

    /// The arena holds more nodes than [`DecodeLimits::max_nodes`](crate::DecodeLimits::max_nodes).
    #[error("value has {count} nodes, more than the limit of {limit}")]
    TooManyNodes {
        /// The number of nodes.
        count: u32,
        /// The configured limit.
        limit: u32,
    },

    /// Decoding would allocate more than the message's budget: four times
    /// its size, capped by
    /// [`DecodeLimits::max_decoded_bytes`](crate::DecodeLimits::max_decoded_bytes)
    /// (see [`DecodeContext`](crate::codec::DecodeContext)).
    #[error("decoding the message would allocate more than its budget of {limit} bytes")]
    DecodedSizeLimit {
        /// The budget of this message.
        limit: u64,
    },

    /// Values nest deeper than [`DecodeLimits::max_depth`](crate::DecodeLimits::max_depth).
    #[error("value nests deeper than the limit of {limit} levels (node {node})")]
    TooDeep {
        /// The first node past the limit.
        node: u32,
        /// The configured limit.
        limit: u32,
    },
}

impl From<capnp::Error> for DecodeError {
    fn from(err: capnp::Error) -> Self {
        match err.kind {
            capnp::ErrorKind::NestingLimitExceeded
            | capnp::ErrorKind::MessageIsTooDeeplyNested
            | capnp::ErrorKind::MessageIsTooDeeplyNestedOrContainsCycles => Self::NestingLimit,
            // A message larger than the limit is refused before any reading
            // (`MessageTooLarge`); one that revisits data fails while read.
            capnp::ErrorKind::ReadLimitExceeded | capnp::ErrorKind::MessageTooLarge(_) => Self::TraversalLimit,
            capnp::ErrorKind::MessageEndsPrematurely(..) => Self::Truncated(err.to_string()),
            _ => Self::Malformed(err),
        }
    }
}

/// Why a monty value or exception could not be encoded.
///
/// Cap'n Proto bounds every list and blob at 2^29 - 1 elements; monty values
/// can be larger than that.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A list, text or byte string is longer than a message can hold.
    #[error("{what} has {len} elements, more than a message can hold ({max})")]
    TooLarge {
        /// What was too large, e.g. `bytes value`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The largest length a message can hold.
        max: usize,
    },

    /// The Cap'n Proto builder failed.
    #[error("could not build message: {0}")]
    Capnp(#[from] capnp::Error),
}

/// Why dump bytes could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DumpError {
    /// The bytes are not a dump envelope.
    #[error("not a monty-wire dump: {0}")]
    NotADump(#[from] DecodeError),
    /// The envelope holds something the request does not load.
    #[error("the dump holds a {found}, which {request} does not load")]
    WrongKind {
        /// The request.
        request: &'static str,
        /// What the envelope says it holds.
        found: &'static str,
    },
    /// An envelope kind this build does not know.
    #[error("the dump holds kind {0}, which this build does not know")]
    UnknownKind(u16),
    /// A newer protocol wrote the envelope.
    #[error("the dump was written by protocol version {found}; this build speaks version {supported}")]
    NewerProtocol {
        /// The writer's protocol version.
        found: u32,
        /// This build's protocol version.
        supported: u32,
    },
    /// Another monty release wrote the payload.
    #[error("the dump was written by monty {found}; this build embeds monty {expected}")]
    MontyVersion {
        /// The writer's monty version.
        found: String,
        /// This build's monty version.
        expected: &'static str,
    },
    /// The payload's dump format is one this build's monty cannot read.
    #[error(
        "the dump's payload is in monty dump format version {found}; this build (monty {monty}) reads versions {min_supported} to {max_supported}"
    )]
    DumpVersion {
        /// The format version the envelope declares.
        found: u16,
        /// The oldest this build reads.
        min_supported: u16,
        /// The newest this build reads.
        max_supported: u16,
        /// This build's monty version.
        monty: &'static str,
    },
    /// The session has a key and the dump is not sealed.
    #[error("the dump is not sealed, and this session only loads dumps sealed with its key")]
    NotSealed,
    /// The dump is sealed and the session has no key to check it with.
    #[error("the dump is sealed, and this session has no key to check it (send setDumpKey first)")]
    NoKey,
    /// The seal does not verify: tampered, truncated, or another key.
    #[error("the dump's seal does not verify: it was changed, or sealed with another key")]
    BadSeal,
    /// The payload is not what its label says.
    #[error("the dump's payload is corrupt: {0}")]
    Payload(String),
}

/// Serialization failed (a payload larger than a message can hold).
#[derive(Debug, Error)]
#[error("cannot dump: {0}")]
pub struct DumpEncodeError(pub String);

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// What went wrong, for machines.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// How an isolated session's worker ended, with [`ErrorCode::WorkerCrashed`].
    pub worker_exit: Option<WorkerExit>,
}

impl ProtocolError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            worker_exit: None,
        }
    }
}

/// How an isolated session's worker process ended (`WorkerExit` in the schema).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerExit {
    /// Its exit status, or -1 when a signal ended it.
    pub exit_code: i32,
    /// The signal that ended it (Unix), or 0.
    pub signal: i32,
    /// It went past its memory ceiling (monty-alloc's exit status).
    pub out_of_memory: bool,
    /// The last bytes it wrote to its standard error (at most 4 KiB).
    pub stderr_tail: String,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

/// The machine-readable kind of a [`ProtocolError`] (`ErrorCode` in the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not a Cap'n Proto message.
    MalformedMessage,
    /// The bytes end before the message does.
    TruncatedMessage,
    /// Larger or deeper than the decoder allows.
    LimitExceeded,
    /// A value arena is inconsistent, holds a value Python cannot (a date
    /// that does not exist, an output-only node, ...), or answers an OS call
    /// with the wrong type; or a union arm or enum value is unknown.
    InvalidValue,
    /// A request arm or enum value this library does not know.
    UnknownRequest,
    /// The session's state does not accept this request.
    WrongState,
    /// The handle is null, closed or was never opened.
    UnknownSession,
    /// Another thread is using the session.
    SessionBusy,
    /// Well-formed but unacceptable.
    InvalidArgument,
    /// The library failed; the session was reset.
    InternalError,
    /// The reply does not fit in a message.
    ResponseTooLarge,
    /// Bytes that are not a dump this build can load.
    InvalidDump,
    /// An isolated session has no worker (no binary, another protocol, or
    /// a platform that cannot start processes).
    WorkerUnavailable,
    /// The isolated session's worker died during the request; the session
    /// is empty again.
    WorkerCrashed,
    /// The request ran past its time limits plus a grace and its worker was
    /// killed; the session is empty again.
    DeadlineExceeded,
    /// The host cancelled the request and its worker was killed; the
    /// session is empty again.
    Cancelled,
}

/// Which protocol error a request whose bytes did not decode gets.
impl From<&DecodeError> for ProtocolError {
    fn from(err: &DecodeError) -> Self {
        let code = match err {
            DecodeError::Truncated(_) => ErrorCode::TruncatedMessage,
            DecodeError::Malformed(_) | DecodeError::TrailingBytes { .. } => ErrorCode::MalformedMessage,
            DecodeError::TraversalLimit
            | DecodeError::NestingLimit
            | DecodeError::TooManyNodes { .. }
            | DecodeError::TooDeep { .. }
            | DecodeError::DecodedSizeLimit { .. } => ErrorCode::LimitExceeded,
            // Only a request kind this build does not know is an unknown
            // request; an unknown arm or enum value anywhere else is a part
            // of a known request that this build cannot accept.
            DecodeError::UnknownUnionArm {
                union_name: REQUEST_UNION,
                ..
            } => ErrorCode::UnknownRequest,
            // Settings a well-formed request may name that this build
            // does not have.
            DecodeError::UnknownTimeZone { .. } | DecodeError::InvalidModuleStub { .. } => ErrorCode::InvalidArgument,
            _ => ErrorCode::InvalidValue,
        };
        ProtocolError::new(code, format!("request rejected: {err}"))
    }
}

/// The name request decoding gives the `Request` union in
/// [`DecodeError::UnknownUnionArm`].
pub(crate) const REQUEST_UNION: &str = "Request";

/// Dump bytes that cannot be loaded.
impl From<DumpError> for ProtocolError {
    fn from(err: DumpError) -> Self {
        ProtocolError::new(ErrorCode::InvalidDump, err.to_string())
    }
}

/// A dump too large for a message.
impl From<DumpEncodeError> for ProtocolError {
    fn from(err: DumpEncodeError) -> Self {
        ProtocolError::new(ErrorCode::ResponseTooLarge, err.to_string())
    }
}
