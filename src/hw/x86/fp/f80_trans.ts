/**
 * x87 transcendental instructions: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1
 * (SDM Vol. 2 instruction pages; Vol. 1 8.3.10 accuracy, 8.3.8 the 66-bit pi).
 *
 * Method: every kernel runs in a 96-bit working precision (the softfloat core's exact-then-
 * truncate operations on full 96-bit significands), then the result is rounded once to 64 bits
 * in the current rounding mode. Hardware does not round correctly either; the SDM states errors
 * below 1 ulp. Trigonometric arguments are reduced modulo pi/2 exactly (a long division, as
 * FPREM1 does) by Intel's documented 66-bit approximation of pi, so large arguments give what
 * Intel hardware gives rather than the mathematically exact value.
 *   sin/cos:   Horner-form Taylor series on |r| <= pi/4.
 *   atan:      three half-angle reductions t -> t / (1 + sqrt(1 + t^2)), then the odd series.
 *   2^x - 1:   the expm1 series of x*ln2 (no cancellation near 0).
 *   log2:      ln m = 2 atanh((m-1)/(m+1)) with m in [sqrt(1/2), sqrt(2)); ln(1+x) = 2 atanh(x/(2+x)).
 * Measured error against the host CPU (Intel Xeon) over random in-domain operands is at most
 * 1 ulp for every instruction (test/hw/x86/fp/f80_trans.oracle.test.ts asserts <= 2 ulp and
 * exact special cases). Outside the defined domains (F2XM1 |x| > 1, FYL2XP1 |x| >= 1 - sqrt(2)/2)
 * results are undefined by the SDM: F2XM1 returns the operand as Intel does, FYL2XP1 evaluates
 * the formula (Intel differs there).
 */
import {
  CLS_FINITE, CLS_INF, CLS_ZERO, FMT_F80, FP_DE, FP_IE, FP_PE, FP_ZE, FpEnv, Packed, Unpacked, addFinite, divFinite,
  mulFinite, normalize, packIndefinite, packInf, packZero, roundPack, sqrtFinite, unpackF80, RC_NEAREST, cmpMag,
} from "./softfloat.js";
import { x87NaN1, x87NaNs2 } from "./f80.js";

/** Result status of the last trigonometric instruction: C2 = 1 when |x| >= 2^63 (operand left unchanged). */
export const transStatus = { c2: false };

// ---------------------------------------------------------------------------------------------
// 96-bit working-precision helpers. Values are Unpacked records with cls FINITE or ZERO.

function set(u: Unpacked, sign: number, exp: number, hi: number, lo: number, ext: number): Unpacked {
  u.cls = (hi | lo | ext) === 0 ? CLS_ZERO : CLS_FINITE;
  u.sign = sign;
  u.exp = exp;
  u.hi = hi >>> 0;
  u.lo = lo >>> 0;
  u.ext = ext >>> 0;
  u.den = false;
  if (u.cls === CLS_FINITE) normalize(u);
  return u;
}

function fromInt(u: Unpacked, n: number): Unpacked {
  return set(u, n < 0 ? 1 : 0, 31, Math.abs(n), 0, 0);
}

const tA = new Unpacked();
const tB = new Unpacked();

/** r = a + b (r may alias a or b). */
function wAdd(a: Unpacked, b: Unpacked, r: Unpacked): void {
  if (b.cls === CLS_ZERO) return r.copyFrom(a);
  if (a.cls === CLS_ZERO) return r.copyFrom(b);
  tA.copyFrom(a);
  tB.copyFrom(b);
  addFinite(tA, tB, r, RC_NEAREST);
  if ((r.hi | r.lo | r.ext) === 0) r.cls = CLS_ZERO;
}

function wSub(a: Unpacked, b: Unpacked, r: Unpacked): void {
  tB.copyFrom(b);
  tB.sign ^= 1;
  const bs = tB;
  if (bs.cls === CLS_ZERO) return r.copyFrom(a);
  if (a.cls === CLS_ZERO) return r.copyFrom(bs);
  tA.copyFrom(a);
  addFinite(tA, bs, r, RC_NEAREST);
  if ((r.hi | r.lo | r.ext) === 0) r.cls = CLS_ZERO;
}

