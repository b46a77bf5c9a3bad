//! OS calls the library answers itself: mounted host directories (through
//! monty's `monty-fs`) and the host's environment map.
//!
//! A call one of them covers is answered here and never reaches the host;
//! every other OS call still suspends as an `osCall`, so a host can mount some
//! paths and serve others itself.
//!
//! Overlay writes live in `monty-fs`'s memory, which it cannot serialize, so
//! each successful write on an overlay mount is also kept (as the OS call that
//! made it) for dumps: a loaded session replays them onto the same overlay
//! mount, opened again from the load request. Each overlay mount keeps at most
//! its memory budget of such writes; a dump past that is refused.

use monty_types::{MontyObject, OsFunctionCall};

use crate::protocol::{CallResult, Environment, ErrorCode, HostAccess, Mount, ProtocolError};

/// What a session answers without the host.
#[derive(Default)]
pub(crate) struct LocalOs {
    /// The session's own mounts, for its whole life.
    session: Mounts,
    /// Mounts of the snippet in flight, on top of the session's.
    feed: Mounts,
    /// The environment map; `None` leaves `os.environ` / `os.getenv` to the host.
    environment: Option<Vec<(String, String)>>,
}

impl LocalOs {
    /// Opens the mounts of `access`; an unusable mount refuses them all.
    pub(crate) fn open(access: &HostAccess) -> Result<Self, ProtocolError> {
        let mut local = Self {
            environment: match &access.environment {
                Environment::CallHost => None,
                Environment::Map(vars) => Some(vars.clone()),
            },
            ..Self::default()
        };
        local.session.add(&access.mounts, &Mounts::default())?;
        Ok(local)
    }

    /// Adds a snippet's own mounts until [`LocalOs::end_feed`]. They may not
    /// overlap the session's, nor contain one: a call is routed to the
    /// snippet's mounts first.
    pub(crate) fn begin_feed(&mut self, mounts: &[Mount]) -> Result<(), ProtocolError> {
        if !self.feed.is_empty() {
            // Refused before anything changes: the snippet in flight keeps its mounts.
            return Err(ProtocolError::new(
                ErrorCode::WrongState,
                "a snippet with mounts of its own is in flight; finish or abort it first",
            ));
        }
        self.feed.add(mounts, &self.session)
    }

    /// Drops the mounts of the snippet that just ended, and what they kept.
    pub(crate) fn end_feed(&mut self) {
        self.feed = Mounts::default();
    }

    /// Answers `call` if a mount or the environment map covers it, or hands
    /// it back for the host.
    pub(crate) fn answer(&mut self, call: OsFunctionCall) -> Result<CallResult, OsFunctionCall> {
        let call = match self.feed.answer(call) {
            Ok(result) => return Ok(result),
            Err(call) => call,
        };
        let call = match self.session.answer(call) {
            Ok(result) => return Ok(result),
            Err(call) => call,
        };
        match (&self.environment, call) {
            (Some(vars), OsFunctionCall::Getenv(args)) => Ok(CallResult::Value(
                vars.iter()
                    .find(|(name, _)| *name == args.key)
                    .map_or(args.default, |(_, value)| MontyObject::string(value.clone())),
            )),
            (Some(vars), OsFunctionCall::GetEnviron) => Ok(CallResult::Value(MontyObject::dict(
                vars.iter()
                    .map(|(name, value)| (MontyObject::string(name.clone()), MontyObject::string(value.clone()))),
            ))),
            (_, call) => Err(call),
        }
    }

    /// The mount state a session dump carries: each mount's virtual path and
    /// mode, and the writes of overlay mounts. Empty without mounts.
    pub(crate) fn dump_state(&self) -> Result<Vec<u8>, ProtocolError> {
        if !self.feed.is_empty() {
            return Err(ProtocolError::new(
                ErrorCode::WrongState,
                "the snippet in flight has mounts of its own, which a dump cannot carry; dump the session \
                 between snippets",
            ));
        }
        self.session.dump_state()
    }

