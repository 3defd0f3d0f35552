/**
 * SSE/SSE2/SSE4.1 float32/float64 arithmetic with MXCSR semantics (SDM Vol. 1 ch. 10-11,
 * 4.8.3.5 NaN rules, 11.5 exceptions; instruction pages in Vol. 2). Bit exact with hardware:
 * every result is rounded once from an exact intermediate (softfloat.ts), so all four rounding
 * modes, FTZ and DAZ behave as on silicon.
 *
 * Scalar entry points: f32Op() returns the single result bits; f64Op() writes the double result
 * to a Packed (hi:lo). Packed forms (…PS/…PD) over the XMM register file: packedF32Op() and
 * packedF64Op(). Flags go to an FpEnv loaded with setMxcsr(); a scalar instruction ends with
 * sseFinish(), which settles the flags and tells whether the destination is written (no unmasked
 * exception, else #XM, SDM Vol.1 11.5.3). The packed drivers call it themselves.
 */
import {
  CLS_FINITE, CLS_INF, CLS_QNAN, CLS_SNAN, CLS_ZERO, FMT_F32, FMT_F64, FP_DE, FP_IE, FP_PE, FP_ZE, FpEnv, Packed,
  RC_ZERO, Unpacked, addFinite, cmpOrdered, divFinite, formatPrecision, mulFinite, normalize, packIndefinite,
  packInf, packQuietNaN, packZero, roundPack, sqrtFinite, unpackF32, unpackF64,
} from "./softfloat.js";
import { CMP_EQ, CMP_GT, CMP_LT, CMP_UNORDERED, roundToIntegral, toIntCommon } from "./f80.js";

/** MXCSR fields (SDM Vol.1 Figure 10-3). */
export const MXCSR_DAZ = 0x0040;
export const MXCSR_FTZ = 0x8000;
export const MXCSR_DEFAULT = 0x1f80;

/** Load rounding, masks, FTZ and DAZ from MXCSR; clears the per-operation flags. */
export function setMxcsr(env: FpEnv, mxcsr: number): void {
  env.rc = (mxcsr >>> 13) & 3;
  env.masks = (mxcsr >>> 7) & 0x3f;
  env.ftz = (mxcsr & MXCSR_FTZ) !== 0;
  env.daz = (mxcsr & MXCSR_DAZ) !== 0;
  env.x87 = false;
  env.flags = 0;
  env.roundedUp = false;
}

/** False when an unmasked exception was raised: no result is written and #XM (or #UD if CR4.OSXMMEXCPT=0) follows. */
export function sseResultDelivered(env: FpEnv): boolean {
  return (env.flags & ~env.masks & 0x3f) === 0;
}

/**
 * End of an SSE instruction (or of one stage of DPPS/DPPD), whose flags were `before` at its
 * start: when it raised an unmasked pre-computation exception (IE, DE, ZE) in any lane, none of
 * its post-computation flags (OE, UE, PE) is reported (SDM Vol.1 11.5.2; matches the host).
 * Returns whether the destination is written (no unmasked exception at all).
 */
export function sseFinish(env: FpEnv, before = 0): boolean {
  const raised = env.flags & ~before;
  if ((raised & ~env.masks & (FP_IE | FP_DE | FP_ZE)) !== 0) env.flags = before | (raised & (FP_IE | FP_DE | FP_ZE));
  return sseResultDelivered(env);
}

/** Operation codes for f32Op/f64Op and the packed drivers. */
export const SSE_ADD = 0;
export const SSE_SUB = 1;
export const SSE_MUL = 2;
export const SSE_DIV = 3;
export const SSE_MIN = 4;
export const SSE_MAX = 5;
/** Square root of the second operand. */
export const SSE_SQRT = 6;
/** CMPPS/CMPSS predicate imm8[2:0] (SSE) → all-ones or zero. */
export const SSE_CMP = 7;
/** ROUNDPS/ROUNDSS imm8 (SSE4.1) on the second operand. */
export const SSE_ROUND = 8;

const A = new Unpacked();
const B = new Unpacked();
const R = new Unpacked();
const out = new Packed();

function isNaNCls(c: number): boolean {
  return c === CLS_QNAN || c === CLS_SNAN;
}

/** Comparison predicates 0-7 (SDM Vol.2 CMPPS Table 3-7): result for GT/LT/EQ/UNORDERED, and whether QNaN signals. */
function cmpPredicate(pred: number, c: number): boolean {
  switch (pred & 7) {
    case 0: return c === CMP_EQ;
    case 1: return c === CMP_LT;
    case 2: return c === CMP_LT || c === CMP_EQ;
    case 3: return c === CMP_UNORDERED;
    case 4: return c !== CMP_EQ;
    case 5: return c !== CMP_LT;
    case 6: return !(c === CMP_LT || c === CMP_EQ);
    default: return c !== CMP_UNORDERED;
  }
}

