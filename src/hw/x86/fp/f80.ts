/**
 * x87 arithmetic on 80-bit extended values (SDM Vol. 1 ch. 8; instruction pages in Vol. 2).
 * Operands come in as raw fields (se = sign+exponent 16 bits, hi:lo = 64-bit significand with
 * the explicit integer bit); results go to a Packed record; exceptions and C1 go to an FpEnv set
 * from the control word with setX87Control(). Exceptions are reported exactly as the SDM lists
 * them; whether a result is stored when an exception is unmasked is the caller's decision:
 * see x87ResultDelivered().
 */
import {
  CLS_FINITE, CLS_INF, CLS_QNAN, CLS_SNAN, CLS_UNSUPPORTED, CLS_ZERO, FMT_F32, FMT_F64, FMT_F80, FP_DE, FP_IE,
  FP_PE, FP_ZE, FpEnv, Packed, RC_NEAREST, RC_ZERO, Unpacked, addFinite, cmpMag, cmpOrdered, divFinite,
  mulFinite, normalize, packIndefinite, packInf, packQuietNaN, packZero, roundPack, roundSignificand,
  shiftRightJam, sqrtFinite, unpackF32, unpackF64, unpackF80,
} from "./softfloat.js";

/** Precision control field (CW bits 8-9) to significand bits (SDM Vol.1 Table 8-2); 01b is reserved. */
const PC_BITS = [24, 24, 53, 64];

/** Load rounding, precision and masks from an x87 control word (SDM Vol.1 8.1.5). */
export function setX87Control(env: FpEnv, cw: number): void {
  env.rc = (cw >>> 10) & 3;
  env.masks = cw & 0x3f;
  env.x87 = true;
  env.ftz = false;
  env.daz = false;
  env.flags = 0;
  env.roundedUp = false;
  env.precision = PC_BITS[(cw >>> 8) & 3]!;
}

/**
 * True if the result of the last operation is written to its destination: an unmasked invalid,
 * denormal-operand or divide-by-zero exception suppresses it (SDM Vol.1 8.5, 8.6). Unmasked
 * overflow/underflow on a register result deliver the bias-adjusted value (already produced).
 */
export function x87ResultDelivered(env: FpEnv): boolean {
  return (env.flags & ~env.masks & (FP_IE | FP_DE | FP_ZE)) === 0;
}

const A = new Unpacked();
const B = new Unpacked();
const R = new Unpacked();
const T = new Unpacked();

function isNaNCls(c: number): boolean {
  return c === CLS_QNAN || c === CLS_SNAN;
}

/**
 * Operand checks common to x87 arithmetic (SDM Vol.1 4.8.3.5, Table 4-7, 8.5.1): unsupported
 * encodings give the indefinite, SNaNs raise IE, NaNs propagate (two NaNs: the larger
 * significand; SNaN with QNaN: the QNaN). Returns true if res already holds the result.
 */
export function x87NaNs2(a: Unpacked, b: Unpacked, env: FpEnv, res: Packed): boolean {
  if (a.cls === CLS_UNSUPPORTED || b.cls === CLS_UNSUPPORTED) {
    env.flags |= FP_IE;
    packIndefinite(FMT_F80, res);
    return true;
  }
  const an = isNaNCls(a.cls), bn = isNaNCls(b.cls);
  if (!an && !bn) return false;
  if (a.cls === CLS_SNAN || b.cls === CLS_SNAN) env.flags |= FP_IE;
  let pick: Unpacked;
  if (an && bn) {
    if (a.cls !== b.cls) pick = a.cls === CLS_QNAN ? a : b;
    else if (a.hi !== b.hi) pick = a.hi > b.hi ? a : b;
    else if (a.lo !== b.lo) pick = a.lo > b.lo ? a : b;
    else pick = a.sign <= b.sign ? a : b;
  } else {
    pick = an ? a : b;
  }
  packQuietNaN(pick, FMT_F80, res);
  return true;
}

