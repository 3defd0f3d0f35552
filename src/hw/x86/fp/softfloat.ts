/**
 * Exact binary floating-point core shared by the x87 (80-bit extended) and SSE (float32/float64)
 * arithmetic. Every operation produces an exact intermediate (a 96-bit significand whose last bit
 * is a sticky bit) that is rounded once by roundPack() to the destination precision and exponent
 * range, so there is no double rounding whatever the target format, precision control or
 * rounding mode. No BigInt and no allocation: operands live in preallocated Unpacked records.
 *
 * SDM Vol. 1 ch. 4 (data types, rounding, NaNs), 4.9 (exceptions), 8.1.5 (x87 control word),
 * 10.2.3 (MXCSR).
 */

/** Exception flags, same bit positions in the x87 status word and in MXCSR (SDM Vol.1 8.1.3, 10.2.3.1). */
export const FP_IE = 0x01;
export const FP_DE = 0x02;
export const FP_ZE = 0x04;
export const FP_OE = 0x08;
export const FP_UE = 0x10;
export const FP_PE = 0x20;

/** Rounding control, same encoding in x87 CW.RC and MXCSR.RC (SDM Vol.1 Table 4-8). */
export const RC_NEAREST = 0;
export const RC_DOWN = 1;
export const RC_UP = 2;
export const RC_ZERO = 3;

/** Destination formats. */
export const FMT_F32 = 0;
export const FMT_F64 = 1;
export const FMT_F80 = 2;

/** Operand classes after unpacking. */
export const CLS_ZERO = 0;
export const CLS_FINITE = 1;
export const CLS_INF = 2;
export const CLS_QNAN = 3;
export const CLS_SNAN = 4;
/** x87 unsupported encodings: unnormals, pseudo-infinities, pseudo-NaNs (SDM Vol.1 8.2.2). */
export const CLS_UNSUPPORTED = 5;

/** x87 unmasked overflow/underflow bias adjust (SDM Vol.1 8.5.3, 8.5.4). */
export const X87_BIAS_ADJUST = 24576;

/**
 * Rounding environment and flag accumulator for one operation. The caller sets rc/masks/ftz/x87
 * and clears flags; operations OR raised exceptions into flags.
 */
export class FpEnv {
  rc = RC_NEAREST;
  /** Exception mask bits (1 = masked), FP_* positions. */
  masks = 0x3f;
  /** MXCSR.FTZ: masked underflow returns a signed zero. */
  ftz = false;
  /** MXCSR.DAZ: denormal operands read as signed zeros, no DE. */
  daz = false;
  /** x87 response to unmasked OE/UE on register results: bias-adjusted result is delivered. */
  x87 = false;
  /** x87 precision control in significand bits (24, 53, 64) for FADD/FSUB/FMUL/FDIV/FSQRT. */
  precision = 64;
  flags = 0;
  /** x87 C1 after an inexact result: 1 when the magnitude was rounded up. */
  roundedUp = false;

  reset(rc: number, masks: number): void {
    this.rc = rc;
    this.masks = masks;
    this.flags = 0;
    this.roundedUp = false;
  }
}

/**
 * An unpacked operand or exact intermediate. For CLS_FINITE the value is
 * (hi:lo:ext as a 96-bit integer) * 2^(exp - 95): bit 31 of hi has weight 2^exp. ext holds guard
 * bits and its bit 0 is sticky. For NaNs hi:lo hold the payload in x87 layout (bit 31 of hi is the
 * integer bit, bit 30 the quiet bit).
 */
export class Unpacked {
  cls = CLS_ZERO;
  sign = 0;
  exp = 0;
  hi = 0;
  lo = 0;
  ext = 0;
  /** The operand was a denormal (or x87 pseudo-denormal) in its source format. */
  den = false;

  copyFrom(o: Unpacked): void {
    this.cls = o.cls;
    this.sign = o.sign;
    this.exp = o.exp;
    this.hi = o.hi;
    this.lo = o.lo;
    this.ext = o.ext;
    this.den = o.den;
  }

