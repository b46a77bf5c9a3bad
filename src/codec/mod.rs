//! The value codec: monty's Rust types ⇄ the Cap'n Proto structs of
//! `schema/monty_wire.capnp`.
//!
//! The `write_*` / `read_*` functions work on builders and readers, so larger
//! messages can embed values; [`encode_value`], [`decode_value`] and their
//! exception twins make and read whole messages whose root is the struct.

/// Reads an optional-text union (`none` / `some :Text`) of a generated group.
macro_rules! read_optional_text {
    ($ctx:expr, $group:expr, $($module:ident)::+, $field:literal) => {
        match $group
            .which()
            .map_err(|e| $crate::codec::value::unknown_arm($field, e))?
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
            Some(text) => $group.set_some($crate::codec::value::checked_text(text, $what)?),
        }
    };
}

pub mod exception;
pub mod limits;
pub mod message;
pub mod value;

use monty_types::{MontyException, MontyObject, unstable};

use crate::{
    error::{DecodeError, EncodeError},
    schema::monty_wire_capnp as wire,
};
pub use message::{DecodeContext, DecodeLimits, WireMessage, builder_with_capacity, read_message};

/// The most elements a Cap'n Proto list can hold.
const MAX_LIST_LEN: usize = (1 << 29) - 1;

/// A list length as the `u32` Cap'n Proto takes, or an error past its bound.
pub(crate) fn wire_len(len: usize, what: &'static str) -> Result<u32, EncodeError> {
    if len > MAX_LIST_LEN {
        return Err(EncodeError::TooLarge {
            what,
            len,
            max: MAX_LIST_LEN,
        });
    }
    Ok(u32::try_from(len).expect("bounded by MAX_LIST_LEN"))
}

/// Encodes `value` as a message whose root is a `Value`.
pub fn encode_value(value: &MontyObject) -> Result<WireMessage, EncodeError> {
    let (graph, _) = unstable::graph_parts(value);
    let mut message = builder_with_capacity(value::estimated_words(graph));
    value::write_value(value, message.init_root::<wire::value::Builder<'_>>())?;
    Ok(WireMessage::from_builder(&message))
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
    Ok(WireMessage::from_builder(&message))
}

/// Decodes a message whose root is a `PythonException`.
pub fn decode_exception(bytes: &[u8], limits: &DecodeLimits) -> Result<MontyException, DecodeError> {
    let message = read_message(bytes, limits)?;
    exception::read_exception(
        message.get_root::<wire::python_exception::Reader<'_>>()?,
        &mut DecodeContext::new(limits, bytes.len()),
    )
}
