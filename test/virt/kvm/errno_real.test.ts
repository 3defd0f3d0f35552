/**
 * Differential errno test: one table of bad (and a few good) ioctls runs against the real
 * /dev/kvm, through tools/kvm-errno-probe (built here with the system gcc), and against tskvm's
 * byte-level ioctl(request, arg) path with the argument structs in the process's own memory.
 * Every line must give the same result: the same errno for the same bad argument.
 * Skips cleanly where there is no usable /dev/kvm or no gcc.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHost } from "../../../src/host/process.js";
import { openKvm } from "../../../src/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../src/uapi/mman.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
import type { Kvm, KvmVcpu } from "../../../src/virt/kvm/kvm_main.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const probeDir = join(root, "tools/kvm-errno-probe");
const probe = join(probeDir, "build/probe");

/** Each case: [why (the rule in api.rst / kvm_main.c / x86.c), probe line]. */
const SET_MEM = "4020AE46";
const CASES: [string, string][] = [
  ["KVM_GET_API_VERSION: nonzero arg is EINVAL", "sys AE00 int 1"],
  ["KVM_CHECK_EXTENSION: an unknown cap is 0", "sys AE03 int 270f"],
  ["KVM_CREATE_VM: unknown machine type is EINVAL", "sys AE01 int 63"],
  ["unknown system ioctl: kvm_arch_dev_ioctl's default is EINVAL", "sys AEFF int 0"],
  ["unknown VM ioctl: kvm_arch_vm_ioctl's default is ENOTTY", "newvm AEFE int 0"],
  ["unknown vCPU ioctl: kvm_arch_vcpu_ioctl's default is EINVAL", "vcpu AEFD int 0"],
  ["KVM_CHECK_EXTENSION is not a vCPU ioctl on x86", "vcpu AE03 int 0"],
  ["KVM_RUN: nonzero arg is EINVAL", "vcpu AE80 int 1"],
  ["KVM_CREATE_VCPU: duplicate id is EEXIST", "vm AE41 int 0"],
  ["KVM_CREATE_VCPU: id >= KVM_MAX_VCPU_IDS is EINVAL", "vm AE41 int 1388"],
  ["KVM_SET_USER_MEMORY_REGION: bad user pointer is EFAULT", `vm ${SET_MEM} ptr 1`],
  ["memslot rule 1: v1 ioctl with a flag beyond LOG_DIRTY|READONLY", `vm ${SET_MEM} mem 0 4 0 1000 MAP+0`],
  ["memslot rule 2: slot >= KVM_USER_MEM_SLOTS", `vm ${SET_MEM} mem 7ffc 0 0 1000 MAP+0`],
  ["memslot rule 3: unknown flag", `vm ${SET_MEM} mem 0 80 0 1000 MAP+0`],
  ["memslot rule 4: size not page aligned", `vm ${SET_MEM} mem 0 0 0 1001 MAP+0`],
  ["memslot rule 5: gpa not page aligned", `vm ${SET_MEM} mem 0 0 800 1000 MAP+0`],
  ["memslot rule 6: userspace_addr not page aligned", `vm ${SET_MEM} mem 0 0 0 1000 MAP+10`],
  ["memslot rule 6: userspace_addr range not accessible", `vm ${SET_MEM} mem 0 0 0 1000 ffff800000000000`],
  ["memslot rule 8: address space id beyond the VM's", `vm ${SET_MEM} mem 20000 0 0 1000 MAP+0`],
  ["memslot rule 9: gpa + size wraps", `vm ${SET_MEM} mem 0 0 fffffffffffff000 2000 MAP+0`],
  ["memslot rule 11: deleting an absent slot", `vm ${SET_MEM} mem 5 0 0 0 MAP+0`],
  ["memslot: create slot 0", `vm ${SET_MEM} mem 0 0 0 100000 MAP+0`],
  ["memslot rule 15: same base and flags is a no-op", `vm ${SET_MEM} mem 0 0 0 100000 MAP+0`],
  ["memslot rule 14: resizing is EINVAL", `vm ${SET_MEM} mem 0 0 0 200000 MAP+0`],
  ["memslot rule 14: a new userspace_addr is EINVAL", `vm ${SET_MEM} mem 0 0 0 100000 MAP+200000`],
  ["memslot rule 14: toggling READONLY is EINVAL", `vm ${SET_MEM} mem 0 2 0 100000 MAP+0`],
  ["memslot rule 16: overlap with another slot is EEXIST", `vm ${SET_MEM} mem 1 0 80000 100000 MAP+400000`],
  ["memslot rule 15: flags-only change (LOG_DIRTY_PAGES)", `vm ${SET_MEM} mem 0 1 0 100000 MAP+0`],
  ["memslot rule 15: move to a new base", `vm ${SET_MEM} mem 0 1 200000 100000 MAP+0`],
  ["memslot: delete slot 0", `vm ${SET_MEM} mem 0 0 200000 0 MAP+0`],
  ["KVM_IRQ_LINE without an in-kernel irqchip is ENXIO", "vm 4008AE61 buf 0000000001000000"],
  ["KVM_INTERRUPT: irq >= 256 is EINVAL", "vcpu 4004AE86 buf 00010000"],
  ["KVM_CREATE_IRQCHIP", "newvm AE60 int 0"],
  ["KVM_CREATE_IRQCHIP twice is EEXIST", "vm AE60 int 0"],
  ["KVM_INTERRUPT with the in-kernel PIC is ENXIO", "vcpu 4004AE86 buf 20000000"],
  ["KVM_IRQ_LINE with the irqchip", "vm 4008AE61 buf 0400000001000000"],
];

