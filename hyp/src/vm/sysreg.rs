//! Decoding a trapped MSR/MRS (ESR class 0x18) into which system register
//! and which general register, so exits can be routed by name.

/// A system register encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
}

impl core::fmt::Display for Encoding {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Encoding { op0, op1, crn, crm, op2 } = *self;
        write!(f, "S{op0}_{op1}_C{crn}_C{crm}_{op2}")
    }
}

/// ICC_SGI1R_EL1: a guest sending a Group 1 SGI.
pub const ICC_SGI1R_EL1: Encoding = Encoding { op0: 3, op1: 0, crn: 12, crm: 11, op2: 5 };
/// ICC_ASGI1R_EL1 and ICC_SGI0R_EL1: SGIs for the other group.
pub const ICC_ASGI1R_EL1: Encoding = Encoding { op0: 3, op1: 1, crn: 12, crm: 11, op2: 6 };
pub const ICC_SGI0R_EL1: Encoding = Encoding { op0: 3, op1: 2, crn: 12, crm: 11, op2: 7 };

/// A trapped access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub register: Encoding,
    /// The general register (Rt); 31 is XZR.
    pub rt: usize,
    /// MRS (a read) rather than MSR.
    pub read: bool,
}

impl SysRegAccess {
    /// Decodes the ISS of an ESR with class 0x18.
    pub fn decode(iss: u32) -> Self {
        let field = |lsb: u32, bits: u32| ((iss >> lsb) & ((1 << bits) - 1)) as u8;
        SysRegAccess {
            register: Encoding {
                op0: field(20, 2),
                op2: field(17, 3),
                op1: field(14, 3),
                crn: field(10, 4),
                crm: field(1, 4),
            },
            rt: field(5, 5) as usize,
            read: iss & 1 != 0,
        }
    }

    /// Whether it is a debug register (op0 = 2: breakpoints, watchpoints,
    /// the OS lock, MDSCR and friends).
    pub fn is_debug(&self) -> bool {
        self.register.op0 == 2
    }

    /// For a read of the ID register space (op0=3, op1=0, CRn=0) that TID3
    /// traps: its (CRm, op2).
    pub fn id_register(&self) -> Option<(u8, u8)> {
        let r = self.register;
        (self.read && r.op0 == 3 && r.op1 == 0 && r.crn == 0 && r.crm >= 1)
            .then_some((r.crm, r.op2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iss(e: Encoding, rt: u32, read: bool) -> u32 {
        u32::from(e.op0) << 20
            | u32::from(e.op2) << 17
            | u32::from(e.op1) << 14
            | u32::from(e.crn) << 10
            | rt << 5
            | u32::from(e.crm) << 1
            | u32::from(read)
    }

    #[test]
    fn decodes_an_sgi_write() {
        let access = SysRegAccess::decode(iss(ICC_SGI1R_EL1, 8, false));
        assert_eq!(access, SysRegAccess { register: ICC_SGI1R_EL1, rt: 8, read: false });
        assert_eq!(access.id_register(), None);
        assert_eq!(ICC_SGI1R_EL1.to_string(), "S3_0_C12_C11_5");
    }

    #[test]
    fn recognises_debug_registers() {
        let oslar = Encoding { op0: 2, op1: 0, crn: 1, crm: 0, op2: 4 };
        assert!(SysRegAccess::decode(iss(oslar, 31, false)).is_debug());
        assert!(!SysRegAccess::decode(iss(ICC_SGI1R_EL1, 0, false)).is_debug());
    }

    #[test]
    fn recognises_id_register_reads() {
        let pfr0 = Encoding { op0: 3, op1: 0, crn: 0, crm: 4, op2: 0 };
        assert_eq!(SysRegAccess::decode(iss(pfr0, 0, true)).id_register(), Some((4, 0)));
        assert_eq!(SysRegAccess::decode(iss(pfr0, 0, false)).id_register(), None);
        let midr = Encoding { op0: 3, op1: 0, crn: 0, crm: 0, op2: 0 };
        assert_eq!(SysRegAccess::decode(iss(midr, 0, true)).id_register(), None);
    }
}
