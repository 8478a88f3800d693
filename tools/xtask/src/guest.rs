//! The Linux guests, for the personal persona's first milestone: a Debian
//! arm64 kernel and a busybox initramfs around `guests/personal/init`. Both
//! come from Debian's arm64 packages, fetched with apt on first use and kept
//! under `target/guests/` (never committed).
//!
//! Two kernel series can be fetched ([`series`]): Linux 6.12 from
//! bookworm-backports, the default that `cargo xtask run` boots, and
//! bookworm's own Linux 6.1, which shows any Debian kernel boots. Each
//! series keeps one release, its newest, in a directory of its own:
//!
//! ```text
//! target/guests/linux-6.12/current           the release in use, e.g. 6.12.117+deb12-arm64
//! target/guests/linux-6.12/<release>/Image   the raw arm64 kernel image
//! target/guests/linux-6.12/<release>/root/   the package unpacked: boot/, lib/modules/<release>/
//! target/guests/linux-6.1/...                the same for 6.1, e.g. 6.1.0-56-arm64
//! target/guests/busybox/busybox              busybox-static, arm64
//! target/guests/personal-initramfs.cpio      the initramfs (newc, uncompressed)
//! target/guests/Image, initramfs.cpio        links to the default kernel and the
//!                                            initramfs, named by guests/default.toml
//! ```
//!
//! Later calls use the cache without apt or the network. Delete a series'
//! directory, e.g. `target/guests/linux-6.12`, to move it to the newest
//! kernel Debian offers.

mod apt;
pub mod initramfs;
pub mod modules;
pub mod series;

pub use apt::compare_versions;
pub use series::{KernelSeries, DEFAULT_SERIES, LINUX_6_1, LINUX_6_12};

use anyhow::{ensure, Context, Result};
use object::elf::PT_INTERP;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Architecture, Endianness, Object};
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A Debian kernel, unpacked.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The raw arm64 `Image` to load.
    pub image: PathBuf,
    /// `uname -r` of this kernel, e.g. `6.12.117+deb12-arm64` or
    /// `6.1.0-56-arm64`.
    pub release: String,
    /// The unpacked package: a root for `depmod -b`, with the modules in
    /// [`Kernel::modules`].
    pub root: PathBuf,
}

impl Kernel {
    /// The modules directory, `lib/modules/<release>` under [`Kernel::root`].
    pub fn modules(&self) -> PathBuf {
        modules_dir(&self.root, &self.release)
    }
}

/// The Debian package busybox comes from: statically linked, so the
/// initramfs needs no C library.
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Debian's `raspi-firmware` package (the Raspberry Pi's boot firmware,
/// from the non-free-firmware section) unpacked under
/// `target/guests/raspi-firmware/`, fetched on first use; returns the
/// directory with `start4.elf`, `fixup4.dat` and the others.
pub fn raspi_firmware() -> Result<PathBuf> {
    let cache = guests_dir().join("raspi-firmware");
    let files = cache.join("root/usr/lib/raspi-firmware");
    if cache.join("complete").is_file() {
        return Ok(files);
    }
    apt::prepare()?;
    crate::deps::add_non_free_firmware()?;
    eprintln!("xtask: fetching raspi-firmware (5 MB), the Raspberry Pi's boot firmware...");
    let deb = apt::with_fresh_lists(|| apt::download_all("raspi-firmware", &downloads_dir()))?;
    remove_dir_if_present(&cache)?;
    apt::extract(&deb, &cache.join("root")).context("cannot unpack raspi-firmware")?;
    fs::remove_file(&deb).with_context(|| format!("cannot remove {}", deb.display()))?;
    ensure!(files.join("start4.elf").is_file(), "raspi-firmware has no start4.elf");
    fs::write(cache.join("complete"), b"").context("cannot mark the firmware as fetched")?;
    Ok(files)
}

/// Where fetched and built guests live.
pub fn guests_dir() -> PathBuf {
    crate::target_dir().join("guests")
}

/// The personal test guest's init script, committed in the repository.
pub fn init_script() -> PathBuf {
    crate::workspace_root().join("guests/personal/init")
}

/// The raw arm64 `Image` of the default series' kernel: Debian's newest
/// generic Linux 6.12 package.
pub fn debian_kernel() -> Result<PathBuf> {
    Ok(kernel()?.image)
}

/// The `uname -r` of the kernel [`debian_kernel`] returns.
pub fn debian_kernel_release() -> Result<String> {
    Ok(kernel()?.release)
}

