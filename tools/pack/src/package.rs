//! Writing a persona package: the persona table (a flattened device tree)
//! and the images, in the layout Duet reads.
//!
//! ```text
//! offset 0      persona table (FDT), zero-padded to a 4 KiB boundary
//! 4 KiB * k     blob@0, zero-padded to 4 KiB
//!               blob@1, ... and so on
//! ```
//!
//! Every image the manifest names becomes a blob, in manifest order (each
//! VM's kernel, then its initrd), except that an image byte-identical to an
//! earlier one of the same kind is not stored again: the VM names the
//! earlier blob. Two VMs that boot the same kernel so carry it once.
//!
//! The table's root carries `compatible = "duet,persona-package"`,
//! `duet,format-version = <2>` and `duet,package-size = <hi lo>`; then a
//! node `blob@<index>` per blob with `kind` (`"kernel"` or `"initrd"`) and
//! `extent = <offset-hi offset-lo size-hi size-lo>`, offsets counted from
//! the start of the package; then each VM is a node `vm@<index>` with
//! `vm-name`, `role`, `memory-mib`, `vcpus`, `cmdline`, `on-reset`,
//! `restart-limit`, `kernel = <blob index>` and optionally `initrd = <blob
//! index>`, then the power settings (`priority`,
//! `background-cpu-percent`, `background-timer-slack-ms`,
//! `background-may-use-idle`, `screen-off-timer-slack-ms`), optionally `disk-mib` and `net`, and
//! `colour`; the root also says `duet,foreground-vm`,
//! `duet,lock-after-idle-seconds` and optionally `duet,vms-may-talk = <1>`.
//! The names and limits come from
//! [`duet::personas::format`]; `docs/persona-package.md` is the full
//! description.

use crate::manifest::{check_kernel_bytes, Manifest, VmManifest, VmProblem};
use duet::personas::format::{self, prop};
use duet::personas::{power, screen, BlobKind};
use std::path::{Path, PathBuf};
use vm_fdt::FdtWriter;

