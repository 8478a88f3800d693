//! Duet's own timer: the EL2 physical timer (CNTHP), armed only to wake a
//! CPU at a guest's timer deadline or at the end of a time slice. Never
//! periodic.

use super::sysreg::write_sysreg;

const ENABLE: u64 = 1 << 0;

/// Fires at counter value `deadline`, or never (`None`).
pub fn arm_at(deadline: Option<u64>) {
    match deadline {
        Some(at) => {
            write_sysreg!("cnthp_cval_el2", at);
            write_sysreg!("cnthp_ctl_el2", ENABLE);
        }
        None => disarm(),
    }
}

/// Stops the timer.
pub fn disarm() {
    write_sysreg!("cnthp_ctl_el2", 0);
}
