/**
 * x86_emulate_instruction() for MMIO (arch/x86/kvm/emulate.c + the emulator_read_write() half of
 * x86.c): the instruction whose data access hit a gfn without a memslot (or wrote a read-only
 * slot) is carried out by KVM.
 *
 * KVM decodes and executes it in its own emulator; here the emulator context is a second
 * instance of the CPU core (X86Cpu) loaded with the vCPU's state, so decoding, address
 * formation, ALU results and flags are the processor's own code (no second decoder). Its view of
 * guest-physical memory (EmulatorView.eptTranslate) resolves every data access through the
 * memslots: RAM is accessed in place; an MMIO fragment is backed by a bounce frame that is
 * filled from the read cache / an in-kernel device before a read and harvested after a write.
 * The context runs with data breakpoints "armed" (dbgData), so the core never caches a data
 * translation and each access reaches eptTranslate.
 *
 * As in KVM:
 * - a read no in-kernel device serves ends emulation with KVM_EXIT_MMIO (is_write 0); nothing is
 *   committed, and on the next KVM_RUN the instruction is executed again with the data from the
 *   per-vCPU read cache (ctxt->mem_read), so completed reads are never repeated;
 * - writes are queued as fragments (vcpu->mmio_fragments, at most 8 bytes each, split at page
 *   boundaries) after the instruction has been committed, one KVM_EXIT_MMIO per fragment;
 * - REP string instructions are emulated one iteration per emulation (RIP stays on the
 *   instruction while RCX != 0, so the next iteration exits again or runs on the processor);
 * - an instruction outside the set below ends in KVM_EXIT_INTERNAL_ERROR, suberror EMULATION,
 *   with its bytes; a fault raised by the instruction is injected into the guest.
 *
 * The set: MOV (88-8B, A0-A3, C6/C7 /0), MOVZX/MOVSX/MOVSXD, MOVS/STOS/LODS/CMPS/SCAS (with
 * REP/REPE/REPNE), the ALU ops with either operand in memory (ADD OR ADC SBB AND SUB XOR CMP,
 * 80-83, TEST), XCHG, CMPXCHG, XADD, BT/BTS/BTR/BTC, INC/DEC/NOT/NEG/MUL/DIV (F6/F7, FE/FF),
 * shifts and rotates (C0/C1/D0-D3), PUSH m (FF /6), POP m (8F /0), MOVNTI.
 */

import * as K from "../../../uapi/kvm.js";
import { KvmBus, KVM_PFN_NOSLOT, KVM_PFN_ERR_RO_FAULT } from "../../../virt/kvm/kvm_host.js";
import { X86Cpu } from "../../../hw/x86/cpu.js";
import { decode, HANDLERS } from "../../../hw/x86/decode.js";
import { FAULT, PF_VECTOR } from "../../../hw/x86/fault.js";
import { pdptTableAddr, readPdptes } from "../../../hw/x86/paging.js";
import type { VmxNonRoot } from "../../../hw/x86/vmx/hooks.js";
import { ExitResult } from "./kvm_x86_ops.js";
import { CompleteUserspaceIo, EFER_LMA, UD_VECTOR, kvmRegisterRead, kvmRegisterWrite, kvmRipRead, kvmRipWrite, type X86Vcpu } from "./kvm_host.js";
import {
  kvmPrepareEmulationFailureExit, kvmQueueException, kvmQueueExceptionE, kvmQueueExceptionP, kvmVcpuDoSinglestep,
  registerCompleteUserspaceIo,
} from "./x86.js";
import { fetchInsnBytes, isCsLong } from "./emulate.js";
import { vcpuLapic } from "./x86_irqchip.js";

/** Fragments one instruction may produce (reads or writes): MOVS/XCHG split over pages need 4. */
const MAX_FRAGS = 8;
/** MemAccess values (hw/x86/vmx/hooks.ts). */
const ACC_READ = 1;
const ACC_WRITE = 2;

// ----------------------------------------------------------------------------------------------
// Which instructions the emulator carries out, and the size of their memory operand
// ----------------------------------------------------------------------------------------------

const SZ_BYTE = 1;
const SZ_OSZ = 2;
const SZ_WORD = 3;
const SZ_MOVSXD = 4;
/** Opcode (map << 8 | byte) -> operand-size kind; 0 = not emulated. */
const OP_SIZE = new Uint8Array(0x200);
/** ModRM.reg values allowed (bit per value). */
const OP_REGS = new Uint8Array(0x200);
/** ModRM.reg values for which the memory operand is read, modified and written back (a write access is first a read). */
const OP_RMW = new Uint8Array(0x200);
/** String instructions (no ModRM): REP handling. */
const OP_STRING = new Uint8Array(0x200);

function defOp(op: number, size: number, regs = 0xff, rmw = 0): void {
  OP_SIZE[op] = size;
  OP_REGS[op] = regs;
  OP_RMW[op] = rmw;
}

