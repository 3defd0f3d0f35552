/**
 * Shared machinery of the MMX/SSE handlers (sse_*.ts, mmx.ts): the availability checks every
 * SIMD instruction makes first (SDM Vol. 3A 2.5 CR0.EM/TS, CR4.OSFXSR; Vol. 2 ch. 2.5 exception
 * classes), the MXCSR environment and SIMD floating-point exception delivery (Vol. 1 11.5.3:
 * #XM if CR4.OSXMMEXCPT, else #UD), memory operands staged into the scratch XMM slots of
 * X86State.xmm so every operation is register-register, and the MMX register file that aliases
 * the x87 register mantissas (Vol. 1 9.5, 9.6).
 *
 * Slot XS (16) holds a memory source operand for XMM forms; MMX forms stage their destination in
 * XS and their source in XS2 (17), operate there and write back the low quadword.
 */
import type { X86Cpu } from "../cpu.js";
import * as _fault from "../fault.js";
import * as _mmu from "../mmu.js";
import * as _paging from "../paging.js";
import * as _operand from "./operand.js";
import * as _softfloat from "../fp/softfloat.js";
import * as _sse_float from "../fp/sse_float.js";
import * as _simd_int from "../fp/simd_int.js";
import * as _x87_state from "../fp/x87_state.js";
import * as _x87 from "./x87.js";
// Module-local copies of the imported bindings: a loader that compiles imports to property
// reads (CommonJS interop) would otherwise pay a getter call per use on the hot paths.
const { GP_VECTOR, NM_VECTOR, UD_VECTOR, XM_VECTOR } = _fault;
const { rd16, rd32, rd64, wr32, wr64, xlateFill, TLB_MASK } = _mmu;
const { WALK_W } = _paging;
const { eaLin } = _operand;
const { FpEnv } = _softfloat;
const { setMxcsr, sseResultDelivered } = _sse_float;
const { SimdRegs } = _simd_int;
const { SW_ES } = _x87_state;
const { x87Pending } = _x87;

/** Scratch XMM slots (X86State.xmm after XMM15). */
export const XS = 16;
export const XS2 = 17;

const CR0_EM = 1 << 2, CR0_TS = 1 << 3;
const CR4_OSFXSR = 1 << 9, CR4_OSXMMEXCPT = 1 << 10;

/** The one floating-point environment of the SSE handlers (loaded from MXCSR per instruction). */
export const env = new FpEnv();

let viewOf: Int32Array | null = null;
let views: _simd_int.SimdRegs | null = null;
let viewF64: Float64Array | null = null;
let viewF32: Float32Array | null = null;

function rebuildViews(x: Int32Array): void {
  viewOf = x;
  views = new SimdRegs(x);
  viewF64 = new Float64Array(x.buffer, x.byteOffset, x.length >> 1);
  viewF32 = new Float32Array(x.buffer, x.byteOffset, x.length);
}

/** Typed lane views over the CPU's XMM file (rebuilt only when another CPU's file is used). */
export function simd(c: X86Cpu): _simd_int.SimdRegs {
  const x = c.state.xmm;
  if (x !== viewOf) rebuildViews(x);
  return views!;
}

/** The XMM file as float64 lanes (register n at [2n, 2n+2)). */
export function xmmF64(c: X86Cpu): Float64Array {
  const x = c.state.xmm;
  if (x !== viewOf) rebuildViews(x);
  return viewF64!;
}

/** The XMM file as float32 lanes (register n at [4n, 4n+4)). */
export function xmmF32(c: X86Cpu): Float32Array {
  const x = c.state.xmm;
  if (x !== viewOf) rebuildViews(x);
  return viewF32!;
}

/**
 * Availability of an SSE..SSE4.2 instruction (SDM Vol. 2 Table 2-18 class 1-5 "#UD if CR0.EM=1 or
 * CR4.OSFXSR=0, #NM if CR0.TS=1"), #UD taking precedence.
 */
export function sseCheck(c: X86Cpu): void {
  const st = c.state;
  if ((st.cr0 & CR0_EM) || !(st.cr4 & CR4_OSFXSR)) c.raise(UD_VECTOR, -1);
  if (st.cr0 & CR0_TS) c.raise(NM_VECTOR, -1);
}

