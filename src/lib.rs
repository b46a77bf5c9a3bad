//! monty-wire: the monty Python sandbox behind one Cap'n Proto protocol.
//!
//! `schema/monty_wire.capnp` is the contract. This crate encodes every monty
//! value, exception and limit into it losslessly and decodes what a host
//! sends back, checking every byte.
//!
//! ```
//! use monty_types::MontyObject;
//! use monty_wire::{DecodeLimits, decode_value, encode_value};
//!
//! let value = MontyObject::tuple(vec![MontyObject::int(1), MontyObject::string("two")]);
//! let message = encode_value(&value).unwrap();
//! let back = decode_value(message.as_bytes(), &DecodeLimits::default()).unwrap();
//! assert_eq!(back, value);
//! ```

#![warn(missing_docs)]

pub mod abi;
pub mod codec;
pub mod dump;
pub mod error;
pub mod protocol;
pub mod session;
mod spares;
pub mod worker;

/// The Rust bindings generated from `schema/monty_wire.capnp`; the schema
/// file documents every field.
#[allow(missing_docs)]
pub mod schema {
    capnp::generated_code!(pub mod monty_wire_capnp);
    pub use monty_wire_capnp::*;
}

pub use abi::ffi;
pub use codec::{
    DecodeLimits, WireMessage, decode_exception, decode_request, decode_response, decode_value, encode_exception,
    encode_request, encode_response, encode_value,
};
pub use error::{DecodeError, EncodeError};
pub use session::Session;

/// The protocol version this build speaks (`protocolVersion` in the schema).
pub const PROTOCOL_VERSION: u32 = schema::PROTOCOL_VERSION;