/// The default series' kernel, fetched and unpacked first if the cache
/// lacks it.
pub fn kernel() -> Result<Kernel> {
    debian_kernel_series(DEFAULT_SERIES)
}

/// The newest kernel of `series`, e.g. [`LINUX_6_1`], fetched and unpacked
/// first if the cache lacks it.
pub fn debian_kernel_series(series: KernelSeries) -> Result<Kernel> {
    let _lock = CacheLock::take()?;
    match cached_kernel(&series.cache_dir()) {
        Some(kernel) => Ok(kernel),
        None => fetch_kernel(series),
    }
}

/// The initramfs of the personal test guest: `/bin/busybox` from Debian's
/// `busybox-static:arm64`, `/init` from `guests/personal/init`, the
/// directories it needs, `/dev/console`, and the default kernel's virtio
/// and ext4 modules ([`modules::WANTED`]).
pub fn busybox_initramfs() -> Result<PathBuf> {
    // Before the lock: `kernel` takes it itself (and may fetch).
    let kernel = kernel()?;
    let _lock = CacheLock::take()?;
    let busybox_path = busybox()?;
    let busybox = fs::read(&busybox_path)
        .with_context(|| format!("cannot read {}", busybox_path.display()))?;
    check_static_arm64(&busybox)
        .with_context(|| format!("{} is not usable", busybox_path.display()))?;
    let init_path = init_script();
    let init =
        fs::read(&init_path).with_context(|| format!("cannot read {}", init_path.display()))?;
    // The archive is reproducible, so building it (a few milliseconds) and
    // comparing bytes is the stamp: a changed init script, busybox or layout
    // rewrites the file, and nothing else does.
    let modules = modules::resolve(&kernel.modules(), modules::WANTED)
        .context("cannot gather the guest's kernel modules")?;
    let archive = initramfs::personal(&busybox, &init, &modules)?;
    let path = guests_dir().join("personal-initramfs.cpio");
    if fs::read(&path).ok().as_deref() != Some(archive.as_slice()) {
        crate::write_whole(&path, &archive)?;
    }
    Ok(path)
}

/// The kernel of `release` in a series' cache directory `cache`.
fn kernel_in(cache: &Path, release: &str) -> Kernel {
    let dir = cache.join(release);
    Kernel { image: dir.join("Image"), release: release.to_owned(), root: dir.join("root") }
}

/// The kernel `current` names in a series' cache directory, if it is whole:
/// `current` is written only once everything else is in place.
fn cached_kernel(cache: &Path) -> Option<Kernel> {
    let release = fs::read_to_string(cache.join("current")).ok()?;
    let kernel = kernel_in(cache, release.trim());
    let mut header = [0u8; 64];
    File::open(&kernel.image).and_then(|mut file| file.read_exact(&mut header)).ok()?;
    check_image(&header).ok()?;
    Some(kernel)
}

fn fetch_kernel(series: KernelSeries) -> Result<Kernel> {
    // Before kernels came in series, the one kernel lived in `linux/`; it
    // is never read now, and an unpacked kernel takes 200 to 400 MB.
    remove_dir_if_present(&guests_dir().join("linux"))?;
    apt::prepare()?;
    let package = apt::with_fresh_lists(|| series.newest_from_apt())?;
    eprintln!("xtask: fetching {package} (60 to 100 MB) for the guest kernel...");
    let deb = apt::with_fresh_lists(|| apt::download(&package, &downloads_dir()))?;
    let cache = series.cache_dir();
    let staging = cache.join("unpacking");
    remove_dir_if_present(&staging)?;
    apt::extract(&deb, &staging.join("root"))
        .with_context(|| format!("cannot unpack {package}"))?;
    let release = install_kernel(&cache, &staging).with_context(|| format!("in {package}"))?;
    fs::remove_file(&deb).with_context(|| format!("cannot remove {}", deb.display()))?;
    eprintln!("xtask: guest kernel is Linux {release}");
    Ok(kernel_in(&cache, &release))
}

