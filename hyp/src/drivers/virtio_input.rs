//! The physical virtio-input devices Duet drives on QEMU: the touch panel
//! (`virtio-multitouch-device`, or `virtio-tablet-device`) and the keyboard
//! (`virtio-keyboard-device`), as [`InputSource`]s. Their interrupts come
//! to the boot CPU at EL2, as the NIC's do; guests never see them.

use super::display::{InputRole, InputSource};
use super::virtio::{transport, DuetHal};
use crate::platform::VirtioSlot;
use crate::println;
use crate::vdev::virtio::input::{InputEvent, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_X, ABS_Y};
use alloc::boxed::Box;
use virtio_drivers::device::input::VirtIOInput;
use virtio_drivers::transport::mmio::MmioTransport;

/// evdev's `EV_ABS`, as the crate's `ev_bits` wants it.
const EV_ABS: u8 = 0x03;

/// One physical input device.
pub struct VirtioInput {
    device: VirtIOInput<DuetHal, MmioTransport<'static>>,
    role: InputRole,
}

// SAFETY: the device is reached only through `&mut self`, under the
// screen's mutex; its MMIO window and DMA memory are not tied to a CPU.
unsafe impl Send for VirtioInput {}

/// Starts the input device in `slot`; returns it with its interrupt.
pub fn start(slot: &VirtioSlot) -> Option<(Box<dyn InputSource>, u32)> {
    let at = slot.region.start;
    let mut device = match VirtIOInput::<DuetHal, _>::new(transport(slot)?) {
        Ok(device) => device,
        Err(e) => {
            println!("  virtio  input at {at:#x}: cannot start: {e}");
            return None;
        }
    };
    let Some(intid) = slot.intid else {
        println!("  virtio  input at {at:#x}: no interrupt in the device tree");
        return None;
    };
    let name = device.name().unwrap_or_default();
    let role = role_of(&mut device);
    println!("  virtio  input at {at:#x}: {name:?}, {role:?}, interrupt {intid}");
    Some((Box::new(VirtioInput { device, role }), intid))
}

/// A device with absolute axes is a touch panel; else a keyboard.
fn role_of(device: &mut VirtIOInput<DuetHal, MmioTransport<'static>>) -> InputRole {
    let has_abs = device.ev_bits(EV_ABS).is_ok_and(|bits| bits.iter().any(|&b| b != 0));
    if !has_abs {
        return InputRole::Keyboard;
    }
    let mut max = |mt: u16, single: u16| {
        let info = device.abs_info(mt as u8).ok().filter(|i| i.max > 0);
        let info = info.or_else(|| device.abs_info(single as u8).ok());
        info.map_or(0x7fff, |i| i.max)
    };
    let x_max = max(ABS_MT_POSITION_X, ABS_X);
    let y_max = max(ABS_MT_POSITION_Y, ABS_Y);
    InputRole::Touch { x_max, y_max }
}

impl InputSource for VirtioInput {
    fn role(&self) -> InputRole {
        self.role
    }

    fn acknowledge(&mut self) {
        self.device.ack_interrupt();
    }

    fn next_event(&mut self) -> Option<InputEvent> {
        let event = self.device.pop_pending_event()?;
        Some(InputEvent { kind: event.event_type, code: event.code, value: event.value })
    }
}
