/**
 * Packed SSE/SSE2/SSE3/SSE4.1 float operations beyond the lane-wise ones of sse_float.ts:
 * packed conversions (CVTDQ2PS … CVTPD2PS), horizontal and alternating add/subtract
 * (HADDPS, HSUBPS, HADDPD, HSUBPD, ADDSUBPS, ADDSUBPD) and dot products (DPPS, DPPD).
 * Register numbers index one Int32Array XMM file (register n at [n*4, n*4+4)). Each operation
 * computes every lane first and writes the destination only if no unmasked exception was raised
 * (returns false then, SDM Vol.1 11.5.3); flags accumulate in the FpEnv loaded by setMxcsr().
 */
import { FpEnv, Packed } from "./softfloat.js";
import { SSE_ADD, SSE_MUL, SSE_SUB, f32Op, f32ToF64, f32ToInt, f64Op, f64ToF32, f64ToInt, intToF32, intToF64, sseFinish } from "./sse_float.js";

const tmp = new Int32Array(4);
const p = new Packed();

function commit(env: FpEnv, xmm: Int32Array, d: number, stageStart = 0): boolean {
  if (!sseFinish(env, stageStart)) return false;
  const o = d * 4;
  xmm[o] = tmp[0]!;
  xmm[o + 1] = tmp[1]!;
  xmm[o + 2] = tmp[2]!;
  xmm[o + 3] = tmp[3]!;
  return true;
}

/** CVTDQ2PS: four int32 to singles. */
export function cvtdq2ps(env: FpEnv, xmm: Int32Array, d: number, s: number): boolean {
  for (let i = 0; i < 4; i++) {
    const v = xmm[s * 4 + i]!;
    tmp[i] = intToF32(env, v, v >> 31);
  }
  return commit(env, xmm, d);
}

/** CVTPS2DQ (truncate=false, MXCSR rounding) / CVTTPS2DQ: four singles to int32 (indefinite 0x80000000). */
export function cvtps2dq(env: FpEnv, xmm: Int32Array, d: number, s: number, truncate: boolean): boolean {
  for (let i = 0; i < 4; i++) {
    f32ToInt(env, p, xmm[s * 4 + i]!, 32, truncate);
    tmp[i] = p.lo;
  }
  return commit(env, xmm, d);
}

/** CVTDQ2PD: the low two int32 to doubles (always exact). */
export function cvtdq2pd(env: FpEnv, xmm: Int32Array, d: number, s: number): boolean {
  const a = xmm[s * 4]!, b = xmm[s * 4 + 1]!;
  intToF64(env, p, a, a >> 31);
  tmp[0] = p.lo;
  tmp[1] = p.hi;
  intToF64(env, p, b, b >> 31);
  tmp[2] = p.lo;
  tmp[3] = p.hi;
  return commit(env, xmm, d);
}

/** CVTPD2DQ / CVTTPD2DQ: two doubles to the low two int32; the upper quadword is zeroed. */
export function cvtpd2dq(env: FpEnv, xmm: Int32Array, d: number, s: number, truncate: boolean): boolean {
  for (let i = 0; i < 2; i++) {
    f64ToInt(env, p, xmm[s * 4 + 2 * i]!, xmm[s * 4 + 2 * i + 1]!, 32, truncate);
    tmp[i] = p.lo;
  }
  tmp[2] = 0;
  tmp[3] = 0;
  return commit(env, xmm, d);
}

/** CVTPS2PD: the low two singles to doubles. */
export function cvtps2pd(env: FpEnv, xmm: Int32Array, d: number, s: number): boolean {
  const a = xmm[s * 4]!, b = xmm[s * 4 + 1]!;
  f32ToF64(env, p, a);
  tmp[0] = p.lo;
  tmp[1] = p.hi;
  f32ToF64(env, p, b);
  tmp[2] = p.lo;
  tmp[3] = p.hi;
  return commit(env, xmm, d);
}

/** CVTPD2PS: two doubles to the low two singles; the upper quadword is zeroed. */
export function cvtpd2ps(env: FpEnv, xmm: Int32Array, d: number, s: number): boolean {
  tmp[0] = f64ToF32(env, xmm[s * 4]!, xmm[s * 4 + 1]!);
  tmp[1] = f64ToF32(env, xmm[s * 4 + 2]!, xmm[s * 4 + 3]!);
  tmp[2] = 0;
  tmp[3] = 0;
  return commit(env, xmm, d);
}

/** HADDPS (sub=false) / HSUBPS: [d0 op d1, d2 op d3, s0 op s1, s2 op s3]. */
export function hopps(env: FpEnv, xmm: Int32Array, d: number, s: number, sub: boolean): boolean {
  const op = sub ? SSE_SUB : SSE_ADD;
  for (let i = 0; i < 4; i++) {
    const r = i < 2 ? d : s, k = (i & 1) * 2;
    tmp[i] = f32Op(env, op, xmm[r * 4 + k]!, xmm[r * 4 + k + 1]!);
  }
  return commit(env, xmm, d);
}

