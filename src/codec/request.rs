//! `Request` ⇄ the `Request` struct: what a host asks of a session.

use std::time::Duration;

use capnp::primitive_list;
use monty_types::{
    MontyObject,
    unstable::{self, MontyGraph, NodeId, PushValue},
};

use super::{
    exception::{read_exception, write_exception},
    exception_words,
    fields::{checked_data, checked_text, duration_nanos, unknown_arm, wire_len},
    limits::{read_limits, write_limits},
    message::DecodeContext,
    mounts::{
        estimated_words as access_words, mounts_words, read_access, read_mounts, write_environment, write_mounts,
    },
    os::{read_compile_options, read_os_policy, write_compile_options, write_os_policy},
    typecheck::{read_options, read_repl_type_check, write_options},
    value::{estimated_words as graph_words, graph_error, read_graph, read_value, write_graph, write_value},
    value_words,
};
use crate::{
    error::{DecodeError, EncodeError},
    protocol::{CallResult, Feed, NameLookupResult, OpenRepl, OpenRun, PrintDelivery, Request, TypeCheck},
    schema::monty_wire_capnp as wire,
};

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Writes `request` into `b`.
pub fn write_request(request: &Request, mut b: wire::request::Builder<'_>) -> Result<(), EncodeError> {
    match request {
        Request::OpenRun(open) => write_open_run(open, b.init_open_run())?,
        Request::Run(inputs) => write_inputs(inputs, b.init_run())?,
        Request::Start(inputs) => write_inputs(inputs, b.init_start())?,
        Request::ResumeCall(result) => write_call_result(result, b.init_resume_call())?,
        Request::ResumeOsCall(result) => write_call_result(result, b.init_resume_os_call())?,
        Request::ResumeNameLookup(result) => {
            let mut out = b.init_resume_name_lookup();
            match result {
                NameLookupResult::Value(value) => write_value(value, out.init_value())?,
                NameLookupResult::Undefined => out.set_undefined(()),
                NameLookupResult::Exception(exc) => write_exception(exc, out.init_exception())?,
            }
        }
        Request::ResolveFutures(results) => {
            let mut out = b.init_resolve_futures(wire_len(results.len(), "future results")?);
            for (i, (call_id, result)) in (0..).zip(results) {
                let mut entry = out.reborrow().get(i);
                entry.set_call_id(*call_id);
                write_call_result(result, entry.init_result())?;
            }
        }
        Request::Abort(exc) => write_exception(exc, b.init_abort())?,
        Request::SetLimits(limits) => write_limits(limits, b.init_set_limits()),
        Request::DumpProgram => b.set_dump_program(()),
        Request::LoadProgram { dump, limits } => {
            let mut out = b.init_load_program();
            out.set_dump(checked_data(dump, "program dump")?);
            write_limits(limits, out.init_limits());
        }
        Request::OpenRepl(open) => write_open_repl(open, b.init_open_repl())?,
        Request::FeedRun(feed) => write_feed(feed, b.init_feed_run())?,
        Request::FeedStart(feed) => write_feed(feed, b.init_feed_start())?,
        Request::DetectContinuation(source) => b.set_detect_continuation(checked_text(source, "source")?),
        Request::ListFunctions => b.set_list_functions(()),
        Request::CallFunction { name, args } => {
            let mut out = b.init_call_function();
            out.set_name(checked_text(name, "function name")?);
            write_inputs(args, out.init_args())?;
        }
        Request::DumpSession => b.set_dump_session(()),
        Request::LoadSession { dump, limits, access } => {
            let mut out = b.init_load_session();
            out.set_dump(checked_data(dump, "session dump")?);
            write_limits(limits, out.reborrow().init_limits());
            write_mounts(&access.mounts, |n| out.reborrow().init_mounts(n))?;
            write_environment(&access.environment, || out.init_environment())?;
        }
        Request::TypeCheck(check) => write_type_check(check, b.init_type_check())?,
        Request::SetDumpKey(key) => b.set_set_dump_key(checked_data(key, "dump key")?),
        Request::SetPrintDelivery(delivery) => {
            let mut out = b.init_set_print_delivery();
            match delivery {
                PrintDelivery::EveryFragment => out.set_every_fragment(()),
                PrintDelivery::Lines => out.set_lines(()),
                PrintDelivery::Interval(every) => out.set_interval(duration_nanos(*every)),
            }
        }
    }
    Ok(())
}

