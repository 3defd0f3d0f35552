/**
 * The x87 FPU register file and its memory images (SDM Vol. 1 8.1, 8.1.7 tag word, 8.1.8-8.1.10
 * FIP/FDP/FOP, Figures 8-9..8-12 FSTENV/FSAVE layouts; Vol. 2 FXSAVE Tables 3-43..3-46).
 * Physical registers R0-R7 are (lo, hi, se) triples in one Uint32Array; ST(i) is R[(TOP + i) & 7].
 */
import { FP_IE } from "./softfloat.js";

export const TAG_VALID = 0;
export const TAG_ZERO = 1;
export const TAG_SPECIAL = 2;
export const TAG_EMPTY = 3;

/** Status word bits (SDM Vol.1 Figure 8-4). */
export const SW_SF = 0x0040;
export const SW_ES = 0x0080;
export const SW_C0 = 0x0100;
export const SW_C1 = 0x0200;
export const SW_C2 = 0x0400;
export const SW_C3 = 0x4000;
export const SW_B = 0x8000;

/** Tag of a register value (SDM Vol.1 8.1.7): valid, zero or special (NaN, inf, denormal, unsupported). */
export function classifyTag(se: number, hi: number, lo: number): number {
  const e = se & 0x7fff;
  if (e === 0x7fff) return TAG_SPECIAL;
  if (e === 0) return (hi | lo) === 0 ? TAG_ZERO : TAG_SPECIAL;
  return hi >>> 31 ? TAG_VALID : TAG_SPECIAL;
}

export class X87State {
  /** Physical registers R0-R7 as (lo, hi, se) triples. */
  readonly regs = new Uint32Array(24);
  /** Control word (FNINIT value 0x037F). */
  cw = 0x037f;
  /** Status word without TOP (bits 13:11 live in `top`). */
  sw = 0;
  top = 0;
  /** Full tag word, two bits per physical register. */
  tag = 0xffff;
  /** Last instruction pointer (offset; fipHi = bits 63:32 in 64-bit mode), code selector, opcode (11 bits). */
  fip = 0;
  fipHi = 0;
  fcs = 0;
  fop = 0;
  /** Last data pointer (offset, fdpHi) and data selector. */
  fdp = 0;
  fdpHi = 0;
  fds = 0;

  /** FNINIT (SDM Vol.2 FINIT): default control word, everything else cleared, all registers empty. */
  init(): void {
    this.cw = 0x037f;
    this.sw = 0;
    this.top = 0;
    this.tag = 0xffff;
    this.fip = this.fipHi = this.fcs = this.fop = 0;
    this.fdp = this.fdpHi = this.fds = 0;
  }

  /** Status word as software sees it (FNSTSW): TOP in bits 13:11. */
  statusWord(): number {
    return ((this.sw & ~0x3800) | (this.top << 11)) & 0xffff;
  }

  /** Load a status word (FLDENV/FRSTOR), TOP included. */
  setStatusWord(v: number): void {
    this.top = (v >>> 11) & 7;
    this.sw = v & ~0x3800 & 0xffff;
  }

  /** Physical register index of ST(i). */
  phys(i: number): number {
    return (this.top + i) & 7;
  }

  tagOf(phys: number): number {
    return (this.tag >>> (phys * 2)) & 3;
  }

  setTag(phys: number, t: number): void {
    this.tag = (this.tag & ~(3 << (phys * 2))) | (t << (phys * 2));
  }

  isEmpty(i: number): boolean {
    return this.tagOf(this.phys(i)) === TAG_EMPTY;
  }

  stSe(i: number): number {
    return this.regs[this.phys(i) * 3 + 2]!;
  }

  stHi(i: number): number {
    return this.regs[this.phys(i) * 3 + 1]!;
  }

  stLo(i: number): number {
    return this.regs[this.phys(i) * 3]!;
  }

  /** Write ST(i) and retag it from its contents. */
  setSt(i: number, se: number, hi: number, lo: number): void {
    const p = this.phys(i);
    this.regs[p * 3] = lo;
    this.regs[p * 3 + 1] = hi;
    this.regs[p * 3 + 2] = se & 0xffff;
    this.setTag(p, classifyTag(se, hi, lo));
  }

