/**
 * The instruction-emulation side of arch/x86/kvm (emulate.c / x86_emulate_instruction): what KVM
 * must carry out itself because the hardware exited in the middle of it.
 *
 * - String port I/O (INS/OUTS, with REP): like emulator_pio_in_out, items are moved in batches
 *   that stay within one guest page and one PIO data page, so a REP OUTSB of n bytes reaches
 *   userspace as KVM_EXIT_IO exits with count > 1. The exit qualification gives port, size,
 *   direction and REP (SDM Table 28-5); the guest-linear address field gives the source/
 *   destination; the address size comes from the instruction's prefixes (only the legacy and
 *   REX prefixes are scanned, the opcode is already known).
 * - MMIO (an access to a gfn without a memslot, or a write to a read-only slot) needs the
 *   instruction decoded; see kvmEmulateMmio.
 */

import * as K from "../../../uapi/kvm.js";
import { KvmBus } from "../../../virt/kvm/kvm_host.js";
import { X86Cpu } from "../../../hw/x86/cpu.js";
import { decode } from "../../../hw/x86/decode.js";
import { FAULT } from "../../../hw/x86/fault.js";
import type { MemAccess, VmxNonRoot } from "../../../hw/x86/vmx/hooks.js";
import { ExitResult } from "./kvm_x86_ops.js";
import { CompleteUserspaceIo, EFER_LMA, PF_VECTOR, X86_EFLAGS_DF, kvmRipRead, kvmRipWrite, type X86Vcpu } from "./kvm_host.js";
import {
  KVM_PIO_DATA_OFFSET, emulatorPioIn, emulatorPioOut, kvmPrepareEmulationFailureExit, kvmQueueExceptionP,
  kvmSkipEmulatedInstruction, registerCompleteUserspaceIo,
} from "./x86.js";
import { kvmTranslateGva, readGpa, writeGpa } from "./mmu/paging_tmpl.js";
import { vcpuLapic } from "./x86_irqchip.js";

const TWO32 = 4294967296;
const insnBuf = new Uint8Array(15);
const dataBuf = new Uint8Array(4096);

/** Read up to 15 bytes at CS:RIP (for prefix scans and emulation-failure reports). Returns how many were read. */
export function fetchInsnBytes(vcpu: X86Vcpu, out: Uint8Array): number {
  const a = vcpu.arch;
  const la = kvmRipRead(vcpu) + ((a.efer & EFER_LMA) !== 0 && isCsLong(vcpu) ? 0 : a.ops.getSegmentBase(vcpu, 1));
  let n = 0;
  while (n < 15) {
    const t = kvmTranslateGva(vcpu, la + n);
    if (!t.valid) break;
    const chunk = Math.min(15 - n, 4096 - ((la + n) & 4095));
    if (!readGpa(vcpu, t.gpa, out.subarray(n), chunk)) break;
    n += chunk;
  }
  return n;
}

const csBits = new Int32Array(2);

function isCsLong(vcpu: X86Vcpu): boolean {
  const o = csBits;
  vcpu.arch.ops.getCsDbLBits(vcpu, o);
  return o[1] === 1;
}

/** The address size (2, 4 or 8 bytes) of the string instruction at RIP: mode default, flipped by 0x67. */
function stringAddressSize(vcpu: X86Vcpu): number {
  const o = csBits;
  vcpu.arch.ops.getCsDbLBits(vcpu, o);
  const m64 = (vcpu.arch.efer & EFER_LMA) !== 0 && o[1] === 1;
  let asz = m64 ? 8 : o[0] === 1 ? 4 : 2;
  const n = fetchInsnBytes(vcpu, insnBuf);
  for (let i = 0; i < n; i++) {
    const b = insnBuf[i];
    if (b === 0x67) asz = m64 ? 4 : asz === 4 ? 2 : 4;
    else if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65 || b === 0x66 || b === 0xf0 || b === 0xf2 || b === 0xf3) continue;
    else if (m64 && (b & 0xf0) === 0x40) continue;
    else break;
  }
  return asz;
}

