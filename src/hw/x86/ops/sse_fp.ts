/**
 * SSE/SSE2/SSE3/SSE4.1 floating-point instructions: arithmetic, compares (CMPxx, COMISx),
 * conversions, logic, shuffles/unpacks, horizontal forms, rounding, blends, INSERTPS/EXTRACTPS,
 * dot products, RCP/RSQRT (SDM Vol. 2 instruction pages; Vol. 1 ch. 10, 11). One handler per
 * opcode byte; the mandatory prefix (none PS, 66 PD, F3 SS, F2 SD) selects the form. The
 * arithmetic itself is fp/sse_float.ts and fp/sse_packed.ts.
 */
import type { X86Cpu } from "../cpu.js";
import type { Handler } from "../decode.js";
import * as _softfloat from "../fp/softfloat.js";
import * as _sse_float from "../fp/sse_float.js";
import * as _sse_packed from "../fp/sse_packed.js";
import * as _f80 from "../fp/f80.js";
import * as _simd_int from "../fp/simd_int.js";
import * as _sse_approx from "../fp/sse_approx.js";
import * as _flags from "../flags.js";
import * as _operand from "./operand.js";
import * as _sse from "./sse.js";
import * as _mmu from "../mmu.js";
// Module-local copies of the imported bindings: a loader that compiles imports to property
// reads (CommonJS interop) would otherwise pay a getter call per use on the hot paths.
const { Packed } = _softfloat;
const { SSE_ADD, SSE_SUB, SSE_MUL, SSE_DIV, SSE_SQRT, SSE_CMP, SSE_ROUND, f32Op, f64Op, packedF32Op, packedF64Op, sseFinish, f32Compare, f64Compare, f32ToF64, f64ToF32, intToF32, intToF64, f32ToInt, f64ToInt } = _sse_float;
const { cvtdq2ps, cvtps2dq, cvtdq2pd, cvtpd2dq, cvtps2pd, cvtpd2ps, hopps, hoppd, addsubps, addsubpd, dpps, dppd } = _sse_packed;
const { eflagsCompare } = _f80;
const { plogic, punpck, blendImm } = _simd_int;
const { rcpF32, rsqrtF32 } = _sse_approx;
const { setArith } = _flags;
const { rdE } = _operand;
const { XS, XS2, simd, sseCheck, mmxCheck, fpBegin, fpEnd, srcX, pfx, regX, invalid, loadMem, mmToSlot, mmWrite, mmxEnter, xmmF64, xmmF32, memLa } = _sse;
const { wr32 } = _mmu;

const res = new Packed();
const T = new Int32Array(4);

// ---- host-arithmetic fast path ----
// With round-to-nearest and PE already raised and masked (MXCSR & 0x7020 === 0x1020), an ADD,
// SUB, MUL, DIV or SQRT of normal operands whose result is a normal number above the smallest
// binade raises nothing new: no IE/DE/ZE (normal operands), no OE/UE (normal result, so tininess
// cannot depend on when it is detected), and PE is already set. The host's IEEE binary64
// arithmetic then gives the very bits softfloat would; for binary32, the double result rounded
// once more to single is correctly rounded for these five operations (Figueroa, "When is double
// rounding innocuous?", 1995). Anything else takes the exact path.
const FAST_MXCSR_MASK = 0x7020, FAST_MXCSR = 0x1020;
const R64 = new Float64Array(2);
const R64W = new Int32Array(R64.buffer);
const R32 = new Float32Array(4);
const R32W = new Int32Array(R32.buffer);

function isFastOp(op: number): boolean {
  // MIN/MAX (4, 5) keep the exact path: their operand-return rules are not IEEE's.
  return op <= SSE_DIV || op === SSE_SQRT;
}

function host(op: number, a: number, b: number): number {
  switch (op) {
    case SSE_ADD: return a + b;
    case SSE_SUB: return a - b;
    case SSE_MUL: return a * b;
    case SSE_DIV: return a / b;
    default: return Math.sqrt(b);
  }
}

/** Lane classes for the fast path: zero, normal, anything else (denormal, infinity, NaN). */
const ZERO = 0, NORMAL = 1, OTHER = 2;
function cls64(hi: number, lo: number): number {
  const e = (hi >>> 20) & 0x7ff;
  if (e === 0) return (hi & 0xfffff) === 0 && lo === 0 ? ZERO : OTHER;
  return e === 0x7ff ? OTHER : NORMAL;
}
function cls32(w: number): number {
  const e = (w >>> 23) & 0xff;
  if (e === 0) return (w & 0x7fffff) === 0 ? ZERO : OTHER;
  return e === 0xff ? OTHER : NORMAL;
}

