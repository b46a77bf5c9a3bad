//! What a host's value must be before it enters Python.
//!
//! The schema can carry values Python cannot hold: February 30th, a
//! timedelta that is not normalised, a decimal that does not parse, a list
//! as a dict key, an output-only `repr` or `cycle` node. monty would find
//! them while importing the value and raise a `RuntimeError` where the
//! sandbox stopped, so a host's mistake cost it the run. Every value a
//! request hands to Python (inputs, call arguments, resume values, future
//! results, name lookup values) is checked here first, by monty's own rules,
//! and one that fails is refused with `invalidValue` naming the node and
//! the reason, leaving the session as it was.
//!
//! An answer to an OS call must also be what the OS function returns
//! (`Path.read_text` a `str`, `Path.exists` a `bool`, ...): anything else
//! would reach the script as if the function had returned it.
//!
//! Only what the value alone decides is checked here. A sandbox class or
//! instance the host hands back is looked up in the sandbox's heap, so one
//! that no longer exists (or an instance of it used as a dict key) is still
//! refused by monty, as a `RuntimeError` in Python.

use chrono::NaiveDate;
use monty_types::{
    MAX_TIMEZONE_OFFSET_SECONDS, MIN_TIMEZONE_OFFSET_SECONDS, MontyDate, MontyDateTime, MontyObject, MontyTime,
    MontyTimeDelta, MontyTimeZone, OsFunctionCall, scan,
    unstable::{self, MontyGraph, MontyNode, NodeId},
};

use crate::protocol::{ErrorCode, ProtocolError};

/// Checks one value a request hands to Python; `what` names it in the
/// error ("resumeCall value", "input 2", ...).
pub(crate) fn check_value(value: &MontyObject, what: &str) -> Result<(), ProtocolError> {
    let (graph, _) = unstable::graph_parts(value);
    problem_in(graph).map_or(Ok(()), |(node, why)| Err(invalid_value(what, node, &why)))
}

/// Checks every value of a list (inputs, call arguments).
pub(crate) fn check_values<'a>(
    values: impl IntoIterator<Item = &'a MontyObject>,
    what: &str,
) -> Result<(), ProtocolError> {
    for (index, value) in values.into_iter().enumerate() {
        check_value(value, &format!("{what} {index}"))?;
    }
    Ok(())
}

/// Checks an answer to `call`: a value Python can hold, of the type the OS
/// function returns.
pub(crate) fn check_os_answer(call: &OsFunctionCall, value: &MontyObject, what: &str) -> Result<(), ProtocolError> {
    check_value(value, what)?;
    let (graph, root) = unstable::graph_parts(value);
    os_answer_problem(call, value, graph, root).map_or(Ok(()), |(node, expected)| {
        let why = format!("{} returns {expected}, not {}", call.name(), graph.type_name(node));
        Err(invalid_value(what, node, &why))
    })
}

fn invalid_value(what: &str, node: NodeId, why: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidValue, format!("{what}, node {}: {why}", node.0))
}

/// The first node of `graph` Python cannot hold, and why. monty imports
/// every node of an arena, reachable from the root or not, so every node
/// counts.
fn problem_in(graph: &MontyGraph) -> Option<(NodeId, String)> {
    // Children precede their holders, so one forward pass knows whether
    // each child can be hashed by the time its holder needs it.
    let mut hashable = Vec::with_capacity(graph.len());
    for (index, node) in graph.nodes().iter().enumerate() {
        let id = NodeId(u32::try_from(index).expect("arena ids fit in u32"));
        if let Some(why) = node_problem(graph, node, &hashable) {
            return Some((id, why));
        }
        hashable.push(is_hashable(node, &hashable));
    }
    None
}