fn write_open_repl(open: &OpenRepl, mut b: wire::open_repl::Builder<'_>) -> Result<(), EncodeError> {
    b.set_script_name(checked_text(&open.script_name, "script name")?);
    write_compile_options(&open.compile_options, b.reborrow().init_compile_options());
    write_limits(&open.limits, b.reborrow().init_limits());
    write_os_policy(&open.os_policy, b.reborrow().init_os_policy())?;
    b.set_cwd(checked_text(&open.cwd, "working directory")?);
    match &open.type_check {
        None => b.reborrow().init_type_checking().set_off(()),
        Some(options) => write_options(options, b.reborrow().init_type_checking().init_on())?,
    }
    write_mounts(&open.access.mounts, |n| b.reborrow().init_mounts(n))?;
    write_environment(&open.access.environment, || b.init_environment())
}

fn write_feed(feed: &Feed, mut b: wire::feed::Builder<'_>) -> Result<(), EncodeError> {
    b.set_code(checked_text(&feed.code, "snippet")?);
    b.set_skip_type_check(feed.skip_type_check);
    write_mounts(&feed.mounts, |n| b.reborrow().init_mounts(n))?;
    let mut named = b.init_inputs();
    let (graph, roots) = merged_arena(feed.inputs.iter().map(|(_, value)| value))?;
    write_graph(
        &graph,
        named.reborrow().init_nodes(wire_len(graph.len(), "input arena")?),
    )?;
    let mut entries = named.init_entries(wire_len(roots.len(), "inputs")?);
    for (i, ((name, _), root)) in (0..).zip(feed.inputs.iter().zip(&roots)) {
        let mut entry = entries.reborrow().get(i);
        entry.set_name(checked_text(name, "input name")?);
        entry.set_node(root.0);
    }
    Ok(())
}

fn write_type_check(check: &TypeCheck, mut b: wire::type_check::Builder<'_>) -> Result<(), EncodeError> {
    b.set_code(checked_text(&check.code, "code")?);
    b.set_prefix_code(checked_text(&check.prefix_code, "prefix code")?);
    b.set_script_name(checked_text(&check.script_name, "script name")?);
    write_options(&check.options, b.init_options())
}

fn write_open_run(open: &OpenRun, mut b: wire::open_run::Builder<'_>) -> Result<(), EncodeError> {
    b.set_code(checked_text(&open.code, "source code")?);
    b.set_script_name(checked_text(&open.script_name, "script name")?);
    let mut names = b
        .reborrow()
        .init_input_names(wire_len(open.input_names.len(), "input names")?);
    for (i, name) in (0..).zip(&open.input_names) {
        names.set(i, checked_text(name, "input name")?);
    }
    write_compile_options(&open.compile_options, b.reborrow().init_compile_options());
    write_limits(&open.limits, b.reborrow().init_limits());
    write_os_policy(&open.os_policy, b.reborrow().init_os_policy())?;
    b.set_cwd(checked_text(&open.cwd, "working directory")?);
    write_mounts(&open.access.mounts, |n| b.reborrow().init_mounts(n))?;
    write_environment(&open.access.environment, || b.init_environment())
}

/// Writes the inputs as one arena: each value's reachable nodes are copied
/// in after the previous value's, so every root spans its own contiguous run
/// of nodes (which is what lets the reader split the arena without copying).
fn write_inputs(inputs: &[MontyObject], mut b: wire::inputs::Builder<'_>) -> Result<(), EncodeError> {
    let (graph, roots) = merged_arena(inputs.iter())?;
    write_graph(&graph, b.reborrow().init_nodes(wire_len(graph.len(), "input arena")?))?;
    write_ids(&roots, b.init_roots(wire_len(roots.len(), "inputs")?));
    Ok(())
}

/// One arena holding every value, each as the run of nodes after the
/// previous value's root, and the root of each. `Inputs` and `NamedValues`
/// (whose roots are its entries' nodes) are both written from it.
fn merged_arena<'a>(
    values: impl Iterator<Item = &'a MontyObject> + Clone,
) -> Result<(MontyGraph, Vec<NodeId>), EncodeError> {
    // Checked before merging: the merged arena is at most this long, and a
    // `MontyGraph` must not outgrow the u32 ids a list length bounds.
    let total = values.clone().fold(0usize, |sum, value| {
        sum.saturating_add(unstable::graph_parts(value).0.len())
    });
    wire_len(total, "input arena")?;
    let mut graph = MontyGraph::with_capacity(total);
    let roots = values.map(|value| value.as_ref().push_into(&mut graph)).collect();
    Ok((graph, roots))
}

