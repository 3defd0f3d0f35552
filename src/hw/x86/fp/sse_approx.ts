/**
 * RCPPS/RCPSS and RSQRTPS/RSQRTSS (SDM Vol. 2 instruction pages): approximations whose relative
 * error Intel documents as |error| <= 1.5 * 2^-12, without naming the table its silicon uses.
 *
 * The table used here: the exact reciprocal (or reciprocal square root), computed in double
 * precision, rounded to nearest at 12 significant bits (the float32 significand with its low 12
 * bits cleared). Its relative error is at most 2^-12 (+2^-24 from the double-to-single step),
 * inside Intel's bound, so software written against the documented bound sees no difference;
 * bit-exact comparisons with hardware must compare these two instructions within the bound.
 *
 * Special operands as on hardware: MXCSR is neither read nor changed (no exceptions, no DAZ/FTZ
 * switch) because denormal inputs always read as zero and tiny results always flush to zero;
 * +-0 -> +-inf, +inf -> +0, -inf -> -0 (RCP), NaN -> the quieted NaN, RSQRT of a negative
 * non-zero (inf included) -> the QNaN indefinite.
 */

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);

function roundTo12(v: number): number {
  F[0] = v;
  let b = U[0]!;
  b = (b + 0x800) & ~0xfff;
  // A result below the smallest normal flushes to a signed zero.
  if ((b & 0x7f800000) === 0) b &= 0x80000000;
  return b >>> 0;
}

/** RCPSS lane: approximate 1/x of single bits `a`. */
export function rcpF32(a: number): number {
  const e = (a >>> 23) & 0xff, sign = a & 0x80000000;
  if (e === 0xff) {
    if (a & 0x7fffff) return (a | 0x400000) >>> 0;
    return sign >>> 0;
  }
  if (e === 0) return (sign | 0x7f800000) >>> 0;
  U[0] = a;
  return roundTo12(1 / F[0]!);
}

/** RSQRTSS lane: approximate 1/sqrt(x) of single bits `a`. */
export function rsqrtF32(a: number): number {
  const e = (a >>> 23) & 0xff, sign = a & 0x80000000;
  if (e === 0xff && (a & 0x7fffff)) return (a | 0x400000) >>> 0;
  if (e === 0) return (sign | 0x7f800000) >>> 0;
  if (sign) return 0xffc00000;
  if (e === 0xff) return 0;
  U[0] = a;
  return roundTo12(1 / Math.sqrt(F[0]!));
}
