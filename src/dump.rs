//! Dump envelopes: what `dump` bytes hold, labelled so a host never confuses
//! formats and a dump from an incompatible build is refused with a clear
//! error before monty reads its payload.
//!
//! The envelope is a framed `Dump` message (see the schema). Its payload is
//! monty's own CBOR serialization, which changes between monty releases, so
//! a payload loads only into the monty release that wrote it.

use monty::MontyRun;
use monty_types::MONTY_VERSION;
use thiserror::Error;

use crate::{
    PROTOCOL_VERSION,
    codec::{DecodeLimits, WireMessage, builder_with_capacity, read_message},
    error::DecodeError,
    schema::monty_wire_capnp as wire,
};

/// Why dump bytes could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DumpError {
    /// The bytes are not a dump envelope.
    #[error("not a monty-wire dump: {0}")]
    NotADump(#[from] DecodeError),
    /// The envelope holds something other than what the request loads.
    #[error("the dump holds a {found}, not a {expected}")]
    WrongKind {
        /// What the request expected.
        expected: &'static str,
        /// What the envelope says it holds.
        found: String,
    },
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
    /// The payload is not what its label says.
    #[error("the dump's payload is corrupt: {0}")]
    Payload(String),
}

/// Serialization failed (a payload larger than a message can hold).
#[derive(Debug, Error)]
#[error("cannot dump: {0}")]
pub struct DumpEncodeError(pub String);

/// Dumps a compiled, not yet started program.
pub fn dump_program(program: &MontyRun) -> Result<WireMessage, DumpEncodeError> {
    let payload = minicbor_serde::to_vec(program).map_err(|e| DumpEncodeError(e.to_string()))?;
    seal_envelope(wire::DumpKind::Program, &payload)
}

/// Loads a program written by [`dump_program`].
pub fn load_program(bytes: &[u8]) -> Result<MontyRun, DumpError> {
    let payload = open_envelope(bytes, wire::DumpKind::Program)?;
    minicbor_serde::from_slice(payload.as_slice()).map_err(|e| DumpError::Payload(e.to_string()))
}

fn kind_name(kind: wire::DumpKind) -> &'static str {
    match kind {
        wire::DumpKind::Program => "program",
    }
}

fn seal_envelope(kind: wire::DumpKind, payload: &[u8]) -> Result<WireMessage, DumpEncodeError> {
    let payload =
        crate::codec::value::checked_data(payload, "dump payload").map_err(|e| DumpEncodeError(e.to_string()))?;
    let mut message = builder_with_capacity(payload.len() / 8 + 32);
    let mut root = message.init_root::<wire::dump::Builder<'_>>();
    root.set_kind(kind);
    root.set_protocol_version(PROTOCOL_VERSION);
    root.set_monty_version(MONTY_VERSION);
    root.set_payload(payload);
    Ok(WireMessage::from_builder(&message))
}

/// Checks the label and returns a copy of the payload.
fn open_envelope(bytes: &[u8], expected: wire::DumpKind) -> Result<Vec<u8>, DumpError> {
    let limits = DecodeLimits::default();
    let message = read_message(bytes, &limits)?;
    let root = message
        .get_root::<wire::dump::Reader<'_>>()
        .map_err(DecodeError::from)?;
    let kind = root.get_kind().map_err(|e| DumpError::WrongKind {
        expected: kind_name(expected),
        found: format!("dump kind {}", e.0),
    })?;
    if kind != expected {
        return Err(DumpError::WrongKind {
            expected: kind_name(expected),
            found: kind_name(kind).to_owned(),
        });
    }
    let found = root.get_protocol_version();
    if found > PROTOCOL_VERSION {
        return Err(DumpError::NewerProtocol {
            found,
            supported: PROTOCOL_VERSION,
        });
    }
    let version = root.get_monty_version().map_err(DecodeError::from)?;
    let version = version.to_str().map_err(|_| DecodeError::InvalidUtf8 {
        field: "Dump.montyVersion",
    })?;
    if version != MONTY_VERSION {
        return Err(DumpError::MontyVersion {
            found: version.to_owned(),
            expected: MONTY_VERSION,
        });
    }
    Ok(root.get_payload().map_err(DecodeError::from)?.to_vec())
}