for (let base = 0x00; base <= 0x38; base += 8) {
  const rmw = base === 0x38 ? 0 : 0xff; // CMP only reads
  defOp(base, SZ_BYTE, 0xff, rmw);
  defOp(base + 1, SZ_OSZ, 0xff, rmw);
  defOp(base + 2, SZ_BYTE);
  defOp(base + 3, SZ_OSZ);
}
defOp(0x80, SZ_BYTE, 0xff, 0x7f);
defOp(0x81, SZ_OSZ, 0xff, 0x7f);
defOp(0x83, SZ_OSZ, 0xff, 0x7f);
defOp(0x84, SZ_BYTE);
defOp(0x85, SZ_OSZ);
defOp(0x86, SZ_BYTE, 0xff, 0xff);
defOp(0x87, SZ_OSZ, 0xff, 0xff);
defOp(0x88, SZ_BYTE);
defOp(0x89, SZ_OSZ);
defOp(0x8a, SZ_BYTE);
defOp(0x8b, SZ_OSZ);
defOp(0x8f, SZ_OSZ, 0x01);
defOp(0xa0, SZ_BYTE);
defOp(0xa1, SZ_OSZ);
defOp(0xa2, SZ_BYTE);
defOp(0xa3, SZ_OSZ);
for (const op of [0xa4, 0xa6, 0xaa, 0xac, 0xae]) {
  defOp(op, SZ_BYTE);
  defOp(op + 1, SZ_OSZ);
  OP_STRING[op] = 1;
  OP_STRING[op + 1] = 1;
}
defOp(0xc0, SZ_BYTE, 0xff, 0xff);
defOp(0xc1, SZ_OSZ, 0xff, 0xff);
defOp(0xd0, SZ_BYTE, 0xff, 0xff);
defOp(0xd1, SZ_OSZ, 0xff, 0xff);
defOp(0xd2, SZ_BYTE, 0xff, 0xff);
defOp(0xd3, SZ_OSZ, 0xff, 0xff);
defOp(0xc6, SZ_BYTE, 0x01);
defOp(0xc7, SZ_OSZ, 0x01);
defOp(0xf6, SZ_BYTE, 0xff, 0x0c);
defOp(0xf7, SZ_OSZ, 0xff, 0x0c);
defOp(0xfe, SZ_BYTE, 0x03, 0x03);
defOp(0xff, SZ_OSZ, 0x43, 0x03);
defOp(0x63, SZ_MOVSXD);
defOp(0x1a3, SZ_OSZ);
defOp(0x1ab, SZ_OSZ, 0xff, 0xff);
defOp(0x1b3, SZ_OSZ, 0xff, 0xff);
defOp(0x1bb, SZ_OSZ, 0xff, 0xff);
defOp(0x1ba, SZ_OSZ, 0xf0, 0xe0);
defOp(0x1b0, SZ_BYTE, 0xff, 0xff);
defOp(0x1b1, SZ_OSZ, 0xff, 0xff);
defOp(0x1c0, SZ_BYTE, 0xff, 0xff);
defOp(0x1c1, SZ_OSZ, 0xff, 0xff);
defOp(0x1c3, SZ_OSZ);
defOp(0x1b6, SZ_BYTE);
defOp(0x1be, SZ_BYTE);
defOp(0x1b7, SZ_WORD);
defOp(0x1bf, SZ_WORD);

// ----------------------------------------------------------------------------------------------
// Per-vCPU state: the read cache and the write fragments (vcpu->mmio_* / mmio_fragments)
// ----------------------------------------------------------------------------------------------

/** The emulator's per-vCPU state (vcpu->arch.emulate_ctxt's read cache and vcpu->mmio_*). */
export class X86EmulateVcpuState {
  /** Completed MMIO reads of the instruction being emulated, in program order. */
  readonly rcGpa = new Float64Array(MAX_FRAGS);
  readonly rcLen = new Int32Array(MAX_FRAGS);
  readonly rcData = new Uint8Array(MAX_FRAGS * 8);
  rcCount = 0;
  /** Write fragments for userspace, in program order; wfCur is the one kvm_run describes. */
  readonly wfGpa = new Float64Array(MAX_FRAGS);
  readonly wfLen = new Int32Array(MAX_FRAGS);
  readonly wfData = new Uint8Array(MAX_FRAGS * 8);
  wfCount = 0;
  wfCur = 0;
  /** vcpu->mmio_is_write for the exit in flight; the read's address and length. */
  mmioIsWrite = false;
  readGpa = 0;
  readLen = 0;
  /** The completed instruction still owes a single-step trap (after its write exits). */
  singlestepAfterWrites = false;

  reset(): void {
    this.rcCount = 0;
    this.wfCount = 0;
    this.wfCur = 0;
    this.singlestepAfterWrites = false;
  }
}

function vcpuState(vcpu: X86Vcpu): X86EmulateVcpuState {
  let s = vcpu.arch.emulateCtxt as X86EmulateVcpuState | null;
  if (s === null) {
    s = new X86EmulateVcpuState();
    vcpu.arch.emulateCtxt = s;
  }
  return s;
}