/**
 * Availability of an MMX instruction (SDM Vol. 3A 2.5 Table 2-2, Vol. 1 9.5.x): #UD on CR0.EM,
 * #NM on CR0.TS, then a pending unmasked x87 exception is taken as by any waiting x87
 * instruction (#MF with CR0.NE, else the FERR# path: ops/x87.ts x87Pending).
 */
export function mmxCheck(c: X86Cpu): void {
  const st = c.state;
  if (st.cr0 & CR0_EM) c.raise(UD_VECTOR, -1);
  if (st.cr0 & CR0_TS) c.raise(NM_VECTOR, -1);
  if (st.fpu.sw & SW_ES) x87Pending(c);
}

/** Start of an SSE floating-point operation: environment from MXCSR. */
export function fpBegin(c: X86Cpu): _softfloat.FpEnv {
  setMxcsr(env, c.state.mxcsr);
  return env;
}

/**
 * End of an SSE floating-point operation: the raised flags stick in MXCSR; an unmasked one is
 * #XM (CR4.OSXMMEXCPT=1) or #UD (SDM Vol. 1 11.5.3) with the destination left unwritten.
 */
export function fpEnd(c: X86Cpu): void {
  const st = c.state;
  st.mxcsr |= env.flags & 0x3f;
  if (!sseResultDelivered(env)) c.raise(st.cr4 & CR4_OSXMMEXCPT ? XM_VECTOR : UD_VECTOR, -1);
}

/** Linear address of the memory operand; #GP(0) when `align` and it is not 16-byte aligned (SDM Vol. 1 11.4.1). */
export function memLa(c: X86Cpu, bytes: number, acc: number, align: boolean): number {
  const la = eaLin(c, bytes, acc);
  if (align && (la & 15) !== 0) c.raise(GP_VECTOR, 0);
  return la;
}

/** Read `bytes` (2, 4, 8 or 16) of the memory operand into the low lanes of slot `slot`. */
export function loadMem(c: X86Cpu, slot: number, bytes: number, align: boolean): void {
  const x = c.state.xmm, o = slot * 4;
  const la = memLa(c, bytes, 1, align && bytes === 16);
  if (bytes === 16) {
    // Within one page that the TLB maps for reading: straight from the frame (a TLB entry is
    // only installed for accesses that need no further checks, mmu.ts).
    const vpn = Math.floor(la / 4096), i = vpn & TLB_MASK, po = la & 4095;
    if (c.tR[i] === vpn && po <= 4080) {
      if ((po & 3) === 0) {
        const m = c.tM32[i]!, q = (c.tOff[i]! + po) >> 2;
        x[o] = m[q]!; x[o + 1] = m[q + 1]!; x[o + 2] = m[q + 2]!; x[o + 3] = m[q + 3]!;
      } else {
        const m = c.tM8[i]!, q = c.tOff[i]! + po, u8 = simd(c).u8, d = slot * 16;
        for (let k = 0; k < 16; k++) u8[d + k] = m[q + k]!;
      }
      return;
    }
    const lo0 = rd64(c, la), hi0 = c.rhi;
    const lo1 = rd64(c, c.m64 ? la + 8 : (la + 8) >>> 0);
    x[o] = lo0; x[o + 1] = hi0; x[o + 2] = lo1; x[o + 3] = c.rhi;
  } else if (bytes === 8) {
    x[o] = rd64(c, la); x[o + 1] = c.rhi;
  } else if (bytes === 4) {
    x[o] = rd32(c, la);
  } else {
    x[o] = rd16(c, la);
  }
}

/**
 * The XMM source operand (ModRM r/m) as a register number: the register itself, or slot XS
 * holding `bytes` of memory (16-byte forms aligned unless `unaligned`).
 */
export function srcX(c: X86Cpu, bytes: number, unaligned = false): number {
  if ((c.w1 & 3) === 3) return (c.w1 >>> 6) & 15;
  loadMem(c, XS, bytes, !unaligned);
  return XS;
}