  setZero(sign: number): void {
    this.cls = CLS_ZERO;
    this.sign = sign;
    this.exp = 0;
    this.hi = 0;
    this.lo = 0;
    this.ext = 0;
  }
}

/** A packed result: f32 in lo; f64 in hi:lo; f80 as se (sign+exponent) and hi:lo significand. */
export class Packed {
  lo = 0;
  hi = 0;
  se = 0;
}

// ---------------------------------------------------------------------------------------------
// Unpacking

/** Unpack an IEEE single. DAZ turns denormals into signed zeros (SDM Vol.1 10.2.3.4). */
export function unpackF32(bits: number, u: Unpacked, daz: boolean): void {
  const e = (bits >>> 23) & 0xff;
  const f = bits & 0x7fffff;
  u.sign = bits >>> 31;
  u.lo = 0;
  u.ext = 0;
  u.den = false;
  if (e === 0xff) {
    u.hi = (0x80000000 | (f << 8)) >>> 0;
    u.cls = f === 0 ? CLS_INF : f & 0x400000 ? CLS_QNAN : CLS_SNAN;
    u.exp = 0;
  } else if (e === 0) {
    if (f === 0 || daz) {
      u.setZero(u.sign);
    } else {
      u.cls = CLS_FINITE;
      u.den = true;
      u.hi = f << 8;
      u.exp = -126;
      normalize(u);
    }
  } else {
    u.cls = CLS_FINITE;
    u.hi = (0x80000000 | (f << 8)) >>> 0;
    u.exp = e - 127;
  }
}

/** Unpack an IEEE double given as two 32-bit halves. */
export function unpackF64(lo: number, hi: number, u: Unpacked, daz: boolean): void {
  const e = (hi >>> 20) & 0x7ff;
  const fh = hi & 0xfffff;
  u.sign = hi >>> 31;
  u.ext = 0;
  u.den = false;
  u.hi = ((fh << 11) | (lo >>> 21)) >>> 0;
  u.lo = (lo << 11) >>> 0;
  if (e === 0x7ff) {
    u.cls = (fh | lo) === 0 ? CLS_INF : fh & 0x80000 ? CLS_QNAN : CLS_SNAN;
    u.hi = (u.hi | 0x80000000) >>> 0;
    u.exp = 0;
  } else if (e === 0) {
    if ((fh | lo) === 0 || daz) {
      u.setZero(u.sign);
    } else {
      u.cls = CLS_FINITE;
      u.den = true;
      u.exp = -1022;
      normalize(u);
    }
  } else {
    u.cls = CLS_FINITE;
    u.hi = (u.hi | 0x80000000) >>> 0;
    u.exp = e - 1023;
  }
}

/** Unpack an x87 80-bit value (SDM Vol.1 Table 8-3, 8.2.2 unsupported encodings). */
export function unpackF80(se: number, hi: number, lo: number, u: Unpacked): void {
  const e = se & 0x7fff;
  u.sign = (se >>> 15) & 1;
  u.hi = hi >>> 0;
  u.lo = lo >>> 0;
  u.ext = 0;
  u.den = false;
  const j = hi >>> 31;
  if (e === 0x7fff) {
    u.exp = 0;
    if (!j) u.cls = CLS_UNSUPPORTED;
    else if (((hi & 0x7fffffff) | lo) === 0) u.cls = CLS_INF;
    else u.cls = hi & 0x40000000 ? CLS_QNAN : CLS_SNAN;
  } else if (e === 0) {
    if ((hi | lo) === 0) {
      u.setZero(u.sign);
    } else {
      // Denormal or pseudo-denormal: both read with exponent 1 - bias.
      u.cls = CLS_FINITE;
      u.den = true;
      u.exp = -16382;
      normalize(u);
    }
  } else if (!j) {
    u.cls = CLS_UNSUPPORTED;
    u.exp = 0;
  } else {
    u.cls = CLS_FINITE;
    u.exp = e - 16383;
  }
}

// ---------------------------------------------------------------------------------------------
// 96-bit significand helpers