fn node_problem(graph: &MontyGraph, node: &MontyNode, hashable: &[bool]) -> Option<String> {
    let unhashable = |mut keys: &mut dyn Iterator<Item = NodeId>, what: &str| {
        Iterator::find(&mut keys, |key| !hashable[key.index()])
            .map(|key| format!("{what} node {} is unhashable ({})", key.0, graph.type_name(key)))
    };
    match node {
        MontyNode::Date(date) => date_problem(date),
        MontyNode::DateTime(datetime) => datetime_problem(datetime),
        MontyNode::Time(time) => time_problem(time),
        MontyNode::TimeDelta(delta) => timedelta_problem(delta),
        MontyNode::TimeZone(zone) => timezone_problem(zone),
        MontyNode::Decimal(text) => decimal_problem(text).map(|why| format!("decimal {text:?} {why}")),
        MontyNode::Repr(_) => Some("a repr node is output only: Python cannot take it back".to_owned()),
        MontyNode::Cycle(_) => Some("a cycle node is output only: Python cannot take it back".to_owned()),
        MontyNode::NamedTuple {
            field_names, values, ..
        } if field_names.len() != values.len() => Some(format!(
            "named tuple has {} field names for {} values",
            field_names.len(),
            values.len()
        )),
        MontyNode::Dict(pairs) => unhashable(&mut pairs.iter().map(|(key, _)| *key), "dict key"),
        MontyNode::Set(ids) => unhashable(&mut ids.iter().copied(), "set element"),
        MontyNode::FrozenSet(ids) => unhashable(&mut ids.iter().copied(), "frozenset element"),
        MontyNode::Module { attrs, .. } => unhashable(&mut attrs.iter().map(|(key, _)| *key), "module attribute name"),
        // Attributes are read only for a host's class (a sandbox class the
        // host hands back is the sandbox's own object).
        MontyNode::ClassType(class) if class.host_defined => {
            unhashable(&mut class.attrs.iter().map(|(key, _)| *key), "class attribute name")
        }
        MontyNode::ClassInstance { class_type, attrs, .. } if matches!(graph.node(*class_type), MontyNode::ClassType(class) if class.host_defined) => {
            unhashable(&mut attrs.iter().map(|(key, _)| *key), "instance attribute name")
        }
        _ => None,
    }
}

/// Whether monty can hash the value of `node` (its children's answers are
/// in `hashable`). A class instance is taken as hashable: whether it is
/// depends on the sandbox object it names, which monty decides.
fn is_hashable(node: &MontyNode, hashable: &[bool]) -> bool {
    match node {
        MontyNode::List(_)
        | MontyNode::Dict(_)
        | MontyNode::Set(_)
        | MontyNode::FileHandle(_)
        | MontyNode::Exception { .. } => false,
        MontyNode::Tuple(ids) | MontyNode::NamedTuple { values: ids, .. } => ids.iter().all(|id| hashable[id.index()]),
        // Python refuses to hash a signaling NaN.
        MontyNode::Decimal(text) => !is_signaling_nan(text),
        _ => true,
    }
}

fn date_problem(date: &MontyDate) -> Option<String> {
    valid_date(date.year, date.month, date.day)
        .err()
        .map(|why| format!("date {}-{:02}-{:02}: {why}", date.year, date.month, date.day))
}

fn valid_date(year: i32, month: u8, day: u8) -> Result<(), &'static str> {
    if !(1..=9999).contains(&year) {
        Err("year must be in 1..9999")
    } else if !(1..=12).contains(&month) {
        Err("month must be in 1..12")
    } else if NaiveDate::from_ymd_opt(year, month.into(), day.into()).is_none() {
        Err("day is out of range for the month")
    } else {
        Ok(())
    }
}

fn datetime_problem(dt: &MontyDateTime) -> Option<String> {
    valid_date(dt.year, dt.month, dt.day)
        .and_then(|()| valid_clock(dt.hour, dt.minute, dt.second, dt.microsecond))
        .and_then(|()| valid_offset(dt.offset_seconds, dt.timezone_name.as_deref()))
        .err()
        .map(|why| {
            format!(
                "datetime {}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}: {why}",
                dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond
            )
        })
}

fn time_problem(time: &MontyTime) -> Option<String> {
    valid_clock(time.hour, time.minute, time.second, time.microsecond)
        .and(if time.fold > 1 {
            Err("fold must be 0 or 1")
        } else {
            Ok(())
        })
        .and_then(|()| valid_offset(time.offset_seconds, time.timezone_name.as_deref()))
        .err()
        .map(|why| {
            format!(
                "time {:02}:{:02}:{:02}.{:06}: {why}",
                time.hour, time.minute, time.second, time.microsecond
            )
        })
}

fn valid_clock(hour: u8, minute: u8, second: u8, microsecond: u32) -> Result<(), &'static str> {
    if hour > 23 {
        Err("hour must be in 0..23")
    } else if minute > 59 {
        Err("minute must be in 0..59")
    } else if second > 59 {
        Err("second must be in 0..59")
    } else if microsecond > 999_999 {
        Err("microsecond must be in 0..999999")
    } else {
        Ok(())
    }
}

