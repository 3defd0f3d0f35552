/**
 * Differential harness, tskvm side: runTskvm() runs the same image and InitState as
 * runRealKvm() through tskvm's KVM API (openKvm from src/kvm.ts -> createVm ->
 * setUserMemoryRegion -> createVcpu -> setSregs/setRegs -> run) and records every exit in the
 * same ExitRecord shape, with the same stop rules as tools/kvm-runner.
 *
 * src/kvm.ts is imported lazily: until the x86 run path lands, tskvmUnavailable() says why and
 * the tskvm-side tests skip.
 */
import { createHost } from "../../src/host/process.js";
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../src/uapi/mman.js";
import { KVM_EXIT_DEBUG, KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTR, KVM_EXIT_IO, KVM_EXIT_IO_OUT, KVM_EXIT_MMIO, KVM_EXIT_NAMES, KVM_EXIT_SHUTDOWN } from "../../src/uapi/kvm.js";
import type { KvmSegment, KvmSregs } from "../../src/uapi/kvm_structs.js";
import { KvmRun } from "../../src/uapi/kvm_run.js";
import type { KvmCpuid2, KvmRegs } from "../../src/uapi/kvm_structs.js";
import type { HostProcess } from "../../src/host/process.js";
import { fnv1a, inPattern, initialState, REG_NAMES, SEG_NAMES, Unavailable } from "./harness.js";
import type { ExitRecord, InitState, Regs, RunResult, Segment } from "./harness.js";

export const TSKVM_NOT_READY = "tskvm x86 run path not available yet";

/** The slice of src/kvm.ts's KvmDev / Kvm / KvmVcpu this harness uses (typed structurally). */
interface TskvmVcpu {
  mmap(offset: number, length: number): Uint8Array;
  run(): number;
  getRegs(): KvmRegs;
  setRegs(r: KvmRegs): void;
  getSregs(): KvmSregs;
  setSregs(s: KvmSregs): void;
  setCpuid2(c: KvmCpuid2): void;
  setGuestDebug(d: { control: number; debugreg: bigint[] }): void;
}
interface TskvmModule {
  openKvm(proc?: HostProcess, opts?: { ept?: boolean }): {
    getVcpuMmapSize(): number;
    getSupportedCpuid(nent: number): KvmCpuid2;
    createVm(type?: number): {
      setUserMemoryRegion(r: { slot: number; flags: number; guest_phys_addr: bigint; memory_size: bigint; userspace_addr: bigint }): void;
      createVcpu(id: number): TskvmVcpu;
    };
  };
}

let mod: TskvmModule | null | undefined;
let why: string | undefined;

async function load(): Promise<TskvmModule | null> {
  if (mod !== undefined) return mod;
  try {
    const path = "../../src/kvm.js"; // a variable, so the typecheck does not need the file yet
    const m = (await import(path)) as Partial<TskvmModule>;
    if (typeof m.openKvm !== "function") {
      why = `${TSKVM_NOT_READY} (src/kvm.ts has no openKvm)`;
      return (mod = null);
    }
    return (mod = m as TskvmModule);
  } catch (e) {
    why = `${TSKVM_NOT_READY} (${(e as Error).message.split("\n")[0]})`;
    return (mod = null);
  }
}

/** Why tskvm cannot run guests yet, or undefined. */
export async function tskvmUnavailable(): Promise<string | undefined> {
  await load();
  return why;
}

function toKvmSeg(s: Segment): KvmSegment {
  return {
    base: s.base, limit: s.limit, selector: s.selector, type: s.type, present: s.present, dpl: s.dpl,
    db: s.db, s: s.s, l: s.l, g: s.g, avl: 0, unusable: s.present ? 0 : 1, padding: 0,
  };
}

export interface TskvmRunOptions {
  /**
   * After every exit, delete the memslot and create it again, so KVM drops every EPT mapping and
   * the next block takes an EPT violation on its first access to each page (code fetch, page
   * walk, load, store). An instruction that commits any state before an access that exits shows
   * up as a difference from the plain run.
   */
  zapEveryExit?: boolean;
  /** Run with kvm_intel.ept=0 (shadow paging) instead of EPT. */
  ept?: boolean;
}

