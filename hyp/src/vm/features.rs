//! The CPU features a guest is told about. Guests read the ID registers
//! through a trap (HCR_EL2.TID3); Duet answers with the real value minus
//! the features it does not virtualise: state it does not save (SVE, SME,
//! MTE tags, FP8), extensions that need EL2 controls it leaves off (MOPS,
//! LS64, FPMR, TCR2/PIE/POE), and hardware it keeps for itself (PMU, SPE,
//! trace, AMU, MPAM).

/// An ID register field: its lowest bit; every field is four bits wide.
type Field = u32;

/// Fields to report as "not implemented", per ID register (CRm, op2).
fn hidden_fields(crm: u8, op2: u8) -> &'static [Field] {
    match (crm, op2) {
        // ID_AA64PFR0_EL1: SVE, MPAM, AMU, RME.
        (4, 0) => &[32, 40, 44, 52],
        // ID_AA64PFR1_EL1: MTE, MPAM_frac, SME, MTE_frac, NMI, GCS, THE, MTEX, DF2, PFAR.
        (4, 1) => &[8, 16, 24, 36, 40, 44, 48, 52, 56, 60],
        // ID_AA64DFR0_EL1: TraceVer, PMUVer, PMSVer (SPE), TraceFilt, TraceBuffer, MTPMU, BRBE, HPMN0.
        (5, 0) => &[4, 8, 32, 40, 44, 48, 52, 60],
        // ID_AA64ISAR1_EL1: LS64.
        (6, 1) => &[60],
        // ID_AA64ISAR2_EL1: MOPS.
        (6, 2) => &[16],
        _ => &[],
    }
}

/// Registers reported as all zero: SVE and SME feature registers, the
/// second debug and processor feature registers, FP8, and the
/// translation-control extensions of ID_AA64MMFR3_EL1.
fn hidden_register(crm: u8, op2: u8) -> bool {
    matches!((crm, op2), (4, 2) | (4, 4) | (4, 5) | (4, 7) | (5, 1) | (7, 3))
}

/// The value a guest reads from the ID register at (`crm`, `op2`) when the
/// hardware holds `value`.
pub fn sanitise(crm: u8, op2: u8, value: u64) -> u64 {
    if hidden_register(crm, op2) {
        return 0;
    }
    hidden_fields(crm, op2).iter().fold(value, |v, &lsb| v & !(0xf << lsb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_sve_but_keeps_the_gic_and_fp_fields() {
        // ID_AA64PFR0_EL1 of QEMU's max CPU: SVE (1 << 32), GIC (1 << 24), FP/AdvSIMD 1, EL2..0.
        let pfr0 = 0x1201_1111_1111_2222_u64 | 1 << 32;
        let seen = sanitise(4, 0, pfr0);
        assert_eq!((seen >> 32) & 0xf, 0, "SVE hidden");
        assert_eq!((seen >> 24) & 0xf, (pfr0 >> 24) & 0xf, "GIC kept");
        assert_eq!(seen & 0xffff, pfr0 & 0xffff, "EL levels kept");
    }

    #[test]
    fn hides_sme_mte_and_the_pmu() {
        assert_eq!((sanitise(4, 1, u64::MAX) >> 24) & 0xf, 0);
        assert_eq!((sanitise(4, 1, u64::MAX) >> 8) & 0xf, 0);
        assert_eq!(sanitise(4, 1, u64::MAX) & 0xf, 0xf, "BTI kept");
        assert_eq!((sanitise(5, 0, u64::MAX) >> 8) & 0xf, 0);
        assert_eq!(sanitise(5, 0, u64::MAX) & 0xf, 0xf, "DebugVer kept");
    }

    #[test]
    fn zeroes_whole_registers_and_passes_the_rest() {
        assert_eq!(sanitise(4, 4, 0x1234), 0);
        assert_eq!(sanitise(7, 3, u64::MAX), 0);
        assert_eq!(sanitise(7, 0, 0x1234_5678), 0x1234_5678, "MMFR0 untouched");
        assert_eq!(sanitise(1, 0, 42), 42, "AArch32 registers untouched");
    }
}
