//! The virtio-mmio transport, version 2 (virtio 1.x "modern" only): the
//! register window a guest driver uses to discover a device, negotiate
//! features, set up its queues and notify it.
//!
//! This module owns the transport state and the device status state
//! machine. A guest that breaks the rules (DRIVER_OK before FEATURES_OK,
//! features changed after FEATURES_OK, a queue with a bad size or rings
//! outside RAM, a malformed descriptor chain) gets a log line and the
//! device in DEVICE_NEEDS_RESET; it stays there, ignoring notifications,
//! until the driver resets it by writing 0 to Status. The device models
//! behind it implement [`Device`].

use super::backend::Frame;
use super::guest_memory::GuestMemory;
use super::queue::{Chain, Queue, QueueError, MAX_QUEUE_SIZE};
use crate::vm::mmio::{MmioDevice, MmioError, Size};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use log::warn;

/// Feature bits every device offers (in the transport's range).
pub const VIRTIO_F_INDIRECT_DESC: u64 = 1 << 28;
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// Device status bits.
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    pub const FAILED: u32 = 128;
}

/// Interrupt status bits.
const INTERRUPT_USED_BUFFER: u32 = 1;
const INTERRUPT_CONFIG_CHANGE: u32 = 2;

/// "virt" in little-endian ASCII.
const MAGIC: u32 = 0x7472_6976;
/// "DUET" in little-endian ASCII.
pub const VENDOR_ID: u32 = 0x5445_5544;

/// Register offsets.
mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const SHM_SEL: u64 = 0x0ac;
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
    pub const END: u64 = 0x200;
}

/// Bytes of configuration space a device may have (0x100 to the window's end).
pub const CONFIG_BYTES: usize = (reg::END - reg::CONFIG) as usize;

/// A device's configuration space, little-endian, as the driver reads it.
pub type ConfigSpace = [u8; CONFIG_BYTES];

/// Log lines per device before Duet stops logging its guest's mistakes.
const LOG_LIMIT: u32 = 32;

/// What a device model gets when one of its queues needs service.
pub struct Env<'a> {
    pub memory: &'a GuestMemory,
    pub queues: &'a mut [Queue],
    vm: &'a str,
    device: &'static str,
    logged: &'a mut u32,
    /// A chain was returned to the driver.
    used: bool,
}

impl Env<'_> {
    /// The next checked chain of queue `queue`, if the driver offered one.
    pub fn pop(&mut self, queue: usize) -> Result<Option<Chain>, QueueError> {
        self.queues[queue].pop(self.memory)
    }

    /// Returns `chain` of `queue` to the driver, `written` bytes filled in.
    pub fn push(&mut self, queue: usize, chain: &Chain, written: u32) -> Result<(), QueueError> {
        self.queues[queue].push(self.memory, chain.head, written)?;
        self.used = true;
        Ok(())
    }

    /// Logs a request the device refused (within the device's log budget).
    pub fn reject(&mut self, why: fmt::Arguments) {
        log_limited(self.logged, self.vm, self.device, why);
    }
}

fn log_limited(logged: &mut u32, vm: &str, device: &str, what: fmt::Arguments) {
    *logged = logged.saturating_add(1);
    if *logged <= LOG_LIMIT {
        warn!("vm {vm}: virtio-{device}: {what}");
    } else if *logged == LOG_LIMIT + 1 {
        warn!("vm {vm}: virtio-{device}: more guest errors; no longer logging them");
    }
}

