//! Dump envelopes: what `dump` bytes hold, labelled so a host never confuses
//! formats and a dump from an incompatible build is refused with a clear
//! error before monty reads its payload.
//!
//! The envelope is a framed `Dump` message (see the schema). Its payload is
//! monty's own CBOR serialization, which changes between monty releases, so
//! a payload loads only into the monty release that wrote it.
//!
//! monty does not authenticate its dumps, and loading tampered bytes may
//! panic, abort or hang. A host that stores dumps where others can change
//! them configures a key: every dump is then sealed with an HMAC-SHA256 tag
//! over the whole envelope, and a dump whose tag does not verify is refused
//! before monty reads a byte of its payload.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use monty::{DUMP_VERSION, Dump, MIN_SUPPORTED_DUMP_VERSION, MontyRun, SessionRef};
use monty_types::{MONTY_VERSION, ModuleStub, TypeCheckState};
use sha2::Sha256;

pub use crate::error::{DumpEncodeError, DumpError};
use crate::{
    PROTOCOL_VERSION,
    codec::{
        DecodeLimits, WireMessage, builder_with_capacity,
        fields::{checked_data, duration_nanos},
        read_message,
    },
    error::DecodeError,
    schema::monty_wire_capnp as wire,
};

type HmacSha256 = Hmac<Sha256>;

/// The key a session seals and checks dumps with; empty means none.
#[derive(Clone, Default)]
pub struct DumpKey(Vec<u8>);

impl DumpKey {
    /// A key; empty bytes mean no key.
    #[must_use]
    pub fn new(key: Vec<u8>) -> Self {
        Self(key)
    }

    fn mac(&self) -> Option<HmacSha256> {
        if self.0.is_empty() {
            return None;
        }
        Some(HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length"))
    }
}

impl std::fmt::Debug for DumpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str(if self.0.is_empty() {
            "DumpKey(none)"
        } else {
            "DumpKey(set)"
        })
    }
}

/// What a dump holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    /// A compiled program.
    Program,
    /// A REPL between snippets.
    ReplIdle,
    /// A REPL suspended mid-snippet.
    ReplSuspended,
    /// A one-shot run suspended at a host call.
    RunSuspended,
}

impl DumpKind {
    fn to_wire(self) -> wire::DumpKind {
        match self {
            Self::Program => wire::DumpKind::Program,
            Self::ReplIdle => wire::DumpKind::ReplIdle,
            Self::ReplSuspended => wire::DumpKind::ReplSuspended,
            Self::RunSuspended => wire::DumpKind::RunSuspended,
        }
    }

    fn from_wire(kind: wire::DumpKind) -> Self {
        match kind {
            wire::DumpKind::Program => Self::Program,
            wire::DumpKind::ReplIdle => Self::ReplIdle,
            wire::DumpKind::ReplSuspended => Self::ReplSuspended,
            wire::DumpKind::RunSuspended => Self::RunSuspended,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Program => "program",
            Self::ReplIdle => "idle REPL",
            Self::ReplSuspended => "suspended REPL",
            Self::RunSuspended => "suspended run",
        }
    }
}

/// The engine's bookkeeping of a run or feed in flight, which monty's payload
/// does not hold. It travels in the envelope so a loaded session counts the
/// host-enforced limits from where the writer stopped and names futures as
/// the writer would have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlightRecord {
    /// Host round trips so far.
    pub suspensions: u64,
    /// `system.sleep` time so far.
    pub total_sleep: Duration,
    /// Interpreter time so far.
    pub elapsed: Duration,
    /// Function calls the host turned into futures, not yet resolved: call
    /// id and function name.
    pub future_names: Vec<(u32, String)>,
    /// The session's mounts and overlay writes (`Dump.mountState`, written
    /// and read by the session's mount table); empty without mounts.
    pub mount_state: Vec<u8>,
}

/// A session dump, read back: monty's part and the engine's.
#[derive(Debug)]
pub struct LoadedSession {
    /// What monty restored.
    pub session: Dump,
    /// What the engine restores.
    pub flight: FlightRecord,
}

/// Dumps a compiled, not yet started program.
pub fn dump_program(program: &MontyRun, key: &DumpKey) -> Result<WireMessage, DumpEncodeError> {
    let payload = minicbor_serde::to_vec(program).map_err(|e| DumpEncodeError(e.to_string()))?;
    seal(DumpKind::Program, 0, &payload, &FlightRecord::default(), key)
}

