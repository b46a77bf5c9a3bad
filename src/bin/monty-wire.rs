//! `monty-wire`: run Python scripts and an interactive REPL through the
//! protocol, type-check files, and read protocol messages as text.
//!
//! Every command drives the library the way a foreign host does: it opens a
//! session through the C entry points, builds request messages, and reads
//! every response in place from the buffer `monty_wire_dispatch` returns.

use std::{
    ffi::c_void,
    io::{BufRead, Write},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use clap::{Parser, Subcommand, ValueEnum};
use monty::ReplContinuationMode;
use monty_types::{MontyObject, OsFunctionCall, ResourceLimits, TypeCheckingFormat};
use monty_wire::{
    DecodeLimits,
    codec::{decode_response, encode_request, read_message},
    ffi::{
        MontyWireSession, monty_wire_buffer_free, monty_wire_dispatch, monty_wire_session_close,
        monty_wire_session_open, monty_wire_session_open_isolated, monty_wire_set_print_callback,
    },
    protocol::{
        CallResult, Environment, ErrorCode, Feed, HostAccess, Mount, MountMode, NameLookupResult, OpenRepl, OpenRun,
        Outcome, Request, Response, TypeCheck, TypeCheckOptions,
    },
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
    /// An interactive Python session; Ctrl-D leaves.
    Repl(ReplArgs),
    /// Type-check a Python file; exit 1 if it has diagnostics.
    Check {
        /// The file.
        file: PathBuf,
        /// How to print the diagnostics.
        #[arg(long, value_enum, default_value = "full")]
        format: CheckFormat,
    },
    /// Serve one isolated session over standard input: the worker process a
    /// library starts for `monty_wire_session_open_isolated` (and `run`
    /// here). Not for people.
    #[command(hide = true)]
    Worker,
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
    /// Raise MemoryError once the script holds more than this many heap bytes.
    #[arg(long, value_name = "BYTES")]
    memory_limit: Option<usize>,
    /// Raise RecursionError past this call depth.
    #[arg(long, value_name = "DEPTH", default_value_t = monty_types::DEFAULT_MAX_RECURSION_DEPTH)]
    recursion_limit: usize,
    /// Save every request and response message into this directory
    /// (`000-request.bin`, `000-response.bin`, ...), for `monty-wire decode`.
    #[arg(long, value_name = "DIR")]
    trace: Option<PathBuf>,
    #[command(flatten)]
    isolation: RunIsolation,
    #[command(flatten)]
    access: AccessArgs,
}

/// Where a script runs. A script from a file is untrusted code, so by
/// default it runs in a worker process of its own.
#[derive(clap::Args)]
struct RunIsolation {
    /// Run the script in a worker process (the default): nothing it does can
    /// crash this command, `--memory-limit` bounds its whole heap, and
    /// `--time-limit` is enforced even on one long operation.
    #[arg(long, overrides_with = "in_process")]
    isolated: bool,
    /// Run the script in this process instead.
    #[arg(long, overrides_with = "isolated")]
    in_process: bool,
}

/// What the sandbox may reach of this machine.
#[derive(clap::Args)]
struct AccessArgs {
    /// Show a host directory to the script at VIRTUAL (repeatable): `ro`
    /// (the default) reads only, `rw` writes to it, `overlay` keeps writes in
    /// memory.
    #[arg(long = "mount", value_name = "VIRTUAL=DIR[:ro|rw|overlay]", value_parser = parse_mount)]
    mounts: Vec<Mount>,
    /// An environment variable for os.environ / os.getenv (repeatable); with
    /// none, the script sees an empty environment.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
}

impl AccessArgs {
    fn access(&self) -> HostAccess {
        HostAccess {
            mounts: self.mounts.clone(),
            environment: Environment::Map(self.env.clone()),
        }
    }
}

fn parse_mount(arg: &str) -> Result<Mount, String> {
    let (virtual_path, host) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not VIRTUAL=DIR[:ro|rw|overlay]"))?;
    let (host_path, mode) = match host.rsplit_once(':') {
        Some((dir, "ro")) => (dir, MountMode::ReadOnly),
        Some((dir, "rw")) => (dir, MountMode::ReadWrite),
        Some((dir, "overlay")) => (dir, MountMode::Overlay),
        _ => (host, MountMode::ReadOnly),
    };
    Ok(Mount {
        virtual_path: virtual_path.to_owned(),
        host_path: host_path.to_owned(),
        mode,
        memory_limit: None,
    })
}

fn parse_env(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{arg:?} is not NAME=VALUE"))
}

#[derive(clap::Args)]
struct ReplArgs {
    /// Stop any one snippet after this many seconds of execution.
    #[arg(long, value_name = "SECONDS")]
    time_limit: Option<f64>,
    /// Type-check each snippet before running it.
    #[arg(long)]
    type_check: bool,
    /// Run the snippets in a worker process: nothing they do can crash this
    /// command (a crash ends the session, and the prompt starts a new one).
    #[arg(long)]
    isolated: bool,
    #[command(flatten)]
    access: AccessArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    Full,
    Concise,
    Azure,
    Json,
    JsonLines,
    Rdjson,
    Pylint,
    Gitlab,
    Github,
}

impl From<CheckFormat> for TypeCheckingFormat {
    fn from(format: CheckFormat) -> Self {
        match format {
            CheckFormat::Full => Self::Full,
            CheckFormat::Concise => Self::Concise,
            CheckFormat::Azure => Self::Azure,
            CheckFormat::Json => Self::Json,
            CheckFormat::JsonLines => Self::JsonLines,
            CheckFormat::Rdjson => Self::Rdjson,
            CheckFormat::Pylint => Self::Pylint,
            CheckFormat::Gitlab => Self::Gitlab,
            CheckFormat::Github => Self::Github,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum RootType {
    Request,
    Response,
    Value,
    PythonException,
    Dump,
}

/// The command line is a process of its own, so unlike the library it may
/// choose the allocator: monty's counts live heap bytes, which is what its
/// memory limit (`--memory-limit`) and the `memory` figure of usage read.
#[global_allocator]
static ALLOCATOR: monty_alloc::LimitedAllocator = monty_alloc::LimitedAllocator;

/// monty recurses on the native stack for deep Python recursion and deep
/// values; the CLI gives it room rather than relying on the main thread's.
const INTERPRETER_STACK_BYTES: usize = 256 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Memory is counted from here on: the baseline is what the process holds
    // now, and no hard ceiling is armed (`--memory-limit` is monty's own,
    // which raises MemoryError in the sandbox instead of ending the process).
    if let Err(err) = monty_alloc::set_hard_limit(None) {
        return fail(err);
    }
    let work: Box<dyn FnOnce() -> ExitCode + Send> = match cli.command {
        Command::Decode { file, root } => return decode(&file, root),
        Command::Worker => {
            return match monty_wire::worker::serve(monty_alloc::set_hard_limit) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => fail(format_args!("worker: {err}")),
            };
        }
        Command::Check { file, format } => Box::new(move || check(&file, format.into())),
        Command::Run(args) => Box::new(move || run(&args)),
        Command::Repl(args) => Box::new(move || repl(&args)),
    };
    std::thread::Builder::new()
        .name("monty".into())
        .stack_size(INTERPRETER_STACK_BYTES)
        .spawn(work)
        .expect("spawn the interpreter thread")
        .join()
        .unwrap_or(ExitCode::from(3))
}

fn seconds(option: &str, seconds: Option<f64>) -> Result<Option<Duration>, String> {
    seconds
        .map(|s| Duration::try_from_secs_f64(s).map_err(|e| format!("{option} {s}: {e}")))
        .transpose()
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
        RootType::Request => as_text::<wire::request::Owned>(&message, "Request"),
        RootType::Response => as_text::<wire::response::Owned>(&message, "Response"),
        RootType::Value => as_text::<wire::value::Owned>(&message, "Value"),
        RootType::PythonException => as_text::<wire::python_exception::Owned>(&message, "PythonException"),
        RootType::Dump => as_text::<wire::dump::Owned>(&message, "Dump"),
    };
    match text {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

/// The message, read with root `T` (the schema's `name`), as Cap'n Proto text.
fn as_text<T>(
    message: &capnp::message::Reader<impl capnp::message::ReaderSegments>,
    name: &str,
) -> Result<String, String>
where
    T: capnp::traits::Owned,
    for<'a> T::Reader<'a>: std::fmt::Debug + capnp::traits::FromPointerReader<'a>,
{
    use std::fmt::Write;
    let root = message.get_root::<T::Reader<'_>>().map_err(|e| e.to_string())?;
    // The readers' `Debug` writes the text format, and reports bytes that do
    // not fit the root as a formatting error, which `write!` returns (where
    // `format!` would panic).
    let mut text = String::new();
    write!(text, "{root:?}").map_err(|_| format!("the message is not a {name}"))?;
    Ok(text)
}

/// A session opened through the C entry points.
struct FfiSession {
    handle: MontyWireSession,
    /// Where to save each message, and how many turns so far.
    trace: Option<(PathBuf, usize)>,
}

impl FfiSession {
    /// A session in this process, or in a worker process (this executable's
    /// `worker` subcommand).
    fn open(trace: Option<PathBuf>, isolated: bool) -> Result<Self, String> {
        let handle = if isolated {
            let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable for a worker: {e}"))?;
            let exe = std::ffi::CString::new(exe.into_os_string().into_encoded_bytes())
                .map_err(|_| "this executable's path holds a NUL byte".to_owned())?;
            // SAFETY: `exe` is a NUL-terminated string that outlives the call.
            unsafe { monty_wire_session_open_isolated(exe.as_ptr()) }
        } else {
            monty_wire_session_open()
        };
        Ok(Self {
            handle,
            trace: trace.map(|dir| (dir, 0)),
        })
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

impl FfiSession {
    /// Shows print output as the code writes it.
    fn print_live(&self) {
        // SAFETY: `print_live` has the callback signature and ignores user data.
        unsafe { monty_wire_set_print_callback(self.handle, Some(print_live), std::ptr::null_mut()) };
    }

    /// Sends `request` and answers every suspension the way the command line
    /// can, returning the first response that is not a suspension.
    fn drive(&mut self, mut request: Request) -> Result<Outcome, String> {
        loop {
            request = match self.send(&request)?.outcome {
                // The command line has no host functions, names or modules to offer.
                Outcome::FunctionCall(_) => Request::ResumeCall(CallResult::NotFound),
                Outcome::NameLookup(_) => Request::ResumeNameLookup(NameLookupResult::Undefined),
                Outcome::OsCall(call) => Request::ResumeOsCall(answer_os_call(&call.call, call.allow_eager_await)),
                other => return Ok(other),
            };
        }
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
    match seconds("--time-limit", args.time_limit) {
        Ok(limit) => limits.max_feed_duration = limit,
        Err(err) => return fail(err),
    }

    let mut session = match FfiSession::open(args.trace.clone(), !args.isolation.in_process) {
        Ok(session) => session,
        Err(err) => return fail(err),
    };
    session.print_live();
    let mut open = OpenRun::new(code);
    open.script_name = args.script.display().to_string();
    open.input_names = names;
    open.limits = limits;
    open.access = args.access.access();
    match session.drive(Request::OpenRun(Box::new(open))) {
        Ok(Outcome::Ok) => {}
        Ok(outcome) => return report(outcome),
        Err(err) => return fail(err),
    }
    match session.drive(Request::Start(values)) {
        Ok(outcome) => report(outcome),
        Err(err) => fail(err),
    }
}

/// Prints the end of a run: its value, or its traceback.
fn report(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Complete(value) => {
            println!("{}", value.py_repr());
            ExitCode::SUCCESS
        }
        Outcome::PythonError(exc) => {
            eprintln!("{exc}");
            ExitCode::FAILURE
        }
        Outcome::TypeCheckReport(report) => {
            eprint!("{}", report.rendered);
            ExitCode::FAILURE
        }
        Outcome::ProtocolError(error) => fail(error),
        other => fail(format_args!("unexpected response {other:?}")),
    }
}

fn repl(args: &ReplArgs) -> ExitCode {
    let limits = match seconds("--time-limit", args.time_limit) {
        Ok(limit) => ResourceLimits {
            max_feed_duration: limit,
            ..ResourceLimits::default()
        },
        Err(err) => return fail(err),
    };
    let mut session = match FfiSession::open(None, args.isolated) {
        Ok(session) => session,
        Err(err) => return fail(err),
    };
    session.print_live();
    let open = OpenRepl {
        script_name: "<stdin>".into(),
        limits,
        type_check: args.type_check.then(TypeCheckOptions::default),
        access: args.access.access(),
        ..OpenRepl::default()
    };
    match session.drive(Request::OpenRepl(Box::new(open.clone()))) {
        Ok(Outcome::Ok) => {}
        Ok(outcome) => return report(outcome),
        Err(err) => return fail(err),
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut source = String::new();
    // monty answers `incompleteBlock` only for a header with no body yet;
    // once a block has begun, it ends at a blank line, as in CPython.
    let mut in_block = false;
    loop {
        print!("{}", if source.is_empty() { ">>> " } else { "... " });
        let _ = std::io::stdout().flush();
        let Some(Ok(line)) = lines.next() else {
            // Ctrl-D (end of input) leaves, as in CPython.
            println!();
            return ExitCode::SUCCESS;
        };
        let blank = line.trim().is_empty();
        if source.is_empty() && blank {
            continue;
        }
        source.push_str(&line);
        source.push('\n');
        let mode = match session.drive(Request::DetectContinuation(source.clone())) {
            Ok(Outcome::Continuation(mode)) => mode,
            Ok(other) => return fail(format_args!("unexpected response {other:?}")),
            Err(err) => return fail(err),
        };
        // Brackets and strings end when closed; a block ends at a blank line.
        in_block |= mode == ReplContinuationMode::IncompleteBlock;
        let complete = match mode {
            ReplContinuationMode::IncompleteImplicit => false,
            _ if in_block => blank,
            ReplContinuationMode::Complete => true,
            ReplContinuationMode::IncompleteBlock => blank,
        };
        if !complete {
            continue;
        }
        in_block = false;
        let snippet = std::mem::take(&mut source);
        match session.drive(Request::FeedStart(Feed::new(snippet))) {
            Ok(Outcome::Complete(value)) if value != MontyObject::none() => println!("{}", value.py_repr()),
            Ok(Outcome::Complete(_)) => {}
            // An error is the snippet's; the session and its globals live on.
            Ok(Outcome::PythonError(exc)) => eprintln!("{exc}"),
            Ok(Outcome::TypeCheckReport(report)) => eprint!("{}", report.rendered),
            // The worker of an isolated session ended: its globals are gone,
            // and a fresh session takes the next snippet.
            Ok(Outcome::ProtocolError(error))
                if matches!(
                    error.code,
                    ErrorCode::WorkerCrashed | ErrorCode::DeadlineExceeded | ErrorCode::Cancelled
                ) =>
            {
                eprintln!("monty-wire: {}", error.message);
                if let Err(err) = session.drive(Request::OpenRepl(Box::new(open.clone()))) {
                    return fail(err);
                }
                eprintln!("monty-wire: a new session has started");
            }
            Ok(other) => eprintln!("monty-wire: unexpected response {other:?}"),
            Err(err) => eprintln!("monty-wire: {err}"),
        }
    }
}

fn check(file: &PathBuf, format: TypeCheckingFormat) -> ExitCode {
    let code = match std::fs::read_to_string(file) {
        Ok(code) => code,
        Err(err) => return fail(format_args!("cannot read {}: {err}", file.display())),
    };
    // Checking runs no sandboxed code: in process.
    let mut session = match FfiSession::open(None, false) {
        Ok(session) => session,
        Err(err) => return fail(err),
    };
    let request = TypeCheck {
        code,
        prefix_code: String::new(),
        script_name: file.display().to_string(),
        options: TypeCheckOptions {
            format,
            ..TypeCheckOptions::default()
        },
    };
    match session.drive(Request::TypeCheck(Box::new(request))) {
        Ok(Outcome::TypeCheckReport(report)) if report.diagnostics.is_empty() => ExitCode::SUCCESS,
        Ok(Outcome::TypeCheckReport(report)) => {
            print!("{}", report.rendered);
            ExitCode::FAILURE
        }
        Ok(other) => report(other),
        Err(err) => fail(err),
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