// ----------------------------------------------------------------------------------------------
// The emulator context: a CPU core instance and its view of guest-physical memory
// ----------------------------------------------------------------------------------------------

/** Thrown inside the context: the instruction cannot be emulated (fetch from MMIO, walk through MMIO, too many fragments). */
export const EMUL_FAILED = Object.freeze({ emulFailed: true as const });
/** Thrown inside the context: a read needs userspace (X86EMUL_IO_NEEDED). */
const EMUL_IO_NEEDED = Object.freeze({ emulIoNeeded: true as const });

function notForEmulation(): never {
  throw EMUL_FAILED;
}

/** What the access being translated belongs to (set up per emulation). */
class AccessTracker {
  vcpu: X86Vcpu | null = null;
  st: X86EmulateVcpuState | null = null;
  bounceHpa = 0;
  /** Data accesses are being emulated (false while decoding). */
  executing = false;
  /** Size in bytes of the instruction's memory operand. */
  accessSize = 0;
  /** ModRM.reg makes a write access a read-modify-write. */
  rmw = false;
  /** A split access: its second part starts at contLa with contLen bytes. */
  contLa = NaN;
  contLen = 0;
  /** Fragments read so far by an RMW instruction (linear address, length): the write back is not a read. */
  readonly rdLa = new Float64Array(MAX_FRAGS);
  readonly rdLen = new Int32Array(MAX_FRAGS);
  rdCount = 0;
  /** Reads taken from the cache or served in the kernel during this execution. */
  rcPos = 0;
  /**
   * Write fragments of the current access (two when it crosses a page) whose bytes the core
   * stores after translating both parts: MMIO ones (in the bounce frame) and RAM ones (for the
   * write tracker). Harvested when the next access starts or the instruction ends.
   */
  readonly pendGpa = new Float64Array(2);
  readonly pendLen = new Int32Array(2);
  readonly pendRamHpa = new Float64Array(2);
  /** 1 = MMIO, 2 = RAM (tracked). */
  readonly pendKind = new Uint8Array(2);
  pendCount = 0;
}

/**
 * kvm_page_track_write(): called after the emulator stored `len` bytes (`data`) at guest-physical
 * `gpa` in RAM, so a shadow MMU can update or zap the shadow entries of a write-protected
 * guest page table. Set by the MMU; null when nothing tracks writes.
 */
export type EmulatorWriteTracker = (vcpu: X86Vcpu, gpa: number, data: Uint8Array) => void;
let writeTracker: EmulatorWriteTracker | null = null;

/** kvm_page_track_register_notifier() for emulated writes. */
export function kvmEmulatorSetWriteTracker(fn: EmulatorWriteTracker | null): void {
  writeTracker = fn;
}

const tracker = new AccessTracker();
const fragData = new Uint8Array(8);

/**
 * The emulator context's view of non-root operation: guest-physical addresses resolve through
 * the memslots; MMIO data accesses go through the bounce frame.
 */
class EmulatorView implements VmxNonRoot {
  readonly eptEnabled = true;
  readonly unrestrictedGuest = true;

  eptTranslate(gpa: number, access: number, la: number, _laValid: boolean, isWalk: boolean): number {
    const t = tracker;
    const vcpu = t.vcpu!;
    const kvm = vcpu.kvm;
    const gfn = Math.floor(gpa / 4096);
    const off = gpa - gfn * 4096;
    if (isWalk || !t.executing || (access !== ACC_READ && access !== ACC_WRITE)) {
      // Instruction fetch and paging-structure accesses: RAM only.
      const pfn = kvm.gfnToPfn(gfn, access === ACC_WRITE);
      if (pfn < 0) throw EMUL_FAILED;
      if (access === ACC_WRITE) kvm.markPageDirty(vcpu, gfn);
      return pfn * 4096 + off;
    }
    let len: number;
    if (t.contLen > 0 && la === t.contLa) {
      // The second page of the access being translated: its first part is not stored yet.
      len = t.contLen;
      t.contLen = 0;
    } else {
      harvestPendingWrites();
      const room = 4096 - (la & 4095);
      len = Math.min(t.accessSize, room);
      t.contLen = t.accessSize - len;
      t.contLa = la + len;
    }
    let isRead = access === ACC_READ;
    if (!isRead && t.rmw) {
      isRead = true;
      for (let i = 0; i < t.rdCount; i++) if (t.rdLa[i] === la && t.rdLen[i] === len) isRead = false;
      if (isRead) {
        if (t.rdCount === MAX_FRAGS) throw EMUL_FAILED;
        t.rdLa[t.rdCount] = la;
        t.rdLen[t.rdCount++] = len;
      }
    }
    if (isRead) {
      // A read of a read-only slot is a read of its memory (only the write is MMIO).
      const pfn = kvm.gfnToPfn(gfn, false);
      if (pfn >= 0) return pfn * 4096 + off;
      if (pfn !== KVM_PFN_NOSLOT) throw EMUL_FAILED;
      mmioRead(vcpu, gpa, len, off);
      return t.bounceHpa + off;
    }
    const pfn = kvm.gfnToPfn(gfn, true);
    if (pfn >= 0) {
      kvm.markPageDirty(vcpu, gfn);
      if (writeTracker !== null) pendWrite(gpa, len, 2, pfn * 4096 + off);
      return pfn * 4096 + off;
    }
    if (pfn !== KVM_PFN_NOSLOT && pfn !== KVM_PFN_ERR_RO_FAULT) throw EMUL_FAILED;
    pendWrite(gpa, len, 1, 0);
    return t.bounceHpa + off;
  }

