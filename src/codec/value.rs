//! `MontyObject` ⇄ `Value`: monty's node arena, node for node.
//!
//! The wire arena is monty's arena: node `i` on the wire is node `i` in the
//! `MontyGraph`, so shared children and cycle markers survive exactly, and
//! neither direction recurses. Decoding checks every index and enum itself
//! (with a precise error) before handing the nodes to
//! `MontyGraph::from_nodes`, monty's own validator for untrusted arenas.

use capnp::{primitive_list, struct_list};
use monty_types::{
    BuiltinsFunctions, FileMode, MontyComplex, MontyDate, MontyDateTime, MontyFileHandle, MontyObject, MontyTime,
    MontyTimeDelta, MontyTimeZone, MontyType, MontyUuid,
    unstable::{self, ClassTypeNode, GraphError, MontyGraph, MontyNode, NodeId},
};
use num_bigint::{BigInt, Sign};

use super::{
    exception::{exc_type_from_wire, exc_type_to_wire},
    fields::{checked_data, checked_text, unknown_arm, unknown_enum, wire_len},
    message::DecodeContext,
};
use crate::{
    error::{DecodeError, EncodeError},
    schema::monty_wire_capnp as wire,
};

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Writes `value` into `builder`: its whole arena and its root.
pub fn write_value(value: &MontyObject, mut builder: wire::value::Builder<'_>) -> Result<(), EncodeError> {
    let (graph, root) = unstable::graph_parts(value);
    write_graph(
        graph,
        builder.reborrow().init_nodes(wire_len(graph.len(), "value arena")?),
    )?;
    builder.set_root(root.0);
    Ok(())
}

/// Writes every node of `graph`, in order, into an already sized node list.
///
/// Messages that carry several values in one arena (call arguments, named
/// inputs) use this directly and store their own root indices.
pub fn write_graph(
    graph: &MontyGraph,
    mut nodes: struct_list::Builder<'_, wire::node::Owned>,
) -> Result<(), EncodeError> {
    for (index, node) in graph.nodes().iter().enumerate() {
        let index = u32::try_from(index).expect("the list was sized from this arena, so indices fit in u32");
        write_node(node, nodes.reborrow().get(index))?;
    }
    Ok(())
}

/// A best-effort size of `graph` on the wire, in words, used to presize the
/// first segment so a value usually lands in one contiguous segment.
#[must_use]
pub fn estimated_words(graph: &MontyGraph) -> usize {
    // A node is three words (tag and scalar, one pointer) plus its payload.
    let payload: usize = graph
        .nodes()
        .iter()
        .map(|node| match node {
            MontyNode::String(s)
            | MontyNode::Path(s)
            | MontyNode::Repr(s)
            | MontyNode::Cycle(s)
            | MontyNode::Decimal(s) => s.len() / 8 + 1,
            MontyNode::Bytes(b) => b.len() / 8 + 1,
            MontyNode::List(ids) | MontyNode::Tuple(ids) | MontyNode::Set(ids) | MontyNode::FrozenSet(ids) => {
                ids.len() / 2 + 1
            }
            MontyNode::Dict(pairs) => pairs.len() + 1,
            MontyNode::Int(_)
            | MontyNode::Float(_)
            | MontyNode::Bool(_)
            | MontyNode::None
            | MontyNode::Ellipsis
            | MontyNode::NotImplemented => 0,
            other => other.decoded_size() / 8 + 8,
        })
        .sum();
    8 + graph.len() * 3 + payload
}

