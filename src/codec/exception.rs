//! `MontyException` ⇄ `PythonException`: type, message, every traceback
//! field, and the structured Unicode / JSON error data.

use std::sync::Arc;

use monty_types::{
    CodeLoc, ExcData, ExcType, JsonErrorData, MontyException, StackFrame, UnicodeErrorData, UnicodeErrorObject,
};

use super::fields::{checked_data, checked_text, to_usize, unknown_arm, unknown_enum, wire_len};
use super::message::DecodeContext;
use crate::{
    error::{DecodeError, EncodeError},
    schema::monty_wire_capnp as wire,
};

/// One table drives both directions, so the two can never disagree.
macro_rules! exc_type_table {
    ($($rust:ident => $wire:ident),* $(,)?) => {
        /// The wire enumerant of a monty exception type.
        #[must_use]
        pub fn exc_type_to_wire(exc_type: ExcType) -> wire::ExcType {
            match exc_type {
                $(ExcType::$rust => wire::ExcType::$wire,)*
            }
        }

        /// The monty exception type of a wire enumerant.
        #[must_use]
        pub fn exc_type_from_wire(exc_type: wire::ExcType) -> ExcType {
            match exc_type {
                $(wire::ExcType::$wire => ExcType::$rust,)*
            }
        }
    };
}