/** Shift a finite significand left until bit 95 is set (no-op for a zero significand). */
export function normalize(u: Unpacked): void {
  let hi = u.hi, lo = u.lo, ext = u.ext, exp = u.exp;
  if ((hi | lo | ext) === 0) return;
  while (hi === 0) {
    hi = lo;
    lo = ext;
    ext = 0;
    exp -= 32;
  }
  const s = Math.clz32(hi);
  if (s > 0) {
    hi = (hi << s) | (lo >>> (32 - s));
    lo = (lo << s) | (ext >>> (32 - s));
    ext <<= s;
    exp -= s;
  }
  u.hi = hi >>> 0;
  u.lo = lo >>> 0;
  u.ext = ext >>> 0;
  u.exp = exp;
}

/** Shift the significand right by n bits, folding every lost bit into the sticky bit (ext bit 0). */
export function shiftRightJam(u: Unpacked, n: number): void {
  if (n <= 0) return;
  let hi = u.hi, lo = u.lo, ext = u.ext;
  if (n >= 96) {
    u.ext = (hi | lo | ext) !== 0 ? 1 : 0;
    u.hi = 0;
    u.lo = 0;
    return;
  }
  let sticky = 0;
  while (n >= 32) {
    sticky |= ext;
    ext = lo;
    lo = hi;
    hi = 0;
    n -= 32;
  }
  if (n > 0) {
    sticky |= ext << (32 - n);
    ext = (ext >>> n) | (lo << (32 - n));
    lo = (lo >>> n) | (hi << (32 - n));
    hi = hi >>> n;
  }
  u.hi = hi >>> 0;
  u.lo = lo >>> 0;
  u.ext = (ext | (sticky !== 0 ? 1 : 0)) >>> 0;
}

/**
 * Round the normalized or denormalized 96-bit significand to p bits (24, 53 or 64) counted from
 * bit 95, per rounding mode; a carry out renormalizes and bumps exp. Returns 0 if exact, 1 if
 * inexact and truncated, 2 if inexact and the magnitude was incremented.
 */
export function roundSignificand(u: Unpacked, p: number, rc: number): number {
  let hi = u.hi, lo = u.lo;
  const ext = u.ext;
  let rb: number, sticky: boolean, lsb: number, k: number;
  if (p === 64) {
    k = 0;
    rb = ext >>> 31;
    sticky = (ext & 0x7fffffff) !== 0;
    lsb = lo & 1;
  } else if (p > 32) {
    k = 64 - p;
    rb = (lo >>> (k - 1)) & 1;
    sticky = (lo & ((1 << (k - 1)) - 1)) !== 0 || ext !== 0;
    lsb = (lo >>> k) & 1;
  } else {
    k = 32 - p;
    rb = (hi >>> (k - 1)) & 1;
    sticky = (hi & ((1 << (k - 1)) - 1)) !== 0 || lo !== 0 || ext !== 0;
    lsb = (hi >>> k) & 1;
  }
  u.ext = 0;
  const inexact = rb !== 0 || sticky;
  if (!inexact) return 0;
  let inc: boolean;
  if (rc === RC_NEAREST) inc = rb !== 0 && (sticky || lsb !== 0);
  else if (rc === RC_DOWN) inc = u.sign !== 0;
  else if (rc === RC_UP) inc = u.sign === 0;
  else inc = false;
  if (p > 32) {
    lo = k === 0 ? lo : (lo & ~((1 << k) - 1)) >>> 0;
    if (inc) {
      lo = lo + (k === 0 ? 1 : 1 << k);
      if (lo > 0xffffffff) {
        lo -= 0x100000000;
        hi = hi + 1;
      }
    }
  } else {
    hi = (hi & ~((1 << k) - 1)) >>> 0;
    lo = 0;
    if (inc) hi = hi + (1 << k);
  }
  if (hi > 0xffffffff) {
    hi = 0x80000000;
    lo = 0;
    u.exp += 1;
  }
  u.hi = hi >>> 0;
  u.lo = lo >>> 0;
  return inc ? 2 : 1;
}

// ---------------------------------------------------------------------------------------------
// Packing

