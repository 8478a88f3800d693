//! One VM: its RAM, its stage-2 map, its vCPUs' power states and its
//! emulated devices, and how it is built from a persona's images.

use super::counters::Counters;
use super::device_tree::{self, GicVersion, GuestConfig, Initrd};
use super::layout;
use super::loader::{self, ImageHeader};
use crate::mm::pagetable::{Attributes, Geometry, HeapTables, MapError, PageTable, Stage};
use crate::mm::regions::Region;
use crate::personas::VmSpec;
use crate::vdev::pl011::Pl011;
use crate::vdev::vgic::Vgic;
use crate::vdev::virtio::guest_memory::GuestMemory;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use spin::Mutex;

/// A vCPU's power state, as PSCI sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Off,
    /// CPU_ON was called: start at `entry` with `context` in x0.
    Starting {
        entry: u64,
        context: u64,
    },
    On,
}

/// Why a VM could not be built.
#[derive(Debug)]
pub enum VmError {
    NoMemory { mib: u64 },
    Load(loader::LoadError),
    Map(MapError),
    DeviceTree(device_tree::DeviceTreeError),
    Vgic(crate::vdev::vgic::VgicError),
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMemory { mib } => write!(f, "no {mib} MiB of free RAM left"),
            Self::Load(e) => write!(f, "{e}"),
            Self::Map(e) => write!(f, "stage-2 map: {e}"),
            Self::DeviceTree(e) => write!(f, "device tree: {e:?}"),
            Self::Vgic(e) => write!(f, "virtual GIC: {e}"),
        }
    }
}

/// A VM.
pub struct Vm {
    pub name: &'static str,
    /// What it was built from, kept to rebuild it on a reset.
    spec: VmSpec,
    gic: GicVersion,
    pub index: usize,
    pub vmid: u8,
    /// Where its RAM is in physical memory.
    pub ram: Region,
    pub stage2_root: u64,
    pub stage2_geometry: Geometry,
    /// Kept so the tables live as long as the VM.
    _stage2: PageTable,
    pub power: Vec<Mutex<Power>>,
    /// Per vCPU: it is executing guest code right now.
    pub in_guest: Vec<AtomicBool>,
    pub vgic: Mutex<Vgic>,
    pub uart: Mutex<Pl011>,
    /// Its virtio devices, in slot order.
    pub virtio: Vec<super::virtio::VirtioSlot>,
    /// Cleared when the VM powers off.
    pub running: AtomicBool,
    /// Faults logged so far, to keep a misbehaving guest from flooding the console.
    pub faults_logged: AtomicU32,
    pub counters: Counters,
    /// Restarts in a row, and the counter value when the VM last started.
    restarts: AtomicU32,
    started_at: AtomicU64,
}

/// Input address bits of every stage-2 map (1 TiB), capped by the CPU.
pub fn ipa_bits(pa_bits: u32) -> u32 {
    pa_bits.min(40)
}

impl Vm {
    /// Builds VM number `index` from `spec` in `ram`, ready for vCPU 0 to
    /// start.
    pub fn build(
        index: usize,
        spec: &VmSpec,
        ram: Region,
        pa_bits: u32,
        gic: GuestGic,
    ) -> Result<Vm, VmError> {
        let geometry = Geometry::stage2(ipa_bits(pa_bits));
        let mut stage2 = PageTable::new(Stage::Stage2, geometry, pa_bits, &mut HeapTables)
            .map_err(VmError::Map)?;
        stage2
            .map(&mut HeapTables, layout::RAM_BASE, ram.start, ram.size(), Attributes::RAM)
            .map_err(VmError::Map)?;
        if let GuestGic::V2 { virtual_cpu } = gic {
            // The guest's CPU interface is the hardware's virtual one: its
            // accesses go straight to the GIC, never trapping to Duet.
            stage2
                .map(
                    &mut HeapTables,
                    layout::GICC_BASE,
                    virtual_cpu,
                    layout::GICC_SIZE,
                    Attributes::DEVICE,
                )
                .map_err(VmError::Map)?;
        }
        let gic = gic.version();
        let vcpus = spec.vcpus as usize;
        // SAFETY: `ram` was taken from the free set for this VM alone, is
        // mapped read-write in Duet's own map and lives as long as the VM.
        let memory =
            unsafe { GuestMemory::new(layout::RAM_BASE, ram.start as *mut u8, ram.size()) };
        let backends = super::virtio::backends_for(index, spec);
        let counters = Counters::default();
        let flushes = counters.display_flushes.clone();
        let vm = Vm {
            name: spec.name,
            spec: *spec,
            gic,
            index,
            vmid: index as u8 + 1,
            ram,
            stage2_root: stage2.root_address(),
            stage2_geometry: geometry,
            _stage2: stage2,
            power: (0..vcpus).map(|_| Mutex::new(Power::Off)).collect(),
            in_guest: (0..vcpus).map(|_| AtomicBool::new(false)).collect(),
            vgic: Mutex::new(Vgic::with_front_end(vcpus, gic).map_err(VmError::Vgic)?),
            uart: Mutex::new(Pl011::new()),
            virtio: super::virtio::devices(index, spec.name, memory, backends, flushes),
            running: AtomicBool::new(true),
            faults_logged: AtomicU32::new(0),
            counters,
            restarts: AtomicU32::new(0),
            started_at: AtomicU64::new(crate::arch::aarch64::cpu::counter()),
        };
        vm.load()?;
        Ok(vm)
    }

