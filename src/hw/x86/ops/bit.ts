/**
 * Bit instructions: BT/BTS/BTR/BTC, BSF/BSR, POPCNT/LZCNT/TZCNT, the BMI1/BMI2 group (VEX:
 * ANDN, BEXTR, BLSI, BLSMSK, BLSR, BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX), ADCX/ADOX,
 * CRC32, and the BCD adjustments DAA/DAS/AAA/AAS/AAM/AAD (SDM Vol. 2).
 */
import type { X86Cpu } from "../cpu.js";
import { flagsSync, getCF, getOF, getAF, setArith, setArithMasked, szp, CF, ZF, OF, AF, SF } from "../flags.js";
import { DE_VECTOR, UD_VECTOR } from "../fault.js";
import { linAddr, rdL, rdLW, wrL } from "../mmu.js";
import { ea, rdE, rdG, wrG } from "./operand.js";

function bitOp(c: X86Cpu, kind: number, offLo: number, offHi: number, immForm: boolean): void {
  const sz = c.osz, w = 8 << sz;
  let lo: number, hi = 0, la = 0;
  const bit = offLo & (w - 1);
  if (c.mod === 3) {
    lo = c.getReg(sz, c.rm); hi = c.rhi;
  } else {
    let off = ea(c);
    if (!immForm) {
      // Register bit offset: signed, may address outside the operand (SDM BT "bit base").
      const bitOff = sz === 3 ? offHi * 4294967296 + (offLo >>> 0) : sz === 2 ? offLo : (offLo << 16) >> 16;
      off += Math.floor(bitOff / w) * (w >> 3);
      const asz = c.asz;
      off = asz === 1 ? off & 0xffff : asz === 2 ? off >>> 0 : off;
    }
    la = linAddr(c, c.seg, off, w >> 3, kind === 0 ? 1 : 2);
    lo = kind === 0 ? rdL(c, sz, la) : rdLW(c, sz, la); hi = c.rhi;
  }
  const inHi = sz === 3 && bit >= 32;
  const b = inHi ? (hi >>> (bit - 32)) & 1 : (lo >>> bit) & 1;
  setArithMasked(c, CF, b);
  if (kind === 0) return;
  const m = 1 << (inHi ? bit - 32 : bit);
  if (inHi) hi = kind === 1 ? hi | m : kind === 2 ? hi & ~m : hi ^ m;
  else lo = kind === 1 ? lo | m : kind === 2 ? lo & ~m : lo ^ m;
  if (c.mod === 3) c.setReg(sz, c.rm, lo, hi); else wrL(c, sz, la, lo, hi);
}

/** 0F A3 BT, AB BTS, B3 BTR, BB BTC (Ev, Gv) */
export function btEvGv(c: X86Cpu): void {
  const kind = c.opb === 0xa3 ? 0 : c.opb === 0xab ? 1 : c.opb === 0xb3 ? 2 : 3;
  const v = rdG(c, c.osz);
  bitOp(c, kind, v, c.rhi, false);
}
/** 0F BA /4-/7: BT/BTS/BTR/BTC Ev, Ib */
export function grp8(c: X86Cpu): void {
  const r = c.reg & 7;
  if (r < 4) c.unimplemented(0x1ba00 | r);
  bitOp(c, r - 4, c.imm & 0xff, 0, true);
}

function clz32(x: number): number { return Math.clz32(x); }
function ctz32(x: number): number { return x === 0 ? 32 : 31 - Math.clz32(x & -x); }
function popcnt32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** 0F BC: BSF (F3: TZCNT); 0F BD: BSR (F3: LZCNT) */
export function bsfBsr(c: X86Cpu): void {
  const sz = c.osz, w = 8 << sz;
  let lo = rdE(c, sz);
  const hi = sz === 3 ? c.rhi : 0;
  if (sz === 1) lo &= 0xffff;
  const zero = (lo | hi) === 0;
  const rev = c.opb === 0xbd;
  let n: number;
  if (rev) n = sz === 3 ? (hi !== 0 ? clz32(hi) : 32 + clz32(lo)) : clz32(lo) - (32 - w);
  else n = sz === 3 ? (lo !== 0 ? ctz32(lo) : 32 + ctz32(hi)) : zero ? w : ctz32(lo);
  if (c.rep === 1) {
    // TZCNT / LZCNT: count (operand size if zero), CF = source zero, ZF = result zero.
    const cnt = zero ? w : n;
    wrG(c, sz, cnt, 0);
    flagsSync(c);
    c.fl = (c.fl & ~(CF | ZF)) | (zero ? CF : 0) | (cnt === 0 ? ZF : 0);
    return;
  }
  flagsSync(c);
  if (zero) { c.fl |= ZF; return; }
  c.fl &= ~ZF;
  wrG(c, sz, rev ? w - 1 - n : n, 0);
}