const EMIN = [-126, -1022, -16382];
const EMAX = [127, 1023, 16383];
const BIAS = [127, 1023, 16383];

/** Pack a finite value whose significand is already rounded (exp within range or biased). */
function packRounded(u: Unpacked, fmt: number, res: Packed): void {
  const sign = u.sign, hi = u.hi, lo = u.lo;
  const field = hi >>> 31 ? u.exp + BIAS[fmt]! : 0;
  if (fmt === FMT_F80) {
    res.se = ((sign << 15) | (field & 0x7fff)) >>> 0;
    res.hi = hi;
    res.lo = lo;
  } else if (fmt === FMT_F64) {
    res.hi = ((sign << 31) | (field << 20) | ((hi >>> 11) & 0xfffff)) >>> 0;
    res.lo = ((hi << 21) | (lo >>> 11)) >>> 0;
    res.se = 0;
  } else {
    res.lo = ((sign << 31) | (field << 23) | ((hi >>> 8) & 0x7fffff)) >>> 0;
    res.hi = 0;
    res.se = 0;
  }
}

export function packZero(sign: number, fmt: number, res: Packed): void {
  res.se = fmt === FMT_F80 ? sign << 15 : 0;
  res.hi = fmt === FMT_F64 ? (sign << 31) >>> 0 : 0;
  res.lo = fmt === FMT_F32 ? (sign << 31) >>> 0 : 0;
}

export function packInf(sign: number, fmt: number, res: Packed): void {
  if (fmt === FMT_F80) {
    res.se = (sign << 15) | 0x7fff;
    res.hi = 0x80000000;
    res.lo = 0;
  } else if (fmt === FMT_F64) {
    res.se = 0;
    res.hi = ((sign << 31) | 0x7ff00000) >>> 0;
    res.lo = 0;
  } else {
    res.se = 0;
    res.hi = 0;
    res.lo = ((sign << 31) | 0x7f800000) >>> 0;
  }
}

/** The real/QNaN floating-point indefinite (SDM Vol.1 Table 4-3): negative, quiet, zero payload. */
export function packIndefinite(fmt: number, res: Packed): void {
  if (fmt === FMT_F80) {
    res.se = 0xffff;
    res.hi = 0xc0000000;
    res.lo = 0;
  } else if (fmt === FMT_F64) {
    res.se = 0;
    res.hi = 0xfff80000;
    res.lo = 0;
  } else {
    res.se = 0;
    res.hi = 0;
    res.lo = 0xffc00000;
  }
}

/** Pack a NaN operand, quieted, its payload truncated to the destination format. */
export function packQuietNaN(u: Unpacked, fmt: number, res: Packed): void {
  const sign = u.sign, hi = u.hi | 0xc0000000, lo = u.lo;
  if (fmt === FMT_F80) {
    res.se = (sign << 15) | 0x7fff;
    res.hi = hi >>> 0;
    res.lo = lo >>> 0;
  } else if (fmt === FMT_F64) {
    res.se = 0;
    res.hi = ((sign << 31) | 0x7ff00000 | ((hi >>> 11) & 0xfffff)) >>> 0;
    res.lo = ((hi << 21) | (lo >>> 11)) >>> 0;
  } else {
    res.se = 0;
    res.hi = 0;
    res.lo = ((sign << 31) | 0x7f800000 | ((hi >>> 8) & 0x7fffff)) >>> 0;
  }
}

/** Largest finite magnitude with a p-bit significand. */
function packMaxFinite(sign: number, fmt: number, p: number, res: Packed, u: Unpacked): void {
  u.sign = sign;
  u.exp = EMAX[fmt]!;
  if (p > 32) {
    u.hi = 0xffffffff;
    u.lo = p === 64 ? 0xffffffff : (0xffffffff << (64 - p)) >>> 0;
  } else {
    u.hi = (0xffffffff << (32 - p)) >>> 0;
    u.lo = 0;
  }
  packRounded(u, fmt, res);
}

const trial = new Unpacked();

