//! The guest's console: an emulated Arm PL011 UART (r1p5, 32-byte FIFOs),
//! enough for Linux's `amba-pl011` driver with interrupts, its earlycon and
//! simple polling drivers.
//!
//! This module owns the register model and nothing around it: the caller
//! feeds received bytes in with [`Pl011::push_input`], drains transmitted
//! ones with [`Pl011::take_output`], and after every access or input
//! re-reads [`Pl011::interrupt_level`] for the UART's SPI.
//!
//! The model, where it differs from a wire:
//! - Transmission is instant. The transmit FIFO is always empty, never full,
//!   never busy, so output never blocks the guest.
//! - Hence the transmit interrupt is a level that is always raised: the FIFO
//!   always sits at or below any trigger level. A guest unmasks TXIM only
//!   while it has characters queued (Linux: when it could not write all of
//!   them, which with TXFF never set does not even happen), takes the
//!   interrupt, writes, and masks TXIM when its queue is empty; the level
//!   guarantees that interrupt comes, so the console cannot stall.
//! - The receive interrupt is a level: raised while the FIFO holds at least
//!   the IFLS trigger level. The receive timeout is approximated as "the
//!   FIFO is not empty". Writing ICR lowers either until the FIFO next
//!   changes, as on the real part.
//! - The modem lines read as a peer always present and ready (CTS, DSR and
//!   DCD asserted, RI not), so hardware flow control never stops output.
//! - No receive errors ever happen: the caller holds input back when the
//!   FIFO is full instead of overrunning it.

use crate::vm::mmio::{MmioDevice, MmioError, Size};

/// Every register is one 32-bit word.
const REGISTER_BYTES: u64 = 4;

/// Register offsets.
mod reg {
    pub const DR: u64 = 0x000;
    /// RSR when read, ECR when written.
    pub const RSR_ECR: u64 = 0x004;
    pub const FR: u64 = 0x018;
    pub const ILPR: u64 = 0x020;
    pub const IBRD: u64 = 0x024;
    pub const FBRD: u64 = 0x028;
    pub const LCR_H: u64 = 0x02c;
    pub const CR: u64 = 0x030;
    pub const IFLS: u64 = 0x034;
    pub const IMSC: u64 = 0x038;
    pub const RIS: u64 = 0x03c;
    pub const MIS: u64 = 0x040;
    pub const ICR: u64 = 0x044;
    pub const DMACR: u64 = 0x048;
    /// PeriphID0..3 then PCellID0..3, one byte per word.
    pub const ID_FIRST: u64 = 0xfe0;
    pub const ID_LAST: u64 = 0xffc;
}