/// A device model behind the transport.
pub trait Device: Send {
    /// Short name for log lines ("blk", "net", ...).
    fn name(&self) -> &'static str;
    /// The virtio device ID.
    fn id(&self) -> u32;
    /// Device-specific feature bits offered (the transport adds its own).
    fn features(&self) -> u64;
    /// How many virtqueues it has.
    fn queue_count(&self) -> usize;
    /// Its configuration space, little-endian, as the driver reads it;
    /// returns its length.
    fn config(&self, out: &mut ConfigSpace) -> usize;
    /// The driver wrote `bytes` at `offset` of the configuration space;
    /// false if that is not a writable field (the write is then ignored
    /// and logged).
    fn write_config(&mut self, _offset: usize, _bytes: &[u8]) -> bool {
        false
    }
    /// Queue `queue` has something new (a notification, or the transport
    /// polling on Duet's behalf). An error is the guest's fault and sets
    /// DEVICE_NEEDS_RESET.
    fn service(&mut self, queue: usize, env: &mut Env) -> Result<(), QueueError>;
    /// Back to the state after power-on.
    fn reset(&mut self) {}
    /// What a display device (`gpu`) shows now, if anything.
    fn frame(&self) -> Option<Box<dyn Frame + '_>> {
        None
    }
}

/// Register window of one virtio-mmio device.
pub struct Transport {
    device: Box<dyn Device>,
    memory: GuestMemory,
    vm: &'static str,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: Vec<Queue>,
    interrupt_status: u32,
    /// An interrupt status bit went up since the caller last asked.
    raise: bool,
    config_generation: u32,
    logged: u32,
}

impl Transport {
    /// `device` for the VM called `vm`, whose RAM is `memory`.
    pub fn new(device: Box<dyn Device>, memory: GuestMemory, vm: &'static str) -> Self {
        let queues = (0..device.queue_count()).map(|_| Queue::default()).collect();
        Transport {
            device,
            memory,
            vm,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues,
            interrupt_status: 0,
            raise: false,
            config_generation: 0,
            logged: 0,
        }
    }

    /// The device model (to reach its own state from the VM).
    pub fn device(&mut self) -> &mut dyn Device {
        &mut *self.device
    }

    pub fn status(&self) -> u32 {
        self.status
    }

    fn offered(&self) -> u64 {
        self.device.features() | VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC
    }

    /// Whether the interrupt must be signalled (again): true once for each
    /// batch of interrupt status changes.
    pub fn take_interrupt(&mut self) -> bool {
        core::mem::take(&mut self.raise)
    }

    /// Back to power-on state (the driver wrote 0 to Status, or the VM
    /// restarts).
    pub fn reset(&mut self) {
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.queues.iter_mut().for_each(Queue::reset);
        self.interrupt_status = 0;
        self.raise = false;
        self.device.reset();
    }

    /// Lets the device serve queue `queue` now, if the driver is up (used
    /// when Duet has something for the guest, such as received frames).
    pub fn service(&mut self, queue: usize) {
        let live = self.status & status::DRIVER_OK != 0
            && self.status & status::DEVICE_NEEDS_RESET == 0
            && self.queues.get(queue).is_some_and(|q| q.ready);
        if !live {
            return;
        }
        let mut env = Env {
            memory: &self.memory,
            queues: &mut self.queues,
            vm: self.vm,
            device: self.device.name(),
            logged: &mut self.logged,
            used: false,
        };
        let result = self.device.service(queue, &mut env);
        let used = env.used;
        if used && self.queues[queue].wants_interrupt(&self.memory) {
            self.interrupt(INTERRUPT_USED_BUFFER);
        }
        if let Err(error) = result {
            self.needs_reset(format_args!("queue {queue}: {error}"));
        }
    }

    /// Lets Duet put something of its own into queue `queue` (input
    /// events): runs `f` if the driver is up and the queue live, and
    /// interrupts the driver if `f` used buffers. Returns what `f` did, or
    /// false if it could not run or the guest's queue was bad (the device
    /// then needs a reset).
    pub fn deliver(
        &mut self,
        queue: usize,
        f: impl FnOnce(&mut Env) -> Result<bool, QueueError>,
    ) -> bool {
        let live = self.status & status::DRIVER_OK != 0
            && self.status & status::DEVICE_NEEDS_RESET == 0
            && self.queues.get(queue).is_some_and(|q| q.ready);
        if !live {
            return false;
        }
        let mut env = Env {
            memory: &self.memory,
            queues: &mut self.queues,
            vm: self.vm,
            device: self.device.name(),
            logged: &mut self.logged,
            used: false,
        };
        let result = f(&mut env);
        let used = env.used;
        if used && self.queues[queue].wants_interrupt(&self.memory) {
            self.interrupt(INTERRUPT_USED_BUFFER);
        }
        match result {
            Ok(done) => done,
            Err(error) => {
                self.needs_reset(format_args!("queue {queue}: {error}"));
                false
            }
        }
    }

