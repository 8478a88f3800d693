//! QEMU's `virt` machine with a GICv3: the reference development board, and
//! the board whose layout Duet's virtual platform mirrors for every guest.

use crate::{Board, Qemu};

pub const BOARD: Board = Board {
    name: "virt",
    description: "QEMU virt, GICv3, 4 CPUs, 2 GiB",
    qemu: Qemu {
        machine: "virt,virtualization=on,gic-version=3",
        cpu: "max",
        cpus: 4,
        cpus_fixed: false,
        memory_mib: 2048,
        extra_args: &[
            // No default PCI network card; Duet's devices are virtio-mmio.
            "-nic",
            "none",
            // QEMU's virtio-mmio devices are legacy unless told otherwise.
            "-global",
            "virtio-mmio.force-legacy=false",
        ],
    },
};
