//! `probe.mode=listen`: reads its own console for `linger` seconds. Nobody
//! types for this guest, so every byte that arrives was typed for another
//! VM; the test types for the VM that has the console, and expects this
//! one to receive nothing.

use crate::{console, smccc, timer};

/// How often the listener looks at its UART.
const POLLS_PER_SECOND: u64 = 100;
/// Received bytes kept to show in the report.
const SHOWN: usize = 64;

pub fn run(linger: u64) -> ! {
    say!("probe: listening to its console for {linger} s");
    let deadline = timer::now() + timer::seconds(linger);
    let mut shown = [0u8; SHOWN];
    let mut received = 0usize;
    while timer::now() < deadline {
        while let Some(byte) = console::read_byte() {
            if let Some(slot) = shown.get_mut(received) {
                *slot = byte;
            }
            received += 1;
        }
        timer::sleep(timer::frequency() / POLLS_PER_SECOND);
    }
    if received == 0 {
        say!("probe: listen: received nothing in {linger} s");
    } else {
        let text = &shown[..received.min(SHOWN)];
        say!(
            "probe: listen: received {received} bytes of console input: {:?}",
            core::str::from_utf8(text).unwrap_or("(not UTF-8)")
        );
    }
    smccc::power_off()
}
