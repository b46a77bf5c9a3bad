# monty-wire: the contract between a host language and the monty Python sandbox.
#
# Every byte that crosses the monty-wire boundary is a standard framed
# Cap'n Proto message (segment table + segments, unpacked) whose root is one of
# the structs below. A reader needs nothing but this file.
#
# Conventions used throughout
# ---------------------------
# * Optional values are explicit unions (`none` / `some`), never a null
#   pointer, so every Cap'n Proto implementation reads them the same way.
# * Durations are unsigned nanoseconds (UInt64); byte offsets and counts are
#   UInt64 unless a smaller bound is documented.
# * Values are node arenas (see `Value`): a node's children always have
#   smaller indices than the node itself, so a reader builds a value in one
#   forward pass without recursion, and an index used twice is the same object.
#
# Evolution rules (what keeps old readers and writers working)
# ------------------------------------------------------------
# 1. Ordinals are append-only: a new field, union arm or enumerant takes the
#    next free ordinal. Nothing is ever renumbered.
# 2. A field is never removed, reused or retyped. A field that stops being
#    meaningful is documented as obsolete and left in place.
# 3. A new union arm or enumerant is only added together with a bump of
#    `protocolVersion`; a reader that meets an arm it does not know reports
#    "unknown union arm" / "unknown enum value" rather than guessing.
# 4. Default values are never changed once published.
# 5. Bump `protocolVersion` for every published change that reaches the
#    wire, additive or not; hosts compare it with the version the native
#    library reports. A rename reaches no byte of a message: it keeps the
#    version, and CHANGELOG.md lists it, because it changes the text format
#    (`capnp decode`) and the names in generated code.
# 6. Names work with every mainstream generator: no member is named like a
#    builtin type of Dart, JavaScript or Rust, and every group has a name no
#    other group, struct or enum has (generators name a group's classes after
#    it alone).
#
# tests/python/test_schema_evolution.py holds the layout to every compiled
# schema in schema/released/; tests/python/test_schema_naming.py checks rule 6.

@0x97b0f60967996d75;

# The version of the protocol this file describes.
const protocolVersion :UInt32 = 3;
# History: 1 values, exceptions, limits and usage; 2 adds requests and
# responses (`Request`, `Response`) for one-shot runs and REPL sessions,
# type checking, and the `Dump` envelope; 3 adds `DateTime.fold`, and
# mounts and the environment map (`Mount`, `Environment`; the `mounts` and
# `environment` fields of `OpenRun`, `OpenRepl`, `Feed` and `LoadSession`;
# `Dump.mountState`), and batched live print output (`setPrintDelivery`,
# `PrintDelivery`).

# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

# A Python value, as a post-order arena of nodes plus the index of the root.
#
# This mirrors monty's `MontyGraph`: containers hold the indices of their
# children; every child index is strictly lower than its holder's index; a
# node referenced from several places is one shared object. A reference back
# to an enclosing container (a cycle) is a `cycle` leaf holding the placeholder
# its repr shows, exactly as monty reports it.
struct Value {
  nodes @0 :List(Node);
  # The arena, in post-order. Must not be empty.

  root @1 :UInt32;
  # Index into `nodes` of the value itself (usually the last node).
}

# One entry of a `Value` arena.
struct Node {
  union {
    ellipsis @0 :Void;            # Python `...`
    notImplemented @1 :Void;      # Python `NotImplemented`
    none @2 :Void;                # Python `None`
    boolValue @3 :Bool;
    intValue @4 :Int64;           # an int that fits in 64 bits
    bigInt @5 :BigInt;            # an int of any size (monty's BigInt node)
    float @6 :Float64;            # IEEE-754 bits kept exactly: NaN payloads, -0.0, infinities
    complex @7 :Complex;
    strValue @8 :Text;
    bytes @9 :Data;
    date @10 :Date;               # datetime.date
    dateTime @11 :DateTime;       # datetime.datetime
    time @12 :Time;               # datetime.time
    timeDelta @13 :TimeDelta;     # datetime.timedelta
    timeZone @14 :TimeZone;       # datetime.timezone
    decimal @15 :Text;            # decimal.Decimal as its canonical str(): "1.20", "-NaN12", "Infinity"
    exception @16 :ExceptionValue;  # an exception object used as a value
    type @17 :Text;
    # A builtin type object, by the name monty gives it: "int", "str",
    # "datetime.date", "collections.deque", "PosixPath", or an exception
    # class such as "ValueError" or "json.JSONDecodeError".
    builtinFunction @18 :Text;    # a builtin function by name: "len", "print", ...
    path @19 :Text;               # pathlib.Path, a virtual POSIX path
    fileHandle @20 :FileHandle;   # an open file object
    function @21 :Function;       # an external (host) function
    repr @22 :Text;
    # Output only: repr() of a value with no other form. Also what monty
    # exports in place of a part nested deeper than the session's recursion
    # limit (`maxRecursionDepth`): the text "<deeply nested>".
    cycle @23 :Text;              # output only: back-reference placeholder "[...]", "(...)", "{...}", "..."
    list @24 :List(UInt32);       # item indices
    tuple @25 :List(UInt32);      # item indices
    set @26 :List(UInt32);        # element indices
    frozenSet @27 :List(UInt32);  # element indices
    namedTuple @28 :NamedTuple;
    dict @29 :List(Pair);         # (key, value) index pairs in insertion order; keys may be any value
    classType @30 :ClassType;     # a class defined in the sandbox or by the host
    classInstance @31 :ClassInstance;
    module @32 :Module;           # a host-provided module
  }
}