fn write_ids(ids: &[NodeId], mut out: primitive_list::Builder<'_, u32>) {
    for (i, id) in (0..).zip(ids) {
        out.set(i, id.0);
    }
}

fn write_call_result(result: &CallResult, mut b: wire::call_result::Builder<'_>) -> Result<(), EncodeError> {
    match result {
        CallResult::Value(value) => write_value(value, b.init_value())?,
        CallResult::Exception(exc) => write_exception(exc, b.init_exception())?,
        CallResult::Future => b.set_future(()),
        CallResult::NotFound => b.set_not_found(()),
        CallResult::NotHandled => b.set_not_handled(()),
        CallResult::EagerValue(value) => write_value(value, b.init_eager_value())?,
        CallResult::EagerException(exc) => write_exception(exc, b.init_eager_exception())?,
    }
    Ok(())
}

fn options_words(options: &crate::protocol::TypeCheckOptions) -> usize {
    16 + options.stubs.len() / 8
        + options
            .module_stubs
            .iter()
            .map(|stub| 4 + (stub.module().len() + stub.source().len()) / 8)
            .sum::<usize>()
}

/// A rough wire size of `request`, in words, for presizing its message.
pub(crate) fn estimated_words(request: &Request) -> usize {
    let call_result_words = |result: &CallResult| match result {
        CallResult::Value(value) | CallResult::EagerValue(value) => value_words(value),
        CallResult::Exception(exc) | CallResult::EagerException(exc) => exception_words(exc),
        CallResult::Future | CallResult::NotFound | CallResult::NotHandled => 0,
    };
    let payload = match request {
        Request::OpenRun(open) => {
            let texts = open.code.len()
                + open.script_name.len()
                + open.cwd.len()
                + open.input_names.iter().map(|name| name.len() + 8).sum::<usize>();
            64 + texts / 8 + access_words(&open.access)
        }
        Request::Run(inputs) | Request::Start(inputs) => inputs
            .iter()
            .map(|input| graph_words(unstable::graph_parts(input).0) + 1)
            .sum(),
        Request::ResumeCall(result) | Request::ResumeOsCall(result) => call_result_words(result),
        Request::ResumeNameLookup(NameLookupResult::Value(value)) => value_words(value),
        Request::ResumeNameLookup(NameLookupResult::Exception(exc)) | Request::Abort(exc) => exception_words(exc),
        Request::ResolveFutures(results) => results.iter().map(|(_, result)| 2 + call_result_words(result)).sum(),
        Request::LoadProgram { dump, .. } => 32 + dump.len() / 8,
        Request::OpenRepl(open) => {
            64 + (open.script_name.len() + open.cwd.len()) / 8
                + open.type_check.as_ref().map_or(0, options_words)
                + access_words(&open.access)
        }
        Request::FeedRun(feed) | Request::FeedStart(feed) => {
            32 + feed.code.len() / 8
                + mounts_words(&feed.mounts)
                + feed
                    .inputs
                    .iter()
                    .map(|(name, value)| graph_words(unstable::graph_parts(value).0) + name.len() / 8 + 3)
                    .sum::<usize>()
        }
        Request::DetectContinuation(source) => 8 + source.len() / 8,
        Request::CallFunction { name, args } => {
            16 + name.len() / 8
                + args
                    .iter()
                    .map(|arg| graph_words(unstable::graph_parts(arg).0) + 1)
                    .sum::<usize>()
        }
        Request::LoadSession { dump, access, .. } => 32 + dump.len() / 8 + access_words(access),
        Request::TypeCheck(check) => {
            32 + (check.code.len() + check.prefix_code.len() + check.script_name.len()) / 8
                + options_words(&check.options)
        }
        Request::SetDumpKey(key) => 8 + key.len() / 8,
        Request::ResumeNameLookup(NameLookupResult::Undefined)
        | Request::SetLimits(_)
        | Request::DumpProgram
        | Request::ListFunctions
        | Request::DumpSession
        | Request::SetPrintDelivery(_) => 32,
    };
    16 + payload
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Reads a request, checking everything a hostile writer could get wrong.
pub fn read_request(r: wire::request::Reader<'_>, ctx: &mut DecodeContext) -> Result<Request, DecodeError> {
    use wire::request::Which;

    Ok(
        match r.which().map_err(|e| unknown_arm(crate::error::REQUEST_UNION, e))? {
            Which::OpenRun(open) => {
                ctx.charge(std::mem::size_of::<OpenRun>() as u64)?;
                Request::OpenRun(Box::new(read_open_run(open?, ctx)?))
            }
            Which::Run(inputs) => Request::Run(read_inputs(inputs?, ctx)?),
            Which::Start(inputs) => Request::Start(read_inputs(inputs?, ctx)?),
            Which::ResumeCall(result) => Request::ResumeCall(read_call_result(result?, ctx)?),
            Which::ResumeOsCall(result) => Request::ResumeOsCall(read_call_result(result?, ctx)?),
            Which::ResumeNameLookup(result) => {
                use wire::name_lookup_result::Which as Lookup;
                Request::ResumeNameLookup(match result?.which().map_err(|e| unknown_arm("NameLookupResult", e))? {
                    Lookup::Value(value) => NameLookupResult::Value(read_value(value?, ctx)?),
                    Lookup::Undefined(()) => NameLookupResult::Undefined,
                    Lookup::Exception(exc) => NameLookupResult::Exception(read_exception(exc?, ctx)?),
                })
            }
            Which::ResolveFutures(list) => {
                let list = list?;
                let mut results = ctx.vec(list.len())?;
                for entry in list.iter() {
                    results.push((entry.get_call_id(), read_call_result(entry.get_result()?, ctx)?));
                }
                Request::ResolveFutures(results)
            }
            Which::Abort(exc) => Request::Abort(read_exception(exc?, ctx)?),
            Which::SetLimits(limits) => Request::SetLimits(read_limits(limits?)?),
            Which::DumpProgram(()) => Request::DumpProgram,
            Which::LoadProgram(load) => {
                let load = load?;
                Request::LoadProgram {
                    dump: ctx.data(load.get_dump())?,
                    limits: read_limits(load.get_limits()?)?,
                }
            }
            Which::OpenRepl(open) => {
                let open = open?;
                ctx.charge(std::mem::size_of::<OpenRepl>() as u64)?;
                Request::OpenRepl(Box::new(OpenRepl {
                    script_name: ctx.text(open.get_script_name(), "OpenRepl.scriptName")?,
                    compile_options: read_compile_options(open.get_compile_options()?)?,
                    limits: read_limits(open.get_limits()?)?,
                    os_policy: read_os_policy(open.get_os_policy()?, ctx)?,
                    cwd: ctx.text(open.get_cwd(), "OpenRepl.cwd")?,
                    type_check: read_repl_type_check(open.get_type_checking(), ctx)?,
                    access: read_access(open.get_mounts(), open.get_environment(), ctx)?,
                }))
            }
            Which::FeedRun(feed) => Request::FeedRun(read_feed(feed?, ctx)?),
            Which::FeedStart(feed) => Request::FeedStart(read_feed(feed?, ctx)?),
            Which::DetectContinuation(source) => {
                Request::DetectContinuation(ctx.text(source, "Request.detectContinuation")?)
            }
            Which::ListFunctions(()) => Request::ListFunctions,
            Which::CallFunction(call) => {
                let call = call?;
                Request::CallFunction {
                    name: ctx.text(call.get_name(), "CallFunction.name")?,
                    args: read_inputs(call.get_args()?, ctx)?,
                }
            }
            Which::DumpSession(()) => Request::DumpSession,
            Which::LoadSession(load) => {
                let load = load?;
                Request::LoadSession {
                    dump: ctx.data(load.get_dump())?,
                    limits: read_limits(load.get_limits()?)?,
                    access: read_access(load.get_mounts(), load.get_environment(), ctx)?,
                }
            }
            Which::TypeCheck(check) => {
                let check = check?;
                ctx.charge(std::mem::size_of::<TypeCheck>() as u64)?;
                Request::TypeCheck(Box::new(TypeCheck {
                    code: ctx.text(check.get_code(), "TypeCheck.code")?,
                    prefix_code: ctx.text(check.get_prefix_code(), "TypeCheck.prefixCode")?,
                    script_name: ctx.text(check.get_script_name(), "TypeCheck.scriptName")?,
                    options: read_options(check.get_options()?, ctx)?,
                }))
            }
            Which::SetDumpKey(key) => Request::SetDumpKey(ctx.data(key)?),
            Which::SetPrintDelivery(delivery) => {
                use wire::print_delivery::Which as Delivery;
                Request::SetPrintDelivery(match delivery?.which().map_err(|e| unknown_arm("PrintDelivery", e))? {
                    Delivery::EveryFragment(()) => PrintDelivery::EveryFragment,
                    Delivery::Lines(()) => PrintDelivery::Lines,
                    Delivery::Interval(nanos) => PrintDelivery::Interval(Duration::from_nanos(nanos)),
                })
            }
        },
    )
}

fn read_feed(r: wire::feed::Reader<'_>, ctx: &mut DecodeContext) -> Result<Feed, DecodeError> {
    Ok(Feed {
        code: ctx.text(r.get_code(), "Feed.code")?,
        inputs: read_named_values(r.get_inputs()?, ctx)?,
        skip_type_check: r.get_skip_type_check(),
        mounts: read_mounts(r.get_mounts(), ctx)?,
    })
}

fn read_open_run(r: wire::open_run::Reader<'_>, ctx: &mut DecodeContext) -> Result<OpenRun, DecodeError> {
    let names = r.get_input_names()?;
    let mut input_names = ctx.vec(names.len())?;
    for name in names.iter() {
        input_names.push(ctx.text(name, "OpenRun.inputNames")?);
    }
    Ok(OpenRun {
        code: ctx.text(r.get_code(), "OpenRun.code")?,
        script_name: ctx.text(r.get_script_name(), "OpenRun.scriptName")?,
        input_names,
        compile_options: read_compile_options(r.get_compile_options()?)?,
        limits: read_limits(r.get_limits()?)?,
        os_policy: read_os_policy(r.get_os_policy()?, ctx)?,
        cwd: ctx.text(r.get_cwd(), "OpenRun.cwd")?,
        access: read_access(r.get_mounts(), r.get_environment(), ctx)?,
    })
}

fn read_call_result(r: wire::call_result::Reader<'_>, ctx: &mut DecodeContext) -> Result<CallResult, DecodeError> {
    use wire::call_result::Which;

    Ok(match r.which().map_err(|e| unknown_arm("CallResult", e))? {
        Which::Value(value) => CallResult::Value(read_value(value?, ctx)?),
        Which::Exception(exc) => CallResult::Exception(read_exception(exc?, ctx)?),
        Which::Future(()) => CallResult::Future,
        Which::NotFound(()) => CallResult::NotFound,
        Which::NotHandled(()) => CallResult::NotHandled,
        Which::EagerValue(value) => CallResult::EagerValue(read_value(value?, ctx)?),
        Which::EagerException(exc) => CallResult::EagerException(read_exception(exc?, ctx)?),
    })
}

/// Reads an `Inputs` arena into one value per root.
///
/// This crate writes each input as the run of nodes after the previous
/// root, up to and including its own. When an arena has that shape (roots
/// increasing, no node reaching below its run), the arena is cut into the
/// runs, which moves the nodes the arena already paid for instead of copying
/// them. Any other arena (a host may share an object between inputs) gets
/// one copy per root, each charged in full before it is made, since a value
/// named by many roots would otherwise be copied many times for free.
fn read_inputs(r: wire::inputs::Reader<'_>, ctx: &mut DecodeContext) -> Result<Vec<MontyObject>, DecodeError> {
    let list = r.get_roots()?;
    let mut roots = ctx.vec::<u32>(list.len())?;
    roots.extend(list.iter());
    values_at_roots(r.get_nodes()?, &roots, ctx)
}

/// Reads named values: the same arena as `Inputs`, with a name per root.
fn read_named_values(
    r: wire::named_values::Reader<'_>,
    ctx: &mut DecodeContext,
) -> Result<Vec<(String, MontyObject)>, DecodeError> {
    let entries = r.get_entries()?;
    let mut names = ctx.vec::<String>(entries.len())?;
    let mut roots = ctx.vec::<u32>(entries.len())?;
    for entry in entries.iter() {
        names.push(ctx.text(entry.get_name(), "NamedRoot.name")?);
        roots.push(entry.get_node());
    }
    let values = values_at_roots(r.get_nodes()?, &roots, ctx)?;
    let mut named = ctx.vec::<(String, MontyObject)>(entries.len())?;
    named.extend(names.into_iter().zip(values));
    Ok(named)
}

/// Decodes an arena and returns the value at each root.
fn values_at_roots(
    nodes: capnp::struct_list::Reader<'_, wire::node::Owned>,
    roots: &[u32],
    ctx: &mut DecodeContext,
) -> Result<Vec<MontyObject>, DecodeError> {
    let graph = read_graph(nodes, ctx)?;
    // `read_graph` bounds the arena by a u32 limit.
    let len = u32::try_from(graph.len()).unwrap_or(u32::MAX);
    for &root in roots {
        if root >= len {
            return Err(DecodeError::RootOutOfRange { root, len });
        }
    }
    let mut values = ctx.vec::<MontyObject>(u32::try_from(roots.len()).unwrap_or(u32::MAX))?;
    if runs_are_separate(&graph, roots) {
        split_runs(graph, roots, &mut values)?;
    } else {
        copy_values(&graph, roots, &mut values, ctx)?;
    }
    Ok(values)
}

/// Whether the roots increase and every node up to the last root refers
/// only to nodes of its own run (after the previous root).
fn runs_are_separate(graph: &MontyGraph, roots: &[u32]) -> bool {
    if !roots.windows(2).all(|pair| pair[0] < pair[1]) {
        return false;
    }
    let mut runs = roots.iter().copied().peekable();
    let mut start = 0;
    for (index, node) in (0..).zip(graph.nodes()) {
        let Some(&end) = runs.peek() else {
            break;
        };
        let mut inside = true;
        node.for_each_child(|child| inside &= child.0 >= start);
        if !inside {
            return false;
        }
        if index == end {
            start = end + 1;
            runs.next();
        }
    }
    true
}

/// Cuts a checked arena into its runs, last first so each cut only
/// shortens what is left; nodes after the last root belong to no input.
fn split_runs(graph: MontyGraph, roots: &[u32], values: &mut Vec<MontyObject>) -> Result<(), DecodeError> {
    let mut nodes = graph.into_nodes();
    let mut end = roots.len();
    while let Some(last) = end.checked_sub(1) {
        let root = roots[last];
        let start = match last.checked_sub(1) {
            Some(previous) => roots[previous] + 1,
            None => 0,
        };
        nodes.truncate(root as usize + 1);
        let mut run = if start == 0 {
            let mut first = std::mem::take(&mut nodes);
            // The first run keeps the arena's buffer; give back what the other runs took.
            first.shrink_to_fit();
            first
        } else {
            nodes.split_off(start as usize)
        };
        for node in &mut run {
            node.for_each_child_mut(|child| child.0 -= start);
        }
        let graph = MontyGraph::from_nodes(run).map_err(graph_error)?;
        values.push(unstable::object_from_graph(graph, NodeId(root - start)).map_err(graph_error)?);
        end = last;
    }
    values.reverse();
    Ok(())
}

/// Copies each root's value out of the shared arena.
fn copy_values(
    graph: &MontyGraph,
    roots: &[u32],
    values: &mut Vec<MontyObject>,
    ctx: &mut DecodeContext,
) -> Result<(), DecodeError> {
    // A value lies within `lowest[root]..=root`, where `lowest[i]` is the
    // lowest index in node `i`'s value (children precede their holders, so
    // one forward pass finds it), and `sizes[i]` is the decoded size of
    // nodes `0..i`: together they price a copy before it is made. A copy
    // also needs two scratch entries per node of that span.
    let len = u32::try_from(graph.len()).unwrap_or(u32::MAX);
    let mut lowest = ctx.vec::<u32>(len)?;
    let mut sizes = ctx.vec::<u64>(len.saturating_add(1))?;
    sizes.push(0);
    for (index, node) in (0..).zip(graph.nodes()) {
        let mut low = index;
        node.for_each_child(|child| low = low.min(lowest[child.index()]));
        lowest.push(low);
        sizes.push(sizes[index as usize].saturating_add(node.decoded_size() as u64));
    }
    let scratch = (std::mem::size_of::<bool>() + std::mem::size_of::<Option<NodeId>>()) as u64;
    for &root in roots {
        let (low, high) = (lowest[root as usize] as usize, root as usize);
        let span = (high - low + 1) as u64;
        ctx.charge((sizes[high + 1] - sizes[low]).saturating_add(span.saturating_mul(scratch)))?;
        values.push(graph.value(NodeId(root)).to_owned());
    }
    Ok(())
}
