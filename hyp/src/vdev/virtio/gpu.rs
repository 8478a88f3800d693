//! virtio-gpu (device ID 16), 2D only: one scanout of the VM's virtual
//! display size, 2D resources, their backing in guest RAM, transfers and
//! flushes. No 3D, no EDID, no blob resources; the cursor queue is
//! accepted and ignored.
//!
//! Duet keeps no copy of a guest's pixels. A resource is its format, its
//! size and the list of guest RAM ranges backing it (each checked inside
//! the VM's RAM when attached, together covering width * height * 4
//! bytes, laid out row after row, width * 4 bytes a row, as Linux lays
//! them out). TRANSFER_TO_HOST_2D is checked and then has nothing to do;
//! RESOURCE_FLUSH of the resource on the scanout hands the [`DisplaySink`]
//! a [`Frame`] that reads the pixels from guest RAM when the compositor
//! wants them, so a background VM's flush costs no copy.
//!
//! Everything a guest controls is bounded: at most [`MAX_RESOURCES`]
//! resources of at most [`MAX_SIDE`] pixels a side, at most
//! [`MAX_ENTRIES`] backing ranges per attach and [`MAX_DEVICE_ENTRIES`]
//! (after merging adjacent ones) for all resources together, rectangles
//! inside their resource. A bad command gets the matching
//! `VIRTIO_GPU_RESP_ERR_*` and a log line; the device goes on.

use super::backend::{DisplaySink, Frame, Rect};
use super::guest_memory::GuestMemory;
use super::mmio::{ConfigSpace, Device, Env};
use super::queue::{Chain, QueueError};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

pub const CONTROL_QUEUE: usize = 0;
pub const CURSOR_QUEUE: usize = 1;

/// Command types (virtio 1.2, 5.7.6.7).
pub mod command {
    pub const GET_DISPLAY_INFO: u32 = 0x0100;
    pub const RESOURCE_CREATE_2D: u32 = 0x0101;
    pub const RESOURCE_UNREF: u32 = 0x0102;
    pub const SET_SCANOUT: u32 = 0x0103;
    pub const RESOURCE_FLUSH: u32 = 0x0104;
    pub const TRANSFER_TO_HOST_2D: u32 = 0x0105;
    pub const RESOURCE_ATTACH_BACKING: u32 = 0x0106;
    pub const RESOURCE_DETACH_BACKING: u32 = 0x0107;
    pub const GET_EDID: u32 = 0x010a;
}

/// Response types.
pub mod response {
    pub const OK_NODATA: u32 = 0x1100;
    pub const OK_DISPLAY_INFO: u32 = 0x1101;
    pub const ERR_UNSPEC: u32 = 0x1200;
    pub const ERR_OUT_OF_MEMORY: u32 = 0x1201;
    pub const ERR_INVALID_SCANOUT_ID: u32 = 0x1202;
    pub const ERR_INVALID_RESOURCE_ID: u32 = 0x1203;
    pub const ERR_INVALID_PARAMETER: u32 = 0x1205;
}

/// Header flags echoed in the response: the fence and its ring index.
const FLAG_FENCE: u32 = 1;
const FLAG_INFO_RING_IDX: u32 = 2;

/// `virtio_gpu_ctrl_hdr`.
pub const HEADER_BYTES: usize = 24;
/// The display info response: the header and 16 `virtio_gpu_display_one`.
pub const DISPLAY_INFO_BYTES: usize = HEADER_BYTES + 16 * 24;
/// One `virtio_gpu_mem_entry` of RESOURCE_ATTACH_BACKING.
const ENTRY_BYTES: usize = 16;

/// Limits on what a guest may make Duet hold.
pub const MAX_RESOURCES: usize = 16;
pub const MAX_SIDE: u32 = 4096;
pub const MAX_ENTRIES: u32 = 16384;
pub const MAX_DEVICE_ENTRIES: usize = 16384;

/// Pixel formats, by where red, green and blue sit among a pixel's four
/// bytes in memory (alpha, if any, is ignored: the screen is opaque).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// Byte index of red, green, blue.
    rgb: [usize; 3],
}

impl Format {
    /// The virtio format codes Duet takes: the 32-bit ones Linux uses.
    pub fn from_virtio(code: u32) -> Option<Format> {
        let rgb = match code {
            // B8G8R8A8, B8G8R8X8
            1 | 2 => [2, 1, 0],
            // A8R8G8B8, X8R8G8B8
            3 | 4 => [1, 2, 3],
            // R8G8B8A8, R8G8B8X8
            67 | 134 => [0, 1, 2],
            // X8B8G8R8, A8B8G8R8
            68 | 121 => [3, 2, 1],
            _ => return None,
        };
        Some(Format { rgb })
    }

    /// The pixel `bytes` as 0x00RRGGBB.
    fn rgb(self, bytes: &[u8]) -> u32 {
        let [r, g, b] = self.rgb;
        u32::from(bytes[r]) << 16 | u32::from(bytes[g]) << 8 | u32::from(bytes[b])
    }
}

/// Why a command was refused (logged; the guest gets [`GpuError::response`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuError {
    /// The request is shorter than its command's structure.
    ShortRequest {
        bytes: u64,
        needed: u64,
    },
    /// A command this 2D device does not do (3D, blobs, capsets, EDID).
    Unsupported {
        kind: u32,
    },
    /// Resource ID 0, or one that exists already, for a new resource.
    ResourceIdTaken {
        id: u32,
    },
    NoSuchResource {
        id: u32,
    },
    TooManyResources,
    BadFormat {
        format: u32,
    },
    BadSize {
        width: u32,
        height: u32,
    },
    /// A rectangle not inside its resource (or, for a scanout, empty).
    RectOutside {
        rect: Rect,
        width: u32,
        height: u32,
    },
    NoSuchScanout {
        id: u32,
    },
    AlreadyBacked {
        id: u32,
    },
    NotBacked {
        id: u32,
    },
    BadEntryCount {
        entries: u32,
    },
    EntryOutsideRam {
        index: u32,
        address: u64,
        length: u32,
    },
    BackingTooSmall {
        bytes: u64,
        needed: u64,
    },
    /// More backing ranges than the device holds for all resources.
    TooManyEntries,
    /// A transfer that reads past the end of the backing.
    TransferOutside {
        offset: u64,
        bytes: u64,
    },
}