/** Compare two unpacked operands: CMP_*; raises IE for SNaN, or for any NaN when signaling, and DE. */
function compareUnpacked(env: FpEnv, a: Unpacked, b: Unpacked, signaling: boolean): number {
  if (isNaNCls(a.cls) || isNaNCls(b.cls)) {
    if (signaling || a.cls === CLS_SNAN || b.cls === CLS_SNAN) env.flags |= FP_IE;
    return CMP_UNORDERED;
  }
  if (a.den || b.den) env.flags |= FP_DE;
  const c = cmpOrdered(a, b);
  return c < 0 ? CMP_LT : c > 0 ? CMP_GT : CMP_EQ;
}

/**
 * Core of every scalar operation on unpacked A (first/destination operand) and B (second/source
 * operand); the raw operand bits are passed for the operations that return an operand as is.
 * Writes the result for format fmt to `out`.
 */
function compute(env: FpEnv, op: number, fmt: number, imm: number, aLo: number, aHi: number, bLo: number, bHi: number): void {
  const a = A, b = B;
  switch (op) {
    case SSE_MIN:
    case SSE_MAX: {
      // MIN/MAX: any NaN (QNaN too) is invalid and yields the second operand unchanged; equal
      // values (including +0/-0) also yield the second operand (SDM Vol.2 MINPS/MAXPS).
      let takeA = false;
      if (isNaNCls(a.cls) || isNaNCls(b.cls)) {
        env.flags |= FP_IE;
      } else {
        if (a.den || b.den) env.flags |= FP_DE;
        const c = cmpOrdered(a, b);
        takeA = op === SSE_MIN ? c < 0 : c > 0;
      }
      const src = takeA ? a : b;
      if (src.cls === CLS_ZERO) {
        // A denormal read as zero under DAZ is returned as that zero.
        packZero(src.sign, fmt, out);
      } else {
        out.lo = takeA ? aLo : bLo;
        out.hi = takeA ? aHi : bHi;
      }
      return;
    }
    case SSE_CMP: {
      const pred = imm & 7;
      const signaling = pred === 1 || pred === 2 || pred === 5 || pred === 6;
      const t = cmpPredicate(pred, compareUnpacked(env, a, b, signaling));
      out.lo = t ? 0xffffffff : 0;
      out.hi = t && fmt === FMT_F64 ? 0xffffffff : 0;
      return;
    }
    case SSE_SQRT:
    case SSE_ROUND: {
      if (isNaNCls(b.cls)) {
        if (b.cls === CLS_SNAN) env.flags |= FP_IE;
        packQuietNaN(b, fmt, out);
        return;
      }
      if (op === SSE_ROUND) return roundIntegral(env, fmt, imm, b);
      if (b.cls === CLS_ZERO) return packZero(b.sign, fmt, out);
      if (b.sign) return invalid(env, fmt);
      if (b.den) env.flags |= FP_DE;
      if (b.cls === CLS_INF) return packInf(0, fmt, out);
      sqrtFinite(b, R);
      roundPack(R, fmt, formatPrecision(fmt), env, out);
      return;
    }
  }
  // ADD SUB MUL DIV: NaN operands propagate, the first operand taking precedence (Table 4-7).
  const an = isNaNCls(a.cls), bn = isNaNCls(b.cls);
  if (an || bn) {
    if (a.cls === CLS_SNAN || b.cls === CLS_SNAN) env.flags |= FP_IE;
    packQuietNaN(an ? a : b, fmt, out);
    return;
  }
  if (op === SSE_SUB) b.sign ^= 1;
  const sign = a.sign ^ b.sign;
  if (op === SSE_ADD || op === SSE_SUB) {
    if (a.cls === CLS_INF || b.cls === CLS_INF) {
      if (a.cls === CLS_INF && b.cls === CLS_INF && a.sign !== b.sign) return invalid(env, fmt);
      if (a.den || b.den) env.flags |= FP_DE;
      return packInf(a.cls === CLS_INF ? a.sign : b.sign, fmt, out);
    }
    if (a.den || b.den) env.flags |= FP_DE;
    if (a.cls === CLS_ZERO && b.cls === CLS_ZERO) return packZero(a.sign === b.sign ? a.sign : env.rc === 1 ? 1 : 0, fmt, out);
    if (a.cls === CLS_ZERO) R.copyFrom(b);
    else if (b.cls === CLS_ZERO) R.copyFrom(a);
    else addFinite(a, b, R, env.rc);
  } else if (op === SSE_MUL) {
    if ((a.cls === CLS_INF && b.cls === CLS_ZERO) || (a.cls === CLS_ZERO && b.cls === CLS_INF)) return invalid(env, fmt);
    if (a.den || b.den) env.flags |= FP_DE;
    if (a.cls === CLS_INF || b.cls === CLS_INF) return packInf(sign, fmt, out);
    if (a.cls === CLS_ZERO || b.cls === CLS_ZERO) return packZero(sign, fmt, out);
    mulFinite(a, b, R);
  } else {
    if ((a.cls === CLS_INF && b.cls === CLS_INF) || (a.cls === CLS_ZERO && b.cls === CLS_ZERO)) return invalid(env, fmt);
    if (a.cls === CLS_INF) {
      if (b.den) env.flags |= FP_DE;
      return packInf(sign, fmt, out);
    }
    if (b.cls === CLS_ZERO) {
      // Divide-by-zero takes precedence over a denormal dividend.
      env.flags |= FP_ZE;
      return packInf(sign, fmt, out);
    }
    if (a.den || b.den) env.flags |= FP_DE;
    if (b.cls === CLS_INF || a.cls === CLS_ZERO) return packZero(sign, fmt, out);
    divFinite(a, b, R);
  }
  roundPack(R, fmt, formatPrecision(fmt), env, out);
}