/**
 * Whether operands of classes ca (first) and cb (second, sign sb) raise nothing for `op`, and a
 * result of class cr (exponent field er) is exact-path equivalent: a normal result must lie above
 * the smallest binade (so UE cannot depend on when tininess is detected); a zero result is only
 * taken where it is exact (cancellation, or a zero operand), never from underflow.
 */
function fastLane(op: number, ca: number, cb: number, sb: number, cr: number, er: number, emax: number): boolean {
  if (cb === OTHER) return false;
  if (op === SSE_SQRT) {
    if (cb === NORMAL && sb) return false;
  } else {
    if (ca === OTHER) return false;
    if (op === SSE_DIV && cb === ZERO) return false;
  }
  if (cr === NORMAL) return er >= 2 && er < emax;
  if (cr !== ZERO) return false;
  if (op === SSE_ADD || op === SSE_SUB) return true;
  if (op === SSE_SQRT) return cb === ZERO;
  return ca === ZERO || (op === SSE_MUL && cb === ZERO);
}

/** Fast path of fpArith; true when it delivered the result. */
function fastArith(c: X86Cpu, op: number, p: number, d: number, s: number): boolean {
  const x = c.state.xmm;
  if (p === 3 || p === 1) {
    const n = p === 3 ? 1 : 2, f = xmmF64(c);
    for (let i = 0; i < n; i++) {
      const ao = d * 4 + 2 * i, bo = s * 4 + 2 * i;
      R64[i] = host(op, f[d * 2 + i]!, f[s * 2 + i]!);
      const rh = R64W[2 * i + 1]!, bh = x[bo + 1]!;
      if (!fastLane(op, cls64(x[ao + 1]!, x[ao]!), cls64(bh, x[bo]!), bh >>> 31, cls64(rh, R64W[2 * i]!), (rh >>> 20) & 0x7ff, 0x7ff)) return false;
    }
    for (let i = 0; i < n; i++) f[d * 2 + i] = R64[i]!;
    return true;
  }
  const n = p === 2 ? 1 : 4, f = xmmF32(c);
  for (let i = 0; i < n; i++) {
    R32[i] = host(op, f[d * 4 + i]!, f[s * 4 + i]!);
    const r = R32W[i]!, b = x[s * 4 + i]!;
    if (!fastLane(op, cls32(x[d * 4 + i]!), cls32(b), b >>> 31, cls32(r), (r >>> 23) & 0xff, 0xff)) return false;
  }
  for (let i = 0; i < n; i++) f[d * 4 + i] = R32[i]!;
  return true;
}

/**
 * 0F 51, 58, 59, 5C-5F, C2 and 66 0F 3A 08-0B: `op` (SSE_*) as PS (no prefix), PD (66),
 * SS (F3) or SD (F2). For the ROUND opcodes `round` gives the form (0 PS, 1 PD, 2 SS, 3 SD)
 * instead of the prefix, which is 66 for all of them.
 */
export function fpArith(op: number, round = -1): Handler {
  const fast = round < 0 && isFastOp(op);
  return (c: X86Cpu): void => {
    let p = pfx(c);
    if (round >= 0) { if (p !== 1) invalid(c); p = round; }
    sseCheck(c);
    const d = regX(c), x = c.state.xmm, imm = c.w3 & 0xff;
    const s = srcX(c, p === 2 ? 4 : p === 3 ? 8 : 16);
    if (fast && (c.state.mxcsr & FAST_MXCSR_MASK) === FAST_MXCSR && fastArith(c, op, p, d, s)) return;
    switch (p) {
      case 0: packedF32Op(fpBegin(c), op, x, d, s, imm); break;
      case 1: packedF64Op(fpBegin(c), op, x, d, s, imm); break;
      case 2: {
        const e = fpBegin(c);
        const v = f32Op(e, op, x[d * 4]!, x[s * 4]!, imm);
        if (sseFinish(e)) x[d * 4] = v;
        break;
      }
      default: {
        const e = fpBegin(c);
        f64Op(e, op, res, x[d * 4]!, x[d * 4 + 1]!, x[s * 4]!, x[s * 4 + 1]!, imm);
        if (sseFinish(e)) { x[d * 4] = res.lo; x[d * 4 + 1] = res.hi; }
      }
    }
    fpEnd(c);
  };
}

/** The compare predicates CMPPS … take imm8[2:0] in the legacy encoding. */
export const cmpInsn = fpArith(SSE_CMP);

/** 66 0F 3A 08-0B ROUNDPS/PD/SS/SD. */
export function roundInsn(form: number): Handler {
  return fpArith(SSE_ROUND, form);
}