/** Store `bytes` (4, 8, 16) of XMM register `r` (low lanes) to the memory operand. A 16-byte store checks both pages before writing. */
export function storeMem(c: X86Cpu, r: number, bytes: number, align: boolean): void {
  const x = c.state.xmm, o = r * 4;
  const la = memLa(c, bytes, 2, align && bytes === 16);
  if (bytes === 16) {
    const vpn = Math.floor(la / 4096), i = vpn & TLB_MASK, po = la & 4095;
    if (c.tW[i] === vpn && po <= 4080) {
      if ((po & 3) === 0) {
        const m = c.tM32[i]!, q = (c.tOff[i]! + po) >> 2;
        m[q] = x[o]!; m[q + 1] = x[o + 1]!; m[q + 2] = x[o + 2]!; m[q + 3] = x[o + 3]!;
      } else {
        const m = c.tM8[i]!, q = c.tOff[i]! + po, u8 = simd(c).u8, d = r * 16;
        for (let k = 0; k < 16; k++) m[q + k] = u8[d + k]!;
      }
      return;
    }
    const la2 = c.m64 ? la + 8 : (la + 8) >>> 0;
    if ((la & 4095) > 4080) {
      xlateFill(c, la, WALK_W);
      xlateFill(c, c.m64 ? la + 15 : (la + 15) >>> 0, WALK_W);
    }
    wr64(c, la, x[o]!, x[o + 1]!);
    wr64(c, la2, x[o + 2]!, x[o + 3]!);
  } else if (bytes === 8) {
    wr64(c, la, x[o]!, x[o + 1]!);
  } else {
    wr32(c, la, x[o]!);
  }
}

/** Mandatory-prefix index: 0 none, 1 66, 2 F3, 3 F2 (F2/F3 take precedence over 66). */
export function pfx(c: X86Cpu): number {
  const rep = (c.w0 >>> 19) & 3;
  return rep ? rep + 1 : (c.w0 >>> 23) & 1;
}

/** XMM register of the ModRM reg field. */
export function regX(c: X86Cpu): number {
  return (c.w1 >>> 2) & 15;
}

/** #UD for an opcode/prefix combination the architecture leaves undefined. */
export function invalid(c: X86Cpu): never {
  return c.raise(UD_VECTOR, -1);
}

// ---------------------------------------------------------------------------------------------
// MMX registers: MMi is the 64-bit mantissa of physical x87 register Ri.

/** Copy MMi into the low quadword of XMM slot `slot` (upper quadword cleared). */
export function mmToSlot(c: X86Cpu, mm: number, slot: number): void {
  const r = c.state.fpu.regs, x = c.state.xmm, o = slot * 4;
  x[o] = r[mm * 3]!; x[o + 1] = r[mm * 3 + 1]!; x[o + 2] = 0; x[o + 3] = 0;
}

/** Write MMi: mantissa = lo/hi, sign+exponent all ones (SDM Vol. 1 9.6.1); the x87 state becomes the MMX state. */
export function mmWrite(c: X86Cpu, mm: number, lo: number, hi: number): void {
  const r = c.state.fpu.regs;
  r[mm * 3] = lo; r[mm * 3 + 1] = hi; r[mm * 3 + 2] = 0xffff;
  mmxEnter(c);
}

/** Every MMX instruction but EMMS sets TOP = 0 and tags all registers valid (SDM Vol. 1 9.5.1). */
export function mmxEnter(c: X86Cpu): void {
  const f = c.state.fpu;
  f.top = 0;
  f.tag = 0;
}

/** MMX source operand (ModRM r/m: MM register or m64) into slot XS2. */
/** Both operands of an MMX instruction: the source into XS2, the destination MMn into XS; returns n. */
export function mmOperands(c: X86Cpu): number {
  mmSrc(c);
  const d = (c.w1 >>> 2) & 7;
  mmToSlot(c, d, XS);
  return d;
}

export function mmSrc(c: X86Cpu): void {
  if ((c.w1 & 3) === 3) mmToSlot(c, (c.w1 >>> 6) & 7, XS2);
  else { loadMem(c, XS2, 8, false); const x = c.state.xmm; x[XS2 * 4 + 2] = 0; x[XS2 * 4 + 3] = 0; }
}