function regValue(vcpu: X86Vcpu, reg: number, asz: number): number {
  const r = vcpu.arch.regs;
  if (asz === 8) return r[reg * 2 + 1] * TWO32 + (r[reg * 2] >>> 0);
  return asz === 4 ? r[reg * 2] >>> 0 : r[reg * 2] & 0xffff;
}

/** Write `v` to the low `asz` bytes of a register (16-bit writes keep the rest, 32-bit writes zero-extend). */
function setRegValue(vcpu: X86Vcpu, reg: number, asz: number, v: number): void {
  const r = vcpu.arch.regs;
  if (asz === 8) {
    const hi = Math.floor(v / TWO32);
    r[reg * 2] = (v - hi * TWO32) | 0;
    r[reg * 2 + 1] = hi | 0;
  } else if (asz === 4) {
    r[reg * 2] = v | 0;
    r[reg * 2 + 1] = 0;
  } else {
    r[reg * 2] = (r[reg * 2] & ~0xffff) | (v & 0xffff);
  }
}

function wrapAdd(v: number, delta: number, asz: number): number {
  const m = asz === 8 ? 2 ** 64 : asz === 4 ? TWO32 : 0x10000;
  let x = (v + delta) % m;
  if (x < 0) x += m;
  return x;
}

/** Copy `n` items of `size` bytes between guest linear memory and dataBuf, walking the guest page tables. */
function copyGuestItems(vcpu: X86Vcpu, la: number, size: number, n: number, down: boolean, toGuest: boolean): boolean {
  const user = vcpu.arch.ops.getCpl(vcpu) === 3;
  for (let i = 0; i < n; i++) {
    const ila = down ? la - i * size : la + i * size;
    const t = kvmTranslateGva(vcpu, ila, toGuest, user);
    if (!t.valid) {
      kvmQueueExceptionP(vcpu, PF_VECTOR, ila < 0 ? ila + 2 ** 64 : ila, t.errorCode);
      return false;
    }
    const buf = dataBuf.subarray(i * size, (i + 1) * size);
    const ok = toGuest ? writeGpa(vcpu, t.gpa, buf, size) : readGpa(vcpu, t.gpa, buf, size);
    if (!ok) return false;
  }
  return true;
}

/** Items one batch may move: within the guest page and the PIO data page. */
function batchCount(la: number, size: number, count: number, down: boolean): number {
  const off = ((la % 4096) + 4096) % 4096;
  const inPage = down ? Math.floor(off / size) + 1 : Math.floor((4096 - off) / size);
  return Math.max(1, Math.min(count, inPage, 4096 / size));
}

/**
 * Finish a string I/O batch of `n` items: advance RSI/RDI, count down RCX under REP, and either
 * complete the instruction or leave RIP on it so the next iteration exits again.
 */
function finishStringBatch(vcpu: X86Vcpu, n: number): ExitResult {
  const p = vcpu.arch.pio;
  const idx = p.in ? 7 : 6;
  const delta = (p.down ? -n : n) * p.size;
  setRegValue(vcpu, idx, p.asz, wrapAdd(regValue(vcpu, idx, p.asz), delta, p.asz));
  p.count = 0;
  p.string = false;
  if (p.rep) {
    const left = regValue(vcpu, 1, p.asz) - n;
    setRegValue(vcpu, 1, p.asz, left);
    if (left > 0) return ExitResult.Resume;
  }
  return kvmSkipEmulatedInstruction(vcpu);
}

/**
 * x86_emulate_instruction() for INS/OUTS (em_in/em_out with string semantics). `la` is the
 * guest-linear address of the first item, from the exit.
 */
