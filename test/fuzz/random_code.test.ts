/**
 * Fuzz: random bytes as guest code, in each CPU mode KVM_SET_SREGS can put a vCPU in, must
 *  - never make run() throw anything but KvmError(EINTR) (KVM_RUN's answer to a pending signal),
 *  - always stop at an exit reason KVM defines for x86 (IO, MMIO, HLT, DEBUG, SHUTDOWN,
 *    INTERNAL_ERROR, FAIL_ENTRY, INTR...), each handled here the way a VMM handles it,
 *  - never touch host memory outside the guest's memslots (a sentinel mapping next to the slot
 *    in the same process stays intact; EPT confines the guest to its slot).
 * Each case is reproducible from its seed; the time bound per case is a SIGALRM through the
 * task's itimer, so the number of instructions executed varies but not the property checked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHost } from "../../src/host/process.js";
import { openKvm } from "../../src/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../src/uapi/mman.js";
import * as K from "../../src/uapi/kvm.js";
import { EINTR } from "../../src/uapi/errno.js";
import { KvmError } from "../../src/virt/kvm/kvm_error.js";
import type { KvmSegment } from "../../src/uapi/kvm_structs.js";
import { blockJit } from "../../src/hw/x86/block_jit.js";

const SLOT_SIZE = 0x100000;
const CODE_GPA = 0x10000;
const CODE_LEN = 0x1000;
const SENTINEL = 0xa5;
const CASE_NS = 15e6;
const MAX_EXITS = 300;

type Mode = "real16" | "prot32" | "long64" | "long64-user";

/** xorshift32: small, seedable, reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

const seg = (selector: number, type: number, dpl: number, l: number, db: number): KvmSegment => ({
  base: 0n, limit: 0xffffffff, selector, type, present: 1, dpl, db, s: 1, l, g: 1, avl: 0, unusable: 0, padding: 0,
});

const le64 = (v: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
};

const DEFINED_EXITS = new Set([
  K.KVM_EXIT_IO, K.KVM_EXIT_MMIO, K.KVM_EXIT_HLT, K.KVM_EXIT_DEBUG, K.KVM_EXIT_SHUTDOWN,
  K.KVM_EXIT_INTERNAL_ERROR, K.KVM_EXIT_FAIL_ENTRY, K.KVM_EXIT_INTR, K.KVM_EXIT_SYSTEM_EVENT,
  K.KVM_EXIT_HYPERCALL, K.KVM_EXIT_X86_RDMSR, K.KVM_EXIT_X86_WRMSR,
]);

function fuzzCase(mode: Mode, seed: number, tally: Map<string, number>): void {
  const where = `${mode} seed 0x${seed.toString(16)}`;
  const proc = createHost({ memBytes: 64 << 20 }).createProcess("fuzz");
  const kvm = openKvm(proc, { sliceInsns: 20000 });
  const vm = kvm.createVm(0);
  const mm = proc.mm;
  // The slot, with a sentinel mapping on each side in the same address space.
  const below = mm.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const mem = mm.mmap(0, SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const above = mm.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const sentinel = new Uint8Array(0x10000).fill(SENTINEL);
  mm.copyToUser(below, sentinel);
  mm.copyToUser(above, sentinel);

  const next = rng(seed);
  const code = new Uint8Array(CODE_LEN);
  for (let i = 0; i < CODE_LEN; i++) code[i] = next() & 0xff;
  mm.copyToUser(mem + CODE_GPA, code);
  vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(SLOT_SIZE), userspace_addr: BigInt(mem) });

  const vcpu = vm.createVcpu(0);
  const run = vcpu.kvmRun;
  const s = vcpu.getSregs();
  if (mode === "real16") {
    // Every IVT vector -> 0000:0500, a HLT: a fault ends the case instead of vectoring into the
    // zeroed IVT at 0:0, whose bytes (add %al,(%bx,%si)) form an endless sled.
    const ivt = new Uint8Array(0x400);
    for (let v = 0; v < 256; v++) ivt[v * 4 + 1] = 0x05;
    mm.copyToUser(mem, ivt);
    mm.copyToUser(mem + 0x500, Uint8Array.of(0xf4));
    s.cs.base = 0n;
    s.cs.selector = 0;
  } else if (mode === "prot32") {
    Object.assign(s, { cs: seg(8, 0xb, 0, 0, 1), ds: seg(0x10, 3, 0, 0, 1), es: seg(0x10, 3, 0, 0, 1), ss: seg(0x10, 3, 0, 0, 1), cr0: 0x11n });
  } else {
    // Identity map of the first 1 GiB with 2 MiB pages (user-accessible for the CPL3 case).
    mm.copyToUser(mem + 0x2000, le64(0x3007));
    mm.copyToUser(mem + 0x3000, le64(0x4007));
    for (let i = 0; i < 512; i++) mm.copyToUser(mem + 0x4000 + i * 8, le64(i * 0x200000 + 0x87));
    const dpl = mode === "long64-user" ? 3 : 0;
    const code64 = seg(dpl ? 0x1b : 8, 0xb, dpl, 1, 0);
    const data = seg(dpl ? 0x23 : 0x10, 3, dpl, 0, 1);
    Object.assign(s, { cs: code64, ds: data, es: data, ss: data, fs: data, gs: data, cr3: 0x2000n, cr4: 0x20n, cr0: 0x80000011n, efer: 0x500n });
  }
  vcpu.setSregs(s);
  const regs = vcpu.getRegs();
  vcpu.setRegs({ ...regs, rip: BigInt(CODE_GPA), rsp: 0x8000n, rflags: 2n });

  proc.task.alarmAt(proc.host.clock.nowNs() + CASE_NS);
  for (let exits = 0; exits < MAX_EXITS; exits++) {
    try {
      vcpu.run();
    } catch (e) {
      if (e instanceof KvmError && e.errno === EINTR) {
        tally.set("EINTR", (tally.get("EINTR") ?? 0) + 1);
        break;
      }
      assert.fail(`${where}: run() threw ${e instanceof Error ? e.stack : String(e)}`);
    }
    const reason = run.exitReason;
    const name = K.KVM_EXIT_NAMES[reason] ?? `exit ${reason}`;
    tally.set(name, (tally.get(name) ?? 0) + 1);
    assert.ok(DEFINED_EXITS.has(reason), `${where}: undefined exit reason ${reason}`);
    if (reason === K.KVM_EXIT_IO && run.ioDirection === K.KVM_EXIT_IO_IN) {
      run.bytes.fill(0xff, run.ioDataOffset, run.ioDataOffset + run.ioSize * run.ioCount);
    } else if (reason === K.KVM_EXIT_MMIO && !run.mmioIsWrite) {
      run.mmioData.fill(0xff);
    } else if (reason !== K.KVM_EXIT_IO && reason !== K.KVM_EXIT_MMIO && reason !== K.KVM_EXIT_DEBUG) {
      break; // HLT, SHUTDOWN, INTERNAL_ERROR, ...: the guest has ended in a defined way
    }
  }
  proc.task.cancelAlarm();
  assert.deepEqual(mm.copyFromUser(below, 0x10000), sentinel, `${where}: memory below the slot was written`);
  assert.deepEqual(mm.copyFromUser(above, 0x10000), sentinel, `${where}: memory above the slot was written`);
}

/** 24 cases of `mode` from `seedBase`; at least one must end in something other than the time limit. */
function fuzzMode(mode: Mode, seedBase: number, t: { diagnostic(msg: string): void }): void {
  const tally = new Map<string, number>();
  for (let i = 0; i < 24; i++) fuzzCase(mode, seedBase + i * 0x9e37 + mode.length, tally);
  // A fuzzer whose cases all run out of time (EINTR) has exercised no ending at all; how many
  // time out depends on the machine's load, so only the existence of real endings is checked.
  const ended = [...tally].filter(([k]) => k !== "EINTR").reduce((n, [, v]) => n + v, 0);
  assert.ok(ended > 0, `every case timed out: ${[...tally.keys()].join(",")}`);
  t.diagnostic([...tally].map(([k, n]) => `${k}=${n}`).join(" "));
}

for (const mode of ["real16", "prot32", "long64", "long64-user"] as Mode[]) {
  test(`fuzz: random code in ${mode} ends in defined exits and stays inside its slot`, (t) => fuzzMode(mode, 0xf0220000, t));
}

// The same properties with every block start compiled on first entry (block_jit.ts): random
// code then runs through the generated-code paths (inline TLB probes, slow-path syncs, exits).
for (const mode of ["long64", "long64-user"] as Mode[]) {
  test(`fuzz: random code in ${mode} through the block compiler ends in defined exits and stays inside its slot`, (t) => {
    const saved = blockJit.hot;
    blockJit.hot = 1;
    try { fuzzMode(mode, 0xb10c0000, t); } finally { blockJit.hot = saved; }
  });
}
