//! The value codec: monty's Rust types ⇄ the Cap'n Proto structs of
//! `schema/monty_wire.capnp`.
//!
//! The `write_*` / `read_*` functions work on builders and readers, so larger
//! messages can embed values; [`encode_value`], [`decode_value`] and their
//! exception, request and response twins make and read whole messages whose
//! root is the struct.

/// Reads an optional-text union (`none` / `some :Text`) of a generated group.
macro_rules! read_optional_text {
    ($ctx:expr, $group:expr, $($module:ident)::+, $field:literal) => {
        match $group
            .which()
            .map_err(|e| $crate::codec::fields::unknown_arm($field, e))?
        {
            $($module)::+::Which::None(()) => None,
            $($module)::+::Which::Some(t) => Some($ctx.text(t, $field)?),
        }
    };
}

/// Writes an `Option<String>`-like value into an optional-text union group.
macro_rules! write_optional_text {
    ($group:expr, $value:expr, $what:literal) => {
        match $value {
            None => $group.set_none(()),
            Some(text) => $group.set_some($crate::codec::fields::checked_text(text, $what)?),
        }
    };
}

/// Maps a Rust enum onto a wire enum, variant for enumerant. The one table
/// generates both directions, so they can never disagree; the wire enum is
/// named relative to the `wire` alias of the invoking module.
macro_rules! enum_table {
    (
        $(#[$to_doc:meta])* fn $to:ident;
        $(#[$from_doc:meta])* fn $from:ident;
        $rust:ident => $wire:ident { $($r:ident => $w:ident),* $(,)? }
    ) => {
        $(#[$to_doc])*
        #[must_use]
        pub(crate) fn $to(value: $rust) -> wire::$wire {
            match value {
                $($rust::$r => wire::$wire::$w,)*
            }
        }

        $(#[$from_doc])*
        #[must_use]
        pub(crate) fn $from(value: wire::$wire) -> $rust {
            match value {
                $(wire::$wire::$w => $rust::$r,)*
            }
        }
    };
}

pub mod exception;
pub(crate) mod fields;
pub mod limits;
pub mod message;
pub(crate) mod mounts;
pub mod os;
pub mod request;
pub mod response;
pub mod typecheck;
pub mod value;

use monty_types::{MontyException, MontyObject, unstable};

use crate::{
    error::{DecodeError, EncodeError},
    protocol::{Request, Response},
    schema::monty_wire_capnp as wire,
};
pub use message::{DecodeContext, DecodeLimits, FramedAllocator, WireMessage, builder_with_capacity, read_message};

/// Encodes `value` as a message whose root is a `Value`.
pub fn encode_value(value: &MontyObject) -> Result<WireMessage, EncodeError> {
    let (graph, _) = unstable::graph_parts(value);
    let mut message = builder_with_capacity(value::estimated_words(graph));
    value::write_value(value, message.init_root::<wire::value::Builder<'_>>())?;
    Ok(WireMessage::finish(message))
}

/// Decodes a message whose root is a `Value`, reading `bytes` in place.
pub fn decode_value(bytes: &[u8], limits: &DecodeLimits) -> Result<MontyObject, DecodeError> {
    let message = read_message(bytes, limits)?;
    value::read_value(
        message.get_root::<wire::value::Reader<'_>>()?,
        &mut DecodeContext::new(limits, bytes.len()),
    )
}

/// Encodes `exc` as a message whose root is a `PythonException`.
pub fn encode_exception(exc: &MontyException) -> Result<WireMessage, EncodeError> {
    let mut message = builder_with_capacity(256);
    exception::write_exception(exc, message.init_root::<wire::python_exception::Builder<'_>>())?;
    Ok(WireMessage::finish(message))
}

/// Decodes a message whose root is a `PythonException`.
pub fn decode_exception(bytes: &[u8], limits: &DecodeLimits) -> Result<MontyException, DecodeError> {
    let message = read_message(bytes, limits)?;
    exception::read_exception(
        message.get_root::<wire::python_exception::Reader<'_>>()?,
        &mut DecodeContext::new(limits, bytes.len()),
    )
}

/// Encodes `request` as a message whose root is a `Request`.
pub fn encode_request(request: &Request) -> Result<WireMessage, EncodeError> {
    let mut message = builder_with_capacity(request::estimated_words(request));
    request::write_request(request, message.init_root::<wire::request::Builder<'_>>())?;
    Ok(WireMessage::finish(message))
}

/// Decodes a message whose root is a `Request`, reading `bytes` in place.
pub fn decode_request(bytes: &[u8], limits: &DecodeLimits) -> Result<Request, DecodeError> {
    let message = read_message(bytes, limits)?;
    request::read_request(
        message.get_root::<wire::request::Reader<'_>>()?,
        &mut DecodeContext::new(limits, bytes.len()),
    )
}

/// Encodes `response` as a message whose root is a `Response`.
pub fn encode_response(response: &Response) -> Result<WireMessage, EncodeError> {
    let mut message = builder_with_capacity(response::estimated_words(response));
    response::write_response(response, message.init_root::<wire::response::Builder<'_>>())?;
    Ok(WireMessage::finish(message))
}

/// Decodes a message whose root is a `Response`, reading `bytes` in place.
pub fn decode_response(bytes: &[u8], limits: &DecodeLimits) -> Result<Response, DecodeError> {
    let message = read_message(bytes, limits)?;
    response::read_response(
        message.get_root::<wire::response::Reader<'_>>()?,
        &mut DecodeContext::new(limits, bytes.len()),
    )
}

/// A rough wire size of `value`, in words, for presizing a message.
pub(crate) fn value_words(value: &MontyObject) -> usize {
    value::estimated_words(unstable::graph_parts(value).0)
}

/// A rough wire size of a raised exception, in words: a frame is about a
/// dozen words plus its texts.
pub(crate) fn exception_words(exc: &MontyException) -> usize {
    let frames: usize = exc
        .traceback()
        .iter()
        .map(|frame| {
            12 + (frame.filename.len() + frame.frame_name.as_ref().map_or(0, String::len)) / 8
                + frame.preview_line.as_ref().map_or(0, |line| line.len() / 8)
        })
        .sum();
    16 + exc.message().map_or(0, str::len) / 8 + frames
}