# A (key, value) pair of node indices.
struct Pair {
  key @0 :UInt32;
  value @1 :UInt32;
}

# An arbitrary-precision integer.
#
# Canonical form, which readers enforce: `magnitude` is the absolute value in
# big-endian bytes with no leading zero byte; zero is an empty magnitude and
# `negative = false`.
struct BigInt {
  negative @0 :Bool;
  magnitude @1 :Data;
}

struct Complex {
  real @0 :Float64;
  imag @1 :Float64;
}

struct Date {
  year @0 :Int32;
  month @1 :UInt8;   # 1..=12
  day @2 :UInt8;     # 1..=31
}

struct DateTime {
  year @0 :Int32;
  month @1 :UInt8;
  day @2 :UInt8;
  hour @3 :UInt8;
  minute @4 :UInt8;
  second @5 :UInt8;
  microsecond @6 :UInt32;
  dateTimeOffset :union {
    naive @7 :Void;            # no tzinfo
    seconds @8 :Int32;         # UTC offset of an aware datetime, -86399..=86399
  }
  dateTimeZoneName :union {
    none @9 :Void;
    some @10 :Text;            # tzinfo name (e.g. "UTC", "Europe/Paris")
  }
  fold @11 :UInt8;
  # 0 or 1, as in Python (since protocol version 3). monty's datetime has no
  # fold: it is always 0 in what the library writes, and a value with 1 is
  # refused with `invalidValue`, since the sandbox could not hold it.
}

struct Time {
  hour @0 :UInt8;
  minute @1 :UInt8;
  second @2 :UInt8;
  microsecond @3 :UInt32;
  timeOffset :union {
    naive @4 :Void;
    seconds @5 :Int32;
  }
  timeZoneName :union {
    none @6 :Void;
    some @7 :Text;
  }
  fold @8 :UInt8;              # 0 or 1, as in Python
}

# Normalised as Python does: 0 <= seconds < 86400, 0 <= microseconds < 1000000.
struct TimeDelta {
  days @0 :Int32;
  seconds @1 :Int32;
  microseconds @2 :Int32;
}

struct TimeZone {
  offsetSeconds @0 :Int32;
  name :union {
    none @1 :Void;
    some @2 :Text;
  }
}

# An exception object that is a value (returned, stored in a list, ...),
# as opposed to a raised exception with a traceback (`PythonException`).
struct ExceptionValue {
  type @0 :ExcType;
  arg :union {
    none @1 :Void;
    some @2 :Text;             # the single string argument, if any
  }
}

struct FileHandle {
  path @0 :Text;               # virtual path
  mode @1 :FileMode;
  binary @2 :Bool;             # "b" in the mode string
  position @3 :UInt64;         # characters in text mode, bytes in binary mode
}

enum FileMode {
  read @0;                     # "r"
  readUpdate @1;               # "r+"
  write @2;                    # "w"
  writeUpdate @3;              # "w+"
  append @4;                   # "a"
  appendUpdate @5;             # "a+"
}

# A host (external) function. monty keeps no docstring for it: a function
# sent in with a docstring comes back with `none`.
struct Function {
  name @0 :Text;
  docstring :union {
    none @1 :Void;
    some @2 :Text;
  }
}

struct NamedTuple {
  typeName @0 :Text;           # e.g. "os.stat_result"
  fieldNames @1 :List(Text);   # one per value
  values @2 :List(UInt32);     # node indices, in field order
}

# Identities (class, instance and module ids) are 16-byte UUIDs, as `Data`
# of exactly 16 bytes.

struct ClassType {
  name @0 :Text;
  id @1 :Data;                 # 16-byte UUID
  hostDefined @2 :Bool;        # true: the host defined it; false: the sandbox did
  isDataclass @3 :Bool;
  attrs @4 :List(Pair);        # eagerly sent class attributes (name node, value node)
}

struct ClassInstance {
  classType @0 :UInt32;        # index of a `classType` node
  instanceId @1 :Data;         # 16-byte UUID
  attrs @2 :List(Pair);        # eagerly sent attributes (name node, value node)
}

struct Module {
  name @0 :Text;               # dotted name, e.g. "pkg.sub"
  id @1 :Data;                 # 16-byte UUID
  attrs @2 :List(Pair);        # attributes (name node, value node)
}

# ---------------------------------------------------------------------------
# Exceptions
# ---------------------------------------------------------------------------