impl GpuError {
    /// The response type the guest gets.
    pub fn response(&self) -> u32 {
        use response::*;
        match self {
            Self::ShortRequest { .. }
            | Self::Unsupported { .. }
            | Self::AlreadyBacked { .. }
            | Self::NotBacked { .. } => ERR_UNSPEC,
            Self::ResourceIdTaken { .. } | Self::NoSuchResource { .. } => ERR_INVALID_RESOURCE_ID,
            Self::TooManyResources | Self::TooManyEntries => ERR_OUT_OF_MEMORY,
            Self::NoSuchScanout { .. } => ERR_INVALID_SCANOUT_ID,
            Self::BadFormat { .. }
            | Self::BadSize { .. }
            | Self::RectOutside { .. }
            | Self::BadEntryCount { .. }
            | Self::EntryOutsideRam { .. }
            | Self::BackingTooSmall { .. }
            | Self::TransferOutside { .. } => ERR_INVALID_PARAMETER,
        }
    }
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ShortRequest { bytes, needed } => {
                write!(f, "a request of {bytes} bytes ({needed} needed)")
            }
            Self::Unsupported { kind } => write!(f, "command {kind:#x} is not supported"),
            Self::ResourceIdTaken { id } => write!(f, "resource ID {id} is 0 or already in use"),
            Self::NoSuchResource { id } => write!(f, "there is no resource {id}"),
            Self::TooManyResources => write!(f, "more than {MAX_RESOURCES} resources"),
            Self::BadFormat { format } => write!(f, "pixel format {format} is not supported"),
            Self::BadSize { width, height } => {
                write!(f, "a {width}x{height} resource (1 to {MAX_SIDE} pixels a side)")
            }
            Self::RectOutside { rect, width, height } => write!(
                f,
                "rectangle {}x{} at ({}, {}) is not inside the {width}x{height} resource",
                rect.width, rect.height, rect.x, rect.y
            ),
            Self::NoSuchScanout { id } => write!(f, "there is no scanout {id} (only 0)"),
            Self::AlreadyBacked { id } => write!(f, "resource {id} already has backing"),
            Self::NotBacked { id } => write!(f, "resource {id} has no backing"),
            Self::BadEntryCount { entries } => {
                write!(f, "{entries} backing entries (1 to {MAX_ENTRIES})")
            }
            Self::EntryOutsideRam { index, address, length } => write!(
                f,
                "backing entry {index} ({length} bytes at {address:#x}) is not inside the VM's RAM"
            ),
            Self::BackingTooSmall { bytes, needed } => {
                write!(f, "backing of {bytes} bytes for a resource of {needed}")
            }
            Self::TooManyEntries => {
                write!(f, "more than {MAX_DEVICE_ENTRIES} backing ranges for all resources")
            }
            Self::TransferOutside { offset, bytes } => {
                write!(f, "a transfer from offset {offset} reads past the {bytes}-byte backing")
            }
        }
    }
}

/// One contiguous range of a resource's backing: resource bytes from
/// `start` (up to the next range's start) live at guest `address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    start: u64,
    address: u64,
}

/// A resource's backing: its ranges in resource order, `bytes` in all.
#[derive(Debug, Default)]
struct Backing {
    extents: Vec<Extent>,
    bytes: u64,
}

impl Backing {
    /// Adds `length` bytes at guest `address` to the end, merged with the
    /// last range when they are contiguous in guest RAM.
    fn push(&mut self, address: u64, length: u32) {
        if length == 0 {
            return;
        }
        let contiguous = self
            .extents
            .last()
            .is_some_and(|last| last.address.checked_add(self.bytes - last.start) == Some(address));
        if !contiguous {
            self.extents.push(Extent { start: self.bytes, address });
        }
        self.bytes += u64::from(length);
    }

    /// Copies resource bytes from `offset` into `buffer`; false if they
    /// are not all backed.
    fn read(&self, memory: &GuestMemory, mut offset: u64, buffer: &mut [u8]) -> bool {
        let end = offset.checked_add(buffer.len() as u64);
        if end.is_none_or(|end| end > self.bytes) {
            return false;
        }
        let mut index = self.extents.partition_point(|e| e.start <= offset).saturating_sub(1);
        let mut done = 0;
        while done < buffer.len() {
            let extent = self.extents[index];
            let extent_end = self.extents.get(index + 1).map_or(self.bytes, |next| next.start);
            let take = ((extent_end - offset) as usize).min(buffer.len() - done);
            let address = extent.address + (offset - extent.start);
            if memory.read(address, &mut buffer[done..done + take]).is_err() {
                return false;
            }
            done += take;
            offset += take as u64;
            index += 1;
        }
        true
    }
}

/// A 2D resource.
#[derive(Debug)]
struct Resource {
    id: u32,
    format: Format,
    width: u32,
    height: u32,
    backing: Option<Backing>,
}