    /// Replays the overlay writes of a dump's mount state onto the mounts this
    /// session opened from the load request.
    pub(crate) fn restore(&mut self, state: &[u8]) -> Result<(), ProtocolError> {
        self.session.restore(state)
    }
}

fn invalid(message: String) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidArgument, message)
}

#[cfg(not(target_family = "wasm"))]
use native::Mounts;

/// Builds without a host disk (wasm32): no mount can be opened.
#[cfg(target_family = "wasm")]
#[derive(Default)]
struct Mounts {}

#[cfg(target_family = "wasm")]
impl Mounts {
    fn add(&mut self, mounts: &[Mount], _outer: &Self) -> Result<(), ProtocolError> {
        refuse_without_disk(mounts)
    }

    fn is_empty(&self) -> bool {
        true
    }

    #[expect(clippy::unused_self, reason = "the same face as the native table")]
    fn answer(&mut self, call: OsFunctionCall) -> Result<CallResult, OsFunctionCall> {
        Err(call)
    }

    #[expect(clippy::unused_self, reason = "the same face as the native table")]
    fn dump_state(&self) -> Result<Vec<u8>, ProtocolError> {
        Ok(Vec::new())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ProtocolError> {
        if state.is_empty() {
            Ok(())
        } else {
            Err(invalid(
                "the dump was taken with mounts, which this build cannot open (it has no host file system)".into(),
            ))
        }
    }
}

/// The refusal of a build without a host file system.
#[cfg_attr(not(target_family = "wasm"), allow(dead_code, reason = "tested on native builds"))]
pub(crate) fn refuse_without_disk(mounts: &[Mount]) -> Result<(), ProtocolError> {
    match mounts.first() {
        None => Ok(()),
        Some(mount) => Err(invalid(format!(
            "cannot mount {:?}: this build of monty-wire has no host file system (wasm32); serve its OS calls \
             from the host instead",
            mount.virtual_path
        ))),
    }
}

#[cfg(not(target_family = "wasm"))]
mod native {
    use monty_fs::{MountCallOutcome, MountRoot, MountTable, OverlayState};
    use monty_types::{OsFunctionCall, normalize_virtual_path};
    use serde::{Deserialize, Serialize};

    use super::invalid;
    use crate::protocol::{CallResult, ErrorCode, Mount, MountMode, ProtocolError};

    /// What a dump records of one mount.
    #[derive(Serialize, Deserialize)]
    struct MountRecord {
        virtual_path: String,
        mode: String,
        /// The overlay's writes, in order (empty for other modes).
        writes: Vec<OsFunctionCall>,
    }

    fn mode_name(mode: MountMode) -> &'static str {
        match mode {
            MountMode::ReadOnly => "read-only",
            MountMode::ReadWrite => "read-write",
            MountMode::Overlay => "overlay",
        }
    }

    /// A mount table and what the engine keeps beside each mount.
    #[derive(Default)]
    pub(super) struct Mounts {
        table: MountTable,
        entries: Vec<Entry>,
    }

    struct Entry {
        /// Normalized, as the table matches it.
        virtual_path: String,
        mode: MountMode,
        /// The opened directory, to check later mounts against.
        root: MountRoot,
        /// Successful writes of an overlay mount, for dumps.
        journal: Option<Journal>,
    }

    struct Journal {
        writes: Vec<OsFunctionCall>,
        /// Their encoded size, bounded by the mount's memory budget.
        bytes: u64,
        limit: u64,
        /// A write did not fit: the overlay can no longer be dumped.
        overflowed: bool,
    }

    impl Mounts {
        pub(super) fn is_empty(&self) -> bool {
            self.entries.is_empty()
        }