function buildProbe(): string | null {
  if (!existsSync("/dev/kvm")) return "no /dev/kvm";
  const src = join(probeDir, "probe.c");
  if (existsSync(probe) && statSync(probe).mtimeMs > statSync(src).mtimeMs) return null;
  mkdirSync(dirname(probe), { recursive: true });
  const r = spawnSync("gcc", ["-O2", "-Wall", "-o", probe, src], { encoding: "utf8" });
  if (r.error) return `gcc not available (${r.error.message})`;
  if (r.status !== 0) return `probe did not build: ${r.stderr}`;
  return null;
}

/** Runs the table on tskvm the way the probe runs it on the real KVM. */
function runTskvm(lines: string[]): string[] {
  const proc = createHost({ memBytes: 64 << 20 }).createProcess("errno-probe");
  const kvm = openKvm(proc);
  const mm = proc.mm;
  const map = mm.mmap(0, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const scratch = mm.mmap(0, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  let vm: Kvm | null = null;
  let vcpu: KvmVcpu | null = null;
  const out: string[] = [];
  for (const line of lines) {
    const [level0, reqHex, kind, ...rest] = line.split(/\s+/);
    let level = level0;
    if (level === "newvm" || vm === null) {
      vm = kvm.createVm(0);
      vcpu = vm.createVcpu(0);
      if (level === "newvm") level = "vm";
    }
    const req = parseInt(reqHex, 16);
    let arg: number;
    if (kind === "int" || kind === "ptr") {
      arg = Number(BigInt("0x" + rest[0]));
    } else if (kind === "buf") {
      const hex = rest[0];
      const bytes = new Uint8Array(hex.length / 2);
      for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
      mm.copyToUser(scratch, new Uint8Array(0x1000));
      mm.copyToUser(scratch, bytes);
      arg = scratch;
    } else {
      const [slot, flags, gpa, size, ua] = rest;
      const b = new Uint8Array(32);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, parseInt(slot, 16), true);
      dv.setUint32(4, parseInt(flags, 16), true);
      dv.setBigUint64(8, BigInt("0x" + gpa), true);
      dv.setBigUint64(16, BigInt("0x" + size), true);
      dv.setBigUint64(24, ua.startsWith("MAP+") ? BigInt(map) + BigInt("0x" + ua.slice(4)) : BigInt("0x" + ua), true);
      mm.copyToUser(scratch, b);
      arg = scratch;
    }
    const target = level === "sys" ? kvm : level === "vm" ? vm! : vcpu!;
    try {
      const r = target.ioctl(req, arg);
      out.push(`ok ${r}`);
    } catch (e) {
      if (!(e instanceof KvmError)) throw e;
      out.push(`err ${e.code}`);
    }
  }
  return out;
}

const skip = buildProbe();
test("errno: the same bad ioctls give the same results on tskvm and on the real /dev/kvm", { skip: skip ?? false }, () => {
  const input = CASES.map(([, l]) => l).join("\n") + "\n";
  const r = spawnSync(probe, [], { input, encoding: "utf8" });
  assert.equal(r.status, 0, `probe failed: ${r.stdout}${r.stderr}`);
  const real = r.stdout.trim().split("\n");
  assert.equal(real.length, CASES.length);
  const ours = runTskvm(CASES.map(([, l]) => l));
  // Creating a VM/vCPU returns an fd number, which differs between processes by nature.
  const norm = (s: string, line: string): string => (/ (AE01|AE41|AE60) /.test(line) && s.startsWith("ok ") ? "ok" : s);
  const diffs = CASES.flatMap(([why, line], i) => {
    const a = norm(ours[i], line);
    const b = norm(real[i], line);
    return a === b ? [] : [`${why} [${line}]: tskvm ${a}, real KVM ${b}`];
  });
  assert.deepEqual(diffs, []);
});
