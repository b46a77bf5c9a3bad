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
# 5. Bump `protocolVersion` for every published change, additive or not;
#    hosts compare it with the version the native library reports.

@0x97b0f60967996d75;

# The version of the protocol this file describes.
const protocolVersion :UInt32 = 1;

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
    bool @3 :Bool;
    int @4 :Int64;                # an int that fits in 64 bits
    bigInt @5 :BigInt;            # an int of any size (monty's BigInt node)
    float @6 :Float64;            # IEEE-754 bits kept exactly: NaN payloads, -0.0, infinities
    complex @7 :Complex;
    str @8 :Text;
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
    repr @22 :Text;               # output only: repr() of a value with no other form
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
  offset :union {
    naive @7 :Void;            # no tzinfo
    seconds @8 :Int32;         # UTC offset of an aware datetime, -86399..=86399
  }
  zoneName :union {
    none @9 :Void;
    some @10 :Text;            # tzinfo name (e.g. "UTC", "Europe/Paris")
  }
}

struct Time {
  hour @0 :UInt8;
  minute @1 :UInt8;
  second @2 :UInt8;
  microsecond @3 :UInt32;
  offset :union {
    naive @4 :Void;
    seconds @5 :Int32;
  }
  zoneName :union {
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
    str @2 :Text;              # UnicodeEncodeError: the unencodable text
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

# What a run or feed consumed. Times count interpreter execution only (the
# clock stops while the host answers a suspension) unless noted.
struct Usage {
  elapsedNanos @0 :UInt64;     # execution time over the whole session
  feedElapsedNanos @1 :UInt64; # execution time of the current run or feed
  turnElapsedNanos @2 :UInt64; # execution time since the last host answer
  wallNanos @3 :UInt64;        # wall-clock time of the request, host time excluded
  suspensions @4 :UInt64;      # host round trips so far in this run or feed
  memory :union {
    unmeasured @5 :Void;       # the build cannot count heap bytes
    bytes @6 :UInt64;          # live heap bytes at the end of the request
  }
}
