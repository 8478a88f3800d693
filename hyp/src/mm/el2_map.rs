//! What Duet maps for itself at EL2, as an identity map: its image with
//! per-section permissions (code is never writable, data never executable),
//! its stacks without their guard pages, the RAM it hands out, the device
//! tree, and the devices it drives (UART, GIC, the one virtio disk and
//! network device). Nothing else: a stray pointer faults.

use super::pagetable::{Attributes, PAGE_SIZE};
use super::regions::{Region, RegionSet, TooManyRegions};
use crate::platform::{EnableMethod, Gic, Platform};
use crate::MAX_CPUS;

/// Where the sections of the running image are, from the linker script.
#[derive(Clone, Debug)]
pub struct ImageLayout {
    /// Code.
    pub text: Region,
    /// Read-only data and the relocation table.
    pub rodata: Region,
    /// Writable data, `.bss` and the stacks.
    pub data: Region,
    /// One page each, inside `data`, left unmapped.
    pub guard_pages: [u64; 2 * MAX_CPUS],
}

impl ImageLayout {
    /// The whole image.
    pub fn image(&self) -> Region {
        Region { start: self.text.start, end: self.data.end }
    }
}

/// Upper bound on a GICv3/v4 redistributor frame set per CPU (four 64 KiB frames).
const REDISTRIBUTOR_STRIDE: u64 = 0x4_0000;

/// Calls `map` for each region of Duet's map with its attributes.
pub fn plan<E: From<TooManyRegions>>(
    platform: &Platform,
    image: &ImageLayout,
    mut map: impl FnMut(Region, Attributes) -> Result<(), E>,
) -> Result<(), E> {
    map(image.text, Attributes::CODE)?;
    map(image.rodata, Attributes::READ_ONLY)?;
    let mut data: RegionSet<{ 2 * MAX_CPUS + 1 }> = RegionSet::new();
    data.insert(image.data)?;
    for &guard in &image.guard_pages {
        data.remove(Region::new(guard, PAGE_SIZE))?;
    }
    for region in data.iter() {
        map(region, Attributes::READ_WRITE)?;
    }

    let blob = platform.blob.align_out(PAGE_SIZE);
    let mut ram = platform.memory.clone();
    ram.remove(image.image())?;
    ram.remove(blob)?;
    for reserved in platform.reserved.iter() {
        ram.remove(reserved.align_out(PAGE_SIZE))?;
    }
    for region in ram.iter() {
        map(region, Attributes::READ_WRITE)?;
    }
    map(blob, Attributes::READ_ONLY)?;

    if let Some(uart) = platform.uart {
        map(uart.align_out(PAGE_SIZE), Attributes::DEVICE)?;
    }
    for region in gic_regions(platform) {
        map(region.align_out(PAGE_SIZE), Attributes::DEVICE)?;
    }
    if let Some(watchdog) = platform.bcm2835_watchdog {
        map(watchdog.align_out(PAGE_SIZE), Attributes::DEVICE)?;
    }
    // The spin tables secondary CPUs wait on, usually in RAM that firmware
    // reserves: Duet writes their release addresses to start them.
    let mut spin_tables: RegionSet<MAX_CPUS> = RegionSet::new();
    for cpu in platform.cpus() {
        if let EnableMethod::SpinTable { release_address } = cpu.enable_method {
            let page = Region::new(release_address, 8).align_out(PAGE_SIZE);
            spin_tables.remove(page)?;
            spin_tables.insert(page)?;
        }
    }
    for region in spin_tables.iter() {
        // Only RAM Duet has not mapped already (as free RAM, image or tree).
        let is_ram = platform.memory.iter().any(|r| r.contains(region.start));
        let mapped = ram.iter().chain([image.image(), blob]).any(|r| r.overlaps(region));
        if is_ram && !mapped {
            map(region, Attributes::READ_WRITE)?;
        }
    }
    // Only the virtio devices Duet drives (probed before the MMU is on);
    // a page holds several slots, so their neighbours come along, and two
    // driven devices may share a page (mapped once).
    let mut virtio: RegionSet<4> = RegionSet::new();
    for slot in platform.driven_virtio() {
        let page = slot.region.align_out(PAGE_SIZE);
        virtio.remove(page)?;
        virtio.insert(page)?;
    }
    for region in virtio.iter() {
        map(region, Attributes::DEVICE)?;
    }
    Ok(())
}

