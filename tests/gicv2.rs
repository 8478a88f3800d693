//! Duet on GICv2 hosts (QEMU `virt` with `gic-version=2`; the Raspberry
//! Pi 4's GIC-400 in `rpi4.rs`): the Debian kernel boots as a guest with 2
//! vCPUs on the virtual GICv2, takes its timer interrupts on both, gets a
//! DHCP lease over the uplink, answers on its console and powers off; the
//! mail guest gets its lease and is woken by its NIC's interrupt through
//! the virtual GICv2; and a GICv2 without its virtualization interface
//! stops Duet with a message saying so, not a hang.

use duet_tests::qmp::socket_path;
use duet_tests::{manifest, status, Machine, BOOT_TIMEOUT};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(240);
const COMMAND: Duration = Duration::from_secs(30);
const PROMPT: &str = "/ # ";

/// On 2 CPUs, so that the three vCPUs of the two VMs take turns and the
/// guests' GICV state (GICH_VMCR, GICH_APR) moves with them.
#[test]
fn debian_linux_boots_with_two_vcpus_on_a_virtual_gicv2() {
    let mut run = Machine::xtask(&["run", "--board", "virt-gicv2", "--smp", "2"]);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run.require(&[
        "  gic     GICv2, distributor 0x8000000, cpu interface 0x8010000, virtualization yes",
        "all 2 cpus online at EL2",
        "duet: vm personal (Personal): 2 vcpus, 256 MiB",
        "[personal] duet-guest: cpus online: 2",
    ]);
    // The guest drives a GICv2 (Linux names it GIC-0) and both vCPUs take
    // timer interrupts through it.
    let output = run.shell("grep arch_timer /proc/interrupts", PROMPT, COMMAND);
    let counts = timer_counts(&output);
    if !output.contains("GIC-0") || counts.len() != 2 || counts.contains(&0) {
        run.fail(&format!("timer interrupts per CPU: {counts:?} in {output:?}"));
    }
    // IPIs go through the emulated GICD_SGIR: a task on the other CPU.
    let answer = run.shell("taskset 2 echo duet-$((6 * 7))", PROMPT, COMMAND);
    if !answer.contains("duet-42") {
        run.fail(&format!("`taskset 2 echo` printed {answer:?}"));
    }
    // Frames from the uplink reach the guest: Duet takes the physical NIC's
    // SPI and the guest its virtual one. A lease needs QEMU's offer and ack.
    run.shell("echo '#!/bin/sh' > /tmp/d && chmod +x /tmp/d", PROMPT, COMMAND);
    run.shell("ifconfig eth0 up", PROMPT, COMMAND);
    let lease = run.shell("udhcpc -i eth0 -n -q -t 10 -s /tmp/d 2>&1", PROMPT, COMMAND * 2);
    if !lease.contains("lease of 10.0.2.") {
        run.fail(&format!("no DHCP lease from QEMU: {lease:?}"));
    }
    run.power_off_personal_then_corporate(COMMAND * 2);
}

/// How long the host's server waits before it answers the mail guest: far
/// longer than any smoltcp timer the guest has pending once its line is
/// acknowledged, far shorter than its 30 s read deadline.
const REPLY_DELAY: Duration = Duration::from_secs(5);

/// The mail guest alone, with a NIC on the uplink: it gets its address by
/// DHCP, connects to a server on the host's loopback, sends a line and
/// waits in WFI for the answer. The server answers late, so the guest sees
/// it only if its NIC's interrupt wakes it (through Duet's physical GICv2
/// and the guest's virtual one); otherwise its read times out.
#[test]
fn the_mail_guest_gets_a_lease_and_an_answer_through_the_virtual_gicv2() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    let received = serve_one_line_late(listener);
    let path = mail_manifest("gicv2-mail", &format!("mail.hello=10.0.2.2:{port}"), true);
    let mut run =
        Machine::xtask(&["run", "--board", "virt-gicv2", "--manifest", &path, "--new-disk"]);
    let exit = run.wait(Duration::from_secs(120));
    run.require(&[
        "  gic     GICv2, distributor 0x8000000, cpu interface 0x8010000, virtualization yes",
        "[corporate] mail: virtio nic at 0xa000600, MAC 02:",
        "[corporate] mail: net: address 10.0.2.15/24 by DHCP, router 10.0.2.2",
        &format!("[corporate] mail: net: connected to 10.0.2.2:{port}, line sent"),
        "[corporate] mail: net: got \"host saw 26 bytes\"",
        "duet: vm corporate powered off",
        &format!("{} every VM has powered off", status::POWER_OFF),
    ]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
    match received.recv_timeout(Duration::from_secs(5)) {
        Ok(line) if line == "hello from the mail guest\n" => {}
        other => run.fail(&format!("the host's server received {other:?}")),
    }
}

