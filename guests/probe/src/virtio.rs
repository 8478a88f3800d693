//! `probe.mode=virtio`: a driver that breaks every rule. For each virtio
//! device Duet gave it (slots 0 to 6), the probe sets the device up and
//! then abuses it one way at a time: descriptor chains that loop, reach
//! outside its RAM, are too long, are readable after writable; indirect
//! tables that are not negotiated, the wrong length, nested or chained;
//! ring indices that run away; and status abuse (DRIVER_OK before
//! FEATURES_OK, a legacy driver, features changed late, bad queues).
//! Each must be refused: DEVICE_NEEDS_RESET set, or FEATURES_OK or the
//! queue not accepted. The display (virtio-gpu) is first also sent
//! commands that are well formed but wrong (backing outside its RAM, a
//! resource too large, a rectangle outside its resource, unknown resource
//! IDs, too many resources), each of which must get its error response.
//! One line each, `probe: virtio <device> <abuse>: rejected` (or `NOT
//! REJECTED ...`). Last, after a reset, a good request must still be
//! served. Then it powers off.

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

    /// Publishes available index `index` (the entries are written).
    fn offer_index(&self, index: u16) {
        fence(Ordering::SeqCst);
        // SAFETY: as in `clear`.
        unsafe { write_volatile((self.avail + 2) as *mut u16, index) };
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
    // Register accesses are single LDR/STR instructions written out: a
    // volatile access may compile to a writeback form (`str w8, [x9, #92]!`)
    // whose trap carries no syndrome, which no hypervisor can emulate.
    fn read(&self, offset: u64) -> u32 {
        let value: u32;
        // SAFETY: a register of a device Duet emulates for this guest.
        unsafe {
            core::arch::asm!("ldr {value:w}, [{address}]", value = out(reg) value,
                address = in(reg) self.base + offset, options(nostack, preserves_flags));
        }
        value
    }

    fn write(&self, offset: u64, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            core::arch::asm!("str {value:w}, [{address}]", value = in(reg) value,
                address = in(reg) self.base + offset, options(nostack, preserves_flags));
        }
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
/// behind its 12-byte header; a read of the disk's first sector (header,
/// 512 bytes of data, status byte: 513 bytes written back), which leaves
/// the disk as it was.
fn good_request(device: &Device, rings: &Rings) -> Result<u32, &'static str> {
    let line = b"probe: hvc line\n";
    let (flags, length) = match device.name {
        "rng" => (F_WRITE, 16),
        "console" => (0, line.len() as u32),
        "net" => (0, 12 + 60),
        "keyboard" | "touch" => (0, 8),
        "gpu" => (F_NEXT, 24),
        _ => (F_NEXT, 16),
    };
    device.bring_up(rings, 0);
    // The console's line; for the disk, its request header: type 0 (IN),
    // reserved, sector 0, so the first 16 bytes must be zero; for the
    // display, GET_DISPLAY_INFO's header.
    let display_info = gpu::header(gpu::GET_DISPLAY_INFO);
    let bytes: &[u8] = match device.name {
        "blk" => &[0; 16],
        "gpu" => &display_info,
        _ => line,
    };
    for (i, byte) in bytes.iter().enumerate() {
        // SAFETY: the probe's own RAM.
        unsafe { write_volatile((rings.data + i as u64) as *mut u8, *byte) };
    }
    rings.descriptor(rings.desc, 0, rings.data, length, flags, 1);
    if device.name == "blk" {
        rings.descriptor(rings.desc, 1, rings.data + 512, 512, F_WRITE | F_NEXT, 2);
        rings.descriptor(rings.desc, 2, rings.data + 1024, 1, F_WRITE, 0);
    }
    if device.name == "gpu" {
        rings.descriptor(rings.desc, 1, rings.data + 512, gpu::DISPLAY_INFO_BYTES, F_WRITE, 0);
    }
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

fn device_name(id: u32, slot: u64) -> Option<(&'static str, u32)> {
    // The queue each device walks at once: the transmit queue of console
    // and network, the only queue of entropy and disk, the display's
    // control queue, the input devices' status queue. Keyboard and
    // touchscreen are both virtio-input; their slots tell them apart.
    match (id, slot) {
        (1, _) => Some(("net", 1)),
        (2, _) => Some(("blk", 0)),
        (3, _) => Some(("console", 1)),
        (4, _) => Some(("rng", 0)),
        (16, _) => Some(("gpu", 0)),
        (18, 5) => Some(("keyboard", 1)),
        (18, _) => Some(("touch", 1)),
        _ => None,
    }
}

pub fn run(ram_base: u64, ram_end: u64) -> ! {
    mmu::enable();
    let rings = Rings::at(ram_base + (16 << 20));
    let context = Context { ram_end };
    let mut devices = 0;
    let mut failures = 0;
    for slot in 0..7 {
        let base = virt::VIRTIO_BASE + slot * virt::VIRTIO_STRIDE;
        let Ok(magic) = load(base + MAGIC, 4) else { continue };
        let id = load(base + DEVICE_ID, 4).unwrap_or(0) as u32;
        let Some((name, queue)) = device_name(id, slot).filter(|_| magic == 0x7472_6976) else {
            say!("probe: virtio slot {slot}: unknown device {id} (magic {magic:#x})");
            continue;
        };
        devices += 1;
        let device = Device { base, name, queue };
        say!("probe: virtio slot {slot}: {name}");
        if name == "gpu" {
            failures += gpu::abuse(&device, &rings, &context);
        }
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
        "probe: virtio done: {devices} devices, {} abuses each, {} more for the gpu, \
         {failures} not rejected",
        ABUSES.len(),
        gpu::ABUSES.len()
    );
    smccc::power_off()
}

/// Commands to the display that are well formed but wrong.
mod gpu {
    use super::{Context, Device, Rings, F_NEXT, F_WRITE};
    use core::ptr::{read_volatile, write_volatile};

    pub const GET_DISPLAY_INFO: u32 = 0x0100;
    const RESOURCE_CREATE_2D: u32 = 0x0101;
    const SET_SCANOUT: u32 = 0x0103;
    const RESOURCE_FLUSH: u32 = 0x0104;
    const RESOURCE_ATTACH_BACKING: u32 = 0x0106;
    const OK_NODATA: u32 = 0x1100;
    const ERR_OUT_OF_MEMORY: u32 = 0x1201;
    const ERR_INVALID_RESOURCE_ID: u32 = 0x1203;
    const ERR_INVALID_PARAMETER: u32 = 0x1205;
    /// B8G8R8X8, the format Linux uses.
    const FORMAT: u32 = 2;
    pub const DISPLAY_INFO_BYTES: u32 = 24 + 16 * 24;

    /// A command header of `kind` (no fence).
    pub fn header(kind: u32) -> [u8; 24] {
        let mut header = [0u8; 24];
        header[..4].copy_from_slice(&kind.to_le_bytes());
        header
    }

    /// One abuse: what it sends to a freshly set-up display, and the
    /// response its last command must get.
    pub struct Abuse {
        pub name: &'static str,
        run: fn(&mut Session, &Context) -> u32,
        expected: u32,
    }

    pub const ABUSES: &[Abuse] = &[
        Abuse {
            name: "gpu-backing-outside-ram",
            run: backing_outside,
            expected: ERR_INVALID_PARAMETER,
        },
        Abuse { name: "gpu-resource-too-large", run: too_large, expected: ERR_INVALID_PARAMETER },
        Abuse {
            name: "gpu-rectangle-outside-resource",
            run: rect_outside,
            expected: ERR_INVALID_PARAMETER,
        },
        Abuse { name: "gpu-unknown-resource", run: unknown, expected: ERR_INVALID_RESOURCE_ID },
        Abuse { name: "gpu-too-many-resources", run: too_many, expected: ERR_OUT_OF_MEMORY },
    ];

    /// Commands sent one at a time on the control queue, each in chain 0:
    /// the request at `data`, backing entries after it, the response at
    /// `data + 0x800`.
    pub struct Session<'a> {
        device: &'a Device,
        rings: &'a Rings,
        sent: u16,
    }

    impl Session<'_> {
        /// Sends command `kind` with `words` after its header and backing
        /// `entries`; the response type (0 if none came back).
        fn send(&mut self, kind: u32, words: &[u32], entries: &[(u64, u32)]) -> u32 {
            let r = self.rings;
            let request = header(kind);
            let mut at = r.data;
            let mut put = |bytes: &[u8]| {
                for byte in bytes {
                    // SAFETY: the probe's own RAM, which nothing else uses.
                    unsafe { write_volatile(at as *mut u8, *byte) };
                    at += 1;
                }
            };
            put(&request);
            for word in words {
                put(&word.to_le_bytes());
            }
            for (address, length) in entries {
                put(&address.to_le_bytes());
                put(&length.to_le_bytes());
                put(&[0; 4]);
            }
            let response = r.data + 0x800;
            // SAFETY: as above.
            unsafe { write_volatile(response as *mut u32, 0) };
            r.descriptor(r.desc, 0, r.data, (at - r.data) as u32, F_NEXT, 1);
            r.descriptor(r.desc, 1, response, 64, F_WRITE, 0);
            self.sent += 1;
            // SAFETY: as above; the available ring's slot for this offer.
            unsafe {
                let slot = u64::from((self.sent - 1) % super::QUEUE_SIZE);
                write_volatile((r.avail + 4 + 2 * slot) as *mut u16, 0);
            }
            r.offer_index(self.sent);
            self.device.notify();
            if r.used_index() != self.sent {
                return 0;
            }
            // SAFETY: as above.
            unsafe { read_volatile(response as *const u32) }
        }

        fn create(&mut self, id: u32, width: u32, height: u32) -> u32 {
            self.send(RESOURCE_CREATE_2D, &[id, FORMAT, width, height], &[])
        }
    }

    fn backing_outside(s: &mut Session, c: &Context) -> u32 {
        s.create(1, 16, 16);
        s.send(RESOURCE_ATTACH_BACKING, &[1, 1], &[(c.ram_end - 512, 1024)])
    }

    fn too_large(s: &mut Session, _: &Context) -> u32 {
        s.create(1, 4097, 16)
    }

    fn rect_outside(s: &mut Session, _: &Context) -> u32 {
        s.create(1, 16, 16);
        let backing = s.rings.data + 0x1000;
        if s.send(RESOURCE_ATTACH_BACKING, &[1, 1], &[(backing, 1024)]) != OK_NODATA {
            return 0;
        }
        s.send(RESOURCE_FLUSH, &[8, 8, 16, 16, 1, 0], &[])
    }

    fn unknown(s: &mut Session, _: &Context) -> u32 {
        s.create(1, 16, 16);
        match s.send(SET_SCANOUT, &[0, 0, 16, 16, 0, 77], &[]) {
            ERR_INVALID_RESOURCE_ID => s.send(RESOURCE_FLUSH, &[0, 0, 16, 16, 78, 0], &[]),
            other => other,
        }
    }

    fn too_many(s: &mut Session, _: &Context) -> u32 {
        for id in 1..=16 {
            if s.create(id, 1, 1) != OK_NODATA {
                return 0;
            }
        }
        s.create(17, 1, 1)
    }

    /// Runs every abuse on a freshly set-up display; how many were not
    /// refused as they should have been.
    pub fn abuse(device: &Device, rings: &Rings, context: &Context) -> u32 {
        let mut failures = 0;
        for abuse in ABUSES {
            device.bring_up(rings, 0);
            let mut session = Session { device, rings, sent: 0 };
            let response = (abuse.run)(&mut session, context);
            if response == abuse.expected && !device.needs_reset() {
                say!("probe: virtio gpu {}: rejected ({response:#x})", abuse.name);
            } else {
                failures += 1;
                say!(
                    "probe: virtio gpu {}: NOT REJECTED (response {response:#x}, status {:#x})",
                    abuse.name,
                    device.status()
                );
            }
        }
        failures
    }
}