# A raised Python exception, with its full traceback and structured data.
struct PythonException {
  type @0 :ExcType;
  message :union {
    none @1 :Void;
    some @2 :Text;             # the message alone, never prefixed with the type name
  }
  traceback @3 :List(StackFrame);  # outermost frame first, as CPython prints it
  data :union {
    none @4 :Void;
    unicode @5 :UnicodeErrorData;  # UnicodeDecodeError / UnicodeEncodeError details
    json @6 :JsonErrorData;        # json.JSONDecodeError / tomllib.TOMLDecodeError details
  }
}

# One traceback entry. Lines and columns are 1-based; columns count characters.
struct StackFrame {
  filename @0 :Text;
  startLine @1 :UInt32;
  startColumn @2 :UInt32;
  endLine @3 :UInt32;
  endColumn @4 :UInt32;
  frameName :union {
    none @5 :Void;             # module level
    some @6 :Text;             # function name
  }
  previewLine :union {
    none @7 :Void;
    some @8 :Text;             # the source line shown under the entry
  }
  hideCaret @9 :Bool;          # do not draw the ^^^ marker
  hideFrameName @10 :Bool;     # omit ", in <name>"
}

struct UnicodeErrorData {
  encoding @0 :Text;
  object :union {
    bytes @1 :Data;            # UnicodeDecodeError: the undecodable bytes
    text @2 :Text;             # UnicodeEncodeError: the unencodable text
  }
  start @3 :UInt64;
  end @4 :UInt64;
  reason @5 :Text;
}

struct JsonErrorData {
  msg @0 :Text;
  doc :union {
    none @1 :Void;
    some @2 :Text;
  }
  pos @3 :UInt64;
  lineno @4 :UInt64;
  colno @5 :UInt64;
}

# Every builtin exception class monty knows. The comment gives the Python name
# where it differs from the enumerant's spelling.
enum ExcType {
  exception @0;
  baseException @1;
  systemExit @2;
  keyboardInterrupt @3;
  arithmeticError @4;
  overflowError @5;
  zeroDivisionError @6;
  lookupError @7;
  indexError @8;
  keyError @9;
  runtimeError @10;
  notImplementedError @11;
  recursionError @12;
  attributeError @13;
  frozenInstanceError @14;         # dataclasses.FrozenInstanceError
  nameError @15;
  unboundLocalError @16;
  valueError @17;
  unicodeDecodeError @18;
  unicodeEncodeError @19;
  jsonDecodeError @20;             # json.JSONDecodeError
  tomlDecodeError @21;             # tomllib.TOMLDecodeError
  importError @22;
  moduleNotFoundError @23;
  osError @24;                     # OSError
  fileNotFoundError @25;
  fileExistsError @26;
  isADirectoryError @27;
  notADirectoryError @28;
  permissionError @29;
  unsupportedOperation @30;        # io.UnsupportedOperation
  timeoutError @31;
  assertionError @32;
  memoryError @33;
  stopIteration @34;
  syntaxError @35;
  typeError @36;
  rePatternError @37;              # re.PatternError
  binasciiError @38;               # binascii.Error
  binasciiIncomplete @39;          # binascii.Incomplete
  csvError @40;                    # _csv.Error
  decimalException @41;            # decimal.DecimalException
  decimalClamped @42;              # decimal.Clamped
  decimalInvalidOperation @43;     # decimal.InvalidOperation
  decimalConversionSyntax @44;     # decimal.ConversionSyntax
  decimalDivisionByZero @45;       # decimal.DivisionByZero
  decimalDivisionImpossible @46;   # decimal.DivisionImpossible
  decimalDivisionUndefined @47;    # decimal.DivisionUndefined
  decimalInexact @48;              # decimal.Inexact
  decimalInvalidContext @49;       # decimal.InvalidContext
  decimalRounded @50;              # decimal.Rounded
  decimalSubnormal @51;            # decimal.Subnormal
  decimalOverflow @52;             # decimal.Overflow
  decimalUnderflow @53;            # decimal.Underflow
  decimalFloatOperation @54;       # decimal.FloatOperation
}

# ---------------------------------------------------------------------------
# Positions, limits and usage
# ---------------------------------------------------------------------------

# A span of source code: UTF-8 byte offsets into the snippet named by
# `filename` (the script name, "<python-input-N>" in a REPL, or "<string>"
# for eval/exec). `end` is exclusive.
struct SourceRange {
  filename @0 :Text;
  start @1 :UInt32;
  end @2 :UInt32;
}

# Resource limits for a run or a REPL session: every field monty has.
struct ResourceLimits {
  maxFeedDuration :union {
    unlimited @0 :Void;
    nanos @1 :UInt64;          # execution time of one run or feed, summed over its turns
  }
  maxTurnDuration :union {
    unlimited @2 :Void;
    nanos @3 :UInt64;          # execution time between two host answers
  }
  maxMemory :union {
    unlimited @4 :Void;
    bytes @5 :UInt64;          # heap bytes; enforced only where the library can count them
  }
  gcInterval :union {
    default @6 :Void;          # monty's default cadence (100000 tracked allocations)
    allocations @7 :UInt64;
  }
  maxRecursionDepth @8 :UInt64 = 1000;   # RecursionError past this depth (catchable)
  maxSuspensions @9 :UInt64 = 1000;      # host round trips before the run is aborted
  maxTotalSleep :union {
    unlimited @10 :Void;
    nanos @11 :UInt64;         # cumulative time.sleep() the host waits on the sandbox's behalf
  }
}

