/**
 * End to end: Debian's x86-64 kernel (6.1, PVH entry of the vmlinux inside the bzImage) boots
 * under `tskvm run` to a busybox shell on ttyS0; a few commands are checked and the guest
 * powers off through ACPI S5. The images come from scripts/linux/fetch.sh (apt-get, outside
 * git); without them the test is skipped with the reason. The boot takes minutes of host time,
 * so it is also opt-out: TSKVM_LINUX_BOOT=0 skips it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { findImages, LinuxSession } from "../../scripts/linux/session.js";

const images = findImages();
const skip =
  process.env.TSKVM_LINUX_BOOT === "0" ? "TSKVM_LINUX_BOOT=0"
  : typeof images === "string" ? images
  : false;

const BOOT_TIMEOUT_MS = 15 * 60_000;
const CMD_TIMEOUT_MS = 2 * 60_000;

test("Debian's Linux boots to a busybox shell, runs commands and powers off", { skip, timeout: BOOT_TIMEOUT_MS + 10 * CMD_TIMEOUT_MS }, async () => {
  if (typeof images === "string") return;
  const s = new LinuxSession({ vmm: "tskvm", kernel: images.vmlinux, initrd: images.initrd });
  try {
    await s.waitReady(BOOT_TIMEOUT_MS);

    const uname = await s.run("uname -a", CMD_TIMEOUT_MS);
    assert.match(uname, /^Linux \S+ 6\.\d+\.\d+-\d+-amd64 #1 SMP PREEMPT_DYNAMIC Debian .* x86_64 GNU\/Linux\n$/);

    const cpuinfo = await s.run("cat /proc/cpuinfo", CMD_TIMEOUT_MS);
    assert.match(cpuinfo, /^processor\s*: 0$/m);
    assert.match(cpuinfo, /^vendor_id\s*: GenuineIntel$/m);
    assert.match(cpuinfo, /^flags\s*:.* fpu .* sse2 .* hypervisor/m, "FPU/SSE2 and the hypervisor bit reach the guest");
    assert.match(cpuinfo, /^bogomips\s*: \d+\.\d+$/m);

    const kvm = await s.run("dmesg | grep -i kvm", CMD_TIMEOUT_MS);
    assert.match(kvm, /Hypervisor detected: KVM/);
    assert.match(kvm, /kvm-clock: Using msrs 4b564d01 and 4b564d00/);
    assert.match(kvm, /Booting paravirtualized kernel on KVM/);

    // busybox computes: shell arithmetic, awk over seq, sha256 of a known string.
    const sum = await s.run("echo $((6*7)) $(seq 1 100 | awk '{s+=$1} END {print s}')", CMD_TIMEOUT_MS);
    assert.equal(sum, "42 5050\n");
    const sha = await s.run("echo -n abc | sha256sum", CMD_TIMEOUT_MS);
    assert.equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n");

    s.send("poweroff -f\n");
    const end = await s.waitExit(CMD_TIMEOUT_MS);
    assert.equal(end.code, 0, "tskvm ends normally on the guest's ACPI power-off");
    assert.match(s.output, /reboot: Power down/);
  } finally {
    s.kill();
  }
});

test("Debian's Linux boots with two vCPUs: both CPUs come up (INIT/SIPI, IPIs) and the shell runs", { skip, timeout: BOOT_TIMEOUT_MS + 4 * CMD_TIMEOUT_MS }, async () => {
  if (typeof images === "string") return;
  const s = new LinuxSession({ vmm: "tskvm", kernel: images.vmlinux, initrd: images.initrd, smp: 2 });
  try {
    await s.waitReady(BOOT_TIMEOUT_MS);
    assert.equal(await s.run("grep -c ^processor /proc/cpuinfo", CMD_TIMEOUT_MS), "2\n");
    assert.match(await s.run("dmesg | grep -i 'smp: Brought up'", CMD_TIMEOUT_MS), /Brought up 1 node, 2 CPUs/);
    s.send("poweroff -f\n");
    assert.equal((await s.waitExit(CMD_TIMEOUT_MS)).code, 0);
  } finally {
    s.kill();
  }
});