fn valid_offset(offset_seconds: Option<i32>, zone_name: Option<&str>) -> Result<(), &'static str> {
    match offset_seconds {
        None if zone_name.is_some() => Err("a zone name needs an offset (the value is naive)"),
        Some(offset) if !(MIN_TIMEZONE_OFFSET_SECONDS..=MAX_TIMEZONE_OFFSET_SECONDS).contains(&offset) => {
            Err("the UTC offset must be strictly between -24 and 24 hours")
        }
        _ => Ok(()),
    }
}

fn timedelta_problem(delta: &MontyTimeDelta) -> Option<String> {
    let why = if !(-999_999_999..=999_999_999).contains(&delta.days) {
        "days must have magnitude <= 999999999"
    } else if !(0..86_400).contains(&delta.seconds) || !(0..1_000_000).contains(&delta.microseconds) {
        "not normalised as Python does (0 <= seconds < 86400, 0 <= microseconds < 1000000)"
    } else {
        return None;
    };
    Some(format!(
        "timedelta(days={}, seconds={}, microseconds={}): {why}",
        delta.days, delta.seconds, delta.microseconds
    ))
}

fn timezone_problem(zone: &MontyTimeZone) -> Option<String> {
    valid_offset(Some(zone.offset_seconds), None)
        .err()
        .map(|why| format!("timezone of {} seconds: {why}", zone.offset_seconds))
}

/// The largest coefficient monty's `Decimal` takes, in digits.
const MAX_DECIMAL_DIGITS: usize = 4300;
/// C `_decimal`'s exponent range for a literal, which monty keeps: the
/// exponent is at least `MIN_ETINY` (`MIN_EMIN - (MAX_PREC - 1)`) and the
/// adjusted exponent (of the leading digit) at most `MAX_EMAX`.
const MAX_EMAX: i128 = 999_999_999_999_999_999;
const MAX_PREC: i128 = 999_999_999_999_999_999;
const MIN_EMIN: i128 = -999_999_999_999_999_999;
const MIN_ETINY: i128 = MIN_EMIN - (MAX_PREC - 1);

/// Why `Decimal(text)` would refuse `text`, under the rules monty applies
/// to a host's decimal: surrounding whitespace and underscores ignored,
/// letters in any case, `Infinity`/`Inf`, `NaN` and `sNaN` with an optional
/// digit payload, or `[digits][.digits][e[sign]digits]` with at least one
/// digit, at most 4,300 significant digits, and an exponent in C
/// `_decimal`'s range. Text with non-ASCII characters (other digits and
/// spaces Python accepts) is left to monty.
fn decimal_problem(text: &str) -> Option<&'static str> {
    if !text.is_ascii() {
        return None;
    }
    let lower = decimal_letters(text);
    let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let significant = |digits: &str| digits.trim_start_matches('0').len();
    if unsigned == "inf" || unsigned == "infinity" {
        return None;
    }
    if let Some(payload) = unsigned.strip_prefix("snan").or_else(|| unsigned.strip_prefix("nan")) {
        return if !all_digits(payload) {
            Some("is not a number")
        } else if significant(payload) > MAX_DECIMAL_DIGITS {
            Some("has more than 4300 digits")
        } else {
            None
        };
    }
    let (mantissa, exponent) = unsigned.split_once('e').unwrap_or((unsigned, ""));
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part) {
        return Some("is not a number");
    }
    let exponent = if unsigned.contains('e') {
        let magnitude = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if magnitude.is_empty() || !all_digits(magnitude) {
            return Some("is not a number");
        }
        let magnitude = magnitude.trim_start_matches('0');
        // Anything this long is out of range either way.
        let value = if magnitude.len() > 30 {
            i128::MAX / 4
        } else {
            magnitude.parse::<i128>().unwrap_or(0)
        };
        if exponent.starts_with('-') { -value } else { value }
    } else {
        0
    };
    let digits = significant(&format!("{int_part}{frac_part}")).max(1);
    if digits > MAX_DECIMAL_DIGITS {
        return Some("has more than 4300 digits");
    }
    let exponent = exponent - frac_part.len() as i128;
    let adjusted = exponent + digits as i128 - 1;
    (exponent < MIN_ETINY || adjusted > MAX_EMAX).then_some("has an exponent out of range")
}

/// Python's `str.isspace` on ASCII, which `char::is_ascii_whitespace` is
/// not (it leaves out `\x0b` and the separators `\x1c`..`\x1f`).
fn is_python_space(c: char) -> bool {
    matches!(c, ' ' | '\t'..='\r' | '\x1c'..='\x1f')
}