function wMul(a: Unpacked, b: Unpacked, r: Unpacked): void {
  if (a.cls === CLS_ZERO || b.cls === CLS_ZERO) return r.setZero(a.sign ^ b.sign);
  tA.copyFrom(a);
  tB.copyFrom(b);
  mulFinite(tA, tB, r);
  normalize(r);
}

function wDiv(a: Unpacked, b: Unpacked, r: Unpacked): void {
  if (a.cls === CLS_ZERO) return r.setZero(a.sign ^ b.sign);
  tA.copyFrom(a);
  tB.copyFrom(b);
  divFinite(tA, tB, r);
}

function wSqrt(a: Unpacked, r: Unpacked): void {
  if (a.cls === CLS_ZERO) return r.setZero(0);
  tA.copyFrom(a);
  sqrtFinite(tA, r);
}

// Constants (96-bit significands; pi from its hexadecimal expansion C90FDAA2 2168C234 C4C6628B 80DC…).
const ONE = fromInt(new Unpacked(), 1);
const PI = set(new Unpacked(), 0, 1, 0xc90fdaa2, 0x2168c234, 0xc4c6628b);
const PI_2 = set(new Unpacked(), 0, 0, 0xc90fdaa2, 0x2168c234, 0xc4c6628b);
const PI_4 = set(new Unpacked(), 0, -1, 0xc90fdaa2, 0x2168c234, 0xc4c6628b);
/** pi/2 with Intel's 66-bit pi (SDM Vol.1 8.3.8): the reduction modulus. */
const PI66_2 = set(new Unpacked(), 0, 0, 0xc90fdaa2, 0x2168c234, 0xc0000000);
const INT = Array.from({ length: 64 }, (_, n) => fromInt(new Unpacked(), n));
const LN2 = new Unpacked();
const LOG2E = new Unpacked();

// Scratch registers for the kernels.
const W0 = new Unpacked(), W1 = new Unpacked(), W2 = new Unpacked(), W3 = new Unpacked(), W4 = new Unpacked();
const X = new Unpacked(), Y = new Unpacked();

/** 2*atanh(u) = ln((1+u)/(1-u)) for |u| <= 1/3, into r. */
function twoAtanh(u: Unpacked, r: Unpacked): void {
  wMul(u, u, W1);
  // A = 1/(2N+1); A = 1/(2k+1) + u^2 A
  wDiv(ONE, INT[61]!, W2);
  for (let k = 29; k >= 0; k--) {
    wMul(W1, W2, W3);
    wDiv(ONE, INT[2 * k + 1]!, W4);
    wAdd(W4, W3, W2);
  }
  wMul(W2, u, r);
  r.exp += 1;
}

// ln 2 = 2 atanh(1/3); log2(e) = 1 / ln 2.
wDiv(ONE, INT[3]!, W0);
twoAtanh(W0, LN2);
wDiv(ONE, LN2, LOG2E);

/** sin (wantSin) or cos of |r| <= pi/4 into out. */
function sinCosKernel(r: Unpacked, wantSin: boolean, out: Unpacked): void {
  wMul(r, r, W1);
  // S = 1 - r^2 S / ((2k)(2k+1)) for sin; (2k-1)(2k) for cos.
  out.copyFrom(ONE);
  for (let k = 16; k >= 1; k--) {
    wMul(W1, out, W3);
    wDiv(W3, wantSin ? fromInt(W4, 2 * k * (2 * k + 1)) : fromInt(W4, (2 * k - 1) * 2 * k), W2);
    wSub(ONE, W2, out);
  }
  if (wantSin) wMul(out, r, out);
}

const rem = { q: 0 };

/**
 * Exact reduction of the finite |x| (< 2^63) modulo PI66_2 with a round-to-nearest quotient:
 * r = |x| - q * PI66_2, |r| <= PI66_2 / 2; rem.q = q mod 4.
 */