export function kvmEmulateStringPio(vcpu: X86Vcpu, port: number, size: number, isIn: boolean, rep: boolean, la: number): ExitResult {
  const a = vcpu.arch;
  vcpu.stat.insn_emulation++;
  const asz = stringAddressSize(vcpu);
  const count = rep ? regValue(vcpu, 1, asz) : 1;
  if (count === 0) return kvmSkipEmulatedInstruction(vcpu);
  const down = (a.ops.getRflags(vcpu) & X86_EFLAGS_DF) !== 0;
  const n = batchCount(la, size, count, down);
  const p = a.pio;
  p.string = true;
  p.rep = rep;
  p.down = down;
  p.asz = asz;
  p.la = la;
  if (isIn) {
    if (emulatorPioIn(vcpu, size, port, dataBuf, n)) {
      if (!copyGuestItems(vcpu, la, size, n, down, true)) return ExitResult.Resume;
      p.in = true;
      p.size = size;
      return finishStringBatch(vcpu, n);
    }
    a.completeUserspaceIo = CompleteUserspaceIo.EmulatedPio;
    return ExitResult.ToUserspace;
  }
  if (!copyGuestItems(vcpu, la, size, n, down, false)) return ExitResult.Resume;
  if (emulatorPioOut(vcpu, size, port, dataBuf, n)) {
    p.in = false;
    p.size = size;
    return finishStringBatch(vcpu, n);
  }
  a.completeUserspaceIo = CompleteUserspaceIo.EmulatedPio;
  return ExitResult.ToUserspace;
}

/** complete_emulated_pio(): userspace served the batch; INS data goes to guest memory now. */
function completeEmulatedPio(vcpu: X86Vcpu): ExitResult {
  const p = vcpu.arch.pio;
  const n = p.count;
  if (p.in) {
    const bytes = vcpu.runBytes.subarray(KVM_PIO_DATA_OFFSET, KVM_PIO_DATA_OFFSET + n * p.size);
    dataBuf.set(bytes);
    if (!copyGuestItems(vcpu, p.la, p.size, n, p.down, true)) return ExitResult.Resume;
  }
  return finishStringBatch(vcpu, n);
}

registerCompleteUserspaceIo(CompleteUserspaceIo.EmulatedPio, completeEmulatedPio);

// ----------------------------------------------------------------------------------------------
// MMIO: decode with the CPU core's decoder in an emulator context (struct x86_emulate_ctxt)
// ----------------------------------------------------------------------------------------------

/** Thrown by the emulator context's VMX view when the instruction cannot be fetched from RAM. */
const EMUL_FETCH_FAILED = Object.freeze({ emulFetchFailed: true as const });

function notForDecode(): never {
  throw EMUL_FETCH_FAILED;
}

/**
 * The emulator context's view of non-root operation: only instruction fetch happens in it, and
 * guest-physical addresses resolve through the memslots (what the TDP MMU maps), so the CPU
 * core's page walker and decoder see exactly what the guest sees.
 */
class EmulatorFetchView implements VmxNonRoot {
  vcpu: X86Vcpu | null = null;
  readonly eptEnabled = true;
  readonly unrestrictedGuest = true;
  eptTranslate(gpa: number, _access: MemAccess, _la: number, _laValid: boolean, _isWalk: boolean): number {
    const kvm = this.vcpu!.kvm;
    const pfn = kvm.gfnToPfn(Math.floor(gpa / 4096), false);
    if (pfn < 0) throw EMUL_FETCH_FAILED;
    return pfn * 4096 + (gpa % 4096);
  }
  cpuid = notForDecode; hlt = notForDecode; invlpg = notForDecode; invpcid = notForDecode; rdpmc = notForDecode;
  rdtsc = notForDecode; tscOffsetLo = notForDecode; tscOffsetHi = notForDecode; rdmsr = notForDecode; wrmsr = notForDecode;
  mwait = notForDecode; monitor = notForDecode; pause = notForDecode; wbinvd = notForDecode; invd = notForDecode;
  xsetbv = notForDecode; rdrand = notForDecode; rdseed = notForDecode; vmxInstruction = notForDecode;
  descriptorTable = notForDecode; io = notForDecode; movToCr = notForDecode; movFromCr = notForDecode;
  crReadShadow = notForDecode; clts = notForDecode; lmsw = notForDecode; movDr = notForDecode; exception = notForDecode;
  tripleFault = notForDecode; taskSwitch = notForDecode; beginEventDelivery = notForDecode; endEventDelivery = notForDecode;
  instructionBoundary = notForDecode;
}