/**
 * Round an exact finite intermediate to format fmt with a p-bit significand (p < format
 * precision only under x87 precision control) and pack it; raises PE/UE/OE and applies the
 * masked or unmasked responses (SDM Vol.1 4.9.1.5, 4.9.1.6, 8.5.3, 8.5.4, 10.2.3.3 FTZ).
 * Tininess is detected after rounding, as x86 does. u is clobbered.
 */
export function roundPack(u: Unpacked, fmt: number, p: number, env: FpEnv, res: Packed): void {
  if ((u.hi | u.lo | u.ext) === 0) {
    packZero(u.sign, fmt, res);
    return;
  }
  normalize(u);
  const emin = EMIN[fmt]!, emax = EMAX[fmt]!;
  let tiny = false;
  if (u.exp < emin) {
    if (u.exp < emin - 1) {
      tiny = true;
    } else {
      trial.copyFrom(u);
      roundSignificand(trial, p, env.rc);
      tiny = trial.exp < emin;
    }
    const ueMasked = (env.masks & FP_UE) !== 0;
    if (tiny && !ueMasked && env.x87 && fmt === FMT_F80 && u.exp + X87_BIAS_ADJUST < emin) {
      // Beyond the bias-adjust range (FSCALE): a signed zero whatever the rounding mode.
      env.flags |= FP_UE | FP_PE;
      env.roundedUp = false;
      packZero(u.sign, fmt, res);
      return;
    }
    if (tiny && ueMasked && env.ftz) {
      env.flags |= FP_UE | FP_PE;
      env.roundedUp = false;
      packZero(u.sign, fmt, res);
      return;
    }
    if (tiny && !ueMasked && env.x87 && fmt === FMT_F80) {
      // Unmasked x87 underflow delivers the result scaled by 2^24576 (SDM Vol.1 8.5.4).
      u.exp += X87_BIAS_ADJUST;
    } else if (tiny && !ueMasked && !env.x87) {
      // Unmasked SSE (or x87 store) underflow: nothing is delivered; PE reports whether the
      // result rounded with an unbounded exponent is inexact, as the host shows.
    } else {
      shiftRightJam(u, emin - u.exp);
      u.exp = emin;
    }
  }
  const r = roundSignificand(u, p, env.rc);
  if (r !== 0) {
    env.flags |= FP_PE;
    env.roundedUp = r === 2;
  } else {
    env.roundedUp = false;
  }
  if (tiny && (r !== 0 || (env.masks & FP_UE) === 0)) env.flags |= FP_UE;
  if (u.exp > emax) {
    const x87Unmasked = env.x87 && fmt === FMT_F80 && (env.masks & FP_OE) === 0;
    if (x87Unmasked && u.exp - X87_BIAS_ADJUST <= emax) {
      // Unmasked x87 overflow delivers the result scaled by 2^-24576 (SDM Vol.1 8.5.3).
      env.flags |= FP_OE;
      u.exp -= X87_BIAS_ADJUST;
    } else if (x87Unmasked) {
      // Beyond the bias-adjust range (FSCALE): a signed infinity whatever the rounding mode.
      env.flags |= FP_OE | FP_PE;
      env.roundedUp = true;
      packInf(u.sign, fmt, res);
      return;
    } else if (!env.x87 && (env.masks & FP_OE) === 0) {
      // Unmasked SSE (or x87 store) overflow: nothing is delivered; PE as for the unbounded result.
      env.flags |= FP_OE;
      packInf(u.sign, fmt, res);
      return;
    } else {
      env.flags |= FP_OE | FP_PE;
      const rc = env.rc;
      const toInf = rc === RC_NEAREST || (rc === RC_UP && u.sign === 0) || (rc === RC_DOWN && u.sign !== 0);
      env.roundedUp = toInf;
      if (toInf) packInf(u.sign, fmt, res);
      else packMaxFinite(u.sign, fmt, p, res, u);
      return;
    }
  }
  packRounded(u, fmt, res);
}

/** Natural significand precision of a format. */
export function formatPrecision(fmt: number): number {
  return fmt === FMT_F32 ? 24 : fmt === FMT_F64 ? 53 : 64;
}