/// The identification registers of a PL011 r1p5: part 0x011, designer Arm,
/// revision 3 (from which Linux infers 32-byte FIFOs); the PrimeCell ID.
const ID_VALUES: [u8; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Flag register bits.
mod fr {
    pub const CTS: u32 = 1 << 0;
    pub const DSR: u32 = 1 << 1;
    pub const DCD: u32 = 1 << 2;
    pub const RXFE: u32 = 1 << 4;
    pub const RXFF: u32 = 1 << 6;
    pub const TXFE: u32 = 1 << 7;
}

/// Interrupt bits, the same in IMSC, RIS, MIS and ICR.
mod int {
    pub const RX: u32 = 1 << 4;
    pub const TX: u32 = 1 << 5;
    pub const RT: u32 = 1 << 6;
    /// RI, CTS, DCD, DSR, RX, TX, RT, FE, PE, BE, OE.
    pub const ALL: u32 = (1 << 11) - 1;
}

/// Bits each plain read/write register holds.
const ILPR_BITS: u32 = 0xff;
const IBRD_BITS: u32 = 0xffff;
const FBRD_BITS: u32 = 0x3f;
const LCR_H_BITS: u32 = 0xff;
const CR_BITS: u32 = 0xffff;
const IFLS_BITS: u32 = 0x3f;
const DMACR_BITS: u32 = 0x7;

/// LCR_H.FEN: FIFOs enabled. Without it the receive side interrupts per byte.
const LCR_H_FEN: u32 = 1 << 4;
/// CR bits: loopback, transmitter enable, receiver enable.
const CR_LBE: u32 = 1 << 7;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;
/// IFLS.RXIFLSEL, bits 5:3: the receive trigger level.
const IFLS_RX_SHIFT: u32 = 3;
const IFLS_RX_BITS: u32 = 0b111;
/// IFLS after reset: both trigger levels at half.
const IFLS_RESET: u32 = 0b010_010;

/// DR: the received byte (error flags above it are always clear).
const DR_DATA_BITS: u64 = 0xff;

/// Bytes the receive FIFO holds, as on an r1p5.
pub const RX_FIFO_DEPTH: usize = 32;
/// Transmitted bytes kept until the caller drains them.
pub const OUTPUT_CAPACITY: usize = 256;

/// A fixed ring of bytes.
#[derive(Clone, Debug)]
struct Ring<const N: usize> {
    bytes: [u8; N],
    head: usize,
    len: usize,
}

impl<const N: usize> Ring<N> {
    const fn new() -> Self {
        Ring { bytes: [0; N], head: 0, len: 0 }
    }

    fn push(&mut self, byte: u8) -> bool {
        if self.len == N {
            return false;
        }
        self.bytes[(self.head + self.len) % N] = byte;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.bytes[self.head];
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(byte)
    }
}

/// One emulated PL011.
#[derive(Clone, Debug)]
pub struct Pl011 {
    rx: Ring<RX_FIFO_DEPTH>,
    output: Ring<OUTPUT_CAPACITY>,
    output_dropped: u64,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    dmacr: u32,
    /// Receive interrupts the guest cleared through ICR; they stay low
    /// until the receive FIFO next changes.
    rx_cleared: u32,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A UART in its reset state: transmitter and receiver enabled, the
    /// UART itself not, all interrupts masked.
    pub const fn new() -> Self {
        Pl011 {
            rx: Ring::new(),
            output: Ring::new(),
            output_dropped: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_TXE | CR_RXE,
            ifls: IFLS_RESET,
            imsc: 0,
            dmacr: 0,
            rx_cleared: 0,
        }
    }

    /// Offers the guest one received byte. False when the FIFO is full: the
    /// caller keeps the byte and offers it again after the guest has read.
    /// Input is taken whether or not the guest enabled its receiver, so
    /// nothing typed early is lost (Linux drains stale input on open).
    pub fn push_input(&mut self, byte: u8) -> bool {
        let taken = self.rx.push(byte);
        if taken {
            self.rx_cleared = 0;
        }
        taken
    }

    /// Whether the receive FIFO can take another byte.
    pub fn has_input_room(&self) -> bool {
        self.rx.len < RX_FIFO_DEPTH
    }

    /// The bytes the guest transmitted since the last call, oldest first.
    /// Drain it after every guest write, or at least before
    /// [`OUTPUT_CAPACITY`] bytes pile up.
    pub fn take_output(&mut self) -> impl Iterator<Item = u8> + '_ {
        core::iter::from_fn(move || self.output.pop())
    }

    /// Transmitted bytes lost because the output was not drained in time.
    pub fn output_dropped(&self) -> u64 {
        self.output_dropped
    }

    /// The level of the UART's interrupt line: any raised, unmasked cause.
    pub fn interrupt_level(&self) -> bool {
        self.masked_status() != 0
    }

    fn transmit(&mut self, byte: u8) {
        if self.cr & CR_LBE != 0 {
            // Loopback: the byte comes back in, and is lost if there is no
            // room, as on the wire.
            self.push_input(byte);
        } else if !self.output.push(byte) {
            self.output_dropped += 1;
        }
    }

    fn read_data(&mut self) -> u64 {
        match self.rx.pop() {
            Some(byte) => {
                self.rx_cleared = 0;
                u64::from(byte)
            }
            None => 0,
        }
    }

    /// Bytes in the receive FIFO that raise the receive interrupt.
    fn rx_trigger(&self) -> usize {
        if self.lcr_h & LCR_H_FEN == 0 {
            return 1;
        }
        let eighths = match (self.ifls >> IFLS_RX_SHIFT) & IFLS_RX_BITS {
            0 => 1,
            1 => 2,
            2 => 4,
            3 => 6,
            // 4 is 7/8; the reserved encodings act as the deepest level.
            _ => 7,
        };
        RX_FIFO_DEPTH * eighths / 8
    }

    fn raw_status(&self) -> u32 {
        // Transmit: always, the FIFO being always empty (see the module doc).
        let mut raw = int::TX;
        if self.rx.len >= self.rx_trigger() {
            raw |= int::RX;
        }
        if self.rx.len > 0 {
            raw |= int::RT;
        }
        raw & !self.rx_cleared
    }

    fn masked_status(&self) -> u32 {
        self.raw_status() & self.imsc
    }

    fn flags(&self) -> u32 {
        let mut flags = fr::TXFE | fr::CTS | fr::DSR | fr::DCD;
        if self.rx.len == 0 {
            flags |= fr::RXFE;
        }
        if self.rx.len == RX_FIFO_DEPTH {
            flags |= fr::RXFF;
        }
        flags
    }

    fn read_register(&mut self, offset: u64) -> Result<u64, MmioError> {
        let value = match offset {
            reg::DR => return Ok(self.read_data()),
            // No receive error is ever recorded.
            reg::RSR_ECR => 0,
            reg::FR => self.flags(),
            reg::ILPR => self.ilpr,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.raw_status(),
            reg::MIS => self.masked_status(),
            reg::DMACR => self.dmacr,
            reg::ICR => return Err(MmioError::Direction { offset }),
            reg::ID_FIRST..=reg::ID_LAST => {
                let index = ((offset - reg::ID_FIRST) / REGISTER_BYTES) as usize;
                ID_VALUES[index].into()
            }
            _ => return Err(MmioError::NoRegister { offset }),
        };
        Ok(value.into())
    }

    fn write_register(&mut self, offset: u64, value: u64) -> Result<(), MmioError> {
        let value32 = value as u32;
        match offset {
            reg::DR => self.transmit((value & DR_DATA_BITS) as u8),
            // ECR clears receive errors, of which there are none.
            reg::RSR_ECR => {}
            reg::ILPR => self.ilpr = value32 & ILPR_BITS,
            reg::IBRD => self.ibrd = value32 & IBRD_BITS,
            reg::FBRD => self.fbrd = value32 & FBRD_BITS,
            reg::LCR_H => self.lcr_h = value32 & LCR_H_BITS,
            reg::CR => self.cr = value32 & CR_BITS,
            reg::IFLS => self.ifls = value32 & IFLS_BITS,
            reg::IMSC => self.imsc = value32 & int::ALL,
            // Only the receive causes can be cleared: the transmit level is
            // raised again at once, and the other causes never arise.
            reg::ICR => self.rx_cleared |= value32 & (int::RX | int::RT),
            reg::DMACR => self.dmacr = value32 & DMACR_BITS,
            reg::FR | reg::RIS | reg::MIS | reg::ID_FIRST..=reg::ID_LAST => {
                return Err(MmioError::Direction { offset })
            }
            _ => return Err(MmioError::NoRegister { offset }),
        }
        Ok(())
    }
}