interface EmulatorCtxt {
  cpu: X86Cpu;
  view: EmulatorFetchView;
}

const ctxts = new WeakMap<object, EmulatorCtxt>();
const segTmp = { base: 0, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };

/** init_emulate_ctxt(): load the guest's mode (CRs, EFER, segments, RIP, RFLAGS) into the VM's emulator context. */
function initEmulateCtxt(vcpu: X86Vcpu): EmulatorCtxt {
  let c = ctxts.get(vcpu.kvm);
  if (c === undefined) {
    c = { cpu: new X86Cpu(vcpu.kvm.physmem), view: new EmulatorFetchView() };
    ctxts.set(vcpu.kvm, c);
  }
  const a = vcpu.arch;
  const cpu = c.cpu;
  const st = cpu.state;
  a.ops.cacheReg(vcpu, 18);
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
  st.rip = kvmRipRead(vcpu);
  st.gpr.set(a.regs);
  cpu.setRflags(a.ops.getRflags(vcpu));
  c.view.vcpu = vcpu;
  cpu.vmx = c.view;
  cpu.tlbFlushAll();
  cpu.stateChanged();
  return c;
}

/** What the emulator decided for an MMIO access (the parts of x86_emulate_ctxt the completion needs). */
const mmioOp = { isWrite: false, len: 0, reg: 0, highByte: false, signExtend: false, destSize: 0, insnLen: 0, gpa: 0 };

/** Decoded MOV-family forms the emulator carries out (em_mov and friends). */
function decodeMmioAccess(cpu: X86Cpu, vcpu: X86Vcpu): boolean {
  const op = cpu.op;
  const osz = [0, 2, 4, 8][cpu.osz];
  const rex = cpu.rex === 1;
  const regNo = cpu.reg;
  const o = mmioOp;
  o.insnLen = cpu.ilen;
  o.signExtend = false;
  o.highByte = false;
  const reg8 = (r: number): void => {
    // Without REX, byte registers 4-7 are AH, CH, DH, BH.
    if (!rex && r >= 4 && r < 8) {
      o.reg = r - 4;
      o.highByte = true;
    } else o.reg = r;
  };
  /** The source register's low `len` bytes into mmioData. */
  const regBytes = (len: number): void => {
    const r = vcpu.arch.regs;
    const lo = o.highByte ? (r[o.reg * 2] >>> 8) & 0xff : r[o.reg * 2];
    const hi = r[o.reg * 2 + 1];
    for (let i = 0; i < len; i++) mmioData[i] = ((i < 4 ? lo : hi) >>> (8 * (i & 3))) & 0xff;
  };
  switch (op) {
    case 0x88: o.isWrite = true; o.len = 1; reg8(regNo); break;
    case 0x89: o.isWrite = true; o.len = osz; o.reg = regNo; break;
    case 0x8a: o.isWrite = false; o.len = 1; o.destSize = 1; reg8(regNo); break;
    case 0x8b: o.isWrite = false; o.len = osz; o.destSize = osz; o.reg = regNo; break;
    case 0xa0: o.isWrite = false; o.len = 1; o.destSize = 1; o.reg = 0; break;
    case 0xa1: o.isWrite = false; o.len = osz; o.destSize = osz; o.reg = 0; break;
    case 0xa2: o.isWrite = true; o.len = 1; o.reg = 0; break;
    case 0xa3: o.isWrite = true; o.len = osz; o.reg = 0; break;
    case 0xc6: case 0xc7: {
      if (regNo !== 0) return false;
      o.isWrite = true;
      o.len = op === 0xc6 ? 1 : osz;
      const imm = cpu.imm;
      fillData(imm < 0 && o.len === 8 ? imm + 2 ** 64 : imm >>> 0, o.len, imm < 0 && o.len === 8);
      return true;
    }
    case 0x100 + 0xb6: case 0x100 + 0xb7: case 0x100 + 0xbe: case 0x100 + 0xbf:
      o.isWrite = false;
      o.len = (op & 1) === 0 ? 1 : 2;
      o.destSize = osz;
      o.reg = regNo;
      o.signExtend = op >= 0x1be;
      break;
    default:
      return false;
  }
  if (o.isWrite) regBytes(o.len);
  return true;
}

