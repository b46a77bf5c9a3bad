//! `Response` ⇄ the `Response` struct: a session's one reply to a request,
//! with its print output and resource usage.

use std::time::Duration;

use monty_types::{CallArgs, PrintStream, unstable};

use super::{
    exception::{read_exception, write_exception},
    exception_words,
    fields::{checked_data, checked_text, duration_nanos, unknown_arm, unknown_enum, wire_len},
    limits::{read_source_range, write_source_range},
    message::DecodeContext,
    os,
    typecheck::{continuation_from_wire, continuation_to_wire, read_report, write_report},
    value::{
        estimated_words as graph_words, graph_error, read_graph, read_uuid, read_value, write_graph, write_pairs,
        write_value,
    },
    value_words,
};
use crate::{
    error::{DecodeError, EncodeError},
    protocol::{
        ErrorCode, FunctionCallEvent, NameLookupEvent, OsCallEvent, Outcome, PrintSegment, ProtocolError,
        ResolveFuturesEvent, Response, Usage, WorkerExit,
    },
    schema::monty_wire_capnp as wire,
};

enum_table! {
    /// The wire enumerant of a protocol error code.
    fn error_code_to_wire;
    /// The protocol error code a wire enumerant names.
    fn error_code_from_wire;
    ErrorCode => ErrorCode {
        MalformedMessage => MalformedMessage,
        TruncatedMessage => TruncatedMessage,
        LimitExceeded => LimitExceeded,
        InvalidValue => InvalidValue,
        UnknownRequest => UnknownRequest,
        WrongState => WrongState,
        UnknownSession => UnknownSession,
        SessionBusy => SessionBusy,
        InvalidArgument => InvalidArgument,
        InternalError => InternalError,
        ResponseTooLarge => ResponseTooLarge,
        InvalidDump => InvalidDump,
        WorkerUnavailable => WorkerUnavailable,
        WorkerCrashed => WorkerCrashed,
        DeadlineExceeded => DeadlineExceeded,
        Cancelled => Cancelled,
    }
}