/// Checks an unpacked kernel package in `staging`, copies its image out as
/// `Image`, and makes it the current kernel of the series' cache directory
/// `cache`, the only one kept there. Returns the release.
fn install_kernel(cache: &Path, staging: &Path) -> Result<String> {
    let root = staging.join("root");
    let (release, vmlinuz) = find_vmlinuz(&root.join("boot"))?;
    let image = fs::read(&vmlinuz).with_context(|| format!("cannot read {}", vmlinuz.display()))?;
    check_image(&image).with_context(|| format!("{} is not usable", vmlinuz.display()))?;
    let modules = modules_dir(&root, &release);
    ensure!(modules.is_dir(), "the package has no modules at {}", modules.display());
    fs::write(staging.join("Image"), &image).context("cannot write the kernel Image")?;
    // Only one release per series is kept: each unpacked package takes
    // 200 to 400 MB.
    let entries =
        fs::read_dir(cache).with_context(|| format!("cannot read {}", cache.display()))?;
    for entry in entries.flatten() {
        if entry.path() != staging && entry.path().is_dir() {
            remove_dir_if_present(&entry.path())?;
        }
    }
    let dir = cache.join(&release);
    fs::rename(staging, &dir)
        .with_context(|| format!("cannot move {} to {}", staging.display(), dir.display()))?;
    crate::write_whole(&cache.join("current"), format!("{release}\n").as_bytes())?;
    Ok(release)
}

/// The package's `boot/vmlinuz-<release>`, and that release.
fn find_vmlinuz(boot: &Path) -> Result<(String, PathBuf)> {
    let entries = fs::read_dir(boot).with_context(|| format!("cannot read {}", boot.display()))?;
    entries
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let release = name.strip_prefix("vmlinuz-")?.to_owned();
            Some((release, entry.path()))
        })
        .with_context(|| format!("no vmlinuz-* in {}", boot.display()))
}

/// Debian has moved modules from /lib to /usr/lib: look in both.
fn modules_dir(root: &Path, release: &str) -> PathBuf {
    let usr = root.join("usr/lib/modules").join(release);
    if usr.is_dir() {
        usr
    } else {
        root.join("lib/modules").join(release)
    }
}

/// An arm64 `Image` starts with a 64-byte header whose magic "ARM\x64"
/// sits at offset 0x38. Debian's `vmlinuz` is such an image, not
/// compressed, in both series (checked for 6.12.117 and 6.1.0-56), so it is
/// copied as it is; a compressed one is refused with a clear message rather
/// than unpacked on a guess.
fn check_image(image: &[u8]) -> Result<()> {
    if image.starts_with(&[0x1f, 0x8b]) {
        anyhow::bail!("it is gzip-compressed; Duet loads a raw arm64 Image");
    }
    ensure!(
        image.get(0x38..0x3c) == Some(b"ARM\x64"),
        "no arm64 Image magic (\"ARM\\x64\" at offset 0x38)"
    );
    Ok(())
}

/// busybox must run as the guest's first program with no libraries in
/// the initramfs: an AArch64 ELF without a program interpreter.
fn check_static_arm64(binary: &[u8]) -> Result<()> {
    let elf = ElfFile64::<Endianness>::parse(binary).context("not a 64-bit ELF file")?;
    ensure!(
        elf.architecture() == Architecture::Aarch64,
        "built for {:?}, not AArch64",
        elf.architecture()
    );
    let endian = elf.endian();
    let dynamic = elf.elf_program_headers().iter().any(|header| header.p_type(endian) == PT_INTERP);
    ensure!(!dynamic, "dynamically linked; the initramfs has no libraries");
    Ok(())
}

/// busybox-static for arm64, fetched and unpacked first if missing.
fn busybox() -> Result<PathBuf> {
    let path = guests_dir().join("busybox/busybox");
    if path.is_file() {
        return Ok(path);
    }
    apt::prepare()?;
    eprintln!("xtask: fetching {BUSYBOX_PACKAGE} for the guest initramfs...");
    let deb = apt::with_fresh_lists(|| apt::download(BUSYBOX_PACKAGE, &downloads_dir()))?;
    let staging = guests_dir().join("busybox/unpacking");
    remove_dir_if_present(&staging)?;
    apt::extract(&deb, &staging).with_context(|| format!("cannot unpack {BUSYBOX_PACKAGE}"))?;
    let binary = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|candidate| staging.join(candidate))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{BUSYBOX_PACKAGE} has no bin/busybox"))?;
    let data = fs::read(&binary).with_context(|| format!("cannot read {}", binary.display()))?;
    check_static_arm64(&data)
        .with_context(|| format!("{BUSYBOX_PACKAGE}'s busybox is not usable"))?;
    crate::write_whole(&path, &data)?;
    remove_dir_if_present(&staging)?;
    fs::remove_file(&deb).with_context(|| format!("cannot remove {}", deb.display()))?;
    Ok(path)
}

fn downloads_dir() -> PathBuf {
    guests_dir().join("downloads")
}

fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Exclusive use of `target/guests` while it is checked or filled: tests
/// running in parallel (threads or processes) ask for the guest at once,
/// and only one of them should fetch it.
struct CacheLock {
    _file: File,
}

impl CacheLock {
    fn take() -> Result<CacheLock> {
        let dir = guests_dir();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(".lock");
        let file =
            File::create(&path).with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a descriptor we own has no memory-safety
        // preconditions. The lock goes when the file is closed.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        ensure!(locked == 0, "cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
        Ok(CacheLock { _file: file })
    }
}

/// The default persona manifest, `guests/default.toml`, with the images it
/// names (`target/guests/Image` and `target/guests/initramfs.cpio`) fetched
/// or built and linked into place.
pub fn default_manifest() -> Result<PathBuf> {
    let kernel = debian_kernel()?;
    let initramfs = busybox_initramfs()?;
    link(&kernel, &guests_dir().join("Image"))?;
    link(&initramfs, &guests_dir().join("initramfs.cpio"))?;
    Ok(crate::workspace_root().join("guests/default.toml"))
}

/// Points `at` to `target` with a symbolic link, replacing what was there.
fn link(target: &Path, at: &Path) -> Result<()> {
    if fs::read_link(at).ok().as_deref() == Some(target) {
        return Ok(());
    }
    let _ = fs::remove_file(at);
    std::os::unix::fs::symlink(target, at)
        .with_context(|| format!("cannot link {} to {}", at.display(), target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_magic_is_checked() {
        let mut header = vec![0u8; 64];
        assert!(check_image(&header).is_err());
        header[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert!(check_image(&header).is_ok());
        assert!(check_image(&header[..0x3a]).is_err());
        let message = format!("{:#}", check_image(&[0x1f, 0x8b, 8, 0]).unwrap_err());
        assert!(message.contains("gzip"), "{message}");
    }

    /// A kernel package as `dpkg-deb -x` leaves it, for `release`, whose
    /// `vmlinuz` holds `image`.
    fn unpacked_package(staging: &Path, release: &str, image: &[u8]) {
        let root = staging.join("root");
        fs::create_dir_all(root.join("boot")).unwrap();
        fs::create_dir_all(root.join("lib/modules").join(release)).unwrap();
        fs::write(root.join("boot").join(format!("vmlinuz-{release}")), image).unwrap();
    }

    fn arm64_image() -> Vec<u8> {
        let mut image = vec![0u8; 4096];
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        image
    }

    #[test]
    fn a_series_cache_keeps_only_its_newest_release() {
        let cache = std::env::temp_dir().join(format!("duet-xtask-{}-cache", std::process::id()));
        remove_dir_if_present(&cache).unwrap();
        assert!(cached_kernel(&cache).is_none());
        for release in ["6.1.0-55-arm64", "6.1.0-56-arm64"] {
            let staging = cache.join("unpacking");
            unpacked_package(&staging, release, &arm64_image());
            assert_eq!(install_kernel(&cache, &staging).unwrap(), release);
        }
        let kernel = cached_kernel(&cache).expect("the installed kernel is cached");
        assert_eq!(kernel.release, "6.1.0-56-arm64");
        assert_eq!(fs::read(&kernel.image).unwrap(), arm64_image());
        assert!(kernel.modules().ends_with("root/lib/modules/6.1.0-56-arm64"));
        assert!(!cache.join("6.1.0-55-arm64").exists());
        assert!(!cache.join("unpacking").exists());
        remove_dir_if_present(&cache).unwrap();
    }

    #[test]
    fn a_compressed_kernel_is_refused_by_name() {
        let cache = std::env::temp_dir().join(format!("duet-xtask-{}-gzip", std::process::id()));
        remove_dir_if_present(&cache).unwrap();
        let staging = cache.join("unpacking");
        unpacked_package(&staging, "6.1.0-1-arm64", &[0x1f, 0x8b, 8, 0]);
        let message = format!("{:#}", install_kernel(&cache, &staging).unwrap_err());
        assert!(message.contains("vmlinuz-6.1.0-1-arm64") && message.contains("gzip"), "{message}");
        assert!(cached_kernel(&cache).is_none());
        remove_dir_if_present(&cache).unwrap();
    }

    #[test]
    fn host_binaries_are_not_taken_for_busybox() {
        let host = fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(check_static_arm64(&host).is_err());
        assert!(check_static_arm64(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn the_init_script_is_in_the_repository() {
        let init = fs::read_to_string(init_script()).unwrap();
        assert!(init.starts_with("#!/bin/sh\n"));
        assert!(init.contains("duet-guest: init ran"));
    }
}