        /// Opens `mounts` and adds them, checked against each other, against
        /// this table's mounts and against `outer` (whose mounts they must
        /// neither overlap nor contain). All or nothing.
        pub(super) fn add(&mut self, mounts: &[Mount], outer: &Self) -> Result<(), ProtocolError> {
            if mounts.is_empty() {
                return Ok(());
            }
            // The overlap rules are monty-fs's own: a scratch table of every
            // root involved refuses what the real tables would.
            let mut scratch = MountTable::new();
            for entry in outer.entries.iter().chain(&self.entries) {
                push_checked(&mut scratch, entry.root.clone())?;
            }
            let mut opened = Vec::with_capacity(mounts.len());
            for mount in mounts {
                let root = MountRoot::open(&mount.virtual_path, &mount.host_path)
                    .map_err(|e| invalid(format!("cannot mount {:?}: {e}", mount.virtual_path)))?;
                push_checked(&mut scratch, root.clone())?;
                if let Some(inner) = outer
                    .entries
                    .iter()
                    .find(|e| is_within(&e.virtual_path, root.virtual_path()))
                {
                    return Err(invalid(format!(
                        "a snippet's mount at {:?} would contain the session's mount at {:?}; mount it elsewhere",
                        root.virtual_path(),
                        inner.virtual_path
                    )));
                }
                opened.push((root, mount));
            }
            for (root, mount) in opened {
                let limit = mount.memory_limit.unwrap_or(monty_fs::DEFAULT_MEMORY_USAGE_LIMIT);
                let mode = match mount.mode {
                    MountMode::ReadOnly => monty_fs::MountMode::ReadOnly,
                    MountMode::ReadWrite => monty_fs::MountMode::ReadWrite,
                    MountMode::Overlay => monty_fs::MountMode::OverlayMemory(OverlayState::new()),
                };
                let fs_mount = monty_fs::Mount::with_root(root.clone(), mode, None).with_memory_usage_limit(limit);
                self.table
                    .push_mount(fs_mount)
                    .map_err(|e| invalid(e.into_exception().summary()))?;
                self.entries.push(Entry {
                    virtual_path: root.virtual_path().to_owned(),
                    mode: mount.mode,
                    root,
                    journal: (mount.mode == MountMode::Overlay).then_some(Journal {
                        writes: Vec::new(),
                        bytes: 0,
                        limit,
                        overflowed: false,
                    }),
                });
            }
            Ok(())
        }

        /// Serves `call` if one of these mounts covers it.
        pub(super) fn answer(&mut self, call: OsFunctionCall) -> Result<CallResult, OsFunctionCall> {
            if self.entries.is_empty() {
                return Err(call);
            }
            // Kept before the table consumes the call, for the overlay's journal.
            let write = call
                .is_write()
                .then(|| self.overlay_index(&call))
                .flatten()
                .map(|index| (index, call.clone()));
            match self.table.handle_os_call(call) {
                MountCallOutcome::NotHandled(call) => Err(call),
                MountCallOutcome::Handled(Err(err)) => Ok(CallResult::Exception(err.into_exception())),
                MountCallOutcome::Handled(Ok(value)) => {
                    if let Some((index, write)) = write {
                        self.entries[index]
                            .journal
                            .as_mut()
                            .expect("an overlay entry")
                            .record(write);
                    }
                    Ok(CallResult::Value(value))
                }
            }
        }

