//! `probe.mode=virtio`: a driver that breaks every rule. For each virtio
//! device Duet gave it (slots 0 to 3), the probe sets the device up and
//! then abuses it one way at a time: descriptor chains that loop, reach
//! outside its RAM, are too long, are readable after writable; indirect
//! tables that are not negotiated, the wrong length, nested or chained;
//! ring indices that run away; and status abuse (DRIVER_OK before
//! FEATURES_OK, a legacy driver, features changed late, bad queues).
//! Each must be refused: DEVICE_NEEDS_RESET set, or FEATURES_OK or the
//! queue not accepted. One line each, `probe: virtio <device> <abuse>:
//! rejected` (or `NOT REJECTED ...`). Last, after a reset, a good request
//! must still be served. Then it powers off.

use crate::attack::load;
use crate::{mmu, smccc};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};
use duet_probe::platform::virt;

/// Register offsets and bits (virtio-mmio version 2).
const MAGIC: u64 = 0x000;
const DEVICE_ID: u64 = 0x008;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
const QUEUE_DESC: u64 = 0x080;
const QUEUE_DRIVER: u64 = 0x090;
const QUEUE_DEVICE: u64 = 0x0a0;

const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;
const NEEDS_RESET: u32 = 64;

/// Feature bits 28 (indirect descriptors) and 32 (VERSION_1), as words.
const INDIRECT_DESC: u32 = 1 << 28;
const VERSION_1_HIGH: u32 = 1;

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;

const QUEUE_SIZE: u16 = 8;

/// Where the probe keeps its rings and buffers: 16 MiB into its RAM, well
/// past its image.
struct Rings {
    desc: u64,
    avail: u64,
    used: u64,
    table: u64,
    data: u64,
}

impl Rings {
    fn at(base: u64) -> Self {
        Rings {
            desc: base,
            avail: base + 0x1000,
            used: base + 0x2000,
            table: base + 0x3000,
            data: base + 0x4000,
        }
    }

    fn clear(&self) {
        for offset in (0..0x5000).step_by(8) {
            // SAFETY: the probe's own RAM, which nothing else uses.
            unsafe { write_volatile((self.desc + offset) as *mut u64, 0) };
        }
    }

    fn descriptor(&self, table: u64, index: u16, address: u64, length: u32, flags: u16, next: u16) {
        let at = table + 16 * u64::from(index);
        // SAFETY: as in `clear`.
        unsafe {
            write_volatile(at as *mut u64, address);
            write_volatile((at + 8) as *mut u32, length);
            write_volatile((at + 12) as *mut u16, flags);
            write_volatile((at + 14) as *mut u16, next);
        }
    }

    /// Puts `head` in the available ring and sets its index to `index`.
    fn offer(&self, head: u16, index: u16) {
        // SAFETY: as in `clear`.
        unsafe {
            write_volatile((self.avail + 4) as *mut u16, head);
            fence(Ordering::SeqCst);
            write_volatile((self.avail + 2) as *mut u16, index);
        }
        fence(Ordering::SeqCst);
    }

    fn used_index(&self) -> u16 {
        fence(Ordering::SeqCst);
        // SAFETY: as in `clear`.
        unsafe { read_volatile((self.used + 2) as *const u16) }
    }

    fn used_length(&self) -> u32 {
        // SAFETY: as in `clear`.
        unsafe { read_volatile((self.used + 8) as *const u32) }
    }
}

/// One device's register window.
#[derive(Clone, Copy)]
struct Device {
    base: u64,
    name: &'static str,
    /// The queue whose chains the device walks at once when notified.
    queue: u32,
}

impl Device {
    fn read(&self, offset: u64) -> u32 {
        // SAFETY: a register of a device Duet emulates for this guest.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&self, offset: u64, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn write64(&self, offset: u64, value: u64) {
        self.write(offset, value as u32);
        self.write(offset + 4, (value >> 32) as u32);
    }

    fn status(&self) -> u32 {
        self.read(STATUS)
    }