fn write_node(node: &MontyNode, mut b: wire::node::Builder<'_>) -> Result<(), EncodeError> {
    match node {
        MontyNode::Ellipsis => b.set_ellipsis(()),
        MontyNode::NotImplemented => b.set_not_implemented(()),
        MontyNode::None => b.set_none(()),
        MontyNode::Bool(v) => b.set_bool_value(*v),
        MontyNode::Int(v) => b.set_int_value(*v),
        MontyNode::BigInt(v) => write_big_int(v, b.init_big_int())?,
        MontyNode::Float(v) => b.set_float(*v),
        MontyNode::Complex(c) => {
            let mut out = b.init_complex();
            out.set_real(c.real);
            out.set_imag(c.imag);
        }
        MontyNode::String(s) => b.set_str_value(checked_text(s, "str value")?),
        MontyNode::Bytes(v) => b.set_bytes(checked_data(v, "bytes value")?),
        MontyNode::Date(d) => {
            let mut out = b.init_date();
            out.set_year(d.year);
            out.set_month(d.month);
            out.set_day(d.day);
        }
        MontyNode::DateTime(dt) => write_date_time(dt, b.init_date_time())?,
        MontyNode::Time(t) => write_time(t, b.init_time())?,
        MontyNode::TimeDelta(td) => {
            let mut out = b.init_time_delta();
            out.set_days(td.days);
            out.set_seconds(td.seconds);
            out.set_microseconds(td.microseconds);
        }
        MontyNode::TimeZone(tz) => {
            let mut out = b.init_time_zone();
            out.set_offset_seconds(tz.offset_seconds);
            write_optional_text!(out.init_name(), &tz.name, "time zone name");
        }
        MontyNode::Decimal(s) => b.set_decimal(checked_text(s, "decimal value")?),
        MontyNode::Exception { exc_type, arg } => {
            let mut out = b.init_exception();
            out.set_type(exc_type_to_wire(*exc_type));
            write_optional_text!(out.init_arg(), arg, "exception argument");
        }
        MontyNode::Type(t) => b.set_type(t.name()),
        MontyNode::BuiltinFunction(f) => b.set_builtin_function(<&'static str>::from(*f)),
        MontyNode::Path(p) => b.set_path(checked_text(p, "path value")?),
        MontyNode::FileHandle(fh) => {
            let mut out = b.init_file_handle();
            out.set_path(checked_text(&fh.path, "file handle path")?);
            let (mode, binary) = file_mode_to_wire(fh.mode);
            out.set_mode(mode);
            out.set_binary(binary);
            out.set_position(fh.position);
        }
        MontyNode::Function { name, docstring } => {
            let mut out = b.init_function();
            out.set_name(checked_text(name, "function name")?);
            write_optional_text!(out.init_docstring(), docstring, "function docstring");
        }
        MontyNode::Repr(s) => b.set_repr(checked_text(s, "repr value")?),
        MontyNode::Cycle(s) => b.set_cycle(checked_text(s, "cycle marker")?),
        MontyNode::List(ids) => write_ids(ids, b.init_list(wire_len(ids.len(), "list")?)),
        MontyNode::Tuple(ids) => write_ids(ids, b.init_tuple(wire_len(ids.len(), "tuple")?)),
        MontyNode::Set(ids) => write_ids(ids, b.init_set(wire_len(ids.len(), "set")?)),
        MontyNode::FrozenSet(ids) => write_ids(ids, b.init_frozen_set(wire_len(ids.len(), "frozenset")?)),
        MontyNode::NamedTuple {
            type_name,
            field_names,
            values,
        } => {
            let mut out = b.init_named_tuple();
            out.set_type_name(checked_text(type_name, "namedtuple type name")?);
            let mut names = out
                .reborrow()
                .init_field_names(wire_len(field_names.len(), "namedtuple fields")?);
            for (i, name) in (0..).zip(field_names) {
                names.set(i, checked_text(name, "namedtuple field name")?);
            }
            write_ids(values, out.init_values(wire_len(values.len(), "namedtuple values")?));
        }
        MontyNode::Dict(pairs) => write_pairs(pairs, b.init_dict(wire_len(pairs.len(), "dict")?)),
        MontyNode::ClassType(class) => {
            let mut out = b.init_class_type();
            out.set_name(checked_text(&class.name, "class name")?);
            out.set_id(class.id.as_bytes());
            out.set_host_defined(class.host_defined);
            out.set_is_dataclass(class.is_dataclass);
            write_pairs(
                &class.attrs,
                out.init_attrs(wire_len(class.attrs.len(), "class attributes")?),
            );
        }
        MontyNode::ClassInstance {
            class_type,
            instance_id,
            attrs,
        } => {
            let mut out = b.init_class_instance();
            out.set_class_type(class_type.0);
            out.set_instance_id(instance_id.as_bytes());
            write_pairs(attrs, out.init_attrs(wire_len(attrs.len(), "instance attributes")?));
        }
        MontyNode::Module { name, id, attrs } => {
            let mut out = b.init_module();
            out.set_name(checked_text(name, "module name")?);
            out.set_id(id.as_bytes());
            write_pairs(attrs, out.init_attrs(wire_len(attrs.len(), "module attributes")?));
        }
    }
    Ok(())
}

pub(crate) fn write_big_int(value: &BigInt, mut out: wire::big_int::Builder<'_>) -> Result<(), EncodeError> {
    let (sign, magnitude) = value.to_bytes_be();
    out.set_negative(sign == Sign::Minus);
    // `to_bytes_be` spells zero as one zero byte; the canonical form is empty.
    if sign != Sign::NoSign {
        out.set_magnitude(checked_data(&magnitude, "bigint magnitude")?);
    }
    Ok(())
}

fn write_date_time(dt: &MontyDateTime, mut out: wire::date_time::Builder<'_>) -> Result<(), EncodeError> {
    out.set_year(dt.year);
    out.set_month(dt.month);
    out.set_day(dt.day);
    out.set_hour(dt.hour);
    out.set_minute(dt.minute);
    out.set_second(dt.second);
    out.set_microsecond(dt.microsecond);
    match dt.offset_seconds {
        None => out.reborrow().init_date_time_offset().set_naive(()),
        Some(s) => out.reborrow().init_date_time_offset().set_seconds(s),
    }
    write_optional_text!(out.init_date_time_zone_name(), &dt.timezone_name, "datetime zone name");
    Ok(())
}

fn write_time(t: &MontyTime, mut out: wire::time::Builder<'_>) -> Result<(), EncodeError> {
    out.set_hour(t.hour);
    out.set_minute(t.minute);
    out.set_second(t.second);
    out.set_microsecond(t.microsecond);
    out.set_fold(t.fold);
    match t.offset_seconds {
        None => out.reborrow().init_time_offset().set_naive(()),
        Some(s) => out.reborrow().init_time_offset().set_seconds(s),
    }
    write_optional_text!(out.init_time_zone_name(), &t.timezone_name, "time zone name");
    Ok(())
}

fn write_ids(ids: &[NodeId], mut out: primitive_list::Builder<'_, u32>) {
    for (i, id) in (0..).zip(ids) {
        out.set(i, id.0);
    }
}

/// Writes (key, value) id pairs; the list was sized from `pairs`.
pub(crate) fn write_pairs(pairs: &[(NodeId, NodeId)], mut out: struct_list::Builder<'_, wire::pair::Owned>) {
    for (i, (key, value)) in (0..).zip(pairs) {
        let mut pair = out.reborrow().get(i);
        pair.set_key(key.0);
        pair.set_value(value.0);
    }
}

pub(crate) fn file_mode_to_wire(mode: FileMode) -> (wire::FileMode, bool) {
    match mode {
        FileMode::Read(b) => (wire::FileMode::Read, b),
        FileMode::ReadUpdate(b) => (wire::FileMode::ReadUpdate, b),
        FileMode::Write(b) => (wire::FileMode::Write, b),
        FileMode::WriteUpdate(b) => (wire::FileMode::WriteUpdate, b),
        FileMode::Append(b) => (wire::FileMode::Append, b),
        FileMode::AppendUpdate(b) => (wire::FileMode::AppendUpdate, b),
    }
}

pub(crate) fn file_mode_from_wire(mode: wire::FileMode, binary: bool) -> FileMode {
    match mode {
        wire::FileMode::Read => FileMode::Read(binary),
        wire::FileMode::ReadUpdate => FileMode::ReadUpdate(binary),
        wire::FileMode::Write => FileMode::Write(binary),
        wire::FileMode::WriteUpdate => FileMode::WriteUpdate(binary),
        wire::FileMode::Append => FileMode::Append(binary),
        wire::FileMode::AppendUpdate => FileMode::AppendUpdate(binary),
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Reads a `Value` into a `MontyObject`, checking everything a hostile writer
/// could get wrong.
pub fn read_value(reader: wire::value::Reader<'_>, ctx: &mut DecodeContext) -> Result<MontyObject, DecodeError> {
    let nodes = reader.get_nodes()?;
    let root = reader.get_root();
    let len = nodes.len();
    if len == 1 && root == 0 {
        // A scalar, the common answer to a call, read straight into monty's
        // one-node value. `read_node` refuses any child index in an arena of
        // one node (a child must precede its holder), so the node is a leaf,
        // which is all monty's own check of an arena would look for.
        charge_arena(len, ctx)?;
        let mut arena = ArenaReader {
            len,
            depths: Vec::new(),
            ctx,
        };
        let node = arena.read_node(0, nodes.get(0)).map_err(|err| in_node(0, err))?;
        return Ok(unstable::object_from_node(node));
    }
    let graph = read_graph(nodes, ctx)?;
    if graph.is_empty() {
        return Err(DecodeError::MissingRoot);
    }
    if root >= len {
        return Err(DecodeError::RootOutOfRange { root, len });
    }
    unstable::object_from_graph(graph, NodeId(root)).map_err(graph_error)
}

/// Reads a node list into a validated `MontyGraph`, in one forward pass.
pub fn read_graph(
    nodes: struct_list::Reader<'_, wire::node::Owned>,
    ctx: &mut DecodeContext,
) -> Result<MontyGraph, DecodeError> {
    let count = nodes.len();
    charge_arena(count, ctx)?;
    let mut out = Vec::with_capacity(count as usize);
    let mut arena = ArenaReader {
        len: count,
        depths: Vec::with_capacity(count as usize),
        ctx,
    };
    for (index, node) in (0..count).zip(nodes.iter()) {
        out.push(arena.read_node(index, node).map_err(|err| in_node(index, err))?);
    }
    MontyGraph::from_nodes(out).map_err(graph_error)
}

/// Checks an arena of `count` nodes against the node limit and charges
/// what reading it makes: the nodes and their depths.
fn charge_arena(count: u32, ctx: &mut DecodeContext) -> Result<(), DecodeError> {
    let max_nodes = ctx.limits().max_nodes;
    if count > max_nodes {
        return Err(DecodeError::TooManyNodes {
            count,
            limit: max_nodes,
        });
    }
    let per_node = (std::mem::size_of::<MontyNode>() + std::mem::size_of::<u32>()) as u64;
    ctx.charge(u64::from(count).saturating_mul(per_node))
}

/// Names the node of an error in what a node holds, so a host can find the
/// node; errors of the message's structure or size stay as they are.
fn in_node(node: u32, err: DecodeError) -> DecodeError {
    match err {
        DecodeError::InvalidBigInt { .. } | DecodeError::InvalidUuid { .. } | DecodeError::UnknownName { .. } => {
            DecodeError::InNode {
                node,
                source: Box::new(err),
            }
        }
        other => other,
    }
}

pub(crate) fn graph_error(err: GraphError) -> DecodeError {
    match err {
        GraphError::IndexNotLower { node, child } => DecodeError::ForwardReference {
            node: node.0,
            child: child.0,
        },
        GraphError::ClassTypeNotAClass { node } => DecodeError::ClassTypeNotAClass { node: node.0 },
        GraphError::RootOutOfRange { root, len } => DecodeError::RootOutOfRange {
            root: root.0,
            len: u32::try_from(len).unwrap_or(u32::MAX),
        },
    }
}

/// Per-arena decoding state: child-index checks and depth tracking.
struct ArenaReader<'c> {
    len: u32,
    /// `depths[i]` is the nesting depth of node `i` (leaves are 1). Children
    /// precede their holders, so one forward pass computes every depth.
    depths: Vec<u32>,
    ctx: &'c mut DecodeContext,
}

impl ArenaReader<'_> {
    /// Validates a child index of node `node` and folds its depth into `depth`.
    fn child(&self, node: u32, child: u32, depth: &mut u32) -> Result<NodeId, DecodeError> {
        if child >= self.len {
            return Err(DecodeError::NodeIndexOutOfRange {
                node,
                child,
                len: self.len,
            });
        }
        if child >= node {
            return Err(DecodeError::ForwardReference { node, child });
        }
        *depth = (*depth).max(self.depths[child as usize] + 1);
        Ok(NodeId(child))
    }

    fn ids(
        &mut self,
        node: u32,
        list: primitive_list::Reader<'_, u32>,
        depth: &mut u32,
    ) -> Result<Vec<NodeId>, DecodeError> {
        let mut ids = self.ctx.vec(list.len())?;
        for child in list.iter() {
            ids.push(self.child(node, child, depth)?);
        }
        Ok(ids)
    }

    fn pairs(
        &mut self,
        node: u32,
        list: struct_list::Reader<'_, wire::pair::Owned>,
        depth: &mut u32,
    ) -> Result<Vec<(NodeId, NodeId)>, DecodeError> {
        let mut pairs = self.ctx.vec(list.len())?;
        for pair in list.iter() {
            pairs.push((
                self.child(node, pair.get_key(), depth)?,
                self.child(node, pair.get_value(), depth)?,
            ));
        }
        Ok(pairs)
    }

    fn read_node(&mut self, index: u32, node: wire::node::Reader<'_>) -> Result<MontyNode, DecodeError> {
        use wire::node::Which;

        let mut depth = 1;
        let which = node.which().map_err(|e| DecodeError::UnknownUnionArm {
            union_name: "Node",
            value: e.0,
        })?;
        let out = match which {
            Which::Ellipsis(()) => MontyNode::Ellipsis,
            Which::NotImplemented(()) => MontyNode::NotImplemented,
            Which::None(()) => MontyNode::None,
            Which::BoolValue(v) => MontyNode::Bool(v),
            Which::IntValue(v) => MontyNode::Int(v),
            Which::BigInt(r) => MontyNode::BigInt(read_big_int(r?, self.ctx)?),
            Which::Float(v) => MontyNode::Float(v),
            Which::Complex(r) => {
                let r = r?;
                MontyNode::Complex(MontyComplex {
                    real: r.get_real(),
                    imag: r.get_imag(),
                })
            }
            Which::StrValue(r) => MontyNode::String(self.ctx.text(r, "Node.strValue")?),
            Which::Bytes(r) => MontyNode::Bytes(self.ctx.data(r)?),
            Which::Date(r) => {
                let r = r?;
                MontyNode::Date(MontyDate {
                    year: r.get_year(),
                    month: r.get_month(),
                    day: r.get_day(),
                })
            }
            Which::DateTime(r) => MontyNode::DateTime(read_date_time(r?, self.ctx)?),
            Which::Time(r) => MontyNode::Time(read_time(r?, self.ctx)?),
            Which::TimeDelta(r) => {
                let r = r?;
                MontyNode::TimeDelta(MontyTimeDelta {
                    days: r.get_days(),
                    seconds: r.get_seconds(),
                    microseconds: r.get_microseconds(),
                })
            }
            Which::TimeZone(r) => {
                let r = r?;
                MontyNode::TimeZone(MontyTimeZone {
                    offset_seconds: r.get_offset_seconds(),
                    name: read_optional_text!(self.ctx, r.get_name(), wire::time_zone::name, "TimeZone.name"),
                })
            }
            Which::Decimal(r) => MontyNode::Decimal(self.ctx.text(r, "Node.decimal")?),
            Which::Exception(r) => {
                let r = r?;
                MontyNode::Exception {
                    exc_type: exc_type_from_wire(r.get_type().map_err(|e| unknown_enum("ExcType", e))?),
                    arg: read_optional_text!(self.ctx, r.get_arg(), wire::exception_value::arg, "ExceptionValue.arg"),
                }
            }
            Which::Type(r) => {
                let name = self.ctx.text(r, "Node.type")?;
                MontyNode::Type(
                    MontyType::from_type_name(&name).ok_or(DecodeError::UnknownName { kind: "type", name })?,
                )
            }
            Which::BuiltinFunction(r) => {
                let name = self.ctx.text(r, "Node.builtinFunction")?;
                MontyNode::BuiltinFunction(
                    name.parse::<BuiltinsFunctions>()
                        .map_err(|_| DecodeError::UnknownName {
                            kind: "builtin function",
                            name,
                        })?,
                )
            }
            Which::Path(r) => MontyNode::Path(self.ctx.text(r, "Node.path")?),
            Which::FileHandle(r) => {
                let r = r?;
                let mode = r.get_mode().map_err(|e| unknown_enum("FileMode", e))?;
                MontyNode::FileHandle(MontyFileHandle {
                    path: self.ctx.text(r.get_path(), "FileHandle.path")?,
                    mode: file_mode_from_wire(mode, r.get_binary()),
                    position: r.get_position(),
                })
            }
            Which::Function(r) => {
                let r = r?;
                MontyNode::Function {
                    name: self.ctx.text(r.get_name(), "Function.name")?,
                    docstring: read_optional_text!(
                        self.ctx,
                        r.get_docstring(),
                        wire::function::docstring,
                        "Function.docstring"
                    ),
                }
            }
            Which::Repr(r) => MontyNode::Repr(self.ctx.text(r, "Node.repr")?),
            Which::Cycle(r) => MontyNode::Cycle(self.ctx.text(r, "Node.cycle")?),
            Which::List(r) => MontyNode::List(self.ids(index, r?, &mut depth)?),
            Which::Tuple(r) => MontyNode::Tuple(self.ids(index, r?, &mut depth)?),
            Which::Set(r) => MontyNode::Set(self.ids(index, r?, &mut depth)?),
            Which::FrozenSet(r) => MontyNode::FrozenSet(self.ids(index, r?, &mut depth)?),
            Which::NamedTuple(r) => {
                let r = r?;
                let names = r.get_field_names()?;
                let mut field_names = self.ctx.vec(names.len())?;
                for name in names.iter() {
                    field_names.push(self.ctx.text(name, "NamedTuple.fieldNames")?);
                }
                MontyNode::NamedTuple {
                    type_name: self.ctx.text(r.get_type_name(), "NamedTuple.typeName")?,
                    field_names,
                    values: self.ids(index, r.get_values()?, &mut depth)?,
                }
            }
            Which::Dict(r) => MontyNode::Dict(self.pairs(index, r?, &mut depth)?),
            Which::ClassType(r) => {
                let r = r?;
                self.ctx.charge(std::mem::size_of::<ClassTypeNode>() as u64)?;
                MontyNode::ClassType(Box::new(ClassTypeNode {
                    name: self.ctx.text(r.get_name(), "ClassType.name")?,
                    id: read_uuid(r.get_id(), "ClassType.id")?,
                    host_defined: r.get_host_defined(),
                    is_dataclass: r.get_is_dataclass(),
                    attrs: self.pairs(index, r.get_attrs()?, &mut depth)?,
                }))
            }
            Which::ClassInstance(r) => {
                let r = r?;
                MontyNode::ClassInstance {
                    class_type: self.child(index, r.get_class_type(), &mut depth)?,
                    instance_id: read_uuid(r.get_instance_id(), "ClassInstance.instanceId")?,
                    attrs: self.pairs(index, r.get_attrs()?, &mut depth)?,
                }
            }
            Which::Module(r) => {
                let r = r?;
                MontyNode::Module {
                    name: self.ctx.text(r.get_name(), "Module.name")?,
                    id: read_uuid(r.get_id(), "Module.id")?,
                    attrs: self.pairs(index, r.get_attrs()?, &mut depth)?,
                }
            }
        };
        if depth > self.ctx.limits().max_depth {
            return Err(DecodeError::TooDeep {
                node: index,
                limit: self.ctx.limits().max_depth,
            });
        }
        self.depths.push(depth);
        Ok(out)
    }
}

pub(crate) fn read_big_int(r: wire::big_int::Reader<'_>, ctx: &mut DecodeContext) -> Result<BigInt, DecodeError> {
    let magnitude = r.get_magnitude()?;
    ctx.charge(magnitude.len() as u64)?;
    match (r.get_negative(), magnitude.first()) {
        (true, None) => Err(DecodeError::InvalidBigInt {
            reason: "zero must not be negative",
        }),
        (_, Some(0)) => Err(DecodeError::InvalidBigInt {
            reason: "magnitude has a leading zero byte",
        }),
        (negative, _) => {
            let sign = if magnitude.is_empty() {
                Sign::NoSign
            } else if negative {
                Sign::Minus
            } else {
                Sign::Plus
            };
            Ok(BigInt::from_bytes_be(sign, magnitude))
        }
    }
}

fn read_date_time(r: wire::date_time::Reader<'_>, ctx: &mut DecodeContext) -> Result<MontyDateTime, DecodeError> {
    // monty's datetime has no fold; one set would be silently lost.
    if r.get_fold() != 0 {
        return Err(DecodeError::UnsupportedField {
            field: "DateTime.fold",
            reason: "monty's datetime has no fold",
        });
    }
    Ok(MontyDateTime {
        year: r.get_year(),
        month: r.get_month(),
        day: r.get_day(),
        hour: r.get_hour(),
        minute: r.get_minute(),
        second: r.get_second(),
        microsecond: r.get_microsecond(),
        offset_seconds: match r
            .get_date_time_offset()
            .which()
            .map_err(|e| unknown_arm("DateTime.dateTimeOffset", e))?
        {
            wire::date_time::date_time_offset::Which::Naive(()) => None,
            wire::date_time::date_time_offset::Which::Seconds(s) => Some(s),
        },
        timezone_name: read_optional_text!(
            ctx,
            r.get_date_time_zone_name(),
            wire::date_time::date_time_zone_name,
            "DateTime.dateTimeZoneName"
        ),
    })
}

fn read_time(r: wire::time::Reader<'_>, ctx: &mut DecodeContext) -> Result<MontyTime, DecodeError> {
    Ok(MontyTime {
        hour: r.get_hour(),
        minute: r.get_minute(),
        second: r.get_second(),
        microsecond: r.get_microsecond(),
        offset_seconds: match r
            .get_time_offset()
            .which()
            .map_err(|e| unknown_arm("Time.timeOffset", e))?
        {
            wire::time::time_offset::Which::Naive(()) => None,
            wire::time::time_offset::Which::Seconds(s) => Some(s),
        },
        timezone_name: read_optional_text!(
            ctx,
            r.get_time_zone_name(),
            wire::time::time_zone_name,
            "Time.timeZoneName"
        ),
        fold: r.get_fold(),
    })
}

pub(crate) fn read_uuid(
    r: capnp::Result<capnp::data::Reader<'_>>,
    field: &'static str,
) -> Result<MontyUuid, DecodeError> {
    let bytes = r?;
    MontyUuid::try_from_slice(bytes).ok_or(DecodeError::InvalidUuid {
        field,
        len: bytes.len(),
    })
}