impl Resource {
    /// Bytes its pixels take: width * height * 4.
    fn bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * 4
    }

    fn contains(&self, rect: Rect) -> bool {
        let right = u64::from(rect.x) + u64::from(rect.width);
        let bottom = u64::from(rect.y) + u64::from(rect.height);
        right <= u64::from(self.width) && bottom <= u64::from(self.height)
    }

    fn check_rect(&self, rect: Rect) -> Result<(), GpuError> {
        if self.contains(rect) {
            Ok(())
        } else {
            Err(GpuError::RectOutside { rect, width: self.width, height: self.height })
        }
    }

    /// Reads pixels `column..column + out.len()` of `row` as 0x00RRGGBB.
    fn read_row(&self, memory: &GuestMemory, row: u32, column: u32, out: &mut [u32]) -> bool {
        let Some(backing) = &self.backing else { return false };
        let start = (u64::from(row) * u64::from(self.width) + u64::from(column)) * 4;
        if start + out.len() as u64 * 4 > backing.bytes {
            return false;
        }
        let mut bytes = [0u8; 1024];
        for (n, pixels) in out.chunks_mut(bytes.len() / 4).enumerate() {
            let chunk = &mut bytes[..pixels.len() * 4];
            if !backing.read(memory, start + (n * 1024) as u64, chunk) {
                return false;
            }
            for (pixel, raw) in pixels.iter_mut().zip(chunk.chunks_exact(4)) {
                *pixel = self.format.rgb(raw);
            }
        }
        true
    }
}

/// What the scanout shows: rectangle `rect` of resource `resource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scanout {
    resource: u32,
    rect: Rect,
}

/// The scanout's pixels, read from guest RAM on demand.
struct View<'a> {
    memory: &'a GuestMemory,
    resource: &'a Resource,
    rect: Rect,
}

impl Frame for View<'_> {
    fn width(&self) -> u32 {
        self.rect.width
    }

    fn height(&self) -> u32 {
        self.rect.height
    }

    fn read_row(&self, y: u32, x: u32, out: &mut [u32]) -> bool {
        let inside =
            y < self.rect.height && u64::from(x) + out.len() as u64 <= u64::from(self.rect.width);
        inside && self.resource.read_row(self.memory, self.rect.y + y, self.rect.x + x, out)
    }
}

/// The intersection of `a` and `b`, if not empty.
fn intersect(a: Rect, b: Rect) -> Option<Rect> {
    let left = a.x.max(b.x);
    let top = a.y.max(b.y);
    let right = (u64::from(a.x) + u64::from(a.width)).min(u64::from(b.x) + u64::from(b.width));
    let bottom = (u64::from(a.y) + u64::from(a.height)).min(u64::from(b.y) + u64::from(b.height));
    if right <= u64::from(left) || bottom <= u64::from(top) {
        return None;
    }
    Some(Rect { x: left, y: top, width: right as u32 - left, height: bottom as u32 - top })
}

/// A command's header, as read from the request.
#[derive(Clone, Copy, Debug, Default)]
struct Header {
    kind: u32,
    flags: u32,
    fence_id: u64,
    context: u32,
    ring: u8,
}

/// What a command answers: a response type, with a body for display info.
enum Reply {
    Empty(u32),
    DisplayInfo,
}

pub struct Gpu {
    /// The scanout's size: the VM's virtual display.
    size: (u32, u32),
    sink: Box<dyn DisplaySink>,
    memory: GuestMemory,
    resources: Vec<Resource>,
    scanout: Option<Scanout>,
    /// Backing ranges held for all resources.
    entries: usize,
}

impl Gpu {
    /// A display of `size` (width, height) in the VM whose RAM is
    /// `memory`, shown through `sink`.
    pub fn new(size: (u32, u32), sink: Box<dyn DisplaySink>, memory: GuestMemory) -> Self {
        Gpu { size, sink, memory, resources: Vec::new(), scanout: None, entries: 0 }
    }

    fn resource(&self, id: u32) -> Result<&Resource, GpuError> {
        self.resources.iter().find(|r| r.id == id).ok_or(GpuError::NoSuchResource { id })
    }

    fn resource_mut(&mut self, id: u32) -> Result<&mut Resource, GpuError> {
        self.resources.iter_mut().find(|r| r.id == id).ok_or(GpuError::NoSuchResource { id })
    }

    /// Carries out the command `request` whose header is `header`.
    fn perform(&mut self, header: &Header, request: &Request) -> Result<Reply, GpuError> {
        use command::*;
        match header.kind {
            GET_DISPLAY_INFO => Ok(Some(Reply::DisplayInfo)),
            RESOURCE_CREATE_2D => self.create(request),
            RESOURCE_UNREF => self.unref(request),
            SET_SCANOUT => self.set_scanout(request),
            RESOURCE_FLUSH => self.flush(request),
            TRANSFER_TO_HOST_2D => self.transfer(request),
            RESOURCE_ATTACH_BACKING => self.attach(request),
            RESOURCE_DETACH_BACKING => self.detach(request),
            kind => Err(GpuError::Unsupported { kind }),
        }
        .map(|ok| ok.unwrap_or(Reply::Empty(response::OK_NODATA)))
    }

