//! The protocol's messages as Rust values: what a `Request` and a `Response`
//! of `schema/monty_wire.capnp` carry, in monty's own types.
//!
//! The session engine consumes [`Request`]s and produces [`Response`]s;
//! [`crate::codec::request`] and [`crate::codec::response`] turn both into
//! bytes and back, so Rust hosts, tests and the CLI speak exactly the wire
//! format other languages read.

use std::time::Duration;

use monty::ReplContinuationMode;
use monty_types::{
    CallArgs, CompileOptions, ModuleStub, MontyException, MontyObject, MontyUuid, OsFunctionCall, OsPolicy,
    PrintStream, ResourceLimits, SourceRange, TypeCheckingFormat,
};

pub use crate::error::{ErrorCode, ProtocolError, WorkerExit};

/// One request to a session.
#[derive(Debug, Clone)]
pub enum Request {
    /// Compile a program into an empty session.
    OpenRun(Box<OpenRun>),
    /// Run the program to completion with these inputs; no host calls.
    Run(Vec<MontyObject>),
    /// Start the program with these inputs, suspending when it needs the host.
    Start(Vec<MontyObject>),
    /// Answer the pending function call.
    ResumeCall(CallResult),
    /// Answer the pending OS call.
    ResumeOsCall(CallResult),
    /// Answer the pending name lookup.
    ResumeNameLookup(NameLookupResult),
    /// Results for some or all pending futures, by call id.
    ResolveFutures(Vec<(u32, CallResult)>),
    /// Raise this exception, uncatchably, where the run is suspended.
    Abort(MontyException),
    /// Limits of the next run (ready), or fresh time budgets (suspended).
    SetLimits(ResourceLimits),
    /// The compiled program as dump bytes.
    DumpProgram,
    /// A program from dump bytes, with the host's limits.
    LoadProgram {
        /// The bytes of an earlier [`Outcome::Dump`].
        dump: Vec<u8>,
        /// Limits for runs of the loaded program.
        limits: ResourceLimits,
    },
    /// Open a REPL in an empty session.
    OpenRepl(Box<OpenRepl>),
    /// Run a snippet to completion; no host calls.
    FeedRun(Feed),
    /// Run a snippet, suspending when it needs the host.
    FeedStart(Feed),
    /// Whether this source is complete or continues on another line.
    DetectContinuation(String),
    /// The functions the REPL defines.
    ListFunctions,
    /// Call a function the REPL defines, with positional arguments.
    CallFunction {
        /// The function's name.
        name: String,
        /// Its positional arguments.
        args: Vec<MontyObject>,
    },
    /// Dump the REPL (idle or suspended) or the suspended run.
    DumpSession,
    /// Restore what an earlier [`Request::DumpSession`] saved.
    LoadSession {
        /// The bytes of an earlier [`Outcome::Dump`].
        dump: Vec<u8>,
        /// The host's limits.
        limits: ResourceLimits,
        /// The host's mounts and environment: a dump grants no access by itself.
        access: HostAccess,
    },
    /// Type-check code without running it.
    TypeCheck(Box<TypeCheck>),
    /// Seal dumps with HMAC-SHA256 under this key, and accept only dumps
    /// sealed with it; an empty key turns sealing off.
    SetDumpKey(Vec<u8>),
    /// How live print output reaches the session's print sink, from the
    /// next request on; the session keeps it for its life.
    SetPrintDelivery(PrintDelivery),
}

/// How often a session hands print output to its live print sink (see
/// [`crate::session::PrintSink`]). It changes how many calls the sink gets
/// and how much text each carries, never the text, its order or its stream,
/// nor a response's `output`.
///
/// Output is gathered per stream: a write to the other stream first
/// delivers what was gathered for the first, and everything gathered is
/// delivered before the request's response is made. There is no timer: the
/// clock is read only when `print()` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrintDelivery {
    /// Each fragment `print()` writes (an argument, a separator, the end),
    /// at once.
    #[default]
    EveryFragment,
    /// At each newline written, everything gathered up to the last newline,
    /// in one call.
    Lines,
    /// Everything gathered, in one call, at the first write when the oldest
    /// of it is this old; zero is [`PrintDelivery::EveryFragment`].
    Interval(Duration),
}

/// Everything needed to open a REPL session.
#[derive(Debug, Clone)]
pub struct OpenRepl {
    /// The script name tracebacks show.
    pub script_name: String,
    /// Compiler options for every snippet.
    pub compile_options: CompileOptions,
    /// Resource limits of every feed and call.
    pub limits: ResourceLimits,
    /// Clocks, sleeps and random numbers.
    pub os_policy: OsPolicy,
    /// The virtual working directory.
    pub cwd: String,
    /// Type-check each snippet before running it.
    pub type_check: Option<TypeCheckOptions>,
    /// Mounts and environment of every feed.
    pub access: HostAccess,
}

