//! What the host needs to build and run Duet, checked before it is needed:
//! QEMU for AArch64, recent enough. Where the host is Debian and we are root,
//! missing pieces are installed (QEMU from bookworm-backports, as
//! shared/ENVIRONMENT.md tested); otherwise the error says what to install.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

pub const QEMU: &str = "qemu-system-aarch64";
/// `raspi4b` arrived in QEMU 9.0; Debian bookworm's own 7.2 is too old.
const QEMU_MINIMUM: (u32, u32) = (9, 0);

const INSTALL_HINT: &str = "install QEMU 9 or newer for AArch64; on Debian bookworm, as root:\n  \
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list\n  \
    apt-get update && apt-get install -y -t bookworm-backports qemu-system-arm";

/// QEMU's version, or an error that says what to install. Never installs.
pub fn require_qemu() -> Result<(u32, u32)> {
    let output = Command::new(QEMU).arg("--version").output();
    let Ok(output) = output else {
        bail!("{QEMU} is not installed: {INSTALL_HINT}");
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_qemu_version(&text)
        .with_context(|| format!("cannot read the version from `{QEMU} --version`: {text:?}"))?;
    if version < QEMU_MINIMUM {
        bail!("{QEMU} is version {}.{}, too old: {INSTALL_HINT}", version.0, version.1);
    }
    Ok(version)
}

/// Like [`require_qemu`], but installs QEMU first where it can.
pub fn ensure_qemu() -> Result<(u32, u32)> {
    if let Ok(version) = require_qemu() {
        return Ok(version);
    }
    if !can_install_debian_packages() {
        return require_qemu();
    }
    eprintln!("xtask: installing QEMU for AArch64 from Debian (this needs the network)...");
    let bookworm =
        std::fs::read_to_string("/etc/debian_version").is_ok_and(|v| v.starts_with("12"));
    if bookworm {
        let list = "/etc/apt/sources.list.d/bookworm-backports.list";
        if !Path::new(list).exists() {
            std::fs::write(list, "deb http://deb.debian.org/debian bookworm-backports main\n")
                .with_context(|| format!("cannot write {list}"))?;
        }
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "-t", "bookworm-backports", "qemu-system-arm"])?;
    } else {
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "qemu-system-arm"])?;
    }
    require_qemu()
}

fn can_install_debian_packages() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    root && Path::new("/etc/debian_version").exists() && Path::new("/usr/bin/apt-get").exists()
}

fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("apt-get {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Reads "QEMU emulator version 10.0.2 (...)".
fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let mut numbers = rest.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_qemu_versions() {
        let debian = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n";
        assert_eq!(parse_qemu_version(debian), Some((10, 0)));
        assert_eq!(parse_qemu_version("QEMU emulator version 7.2.15"), Some((7, 2)));
        assert_eq!(parse_qemu_version("something else"), None);
    }
}