function invalid(env: FpEnv, fmt: number): void {
  env.flags |= FP_IE;
  packIndefinite(fmt, out);
}

/** ROUNDSS/ROUNDSD on a non-NaN operand: imm8[1:0] mode unless imm8[2] (use MXCSR.RC); imm8[3] suppresses PE. */
function roundIntegral(env: FpEnv, fmt: number, imm: number, b: Unpacked): void {
  if (b.cls !== CLS_FINITE) {
    if (b.cls === CLS_INF) packInf(b.sign, fmt, out);
    else packZero(b.sign, fmt, out);
    return;
  }
  const rc = imm & 4 ? env.rc : imm & 3;
  const r = roundToIntegral(b, rc);
  if (r !== 0 && (imm & 8) === 0) env.flags |= FP_PE;
  if ((b.hi | b.lo) === 0) return packZero(b.sign, fmt, out);
  normalize(b);
  const flags = env.flags;
  roundPack(b, fmt, formatPrecision(fmt), env, out);
  env.flags = flags;
}

/** Scalar single-precision operation (ADDSS … ROUNDSS): returns the result bits. */
export function f32Op(env: FpEnv, op: number, a: number, b: number, imm = 0): number {
  unpackF32(a, A, env.daz);
  unpackF32(b, B, env.daz);
  compute(env, op, FMT_F32, imm, a >>> 0, 0, b >>> 0, 0);
  return out.lo >>> 0;
}

/** Scalar double-precision operation (ADDSD … ROUNDSD): result in res.hi:res.lo. */
export function f64Op(env: FpEnv, op: number, res: Packed, aLo: number, aHi: number, bLo: number, bHi: number, imm = 0): void {
  unpackF64(aLo, aHi, A, env.daz);
  unpackF64(bLo, bHi, B, env.daz);
  compute(env, op, FMT_F64, imm, aLo >>> 0, aHi >>> 0, bLo >>> 0, bHi >>> 0);
  res.lo = out.lo >>> 0;
  res.hi = out.hi >>> 0;
}

/** COMISS (quiet=false: QNaN raises IE) / UCOMISS (quiet=true). Returns CMP_* (see eflagsCompare). */
export function f32Compare(env: FpEnv, a: number, b: number, quiet: boolean): number {
  unpackF32(a, A, env.daz);
  unpackF32(b, B, env.daz);
  return compareUnpacked(env, A, B, !quiet);
}

/** COMISD / UCOMISD. */
export function f64Compare(env: FpEnv, aLo: number, aHi: number, bLo: number, bHi: number, quiet: boolean): number {
  unpackF64(aLo, aHi, A, env.daz);
  unpackF64(bLo, bHi, B, env.daz);
  return compareUnpacked(env, A, B, !quiet);
}

// ---------------------------------------------------------------------------------------------
// Conversions

/** CVTSS2SD / CVTPS2PD: exact widening; SNaN raises IE and is quieted; denormal raises DE. */
export function f32ToF64(env: FpEnv, res: Packed, a: number): void {
  unpackF32(a, A, env.daz);
  if (isNaNCls(A.cls)) {
    if (A.cls === CLS_SNAN) env.flags |= FP_IE;
    packQuietNaN(A, FMT_F64, res);
  } else if (A.cls === CLS_INF) {
    packInf(A.sign, FMT_F64, res);
  } else {
    if (A.den) env.flags |= FP_DE;
    roundPack(A, FMT_F64, 53, env, res);
  }
}