    fn interrupt(&mut self, bits: u32) {
        self.interrupt_status |= bits;
        self.raise = true;
    }

    fn log(&mut self, what: fmt::Arguments) {
        log_limited(&mut self.logged, self.vm, self.device.name(), what);
    }

    /// The guest broke the rules: log it and stop the device until reset.
    fn needs_reset(&mut self, why: fmt::Arguments) {
        self.log(format_args!("{why}; the device needs a reset"));
        if self.status & status::DEVICE_NEEDS_RESET == 0 {
            self.status |= status::DEVICE_NEEDS_RESET;
            if self.status & status::DRIVER_OK != 0 {
                self.interrupt(INTERRUPT_CONFIG_CHANGE);
            }
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            return self.reset();
        }
        // The device's own bit is not the driver's to set or clear.
        let value = value & !status::DEVICE_NEEDS_RESET;
        let old = self.status & !status::DEVICE_NEEDS_RESET;
        if old & !value != 0 {
            return self.needs_reset(format_args!(
                "status {value:#x} clears bits of {old:#x} without a reset"
            ));
        }
        let new = value & !old;
        let mut accepted = value;
        if new & status::FEATURES_OK != 0 && !self.features_acceptable(value) {
            accepted &= !status::FEATURES_OK;
        }
        if new & status::DRIVER_OK != 0 && accepted & status::FEATURES_OK == 0 {
            accepted &= !status::DRIVER_OK;
            self.needs_reset(format_args!("DRIVER_OK set before FEATURES_OK"));
        }
        self.status = accepted | (self.status & status::DEVICE_NEEDS_RESET);
    }

    /// Whether the features the driver chose can be accepted (FEATURES_OK).
    fn features_acceptable(&mut self, value: u32) -> bool {
        let needed = status::ACKNOWLEDGE | status::DRIVER;
        let unoffered = self.driver_features & !self.offered();
        if value & needed != needed {
            self.log(format_args!("FEATURES_OK without ACKNOWLEDGE and DRIVER; refused"));
            false
        } else if unoffered != 0 {
            self.log(format_args!("driver chose features {unoffered:#x} never offered; refused"));
            false
        } else if self.driver_features & VIRTIO_F_VERSION_1 == 0 {
            self.log(format_args!("driver did not accept VIRTIO_F_VERSION_1 (legacy); refused"));
            false
        } else {
            true
        }
    }