    fn reset(&self) {
        self.write(STATUS, 0);
        self.write(INTERRUPT_ACK, 3);
    }

    fn features(&self, low: u32, high: u32) {
        self.write(DRIVER_FEATURES_SEL, 0);
        self.write(DRIVER_FEATURES, low);
        self.write(DRIVER_FEATURES_SEL, 1);
        self.write(DRIVER_FEATURES, high);
    }

    fn queue(&self, rings: &Rings, size: u32) {
        self.write(QUEUE_SEL, self.queue);
        self.write(QUEUE_NUM, size);
        self.write64(QUEUE_DESC, rings.desc);
        self.write64(QUEUE_DRIVER, rings.avail);
        self.write64(QUEUE_DEVICE, rings.used);
        self.write(QUEUE_READY, 1);
    }

    /// A full, correct bring-up with `low` feature bits (VERSION_1 always).
    fn bring_up(&self, rings: &Rings, low: u32) {
        self.reset();
        rings.clear();
        self.write(STATUS, ACKNOWLEDGE | DRIVER);
        self.features(low, VERSION_1_HIGH);
        self.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        self.queue(rings, u32::from(QUEUE_SIZE));
        self.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    }

    fn notify(&self) {
        fence(Ordering::SeqCst);
        self.write(QUEUE_NOTIFY, self.queue);
    }

    fn needs_reset(&self) -> bool {
        self.status() & NEEDS_RESET != 0
    }
}

/// One abuse: what it does to a device set up at `rings`, and whether the
/// device refused it.
struct Abuse {
    name: &'static str,
    run: fn(&Device, &Rings, &Context) -> bool,
}

/// What the abuses need to know about the guest.
struct Context {
    ram_end: u64,
}

const ABUSES: &[Abuse] = &[
    Abuse {
        name: "descriptor-loop",
        run: |d, r, _| chain(d, r, &[(0, 16, F_NEXT, 1), (0, 16, F_NEXT, 0)]),
    },
    Abuse { name: "self-loop", run: |d, r, _| chain(d, r, &[(0, 16, F_NEXT, 0)]) },
    Abuse {
        name: "address-outside-ram",
        run: |d, r, _| chain_at(d, r, &[(virt::GICD_BASE, 64, 0, 0)]),
    },
    Abuse {
        name: "buffer-crossing-ram-end",
        run: |d, r, c| chain_at(d, r, &[(c.ram_end - 8, 64, 0, 0)]),
    },
    Abuse { name: "oversized-length", run: |d, r, _| chain(d, r, &[(0, u32::MAX, 0, 0)]) },
    Abuse { name: "next-outside-table", run: |d, r, _| chain(d, r, &[(0, 16, F_NEXT, 200)]) },
    Abuse {
        name: "readable-after-writable",
        run: |d, r, _| chain(d, r, &[(0, 16, F_NEXT | F_WRITE, 1), (0x100, 16, 0, 0)]),
    },
    Abuse { name: "head-outside-table", run: head_outside_table },
    Abuse { name: "avail-index-runaway", run: avail_runaway },
    Abuse { name: "indirect-not-negotiated", run: indirect_not_negotiated },
    Abuse { name: "indirect-bad-length", run: |d, r, _| indirect(d, r, 24, 0, false) },
    Abuse { name: "indirect-with-next", run: |d, r, _| indirect(d, r, 32, F_NEXT, false) },
    Abuse { name: "indirect-nested", run: |d, r, _| indirect(d, r, 32, 0, true) },
    Abuse { name: "indirect-table-outside-ram", run: indirect_outside },
    Abuse { name: "driver-ok-before-features-ok", run: driver_ok_early },
    Abuse { name: "legacy-driver", run: legacy_driver },
    Abuse { name: "features-changed-after-features-ok", run: late_features },
    Abuse { name: "queue-size-not-power-of-two", run: |d, r, _| bad_queue(d, r, 3, 0) },
    Abuse { name: "queue-ring-outside-ram", run: |d, r, c| bad_queue(d, r, 8, c.ram_end) },
    Abuse { name: "queue-ring-misaligned", run: |d, r, _| bad_queue(d, r, 8, 2) },
];