/** F3 0F B8: POPCNT */
export function popcnt(c: X86Cpu): void {
  if (c.rep !== 1) c.raise(UD_VECTOR, -1);
  const sz = c.osz;
  let lo = rdE(c, sz);
  const hi = sz === 3 ? c.rhi : 0;
  if (sz === 1) lo &= 0xffff;
  const n = popcnt32(lo) + popcnt32(hi);
  wrG(c, sz, n, 0);
  setArith(c, n === 0 ? ZF : 0);
}

// ---- BMI1/BMI2 (VEX) ----
function vexSz(c: X86Cpu): number { return c.m64 && c.vexW ? 3 : 2; }

function bmiFlags(c: X86Cpu, sz: number, lo: number, hi: number, cf: number): void {
  setArith(c, ((sz === 3 ? (lo | hi) === 0 : lo === 0) ? ZF : 0) | ((sz === 3 ? hi : lo) < 0 ? SF : 0) | cf);
}

/** VEX.0F38 F2: ANDN Gy, By, Ey */
export function andn(c: X86Cpu): void {
  if (c.vexL) c.raise(UD_VECTOR, -1);
  const sz = vexSz(c);
  const s = rdE(c, sz), sh = c.rhi;
  const a = c.getReg(sz, c.vexV), ah = c.rhi;
  const lo = ~a & s, hi = sz === 3 ? ~ah & sh : 0;
  wrG(c, sz, lo, hi);
  bmiFlags(c, sz, lo, hi, 0);
}

/** VEX.0F38 F3 /1 BLSR, /2 BLSMSK, /3 BLSI (destination By) */
export function blsGroup(c: X86Cpu): void {
  if (c.vexL) c.raise(UD_VECTOR, -1);
  const sz = vexSz(c);
  const r = c.reg & 7;
  const s = rdE(c, sz), sh = sz === 3 ? c.rhi : 0;
  const zero = (s | sh) === 0;
  // src - 1 and -src on lo/hi
  const m1lo = (s - 1) | 0, m1hi = sz === 3 ? (sh - (s === 0 ? 1 : 0)) | 0 : 0;
  const nlo = -s | 0, nhi = sz === 3 ? (~sh + (s === 0 ? 1 : 0)) | 0 : 0;
  let lo: number, hi: number, cf: number;
  switch (r) {
    case 1: lo = m1lo & s; hi = m1hi & sh; cf = zero ? CF : 0; break;
    case 2: lo = m1lo ^ s; hi = m1hi ^ sh; cf = zero ? CF : 0; break;
    case 3: lo = nlo & s; hi = nhi & sh; cf = zero ? 0 : CF; break;
    default: return c.unimplemented((5 << 8) | 0xf3);
  }
  c.setReg(sz, c.vexV, lo, hi);
  bmiFlags(c, sz, lo, hi, cf);
  if (r === 2) c.fl &= ~ZF;
}

function getBit(lo: number, hi: number, i: number): number { return i < 32 ? (lo >>> i) & 1 : (hi >>> (i - 32)) & 1; }
let oLo = 0, oHi = 0;
function setBit(i: number): void { if (i < 32) oLo |= 1 << i; else oHi |= 1 << (i - 32); }

/** VEX.0F38 F7 (no prefix): BEXTR Gy, Ey, By; (66) SHLX; (F3) SARX; (F2) SHRX */
export function bextrShx(c: X86Cpu): void {
  if (c.vexL) c.raise(UD_VECTOR, -1);
  const sz = vexSz(c), w = 8 << sz;
  const s = rdE(c, sz), sh = sz === 3 ? c.rhi : 0;
  const ctl = c.getReg(sz, c.vexV);
  oLo = 0; oHi = 0;
  if (!c.p66 && !c.rep) {
    const start = ctl & 0xff, len = (ctl >>> 8) & 0xff;
    for (let i = 0; i < len && start + i < w; i++) if (getBit(s, sh, start + i)) setBit(i);
    wrG(c, sz, oLo, oHi);
    bmiFlags(c, sz, oLo, oHi, 0);
    return;
  }
  const n = ctl & (w - 1);
  const kind = c.p66 ? 0 : c.rep === 1 ? 1 : 2; // SHLX, SARX, SHRX
  const sign = sz === 3 ? sh >>> 31 : s >>> 31;
  for (let i = 0; i < w; i++) {
    let src: number;
    if (kind === 0) src = i - n;
    else src = i + n;
    let b: number;
    if (src < 0) b = 0; else if (src >= w) b = kind === 1 ? sign : 0; else b = getBit(s, sh, src);
    if (b) setBit(i);
  }
  wrG(c, sz, oLo, oHi);
}