/// Loads a program written by [`dump_program`].
pub fn load_program(bytes: &[u8], key: &DumpKey) -> Result<MontyRun, DumpError> {
    let opened = open(bytes, key)?;
    if opened.kind != DumpKind::Program {
        return Err(DumpError::WrongKind {
            request: "loadProgram",
            found: opened.kind.name(),
        });
    }
    minicbor_serde::from_slice(&opened.payload).map_err(|e| DumpError::Payload(e.to_string()))
}

/// Dumps a REPL or a run in flight, with monty's own dump format inside
/// (which also carries a REPL's type-checking state and module stubs) and
/// the engine's bookkeeping beside it.
pub fn dump_session(
    state: SessionRef<'_>,
    script_name: &str,
    type_check: Option<&TypeCheckState>,
    module_stubs: &[ModuleStub],
    flight: &FlightRecord,
    key: &DumpKey,
) -> Result<WireMessage, DumpEncodeError> {
    let kind = match state {
        SessionRef::Idle(_) => DumpKind::ReplIdle,
        SessionRef::Suspended(_) => DumpKind::ReplSuspended,
        SessionRef::Running(_) => DumpKind::RunSuspended,
    };
    let payload =
        monty::dump(script_name, type_check, module_stubs, state).map_err(|e| DumpEncodeError(e.to_string()))?;
    seal(kind, DUMP_VERSION, &payload, flight, key)
}

/// A session dump with `mount_state` in place of the mount state it had,
/// sealed again under `key` (which opened it).
pub fn with_mount_state(bytes: &[u8], mount_state: Vec<u8>, key: &DumpKey) -> Result<WireMessage, DumpEncodeError> {
    let opened = open(bytes, key).map_err(|e| DumpEncodeError(e.to_string()))?;
    let flight = FlightRecord {
        mount_state,
        ..opened.flight
    };
    seal(opened.kind, opened.dump_version, &opened.payload, &flight, key)
}

/// Loads what [`dump_session`] wrote.
pub fn load_session(bytes: &[u8], key: &DumpKey) -> Result<LoadedSession, DumpError> {
    let opened = open(bytes, key)?;
    if opened.kind == DumpKind::Program {
        return Err(DumpError::WrongKind {
            request: "loadSession",
            found: opened.kind.name(),
        });
    }
    // Refused here, from the envelope's label, so monty never starts on a
    // payload it cannot read.
    if !(MIN_SUPPORTED_DUMP_VERSION..=DUMP_VERSION).contains(&opened.dump_version) {
        return Err(DumpError::DumpVersion {
            found: opened.dump_version,
            min_supported: MIN_SUPPORTED_DUMP_VERSION,
            max_supported: DUMP_VERSION,
            monty: MONTY_VERSION,
        });
    }
    let session = Dump::load(&opened.payload).map_err(|e| DumpError::Payload(e.to_string()))?;
    Ok(LoadedSession {
        session,
        flight: opened.flight,
    })
}

/// Every envelope field the seal covers.
struct SealedFields<'a> {
    kind: DumpKind,
    protocol: u32,
    monty_version: &'a str,
    dump_version: u16,
    payload: &'a [u8],
    flight: &'a FlightRecord,
}

/// Feeds `mac` the bytes the seal covers: every envelope field but the
/// seal, each length-prefixed, so no two envelopes share a tag input. Seal
/// and open both use this, and the payload is hashed where it lies rather
/// than copied first.
fn update_seal(mac: &mut HmacSha256, fields: &SealedFields<'_>) {
    let length = |len: usize| (len as u64).to_le_bytes();
    mac.update(b"monty-wire dump\0");
    mac.update(&(fields.kind.to_wire() as u16).to_le_bytes());
    mac.update(&fields.protocol.to_le_bytes());
    mac.update(&fields.dump_version.to_le_bytes());
    mac.update(&length(fields.monty_version.len()));
    mac.update(fields.monty_version.as_bytes());
    mac.update(&length(fields.payload.len()));
    mac.update(fields.payload);
    let flight = fields.flight;
    mac.update(&flight.suspensions.to_le_bytes());
    mac.update(&duration_nanos(flight.total_sleep).to_le_bytes());
    mac.update(&duration_nanos(flight.elapsed).to_le_bytes());
    mac.update(&length(flight.future_names.len()));
    for (call_id, name) in &flight.future_names {
        mac.update(&call_id.to_le_bytes());
        mac.update(&length(name.len()));
        mac.update(name.as_bytes());
    }
    mac.update(&length(flight.mount_state.len()));
    mac.update(&flight.mount_state);
}

