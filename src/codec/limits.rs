//! `ResourceLimits` and `SourceRange` ⇄ their wire structs.

use std::time::Duration;

use monty_types::{ResourceLimits, SourceRange};

use super::fields::{checked_text, duration_nanos, to_usize, unknown_arm};
use super::message::DecodeContext;
use crate::{
    error::{DecodeError, EncodeError},
    schema::monty_wire_capnp as wire,
};

/// Writes every field of `limits`.
pub fn write_limits(limits: &ResourceLimits, mut b: wire::resource_limits::Builder<'_>) {
    match limits.max_feed_duration {
        None => b.reborrow().init_max_feed_duration().set_unlimited(()),
        Some(d) => b.reborrow().init_max_feed_duration().set_nanos(duration_nanos(d)),
    }
    match limits.max_turn_duration {
        None => b.reborrow().init_max_turn_duration().set_unlimited(()),
        Some(d) => b.reborrow().init_max_turn_duration().set_nanos(duration_nanos(d)),
    }
    match limits.max_memory {
        None => b.reborrow().init_max_memory().set_unlimited(()),
        Some(m) => b.reborrow().init_max_memory().set_bytes(m as u64),
    }
    match limits.gc_interval {
        None => b.reborrow().init_gc_interval().set_default(()),
        Some(n) => b.reborrow().init_gc_interval().set_allocations(n as u64),
    }
    b.set_max_recursion_depth(limits.max_recursion_depth as u64);
    b.set_max_suspensions(limits.max_suspensions as u64);
    match limits.max_total_sleep {
        None => b.init_max_total_sleep().set_unlimited(()),
        Some(d) => b.init_max_total_sleep().set_nanos(duration_nanos(d)),
    }
}

/// Reads resource limits; a field the host left unset keeps the schema
/// default (unlimited, or monty's default for the two counted limits).
pub fn read_limits(r: wire::resource_limits::Reader<'_>) -> Result<ResourceLimits, DecodeError> {
    use wire::resource_limits as rl;
    Ok(ResourceLimits {
        max_feed_duration: match r
            .get_max_feed_duration()
            .which()
            .map_err(|e| unknown_arm("ResourceLimits.maxFeedDuration", e))?
        {
            rl::max_feed_duration::Which::Unlimited(()) => None,
            rl::max_feed_duration::Which::Nanos(n) => Some(Duration::from_nanos(n)),
        },
        max_turn_duration: match r
            .get_max_turn_duration()
            .which()
            .map_err(|e| unknown_arm("ResourceLimits.maxTurnDuration", e))?
        {
            rl::max_turn_duration::Which::Unlimited(()) => None,
            rl::max_turn_duration::Which::Nanos(n) => Some(Duration::from_nanos(n)),
        },
        max_memory: match r
            .get_max_memory()
            .which()
            .map_err(|e| unknown_arm("ResourceLimits.maxMemory", e))?
        {
            rl::max_memory::Which::Unlimited(()) => None,
            rl::max_memory::Which::Bytes(n) => Some(to_usize(n, "ResourceLimits.maxMemory")?),
        },
        gc_interval: match r
            .get_gc_interval()
            .which()
            .map_err(|e| unknown_arm("ResourceLimits.gcInterval", e))?
        {
            rl::gc_interval::Which::Default(()) => None,
            rl::gc_interval::Which::Allocations(n) => Some(to_usize(n, "ResourceLimits.gcInterval")?),
        },
        max_recursion_depth: to_usize(r.get_max_recursion_depth(), "ResourceLimits.maxRecursionDepth")?,
        max_suspensions: to_usize(r.get_max_suspensions(), "ResourceLimits.maxSuspensions")?,
        max_total_sleep: match r
            .get_max_total_sleep()
            .which()
            .map_err(|e| unknown_arm("ResourceLimits.maxTotalSleep", e))?
        {
            rl::max_total_sleep::Which::Unlimited(()) => None,
            rl::max_total_sleep::Which::Nanos(n) => Some(Duration::from_nanos(n)),
        },
    })
}

/// Writes a source span.
pub fn write_source_range(range: &SourceRange, mut b: wire::source_range::Builder<'_>) -> Result<(), EncodeError> {
    b.set_filename(checked_text(&range.filename, "source range filename")?);
    b.set_start(range.start);
    b.set_end(range.end);
    Ok(())
}

/// Reads a source span.
pub fn read_source_range(
    r: wire::source_range::Reader<'_>,
    ctx: &mut DecodeContext,
) -> Result<SourceRange, DecodeError> {
    Ok(SourceRange {
        filename: ctx.text(r.get_filename(), "SourceRange.filename")?,
        start: r.get_start(),
        end: r.get_end(),
    })
}