  cpuid = notForEmulation; hlt = notForEmulation; invlpg = notForEmulation; invpcid = notForEmulation;
  rdpmc = notForEmulation; rdtsc = notForEmulation; tscOffsetLo = notForEmulation; tscOffsetHi = notForEmulation;
  rdmsr = notForEmulation; wrmsr = notForEmulation; mwait = notForEmulation; monitor = notForEmulation;
  pause = notForEmulation; wbinvd = notForEmulation; invd = notForEmulation; xsetbv = notForEmulation;
  rdrand = notForEmulation; rdseed = notForEmulation; vmxInstruction = notForEmulation;
  descriptorTable = notForEmulation; io = notForEmulation; movToCr = notForEmulation; movFromCr = notForEmulation;
  crReadShadow = notForEmulation; clts = notForEmulation; lmsw = notForEmulation; movDr = notForEmulation;
  exception = notForEmulation; tripleFault = notForEmulation; taskSwitch = notForEmulation;
  beginEventDelivery = notForEmulation; endEventDelivery = notForEmulation; instructionBoundary = notForEmulation;
}

export interface EmulatorCtxt {
  cpu: X86Cpu;
  view: EmulatorView;
}

const ctxts = new WeakMap<object, EmulatorCtxt>();
const segTmp = { base: 0, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };

/** The VM's emulator context and its bounce frame (allocated on first use, freed with the VM). */
function vmCtxt(vcpu: X86Vcpu): EmulatorCtxt {
  const kvm = vcpu.kvm;
  let c = ctxts.get(kvm);
  if (c === undefined) {
    c = { cpu: new X86Cpu(kvm.physmem), view: new EmulatorView() };
    ctxts.set(kvm, c);
    kvm.arch.emulatorCpu = c.cpu;
  }
  if (kvm.arch.emulatorBouncePfn < 0) {
    const alloc = kvm.arch.pageAlloc;
    if (alloc === null) throw new Error("x86 emulator: the VM has no page allocator for its MMIO bounce frame");
    kvm.arch.emulatorBouncePfn = alloc.allocPage();
    kvm.physmem.zeroFrame(kvm.arch.emulatorBouncePfn);
  }
  return c;
}

const dtTmp = { base: 0, limit: 0 };

/**
 * The PDPTE registers a PAE guest's emulation walks with: the table at the guest's CR3 as it is
 * now, which is what KVM's own guest walker reads (mmu/paging_tmpl.ts); not present if that table
 * is not in RAM. (Linux walks from the cached PDPTRs, kvm_pdptr_read, in both places.)
 */
function emulatorPdptes(vcpu: X86Vcpu, cpu: X86Cpu): void {
  const gpa = pdptTableAddr(cpu.state.cr3);
  const pfn = vcpu.kvm.gfnToPfn(Math.floor(gpa / 4096), false);
  if (pfn >= 0) readPdptes(cpu.physmem, pfn * 4096 + (gpa & 4095), cpu.state.pdpte);
  else cpu.state.pdpte.fill(0);
}

/**
 * init_emulate_ctxt(): load the guest's mode (CRs, EFER, segments, descriptor tables, GPRs, RIP,
 * RFLAGS) into the VM's emulator context. Its memory accesses go to guest RAM only until an
 * MMIO emulation marks them as executing.
 */
