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
 *   instruction executed by KVM: emulate_mmio.ts.
 */

import { ExitResult } from "./kvm_x86_ops.js";
import { CompleteUserspaceIo, EFER_LMA, PF_VECTOR, X86_EFLAGS_DF, kvmRipRead, type X86Vcpu } from "./kvm_host.js";
import {
  KVM_PIO_DATA_OFFSET, emulatorPioIn, emulatorPioOut, kvmQueueExceptionP, kvmSkipEmulatedInstruction, registerCompleteUserspaceIo,
} from "./x86.js";
import { kvmTranslateGva, readGpa, writeGpa } from "./mmu/paging_tmpl.js";

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

/** CS.L in IA-32e mode: the vCPU runs 64-bit code. */
export function isCsLong(vcpu: X86Vcpu): boolean {
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
