//! CPU registers as hiding places. When VMs share a CPU, Duet saves and
//! restores the state each vCPU leaves in the hardware; a register it
//! missed, that a guest may still write, would carry data from one VM to
//! the next. The planter puts its secret in every such register that takes
//! it; the hunter reads them all. Only registers that hold data and control
//! nothing while their feature is unused are written, so the planter runs
//! on unaffected.

use crate::exceptions::guarded;
use crate::guarded as leaf;
use duet_probe::needle::Needle;

/// A leaf function of `guarded` taking one value.
type Leaf = unsafe extern "C" fn(u64) -> u64;

pub struct Register {
    pub name: &'static str,
    read: Leaf,
    write: Leaf,
}

macro_rules! registers {
    ($($name:literal: $read:ident, $write:ident;)*) => {
        &[$(Register { name: $name, read: leaf::$read, write: leaf::$write }),*]
    };
}

pub const REGISTERS: &[Register] = registers! {
    "TPIDR2_EL0": probe_read_tpidr2_el0, probe_write_tpidr2_el0;
    "SCXTNUM_EL0": probe_read_scxtnum_el0, probe_write_scxtnum_el0;
    "SCXTNUM_EL1": probe_read_scxtnum_el1, probe_write_scxtnum_el1;
    "POR_EL0": probe_read_por_el0, probe_write_por_el0;
    "POR_EL1": probe_read_por_el1, probe_write_por_el1;
    "PIRE0_EL1": probe_read_pire0_el1, probe_write_pire0_el1;
    "PIR_EL1": probe_read_pir_el1, probe_write_pir_el1;
    "FPMR": probe_read_fpmr, probe_write_fpmr;
    "GCSPR_EL0": probe_read_gcspr_el0, probe_write_gcspr_el0;
    "GCSPR_EL1": probe_read_gcspr_el1, probe_write_gcspr_el1;
    "ERRSELR_EL1": probe_read_errselr_el1, probe_write_errselr_el1;
    "MAIR2_EL1": probe_read_mair2_el1, probe_write_mair2_el1;
    "AMAIR2_EL1": probe_read_amair2_el1, probe_write_amair2_el1;
    "RGSR_EL1": probe_read_rgsr_el1, probe_write_rgsr_el1;
    "GCR_EL1": probe_read_gcr_el1, probe_write_gcr_el1;
    "ACCDATA_EL1": probe_read_accdata_el1, probe_write_accdata_el1;
    "DBGBVR0_EL1": probe_read_dbgbvr0_el1, probe_write_dbgbvr0_el1;
    "DBGWVR0_EL1": probe_read_dbgwvr0_el1, probe_write_dbgwvr0_el1;
    "PMCCNTR_EL0": probe_read_pmccntr_el0, probe_write_pmccntr_el0;
};

fn read(register: &Register) -> Option<u64> {
    // SAFETY: reading a data register, inside a guarded leaf function.
    guarded(|| unsafe { (register.read)(0) }).ok()
}

/// Writes `secret` to every register that takes it; returns which ones
/// kept all of it (a bit mask over [`REGISTERS`]).
pub fn plant(secret: u64) -> u32 {
    let mut kept = 0;
    for (n, register) in REGISTERS.iter().enumerate() {
        // SAFETY: a data register that controls nothing while its feature
        // is unused, inside a guarded leaf function.
        let written = guarded(|| unsafe { (register.write)(secret) }).is_ok();
        if written && read(register) == Some(secret) {
            kept |= 1 << n;
        }
    }
    kept
}

/// What reading every register found.
pub struct Hunt {
    /// The registers that could be read (a bit mask over [`REGISTERS`]).
    pub readable: u32,
    pub found: Option<&'static str>,
}

pub fn hunt(needle: &Needle) -> Hunt {
    let mut result = Hunt { readable: 0, found: None };
    for (n, register) in REGISTERS.iter().enumerate() {
        if let Some(value) = read(register) {
            result.readable |= 1 << n;
            if needle.matches(value) && result.found.is_none() {
                result.found = Some(register.name);
            }
        }
    }
    result
}

/// The names of the registers in `mask`, comma-separated.
pub struct Names(pub u32);

impl core::fmt::Display for Names {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut first = true;
        let named = REGISTERS.iter().enumerate().filter(|(n, _)| self.0 & 1 << n != 0);
        for (_, register) in named {
            write!(f, "{}{}", if first { "" } else { ", " }, register.name)?;
            first = false;
        }
        if first {
            write!(f, "none")?;
        }
        Ok(())
    }
}