export function initEmulateCtxt(vcpu: X86Vcpu): EmulatorCtxt {
  const c = vmCtxt(vcpu);
  const a = vcpu.arch;
  const cpu = c.cpu;
  const st = cpu.state;
  a.ops.cacheReg(vcpu, 18);
  kvmRegisterRead(vcpu, 4);
  st.cr0 = a.cr0 | 0x20;
  st.cr3 = a.cr3;
  st.cr4 = a.cr4;
  st.efer = a.efer;
  for (let s = 0; s < 8; s++) {
    a.ops.getSegment(vcpu, segTmp, s);
    st.segSel[s] = segTmp.selector;
    st.segBase[s] = segTmp.base;
    st.segLimit[s] = segTmp.limit;
    st.segAr[s] = segTmp.unusable ? 1 << 16 : segTmp.type | segTmp.s << 4 | segTmp.dpl << 5 | segTmp.present << 7 | segTmp.avl << 12 | segTmp.l << 13 | segTmp.db << 14 | segTmp.g << 15;
  }
  a.ops.getGdt(vcpu, dtTmp);
  st.gdtrBase = dtTmp.base;
  st.gdtrLimit = dtTmp.limit;
  a.ops.getIdt(vcpu, dtTmp);
  st.idtrBase = dtTmp.base;
  st.idtrLimit = dtTmp.limit;
  st.rip = kvmRipRead(vcpu);
  st.gpr.set(a.regs);
  st.dr[7] = 0x400;
  st.interruptibility = 0;
  cpu.vmx = c.view;
  cpu.setRflags(a.ops.getRflags(vcpu));
  cpu.stateChanged();
  if (cpu.pgMode === 2) emulatorPdptes(vcpu, cpu);
  // Every data access must reach eptTranslate: no cached data translations (see mmu.ts xlateFill).
  cpu.dbgData = 1;
  cpu.tlbFlushAll();
  tracker.vcpu = vcpu;
  tracker.executing = false;
  return c;
}

// ----------------------------------------------------------------------------------------------
// MMIO reads and writes (vcpu_mmio_read / vcpu_mmio_write: the LAPIC, then the MMIO bus)
// ----------------------------------------------------------------------------------------------

function traceMmio(vcpu: X86Vcpu, type: number, len: number, gpa: number, data: Uint8Array | null): void {
  let val = 0n;
  if (data !== null) for (let i = len - 1; i >= 0; i--) val = (val << 8n) | BigInt(data[i]);
  vcpu.kvm.trace("kvm_mmio", { type, len, gpa, val }, vcpu);
}

function vcpuMmioRead(vcpu: X86Vcpu, gpa: number, len: number, data: Uint8Array): boolean {
  const lapic = vcpuLapic(vcpu);
  return (lapic !== null && lapic.read(vcpu, gpa, len, data)) || vcpu.kvm.ioBusRead(vcpu, KvmBus.MMIO, gpa, len, data);
}

function vcpuMmioWrite(vcpu: X86Vcpu, gpa: number, len: number, data: Uint8Array): boolean {
  const lapic = vcpuLapic(vcpu);
  return (lapic !== null && lapic.write(vcpu, gpa, len, data)) || vcpu.kvm.ioBusWrite(vcpu, KvmBus.MMIO, gpa, len, data);
}

/** An MMIO read fragment: from the read cache, else an in-kernel device (then cached), else userspace. */
function mmioRead(vcpu: X86Vcpu, gpa: number, len: number, off: number): void {
  const t = tracker;
  const st = t.st!;
  const bounce = vcpu.kvm.physmem.frame(vcpu.kvm.arch.emulatorBouncePfn);
  if (t.rcPos < st.rcCount) {
    const i = t.rcPos++;
    // The instruction is executed again from the same state, so its reads come in the same order.
    if (st.rcGpa[i] !== gpa || st.rcLen[i] !== len) throw EMUL_FAILED;
    bounce.set(st.rcData.subarray(i * 8, i * 8 + len), off);
    return;
  }
  if (st.rcCount === MAX_FRAGS) throw EMUL_FAILED;
  const data = fragData.subarray(0, len);
  data.fill(0);
  if (vcpuMmioRead(vcpu, gpa, len, data)) {
    if (vcpu.kvm.tracing) traceMmio(vcpu, 1, len, gpa, data);
    const i = st.rcCount++;
    st.rcGpa[i] = gpa;
    st.rcLen[i] = len;
    st.rcData.set(data, i * 8);
    t.rcPos++;
    bounce.set(data, off);
    return;
  }
  if (vcpu.kvm.tracing) traceMmio(vcpu, 0, len, gpa, null);
  st.readGpa = gpa;
  st.readLen = len;
  throw EMUL_IO_NEEDED;
}

function pendWrite(gpa: number, len: number, kind: number, ramHpa: number): void {
  const t = tracker;
  if (t.pendCount === 2) throw EMUL_FAILED;
  const i = t.pendCount++;
  t.pendGpa[i] = gpa;
  t.pendLen[i] = len;
  t.pendKind[i] = kind;
  t.pendRamHpa[i] = ramHpa;
}

/**
 * The core has stored the pending write fragments: RAM ones go to the write tracker; MMIO ones
 * (from the bounce frame) to an in-kernel device, or are queued for userspace.
 */
