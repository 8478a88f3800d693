//! The instructions the probe's attempts execute, each in a leaf function of
//! its own in `.text.guarded`. A leaf function never touches the stack or
//! x30, so when its instruction faults, the exception handler can resume at
//! x30 as if the function had returned (see `exceptions`). Call them only
//! through `exceptions::guarded`.
//!
//! Arguments and results follow the C convention: x0 (and x1) in, x0 out.
//! Every access takes an address and a value, so that attempts can treat
//! them alike; loads and cache operations ignore the value, and functions
//! that only write return their first argument.

use core::arch::global_asm;

global_asm!(
    r#"
.section .text.guarded, "ax"
.arch_extension lse

.macro leaf name
    .global \name
    .type \name, %function
    .balign 4
\name:
.endm

// Loads and stores of each size; x0 is the address, x1 the value.
leaf probe_load8
    ldrb    w0, [x0]
    ret
leaf probe_load16
    ldrh    w0, [x0]
    ret
leaf probe_load32
    ldr     w0, [x0]
    ret
leaf probe_load64
    ldr     x0, [x0]
    ret
leaf probe_store8
    strb    w1, [x0]
    ret
leaf probe_store16
    strh    w1, [x0]
    ret
leaf probe_store32
    str     w1, [x0]
    ret
leaf probe_store64
    str     x1, [x0]
    ret

// Accesses a hypervisor cannot emulate from the syndrome alone (no ISV):
// pairs, SIMD multiples, writeback, exclusives and atomics.
leaf probe_load_pair
    ldp     x2, x3, [x0]
    eor     x0, x2, x3
    ret
leaf probe_store_pair
    stp     x1, x1, [x0]
    ret
leaf probe_load_simd64
    // LD1 {{v0.16b-v3.16b}}, [x0]: 64 bytes in one instruction. Encoded by
    // hand: the probe is built soft-float, so the assembler takes no SIMD.
    .inst   0x4c402000
    ret
leaf probe_load_post_index
    ldr     x1, [x0], #8
    mov     x0, x1
    ret
leaf probe_load_exclusive
    ldxr    x0, [x0]
    clrex
    ret
leaf probe_atomic_add
    ldadd   x1, x0, [x0]
    ret
leaf probe_compare_swap
    mov     x2, xzr
    cas     x2, x1, [x0]
    mov     x0, x2
    ret

// Cache maintenance by address.
leaf probe_dc_zva
    dc      zva, x0
    ret
leaf probe_dc_civac
    dc      civac, x0
    ret
leaf probe_dc_ivac
    dc      ivac, x0
    ret

// A branch to x0; x30 still holds the caller's return address, so the
// handler can come back from a fault at the target.
leaf probe_jump
    br      x0

// Stage-1 translation of x0; returns PAR_EL1.
leaf probe_at_s1e1r
    at      s1e1r, x0
    isb
    mrs     x0, par_el1
    ret

// An exception return to the mode in x0 (an SPSR value), landing on the
// `ret` after it. Asking for EL2 from EL1 is an illegal return: the PE
// stays at EL1 with PSTATE.IL set, and the `ret` takes an exception.
leaf probe_eret_to
    msr     spsr_el1, x0
    adr     x1, 1f
    msr     elr_el1, x1
    eret
1:  ret

// RDVL x0, #1: an SVE instruction.
leaf probe_sve_rdvl
    .inst   0x04bf5020
    ret

// Cycles the PMU counts, with PMCCFILTR_EL0 = x0, across one HVC (a
// PSCI_VERSION call, handled by Duet at EL2).
leaf probe_pmu_cycles_across_hvc
    msr     pmccfiltr_el0, x0
    mov     x9, #(1 << 31)
    msr     pmcntenset_el0, x9
    mrs     x10, pmcr_el0
    orr     x10, x10, #1            // E: enable the counters
    orr     x10, x10, #4            // C: reset the cycle counter
    msr     pmcr_el0, x10
    isb
    mrs     x11, pmccntr_el0
    mov     x0, #0x84000000
    hvc     #0
    isb
    mrs     x12, pmccntr_el0
    msr     pmcntenclr_el0, x9
    sub     x0, x12, x11
    ret

// System registers and instructions of EL2 and EL3, and EL1/EL0 ones that
// Duet traps: one function each, named after what it does. Each takes one
// argument, the value to write or the address to translate; reads and
// TLB invalidations ignore it.
.macro read_register name, register
leaf \name
    mrs     x0, \register
    ret
.endm
.macro write_register name, register
leaf \name
    msr     \register, x0
    ret
.endm
.macro instruction name, what:vararg
leaf \name
    \what
    ret
.endm

read_register   probe_read_hcr_el2, hcr_el2
write_register  probe_write_hcr_el2, hcr_el2
read_register   probe_read_vttbr_el2, vttbr_el2
write_register  probe_write_vttbr_el2, vttbr_el2
read_register   probe_read_vbar_el2, vbar_el2
write_register  probe_write_vbar_el2, vbar_el2
read_register   probe_read_sctlr_el2, sctlr_el2
read_register   probe_read_esr_el2, esr_el2
read_register   probe_read_elr_el2, elr_el2
read_register   probe_read_tpidr_el2, tpidr_el2
read_register   probe_read_cnthctl_el2, cnthctl_el2
write_register  probe_write_cnthctl_el2, cnthctl_el2
read_register   probe_read_cntvoff_el2, cntvoff_el2
write_register  probe_write_cntvoff_el2, cntvoff_el2
read_register   probe_read_mdcr_el2, mdcr_el2
write_register  probe_write_mdcr_el2, mdcr_el2
read_register   probe_read_vmpidr_el2, vmpidr_el2
write_register  probe_write_vmpidr_el2, vmpidr_el2
read_register   probe_read_ich_hcr_el2, ich_hcr_el2
write_register  probe_write_ich_hcr_el2, ich_hcr_el2
read_register   probe_read_ich_lr0_el2, ich_lr0_el2
write_register  probe_write_ich_lr0_el2, ich_lr0_el2
read_register   probe_read_icc_sre_el2, icc_sre_el2
read_register   probe_read_sp_el1, sp_el1
read_register   probe_read_cnthp_ctl_el2, cnthp_ctl_el2
read_register   probe_read_scr_el3, scr_el3
write_register  probe_write_scr_el3, scr_el3
read_register   probe_read_sctlr_el3, sctlr_el3
read_register   probe_read_mdcr_el3, mdcr_el3
read_register   probe_read_vbar_el3, vbar_el3
read_register   probe_read_icc_sre_el3, icc_sre_el3
instruction     probe_at_s12e1r, at s12e1r, x0
instruction     probe_at_s1e2r, at s1e2r, x0
instruction     probe_at_s1e3r, at s1e3r, x0
instruction     probe_tlbi_alle2, tlbi alle2
instruction     probe_tlbi_vmalls12e1is, tlbi vmalls12e1is
instruction     probe_tlbi_alle3, tlbi alle3
write_register  probe_write_icc_sgi0r_el1, icc_sgi0r_el1
write_register  probe_write_icc_asgi1r_el1, icc_asgi1r_el1
write_register  probe_write_icc_sgi1r_el1, icc_sgi1r_el1
read_register   probe_read_cntp_ctl_el0, cntp_ctl_el0
write_register  probe_write_cntp_ctl_el0, cntp_ctl_el0
write_register  probe_write_cntp_cval_el0, cntp_cval_el0
read_register   probe_read_cntps_ctl_el1, cntps_ctl_el1

// EL1 and EL0 registers that hold data and control nothing while their
// feature is off, outside the set Duet's context switch saves: where one
// VM could leave data for another on a CPU they share, unless Duet traps
// them. By encoding, as the assembler knows few of their names without the
// features enabled. Then debug and PMU controls Duet traps.
read_register   probe_read_tpidr2_el0, S3_3_C13_C0_5
write_register  probe_write_tpidr2_el0, S3_3_C13_C0_5
read_register   probe_read_scxtnum_el0, S3_3_C13_C0_7
write_register  probe_write_scxtnum_el0, S3_3_C13_C0_7
read_register   probe_read_scxtnum_el1, S3_0_C13_C0_7
write_register  probe_write_scxtnum_el1, S3_0_C13_C0_7
read_register   probe_read_por_el0, S3_3_C10_C2_4
write_register  probe_write_por_el0, S3_3_C10_C2_4
read_register   probe_read_por_el1, S3_0_C10_C2_4
write_register  probe_write_por_el1, S3_0_C10_C2_4
read_register   probe_read_pire0_el1, S3_0_C10_C2_2
write_register  probe_write_pire0_el1, S3_0_C10_C2_2
read_register   probe_read_pir_el1, S3_0_C10_C2_3
write_register  probe_write_pir_el1, S3_0_C10_C2_3
read_register   probe_read_fpmr, S3_3_C4_C4_2
write_register  probe_write_fpmr, S3_3_C4_C4_2
read_register   probe_read_gcspr_el0, S3_3_C2_C5_1
write_register  probe_write_gcspr_el0, S3_3_C2_C5_1
read_register   probe_read_gcspr_el1, S3_0_C2_C5_1
write_register  probe_write_gcspr_el1, S3_0_C2_C5_1
read_register   probe_read_errselr_el1, S3_0_C5_C3_1
write_register  probe_write_errselr_el1, S3_0_C5_C3_1
read_register   probe_read_mair2_el1, S3_0_C10_C2_1
write_register  probe_write_mair2_el1, S3_0_C10_C2_1
read_register   probe_read_amair2_el1, S3_0_C10_C3_1
write_register  probe_write_amair2_el1, S3_0_C10_C3_1
read_register   probe_read_rgsr_el1, S3_0_C1_C0_5
write_register  probe_write_rgsr_el1, S3_0_C1_C0_5
read_register   probe_read_gcr_el1, S3_0_C1_C0_6
write_register  probe_write_gcr_el1, S3_0_C1_C0_6
read_register   probe_read_accdata_el1, S3_0_C13_C0_5
write_register  probe_write_accdata_el1, S3_0_C13_C0_5
read_register   probe_read_mdscr_el1, mdscr_el1
read_register   probe_read_dbgbvr0_el1, dbgbvr0_el1
write_register  probe_write_dbgbvr0_el1, dbgbvr0_el1
read_register   probe_read_dbgwvr0_el1, dbgwvr0_el1
write_register  probe_write_dbgwvr0_el1, dbgwvr0_el1
read_register   probe_read_pmccntr_el0, pmccntr_el0
write_register  probe_write_pmccntr_el0, pmccntr_el0
read_register   probe_read_pmcr_el0, pmcr_el0
write_register  probe_write_oslar_el1, S2_0_C1_C0_4
read_register   probe_read_oslsr_el1, S2_0_C1_C1_4
"#
);

