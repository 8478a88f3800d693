//! The physical virtio-gpu Duet drives on QEMU (2D): one framebuffer the
//! size of the display QEMU gives (`-device virtio-gpu-device,xres=,yres=`),
//! set up once as the scanout, as a [`Panel`].

use super::display::Panel;
use super::virtio::{transport, DuetHal};
use crate::platform::VirtioSlot;
use crate::println;
use crate::vdev::virtio::backend::Rect;
use alloc::boxed::Box;
use core::ptr::NonNull;
use virtio_drivers::device::gpu::VirtIOGpu;
use virtio_drivers::transport::mmio::MmioTransport;

/// The physical display.
pub struct VirtioPanel {
    device: VirtIOGpu<DuetHal, MmioTransport<'static>>,
    /// The framebuffer's pixels: DMA memory the device owns for as long as
    /// it lives (this struct).
    pixels: NonNull<[u32]>,
    size: (u32, u32),
}

// SAFETY: the device and its framebuffer are reached only through
// `&mut self`, under the screen's mutex; neither is tied to a CPU.
unsafe impl Send for VirtioPanel {}

/// Starts the display in `slot`: its framebuffer becomes the scanout.
pub fn start(slot: &VirtioSlot) -> Option<Box<dyn Panel>> {
    let transport = transport(slot)?;
    let fail = |what: &str| println!("  virtio  gpu at {:#x}: {what}", slot.region.start);
    let mut device = match VirtIOGpu::<DuetHal, _>::new(transport) {
        Ok(device) => device,
        Err(e) => {
            fail(&alloc::format!("cannot start: {e}"));
            return None;
        }
    };
    let (width, height) = match device.resolution() {
        Ok(size) => size,
        Err(e) => {
            fail(&alloc::format!("no display size: {e}"));
            return None;
        }
    };
    let bytes = match device.setup_framebuffer() {
        Ok(bytes) => bytes,
        Err(e) => {
            fail(&alloc::format!("no framebuffer: {e}"));
            return None;
        }
    };
    // DMA memory is page aligned, so it is aligned for u32.
    let words: &mut [u32] = bytemuck::cast_slice_mut(bytes);
    let pixels = NonNull::from(words);
    println!("  virtio  gpu at {:#x}: {width}x{height} screen", slot.region.start);
    Some(Box::new(VirtioPanel { device, pixels, size: (width, height) }))
}

impl Panel for VirtioPanel {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn framebuffer(&mut self) -> &mut [u32] {
        // SAFETY: the memory belongs to `self.device` (it keeps the DMA
        // buffer for as long as it lives and never resizes it here); the
        // `&mut self` borrow makes this the only reference.
        unsafe { self.pixels.as_mut() }
    }

    fn flush(&mut self, _rect: Rect) {
        // The crate transfers and flushes the whole frame.
        if let Err(e) = self.device.flush() {
            log::warn!("virtio-gpu: flush: {e}");
        }
    }
}