export function x87NaN1(a: Unpacked, env: FpEnv, res: Packed): boolean {
  if (a.cls === CLS_UNSUPPORTED) {
    env.flags |= FP_IE;
    packIndefinite(FMT_F80, res);
    return true;
  }
  if (!isNaNCls(a.cls)) return false;
  if (a.cls === CLS_SNAN) env.flags |= FP_IE;
  packQuietNaN(a, FMT_F80, res);
  return true;
}

function invalid(env: FpEnv, res: Packed): void {
  env.flags |= FP_IE;
  packIndefinite(FMT_F80, res);
}

/**
 * Raise DE for a denormal operand. Returns true when DE is unmasked: the instruction then stops
 * without a result and without evaluating later exceptions (SDM Vol.1 8.5.2).
 */
function denormalCheck(a: Unpacked, b: Unpacked | null, env: FpEnv): boolean {
  if (a.den || (b !== null && b.den)) {
    env.flags |= FP_DE;
    return (env.masks & FP_DE) === 0;
  }
  return false;
}

/** FADD/FSUB core: res = a + b or a - b, rounded to the precision control. */
function addSub(env: FpEnv, res: Packed, seA: number, hiA: number, loA: number, seB: number, hiB: number, loB: number, sub: boolean): void {
  unpackF80(seA, hiA, loA, A);
  unpackF80(seB, hiB, loB, B);
  if (x87NaNs2(A, B, env, res)) return;
  if (sub) B.sign ^= 1;
  if (denormalCheck(A, B, env)) return;
  if (A.cls === CLS_INF || B.cls === CLS_INF) {
    if (A.cls === CLS_INF && B.cls === CLS_INF && A.sign !== B.sign) return invalid(env, res);
    packInf(A.cls === CLS_INF ? A.sign : B.sign, FMT_F80, res);
    return;
  }
  if (A.cls === CLS_ZERO && B.cls === CLS_ZERO) {
    packZero(A.sign === B.sign ? A.sign : env.rc === 1 ? 1 : 0, FMT_F80, res);
    return;
  }
  if (A.cls === CLS_ZERO) R.copyFrom(B);
  else if (B.cls === CLS_ZERO) R.copyFrom(A);
  else addFinite(A, B, R, env.rc);
  roundPack(R, FMT_F80, env.precision, env, res);
}

/** FADD: res = a + b. */
export function f80Add(env: FpEnv, res: Packed, seA: number, hiA: number, loA: number, seB: number, hiB: number, loB: number): void {
  addSub(env, res, seA, hiA, loA, seB, hiB, loB, false);
}

/** FSUB: res = a - b (FSUBR is the caller swapping operands). */
export function f80Sub(env: FpEnv, res: Packed, seA: number, hiA: number, loA: number, seB: number, hiB: number, loB: number): void {
  addSub(env, res, seA, hiA, loA, seB, hiB, loB, true);
}

/** FMUL: res = a * b. */
export function f80Mul(env: FpEnv, res: Packed, seA: number, hiA: number, loA: number, seB: number, hiB: number, loB: number): void {
  unpackF80(seA, hiA, loA, A);
  unpackF80(seB, hiB, loB, B);
  if (x87NaNs2(A, B, env, res)) return;
  const sign = A.sign ^ B.sign;
  if (denormalCheck(A, B, env)) return;
  if (A.cls === CLS_INF || B.cls === CLS_INF) {
    if (A.cls === CLS_ZERO || B.cls === CLS_ZERO) return invalid(env, res);
    packInf(sign, FMT_F80, res);
    return;
  }
  if (A.cls === CLS_ZERO || B.cls === CLS_ZERO) {
    packZero(sign, FMT_F80, res);
    return;
  }
  mulFinite(A, B, R);
  roundPack(R, FMT_F80, env.precision, env, res);
}