/** VEX.0F38 F5: (none) BZHI, (F3) PEXT, (F2) PDEP */
export function bzhiPdepPext(c: X86Cpu): void {
  if (c.vexL) c.raise(UD_VECTOR, -1);
  const sz = vexSz(c), w = 8 << sz;
  oLo = 0; oHi = 0;
  if (!c.rep && !c.p66) {
    const s = rdE(c, sz), sh = sz === 3 ? c.rhi : 0;
    const n = c.getReg(sz, c.vexV) & 0xff;
    for (let i = 0; i < w && i < n; i++) if (getBit(s, sh, i)) setBit(i);
    if (n >= w) { oLo = s; oHi = sh; }
    wrG(c, sz, oLo, oHi);
    bmiFlags(c, sz, oLo, oHi, n > w - 1 ? CF : 0);
    return;
  }
  if (c.p66) c.raise(UD_VECTOR, -1);
  const mask = rdE(c, sz), mh = sz === 3 ? c.rhi : 0;
  const src = c.getReg(sz, c.vexV), srch = sz === 3 ? c.rhi : 0;
  let k = 0;
  for (let i = 0; i < w; i++) {
    if (!getBit(mask, mh, i)) continue;
    if (c.rep === 2) { if (getBit(src, srch, k)) setBit(i); } // PDEP
    else if (getBit(src, srch, i)) setBit(k); // PEXT
    k++;
  }
  wrG(c, sz, oLo, oHi);
}

/** VEX.F2.0F38 F6: MULX Gy(hi), By(lo), Ey (unsigned rDX * Ey, no flags) */
export function mulx(c: X86Cpu): void {
  if (c.vexL || c.rep !== 2) c.raise(UD_VECTOR, -1);
  const sz = vexSz(c);
  const s = rdE(c, sz), sh = sz === 3 ? c.rhi : 0;
  const g = c.state.gpr;
  if (sz === 2) {
    const a = g[4] >>> 0, b = s >>> 0;
    const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
    const ll = al * bl, mid = (ll >>> 16) + (al * bh & 0xffff) + (ah * bl & 0xffff);
    const lo = ((mid << 16) | (ll & 0xffff)) | 0;
    const hi = (ah * bh + ((al * bh) >>> 16) + ((ah * bl) >>> 16) + Math.floor(mid / 65536)) | 0;
    c.setReg(2, c.vexV, lo, 0);
    wrG(c, 2, hi, 0);
    return;
  }
  // 64-bit: schoolbook on 16-bit limbs.
  const a = [g[4] & 0xffff, g[4] >>> 16, g[5] & 0xffff, g[5] >>> 16];
  const b = [s & 0xffff, s >>> 16, sh & 0xffff, sh >>> 16];
  const r = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    let carry = 0;
    for (let j = 0; j < 4; j++) {
      const t = r[i + j] + a[i] * b[j] + carry;
      r[i + j] = t % 65536; carry = Math.floor(t / 65536);
    }
    r[i + 4] += carry;
  }
  c.setReg(3, c.vexV, r[0] | (r[1] << 16), r[2] | (r[3] << 16));
  wrG(c, 3, r[4] | (r[5] << 16), r[6] | (r[7] << 16));
}

/** VEX.F2.0F3A F0: RORX Gy, Ey, ib */
export function rorx(c: X86Cpu): void {
  if (c.vexL || c.rep !== 2) c.raise(UD_VECTOR, -1);
  const sz = vexSz(c), w = 8 << sz;
  const s = rdE(c, sz), sh = sz === 3 ? c.rhi : 0;
  const n = c.imm & (w - 1);
  oLo = 0; oHi = 0;
  for (let i = 0; i < w; i++) if (getBit(s, sh, (i + n) % w)) setBit(i);
  wrG(c, sz, oLo, oHi);
}