# What a request consumed. Interpreter times are measured around monty's own
# work inside each request, so time the host spends answering a suspension
# never counts.
struct Usage {
  elapsedNanos @0 :UInt64;     # interpreter time over the whole session
  feedElapsedNanos @1 :UInt64; # interpreter time of the current run, summed over its requests
  turnElapsedNanos @2 :UInt64; # interpreter time of this request
  wallNanos @3 :UInt64;        # wall-clock time of this request: from before decoding it to the end of its last interpreter call (or of its handling, if it makes none); encoding this response is not included (it carries the figure)
  suspensions @4 :UInt64;      # host round trips so far in the current run
  memory :union {
    unmeasured @5 :Void;       # the build cannot count heap bytes
    bytes @6 :UInt64;          # live heap bytes at the end of the request
  }
}

# ---------------------------------------------------------------------------
# Requests and responses
# ---------------------------------------------------------------------------
#
# A host talks to a session in turns: it sends one `Request` and gets back
# exactly one `Response`. A run session goes through these states:
#
#   (empty) --openRun/loadProgram--> ready --start--> suspended <--resume*--+
#                                     ^  \--run-----> ready                  |
#                                     |                                      |
#                                     +---- complete / pythonError <---------+
#
# A request the current state does not accept gets a `protocolError` with
# code `wrongState` and leaves the session exactly as it was.

struct Request {
  union {
    openRun @0 :OpenRun;             # empty -> ready: compile a program
    run @1 :Inputs;                  # ready -> ready: run to completion, no host calls
    start @2 :Inputs;                # ready -> suspended or ready: run until the host is needed
    resumeCall @3 :CallResult;       # answer the pending `functionCall`
    resumeOsCall @4 :CallResult;     # answer the pending `osCall`
    resumeNameLookup @5 :NameLookupResult;  # answer the pending `nameLookup`
    resolveFutures @6 :List(FutureResult);  # results for some or all pending call ids
    abort @7 :PythonException;       # raise this, uncatchably, where the run is suspended
    setLimits @8 :ResourceLimits;    # ready: limits of the next run; suspended: re-arm time budgets
    dumpProgram @9 :Void;            # ready: the compiled program as a `Dump`
    loadProgram @10 :LoadProgram;    # empty -> ready: a program from `dumpProgram`
    openRepl @11 :OpenRepl;          # empty -> idle: a REPL session
    feedRun @12 :Feed;               # idle -> idle: run a snippet to completion, no host calls
    feedStart @13 :Feed;             # idle -> suspended or idle: run a snippet until the host is needed
    detectContinuation @14 :Text;    # any state, unchanged: is this source complete or does it continue?
    listFunctions @15 :Void;         # idle: the functions the session defines
    callFunction @16 :CallFunction;  # idle: call one of them with positional arguments
    dumpSession @17 :Void;           # idle or suspended REPL, or suspended run: a `Dump`
    loadSession @18 :LoadSession;    # empty -> whatever `dumpSession` saved
    typeCheck @19 :TypeCheck;        # any state, unchanged: type-check code
    setDumpKey @20 :Data;            # any state: seal dumps with HMAC-SHA256 under this key (empty: no key)
    setPrintDelivery @21 :PrintDelivery;  # any state, unchanged but for this setting: how live print output
                                     # reaches the host from the next request on (see `PrintDelivery`)
  }
}

# How often a session hands print output to the host's live sink while code
# runs: the C ABI's print callback, the web module's print descriptors, and
# an isolated session's worker, whose deliveries reach the host's callback one
# for one. Set with `setPrintDelivery`, in any state, even empty; the session
# keeps it for its life (opening, loading and emptying leave it alone; an
# isolated session whose worker ended gives the fresh worker the last one
# accepted). It changes how many calls the sink gets and how much text each
# carries, never the text, its order or its stream, and never a response's
# `output`. A session without a sink gathers nothing.
#
# Output is gathered per stream and delivered in order: a write to the other
# stream first delivers what was gathered for the first. Everything gathered
# is delivered before the request's response is returned, whatever the
# outcome, so no output arrives after its response. There is no timer: the
# session looks at the clock only when `print()` writes, so under `interval`
# text gathered and followed by no further print waits until the next write
# or the end of the request.
struct PrintDelivery {
  union {
    everyFragment @0 :Void;          # the default: each fragment print() writes (an argument, a separator,
                                     # the end), at once: `print(1, 'x')` is four calls
    lines @1 :Void;                  # at each newline written, everything gathered up to the last newline
                                     # in one call; text after it waits for a newline, a switch of stream
                                     # or the end of the request
    interval @2 :UInt64;             # nanoseconds: everything gathered, in one call, at the first write
                                     # when the oldest of it is this old (or older); 0 is `everyFragment`
  }
}