  /**
   * Push (FLD and friends). If the new ST(0) is not empty it is a stack overflow: IE+SF with
   * C1=1 (SDM Vol.1 8.5.1.1); masked, the real indefinite is pushed instead. Returns false when
   * the overflow is unmasked (nothing pushed; ES/B set so the next waiting instruction faults #MF).
   */
  push(se: number, hi: number, lo: number): boolean {
    const nt = (this.top - 1) & 7;
    if (this.tagOf(nt) !== TAG_EMPTY) {
      this.sw |= FP_IE | SW_SF | SW_C1;
      if ((this.cw & FP_IE) === 0) {
        this.sw |= SW_ES | SW_B;
        return false;
      }
      se = 0xffff;
      hi = 0xc0000000;
      lo = 0;
    }
    this.top = nt;
    this.setSt(0, se, hi, lo);
    return true;
  }

  /** Pop: mark ST(0) empty and increment TOP. */
  pop(): void {
    this.setTag(this.top, TAG_EMPTY);
    this.top = (this.top + 1) & 7;
  }

  /**
   * Record a stack underflow (an operand register is empty): IE+SF with C1=0. Returns true if
   * masked, in which case the operation delivers the real indefinite.
   */
  stackUnderflow(): boolean {
    this.sw = (this.sw | FP_IE | SW_SF) & ~SW_C1;
    if ((this.cw & FP_IE) === 0) {
      this.sw |= SW_ES | SW_B;
      return false;
    }
    return true;
  }

  /** Merge exception flags from an operation into the status word; sets ES and B when any is unmasked. */
  raise(flags: number): void {
    this.sw |= flags & 0x3f;
    if ((this.sw & ~this.cw & 0x3f) !== 0) this.sw |= SW_ES | SW_B;
  }

  /** Abridged tag (FXSAVE): bit i set when physical register i is not empty. */
  abridgedTag(): number {
    let t = 0;
    for (let i = 0; i < 8; i++) if (this.tagOf(i) !== TAG_EMPTY) t |= 1 << i;
    return t;
  }

  /** Full tag word from an abridged one (FXRSTOR): non-empty registers are classified by content. */
  setAbridgedTag(t: number): void {
    let full = 0;
    for (let i = 0; i < 8; i++) {
      const tg = (t >>> i) & 1 ? classifyTag(this.regs[i * 3 + 2]!, this.regs[i * 3 + 1]!, this.regs[i * 3]!) : TAG_EMPTY;
      full |= tg << (i * 2);
    }
    this.tag = full;
  }

  /** Full tag word for FSTENV/FSAVE: empty stays empty, other registers are classified from their contents. */
  fullTagWord(): number {
    let full = 0;
    for (let i = 0; i < 8; i++) {
      const tg = this.tagOf(i) === TAG_EMPTY ? TAG_EMPTY : classifyTag(this.regs[i * 3 + 2]!, this.regs[i * 3 + 1]!, this.regs[i * 3]!);
      full |= tg << (i * 2);
    }
    return full;
  }
}

// ---------------------------------------------------------------------------------------------
// Little-endian helpers

function w16(m: Uint8Array, o: number, v: number): void {
  m[o] = v;
  m[o + 1] = v >>> 8;
}
function w32(m: Uint8Array, o: number, v: number): void {
  m[o] = v;
  m[o + 1] = v >>> 8;
  m[o + 2] = v >>> 16;
  m[o + 3] = v >>> 24;
}
function r16(m: Uint8Array, o: number): number {
  return m[o]! | (m[o + 1]! << 8);
}
function r32(m: Uint8Array, o: number): number {
  return (m[o]! | (m[o + 1]! << 8) | (m[o + 2]! << 16) | (m[o + 3]! << 24)) >>> 0;
}

/** Environment image formats (SDM Vol.1 Figures 8-9..8-12): protected/real mode, 32/16-bit operand size. */
export const ENV_PM32 = 0;
export const ENV_RM32 = 1;
export const ENV_PM16 = 2;
export const ENV_RM16 = 3;

/** Size in bytes of an FSTENV image (an FSAVE image adds 80 bytes of registers). */
export function envSize(format: number): number {
  return format === ENV_PM32 || format === ENV_RM32 ? 28 : 14;
}

