/**
 * RFLAGS with lazily computed arithmetic flags.
 *
 * ADD/ADC/SUB/SBB/CMP/NEG/INC/DEC and the logical operations record their operands and result
 * instead of computing CF/PF/AF/ZF/SF/OF; the flags are derived when something reads them.
 * For 8/16/32-bit operations the operands and result are stored shifted left by `lsh`
 * (24, 16 or 0) so that the sign is bit 31 and one set of formulas serves every size; 64-bit
 * operations keep the high halves in ldstH/lsrcH/lresH (`l64` = 1).
 *
 * Undefined-flag policy (one rule for the whole core, SDM leaves these "undefined"):
 * - AF after logical ops, shifts, rotates, multiplies, BT*, BSF/BSR: cleared.
 * - OF after multi-bit shifts/rotates: computed as for a 1-bit shift/rotate of the last step
 *   (what current Intel cores do), SF/ZF/PF after MUL/IMUL: from the low half of the result,
 *   flags after DIV/IDIV: unchanged, CF/OF/SF/AF/PF after BSF/BSR/BT: unchanged except as defined.
 */
import type { X86Cpu } from "./cpu.js";

export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const TF = 0x100;
export const IF = 0x200;
export const DF = 0x400;
export const OF = 0x800;
export const IOPL = 0x3000;
export const NT = 0x4000;
export const RF = 0x10000;
export const VM = 0x20000;
export const AC = 0x40000;
export const VIF = 0x80000;
export const VIP = 0x100000;
export const ID = 0x200000;
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** Bits software can ever set (the rest read as fixed values; bit 1 is always 1). */
export const RFLAGS_VALID = ARITH | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;

export const LOP_NONE = 0;
export const LOP_ADD = 1;
export const LOP_ADC = 2;
export const LOP_SUB = 3;
export const LOP_SBB = 4;
export const LOP_LOGIC = 5;
export const LOP_INC = 6;
export const LOP_DEC = 7;

/** PF for each byte value (bit 2 set when the number of one bits is even). */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i, n = 0;
  while (b) { n += b & 1; b >>= 1; }
  PARITY[i] = (n & 1) === 0 ? PF : 0;
}

function ltu64(aH: number, aL: number, bH: number, bL: number): boolean {
  return (aH >>> 0) < (bH >>> 0) || (aH === bH && (aL >>> 0) < (bL >>> 0));
}

export function getCF(c: X86Cpu): number {
  switch (c.lop) {
    case LOP_ADD:
      if (c.l64) return ltu64(c.lresH, c.lres, c.ldstH, c.ldst) ? 1 : 0;
      return (c.lres >>> 0) < (c.ldst >>> 0) ? 1 : 0;
    case LOP_ADC:
      if (c.l64) return ltu64(c.lresH, c.lres, c.ldstH, c.ldst) || (c.lcin !== 0 && c.lres === c.ldst && c.lresH === c.ldstH) ? 1 : 0;
      return (c.lres >>> 0) < (c.ldst >>> 0) || (c.lcin !== 0 && c.lres === c.ldst) ? 1 : 0;
    case LOP_SUB:
      if (c.l64) return ltu64(c.ldstH, c.ldst, c.lsrcH, c.lsrc) ? 1 : 0;
      return (c.ldst >>> 0) < (c.lsrc >>> 0) ? 1 : 0;
    case LOP_SBB:
      if (c.l64) return ltu64(c.ldstH, c.ldst, c.lsrcH, c.lsrc) || (c.lcin !== 0 && c.ldst === c.lsrc && c.ldstH === c.lsrcH) ? 1 : 0;
      return (c.ldst >>> 0) < (c.lsrc >>> 0) || (c.lcin !== 0 && c.ldst === c.lsrc) ? 1 : 0;
    case LOP_LOGIC:
      return 0;
    default:
      return c.fl & CF;
  }
}

export function getZF(c: X86Cpu): number {
  if (c.lop === LOP_NONE) return (c.fl >>> 6) & 1;
  return (c.l64 ? (c.lres | c.lresH) : c.lres) === 0 ? 1 : 0;
}

export function getSF(c: X86Cpu): number {
  if (c.lop === LOP_NONE) return (c.fl >>> 7) & 1;
  return (c.l64 ? c.lresH : c.lres) < 0 ? 1 : 0;
}

export function getOF(c: X86Cpu): number {
  let d: number, s: number, r: number;
  switch (c.lop) {
    case LOP_NONE: return (c.fl >>> 11) & 1;
    case LOP_LOGIC: return 0;
    default:
      if (c.l64) { d = c.ldstH; s = c.lsrcH; r = c.lresH; } else { d = c.ldst; s = c.lsrc; r = c.lres; }
  }
  if (c.lop === LOP_ADD || c.lop === LOP_ADC || c.lop === LOP_INC) return ((d ^ r) & (s ^ r)) < 0 ? 1 : 0;
  return ((d ^ s) & (d ^ r)) < 0 ? 1 : 0;
}

export function getPF(c: X86Cpu): number {
  if (c.lop === LOP_NONE) return c.fl & PF;
  return PARITY[(c.lres >>> c.lsh) & 0xff];
}

export function getAF(c: X86Cpu): number {
  if (c.lop === LOP_NONE) return c.fl & AF;
  if (c.lop === LOP_LOGIC) return 0;
  return ((c.ldst ^ c.lsrc ^ c.lres) >>> c.lsh) & AF;
}

/** Fold the lazy arithmetic flags into `c.fl`. */
export function flagsSync(c: X86Cpu): void {
  if (c.lop === LOP_NONE) return;
  const v = getCF(c) | getPF(c) | getAF(c) | (getZF(c) << 6) | (getSF(c) << 7) | (getOF(c) << 11);
  c.fl = (c.fl & ~ARITH) | v;
  c.lop = LOP_NONE;
}

/** Set all six arithmetic flags from `v` (eagerly computed by the caller). */
export function setArith(c: X86Cpu, v: number): void {
  c.fl = (c.fl & ~ARITH) | (v & ARITH);
  c.lop = LOP_NONE;
}

/** Set only the bits of `mask` among the arithmetic flags. */
export function setArithMasked(c: X86Cpu, mask: number, v: number): void {
  flagsSync(c);
  c.fl = (c.fl & ~mask) | (v & mask);
}

/** SF/ZF/PF (and CF=OF=AF=0) of a result of `bits` width (8/16/32), for eager users. */
export function szp(res: number, bits: number): number {
  const sh = 32 - bits;
  const r = (res << sh) | 0;
  return (r === 0 ? ZF : 0) | (r < 0 ? SF : 0) | PARITY[res & 0xff];
}

/** SF/ZF/PF of a 64-bit result lo/hi. */
export function szp64(lo: number, hi: number): number {
  return ((lo | hi) === 0 ? ZF : 0) | (hi < 0 ? SF : 0) | PARITY[lo & 0xff];
}

/** Condition code cc (the low nibble of Jcc/SETcc/CMOVcc) evaluated on the current flags. */
export function cond(c: X86Cpu, cc: number): boolean {
  let r: number;
  switch (cc >> 1) {
    case 0: r = getOF(c); break;
    case 1: r = getCF(c); break;
    case 2: r = getZF(c); break;
    case 3: r = getCF(c) | getZF(c); break;
    case 4: r = getSF(c); break;
    case 5: r = getPF(c) ? 1 : 0; break;
    case 6: r = getSF(c) ^ getOF(c); break;
    default: r = getZF(c) | (getSF(c) ^ getOF(c)); break;
  }
  return (r !== 0) !== ((cc & 1) !== 0);
}