# Compile a program into a run session.
struct OpenRun {
  code @0 :Text;
  scriptName @1 :Text = "main.py";   # shown in tracebacks; its last component is __file__
  inputNames @2 :List(Text);         # globals the `Inputs` of `run` / `start` fill, in order
  compileOptions @3 :CompileOptions;
  limits @4 :ResourceLimits;
  osPolicy @5 :OsPolicy;
  cwd @6 :Text = "/";                # absolute virtual directory relative paths resolve against
  mounts @7 :List(Mount);            # host directories served inside the library (see `Mount`)
  environment @8 :Environment;       # what os.environ / os.getenv read (null: ask the host)
}

struct LoadProgram {
  dump @0 :Data;                     # the `dump` bytes of an earlier `dumpProgram`
  limits @1 :ResourceLimits;         # limits are the host's, never part of a dump
}

struct CompileOptions {
  assertMessageMaxBytes @0 :UInt32 = 120;  # annotate failed asserts up to this size; 0 turns it off
  sourceScanThreshold @1 :UInt64 = 4096;   # sources longer than this get a nesting-depth scan
}

# What the sandbox's clocks, sleeps and random numbers do.
struct OsPolicy {
  clock :union {                     # where datetime and time read the time
    system @0 :Void;                 # the process clock
    callHost @1 :Void;               # each read is an `osCall` (dateToday, dateTimeNow, time)
    fixed @2 :FixedInstant;          # every read returns this instant
  }
  localZone :union {                 # the sandbox's local time zone
    utc @3 :Void;
    fixed @4 :TimeZone;              # a fixed offset with an optional name
    named @5 :Text;                  # an IANA zone such as "Europe/Paris"
  }
  sleep :union {
    system @6 :Void;                 # sleeps suspend as `systemSleep`, each capped at 10 s
    systemCapped @7 :UInt64;         # the same with this cap, in nanoseconds
    callHost @8 :Void;               # `time.sleep` is an ordinary `sleep` os call
    zero @9 :Void;                   # sleeps return at once
  }
  processTime @10 :ProcessTime;
  randomStart :union {
    system @11 :Void;                # OS entropy
    callHost @12 :Void;              # one `urandom` os call on the first draw
    seedInt @13 :BigInt;             # as random.seed(n)
    seedFloat @14 :Float64;
    seedStr @15 :Text;
    seedBytes @16 :Data;
  }
}

struct FixedInstant {
  unixSeconds @0 :Int64;
  microsecond @1 :UInt32;            # 0..=999999
}

enum ProcessTime {
  zero @0;                           # time.process_time() is always 0
  elapsed @1;                        # the session's execution time
}

# Several values in one arena: shared objects stay shared between them.
struct Inputs {
  nodes @0 :List(Node);
  roots @1 :List(UInt32);            # one per input name, in order
}

# The arguments of a call: positional and keyword, in one arena.
struct Arguments {
  nodes @0 :List(Node);
  positional @1 :List(UInt32);
  keyword @2 :List(Pair);            # (name node, value node), in call order
}

# Open a REPL: a session whose globals persist from one snippet to the next.
struct OpenRepl {
  scriptName @0 :Text = "repl.py";
  compileOptions @1 :CompileOptions;
  limits @2 :ResourceLimits;         # apply to every feed and call
  osPolicy @3 :OsPolicy;
  cwd @4 :Text = "/";
  typeChecking :union {
    off @5 :Void;
    on @6 :TypeCheckOptions;         # check each snippet before running it
  }
  mounts @7 :List(Mount);            # host directories served inside the library, for every feed
  environment @8 :Environment;       # what os.environ / os.getenv read (null: ask the host)
}

# One snippet for a REPL.
struct Feed {
  code @0 :Text;
  inputs @1 :NamedValues;            # globals to set before the snippet runs
  skipTypeCheck @2 :Bool;            # run this snippet unchecked even if the session checks
  mounts @3 :List(Mount);            # more mounts for this snippet only, until it completes
}

# Named values in one arena.
struct NamedValues {
  nodes @0 :List(Node);
  entries @1 :List(NamedRoot);
}

struct NamedRoot {
  name @0 :Text;
  node @1 :UInt32;
}

struct CallFunction {
  name @0 :Text;
  args @1 :Inputs;                   # positional arguments (keyword arguments are not supported by monty)
}

struct LoadSession {
  dump @0 :Data;                     # the `dump` bytes of an earlier `dumpSession`
  limits @1 :ResourceLimits;         # the host's limits; a dump carries none of the host's
  mounts @2 :List(Mount);            # the mounts to open again; a dump grants no access by itself
  environment @3 :Environment;       # what os.environ / os.getenv read (null: ask the host)
}

# A host directory the sandbox sees at `virtualPath`. OS calls on paths under
# it are served inside the library (by monty's `monty-fs`) and never reach the
# host; every other OS call still suspends as an `osCall`. The directory is
# opened once, when the session opens, and every operation is relative to that
# handle, so neither `..`, a symlink nor a rename can reach past it. Mounts
# must have distinct virtual paths and disjoint host directories; a list that
# breaks that, a host path that is not a directory, or a relative virtual path
# is a `protocolError` (`invalidArgument`) that leaves the session as it was.
# Builds without a real file system (wasm32) refuse any mount that way too.
struct Mount {
  virtualPath @0 :Text;              # absolute, e.g. "/data"
  hostPath @1 :Text;                 # a directory of the host, as the host's OS names it
  mode @2 :MountMode;
  memoryLimit :union {
    default @3 :Void;                # monty-fs's default budget (50 MB)
    bytes @4 :UInt64;                # overlay data and results of this mount, at most this many bytes
  }
}