function reduce(x: Unpacked, r: Unpacked): void {
  const d = x.exp - PI66_2.exp;
  const ph = PI66_2.hi, pl = PI66_2.lo, pe = PI66_2.ext;
  let q = 0;
  if (d < 0) {
    r.copyFrom(x);
    r.sign = 0;
  } else {
    let rTop = 0, rh = x.hi, rl = x.lo, re = x.ext;
    for (let i = 0; i <= d; i++) {
      q = (q << 1) & 3;
      if (rTop !== 0 || rh > ph || (rh === ph && (rl > pl || (rl === pl && re >= pe)))) {
        let ne = re - pe, bw = 0;
        if (ne < 0) { ne += 0x100000000; bw = 1; }
        let nl = rl - pl - bw;
        bw = 0;
        if (nl < 0) { nl += 0x100000000; bw = 1; }
        rh = rh - ph - bw;
        if (rh < 0) rh += 0x100000000;
        rl = nl;
        re = ne;
        q |= 1;
      }
      if (i < d) {
        rTop = rh >>> 31;
        rh = ((rh << 1) | (rl >>> 31)) >>> 0;
        rl = ((rl << 1) | (re >>> 31)) >>> 0;
        re = (re << 1) >>> 0;
      }
    }
    set(r, 0, PI66_2.exp, rh, rl, re);
  }
  // Round the quotient to nearest: if r > PI66_2/2, r = r - PI66_2 (negative), q + 1.
  if (r.cls !== CLS_ZERO) {
    W0.copyFrom(PI66_2);
    W0.exp -= 1;
    if (cmpMag(r, W0) > 0) {
      wSub(r, PI66_2, r);
      q = (q + 1) & 3;
    }
  }
  rem.q = q;
}

const S = new Unpacked(), C = new Unpacked();

/** Common prologue of FSIN/FCOS/FSINCOS/FPTAN. Returns true if res already holds the result. */
function trigPrologue(env: FpEnv, res: Packed, se: number, hi: number, lo: number): boolean {
  transStatus.c2 = false;
  unpackF80(se, hi, lo, X);
  if (x87NaN1(X, env, res)) return true;
  if (X.cls === CLS_INF) {
    env.flags |= FP_IE;
    packIndefinite(FMT_F80, res);
    return true;
  }
  if (X.den) env.flags |= FP_DE;
  if (X.cls === CLS_FINITE && X.exp >= 63) {
    // Out of range: C2 = 1 and the operand is left as it is.
    transStatus.c2 = true;
    res.se = se & 0xffff;
    res.hi = hi >>> 0;
    res.lo = lo >>> 0;
    return true;
  }
  return false;
}

function finish(env: FpEnv, u: Unpacked, res: Packed): void {
  if (u.cls === CLS_ZERO) return packZero(u.sign, FMT_F80, res);
  roundPack(u, FMT_F80, 64, env, res);
  // The kernels' results are never exact except where special-cased.
  env.flags |= FP_PE;
}

/** sin and cos of X after reduction into S and C (sign of x applied to sin). */
function sinCosOfX(): void {
  const sign = X.sign;
  reduce(X, Y);
  const q = rem.q;
  const rs = Y.sign;
  Y.sign = 0;
  sinCosKernel(Y, true, S);
  sinCosKernel(Y, false, C);
  if (rs) S.sign ^= 1;
  // Quadrant: (sin, cos) of r + q*pi/2.
  if (q & 1) {
    W0.copyFrom(S);
    S.copyFrom(C);
    C.copyFrom(W0);
    C.sign ^= 1;
  }
  if (q & 2) {
    S.sign ^= 1;
    C.sign ^= 1;
  }
  if (sign) S.sign ^= 1;
}

/** FSIN: res = sin(x); transStatus.c2 for |x| >= 2^63. */
export function f80Sin(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  if (trigPrologue(env, res, se, hi, lo)) return;
  if (X.cls === CLS_ZERO) return packZero(X.sign, FMT_F80, res);
  sinCosOfX();
  finish(env, S, res);
}

