//! Duet's network: each VM with a NIC is a port on Duet's switch, whose
//! uplink is the physical virtio-net device (QEMU user networking, where
//! the host's loopback is 10.0.2.2). A guest gets an address by DHCP and
//! fetches a file over HTTP from a server this test runs on the host; two
//! VMs cannot reach each other unless the manifest lets them talk.

use duet_tests::{manifest, Machine};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);
const PROMPT: &str = "/ # ";
const NEXT_VM: &str = "\x1dn";

fn guests() -> PathBuf {
    let default = xtask::guest::default_manifest().expect("the default guest is available");
    default.parent().expect("guests/").parent().expect("root").join("target/guests")
}

/// A Linux VM table with a NIC; `uplink` says whether it reaches the host.
fn vm(name: &str, role: &str, uplink: bool) -> String {
    let guests = guests();
    format!(
        "[[vm]]\nname = \"{name}\"\nrole = \"{role}\"\nkernel = {:?}\ninitrd = {:?}\n\
         cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 192\nvcpus = 1\n\
         nic = true\nuplink = {uplink}\n\n",
        guests.join("Image"),
        guests.join("initramfs.cpio"),
    )
}

/// Serves `body` to every GET on `listener`, from a thread.
fn serve(listener: TcpListener, body: Vec<u8>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut line = String::new();
            // The request line and headers, up to the empty line.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let header = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
}

/// Configures eth0 by DHCP (busybox udhcpc, with a script that applies
/// the lease) and returns what udhcpc said. Commands stay short: the
/// guest's shell wraps long lines, and the harness waits for the echo.
fn dhcp(run: &mut Machine) -> String {
    for line in [
        "echo '#!/bin/sh' > /tmp/d",
        "echo '[ \"$1\" = bound ] || exit 0' >> /tmp/d",
        "echo 'ifconfig $interface $ip netmask $subnet' >> /tmp/d",
        "echo 'route add default gw $router' >> /tmp/d",
        "chmod +x /tmp/d",
        // The script leaves the interface as it is on "deconfig": up it first.
        "ifconfig eth0 up",
    ] {
        run.shell(line, PROMPT, COMMAND);
    }
    run.shell("udhcpc -i eth0 -n -q -t 10 -s /tmp/d 2>&1", PROMPT, COMMAND * 2)
}

#[test]
fn a_guest_fetches_a_file_from_the_host_over_the_uplink() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    let body: Vec<u8> =
        (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let expected = format!("{:x}", Sha256::digest(&body));
    serve(listener, body);

    let path = manifest("net-uplink", &vm("personal", "personal", true));
    let mut run = Machine::xtask(&["run", "--manifest", path.to_str().unwrap()]);
    run.expect("virtio  net at", LINUX_BOOT);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    let lease = dhcp(&mut run);
    if !lease.contains("10.0.2.") {
        run.fail(&format!("no DHCP lease from QEMU: {lease:?}"));
    }
    let output = run.shell(
        &format!("wget -q -O /tmp/f http://10.0.2.2:{port}/f && sha256sum /tmp/f"),
        PROMPT,
        COMMAND * 2,
    );
    if !output.contains(&expected) {
        run.fail(&format!("expected sha256 {expected}, the guest says {output:?}"));
    }
    run.send("poweroff -f\n");
    let exit = run.wait(COMMAND);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

/// Boots two VMs with NICs on a private link (static addresses), pings
/// from personal to corporate, and returns ping's output.
fn ping_between_personas(name: &str, vms_may_talk: bool) -> (Machine, String) {
    let text = format!(
        "[network]\nvms_may_talk = {vms_may_talk}\n\n{}{}",
        vm("personal", "personal", false),
        vm("corporate", "corporate", false)
    );
    let path = manifest(name, &text);
    let mut run = Machine::xtask(&["run", "--manifest", path.to_str().unwrap()]);
    for vm in ["personal", "corporate"] {
        run.expect(&format!("[{vm}] duet-guest: init ran"), LINUX_BOOT);
    }
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run.shell("ifconfig eth0 10.9.0.1 netmask 255.255.255.0 up", PROMPT, COMMAND);
    let mark = run.mark();
    run.send(NEXT_VM);
    run.expect_since(mark, "duet: console input now goes to vm corporate", COMMAND);
    run.expect_since(mark, &format!("[corporate] {PROMPT}"), COMMAND);
    run.shell("ifconfig eth0 10.9.0.2 netmask 255.255.255.0 up", PROMPT, COMMAND);
    let mark = run.mark();
    run.send(NEXT_VM);
    run.expect_since(mark, "duet: console input now goes to vm personal", COMMAND);
    let output = run.shell("ping -c 3 -W 2 10.9.0.2 2>&1", PROMPT, COMMAND);
    (run, output)
}

#[test]
fn isolated_personas_cannot_ping_each_other_and_allowed_ones_can() {
    let (mut run, output) = ping_between_personas("net-isolated", false);
    if !output.contains("0 packets received") {
        run.fail(&format!("isolated personas reached each other: {output:?}"));
    }
    // The switch itself refused them (ARP is broadcast and goes nowhere,
    // so the forbidden count may stay 0; nothing may be forwarded VM to VM).
    let mark = run.mark();
    run.send("\x1ds");
    let counters = run.expect_since(mark, "uplink send errors", COMMAND);
    if !counters.contains("duet: switch: 0 frames forwarded") {
        run.fail(&format!("the switch forwarded frames between isolated VMs: {counters:?}"));
    }
    run.power_off_personal_then_corporate(COMMAND);

    let (mut run, output) = ping_between_personas("net-talk", true);
    if !output.contains("3 packets received") {
        run.fail(&format!("personas allowed to talk could not: {output:?}"));
    }
    run.power_off_personal_then_corporate(COMMAND);
}