/// Offers a chain of `(offset in data, length, flags, next)` descriptors
/// from index 0; whether the device then needs a reset.
fn chain(device: &Device, rings: &Rings, descriptors: &[(u64, u32, u16, u16)]) -> bool {
    device.bring_up(rings, 0);
    for (i, &(offset, length, flags, next)) in descriptors.iter().enumerate() {
        rings.descriptor(rings.desc, i as u16, rings.data + offset, length, flags, next);
    }
    rings.offer(0, 1);
    device.notify();
    device.needs_reset()
}

/// As `chain`, with absolute addresses.
fn chain_at(device: &Device, rings: &Rings, descriptors: &[(u64, u32, u16, u16)]) -> bool {
    device.bring_up(rings, 0);
    for (i, &(address, length, flags, next)) in descriptors.iter().enumerate() {
        rings.descriptor(rings.desc, i as u16, address, length, flags, next);
    }
    rings.offer(0, 1);
    device.notify();
    device.needs_reset()
}

fn head_outside_table(device: &Device, rings: &Rings, _: &Context) -> bool {
    device.bring_up(rings, 0);
    rings.offer(QUEUE_SIZE + 5, 1);
    device.notify();
    device.needs_reset()
}

fn avail_runaway(device: &Device, rings: &Rings, _: &Context) -> bool {
    device.bring_up(rings, 0);
    rings.descriptor(rings.desc, 0, rings.data, 16, 0, 0);
    rings.offer(0, 1000);
    device.notify();
    device.needs_reset()
}

fn indirect_not_negotiated(device: &Device, rings: &Rings, _: &Context) -> bool {
    device.bring_up(rings, 0);
    rings.descriptor(rings.table, 0, rings.data, 16, 0, 0);
    rings.descriptor(rings.desc, 0, rings.table, 16, F_INDIRECT, 0);
    rings.offer(0, 1);
    device.notify();
    device.needs_reset()
}

/// An indirect descriptor of `length` bytes with `flags`; its table's
/// first entry indirect again if `nested`.
fn indirect(device: &Device, rings: &Rings, length: u32, flags: u16, nested: bool) -> bool {
    device.bring_up(rings, INDIRECT_DESC);
    let inner = if nested { F_INDIRECT } else { 0 };
    rings.descriptor(rings.table, 0, rings.table, 16, inner, 0);
    rings.descriptor(rings.table, 1, rings.data, 16, 0, 0);
    rings.descriptor(rings.desc, 0, rings.table, length, F_INDIRECT | flags, 1);
    rings.descriptor(rings.desc, 1, rings.data, 16, 0, 0);
    rings.offer(0, 1);
    device.notify();
    device.needs_reset()
}

fn indirect_outside(device: &Device, rings: &Rings, c: &Context) -> bool {
    device.bring_up(rings, INDIRECT_DESC);
    rings.descriptor(rings.desc, 0, c.ram_end - 16, 32, F_INDIRECT, 0);
    rings.offer(0, 1);
    device.notify();
    device.needs_reset()
}

fn driver_ok_early(device: &Device, _: &Rings, _: &Context) -> bool {
    device.reset();
    device.write(STATUS, ACKNOWLEDGE | DRIVER);
    device.write(STATUS, ACKNOWLEDGE | DRIVER | DRIVER_OK);
    device.status() & DRIVER_OK == 0 && device.needs_reset()
}

fn legacy_driver(device: &Device, _: &Rings, _: &Context) -> bool {
    device.reset();
    device.write(STATUS, ACKNOWLEDGE | DRIVER);
    device.features(0, 0);
    device.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    device.status() & FEATURES_OK == 0
}

fn late_features(device: &Device, rings: &Rings, _: &Context) -> bool {
    device.bring_up(rings, 0);
    device.features(INDIRECT_DESC, VERSION_1_HIGH);
    device.needs_reset()
}

