/**
 * Shifts and rotates: ROL/ROR/RCL/RCR/SHL/SHR/SAR (C0/C1/D0-D3) and SHLD/SHRD (SDM Vol. 2).
 * A masked count of 0 leaves flags alone. OF for counts above 1 follows the one-bit formula
 * (flags.ts policy); AF is cleared by SHL/SHR/SAR.
 */
import type { X86Cpu } from "../cpu.js";
import { flagsSync, getCF, setArith, szp, szp64, CF, OF } from "../flags.js";
import { rdERmw, wrERmw, rdG } from "./operand.js";

// 64-bit helpers on lo/hi pairs; results in r64lo/r64hi.
let r64lo = 0, r64hi = 0;
function shl64(lo: number, hi: number, n: number): void {
  if (n === 0) { r64lo = lo; r64hi = hi; }
  else if (n < 32) { r64hi = (hi << n) | (lo >>> (32 - n)); r64lo = lo << n; }
  else { r64hi = n < 64 ? lo << (n - 32) : 0; r64lo = 0; }
}
function shr64(lo: number, hi: number, n: number): void {
  if (n === 0) { r64lo = lo; r64hi = hi; }
  else if (n < 32) { r64lo = (lo >>> n) | (hi << (32 - n)); r64hi = hi >>> n; }
  else { r64lo = n < 64 ? hi >>> (n - 32) : 0; r64hi = 0; }
}
function sar64(lo: number, hi: number, n: number): void {
  if (n === 0) { r64lo = lo; r64hi = hi; }
  else if (n < 32) { r64lo = (lo >>> n) | (hi << (32 - n)); r64hi = hi >> n; }
  else { r64lo = hi >> (n - 32); r64hi = hi >> 31; }
}
function bit64(lo: number, hi: number, i: number): number {
  return i < 32 ? (lo >>> i) & 1 : (hi >>> (i - 32)) & 1;
}

/** Perform shift/rotate `op` (ModRM reg: 0 ROL 1 ROR 2 RCL 3 RCR 4 SHL 5 SHR 6 SAL 7 SAR) of E by count. */
function shiftE(c: X86Cpu, sz: number, op: number, count: number): void {
  const w = 8 << sz;
  count &= sz === 3 ? 63 : 31;
  const v = rdERmw(c, sz);
  if (count === 0) { wrERmw(c, sz, v, c.rhi); return; }
  if (sz === 3) { shift64(c, op, v, c.rhi, count); wrERmw(c, 3, r64lo, r64hi); return; }
  const mask = w === 32 ? 0xffffffff : (1 << w) - 1;
  const x = (v & mask) >>> 0;
  const msb = w - 1;
  let r: number, cf: number, of: number;
  switch (op) {
    case 0: { // ROL
      const n = count % w;
      r = n === 0 ? x : ((x << n) | (x >>> (w - n))) & mask;
      r >>>= 0;
      cf = r & 1; of = ((r >>> msb) & 1) ^ cf;
      flagsSync(c); c.fl = (c.fl & ~(CF | OF)) | cf | (of << 11);
      break;
    }
    case 1: { // ROR
      const n = count % w;
      r = n === 0 ? x : ((x >>> n) | (x << (w - n))) & mask;
      r >>>= 0;
      cf = (r >>> msb) & 1; of = cf ^ ((r >>> (msb - 1)) & 1);
      flagsSync(c); c.fl = (c.fl & ~(CF | OF)) | cf | (of << 11);
      break;
    }
    case 2: case 3: { // RCL / RCR through CF: (w+1)-bit rotation
      let n = w < 32 ? count % (w + 1) : count;
      let carry = getCF(c);
      r = x;
      while (n-- > 0) {
        if (op === 2) { const out = (r >>> msb) & 1; r = (((r << 1) | carry) & mask) >>> 0; carry = out; }
        else { const out = r & 1; r = ((r >>> 1) | (carry << msb)) >>> 0; carry = out; }
      }
      of = op === 2 ? ((r >>> msb) & 1) ^ carry : ((r >>> msb) ^ (r >>> (msb - 1))) & 1;
      flagsSync(c); c.fl = (c.fl & ~(CF | OF)) | carry | (of << 11);
      break;
    }
    case 4: case 6: { // SHL/SAL
      r = count >= w ? 0 : (x << count) & mask;
      r >>>= 0;
      cf = count > w ? 0 : (x >>> (w - count)) & 1;
      of = ((r >>> msb) & 1) ^ cf;
      setArith(c, szp(r, w) | cf | (of << 11));
      break;
    }
    case 5: { // SHR
      r = count >= 32 ? 0 : x >>> count;
      cf = count > w ? 0 : (x >>> (count - 1)) & 1;
      of = (x >>> msb) & 1;
      setArith(c, szp(r, w) | cf | (of << 11));
      break;
    }
    default: { // SAR
      const sx = (x << (32 - w)) >> (32 - w);
      r = (sx >> (count > 31 ? 31 : count)) & mask;
      r >>>= 0;
      cf = (sx >> (count - 1 > 31 ? 31 : count - 1)) & 1;
      setArith(c, szp(r, w) | cf);
      break;
    }
  }
  wrERmw(c, sz, r, 0);
}