    fn create(&mut self, request: &Request) -> Result<Option<Reply>, GpuError> {
        let [id, format, width, height] = request.words::<4>()?;
        if id == 0 || self.resource(id).is_ok() {
            return Err(GpuError::ResourceIdTaken { id });
        }
        let format_of = Format::from_virtio(format).ok_or(GpuError::BadFormat { format })?;
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            return Err(GpuError::BadSize { width, height });
        }
        if self.resources.len() >= MAX_RESOURCES {
            return Err(GpuError::TooManyResources);
        }
        self.resources.push(Resource { id, format: format_of, width, height, backing: None });
        Ok(None)
    }

    fn unref(&mut self, request: &Request) -> Result<Option<Reply>, GpuError> {
        let [id] = request.words::<1>()?;
        self.resource(id)?;
        if self.scanout.is_some_and(|s| s.resource == id) {
            self.scanout = None;
            self.sink.scanout_off();
        }
        let index = self.resources.iter().position(|r| r.id == id).expect("found above");
        let resource = self.resources.swap_remove(index);
        self.entries -= resource.backing.map_or(0, |b| b.extents.len());
        Ok(None)
    }

    fn set_scanout(&mut self, request: &Request) -> Result<Option<Reply>, GpuError> {
        let [x, y, width, height, scanout, id] = request.words::<6>()?;
        if scanout != 0 {
            return Err(GpuError::NoSuchScanout { id: scanout });
        }
        if id == 0 {
            if self.scanout.take().is_some() {
                self.sink.scanout_off();
            }
            return Ok(None);
        }
        let rect = Rect { x, y, width, height };
        let resource = self.resource(id)?;
        resource.check_rect(rect)?;
        if width == 0 || height == 0 {
            return Err(GpuError::RectOutside {
                rect,
                width: resource.width,
                height: resource.height,
            });
        }
        self.scanout = Some(Scanout { resource: id, rect });
        Ok(None)
    }

    fn flush(&mut self, request: &Request) -> Result<Option<Reply>, GpuError> {
        let [x, y, width, height, id] = request.words::<5>()?;
        let rect = Rect { x, y, width, height };
        self.resource(id)?.check_rect(rect)?;
        let Some(scanout) = self.scanout.filter(|s| s.resource == id) else { return Ok(None) };
        if let Some(shown) = intersect(rect, scanout.rect) {
            // The fields, not `self.resource`: the sink is borrowed too.
            let resource = self.resources.iter().find(|r| r.id == id);
            let resource = resource.ok_or(GpuError::NoSuchResource { id })?;
            let view = View { memory: &self.memory, resource, rect: scanout.rect };
            let on_screen =
                Rect { x: shown.x - scanout.rect.x, y: shown.y - scanout.rect.y, ..shown };
            self.sink.flushed(&view, on_screen);
        }
        Ok(None)
    }

    fn transfer(&mut self, request: &Request) -> Result<Option<Reply>, GpuError> {
        let [x, y, width, height, offset_low, offset_high, id] = request.words::<7>()?;
        let rect = Rect { x, y, width, height };
        let offset = u64::from(offset_low) | u64::from(offset_high) << 32;
        let resource = self.resource(id)?;
        resource.check_rect(rect)?;
        let backing = resource.backing.as_ref().ok_or(GpuError::NotBacked { id })?;
        if width == 0 || height == 0 {
            return Ok(None);
        }
        // The last byte the transfer covers, rows width * 4 bytes apart.
        let stride = u64::from(resource.width) * 4;
        let last = u64::from(height - 1) * stride + u64::from(width) * 4;
        if offset.checked_add(last).is_none_or(|end| end > backing.bytes) {
            return Err(GpuError::TransferOutside { offset, bytes: backing.bytes });
        }
        // The pixels stay where they are: a flush reads them in place.
        Ok(None)
    }

    fn attach(&mut self, request: &Request) -> Result<Option<Reply>, GpuError> {
        let [id, count] = request.words::<2>()?;
        let resource = self.resource(id)?;
        if resource.backing.is_some() {
            return Err(GpuError::AlreadyBacked { id });
        }
        if !(1..=MAX_ENTRIES).contains(&count) {
            return Err(GpuError::BadEntryCount { entries: count });
        }
        let needed = request.body + u64::from(count) * ENTRY_BYTES as u64;
        if request.length < needed {
            return Err(GpuError::ShortRequest { bytes: request.length, needed });
        }
        let backing = request.entries(count, self.entries)?;
        if backing.bytes < resource.bytes() {
            return Err(GpuError::BackingTooSmall {
                bytes: backing.bytes,
                needed: resource.bytes(),
            });
        }
        self.entries += backing.extents.len();
        self.resource_mut(id)?.backing = Some(backing);
        Ok(None)
    }

    fn detach(&mut self, request: &Request) -> Result<Option<Reply>, GpuError> {
        let [id] = request.words::<1>()?;
        let backing = self.resource_mut(id)?.backing.take().ok_or(GpuError::NotBacked { id })?;
        self.entries -= backing.extents.len();
        Ok(None)
    }

    /// Serves one control command: reads it, carries it out, writes the
    /// response; the bytes written.
    fn serve(&mut self, chain: &Chain, env: &mut Env) -> u32 {
        let mut raw = [0u8; HEADER_BYTES];
        let got = chain.read_at(env.memory, 0, &mut raw);
        let header = parse_header(&raw);
        let request = Request {
            chain,
            memory: env.memory,
            length: chain.readable_len(),
            body: HEADER_BYTES as u64,
        };
        let result = if got < HEADER_BYTES {
            Err(GpuError::ShortRequest { bytes: got as u64, needed: HEADER_BYTES as u64 })
        } else {
            self.perform(&header, &request)
        };
        let reply = result.unwrap_or_else(|e| {
            env.reject(format_args!("command {:#x} refused: {e}", header.kind));
            Reply::Empty(e.response())
        });
        let mut out = [0u8; DISPLAY_INFO_BYTES];
        let length = match reply {
            Reply::Empty(kind) => {
                write_header(&mut out, &header, kind);
                HEADER_BYTES
            }
            Reply::DisplayInfo => {
                write_header(&mut out, &header, response::OK_DISPLAY_INFO);
                let (width, height) = self.size;
                let one = &mut out[HEADER_BYTES..HEADER_BYTES + 24];
                one[8..12].copy_from_slice(&width.to_le_bytes());
                one[12..16].copy_from_slice(&height.to_le_bytes());
                // enabled
                one[16..20].copy_from_slice(&1u32.to_le_bytes());
                DISPLAY_INFO_BYTES
            }
        };
        if chain.writable_len() < length as u64 {
            env.reject(format_args!(
                "a response buffer of {} bytes for a {length}-byte response",
                chain.writable_len()
            ));
        }
        chain.write_at(env.memory, 0, &out[..length]) as u32
    }
}

/// A control request being parsed: its readable bytes, `body` of which
/// come before the command's own fields.
struct Request<'a> {
    chain: &'a Chain,
    memory: &'a GuestMemory,
    length: u64,
    body: u64,
}