const mmioData = new Uint8Array(8);

function fillData(v: number, len: number, negative64: boolean): void {
  if (negative64) {
    // imm32 sign-extended to 64 bits: the high half is all ones.
    const lo = v % TWO32;
    for (let i = 0; i < 4; i++) mmioData[i] = (lo >>> (8 * i)) & 0xff;
    for (let i = 4; i < 8; i++) mmioData[i] = 0xff;
    return;
  }
  let x = v;
  for (let i = 0; i < len; i++) {
    mmioData[i] = x % 256;
    x = Math.floor(x / 256);
  }
}

/** Write the data of a completed MMIO read into the destination register (with MOVZX/MOVSX extension). */
function writebackRead(vcpu: X86Vcpu, data: Uint8Array): void {
  const o = mmioOp;
  const r = vcpu.arch.regs;
  let lo = 0;
  let hi = 0;
  for (let i = Math.min(o.len, 4) - 1; i >= 0; i--) lo = (lo << 8) | data[i];
  for (let i = o.len - 1; i >= 4; i--) hi = (hi << 8) | data[i];
  if (o.signExtend) {
    lo = o.len === 1 ? (lo << 24) >> 24 : (lo << 16) >> 16;
    hi = lo < 0 ? -1 : 0;
  }
  if (o.highByte) {
    r[o.reg * 2] = (r[o.reg * 2] & ~0xff00) | ((lo & 0xff) << 8);
    return;
  }
  switch (o.destSize) {
    case 1: r[o.reg * 2] = (r[o.reg * 2] & ~0xff) | (lo & 0xff); break;
    case 2: r[o.reg * 2] = (r[o.reg * 2] & ~0xffff) | (lo & 0xffff); break;
    case 4: r[o.reg * 2] = lo | 0; r[o.reg * 2 + 1] = 0; break;
    default: r[o.reg * 2] = lo | 0; r[o.reg * 2 + 1] = hi | 0;
  }
}

function traceMmio(vcpu: X86Vcpu, type: number, len: number, gpa: number, data: Uint8Array | null): void {
  let val = 0n;
  if (data !== null) for (let i = len - 1; i >= 0; i--) val = (val << 8n) | BigInt(data[i]);
  vcpu.kvm.trace("kvm_mmio", { type, len, gpa, val }, vcpu);
}

/** Advance RIP past the emulated instruction (the emulator's writeback of _eip). */
function completeEmulatedInsn(vcpu: X86Vcpu): ExitResult {
  const a = vcpu.arch;
  const rflags = a.ops.getRflags(vcpu);
  let rip = kvmRipRead(vcpu) + mmioOp.insnLen;
  if ((a.efer & EFER_LMA) === 0 || !isCsLong(vcpu)) rip = rip >>> 0;
  kvmRipWrite(vcpu, rip);
  a.ops.setInterruptShadow(vcpu, 0);
  if ((rflags & 0x100) !== 0) kvmQueueExceptionP(vcpu, 1, 0x4000);
  return ExitResult.Resume;
}

/**
 * x86_emulate_instruction(EMULTYPE_PF) for an access to `gpa` that no memslot backs (or a
 * write to a read-only slot): decode the instruction at RIP with the CPU core's decoder, offer
 * the access to the in-kernel MMIO bus, and otherwise exit with KVM_EXIT_MMIO (a read completes
 * on the next KVM_RUN). An instruction the emulator does not handle ends in
 * KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION with its bytes, as in KVM.
 */