/// Why a package could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("vm {vm:?}: {key}: cannot read {}: {source}", path.display())]
    Read {
        vm: String,
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An image changed between the manifest check and packing.
    #[error("vm {vm:?}: {key}: {problem}")]
    Image { vm: String, key: &'static str, problem: VmProblem },
    #[error("cannot write the persona table: {0}")]
    Table(#[from] vm_fdt::Error),
}

/// Packs the manifest's VMs and their images into one package.
pub fn write_package(manifest: &Manifest) -> Result<Vec<u8>, PackError> {
    let images = Images::read(manifest)?;
    let (table, layout) = table_and_layout(manifest, &images)?;
    Ok(assemble(&table, &images, &layout))
}

/// The images of a manifest, each distinct one once.
struct Images {
    /// The distinct images, in the order they are first named.
    blobs: Vec<(BlobKind, Vec<u8>)>,
    /// For each VM, the index of its kernel's blob and of its initrd's.
    vms: Vec<(usize, Option<usize>)>,
}

impl Images {
    fn read(manifest: &Manifest) -> Result<Self, PackError> {
        let mut images = Images { blobs: Vec::new(), vms: Vec::new() };
        for vm in &manifest.vms {
            let kernel = read_image(vm, prop::KERNEL, &vm.kernel)?;
            check_kernel_bytes(&vm.kernel, &kernel).map_err(|problem| PackError::Image {
                vm: vm.name.clone(),
                key: prop::KERNEL,
                problem,
            })?;
            let kernel = images.add(BlobKind::Kernel, kernel);
            let initrd = match &vm.initrd {
                Some(path) => {
                    let bytes = read_image(vm, prop::INITRD, path)?;
                    Some(images.add(BlobKind::Initrd, bytes))
                }
                None => None,
            };
            images.vms.push((kernel, initrd));
        }
        Ok(images)
    }

    /// The index of the blob holding `bytes` as a `kind`: an existing one
    /// with the same bytes, or a new one.
    fn add(&mut self, kind: BlobKind, bytes: Vec<u8>) -> usize {
        let same = |(k, b): &(BlobKind, Vec<u8>)| *k == kind && *b == bytes;
        match self.blobs.iter().position(same) {
            Some(index) => index,
            None => {
                self.blobs.push((kind, bytes));
                self.blobs.len() - 1
            }
        }
    }
}

fn read_image(vm: &VmManifest, key: &'static str, path: &Path) -> Result<Vec<u8>, PackError> {
    std::fs::read(path).map_err(|source| PackError::Read {
        vm: vm.name.clone(),
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// Bytes `[offset, offset + size)` of the package.
#[derive(Clone, Copy, Debug)]
struct Extent {
    offset: u64,
    size: u64,
}

impl Extent {
    fn cells(self) -> [u64; 2] {
        [self.offset, self.size]
    }
}

/// Where every blob goes.
struct Layout {
    blobs: Vec<Extent>,
    package_size: u64,
}

/// Places the blobs after a table of `table_len` bytes, each on a
/// [`format::ALIGN`] boundary; the package ends on one too.
fn layout(images: &Images, table_len: usize) -> Layout {
    let mut cursor = align(table_len as u64);
    let blobs = images
        .blobs
        .iter()
        .map(|(_, bytes)| {
            let extent = Extent { offset: cursor, size: bytes.len() as u64 };
            cursor = align(cursor + extent.size);
            extent
        })
        .collect();
    Layout { blobs, package_size: cursor }
}

fn align(offset: u64) -> u64 {
    offset.next_multiple_of(format::ALIGN)
}

/// The table holds the layout, and the layout depends on the table's size.
/// Every number in the table has a fixed width, so its size does not depend
/// on the values: a draft with a guessed layout gives the size, and the
/// second round is final. The loop only makes that argument unnecessary.
fn table_and_layout(manifest: &Manifest, images: &Images) -> Result<(Vec<u8>, Layout), PackError> {
    let mut table_len = 0;
    loop {
        let layout = layout(images, table_len);
        let table = persona_table(manifest, images, &layout)?;
        if table.len() == table_len {
            return Ok((table, layout));
        }
        table_len = table.len();
    }
}

/// The persona table for `manifest` with its images placed by `layout`.
fn persona_table(
    manifest: &Manifest,
    images: &Images,
    layout: &Layout,
) -> Result<Vec<u8>, PackError> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string(prop::COMPATIBLE, format::COMPATIBLE)?;
    fdt.property_u32(prop::FORMAT_VERSION, format::VERSION)?;
    fdt.property_u64(prop::PACKAGE_SIZE, layout.package_size)?;
    fdt.property_u32(power::prop::FOREGROUND_VM, manifest.foreground as u32)?;
    if manifest.vms_may_talk {
        fdt.property_u32(prop::VMS_MAY_TALK, 1)?;
    }
    let idle = manifest.lock_after_idle_seconds;
    fdt.property_u32(screen::prop::LOCK_AFTER_IDLE_SECONDS, idle)?;
    for (index, ((kind, _), extent)) in images.blobs.iter().zip(&layout.blobs).enumerate() {
        let node = fdt.begin_node(&format!("{}{index}", format::BLOB_NODE_PREFIX))?;
        fdt.property_string(prop::KIND, kind.name())?;
        fdt.property_array_u64(prop::EXTENT, &extent.cells())?;
        fdt.end_node(node)?;
    }
    for (index, (vm, &(kernel, initrd))) in manifest.vms.iter().zip(&images.vms).enumerate() {
        let node = fdt.begin_node(&format!("{}{index}", format::VM_NODE_PREFIX))?;
        fdt.property_string(prop::NAME, &vm.name)?;
        fdt.property_string(prop::ROLE, vm.role.name())?;
        fdt.property_u32(prop::MEMORY_MIB, vm.memory_mib)?;
        fdt.property_u32(prop::VCPUS, vm.vcpus)?;
        fdt.property_string(prop::CMDLINE, &vm.cmdline)?;
        fdt.property_string(prop::ON_RESET, vm.on_reset.name())?;
        fdt.property_u32(prop::RESTART_LIMIT, vm.restart_limit)?;
        fdt.property_u32(prop::KERNEL, blob_index(kernel))?;
        if let Some(initrd) = initrd {
            fdt.property_u32(prop::INITRD, blob_index(initrd))?;
        }
        for key in power::Key::ALL {
            fdt.property_u32(key.property(), key.get(&vm.power))?;
        }
        if let Some(mib) = vm.disk_mib {
            fdt.property_u32(prop::DISK_MIB, mib)?;
        }
        if let Some(net) = vm.net {
            fdt.property_string(prop::NET, net.name())?;
        }
        fdt.property_u32(screen::prop::COLOUR, vm.colour)?;
        fdt.end_node(node)?;
    }
    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

/// A blob's index as the table writes it. A manifest has at most
/// [`format::MAX_VMS`] VMs, so a handful of blobs; one that somehow had
/// more still gets an index the reader refuses, never a wrapped one.
fn blob_index(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// The table and the blobs at their places, zero padding between.
fn assemble(table: &[u8], images: &Images, layout: &Layout) -> Vec<u8> {
    let mut package = Vec::with_capacity(layout.package_size as usize);
    package.extend_from_slice(table);
    for ((_, bytes), extent) in images.blobs.iter().zip(&layout.blobs) {
        package.resize(extent.offset as usize, 0);
        package.extend_from_slice(bytes);
    }
    package.resize(layout.package_size as usize, 0);
    package
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_a_new_blob_unless_one_of_its_kind_has_its_bytes() {
        let mut images = Images { blobs: Vec::new(), vms: Vec::new() };
        assert_eq!(images.add(BlobKind::Kernel, vec![1; 10]), 0);
        assert_eq!(images.add(BlobKind::Initrd, vec![1; 10]), 1);
        assert_eq!(images.add(BlobKind::Kernel, vec![1; 10]), 0);
        assert_eq!(images.add(BlobKind::Kernel, vec![1; 11]), 2);
        assert_eq!(images.add(BlobKind::Kernel, vec![2; 10]), 3);
        assert_eq!(images.add(BlobKind::Initrd, vec![1; 10]), 1);
        assert_eq!(images.blobs.len(), 4);
    }

    #[test]
    fn blobs_are_placed_once_each_on_4_kib_boundaries() {
        let images = Images {
            blobs: vec![(BlobKind::Kernel, vec![0; 5000]), (BlobKind::Initrd, vec![0; 4096])],
            vms: vec![(0, Some(1)), (0, Some(1))],
        };
        let layout = layout(&images, 100);
        let extents: Vec<_> = layout.blobs.iter().map(|e| (e.offset, e.size)).collect();
        assert_eq!(extents, [(0x1000, 5000), (0x3000, 4096)]);
        assert_eq!(layout.package_size, 0x4000);
    }
}
