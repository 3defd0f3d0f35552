/**
 * MUL/IMUL (one-, two- and three-operand forms) and DIV/IDIV with #DE (SDM Vol. 2), on 32-bit
 * limbs: no BigInt. Flags: CF=OF per the SDM; SF/ZF/PF from the low half and AF cleared
 * (flags.ts policy); DIV/IDIV leave flags unchanged.
 */
import type { X86Cpu } from "../cpu.js";
import { setArith, szp, szp64, CF, OF } from "../flags.js";
import { DE_VECTOR } from "../fault.js";
import { rdE, rdG, wrG } from "./operand.js";

// 128-bit scratch product: p0 (lowest) .. p3
let p0 = 0, p1 = 0, p2 = 0, p3 = 0;

/** Unsigned 32x32 -> 64: low in p0, high in p1. */
function mulu32(a: number, b: number): void {
  a >>>= 0; b >>>= 0;
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  p0 = ((mid << 16) | (ll & 0xffff)) | 0;
  p1 = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) | 0;
}

/** Unsigned 64x64 -> 128 into p0..p3. */
function mulu64(al: number, ah: number, bl: number, bh: number): void {
  mulu32(al, bl); const r0 = p0, c0 = p1;
  mulu32(al, bh); const x0 = p0, x1 = p1;
  mulu32(ah, bl); const y0 = p0, y1 = p1;
  mulu32(ah, bh); const z0 = p0, z1 = p1;
  let t = (c0 >>> 0) + (x0 >>> 0) + (y0 >>> 0);
  const r1 = t | 0;
  t = Math.floor(t / 4294967296) + (x1 >>> 0) + (y1 >>> 0) + (z0 >>> 0);
  const r2 = t | 0;
  const r3 = (Math.floor(t / 4294967296) + (z1 >>> 0)) | 0;
  p0 = r0; p1 = r1; p2 = r2; p3 = r3;
}

/**
 * Signed 64 x signed 32 (`b`, sign-extended) truncated to 64 bits, into p0 (low) and p1; returns
 * true when the full product does not fit in 64 signed bits (IMUL's CF=OF). Two 32x32 products
 * instead of muls64's four: with X = lo(a) * b and Y = hi(a) * b, the product is
 * (Y + hi(X)) * 2^32 + lo(X), and it fits exactly when Y + hi(X) fits in 32 signed bits.
 */
function imul64x32(al: number, ah: number, b: number): boolean {
  mulu32(al, b);
  const xl = p0;
  const xh = b < 0 ? (p1 - al) | 0 : p1; // lo(a) is unsigned: subtract lo(a) * 2^32 for a negative b
  mulu32(ah, b);
  let yh = p1;
  if (ah < 0) yh = (yh - b) | 0;
  if (b < 0) yh = (yh - ah) | 0;
  const t = (p0 >>> 0) + xh; // -2^31 .. 2^33: exact
  const zl = t | 0;
  const zh = (yh + Math.floor(t / 4294967296)) | 0;
  p0 = xl; p1 = zl;
  return zh !== (zl >> 31);
}

/** Signed 64x64 -> 128 into p0..p3. */
function muls64(al: number, ah: number, bl: number, bh: number): void {
  mulu64(al, ah, bl, bh);
  // Correct the unsigned product's high half: subtract b<<64 if a<0 and a<<64 if b<0.
  if (ah < 0) { const t = (p2 >>> 0) - (bl >>> 0); p2 = t | 0; p3 = (p3 - bh - (t < 0 ? 1 : 0)) | 0; }
  if (bh < 0) { const t = (p2 >>> 0) - (al >>> 0); p2 = t | 0; p3 = (p3 - ah - (t < 0 ? 1 : 0)) | 0; }
}

/** F6/F7 /4: MUL; /5: IMUL (one operand: rDX:rAX = rAX * E) */
export function mulOne(c: X86Cpu, sz: number, signed: boolean): void {
  const g = c.state.gpr;
  const s = rdE(c, sz), sh = c.rhi;
  let ovf: boolean;
  switch (sz) {
    case 0: {
      const a = g[0] & 0xff, b = s & 0xff;
      const r = signed ? ((a << 24) >> 24) * ((b << 24) >> 24) : a * b;
      c.setReg(1, 0, r, 0);
      ovf = signed ? ((r << 24) >> 24) !== r : (r & 0xff00) !== 0;
      setArith(c, szp(r & 0xff, 8) | (ovf ? CF | OF : 0));
      return;
    }
    case 1: {
      const a = g[0] & 0xffff, b = s & 0xffff;
      const r = signed ? ((a << 16) >> 16) * ((b << 16) >> 16) : a * b;
      c.setReg(1, 0, r, 0); c.setReg(1, 2, r >> 16, 0);
      ovf = signed ? ((r << 16) >> 16) !== r : (r >>> 16) !== 0;
      setArith(c, szp(r & 0xffff, 16) | (ovf ? CF | OF : 0));
      return;
    }
    case 2: {
      mulu32(g[0], s);
      let hi = p1;
      const lo = p0;
      if (signed) { if (g[0] < 0) hi = (hi - s) | 0; if (s < 0) hi = (hi - g[0]) | 0; }
      c.setReg(2, 0, lo, 0); c.setReg(2, 2, hi, 0);
      ovf = signed ? hi !== (lo >> 31) : hi !== 0;
      setArith(c, szp(lo, 32) | (ovf ? CF | OF : 0));
      return;
    }
    default: {
      const al = g[0], ah = g[1];
      if (signed) muls64(al, ah, s, sh); else mulu64(al, ah, s, sh);
      g[0] = p0; g[1] = p1; g[4] = p2; g[5] = p3;
      ovf = signed ? p2 !== (p1 >> 31) || p3 !== (p1 >> 31) : (p2 | p3) !== 0;
      setArith(c, szp64(p0, p1) | (ovf ? CF | OF : 0));
    }
  }
}