/** 0F 54-57: ANDPS/ANDNPS/ORPS/XORPS (no prefix) and the PD forms (66): bitwise, no FP exceptions. */
export function fpLogic(logicOp: number): Handler {
  return (c: X86Cpu): void => {
    if (pfx(c) > 1) invalid(c);
    sseCheck(c);
    const s = srcX(c, 16);
    plogic(simd(c), regX(c), s, logicOp);
  };
}

/** 0F 14/15: UNPCKLPS/UNPCKHPS (dwords) and UNPCKLPD/UNPCKHPD (66, qwords). */
export function unpckInsn(high: boolean): Handler {
  return (c: X86Cpu): void => {
    const p = pfx(c);
    if (p > 1) invalid(c);
    sseCheck(c);
    const s = srcX(c, 16);
    punpck(simd(c), regX(c), s, p === 1 ? 8 : 4, high);
  };
}

/** 0F C6: SHUFPS (low two lanes from dst, high two from src by imm pairs) / SHUFPD (66). */
export function shufInsn(c: X86Cpu): void {
  const p = pfx(c), imm = c.w3 & 0xff;
  if (p > 1) invalid(c);
  sseCheck(c);
  const s = srcX(c, 16), d = regX(c), x = c.state.xmm;
  if (p === 0) {
    T[0] = x[d * 4 + (imm & 3)]!; T[1] = x[d * 4 + ((imm >>> 2) & 3)]!;
    T[2] = x[s * 4 + ((imm >>> 4) & 3)]!; T[3] = x[s * 4 + ((imm >>> 6) & 3)]!;
  } else {
    const a = d * 4 + (imm & 1) * 2, b = s * 4 + ((imm >>> 1) & 1) * 2;
    T[0] = x[a]!; T[1] = x[a + 1]!; T[2] = x[b]!; T[3] = x[b + 1]!;
  }
  x[d * 4] = T[0]!; x[d * 4 + 1] = T[1]!; x[d * 4 + 2] = T[2]!; x[d * 4 + 3] = T[3]!;
}

/** 0F 2E/2F: UCOMISS/COMISS (no prefix, m32) and UCOMISD/COMISD (66, m64): ZF PF CF, OF SF AF cleared. */
export function comisInsn(quiet: boolean): Handler {
  return (c: X86Cpu): void => {
    const p = pfx(c);
    if (p > 1) invalid(c);
    sseCheck(c);
    const d = regX(c), x = c.state.xmm;
    let r: number;
    if (p === 0) {
      const s = srcX(c, 4);
      r = f32Compare(fpBegin(c), x[d * 4]!, x[s * 4]!, quiet);
    } else {
      const s = srcX(c, 8);
      r = f64Compare(fpBegin(c), x[d * 4]!, x[d * 4 + 1]!, x[s * 4]!, x[s * 4 + 1]!, quiet);
    }
    fpEnd(c);
    setArith(c, eflagsCompare(r));
  };
}

/** 0F 5A: CVTPS2PD (m64), CVTPD2PS (66), CVTSS2SD (F3, m32), CVTSD2SS (F2, m64). */
export function cvt5a(c: X86Cpu): void {
  const p = pfx(c);
  sseCheck(c);
  const d = regX(c), x = c.state.xmm;
  switch (p) {
    case 0: { const s = srcX(c, 8); cvtps2pd(fpBegin(c), x, d, s); break; }
    case 1: { const s = srcX(c, 16); cvtpd2ps(fpBegin(c), x, d, s); break; }
    case 2: {
      const s = srcX(c, 4), e = fpBegin(c);
      f32ToF64(e, res, x[s * 4]!);
      if (sseFinish(e)) { x[d * 4] = res.lo; x[d * 4 + 1] = res.hi; }
      break;
    }
    default: {
      const s = srcX(c, 8), e = fpBegin(c);
      const v = f64ToF32(e, x[s * 4]!, x[s * 4 + 1]!);
      if (sseFinish(e)) x[d * 4] = v;
    }
  }
  fpEnd(c);
}

/** 0F 5B: CVTDQ2PS (none), CVTPS2DQ (66), CVTTPS2DQ (F3). */
export function cvt5b(c: X86Cpu): void {
  const p = pfx(c);
  if (p === 3) invalid(c);
  sseCheck(c);
  const s = srcX(c, 16), d = regX(c), x = c.state.xmm, e = fpBegin(c);
  if (p === 0) cvtdq2ps(e, x, d, s);
  else cvtps2dq(e, x, d, s, p === 2);
  fpEnd(c);
}