/** Runs `image` on tskvm with the same initial state and stop rules as runRealKvm(). */
export async function runTskvm(image: Uint8Array, init: InitState, opts: TskvmRunOptions = {}): Promise<RunResult> {
  const m = await load();
  if (!m) throw new Unavailable(why!);
  const host = createHost({ memBytes: Math.max(64 << 20, init.mem * 2) });
  const proc = host.createProcess("tskvm-diff");
  const kvm = m.openKvm(proc, opts.ept === false ? { ept: false } : undefined);
  const mm = proc.mm;
  const vm = kvm.createVm(0);
  const hva = mm.mmap(0, init.mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  mm.copyToUser(hva + init.gpa, image);
  const slot = { slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(init.mem), userspace_addr: BigInt(hva) };
  vm.setUserMemoryRegion(slot);
  const vcpu = vm.createVcpu(0);
  // As kvm-runner does: the guest gets the CPUID KVM supports (long mode needs CPUID.LM).
  vcpu.setCpuid2(kvm.getSupportedCpuid(256));
  const run = new KvmRun(vcpu.mmap(0, kvm.getVcpuMmapSize()));

  const { regs, sregs } = initialState(init);
  const cur = vcpu.getSregs();
  const next: KvmSregs = { ...cur, gdt: { ...cur.gdt, ...sregs.gdt }, idt: { ...cur.idt, ...sregs.idt }, cr0: sregs.cr0, cr3: sregs.cr3, cr4: sregs.cr4, efer: sregs.efer };
  for (const n of SEG_NAMES) next[n] = toKvmSeg(sregs.segs[n]);
  vcpu.setSregs(next);
  vcpu.setRegs({ ...regs });
  const dbg = init.guestDebug;
  if (dbg) {
    const [d0, d1, d2, d3] = dbg.debugreg ?? [0, 0, 0, 0];
    vcpu.setGuestDebug({ control: dbg.control, debugreg: [d0, d1, d2, d3, 0, 0, 0, dbg.dr7 ?? 0].map(BigInt) });
  }

  const [hashBase, hashLen] = init.hash ?? [0, 0];
  const exits: ExitRecord[] = [];
  let serial = "";
  let stop = "max-exits";
  for (let n = 1; n <= (init.maxExits ?? 1000); n++) {
    vcpu.run();
    const reason = run.exitReason;
    const r = vcpu.getRegs();
    const s = vcpu.getSregs();
    const rec: ExitRecord = {
      n, exit: KVM_EXIT_NAMES[reason] ?? "OTHER", reason,
      regs: Object.fromEntries(REG_NAMES.map((k) => [k, r[k]])) as Regs,
      sregs: { cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4, efer: s.efer, cs: s.cs.selector, ss: s.ss.selector, ds: s.ds.selector, es: s.es.selector, fs: s.fs.selector, gs: s.gs.selector },
      mem: "",
    };
    let end = false;
    if (reason === KVM_EXIT_IO) {
      const data = run.ioData();
      const bytes = run.ioSize * run.ioCount;
      const out = run.ioDirection === KVM_EXIT_IO_OUT;
      if (!out) data.set(inPattern(bytes));
      else if (run.ioPort === 0x3f8) for (let i = 0; i < bytes; i++) serial += String.fromCharCode(data[i]!);
      rec.io = {
        dir: out ? "out" : "in", size: run.ioSize, port: run.ioPort, count: run.ioCount,
        data: Array.from(data.subarray(0, Math.min(bytes, 4096)), (b) => b.toString(16).padStart(2, "0")).join(""),
      };
      if (out && run.ioPort === (init.exitPort ?? 0xf4)) { end = true; stop = "exit-port"; }
    } else if (reason === KVM_EXIT_MMIO) {
      const len = run.mmioLen;
      const write = run.mmioIsWrite;
      const d = run.mmioData.subarray(0, Math.min(len, 8));
      rec.mmio = {
        addr: run.mmioPhysAddrBig, len, write,
        data: write ? Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("") : "",
      };
      if (!write) run.mmioData.fill(0);
      if (write && init.exitMmio !== undefined && run.mmioPhysAddrBig === BigInt(init.exitMmio)) { end = true; stop = "exit-mmio"; }
    } else if (reason === KVM_EXIT_INTERNAL_ERROR) {
      rec.internal = { suberror: run.internalSuberror, data: [] };
    } else if (reason === KVM_EXIT_DEBUG) {
      rec.debug = { exception: run.debugException, pc: run.debugPcBig, dr6: BigInt(run.debugDr6), dr7: BigInt(run.debugDr7) };
    }
    rec.mem = fnv1a(hashLen ? mm.copyFromUser(hva + hashBase, hashLen) : new Uint8Array(0));
    exits.push(rec);
    if (reason === KVM_EXIT_HLT) { stop = "hlt"; break; }
    if (reason === KVM_EXIT_SHUTDOWN) { stop = "shutdown"; break; }
    if (end) break;
    if (reason !== KVM_EXIT_IO && reason !== KVM_EXIT_MMIO && reason !== KVM_EXIT_INTR && !(reason === KVM_EXIT_DEBUG && dbg)) { stop = "unhandled"; break; }
    if (opts.zapEveryExit) {
      vm.setUserMemoryRegion({ ...slot, memory_size: 0n });
      vm.setUserMemoryRegion(slot);
    }
  }
  proc.exit();
  return { exits, stop, serial };
}