/** FCOS. */
export function f80Cos(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  if (trigPrologue(env, res, se, hi, lo)) return;
  if (X.cls === CLS_ZERO) {
    res.se = 0x3fff;
    res.hi = 0x80000000;
    res.lo = 0;
    return;
  }
  sinCosOfX();
  finish(env, C, res);
}

/** FSINCOS: sin to `sin`, cos to `cos` (ST(1) and ST(0) afterwards). */
export function f80SinCos(env: FpEnv, sin: Packed, cos: Packed, se: number, hi: number, lo: number): void {
  if (trigPrologue(env, sin, se, hi, lo)) {
    cos.se = sin.se;
    cos.hi = sin.hi;
    cos.lo = sin.lo;
    return;
  }
  if (X.cls === CLS_ZERO) {
    packZero(X.sign, FMT_F80, sin);
    cos.se = 0x3fff;
    cos.hi = 0x80000000;
    cos.lo = 0;
    return;
  }
  sinCosOfX();
  finish(env, S, sin);
  finish(env, C, cos);
}

/**
 * FPTAN: res = tan(x). The caller then pushes 1.0, except when res is a NaN (NaN operand or
 * invalid operation), where Intel hardware pushes that NaN again instead.
 */
export function f80Tan(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  if (trigPrologue(env, res, se, hi, lo)) return;
  if (X.cls === CLS_ZERO) return packZero(X.sign, FMT_F80, res);
  sinCosOfX();
  wDiv(S, C, W0);
  finish(env, W0, res);
}

/** atan(t) for 0 < t <= 1 into out. */
function atanKernel(t: Unpacked, out: Unpacked): void {
  Y.copyFrom(t);
  for (let i = 0; i < 3; i++) {
    wMul(Y, Y, W1);
    wAdd(W1, ONE, W1);
    wSqrt(W1, W2);
    wAdd(W2, ONE, W2);
    wDiv(Y, W2, Y);
  }
  wMul(Y, Y, W1);
  wDiv(ONE, INT[31]!, out);
  for (let k = 14; k >= 0; k--) {
    wMul(W1, out, W3);
    wDiv(ONE, INT[2 * k + 1]!, W4);
    wSub(W4, W3, out);
  }
  wMul(out, Y, out);
  out.exp += 3;
}

/** FPATAN: res = atan(y / x) with the quadrant of (x, y) (y = ST(1), x = ST(0)); SDM Vol.2 FPATAN table. */
export function f80Atan(env: FpEnv, res: Packed, seY: number, hiY: number, loY: number, seX: number, hiX: number, loX: number): void {
  unpackF80(seY, hiY, loY, Y);
  unpackF80(seX, hiX, loX, X);
  if (x87NaNs2(Y, X, env, res)) return;
  if (X.den || Y.den) env.flags |= FP_DE;
  const ys = Y.sign, xs = X.sign;
  const out = S;
  if (Y.cls === CLS_ZERO) {
    if (xs) {
      out.copyFrom(PI);
    } else {
      return packZero(ys, FMT_F80, res);
    }
  } else if (Y.cls === CLS_INF) {
    if (X.cls === CLS_INF) {
      if (xs) wMul(PI_4, INT[3]!, out);
      else out.copyFrom(PI_4);
    } else {
      out.copyFrom(PI_2);
    }
  } else if (X.cls === CLS_INF) {
    if (xs) out.copyFrom(PI);
    else return packZero(ys, FMT_F80, res);
  } else if (X.cls === CLS_ZERO) {
    out.copyFrom(PI_2);
  } else {
    const a = C, b = W4;
    a.copyFrom(Y);
    a.sign = 0;
    b.copyFrom(X);
    b.sign = 0;
    const swap = cmpMag(a, b) > 0;
    wDiv(swap ? b : a, swap ? a : b, X);
    atanKernel(X, out);
    if (swap) wSub(PI_2, out, out);
    if (xs) wSub(PI, out, out);
  }
  out.sign = ys;
  finish(env, out, res);
}

