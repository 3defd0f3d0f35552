/**
 * TSC scaling (SDM Vol. 3C 26.3, 26.6.5): with the "use TSC scaling" secondary control, the
 * guest's TSC is (host TSC x TSC multiplier) >> 48, then plus the TSC offset. The multiplier is
 * an unsigned 64-bit fixed-point number with 48 fraction bits (1.0 = 2^48).
 *
 * The product is computed exactly without BigInt: both factors are split into 24-bit limbs so
 * every partial product and partial sum stays below 2^53.
 */

const L = 16777216; // 2^24

/** floor(tsc * (mulHi:mulLo) / 2^48) for 0 <= tsc < 2^53; exact while the result is below 2^53. */
export function tscScale(tsc: number, mulLo: number, mulHi: number): number {
  const t2 = Math.floor(tsc / 281474976710656); // bits 48..52
  const tr = tsc - t2 * 281474976710656;
  const t1 = Math.floor(tr / L);
  const t0 = tr - t1 * L;
  const lo = mulLo >>> 0;
  const hi = mulHi >>> 0;
  const m0 = lo & 0xffffff;
  const m1 = (lo >>> 24) | ((hi & 0xffff) << 8);
  const m2 = hi >>> 16;
  // Terms below 2^48 (weights 2^0 and 2^24) contribute their carry only.
  const low = t0 * m0;
  const mid = t0 * m1 + t1 * m0 + Math.floor(low / L);
  const carry = Math.floor(mid / L);
  return (t0 * m2 + t1 * m1 + t2 * m0) + (t1 * m2 + t2 * m1) * L + t2 * m2 * 281474976710656 + carry;
}

/** The multiplier for a frequency ratio guest/host (kvm's set_tsc_khz: ratio = guest << 48 / host), as [lo, hi]. */
export function tscMultiplierFor(guestKhz: number, hostKhz: number, out: Int32Array): void {
  // guestKhz * 2^48 can exceed 2^53; divide in two steps to stay exact: (guest * 2^24 / host) * 2^24 + ...
  const a = guestKhz * L;
  const q1 = Math.floor(a / hostKhz);
  const r1 = a - q1 * hostKhz;
  const q0 = Math.floor((r1 * L) / hostKhz);
  // q1 * 2^24 + q0, split into 32-bit halves.
  const hi = Math.floor(q1 / 256);
  const lo = (q1 - hi * 256) * L + q0;
  out[0] = lo | 0;
  out[1] = hi | 0;
}