/** FDIV: res = a / b. */
export function f80Div(env: FpEnv, res: Packed, seA: number, hiA: number, loA: number, seB: number, hiB: number, loB: number): void {
  unpackF80(seA, hiA, loA, A);
  unpackF80(seB, hiB, loB, B);
  if (x87NaNs2(A, B, env, res)) return;
  const sign = A.sign ^ B.sign;
  if (A.cls === CLS_INF) {
    if (B.cls === CLS_INF) return invalid(env, res);
    if (B.den) env.flags |= FP_DE;
    packInf(sign, FMT_F80, res);
    return;
  }
  if (B.cls === CLS_INF) {
    if (A.den) env.flags |= FP_DE;
    packZero(sign, FMT_F80, res);
    return;
  }
  if (B.cls === CLS_ZERO) {
    if (A.cls === CLS_ZERO) return invalid(env, res);
    // Divide-by-zero takes precedence: a denormal dividend does not also raise DE.
    env.flags |= FP_ZE;
    packInf(sign, FMT_F80, res);
    return;
  }
  if (denormalCheck(A, B, env)) return;
  if (A.cls === CLS_ZERO) {
    packZero(sign, FMT_F80, res);
    return;
  }
  divFinite(A, B, R);
  roundPack(R, FMT_F80, env.precision, env, res);
}

/** FSQRT. */
export function f80Sqrt(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  unpackF80(se, hi, lo, A);
  if (x87NaN1(A, env, res)) return;
  if (A.cls === CLS_ZERO) {
    packZero(A.sign, FMT_F80, res);
    return;
  }
  if (A.sign) return invalid(env, res);
  if (A.cls === CLS_INF) {
    packInf(0, FMT_F80, res);
    return;
  }
  if (denormalCheck(A, null, env)) return;
  sqrtFinite(A, R);
  roundPack(R, FMT_F80, env.precision, env, res);
}

/**
 * Round a finite normalized u to an integral value in place per rc. Afterwards u is the integer
 * in hi:lo with exp = 63 (possibly zero significand, or 2^64 represented as hi=0x80000000 with
 * exp = 64). Returns 0 exact, 1 truncated, 2 rounded up in magnitude.
 */
export function roundToIntegral(u: Unpacked, rc: number): number {
  if (u.exp >= 63) return 0;
  shiftRightJam(u, 63 - u.exp);
  u.exp = 63;
  return roundSignificand(u, 64, rc);
}

/** FRNDINT (not affected by precision control, SDM Vol.1 8.1.5.2). */
export function f80RoundInt(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  unpackF80(se, hi, lo, A);
  if (x87NaN1(A, env, res)) return;
  if (A.cls === CLS_ZERO || A.cls === CLS_INF) {
    res.se = se & 0xffff;
    res.hi = hi >>> 0;
    res.lo = lo >>> 0;
    return;
  }
  if (denormalCheck(A, null, env)) return;
  const r = roundToIntegral(A, env.rc);
  if (r !== 0) {
    env.flags |= FP_PE;
    env.roundedUp = r === 2;
  }
  if ((A.hi | A.lo) === 0) {
    packZero(A.sign, FMT_F80, res);
    return;
  }
  normalize(A);
  res.se = (A.sign << 15) | (A.exp + 16383);
  res.hi = A.hi;
  res.lo = A.lo;
}

/** FSCALE: res = a * 2^trunc(b) (SDM Vol.2 FSCALE table). */
export function f80Scale(env: FpEnv, res: Packed, seA: number, hiA: number, loA: number, seB: number, hiB: number, loB: number): void {
  unpackF80(seA, hiA, loA, A);
  unpackF80(seB, hiB, loB, B);
  if (x87NaNs2(A, B, env, res)) return;
  if (B.cls === CLS_INF) {
    if (B.sign) {
      if (A.cls === CLS_INF) return invalid(env, res);
      if (A.den) env.flags |= FP_DE;
      packZero(A.sign, FMT_F80, res);
    } else {
      if (A.cls === CLS_ZERO) return invalid(env, res);
      if (A.den) env.flags |= FP_DE;
      packInf(A.sign, FMT_F80, res);
    }
    return;
  }
  if (denormalCheck(A, B, env)) return;
  if (A.cls === CLS_ZERO || A.cls === CLS_INF) {
    res.se = seA & 0xffff;
    res.hi = hiA >>> 0;
    res.lo = loA >>> 0;
    return;
  }
  // n = trunc(b), clamped well beyond any exponent that can still produce a finite result.
  let n = 0;
  if (B.cls === CLS_FINITE) {
    if (B.exp >= 20) n = 1 << 20;
    else if (B.exp >= 0) n = B.hi >>> (31 - B.exp);
    if (B.sign) n = -n;
  }
  A.exp += n;
  roundPack(A, FMT_F80, 64, env, res);
}

