//! `Mount`, `Environment` ⇄ the structs of the same names: what a session may
//! reach of the host without asking it.

use capnp::struct_list;

use super::{
    fields::{checked_text, unknown_arm, unknown_enum, wire_len},
    message::DecodeContext,
};
use crate::{
    error::{DecodeError, EncodeError},
    protocol::{Environment, HostAccess, Mount, MountMode},
    schema::monty_wire_capnp as wire,
};

/// Writes `mounts` into a list `init` makes for that many entries.
pub(crate) fn write_mounts<'a>(
    mounts: &[Mount],
    init: impl FnOnce(u32) -> struct_list::Builder<'a, wire::mount::Owned>,
) -> Result<(), EncodeError> {
    // Left null when empty, as most hosts send no mounts.
    if mounts.is_empty() {
        return Ok(());
    }
    let mut list = init(wire_len(mounts.len(), "mounts")?);
    for (i, mount) in (0..).zip(mounts) {
        let mut b = list.reborrow().get(i);
        b.set_virtual_path(checked_text(&mount.virtual_path, "mount virtual path")?);
        b.set_host_path(checked_text(&mount.host_path, "mount host path")?);
        b.set_mode(match mount.mode {
            MountMode::ReadOnly => wire::MountMode::ReadOnly,
            MountMode::ReadWrite => wire::MountMode::ReadWrite,
            MountMode::Overlay => wire::MountMode::Overlay,
        });
        match mount.memory_limit {
            None => b.init_memory_limit().set_default(()),
            Some(bytes) => b.init_memory_limit().set_bytes(bytes),
        }
    }
    Ok(())
}

/// Writes `environment`; the host-call default stays a null pointer.
pub(crate) fn write_environment<'a>(
    environment: &Environment,
    init: impl FnOnce() -> wire::environment::Builder<'a>,
) -> Result<(), EncodeError> {
    let Environment::Map(vars) = environment else {
        return Ok(());
    };
    let mut list = init().init_map(wire_len(vars.len(), "environment variables")?);
    for (i, (name, value)) in (0..).zip(vars) {
        let mut b = list.reborrow().get(i);
        b.set_name(checked_text(name, "environment variable name")?);
        b.set_value(checked_text(value, "environment variable value")?);
    }
    Ok(())
}

/// Words `access` takes on the wire, roughly, for presizing a message.
pub(crate) fn estimated_words(access: &HostAccess) -> usize {
    let environment: usize = match &access.environment {
        Environment::CallHost => 0,
        Environment::Map(vars) => vars.iter().map(|(n, v)| 4 + (n.len() + v.len()) / 8).sum(),
    };
    mounts_words(&access.mounts) + environment
}

/// Words `mounts` take on the wire, roughly.
pub(crate) fn mounts_words(mounts: &[Mount]) -> usize {
    mounts
        .iter()
        .map(|m| 6 + (m.virtual_path.len() + m.host_path.len()) / 8)
        .sum()
}

/// Reads a list of mounts.
pub(crate) fn read_mounts(
    list: capnp::Result<struct_list::Reader<'_, wire::mount::Owned>>,
    ctx: &mut DecodeContext,
) -> Result<Vec<Mount>, DecodeError> {
    let list = list?;
    let mut mounts = ctx.vec(list.len())?;
    for r in list.iter() {
        use wire::mount::memory_limit::Which;
        mounts.push(Mount {
            virtual_path: ctx.text(r.get_virtual_path(), "Mount.virtualPath")?,
            host_path: ctx.text(r.get_host_path(), "Mount.hostPath")?,
            mode: match r.get_mode().map_err(|e| unknown_enum("MountMode", e))? {
                wire::MountMode::ReadOnly => MountMode::ReadOnly,
                wire::MountMode::ReadWrite => MountMode::ReadWrite,
                wire::MountMode::Overlay => MountMode::Overlay,
            },
            memory_limit: match r
                .get_memory_limit()
                .which()
                .map_err(|e| unknown_arm("Mount.memoryLimit", e))?
            {
                Which::Default(()) => None,
                Which::Bytes(bytes) => Some(bytes),
            },
        });
    }
    Ok(mounts)
}

/// Reads a session's mounts and environment.
pub(crate) fn read_access(
    mounts: capnp::Result<struct_list::Reader<'_, wire::mount::Owned>>,
    environment: capnp::Result<wire::environment::Reader<'_>>,
    ctx: &mut DecodeContext,
) -> Result<HostAccess, DecodeError> {
    use wire::environment::Which;
    let mounts = read_mounts(mounts, ctx)?;
    // A null pointer reads as the default struct: its first arm, `callHost`.
    let environment = match environment?.which().map_err(|e| unknown_arm("Environment", e))? {
        Which::CallHost(()) => Environment::CallHost,
        Which::Map(vars) => {
            let vars = vars?;
            let mut map = ctx.vec(vars.len())?;
            for var in vars.iter() {
                map.push((
                    ctx.text(var.get_name(), "EnvVar.name")?,
                    ctx.text(var.get_value(), "EnvVar.value")?,
                ));
            }
            Environment::Map(map)
        }
    };
    Ok(HostAccess { mounts, environment })
}