export function kvmEmulateMmio(vcpu: X86Vcpu, gpa: number, _write: boolean): ExitResult {
  vcpu.stat.insn_emulation++;
  const kvm = vcpu.kvm;
  let decoded = false;
  const ctxt = initEmulateCtxt(vcpu);
  try {
    decode(ctxt.cpu, fetchLinearRip(vcpu), -1, 0, 0);
    decoded = decodeMmioAccess(ctxt.cpu, vcpu);
  } catch (e) {
    if (e !== EMUL_FETCH_FAILED && e !== FAULT) throw e;
  } finally {
    ctxt.cpu.vmx = null;
  }
  if (kvm.tracing) kvm.trace("kvm_emulate_insn", { csbase: vcpu.arch.ops.getSegmentBase(vcpu, 1), rip: kvmRipRead(vcpu), insn: "", mode: 0, failed: !decoded }, vcpu);
  if (!decoded) {
    const n = fetchInsnBytes(vcpu, insnBuf);
    return kvmPrepareEmulationFailureExit(vcpu, insnBuf, n);
  }
  const o = mmioOp;
  o.gpa = gpa;
  const data = mmioData.subarray(0, o.len);
  // vcpu_mmio_write/read(): the vCPU's own LAPIC first, then the MMIO bus.
  const lapic = vcpuLapic(vcpu);
  if (o.isWrite) {
    if (kvm.tracing) traceMmio(vcpu, 2, o.len, gpa, data);
    if ((lapic !== null && lapic.write(vcpu, gpa, o.len, data)) || kvm.ioBusWrite(vcpu, KvmBus.MMIO, gpa, o.len, data)) return completeEmulatedInsn(vcpu);
  } else if ((lapic !== null && lapic.read(vcpu, gpa, o.len, data)) || kvm.ioBusRead(vcpu, KvmBus.MMIO, gpa, o.len, data)) {
    if (kvm.tracing) traceMmio(vcpu, 1, o.len, gpa, data);
    writebackRead(vcpu, data);
    return completeEmulatedInsn(vcpu);
  } else if (kvm.tracing) {
    traceMmio(vcpu, 0, o.len, gpa, null);
  }
  const run = vcpu.arch.run;
  run.exitReason = K.KVM_EXIT_MMIO;
  run.mmioPhysAddr = gpa;
  run.mmioLen = o.len;
  run.mmioIsWrite = o.isWrite ? 1 : 0;
  run.mmioData.fill(0);
  if (o.isWrite) run.mmioData.set(data);
  vcpu.stat.mmio_exits++;
  vcpu.arch.completeUserspaceIo = CompleteUserspaceIo.EmulatedMmio;
  return ExitResult.ToUserspace;
}

/** complete_emulated_mmio(): the read data userspace supplied goes to the register; RIP moves on. */
function completeEmulatedMmio(vcpu: X86Vcpu): ExitResult {
  const o = mmioOp;
  if (!o.isWrite) {
    const data = vcpu.arch.run.mmioData;
    if (vcpu.kvm.tracing) traceMmio(vcpu, 1, o.len, o.gpa, data);
    writebackRead(vcpu, data);
  }
  return completeEmulatedInsn(vcpu);
}

registerCompleteUserspaceIo(CompleteUserspaceIo.EmulatedMmio, completeEmulatedMmio);

/** CS.base + RIP (the linear address of the instruction; flat in 64-bit mode). */
function fetchLinearRip(vcpu: X86Vcpu): number {
  const a = vcpu.arch;
  if ((a.efer & EFER_LMA) !== 0 && isCsLong(vcpu)) return kvmRipRead(vcpu);
  return (kvmRipRead(vcpu) + a.ops.getSegmentBase(vcpu, 1)) >>> 0;
}