    fn write_driver_features(&mut self, value: u32) {
        let shift = match self.driver_features_sel {
            0 => 0,
            1 => 32,
            _ => return,
        };
        let features =
            (self.driver_features & !(0xffff_ffff << shift)) | (u64::from(value) << shift);
        if self.status & status::FEATURES_OK != 0 {
            if features != self.driver_features {
                self.needs_reset(format_args!("features changed after FEATURES_OK"));
            }
            return;
        }
        self.driver_features = features;
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// A write to a queue configuration register: refused while the queue
    /// is live.
    fn write_queue(&mut self, register: u64, value: u32) {
        let sel = self.queue_sel;
        let Some(queue) = self.selected() else {
            return self.log(format_args!("configures queue {sel}, which does not exist"));
        };
        if queue.ready {
            return self.needs_reset(format_args!("reconfigures queue {sel} while it is ready"));
        }
        let set_low = |field: &mut u64| *field = (*field & !0xffff_ffff) | u64::from(value);
        let set_high = |field: &mut u64| *field = (*field & 0xffff_ffff) | u64::from(value) << 32;
        match register {
            reg::QUEUE_NUM => queue.size = value.min(u32::from(u16::MAX)) as u16,
            reg::QUEUE_DESC_LOW => set_low(&mut queue.desc),
            reg::QUEUE_DESC_HIGH => set_high(&mut queue.desc),
            reg::QUEUE_DRIVER_LOW => set_low(&mut queue.avail),
            reg::QUEUE_DRIVER_HIGH => set_high(&mut queue.avail),
            reg::QUEUE_DEVICE_LOW => set_low(&mut queue.used),
            reg::QUEUE_DEVICE_HIGH => set_high(&mut queue.used),
            _ => {}
        }
    }

    fn write_queue_ready(&mut self, value: u32) {
        let sel = self.queue_sel;
        let features_ok = self.status & status::FEATURES_OK != 0;
        let indirect = self.driver_features & VIRTIO_F_INDIRECT_DESC != 0;
        let memory = self.memory;
        let Some(queue) = self.selected() else {
            return self.log(format_args!("enables queue {sel}, which does not exist"));
        };
        if value == 0 {
            // Disabling a queue forgets it (the driver sets it up afresh).
            let size = queue.size;
            queue.reset();
            queue.size = size;
            return;
        }
        if queue.ready {
            return;
        }
        let checked = queue.validate(&memory);
        match checked {
            Ok(()) if features_ok => {
                queue.indirect = indirect;
                queue.ready = true;
            }
            Ok(()) => self.needs_reset(format_args!("queue {sel} enabled before FEATURES_OK")),
            Err(e) => self.needs_reset(format_args!("queue {sel} cannot be enabled: {e}")),
        }
    }

    fn notify(&mut self, value: u32) {
        if self.status & status::DEVICE_NEEDS_RESET != 0 {
            return;
        }
        let queue = value as usize;
        match self.queues.get(queue) {
            Some(q) if q.ready && self.status & status::DRIVER_OK != 0 => self.service(queue),
            _ => self.log(format_args!("notifies queue {value}, which is not live; ignored")),
        }
    }

    fn read_config(&self, offset: u64, size: Size) -> u64 {
        let mut config = [0u8; CONFIG_BYTES];
        let length = self.device.config(&mut config);
        let mut bytes = [0u8; 8];
        for (i, byte) in bytes.iter_mut().take(usize::from(size)).enumerate() {
            let at = offset as usize + i;
            if at < length {
                *byte = config[at];
            }
        }
        u64::from_le_bytes(bytes)
    }
}

/// Checks the access shape: 32-bit aligned words below the configuration
/// space, 1/2/4/8-byte naturally aligned accesses inside it.
fn check_access(offset: u64, size: Size) -> Result<(), MmioError> {
    if offset >= reg::END {
        return Err(MmioError::NoRegister { offset });
    }
    if offset < reg::CONFIG && size != 4 {
        return Err(MmioError::BadSize { offset, size });
    }
    if !offset.is_multiple_of(u64::from(size)) {
        return Err(MmioError::Unaligned { offset, size });
    }
    Ok(())
}

impl MmioDevice for Transport {
    fn read(&mut self, _vcpu: usize, offset: u64, size: Size) -> Result<u64, MmioError> {
        check_access(offset, size)?;
        if offset >= reg::CONFIG {
            return Ok(self.read_config(offset - reg::CONFIG, size));
        }
        let queue = self.queues.get(self.queue_sel as usize);
        let value = match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => 2,
            reg::DEVICE_ID => self.device.id(),
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.offered() as u32,
                1 => (self.offered() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => queue.map_or(0, |_| u32::from(MAX_QUEUE_SIZE)),
            reg::QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready)),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            // No shared memory regions: length all ones means "none".
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH => u32::MAX,
            reg::CONFIG_GENERATION => self.config_generation,
            reg::DEVICE_FEATURES_SEL
            | reg::DRIVER_FEATURES
            | reg::DRIVER_FEATURES_SEL
            | reg::QUEUE_SEL
            | reg::QUEUE_NUM
            | reg::QUEUE_NOTIFY
            | reg::SHM_SEL
            | reg::INTERRUPT_ACK => return Err(MmioError::Direction { offset }),
            reg::QUEUE_DESC_LOW..=reg::QUEUE_DEVICE_HIGH => {
                let q = queue.cloned().unwrap_or_default();
                match offset {
                    reg::QUEUE_DESC_LOW => q.desc as u32,
                    reg::QUEUE_DESC_HIGH => (q.desc >> 32) as u32,
                    reg::QUEUE_DRIVER_LOW => q.avail as u32,
                    reg::QUEUE_DRIVER_HIGH => (q.avail >> 32) as u32,
                    reg::QUEUE_DEVICE_LOW => q.used as u32,
                    reg::QUEUE_DEVICE_HIGH => (q.used >> 32) as u32,
                    _ => return Err(MmioError::NoRegister { offset }),
                }
            }
            _ => return Err(MmioError::NoRegister { offset }),
        };
        Ok(u64::from(value))
    }

    fn write(
        &mut self,
        _vcpu: usize,
        offset: u64,
        size: Size,
        value: u64,
    ) -> Result<(), MmioError> {
        check_access(offset, size)?;
        if offset >= reg::CONFIG {
            let at = (offset - reg::CONFIG) as usize;
            let bytes = value.to_le_bytes();
            if !self.device.write_config(at, &bytes[..usize::from(size)]) {
                self.log(format_args!("writes configuration byte {at:#x}; ignored"));
            }
            return Ok(());
        }
        let value = value as u32;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES => self.write_driver_features(value),
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM
            | reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_DRIVER_LOW
            | reg::QUEUE_DRIVER_HIGH
            | reg::QUEUE_DEVICE_LOW
            | reg::QUEUE_DEVICE_HIGH => self.write_queue(offset, value),
            reg::QUEUE_READY => self.write_queue_ready(value),
            reg::QUEUE_NOTIFY => self.notify(value),
            reg::INTERRUPT_ACK => self.interrupt_status &= !value,
            // No shared memory regions: any one selected has length "none"
            // (virtio-gpu's driver asks).
            reg::SHM_SEL => {}
            reg::STATUS => self.write_status(value),
            reg::MAGIC
            | reg::VERSION
            | reg::DEVICE_ID
            | reg::VENDOR_ID
            | reg::DEVICE_FEATURES
            | reg::QUEUE_NUM_MAX
            | reg::INTERRUPT_STATUS
            | reg::CONFIG_GENERATION => return Err(MmioError::Direction { offset }),
            _ => return Err(MmioError::NoRegister { offset }),
        }
        Ok(())
    }
}