/** Signed multiply of sz (1..3) giving the truncated result; sets CF=OF on overflow. */
function imulTrunc(c: X86Cpu, sz: number, a: number, ah: number, b: number, bh: number): void {
  let lo: number, hi = 0, ovf: boolean;
  if (sz === 1) {
    const r = ((a << 16) >> 16) * ((b << 16) >> 16);
    lo = r & 0xffff; ovf = ((r << 16) >> 16) !== r;
    setArith(c, szp(lo, 16) | (ovf ? CF | OF : 0));
  } else if (sz === 2) {
    mulu32(a, b);
    let h = p1;
    if (a < 0) h = (h - b) | 0;
    if (b < 0) h = (h - a) | 0;
    lo = p0; ovf = h !== (lo >> 31);
    setArith(c, szp(lo, 32) | (ovf ? CF | OF : 0));
  } else {
    if (bh === b >> 31) ovf = imul64x32(a, ah, b); // an immediate, or a small register value
    else if (ah === a >> 31) ovf = imul64x32(b, bh, a);
    else { muls64(a, ah, b, bh); ovf = p2 !== (p1 >> 31) || p3 !== (p1 >> 31); }
    lo = p0; hi = p1;
    setArith(c, szp64(lo, hi) | (ovf ? CF | OF : 0));
  }
  wrG(c, sz, lo, hi);
}

/** 0F AF: IMUL Gv, Ev */
export function imulGvEv(c: X86Cpu): void {
  const sz = c.osz;
  const b = rdE(c, sz), bh = c.rhi;
  const a = rdG(c, sz), ah = c.rhi;
  imulTrunc(c, sz, a, ah, b, bh);
}

/** 69: IMUL Gv, Ev, Iz; 6B: IMUL Gv, Ev, Ib */
export function imulGvEvI(c: X86Cpu): void {
  const sz = c.osz;
  const a = rdE(c, sz), ah = c.rhi;
  imulTrunc(c, sz, a, ah, c.imm, c.imm >> 31);
}

/** F6/F7 /6: DIV; /7: IDIV */
export function divOne(c: X86Cpu, sz: number, signed: boolean): void {
  const g = c.state.gpr;
  const s = rdE(c, sz), sh = c.rhi;
  switch (sz) {
    case 0: {
      const a = g[0] & 0xffff;
      let q: number, r: number;
      if (signed) {
        const n = (a << 16) >> 16, d = (s << 24) >> 24;
        if (d === 0) c.raise(DE_VECTOR, -1);
        q = Math.trunc(n / d); r = n - q * d;
        if (q > 127 || q < -128) c.raise(DE_VECTOR, -1);
      } else {
        const d = s & 0xff;
        if (d === 0) c.raise(DE_VECTOR, -1);
        q = Math.floor(a / d); r = a - q * d;
        if (q > 0xff) c.raise(DE_VECTOR, -1);
      }
      c.setReg(1, 0, (q & 0xff) | ((r & 0xff) << 8), 0);
      return;
    }
    case 1: {
      const lo = g[0] & 0xffff, hi = g[4] & 0xffff;
      let q: number, r: number;
      if (signed) {
        const n = ((hi << 16) | lo) | 0, d = (s << 16) >> 16;
        if (d === 0) c.raise(DE_VECTOR, -1);
        q = Math.trunc(n / d); r = n - q * d;
        if (q > 32767 || q < -32768) c.raise(DE_VECTOR, -1);
      } else {
        const n = hi * 65536 + lo, d = s & 0xffff;
        if (d === 0) c.raise(DE_VECTOR, -1);
        q = Math.floor(n / d); r = n - q * d;
        if (q > 0xffff) c.raise(DE_VECTOR, -1);
      }
      c.setReg(1, 0, q, 0); c.setReg(1, 2, r, 0);
      return;
    }
    case 2: {
      if (s === 0) c.raise(DE_VECTOR, -1);
      let nlo = g[0] >>> 0, nhi = g[4] >>> 0;
      let d = s >>> 0;
      let neg = false, rneg = false;
      if (signed) {
        if (g[4] < 0) { // negate the 64-bit dividend
          nlo = (~nlo + 1) >>> 0; nhi = (~nhi + (nlo === 0 ? 1 : 0)) >>> 0;
          neg = true; rneg = true;
        }
        if (s < 0) { d = (-s) >>> 0; neg = !neg; }
      }
      if (nhi >= d) c.raise(DE_VECTOR, -1);
      // Long division in 16-bit steps keeps every intermediate below 2^53.
      let t = nhi * 65536 + (nlo >>> 16);
      const q1 = Math.floor(t / d);
      t = (t - q1 * d) * 65536 + (nlo & 0xffff);
      const q0 = Math.floor(t / d);
      const r = t - q0 * d;
      const q = q1 * 65536 + q0;
      if (signed) {
        if (neg ? q > 0x80000000 : q > 0x7fffffff) c.raise(DE_VECTOR, -1);
        c.setReg(2, 0, neg ? -q : q, 0); c.setReg(2, 2, rneg ? -r : r, 0);
      } else {
        c.setReg(2, 0, q, 0); c.setReg(2, 2, r, 0);
      }
      return;
    }
    default: div64(c, s, sh, signed);
  }
}

