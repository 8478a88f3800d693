//! What the host needs to build and run Duet, checked before it is needed:
//! QEMU for AArch64, recent enough. Where the host is Debian and we are root,
//! missing pieces are installed (QEMU from bookworm-backports, as
//! shared/ENVIRONMENT.md tested); otherwise the error says what to install.
//! Also the small apt helpers that `guest` shares: who may run apt, and
//! whether bookworm-backports is among apt's sources.

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const QEMU: &str = "qemu-system-aarch64";
/// `raspi4b` arrived in QEMU 9.0; Debian bookworm's own 7.2 is too old.
const QEMU_MINIMUM: (u32, u32) = (9, 0);

/// Where xtask adds bookworm-backports when apt does not know it yet.
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/bookworm-backports.list";
const BACKPORTS_SOURCE: &str = "deb http://deb.debian.org/debian bookworm-backports main";

/// The shell command that adds bookworm-backports to apt's sources.
pub fn add_backports_command() -> String {
    format!("echo '{BACKPORTS_SOURCE}' > {BACKPORTS_LIST}")
}

fn install_hint() -> String {
    format!(
        "install QEMU 9 or newer for AArch64; on Debian bookworm, as root:\n  \
         {}\n  \
         apt-get update && apt-get install -y -t bookworm-backports qemu-system-arm",
        add_backports_command()
    )
}

/// QEMU's version, or an error that says what to install. Never installs.
pub fn require_qemu() -> Result<(u32, u32)> {
    let output = Command::new(QEMU).arg("--version").output();
    let Ok(output) = output else {
        bail!("{QEMU} is not installed: {}", install_hint());
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_qemu_version(&text)
        .with_context(|| format!("cannot read the version from `{QEMU} --version`: {text:?}"))?;
    if version < QEMU_MINIMUM {
        bail!("{QEMU} is version {}.{}, too old: {}", version.0, version.1, install_hint());
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
    if is_bookworm() {
        add_backports()?;
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "-t", "bookworm-backports", "qemu-system-arm"])?;
    } else {
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "qemu-system-arm"])?;
    }
    require_qemu()
}

/// The mail guest's integration tests (tests/mail.rs) run their own
/// throwaway Dovecot and openssl servers on the loopback: installs Debian's
/// `dovecot-imapd` and `openssl` where it can (the tests never use the
/// system's Dovecot service), otherwise says how.
pub fn ensure_mail_servers() -> Result<()> {
    let present =
        || Path::new("/usr/sbin/dovecot").exists() && Path::new("/usr/bin/openssl").exists();
    if present() {
        return Ok(());
    }
    if !can_install_debian_packages() {
        bail!(
            "the mail tests need Dovecot and openssl: sudo apt-get install dovecot-imapd openssl"
        );
    }
    eprintln!("xtask: installing dovecot-imapd, postfix and openssl for the mail tests...");
    apt(&["install", "-y", "-q", "dovecot-imapd", "postfix", "openssl"])?;
    ensure!(present(), "the mail servers were installed, but a program is missing");
    Ok(())
}

/// Whether this host is Debian with apt and dpkg.
/// Makes sure rustup has the standard library for `target` in the toolchain
/// `rust-toolchain.toml` names. rustup adds the file's targets only when it
/// installs the toolchain, so a machine that already had stable lacks it.
pub fn ensure_rust_target(target: &str) -> Result<()> {
    static CHECKED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if CHECKED.get().is_some() {
        return Ok(());
    }
    let root = crate::workspace_root();
    let listed = Command::new("rustup")
        .current_dir(&root)
        .args(["target", "list", "--installed"])
        .output()
        .with_context(|| {
            format!("cannot run rustup; install the target by hand: rustup target add {target}")
        })?;
    let installed =
        String::from_utf8_lossy(&listed.stdout).lines().any(|line| line.trim() == target);
    if !installed {
        eprintln!("xtask: rustup target add {target}");
        let status = Command::new("rustup")
            .current_dir(&root)
            .args(["target", "add", target])
            .status()
            .context("cannot run rustup")?;
        ensure!(status.success(), "`rustup target add {target}` failed ({status})");
    }
    let _ = CHECKED.set(());
    Ok(())
}

pub fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists() && Path::new("/usr/bin/apt-get").exists()
}

/// Whether xtask runs as root, so it may change the system's packages.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Root on Debian: xtask may install and configure packages itself.
pub fn can_install_debian_packages() -> bool {
    is_root() && is_debian()
}

/// Debian 12 (bookworm), whose own QEMU and Linux are too old for Duet: both
/// come from bookworm-backports there.
pub fn is_bookworm() -> bool {
    std::fs::read_to_string("/etc/debian_version").is_ok_and(|v| v.starts_with("12"))
}

/// Whether any of apt's sources names bookworm-backports (one-line `.list`
/// and deb822 `.sources` files alike mention the suite by name).
pub fn has_backports() -> bool {
    source_files().iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            text.lines().any(|line| {
                !line.trim_start().starts_with('#') && line.contains("bookworm-backports")
            })
        })
    })
}

/// Adds bookworm-backports to apt's sources unless apt knows it already.
/// Needs root; the caller runs `apt-get update` afterwards.
pub fn add_backports() -> Result<()> {
    if has_backports() {
        return Ok(());
    }
    std::fs::write(BACKPORTS_LIST, format!("{BACKPORTS_SOURCE}\n"))
        .with_context(|| format!("cannot write {BACKPORTS_LIST}"))
}

/// Where xtask adds Debian's non-free-firmware section (the Raspberry Pi's
/// boot firmware lives there) when apt's sources lack it.
const NON_FREE_FIRMWARE_LIST: &str = "/etc/apt/sources.list.d/duet-non-free-firmware.list";
const NON_FREE_FIRMWARE_SOURCE: &str =
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
     http://deb.debian.org/debian bookworm non-free-firmware";

/// Whether any of apt's sources names the non-free-firmware section.
pub fn has_non_free_firmware() -> bool {
    source_files().iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            text.lines().any(|line| {
                !line.trim_start().starts_with('#') && line.contains("non-free-firmware")
            })
        })
    })
}

/// Adds bookworm's non-free-firmware section to apt's sources unless apt
/// knows it already: as root, and otherwise failing with the command to run.
/// The caller's apt retry refreshes the lists.
pub fn add_non_free_firmware() -> Result<()> {
    if has_non_free_firmware() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "the Raspberry Pi firmware is in Debian's non-free-firmware section, which apt \
             does not use yet; as root, run:\n  echo '{NON_FREE_FIRMWARE_SOURCE}' > \
             {NON_FREE_FIRMWARE_LIST} && apt-get update"
        );
    }
    eprintln!("xtask: adding Debian's non-free-firmware section to apt's sources");
    std::fs::write(NON_FREE_FIRMWARE_LIST, format!("{NON_FREE_FIRMWARE_SOURCE}\n"))
        .with_context(|| format!("cannot write {NON_FREE_FIRMWARE_LIST}"))
}

/// apt's source files: sources.list and the `.list` and `.sources` files
/// of sources.list.d (apt reads no other kinds there).
fn source_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let is_source =
            |path: &PathBuf| path.extension().is_some_and(|ext| ext == "list" || ext == "sources");
        files.extend(dir.flatten().map(|entry| entry.path()).filter(is_source));
    }
    files
}

/// Runs `apt-get ARGS` without questions. Its report goes to stderr, so the
/// paths xtask commands print on stdout stay easy to read by scripts.
pub fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
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