/// A transport under test, driven register by register as Linux would.
#[cfg(any(test, feature = "test-ram"))]
pub mod testing {
    use super::*;
    use crate::vdev::virtio::queue::driver::TestDriver;

    /// Brings `transport` to DRIVER_OK with `features` and queues set up
    /// as `drivers` (one per queue).
    pub fn bring_up(transport: &mut Transport, features: u64, drivers: &[&TestDriver]) {
        let w = |t: &mut Transport, offset, value: u64| t.write(0, offset, 4, value).unwrap();
        w(transport, reg::STATUS, 0);
        w(transport, reg::STATUS, u64::from(status::ACKNOWLEDGE | status::DRIVER));
        w(transport, reg::DRIVER_FEATURES_SEL, 0);
        w(transport, reg::DRIVER_FEATURES, features & 0xffff_ffff);
        w(transport, reg::DRIVER_FEATURES_SEL, 1);
        w(transport, reg::DRIVER_FEATURES, features >> 32);
        let ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        w(transport, reg::STATUS, u64::from(ok));
        for (n, driver) in drivers.iter().enumerate() {
            let q = &driver.queue;
            w(transport, reg::QUEUE_SEL, n as u64);
            w(transport, reg::QUEUE_NUM, u64::from(q.size));
            w(transport, reg::QUEUE_DESC_LOW, q.desc & 0xffff_ffff);
            w(transport, reg::QUEUE_DESC_HIGH, q.desc >> 32);
            w(transport, reg::QUEUE_DRIVER_LOW, q.avail & 0xffff_ffff);
            w(transport, reg::QUEUE_DRIVER_HIGH, q.avail >> 32);
            w(transport, reg::QUEUE_DEVICE_LOW, q.used & 0xffff_ffff);
            w(transport, reg::QUEUE_DEVICE_HIGH, q.used >> 32);
            w(transport, reg::QUEUE_READY, 1);
        }
        w(transport, reg::STATUS, u64::from(ok | status::DRIVER_OK));
    }

