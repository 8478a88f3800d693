//! The physical virtio-net NIC Duet drives: the switch's uplink.
//!
//! Receiving is interrupt driven: the NIC's interrupt is routed to the boot
//! CPU at EL2, and its handler ([`interrupt`]) moves every received frame
//! into the switch. When no frame arrives, nothing wakes any CPU: no
//! polling timer, no idle cost. Sending waits for the device to take the
//! frame (a short, bounded wait).

use super::virtio::{transport, DuetHal};
use crate::net::Uplink;
use crate::platform::VirtioSlot;
use crate::println;
use alloc::boxed::Box;
use spin::{Mutex, Once};
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::mmio::MmioTransport;

/// Receive buffers the NIC holds.
const QUEUE: usize = 64;
/// Bytes per receive buffer: a full frame and the virtio-net header.
const BUFFER: usize = 2048;

/// The NIC's interrupt, once started.
static INTID: Once<u32> = Once::new();
/// The NIC until the network takes it as its uplink.
static NIC: Mutex<Option<Box<dyn Uplink>>> = Mutex::new(None);

/// The physical NIC.
pub struct VirtioNic {
    device: VirtIONet<DuetHal, MmioTransport<'static>, QUEUE>,
}

// SAFETY: the device is reached only through `&mut self`, under the
// network's mutex; its MMIO window and DMA memory are not tied to a CPU.
unsafe impl Send for VirtioNic {}

/// Starts the NIC in `slot`, routes its interrupt to this CPU, and keeps
/// it for [`take`].
pub fn start(slot: &VirtioSlot) {
    let Some(transport) = transport(slot) else { return };
    let mut device = match VirtIONet::<DuetHal, _, QUEUE>::new(transport, BUFFER) {
        Ok(device) => device,
        Err(e) => {
            println!("  virtio  net at {:#x}: cannot start: {e}", slot.region.start);
            return;
        }
    };
    let mac = device.mac_address();
    let Some(intid) = slot.intid else {
        println!("  virtio  net at {:#x}: no interrupt in the device tree", slot.region.start);
        return;
    };
    device.enable_interrupts();
    println!(
        "  virtio  net at {:#x}: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, interrupt {intid}",
        slot.region.start, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    *NIC.lock() = Some(Box::new(VirtioNic { device }));
    INTID.call_once(|| intid);
    crate::boot::enable_device_interrupt(intid);
}

/// The NIC, for the network to own as its uplink.
pub fn take() -> Option<Box<dyn Uplink>> {
    NIC.lock().take()
}

/// The NIC's interrupt, if it was started.
pub fn intid() -> Option<u32> {
    INTID.get().copied()
}

/// The NIC's interrupt fired: move what it received into the switch.
pub fn interrupt() {
    if let Some(network) = crate::net::NETWORK.get() {
        network.poll_uplink();
    }
}

impl Uplink for VirtioNic {
    fn acknowledge(&mut self) {
        self.device.ack_interrupt();
    }

    fn send(&mut self, frame: &[u8]) -> bool {
        let mut buffer = self.device.new_tx_buffer(frame.len());
        buffer.packet_mut().copy_from_slice(frame);
        self.device.send(buffer).is_ok()
    }

    fn receive(&mut self, buffer: &mut [u8]) -> Option<usize> {
        loop {
            let received = self.device.receive().ok()?;
            let packet = received.packet();
            let fits = buffer.get_mut(..packet.len()).map(|room| room.copy_from_slice(packet));
            let len = packet.len();
            if let Err(e) = self.device.recycle_rx_buffer(received) {
                log::warn!("virtio-net: cannot give a receive buffer back: {e}");
            }
            if fits.is_some() {
                return Some(len);
            }
        }
    }
}