// ---------------------------------------------------------------------------------------------
// Exact arithmetic on finite, nonzero, normalized operands. Results go to r (may alias neither).

/** r = a + b (signs included), exact with sticky. Exact zero gets the sign rule of IEEE 754. */
export function addFinite(a: Unpacked, b: Unpacked, r: Unpacked, rc: number): void {
  // Order by exponent so that a is the larger-exponent operand.
  let x = a, y = b;
  if (y.exp > x.exp) {
    x = b;
    y = a;
  }
  r.cls = CLS_FINITE;
  r.den = false;
  yAl.copyFrom(y);
  shiftRightJam(yAl, x.exp - y.exp);
  const xh = x.hi, xl = x.lo, xe = x.ext;
  const yh = yAl.hi, yl = yAl.lo, ye = yAl.ext;
  if (x.sign === y.sign) {
    let e = xe + ye;
    let c = e > 0xffffffff ? 1 : 0;
    let l = xl + yl + c;
    c = l > 0xffffffff ? 1 : 0;
    let h = xh + yh + c;
    e >>>= 0;
    l >>>= 0;
    r.sign = x.sign;
    r.exp = x.exp;
    if (h > 0xffffffff) {
      // Carry out: shift right one, keeping the sticky bit.
      const lost = e & 1;
      e = (e >>> 1) | ((l & 1) << 31) | lost;
      l = (l >>> 1) | ((h & 1) << 31);
      h = 0x80000000 | ((h >>> 1) & 0x7fffffff);
      r.exp += 1;
    }
    r.hi = h >>> 0;
    r.lo = l >>> 0;
    r.ext = e >>> 0;
    return;
  }
  // Opposite signs: subtract the smaller magnitude from the larger.
  let bigIsX: boolean;
  if (xh !== yh) bigIsX = xh > yh;
  else if (xl !== yl) bigIsX = xl > yl;
  else if (xe !== ye) bigIsX = xe > ye;
  else {
    r.setZero(rc === RC_DOWN ? 1 : 0);
    return;
  }
  const ph = bigIsX ? xh : yh, pl = bigIsX ? xl : yl, pe = bigIsX ? xe : ye;
  const qh = bigIsX ? yh : xh, ql = bigIsX ? yl : xl, qe = bigIsX ? ye : xe;
  let e = pe - qe;
  let bw = e < 0 ? 1 : 0;
  let l = pl - ql - bw;
  bw = l < 0 ? 1 : 0;
  const h = ph - qh - bw;
  e = e < 0 ? e + 0x100000000 : e;
  l = l < 0 ? l + 0x100000000 : l;
  r.sign = bigIsX ? x.sign : y.sign;
  r.exp = x.exp;
  r.hi = h >>> 0;
  r.lo = l >>> 0;
  r.ext = e >>> 0;
  normalize(r);
}
const yAl = new Unpacked();

/** 16-bit limbs for the multiply, least significant first (6 limbs = 96 bits). */
const ma = new Float64Array(6);
const mb = new Float64Array(6);
const mp = new Float64Array(12);

/**
 * r = a * b, the top 96 bits of the exact product with the rest folded into the sticky bit.
 * Operands with a zero extension word (every IEEE/x87 operand) take the 64x64-bit path; the
 * 96x96-bit path serves the extended-precision transcendental kernels.
 */