/** HADDPD / HSUBPD: [d0 op d1, s0 op s1]. */
export function hoppd(env: FpEnv, xmm: Int32Array, d: number, s: number, sub: boolean): boolean {
  const op = sub ? SSE_SUB : SSE_ADD;
  for (let i = 0; i < 2; i++) {
    const r = i === 0 ? d : s;
    f64Op(env, op, p, xmm[r * 4]!, xmm[r * 4 + 1]!, xmm[r * 4 + 2]!, xmm[r * 4 + 3]!);
    tmp[2 * i] = p.lo;
    tmp[2 * i + 1] = p.hi;
  }
  return commit(env, xmm, d);
}

/** ADDSUBPS: even lanes subtract, odd lanes add. */
export function addsubps(env: FpEnv, xmm: Int32Array, d: number, s: number): boolean {
  for (let i = 0; i < 4; i++) tmp[i] = f32Op(env, i & 1 ? SSE_ADD : SSE_SUB, xmm[d * 4 + i]!, xmm[s * 4 + i]!);
  return commit(env, xmm, d);
}

/** ADDSUBPD: low lane subtracts, high lane adds. */
export function addsubpd(env: FpEnv, xmm: Int32Array, d: number, s: number): boolean {
  for (let i = 0; i < 2; i++) {
    f64Op(env, i ? SSE_ADD : SSE_SUB, p, xmm[d * 4 + 2 * i]!, xmm[d * 4 + 2 * i + 1]!, xmm[s * 4 + 2 * i]!, xmm[s * 4 + 2 * i + 1]!);
    tmp[2 * i] = p.lo;
    tmp[2 * i + 1] = p.hi;
  }
  return commit(env, xmm, d);
}

const prod = new Int32Array(4);
const sum1 = new Int32Array(4);

/**
 * DPPS (SSE4.1): products of the lanes selected by imm[7:4] (others are +0.0 and raise
 * nothing), summed pairwise then across pairs with every step rounded, written to the lanes
 * selected by imm[3:0] (others +0.0). SDM Vol.2 DPPS operation.
 */
export function dpps(env: FpEnv, xmm: Int32Array, d: number, s: number, imm: number): boolean {
  for (let i = 0; i < 4; i++) prod[i] = (imm >>> (4 + i)) & 1 ? f32Op(env, SSE_MUL, xmm[d * 4 + i]!, xmm[s * 4 + i]!) : 0;
  // The multiplies and the additions are separate stages for exception reporting: an unmasked
  // exception in the multiply stage ends the instruction, and each stage settles its own flags.
  if (!sseFinish(env)) return false;
  const stage2 = env.flags;
  // Every destination lane sums in its own operand order, which shows only in which NaN
  // propagates. Measured on Intel hardware: s_i = p_(i^1) + p_i, then r_i = s_i + s_(i^2).
  for (let i = 0; i < 4; i++) sum1[i] = f32Op(env, SSE_ADD, prod[i ^ 1]!, prod[i]!);
  // The sums are formed (and raise their exceptions) whether or not a lane is written.
  for (let i = 0; i < 4; i++) {
    const v = f32Op(env, SSE_ADD, sum1[i]!, sum1[i ^ 2]!);
    tmp[i] = (imm >>> i) & 1 ? v : 0;
  }
  return commit(env, xmm, d, stage2);
}

/** DPPD (SSE4.1): imm[5:4] select the products, imm[1:0] the destination lanes. */
export function dppd(env: FpEnv, xmm: Int32Array, d: number, s: number, imm: number): boolean {
  for (let i = 0; i < 2; i++) {
    if ((imm >>> (4 + i)) & 1) {
      f64Op(env, SSE_MUL, p, xmm[d * 4 + 2 * i]!, xmm[d * 4 + 2 * i + 1]!, xmm[s * 4 + 2 * i]!, xmm[s * 4 + 2 * i + 1]!);
      prod[2 * i] = p.lo;
      prod[2 * i + 1] = p.hi;
    } else {
      prod[2 * i] = 0;
      prod[2 * i + 1] = 0;
    }
  }
  if (!sseFinish(env)) return false;
  const stage2 = env.flags;
  // Lane i receives p_i + p_(1-i): the operand order only shows in which NaN propagates.
  f64Op(env, SSE_ADD, p, prod[0]!, prod[1]!, prod[2]!, prod[3]!);
  const on0 = imm & 1, on1 = (imm >>> 1) & 1;
  tmp[0] = on0 ? p.lo : 0;
  tmp[1] = on0 ? p.hi : 0;
  f64Op(env, SSE_ADD, p, prod[2]!, prod[3]!, prod[0]!, prod[1]!);
  tmp[2] = on1 ? p.lo : 0;
  tmp[3] = on1 ? p.hi : 0;
  return commit(env, xmm, d, stage2);
}
