//! Reading the CPU's ID registers by encoding, to answer a guest's trapped
//! read (HCR_EL2.TID3) with a sanitised value (`vm::features`).

use super::sysreg::read_sysreg;

macro_rules! id_register_read {
    ($(($crm:literal, $op2:literal)),*) => {
        /// The ID register at op0=3, op1=0, CRn=0, `crm`, `op2`, or None
        /// outside the ID space that TID3 traps.
        pub fn read(crm: u8, op2: u8) -> Option<u64> {
            Some(match (crm, op2) {
                $(($crm, $op2) => read_sysreg!(concat!("S3_0_C0_C", $crm, "_", $op2)),)*
                _ => return None,
            })
        }
    };
}

id_register_read!(
    (1, 0),
    (1, 1),
    (1, 2),
    (1, 3),
    (1, 4),
    (1, 5),
    (1, 6),
    (1, 7),
    (2, 0),
    (2, 1),
    (2, 2),
    (2, 3),
    (2, 4),
    (2, 5),
    (2, 6),
    (2, 7),
    (3, 0),
    (3, 1),
    (3, 2),
    (3, 3),
    (3, 4),
    (3, 5),
    (3, 6),
    (3, 7),
    (4, 0),
    (4, 1),
    (4, 2),
    (4, 3),
    (4, 4),
    (4, 5),
    (4, 6),
    (4, 7),
    (5, 0),
    (5, 1),
    (5, 2),
    (5, 3),
    (5, 4),
    (5, 5),
    (5, 6),
    (5, 7),
    (6, 0),
    (6, 1),
    (6, 2),
    (6, 3),
    (6, 4),
    (6, 5),
    (6, 6),
    (6, 7),
    (7, 0),
    (7, 1),
    (7, 2),
    (7, 3),
    (7, 4),
    (7, 5),
    (7, 6),
    (7, 7)
);
