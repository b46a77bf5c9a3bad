//! Static type checking through monty's checker (ty).
//!
//! ty's diagnostics can only be rendered, never read field by field, so a
//! check renders twice: once in the host's format for `rendered`, and once
//! as ty's JSON, which is parsed into the structured diagnostics. The second
//! render reuses the checker's cached analysis.

use monty_type_checking::{SourceFile, TypeCheckContext, TypeChecker, scan_imports};
use monty_types::{ModuleStub, TypeCheckState, TypeCheckingConfig, TypeCheckingFormat};
use serde_json::Value as Json;

use crate::protocol::{Diagnostic, ErrorCode, ProtocolError, Severity, TypeCheckOptions, TypeCheckReport};

/// The module the REPL's earlier snippets (and host stubs) are star-imported from.
const SESSION_STUBS: &str = "session_stubs.py";

/// What a check sees besides the code itself.
struct Surroundings<'a> {
    /// Declarations star-imported into the code.
    stubs: &'a str,
    /// Imports that run before the star import.
    prelude: &'a str,
    module_stubs: &'a [ModuleStub],
}

/// Checks `code` as the file `path`.
fn check(
    checker: &mut TypeChecker,
    code: &str,
    path: &str,
    around: &Surroundings<'_>,
    config: TypeCheckingConfig,
) -> Result<TypeCheckReport, ProtocolError> {
    let source = SourceFile::new(code, path);
    let stubs_file = SourceFile::new(around.stubs, SESSION_STUBS);
    let context = TypeCheckContext {
        stubs: (!around.stubs.is_empty()).then_some(&stubs_file),
        module_stubs: around.module_stubs,
        prelude: around.prelude,
    };
    let rendered = match checker.run_with(&source, &context, config).map_err(checker_failed)? {
        None => return Ok(TypeCheckReport::default()),
        Some(diagnostics) => diagnostics.to_string(),
    };
    let json_config = TypeCheckingConfig {
        format: TypeCheckingFormat::Json,
        color: false,
    };
    let json = checker
        .run_with(&source, &context, json_config)
        .map_err(checker_failed)?
        .map(|diagnostics| diagnostics.to_string())
        .unwrap_or_default();
    Ok(TypeCheckReport {
        diagnostics: parse_json(&json)?,
        rendered,
    })
}

/// A stateless `typeCheck` request: the prefix and the host's stubs are
/// star-imported, so their names are known but their own problems are not
/// reported.
pub(crate) fn check_request(
    checker: &mut TypeChecker,
    code: &str,
    prefix_code: &str,
    script_name: &str,
    options: &TypeCheckOptions,
) -> Result<TypeCheckReport, ProtocolError> {
    let mut stubs = options.stubs.clone();
    if !prefix_code.is_empty() {
        if !stubs.is_empty() && !stubs.ends_with('\n') {
            stubs.push('\n');
        }
        stubs.push_str(prefix_code);
    }
    let around = Surroundings {
        stubs: &stubs,
        prelude: "",
        module_stubs: &options.module_stubs,
    };
    let config = TypeCheckingConfig {
        format: options.format,
        color: options.color,
    };
    check(checker, code, script_name, &around, config)
}

/// The session's checker, made on its first use: building ty's database
/// costs hundreds of KiB and milliseconds, which a session that never checks
/// should not pay.
pub(crate) fn checker_in(slot: &mut Option<Box<TypeChecker>>) -> &mut TypeChecker {
    slot.get_or_insert_with(Default::default)
}

/// A REPL's type checking: what earlier snippets declared, in monty's own
/// bookkeeping type so dumps carry it.
pub(crate) struct ReplTypeCheck {
    pub(crate) state: TypeCheckState,
    pub(crate) module_stubs: Vec<ModuleStub>,
}

impl ReplTypeCheck {
    pub(crate) fn new(options: TypeCheckOptions) -> Self {
        Self {
            state: TypeCheckState {
                committed_stubs: options.stubs,
                pending_snippet: None,
                config: TypeCheckingConfig {
                    format: options.format,
                    color: options.color,
                },
                committed_imports: String::new(),
                pending_imports: String::new(),
                asked_modules: Vec::new(),
            },
            module_stubs: options.module_stubs,
        }
    }

    /// Holds `code` as the pending snippet: a clean one, or one the host runs
    /// unchecked (`skipTypeCheck`). Once its feed succeeds, later snippets
    /// see what it declared; a dump taken while it is suspended carries it.
    pub(crate) fn hold(&mut self, code: &str) {
        self.state.pending_snippet = Some(code.to_owned());
        self.state.pending_imports = scan_imports(code).prelude;
    }

    /// Checks a snippet against everything committed so far; a clean
    /// snippet becomes pending until its feed succeeds.
    pub(crate) fn check_snippet(
        &mut self,
        checker: &mut TypeChecker,
        code: &str,
        path: &str,
    ) -> Result<TypeCheckReport, ProtocolError> {
        let around = Surroundings {
            stubs: &self.state.committed_stubs,
            prelude: &self.state.committed_imports,
            module_stubs: &self.module_stubs,
        };
        let report = check(checker, code, path, &around, self.state.config)?;
        if report.diagnostics.is_empty() {
            self.hold(code);
        }
        Ok(report)
    }

    /// The pending snippet ran: later snippets see what it declared.
    pub(crate) fn commit(&mut self) {
        if let Some(snippet) = self.state.pending_snippet.take() {
            if !self.state.committed_stubs.is_empty() && !self.state.committed_stubs.ends_with('\n') {
                self.state.committed_stubs.push('\n');
            }
            self.state.committed_stubs.push_str(&snippet);
            let imports = std::mem::take(&mut self.state.pending_imports);
            self.state.committed_imports.push_str(&imports);
        }
    }

    /// The pending snippet failed: forget it.
    pub(crate) fn discard(&mut self) {
        self.state.pending_snippet = None;
        self.state.pending_imports.clear();
    }
}

fn checker_failed(message: String) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidArgument, format!("type checking failed: {message}"))
}

/// Reads ty's JSON diagnostics (a list of objects with `code`, `severity`,
/// `message`, `filename`, `location` and `end_location`).
fn parse_json(json: &str) -> Result<Vec<Diagnostic>, ProtocolError> {
    let internal = |what: &str| {
        ProtocolError::new(
            ErrorCode::InternalError,
            format!("the type checker's JSON output {what}"),
        )
    };
    let list: Vec<Json> = serde_json::from_str(json).map_err(|_| internal("is not a JSON list"))?;
    let text = |entry: &Json, key: &str| entry.get(key).and_then(Json::as_str).unwrap_or_default().to_owned();
    let position = |entry: &Json, key: &str, field: &str| {
        entry
            .get(key)
            .and_then(|location| location.get(field))
            .and_then(Json::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    Ok(list
        .iter()
        .map(|entry| Diagnostic {
            code: text(entry, "code"),
            severity: match entry.get("severity").and_then(Json::as_str) {
                Some("info") => Severity::Info,
                Some("warning") => Severity::Warning,
                Some("fatal") => Severity::Fatal,
                _ => Severity::Error,
            },
            message: text(entry, "message"),
            // ty roots the in-memory project at `/`.
            file: text(entry, "filename").trim_start_matches('/').to_owned(),
            start_line: position(entry, "location", "row"),
            start_column: position(entry, "location", "column"),
            end_line: position(entry, "end_location", "row"),
            end_column: position(entry, "end_location", "column"),
        })
        .collect())
}