/** 0F E6: CVTTPD2DQ (66), CVTDQ2PD (F3, m64), CVTPD2DQ (F2). */
export function cvtE6(c: X86Cpu): void {
  const p = pfx(c);
  if (p === 0) invalid(c);
  sseCheck(c);
  const d = regX(c), x = c.state.xmm;
  if (p === 2) { const s = srcX(c, 8); cvtdq2pd(fpBegin(c), x, d, s); }
  else { const s = srcX(c, 16); cvtpd2dq(fpBegin(c), x, d, s, p === 1); }
  fpEnd(c);
}

/** An MMX register operand of a conversion makes the x87 -> MMX transition (SDM Vol. 1 11.6.9). */
function mmOperand(c: X86Cpu, mm: number, slot: number): void {
  mmxCheck(c);
  mmToSlot(c, mm, slot);
  mmxEnter(c);
}

/** 0F 2A: CVTPI2PS (mm/m64), CVTPI2PD (66, mm/m64), CVTSI2SS (F3, r/m32/64), CVTSI2SD (F2). */
export function cvt2a(c: X86Cpu): void {
  const p = pfx(c);
  sseCheck(c);
  const d = regX(c), x = c.state.xmm;
  if (p <= 1) {
    if ((c.w1 & 3) === 3) mmOperand(c, (c.w1 >>> 6) & 7, XS2);
    else loadMem(c, XS2, 8, false);
    const e = fpBegin(c);
    if (p === 1) { cvtdq2pd(e, x, d, XS2); fpEnd(c); return; }
    const a = x[XS2 * 4]!, b = x[XS2 * 4 + 1]!;
    const ra = intToF32(e, a, a >> 31), rb = intToF32(e, b, b >> 31);
    if (sseFinish(e)) { x[d * 4] = ra; x[d * 4 + 1] = rb; }
    fpEnd(c);
    return;
  }
  const w = c.osz === 3;
  const lo = rdE(c, w ? 3 : 2), hi = w ? c.rhi : lo >> 31;
  const e = fpBegin(c);
  if (p === 2) {
    const v = intToF32(e, lo, hi);
    if (sseFinish(e)) x[d * 4] = v;
  } else {
    intToF64(e, res, lo, hi);
    if (sseFinish(e)) { x[d * 4] = res.lo; x[d * 4 + 1] = res.hi; }
  }
  fpEnd(c);
}

/** 0F 2C/2D: CVT(T)PS2PI (xmm/m64 -> mm), CVT(T)PD2PI (66, xmm/m128 -> mm), CVT(T)SS2SI (F3), CVT(T)SD2SI (F2). */
export function cvtToInt(truncate: boolean): Handler {
  return (c: X86Cpu): void => {
    const p = pfx(c);
    sseCheck(c);
    const x = c.state.xmm;
    if (p <= 1) {
      mmxCheck(c);
      const s = srcX(c, p === 1 ? 16 : 8), e = fpBegin(c);
      let a: number, b: number;
      if (p === 0) {
        f32ToInt(e, res, x[s * 4]!, 32, truncate); a = res.lo;
        f32ToInt(e, res, x[s * 4 + 1]!, 32, truncate); b = res.lo;
      } else {
        f64ToInt(e, res, x[s * 4]!, x[s * 4 + 1]!, 32, truncate); a = res.lo;
        f64ToInt(e, res, x[s * 4 + 2]!, x[s * 4 + 3]!, 32, truncate); b = res.lo;
      }
      sseFinish(e);
      fpEnd(c);
      mmWrite(c, (c.w1 >>> 2) & 7, a, b);
      return;
    }
    const bits = c.osz === 3 ? 64 : 32;
    const e = fpBegin(c);
    if (p === 2) {
      const s = srcX(c, 4);
      f32ToInt(e, res, x[s * 4]!, bits, truncate);
    } else {
      const s = srcX(c, 8);
      f64ToInt(e, res, x[s * 4]!, x[s * 4 + 1]!, bits, truncate);
    }
    sseFinish(e);
    fpEnd(c);
    c.setReg(bits === 64 ? 3 : 2, (c.w1 >>> 2) & 15, res.lo, res.hi);
  };
}

/** 0F 50: MOVMSKPS / MOVMSKPD (66) r32, xmm: the lane sign bits. */
export function movmsk(c: X86Cpu): void {
  const p = pfx(c);
  if (p > 1 || (c.w1 & 3) !== 3) invalid(c);
  sseCheck(c);
  const s = ((c.w1 >>> 6) & 15) * 4, x = c.state.xmm;
  const m = p === 0
    ? (x[s]! >>> 31) | ((x[s + 1]! >>> 31) << 1) | ((x[s + 2]! >>> 31) << 2) | ((x[s + 3]! >>> 31) << 3)
    : (x[s + 1]! >>> 31) | ((x[s + 3]! >>> 31) << 1);
  c.setReg(c.osz === 3 ? 3 : 2, (c.w1 >>> 2) & 15, m, 0);
}

