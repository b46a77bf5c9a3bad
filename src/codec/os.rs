//! The sandbox's view of the host ⇄ its wire structs: `CompileOptions`,
//! `OsPolicy`, and every `OsFunctionCall` an `OsCall` carries.

use std::time::Duration;

use capnp::text_list;
use monty_types::{
    AssertMessageAnnotations, CompileOptions, DateTimeSource, GetenvArgs, MkdirCallArgs, MontyPath, MontyTimeZone,
    OpenCallArgs, OsFunctionCall, OsPolicy, PathBytesDataArgs, PathStringDataArgs, ProcessTime, RandomSeed,
    RandomStart, RenameCallArgs, SandboxTimeZone, ScanArgs, SleepMode, TimeCaller, UrandomArgs,
};

use super::{
    fields::{checked_data, checked_text, duration_nanos, to_usize, unknown_arm, unknown_enum, wire_len},
    message::DecodeContext,
    value::{file_mode_from_wire, file_mode_to_wire, read_big_int, read_value, write_big_int, write_value},
    value_words,
};
use crate::{
    error::{DecodeError, EncodeError},
    schema::monty_wire_capnp as wire,
};

enum_table! {
    /// The wire enumerant of a `time` function reading the clock.
    fn time_caller_to_wire;
    /// The `time` function a wire enumerant names.
    fn time_caller_from_wire;
    TimeCaller => TimeCaller {
        Time => Time,
        TimeNs => TimeNs,
        Monotonic => Monotonic,
        MonotonicNs => MonotonicNs,
        PerfCounter => PerfCounter,
        PerfCounterNs => PerfCounterNs,
        Gmtime => Gmtime,
        Localtime => Localtime,
        Asctime => Asctime,
        Ctime => Ctime,
        Strftime => Strftime,
    }
}

enum_table! {
    /// The wire enumerant of a process-clock policy.
    fn process_time_to_wire;
    /// The process-clock policy a wire enumerant names.
    fn process_time_from_wire;
    ProcessTime => ProcessTime {
        Zero => Zero,
        Elapsed => Elapsed,
    }
}

// ---------------------------------------------------------------------------
// CompileOptions
// ---------------------------------------------------------------------------

/// Writes compiler options; `0` bytes of assert message means "off".
pub fn write_compile_options(options: &CompileOptions, mut b: wire::compile_options::Builder<'_>) {
    b.set_assert_message_max_bytes(options.assert_message_annotations.max_bytes());
    b.set_source_scan_threshold(options.source_scan_threshold as u64);
}

/// Reads compiler options.
pub fn read_compile_options(r: wire::compile_options::Reader<'_>) -> Result<CompileOptions, DecodeError> {
    Ok(CompileOptions {
        assert_message_annotations: AssertMessageAnnotations::from_max_bytes(r.get_assert_message_max_bytes()),
        source_scan_threshold: to_usize(r.get_source_scan_threshold(), "CompileOptions.sourceScanThreshold")?,
    })
}

// ---------------------------------------------------------------------------
// OsPolicy
// ---------------------------------------------------------------------------

/// Writes every policy of `policy`.
pub fn write_os_policy(policy: &OsPolicy, mut b: wire::os_policy::Builder<'_>) -> Result<(), EncodeError> {
    let mut clock = b.reborrow().init_clock();
    match policy.datetime {
        DateTimeSource::System => clock.set_system(()),
        DateTimeSource::CallHost => clock.set_call_host(()),
        DateTimeSource::Fixed {
            unix_seconds,
            microsecond,
        } => {
            let mut fixed = clock.init_fixed();
            fixed.set_unix_seconds(unix_seconds);
            fixed.set_microsecond(microsecond);
        }
    }

    let mut zone = b.reborrow().init_local_zone();
    match &policy.timezone {
        // monty's own UTC is a fixed zone named "UTC"; the `utc` arm spares
        // hosts from spelling that out.
        SandboxTimeZone::Fixed {
            offset_seconds: 0,
            name: Some(name),
        } if name == "UTC" => zone.set_utc(()),
        SandboxTimeZone::Fixed { offset_seconds, name } => {
            write_time_zone(*offset_seconds, name.as_deref(), zone.init_fixed())?;
        }
        SandboxTimeZone::Named(named) => zone.set_named(checked_text(named.name(), "time zone name")?),
    }

    let mut sleep = b.reborrow().init_sleep();
    match policy.sleep {
        SleepMode::System(cap) if cap == SleepMode::DEFAULT_MAX => sleep.set_system(()),
        SleepMode::System(cap) => sleep.set_system_capped(duration_nanos(cap)),
        SleepMode::CallHost => sleep.set_call_host(()),
        SleepMode::Zero => sleep.set_zero(()),
    }

    b.set_process_time(process_time_to_wire(policy.process_time));

    let mut random = b.init_random_start();
    match &policy.random_start {
        RandomStart::System => random.set_system(()),
        RandomStart::CallHost => random.set_call_host(()),
        RandomStart::Seed(RandomSeed::Int(seed)) => write_big_int(seed, random.init_seed_int())?,
        RandomStart::Seed(RandomSeed::Float(seed)) => random.set_seed_float(*seed),
        RandomStart::Seed(RandomSeed::Str(seed)) => random.set_seed_str(checked_text(seed, "random seed")?),
        RandomStart::Seed(RandomSeed::Bytes(seed)) => random.set_seed_bytes(checked_data(seed, "random seed")?),
    }
    Ok(())
}

