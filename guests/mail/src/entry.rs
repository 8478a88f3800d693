//! The first instructions: an arm64 `Image` header (Duet loads the guest
//! like a Linux kernel), `.bss` cleared, the stack set, then Rust. `main`
//! sets up the heap and the MMU, reads the device tree Duet passed in x0,
//! and brings up the devices it lists.

use crate::{client, console, devices, disk, display, gic, heap, mmu, net, psci, screen, vectors};
use core::arch::global_asm;
use duet_mail::bootargs::{self, Fault};
use duet_mail::provision::Provision;
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::device::console::VirtIOConsole;
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::DeviceType;

global_asm!(
    r#"
.section .text.head, "ax"
.global _start
_start:
    b       1f
    .long   0
    .quad   0x200000            // text_offset: 2 MiB into RAM (see link.ld)
    .quad   __image_size
    .quad   2                   // little endian, 4 KiB pages
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0
    // x0 holds the device tree's address until `main` takes it.
1:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:  adrp    x1, __stack_top
    add     sp, x1, :lo12:__stack_top
    bl      {main}
    b       .
"#,
    main = sym main,
);

extern "C" fn main(device_tree: usize) -> ! {
    vectors::install();
    // SAFETY: masks IRQs (PSTATE.I): the guest takes no interrupt as an
    // exception (its vectors are for fatal faults only) and only ever
    // waits for interrupts with WFI (`gic.rs`).
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack)) };
    mmu::enable();
    heap::init();
    // SAFETY: Duet placed a device tree at `device_tree` in this guest's
    // RAM (mapped by the identity map); the crate reads its size from the
    // header and checks it, and nothing writes it while the guest runs.
    let tree = match unsafe { fdt::Fdt::from_ptr(device_tree as *const u8) } {
        Ok(tree) => tree,
        Err(e) => stop(format_args!("no device tree at {device_tree:#x}: {e:?}")),
    };
    let ram: u64 = tree.memory().regions().filter_map(|r| r.size).map(|s| s as u64).sum();
    let cmdline = tree.chosen().bootargs().unwrap_or("");
    let config = match bootargs::parse(cmdline) {
        Ok(config) => config,
        Err(e) => stop(format_args!("bad command line {cmdline:?}: {e}")),
    };
    if let Some(fault) = config.fault {
        commit(fault);
    }
    if let Some(cut) = config.power_cut {
        crate::send::set_power_cut(cut);
    }
    let mut nic = None;
    // Interrupts that wake the guest from WFI: the virtual timer, the
    // console UART (keys), the NIC and the keyboard.
    let uart = tree.find_compatible(&["arm,pl011"]).and_then(|n| devices::interrupt(&n));
    let mut wakers = alloc::vec![(gic::TIMER_INTID, false)];
    wakers.extend(uart);
    let mut salt = None;
    let mut rng = None;
    let mut store = None;
    let mut panel = display::Panel::default();
    for found in devices::find(&tree) {
        let address = found.address;
        match found.kind {
            DeviceType::Console => match VirtIOConsole::<devices::Hal, _>::new(found.transport) {
                Ok(virtio) => {
                    console::use_virtio(virtio);
                    say!("mail: virtio console at {address:#x}");
                }
                Err(e) => say!("mail: virtio console at {address:#x} failed: {e}"),
            },
            DeviceType::EntropySource => match VirtIORng::<devices::Hal, _>::new(found.transport) {
                Ok(mut device) => {
                    let mut bytes = [0; 4];
                    match device.request_entropy(&mut bytes) {
                        Ok(4) => {
                            salt = Some(u32::from_le_bytes(bytes));
                            say!("mail: virtio rng at {address:#x}");
                            rng = Some(device);
                        }
                        other => say!("mail: virtio rng at {address:#x} gave {other:?}"),
                    }
                }
                Err(e) => say!("mail: virtio rng at {address:#x} failed: {e}"),
            },
            DeviceType::Block => match VirtIOBlk::<devices::Hal, _>::new(found.transport) {
                // A new disk is formatted with a random salt (see the
                // store's log); without entropy it is left alone.
                Ok(blk) => match salt {
                    Some(salt) => store = disk::open(address, blk, salt),
                    None => say!("mail: no entropy for the store's salt; disk left alone"),
                },
                Err(e) => say!("mail: virtio disk at {address:#x} failed: {e}"),
            },
            DeviceType::Network => {
                match VirtIONet::<devices::Hal, _, { net::QUEUE }>::new(
                    found.transport,
                    net::BUFFER,
                ) {
                    Ok(net) => {
                        wakers.extend(found.interrupt);
                        let m = net.mac_address();
                        say!(
                            "mail: virtio nic at {address:#x}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                            m[0], m[1], m[2], m[3], m[4], m[5]
                        );
                        nic = Some(net);
                    }
                    Err(e) => say!("mail: virtio nic at {address:#x} failed: {e}"),
                }
            }
            DeviceType::GPU => match display::display(found.transport) {
                Ok(display) => {
                    let (width, height) = display.size();
                    say!("mail: virtio gpu at {address:#x}, display {width}x{height}");
                    panel.display = Some(display);
                }
                Err(e) => say!("mail: virtio gpu at {address:#x} failed: {e}"),
            },
            DeviceType::Input => match display::keyboard(found.transport) {
                Ok(Some(keyboard)) if panel.keyboard.is_none() => {
                    wakers.extend(found.interrupt);
                    say!("mail: virtio keyboard at {address:#x}");
                    panel.keyboard = Some(keyboard);
                }
                Ok(_) => say!("mail: virtio input at {address:#x}: not a keyboard, not used"),
                Err(e) => say!("mail: virtio input at {address:#x} failed: {e}"),
            },
            other => say!("mail: virtio {other:?} at {address:#x}: not used"),
        }
    }
    let provision = read_provision(&tree);
    say!(
        "mail: started; {} MiB of RAM, heap {} KiB of {} KiB in use",
        ram >> 20,
        heap::in_use() >> 10,
        heap::HEAP_SIZE >> 10
    );
    if gic::init(&tree, &wakers) {
        console::enable_key_interrupt();
    } else {
        say!("mail: no GIC found; waiting polls");
    }
    let seed = salt.unwrap_or(0);
    let mut net = nic.map(|nic| net::Net::new(nic, seed));
    // The long-running client: asked for, or what a provisioned guest with
    // a store does when the command line asks for no one-shot step.
    if config.run || !config.one_shot() {
        match (provision.as_ref(), store.as_mut(), rng.as_mut()) {
            (Some(provision), Some(store), Some(rng)) => {
                client::run(store, provision, rng, net, panel);
                stop(format_args!("interface closed"))
            }
            _ if config.run => say!("mail: the client needs provisioning, the store and entropy"),
            _ => {}
        }
    }
    let action = match (config.sync || config.send, config.tls_hello, store.as_mut()) {
        (true, _, Some(store)) if config.send => Some(net::TlsAction::Send(store)),
        (true, _, Some(store)) => Some(net::TlsAction::Sync(store)),
        (true, _, None) => {
            say!("mail: sync and send need the store");
            None
        }
        (false, true, _) => Some(net::TlsAction::Hello),
        (false, false, _) => None,
    };
    let tls_work = match (action, provision.as_ref(), rng.as_mut()) {
        (None, _, _) => None,
        (Some(action), Some(provision), Some(rng)) => Some(net::TlsWork { provision, rng, action }),
        (Some(_), _, _) => {
            say!("mail: tls: needs provisioning and the entropy device");
            None
        }
    };
    let address = net.as_mut().and_then(|net| net::run(net, config.hello, tls_work));
    if config.sync {
        if let Some(store) = store.as_mut() {
            screen::list(store);
        }
    }
    if config.ui {
        let network = address.unwrap_or_else(|| "no address".into());
        match store.as_mut() {
            Some(store) => {
                screen::run(store, &network, rng.as_mut(), panel);
                stop(format_args!("interface closed"))
            }
            None => say!("mail: no store, no interface"),
        }
    }
    stop(format_args!("nothing more to do yet"))
}