        /// The overlay mount `call` is routed to, if it is one: the longest
        /// virtual path that contains its path, as monty-fs routes it.
        fn overlay_index(&self, call: &OsFunctionCall) -> Option<usize> {
            let path = normalize_virtual_path(call.fs_primary_path()?);
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, entry)| is_within(&path, &entry.virtual_path))
                .max_by_key(|(_, entry)| entry.virtual_path.len())
                .filter(|(_, entry)| entry.journal.is_some())
                .map(|(index, _)| index)
        }

        pub(super) fn dump_state(&self) -> Result<Vec<u8>, ProtocolError> {
            if self.entries.is_empty() {
                return Ok(Vec::new());
            }
            let mut records = Vec::with_capacity(self.entries.len());
            for entry in &self.entries {
                let writes = match &entry.journal {
                    None => Vec::new(),
                    Some(journal) if journal.overflowed => {
                        return Err(ProtocolError::new(
                            ErrorCode::WrongState,
                            format!(
                                "the overlay mount at {:?} holds more writes than its memory budget of {} bytes \
                                 lets a dump carry",
                                entry.virtual_path, journal.limit
                            ),
                        ));
                    }
                    Some(journal) => journal.writes.clone(),
                };
                records.push(MountRecord {
                    virtual_path: entry.virtual_path.clone(),
                    mode: mode_name(entry.mode).to_owned(),
                    writes,
                });
            }
            minicbor_serde::to_vec(&records)
                .map_err(|e| ProtocolError::new(ErrorCode::InternalError, format!("cannot encode mount state: {e}")))
        }

        pub(super) fn restore(&mut self, state: &[u8]) -> Result<(), ProtocolError> {
            if state.is_empty() {
                return Ok(());
            }
            let records: Vec<MountRecord> = minicbor_serde::from_slice(state)
                .map_err(|e| invalid(format!("the dump's mount state is unreadable: {e}")))?;
            for record in records {
                let Some(entry) = self
                    .entries
                    .iter()
                    .find(|e| e.virtual_path == record.virtual_path && mode_name(e.mode) == record.mode)
                else {
                    return Err(invalid(format!(
                        "the dump was taken with a {} mount at {:?}; load it with that mount in the request \
                         (a dump grants no access by itself)",
                        record.mode, record.virtual_path
                    )));
                };
                let virtual_path = entry.virtual_path.clone();
                for write in record.writes {
                    let name = write.name();
                    match self.answer(write) {
                        Ok(CallResult::Value(_)) => {}
                        Ok(CallResult::Exception(exc)) => {
                            return Err(invalid(format!(
                                "replaying the overlay writes of {virtual_path:?} failed at {name}: {}",
                                exc.summary()
                            )));
                        }
                        _ => {
                            return Err(invalid(format!(
                                "replaying the overlay writes of {virtual_path:?}: {name} is not on that mount"
                            )));
                        }
                    }
                }
            }
            Ok(())
        }
    }

    impl Journal {
        fn record(&mut self, write: OsFunctionCall) {
            if self.overflowed {
                return;
            }
            let size = minicbor_serde::to_vec(&write).map_or(u64::MAX, |bytes| bytes.len() as u64);
            self.bytes = self.bytes.saturating_add(size);
            if self.bytes > self.limit {
                // What was kept cannot rebuild the overlay any more.
                self.overflowed = true;
                self.writes = Vec::new();
            } else {
                self.writes.push(write);
            }
        }
    }

    /// Adds a mount of `root` to a scratch table, refusing an overlap.
    fn push_checked(scratch: &mut MountTable, root: MountRoot) -> Result<(), ProtocolError> {
        scratch
            .push_mount(monty_fs::Mount::with_root(root, monty_fs::MountMode::ReadOnly, None))
            .map_err(|e| invalid(e.into_exception().summary()))
    }

    /// Whether normalized `path` is `dir` or lies below it.
    fn is_within(path: &str, dir: &str) -> bool {
        dir == "/" || path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MountMode;

    /// The wasm32 refusal, checked where tests run (the same function serves
    /// the wasm32 build's `Mounts::add`).
    #[test]
    fn a_build_without_a_disk_refuses_mounts_clearly() {
        assert!(refuse_without_disk(&[]).is_ok());
        let err = refuse_without_disk(&[Mount {
            virtual_path: "/data".into(),
            host_path: "/tmp".into(),
            mode: MountMode::ReadOnly,
            memory_limit: None,
        }])
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert!(err.message.contains("no host file system"), "{}", err.message);
    }
}