function harvestPendingWrites(): void {
  const t = tracker;
  const n = t.pendCount;
  t.pendCount = 0;
  for (let k = 0; k < n; k++) {
    const vcpu = t.vcpu!;
    const gpa = t.pendGpa[k];
    const len = t.pendLen[k];
    const pm = vcpu.kvm.physmem;
    const data = fragData.subarray(0, len);
    if (t.pendKind[k] === 2) {
      const hpa = t.pendRamHpa[k];
      const hpfn = Math.floor(hpa / 4096);
      const hoff = hpa - hpfn * 4096;
      data.set(pm.frame(hpfn).subarray(hoff, hoff + len));
      writeTracker?.(vcpu, gpa, data);
      continue;
    }
    const st = t.st!;
    const off = gpa % 4096;
    data.set(pm.frame(vcpu.kvm.arch.emulatorBouncePfn).subarray(off, off + len));
    if (vcpu.kvm.tracing) traceMmio(vcpu, 2, len, gpa, data);
    if (vcpuMmioWrite(vcpu, gpa, len, data)) continue;
    if (st.wfCount === MAX_FRAGS) throw EMUL_FAILED;
    const i = st.wfCount++;
    st.wfGpa[i] = gpa;
    st.wfLen[i] = len;
    st.wfData.set(data, i * 8);
  }
}

// ----------------------------------------------------------------------------------------------
// x86_emulate_instruction
// ----------------------------------------------------------------------------------------------

const insnBuf = new Uint8Array(15);

/**
 * handle_emulation_failure(): with KVM_CAP_EXIT_ON_EMULATION_FAILURE userspace gets the
 * instruction; otherwise the guest gets #UD, and at CPL 0 userspace is told as well (the #UD
 * stays queued for the next KVM_RUN).
 */
function emulationFailure(vcpu: X86Vcpu): ExitResult {
  vcpuState(vcpu).reset();
  if (retryOnFailure) {
    // EMULTYPE_ALLOW_RETRY_PF: nothing was committed; the caller makes the access possible on
    // the processor and lets the guest execute the instruction again.
    failedForRetry = true;
    return ExitResult.Resume;
  }
  const n = fetchInsnBytes(vcpu, insnBuf);
  if (vcpu.kvm.arch.exitOnEmulationFailure) return kvmPrepareEmulationFailureExit(vcpu, insnBuf, n);
  kvmQueueException(vcpu, UD_VECTOR);
  if (vcpu.arch.ops.getCpl(vcpu) === 0) return kvmPrepareEmulationFailureExit(vcpu, insnBuf, n);
  vcpu.stat.insn_emulation_fail++;
  return ExitResult.Resume;
}

/** The memory operand size in bytes of the decoded instruction. */
function operandBytes(cpu: X86Cpu, kind: number): number {
  switch (kind) {
    case SZ_BYTE: return 1;
    case SZ_WORD: return 2;
    case SZ_MOVSXD: return cpu.osz === 3 ? 4 : 1 << cpu.osz;
    default: return 1 << cpu.osz;
  }
}

/**
 * Emulate the instruction at RIP once (x86_emulate_insn). Returns the exit result: Resume when it
 * completed (or faulted into the guest), ToUserspace for an MMIO exit or an emulation failure.
 */
function x86EmulateInsn(vcpu: X86Vcpu): ExitResult {
  const st = vcpuState(vcpu);
  const ctxt = initEmulateCtxt(vcpu);
  const cpu = ctxt.cpu;
  const cs = cpu.state;
  const t = tracker;
  t.vcpu = vcpu;
  t.st = st;
  t.bounceHpa = vcpu.kvm.arch.emulatorBouncePfn * 4096;
  t.executing = false;
  t.contLen = 0;
  t.rdCount = 0;
  t.rcPos = 0;
  t.pendCount = 0;
  st.wfCount = 0;
  const rip = cs.rip;
  let repLeft = -1;
  let op = 0;
  try {
    cpu.curRip = rip;
    decode(cpu, cpu.m64 ? rip : (rip + cs.segBase[1]) >>> 0, -1, 0, 0);
    op = cpu.op;
    const kind = op < 0x200 ? OP_SIZE[op] : 0;
    const hasModrm = OP_STRING[op] === 0 && (op < 0xa0 || op > 0xa3);
    if (kind === 0 || (hasModrm && (cpu.mod === 3 || ((OP_REGS[op] >>> (cpu.reg & 7)) & 1) === 0)) || (op === 0x63 && !cpu.m64)) {
      return emulationFailure(vcpu);
    }
    const len = cpu.ilen;
    cs.rip = cpu.m64 ? rip + len : cpu.csz === 2 ? (rip + len) >>> 0 : (rip + len) & 0xffff;
    t.accessSize = operandBytes(cpu, kind);
    t.rmw = hasModrm && ((OP_RMW[op] >>> (cpu.reg & 7)) & 1) === 1;
    if (OP_STRING[op] === 1 && cpu.rep !== 0) {
      // One iteration per emulation: the count register is 1 for the core, the rest is restored below.
      const count = cpu.regAddr(1, cpu.asz);
      if (count === 0) {
        kvmRipWrite(vcpu, cs.rip);
        return ExitResult.Resume;
      }
      repLeft = count - 1;
      cpu.setRegAddr(1, cpu.asz, 1);
    }
    cpu.lastUnimplemented = -1;
    t.executing = true;
    HANDLERS[cpu.w0 & 0x7ff](cpu);
    harvestPendingWrites();
  } catch (e) {
    t.executing = false;
    if (e === EMUL_IO_NEEDED) {
      // Nothing is committed: the instruction runs again when userspace has supplied the data.
      st.wfCount = 0;
      st.mmioIsWrite = false;
      const run = vcpu.arch.run;
      run.exitReason = K.KVM_EXIT_MMIO;
      run.mmioPhysAddr = st.readGpa;
      run.mmioLen = st.readLen;
      run.mmioIsWrite = 0;
      run.mmioData.fill(0);
      vcpu.stat.mmio_exits++;
      vcpu.arch.completeUserspaceIo = CompleteUserspaceIo.EmulatedMmio;
      return ExitResult.ToUserspace;
    }
    if (e === EMUL_FAILED || (e === FAULT && cpu.lastUnimplemented >= 0)) return emulationFailure(vcpu);
    if (e !== FAULT) throw e;
    // The instruction faulted (x86_emulate_insn's exception path): the guest gets the fault.
    st.reset();
    if (cpu.faultVec === PF_VECTOR) kvmQueueExceptionP(vcpu, PF_VECTOR, cpu.faultExtra, cpu.faultErr);
    else if (cpu.faultErr >= 0) kvmQueueExceptionE(vcpu, cpu.faultVec, cpu.faultErr);
    else kvmQueueException(vcpu, cpu.faultVec);
    return ExitResult.Resume;
  } finally {
    t.executing = false;
    cpu.vmx = null;
  }
  return commitInsn(vcpu, cpu, op, repLeft);
}