function shift64(c: X86Cpu, op: number, lo: number, hi: number, count: number): void {
  let cf: number, of: number;
  switch (op) {
    case 0: {
      shl64(lo, hi, count); const a = r64lo, b = r64hi;
      shr64(lo, hi, 64 - count); r64lo |= a; r64hi |= b;
      cf = r64lo & 1; of = ((r64hi >>> 31) & 1) ^ cf;
      flagsSync(c); c.fl = (c.fl & ~(CF | OF)) | cf | (of << 11);
      return;
    }
    case 1: {
      shr64(lo, hi, count); const a = r64lo, b = r64hi;
      shl64(lo, hi, 64 - count); r64lo |= a; r64hi |= b;
      cf = (r64hi >>> 31) & 1; of = cf ^ ((r64hi >>> 30) & 1);
      flagsSync(c); c.fl = (c.fl & ~(CF | OF)) | cf | (of << 11);
      return;
    }
    case 2: case 3: {
      let carry = getCF(c), l = lo, h = hi, n = count;
      while (n-- > 0) {
        if (op === 2) { const out = (h >>> 31) & 1; h = (h << 1) | (l >>> 31); l = (l << 1) | carry; carry = out; }
        else { const out = l & 1; l = (l >>> 1) | (h << 31); h = (h >>> 1) | (carry << 31); carry = out; }
      }
      r64lo = l; r64hi = h;
      of = op === 2 ? ((h >>> 31) & 1) ^ carry : ((h >>> 31) ^ (h >>> 30)) & 1;
      flagsSync(c); c.fl = (c.fl & ~(CF | OF)) | carry | (of << 11);
      return;
    }
    case 4: case 6:
      cf = bit64(lo, hi, 64 - count);
      shl64(lo, hi, count);
      of = ((r64hi >>> 31) & 1) ^ cf;
      setArith(c, szp64(r64lo, r64hi) | cf | (of << 11));
      return;
    case 5:
      cf = bit64(lo, hi, count - 1);
      of = (hi >>> 31) & 1;
      shr64(lo, hi, count);
      setArith(c, szp64(r64lo, r64hi) | cf | (of << 11));
      return;
    default:
      cf = bit64(lo, hi, count - 1);
      sar64(lo, hi, count);
      setArith(c, szp64(r64lo, r64hi) | cf);
      return;
  }
}

/** C0/C1: grp2 E, imm8 */
export function grp2Ib(c: X86Cpu): void {
  shiftE(c, c.opb === 0xc0 ? 0 : c.osz, c.reg & 7, c.imm & 0xff);
}
/** D0/D1: grp2 E, 1 */
export function grp2One(c: X86Cpu): void {
  shiftE(c, c.opb === 0xd0 ? 0 : c.osz, c.reg & 7, 1);
}
/** D2/D3: grp2 E, CL */
export function grp2Cl(c: X86Cpu): void {
  shiftE(c, c.opb === 0xd2 ? 0 : c.osz, c.reg & 7, c.state.gpr[2] & 0xff);
}

/** 0F A4/A5: SHLD E, G, imm8/CL; 0F AC/AD: SHRD */
export function shld(c: X86Cpu): void {
  const sz = c.osz;
  const w = 8 << sz;
  const left = c.opb < 0xa8;
  let count = (c.opb & 1 ? c.state.gpr[2] : c.imm) & (sz === 3 ? 63 : 31);
  const d = rdERmw(c, sz), dh = c.rhi;
  if (count === 0) { wrERmw(c, sz, d, dh); return; }
  const s = rdG(c, sz), sh = c.rhi;
  let rl: number, rh = 0, cf: number;
  if (sz === 3) {
    if (left) {
      cf = bit64(d, dh, 64 - count);
      shl64(d, dh, count); const a = r64lo, b = r64hi;
      shr64(s, sh, 64 - count); rl = a | r64lo; rh = b | r64hi;
    } else {
      cf = bit64(d, dh, count - 1);
      shr64(d, dh, count); const a = r64lo, b = r64hi;
      shl64(s, sh, 64 - count); rl = a | r64lo; rh = b | r64hi;
    }
    const of = ((rh ^ dh) >>> 31) & 1;
    setArith(c, szp64(rl, rh) | cf | (of << 11));
    wrERmw(c, 3, rl, rh);
    return;
  }
  // 16/32-bit: treat dest:src as a 2w-bit value (for 16-bit counts above 16 the result is undefined;
  // this takes bits from the pattern dest:src:dest as Intel cores do).
  const mask = w === 32 ? 0xffffffff : 0xffff;
  const dd = (d & mask) >>> 0, ss = (s & mask) >>> 0;
  if (w === 16 && count > 16) count = count;
  if (left) {
    // hi = dd, lo = ss (as 32+32 for w=32, or packed in one 32-bit word for w=16)
    if (w === 32) { shl64(ss, dd, count); rl = r64hi >>> 0; cf = bit64(ss, dd, 64 - count); }
    else { const x = ((dd << 16) | ss) >>> 0; const y = count <= 16 ? x : (((ss << 16) | dd) >>> 0); const k = count <= 16 ? count : count - 16; rl = ((y << k) >>> 16) & 0xffff; cf = count <= 16 ? (dd >>> (16 - count)) & 1 : (ss >>> (32 - count)) & 1; }
  } else {
    if (w === 32) { shr64(dd, ss, count); rl = r64lo >>> 0; cf = (dd >>> (count - 1)) & 1; }
    else { const x = ((ss << 16) | dd) >>> 0; rl = count <= 16 ? (x >>> count) & 0xffff : ((((dd << 16) | ss) >>> 0) >>> (count - 16)) & 0xffff; cf = count <= 16 ? (dd >>> (count - 1)) & 1 : (ss >>> (count - 17)) & 1; }
  }
  const of = ((rl ^ dd) >>> (w - 1)) & 1;
  setArith(c, szp(rl, w) | cf | (of << 11));
  wrERmw(c, sz, rl, 0);
}