fn seal(
    kind: DumpKind,
    dump_version: u16,
    payload: &[u8],
    flight: &FlightRecord,
    key: &DumpKey,
) -> Result<WireMessage, DumpEncodeError> {
    let payload = checked_data(payload, "dump payload").map_err(|e| DumpEncodeError(e.to_string()))?;
    let names_len: usize = flight.future_names.iter().map(|(_, name)| name.len() / 8 + 2).sum();
    let mount_state = checked_data(&flight.mount_state, "mount state").map_err(|e| DumpEncodeError(e.to_string()))?;
    let mut message = builder_with_capacity(payload.len() / 8 + names_len + mount_state.len() / 8 + 64);
    let mut root = message.init_root::<wire::dump::Builder<'_>>();
    root.set_kind(kind.to_wire());
    root.set_protocol_version(PROTOCOL_VERSION);
    root.set_monty_version(MONTY_VERSION);
    root.set_monty_dump_version(dump_version);
    root.set_payload(payload);
    root.set_suspensions(flight.suspensions);
    root.set_total_sleep_nanos(duration_nanos(flight.total_sleep));
    root.set_feed_elapsed_nanos(duration_nanos(flight.elapsed));
    // Left null when empty (which reads back as an empty list): an empty
    // struct list would still take a tag word after the payload.
    if !flight.future_names.is_empty() {
        let count = u32::try_from(flight.future_names.len())
            .map_err(|_| DumpEncodeError("more pending futures than a list holds".into()))?;
        let mut names = root.reborrow().init_future_names(count);
        for (i, (call_id, name)) in (0..count).zip(&flight.future_names) {
            let mut entry = names.reborrow().get(i);
            entry.set_call_id(*call_id);
            entry.set_name(name);
        }
    }
    if !mount_state.is_empty() {
        root.set_mount_state(mount_state);
    }
    match key.mac() {
        None => root.init_seal().set_none(()),
        Some(mut mac) => {
            update_seal(
                &mut mac,
                &SealedFields {
                    kind,
                    protocol: PROTOCOL_VERSION,
                    monty_version: MONTY_VERSION,
                    dump_version,
                    payload,
                    flight,
                },
            );
            root.init_seal().set_hmac_sha256(&mac.finalize().into_bytes());
        }
    }
    Ok(WireMessage::finish(message))
}

/// An envelope whose seal (if any) verified.
struct Opened {
    kind: DumpKind,
    dump_version: u16,
    payload: Vec<u8>,
    flight: FlightRecord,
}

/// Checks the envelope (seal first) and returns what it holds.
fn open(bytes: &[u8], key: &DumpKey) -> Result<Opened, DumpError> {
    let message = read_message(bytes, &DecodeLimits::default())?;
    let root = message
        .get_root::<wire::dump::Reader<'_>>()
        .map_err(DecodeError::from)?;
    let kind = DumpKind::from_wire(root.get_kind().map_err(|e| DumpError::UnknownKind(e.0))?);
    let protocol = root.get_protocol_version();
    let version = root.get_monty_version().map_err(DecodeError::from)?;
    let version = version.to_str().map_err(|_| DecodeError::InvalidUtf8 {
        field: "Dump.montyVersion",
    })?;
    let dump_version = root.get_monty_dump_version();
    let payload = root.get_payload().map_err(DecodeError::from)?;
    let flight = read_flight(root)?;
    let tag = match root.get_seal().which().map_err(|e| DecodeError::UnknownUnionArm {
        union_name: "Dump.seal",
        value: e.0,
    })? {
        wire::dump::seal::Which::None(()) => None,
        wire::dump::seal::Which::HmacSha256(tag) => Some(tag.map_err(DecodeError::from)?),
    };
    match (key.mac(), tag) {
        (None, None) => {}
        (Some(_), None) => return Err(DumpError::NotSealed),
        (None, Some(_)) => return Err(DumpError::NoKey),
        (Some(mut mac), Some(tag)) => {
            update_seal(
                &mut mac,
                &SealedFields {
                    kind,
                    protocol,
                    monty_version: version,
                    dump_version,
                    payload,
                    flight: &flight,
                },
            );
            // `verify_slice` compares in constant time.
            mac.verify_slice(tag).map_err(|_| DumpError::BadSeal)?;
        }
    }
    if protocol > PROTOCOL_VERSION {
        return Err(DumpError::NewerProtocol {
            found: protocol,
            supported: PROTOCOL_VERSION,
        });
    }
    if version != MONTY_VERSION {
        return Err(DumpError::MontyVersion {
            found: version.to_owned(),
            expected: MONTY_VERSION,
        });
    }
    Ok(Opened {
        kind,
        dump_version,
        payload: payload.to_vec(),
        flight,
    })
}