/** FXTRACT: res = significand (exponent 0), res2 = unbiased exponent as a value (SDM Vol.2 FXTRACT). */
export function f80Xtract(env: FpEnv, res: Packed, res2: Packed, se: number, hi: number, lo: number): void {
  unpackF80(se, hi, lo, A);
  if (x87NaN1(A, env, res)) {
    res2.se = res.se;
    res2.hi = res.hi;
    res2.lo = res.lo;
    return;
  }
  if (A.cls === CLS_ZERO) {
    env.flags |= FP_ZE;
    packZero(A.sign, FMT_F80, res);
    packInf(1, FMT_F80, res2);
    return;
  }
  if (A.cls === CLS_INF) {
    packInf(A.sign, FMT_F80, res);
    packInf(0, FMT_F80, res2);
    return;
  }
  if (denormalCheck(A, null, env)) return;
  res.se = (A.sign << 15) | 16383;
  res.hi = A.hi;
  res.lo = A.lo;
  intToF80(res2, A.exp, A.exp < 0 ? -1 : 0);
}

/** Result of the last f80Prem: quotient low bits and whether the reduction is complete. */
export const premStatus = { q: 0, incomplete: false };

/**
 * FPREM (truncating quotient) / FPREM1 (IEEE round-to-nearest quotient): res = partial remainder
 * of a / b. When the exponent difference is 64 or more only a partial reduction is done
 * (premStatus.incomplete, C2=1); otherwise premStatus.q holds the quotient's low 3 bits for
 * C0 (bit 2), C3 (bit 1), C1 (bit 0). SDM Vol.2 FPREM/FPREM1.
 */