/// A decimal's text as monty reads it: trimmed, without underscores, in lower case.
fn decimal_letters(text: &str) -> String {
    text.trim_matches(is_python_space)
        .chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_signaling_nan(text: &str) -> bool {
    let lower = decimal_letters(text);
    lower.strip_prefix(['+', '-']).unwrap_or(&lower).starts_with("snan")
}

/// The node of an answer to `call` that is not what the OS function
/// returns, and what it should be.
fn os_answer_problem(
    call: &OsFunctionCall,
    value: &MontyObject,
    graph: &MontyGraph,
    root: NodeId,
) -> Option<(NodeId, &'static str)> {
    let root_node = graph.node(root);
    let is_path = |node: &MontyNode| matches!(node, MontyNode::Path(_) | MontyNode::String(_));
    let expect = |ok: bool, expected: &'static str| (!ok).then_some((root, expected));
    match call {
        OsFunctionCall::Exists(_)
        | OsFunctionCall::IsFile(_)
        | OsFunctionCall::IsDir(_)
        | OsFunctionCall::IsSymlink(_) => expect(matches!(root_node, MontyNode::Bool(_)), "bool"),
        OsFunctionCall::ReadText(_) => expect(matches!(root_node, MontyNode::String(_)), "str"),
        OsFunctionCall::ReadBytes(_) => expect(matches!(root_node, MontyNode::Bytes(_)), "bytes"),
        OsFunctionCall::Stat(_) => expect(
            matches!(root_node, MontyNode::NamedTuple { .. }),
            "an os.stat_result named tuple",
        ),
        OsFunctionCall::Iterdir(_) => match root_node {
            MontyNode::List(ids) => ids
                .iter()
                .find(|id| !is_path(graph.node(**id)))
                .map(|id| (*id, "a list of paths (Path or str)")),
            _ => Some((root, "a list of paths (Path or str)")),
        },
        OsFunctionCall::Scan(_) => expect(scan::parse_scan_reply(value).is_ok(), "a scan reply"),
        OsFunctionCall::Resolve(_) | OsFunctionCall::Absolute(_) => expect(is_path(root_node), "a path (Path or str)"),
        OsFunctionCall::WriteText(_)
        | OsFunctionCall::AppendText(_)
        | OsFunctionCall::WriteBytes(_)
        | OsFunctionCall::AppendBytes(_) => {
            expect(matches!(root_node, MontyNode::Int(_) | MontyNode::BigInt(_)), "int")
        }
        OsFunctionCall::Open(_) => expect(matches!(root_node, MontyNode::FileHandle(_)), "a file handle"),
        OsFunctionCall::Mkdir(_) | OsFunctionCall::Unlink(_) | OsFunctionCall::Rmdir(_) | OsFunctionCall::Rename(_) => {
            expect(matches!(root_node, MontyNode::None), "None")
        }
        OsFunctionCall::Getenv(args) => expect(
            matches!(root_node, MontyNode::String(_)) || *value == args.default,
            "str or the call's default",
        ),
        OsFunctionCall::GetEnviron => match root_node {
            MontyNode::Dict(pairs) => pairs
                .iter()
                .flat_map(|(key, value)| [*key, *value])
                .find(|id| !matches!(graph.node(*id), MontyNode::String(_)))
                .map(|id| (id, "a dict of str to str")),
            _ => Some((root, "a dict of str to str")),
        },
        OsFunctionCall::DateToday => expect(matches!(root_node, MontyNode::Date(_)), "a date"),
        OsFunctionCall::DateTimeNow(_) => expect(matches!(root_node, MontyNode::DateTime(_)), "a datetime"),
        OsFunctionCall::Urandom(args) => expect(
            matches!(root_node, MontyNode::Bytes(bytes) if bytes.len() as u64 == args.size),
            "bytes of the length asked for",
        ),
        OsFunctionCall::Time(_) => expect(
            matches!(root_node, MontyNode::Float(_) | MontyNode::Int(_)),
            "float (seconds since the epoch)",
        ),
        OsFunctionCall::Import(_) => expect(matches!(root_node, MontyNode::Module { .. }), "a module"),
        // The sleeps ignore the answer (asyncio.sleep's result is the
        // script's own), and monty never asks the host for stubs itself.
        OsFunctionCall::Sleep(_)
        | OsFunctionCall::SystemSleep(_)
        | OsFunctionCall::AsyncSleep(_)
        | OsFunctionCall::AsyncSystemSleep(_)
        | OsFunctionCall::ImportStubs(_) => None,
    }
}