/// The GIC frames Duet itself touches (the virtual CPU interface is for guests).
fn gic_regions(platform: &Platform) -> impl Iterator<Item = Region> {
    let cpus = platform.cpus().len() as u64;
    let regions = match platform.gic {
        Some(Gic::V3 { distributor, redistributors }) => {
            let used = Region::new(redistributors.start, cpus * REDISTRIBUTOR_STRIDE);
            let redistributors = Region { end: used.end.min(redistributors.end), ..used };
            [Some(distributor), Some(redistributors), None]
        }
        Some(Gic::V2 { distributor, cpu_interface, hypervisor, .. }) => {
            [Some(distributor), Some(cpu_interface), hypervisor]
        }
        None => [None; 3],
    };
    regions.into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::pagetable::{Geometry, HeapTables, MapError, PageTable, Stage};

    impl From<TooManyRegions> for MapError {
        fn from(_: TooManyRegions) -> Self {
            MapError::OutOfTables
        }
    }

    fn layout() -> ImageLayout {
        let base = 0x4008_0000;
        let mut guard_pages = [0; 2 * MAX_CPUS];
        for (i, guard) in guard_pages.iter_mut().enumerate() {
            *guard = base + 0x10_0000 + i as u64 * 0x1_0000;
        }
        ImageLayout {
            text: Region { start: base, end: base + 0x8_0000 },
            rodata: Region { start: base + 0x8_0000, end: base + 0x10_0000 },
            data: Region { start: base + 0x10_0000, end: base + 0x30_0000 },
            guard_pages,
        }
    }

    #[test]
    fn qemu_virt_map_protects_the_image_and_leaves_holes() {
        static DTB: &[u8] = include_bytes!("../../testdata/qemu-virt-gicv3.dtb");
        let mut platform = Platform::parse(DTB).unwrap();
        // Pretend the device tree sits at the start of RAM, as QEMU puts it.
        platform.blob = Region::new(0x4000_0000, DTB.len() as u64);
        let image = layout();
        let mut map =
            PageTable::new(Stage::El2, Geometry::stage1(48), 48, &mut HeapTables).unwrap();
        plan(&platform, &image, |region, attrs| {
            map.map(&mut HeapTables, region.start, region.start, region.size(), attrs)
        })
        .unwrap();

        let attrs = |address| map.translate(address).map(|t| t.attributes);
        assert_eq!(attrs(0x4008_1000), Some(Attributes::CODE));
        assert_eq!(attrs(0x4010_0000), Some(Attributes::READ_ONLY));
        assert_eq!(attrs(0x4018_0000), None, "first guard page is mapped");
        assert_eq!(attrs(0x4018_1000), Some(Attributes::READ_WRITE));
        assert_eq!(attrs(0x4019_0000), None, "second guard page is mapped");
        assert_eq!(attrs(0x4037_f000), Some(Attributes::READ_WRITE), "end of the image");
        assert_eq!(attrs(0x4000_0000), Some(Attributes::READ_ONLY), "device tree");
        assert_eq!(attrs(0x8000_0000), Some(Attributes::READ_WRITE), "free RAM");
        assert_eq!(attrs(0xbfff_f000), Some(Attributes::READ_WRITE), "end of RAM");
        assert_eq!(attrs(0xc000_0000), None, "past RAM");
        assert_eq!(attrs(0x0900_0000), Some(Attributes::DEVICE), "UART");
        assert_eq!(attrs(0x0800_0000), Some(Attributes::DEVICE), "GIC distributor");
        assert_eq!(attrs(0x080a_0000 + 4 * REDISTRIBUTOR_STRIDE - 1), Some(Attributes::DEVICE));
        assert_eq!(attrs(0x080a_0000 + 4 * REDISTRIBUTOR_STRIDE), None, "unused redistributors");
        assert_eq!(attrs(0x0a00_0000), None, "no virtio device was probed");
        assert_eq!(attrs(0), None, "flash");
    }

    #[test]
    fn maps_the_virtio_devices_duet_drives_and_no_other() {
        static DTB: &[u8] = include_bytes!("../../testdata/qemu-virt-gicv3.dtb");
        let mut platform = Platform::parse(DTB).unwrap();
        platform.blob = Region::new(0x4000_0000, DTB.len() as u64);
        // As QEMU places `-device virtio-blk-device` then `virtio-net-device`
        // (from the top slot down), with a second disk Duet does not drive.
        for slot in platform.virtio.iter_mut().flatten() {
            slot.device_id = match slot.region.start {
                0x0a00_3e00 => 2,
                0x0a00_3c00 => 1,
                0x0a00_0800 => 2,
                _ => 0,
            };
        }
        let mut map =
            PageTable::new(Stage::El2, Geometry::stage1(48), 48, &mut HeapTables).unwrap();
        plan(&platform, &layout(), |region, attrs| {
            map.map(&mut HeapTables, region.start, region.start, region.size(), attrs)
        })
        .unwrap();
        let attrs = |address| map.translate(address).map(|t| t.attributes);
        assert_eq!(attrs(0x0a00_3e00), Some(Attributes::DEVICE), "virtio-blk");
        assert_eq!(attrs(0x0a00_3c00), Some(Attributes::DEVICE), "virtio-net");
        assert_eq!(attrs(0x0a00_0800), None, "the second disk is not Duet's");
        assert_eq!(attrs(0x0a00_2000), None, "empty slots");
    }
}