    /// Notifies queue `queue`.
    pub fn notify(transport: &mut Transport, queue: u32) {
        transport.write(0, reg::QUEUE_NOTIFY, 4, u64::from(queue)).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{bring_up, notify};
    use super::*;
    use crate::vdev::virtio::guest_memory::TestRam;
    use crate::vdev::virtio::queue::driver::TestDriver;
    use crate::vdev::virtio::queue::VIRTQ_DESC_F_WRITE;

    const BASE: u64 = 0x4000_0000;

    /// A device with one queue that fills each buffer with 0xaa.
    struct Filler;

    impl Device for Filler {
        fn name(&self) -> &'static str {
            "filler"
        }
        fn id(&self) -> u32 {
            42
        }
        fn features(&self) -> u64 {
            1 << 3
        }
        fn queue_count(&self) -> usize {
            1
        }
        fn config(&self, out: &mut ConfigSpace) -> usize {
            out[..4].copy_from_slice(&0x1122_3344u32.to_le_bytes());
            4
        }
        fn service(&mut self, queue: usize, env: &mut Env) -> Result<(), QueueError> {
            while let Some(chain) = env.pop(queue)? {
                let bytes = alloc::vec![0xaa; chain.writable_len() as usize];
                let written = chain.write_at(env.memory, 0, &bytes);
                env.push(queue, &chain, written as u32)?;
            }
            Ok(())
        }
    }

    fn setup() -> (TestRam, Transport, TestDriver) {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let transport = Transport::new(Box::new(Filler), ram.memory(), "test");
        (ram, transport, TestDriver::new(BASE, 16))
    }

    fn read(t: &mut Transport, offset: u64) -> u32 {
        t.read(0, offset, 4).unwrap() as u32
    }

    #[test]
    fn identifies_itself() {
        let (_ram, mut t, _) = setup();
        assert_eq!(read(&mut t, reg::MAGIC), 0x7472_6976);
        assert_eq!(read(&mut t, reg::VERSION), 2);
        assert_eq!(read(&mut t, reg::DEVICE_ID), 42);
        assert_eq!(read(&mut t, reg::DEVICE_FEATURES), (1 << 3) | (1 << 28));
        t.write(0, reg::DEVICE_FEATURES_SEL, 4, 1).unwrap();
        assert_eq!(read(&mut t, reg::DEVICE_FEATURES), 1);
        assert_eq!(read(&mut t, reg::QUEUE_NUM_MAX), 256);
        t.write(0, reg::QUEUE_SEL, 4, 1).unwrap();
        assert_eq!(read(&mut t, reg::QUEUE_NUM_MAX), 0);
        assert_eq!(t.read(0, 0x100, 2), Ok(0x3344));
        assert_eq!(t.read(0, 0x102, 1), Ok(0x22));
        assert_eq!(t.read(0, 0x108, 4), Ok(0));
        // Shared memory region 0 does not exist (length all ones).
        t.write(0, reg::SHM_SEL, 4, 0).unwrap();
        assert_eq!(read(&mut t, reg::SHM_LEN_LOW), u32::MAX);
        assert_eq!(read(&mut t, reg::SHM_LEN_HIGH), u32::MAX);
    }