/** 66 0F38 F6: ADCX (CF only); F3 0F38 F6: ADOX (OF only) */
export function adcxAdox(c: X86Cpu): void {
  const ox = c.rep === 1;
  if (!ox && !c.p66) c.raise(UD_VECTOR, -1);
  const sz = c.m64 && c.osz === 3 ? 3 : 2;
  const s = rdE(c, sz), sh = c.rhi;
  const d = rdG(c, sz), dh = c.rhi;
  const cin = ox ? getOF(c) : getCF(c);
  let hi = 0, cout: number;
  const t = (d >>> 0) + (s >>> 0) + cin;
  const lo = t | 0;
  if (sz === 3) { const u = (dh >>> 0) + (sh >>> 0) + (t > 0xffffffff ? 1 : 0); hi = u | 0; cout = u > 0xffffffff ? 1 : 0; }
  else cout = t > 0xffffffff ? 1 : 0;
  wrG(c, sz, lo, hi);
  flagsSync(c);
  if (ox) c.fl = (c.fl & ~OF) | (cout << 11); else c.fl = (c.fl & ~CF) | cout;
}

const CRC32C = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  let x = i;
  for (let k = 0; k < 8; k++) x = x & 1 ? (x >>> 1) ^ 0x82f63b78 : x >>> 1;
  CRC32C[i] = x;
}

/** F2 0F38 F0/F1: CRC32 Gd/q, Eb/Ev (CRC-32C polynomial) */
export function crc32(c: X86Cpu): void {
  const sz = c.opb === 0xf0 ? 0 : c.osz;
  let v = rdE(c, sz);
  const vh = sz === 3 ? c.rhi : 0;
  let crc = c.getReg(2, c.reg);
  const bytes = 1 << sz;
  for (let i = 0; i < bytes; i++) {
    const b = i < 4 ? (v >>> (8 * i)) & 0xff : (vh >>> (8 * (i - 4))) & 0xff;
    crc = CRC32C[(crc ^ b) & 0xff] ^ (crc >>> 8);
  }
  v = crc;
  c.setReg(c.osz === 3 ? 3 : 2, c.reg, v, 0);
}

// ---- BCD (invalid in 64-bit mode) ----
/** 27: DAA; 2F: DAS */
export function daaDas(c: X86Cpu): void {
  const g = c.state.gpr;
  const oldAl = g[0] & 0xff, oldCf = getCF(c), af = getAF(c);
  let al = oldAl, cf = 0, nf = 0;
  const sub = c.opb === 0x2f;
  if ((al & 0xf) > 9 || af) {
    const t = sub ? al - 6 : al + 6;
    cf = oldCf | (t < 0 || t > 0xff ? 1 : 0);
    al = t & 0xff; nf = AF;
  }
  if (oldAl > 0x99 || oldCf) { al = (sub ? al - 0x60 : al + 0x60) & 0xff; cf = 1; }
  g[0] = (g[0] & ~0xff) | al;
  setArith(c, szp(al, 8) | nf | cf);
}
/** 37: AAA; 3F: AAS */
export function aaaAas(c: X86Cpu): void {
  const g = c.state.gpr;
  let ax = g[0] & 0xffff;
  const sub = c.opb === 0x3f;
  let f = 0;
  if ((ax & 0xf) > 9 || getAF(c)) {
    const al = sub ? (ax & 0xff) - 6 : (ax & 0xff) + 6;
    const ah = sub ? (ax >>> 8) - 1 : (ax >>> 8) + 1;
    ax = ((ah & 0xff) << 8) | (al & 0xff);
    f = AF | CF;
  }
  ax &= 0xff0f;
  g[0] = (g[0] & ~0xffff) | ax;
  setArith(c, szp(ax & 0xff, 8) | f);
}
/** D4 ib: AAM */
export function aam(c: X86Cpu): void {
  const base = c.imm & 0xff;
  if (base === 0) c.raise(DE_VECTOR, -1);
  const g = c.state.gpr;
  const al = g[0] & 0xff;
  const r = al % base;
  g[0] = (g[0] & ~0xffff) | (Math.floor(al / base) << 8) | r;
  setArith(c, szp(r, 8));
}
/** D5 ib: AAD */
export function aad(c: X86Cpu): void {
  const base = c.imm & 0xff;
  const g = c.state.gpr;
  const al = ((g[0] & 0xff) + ((g[0] >>> 8) & 0xff) * base) & 0xff;
  g[0] = (g[0] & ~0xffff) | al;
  setArith(c, szp(al, 8));
}