enum MountMode {
  readOnly @0;                       # reads; every write raises PermissionError
  readWrite @1;                      # reads and writes reach the host directory
  overlay @2;                        # reads fall through to the host directory; writes stay in memory
}

# What the sandbox's os.environ and os.getenv read. A null `environment` field
# keeps them host calls (`osCall` getenv / getEnviron).
struct Environment {
  union {
    callHost @0 :Void;               # each read is an `osCall`
    map @1 :List(EnvVar);            # answered inside the library from these variables, no others
  }
}

struct EnvVar {
  name @0 :Text;
  value @1 :Text;
}

struct TypeCheckOptions {
  stubs @0 :Text;                    # declarations star-imported into the code (host functions, ...)
  moduleStubs @1 :List(ModuleStub);  # host modules, importable by name
  format @2 :TypeCheckFormat;        # how `TypeCheckReport.rendered` is written
  color @3 :Bool;                    # ANSI colors in `rendered`
}

struct ModuleStub {
  module @0 :Text;                   # dotted name, e.g. "host.tools"
  source @1 :Text;                   # a .pyi body
}

enum TypeCheckFormat {
  full @0;
  concise @1;
  azure @2;
  json @3;
  jsonLines @4;
  rdjson @5;
  pylint @6;
  gitlab @7;
  github @8;
}

# Type-check code without running it.
struct TypeCheck {
  code @0 :Text;
  prefixCode @1 :Text;               # code that precedes `code` (checked, not reported on)
  scriptName @2 :Text = "main.py";
  options @3 :TypeCheckOptions;
}

# The host's answer to a function call or an OS call.
struct CallResult {
  union {
    value @0 :Value;                 # the call returns this
    exception @1 :PythonException;   # the call raises this (catchable by try/except)
    future @2 :Void;                 # the call is a future; answer it later in `resolveFutures`
    notFound @3 :Void;               # NameError (ModuleNotFoundError for importModule)
    notHandled @4 :Void;             # OS calls only: monty's default (PermissionError, ...)
    eagerValue @5 :Value;            # when allowEagerAwait: the awaited future, already settled
    eagerException @6 :PythonException;
  }
}

struct FutureResult {
  callId @0 :UInt32;
  result @1 :CallResult;             # value, exception, notFound, or future (still pending)
}

struct NameLookupResult {
  union {
    value @0 :Value;
    undefined @1 :Void;              # NameError (AttributeError for an object attribute)
    exception @2 :PythonException;
  }
}

# The one reply to every request.
struct Response {
  union {
    ok @0 :Void;                     # done; nothing to return (openRun, loadProgram, setLimits)
    complete @1 :Value;              # the run finished with this value
    functionCall @2 :FunctionCall;   # suspended: the host must answer with resumeCall
    osCall @3 :OsCall;               # suspended: answer with resumeOsCall
    nameLookup @4 :NameLookup;       # suspended: answer with resumeNameLookup
    resolveFutures @5 :ResolveFutures;  # suspended: every task awaits host futures
    pythonError @6 :PythonException; # the run raised; the session is ready again
    protocolError @7 :ProtocolError; # the request was refused; the session is unchanged
    dump @8 :Data;                   # a framed `Dump` message, opaque to the host
    continuation @11 :ContinuationMode;  # the answer to detectContinuation
    functionNames @12 :List(Text);   # the answer to listFunctions
    typeCheckReport @13 :TypeCheckReport;  # typeCheck's answer, or a feed refused for type errors
  }
  output @9 :List(PrintSegment);     # what print() wrote during this request, in order
  usage @10 :Usage;
}

enum ContinuationMode {
  complete @0;                       # run it (valid code, or a real syntax error to report)
  incompleteImplicit @1;             # an open bracket, string or decorator: read another line
  incompleteBlock @2;                # a block header: read lines until a blank one
}

# Type-check diagnostics: structured, and rendered in the requested format.
# No diagnostics means the code checked clean.
struct TypeCheckReport {
  diagnostics @0 :List(Diagnostic);
  rendered @1 :Text;                 # empty when clean
}

struct Diagnostic {
  code @0 :Text;                     # e.g. "invalid-argument-type"
  severity @1 :Severity;
  message @2 :Text;
  file @3 :Text;
  startLine @4 :UInt32;              # 1-based; 0 when the diagnostic has no location
  startColumn @5 :UInt32;
  endLine @6 :UInt32;
  endColumn @7 :UInt32;
}

enum Severity {
  info @0;
  warning @1;
  error @2;
  fatal @3;
}

struct FunctionCall {
  name @0 :Text;
  args @1 :Arguments;
  callId @2 :UInt32;
  methodOf :union {
    none @3 :Void;                   # a plain function
    some @4 :Data;                   # 16-byte UUID of the host object whose method this is
  }
  allowEagerAwait @5 :Bool;          # the call is awaited at once: eagerValue is allowed
  position @6 :SourceRange;
}