/// The provisioning file Duet loaded as this guest's initrd, checked.
fn read_provision(tree: &fdt::Fdt) -> Option<Provision> {
    let chosen = tree.find_node("/chosen")?;
    let start = chosen.property("linux,initrd-start").and_then(|p| p.as_usize());
    let end = chosen.property("linux,initrd-end").and_then(|p| p.as_usize());
    let (Some(start), Some(end)) = (start, end) else {
        say!("mail: not provisioned (no provisioning file); offline only");
        return None;
    };
    let ram = tree.memory().regions().next().map(|r| {
        let base = r.starting_address as usize;
        base..base + r.size.unwrap_or(0)
    })?;
    if start >= end || !ram.contains(&start) || end > ram.end {
        say!("mail: provisioning at {start:#x}..{end:#x} is not in RAM; offline only");
        return None;
    }
    // SAFETY: Duet loaded the provisioning file at start..end, inside this
    // guest's RAM (checked just above against the device tree's memory
    // node, all of which the identity map covers), and nothing writes it.
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, end - start) };
    match Provision::parse(bytes) {
        Ok(provision) => {
            say!("mail: provisioned: {provision:?}");
            Some(provision)
        }
        Err(e) => {
            say!("mail: bad provisioning: {e}; offline only");
            None
        }
    }
}

/// `mail.fault`: commits the fault (a test of `vectors.rs`); the vectors
/// report it and power off, so this never returns.
fn commit(fault: Fault) -> ! {
    say!("mail: committing the fault {fault:?} (mail.fault)");
    match fault {
        Fault::StackOverflow => {
            let depth = recurse(0);
            stop(format_args!("recursion returned at depth {depth}"))
        }
        Fault::Unmapped => {
            // SAFETY: not sound, deliberately: 4 GiB is past the identity
            // map (two GiB), so the load faults into the vectors, which
            // power off; it never returns a value.
            let value = unsafe { core::ptr::read_volatile(0x1_0000_0000 as *const u64) };
            stop(format_args!("an unmapped load returned {value:#x}"))
        }
    }
}

/// Recursion the compiler cannot cut short or turn into a loop: each
/// frame holds 256 bytes it hides behind `black_box` and uses after the
/// call, so it goes down the stack 256-odd bytes a call until the guard
/// page. (A frame under 4 KiB cannot step over the guard page.)
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 256];
    frame[0] = depth as u8;
    core::hint::black_box(&mut frame);
    if core::hint::black_box(depth) == u64::MAX {
        return depth;
    }
    recurse(depth + 1).wrapping_add(u64::from(core::hint::black_box(&frame)[0]))
}

/// Says why the guest stops, and powers off.
pub fn stop(why: core::fmt::Arguments) -> ! {
    say!("mail: {why}; powering off");
    psci::power_off()
}