export function mulFinite(a: Unpacked, b: Unpacked, r: Unpacked): void {
  const wide = (a.ext | b.ext) !== 0;
  const n = wide ? 6 : 4;
  ma[0] = a.ext & 0xffff; ma[1] = a.ext >>> 16; ma[2] = a.lo & 0xffff; ma[3] = a.lo >>> 16; ma[4] = a.hi & 0xffff; ma[5] = a.hi >>> 16;
  mb[0] = b.ext & 0xffff; mb[1] = b.ext >>> 16; mb[2] = b.lo & 0xffff; mb[3] = b.lo >>> 16; mb[4] = b.hi & 0xffff; mb[5] = b.hi >>> 16;
  const off = 6 - n;
  mp.fill(0);
  for (let i = 0; i < n; i++) {
    const ai = ma[off + i]!;
    for (let j = 0; j < n; j++) mp[i + j] = mp[i + j]! + ai * mb[off + j]!;
  }
  // Carry-propagate the 16-bit columns (each column < 2^35, exact in a double).
  let carry = 0;
  for (let k = 0; k < 2 * n; k++) {
    const v = mp[k]! + carry;
    const low = v % 65536;
    mp[k] = low;
    carry = (v - low) / 65536;
  }
  // Top 96 bits are the last six limbs; everything below is sticky.
  const t = 2 * n - 6;
  let sticky = 0;
  for (let k = 0; k < t; k++) if (mp[k] !== 0) sticky = 1;
  r.cls = CLS_FINITE;
  r.den = false;
  r.sign = a.sign ^ b.sign;
  r.exp = a.exp + b.exp + 1;
  r.hi = (mp[t + 4]! + mp[t + 5]! * 65536) >>> 0;
  r.lo = (mp[t + 2]! + mp[t + 3]! * 65536) >>> 0;
  r.ext = ((mp[t]! + mp[t + 1]! * 65536) | sticky) >>> 0;
}

/**
 * r = a / b: restoring division producing 96 quotient bits and a sticky remainder bit.
 * Both significands normalized (bit 95 set; all 96 bits are used); the quotient lies in (1/2, 2).
 */
export function divFinite(a: Unpacked, b: Unpacked, r: Unpacked): void {
  // Remainder as a 97-bit value rTop:rh:rl:re; divisor dh:dl:de.
  let rTop = 0, rh = a.hi, rl = a.lo, re = a.ext;
  const dh = b.hi, dl = b.lo, de = b.ext;
  let qh = 0, ql = 0, qe = 0;
  for (let i = 0; i < 96; i++) {
    let bit = 0;
    if (rTop !== 0 || rh > dh || (rh === dh && (rl > dl || (rl === dl && re >= de)))) {
      let ne = re - de, bw = 0;
      if (ne < 0) {
        ne += 0x100000000;
        bw = 1;
      }
      let nl = rl - dl - bw;
      bw = 0;
      if (nl < 0) {
        nl += 0x100000000;
        bw = 1;
      }
      rh = rh - dh - bw;
      if (rh < 0) rh += 0x100000000;
      rl = nl;
      re = ne;
      rTop = 0;
      bit = 1;
    }
    qh = ((qh << 1) | (ql >>> 31)) >>> 0;
    ql = ((ql << 1) | (qe >>> 31)) >>> 0;
    qe = ((qe << 1) | bit) >>> 0;
    rTop = rh >>> 31;
    rh = ((rh << 1) | (rl >>> 31)) >>> 0;
    rl = ((rl << 1) | (re >>> 31)) >>> 0;
    re = (re << 1) >>> 0;
  }
  r.cls = CLS_FINITE;
  r.den = false;
  r.sign = a.sign ^ b.sign;
  r.exp = a.exp - b.exp;
  r.hi = qh;
  r.lo = ql;
  r.ext = (qe | ((rTop | rh | rl | re) !== 0 ? 1 : 0)) >>> 0;
  normalize(r);
}

/** Radicand (6 words, most significant first), root and remainder (4 words each, ms first). */
const sqRad = new Uint32Array(6);
const sqRem = new Uint32Array(4);
const sqRoot = new Uint32Array(4);
const sqTrial = new Uint32Array(4);

function shl4(w: Uint32Array, n: number, inBits: number): void {
  w[0] = (w[0]! << n) | (w[1]! >>> (32 - n));
  w[1] = (w[1]! << n) | (w[2]! >>> (32 - n));
  w[2] = (w[2]! << n) | (w[3]! >>> (32 - n));
  w[3] = (w[3]! << n) | inBits;
}