exc_type_table! {
    Exception => Exception,
    BaseException => BaseException,
    SystemExit => SystemExit,
    KeyboardInterrupt => KeyboardInterrupt,
    ArithmeticError => ArithmeticError,
    OverflowError => OverflowError,
    ZeroDivisionError => ZeroDivisionError,
    LookupError => LookupError,
    IndexError => IndexError,
    KeyError => KeyError,
    RuntimeError => RuntimeError,
    NotImplementedError => NotImplementedError,
    RecursionError => RecursionError,
    AttributeError => AttributeError,
    FrozenInstanceError => FrozenInstanceError,
    NameError => NameError,
    UnboundLocalError => UnboundLocalError,
    ValueError => ValueError,
    UnicodeDecodeError => UnicodeDecodeError,
    UnicodeEncodeError => UnicodeEncodeError,
    JsonDecodeError => JsonDecodeError,
    TomlDecodeError => TomlDecodeError,
    ImportError => ImportError,
    ModuleNotFoundError => ModuleNotFoundError,
    OSError => OsError,
    FileNotFoundError => FileNotFoundError,
    FileExistsError => FileExistsError,
    IsADirectoryError => IsADirectoryError,
    NotADirectoryError => NotADirectoryError,
    PermissionError => PermissionError,
    UnsupportedOperation => UnsupportedOperation,
    TimeoutError => TimeoutError,
    AssertionError => AssertionError,
    MemoryError => MemoryError,
    StopIteration => StopIteration,
    SyntaxError => SyntaxError,
    TypeError => TypeError,
    RePatternError => RePatternError,
    BinasciiError => BinasciiError,
    BinasciiIncomplete => BinasciiIncomplete,
    CsvError => CsvError,
    DecimalException => DecimalException,
    DecimalClamped => DecimalClamped,
    DecimalInvalidOperation => DecimalInvalidOperation,
    DecimalConversionSyntax => DecimalConversionSyntax,
    DecimalDivisionByZero => DecimalDivisionByZero,
    DecimalDivisionImpossible => DecimalDivisionImpossible,
    DecimalDivisionUndefined => DecimalDivisionUndefined,
    DecimalInexact => DecimalInexact,
    DecimalInvalidContext => DecimalInvalidContext,
    DecimalRounded => DecimalRounded,
    DecimalSubnormal => DecimalSubnormal,
    DecimalOverflow => DecimalOverflow,
    DecimalUnderflow => DecimalUnderflow,
    DecimalFloatOperation => DecimalFloatOperation,
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Writes a raised exception: type, message, traceback and data.
pub fn write_exception(exc: &MontyException, mut b: wire::python_exception::Builder<'_>) -> Result<(), EncodeError> {
    b.set_type(exc_type_to_wire(exc.exc_type()));
    write_optional_text!(b.reborrow().init_message(), exc.message(), "exception message");
    let frames = exc.traceback();
    let mut out = b.reborrow().init_traceback(wire_len(frames.len(), "traceback")?);
    for (i, frame) in (0..).zip(frames) {
        write_frame(frame, out.reborrow().get(i))?;
    }
    let mut data = b.init_data();
    match exc.data() {
        ExcData::None => data.set_none(()),
        ExcData::Unicode(u) => {
            let mut out = data.init_unicode();
            out.set_encoding(checked_text(&u.encoding, "unicode error encoding")?);
            match &u.object {
                UnicodeErrorObject::Bytes(bytes) => out
                    .reborrow()
                    .init_object()
                    .set_bytes(checked_data(bytes, "unicode error object")?),
                UnicodeErrorObject::Str(s) => out
                    .reborrow()
                    .init_object()
                    .set_text(checked_text(s, "unicode error object")?),
            }
            out.set_start(u.start as u64);
            out.set_end(u.end as u64);
            out.set_reason(checked_text(&u.reason, "unicode error reason")?);
        }
        ExcData::Json(j) => {
            let mut out = data.init_json();
            out.set_msg(checked_text(&j.msg, "json error message")?);
            write_optional_text!(out.reborrow().init_doc(), &j.doc, "json error document");
            out.set_pos(j.pos as u64);
            out.set_lineno(j.lineno as u64);
            out.set_colno(j.colno as u64);
        }
    }
    Ok(())
}

fn write_frame(frame: &StackFrame, mut out: wire::stack_frame::Builder<'_>) -> Result<(), EncodeError> {
    out.set_filename(checked_text(&frame.filename, "frame filename")?);
    out.set_start_line(frame.start.line);
    out.set_start_column(frame.start.column);
    out.set_end_line(frame.end.line);
    out.set_end_column(frame.end.column);
    write_optional_text!(out.reborrow().init_frame_name(), &frame.frame_name, "frame name");
    write_optional_text!(
        out.reborrow().init_preview_line(),
        &frame.preview_line,
        "frame preview line"
    );
    out.set_hide_caret(frame.hide_caret);
    out.set_hide_frame_name(frame.hide_frame_name);
    Ok(())
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Reads a raised exception.
pub fn read_exception(
    r: wire::python_exception::Reader<'_>,
    ctx: &mut DecodeContext,
) -> Result<MontyException, DecodeError> {
    let exc_type = exc_type_from_wire(r.get_type().map_err(|e| unknown_enum("ExcType", e))?);
    let message = read_optional_text!(
        ctx,
        r.get_message(),
        wire::python_exception::message,
        "PythonException.message"
    );
    let frames = r.get_traceback()?;
    let mut traceback = ctx.vec(frames.len())?;
    for frame in frames.iter() {
        traceback.push(read_frame(frame, ctx)?);
    }
    let data = match r
        .get_data()
        .which()
        .map_err(|e| unknown_arm("PythonException.data", e))?
    {
        wire::python_exception::data::Which::None(()) => ExcData::None,
        wire::python_exception::data::Which::Unicode(u) => {
            let u = u?;
            let object = match u
                .get_object()
                .which()
                .map_err(|e| unknown_arm("UnicodeErrorData.object", e))?
            {
                wire::unicode_error_data::object::Which::Bytes(b) => UnicodeErrorObject::Bytes(ctx.data(b)?),
                wire::unicode_error_data::object::Which::Text(s) => {
                    UnicodeErrorObject::Str(ctx.text(s, "UnicodeErrorData.object")?)
                }
            };
            ExcData::Unicode(Box::new(UnicodeErrorData {
                encoding: ctx.text(u.get_encoding(), "UnicodeErrorData.encoding")?,
                object,
                start: to_usize(u.get_start(), "UnicodeErrorData.start")?,
                end: to_usize(u.get_end(), "UnicodeErrorData.end")?,
                reason: ctx.text(u.get_reason(), "UnicodeErrorData.reason")?,
            }))
        }
        wire::python_exception::data::Which::Json(j) => {
            let j = j?;
            ExcData::Json(Box::new(JsonErrorData {
                msg: ctx.text(j.get_msg(), "JsonErrorData.msg")?,
                doc: read_optional_text!(ctx, j.get_doc(), wire::json_error_data::doc, "JsonErrorData.doc"),
                pos: to_usize(j.get_pos(), "JsonErrorData.pos")?,
                lineno: to_usize(j.get_lineno(), "JsonErrorData.lineno")?,
                colno: to_usize(j.get_colno(), "JsonErrorData.colno")?,
            }))
        }
    };
    Ok(MontyException::with_traceback(exc_type, message, traceback).with_data(data))
}

fn read_frame(r: wire::stack_frame::Reader<'_>, ctx: &mut DecodeContext) -> Result<StackFrame, DecodeError> {
    Ok(StackFrame {
        filename: ctx.text(r.get_filename(), "StackFrame.filename")?,
        start: CodeLoc {
            line: r.get_start_line(),
            column: r.get_start_column(),
        },
        end: CodeLoc {
            line: r.get_end_line(),
            column: r.get_end_column(),
        },
        frame_name: read_optional_text!(
            ctx,
            r.get_frame_name(),
            wire::stack_frame::frame_name,
            "StackFrame.frameName"
        ),
        preview_line: match r
            .get_preview_line()
            .which()
            .map_err(|e| unknown_arm("StackFrame.previewLine", e))?
        {
            wire::stack_frame::preview_line::Which::None(()) => None,
            wire::stack_frame::preview_line::Which::Some(t) => Some(Arc::from(ctx.str(t, "StackFrame.previewLine")?)),
        },
        hide_caret: r.get_hide_caret(),
        hide_frame_name: r.get_hide_frame_name(),
    })
}