/** F2XM1: res = 2^x - 1 (the SDM defines it for -1 <= x <= +1). */
export function f80F2xm1(env: FpEnv, res: Packed, se: number, hi: number, lo: number): void {
  unpackF80(se, hi, lo, X);
  if (x87NaN1(X, env, res)) return;
  if (X.cls === CLS_ZERO) return packZero(X.sign, FMT_F80, res);
  if (X.cls === CLS_INF) {
    if (X.sign) {
      res.se = 0xbfff;
      res.hi = 0x80000000;
      res.lo = 0;
    } else {
      packInf(0, FMT_F80, res);
    }
    return;
  }
  if (X.den) env.flags |= FP_DE;
  if (X.exp >= 0 && !(X.exp === 0 && X.hi === 0x80000000 && X.lo === 0)) {
    // |x| > 1 is outside the defined domain; Intel hardware returns the operand with PE set.
    res.se = se & 0xffff;
    res.hi = hi >>> 0;
    res.lo = lo >>> 0;
    env.flags |= FP_PE;
    return;
  }
  wMul(X, LN2, Y);
  // expm1(z) = z (1 + z/2 (1 + z/3 (1 + ...)))
  S.copyFrom(ONE);
  for (let k = 30; k >= 2; k--) {
    wDiv(Y, INT[k]!, W1);
    wMul(W1, S, W2);
    wAdd(ONE, W2, S);
  }
  wMul(S, Y, S);
  finish(env, S, res);
}

/** log2 of a finite positive value into out (96-bit). */
function log2Kernel(x: Unpacked, out: Unpacked): void {
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
  let e = x.exp;
  W0.copyFrom(x);
  W0.exp = 0;
  // sqrt(2) = 1.6A09E667F3BCC908B2FB1366...; compare the significand.
  if (W0.hi > 0xb504f333 || (W0.hi === 0xb504f333 && W0.lo >= 0xf9de6484)) {
    W0.exp = -1;
    e += 1;
  }
  wSub(W0, ONE, W1);
  wAdd(W0, ONE, W2);
  wDiv(W1, W2, C);
  twoAtanh(C, W3);
  wMul(W3, LOG2E, out);
  if (e !== 0) {
    fromInt(W4, e);
    wAdd(out, W4, out);
  }
}

/** FYL2X: res = y * log2(x) (y = ST(1), x = ST(0)); SDM Vol.2 FYL2X table. */
export function f80Yl2x(env: FpEnv, res: Packed, seY: number, hiY: number, loY: number, seX: number, hiX: number, loX: number): void {
  unpackF80(seY, hiY, loY, Y);
  unpackF80(seX, hiX, loX, X);
  if (x87NaNs2(Y, X, env, res)) return;
  if (X.sign && X.cls !== CLS_ZERO) {
    env.flags |= FP_IE;
    return packIndefinite(FMT_F80, res);
  }
  const ys = Y.sign;
  if (X.cls === CLS_ZERO) {
    if (Y.cls === CLS_ZERO) {
      env.flags |= FP_IE;
      return packIndefinite(FMT_F80, res);
    }
    // Divide-by-zero (log of zero) takes precedence over a denormal y.
    if (Y.cls !== CLS_INF) env.flags |= FP_ZE;
    return packInf(ys ^ 1, FMT_F80, res);
  }
  if (X.den || Y.den) env.flags |= FP_DE;
  if (X.cls === CLS_INF) {
    if (Y.cls === CLS_ZERO) {
      env.flags |= FP_IE;
      return packIndefinite(FMT_F80, res);
    }
    return packInf(ys, FMT_F80, res);
  }
  // log2(x) for finite positive x.
  const isOne = X.exp === 0 && X.hi === 0x80000000 && X.lo === 0;
  if (Y.cls === CLS_INF) {
    if (isOne) {
      env.flags |= FP_IE;
      return packIndefinite(FMT_F80, res);
    }
    return packInf(ys ^ (X.exp < 0 ? 1 : 0), FMT_F80, res);
  }
  if (isOne) return packZero(ys, FMT_F80, res);
  log2Kernel(X, S);
  if (Y.cls === CLS_ZERO) return packZero(ys ^ S.sign, FMT_F80, res);
  // A power of two gives the correctly rounded y * exponent; Intel hardware still reports PE
  // (an Intel Xeon: 1*log2(8), 3*log2(2), 0.5*log2(4) all end with FSW.PE = 1, C1 = 0).
  const exact = X.hi === 0x80000000 && X.lo === 0;
  if (exact) {
    fromInt(W0, X.exp);
    tA.copyFrom(Y);
    mulFinite(tA, W0, C);
    roundPack(C, FMT_F80, 64, env, res);
    env.flags |= FP_PE;
    return;
  }
  wMul(S, Y, C);
  finish(env, C, res);
}