/// Reads an OS policy. A named zone is resolved against the bundled tz
/// database here, so a name this build does not know fails the decode
/// rather than the run.
pub fn read_os_policy(r: wire::os_policy::Reader<'_>, ctx: &mut DecodeContext) -> Result<OsPolicy, DecodeError> {
    use wire::os_policy::{clock, local_zone, random_start, sleep};

    let datetime = match r.get_clock().which().map_err(|e| unknown_arm("OsPolicy.clock", e))? {
        clock::Which::System(()) => DateTimeSource::System,
        clock::Which::CallHost(()) => DateTimeSource::CallHost,
        clock::Which::Fixed(fixed) => {
            let fixed = fixed?;
            DateTimeSource::Fixed {
                unix_seconds: fixed.get_unix_seconds(),
                microsecond: fixed.get_microsecond(),
            }
        }
    };

    let timezone = match r
        .get_local_zone()
        .which()
        .map_err(|e| unknown_arm("OsPolicy.localZone", e))?
    {
        local_zone::Which::Utc(()) => SandboxTimeZone::utc(),
        local_zone::Which::Fixed(zone) => {
            let zone = read_time_zone(zone?, ctx)?;
            SandboxTimeZone::Fixed {
                offset_seconds: zone.offset_seconds,
                name: zone.name,
            }
        }
        local_zone::Which::Named(name) => {
            let name = ctx.text(name, "OsPolicy.timeZone.named")?;
            SandboxTimeZone::named(&name).map_err(|_| DecodeError::UnknownTimeZone { name })?
        }
    };

    let sleep = match r.get_sleep().which().map_err(|e| unknown_arm("OsPolicy.sleep", e))? {
        sleep::Which::System(()) => SleepMode::System(SleepMode::DEFAULT_MAX),
        sleep::Which::SystemCapped(nanos) => SleepMode::System(Duration::from_nanos(nanos)),
        sleep::Which::CallHost(()) => SleepMode::CallHost,
        sleep::Which::Zero(()) => SleepMode::Zero,
    };

    let process_time = process_time_from_wire(r.get_process_time().map_err(|e| unknown_enum("ProcessTime", e))?);

    let random_start = match r
        .get_random_start()
        .which()
        .map_err(|e| unknown_arm("OsPolicy.randomStart", e))?
    {
        random_start::Which::System(()) => RandomStart::System,
        random_start::Which::CallHost(()) => RandomStart::CallHost,
        random_start::Which::SeedInt(seed) => RandomStart::Seed(RandomSeed::Int(read_big_int(seed?, ctx)?)),
        random_start::Which::SeedFloat(seed) => RandomStart::Seed(RandomSeed::Float(seed)),
        random_start::Which::SeedStr(seed) => {
            RandomStart::Seed(RandomSeed::Str(ctx.text(seed, "OsPolicy.randomStart.seedStr")?))
        }
        random_start::Which::SeedBytes(seed) => RandomStart::Seed(RandomSeed::Bytes(ctx.data(seed)?)),
    };

    Ok(OsPolicy {
        datetime,
        timezone,
        sleep,
        process_time,
        random_start,
    })
}