export function f80Prem(env: FpEnv, res: Packed, seA: number, hiA: number, loA: number, seB: number, hiB: number, loB: number, ieee: boolean): void {
  premStatus.q = 0;
  premStatus.incomplete = false;
  unpackF80(seA, hiA, loA, A);
  unpackF80(seB, hiB, loB, B);
  if (x87NaNs2(A, B, env, res)) return;
  if (A.cls === CLS_INF || B.cls === CLS_ZERO) return invalid(env, res);
  if (denormalCheck(A, B, env)) return;
  if (A.cls === CLS_ZERO || B.cls === CLS_INF) {
    if (A.cls === CLS_ZERO) packZero(A.sign, FMT_F80, res);
    else roundPack(A, FMT_F80, 64, env, res);
    return;
  }
  let d = A.exp - B.exp;
  if (d < 0) {
    T.copyFrom(B);
    T.exp -= 1;
    if (ieee && d === -1 && cmpMag(A, T) > 0) {
      // |a| > |b|/2: the quotient rounds to 1 and the remainder is a - b*sign(a), sign flipped.
      premStatus.q = 1;
      R.copyFrom(B);
      R.sign = A.sign ^ 1;
      addFinite(A, R, T, RC_NEAREST);
      roundPack(T, FMT_F80, 64, env, res);
      return;
    }
    roundPack(A, FMT_F80, 64, env, res);
    return;
  }
  let partial = false;
  if (d >= 64) {
    // Partial reduction by a chunk of 32..63 bits, as Intel hardware does.
    partial = true;
    d = 32 + (d & 31);
  }
  // Long division of Sa * 2^d by Sb, keeping the quotient's low bits.
  let rh = A.hi, rl = A.lo, rTop = 0, q = 0;
  const bh = B.hi, bl = B.lo;
  for (let i = 0; i <= d; i++) {
    q = (q << 1) & 7;
    if (rTop !== 0 || rh > bh || (rh === bh && rl >= bl)) {
      let nl = rl - bl, bw = 0;
      if (nl < 0) {
        nl += 0x100000000;
        bw = 1;
      }
      rh = rh - bh - bw;
      if (rh < 0) rh += 0x100000000;
      rl = nl;
      q |= 1;
    }
    if (i < d) {
      rTop = rh >>> 31;
      rh = ((rh << 1) | (rl >>> 31)) >>> 0;
      rl = (rl << 1) >>> 0;
    }
  }
  let sign = A.sign;
  if (ieee && !partial) {
    // Round the quotient to nearest-even: compare 2*rem with the divisor.
    const r2Top = rh >>> 31, r2h = ((rh << 1) | (rl >>> 31)) >>> 0, r2l = (rl << 1) >>> 0;
    const c = r2Top !== 0 ? 1 : r2h !== bh ? (r2h > bh ? 1 : -1) : r2l !== bl ? (r2l > bl ? 1 : -1) : 0;
    if (c > 0 || (c === 0 && (q & 1) !== 0)) {
      q = (q + 1) & 7;
      let nl = bl - rl, bw = 0;
      if (nl < 0) {
        nl += 0x100000000;
        bw = 1;
      }
      rh = bh - rh - bw;
      rl = nl;
      sign ^= 1;
    }
  }
  premStatus.q = q;
  premStatus.incomplete = partial;
  R.cls = CLS_FINITE;
  R.sign = sign;
  R.exp = A.exp - d;
  R.hi = rh >>> 0;
  R.lo = rl >>> 0;
  R.ext = 0;
  if ((R.hi | R.lo) === 0) {
    packZero(A.sign, FMT_F80, res);
    return;
  }
  roundPack(R, FMT_F80, 64, env, res);
}

/** Comparison results (FCOM condition codes C3 C2 C0 and FCOMI ZF PF CF, SDM Vol.2 FCOM/FCOMI). */
export const CMP_GT = 0;
export const CMP_LT = 1;
export const CMP_EQ = 2;
export const CMP_UNORDERED = 3;

/** FCOM (quiet=false: any NaN raises IE) / FUCOM (quiet=true: only SNaN). Returns CMP_*. */
export function f80Compare(env: FpEnv, seA: number, hiA: number, loA: number, seB: number, hiB: number, loB: number, quiet: boolean): number {
  unpackF80(seA, hiA, loA, A);
  unpackF80(seB, hiB, loB, B);
  if (A.cls === CLS_UNSUPPORTED || B.cls === CLS_UNSUPPORTED || A.cls === CLS_SNAN || B.cls === CLS_SNAN) {
    env.flags |= FP_IE;
    return CMP_UNORDERED;
  }
  if (isNaNCls(A.cls) || isNaNCls(B.cls)) {
    if (!quiet) env.flags |= FP_IE;
    return CMP_UNORDERED;
  }
  denormalCheck(A, B, env);
  const c = cmpOrdered(A, B);
  return c < 0 ? CMP_LT : c > 0 ? CMP_GT : CMP_EQ;
}

/** x87 condition code bits for a CMP_* result: C0 (0x100), C2 (0x400), C3 (0x4000). */
export function x87CompareCodes(cmp: number): number {
  return cmp === CMP_LT ? 0x0100 : cmp === CMP_EQ ? 0x4000 : cmp === CMP_UNORDERED ? 0x4500 : 0;
}

/** EFLAGS ZF (0x40), PF (0x04), CF (0x01) for a CMP_* result (FCOMI, COMISS). */
export function eflagsCompare(cmp: number): number {
  return cmp === CMP_LT ? 0x01 : cmp === CMP_EQ ? 0x40 : cmp === CMP_UNORDERED ? 0x45 : 0;
}