/**
 * FNSTENV image. In the real-mode formats the pointers are stored as 20/32-bit linear addresses,
 * selector * 16 + offset, with FOP beside the upper instruction-pointer bits. The reserved upper
 * halves of the 32-bit formats' first three fields (and of FDS in the protected-mode format) are
 * written as ones, as Intel CPUs do.
 * (FNSTENV then masks all exceptions; that side effect belongs to the caller.)
 */
export function encodeEnv(s: X87State, m: Uint8Array, o: number, format: number): void {
  const big = format === ENV_PM32 || format === ENV_RM32;
  const step = big ? 4 : 2;
  m.fill(0, o, o + envSize(format));
  if (big) for (let k = 0; k < 3; k++) w16(m, o + k * 4 + 2, 0xffff);
  w16(m, o, s.cw);
  w16(m, o + step, s.statusWord());
  w16(m, o + 2 * step, s.fullTagWord());
  const at = o + 3 * step;
  if (format === ENV_PM32) {
    w32(m, at, s.fip);
    w32(m, at + 4, (s.fcs & 0xffff) | ((s.fop & 0x7ff) << 16));
    w32(m, at + 8, s.fdp);
    w16(m, at + 12, s.fds);
    w16(m, at + 14, 0xffff);
  } else if (format === ENV_PM16) {
    w16(m, at, s.fip);
    w16(m, at + 2, s.fcs);
    w16(m, at + 4, s.fdp);
    w16(m, at + 6, s.fds);
  } else {
    const ip = (s.fcs * 16 + s.fip) >>> 0, dp = (s.fds * 16 + s.fdp) >>> 0;
    if (format === ENV_RM32) {
      w32(m, at, ip & 0xffff);
      w32(m, at + 4, (((ip >>> 16) & 0xffff) << 12) | (s.fop & 0x7ff));
      w32(m, at + 8, dp & 0xffff);
      w32(m, at + 12, ((dp >>> 16) & 0xffff) << 12);
    } else {
      w16(m, at, ip & 0xffff);
      w16(m, at + 2, (((ip >>> 16) & 0xf) << 12) | (s.fop & 0x7ff));
      w16(m, at + 4, dp & 0xffff);
      w16(m, at + 6, ((dp >>> 16) & 0xf) << 12);
    }
  }
}

/** FLDENV: load control, status, tag and pointers from an environment image (real-mode pointers come back as linear offsets with zero selectors). */
export function decodeEnv(s: X87State, m: Uint8Array, o: number, format: number): void {
  const big = format === ENV_PM32 || format === ENV_RM32;
  const step = big ? 4 : 2;
  s.cw = r16(m, o);
  s.setStatusWord(r16(m, o + step));
  s.tag = r16(m, o + 2 * step);
  const at = o + 3 * step;
  s.fipHi = 0;
  s.fdpHi = 0;
  if (format === ENV_PM32) {
    s.fip = r32(m, at);
    const w = r32(m, at + 4);
    s.fcs = w & 0xffff;
    s.fop = (w >>> 16) & 0x7ff;
    s.fdp = r32(m, at + 8);
    s.fds = r16(m, at + 12);
  } else if (format === ENV_PM16) {
    s.fip = r16(m, at);
    s.fcs = r16(m, at + 2);
    s.fdp = r16(m, at + 4);
    s.fds = r16(m, at + 6);
    // The 16-bit protected-mode image has no FOP field: it loads as 0 (an Intel Xeon does so).
    s.fop = 0;
  } else if (format === ENV_RM32) {
    const w = r32(m, at + 4);
    s.fip = ((r32(m, at) & 0xffff) | (((w >>> 12) & 0xffff) << 16)) >>> 0;
    s.fop = w & 0x7ff;
    s.fdp = ((r32(m, at + 8) & 0xffff) | (((r32(m, at + 12) >>> 12) & 0xffff) << 16)) >>> 0;
    s.fcs = 0;
    s.fds = 0;
  } else {
    const w = r16(m, at + 2);
    s.fip = r16(m, at) | (((w >>> 12) & 0xf) << 16);
    s.fop = w & 0x7ff;
    s.fdp = r16(m, at + 4) | (((r16(m, at + 6) >>> 12) & 0xf) << 16);
    s.fcs = 0;
    s.fds = 0;
  }
}

function writeReg80(s: X87State, phys: number, m: Uint8Array, o: number): void {
  w32(m, o, s.regs[phys * 3]!);
  w32(m, o + 4, s.regs[phys * 3 + 1]!);
  w16(m, o + 8, s.regs[phys * 3 + 2]!);
}