impl Request<'_> {
    /// The command's first N little-endian 32-bit fields after the header.
    fn words<const N: usize>(&self) -> Result<[u32; N], GpuError> {
        let needed = self.body + 4 * N as u64;
        if self.length < needed {
            return Err(GpuError::ShortRequest { bytes: self.length, needed });
        }
        let mut raw = [0u8; 4];
        let mut words = [0u32; N];
        for (i, word) in words.iter_mut().enumerate() {
            self.chain.read_at(self.memory, self.body + 4 * i as u64, &mut raw);
            *word = u32::from_le_bytes(raw);
        }
        Ok(words)
    }

    /// The `count` memory entries after RESOURCE_ATTACH_BACKING's fields,
    /// checked inside RAM, as a backing; the device holds `held` ranges.
    fn entries(&self, count: u32, held: usize) -> Result<Backing, GpuError> {
        let mut backing = Backing::default();
        let mut batch = [0u8; 64 * ENTRY_BYTES];
        let first = self.body + 8;
        let mut index = 0u32;
        while index < count {
            let n = ((count - index) as usize).min(64);
            let at = first + u64::from(index) * ENTRY_BYTES as u64;
            self.chain.read_at(self.memory, at, &mut batch[..n * ENTRY_BYTES]);
            for raw in batch[..n * ENTRY_BYTES].chunks_exact(ENTRY_BYTES) {
                let address = u64::from_le_bytes(raw[0..8].try_into().unwrap());
                let length = u32::from_le_bytes(raw[8..12].try_into().unwrap());
                if self.memory.check(address, u64::from(length)).is_err() {
                    return Err(GpuError::EntryOutsideRam { index, address, length });
                }
                backing.push(address, length);
                if held + backing.extents.len() > MAX_DEVICE_ENTRIES {
                    return Err(GpuError::TooManyEntries);
                }
                index += 1;
            }
        }
        Ok(backing)
    }
}

fn parse_header(raw: &[u8; HEADER_BYTES]) -> Header {
    let word = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap());
    Header {
        kind: word(0),
        flags: word(4),
        fence_id: u64::from_le_bytes(raw[8..16].try_into().unwrap()),
        context: word(16),
        ring: raw[20],
    }
}

/// A response header of `kind` answering `request`: the fence echoed, so
/// the driver's fence completes.
fn write_header(out: &mut [u8], request: &Header, kind: u32) {
    out[0..4].copy_from_slice(&kind.to_le_bytes());
    let flags = request.flags & (FLAG_FENCE | FLAG_INFO_RING_IDX);
    out[4..8].copy_from_slice(&flags.to_le_bytes());
    out[8..16].copy_from_slice(&request.fence_id.to_le_bytes());
    out[16..20].copy_from_slice(&request.context.to_le_bytes());
    out[20] = request.ring;
}

impl Device for Gpu {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn id(&self) -> u32 {
        16
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_count(&self) -> usize {
        2
    }

    /// events_read, events_clear, num_scanouts, num_capsets.
    fn config(&self, out: &mut ConfigSpace) -> usize {
        out[8..12].copy_from_slice(&1u32.to_le_bytes());
        16
    }

    /// events_clear: no events are ever raised, so there is nothing to
    /// clear, but Linux writes it.
    fn write_config(&mut self, offset: usize, _bytes: &[u8]) -> bool {
        (4..8).contains(&offset)
    }