/// The functions above. Each either returns normally or faults; see the
/// module comment for how a fault comes back.
macro_rules! leaves {
    ($($name:ident($($arg:ident),*);)*) => {
        extern "C" {
            $(pub fn $name($($arg: u64),*) -> u64;)*
        }
    };
}

leaves! {
    probe_load8(address, value);
    probe_load16(address, value);
    probe_load32(address, value);
    probe_load64(address, value);
    probe_store8(address, value);
    probe_store16(address, value);
    probe_store32(address, value);
    probe_store64(address, value);
    probe_load_pair(address, value);
    probe_store_pair(address, value);
    probe_load_simd64(address, value);
    probe_load_post_index(address, value);
    probe_load_exclusive(address, value);
    probe_atomic_add(address, value);
    probe_compare_swap(address, value);
    probe_dc_zva(address, value);
    probe_dc_civac(address, value);
    probe_dc_ivac(address, value);
    probe_jump(address);
    probe_at_s1e1r(address);
    probe_eret_to(spsr);
    probe_sve_rdvl();
    probe_pmu_cycles_across_hvc(filter);
    probe_read_hcr_el2(value);
    probe_write_hcr_el2(value);
    probe_read_vttbr_el2(value);
    probe_write_vttbr_el2(value);
    probe_read_vbar_el2(value);
    probe_write_vbar_el2(value);
    probe_read_sctlr_el2(value);
    probe_read_esr_el2(value);
    probe_read_elr_el2(value);
    probe_read_tpidr_el2(value);
    probe_read_cnthctl_el2(value);
    probe_write_cnthctl_el2(value);
    probe_read_cntvoff_el2(value);
    probe_write_cntvoff_el2(value);
    probe_read_mdcr_el2(value);
    probe_write_mdcr_el2(value);
    probe_read_vmpidr_el2(value);
    probe_write_vmpidr_el2(value);
    probe_read_ich_hcr_el2(value);
    probe_write_ich_hcr_el2(value);
    probe_read_ich_lr0_el2(value);
    probe_write_ich_lr0_el2(value);
    probe_read_icc_sre_el2(value);
    probe_read_sp_el1(value);
    probe_read_cnthp_ctl_el2(value);
    probe_read_scr_el3(value);
    probe_write_scr_el3(value);
    probe_read_sctlr_el3(value);
    probe_read_mdcr_el3(value);
    probe_read_vbar_el3(value);
    probe_read_icc_sre_el3(value);
    probe_at_s12e1r(value);
    probe_at_s1e2r(value);
    probe_at_s1e3r(value);
    probe_tlbi_alle2(value);
    probe_tlbi_vmalls12e1is(value);
    probe_tlbi_alle3(value);
    probe_write_icc_sgi0r_el1(value);
    probe_write_icc_asgi1r_el1(value);
    probe_write_icc_sgi1r_el1(value);
    probe_read_cntp_ctl_el0(value);
    probe_write_cntp_ctl_el0(value);
    probe_write_cntp_cval_el0(value);
    probe_read_cntps_ctl_el1(value);
    probe_read_tpidr2_el0(value);
    probe_write_tpidr2_el0(value);
    probe_read_scxtnum_el0(value);
    probe_write_scxtnum_el0(value);
    probe_read_scxtnum_el1(value);
    probe_write_scxtnum_el1(value);
    probe_read_por_el0(value);
    probe_write_por_el0(value);
    probe_read_por_el1(value);
    probe_write_por_el1(value);
    probe_read_pire0_el1(value);
    probe_write_pire0_el1(value);
    probe_read_pir_el1(value);
    probe_write_pir_el1(value);
    probe_read_fpmr(value);
    probe_write_fpmr(value);
    probe_read_gcspr_el0(value);
    probe_write_gcspr_el0(value);
    probe_read_gcspr_el1(value);
    probe_write_gcspr_el1(value);
    probe_read_errselr_el1(value);
    probe_write_errselr_el1(value);
    probe_read_mair2_el1(value);
    probe_write_mair2_el1(value);
    probe_read_amair2_el1(value);
    probe_write_amair2_el1(value);
    probe_read_rgsr_el1(value);
    probe_write_rgsr_el1(value);
    probe_read_gcr_el1(value);
    probe_write_gcr_el1(value);
    probe_read_accdata_el1(value);
    probe_write_accdata_el1(value);
    probe_read_mdscr_el1(value);
    probe_read_dbgbvr0_el1(value);
    probe_write_dbgbvr0_el1(value);
    probe_read_dbgwvr0_el1(value);
    probe_write_dbgwvr0_el1(value);
    probe_read_pmccntr_el0(value);
    probe_write_pmccntr_el0(value);
    probe_read_pmcr_el0(value);
    probe_write_oslar_el1(value);
    probe_read_oslsr_el1(value);
}
