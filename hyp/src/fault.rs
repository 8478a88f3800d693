//! Deliberate faults, for the integration tests that check crash reports.
//! Compiled in only with the `fault-injection` feature; chosen at boot with
//! `duet.fault=<kind>[@<cpu>]` on the command line.

/// A fault Duet can be asked to commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A load from an address Duet does not map.
    DataAbort,
    /// An undefined instruction.
    Undefined,
    /// A Rust panic.
    Panic,
    /// Unbounded recursion into the stack's guard page.
    StackOverflow,
}

/// An address inside the 48-bit space that Duet never maps.
pub const UNMAPPED_ADDRESS: u64 = 0xdead_0000_0000;

/// Reads `kind[@cpu]`.
pub fn parse(option: &str) -> Option<(Fault, usize)> {
    let (kind, cpu) = match option.split_once('@') {
        Some((kind, cpu)) => (kind, cpu.parse().ok()?),
        None => (option, 0),
    };
    let fault = match kind {
        "data-abort" => Fault::DataAbort,
        "undefined" => Fault::Undefined,
        "panic" => Fault::Panic,
        "stack-overflow" => Fault::StackOverflow,
        _ => return None,
    };
    Some((fault, cpu))
}

#[cfg(all(target_os = "none", feature = "fault-injection"))]
pub use self::bare_metal::*;

#[cfg(all(target_os = "none", feature = "fault-injection"))]
mod bare_metal {
    use super::*;
    use crate::arch::aarch64::cpu;
    use crate::platform::Platform;
    use spin::Once;

    static ARMED: Once<Option<(Fault, usize)>> = Once::new();

    /// Reads `duet.fault` from the boot command line; called before the
    /// secondaries start, so they see it.
    pub fn arm(platform: &Platform) {
        ARMED.call_once(|| {
            let option = platform.boot_option("duet.fault")?;
            let armed = parse(option);
            if armed.is_none() {
                log::warn!("duet.fault={option}: not a fault kind; nothing injected");
            }
            armed
        });
    }

    /// Commits the armed fault if it is for this CPU. On the boot CPU, if
    /// the fault is for another CPU, waits for that CPU to stop the machine.
    pub fn commit_if_armed() {
        let Some(&Some((fault, target))) = ARMED.get() else {
            return;
        };
        let here = cpu::id();
        if here == target {
            log::info!("committing a deliberate fault: {fault:?}");
            commit(fault);
        } else if here == 0 {
            cpu::park();
        }
    }

    fn commit(fault: Fault) {
        match fault {
            // SAFETY: deliberately unsound: the point is to fault.
            Fault::DataAbort => unsafe {
                core::ptr::read_volatile(UNMAPPED_ADDRESS as *const u64);
            },
            // SAFETY: as above.
            Fault::Undefined => unsafe { core::arch::asm!("udf #0xd") },
            Fault::Panic => panic!("deliberate panic (duet.fault=panic)"),
            Fault::StackOverflow => {
                recurse(0);
            }
        }
    }

    // Recursing without end is the point.
    #[allow(unconditional_recursion)]
    #[inline(never)]
    fn recurse(depth: u64) -> u64 {
        let mut frame = [depth; 128];
        core::hint::black_box(&mut frame);
        recurse(depth + 1) + frame[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_and_cpu() {
        assert_eq!(parse("data-abort"), Some((Fault::DataAbort, 0)));
        assert_eq!(parse("undefined@3"), Some((Fault::Undefined, 3)));
        assert_eq!(parse("stack-overflow@1"), Some((Fault::StackOverflow, 1)));
        assert_eq!(parse("panic@x"), None);
        assert_eq!(parse("meltdown"), None);
    }
}