    fn service(&mut self, queue: usize, env: &mut Env) -> Result<(), QueueError> {
        while let Some(chain) = env.pop(queue)? {
            let written = match queue {
                CONTROL_QUEUE => self.serve(&chain, env),
                _ => 0,
            };
            env.push(queue, &chain, written)?;
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.resources.clear();
        self.entries = 0;
        if self.scanout.take().is_some() {
            self.sink.scanout_off();
        }
    }

    fn frame(&self) -> Option<Box<dyn Frame + '_>> {
        let scanout = self.scanout?;
        let resource = self.resource(scanout.resource).ok()?;
        Some(Box::new(View { memory: &self.memory, resource, rect: scanout.rect }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdev::virtio::guest_memory::TestRam;
    use crate::vdev::virtio::mmio::testing::{bring_up, notify};
    use crate::vdev::virtio::mmio::{Transport, VIRTIO_F_VERSION_1};
    use crate::vdev::virtio::queue::driver::TestDriver;
    use crate::vdev::virtio::queue::{VIRTQ_DESC_F_NEXT as N, VIRTQ_DESC_F_WRITE as W};
    use alloc::sync::Arc;
    use alloc::vec;
    use response::*;
    use spin::Mutex;

    const BASE: u64 = 0x4000_0000;
    const RAM: usize = 0x40_0000;
    const REQUEST: u64 = BASE + 0x1_0000;
    const ENTRIES: u64 = BASE + 0x2_0000;
    const RESPONSE: u64 = BASE + 0x8_0000;
    /// Where test pixels live.
    const PIXELS: u64 = BASE + 0x10_0000;

    /// One flush as the sink saw it: the rectangle, the frame's width and
    /// height, and the rectangle's first row of pixels.
    type Flush = (Rect, u32, u32, Vec<u32>);

    /// What the sink saw: each flush, and how often the scanout went off.
    #[derive(Clone, Default)]
    struct Screen {
        flushes: Arc<Mutex<Vec<Flush>>>,
        offs: Arc<Mutex<u32>>,
    }

    impl DisplaySink for Screen {
        fn flushed(&mut self, frame: &dyn Frame, rect: Rect) {
            let mut row = vec![0u32; rect.width as usize];
            assert!(frame.read_row(rect.y, rect.x, &mut row));
            self.flushes.lock().push((rect, frame.width(), frame.height(), row));
        }
        fn scanout_off(&mut self) {
            *self.offs.lock() += 1;
        }
    }

    struct Setup {
        ram: TestRam,
        transport: Transport,
        control: TestDriver,
        screen: Screen,
        sent: u16,
    }

    fn setup() -> Setup {
        let mut ram = TestRam::new(BASE, RAM);
        let screen = Screen::default();
        let gpu = Gpu::new((720, 1232), Box::new(screen.clone()), ram.memory());
        let mut transport = Transport::new(Box::new(gpu), ram.memory(), "t");
        let control = TestDriver::new(BASE, 16);
        let cursor = TestDriver::new(BASE + 0x1000, 16);
        bring_up(&mut transport, VIRTIO_F_VERSION_1, &[&control, &cursor]);
        Setup { ram, transport, control, screen, sent: 0 }
    }

    fn command(kind: u32, words: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_BYTES];
        bytes[0..4].copy_from_slice(&kind.to_le_bytes());
        for word in words {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    impl Setup {
        /// Sends `request` (and `extra` readable bytes in a second
        /// descriptor, if any); the response type and length.
        fn send(&mut self, request: &[u8], extra: &[u8]) -> (u32, u32) {
            let memory = self.ram.memory();
            memory.write(REQUEST, request).unwrap();
            memory.write(ENTRIES, extra).unwrap();
            memory.write_u32(RESPONSE, 0xdead).unwrap();
            let c = &mut self.control;
            c.descriptor(&memory, 0, REQUEST, request.len() as u32, N, 1);
            if extra.is_empty() {
                c.descriptor(&memory, 1, RESPONSE, 4096, W, 0);
            } else {
                c.descriptor(&memory, 1, ENTRIES, extra.len() as u32, N, 2);
                c.descriptor(&memory, 2, RESPONSE, 4096, W, 0);
            }
            c.offer(&memory, 0);
            notify(&mut self.transport, 0);
            let (index, _, written) = c.used(&memory, self.sent);
            self.sent += 1;
            assert_eq!(index, self.sent);
            assert_eq!(self.transport.status() & 64, 0, "no reset needed");
            (memory.read_u32(RESPONSE).unwrap(), written)
        }

        fn run(&mut self, kind: u32, words: &[u32]) -> u32 {
            self.send(&command(kind, words), &[]).0
        }

        fn create(&mut self, id: u32, format: u32, width: u32, height: u32) -> u32 {
            self.run(command::RESOURCE_CREATE_2D, &[id, format, width, height])
        }

        fn attach(&mut self, id: u32, entries: &[(u64, u32)]) -> u32 {
            let mut extra = Vec::new();
            for &(address, length) in entries {
                extra.extend_from_slice(&address.to_le_bytes());
                extra.extend_from_slice(&length.to_le_bytes());
                extra.extend_from_slice(&[0; 4]);
            }
            let request = command(command::RESOURCE_ATTACH_BACKING, &[id, entries.len() as u32]);
            self.send(&request, &extra).0
        }

        /// A 16x8 resource `id` backed by two ranges (rows 0..3 at
        /// PIXELS, rows 3..8 at PIXELS + 0x4000), shown on the scanout.
        fn shown(&mut self, id: u32, format: u32) {
            assert_eq!(self.create(id, format, 16, 8), OK_NODATA);
            let split = 3 * 16 * 4;
            let entries = [(PIXELS, split), (PIXELS + 0x4000, 16 * 8 * 4 - split)];
            assert_eq!(self.attach(id, &entries), OK_NODATA);
            assert_eq!(self.run(command::SET_SCANOUT, &[0, 0, 16, 8, 0, id]), OK_NODATA);
        }

        fn pixel(&mut self, x: u32, y: u32, bytes: [u8; 4]) {
            let offset = u64::from(y * 16 + x) * 4;
            let address =
                if offset < 3 * 64 { PIXELS + offset } else { PIXELS + 0x4000 + offset - 192 };
            self.ram.memory().write(address, &bytes).unwrap();
        }
    }

    #[test]
    fn reports_one_scanout_of_the_display_size() {
        let mut s = setup();
        let mut config = [0u8; crate::vdev::virtio::mmio::CONFIG_BYTES];
        assert_eq!(s.transport.device().config(&mut config), 16);
        assert_eq!(&config[..16], &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut request = command(command::GET_DISPLAY_INFO, &[]);
        // A fenced request gets its fence back.
        request[4] = 1;
        request[8] = 77;
        assert_eq!(s.send(&request, &[]), (OK_DISPLAY_INFO, DISPLAY_INFO_BYTES as u32));
        let memory = s.ram.memory();
        assert_eq!(memory.read_u32(RESPONSE + 4), Ok(1));
        assert_eq!(memory.read_u64(RESPONSE + 8), Ok(77));
        let one = RESPONSE + HEADER_BYTES as u64;
        assert_eq!(memory.read_u64(one), Ok(0));
        assert_eq!(memory.read_u32(one + 8), Ok(720));
        assert_eq!(memory.read_u32(one + 12), Ok(1232));
        assert_eq!(memory.read_u32(one + 16), Ok(1));
        assert_eq!(memory.read_u32(one + 24 + 16), Ok(0), "scanout 1 is disabled");
    }

    #[test]
    fn a_flush_of_the_scanout_reads_pixels_from_guest_ram() {
        let mut s = setup();
        s.shown(5, 2);
        // B8G8R8X8: bytes blue, green, red, unused.
        s.pixel(2, 2, [0x33, 0x22, 0x11, 0xff]);
        s.pixel(3, 2, [0x66, 0x55, 0x44, 0x00]);
        s.pixel(15, 3, [1, 2, 3, 4]);
        assert_eq!(s.run(command::TRANSFER_TO_HOST_2D, &[0, 0, 16, 8, 0, 0, 5]), OK_NODATA);
        assert_eq!(s.run(command::RESOURCE_FLUSH, &[2, 2, 2, 1, 5]), OK_NODATA);
        let flushes = s.screen.flushes.lock().clone();
        assert_eq!(
            flushes,
            [(Rect { x: 2, y: 2, width: 2, height: 1 }, 16, 8, vec![0x112233, 0x445566])]
        );
        // Reads across the two backing ranges, with the frame.
        let frame = s.transport.device().frame().expect("the scanout is on");
        let mut row = [0u32; 16];
        assert!(frame.read_row(3, 0, &mut row));
        assert_eq!(row[15], 0x030201);
        assert!(!frame.read_row(8, 0, &mut row), "row 8 is outside");
        assert!(!frame.read_row(0, 1, &mut row), "so is column 16");
    }

    #[test]
    fn every_format_linux_uses_is_decoded() {
        for (format, bytes, rgb) in [
            (1, [0x33, 0x22, 0x11, 0x80], 0x112233),
            (4, [0x00, 0x11, 0x22, 0x33], 0x112233),
            (3, [0x80, 0x11, 0x22, 0x33], 0x112233),
            (67, [0x11, 0x22, 0x33, 0x80], 0x112233),
            (134, [0x11, 0x22, 0x33, 0x00], 0x112233),
            (68, [0x00, 0x33, 0x22, 0x11], 0x112233),
            (121, [0x80, 0x33, 0x22, 0x11], 0x112233),
        ] {
            let mut s = setup();
            s.shown(1, format);
            s.pixel(0, 0, bytes);
            assert_eq!(s.run(command::RESOURCE_FLUSH, &[0, 0, 1, 1, 1]), OK_NODATA);
            assert_eq!(s.screen.flushes.lock()[0].3, [rgb], "format {format}");
        }
    }

    #[test]
    fn flushes_of_other_resources_and_outside_the_scanout_reach_no_one() {
        let mut s = setup();
        s.shown(1, 2);
        assert_eq!(s.create(2, 2, 16, 8), OK_NODATA);
        assert_eq!(s.run(command::RESOURCE_FLUSH, &[0, 0, 16, 8, 2]), OK_NODATA);
        assert!(s.screen.flushes.lock().is_empty());
        // The scanout shows columns 4..12 of resource 1: a flush of 0..6
        // shows as columns 0..2.
        assert_eq!(s.run(command::SET_SCANOUT, &[4, 0, 8, 8, 0, 1]), OK_NODATA);
        assert_eq!(s.run(command::RESOURCE_FLUSH, &[0, 0, 2, 8, 1]), OK_NODATA);
        assert!(s.screen.flushes.lock().is_empty());
        assert_eq!(s.run(command::RESOURCE_FLUSH, &[0, 1, 6, 2, 1]), OK_NODATA);
        let flushes = s.screen.flushes.lock().clone();
        assert_eq!((flushes[0].0, flushes[0].1), (Rect { x: 0, y: 1, width: 2, height: 2 }, 8));
    }

    #[test]
    fn the_scanout_goes_off_when_disabled_unreferenced_or_reset() {
        let mut s = setup();
        s.shown(1, 2);
        assert_eq!(s.run(command::SET_SCANOUT, &[0, 0, 0, 0, 0, 0]), OK_NODATA);
        assert_eq!(*s.screen.offs.lock(), 1);
        assert!(s.transport.device().frame().is_none());
        assert_eq!(s.run(command::SET_SCANOUT, &[0, 0, 16, 8, 0, 1]), OK_NODATA);
        assert_eq!(s.run(command::RESOURCE_DETACH_BACKING, &[1]), OK_NODATA);
        assert_eq!(s.run(command::RESOURCE_UNREF, &[1]), OK_NODATA);
        assert_eq!(*s.screen.offs.lock(), 2);
        assert_eq!(s.run(command::RESOURCE_FLUSH, &[0, 0, 1, 1, 1]), ERR_INVALID_RESOURCE_ID);
        s.shown(3, 2);
        s.transport.reset();
        assert_eq!(*s.screen.offs.lock(), 3);
    }

    #[test]
    fn refuses_bad_resources() {
        let mut s = setup();
        assert_eq!(s.create(0, 2, 16, 16), ERR_INVALID_RESOURCE_ID);
        assert_eq!(s.create(1, 2, 16, 16), OK_NODATA);
        assert_eq!(s.create(1, 2, 16, 16), ERR_INVALID_RESOURCE_ID, "taken");
        assert_eq!(s.create(2, 99, 16, 16), ERR_INVALID_PARAMETER, "format");
        assert_eq!(s.create(2, 2, 4097, 16), ERR_INVALID_PARAMETER, "too wide");
        assert_eq!(s.create(2, 2, 16, 0), ERR_INVALID_PARAMETER, "empty");
        for id in 2..=16 {
            assert_eq!(s.create(id, 2, 1, 1), OK_NODATA);
        }
        assert_eq!(s.create(17, 2, 1, 1), ERR_OUT_OF_MEMORY, "too many");
        assert_eq!(s.run(command::RESOURCE_UNREF, &[99]), ERR_INVALID_RESOURCE_ID);
        assert_eq!(s.run(command::RESOURCE_UNREF, &[16]), OK_NODATA);
        assert_eq!(s.create(17, 2, 1, 1), OK_NODATA, "room again");
    }

    #[test]
    fn refuses_bad_backing() {
        let mut s = setup();
        assert_eq!(s.create(1, 2, 16, 8), OK_NODATA);
        assert_eq!(s.attach(9, &[(PIXELS, 512)]), ERR_INVALID_RESOURCE_ID);
        assert_eq!(s.attach(1, &[(0x1000, 512)]), ERR_INVALID_PARAMETER, "below RAM");
        let end = BASE + RAM as u64;
        assert_eq!(s.attach(1, &[(PIXELS, 256), (end - 256, 512)]), ERR_INVALID_PARAMETER);
        assert_eq!(s.attach(1, &[(PIXELS, 511)]), ERR_INVALID_PARAMETER, "too small");
        assert_eq!(s.attach(1, &[]), ERR_INVALID_PARAMETER, "no entries");
        // More entries than the request holds.
        let request = command(command::RESOURCE_ATTACH_BACKING, &[1, 4]);
        assert_eq!(s.send(&request, &[0; 32]).0, ERR_UNSPEC);
        let request = command(command::RESOURCE_ATTACH_BACKING, &[1, MAX_ENTRIES + 1]);
        assert_eq!(s.send(&request, &[]).0, ERR_INVALID_PARAMETER);
        assert_eq!(s.run(command::RESOURCE_DETACH_BACKING, &[1]), ERR_UNSPEC, "none yet");
        assert_eq!(s.attach(1, &[(PIXELS, 512)]), OK_NODATA);
        assert_eq!(s.attach(1, &[(PIXELS, 512)]), ERR_UNSPEC, "already backed");
        assert_eq!(s.run(command::RESOURCE_DETACH_BACKING, &[1]), OK_NODATA);
        assert_eq!(s.run(command::RESOURCE_DETACH_BACKING, &[7]), ERR_INVALID_RESOURCE_ID);
    }

    #[test]
    fn backing_ranges_are_merged_and_bounded() {
        let mut s = setup();
        // 1024x1 pixels in contiguous 16-byte pieces: held as one range.
        assert_eq!(s.create(1, 2, 1024, 1), OK_NODATA);
        let pieces: Vec<(u64, u32)> = (0..256).map(|i| (PIXELS + 16 * i, 16)).collect();
        assert_eq!(s.attach(1, &pieces), OK_NODATA);
        assert_eq!(s.create(2, 2, 4096, 1), OK_NODATA);
        // Scattered ranges are held one each: 1024 here.
        let scattered: Vec<(u64, u32)> = (0..1024).map(|i| (PIXELS + 32 * i, 16)).collect();
        assert_eq!(s.attach(2, &scattered), OK_NODATA);
        // 16384 scattered ranges more would pass the device's budget.
        assert_eq!(s.create(3, 2, 4096, 16), OK_NODATA);
        let many: Vec<(u64, u32)> = (0..16384).map(|i| (PIXELS + 32 * (i % 8192), 16)).collect();
        assert_eq!(s.attach(3, &many), ERR_OUT_OF_MEMORY);
        assert_eq!(s.run(command::RESOURCE_UNREF, &[2]), OK_NODATA);
        assert_eq!(s.create(4, 2, 4096, 1), OK_NODATA);
        let fits: Vec<(u64, u32)> = (0..16383).map(|i| (PIXELS + 32 * (i % 8192), 16)).collect();
        assert_eq!(s.attach(4, &fits), OK_NODATA);
    }

    #[test]
    fn refuses_rectangles_outside_their_resource() {
        let mut s = setup();
        s.shown(1, 2);
        for rect in [[0, 0, 17, 8], [15, 0, 2, 1], [0, 8, 1, 1], [u32::MAX, 0, 2, 1]] {
            let [x, y, w, h] = rect;
            assert_eq!(s.run(command::RESOURCE_FLUSH, &[x, y, w, h, 1]), ERR_INVALID_PARAMETER);
            assert_eq!(
                s.run(command::TRANSFER_TO_HOST_2D, &[x, y, w, h, 0, 0, 1]),
                ERR_INVALID_PARAMETER
            );
            assert_eq!(s.run(command::SET_SCANOUT, &[x, y, w, h, 0, 1]), ERR_INVALID_PARAMETER);
        }
        assert_eq!(s.run(command::SET_SCANOUT, &[0, 0, 0, 8, 0, 1]), ERR_INVALID_PARAMETER);
        assert!(s.screen.flushes.lock().is_empty());
    }

    #[test]
    fn refuses_transfers_past_the_backing_and_without_it() {
        let mut s = setup();
        s.shown(1, 2);
        // 512 bytes of backing: offset 4 plus the whole resource is 4 too many.
        assert_eq!(
            s.run(command::TRANSFER_TO_HOST_2D, &[0, 0, 16, 8, 4, 0, 1]),
            ERR_INVALID_PARAMETER
        );
        assert_eq!(
            s.run(command::TRANSFER_TO_HOST_2D, &[0, 0, 16, 8, 0, 1, 1]),
            ERR_INVALID_PARAMETER
        );
        assert_eq!(s.run(command::TRANSFER_TO_HOST_2D, &[1, 7, 15, 1, 452, 0, 1]), OK_NODATA);
        assert_eq!(s.create(2, 2, 4, 4), OK_NODATA);
        assert_eq!(s.run(command::TRANSFER_TO_HOST_2D, &[0, 0, 4, 4, 0, 0, 2]), ERR_UNSPEC);
        assert_eq!(
            s.run(command::TRANSFER_TO_HOST_2D, &[0, 0, 4, 4, 0, 0, 3]),
            ERR_INVALID_RESOURCE_ID
        );
    }

    #[test]
    fn refuses_other_scanouts_unknown_commands_and_short_requests() {
        let mut s = setup();
        s.shown(1, 2);
        assert_eq!(s.run(command::SET_SCANOUT, &[0, 0, 16, 8, 1, 1]), ERR_INVALID_SCANOUT_ID);
        assert_eq!(s.run(command::SET_SCANOUT, &[0, 0, 16, 8, 0, 9]), ERR_INVALID_RESOURCE_ID);
        assert_eq!(s.run(command::GET_EDID, &[0, 0]), ERR_UNSPEC);
        assert_eq!(s.run(0x0200, &[]), ERR_UNSPEC, "3D context");
        assert_eq!(s.run(command::RESOURCE_CREATE_2D, &[2, 2, 16]), ERR_UNSPEC, "short");
        assert_eq!(s.send(&[0; 8], &[]), (ERR_UNSPEC, HEADER_BYTES as u32));
        // The device still works.
        assert_eq!(s.run(command::RESOURCE_FLUSH, &[0, 0, 16, 8, 1]), OK_NODATA);
        assert_eq!(s.screen.flushes.lock().len(), 1);
    }

    #[test]
    fn the_cursor_queue_is_accepted_and_ignored() {
        let mut s = setup();
        let memory = s.ram.memory();
        let mut cursor = TestDriver::new(BASE + 0x1000, 16);
        memory.write(REQUEST, &command(0x0300, &[0; 14])).unwrap();
        cursor.descriptor(&memory, 0, REQUEST, 80, 0, 0);
        cursor.offer(&memory, 0);
        notify(&mut s.transport, 1);
        assert_eq!(cursor.used(&memory, 0), (1, 0, 0));
        assert_eq!(s.transport.status() & 64, 0);
    }
}
