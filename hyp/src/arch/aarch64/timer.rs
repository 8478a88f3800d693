//! Duet's own timer: the EL2 physical timer (CNTHP), armed only to wake a
//! CPU at a guest's timer deadline, at the end of a time slice or of a
//! background vCPU's budget. Never periodic.

use super::sysreg::{read_sysreg, write_sysreg};

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

/// The loaded vCPU's virtual timer, held back while its CPU sleeps so its
/// interrupt can be delayed (timer slack): the guest's own control value.
#[derive(Clone, Copy, Debug)]
pub struct HeldVirtualTimer {
    ctl: u64,
    pub deadline: u64,
}

/// If the loaded vCPU's virtual timer is armed and unmasked, masks it and
/// returns its deadline and the guest's control value, for
/// [`release_virtual_timer`] to put back before the guest runs again.
pub fn hold_virtual_timer() -> Option<HeldVirtualTimer> {
    let ctl = read_sysreg!("cntv_ctl_el0");
    // ENABLE set, IMASK clear.
    if ctl & 0b11 != 0b01 {
        return None;
    }
    let deadline = read_sysreg!("cntv_cval_el0");
    write_sysreg!("cntv_ctl_el0", ctl | 0b10);
    Some(HeldVirtualTimer { ctl, deadline })
}

/// The loaded vCPU's virtual timer deadline, if it is armed and unmasked.
pub fn virtual_timer_deadline() -> Option<u64> {
    let ctl = read_sysreg!("cntv_ctl_el0");
    (ctl & 0b11 == 0b01).then(|| read_sysreg!("cntv_cval_el0"))
}

/// Puts back the guest's virtual timer control: a deadline that has passed
/// fires at once.
pub fn release_virtual_timer(held: HeldVirtualTimer) {
    write_sysreg!("cntv_ctl_el0", held.ctl & 0b11);
}
