/**
 * Stack instructions: PUSH/POP of registers, immediates, memory and segment registers,
 * PUSHA/POPA, PUSHF/POPF (IOPL and virtual-8086 rules), ENTER/LEAVE (SDM Vol. 2).
 */
import type { X86Cpu } from "../cpu.js";
import { flagsSync, RF, VM, IOPL, IF, TF, VIF, VIP, RFLAGS_VALID } from "../flags.js";
import { GP_VECTOR } from "../fault.js";
import { linAddr, rdL, wrL } from "../mmu.js";
import { push, pop, peek, rdE, eaLin, getSp, setSp, osBytes } from "./operand.js";
import { loadSeg } from "../segment.js";

function spWrap(c: X86Cpu, v: number): number {
  return c.ssz === 1 ? v & 0xffff : c.ssz === 2 ? v >>> 0 : v;
}

/** 50-57: PUSH r */
export function pushReg(c: X86Cpu): void {
  const osz = c.osz;
  const v = c.getReg(osz, (c.opb & 7) | c.rexB());
  push(c, osBytes(osz), v, c.rhi);
}
/** 58-5F: POP r */
export function popReg(c: X86Cpu): void {
  const osz = c.osz;
  const v = pop(c, osBytes(osz));
  c.setReg(osz, (c.opb & 7) | c.rexB(), v, c.rhi);
}
/** 68 / 6A: PUSH imm */
export function pushImm(c: X86Cpu): void {
  push(c, osBytes(c.osz), c.imm, c.imm >> 31);
}
/** FF /6: PUSH Ev */
export function pushEv(c: X86Cpu): void {
  const osz = c.osz;
  const v = rdE(c, osz);
  push(c, osBytes(osz), v, c.rhi);
}
/** 8F /0: POP Ev (RSP is incremented before the destination address is computed) */
export function popEv(c: X86Cpu): void {
  if ((c.reg & 7) !== 0) c.unimplemented(0x8f);
  const osz = c.osz;
  const n = osBytes(osz);
  const sp0 = getSp(c);
  const v = peek(c, n, 0), vh = c.rhi;
  const sp1 = spWrap(c, sp0 + n);
  setSp(c, sp1);
  if (c.mod === 3) { c.setReg(osz, c.rm, v, vh); return; }
  // An RSP-based address uses the incremented RSP (SDM POP), but nothing is committed before the
  // store: it can fault or cause a VM exit (EPT violation), which saves the state as it is then.
  let la: number;
  try { la = eaLin(c, n, 2); } finally { setSp(c, sp0); }
  wrL(c, osz, la, v, vh);
  setSp(c, sp1);
}
/** PUSH ES/CS/SS/DS (06/0E/16/1E), FS/GS (0F A0/A8) */
export function pushSeg(c: X86Cpu): void {
  push(c, osBytes(c.osz), c.state.segSel[segOfOpcode(c)], 0);
}
/** POP ES/SS/DS (07/17/1F), FS/GS (0F A1/A9). POP SS blocks interrupts for one instruction. */
export function popSeg(c: X86Cpu): void {
  const s = segOfOpcode(c);
  const n = osBytes(c.osz);
  const v = peek(c, n, 0) & 0xffff;
  const sp = getSp(c) + n;
  loadSeg(c, s, v);
  setSp(c, spWrap(c, sp));
  if (s === 2) { c.state.interruptibility |= 2; c.modeFlagsChanged(); }
}
function segOfOpcode(c: X86Cpu): number {
  const b = c.opb;
  if (c.op >= 256) return b === 0xa0 || b === 0xa1 ? 4 : 5;
  return (b >> 3) & 3;
}
/** 60: PUSHA/PUSHAD */
export function pusha(c: X86Cpu): void {
  const osz = c.osz, n = osBytes(osz);
  const sp0 = getSp(c);
  const m = c.ssz === 1 ? 0xffff : 0xffffffff;
  const la: number[] = [];
  for (let r = 0; r < 8; r++) la.push(linAddr(c, 2, ((sp0 - n * (r + 1)) & m) >>> 0, n, 2));
  for (let r = 0; r < 8; r++) wrL(c, osz, la[r], r === 4 ? sp0 : c.getReg(osz, r), 0);
  setSp(c, ((sp0 - 8 * n) & m) >>> 0);
}
/** 61: POPA/POPAD (the saved SP is discarded) */
export function popa(c: X86Cpu): void {
  const osz = c.osz, n = osBytes(osz);
  const sp0 = getSp(c);
  const m = c.ssz === 1 ? 0xffff : 0xffffffff;
  const vals = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let r = 0; r < 8; r++) vals[7 - r] = rdL(c, osz, linAddr(c, 2, ((sp0 + n * r) & m) >>> 0, n, 1));
  for (let r = 0; r < 8; r++) if (r !== 4) c.setReg(osz, r, vals[r], 0);
  setSp(c, ((sp0 + 8 * n) & m) >>> 0);
}
/** 9C: PUSHF/PUSHFD/PUSHFQ (VM and RF are pushed as 0) */
export function pushf(c: X86Cpu): void {
  flagsSync(c);
  if (c.v86 && ((c.fl & IOPL) >>> 12) < 3) {
    // CR4.VME, 16-bit operand: the image carries VIF in IF and IOPL = 3 (SDM Vol. 2 PUSHF).
    if (!(c.state.cr4 & 1) || c.osz !== 1) c.raise(GP_VECTOR, 0);
    push(c, 2, ((c.fl & ~IF) | (c.fl & VIF ? IF : 0) | IOPL | 2) & 0xffff, 0);
    return;
  }
  push(c, osBytes(c.osz), (c.fl | 2) & ~(VM | RF), 0);
}
/** 9D: POPF/POPFD/POPFQ */
export function popf(c: X86Cpu): void {
  const osz = c.osz;
  const iopl = (c.fl & IOPL) >>> 12;
  if (c.v86 && iopl < 3) { popfV86Vme(c); return; }
  const v = peek(c, osBytes(osz), 0);
  flagsSync(c);
  let mask = RFLAGS_VALID & ~(VM | RF | VIF | VIP);
  if ((c.pe && c.cpl > 0) || c.v86) mask &= ~IOPL;
  if (c.pe && c.cpl > iopl) mask &= ~IF;
  if (osz === 1) mask &= 0xffff;
  c.fl = ((c.fl & ~mask) | (v & mask) | 2) & ~RF;
  setSp(c, spWrap(c, getSp(c) + osBytes(osz)));
  c.modeFlagsChanged();
}
/**
 * POPF in virtual-8086 mode with IOPL < 3: #GP(0) unless CR4.VME and a 16-bit operand; then
 * #GP(0) if the image sets TF, or sets IF while VIP is pending; otherwise the image's IF goes to
 * VIF and IF/IOPL stay (SDM Vol. 2 POPF, Vol. 3 20.3.3).
 */
