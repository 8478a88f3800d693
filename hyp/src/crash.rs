//! What Duet does when something goes wrong inside itself: a decoded report
//! on the console (what was taken, where, with every register), then the
//! machine stops. Never a silent hang.
//!
//! The report is formatted by plain code that the host tests check; the
//! bare-metal part only prints it and stops.

use crate::arch::esr::Esr;
use crate::arch::frame::{TrapFrame, Vector};
use crate::status;
use core::fmt::{self, Write};

/// Writes the crash report for an exception Duet did not expect.
/// `in_guard_page` says whether an address lies in a stack's guard page.
pub fn write_report(
    out: &mut impl Write,
    cpu: usize,
    vector: Vector,
    frame: &TrapFrame,
    in_guard_page: impl Fn(u64) -> bool,
) -> fmt::Result {
    writeln!(out, "{} unexpected {vector} on cpu {cpu}", status::HALTED)?;
    if vector.has_syndrome() {
        let esr = Esr(frame.esr);
        writeln!(out, "  exception: {}", esr.class())?;
        write!(out, "  ESR_EL2  {:#018x}", frame.esr)?;
        match esr.abort() {
            Some(abort) => writeln!(out, "  ({abort:?})")?,
            None => writeln!(out, "  (ISS {:#x})", esr.iss())?,
        }
        writeln!(out, "  FAR_EL2  {:#018x}", frame.far)?;
        if esr.abort().is_some() && in_guard_page(frame.far) {
            writeln!(out, "  the address is in a stack guard page: a stack overflowed")?;
        }
    }
    writeln!(out, "  ELR_EL2  {:#018x}  SPSR_EL2 {:#010x}", frame.elr, frame.spsr)?;
    for row in 0..8 {
        write!(out, " ")?;
        for column in 0..4 {
            let index = row * 4 + column;
            match index {
                0..=30 => write!(out, " x{index:<2} {:#018x}", frame.x[index])?,
                _ => write!(out, " sp  {:#018x}", frame.sp)?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(target_os = "none")]
pub use self::bare_metal::*;

#[cfg(target_os = "none")]
mod bare_metal {
    use super::*;
    use crate::arch::aarch64::cpu;
    use crate::console;
    use core::sync::atomic::{AtomicBool, Ordering};

    static CRASHING: [AtomicBool; crate::MAX_CPUS] =
        [const { AtomicBool::new(false) }; crate::MAX_CPUS];

    /// Adapts the console to `fmt::Write` for the report.
    struct Emergency;

    impl Write for Emergency {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            console::print_emergency(format_args!("{s}"));
            Ok(())
        }
    }

    /// Reports an exception Duet did not expect and stops the machine.
    pub fn unexpected_exception(vector: Vector, frame: &TrapFrame) -> ! {
        let cpu = enter_crash();
        let mut report = ReportBuffer::new();
        let in_guard_page = |address: u64| {
            crate::arch::aarch64::entry::stack_guards()
                .any(|guard| (guard as u64..guard as u64 + 4096).contains(&address))
        };
        let _ = write_report(&mut report, cpu, vector, frame, in_guard_page);
        let _ = Emergency.write_str(report.as_str());
        crate::machine::stop()
    }

    /// Marks this CPU as crashing; a second fault while reporting parks it.
    fn enter_crash() -> usize {
        let cpu = cpu::id().min(crate::MAX_CPUS - 1);
        if CRASHING[cpu].swap(true, Ordering::Relaxed) {
            cpu::park();
        }
        cpu
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        let cpu = enter_crash();
        console::print_emergency(format_args!("{} panic on cpu {cpu}: {info}\n", status::HALTED));
        crate::machine::stop()
    }

    /// Collects the report so it reaches the console in one piece.
    struct ReportBuffer {
        bytes: [u8; 2048],
        len: usize,
    }

    impl ReportBuffer {
        fn new() -> Self {
            Self { bytes: [0; 2048], len: 0 }
        }

        fn as_str(&self) -> &str {
            core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("(report not UTF-8)\n")
        }
    }

    impl Write for ReportBuffer {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.bytes.len() - self.len;
            let n = s.len().min(room);
            self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_decodes_a_data_abort() {
        let mut frame = TrapFrame {
            esr: 0x9600_0004,
            far: 0xdead_0000_0000,
            elr: 0x4008_1234,
            ..Default::default()
        };
        frame.x[30] = 0x4008_0ff0;
        frame.sp = 0x4012_3450;
        let mut out = String::new();
        write_report(&mut out, 2, Vector::from_index(4), &frame, |_| false).unwrap();
        assert!(
            out.starts_with("duet: HALTED: unexpected synchronous exception from EL2 on cpu 2\n"),
            "{out}"
        );
        assert!(
            out.contains("exception: EC 0x25: data abort without a change in exception level"),
            "{out}"
        );
        assert!(
            out.contains("ESR_EL2  0x0000000096000004  (translation fault at level 0)"),
            "{out}"
        );
        assert!(out.contains("FAR_EL2  0x0000dead00000000"), "{out}");
        assert!(out.contains("ELR_EL2  0x0000000040081234"), "{out}");
        assert!(out.contains("x30 0x0000000040080ff0"), "{out}");
        assert!(out.contains("sp  0x0000000040123450"), "{out}");
        assert_eq!(out.matches(" x").count(), 31);
        assert!(!out.contains("guard page"));
    }

    #[test]
    fn report_names_a_stack_overflow() {
        let frame = TrapFrame { esr: 0x9600_0047, far: 0x4015_ec10, ..Default::default() };
        let mut out = String::new();
        let guard = |address: u64| (0x4015_e000..0x4015_f000).contains(&address);
        write_report(&mut out, 0, Vector::from_index(0), &frame, guard).unwrap();
        assert!(out.contains("(translation fault at level 3)"), "{out}");
        assert!(out.contains("a stack overflowed"), "{out}");
    }

    #[test]
    fn interrupts_have_no_syndrome_lines() {
        let mut out = String::new();
        write_report(&mut out, 0, Vector::from_index(5), &TrapFrame::default(), |_| true).unwrap();
        assert!(out.contains("unexpected IRQ from EL2 on cpu 0"));
        assert!(!out.contains("ESR_EL2"));
    }
}