/** Writeback: registers, RFLAGS and RIP become the vCPU's; then the queued write fragments go to userspace. */
function commitInsn(vcpu: X86Vcpu, cpu: X86Cpu, op: number, repLeft: number): ExitResult {
  const a = vcpu.arch;
  const st = vcpuState(vcpu);
  const cs = cpu.state;
  const rflags = cpu.getRflags();
  if (repLeft >= 0) {
    cpu.setRegAddr(1, cpu.asz, repLeft);
    // REPE/REPNE CMPS/SCAS also stop on the ZF condition (SDM Vol. 2 REP). Otherwise RIP stays on
    // the instruction even after the last iteration, as KVM's emulator leaves it
    // (string_insn_completed): the processor then finds RCX = 0 and moves on.
    const cmp = op === 0xa6 || op === 0xa7 || op === 0xae || op === 0xaf;
    const zf = (rflags & 0x40) !== 0;
    const stop = cmp && (cpu.rep === 1 ? !zf : zf);
    if (!stop) cs.rip = cpu.curRip;
  }
  a.regs.set(cs.gpr.subarray(0, 32));
  kvmRegisterWrite(vcpu, 4, cs.gpr[8], cs.gpr[9]);
  a.ops.setRflags(vcpu, rflags);
  kvmRipWrite(vcpu, cs.rip);
  a.ops.setInterruptShadow(vcpu, 0);
  st.rcCount = 0;
  const tf = (rflags & 0x100) !== 0 || (a.guestDebug & K.KVM_GUESTDBG_SINGLESTEP) !== 0;
  if (st.wfCount > 0) {
    st.wfCur = 0;
    st.singlestepAfterWrites = tf;
    return prepareWriteExit(vcpu, st);
  }
  st.reset();
  return tf ? kvmVcpuDoSinglestep(vcpu) : ExitResult.Resume;
}

function prepareWriteExit(vcpu: X86Vcpu, st: X86EmulateVcpuState): ExitResult {
  const i = st.wfCur;
  const run = vcpu.arch.run;
  run.exitReason = K.KVM_EXIT_MMIO;
  run.mmioPhysAddr = st.wfGpa[i];
  run.mmioLen = st.wfLen[i];
  run.mmioIsWrite = 1;
  run.mmioData.fill(0);
  run.mmioData.set(st.wfData.subarray(i * 8, i * 8 + st.wfLen[i]));
  st.mmioIsWrite = true;
  vcpu.stat.mmio_exits++;
  vcpu.arch.completeUserspaceIo = CompleteUserspaceIo.EmulatedMmio;
  return ExitResult.ToUserspace;
}

/**
 * x86_emulate_instruction(EMULTYPE_SKIP): decode the instruction at RIP only to step over it
 * (an EPT misconfiguration exit reports no instruction length). RF is cleared as by any
 * completed instruction. Returns false when the instruction cannot be fetched.
 */
export function kvmEmulateSkip(vcpu: X86Vcpu): boolean {
  const ctxt = initEmulateCtxt(vcpu);
  const cpu = ctxt.cpu;
  const rip = cpu.state.rip;
  try {
    decode(cpu, cpu.m64 ? rip : (rip + cpu.state.segBase[1]) >>> 0, -1, 0, 0);
  } catch (e) {
    if (e === EMUL_FAILED || e === FAULT) return false;
    throw e;
  } finally {
    cpu.vmx = null;
  }
  const len = cpu.ilen;
  kvmRipWrite(vcpu, cpu.m64 ? rip + len : cpu.csz === 2 ? (rip + len) >>> 0 : (rip + len) & 0xffff);
  const rflags = vcpu.arch.ops.getRflags(vcpu);
  if ((rflags & 0x10000) !== 0) vcpu.arch.ops.setRflags(vcpu, rflags & ~0x10000);
  return true;
}