impl Default for OpenRepl {
    fn default() -> Self {
        Self {
            script_name: "repl.py".to_owned(),
            compile_options: CompileOptions::default(),
            limits: ResourceLimits::default(),
            os_policy: OsPolicy::default(),
            cwd: "/".to_owned(),
            type_check: None,
            access: HostAccess::default(),
        }
    }
}

/// One REPL snippet.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    /// The Python source.
    pub code: String,
    /// Globals to set before it runs.
    pub inputs: Vec<(String, MontyObject)>,
    /// Run it unchecked even in a session that type-checks.
    pub skip_type_check: bool,
    /// Mounts for this snippet only, on top of the session's.
    pub mounts: Vec<Mount>,
}

impl Feed {
    /// A snippet with no inputs.
    pub fn new(code: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            ..Self::default()
        }
    }
}

/// How to type-check.
#[derive(Debug, Clone)]
pub struct TypeCheckOptions {
    /// Declarations star-imported into the code (host function signatures, ...).
    pub stubs: String,
    /// Host modules, importable by name.
    pub module_stubs: Vec<ModuleStub>,
    /// How the report's `rendered` text is written.
    pub format: TypeCheckingFormat,
    /// ANSI colors in the rendered text.
    pub color: bool,
}

impl Default for TypeCheckOptions {
    fn default() -> Self {
        Self {
            stubs: String::new(),
            module_stubs: Vec::new(),
            format: TypeCheckingFormat::Full,
            color: false,
        }
    }
}

/// A stateless type check.
#[derive(Debug, Clone)]
pub struct TypeCheck {
    /// The code to check.
    pub code: String,
    /// Code that precedes it (checked, not reported on).
    pub prefix_code: String,
    /// The file name diagnostics show.
    pub script_name: String,
    /// How to check and render.
    pub options: TypeCheckOptions,
}

/// Everything needed to compile a program into a run session.
#[derive(Debug, Clone)]
pub struct OpenRun {
    /// The Python source.
    pub code: String,
    /// The script name tracebacks show.
    pub script_name: String,
    /// Globals the inputs of `run` / `start` fill, in order.
    pub input_names: Vec<String>,
    /// Compiler options.
    pub compile_options: CompileOptions,
    /// Resource limits of every run.
    pub limits: ResourceLimits,
    /// Clocks, sleeps and random numbers.
    pub os_policy: OsPolicy,
    /// The virtual working directory.
    pub cwd: String,
    /// Mounts and environment of every run.
    pub access: HostAccess,
}

impl OpenRun {
    /// A program with the schema's defaults for everything but its source.
    pub fn new(code: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            script_name: "main.py".to_owned(),
            input_names: Vec::new(),
            compile_options: CompileOptions::default(),
            limits: ResourceLimits::default(),
            os_policy: OsPolicy::default(),
            cwd: "/".to_owned(),
            access: HostAccess::default(),
        }
    }
}

/// What a session may reach of the host without asking it: mounted
/// directories and environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAccess {
    /// Host directories served inside the library.
    pub mounts: Vec<Mount>,
    /// What `os.environ` and `os.getenv` read.
    pub environment: Environment,
}

/// A host directory the sandbox sees at a virtual path (`Mount` in the schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute virtual path, e.g. `/data`.
    pub virtual_path: String,
    /// The host directory.
    pub host_path: String,
    /// What the sandbox may do there.
    pub mode: MountMode,
    /// Budget for overlay data and results; `None` is monty-fs's default.
    pub memory_limit: Option<u64>,
}

/// What the sandbox may do in a mounted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountMode {
    /// Reads; writes raise `PermissionError`.
    ReadOnly,
    /// Reads and writes reach the host directory.
    ReadWrite,
    /// Reads fall through to the host directory; writes stay in memory.
    Overlay,
}

/// What `os.environ` and `os.getenv` read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Environment {
    /// Each read is an OS call to the host.
    #[default]
    CallHost,
    /// Answered inside the library from these variables (name, value), no others.
    Map(Vec<(String, String)>),
}

/// The host's answer to a function call or an OS call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    /// The call returns this value.
    Value(MontyObject),
    /// The call raises this exception.
    Exception(MontyException),
    /// The call becomes a future, resolved later.
    Future,
    /// The host has no such function (or module).
    NotFound,
    /// OS calls only: monty's default behaviour for an unhandled call.
    NotHandled,
    /// The awaited future, settled at once (only when eager await is allowed).
    EagerValue(MontyObject),
    /// The awaited future, failed at once (only when eager await is allowed).
    EagerException(MontyException),
}

