//! The series of Debian's arm64 kernel packages xtask can fetch: which
//! package names belong to a series (its generic flavour only, never
//! `-cloud` or `-rt`), which of them is the newest, and where each series
//! is cached. The series differ only in data; nothing else in xtask or Duet
//! knows which kernel it boots.

use super::apt::{self, compare_versions};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// One line of Debian kernel packages, e.g. every generic arm64 Linux 6.12
/// build. xtask keeps the newest release of each series it has been asked
/// for, each in its own cache directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSeries {
    /// Short name: `6.12` is cached in `target/guests/linux-6.12/`.
    name: &'static str,
    /// What follows `linux-image-` in every package name of the series.
    prefix: &'static str,
    /// How the generic flavour's name goes on after the prefix.
    naming: Naming,
}

/// Debian names kernel packages in two ways: the backports carry the whole
/// version in the name, a stable release carries its ABI number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    /// `linux-image-6.12.117+deb12-arm64-unsigned`: after the prefix comes
    /// the rest of the version (`.117+deb12`), with no dash in it.
    Version,
    /// `linux-image-6.1.0-56-arm64-unsigned`: after the prefix comes the
    /// ABI number only. Debian makes a new package name for each new ABI;
    /// updates that keep the ABI keep the name, and apt fetches the newest
    /// version of that name.
    Abi,
}

/// Linux 6.12 from bookworm-backports: the personal persona's kernel.
pub const LINUX_6_12: KernelSeries =
    KernelSeries { name: "6.12", prefix: "6.12", naming: Naming::Version };

/// Linux 6.1 from bookworm itself (and its security updates): a second,
/// older kernel that shows Duet is not tied to one build.
pub const LINUX_6_1: KernelSeries =
    KernelSeries { name: "6.1", prefix: "6.1.0-", naming: Naming::Abi };

/// The series [`super::kernel`] and the default persona set use.
pub const DEFAULT_SERIES: KernelSeries = LINUX_6_12;

/// Every series xtask knows, the default first.
pub const ALL_SERIES: [KernelSeries; 2] = [LINUX_6_12, LINUX_6_1];

impl KernelSeries {
    /// The series called `name` (`6.12`, `6.1`), if xtask knows it.
    pub fn by_name(name: &str) -> Option<KernelSeries> {
        ALL_SERIES.into_iter().find(|series| series.name == name)
    }

    /// Its short name, e.g. `6.12`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where its kernel is cached: `target/guests/linux-<name>/`.
    pub fn cache_dir(&self) -> PathBuf {
        super::guests_dir().join(format!("linux-{}", self.name))
    }

    /// The `apt-cache search --names-only` pattern for the series. It also
    /// matches the `-cloud` and `-rt` flavours, which
    /// [`KernelSeries::newest_package`] skips.
    pub fn search_pattern(&self) -> String {
        format!(r"^linux-image-{}.*-arm64-unsigned$", self.prefix.replace('.', r"\."))
    }

    /// The name of the newest package of the series apt knows.
    pub fn newest_from_apt(&self) -> Result<String> {
        let pattern = self.search_pattern();
        let found = apt::search_names(&pattern)?;
        let name = self.newest_package(&found).with_context(|| {
            format!(
                "apt knows no Debian arm64 Linux {} package \
                 (`apt-cache search --names-only '{pattern}'` found none)",
                self.name
            )
        })?;
        Ok(name.to_owned())
    }

