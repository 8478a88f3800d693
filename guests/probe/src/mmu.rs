//! The attack mode's own stage-1 translation, so that its accesses reach
//! Duet in every shape a real kernel can make them.
//!
//! With the MMU off every data access is Device memory, and the guest's own
//! alignment checks stop an unaligned access, a DC ZVA or a load crossing
//! into a hole before Duet ever sees it. So the attacker maps its address
//! space itself, with 1 GiB blocks, identity:
//!
//! - the first GiB (the devices) as Device-nGnRnE, never executable;
//! - everything above, up to 1.5 TiB (past the 1 TiB a guest's stage 2
//!   covers), as Normal write-back memory, executable, so that loads,
//!   stores, cache operations and instruction fetches at holes all go out
//!   to stage 2;
//! - and a Normal alias of the first 512 GiB at [`NORMAL_ALIAS`], for
//!   unaligned and cache-line accesses to device addresses.
//!
//! Table walks are non-cacheable, so the tables written with the MMU off
//! need no cache maintenance.

use core::arch::asm;
use core::cell::UnsafeCell;

/// VA of the Normal alias: IPA `a` below 512 GiB is also at `NORMAL_ALIAS + a`.
pub const NORMAL_ALIAS: u64 = 256 << 39;

/// With [`walk_through`], the first VA of the TTBR1 range (39-bit).
pub const UPPER_VA: u64 = 0xffff_ff80_0000_0000;

const GIB: u64 = 1 << 30;
const ENTRIES: usize = 512;

/// Descriptor bits (VMSAv8-64, 4 KiB granule).
const VALID: u64 = 1 << 0;
const TABLE: u64 = 1 << 1;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const INNER_SHAREABLE: u64 = 3 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

const NORMAL_BLOCK: u64 = VALID | ATTR_NORMAL | INNER_SHAREABLE | ACCESS_FLAG | UXN;
const DEVICE_BLOCK: u64 = VALID | ATTR_DEVICE | ACCESS_FLAG | PXN | UXN;

/// MAIR_EL1: attribute 0 Device-nGnRnE, attribute 1 Normal write-back.
const MAIR: u64 = 0xff << 8;

/// TCR_EL1: 48-bit VAs through TTBR0 (T0SZ 16), 4 KiB granules,
/// non-cacheable walks, TTBR1 walks off (EPD1), 48-bit IPAs (IPS).
const TCR_T0SZ_48: u64 = 16;
const TCR_SH0_INNER: u64 = 3 << 12;
const TCR_T1SZ_39: u64 = 25 << 16;
const TCR_EPD1: u64 = 1 << 23;
const TCR_TG1_4K: u64 = 2 << 30;
const TCR_IPS_48: u64 = 5 << 32;
const TCR: u64 = TCR_T0SZ_48 | TCR_SH0_INNER | TCR_T1SZ_39 | TCR_EPD1 | TCR_TG1_4K | TCR_IPS_48;

/// SCTLR_EL1: MMU, data and instruction caches on; alignment checks off.
const SCTLR_M: u64 = 1 << 0;
const SCTLR_A: u64 = 1 << 1;
const SCTLR_C: u64 = 1 << 2;
const SCTLR_I: u64 = 1 << 12;
const SCTLR_WXN: u64 = 1 << 19;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

/// The root and four level-1 tables: identity 0..512 GiB, 512 GiB..1 TiB,
/// 1..1.5 TiB, and the Normal alias.
struct Tables(UnsafeCell<[Table; 5]>);

// SAFETY: the probe runs on one vCPU; the tables are written once, before
// the MMU reads them.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables(UnsafeCell::new([const { Table([0; ENTRIES]) }; 5]));

/// Builds the map and turns the MMU on.
pub fn enable() {
    // SAFETY: the MMU is off and nothing else uses the tables yet.
    let tables = unsafe { &mut *TABLES.0.get() };
    let [root, low, middle, high, alias] = tables;
    for (n, entry) in low.0.iter_mut().enumerate() {
        *entry = block(n, if n == 0 { DEVICE_BLOCK } else { NORMAL_BLOCK });
    }
    for (n, entry) in middle.0.iter_mut().enumerate() {
        *entry = block(ENTRIES + n, NORMAL_BLOCK);
    }
    for (n, entry) in high.0.iter_mut().enumerate() {
        *entry = block(2 * ENTRIES + n, NORMAL_BLOCK);
    }
    for (n, entry) in alias.0.iter_mut().enumerate() {
        *entry = block(n, NORMAL_BLOCK);
    }
    let table = |t: &Table| core::ptr::from_ref(t) as u64 | TABLE | VALID;
    root.0[0] = table(low);
    root.0[1] = table(middle);
    root.0[2] = table(high);
    root.0[(NORMAL_ALIAS >> 39) as usize] = table(alias);
    let root = core::ptr::from_ref(root) as u64;
    // SAFETY: an identity map of everything the probe uses, so execution
    // continues at the same addresses once the MMU is on.
    unsafe {
        asm!(
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {root}",
            "dsb ish",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            "mrs {sctlr}, sctlr_el1",
            "bic {sctlr}, {sctlr}, {clear}",
            "orr {sctlr}, {sctlr}, {set}",
            "msr sctlr_el1, {sctlr}",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) TCR,
            root = in(reg) root,
            sctlr = out(reg) _,
            clear = in(reg) SCTLR_A | SCTLR_WXN,
            set = in(reg) SCTLR_M | SCTLR_C | SCTLR_I,
        );
    }
}

/// A 1 GiB block descriptor for GiB number `gib`.
fn block(gib: usize, attributes: u64) -> u64 {
    (gib as u64 * GIB) | attributes
}

/// Runs `f` while addresses from [`UPPER_VA`] are translated by tables at
/// `table` (guest-physical): a stage-1 walk that reads whatever is there.
pub fn walk_through<T>(table: u64, f: impl FnOnce() -> T) -> T {
    set_upper_tables(table, TCR & !TCR_EPD1);
    let result = f();
    set_upper_tables(0, TCR);
    result
}

fn set_upper_tables(table: u64, tcr: u64) {
    // SAFETY: only the TTBR1 half changes, which the probe's own code and
    // data never use.
    unsafe {
        asm!(
            "msr ttbr1_el1, {table}",
            "msr tcr_el1, {tcr}",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            table = in(reg) table,
            tcr = in(reg) tcr,
        );
    }
}

/// Gives EL1 the FP/SIMD registers (CPACR_EL1.FPEN), for the SIMD load.
pub fn enable_fp() {
    // SAFETY: changes only which instructions trap.
    unsafe {
        asm!(
            "mrs {0}, cpacr_el1",
            "orr {0}, {0}, #(3 << 20)",
            "msr cpacr_el1, {0}",
            "isb",
            out(reg) _
        )
    };
}
