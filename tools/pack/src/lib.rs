//! `duet-pack`: the host side of Duet's persona packages.
//!
//! A developer describes the VMs of a build in a TOML persona manifest
//! ([`manifest`]); this crate checks it and packs it, with the kernels and
//! initrds it names, into one package file ([`package`]) that the bootloader
//! hands to Duet (QEMU `-initrd`). The format's names and limits, and the
//! reader, belong to the hypervisor (`duet::personas`); this crate uses both,
//! so what it writes is what Duet reads.

pub mod manifest;
pub mod package;

pub use manifest::{memory_for_vms, Manifest, ManifestError, VmManifest};
pub use package::{write_package, PackError};