function readReg80(s: X87State, phys: number, m: Uint8Array, o: number): void {
  s.regs[phys * 3] = r32(m, o);
  s.regs[phys * 3 + 1] = r32(m, o + 4);
  s.regs[phys * 3 + 2] = r16(m, o + 8);
}

/** FNSAVE image: the environment then ST(0)..ST(7), 10 bytes each. (FNSAVE then reinitializes: s.init().) */
export function encodeFsave(s: X87State, m: Uint8Array, o: number, format: number): void {
  encodeEnv(s, m, o, format);
  const base = o + envSize(format);
  for (let i = 0; i < 8; i++) writeReg80(s, s.phys(i), m, base + i * 10);
}

/** FRSTOR. */
export function decodeFsave(s: X87State, m: Uint8Array, o: number, format: number): void {
  decodeEnv(s, m, o, format);
  const base = o + envSize(format);
  for (let i = 0; i < 8; i++) readReg80(s, s.phys(i), m, base + i * 10);
}

/** FXSAVE image forms: with REX.W (64-bit FIP/FDP) or without (32-bit offsets plus selectors). */
export const FXSAVE_64 = 0;
export const FXSAVE_32 = 1;

/**
 * FXSAVE: the 512-byte image (SDM Vol.2 FXSAVE Tables 3-43/3-44): x87 state with the abridged
 * tag, MXCSR and MXCSR_MASK, ST/MM registers in 16-byte slots, then `nXmm` XMM registers from
 * the Int32Array file (8 outside 64-bit mode, 16 in it). Reserved bytes 464-511 are not touched.
 */
export function encodeFxsave(s: X87State, mxcsr: number, mxcsrMask: number, xmm: Int32Array, nXmm: number, m: Uint8Array, o: number, form: number): void {
  w16(m, o, s.cw);
  w16(m, o + 2, s.statusWord());
  m[o + 4] = s.abridgedTag();
  m[o + 5] = 0;
  w16(m, o + 6, s.fop & 0x7ff);
  w32(m, o + 8, s.fip);
  w32(m, o + 12, form === FXSAVE_64 ? s.fipHi : s.fcs & 0xffff);
  w32(m, o + 16, s.fdp);
  w32(m, o + 20, form === FXSAVE_64 ? s.fdpHi : s.fds & 0xffff);
  w32(m, o + 24, mxcsr);
  w32(m, o + 28, mxcsrMask);
  for (let i = 0; i < 8; i++) {
    const at = o + 32 + i * 16;
    writeReg80(s, s.phys(i), m, at);
    m.fill(0, at + 10, at + 16);
  }
  for (let i = 0; i < nXmm; i++) for (let k = 0; k < 4; k++) w32(m, o + 160 + i * 16 + k * 4, xmm[i * 4 + k]!);
}

/**
 * FXRSTOR: loads the x87 state and `nXmm` XMM registers and returns the image's MXCSR (the
 * caller raises #GP if it sets bits outside MXCSR_MASK, SDM Vol.2 FXRSTOR, and then loads it).
 */
export function decodeFxsave(s: X87State, xmm: Int32Array, nXmm: number, m: Uint8Array, o: number, form: number): number {
  s.cw = r16(m, o);
  s.setStatusWord(r16(m, o + 2));
  s.fop = r16(m, o + 6) & 0x7ff;
  s.fip = r32(m, o + 8);
  s.fdp = r32(m, o + 16);
  if (form === FXSAVE_64) {
    s.fipHi = r32(m, o + 12);
    s.fdpHi = r32(m, o + 20);
    s.fcs = 0;
    s.fds = 0;
  } else {
    s.fipHi = 0;
    s.fdpHi = 0;
    s.fcs = r16(m, o + 12);
    s.fds = r16(m, o + 20);
  }
  for (let i = 0; i < 8; i++) readReg80(s, s.phys(i), m, o + 32 + i * 16);
  s.setAbridgedTag(m[o + 4]!);
  for (let i = 0; i < nXmm; i++) for (let k = 0; k < 4; k++) xmm[i * 4 + k] = r32(m, o + 160 + i * 16 + k * 4) | 0;
  return r32(m, o + 24);
}
