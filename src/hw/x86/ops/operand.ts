/**
 * Operand access for handlers: effective address (SDM Vol. 1 3.7.5), the ModRM r/m operand as
 * register or memory, and the stack (SDM Vol. 1 6.2).
 */
import type { X86Cpu } from "../cpu.js";
import { linAddr, rdL, rdLW, wrL } from "../mmu.js";

/** Effective address (offset within the segment) of the decoded memory operand. */
export function ea(c: X86Cpu): number {
  const w1 = c.w1;
  const base = (w1 >>> 10) & 31, index = (w1 >>> 15) & 31, scale = (w1 >>> 20) & 3;
  const g = c.state.gpr;
  const asz = (c.w0 >>> 17) & 3;
  let a = c.dcW[c.wb + 2];
  if (asz === 2) {
    if (base < 16) a += g[base << 1]; else if (base === 16) a += c.state.rip;
    if (index < 16) a += g[index << 1] << scale;
    return a >>> 0;
  }
  if (asz === 1) {
    if (base < 16) a += g[base << 1] & 0xffff;
    if (index < 16) a += g[index << 1] & 0xffff;
    return a & 0xffff;
  }
  if (base < 16) a += g[(base << 1) | 1] * 4294967296 + (g[base << 1] >>> 0);
  else if (base === 16) a += c.state.rip;
  if (index < 16) a += (g[(index << 1) | 1] * 4294967296 + (g[index << 1] >>> 0)) * (1 << scale);
  return a;
}

/** Linear address of the memory operand, `size` bytes, acc 1 read / 2 write. */
export function eaLin(c: X86Cpu, size: number, acc: number): number {
  return linAddr(c, (c.w1 >>> 22) & 7, ea(c), size, acc);
}

/** Read the r/m operand of size sz (0..3); 64-bit high half in c.rhi. */
export function rdE(c: X86Cpu, sz: number): number {
  if ((c.w1 & 3) === 3) return c.getReg(sz, (c.w1 >>> 6) & 15);
  return rdL(c, sz, eaLin(c, 1 << sz, 1));
}

/** Write the r/m operand. */
export function wrE(c: X86Cpu, sz: number, lo: number, hi: number): void {
  if ((c.w1 & 3) === 3) { c.setReg(sz, (c.w1 >>> 6) & 15, lo, hi); return; }
  wrL(c, sz, eaLin(c, 1 << sz, 2), lo, hi);
}

/**
 * Read-modify-write of the r/m operand: returns the current value and leaves in c.rmwLa the
 * linear address to write back (-1 for a register) after a write-checked translation.
 */
export function rdERmw(c: X86Cpu, sz: number): number {
  if ((c.w1 & 3) === 3) { c.rmwLa = -1; return c.getReg(sz, (c.w1 >>> 6) & 15); }
  const la = eaLin(c, 1 << sz, 2);
  c.rmwLa = la;
  return rdLW(c, sz, la);
}

export function wrERmw(c: X86Cpu, sz: number, lo: number, hi: number): void {
  if (c.rmwLa === -1 && (c.w1 & 3) === 3) { c.setReg(sz, (c.w1 >>> 6) & 15, lo, hi); return; }
  wrL(c, sz, c.rmwLa, lo, hi);
}

/** Read/write the ModRM reg operand. */
export function rdG(c: X86Cpu, sz: number): number {
  return c.getReg(sz, (c.w1 >>> 2) & 15);
}
export function wrG(c: X86Cpu, sz: number, lo: number, hi: number): void {
  c.setReg(sz, (c.w1 >>> 2) & 15, lo, hi);
}

// ---------------- stack ----------------

/** Current stack pointer as an offset of the stack address size. */
export function getSp(c: X86Cpu): number {
  return c.regAddr(4, c.ssz);
}

export function setSp(c: X86Cpu, v: number): void {
  c.setRegAddr(4, c.ssz, v);
}

function spAdd(c: X86Cpu, sp: number, d: number): number {
  const v = sp + d;
  if (c.ssz === 1) return v & 0xffff;
  if (c.ssz === 2) return v >>> 0;
  return v;
}

/** PUSH of `bytes` (2, 4, 8): the write happens before RSP changes, so a fault leaves RSP intact. */
export function push(c: X86Cpu, bytes: number, lo: number, hi: number): void {
  const sp = spAdd(c, getSp(c), -bytes);
  const la = linAddr(c, 2, sp, bytes, 2);
  wrL(c, bytes === 8 ? 3 : bytes === 4 ? 2 : 1, la, lo, hi);
  setSp(c, sp);
}

/** Read the value at the top of stack + offset without popping. */
export function peek(c: X86Cpu, bytes: number, offset: number): number {
  const sp = spAdd(c, getSp(c), offset);
  return rdL(c, bytes === 8 ? 3 : bytes === 4 ? 2 : 1, linAddr(c, 2, sp, bytes, 1));
}

export function pop(c: X86Cpu, bytes: number): number {
  const sp = getSp(c);
  const v = rdL(c, bytes === 8 ? 3 : bytes === 4 ? 2 : 1, linAddr(c, 2, sp, bytes, 1));
  const hi = c.rhi;
  setSp(c, spAdd(c, sp, bytes));
  c.rhi = hi;
  return v;
}

/** Bytes per stack slot for the operand size code (1,2,3 -> 2,4,8). */
export function osBytes(osz: number): number {
  return 1 << osz;
}