/// A queue of `size` whose used ring is moved to `used` (if not 0).
fn bad_queue(device: &Device, rings: &Rings, size: u32, used: u64) -> bool {
    device.reset();
    device.write(STATUS, ACKNOWLEDGE | DRIVER);
    device.features(0, VERSION_1_HIGH);
    device.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    device.write(QUEUE_SEL, device.queue);
    device.write(QUEUE_NUM, size);
    device.write64(QUEUE_DESC, rings.desc);
    device.write64(QUEUE_DRIVER, rings.avail);
    let used = match used {
        0 => rings.used,
        2 => rings.used + 2,
        outside => outside,
    };
    device.write64(QUEUE_DEVICE, used);
    device.write(QUEUE_READY, 1);
    device.read(QUEUE_READY) == 0 && device.needs_reset()
}

/// A correct request after all the abuse: 16 random bytes into a writable
/// buffer from the entropy device; one console line; one 60-byte frame
/// behind its 12-byte header. A disk is left alone (it would be written).
fn good_request(device: &Device, rings: &Rings) -> Result<u32, &'static str> {
    let line = b"probe: hvc line\n";
    let (flags, length) = match device.name {
        "rng" => (F_WRITE, 16),
        "console" => (0, line.len() as u32),
        "net" => (0, 12 + 60),
        _ => return Err("not tried on a disk (it would be written)"),
    };
    device.bring_up(rings, 0);
    for (i, byte) in line.iter().enumerate() {
        // SAFETY: the probe's own RAM.
        unsafe { write_volatile((rings.data + i as u64) as *mut u8, *byte) };
    }
    rings.descriptor(rings.desc, 0, rings.data, length, flags, 0);
    rings.offer(0, 1);
    device.notify();
    if device.needs_reset() {
        return Err("the device needs a reset");
    }
    match rings.used_index() {
        1 => Ok(rings.used_length()),
        _ => Err("the request was not used"),
    }
}

fn device_name(id: u32) -> Option<(&'static str, u32)> {
    // The queue each device walks at once: the transmit queue of console
    // and network, the only queue of entropy and disk.
    match id {
        1 => Some(("net", 1)),
        2 => Some(("blk", 0)),
        3 => Some(("console", 1)),
        4 => Some(("rng", 0)),
        _ => None,
    }
}

pub fn run(ram_base: u64, ram_end: u64) -> ! {
    mmu::enable();
    let rings = Rings::at(ram_base + (16 << 20));
    let context = Context { ram_end };
    let mut devices = 0;
    let mut failures = 0;
    for slot in 0..4 {
        let base = virt::VIRTIO_BASE + slot * virt::VIRTIO_STRIDE;
        let Ok(magic) = load(base + MAGIC, 4) else { continue };
        let id = load(base + DEVICE_ID, 4).unwrap_or(0) as u32;
        let Some((name, queue)) = device_name(id).filter(|_| magic == 0x7472_6976) else {
            say!("probe: virtio slot {slot}: unknown device {id} (magic {magic:#x})");
            continue;
        };
        devices += 1;
        let device = Device { base, name, queue };
        say!("probe: virtio slot {slot}: {name}");
        for abuse in ABUSES {
            if (abuse.run)(&device, &rings, &context) {
                say!("probe: virtio {name} {}: rejected", abuse.name);
            } else {
                failures += 1;
                say!(
                    "probe: virtio {name} {}: NOT REJECTED (status {:#x})",
                    abuse.name,
                    device.status()
                );
            }
        }
        match good_request(&device, &rings) {
            Ok(length) => say!("probe: virtio {name} good-request: served ({length} bytes)"),
            Err(why) => say!("probe: virtio {name} good-request: {why}"),
        }
        device.reset();
    }
    say!(
        "probe: virtio done: {devices} devices, {} abuses each, {failures} not rejected",
        ABUSES.len()
    );
    smccc::power_off()
}