/** FYL2XP1: res = y * log2(x + 1) (the SDM defines it for |x| < 1 - sqrt(2)/2). */
export function f80Yl2xp1(env: FpEnv, res: Packed, seY: number, hiY: number, loY: number, seX: number, hiX: number, loX: number): void {
  unpackF80(seY, hiY, loY, Y);
  unpackF80(seX, hiX, loX, X);
  if (x87NaNs2(Y, X, env, res)) return;
  // Invalid operations do not also report a denormal operand.
  const de = X.den || Y.den ? FP_DE : 0;
  if (X.cls === CLS_ZERO) {
    if (Y.cls === CLS_INF) {
      env.flags |= FP_IE;
      return packIndefinite(FMT_F80, res);
    }
    env.flags |= de;
    return packZero(X.sign ^ Y.sign, FMT_F80, res);
  }
  if (X.cls === CLS_INF || Y.cls === CLS_INF) {
    // Outside the defined domain; treat as y * log2(x + 1) with infinities.
    if (X.cls === CLS_INF && X.sign) {
      env.flags |= FP_IE;
      return packIndefinite(FMT_F80, res);
    }
    if (Y.cls === CLS_ZERO) {
      env.flags |= FP_IE;
      return packIndefinite(FMT_F80, res);
    }
    env.flags |= de;
    return packInf(Y.sign ^ X.sign, FMT_F80, res);
  }
  env.flags |= de;
  if (Y.cls === CLS_ZERO) return packZero(X.sign ^ Y.sign, FMT_F80, res);
  // ln(1+x) = 2 atanh(x / (2 + x))
  wAdd(X, INT[2]!, W1);
  wDiv(X, W1, W0);
  twoAtanh(W0, W3);
  wMul(W3, LOG2E, S);
  wMul(S, Y, C);
  finish(env, C, res);
}

// ---------------------------------------------------------------------------------------------
// Constants (FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ): SDM Vol.2 FLD1/FLDL2T/…, rounded
// per CW.RC from the internal extended-precision values (since the 80387).

export const CONST_ONE = 0;
export const CONST_L2T = 1;
export const CONST_L2E = 2;
export const CONST_PI = 3;
export const CONST_LG2 = 4;
export const CONST_LN2 = 5;
export const CONST_ZERO = 6;

const CONSTS: Unpacked[] = [];
{
  const l2t = new Unpacked();
  log2Kernel(INT[10]!, l2t);
  const lg2 = new Unpacked();
  wDiv(ONE, l2t, lg2);
  CONSTS.push(ONE, l2t, LOG2E, PI, lg2, LN2, new Unpacked());
}
const K = new Unpacked();
const constEnv = new FpEnv();

/** FLD1 … FLDZ: the constant rounded to 64 bits in rounding mode rc; no exception is raised. */
export function f80LoadConst(res: Packed, which: number, rc: number): void {
  const c = CONSTS[which];
  if (c === undefined) throw new RangeError(`f80LoadConst: no constant ${which}`);
  if (c.cls === CLS_ZERO) return packZero(0, FMT_F80, res);
  K.copyFrom(c);
  constEnv.reset(rc, 0x3f);
  roundPack(K, FMT_F80, 64, constEnv, res);
}