fn read_flight(root: wire::dump::Reader<'_>) -> Result<FlightRecord, DecodeError> {
    let future_names = root
        .get_future_names()?
        .iter()
        .map(|entry| {
            let name = entry.get_name()?.to_str().map_err(|_| DecodeError::InvalidUtf8 {
                field: "Dump.FutureName.name",
            })?;
            Ok((entry.get_call_id(), name.to_owned()))
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(FlightRecord {
        suspensions: root.get_suspensions(),
        total_sleep: Duration::from_nanos(root.get_total_sleep_nanos()),
        elapsed: Duration::from_nanos(root.get_feed_elapsed_nanos()),
        future_names,
        mount_state: root.get_mount_state()?.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seal input as one buffer, spelled out byte by byte: the
    /// incremental feed must hash exactly these bytes.
    fn seal_input_reference(payload: &[u8]) -> Vec<u8> {
        let mut input = b"monty-wire dump\0".to_vec();
        input.extend_from_slice(&(wire::DumpKind::ReplSuspended as u16).to_le_bytes());
        input.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        input.extend_from_slice(&DUMP_VERSION.to_le_bytes());
        input.extend_from_slice(&(MONTY_VERSION.len() as u64).to_le_bytes());
        input.extend_from_slice(MONTY_VERSION.as_bytes());
        input.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        input.extend_from_slice(payload);
        input.extend_from_slice(&3u64.to_le_bytes());
        input.extend_from_slice(&2_000_000_000u64.to_le_bytes());
        input.extend_from_slice(&5_000u64.to_le_bytes());
        input.extend_from_slice(&1u64.to_le_bytes());
        input.extend_from_slice(&7u32.to_le_bytes());
        input.extend_from_slice(&5u64.to_le_bytes());
        input.extend_from_slice(b"fetch");
        input.extend_from_slice(&2u64.to_le_bytes());
        input.extend_from_slice(b"ms");
        input
    }

    #[test]
    fn the_seal_hashes_the_fields_in_place() {
        let key = DumpKey::new(b"key".to_vec());
        let payload = b"MONTY\0 a payload";
        let flight = FlightRecord {
            suspensions: 3,
            total_sleep: Duration::from_secs(2),
            elapsed: Duration::from_micros(5),
            future_names: vec![(7, "fetch".into())],
            mount_state: b"ms".to_vec(),
        };
        let mut incremental = key.mac().expect("a key");
        update_seal(
            &mut incremental,
            &SealedFields {
                kind: DumpKind::ReplSuspended,
                protocol: PROTOCOL_VERSION,
                monty_version: MONTY_VERSION,
                dump_version: DUMP_VERSION,
                payload,
                flight: &flight,
            },
        );
        let mut whole = key.mac().expect("a key");
        whole.update(&seal_input_reference(payload));
        assert_eq!(incremental.finalize().into_bytes(), whole.finalize().into_bytes());
    }

    #[test]
    fn the_flight_record_round_trips_and_is_sealed() {
        let key = DumpKey::new(b"key".to_vec());
        let flight = FlightRecord {
            suspensions: 9,
            total_sleep: Duration::from_millis(1500),
            elapsed: Duration::from_nanos(123_456),
            future_names: vec![(1, "a".into()), (4, "fetch_all".into())],
            mount_state: b"mounts".to_vec(),
        };
        let message = seal(DumpKind::ReplSuspended, DUMP_VERSION, b"payload", &flight, &key).expect("seals");
        let opened = open(message.as_bytes(), &key).expect("opens");
        assert_eq!(opened.flight, flight);
        assert_eq!(opened.payload, b"payload");

        // Every bookkeeping field is under the seal.
        let tampered = |edit: &dyn Fn(wire::dump::Builder<'_>)| {
            let reader = read_message(message.as_bytes(), &DecodeLimits::default()).expect("reads");
            let mut copy = builder_with_capacity(64);
            copy.set_root(reader.get_root::<wire::dump::Reader<'_>>().expect("a Dump"))
                .expect("copies");
            edit(copy.get_root::<wire::dump::Builder<'_>>().expect("a Dump"));
            open(WireMessage::from_builder(&copy).as_bytes(), &key).map(|_| ())
        };
        assert!(tampered(&|_| {}).is_ok(), "an untouched copy verifies");
        let edits: [&dyn Fn(wire::dump::Builder<'_>); 6] = [
            &|mut b| b.set_mount_state(b"mountz"),
            &|mut b| b.set_suspensions(0),
            &|mut b| b.set_total_sleep_nanos(0),
            &|mut b| b.set_feed_elapsed_nanos(0),
            &|b| b.get_future_names().expect("names").get(1).set_call_id(5),
            &|b| b.get_future_names().expect("names").get(0).set_name("b"),
        ];
        for edit in edits {
            assert!(matches!(tampered(edit), Err(DumpError::BadSeal)));
        }
    }
}
