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
        dtb: None,
    },
};

/// The same machine with a GICv2 (with its virtualization extensions): the
/// second GICv2 target beside the Raspberry Pi 4, and the quicker one to
/// test the virtual GICv2 on. QEMU's GICv2 takes at most 8 CPUs.
pub const BOARD_GICV2: Board = Board {
    name: "virt-gicv2",
    description: "QEMU virt, GICv2 with virtualization extensions, 4 CPUs, 2 GiB",
    qemu: Qemu { machine: "virt,virtualization=on,gic-version=2", ..BOARD.qemu },
};