/** 128/64 division: RDX:RAX / (sh:s). */
function div64(c: X86Cpu, s: number, sh: number, signed: boolean): void {
  const g = c.state.gpr;
  if ((s | sh) === 0) c.raise(DE_VECTOR, -1);
  let n0 = g[0] >>> 0, n1 = g[1] >>> 0, n2 = g[4] >>> 0, n3 = g[5] >>> 0;
  let d0 = s >>> 0, d1 = sh >>> 0;
  let qneg = false, rneg = false;
  if (signed) {
    if (g[5] < 0) {
      // negate 128-bit dividend
      n0 = (~n0 >>> 0); n1 = (~n1 >>> 0); n2 = (~n2 >>> 0); n3 = (~n3 >>> 0);
      let k = n0 + 1; n0 = k >>> 0; let carry = k > 0xffffffff ? 1 : 0;
      k = n1 + carry; n1 = k >>> 0; carry = k > 0xffffffff ? 1 : 0;
      k = n2 + carry; n2 = k >>> 0; carry = k > 0xffffffff ? 1 : 0;
      n3 = (n3 + carry) >>> 0;
      qneg = true; rneg = true;
    }
    if (sh < 0) {
      d0 = (~d0 >>> 0); d1 = (~d1 >>> 0);
      const k = d0 + 1; d0 = k >>> 0; d1 = (d1 + (k > 0xffffffff ? 1 : 0)) >>> 0;
      qneg = !qneg;
    }
  }
  // Quotient must fit in 64 bits: high half of dividend < divisor.
  if (n3 > d1 || (n3 === d1 && n2 >= d0)) c.raise(DE_VECTOR, -1);
  let q0: number, q1: number, r0: number, r1: number;
  const nHiZero = n3 === 0 && n2 === 0;
  if (nHiZero && n1 < 0x200000 && d1 < 0x200000) {
    const nn = n1 * 4294967296 + n0, dd = d1 * 4294967296 + d0;
    const q = Math.floor(nn / dd), r = nn - q * dd;
    q0 = q % 4294967296; q1 = Math.floor(q / 4294967296);
    r0 = r % 4294967296; r1 = Math.floor(r / 4294967296);
  } else {
    // Restoring shift-subtract division over 128 bits (the remainder stays below the divisor).
    let rl = n2, rh = n3; // running remainder (64-bit), starts as the high half
    let ql = 0, qh = 0;
    for (let i = 63; i >= 0; i--) {
      const bit = i >= 32 ? (n1 >>> (i - 32)) & 1 : (n0 >>> i) & 1;
      const top = rh >>> 31;
      rh = ((rh << 1) | (rl >>> 31)) >>> 0; rl = ((rl << 1) | bit) >>> 0;
      let ge = top === 1 || rh > d1 || (rh === d1 && rl >= d0);
      if (ge) {
        const t = rl - d0; rl = t >>> 0; rh = (rh - d1 - (t < 0 ? 1 : 0)) >>> 0;
        if (i >= 32) qh |= 1 << (i - 32); else ql |= 1 << i;
      }
      ge = false;
    }
    q0 = ql >>> 0; q1 = qh >>> 0; r0 = rl; r1 = rh;
  }
  if (signed) {
    if (qneg ? q1 > 0x80000000 || (q1 === 0x80000000 && q0 !== 0) : q1 >= 0x80000000) c.raise(DE_VECTOR, -1);
    if (qneg) { const k = ((~q0) >>> 0) + 1; q0 = k >>> 0; q1 = ((~q1) + (k > 0xffffffff ? 1 : 0)) >>> 0; }
    if (rneg) { const k = ((~r0) >>> 0) + 1; r0 = k >>> 0; r1 = ((~r1) + (k > 0xffffffff ? 1 : 0)) >>> 0; }
  }
  g[0] = q0 | 0; g[1] = q1 | 0; g[4] = r0 | 0; g[5] = r1 | 0;
}