// ---------------------------------------------------------------------------------------------
// Integer conversions

/**
 * FIST/FISTP (truncate=false, rounding per RC) and FISTTP (truncate=true): convert to a signed
 * integer of `bits` (16, 32, 64). Result in res.lo (and res.hi for 64 bits) as two's complement;
 * NaN, infinity, unsupported or out of range gives IE and the integer indefinite (SDM Vol.1 4.2.2).
 */
export function f80ToInt(env: FpEnv, res: Packed, se: number, hi: number, lo: number, bits: number, truncate: boolean): void {
  unpackF80(se, hi, lo, A);
  toIntCommon(env, res, A, bits, truncate ? RC_ZERO : env.rc);
}

/** Shared by x87 and SSE: round u to an integer of `bits` or give the integer indefinite. */
export function toIntCommon(env: FpEnv, res: Packed, u: Unpacked, bits: number, rc: number): void {
  res.se = 0;
  if (u.cls === CLS_ZERO) {
    res.lo = 0;
    res.hi = 0;
    return;
  }
  if (u.cls !== CLS_FINITE || u.exp >= 64) return intIndefinite(env, res, bits);
  const r = roundToIntegral(u, rc);
  // Magnitude now in u.hi:u.lo (u.exp is 64 only for a carry to 2^64).
  let mh = u.hi, ml = u.lo;
  if (u.exp === 64) return intIndefinite(env, res, bits);
  if (bits === 64) {
    if (mh > 0x80000000 || (mh === 0x80000000 && (ml !== 0 || !u.sign))) return intIndefinite(env, res, bits);
  } else {
    const limit = bits === 32 ? 0x80000000 : 0x8000;
    if (mh !== 0 || ml > limit || (ml === limit && !u.sign)) return intIndefinite(env, res, bits);
  }
  if (r !== 0) {
    env.flags |= FP_PE;
    env.roundedUp = r === 2;
  }
  if (u.sign) {
    // Two's complement negate.
    ml = (~ml + 1) >>> 0;
    mh = (~mh + (ml === 0 ? 1 : 0)) >>> 0;
  }
  if (bits === 64) {
    res.lo = ml >>> 0;
    res.hi = mh >>> 0;
  } else {
    res.lo = bits === 32 ? ml >>> 0 : ml & 0xffff;
    res.hi = 0;
  }
}

function intIndefinite(env: FpEnv, res: Packed, bits: number): void {
  env.flags |= FP_IE;
  env.roundedUp = false;
  res.se = 0;
  if (bits === 64) {
    res.lo = 0;
    res.hi = 0x80000000;
  } else {
    res.lo = bits === 32 ? 0x80000000 : 0x8000;
    res.hi = 0;
  }
}

/** FILD: exact conversion of a signed 64-bit integer given as lo, hi (hi = sign extension for narrower). */
export function intToF80(res: Packed, lo: number, hi: number): void {
  let ml = lo >>> 0, mh = hi >>> 0;
  const sign = mh >>> 31;
  if (sign) {
    ml = (~ml + 1) >>> 0;
    mh = (~mh + (ml === 0 ? 1 : 0)) >>> 0;
  }
  if ((ml | mh) === 0) {
    packZero(0, FMT_F80, res);
    return;
  }
  T.cls = CLS_FINITE;
  T.sign = sign;
  T.exp = 63;
  T.hi = mh;
  T.lo = ml;
  T.ext = 0;
  normalize(T);
  res.se = (sign << 15) | (T.exp + 16383);
  res.hi = T.hi;
  res.lo = T.lo;
}

// ---------------------------------------------------------------------------------------------
// Float conversions (FLD m32/m64, FST m32/m64)