    #[test]
    fn refuses_bad_access_shapes() {
        let (_ram, mut t, _) = setup();
        assert_eq!(t.read(0, 0x2, 2), Err(MmioError::BadSize { offset: 2, size: 2 }));
        assert_eq!(t.read(0, 0x102, 4), Err(MmioError::Unaligned { offset: 0x102, size: 4 }));
        assert_eq!(t.read(0, 0x200, 4), Err(MmioError::NoRegister { offset: 0x200 }));
        assert_eq!(t.read(0, reg::QUEUE_NOTIFY, 4), Err(MmioError::Direction { offset: 0x50 }));
        assert_eq!(t.write(0, reg::MAGIC, 4, 0), Err(MmioError::Direction { offset: 0 }));
    }

    #[test]
    fn serves_a_queue_and_interrupts() {
        let (mut ram, mut t, mut driver) = setup();
        let memory = ram.memory();
        bring_up(&mut t, VIRTIO_F_VERSION_1, &[&driver]);
        assert_eq!(t.status(), 0xf);
        driver.descriptor(&memory, 0, BASE + 0x1_0000, 4, VIRTQ_DESC_F_WRITE, 0);
        driver.offer(&memory, 0);
        notify(&mut t, 0);
        assert_eq!(driver.used(&memory, 0), (1, 0, 4));
        assert_eq!(memory.read_u32(BASE + 0x1_0000), Ok(0xaaaa_aaaa));
        assert!(t.take_interrupt());
        assert!(!t.take_interrupt());
        assert_eq!(read(&mut t, reg::INTERRUPT_STATUS), 1);
        t.write(0, reg::INTERRUPT_ACK, 4, 1).unwrap();
        assert_eq!(read(&mut t, reg::INTERRUPT_STATUS), 0);
    }

    #[test]
    fn a_bad_chain_sets_needs_reset_until_reset() {
        let (mut ram, mut t, mut driver) = setup();
        let memory = ram.memory();
        bring_up(&mut t, VIRTIO_F_VERSION_1, &[&driver]);
        driver.descriptor(&memory, 0, BASE + 0x1_fffe, 4, VIRTQ_DESC_F_WRITE, 0);
        driver.offer(&memory, 0);
        notify(&mut t, 0);
        assert_eq!(t.status() & status::DEVICE_NEEDS_RESET, status::DEVICE_NEEDS_RESET);
        assert!(t.take_interrupt());
        assert_eq!(read(&mut t, reg::INTERRUPT_STATUS), INTERRUPT_CONFIG_CHANGE);
        // Further notifications are ignored; a reset brings it back.
        driver.descriptor(&memory, 0, BASE + 0x1_0000, 4, VIRTQ_DESC_F_WRITE, 0);
        notify(&mut t, 0);
        assert_eq!(driver.used(&memory, 0).0, 0);
        t.write(0, reg::STATUS, 4, 0).unwrap();
        assert_eq!(t.status(), 0);
        let mut driver = TestDriver::new(BASE + 0x8000, 16);
        bring_up(&mut t, VIRTIO_F_VERSION_1, &[&driver]);
        driver.descriptor(&memory, 0, BASE + 0x1_0000, 4, VIRTQ_DESC_F_WRITE, 0);
        driver.offer(&memory, 0);
        notify(&mut t, 0);
        assert_eq!(driver.used(&memory, 0), (1, 0, 4));
    }

