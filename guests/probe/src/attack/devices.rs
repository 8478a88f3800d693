//! Attempts on devices. The guest's virtual platform gives it a GIC
//! distributor, one redistributor per vCPU, a PL011 and virtio-mmio
//! devices in the first slots, all emulated; the
//! host has more (GICv2 frames, an ITS, a redistributor per physical CPU,
//! RTC, fw_cfg, GPIO, flash, virtio-mmio, PCIe). Whatever the guest was not
//! given must be a hole; what it was given must answer only from its own
//! emulated copy; console input typed for another VM must never reach it.

use super::{load, must_fault, must_fault_load, must_fault_store, store, Attempt};
use crate::console::{self, CR, DR, FR, FR_RXFE};
use crate::entry::Guest;
use crate::timer;
use duet_probe::platform::{host, virt};
use duet_probe::report::Outcome;
use duet_probe::{breach, emulated};

/// PL011 control register bits: UART, transmit and receive enable, loopback.
const CR_UARTEN: u32 = 1 << 0;
const CR_LBE: u32 = 1 << 7;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;

/// GICD_CTLR, and an offset in the distributor's frame with no register.
const GICD_CTLR: u64 = 0x0000;
const GICD_RESERVED: u64 = 0xc000;
/// GICR_WAKER, in a redistributor's RD frame.
const GICR_WAKER: u64 = 0x0014;

/// The physical CPUs of QEMU virt as `cargo xtask run` starts it.
const HOST_CPUS: u64 = 4;

pub const ATTEMPTS: &[Attempt] = &[
    Attempt { name: "load-flash", run: |_| must_fault_load(host::FLASH0) },
    Attempt { name: "store-flash", run: |_| must_fault_store(host::FLASH0) },
    Attempt { name: "load-flash-bank-1", run: |_| must_fault_load(host::FLASH1) },
    Attempt { name: "load-gicv2-cpu-interface", run: |_| must_fault_load(host::GICV2_CPU) },
    Attempt { name: "load-gicv2m", run: |_| must_fault_load(host::GICV2M) },
    Attempt { name: "load-gicv2-hyp-interface", run: |_| must_fault_load(host::GICV2_HYP) },
    Attempt { name: "store-gicv2-hyp-interface", run: |_| must_fault_store(host::GICV2_HYP) },
    Attempt { name: "load-gicv2-vcpu-interface", run: |_| must_fault_load(host::GICV2_VCPU) },
    Attempt { name: "load-gic-its", run: |_| must_fault_load(host::GIC_ITS) },
    Attempt { name: "store-gic-its", run: |_| must_fault_store(host::GIC_ITS) },
    Attempt { name: "load-gicr-of-vcpu-1", run: |_| absent_redistributor(1, 0) },
    Attempt { name: "load-gicr-of-vcpu-2", run: |_| absent_redistributor(2, 0) },
    Attempt { name: "load-gicr-of-vcpu-3", run: |_| absent_redistributor(3, 0) },
    Attempt {
        name: "load-gicr-sgi-frame-of-vcpu-1",
        run: |_| absent_redistributor(1, virt::GICR_SGI_FRAME),
    },
    Attempt { name: "store-gicr-waker-of-vcpu-1", run: wake_absent_redistributor },
    Attempt { name: "load-gicr-past-host-cpus", run: |_| absent_redistributor(HOST_CPUS, 0) },
    Attempt {
        name: "load-gicd-wrong-size",
        run: |_| emulated_read(virt::GICD_BASE + GICD_CTLR, 8),
    },
    Attempt {
        name: "load-gicd-reserved",
        run: |_| emulated_read(virt::GICD_BASE + GICD_RESERVED, 4),
    },
    Attempt { name: "load-uart-reserved", run: |_| emulated_read(virt::UART_BASE + 0x800, 4) },
    Attempt { name: "load-uart-wide", run: |_| emulated_read(virt::UART_BASE + DR, 8) },
    Attempt {
        name: "load-uart-next-page",
        run: |_| must_fault_load(virt::UART_BASE + virt::UART_SIZE),
    },
    Attempt { name: "uart-loopback", run: |_| loopback() },
    Attempt { name: "uart-disable", run: |_| disable_uart() },
    Attempt { name: "console-input-for-others", run: |_| console_input() },
    Attempt { name: "load-rtc", run: |_| must_fault_load(host::RTC) },
    Attempt { name: "store-rtc", run: |_| must_fault_store(host::RTC) },
    Attempt { name: "load-fw-cfg", run: |_| must_fault_load(host::FW_CFG) },
    Attempt { name: "load-gpio", run: |_| must_fault_load(host::GPIO) },
    Attempt { name: "load-secure-uart", run: |_| must_fault_load(host::SECURE_UART) },
    Attempt { name: "load-smmu", run: |_| must_fault_load(host::SMMU) },
    // Slot 0 is the guest's own virtio console (Duet's model answers); the
    // slots past Duet's devices (console, rng, disk, network, display,
    // keyboard, touchscreen: 0 to 6) are holes.
    Attempt { name: "load-virtio-mmio-own-console", run: |_| emulated_read(host::VIRTIO_MMIO, 4) },
    Attempt {
        name: "load-virtio-mmio-empty-slot",
        run: |_| must_fault_load(virt::VIRTIO_BASE + 7 * virt::VIRTIO_STRIDE),
    },
    Attempt {
        name: "store-virtio-mmio-empty-slot",
        run: |_| must_fault_store(virt::VIRTIO_BASE + 7 * virt::VIRTIO_STRIDE + 0x70),
    },
    Attempt {
        name: "load-virtio-mmio-last-slot",
        run: |_| {
            must_fault_load(virt::VIRTIO_BASE + (virt::VIRTIO_SLOTS - 1) * virt::VIRTIO_STRIDE)
        },
    },
    Attempt { name: "load-platform-bus", run: |_| must_fault_load(host::PLATFORM_BUS) },
    Attempt { name: "load-secure-ram", run: |_| must_fault_load(host::SECURE_RAM) },
    Attempt { name: "load-pcie-mmio", run: |_| must_fault_load(host::PCIE_MMIO) },
    Attempt { name: "load-pcie-pio", run: |_| must_fault_load(host::PCIE_PIO) },
    Attempt { name: "load-pcie-ecam", run: |_| must_fault_load(host::PCIE_ECAM) },
    Attempt { name: "load-pcie-ecam-high", run: |_| must_fault_load(host::PCIE_ECAM_HIGH) },
    Attempt { name: "load-pcie-mmio-high", run: |_| must_fault_load(host::PCIE_MMIO_HIGH) },
];