fn write_time_zone(
    offset_seconds: i32,
    name: Option<&str>,
    mut b: wire::time_zone::Builder<'_>,
) -> Result<(), EncodeError> {
    b.set_offset_seconds(offset_seconds);
    write_optional_text!(b.init_name(), name, "time zone name");
    Ok(())
}

fn read_time_zone(r: wire::time_zone::Reader<'_>, ctx: &mut DecodeContext) -> Result<MontyTimeZone, DecodeError> {
    Ok(MontyTimeZone {
        offset_seconds: r.get_offset_seconds(),
        name: read_optional_text!(ctx, r.get_name(), wire::time_zone::name, "TimeZone.name"),
    })
}

// ---------------------------------------------------------------------------
// OsFunctionCall
// ---------------------------------------------------------------------------

/// Generates both directions of the `OsCall` union from one table. The arms
/// that share a payload shape (a bare path, a duration, a path with text or
/// bytes) are listed once; the rest have a shape of their own and sit side
/// by side in the two generated functions.
macro_rules! os_call_table {
    (
        paths { $($path:ident => $set_path:ident, $path_field:literal;)* }
        durations { $($sleep:ident => $set_sleep:ident;)* }
        path_text { $($text:ident => $init_text:ident;)* }
        path_bytes { $($bytes:ident => $init_bytes:ident;)* }
    ) => {
        /// Writes the operation of `call` into an `OsCall`: its name and its
        /// union arm. The caller fills in the call id, eager flag and position.
        pub fn write_os_call(call: &OsFunctionCall, mut b: wire::os_call::Builder<'_>) -> Result<(), EncodeError> {
            b.set_name(call.name());
            match call {
                $(OsFunctionCall::$path(path) => b.$set_path(checked_text(path.as_str(), "os call path")?),)*
                $(OsFunctionCall::$sleep(delay) => b.$set_sleep(duration_nanos(*delay)),)*
                $(OsFunctionCall::$text(args) => {
                    let mut out = b.$init_text();
                    out.set_path(checked_text(args.path.as_str(), "os call path")?);
                    out.set_data(checked_text(&args.data, "os call text")?);
                })*
                $(OsFunctionCall::$bytes(args) => {
                    let mut out = b.$init_bytes();
                    out.set_path(checked_text(args.path.as_str(), "os call path")?);
                    out.set_data(checked_data(&args.data, "os call bytes")?);
                })*
                OsFunctionCall::Scan(args) => write_scan(args, b.init_scan())?,
                OsFunctionCall::Open(args) => {
                    let mut out = b.init_open();
                    out.set_path(checked_text(args.path.as_str(), "os call path")?);
                    let (mode, binary) = file_mode_to_wire(args.mode);
                    out.set_mode(mode);
                    out.set_binary(binary);
                }
                OsFunctionCall::Mkdir(args) => {
                    let mut out = b.init_mkdir();
                    out.set_path(checked_text(args.path.as_str(), "os call path")?);
                    out.set_parents(args.parents);
                    out.set_exist_ok(args.exist_ok);
                }
                OsFunctionCall::Rename(args) => {
                    let mut out = b.init_rename();
                    out.set_src(checked_text(args.src.as_str(), "rename source")?);
                    out.set_dst(checked_text(args.dst.as_str(), "rename destination")?);
                }
                OsFunctionCall::Getenv(args) => {
                    let mut out = b.init_getenv();
                    out.set_key(checked_text(&args.key, "environment key")?);
                    write_value(&args.default, out.init_default())?;
                }
                OsFunctionCall::GetEnviron => b.set_get_environ(()),
                OsFunctionCall::DateToday => b.set_date_today(()),
                OsFunctionCall::DateTimeNow(zone) => {
                    let mut out = b.init_date_time_now();
                    match zone {
                        None => out.set_naive(()),
                        Some(zone) => write_time_zone(zone.offset_seconds, zone.name.as_deref(), out.init_zone())?,
                    }
                }
                OsFunctionCall::Urandom(args) => b.set_urandom(args.size),
                OsFunctionCall::Time(caller) => b.set_time(time_caller_to_wire(*caller)),
                OsFunctionCall::Import(module) => b.set_import_module(checked_text(module, "module name")?),
                OsFunctionCall::ImportStubs(modules) => {
                    let mut out = b.init_import_stubs(wire_len(modules.len(), "stub modules")?);
                    for (i, module) in (0..).zip(modules) {
                        out.set(i, checked_text(module, "module name")?);
                    }
                }
            }
            Ok(())
        }

        /// Reads the operation of an `OsCall` from its union arm. The `name`
        /// field is not consulted: the arm determines it.
        pub fn read_os_call(r: wire::os_call::Reader<'_>, ctx: &mut DecodeContext) -> Result<OsFunctionCall, DecodeError> {
            use wire::os_call::Which;

            Ok(match r.which().map_err(|e| unknown_arm("OsCall", e))? {
                $(Which::$path(path) => OsFunctionCall::$path(MontyPath::new(ctx.text(path, $path_field)?)),)*
                $(Which::$sleep(nanos) => OsFunctionCall::$sleep(Duration::from_nanos(nanos)),)*
                $(Which::$text(args) => {
                    let args = args?;
                    OsFunctionCall::$text(PathStringDataArgs {
                        path: MontyPath::new(ctx.text(args.get_path(), "PathText.path")?),
                        data: ctx.text(args.get_data(), "PathText.data")?,
                    })
                })*
                $(Which::$bytes(args) => {
                    let args = args?;
                    OsFunctionCall::$bytes(PathBytesDataArgs {
                        path: MontyPath::new(ctx.text(args.get_path(), "PathBytes.path")?),
                        data: ctx.data(args.get_data())?,
                    })
                })*
                Which::Scan(args) => OsFunctionCall::Scan(read_scan(args?, ctx)?),
                Which::Open(args) => {
                    let args = args?;
                    let mode = args.get_mode().map_err(|e| unknown_enum("FileMode", e))?;
                    OsFunctionCall::Open(OpenCallArgs {
                        path: MontyPath::new(ctx.text(args.get_path(), "OpenArgs.path")?),
                        mode: file_mode_from_wire(mode, args.get_binary()),
                    })
                }
                Which::Mkdir(args) => {
                    let args = args?;
                    OsFunctionCall::Mkdir(MkdirCallArgs {
                        path: MontyPath::new(ctx.text(args.get_path(), "MkdirArgs.path")?),
                        parents: args.get_parents(),
                        exist_ok: args.get_exist_ok(),
                    })
                }
                Which::Rename(args) => {
                    let args = args?;
                    OsFunctionCall::Rename(RenameCallArgs {
                        src: MontyPath::new(ctx.text(args.get_src(), "RenameArgs.src")?),
                        dst: MontyPath::new(ctx.text(args.get_dst(), "RenameArgs.dst")?),
                    })
                }
                Which::Getenv(args) => {
                    let args = args?;
                    OsFunctionCall::Getenv(GetenvArgs {
                        key: ctx.text(args.get_key(), "GetenvArgs.key")?,
                        default: read_value(args.get_default()?, ctx)?,
                    })
                }
                Which::GetEnviron(()) => OsFunctionCall::GetEnviron,
                Which::DateToday(()) => OsFunctionCall::DateToday,
                Which::DateTimeNow(args) => {
                    use wire::date_time_now_args::Which as Now;
                    OsFunctionCall::DateTimeNow(match args?.which().map_err(|e| unknown_arm("DateTimeNowArgs", e))? {
                        Now::Naive(()) => None,
                        Now::Zone(zone) => Some(read_time_zone(zone?, ctx)?),
                    })
                }
                Which::Urandom(size) => OsFunctionCall::Urandom(UrandomArgs { size }),
                Which::Time(caller) => {
                    OsFunctionCall::Time(time_caller_from_wire(caller.map_err(|e| unknown_enum("TimeCaller", e))?))
                }
                Which::ImportModule(module) => OsFunctionCall::Import(ctx.text(module, "OsCall.importModule")?),
                Which::ImportStubs(modules) => {
                    OsFunctionCall::ImportStubs(read_texts(modules?, ctx, "OsCall.importStubs")?)
                }
            })
        }
    };
}