/** kvmEmulateWriteProtected: an emulation failure is reported to the caller instead of the guest/userspace. */
let retryOnFailure = false;
let failedForRetry = false;

/** kvmEmulateWriteProtected's result when the instruction could not be emulated and nothing was done. */
export const EMULATE_FAIL_RETRY = -1;

/**
 * x86_emulate_instruction(EMULTYPE_PF | EMULTYPE_ALLOW_RETRY_PF) for a store that faulted on a
 * write-protected guest page table (shadow paging): the instruction is emulated, its RAM stores
 * reaching the write tracker. With `allowRetry`, an instruction the emulator cannot carry out
 * returns EMULATE_FAIL_RETRY with nothing done, so the MMU can unprotect the page and let the
 * guest retry it (kvm_mmu_unprotect_page); without, it fails as any emulation does.
 */
export function kvmEmulateWriteProtected(vcpu: X86Vcpu, gpa: number, allowRetry: boolean): ExitResult | typeof EMULATE_FAIL_RETRY {
  retryOnFailure = allowRetry;
  failedForRetry = false;
  let r: ExitResult;
  try {
    r = kvmEmulateMmio(vcpu, gpa, true);
  } finally {
    retryOnFailure = false;
  }
  if (failedForRetry) {
    failedForRetry = false;
    return EMULATE_FAIL_RETRY;
  }
  return r;
}

const noData = new Uint8Array(0);

/**
 * handle_ept_misconfig()'s fast path: a length-0 ioeventfd at `gpa` (KVM_FAST_MMIO_BUS) takes the
 * access without decoding it, and the instruction is skipped (kvm_skip_emulated_instruction,
 * single-step included). Returns -1 when no such device claims `gpa`.
 */
export function kvmFastMmio(vcpu: X86Vcpu, gpa: number): ExitResult | -1 {
  if (!vcpu.kvm.ioBusWrite(vcpu, KvmBus.FAST_MMIO, gpa, 0, noData)) return -1;
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_fast_mmio", { gpa }, vcpu);
  const tf = (vcpu.arch.ops.getRflags(vcpu) & 0x100) !== 0 || (vcpu.arch.guestDebug & K.KVM_GUESTDBG_SINGLESTEP) !== 0;
  if (!kvmEmulateSkip(vcpu)) return emulationFailure(vcpu);
  return tf ? kvmVcpuDoSinglestep(vcpu) : ExitResult.Resume;
}

/**
 * x86_emulate_instruction(EMULTYPE_PF) for an access to `gpa` that no memslot backs, or a write
 * to a read-only slot. The emulator finds the accesses itself from the decoded instruction;
 * `gpa` is the faulting address (kept for the tracepoint).
 */
export function kvmEmulateMmio(vcpu: X86Vcpu, gpa: number, _write: boolean): ExitResult {
  vcpu.stat.insn_emulation++;
  vcpuState(vcpu).reset();
  const r = x86EmulateInsn(vcpu);
  const kvm = vcpu.kvm;
  if (kvm.tracing) {
    const failed = r === ExitResult.ToUserspace && vcpu.arch.run.exitReason === K.KVM_EXIT_INTERNAL_ERROR;
    kvm.trace("kvm_emulate_insn", { csbase: vcpu.arch.ops.getSegmentBase(vcpu, 1), rip: kvmRipRead(vcpu), insn: "", mode: (vcpu.arch.efer & EFER_LMA) !== 0 && isCsLong(vcpu) ? 8 : 4, failed, gpa }, vcpu);
  }
  return r;
}

/**
 * complete_emulated_mmio(): after a read, the data joins the read cache and the instruction is
 * executed again; after a write fragment, the next fragment exits or the instruction is done.
 */
function completeEmulatedMmio(vcpu: X86Vcpu): ExitResult {
  const st = vcpuState(vcpu);
  if (st.mmioIsWrite) {
    st.wfCur++;
    if (st.wfCur < st.wfCount) return prepareWriteExit(vcpu, st);
    const tf = st.singlestepAfterWrites;
    st.reset();
    return tf ? kvmVcpuDoSinglestep(vcpu) : ExitResult.Resume;
  }
  const data = vcpu.arch.run.mmioData;
  if (vcpu.kvm.tracing) traceMmio(vcpu, 1, st.readLen, st.readGpa, data);
  const i = st.rcCount++;
  st.rcGpa[i] = st.readGpa;
  st.rcLen[i] = st.readLen;
  st.rcData.set(data.subarray(0, st.readLen), i * 8);
  return x86EmulateInsn(vcpu);
}

registerCompleteUserspaceIo(CompleteUserspaceIo.EmulatedMmio, completeEmulatedMmio);