    /// Puts the VM in its boot state: RAM zeroed and the images loaded
    /// afresh, devices reset, vCPU 0 about to start and the others off.
    /// Every vCPU must be out of the guest.
    pub fn load(&self) -> Result<(), VmError> {
        self.wipe();
        // SAFETY: as for `wipe`: this VM's own RAM, no vCPU of it running.
        let memory = unsafe {
            core::slice::from_raw_parts_mut(self.ram.start as *mut u8, self.ram.size() as usize)
        };
        let slots = super::virtio::slots(&self.virtio);
        let entry = load(&self.spec, memory, self.vcpu_count(), self.gic, &slots)?;
        *self.vgic.lock() =
            Vgic::with_front_end(self.vcpu_count(), self.gic).map_err(VmError::Vgic)?;
        *self.uart.lock() = Pl011::new();
        super::virtio::reset(&self.virtio);
        for (index, power) in self.power.iter().enumerate() {
            *power.lock() = if index == 0 {
                Power::Starting { entry: entry.kernel, context: entry.device_tree }
            } else {
                Power::Off
            };
        }
        Ok(())
    }

    /// Zeroes the VM's RAM, so nothing of it outlives the VM (or its
    /// previous boot). Every vCPU must be out of the guest.
    pub fn wipe(&self) {
        // SAFETY: `ram` was taken from the free set for this VM alone and is
        // mapped read-write in Duet's own map; the caller ensures no vCPU of
        // this VM runs, and reset and power-off happen once at a time.
        unsafe { core::ptr::write_bytes(self.ram.start as *mut u8, 0, self.ram.size() as usize) };
    }

    /// Waits up to `timeout_ms` for every vCPU but `except` to be out of
    /// the guest; whether they all are.
    pub fn wait_out_of_guest(&self, except: Option<usize>, timeout_ms: u64) -> bool {
        use crate::arch::aarch64::cpu;
        let deadline = cpu::counter() + cpu::counter_frequency() * timeout_ms / 1000;
        let all_out = || {
            self.in_guest
                .iter()
                .enumerate()
                .all(|(v, inside)| Some(v) == except || !inside.load(Ordering::Acquire))
        };
        while !all_out() {
            if cpu::counter() > deadline {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }

    /// What the VM was built from.
    pub fn spec(&self) -> &VmSpec {
        &self.spec
    }

    /// Counts a restart and returns how many came in a row: a restart less
    /// than `window_s` seconds after the last start continues the row.
    pub fn count_restart(&self, window_s: u64) -> u32 {
        use crate::arch::aarch64::cpu;
        let now = cpu::counter();
        let started = self.started_at.swap(now, Ordering::AcqRel);
        if now.wrapping_sub(started) > window_s * cpu::counter_frequency() {
            self.restarts.store(0, Ordering::Release);
        }
        self.restarts.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn vcpu_count(&self) -> usize {
        self.power.len()
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

/// The interrupt controller a VM's guest gets: the hardware's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestGic {
    /// The GICv3 front end; the guest's CPU interface is the ICC system
    /// registers.
    V3,
    /// The GICv2 front end; the guest's CPU interface is the hardware's
    /// GICV frame at physical address `virtual_cpu`, mapped at
    /// `layout::GICC_BASE`.
    V2 { virtual_cpu: u64 },
}

impl GuestGic {
    pub fn version(self) -> GicVersion {
        match self {
            GuestGic::V3 => GicVersion::V3,
            GuestGic::V2 { .. } => GicVersion::V2,
        }
    }
}

/// Guest addresses of what vCPU 0 starts with.
struct Entry {
    kernel: u64,
    device_tree: u64,
}

/// Copies kernel, initrd and a fresh device tree into `memory`.
fn load(
    spec: &VmSpec,
    memory: &mut [u8],
    vcpus: usize,
    gic: GicVersion,
    virtio_slots: &[u32],
) -> Result<Entry, VmError> {
    let header = ImageHeader::parse(spec.kernel).map_err(VmError::Load)?;
    let initrd_size = spec.initrd.map(|i| i.len() as u64);
    let plan = loader::plan(header, initrd_size, memory.len() as u64).map_err(VmError::Load)?;
    copy(memory, plan.kernel, spec.kernel);
    let initrd = match (spec.initrd, plan.initrd) {
        (Some(image), Some(at)) => {
            copy(memory, at, image);
            Some(Initrd {
                start: layout::RAM_BASE + at,
                end: layout::RAM_BASE + at + image.len() as u64,
            })
        }
        _ => None,
    };
    let config = GuestConfig {
        ram_size: memory.len() as u64,
        vcpus,
        gic,
        bootargs: spec.cmdline,
        initrd,
        virtio_slots,
    };
    let blob = device_tree::write(&config).map_err(VmError::DeviceTree)?;
    if blob.len() as u64 > loader::MAX_DEVICE_TREE {
        return Err(VmError::Load(loader::LoadError::TooBig {
            needed: blob.len() as u64,
            ram: loader::MAX_DEVICE_TREE,
        }));
    }
    copy(memory, plan.device_tree, &blob);
    Ok(Entry {
        kernel: layout::RAM_BASE + plan.kernel,
        device_tree: layout::RAM_BASE + plan.device_tree,
    })
}

fn copy(memory: &mut [u8], offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    memory[start..start + bytes.len()].copy_from_slice(bytes);
}
