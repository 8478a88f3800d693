//! The contract between Duet's virtual virtio devices (what a guest sees)
//! and what backs them on the real board (a partition of the physical disk,
//! a port of Duet's network switch, an entropy source, the screen). The device models in
//! `vdev::virtio` use only these traits, so they are host-tested against
//! in-memory fakes and run on any board whose drivers implement them.

use core::fmt;

/// The sector size virtio-blk counts in.
pub const SECTOR_SIZE: usize = 512;

/// Why a backend could not do what was asked. The device model turns any of
/// these into `VIRTIO_BLK_S_IOERR` (or a dropped frame) and logs it; the
/// guest and Duet go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The request reaches past the end of the backing region.
    OutOfRange { sector: u64, sectors: u64 },
    /// The physical device reported an error.
    Device,
    /// The backing store is read-only.
    ReadOnly,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutOfRange { sector, sectors } => {
                write!(f, "sectors {sector}..+{sectors} are outside the disk")
            }
            Self::Device => write!(f, "the physical device failed"),
            Self::ReadOnly => write!(f, "the disk is read-only"),
        }
    }
}

/// A VM's disk: a region of sectors on the physical storage.
pub trait BlockStore: Send {
    /// Size of the region in 512-byte sectors.
    fn sectors(&self) -> u64;
    /// Reads `buffer.len() / SECTOR_SIZE` sectors starting at `sector`
    /// (relative to the region). `buffer.len()` is a multiple of SECTOR_SIZE.
    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError>;
    /// Writes whole sectors at `sector`. Once this returns the data may
    /// still sit in a volatile cache until `flush`.
    fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), BackendError>;
    /// Makes every completed write durable (survives a power cut).
    fn flush(&mut self) -> Result<(), BackendError>;
    /// True when writes are refused.
    fn read_only(&self) -> bool {
        false
    }
}

/// A VM's attachment to Duet's network switch: whole Ethernet frames in
/// and out, without the virtio-net header.
pub trait NetPort: Send {
    /// The MAC address the VM's NIC reports.
    fn mac(&self) -> [u8; 6];
    /// Hands a frame the guest transmitted to the switch. The switch may
    /// drop it (policy, no room); that is not an error for the guest.
    fn transmit(&mut self, frame: &[u8]);
    /// Takes the next frame waiting for the guest, if any, into `buffer`,
    /// returning its length. A frame longer than `buffer` is dropped.
    fn receive(&mut self, buffer: &mut [u8]) -> Option<usize>;
}

/// Random bytes for virtio-rng.
pub trait EntropySource: Send {
    /// Fills `buffer`; returns false if no entropy could be had now.
    fn fill(&mut self, buffer: &mut [u8]) -> bool;
}

/// A rectangle of pixels: columns `x..x + width`, rows `y..y + height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// What a VM shows on its scanout, read in place from its RAM (Duet keeps
/// no copy of a guest's pixels).
pub trait Frame {
    fn width(&self) -> u32;
    fn height(&self) -> u32;
    /// Reads pixels x..x+out.len() of row y as 0x00RRGGBB; false if the
    /// backing does not cover them (then `out` is left as is).
    fn read_row(&self, y: u32, x: u32, out: &mut [u32]) -> bool;
}

/// Where a VM's virtual display goes: the compositor, which shows it or
/// not (a background VM's flush should cost nothing).
///
/// `flushed` and `scanout_off` are called with the VM's virtio-gpu device
/// locked; `vm::virtio::with_scanout` takes the same lock. So a sink must
/// not wait for a lock that is held around a call to `with_scanout`.
pub trait DisplaySink: Send {
    /// The VM flushed `rect` of its scanout `frame`.
    fn flushed(&mut self, frame: &dyn Frame, rect: Rect);
    /// The VM turned its scanout off (or reset the device).
    fn scanout_off(&mut self);
}

/// What backs one VM's virtio devices, as chosen for it when it is built
/// (`vm::virtio::backends_for`). Every VM gets a console and an entropy
/// device, a display of `display_size` (width, height) and input devices;
/// a disk and a NIC only where a backend exists.
pub struct Backends {
    pub disk: Option<alloc::boxed::Box<dyn BlockStore>>,
    pub net: Option<alloc::boxed::Box<dyn NetPort>>,
    pub entropy: alloc::boxed::Box<dyn EntropySource>,
    pub display: alloc::boxed::Box<dyn DisplaySink>,
    pub display_size: (u32, u32),
}
