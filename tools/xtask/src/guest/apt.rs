//! Fetching Debian's arm64 packages without installing them: making apt able
//! to see them (the arm64 architecture and, on bookworm, the backports suite
//! that carries Linux 6.12), searching package names, downloading a `.deb`
//! and unpacking it with `dpkg-deb -x`. Version strings are ordered by
//! dpkg's rules, implemented here so they are unit-tested. Which kernel
//! package to fetch is `series`' business.

use crate::deps;
use anyhow::{bail, ensure, Context, Result};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{self, AtomicBool};

/// The architecture of every package fetched here.
const ARCH: &str = "arm64";

/// Something apt still lacks before it can fetch arm64 packages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    AddArchitecture,
    AddBackports,
}

impl Step {
    fn command(self) -> String {
        match self {
            Step::AddArchitecture => format!("dpkg --add-architecture {ARCH}"),
            Step::AddBackports => deps::add_backports_command(),
        }
    }

    fn apply(self) -> Result<()> {
        match self {
            Step::AddArchitecture => run_quietly("dpkg", &["--add-architecture", ARCH]),
            Step::AddBackports => deps::add_backports(),
        }
    }
}

/// Makes apt able to fetch arm64 packages, doing it as root on Debian, and
/// otherwise failing with the exact commands to run.
pub fn prepare() -> Result<()> {
    if !deps::is_debian() {
        bail!(
            "fetching Debian's arm64 kernel and busybox needs Debian's apt and dpkg; \
             on Debian (bookworm or newer), as root:\n{}",
            setup_commands(&[Step::AddArchitecture, Step::AddBackports])
        );
    }
    let missing = missing_steps()?;
    if missing.is_empty() {
        return Ok(());
    }
    if !deps::is_root() {
        bail!("apt cannot fetch arm64 packages yet; as root, run:\n{}", setup_commands(&missing));
    }
    for step in missing {
        eprintln!("xtask: {}", step.command());
        step.apply()?;
    }
    update()
}

fn missing_steps() -> Result<Vec<Step>> {
    let mut missing = Vec::new();
    let native = capture("dpkg", &["--print-architecture"])?;
    let foreign = capture("dpkg", &["--print-foreign-architectures"])?;
    if native.trim() != ARCH && !foreign.split_whitespace().any(|arch| arch == ARCH) {
        missing.push(Step::AddArchitecture);
    }
    if deps::is_bookworm() && !deps::has_backports() {
        missing.push(Step::AddBackports);
    }
    Ok(missing)
}

fn setup_commands(steps: &[Step]) -> String {
    let mut lines: Vec<String> = steps.iter().map(|step| step.command()).collect();
    lines.push("apt-get update".into());
    lines.iter().map(|line| format!("  {line}\n")).collect()
}

/// Set once this process has refreshed apt's lists, so it never does twice.
static UPDATED: AtomicBool = AtomicBool::new(false);

fn update() -> Result<()> {
    deps::apt(&["update", "-q"])?;
    UPDATED.store(true, atomic::Ordering::Relaxed);
    Ok(())
}

/// Runs `attempt`, and if it fails, refreshes apt's package lists once (as
/// root) and tries again: Debian replaces kernel packages often, so lists a
/// few weeks old name files the mirror no longer has.
pub fn with_fresh_lists<T>(attempt: impl Fn() -> Result<T>) -> Result<T> {
    match attempt() {
        Ok(value) => Ok(value),
        Err(error) if deps::is_root() && !UPDATED.load(atomic::Ordering::Relaxed) => {
            eprintln!("xtask: {error:#}; refreshing apt's package lists and trying again");
            update()?;
            attempt()
        }
        Err(error) if !deps::is_root() => {
            Err(error.context("apt's package lists may be stale: run `apt-get update` as root"))
        }
        Err(error) => Err(error),
    }
}

/// `apt-cache search --names-only PATTERN`: one "NAME - DESCRIPTION" line
/// per package whose name matches the regular expression.
pub fn search_names(pattern: &str) -> Result<String> {
    capture("apt-cache", &["search", "--names-only", pattern])
}

/// Downloads `package` for arm64 into `dir` and returns the `.deb`.
pub fn download(package: &str, dir: &Path) -> Result<PathBuf> {
    download_as(&format!("{package}:{ARCH}"), package, dir)
}

/// Downloads `package`, one of the architecture-independent packages
/// (`Architecture: all`, such as `raspi-firmware`), into `dir`.
pub fn download_all(package: &str, dir: &Path) -> Result<PathBuf> {
    download_as(package, package, dir)
}

/// Downloads what apt calls `spec` (`package` with or without an
/// architecture) into `dir`.
fn download_as(spec: &str, package: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    remove_debs(dir, package)?;
    let mut apt = Command::new("apt-get");
    apt.current_dir(dir).args(["download", "-q"]);
    if deps::is_root() {
        // As root, apt fetches as the `_apt` user, which cannot write into
        // the workspace, and falls back to root with a warning. Asking for
        // root from the start does the same without the noise.
        apt.args(["-o", "APT::Sandbox::User=root"]);
    }
    let status = apt
        .arg(spec)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .context("cannot run apt-get")?;
    ensure!(status.success(), "`apt-get download {spec}` failed ({status})");
    find_deb(dir, package)?
        .with_context(|| format!("apt-get downloaded no {package} .deb into {}", dir.display()))
}

/// Unpacks a `.deb`'s files under `dest`, as `dpkg-deb -x` does: nothing
/// is installed and no maintainer script runs.
pub fn extract(deb: &Path, dest: &Path) -> Result<()> {
    // dpkg-deb makes `dest` but not its parents.
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dest)
        .status()
        .context("cannot run dpkg-deb")?;
    ensure!(
        status.success(),
        "`dpkg-deb -x {} {}` failed ({status})",
        deb.display(),
        dest.display()
    );
    Ok(())
}