/** 0F 52 RSQRTPS/RSQRTSS (F3), 0F 53 RCPPS/RCPSS (F3): see fp/sse_approx.ts for the table. */
export function approxInsn(rsqrt: boolean): Handler {
  return (c: X86Cpu): void => {
    const p = pfx(c);
    if (p !== 0 && p !== 2) invalid(c);
    sseCheck(c);
    const d = regX(c), x = c.state.xmm;
    if (p === 2) {
      const s = srcX(c, 4);
      x[d * 4] = rsqrt ? rsqrtF32(x[s * 4]!) : rcpF32(x[s * 4]!);
      return;
    }
    const s = srcX(c, 16);
    for (let i = 0; i < 4; i++) T[i] = rsqrt ? rsqrtF32(x[s * 4 + i]!) : rcpF32(x[s * 4 + i]!);
    for (let i = 0; i < 4; i++) x[d * 4 + i] = T[i]!;
  };
}

/** 0F 7C/7D: HADDPD/HSUBPD (66), HADDPS/HSUBPS (F2). */
export function haddInsn(sub: boolean): Handler {
  return (c: X86Cpu): void => {
    const p = pfx(c);
    if (p !== 1 && p !== 3) invalid(c);
    sseCheck(c);
    const s = srcX(c, 16), d = regX(c), e = fpBegin(c), x = c.state.xmm;
    if (p === 1) hoppd(e, x, d, s, sub); else hopps(e, x, d, s, sub);
    fpEnd(c);
  };
}

/** 0F D0: ADDSUBPD (66), ADDSUBPS (F2). */
export function addsubInsn(c: X86Cpu): void {
  const p = pfx(c);
  if (p !== 1 && p !== 3) invalid(c);
  sseCheck(c);
  const s = srcX(c, 16), d = regX(c), e = fpBegin(c), x = c.state.xmm;
  if (p === 1) addsubpd(e, x, d, s); else addsubps(e, x, d, s);
  fpEnd(c);
}

/** 66 0F 3A 40 DPPS / 41 DPPD. */
export function dpInsn(pd: boolean): Handler {
  return (c: X86Cpu): void => {
    if (pfx(c) !== 1) invalid(c);
    sseCheck(c);
    const s = srcX(c, 16), d = regX(c), e = fpBegin(c), x = c.state.xmm, imm = c.w3 & 0xff;
    if (pd) dppd(e, x, d, s, imm); else dpps(e, x, d, s, imm);
    fpEnd(c);
  };
}

/** 66 0F 3A 0C BLENDPS / 0D BLENDPD. */
export function blendInsn(pd: boolean): Handler {
  return (c: X86Cpu): void => {
    if (pfx(c) !== 1) invalid(c);
    sseCheck(c);
    const s = srcX(c, 16);
    blendImm(simd(c), regX(c), s, c.w3 & 0xff, pd ? 8 : 4);
  };
}

/** 66 0F 3A 21: INSERTPS xmm, xmm/m32, imm8 (count_s, count_d, zero mask). */
export function insertps(c: X86Cpu): void {
  if (pfx(c) !== 1) invalid(c);
  sseCheck(c);
  const imm = c.w3 & 0xff, d = regX(c), x = c.state.xmm;
  let v: number;
  if ((c.w1 & 3) === 3) v = x[((c.w1 >>> 6) & 15) * 4 + (imm >>> 6)]!;
  else { loadMem(c, XS, 4, false); v = x[XS * 4]!; }
  x[d * 4 + ((imm >>> 4) & 3)] = v;
  for (let i = 0; i < 4; i++) if ((imm >>> i) & 1) x[d * 4 + i] = 0;
}

/** 66 0F 3A 17: EXTRACTPS r/m32, xmm, imm8 (a register destination is zero-extended). */
export function extractps(c: X86Cpu): void {
  if (pfx(c) !== 1) invalid(c);
  sseCheck(c);
  const v = c.state.xmm[regX(c) * 4 + (c.w3 & 3)]!;
  if ((c.w1 & 3) === 3) { c.setReg(c.osz === 3 ? 3 : 2, (c.w1 >>> 6) & 15, v, 0); return; }
  wr32(c, memLa(c, 4, 2, false), v);
}