/// The host's answer to a name lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum NameLookupResult {
    /// The name has this value.
    Value(MontyObject),
    /// The name is not defined.
    Undefined,
    /// Looking the name up raises this.
    Exception(MontyException),
}

/// The one reply to a request.
#[derive(Debug, Clone)]
pub struct Response {
    /// What happened.
    pub outcome: Outcome,
    /// What `print()` wrote during the request, in order.
    pub output: Vec<PrintSegment>,
    /// Resources used.
    pub usage: Usage,
}

/// The kind of a response and its payload.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done, with nothing to return.
    Ok,
    /// The run finished with this value.
    Complete(MontyObject),
    /// Suspended at an external function call.
    FunctionCall(FunctionCallEvent),
    /// Suspended at an OS call.
    OsCall(OsCallEvent),
    /// Suspended at a name lookup.
    NameLookup(NameLookupEvent),
    /// Suspended until the host resolves futures.
    ResolveFutures(ResolveFuturesEvent),
    /// The run raised this exception.
    PythonError(MontyException),
    /// The request was refused; the session is unchanged.
    ProtocolError(ProtocolError),
    /// Dump bytes: a framed `Dump` message.
    Dump(Vec<u8>),
    /// Whether source is complete.
    Continuation(ReplContinuationMode),
    /// The functions a REPL defines.
    FunctionNames(Vec<String>),
    /// Type-check diagnostics (none: clean). For a feed, the snippet did not run.
    TypeCheckReport(TypeCheckReport),
}

/// Type-check diagnostics, structured and rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeCheckReport {
    /// One entry per diagnostic; empty when the code checked clean.
    pub diagnostics: Vec<Diagnostic>,
    /// The diagnostics in the requested format; empty when clean.
    pub rendered: String,
}

/// One type-check diagnostic. Lines and columns are 1-based; 0 means the
/// diagnostic has no location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The rule, e.g. `invalid-argument-type`.
    pub code: String,
    /// How serious it is.
    pub severity: Severity,
    /// What it says.
    pub message: String,
    /// The file it is in.
    pub file: String,
    /// First line.
    pub start_line: u32,
    /// First column.
    pub start_column: u32,
    /// Last line.
    pub end_line: u32,
    /// Column after the end.
    pub end_column: u32,
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// For information.
    Info,
    /// A warning.
    Warning,
    /// An error.
    Error,
    /// The checker could not go on.
    Fatal,
}

/// A suspension at an external function call.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCallEvent {
    /// The function's name.
    pub name: String,
    /// Positional and keyword arguments.
    pub args: CallArgs,
    /// The id that names this call in futures.
    pub call_id: u32,
    /// The host object whose method this is, if any.
    pub object_id: Option<MontyUuid>,
    /// Whether the call is awaited at once (eager answers allowed).
    pub allow_eager_await: bool,
    /// Where in the source the call is.
    pub position: SourceRange,
}

/// A suspension at an OS call.
#[derive(Debug, Clone)]
pub struct OsCallEvent {
    /// The operation and its arguments.
    pub call: OsFunctionCall,
    /// The id that names this call in futures.
    pub call_id: u32,
    /// Whether the call is awaited at once.
    pub allow_eager_await: bool,
    /// Where in the source the call is.
    pub position: SourceRange,
}

/// A suspension at an undefined name or a lazy host attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct NameLookupEvent {
    /// The name.
    pub name: String,
    /// The host object whose attribute this is, if any.
    pub object_id: Option<MontyUuid>,
    /// Where in the source the name is.
    pub position: SourceRange,
}

/// A suspension until the host resolves futures.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolveFuturesEvent {
    /// The call ids still pending.
    pub pending_call_ids: Vec<u32>,
    /// The await the main task is blocked on.
    pub position: SourceRange,
}

/// One piece of print output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintSegment {
    /// Which stream it went to.
    pub stream: PrintStream,
    /// The text.
    pub text: String,
}

/// What a request consumed (`Usage` in the schema).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Interpreter time over the whole session.
    pub elapsed: Duration,
    /// Interpreter time of the current run, summed over its turns.
    pub feed_elapsed: Duration,
    /// Interpreter time of this request.
    pub turn_elapsed: Duration,
    /// Wall-clock time of this request: from before decoding it to the end
    /// of its last interpreter call (or of its handling, if it makes none);
    /// encoding the response is not included.
    pub wall: Duration,
    /// Host round trips so far in the current run.
    pub suspensions: u64,
    /// Live heap bytes, where the build can count them.
    pub memory_bytes: Option<u64>,
}