/** r = sqrt(a) for a positive finite normalized a (all 96 bits used): 96 root bits plus sticky (digit by digit). */
export function sqrtFinite(a: Unpacked, r: Unpacked): void {
  // a = S * 2^(exp-63), S = hi:lo.ext as a 64.32 fixed-point number. Make the binary exponent even.
  let e2 = a.exp - 63;
  let s0 = a.hi, s1 = a.lo, s2 = a.ext, top = 0;
  if (e2 & 1) {
    top = s0 >>> 31;
    s0 = ((s0 << 1) | (s1 >>> 31)) >>> 0;
    s1 = ((s1 << 1) | (s2 >>> 31)) >>> 0;
    s2 = (s2 << 1) >>> 0;
    e2 -= 1;
  }
  // Radicand R = S' * 2^126 (S' up to 65 integer bits), 191 bits; the fraction bits follow.
  sqRad[0] = ((top << 30) | (s0 >>> 2)) >>> 0;
  sqRad[1] = ((s0 << 30) | (s1 >>> 2)) >>> 0;
  sqRad[2] = ((s1 << 30) | (s2 >>> 2)) >>> 0;
  sqRad[3] = (s2 << 30) >>> 0;
  sqRad[4] = 0;
  sqRad[5] = 0;
  sqRem.fill(0);
  sqRoot.fill(0);
  for (let i = 0; i < 96; i++) {
    const two = sqRad[0]! >>> 30;
    for (let k = 0; k < 5; k++) sqRad[k] = (sqRad[k]! << 2) | (sqRad[k + 1]! >>> 30);
    sqRad[5] = sqRad[5]! << 2;
    shl4(sqRem, 2, two);
    // trial = root*4 + 1
    sqTrial.set(sqRoot);
    shl4(sqTrial, 2, 1);
    shl4(sqRoot, 1, 0);
    let ge = true;
    for (let k = 0; k < 4; k++) {
      if (sqRem[k] !== sqTrial[k]) {
        ge = sqRem[k]! > sqTrial[k]!;
        break;
      }
    }
    if (ge) {
      let bw = 0;
      for (let k = 3; k >= 0; k--) {
        let d = sqRem[k]! - sqTrial[k]! - bw;
        bw = d < 0 ? 1 : 0;
        if (d < 0) d += 0x100000000;
        sqRem[k] = d;
      }
      sqRoot[3] = sqRoot[3]! | 1;
    }
  }
  // root = sqrt(S') * 2^63, value = root * 2^(e2/2 - 63); bit 95 of root has weight 2^(e2/2 + 32).
  r.cls = CLS_FINITE;
  r.den = false;
  r.sign = 0;
  r.exp = e2 / 2 + 32;
  r.hi = sqRoot[1]!;
  r.lo = sqRoot[2]!;
  r.ext = (sqRoot[3]! | ((sqRem[0]! | sqRem[1]! | sqRem[2]! | sqRem[3]!) !== 0 ? 1 : 0)) >>> 0;
  normalize(r);
}

/** Compare magnitudes of two finite normalized values: -1, 0, 1. */
export function cmpMag(a: Unpacked, b: Unpacked): number {
  if (a.exp !== b.exp) return a.exp > b.exp ? 1 : -1;
  if (a.hi !== b.hi) return a.hi > b.hi ? 1 : -1;
  if (a.lo !== b.lo) return a.lo > b.lo ? 1 : -1;
  if (a.ext !== b.ext) return a.ext > b.ext ? 1 : -1;
  return 0;
}

/** Ordered comparison of two non-NaN operands (zeros equal regardless of sign): -1, 0, 1. */
export function cmpOrdered(a: Unpacked, b: Unpacked): number {
  const az = a.cls === CLS_ZERO, bz = b.cls === CLS_ZERO;
  if (az && bz) return 0;
  if (az) return b.sign ? 1 : -1;
  if (bz) return a.sign ? -1 : 1;
  if (a.sign !== b.sign) return a.sign ? -1 : 1;
  let m: number;
  const ai = a.cls === CLS_INF, bi = b.cls === CLS_INF;
  if (ai || bi) m = ai && bi ? 0 : ai ? 1 : -1;
  else m = cmpMag(a, b);
  return a.sign ? -m : m;
}