    /// From `apt-cache search` output ("NAME - DESCRIPTION" lines), the
    /// generic arm64 package of the series that is newest.
    pub fn newest_package<'a>(&self, search_output: &'a str) -> Option<&'a str> {
        search_output
            .lines()
            .filter_map(|line| line.split(" - ").next())
            .map(str::trim)
            .filter_map(|name| Some((name, self.name_version(name)?)))
            .max_by(|(_, a), (_, b)| compare_versions(a, b))
            .map(|(name, _)| name)
    }

    /// What a generic package's name says of its version, `None` for a name
    /// outside the series: `6.12.117+deb12` or `6.1.0-56`. Compared by
    /// dpkg's rules both order right: in `6.1.0-56` the ABI number falls in
    /// the revision field, which dpkg compares as a number.
    fn name_version<'a>(&self, package: &'a str) -> Option<&'a str> {
        let version = package.strip_prefix("linux-image-")?.strip_suffix("-arm64-unsigned")?;
        let rest = version.strip_prefix(self.prefix)?;
        let generic = match self.naming {
            // A digit would make another series (6.120); a dash, a flavour.
            Naming::Version => {
                !rest.starts_with(|c: char| c.is_ascii_digit()) && !rest.contains('-')
            }
            // Flavours add `-cloud` or `-rt` after the number.
            Naming::Abi => !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit()),
        };
        generic.then_some(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What bookworm with backports answered on 2026-11-23 (shortened).
    const SEARCH_6_12: &str = "\
linux-image-6.12.95+deb12-arm64-unsigned - Linux 6.12 for 64-bit ARMv8 machines
linux-image-6.12.95+deb12-cloud-arm64-unsigned - Linux 6.12 for arm64 cloud
linux-image-6.12.117+deb12-arm64-unsigned - Linux 6.12 for 64-bit ARMv8 machines
linux-image-6.12.117+deb12-cloud-arm64-unsigned - Linux 6.12 for arm64 cloud
linux-image-6.12.117+deb12-rt-arm64-unsigned - Linux 6.12 for 64-bit ARMv8 machines, PREEMPT_RT
linux-image-6.12.111+deb12-arm64-unsigned - Linux 6.12 for 64-bit ARMv8 machines
linux-image-6.12.9+bpo-arm64-unsigned - Linux 6.12 for 64-bit ARMv8 machines
";

    /// What bookworm answered on 2026-11-23 for 6.1 (shortened), with an
    /// ABI number of one digit added to check numbers compare as numbers.
    const SEARCH_6_1: &str = "\
linux-image-6.1.0-9-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines
linux-image-6.1.0-47-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines
linux-image-6.1.0-47-cloud-arm64-unsigned - Linux 6.1 for arm64 cloud
linux-image-6.1.0-56-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines
linux-image-6.1.0-56-cloud-arm64-unsigned - Linux 6.1 for arm64 cloud
linux-image-6.1.0-56-rt-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines, PREEMPT_RT
linux-image-6.1.0-55-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines
";

    /// Flavours, signed images and neighbouring series that no series takes.
    const OTHERS: &str = "\
linux-image-6.12.200+deb12-rt-arm64-unsigned - rt
linux-image-6.12.200+deb12-cloud-arm64-unsigned - cloud
linux-image-6.120.1-arm64-unsigned - not 6.12
linux-image-6.12.5+deb12-arm64 - signed
linux-image-6.1.0-99-rt-arm64-unsigned - rt
linux-image-6.1.0-99-cloud-arm64-unsigned - cloud
linux-image-6.1.0--arm64-unsigned - no ABI number
linux-image-6.1.0-99-arm64 - signed
linux-image-6.10.0-99-arm64-unsigned - not 6.1
linux-image-6.1.1-99-arm64-unsigned - not 6.1.0
linux-image-arm64-unsigned - no version
";

    #[test]
    fn picks_the_newest_generic_6_12_kernel() {
        assert_eq!(
            LINUX_6_12.newest_package(SEARCH_6_12),
            Some("linux-image-6.12.117+deb12-arm64-unsigned")
        );
        let name = "linux-image-6.12.9+bpo-arm64-unsigned";
        assert_eq!(LINUX_6_12.name_version(name), Some("6.12.9+bpo"));
    }

    #[test]
    fn picks_the_highest_6_1_abi_number() {
        assert_eq!(
            LINUX_6_1.newest_package(SEARCH_6_1),
            Some("linux-image-6.1.0-56-arm64-unsigned")
        );
        let name = "linux-image-6.1.0-56-arm64-unsigned";
        assert_eq!(LINUX_6_1.name_version(name), Some("6.1.0-56"));
    }

    #[test]
    fn each_series_takes_only_its_own_packages() {
        assert_eq!(LINUX_6_12.newest_package(SEARCH_6_1), None);
        assert_eq!(LINUX_6_1.newest_package(SEARCH_6_12), None);
        for series in ALL_SERIES {
            assert_eq!(series.newest_package(OTHERS), None, "{series:?}");
            assert_eq!(series.newest_package(""), None, "{series:?}");
        }
        let both = format!("{SEARCH_6_1}{SEARCH_6_12}{OTHERS}");
        assert_eq!(LINUX_6_1.newest_package(&both), Some("linux-image-6.1.0-56-arm64-unsigned"));
        assert_eq!(
            LINUX_6_12.newest_package(&both),
            Some("linux-image-6.12.117+deb12-arm64-unsigned")
        );
    }

    #[test]
    fn search_patterns_are_the_documented_ones() {
        assert_eq!(LINUX_6_12.search_pattern(), r"^linux-image-6\.12.*-arm64-unsigned$");
        assert_eq!(LINUX_6_1.search_pattern(), r"^linux-image-6\.1\.0-.*-arm64-unsigned$");
    }

    #[test]
    fn each_series_has_its_own_cache_and_name() {
        assert!(LINUX_6_12.cache_dir().ends_with("target/guests/linux-6.12"));
        assert!(LINUX_6_1.cache_dir().ends_with("target/guests/linux-6.1"));
        assert_eq!(DEFAULT_SERIES, LINUX_6_12);
        assert_eq!(ALL_SERIES[0], DEFAULT_SERIES);
        assert_eq!(KernelSeries::by_name("6.1"), Some(LINUX_6_1));
        assert_eq!(KernelSeries::by_name("6.12"), Some(LINUX_6_12));
        assert_eq!(KernelSeries::by_name("5.10"), None);
    }
}