/** CVTSD2SS / CVTPD2PS: rounds per MXCSR; returns the single bits. */
export function f64ToF32(env: FpEnv, lo: number, hi: number): number {
  unpackF64(lo, hi, A, env.daz);
  if (isNaNCls(A.cls)) {
    if (A.cls === CLS_SNAN) env.flags |= FP_IE;
    packQuietNaN(A, FMT_F32, out);
  } else if (A.cls === CLS_INF) {
    packInf(A.sign, FMT_F32, out);
  } else {
    if (A.den) env.flags |= FP_DE;
    roundPack(A, FMT_F32, 24, env, out);
  }
  return out.lo >>> 0;
}

function intToFloat(env: FpEnv, fmt: number, lo: number, hi: number, res: Packed): void {
  let ml = lo >>> 0, mh = hi >>> 0;
  const sign = mh >>> 31;
  if (sign) {
    ml = (~ml + 1) >>> 0;
    mh = (~mh + (ml === 0 ? 1 : 0)) >>> 0;
  }
  R.cls = CLS_FINITE;
  R.sign = sign;
  R.exp = 63;
  R.hi = mh;
  R.lo = ml;
  R.ext = 0;
  if ((ml | mh) === 0) return packZero(0, fmt, res);
  roundPack(R, fmt, formatPrecision(fmt), env, res);
}

/** CVTSI2SS / CVTDQ2PS: signed integer (lo, hi = sign extension for 32-bit sources) to single bits. */
export function intToF32(env: FpEnv, lo: number, hi: number): number {
  intToFloat(env, FMT_F32, lo, hi, out);
  return out.lo >>> 0;
}

/** CVTSI2SD / CVTDQ2PD: signed integer to double in res. */
export function intToF64(env: FpEnv, res: Packed, lo: number, hi: number): void {
  intToFloat(env, FMT_F64, lo, hi, res);
}

/**
 * CVTSS2SI / CVTTSS2SI / CVTPS2DQ / CVTTPS2DQ: to a signed integer of `bits` (32 or 64) in
 * res.lo (res.hi); NaN or out of range gives IE and the integer indefinite.
 */
export function f32ToInt(env: FpEnv, res: Packed, a: number, bits: number, truncate: boolean): void {
  unpackF32(a, A, env.daz);
  toIntCommon(env, res, A, bits, truncate ? RC_ZERO : env.rc);
}

/** CVTSD2SI / CVTTSD2SI / CVTPD2DQ / CVTTPD2DQ. */
export function f64ToInt(env: FpEnv, res: Packed, lo: number, hi: number, bits: number, truncate: boolean): void {
  unpackF64(lo, hi, A, env.daz);
  toIntCommon(env, res, A, bits, truncate ? RC_ZERO : env.rc);
}

// ---------------------------------------------------------------------------------------------
// Packed drivers over the XMM file: xmm is one Int32Array, register n at [n*4, n*4+4).

const tmp = new Int32Array(4);
const res64 = new Packed();

/**
 * ADDPS … ROUNDPS (op = SSE_*): dst = dst op src lane by lane (for SQRT/ROUND the source only).
 * The destination is written only if no unmasked exception occurred in any lane; returns that.
 */
export function packedF32Op(env: FpEnv, op: number, xmm: Int32Array, dst: number, src: number, imm = 0): boolean {
  const d = dst * 4, s = src * 4;
  for (let i = 0; i < 4; i++) tmp[i] = f32Op(env, op, xmm[d + i]!, xmm[s + i]!, imm);
  if (!sseFinish(env)) return false;
  for (let i = 0; i < 4; i++) xmm[d + i] = tmp[i]!;
  return true;
}

/** ADDPD … ROUNDPD: two double lanes. */
export function packedF64Op(env: FpEnv, op: number, xmm: Int32Array, dst: number, src: number, imm = 0): boolean {
  const d = dst * 4, s = src * 4;
  for (let i = 0; i < 4; i += 2) {
    f64Op(env, op, res64, xmm[d + i]!, xmm[d + i + 1]!, xmm[s + i]!, xmm[s + i + 1]!, imm);
    tmp[i] = res64.lo;
    tmp[i + 1] = res64.hi;
  }
  if (!sseFinish(env)) return false;
  for (let i = 0; i < 4; i++) xmm[d + i] = tmp[i]!;
  return true;
}