/// Registers are 32-bit words; 8- and 16-bit accesses reach their low
/// bits, as Linux (16-bit) and simple drivers (8-bit DR) use them. Wider
/// accesses, and narrow ones into the middle of a word, are refused.
fn check_access(offset: u64, size: Size) -> Result<(), MmioError> {
    if !matches!(size, 1 | 2 | 4) {
        return Err(MmioError::BadSize { offset, size });
    }
    if !offset.is_multiple_of(u64::from(size)) {
        return Err(MmioError::Unaligned { offset, size });
    }
    if !offset.is_multiple_of(REGISTER_BYTES) {
        return Err(MmioError::BadSize { offset, size });
    }
    Ok(())
}

/// The bits an access of `size` bytes carries.
fn size_mask(size: Size) -> u64 {
    u64::MAX >> (64 - 8 * u32::from(size))
}

impl MmioDevice for Pl011 {
    fn read(&mut self, _vcpu: usize, offset: u64, size: Size) -> Result<u64, MmioError> {
        check_access(offset, size)?;
        Ok(self.read_register(offset)? & size_mask(size))
    }

    fn write(
        &mut self,
        _vcpu: usize,
        offset: u64,
        size: Size,
        value: u64,
    ) -> Result<(), MmioError> {
        check_access(offset, size)?;
        self.write_register(offset, value & size_mask(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interrupt bits Linux clears at startup: the error causes and RX/RT.
    const ERRORS: u32 = 0xf << 7;
    const WLEN_8: u32 = 0b11 << 5;
    const UARTEN: u32 = 1;

    fn read(uart: &mut Pl011, offset: u64) -> u32 {
        // Linux's amba-pl011 uses 16-bit accesses for Arm's PL011.
        uart.read(0, offset, 2).unwrap() as u32
    }

    fn write(uart: &mut Pl011, offset: u64, value: u32) {
        uart.write(0, offset, 2, value.into()).unwrap();
    }

    fn output(uart: &mut Pl011) -> Vec<u8> {
        uart.take_output().collect()
    }

    /// What Linux does from earlycon to an open ttyAMA0.
    fn linux_bring_up() -> Pl011 {
        let mut uart = Pl011::new();
        // earlycon: poll FR, write DR, wait while BUSY.
        for &byte in b"early" {
            assert_eq!(read(&mut uart, reg::FR) & (1 << 5), 0, "TXFF");
            write(&mut uart, reg::DR, byte.into());
            assert_eq!(read(&mut uart, reg::FR) & (1 << 3), 0, "BUSY");
        }
        // Probe: the AMBA bus reads the IDs (32-bit) and matches 0x00041011.
        let ids: Vec<u32> =
            (0..8).map(|i| uart.read(0, reg::ID_FIRST + 4 * i, 4).unwrap() as u32).collect();
        let periph_id = ids[..4].iter().rev().fold(0, |acc, &b| (acc << 8) | b);
        assert_eq!(periph_id & 0x000f_ffff, 0x0004_1011);
        // startup
        write(&mut uart, reg::ICR, ERRORS | int::RT | int::RX);
        write(&mut uart, reg::IMSC, int::RT | int::RX);
        write(&mut uart, reg::IFLS, IFLS_RESET);
        write(&mut uart, reg::CR, UARTEN | CR_TXE | CR_RXE);
        write(&mut uart, reg::ICR, int::RT | int::RX);
        while read(&mut uart, reg::FR) & fr::RXFE == 0 {
            read(&mut uart, reg::DR);
        }
        write(&mut uart, reg::IMSC, int::RT | int::RX);
        // set_termios: 115200 8N1 from the 24 MHz clock, FIFOs on.
        write(&mut uart, reg::IBRD, 13);
        write(&mut uart, reg::FBRD, 1);
        write(&mut uart, reg::LCR_H, WLEN_8 | LCR_H_FEN);
        uart
    }

    #[test]
    fn resets_like_a_pl011() {
        let mut uart = Pl011::new();
        assert_eq!(read(&mut uart, reg::CR), CR_TXE | CR_RXE);
        assert_eq!(read(&mut uart, reg::IFLS), IFLS_RESET);
        assert_eq!(read(&mut uart, reg::IMSC), 0);
        assert_eq!(read(&mut uart, reg::FR), fr::TXFE | fr::RXFE | fr::CTS | fr::DSR | fr::DCD);
        assert!(!uart.interrupt_level());
    }

    #[test]
    fn linux_console_echoes_input() {
        let mut uart = linux_bring_up();
        assert_eq!(output(&mut uart), b"early");
        assert!(!uart.interrupt_level());

        for &byte in b"ls\r" {
            assert!(uart.push_input(byte));
        }
        // Three bytes are below the trigger (16): the timeout cause fires.
        assert!(uart.interrupt_level());
        assert_eq!(read(&mut uart, reg::MIS), int::RT);
        // The interrupt handler: read until RXFE, echoing what it reads.
        while read(&mut uart, reg::FR) & fr::RXFE == 0 {
            let byte = read(&mut uart, reg::DR);
            write(&mut uart, reg::DR, byte);
        }
        assert!(!uart.interrupt_level());
        assert_eq!(output(&mut uart), b"ls\r");
        assert_eq!(output(&mut uart), b"");
    }

    #[test]
    fn reading_dr_drains_the_fifo_and_lowers_the_line() {
        let mut uart = linux_bring_up();
        uart.push_input(b'a');
        uart.push_input(b'b');
        assert!(uart.interrupt_level());
        assert_eq!(read(&mut uart, reg::DR), u32::from(b'a'));
        assert!(uart.interrupt_level(), "one byte left");
        assert_eq!(read(&mut uart, reg::DR), u32::from(b'b'));
        assert!(!uart.interrupt_level());
        // Reading an empty FIFO gives 0 and changes nothing.
        assert_eq!(read(&mut uart, reg::DR), 0);
        assert_eq!(read(&mut uart, reg::RIS) & (int::RX | int::RT), 0);
    }

    #[test]
    fn rx_cause_follows_the_trigger_level() {
        let mut uart = linux_bring_up();
        // IFLS RX at 1/2: 16 bytes.
        for byte in 0..15 {
            uart.push_input(byte);
        }
        assert_eq!(read(&mut uart, reg::RIS) & int::RX, 0);
        uart.push_input(15);
        assert_eq!(read(&mut uart, reg::RIS) & int::RX, int::RX);
        // 1/8 is 4 bytes; reading one of 16 leaves 15, still above.
        write(&mut uart, reg::IFLS, 0);
        read(&mut uart, reg::DR);
        assert_eq!(read(&mut uart, reg::RIS) & int::RX, int::RX);
        // FIFOs off: every byte raises it.
        let mut uart = Pl011::new();
        write(&mut uart, reg::IMSC, int::RX);
        uart.push_input(b'x');
        assert_eq!(read(&mut uart, reg::MIS), int::RX);
    }

    #[test]
    fn icr_lowers_receive_causes_until_the_fifo_changes() {
        let mut uart = linux_bring_up();
        uart.push_input(b'a');
        assert!(uart.interrupt_level());
        write(&mut uart, reg::ICR, int::RT | int::RX);
        assert!(!uart.interrupt_level());
        assert_eq!(read(&mut uart, reg::FR) & fr::RXFE, 0, "the byte is still there");
        // A new byte raises it again...
        uart.push_input(b'b');
        assert!(uart.interrupt_level());
        // ...and so does reading one while another is left.
        write(&mut uart, reg::ICR, int::ALL);
        assert!(!uart.interrupt_level());
        read(&mut uart, reg::DR);
        assert!(uart.interrupt_level());
    }

    #[test]
    fn imsc_masks_but_ris_still_shows() {
        let mut uart = linux_bring_up();
        uart.push_input(b'a');
        write(&mut uart, reg::IMSC, 0);
        assert!(!uart.interrupt_level());
        assert_eq!(read(&mut uart, reg::RIS), int::TX | int::RT);
        assert_eq!(read(&mut uart, reg::MIS), 0);
    }

    #[test]
    fn tx_cause_is_always_raised_so_txim_never_stalls() {
        let mut uart = linux_bring_up();
        assert_eq!(read(&mut uart, reg::RIS) & int::TX, int::TX);
        // The driver unmasks TXIM when it has characters queued...
        write(&mut uart, reg::IMSC, int::RT | int::RX | int::TX);
        assert!(uart.interrupt_level());
        assert_eq!(read(&mut uart, reg::MIS), int::TX);
        // ...the handler writes them; clearing TX does not lower it...
        for &byte in b"queued" {
            write(&mut uart, reg::DR, byte.into());
        }
        write(&mut uart, reg::ICR, int::TX);
        assert!(uart.interrupt_level());
        // ...and it masks TXIM when its queue is empty.
        write(&mut uart, reg::IMSC, int::RT | int::RX);
        assert!(!uart.interrupt_level());
        assert_eq!(output(&mut uart), b"earlyqueued");
    }

    #[test]
    fn a_full_fifo_refuses_input() {
        let mut uart = linux_bring_up();
        let queued: Vec<u8> = (1..=RX_FIFO_DEPTH as u8).collect();
        for &byte in &queued {
            assert!(uart.push_input(byte));
        }
        assert!(!uart.push_input(0xaa));
        let flags = read(&mut uart, reg::FR);
        assert_eq!(flags & (fr::RXFF | fr::RXFE), fr::RXFF);
        assert_eq!(read(&mut uart, reg::DR), 1);
        assert!(uart.push_input(0xaa), "room again after one read");
        let rest: Vec<u8> = (0..RX_FIFO_DEPTH).map(|_| read(&mut uart, reg::DR) as u8).collect();
        assert_eq!(rest[..RX_FIFO_DEPTH - 1], queued[1..]);
        assert_eq!(rest[RX_FIFO_DEPTH - 1], 0xaa);
        assert_eq!(read(&mut uart, reg::FR) & fr::RXFE, fr::RXFE);
        assert_eq!(read(&mut uart, reg::RSR_ECR), 0, "no overrun recorded");
    }

    #[test]
    fn undrained_output_is_counted_not_blocking() {
        let mut uart = Pl011::new();
        for i in 0..OUTPUT_CAPACITY + 3 {
            uart.write(0, reg::DR, 1, i as u64).unwrap();
            assert_eq!(read(&mut uart, reg::FR) & fr::TXFE, fr::TXFE);
        }
        assert_eq!(uart.output_dropped(), 3);
        assert_eq!(uart.take_output().count(), OUTPUT_CAPACITY);
        // The ring wraps cleanly once drained.
        uart.write(0, reg::DR, 4, 0x141).unwrap();
        assert_eq!(output(&mut uart), b"A");
    }

    #[test]
    fn loopback_sends_output_back_in() {
        let mut uart = Pl011::new();
        write(&mut uart, reg::CR, UARTEN | CR_TXE | CR_RXE | CR_LBE);
        write(&mut uart, reg::DR, u32::from(b'z'));
        assert_eq!(output(&mut uart), b"");
        assert_eq!(read(&mut uart, reg::DR), u32::from(b'z'));
    }

    #[test]
    fn id_registers_are_a_pl011_r1p5() {
        let mut uart = Pl011::new();
        for (i, &id) in ID_VALUES.iter().enumerate() {
            let offset = reg::ID_FIRST + 4 * i as u64;
            for size in [1, 2, 4] {
                assert_eq!(uart.read(0, offset, size), Ok(id.into()));
            }
        }
        assert_eq!(ID_VALUES, [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    }

    #[test]
    fn plain_registers_keep_their_bits() {
        let mut uart = Pl011::new();
        let cases = [
            (reg::ILPR, ILPR_BITS),
            (reg::IBRD, IBRD_BITS),
            (reg::FBRD, FBRD_BITS),
            (reg::LCR_H, LCR_H_BITS),
            (reg::CR, CR_BITS),
            (reg::IFLS, IFLS_BITS),
            (reg::IMSC, int::ALL),
            (reg::DMACR, DMACR_BITS),
        ];
        for (offset, bits) in cases {
            uart.write(0, offset, 4, u64::MAX).unwrap();
            assert_eq!(uart.read(0, offset, 4), Ok(bits.into()), "{offset:#x}");
        }
        // A narrow write fills the register's low bits and clears the rest.
        uart.write(0, reg::CR, 1, 0x1ff).unwrap();
        assert_eq!(uart.read(0, reg::CR, 4), Ok(0xff));
        // A narrow read sees the low bits.
        assert_eq!(uart.read(0, reg::IBRD, 1), Ok(0xff));
    }

    #[test]
    fn refuses_bad_sizes_and_alignment() {
        let mut uart = Pl011::new();
        for size in [0, 3, 8, 16] {
            assert_eq!(uart.read(0, reg::DR, size), Err(MmioError::BadSize { offset: 0, size }));
            assert_eq!(
                uart.write(0, reg::DR, size, 0),
                Err(MmioError::BadSize { offset: 0, size })
            );
        }
        assert_eq!(
            uart.read(0, reg::FR + 2, 4),
            Err(MmioError::Unaligned { offset: 0x1a, size: 4 })
        );
        assert_eq!(
            uart.read(0, reg::FR + 1, 2),
            Err(MmioError::Unaligned { offset: 0x19, size: 2 })
        );
        // Aligned, but inside a register rather than at its start.
        assert_eq!(uart.read(0, reg::FR + 2, 2), Err(MmioError::BadSize { offset: 0x1a, size: 2 }));
        assert_eq!(
            uart.write(0, reg::DR + 1, 1, 0),
            Err(MmioError::BadSize { offset: 1, size: 1 })
        );
        assert_eq!(uart.take_output().count(), 0);
    }

    #[test]
    fn refuses_wrong_directions_and_holes() {
        let mut uart = Pl011::new();
        for offset in [reg::FR, reg::RIS, reg::MIS, reg::ID_FIRST, reg::ID_LAST] {
            assert_eq!(uart.write(0, offset, 4, 0), Err(MmioError::Direction { offset }));
        }
        assert_eq!(uart.read(0, reg::ICR, 4), Err(MmioError::Direction { offset: reg::ICR }));
        for offset in [0x008, 0x01c, 0x04c, 0x080, 0xfdc, 0x1000, u64::MAX - 3] {
            assert_eq!(uart.read(0, offset, 4), Err(MmioError::NoRegister { offset }));
            assert_eq!(uart.write(0, offset, 4, 0), Err(MmioError::NoRegister { offset }));
        }
        // Registers were left alone.
        assert_eq!(uart.read(0, reg::CR, 4), Ok((CR_TXE | CR_RXE).into()));
    }
}
