//! Field-level helpers every codec module shares: the bounds Cap'n Proto
//! puts on lists and blobs, narrowing wire integers to `usize`, durations as
//! nanoseconds, and the errors for enum values and union arms this schema
//! version does not define.

use std::time::Duration;

use crate::error::{DecodeError, EncodeError};

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

/// The longest text or data blob a message can hold (2^29 - 1 bytes, less
/// the NUL terminator text carries).
const MAX_BLOB_LEN: usize = (1 << 29) - 2;

/// `s`, if a text field can hold it.
pub(crate) fn checked_text<'a>(s: &'a str, what: &'static str) -> Result<&'a str, EncodeError> {
    check_blob(s.len(), what)?;
    Ok(s)
}

/// `d`, if a data field can hold it.
pub(crate) fn checked_data<'a>(d: &'a [u8], what: &'static str) -> Result<&'a [u8], EncodeError> {
    check_blob(d.len(), what)?;
    Ok(d)
}

fn check_blob(len: usize, what: &'static str) -> Result<(), EncodeError> {
    if len > MAX_BLOB_LEN {
        Err(EncodeError::TooLarge {
            what,
            len,
            max: MAX_BLOB_LEN,
        })
    } else {
        Ok(())
    }
}

/// An enum value this schema version does not define.
pub(crate) fn unknown_enum(enum_name: &'static str, err: capnp::NotInSchema) -> DecodeError {
    DecodeError::UnknownEnumValue {
        enum_name,
        value: err.0,
    }
}

/// A union arm this schema version does not define.
pub(crate) fn unknown_arm(union_name: &'static str, err: capnp::NotInSchema) -> DecodeError {
    DecodeError::UnknownUnionArm {
        union_name,
        value: err.0,
    }
}

/// Narrows a wire `UInt64` to `usize`, which is 32 bits on wasm32.
pub(crate) fn to_usize(value: u64, field: &'static str) -> Result<usize, DecodeError> {
    usize::try_from(value).map_err(|_| DecodeError::IntegerOutOfRange { field, value })
}

/// Durations cross as whole nanoseconds; anything past `u64::MAX` ns (about
/// 584 years) is saturated, which no limit can tell apart from "unlimited".
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
