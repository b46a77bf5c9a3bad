//! `monty-wire`: run Python scripts through the protocol, and read protocol
//! messages as text.
//!
//! `run` drives the library the way a foreign host does: it opens a session
//! through the C entry points, builds request messages, and reads every
//! response in place from the buffer `monty_wire_dispatch` returns.

use std::{ffi::c_void, io::Write, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use monty_types::{MontyObject, OsFunctionCall, ResourceLimits};
use monty_wire::{
    DecodeLimits,
    codec::{decode_response, encode_request, read_message},
    ffi::{
        MontyWireSession, monty_wire_buffer_free, monty_wire_dispatch, monty_wire_session_close,
        monty_wire_session_open, monty_wire_set_print_callback,
    },
    protocol::{CallResult, NameLookupResult, OpenRun, Outcome, Request, Response},
    schema::monty_wire_capnp as wire,
};
use num_bigint::BigInt;

#[derive(Parser)]
#[command(version, about = "Run Python in the monty sandbox through the monty-wire protocol")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Python script; print its result, or its traceback and exit 1.
    Run(RunArgs),
    /// Print a protocol message file as Cap'n Proto text.
    Decode {
        /// The message file.
        file: PathBuf,
        /// The schema struct at the message's root.
        #[arg(long = "as", value_enum, default_value = "response")]
        root: RootType,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The script.
    script: PathBuf,
    /// A global for the script, as NAME=JSON (repeatable): null, booleans,
    /// integers, floats, strings, arrays (lists) and objects (dicts).
    #[arg(long = "input", value_name = "NAME=JSON")]
    inputs: Vec<String>,
    /// Stop the script after this many seconds of execution.
    #[arg(long, value_name = "SECONDS")]
    time_limit: Option<f64>,
    /// Refuse heap growth past this many bytes (where the build counts heap bytes).
    #[arg(long, value_name = "BYTES")]
    memory_limit: Option<usize>,
    /// Raise RecursionError past this call depth.
    #[arg(long, value_name = "DEPTH", default_value_t = monty_types::DEFAULT_MAX_RECURSION_DEPTH)]
    recursion_limit: usize,
    /// Save every request and response message into this directory
    /// (`000-request.bin`, `000-response.bin`, ...), for `monty-wire decode`.
    #[arg(long, value_name = "DIR")]
    trace: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum RootType {
    Request,
    Response,
    Value,
    PythonException,
    Dump,
}

/// monty recurses on the native stack for deep Python recursion and deep
/// values; the CLI gives it room rather than relying on the main thread's.
const INTERPRETER_STACK_BYTES: usize = 256 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { file, root } => decode(&file, root),
        Command::Run(args) => std::thread::Builder::new()
            .name("monty".into())
            .stack_size(INTERPRETER_STACK_BYTES)
            .spawn(move || run(&args))
            .expect("spawn the interpreter thread")
            .join()
            .unwrap_or(ExitCode::from(3)),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("monty-wire: {message}");
    ExitCode::from(2)
}

fn decode(file: &PathBuf, root: RootType) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(err) => return fail(format_args!("cannot read {}: {err}", file.display())),
    };
    let message = match read_message(&bytes, &DecodeLimits::default()) {
        Ok(message) => message,
        Err(err) => return fail(err),
    };
    let text = match root {
        RootType::Request => message
            .get_root::<wire::request::Reader<'_>>()
            .map(|r| format!("{r:?}")),
        RootType::Response => message
            .get_root::<wire::response::Reader<'_>>()
            .map(|r| format!("{r:?}")),
        RootType::Value => message.get_root::<wire::value::Reader<'_>>().map(|r| format!("{r:?}")),
        RootType::PythonException => message
            .get_root::<wire::python_exception::Reader<'_>>()
            .map(|r| format!("{r:?}")),
        RootType::Dump => message.get_root::<wire::dump::Reader<'_>>().map(|r| format!("{r:?}")),
    };
    match text {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

/// A session opened through the C entry points.
struct FfiSession {
    handle: MontyWireSession,
    /// Where to save each message, and how many turns so far.
    trace: Option<(PathBuf, usize)>,
}

impl FfiSession {
    fn open(trace: Option<PathBuf>) -> Self {
        Self {
            handle: monty_wire_session_open(),
            trace: trace.map(|dir| (dir, 0)),
        }
    }

    fn save(&mut self, kind: &str, bytes: &[u8]) -> Result<(), String> {
        let Some((dir, turn)) = &self.trace else {
            return Ok(());
        };
        let path = dir.join(format!("{turn:03}-{kind}.bin"));
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, bytes))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Sends a request and decodes the response straight from the
    /// library's buffer, which is freed right after.
    fn send(&mut self, request: &Request) -> Result<Response, String> {
        let bytes = encode_request(request).map_err(|e| e.to_string())?;
        let bytes = bytes.as_bytes();
        self.save("request", bytes)?;
        // SAFETY: `bytes` is a live slice for the duration of the call.
        let buffer = unsafe { monty_wire_dispatch(self.handle, bytes.as_ptr(), bytes.len()) };
        // SAFETY: dispatch never returns null, and the buffer's `len` bytes
        // at `data` stay valid until `monty_wire_buffer_free` below.
        let response_bytes = unsafe {
            let header = &*buffer;
            std::slice::from_raw_parts(header.data, header.len)
        };
        let saved = self.save("response", response_bytes);
        if let Some((_, turn)) = &mut self.trace {
            *turn += 1;
        }
        let response = saved.and_then(|()| {
            decode_response(response_bytes, &DecodeLimits::default()).map_err(|e| format!("unreadable response: {e}"))
        });
        // SAFETY: returned by dispatch and freed once; `response` owns
        // copies and `response_bytes` is not used past this point.
        unsafe { monty_wire_buffer_free(buffer) };
        response
    }
}