enum_table! {
    /// The wire enumerant of an output stream.
    fn print_stream_to_wire;
    /// The output stream a wire enumerant names.
    fn print_stream_from_wire;
    PrintStream => PrintStream {
        Stdout => Stdout,
        Stderr => Stderr,
    }
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Writes `response` into `b`: its outcome, output and usage.
pub fn write_response(response: &Response, mut b: wire::response::Builder<'_>) -> Result<(), EncodeError> {
    write_outcome(&response.outcome, b.reborrow())?;
    let mut output = b
        .reborrow()
        .init_output(wire_len(response.output.len(), "print output")?);
    for (i, segment) in (0..).zip(&response.output) {
        let mut out = output.reborrow().get(i);
        out.set_stream(print_stream_to_wire(segment.stream));
        out.set_text(checked_text(&segment.text, "print output")?);
    }
    write_usage(&response.usage, b.init_usage());
    Ok(())
}

fn write_outcome(outcome: &Outcome, mut b: wire::response::Builder<'_>) -> Result<(), EncodeError> {
    match outcome {
        Outcome::Ok => b.set_ok(()),
        Outcome::Complete(value) => write_value(value, b.init_complete())?,
        Outcome::FunctionCall(event) => {
            let mut out = b.init_function_call();
            out.set_name(checked_text(&event.name, "function name")?);
            write_arguments(&event.args, out.reborrow().init_args())?;
            out.set_call_id(event.call_id);
            match &event.object_id {
                None => out.reborrow().init_method_of().set_none(()),
                Some(id) => out.reborrow().init_method_of().set_some(id.as_bytes()),
            }
            out.set_allow_eager_await(event.allow_eager_await);
            write_source_range(&event.position, out.init_position())?;
        }
        Outcome::OsCall(event) => {
            let mut out = b.init_os_call();
            out.set_call_id(event.call_id);
            out.set_allow_eager_await(event.allow_eager_await);
            write_source_range(&event.position, out.reborrow().init_position())?;
            os::write_os_call(&event.call, out)?;
        }
        Outcome::NameLookup(event) => {
            let mut out = b.init_name_lookup();
            out.set_name(checked_text(&event.name, "name")?);
            match &event.object_id {
                None => out.reborrow().init_attribute_of().set_none(()),
                Some(id) => out.reborrow().init_attribute_of().set_some(id.as_bytes()),
            }
            write_source_range(&event.position, out.init_position())?;
        }
        Outcome::ResolveFutures(event) => {
            let mut out = b.init_resolve_futures();
            let mut ids = out
                .reborrow()
                .init_pending_call_ids(wire_len(event.pending_call_ids.len(), "pending call ids")?);
            for (i, id) in (0..).zip(&event.pending_call_ids) {
                ids.set(i, *id);
            }
            write_source_range(&event.position, out.init_position())?;
        }
        Outcome::PythonError(exc) => write_exception(exc, b.init_python_error())?,
        Outcome::ProtocolError(error) => {
            let mut out = b.init_protocol_error();
            out.set_code(error_code_to_wire(error.code));
            out.set_message(checked_text(&error.message, "protocol error message")?);
            if let Some(exit) = &error.worker_exit {
                let mut wire_exit = out.init_worker_exit();
                wire_exit.set_exit_code(exit.exit_code);
                wire_exit.set_signal(exit.signal);
                wire_exit.set_out_of_memory(exit.out_of_memory);
                wire_exit.set_stderr_tail(checked_text(&exit.stderr_tail, "worker stderr")?);
            }
        }
        Outcome::Dump(dump) => b.set_dump(checked_data(dump, "dump")?),
        Outcome::Continuation(mode) => b.set_continuation(continuation_to_wire(*mode)),
        Outcome::FunctionNames(names) => {
            let mut out = b.init_function_names(wire_len(names.len(), "function names")?);
            for (i, name) in (0..).zip(names) {
                out.set(i, checked_text(name, "function name")?);
            }
        }
        Outcome::TypeCheckReport(report) => write_report(report, b.init_type_check_report())?,
    }
    Ok(())
}

/// Writes call arguments as they are held: one arena, positional roots and
/// keyword (name, value) root pairs.
fn write_arguments(args: &CallArgs, mut b: wire::arguments::Builder<'_>) -> Result<(), EncodeError> {
    let (graph, positional, keyword) = unstable::call_args_parts(args);
    write_graph(graph, b.reborrow().init_nodes(wire_len(graph.len(), "argument arena")?))?;
    let mut ids = b
        .reborrow()
        .init_positional(wire_len(positional.len(), "positional arguments")?);
    for (i, id) in (0..).zip(positional) {
        ids.set(i, id.0);
    }
    write_pairs(keyword, b.init_keyword(wire_len(keyword.len(), "keyword arguments")?));
    Ok(())
}

fn write_usage(usage: &Usage, mut b: wire::usage::Builder<'_>) {
    b.set_elapsed_nanos(duration_nanos(usage.elapsed));
    b.set_feed_elapsed_nanos(duration_nanos(usage.feed_elapsed));
    b.set_turn_elapsed_nanos(duration_nanos(usage.turn_elapsed));
    b.set_wall_nanos(duration_nanos(usage.wall));
    b.set_suspensions(usage.suspensions);
    match usage.memory_bytes {
        None => b.init_memory().set_unmeasured(()),
        Some(bytes) => b.init_memory().set_bytes(bytes),
    }
}

/// A rough wire size of `response`, in words, for presizing its message.
pub(crate) fn estimated_words(response: &Response) -> usize {
    let outcome = match &response.outcome {
        Outcome::Ok => 0,
        Outcome::Complete(value) => value_words(value),
        Outcome::FunctionCall(event) => {
            let (graph, positional, keyword) = unstable::call_args_parts(&event.args);
            16 + event.name.len() / 8 + graph_words(graph) + positional.len() / 2 + keyword.len()
        }
        Outcome::OsCall(event) => os::estimated_words(&event.call),
        Outcome::NameLookup(event) => 16 + event.name.len() / 8,
        Outcome::ResolveFutures(event) => 8 + event.pending_call_ids.len() / 2,
        Outcome::PythonError(exc) => exception_words(exc),
        Outcome::ProtocolError(error) => {
            12 + error.message.len() / 8 + error.worker_exit.as_ref().map_or(0, |exit| exit.stderr_tail.len() / 8)
        }
        Outcome::Dump(dump) => 1 + dump.len() / 8,
        Outcome::Continuation(_) => 0,
        Outcome::FunctionNames(names) => names.iter().map(|name| 2 + name.len() / 8).sum(),
        Outcome::TypeCheckReport(report) => {
            4 + report.rendered.len() / 8
                + report
                    .diagnostics
                    .iter()
                    .map(|d| 8 + (d.code.len() + d.message.len() + d.file.len()) / 8)
                    .sum::<usize>()
        }
    };
    let output: usize = response.output.iter().map(|segment| 3 + segment.text.len() / 8).sum();
    32 + outcome + output
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Reads a response, checking everything a hostile writer could get wrong.
pub fn read_response(r: wire::response::Reader<'_>, ctx: &mut DecodeContext) -> Result<Response, DecodeError> {
    let outcome = read_outcome(r, ctx)?;
    let segments = r.get_output()?;
    let mut output = ctx.vec(segments.len())?;
    for segment in segments.iter() {
        output.push(PrintSegment {
            stream: print_stream_from_wire(segment.get_stream().map_err(|e| unknown_enum("PrintStream", e))?),
            text: ctx.text(segment.get_text(), "PrintSegment.text")?,
        });
    }
    Ok(Response {
        outcome,
        output,
        usage: read_usage(r.get_usage()?)?,
    })
}

fn read_outcome(r: wire::response::Reader<'_>, ctx: &mut DecodeContext) -> Result<Outcome, DecodeError> {
    use wire::response::Which;

    Ok(match r.which().map_err(|e| unknown_arm("Response", e))? {
        Which::Ok(()) => Outcome::Ok,
        Which::Complete(value) => Outcome::Complete(read_value(value?, ctx)?),
        Which::FunctionCall(event) => {
            use wire::function_call::method_of;
            let event = event?;
            Outcome::FunctionCall(FunctionCallEvent {
                name: ctx.text(event.get_name(), "FunctionCall.name")?,
                args: read_arguments(event.get_args()?, ctx)?,
                call_id: event.get_call_id(),
                object_id: match event
                    .get_method_of()
                    .which()
                    .map_err(|e| unknown_arm("FunctionCall.methodOf", e))?
                {
                    method_of::Which::None(()) => None,
                    method_of::Which::Some(id) => Some(read_uuid(id, "FunctionCall.methodOf")?),
                },
                allow_eager_await: event.get_allow_eager_await(),
                position: read_source_range(event.get_position()?, ctx)?,
            })
        }
        Which::OsCall(event) => {
            let event = event?;
            Outcome::OsCall(OsCallEvent {
                call: os::read_os_call(event, ctx)?,
                call_id: event.get_call_id(),
                allow_eager_await: event.get_allow_eager_await(),
                position: read_source_range(event.get_position()?, ctx)?,
            })
        }
        Which::NameLookup(event) => {
            use wire::name_lookup::attribute_of;
            let event = event?;
            Outcome::NameLookup(NameLookupEvent {
                name: ctx.text(event.get_name(), "NameLookup.name")?,
                object_id: match event
                    .get_attribute_of()
                    .which()
                    .map_err(|e| unknown_arm("NameLookup.attributeOf", e))?
                {
                    attribute_of::Which::None(()) => None,
                    attribute_of::Which::Some(id) => Some(read_uuid(id, "NameLookup.attributeOf")?),
                },
                position: read_source_range(event.get_position()?, ctx)?,
            })
        }
        Which::ResolveFutures(event) => {
            let event = event?;
            let ids = event.get_pending_call_ids()?;
            let mut pending_call_ids = ctx.vec(ids.len())?;
            pending_call_ids.extend(ids.iter());
            Outcome::ResolveFutures(ResolveFuturesEvent {
                pending_call_ids,
                position: read_source_range(event.get_position()?, ctx)?,
            })
        }
        Which::PythonError(exc) => Outcome::PythonError(read_exception(exc?, ctx)?),
        Which::ProtocolError(error) => {
            let error = error?;
            Outcome::ProtocolError(ProtocolError {
                code: error_code_from_wire(error.get_code().map_err(|e| unknown_enum("ErrorCode", e))?),
                message: ctx.text(error.get_message(), "ProtocolError.message")?,
                worker_exit: if error.has_worker_exit() {
                    let exit = error.get_worker_exit()?;
                    Some(WorkerExit {
                        exit_code: exit.get_exit_code(),
                        signal: exit.get_signal(),
                        out_of_memory: exit.get_out_of_memory(),
                        stderr_tail: ctx.text(exit.get_stderr_tail(), "WorkerExit.stderrTail")?,
                    })
                } else {
                    None
                },
            })
        }
        Which::Dump(dump) => Outcome::Dump(ctx.data(dump)?),
        Which::Continuation(mode) => Outcome::Continuation(continuation_from_wire(
            mode.map_err(|e| unknown_enum("ContinuationMode", e))?,
        )),
        Which::FunctionNames(names) => {
            let names = names?;
            let mut out = ctx.vec(names.len())?;
            for name in names.iter() {
                out.push(ctx.text(name, "Response.functionNames")?);
            }
            Outcome::FunctionNames(out)
        }
        Which::TypeCheckReport(report) => Outcome::TypeCheckReport(read_report(report?, ctx)?),
    })
}

/// Reads call arguments, checking every root against the arena.
fn read_arguments(r: wire::arguments::Reader<'_>, ctx: &mut DecodeContext) -> Result<CallArgs, DecodeError> {
    use unstable::NodeId;

    let graph = read_graph(r.get_nodes()?, ctx)?;
    // `read_graph` bounds the arena by a u32 limit.
    let len = u32::try_from(graph.len()).unwrap_or(u32::MAX);
    let root = |root: u32| {
        if root < len {
            Ok(NodeId(root))
        } else {
            Err(DecodeError::RootOutOfRange { root, len })
        }
    };
    let wire_positional = r.get_positional()?;
    let mut positional = ctx.vec(wire_positional.len())?;
    for id in wire_positional.iter() {
        positional.push(root(id)?);
    }
    let wire_keyword = r.get_keyword()?;
    let mut keyword = ctx.vec(wire_keyword.len())?;
    for pair in wire_keyword.iter() {
        keyword.push((root(pair.get_key())?, root(pair.get_value())?));
    }
    unstable::call_args_from_parts(graph, positional, keyword).map_err(graph_error)
}

fn read_usage(r: wire::usage::Reader<'_>) -> Result<Usage, DecodeError> {
    use wire::usage::memory;

    Ok(Usage {
        elapsed: Duration::from_nanos(r.get_elapsed_nanos()),
        feed_elapsed: Duration::from_nanos(r.get_feed_elapsed_nanos()),
        turn_elapsed: Duration::from_nanos(r.get_turn_elapsed_nanos()),
        wall: Duration::from_nanos(r.get_wall_nanos()),
        suspensions: r.get_suspensions(),
        memory_bytes: match r.get_memory().which().map_err(|e| unknown_arm("Usage.memory", e))? {
            memory::Which::Unmeasured(()) => None,
            memory::Which::Bytes(bytes) => Some(bytes),
        },
    })
}