function loadNarrow(env: FpEnv, res: Packed, u: Unpacked): void {
  if (isNaNCls(u.cls)) {
    if (u.cls === CLS_SNAN) env.flags |= FP_IE;
    packQuietNaN(u, FMT_F80, res);
    return;
  }
  if (u.cls === CLS_ZERO) return packZero(u.sign, FMT_F80, res);
  if (u.cls === CLS_INF) return packInf(u.sign, FMT_F80, res);
  if (u.den) env.flags |= FP_DE;
  res.se = (u.sign << 15) | (u.exp + 16383);
  res.hi = u.hi;
  res.lo = u.lo;
}

/** FLD m32fp: exact widening; SNaN raises IE and is quieted, denormals raise DE. */
export function f32ToF80(env: FpEnv, res: Packed, bits: number): void {
  unpackF32(bits, A, false);
  loadNarrow(env, res, A);
}

/** FLD m64fp. */
export function f64ToF80(env: FpEnv, res: Packed, lo: number, hi: number): void {
  unpackF64(lo, hi, A, false);
  loadNarrow(env, res, A);
}

function storeNarrow(env: FpEnv, res: Packed, se: number, hi: number, lo: number, fmt: number): void {
  unpackF80(se, hi, lo, A);
  if (A.cls === CLS_UNSUPPORTED) {
    env.flags |= FP_IE;
    packIndefinite(fmt, res);
    return;
  }
  if (isNaNCls(A.cls)) {
    if (A.cls === CLS_SNAN) env.flags |= FP_IE;
    packQuietNaN(A, fmt, res);
    return;
  }
  if (A.cls === CLS_ZERO) return packZero(A.sign, fmt, res);
  if (A.cls === CLS_INF) return packInf(A.sign, fmt, res);
  const x87 = env.x87;
  env.x87 = false;
  roundPack(A, fmt, fmt === FMT_F32 ? 24 : 53, env, res);
  env.x87 = x87;
}

/** FST m32fp: res.lo = single bits. Unmasked OE/UE: the caller must not store (SDM Vol.1 8.5.3). */
export function f80ToF32(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  storeNarrow(env, res, se, hi, lo, FMT_F32);
}

/** FST m64fp: res.hi:res.lo = double bits. */
export function f80ToF64(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  storeNarrow(env, res, se, hi, lo, FMT_F64);
}

// ---------------------------------------------------------------------------------------------
// Packed BCD (FBLD/FBSTP, SDM Vol.1 4.7): 18 digits in bytes 0-8, sign in bit 7 of byte 9.

/** FBLD: bcd given as lo (bytes 0-3), mid (bytes 4-7), hi (bytes 8-9). Invalid digits: undefined on hardware; decoded as-is. */
export function bcdToF80(res: Packed, lo: number, mid: number, hi: number): void {
  // Accumulate the 18 digits in two base-1e9 halves (each exact in a double).
  const words = [hi & 0xff, mid, lo];
  let upper = 0, lower = 0;
  let digits = 0;
  for (let w = 0; w < 3; w++) {
    const word = words[w]!;
    const n = w === 0 ? 2 : 8;
    for (let i = n - 1; i >= 0; i--) {
      const dgt = (word >>> (i * 4)) & 0xf;
      if (digits < 9) upper = upper * 10 + dgt;
      else lower = lower * 10 + dgt;
      digits++;
    }
  }
  // value = upper * 1e9 + lower, computed exactly as a 64-bit integer in 32-bit halves.
  const uLo = upper % 0x10000, uHi = Math.floor(upper / 0x10000);
  const p0 = uLo * 1e9, p1 = uHi * 1e9; // value = p1 * 2^16 + p0 + lower
  let low = p0 + lower + (p1 % 0x10000) * 0x10000;
  let high = Math.floor(p1 / 0x10000);
  const c = Math.floor(low / 0x100000000);
  low -= c * 0x100000000;
  high += c;
  const neg = (hi >>> 15) & 1;
  if (low === 0 && high === 0) {
    packZero(neg, FMT_F80, res);
    return;
  }
  T.cls = CLS_FINITE;
  T.sign = neg;
  T.exp = 63;
  T.hi = high >>> 0;
  T.lo = low >>> 0;
  T.ext = 0;
  normalize(T);
  res.se = (neg << 15) | (T.exp + 16383);
  res.hi = T.hi;
  res.lo = T.lo;
}