/// The redistributor of vCPU `vcpu` (plus `frame`), which the attacker,
/// with one vCPU, does not have; the host has one per physical CPU there.
fn absent_redistributor(vcpu: u64, frame: u64) -> Outcome {
    must_fault_load(virt::GICR_BASE + vcpu * virt::GICR_STRIDE + frame)
}

/// GICR_WAKER is a 32-bit register: a 4-byte store, aligned as device
/// memory requires, so that only Duet can refuse it.
fn wake_absent_redistributor(_: &Guest) -> Outcome {
    let address = virt::GICR_BASE + virt::GICR_STRIDE + GICR_WAKER;
    must_fault(store(address, 4, 0).map(|()| 0), "a store", address)
}

/// A read of an emulated device's frame that its model may refuse (an
/// exception) or answer (with its own, virtual state).
fn emulated_read(address: u64, size: u8) -> Outcome {
    match load(address, size) {
        Err(e) => Outcome::Exception(e),
        Ok(value) => emulated!("read {value:#x} from its own emulated device"),
    }
}

/// Loopback mode sends a byte back into the guest's own receiver: it must
/// neither reach the console nor anyone else.
fn loopback() -> Outcome {
    let cr = console::read_register(CR);
    console::write_register(CR, cr | CR_LBE);
    console::write_register(DR, u32::from(b'L'));
    let echoed = console::read_byte();
    console::write_register(CR, cr);
    match echoed {
        Some(b'L') => emulated!("the byte came back into its own receiver"),
        other => emulated!("loopback gave {other:?}"),
    }
}

/// Disables the UART: only its own emulated copy may go off (the line
/// after this one must still appear on the console).
fn disable_uart() -> Outcome {
    let cr = console::read_register(CR);
    console::write_register(CR, cr & !(CR_UARTEN | CR_TXE | CR_RXE));
    let off = console::read_register(CR);
    console::write_register(CR, cr);
    emulated!("CR {cr:#x} -> {off:#x} and back, in its own UART only")
}

/// How long the guest watches its console input.
const LISTEN_MILLIS: u64 = 1000;

/// Reads its UART for a while. Nobody types for this guest, so any byte
/// that arrives was typed for another VM.
fn console_input() -> Outcome {
    let deadline = timer::now() + timer::frequency() * LISTEN_MILLIS / 1000;
    let mut received = 0u32;
    let mut first = None;
    while timer::now() < deadline {
        if console::read_register(FR) & FR_RXFE == 0 {
            let byte = console::read_register(DR) as u8;
            first.get_or_insert(byte);
            received += 1;
        }
        timer::sleep(timer::frequency() / 100);
    }
    match first {
        None => emulated!("no input arrived in {LISTEN_MILLIS} ms"),
        Some(byte) => breach!("{received} bytes of console input arrived, the first {byte:#04x}"),
    }
}