/// apt names downloads `NAME_VERSION_ARCH.deb`.
fn is_deb_of(file: &Path, package: &str) -> bool {
    file.file_name().and_then(|name| name.to_str()).is_some_and(|name| {
        name.strip_prefix(package)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| rest.ends_with(".deb"))
    })
}

fn debs_in(dir: &Path, package: &str) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| is_deb_of(path, package))
        .collect())
}

fn find_deb(dir: &Path, package: &str) -> Result<Option<PathBuf>> {
    Ok(debs_in(dir, package)?.into_iter().next())
}

/// Drops earlier downloads of `package`, so the one left is the new one.
fn remove_debs(dir: &Path, package: &str) -> Result<()> {
    for deb in debs_in(dir, package)? {
        std::fs::remove_file(&deb).with_context(|| format!("cannot remove {}", deb.display()))?;
    }
    Ok(())
}

/// Runs a command that changes the system, its report on stderr.
fn run_quietly(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    ensure!(status.success(), "`{program} {}` failed ({status})", args.join(" "));
    Ok(())
}

/// Runs a query and returns what it printed.
fn capture(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    ensure!(
        output.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Orders two Debian version strings as `dpkg --compare-versions` does:
/// epoch first (a number before `:`), then the upstream version, then the
/// Debian revision (after the last `-`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (epoch_a, upstream_a, revision_a) = split_version(a);
    let (epoch_b, upstream_b, revision_b) = split_version(b);
    epoch_a
        .cmp(&epoch_b)
        .then_with(|| compare_fragment(upstream_a, upstream_b))
        .then_with(|| compare_fragment(revision_a, revision_b))
}

fn split_version(version: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
        None => (0, version),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    (epoch, upstream, revision)
}

/// dpkg's comparison of one version part: alternate runs of non-digits,
/// compared character by character (see [`weight`]), and runs of digits,
/// compared as numbers.
fn compare_fragment(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let (text_a, rest_a) = split_run(a, |c| !c.is_ascii_digit());
        let (text_b, rest_b) = split_run(b, |c| !c.is_ascii_digit());
        let by_text = compare_text(text_a, text_b);
        if by_text != Ordering::Equal {
            return by_text;
        }
        let (digits_a, rest_a) = split_run(rest_a, |c| c.is_ascii_digit());
        let (digits_b, rest_b) = split_run(rest_b, |c| c.is_ascii_digit());
        let by_number = compare_number(digits_a, digits_b);
        if by_number != Ordering::Equal {
            return by_number;
        }
        (a, b) = (rest_a, rest_b);
    }
    Ordering::Equal
}

fn split_run(text: &[u8], in_run: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let end = text.iter().position(|&c| !in_run(c)).unwrap_or(text.len());
    text.split_at(end)
}

fn compare_text(a: &[u8], b: &[u8]) -> Ordering {
    let longest = a.len().max(b.len());
    (0..longest)
        .map(|i| weight(a.get(i).copied()).cmp(&weight(b.get(i).copied())))
        .find(|order| order.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// A character's rank in dpkg's order: `~` before the end of the run
/// (so `1.0~rc1` comes before `1.0`), the end before letters, letters
/// before every other character.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares digit strings as numbers of any length.
fn compare_number(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |digits: &[u8]| -> usize { digits.iter().take_while(|&&c| c == b'0').count() };
    let (a, b) = (&a[trim(a)..], &b[trim(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_hint_lists_every_command() {
        let hint = setup_commands(&[Step::AddArchitecture, Step::AddBackports]);
        assert_eq!(
            hint,
            "  dpkg --add-architecture arm64\n  \
             echo 'deb http://deb.debian.org/debian bookworm-backports main' > \
             /etc/apt/sources.list.d/bookworm-backports.list\n  \
             apt-get update\n"
        );
    }

    #[test]
    fn numbers_compare_as_numbers() {
        use Ordering::*;
        assert_eq!(compare_versions("6.12.117+deb12", "6.12.95+deb12"), Greater);
        assert_eq!(compare_versions("6.12.9+bpo", "6.12.10+bpo"), Less);
        assert_eq!(compare_versions("6.1.0-56", "6.1.0-9"), Greater);
        assert_eq!(compare_versions("1.0", "1.00"), Equal);
        assert_eq!(compare_versions("1.10", "1.9"), Greater);
        assert_eq!(compare_versions("1.99999999999999999999", "1.100000000000000000000"), Less);
    }

    #[test]
    fn tilde_sorts_first_and_letters_before_symbols() {
        use Ordering::*;
        assert_eq!(compare_versions("1.0~rc1", "1.0"), Less);
        assert_eq!(compare_versions("1.0~rc1", "1.0~rc2"), Less);
        assert_eq!(compare_versions("1.0~~", "1.0~"), Less);
        assert_eq!(compare_versions("1.0a", "1.0"), Greater);
        assert_eq!(compare_versions("1.0a", "1.0+"), Less);
        assert_eq!(compare_versions("1.0+deb12u1", "1.0"), Greater);
    }

    #[test]
    fn epoch_then_upstream_then_revision() {
        use Ordering::*;
        assert_eq!(compare_versions("1:1.35.0-4", "2.0-1"), Greater);
        assert_eq!(compare_versions("6.12.117-1~deb12u1", "6.12.117-1"), Less);
        assert_eq!(compare_versions("6.12.117-2", "6.12.117-10"), Less);
        assert_eq!(compare_versions("2.0-1-1", "2.0-1-2"), Less);
        assert_eq!(compare_versions("1:1.35.0-4+deb12u1+b1", "1:1.35.0-4+deb12u1"), Greater);
    }
}