/**
 * FBSTP: round per RC to an integer and store as 18-digit BCD in res (lo = bytes 0-3, hi = bytes
 * 4-7, se = bytes 8-9). Out of range (|x| >= 10^18), NaN, infinity or unsupported: IE and the
 * packed BCD indefinite (0xFFFF C000000000000000).
 */
export function f80ToBcd(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  unpackF80(se, hi, lo, A);
  if (A.cls === CLS_ZERO) {
    res.lo = 0;
    res.hi = 0;
    res.se = A.sign << 15;
    return;
  }
  if (A.cls !== CLS_FINITE || A.exp >= 60) return bcdIndefinite(env, res);
  const sign = A.sign;
  const r = roundToIntegral(A, env.rc);
  // Magnitude < 2^60 fits: split into base-1e9 halves using doubles exactly.
  const mh = A.hi, ml = A.lo;
  // value = mh * 2^32 + ml; divide by 1e9 exactly via 16-bit steps.
  let rem = 0;
  const parts = [mh >>> 16, mh & 0xffff, ml >>> 16, ml & 0xffff];
  const q = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    const cur = rem * 65536 + parts[i]!;
    q[i] = Math.floor(cur / 1e9);
    rem = cur - q[i]! * 1e9;
  }
  const upper = ((q[0]! * 65536 + q[1]!) * 65536 + q[2]!) * 65536 + q[3]!;
  if (upper >= 1e9) return bcdIndefinite(env, res);
  if (r !== 0) {
    env.flags |= FP_PE;
    env.roundedUp = r === 2;
  }
  let bLo = 0, bHi = 0, bTop = 0;
  let lower = rem, up = upper;
  for (let i = 0; i < 8; i++) {
    bLo |= (lower % 10) << (i * 4);
    lower = Math.floor(lower / 10);
  }
  bHi = lower % 10;
  for (let i = 1; i < 8; i++) {
    bHi |= (up % 10) << (i * 4);
    up = Math.floor(up / 10);
  }
  bTop = (up % 10) | (Math.floor(up / 10) % 10) << 4;
  res.lo = bLo >>> 0;
  res.hi = bHi >>> 0;
  res.se = (sign << 15) | bTop;
}

function bcdIndefinite(env: FpEnv, res: Packed): void {
  env.flags |= FP_IE;
  res.se = 0xffff;
  res.hi = 0xc0000000;
  res.lo = 0;
}

export { FMT_F80, FMT_F64, FMT_F32 };

// ---------------------------------------------------------------------------------------------
// FXAM / FTST / FCHS / FABS

/**
 * FXAM classification as C3 C2 C0 in status-word positions (SDM Vol.2 FXAM table), with C1 =
 * sign. `empty` is the tag of ST(0) being empty.
 */
export function f80Examine(se: number, hi: number, lo: number, empty: boolean): number {
  const c1 = se & 0x8000 ? 0x0200 : 0;
  if (empty) return c1 | 0x4100;
  unpackF80(se, hi, lo, A);
  switch (A.cls) {
    case CLS_UNSUPPORTED: return c1;
    case CLS_QNAN:
    case CLS_SNAN: return c1 | 0x0100;
    case CLS_INF: return c1 | 0x0500;
    case CLS_ZERO: return c1 | 0x4000;
    default: return c1 | (A.den ? 0x4400 : 0x0400);
  }
}

/** FTST: compare with +0.0 (any NaN or unsupported operand raises IE). Returns CMP_*. */
export function f80Test(env: FpEnv, se: number, hi: number, lo: number): number {
  return f80Compare(env, se, hi, lo, 0, 0, 0, false);
}