os_call_table! {
    paths {
        Exists => set_exists, "OsCall.exists";
        IsFile => set_is_file, "OsCall.isFile";
        IsDir => set_is_dir, "OsCall.isDir";
        IsSymlink => set_is_symlink, "OsCall.isSymlink";
        ReadText => set_read_text, "OsCall.readText";
        ReadBytes => set_read_bytes, "OsCall.readBytes";
        Stat => set_stat, "OsCall.stat";
        Iterdir => set_iterdir, "OsCall.iterdir";
        Resolve => set_resolve, "OsCall.resolve";
        Absolute => set_absolute, "OsCall.absolute";
        Unlink => set_unlink, "OsCall.unlink";
        Rmdir => set_rmdir, "OsCall.rmdir";
    }
    durations {
        Sleep => set_sleep;
        SystemSleep => set_system_sleep;
        AsyncSleep => set_async_sleep;
        AsyncSystemSleep => set_async_system_sleep;
    }
    path_text {
        WriteText => init_write_text;
        AppendText => init_append_text;
    }
    path_bytes {
        WriteBytes => init_write_bytes;
        AppendBytes => init_append_bytes;
    }
}

fn write_scan(args: &ScanArgs, mut b: wire::scan_args::Builder<'_>) -> Result<(), EncodeError> {
    b.set_path(checked_text(args.path.as_str(), "os call path")?);
    match args.max_depth {
        None => b.reborrow().init_max_depth().set_unlimited(()),
        Some(depth) => b.reborrow().init_max_depth().set_depth(depth),
    }
    b.set_follow_symlinks(args.follow_symlinks);
    match &args.pattern {
        None => b.reborrow().init_pattern().set_none(()),
        Some(parts) => {
            let mut out = b
                .reborrow()
                .init_pattern()
                .init_parts(wire_len(parts.len(), "glob pattern")?);
            for (i, part) in (0..).zip(parts) {
                out.set(i, checked_text(part, "glob pattern part")?);
            }
        }
    }
    match args.case_sensitive {
        None => b.reborrow().init_case_sensitive().set_default(()),
        Some(value) => b.reborrow().init_case_sensitive().set_value(value),
    }
    b.set_recurse_symlinks(args.recurse_symlinks);
    Ok(())
}