impl Drop for FfiSession {
    fn drop(&mut self) {
        monty_wire_session_close(self.handle);
    }
}

/// Writes print output as the script produces it.
unsafe extern "C" fn print_live(_user_data: *mut c_void, stream: u32, text: *const u8, len: usize) {
    // SAFETY: the library passes `len` bytes of UTF-8 valid during this call.
    let text = unsafe { std::slice::from_raw_parts(text, len) };
    // A closed pipe is the reader's choice; nothing useful to do about it here.
    let _ = if stream == 1 {
        std::io::stderr().write_all(text)
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text).and_then(|()| out.flush())
    };
}

fn run(args: &RunArgs) -> ExitCode {
    let code = match std::fs::read_to_string(&args.script) {
        Ok(code) => code,
        Err(err) => return fail(format_args!("cannot read {}: {err}", args.script.display())),
    };
    let mut names = Vec::new();
    let mut values = Vec::new();
    for input in &args.inputs {
        let Some((name, json)) = input.split_once('=') else {
            return fail(format_args!("--input {input:?} is not NAME=JSON"));
        };
        match serde_json::from_str::<serde_json::Value>(json) {
            Ok(json) => {
                names.push(name.to_owned());
                values.push(json_to_python(json));
            }
            Err(err) => return fail(format_args!("--input {name}: invalid JSON: {err}")),
        }
    }
    let mut limits = ResourceLimits {
        max_recursion_depth: args.recursion_limit,
        max_memory: args.memory_limit,
        ..ResourceLimits::default()
    };
    if let Some(seconds) = args.time_limit {
        match Duration::try_from_secs_f64(seconds) {
            Ok(limit) => limits.max_feed_duration = Some(limit),
            Err(err) => return fail(format_args!("--time-limit {seconds}: {err}")),
        }
    }

    let mut session = FfiSession::open(args.trace.clone());
    // SAFETY: `print_live` has the callback signature and ignores user data.
    unsafe { monty_wire_set_print_callback(session.handle, Some(print_live), std::ptr::null_mut()) };
    let mut open = OpenRun::new(code);
    open.script_name = args.script.display().to_string();
    open.input_names = names;
    open.limits = limits;
    let mut request = Request::OpenRun(Box::new(open));
    let mut opened = false;
    loop {
        let response = match session.send(&request) {
            Ok(response) => response,
            Err(err) => return fail(err),
        };
        request = match response.outcome {
            Outcome::Ok if !opened => {
                opened = true;
                Request::Start(std::mem::take(&mut values))
            }
            Outcome::Complete(value) => {
                println!("{}", value.py_repr());
                return ExitCode::SUCCESS;
            }
            Outcome::PythonError(exc) => {
                eprintln!("{exc}");
                return ExitCode::FAILURE;
            }
            Outcome::ProtocolError(error) => return fail(error),
            // The command line has no host functions, names or modules to offer.
            Outcome::FunctionCall(_) => Request::ResumeCall(CallResult::NotFound),
            Outcome::NameLookup(_) => Request::ResumeNameLookup(NameLookupResult::Undefined),
            Outcome::OsCall(call) => Request::ResumeOsCall(answer_os_call(&call.call, call.allow_eager_await)),
            other => return fail(format_args!("unexpected response {other:?}")),
        };
    }
}

/// Sleeps are the only OS calls the command line serves: it waits as asked.
/// Everything else gets monty's default (the sandbox has no file system,
/// environment or host clock here).
fn answer_os_call(call: &OsFunctionCall, eager: bool) -> CallResult {
    match call {
        OsFunctionCall::SystemSleep(delay) | OsFunctionCall::AsyncSystemSleep(delay) => {
            std::thread::sleep(*delay);
            if eager {
                CallResult::EagerValue(MontyObject::none())
            } else {
                CallResult::Value(MontyObject::none())
            }
        }
        _ => CallResult::NotHandled,
    }
}

fn json_to_python(json: serde_json::Value) -> MontyObject {
    use serde_json::Value;
    match json {
        Value::Null => MontyObject::none(),
        Value::Bool(b) => MontyObject::bool(b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                MontyObject::int(i)
            } else if let Some(u) = n.as_u64() {
                MontyObject::bigint(BigInt::from(u))
            } else {
                MontyObject::float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => MontyObject::string(s),
        Value::Array(items) => MontyObject::list(items.into_iter().map(json_to_python)),
        Value::Object(map) => MontyObject::dict(
            map.into_iter()
                .map(|(k, v)| (MontyObject::string(k), json_to_python(v))),
        ),
    }
}