struct NameLookup {
  name @0 :Text;
  attributeOf :union {
    none @1 :Void;                   # an undefined global name
    some @2 :Data;                   # a lazy attribute of this host object
  }
  position @3 :SourceRange;
}

struct ResolveFutures {
  pendingCallIds @0 :List(UInt32);
  position @1 :SourceRange;          # the await the main task is blocked on
}

# An OS-level operation the sandbox needs the host for.
#
# Every path field (the bare paths below, and `path` of `PathText`,
# `PathBytes`, `OpenArgs`, `MkdirArgs` and `ScanArgs`, `src` and `dst` of
# `RenameArgs`) is an absolute virtual POSIX path, normalised lexically
# before it is sent: relative paths are resolved against the sandbox's cwd
# (the session's, or the one `os.chdir` set), then `.` segments and repeated
# and trailing `/` are dropped and each `..` removes the segment before it,
# stopping at `/` (so "/data/sub/../x" arrives as "/data/x", and "/../x" as
# "/x"). Nothing is read to do this: symlinks are not resolved. A path never
# holds a NUL byte. The one exception is an empty path (`os.stat('')`), sent
# empty, which CPython answers with FileNotFoundError.
struct OsCall {
  callId @0 :UInt32;
  allowEagerAwait @1 :Bool;
  position @2 :SourceRange;
  name @3 :Text;                     # monty's name for the operation, e.g. "Path.read_text"
  union {
    exists @4 :Text;                 # Path.exists -> bool
    isFile @5 :Text;                 # -> bool
    isDir @6 :Text;                  # -> bool
    isSymlink @7 :Text;              # -> bool
    readText @8 :Text;               # -> str
    readBytes @9 :Text;              # -> bytes
    stat @10 :Text;                  # -> os.stat_result namedtuple
    iterdir @11 :Text;               # -> list of Path
    scan @12 :ScanArgs;              # -> scan reply (see monty_types::scan)
    resolve @13 :Text;               # -> Path
    absolute @14 :Text;              # -> Path
    writeText @15 :PathText;         # -> int
    appendText @16 :PathText;        # -> int
    writeBytes @17 :PathBytes;       # -> int
    appendBytes @18 :PathBytes;      # -> int
    open @19 :OpenArgs;              # -> file handle
    mkdir @20 :MkdirArgs;            # -> None
    unlink @21 :Text;                # -> None
    rmdir @22 :Text;                 # -> None
    rename @23 :RenameArgs;          # -> None
    getenv @24 :GetenvArgs;          # -> str or the default
    getEnviron @25 :Void;            # -> dict
    dateToday @26 :Void;             # -> date (clock = callHost)
    dateTimeNow @27 :DateTimeNowArgs;  # -> datetime (clock = callHost)
    urandom @28 :UInt64;             # -> exactly this many bytes
    time @29 :TimeCaller;            # -> float seconds since the epoch (clock = callHost)
    sleep @30 :UInt64;               # time.sleep, nanoseconds (sleep = callHost) -> anything
    systemSleep @31 :UInt64;         # time.sleep under sleep = system: wait, then None
    asyncSleep @32 :UInt64;          # asyncio.sleep: preferably a future
    asyncSystemSleep @33 :UInt64;    # asyncio.sleep under sleep = system
    importModule @34 :Text;          # import of a module monty lacks -> module, or notFound
    importStubs @35 :List(Text);     # type-checking stubs for these modules
  }
}

struct PathText {
  path @0 :Text;
  data @1 :Text;
}

struct PathBytes {
  path @0 :Text;
  data @1 :Data;
}

struct OpenArgs {
  path @0 :Text;
  mode @1 :FileMode;
  binary @2 :Bool;
}

struct MkdirArgs {
  path @0 :Text;
  parents @1 :Bool;
  existOk @2 :Bool;
}

struct RenameArgs {
  src @0 :Text;
  dst @1 :Text;
}

struct GetenvArgs {
  key @0 :Text;
  default @1 :Value;                 # what os.getenv returns when the key is unset
}

struct DateTimeNowArgs {
  union {
    naive @0 :Void;                  # datetime.now()
    zone @1 :TimeZone;               # datetime.now(tz)
  }
}

struct ScanArgs {
  path @0 :Text;
  maxDepth :union {
    unlimited @1 :Void;
    depth @2 :UInt32;                # 0: the root alone, 1: its children
  }
  followSymlinks @3 :Bool;
  pattern :union {
    none @4 :Void;
    parts @5 :List(Text);            # Path.glob pattern parts (a pruning hint)
  }
  caseSensitive :union {
    default @6 :Void;
    value @7 :Bool;
  }
  recurseSymlinks @8 :Bool;
}

enum TimeCaller {
  time @0;
  timeNs @1;
  monotonic @2;
  monotonicNs @3;
  perfCounter @4;
  perfCounterNs @5;
  gmtime @6;
  localtime @7;
  asctime @8;
  ctime @9;
  strftime @10;
}