    #[test]
    fn refuses_a_legacy_driver_and_unoffered_features() {
        let (_ram, mut t, _) = setup();
        let w =
            |t: &mut Transport, offset, value: u32| t.write(0, offset, 4, value.into()).unwrap();
        let ad = status::ACKNOWLEDGE | status::DRIVER;
        w(&mut t, reg::STATUS, ad);
        w(&mut t, reg::DRIVER_FEATURES, 1 << 3);
        w(&mut t, reg::STATUS, ad | status::FEATURES_OK);
        assert_eq!(t.status() & status::FEATURES_OK, 0, "no VERSION_1");
        w(&mut t, reg::DRIVER_FEATURES, 1 << 5);
        w(&mut t, reg::DRIVER_FEATURES_SEL, 1);
        w(&mut t, reg::DRIVER_FEATURES, 1);
        w(&mut t, reg::STATUS, ad | status::FEATURES_OK);
        assert_eq!(t.status() & status::FEATURES_OK, 0, "bit 5 never offered");
        w(&mut t, reg::DRIVER_FEATURES_SEL, 0);
        w(&mut t, reg::DRIVER_FEATURES, 1 << 3);
        w(&mut t, reg::STATUS, ad | status::FEATURES_OK);
        assert_eq!(t.status(), ad | status::FEATURES_OK);
    }

    #[test]
    fn driver_ok_before_features_ok_needs_reset() {
        let (_ram, mut t, _) = setup();
        t.write(0, reg::STATUS, 4, 3).unwrap();
        t.write(0, reg::STATUS, 4, 7).unwrap();
        assert_eq!(t.status(), 3 | status::DEVICE_NEEDS_RESET);
    }

    #[test]
    fn features_cannot_change_after_features_ok() {
        let (_ram, mut t, driver) = setup();
        bring_up(&mut t, VIRTIO_F_VERSION_1, &[&driver]);
        t.write(0, reg::DRIVER_FEATURES_SEL, 4, 0).unwrap();
        t.write(0, reg::DRIVER_FEATURES, 4, 1 << 3).unwrap();
        assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn refuses_a_bad_queue() {
        for (size, desc) in [(3, BASE), (512, BASE), (16, BASE + 8), (16, BASE + 0x1_fff0), (16, 0)]
        {
            let (_ram, mut t, mut driver) = setup();
            driver.queue.size = size;
            driver.queue.desc = desc;
            bring_up(&mut t, VIRTIO_F_VERSION_1, &[&driver]);
            assert_eq!(read(&mut t, reg::QUEUE_READY), 0, "size {size} desc {desc:#x}");
            assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
        }
    }

    #[test]
    fn a_live_queue_cannot_be_moved() {
        let (_ram, mut t, driver) = setup();
        bring_up(&mut t, VIRTIO_F_VERSION_1, &[&driver]);
        t.write(0, reg::QUEUE_DESC_LOW, 4, 0x1000).unwrap();
        assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn status_bits_cannot_be_cleared_without_a_reset() {
        let (_ram, mut t, driver) = setup();
        bring_up(&mut t, VIRTIO_F_VERSION_1, &[&driver]);
        t.write(0, reg::STATUS, 4, 3).unwrap();
        assert_eq!(t.status(), 0xf | status::DEVICE_NEEDS_RESET);
    }

    #[test]
    fn the_indirect_feature_reaches_the_queue() {
        let (mut ram, mut t, mut driver) = setup();
        let memory = ram.memory();
        bring_up(&mut t, VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC, &[&driver]);
        let table = BASE + 0x1_0000;
        driver.descriptor(
            &memory,
            0,
            table,
            16,
            crate::vdev::virtio::queue::VIRTQ_DESC_F_INDIRECT,
            0,
        );
        crate::vdev::virtio::queue::driver::write_descriptor(
            &memory,
            table,
            0,
            BASE + 0x1_1000,
            8,
            VIRTQ_DESC_F_WRITE,
            0,
        );
        driver.offer(&memory, 0);
        notify(&mut t, 0);
        assert_eq!(driver.used(&memory, 0), (1, 0, 8));
        assert_eq!(t.status() & status::DEVICE_NEEDS_RESET, 0);
    }
}