fn read_scan(r: wire::scan_args::Reader<'_>, ctx: &mut DecodeContext) -> Result<ScanArgs, DecodeError> {
    use wire::scan_args::{case_sensitive, max_depth, pattern};

    Ok(ScanArgs {
        path: MontyPath::new(ctx.text(r.get_path(), "ScanArgs.path")?),
        max_depth: match r
            .get_max_depth()
            .which()
            .map_err(|e| unknown_arm("ScanArgs.maxDepth", e))?
        {
            max_depth::Which::Unlimited(()) => None,
            max_depth::Which::Depth(depth) => Some(depth),
        },
        follow_symlinks: r.get_follow_symlinks(),
        pattern: match r
            .get_pattern()
            .which()
            .map_err(|e| unknown_arm("ScanArgs.pattern", e))?
        {
            pattern::Which::None(()) => None,
            pattern::Which::Parts(parts) => Some(read_texts(parts?, ctx, "ScanArgs.pattern")?),
        },
        case_sensitive: match r
            .get_case_sensitive()
            .which()
            .map_err(|e| unknown_arm("ScanArgs.caseSensitive", e))?
        {
            case_sensitive::Which::Default(()) => None,
            case_sensitive::Which::Value(value) => Some(value),
        },
        recurse_symlinks: r.get_recurse_symlinks(),
    })
}

fn read_texts(
    list: text_list::Reader<'_>,
    ctx: &mut DecodeContext,
    field: &'static str,
) -> Result<Vec<String>, DecodeError> {
    let mut out = ctx.vec(list.len())?;
    for text in list.iter() {
        out.push(ctx.text(text, field)?);
    }
    Ok(out)
}

/// A rough wire size of an `OsCall`, in words, for presizing a message.
pub(crate) fn estimated_words(call: &OsFunctionCall) -> usize {
    let payload = match call {
        OsFunctionCall::WriteText(args) | OsFunctionCall::AppendText(args) => args.path.len() + args.data.len(),
        OsFunctionCall::WriteBytes(args) | OsFunctionCall::AppendBytes(args) => args.path.len() + args.data.len(),
        OsFunctionCall::Getenv(args) => args.key.len() + value_words(&args.default) * 8,
        OsFunctionCall::ImportStubs(modules) => modules.iter().map(|module| module.len() + 8).sum(),
        OsFunctionCall::Scan(args) => {
            args.path.len() + args.pattern.iter().flatten().map(|part| part.len() + 8).sum::<usize>()
        }
        OsFunctionCall::Rename(args) => args.src.len() + args.dst.len(),
        OsFunctionCall::Import(module) => module.len(),
        other => other.fs_primary_path().map_or(0, str::len),
    };
    24 + payload / 8
}
