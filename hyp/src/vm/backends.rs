//! What backs each VM's disk, NIC and display on this boot: its partition
//! of the physical disk, its port on Duet's switch, and where its virtual
//! display goes (`vm::virtio` adds the entropy source). Built
//! once, when the VMs are ([`start`]); a VM whose disk cannot be had (no
//! physical disk, a bad partition table, no partition of its name, one too
//! small) gets no disk, with a line saying why, and the others go on.

use crate::disk::gpt::{self, GptError, Partition};
use crate::disk::PartitionStore;
use crate::drivers::{virtio_blk, virtio_net};
use crate::net::{mac_for, Network, Switch, NETWORK};
use crate::personas::{Net, PersonaPackage, VmSpec};
use crate::println;
use crate::vdev::virtio::backend::{BlockStore, DisplaySink, NetPort};
use alloc::boxed::Box;
use alloc::vec::Vec;
use spin::Once;

/// The physical disk's partitions, or why there are none.
static PARTITIONS: Once<Result<Vec<Partition>, GptError>> = Once::new();

/// Reads the partition table (if a VM wants a disk) and builds the switch.
pub fn start(package: &PersonaPackage) {
    super::screen::start(package);
    let vms = package.vms();
    if vms.iter().any(|vm| vm.disk_mib.is_some()) {
        match virtio_blk::DISK.get() {
            None => println!("duet: disk: the board has no disk Duet drives; no VM gets a disk"),
            Some(disk) => {
                let table = gpt::read(&mut *disk.lock());
                match &table {
                    Ok(found) => println!("duet: disk: GPT with {} partitions", found.len()),
                    Err(e) => println!("duet: disk: {e}; no VM gets a disk"),
                }
                PARTITIONS.call_once(|| table);
            }
        }
    }
    let mut switch = Switch::new(package.vms_may_talk());
    for (index, vm) in vms.iter().enumerate() {
        if let Some(net) = vm.net {
            switch.add_port(index, mac_for(vm.name), net == Net::Uplink);
        }
    }
    let uplink = virtio_net::take();
    if vms.iter().any(|vm| vm.net == Some(Net::Uplink)) && uplink.is_none() {
        println!("duet: net: no physical NIC: the uplink reaches nothing");
    }
    NETWORK.call_once(|| Network::new(switch, uplink));
}

/// VM `spec`'s disk: the partition named like it, if it asked for one and
/// the partition is there and large enough.
pub fn disk_for(spec: &VmSpec) -> Option<Box<dyn BlockStore>> {
    let mib = spec.disk_mib?;
    let partitions = PARTITIONS.get()?.as_ref().ok()?;
    let Some(partition) = partitions.iter().find(|p| p.name == spec.name) else {
        println!("duet: vm {}: no partition called {:?}: no disk", spec.name, spec.name);
        return None;
    };
    let wanted = u64::from(mib) << 11;
    if partition.sectors < wanted {
        println!(
            "duet: vm {}: partition {:?} has {} sectors, fewer than disk_mib = {mib}: no disk",
            spec.name, partition.name, partition.sectors
        );
        return None;
    }
    let disk = virtio_blk::DISK.get()?.clone();
    println!(
        "duet: vm {}: disk is partition {:?}, {} MiB at sector {}",
        spec.name,
        partition.name,
        partition.sectors >> 11,
        partition.first
    );
    Some(Box::new(PartitionStore::new(disk, partition)))
}

/// VM `spec`'s port on the switch, if it has a NIC.
pub fn net_for(spec: &VmSpec) -> Option<Box<dyn NetPort>> {
    spec.net?;
    let network = NETWORK.get()?;
    let port = network.port_with_mac(mac_for(spec.name))?;
    Some(Box::new(port))
}

/// The size (width, height) of every VM's virtual display: the screen
/// less Duet's strip (720x1232 on a board without a screen).
pub fn display_size() -> (u32, u32) {
    super::screen::display_size()
}

/// Where VM `vm_index`'s virtual display goes: the compositor, which
/// shows it while the VM is in front.
pub fn display_for(vm_index: usize) -> Box<dyn DisplaySink> {
    super::screen::sink(vm_index)
}
