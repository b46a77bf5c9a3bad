//! Type-checking options and reports, and REPL continuation modes ⇄ their
//! wire structs and enums.

use capnp::struct_list;
use monty::ReplContinuationMode;
use monty_types::{ModuleStub, TypeCheckingFormat};

use super::fields::{checked_text, unknown_arm, unknown_enum, wire_len};
use super::message::DecodeContext;
use crate::{
    error::{DecodeError, EncodeError},
    protocol::{Diagnostic, Severity, TypeCheckOptions, TypeCheckReport},
    schema::monty_wire_capnp as wire,
};

enum_table! {
    /// The wire enumerant of a diagnostics format.
    fn format_to_wire;
    /// The diagnostics format of a wire enumerant.
    fn format_from_wire;
    TypeCheckingFormat => TypeCheckFormat {
        Full => Full,
        Concise => Concise,
        Azure => Azure,
        Json => Json,
        JsonLines => JsonLines,
        Rdjson => Rdjson,
        Pylint => Pylint,
        Gitlab => Gitlab,
        Github => Github,
    }
}

enum_table! {
    /// The wire enumerant of a severity.
    fn severity_to_wire;
    /// The severity of a wire enumerant.
    fn severity_from_wire;
    Severity => Severity {
        Info => Info,
        Warning => Warning,
        Error => Error,
        Fatal => Fatal,
    }
}

enum_table! {
    /// The wire enumerant of a continuation mode.
    fn continuation_to_wire;
    /// The continuation mode of a wire enumerant.
    fn continuation_from_wire;
    ReplContinuationMode => ContinuationMode {
        Complete => Complete,
        IncompleteImplicit => IncompleteImplicit,
        IncompleteBlock => IncompleteBlock,
    }
}

/// Writes type-checking options.
pub fn write_options(
    options: &TypeCheckOptions,
    mut b: wire::type_check_options::Builder<'_>,
) -> Result<(), EncodeError> {
    b.set_stubs(checked_text(&options.stubs, "type-check stubs")?);
    let mut stubs = b
        .reborrow()
        .init_module_stubs(wire_len(options.module_stubs.len(), "module stubs")?);
    for (i, stub) in (0..).zip(&options.module_stubs) {
        let mut out = stubs.reborrow().get(i);
        out.set_module(checked_text(stub.module(), "module stub name")?);
        out.set_source(checked_text(stub.source(), "module stub source")?);
    }
    b.set_format(format_to_wire(options.format));
    b.set_color(options.color);
    Ok(())
}

/// Reads type-checking options; module stub names are validated as monty does.
pub fn read_options(
    r: wire::type_check_options::Reader<'_>,
    ctx: &mut DecodeContext,
) -> Result<TypeCheckOptions, DecodeError> {
    Ok(TypeCheckOptions {
        stubs: ctx.text(r.get_stubs(), "TypeCheckOptions.stubs")?,
        module_stubs: read_module_stubs(r.get_module_stubs()?, ctx)?,
        format: format_from_wire(r.get_format().map_err(|e| unknown_enum("TypeCheckFormat", e))?),
        color: r.get_color(),
    })
}

fn read_module_stubs(
    list: struct_list::Reader<'_, wire::module_stub::Owned>,
    ctx: &mut DecodeContext,
) -> Result<Vec<ModuleStub>, DecodeError> {
    let mut stubs = ctx.vec(list.len())?;
    for stub in list.iter() {
        let module = ctx.text(stub.get_module(), "ModuleStub.module")?;
        let source = ctx.text(stub.get_source(), "ModuleStub.source")?;
        let stub = ModuleStub::new(module.clone(), source).map_err(|e| DecodeError::InvalidModuleStub {
            module,
            reason: e.to_string(),
        })?;
        stubs.push(stub);
    }
    Ok(stubs)
}

/// Writes a type-check report.
pub fn write_report(report: &TypeCheckReport, mut b: wire::type_check_report::Builder<'_>) -> Result<(), EncodeError> {
    let mut list = b
        .reborrow()
        .init_diagnostics(wire_len(report.diagnostics.len(), "diagnostics")?);
    for (i, diagnostic) in (0..).zip(&report.diagnostics) {
        let mut out = list.reborrow().get(i);
        out.set_code(checked_text(&diagnostic.code, "diagnostic code")?);
        out.set_severity(severity_to_wire(diagnostic.severity));
        out.set_message(checked_text(&diagnostic.message, "diagnostic message")?);
        out.set_file(checked_text(&diagnostic.file, "diagnostic file")?);
        out.set_start_line(diagnostic.start_line);
        out.set_start_column(diagnostic.start_column);
        out.set_end_line(diagnostic.end_line);
        out.set_end_column(diagnostic.end_column);
    }
    b.set_rendered(checked_text(&report.rendered, "rendered diagnostics")?);
    Ok(())
}

/// Reads a type-check report.
pub fn read_report(
    r: wire::type_check_report::Reader<'_>,
    ctx: &mut DecodeContext,
) -> Result<TypeCheckReport, DecodeError> {
    let list = r.get_diagnostics()?;
    let mut diagnostics = ctx.vec(list.len())?;
    for d in list.iter() {
        diagnostics.push(Diagnostic {
            code: ctx.text(d.get_code(), "Diagnostic.code")?,
            severity: severity_from_wire(d.get_severity().map_err(|e| unknown_enum("Severity", e))?),
            message: ctx.text(d.get_message(), "Diagnostic.message")?,
            file: ctx.text(d.get_file(), "Diagnostic.file")?,
            start_line: d.get_start_line(),
            start_column: d.get_start_column(),
            end_line: d.get_end_line(),
            end_column: d.get_end_column(),
        });
    }
    Ok(TypeCheckReport {
        diagnostics,
        rendered: ctx.text(r.get_rendered(), "TypeCheckReport.rendered")?,
    })
}

/// Reads the optional type checking of an `OpenRepl`.
pub(crate) fn read_repl_type_check(
    r: wire::open_repl::type_checking::Reader<'_>,
    ctx: &mut DecodeContext,
) -> Result<Option<TypeCheckOptions>, DecodeError> {
    Ok(match r.which().map_err(|e| unknown_arm("OpenRepl.typeChecking", e))? {
        wire::open_repl::type_checking::Which::Off(()) => None,
        wire::open_repl::type_checking::Which::On(options) => Some(read_options(options?, ctx)?),
    })
}
