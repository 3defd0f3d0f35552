/** Seeded operand generators with special values for the FP oracle comparisons. */

export type F80 = [se: number, hi: number, lo: number];

/** Random significand pattern that often lands on rounding boundaries. */
function sigPattern(r: () => number): [number, number] {
  switch (r() % 8) {
    case 0: return [r(), r()];
    case 1: return [0xffffffff, 0xffffffff];
    case 2: return [r() & 0xffffff00, 0]; // exactly 24 bits
    case 3: return [r(), r() & 0xfffff800]; // exactly 53 bits
    case 4: return [r(), (r() & 0xfffff800) | 0x400]; // half-way at 53 bits
    case 5: return [(r() & 0xffffff00) | 0x80, 0]; // half-way at 24 bits
    case 6: return [r(), r() | 1];
    default: return [0x80000000, 1 << (r() % 32)];
  }
}

export function genF80(r: () => number): F80 {
  const sign = (r() & 1) << 15;
  const [h, l] = sigPattern(r);
  const hi = (h | 0x80000000) >>> 0, lo = l >>> 0;
  switch (r() % 20) {
    case 0: return [sign, 0, 0];
    case 1: return [sign, (h & 0x7fffffff) >>> 0, lo]; // denormal
    case 2: return [sign, hi, lo]; // pseudo-denormal
    case 3: return [sign | 0x7fff, 0x80000000, 0]; // infinity
    case 4: return [sign | 0x7fff, (hi | 0x40000000) >>> 0, lo]; // QNaN
    case 5: return [sign | 0x7fff, ((hi & 0xbfffffff) | 0x80000000 | ((lo | h) === 0 ? 1 : 0)) >>> 0, lo | 1]; // SNaN
    case 6: return [sign | (1 + (r() % 0x7ffe)), (h & 0x7fffffff) >>> 0, lo]; // unnormal
    case 7: return [sign | 0x7fff, (h & 0x7fffffff) >>> 0, lo]; // pseudo-NaN / pseudo-infinity
    case 8: return [sign | 1 + (r() % 80), hi, lo]; // tiny normal
    case 9: return [sign | (0x7ffe - (r() % 80)), hi, lo]; // huge normal
    case 10: return [sign | 0x7ffe, 0xffffffff, 0xffffffff];
    case 11: return [sign | 1, 0x80000000, 0];
    case 12: return [sign | (16383 - 16382 + (r() % 400)), hi, lo]; // near the double/single range bottom is handled below
    case 13: return [sign | (16383 - 1022 - 60 + (r() % 120)), hi, lo]; // around double denormals
    case 14: return [sign | (16383 - 126 - 30 + (r() % 60)), hi, lo]; // around single denormals
    case 15: return [sign | (16383 + 1000 + (r() % 60)), hi, lo]; // around double overflow
    default: return [sign | (16383 - 40 + (r() % 80)), hi, lo];
  }
}

/** A second operand related to the first (same neighbourhood) to exercise cancellation and ties. */
export function genF80Near(r: () => number, a: F80): F80 {
  if (r() % 3 !== 0) return genF80(r);
  const e = a[0] & 0x7fff;
  if (e === 0 || e === 0x7fff) return genF80(r);
  const ne = Math.min(0x7ffe, Math.max(1, e + (r() % 9) - 4));
  const lo = r() % 2 ? a[2] : (a[2] ^ (1 << (r() % 32))) >>> 0;
  return [((r() & 1) << 15) | ne, a[1], lo];
}

export function genF32(r: () => number): number {
  const sign = (r() & 1) << 31;
  const f = r() & 0x7fffff;
  switch (r() % 16) {
    case 0: return sign >>> 0;
    case 1: return (sign | f) >>> 0; // denormal
    case 2: return (sign | 0x7f800000) >>> 0;
    case 3: return (sign | 0x7fc00000 | f) >>> 0; // QNaN
    case 4: return (sign | 0x7f800000 | (f & 0x3fffff) | 1) >>> 0; // SNaN
    case 5: return (sign | 0x7f7fffff) >>> 0;
    case 6: return (sign | 0x00800000) >>> 0;
    case 7: return (sign | ((1 + (r() % 30)) << 23) | f) >>> 0; // tiny
    case 8: return (sign | ((254 - (r() % 30)) << 23) | f) >>> 0; // huge
    case 9: return (sign | ((127 - 12 + (r() % 24)) << 23) | (f & 0x7ff000)) >>> 0; // short significand
    case 10: return (sign | 0x4f000000 | (f & 0x7fffff)) >>> 0; // around 2^31
    case 11: return (sign | ((127 + (r() % 66)) << 23) | f) >>> 0; // integer conversion range
    default: return (sign | ((127 - 20 + (r() % 40)) << 23) | f) >>> 0;
  }
}

/** float64 as [lo, hi]. */
export function genF64(r: () => number): [number, number] {
  const sign = (r() & 1) << 31;
  const fh = r() & 0xfffff, fl = r();
  switch (r() % 16) {
    case 0: return [0, sign >>> 0];
    case 1: return [fl, (sign | fh) >>> 0];
    case 2: return [0, (sign | 0x7ff00000) >>> 0];
    case 3: return [fl, (sign | 0x7ff80000 | fh) >>> 0];
    case 4: return [fl | 1, (sign | 0x7ff00000 | (fh & 0x7ffff)) >>> 0];
    case 5: return [0xffffffff, (sign | 0x7fefffff) >>> 0];
    case 6: return [0, (sign | 0x00100000) >>> 0];
    case 7: return [fl, (sign | ((1 + (r() % 60)) << 20) | fh) >>> 0];
    case 8: return [fl, (sign | ((2046 - (r() % 60)) << 20) | fh) >>> 0];
    case 9: return [fl & 0xe0000000, (sign | ((1023 - 12 + (r() % 24)) << 20) | fh) >>> 0];
    case 10: return [fl, (sign | ((1023 + 20 + (r() % 50)) << 20) | fh) >>> 0];
    case 11: return [fl & 0xfffff000, (sign | ((1023 + (r() % 66)) << 20) | fh) >>> 0];
    case 12: return [0x10000000, (sign | ((1023 - 126 - 30 + (r() % 60)) << 20) | fh) >>> 0]; // single denormal range
    case 13: return [fl, (sign | ((1023 + 120 + (r() % 16)) << 20) | fh) >>> 0]; // single overflow range
    default: return [fl, (sign | ((1023 - 30 + (r() % 60)) << 20) | fh) >>> 0];
  }
}