struct PrintSegment {
  stream @0 :PrintStream;
  text @1 :Text;
}

enum PrintStream {
  stdout @0;
  stderr @1;
}

# A request the session refused. The session is exactly as it was before,
# with exceptions that say so in their code: `internalError` (the session
# was reset to empty); `responseTooLarge` (the request was carried out,
# but its answer does not fit in a message; a run or snippet it left
# suspended at a host call was aborted, so the session is ready, or idle,
# again, and what the request did before that stays done); and, for an
# isolated session, `workerCrashed`, `deadlineExceeded` and `cancelled`
# (its worker process ended during the request, so the session is empty
# again: its next request starts a fresh worker, which a host fills by
# opening again or loading a dump it took earlier; a dump key set with
# `setDumpKey` and a print delivery set with `setPrintDelivery` carry over).
struct ProtocolError {
  code @0 :ErrorCode;
  message @1 :Text;                  # for people; match on `code`
  workerExit @2 :WorkerExit;         # with workerCrashed: how the worker ended; absent otherwise
}

# How an isolated session's worker process ended.
struct WorkerExit {
  exitCode @0 :Int32;                # its exit status, or -1 when a signal ended it
  signal @1 :Int32;                  # the signal that ended it (Unix), or 0
  outOfMemory @2 :Bool;              # it went past its memory ceiling (it exited with status 65)
  stderrTail @3 :Text;               # the last 4 KiB it wrote to its standard error
}

enum ErrorCode {
  malformedMessage @0;   # not a Cap'n Proto message (garbage, bad pointers, trailing bytes)
  truncatedMessage @1;   # the bytes end before the message does
  limitExceeded @2;      # larger or deeper than the decoder allows
  invalidValue @3;       # a part of a request this library cannot accept: an inconsistent value arena
                         # (index out of range, bad bigint, ...), a union arm or enum value it does not know,
                         # a value the schema carries but Python cannot hold (February 30th, an unhashable
                         # dict key, ...; the message names the node), or an OS call answered with a value
                         # of the wrong type
  unknownRequest @4;     # a request kind (an arm of `Request`) this library does not know
  wrongState @5;         # the session's state does not accept this request
  unknownSession @6;     # the handle is null, closed or was never opened
  sessionBusy @7;        # another thread is using this session right now
  invalidArgument @8;    # well-formed but unacceptable (unknown call id, time zone this build does not have, ...)
  internalError @9;      # the library failed (a caught panic); the session was reset
  responseTooLarge @10;  # the reply does not fit in a message; a suspended run was aborted (see ProtocolError)
  invalidDump @11;       # dump bytes that are not a dump this build can load
  workerUnavailable @12; # an isolated session has no worker: the worker binary cannot be run, speaks another
                         # protocol, or this platform cannot start processes (iOS, the web module)
  workerCrashed @13;     # the isolated session's worker died during the request (a fault, an abort, past its
                         # memory ceiling); `workerExit` says how. The session is empty again
  deadlineExceeded @14;  # the request ran past the session's time limits plus a grace, and its worker was
                         # killed. The session is empty again
  cancelled @15;         # the host cancelled the request (monty_wire_cancel, or closing the session during
                         # it) and its worker was killed. The session is empty again
}

# What `dump` bytes hold: a labelled envelope, so a host never confuses
# formats and a dump from another version is refused with a clear error.
struct Dump {
  kind @0 :DumpKind;
  protocolVersion @1 :UInt32;        # the protocolVersion of the writer
  montyVersion @2 :Text;             # the monty release that wrote the payload
  payload @3 :Data;                  # monty's own serialization (CBOR)
  montyDumpVersion @4 :UInt16;       # monty's dump format version (0 for programs, which have none)
  seal :union {
    none @5 :Void;                   # written without a key
    hmacSha256 @6 :Data;             # HMAC-SHA256 under the host's key of every other field
  }

  # The engine's own bookkeeping of the run or feed in flight, which monty's
  # payload does not hold, so a loaded session enforces the host's limits
  # and names futures exactly as the writer would have. For an idle REPL it
  # is that of the last snippet; zero and empty in program dumps.
  suspensions @7 :UInt64;            # host round trips so far (counted against maxSuspensions)
  totalSleepNanos @8 :UInt64;        # system.sleep time so far (counted against maxTotalSleep)
  feedElapsedNanos @9 :UInt64;       # interpreter time so far (Usage.feedElapsedNanos)
  futureNames @10 :List(FutureName); # function calls the host turned into futures, not yet resolved
  mountState @11 :Data;              # mounts' virtual paths and modes, and overlay writes (monty-wire's own CBOR); empty: no mounts

  # A pending future and the function whose call made it: a future resolved
  # `notFound` raises a NameError naming that function.
  struct FutureName {
    callId @0 :UInt32;
    name @1 :Text;
  }
}

enum DumpKind {
  program @0;                        # a compiled program (dumpProgram / loadProgram)
  replIdle @1;                       # a REPL between snippets
  replSuspended @2;                  # a REPL suspended mid-snippet
  runSuspended @3;                   # a one-shot run suspended at a host call
}