/// The screen's keyboard reaches Duet on a GICv2: its interrupt (an SPI
/// Duet routes to itself, like the NIC's) comes, and a key unlocks the
/// lock screen into the mail guest, which then quits on a console key.
#[test]
fn a_key_on_the_keyboard_unlocks_the_screen_on_a_gicv2() {
    const STEP: Duration = Duration::from_secs(60);
    let socket = socket_path("gicv2-screen");
    let path = mail_manifest("gicv2-screen", "mail.ui", false);
    let mut run = Machine::xtask(&[
        "run",
        "--board",
        "virt-gicv2",
        "--screen",
        "--manifest",
        &path,
        "--new-disk",
        "--qmp",
        socket.to_str().expect("UTF-8 path"),
    ]);
    run.expect("duet: screen: locked", BOOT_TIMEOUT * 2);
    run.expect("[corporate] inbox: 0 messages", BOOT_TIMEOUT * 2);
    let mark = run.mark();
    if let Err(e) = run.qmp().press_key("1") {
        run.fail(&format!("QMP: {e}"));
    }
    run.expect_since(mark, "duet: screen: unlocked into vm corporate", STEP);
    run.send("q");
    let exit = run.wait(STEP);
    run.require(&[&format!("{} every VM has powered off", status::POWER_OFF)]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

/// A manifest with the mail guest alone (a 4 MiB disk; a NIC on the
/// uplink if `nic`), as `name.toml`; returns its path.
fn mail_manifest(name: &str, cmdline: &str, nic: bool) -> String {
    let image = match xtask::image::build_mail() {
        Ok(image) => image.binary,
        Err(e) => panic!("cannot build the mail guest: {e:#}"),
    };
    let text = format!(
        "[[vm]]\nname = \"corporate\"\nrole = \"corporate\"\nkernel = {image:?}\n\
         cmdline = {cmdline:?}\nmemory_mib = 24\nvcpus = 1\ndisk_mib = 4\n\
         nic = {nic}\nuplink = {nic}\n"
    );
    manifest(name, &text).to_str().expect("UTF-8 path").to_string()
}

/// Reads one connection's first line, waits [`REPLY_DELAY`], answers with
/// its length; sends what it got.
fn serve_one_line_late(listener: TcpListener) -> std::sync::mpsc::Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut line = String::new();
        if reader.read_line(&mut line).is_ok() {
            std::thread::sleep(REPLY_DELAY);
            let _ = stream.write_all(format!("host saw {} bytes\n", line.len()).as_bytes());
            let _ = sender.send(line);
        }
    });
    receiver
}

#[test]
fn a_gicv2_without_virtualization_interface_halts_clearly() {
    duet_tests::require_qemu();
    let dtb = gicv2_tree_without_virtualization();
    let manifest = duet_tests::probe_manifest();
    let manifest = manifest.to_str().expect("UTF-8 path");
    let dtb = dtb.to_str().expect("UTF-8 path");
    let mut run = Machine::xtask(&[
        "run",
        "--board",
        "virt-gicv2",
        "--manifest",
        manifest,
        "--",
        "-dtb",
        dtb,
    ]);
    let exit = run.wait(BOOT_TIMEOUT * 3);
    run.require(&[
        "  gic     GICv2, distributor 0x8000000, cpu interface 0x8010000, virtualization no",
        &format!("{} the GICv2 has no virtualization interface", status::HALTED),
    ]);
    run.forbid("duet: vm probe");
    if exit.success() {
        run.fail("`cargo xtask run` exited with success although no VM could run");
    }
}

/// QEMU's own device tree for the virt-gicv2 board, with the GIC node's
/// GICH and GICV `reg` entries taken out (turned into NOP tokens).
fn gicv2_tree_without_virtualization() -> PathBuf {
    let dir = xtask::target_dir().join("test-trees");
    std::fs::create_dir_all(&dir).expect("create target/test-trees");
    let path = dir.join("virt-gicv2-novirt.dtb");
    let board = duet_boards::by_name("virt-gicv2").expect("the board exists");
    let dump = dir.join("virt-gicv2.dtb");
    let status = Command::new(xtask::deps::QEMU)
        .arg("-machine")
        .arg(format!("{},dumpdtb={}", board.qemu.machine, dump.display()))
        .args(["-cpu", board.qemu.cpu, "-smp", &board.qemu.cpus.to_string()])
        .args(["-m", &format!("{}M", board.qemu.memory_mib), "-nographic"])
        .status()
        .expect("run QEMU to dump its device tree");
    assert!(status.success(), "QEMU could not dump its device tree");
    let mut tree = std::fs::read(&dump).expect("read the dumped tree");
    drop_virtualization_frames(&mut tree);
    std::fs::write(&path, &tree).expect("write the patched tree");
    path
}

/// Shortens the GIC's `reg` (four address/size pairs of two cells each:
/// GICD, GICC, GICH, GICV) to its first two pairs.
fn drop_virtualization_frames(tree: &mut [u8]) {
    let cells: Vec<u8> = [0x0800_0000u64, 0x1_0000, 0x0801_0000, 0x1_0000, 0x0803_0000]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let at = tree.windows(cells.len()).position(|w| w == cells).expect("the GIC's reg");
    let word = |tree: &[u8], i: usize| u32::from_be_bytes(tree[i..i + 4].try_into().unwrap());
    assert_eq!(word(tree, at - 12), 3, "FDT_PROP token before the value");
    assert_eq!(word(tree, at - 8), 64, "four pairs of 64-bit cells");
    tree[at - 8..at - 4].copy_from_slice(&32u32.to_be_bytes());
    for nop in tree[at + 32..at + 64].chunks_mut(4) {
        nop.copy_from_slice(&4u32.to_be_bytes()); // FDT_NOP
    }
}

/// The per-CPU counts of the line of /proc/interrupts that names arch_timer.
fn timer_counts(output: &str) -> Vec<u64> {
    let Some(line) = output.lines().find(|l| l.contains("arch_timer") && l.contains(':')) else {
        return Vec::new();
    };
    let after_colon = line.split_once(':').map(|(_, rest)| rest).unwrap_or("");
    after_colon.split_whitespace().map_while(|w| w.parse().ok()).collect()
}
