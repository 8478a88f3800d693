//! Calls to firmware and hypervisor (SMC Calling Convention), with every
//! argument and result register visible, so that an attempt can check that
//! an answer leaks nothing: registers the call does not return in must come
//! back as they went in (or zero).

use core::arch::asm;

pub const PSCI_VERSION: u64 = 0x8400_0000;
pub const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

/// x0 after a call the callee does not implement.
pub const NOT_SUPPORTED: u64 = -1i64 as u64;
pub const INVALID_PARAMETERS: u64 = -2i64 as u64;
pub const ALREADY_ON: u64 = -4i64 as u64;

/// How a call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `HVC #0`: to the hypervisor, the conduit the device tree names.
    Hvc,
    /// `HVC #0x4711`: SMCCC wants a zero immediate; Duet must not care.
    HvcNonZero,
    /// `SMC #0`: to the secure firmware, unless the hypervisor traps it.
    Smc,
}

/// Registers x0..x17 as a call left them.
#[derive(Clone, Copy, Debug)]
pub struct Registers(pub [u64; 18]);

/// What registers x4..x17 hold going into a call: recognisable, so that any
/// change stands out.
const fn marker(n: usize) -> u64 {
    0x5e17_0000_0000_0000 | n as u64
}

impl Registers {
    /// x0 = `function`, x1..x3 = `args`, x4..x17 markers.
    pub fn call(function: u64, args: [u64; 3]) -> Self {
        let mut x = [0; 18];
        x[0] = function;
        x[1..4].copy_from_slice(&args);
        for (n, value) in x.iter_mut().enumerate().skip(4) {
            *value = marker(n);
        }
        Registers(x)
    }

    /// The first of x1..x17 that came back as neither what went in nor
    /// zero: what a call would leak through, if anything.
    pub fn leaked(&self, before: &Registers) -> Option<(usize, u64)> {
        (1..18).map(|n| (n, self.0[n])).find(|&(n, value)| value != before.0[n] && value != 0)
    }
}

macro_rules! smccc_asm {
    ($instruction:literal, $x:ident) => {
        // SAFETY: an SMCCC call; every register it may change is an operand.
        unsafe {
            asm!(
                $instruction,
                inout("x0") $x[0], inout("x1") $x[1], inout("x2") $x[2], inout("x3") $x[3],
                inout("x4") $x[4], inout("x5") $x[5], inout("x6") $x[6], inout("x7") $x[7],
                inout("x8") $x[8], inout("x9") $x[9], inout("x10") $x[10], inout("x11") $x[11],
                inout("x12") $x[12], inout("x13") $x[13], inout("x14") $x[14],
                inout("x15") $x[15], inout("x16") $x[16], inout("x17") $x[17],
                options(nostack),
            )
        }
    };
}

/// Makes the call `registers` describes through `conduit`.
pub fn call(conduit: Conduit, registers: Registers) -> Registers {
    let mut x = registers.0;
    match conduit {
        Conduit::Hvc => smccc_asm!("hvc #0", x),
        Conduit::HvcNonZero => smccc_asm!("hvc #0x4711", x),
        Conduit::Smc => smccc_asm!("smc #0", x),
    }
    Registers(x)
}

/// A call over HVC; x0 of the answer.
pub fn hvc(function: u64, args: [u64; 3]) -> u64 {
    call(Conduit::Hvc, Registers::call(function, args)).0[0]
}

/// PSCI SYSTEM_OFF over HVC; waits for ever if it returns.
pub fn power_off() -> ! {
    hvc(PSCI_SYSTEM_OFF, [0; 3]);
    say!("probe: SYSTEM_OFF returned");
    loop {
        // SAFETY: waiting for an interrupt has no memory effects.
        unsafe { asm!("wfi") };
    }
}