function popfV86Vme(c: X86Cpu): void {
  if (!(c.state.cr4 & 1) || c.osz !== 1) c.raise(GP_VECTOR, 0);
  const v = peek(c, 2, 0) & 0xffff;
  flagsSync(c);
  if ((v & TF) || ((v & IF) && (c.fl & VIP))) c.raise(GP_VECTOR, 0);
  const keep = IF | IOPL;
  c.fl = ((((c.fl & ~0xffff) | (c.fl & keep) | (v & ~keep) | 2) & ~(VIF | RF)) | (v & IF ? VIF : 0));
  setSp(c, spWrap(c, getSp(c) + 2));
  c.modeFlagsChanged();
}
/** C9: LEAVE */
export function leave(c: X86Cpu): void {
  const osz = c.osz, n = osBytes(osz);
  const bp = c.regAddr(5, c.ssz);
  const v = rdL(c, osz, linAddr(c, 2, bp, n, 1)), vh = c.rhi;
  setSp(c, spWrap(c, bp + n));
  c.setReg(osz, 5, v, vh);
}
/** C8: ENTER imm16, imm8 */
export function enter(c: X86Cpu): void {
  const osz = c.osz, n = osBytes(osz);
  const size = c.imm & 0xffff;
  const level = c.imm2 & 31;
  const bp = c.getReg(osz, 5), bph = c.rhi;
  let sp = spWrap(c, getSp(c) - n);
  wrL(c, osz, linAddr(c, 2, sp, n, 2), bp, bph);
  const frame = sp;
  let bpAddr = c.regAddr(5, c.ssz);
  for (let i = 1; i < level; i++) {
    bpAddr = spWrap(c, bpAddr - n);
    const v = rdL(c, osz, linAddr(c, 2, bpAddr, n, 1)), vh = c.rhi;
    sp = spWrap(c, sp - n);
    wrL(c, osz, linAddr(c, 2, sp, n, 2), v, vh);
  }
  if (level > 0) {
    sp = spWrap(c, sp - n);
    wrL(c, osz, linAddr(c, 2, sp, n, 2), frame | 0, Math.floor(frame / 4294967296) | 0);
  }
  sp = spWrap(c, sp - size);
  // The final stack pointer must be addressable (SDM ENTER: #SS if it is outside the segment).
  linAddr(c, 2, sp, 1, 2);
  c.setRegAddr(5, osz, frame);
  setSp(c, sp);
}
