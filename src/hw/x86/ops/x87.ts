/**
 * The x87 FPU instructions, escape opcodes D8-DF and FWAIT (SDM Vol. 1 ch. 8; Vol. 2 instruction
 * pages; opcode maps Vol. 2 A.4 Tables A-7..A-22), on the register file and arithmetic of fp/.
 *
 * Dispatch: the register forms are a 512-entry table indexed by (escape << 6) | ModRM[5:0], the
 * memory forms a 64-entry table indexed by (escape << 3) | ModRM.reg, each with a kind that
 * decides the common prologue:
 *   - #NM when CR0.EM or CR0.TS (SDM Vol. 3A 2.5, Table 2-2);
 *   - waiting instructions (all but FNINIT/FNCLEX/FNSTCW/FNSTSW/FNSTENV/FNSAVE and the 8087/287
 *     no-ops) first take a pending unmasked exception (FSW.ES): #MF when CR0.NE, otherwise the
 *     FERR# path of SDM Vol. 1 8.7 / Vol. 3A D.2 ("MS-DOS compatibility"), which signals IRQ 13
 *     through external logic. That external path is not implemented: the CPU records it in
 *     X86State.fpuFerr and goes on as if IGNNE# were asserted. KVM guests always run with NE=1.
 *   - non-control instructions record FIP; FOP, and FDP for a memory operand, only when the
 *     instruction leaves an unmasked exception pending, as current Intel processors do (SDM
 *     Vol. 1 8.1.9.1 with the fopcode compatibility mode off, CPUID.(EAX=07H,ECX=0):EBX[6]
 *     FDP_EXCPTN_ONLY); FCS and FDS are deprecated and read as 0 (EBX[13]). Control instructions
 *     leave all of them alone. (Checked on an Intel Xeon under KVM: guests/fp/x87.c, test/diff/x87.)
 * Unmasked invalid, denormal and zero-divide exceptions leave the destination and the stack
 * unchanged; unmasked overflow/underflow deliver the bias-adjusted result to a register and
 * nothing to memory (SDM Vol. 1 8.5). Compares write their condition codes / EFLAGS even then.
 * Undefined encodings raise #UD.
 *
 * Handlers are allocation-free: operands travel through module-level scratch records.
 */
import type { X86Cpu } from "../cpu.js";
import { NM_VECTOR, MF_VECTOR, UD_VECTOR } from "../fault.js";
import { ea } from "./operand.js";
import { linAddr, rd16, rd32, rd64, rdLW, wr16, wr32, wr64 } from "../mmu.js";
import { flagsSync, cond, ARITH } from "../flags.js";
import { FpEnv, Packed, FP_IE, FP_DE, FP_ZE, FP_OE, FP_UE, FP_PE } from "../fp/softfloat.js";
import {
  setX87Control, x87ResultDelivered, f80Add, f80Sub, f80Mul, f80Div, f80Sqrt, f80RoundInt, f80Scale, f80Xtract,
  f80Prem, premStatus, f80Compare, x87CompareCodes, eflagsCompare, f80ToInt, intToF80, f32ToF80, f64ToF80,
  f80ToF32, f80ToF64, bcdToF80, f80ToBcd, f80Examine, f80Test, CMP_UNORDERED,
} from "../fp/f80.js";
import { f80Sin, f80Cos, f80SinCos, f80Tan, f80Atan, f80F2xm1, f80Yl2x, f80Yl2xp1, f80LoadConst, transStatus } from "../fp/f80_trans.js";
import {
  X87State, SW_C0, SW_C1, SW_C2, SW_C3, SW_ES, SW_B, SW_SF, TAG_EMPTY, ENV_PM32, ENV_RM32, ENV_PM16, ENV_RM16,
  envSize, encodeEnv, decodeEnv, encodeFsave, decodeFsave,
} from "../fp/x87_state.js";
import { IMG, readImage, writeImage } from "./x87_mem.js";

const CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_NE = 0x20;
const SW_CC = SW_C0 | SW_C1 | SW_C2 | SW_C3;
const TWO32 = 4294967296;

const env = new FpEnv();
/** Conversions whose flags are not reported (memory operands widened exactly). */
const quietEnv = new FpEnv();
const R1 = new Packed();
const R2 = new Packed();
const R3 = new Packed();

// The memory operand, widened to 80 bits: a NaN keeps its signalling bit so the arithmetic sees
// an SNaN and applies the NaN rules itself; a denormal single/double is normalized and mDen set.
let mSe = 0, mHi = 0, mLo = 0, mDen = false;
/** Effective address (offset) of the current instruction's memory operand. */
let mOff = 0;

// ---------------------------------------------------------------------------------------------
// Status-word helpers

function setC1(f: X87State, v: boolean): void {
  f.sw = v ? f.sw | SW_C1 : f.sw & ~SW_C1;
}

function setCc(f: X87State, codes: number): void {
  f.sw = (f.sw & ~SW_CC) | codes;
}

/**
 * Recompute ES and B from the exception flags and masks (after FLDCW, FLDENV, FRSTOR, FXRSTOR,
 * XRSTOR load a new control or status word: an unmasked flag is then pending, SDM Vol. 1 8.1.5).
 */
export function x87UpdateSummary(f: X87State): void {
  if ((f.sw & ~f.cw & 0x3f) !== 0) f.sw |= SW_ES | SW_B;
  else f.sw &= ~(SW_ES | SW_B);
}

/** A control word as the FPU holds it: bit 6 reads as 1, bits 7 and 13-15 as 0 (SDM Vol. 1 Figure 8-6). */
export function x87ControlWord(v: number): number {
  return (v & 0x1f3f) | 0x40;
}

/** The operand of FCOM etc. is a NaN or an unsupported encoding (no denormal check then). */
function nanLike(se: number, hi: number, lo: number): boolean {
  const e = se & 0x7fff;
  if (e === 0x7fff) return (hi & 0x7fffffff) !== 0 || lo !== 0 || hi >>> 31 === 0;
  return e !== 0 && hi >>> 31 === 0;
}

// ---------------------------------------------------------------------------------------------
// Prologue pieces

/** The #NM / pending-exception checks every waiting x87 instruction (and FWAIT) makes. */
export function x87Pending(c: X86Cpu): void {
  const st = c.state;
  if ((st.fpu.sw & SW_ES) === 0) return;
  if (st.cr0 & CR0_NE) c.raise(MF_VECTOR, -1);
  st.fpuFerr = 1;
}

/** 9B: FWAIT/WAIT: #NM when CR0.MP and CR0.TS are both set, then any pending exception. */
export function fwait(c: X86Cpu): void {
  const cr0 = c.state.cr0;
  if ((cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) c.raise(NM_VECTOR, -1);
  x87Pending(c);
}

/*
 * FCS and FDS are deprecated on this CPU and stored as 0 (CPUID.(EAX=07H,ECX=0):EBX[13], as on
 * the Xeon the differential tests compare with); in real and virtual-8086 mode the pointers are
 * then the linear addresses the real-mode FSTENV/FSAVE images hold (SDM Vol. 1 Figure 8-10).
 */
function recordIp(c: X86Cpu): void {
  const f = c.state.fpu;
  const rip = c.curRip;
  f.fip = !c.pe || c.v86 ? (rip + c.effBase[1]) >>> 0 : rip >>> 0;
  f.fipHi = c.m64 ? Math.floor(rip / TWO32) | 0 : 0;
  f.fcs = 0;
}

function recordOp(c: X86Cpu): void {
  c.state.fpu.fop = ((c.opb & 7) << 8) | (c.mod << 6) | ((c.reg & 7) << 3) | (c.rm & 7);
}

function recordDp(c: X86Cpu): void {
  const f = c.state.fpu;
  const off = mOff;
  f.fdp = !c.pe || c.v86 ? (off + c.effBase[c.seg]) >>> 0 : off >>> 0;
  f.fdpHi = c.m64 ? Math.floor(off / TWO32) | 0 : 0;
  f.fds = 0;
}

/** Linear address of the memory operand (size bytes; acc 1 read, 2 write). */
function memLa(c: X86Cpu, size: number, acc: number): number {
  return linAddr(c, c.seg, mOff, size, acc);
}

// ---------------------------------------------------------------------------------------------
// Memory operands

function loadF32(c: X86Cpu): void {
  const bits = rd32(c, memLa(c, 4, 1));
  const e = (bits >>> 23) & 0xff, fr = bits & 0x7fffff;
  mDen = false;
  if (e === 0xff) {
    mSe = ((bits >>> 31) << 15) | 0x7fff;
    mHi = (0x80000000 | (fr << 8)) >>> 0;
    mLo = 0;
    return;
  }
  mDen = e === 0 && fr !== 0;
  f32ToF80(quietEnv, R3, bits);
  mSe = R3.se; mHi = R3.hi; mLo = R3.lo;
}

function loadF64(c: X86Cpu): void {
  const lo = rd64(c, memLa(c, 8, 1)), hi = c.rhi;
  const e = (hi >>> 20) & 0x7ff;
  mDen = false;
  if (e === 0x7ff) {
    mSe = ((hi >>> 31) << 15) | 0x7fff;
    mHi = (0x80000000 | ((hi & 0xfffff) << 11) | (lo >>> 21)) >>> 0;
    mLo = (lo << 11) >>> 0;
    return;
  }
  mDen = e === 0 && ((hi & 0xfffff) | lo) !== 0;
  f64ToF80(quietEnv, R3, lo, hi);
  mSe = R3.se; mHi = R3.hi; mLo = R3.lo;
}

function loadI16(c: X86Cpu): void {
  const v = (rd16(c, memLa(c, 2, 1)) << 16) >> 16;
  intToF80(R3, v, v >> 31);
  mSe = R3.se; mHi = R3.hi; mLo = R3.lo; mDen = false;
}

function loadI32(c: X86Cpu): void {
  const v = rd32(c, memLa(c, 4, 1)) | 0;
  intToF80(R3, v, v >> 31);
  mSe = R3.se; mHi = R3.hi; mLo = R3.lo; mDen = false;
}

/** Memory source kinds of the arithmetic/compare forms: D8 m32fp, DA m32int, DC m64fp, DE m16int. */
function loadArithOperand(c: X86Cpu): void {
  switch (c.opb) {
    case 0xd8: loadF32(c); return;
    case 0xda: loadI32(c); return;
    case 0xdc: loadF64(c); return;
    default: loadI16(c); return;
  }
}

/** Store 10 bytes (m80 real or BCD) after checking both ends for writing. */
function store80(c: X86Cpu, la: number, se: number, hi: number, lo: number): void {
  rdLW(c, 0, c.m64 ? la + 9 : (la + 9) >>> 0);
  wr64(c, la, lo, hi);
  wr16(c, c.m64 ? la + 8 : (la + 8) >>> 0, se);
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

/** Operation codes with destination-first semantics: dst = dst op src (R = reversed operands). */
const OP_ADD = 0, OP_MUL = 1, OP_SUB = 2, OP_SUBR = 3, OP_DIV = 4, OP_DIVR = 5;
/** ModRM.reg of D8 (and of every memory form) to operation; DC/DE register forms swap SUB/SUBR and DIV/DIVR. */
const OP_D8 = [OP_ADD, OP_MUL, -1, -1, OP_SUB, OP_SUBR, OP_DIV, OP_DIVR];
const OP_DC = [OP_ADD, OP_MUL, -1, -1, OP_SUBR, OP_SUB, OP_DIVR, OP_DIV];

function compute(op: number, sA: number, hA: number, lA: number, sB: number, hB: number, lB: number): void {
  switch (op) {
    case OP_ADD: f80Add(env, R1, sA, hA, lA, sB, hB, lB); return;
    case OP_MUL: f80Mul(env, R1, sA, hA, lA, sB, hB, lB); return;
    case OP_SUB: f80Sub(env, R1, sA, hA, lA, sB, hB, lB); return;
    case OP_SUBR: f80Sub(env, R1, sB, hB, lB, sA, hA, lA); return;
    case OP_DIV: f80Div(env, R1, sA, hA, lA, sB, hB, lB); return;
    default: f80Div(env, R1, sB, hB, lB, sA, hA, lA); return;
  }
}

/** Stack underflow on an operand: masked, the destination ST(d) gets the indefinite (then the pop). */
function underflowTo(f: X87State, d: number, pops: number): void {
  if (!f.stackUnderflow()) return;
  f.setSt(d, 0xffff, 0xc0000000, 0);
  for (let k = 0; k < pops; k++) f.pop();
}

/**
 * True when the operation's result is delivered. An unmasked invalid, denormal or zero-divide
 * exception stops the instruction: only those flags are then reported, not the precision,
 * underflow or overflow a kernel that ran to the end may have added (an Intel Xeon reports DE
 * alone for a transcendental of a denormal with DE unmasked).
 */
function delivered(): boolean {
  if (x87ResultDelivered(env)) return true;
  env.flags &= FP_IE | FP_DE | FP_ZE;
  return false;
}

/** Write R1 to ST(d) (and pop) unless an unmasked exception suppresses it; merge the flags. */
function deliver(f: X87State, d: number, pops: number): void {
  if (delivered()) {
    f.setSt(d, R1.se, R1.hi, R1.lo);
    setC1(f, env.roundedUp);
    for (let k = 0; k < pops; k++) f.pop();
  }
  f.raise(env.flags);
}

function arithRR(c: X86Cpu, op: number, d: number, s: number, pop: boolean): void {
  const f = c.state.fpu;
  if (f.isEmpty(d) || f.isEmpty(s)) { underflowTo(f, d, pop ? 1 : 0); return; }
  setX87Control(env, f.cw);
  compute(op, f.stSe(d), f.stHi(d), f.stLo(d), f.stSe(s), f.stHi(s), f.stLo(s));
  deliver(f, d, pop ? 1 : 0);
}

/**
 * A denormal single/double memory operand raises DE before the arithmetic (which sees it
 * normalized), except when ST(0) is a NaN: NaN handling comes first (SDM Vol. 1 4.9.2).
 * Returns false when DE is unmasked: the instruction stops there.
 */
function memDenormal(f: X87State): boolean {
  if (!mDen || nanLike(f.stSe(0), f.stHi(0), f.stLo(0))) return true;
  env.flags |= FP_DE;
  if (env.masks & FP_DE) return true;
  f.raise(env.flags);
  return false;
}

/** D8/DA/DC/DE memory forms /0 /1 /4-/7: ST(0) = ST(0) op m. */
function arithMem(c: X86Cpu): void {
  loadArithOperand(c);
  const f = c.state.fpu;
  if (f.isEmpty(0)) { underflowTo(f, 0, 0); return; }
  setX87Control(env, f.cw);
  if (!memDenormal(f)) return;
  compute(OP_D8[c.reg & 7]!, f.stSe(0), f.stHi(0), f.stLo(0), mSe, mHi, mLo);
  deliver(f, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// Comparisons

/**
 * FCOM/FUCOM family core: C3 C2 C0 from ST(0) vs (se,hi,lo), C1 = 0, then `pops` pops unless
 * an unmasked exception stops it. The condition codes are written even then (unordered for an
 * invalid operand), as an Intel Xeon does.
 */
function fcomCore(f: X87State, se: number, hi: number, lo: number, quiet: boolean, pops: number): void {
  const cmp = f80Compare(env, f.stSe(0), f.stHi(0), f.stLo(0), se, hi, lo, quiet);
  setCc(f, x87CompareCodes(cmp));
  if ((env.flags & ~env.masks & (FP_IE | FP_DE)) === 0) for (let k = 0; k < pops; k++) f.pop();
  f.raise(env.flags);
}

function fcomUnderflow(f: X87State, pops: number): void {
  if (!f.stackUnderflow()) return;
  setCc(f, SW_C0 | SW_C2 | SW_C3);
  for (let k = 0; k < pops; k++) f.pop();
}

function fcomReg(c: X86Cpu, i: number, quiet: boolean, pops: number): void {
  const f = c.state.fpu;
  if (f.isEmpty(0) || f.isEmpty(i)) { fcomUnderflow(f, pops); return; }
  setX87Control(env, f.cw);
  fcomCore(f, f.stSe(i), f.stHi(i), f.stLo(i), quiet, pops);
}

/** D8/DA/DC/DE memory /2 /3: FCOM(P) m32fp/m64fp, FICOM(P) m16int/m32int. */
function fcomMem(c: X86Cpu): void {
  loadArithOperand(c);
  const f = c.state.fpu;
  const pops = c.reg & 1;
  if (f.isEmpty(0)) { fcomUnderflow(f, pops); return; }
  setX87Control(env, f.cw);
  if (mDen && !nanLike(f.stSe(0), f.stHi(0), f.stLo(0))) env.flags |= FP_DE;
  fcomCore(f, mSe, mHi, mLo, false, pops);
}

/**
 * FCOMI/FUCOMI(P): ZF PF CF from the comparison, OF SF AF cleared (SDM Vol. 2 FCOMI). EFLAGS are
 * written even when an unmasked IE/DE stops the instruction (then it does not pop), as an Intel
 * Xeon does.
 */
function fcomi(c: X86Cpu, i: number, quiet: boolean, pop: boolean): void {
  const f = c.state.fpu;
  let bits: number;
  let stopped = false;
  if (f.isEmpty(0) || f.isEmpty(i)) {
    if (!f.stackUnderflow()) return;
    bits = eflagsCompare(CMP_UNORDERED);
  } else {
    setX87Control(env, f.cw);
    const cmp = f80Compare(env, f.stSe(0), f.stHi(0), f.stLo(0), f.stSe(i), f.stHi(i), f.stLo(i), quiet);
    f.raise(env.flags);
    stopped = (env.flags & ~env.masks & (FP_IE | FP_DE)) !== 0;
    bits = eflagsCompare(cmp);
    setC1(f, false);
  }
  flagsSync(c);
  c.fl = (c.fl & ~ARITH) | bits;
  if (pop && !stopped) f.pop();
}

// ---------------------------------------------------------------------------------------------
// Loads and stores

/** Push R1 after FLD m32/m64 unless an unmasked IE stops it (a denormal operand is loaded even with DE unmasked). */
function pushConverted(f: X87State): void {
  if ((env.flags & ~env.masks & FP_IE) === 0) f.push(R1.se, R1.hi, R1.lo);
  f.raise(env.flags);
}

function fldM32(c: X86Cpu): void {
  const bits = rd32(c, memLa(c, 4, 1));
  const f = c.state.fpu;
  setX87Control(env, f.cw);
  f32ToF80(env, R1, bits);
  pushConverted(f);
}

function fldM64(c: X86Cpu): void {
  const lo = rd64(c, memLa(c, 8, 1)), hi = c.rhi;
  const f = c.state.fpu;
  setX87Control(env, f.cw);
  f64ToF80(env, R1, lo, hi);
  pushConverted(f);
}

/** DB /5: FLD m80fp (no exception for SNaNs or unsupported encodings: the bits are loaded as they are). */
function fldM80(c: X86Cpu): void {
  const la = memLa(c, 10, 1);
  const lo = rd64(c, la), hi = c.rhi;
  const se = rd16(c, c.m64 ? la + 8 : (la + 8) >>> 0);
  c.state.fpu.push(se, hi, lo);
}

/** FILD m16int/m32int/m64int (exact). */
function fild(c: X86Cpu, bytes: number): void {
  let lo: number, hi: number;
  if (bytes === 2) { lo = (rd16(c, memLa(c, 2, 1)) << 16) >> 16; hi = lo >> 31; }
  else if (bytes === 4) { lo = rd32(c, memLa(c, 4, 1)) | 0; hi = lo >> 31; }
  else { lo = rd64(c, memLa(c, 8, 1)); hi = c.rhi; }
  intToF80(R1, lo, hi);
  c.state.fpu.push(R1.se, R1.hi, R1.lo);
}

/** DF /4: FBLD m80bcd. */
function fbld(c: X86Cpu): void {
  const la = memLa(c, 10, 1);
  const lo = rd64(c, la), mid = c.rhi;
  const hi = rd16(c, c.m64 ? la + 8 : (la + 8) >>> 0);
  bcdToF80(R1, lo, mid, hi);
  c.state.fpu.push(R1.se, R1.hi, R1.lo);
}

/** FLD ST(i). */
function fldSt(c: X86Cpu, i: number): void {
  const f = c.state.fpu;
  if (f.isEmpty(i)) {
    if (!f.stackUnderflow()) return;
    f.push(0xffff, 0xc0000000, 0);
    return;
  }
  f.push(f.stSe(i), f.stHi(i), f.stLo(i));
}

const ST_F32 = 0, ST_F64 = 1, ST_I16 = 2, ST_I32 = 3, ST_I64 = 4, ST_I16T = 5, ST_I32T = 6, ST_I64T = 7, ST_BCD = 8, ST_F80 = 9;
const ST_BYTES = [4, 8, 2, 4, 8, 2, 4, 8, 10, 10];

function writeStore(c: X86Cpu, kind: number, la: number, r: Packed): void {
  switch (ST_BYTES[kind]) {
    case 2: wr16(c, la, r.lo); return;
    case 4: wr32(c, la, r.lo); return;
    case 8: wr64(c, la, r.lo, r.hi); return;
    default: store80(c, la, r.se, r.hi, r.lo); return;
  }
}

/** The masked response to an empty ST(0) in a store: the indefinite of the destination format. */
function indefiniteFor(kind: number, r: Packed): void {
  r.se = 0;
  r.lo = 0;
  r.hi = 0;
  switch (kind) {
    case ST_F32: r.lo = 0xffc00000; return;
    case ST_F64: r.hi = 0xfff80000; return;
    case ST_I16: case ST_I16T: r.lo = 0x8000; return;
    case ST_I32: case ST_I32T: r.lo = 0x80000000; return;
    case ST_I64: case ST_I64T: r.hi = 0x80000000; return;
    default: r.se = 0xffff; r.hi = 0xc0000000; return;
  }
}

/**
 * FST/FSTP/FIST/FISTP/FISTTP/FBSTP to memory. Unmasked IE, OE or UE store nothing (SDM Vol. 1
 * 8.5.3, 8.5.4); the store is done before any FPU state changes, so a page fault is restartable.
 */
function storeMem(c: X86Cpu, kind: number, pop: boolean): void {
  const la = memLa(c, ST_BYTES[kind]!, 2);
  const f = c.state.fpu;
  if (f.isEmpty(0)) {
    if ((f.cw & FP_IE) !== 0) {
      indefiniteFor(kind, R1);
      writeStore(c, kind, la, R1);
    }
    if (f.stackUnderflow() && pop) f.pop();
    return;
  }
  const se = f.stSe(0), hi = f.stHi(0), lo = f.stLo(0);
  setX87Control(env, f.cw);
  switch (kind) {
    case ST_F32: f80ToF32(env, R1, se, hi, lo); break;
    case ST_F64: f80ToF64(env, R1, se, hi, lo); break;
    case ST_I16: f80ToInt(env, R1, se, hi, lo, 16, false); break;
    case ST_I32: f80ToInt(env, R1, se, hi, lo, 32, false); break;
    case ST_I64: f80ToInt(env, R1, se, hi, lo, 64, false); break;
    case ST_I16T: f80ToInt(env, R1, se, hi, lo, 16, true); break;
    case ST_I32T: f80ToInt(env, R1, se, hi, lo, 32, true); break;
    case ST_I64T: f80ToInt(env, R1, se, hi, lo, 64, true); break;
    case ST_BCD: f80ToBcd(env, R1, se, hi, lo); break;
    default: R1.se = se; R1.hi = hi; R1.lo = lo; env.flags = 0; env.roundedUp = false; break;
  }
  if ((env.flags & ~env.masks & 0x1f) === 0) {
    writeStore(c, kind, la, R1);
    setC1(f, env.roundedUp);
    if (pop) f.pop();
  } else if ((env.flags & ~env.masks & (FP_OE | FP_UE)) !== 0) {
    // Nothing is stored, and the store reports no precision exception (an Intel Xeon shows UE alone).
    env.flags &= ~FP_PE;
  }
  f.raise(env.flags);
}

/** FST/FSTP ST(i) (and the FSTP1/FSTP8/FSTP9 aliases): a copy, no exceptions but underflow. */
function fstSt(c: X86Cpu, i: number, pop: boolean): void {
  const f = c.state.fpu;
  if (f.isEmpty(0)) { underflowTo(f, i, pop ? 1 : 0); return; }
  f.setSt(i, f.stSe(0), f.stHi(0), f.stLo(0));
  setC1(f, false);
  if (pop) f.pop();
}

/** FXCH ST(i) (and the FXCH4/FXCH7 aliases). */
function fxch(c: X86Cpu, i: number): void {
  const f = c.state.fpu;
  if (f.isEmpty(0) || f.isEmpty(i)) {
    if (!f.stackUnderflow()) return;
    if (f.isEmpty(0)) f.setSt(0, 0xffff, 0xc0000000, 0);
    if (f.isEmpty(i)) f.setSt(i, 0xffff, 0xc0000000, 0);
  }
  const se = f.stSe(0), hi = f.stHi(0), lo = f.stLo(0);
  const tag0 = f.tagOf(f.phys(0)), tagI = f.tagOf(f.phys(i));
  f.setSt(0, f.stSe(i), f.stHi(i), f.stLo(i));
  f.setSt(i, se, hi, lo);
  f.setTag(f.phys(0), tagI);
  f.setTag(f.phys(i), tag0);
  setC1(f, false);
}

/** FCMOVcc ST(0), ST(i): EFLAGS condition cc as for Jcc (B=2, E=4, BE=6, U=10 and their negations). */
function fcmov(c: X86Cpu, i: number, cc: number): void {
  const f = c.state.fpu;
  if (f.isEmpty(0) || f.isEmpty(i)) {
    if (f.stackUnderflow()) f.setSt(0, 0xffff, 0xc0000000, 0);
    return;
  }
  if (cond(c, cc)) f.setSt(0, f.stSe(i), f.stHi(i), f.stLo(i));
}

// ---------------------------------------------------------------------------------------------
// One-operand and special instructions (D9 E0-FF)

/** FCHS / FABS: sign manipulation only, C1 = 0. */
function signOp(c: X86Cpu, abs: boolean): void {
  const f = c.state.fpu;
  if (f.isEmpty(0)) { underflowTo(f, 0, 0); return; }
  const se = f.stSe(0);
  f.setSt(0, abs ? se & 0x7fff : se ^ 0x8000, f.stHi(0), f.stLo(0));
  setC1(f, false);
}

function ftst(c: X86Cpu): void {
  const f = c.state.fpu;
  if (f.isEmpty(0)) { fcomUnderflow(f, 0); return; }
  setX87Control(env, f.cw);
  setCc(f, x87CompareCodes(f80Test(env, f.stSe(0), f.stHi(0), f.stLo(0))));
  f.raise(env.flags);
}

function fxam(c: X86Cpu): void {
  const f = c.state.fpu;
  setCc(f, f80Examine(f.stSe(0), f.stHi(0), f.stLo(0), f.isEmpty(0)));
}

/** D9 E8-EE: FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ (rounded per CW.RC). */
function fldConst(c: X86Cpu, which: number): void {
  const f = c.state.fpu;
  f80LoadConst(R1, which, (f.cw >>> 10) & 3);
  f.push(R1.se, R1.hi, R1.lo);
}

/** F2XM1, FSQRT, FRNDINT, FSIN, FCOS: ST(0) = f(ST(0)). */
function unary(c: X86Cpu, which: number): void {
  const f = c.state.fpu;
  if (f.isEmpty(0)) { underflowTo(f, 0, 0); return; }
  setX87Control(env, f.cw);
  const se = f.stSe(0), hi = f.stHi(0), lo = f.stLo(0);
  let trig = false;
  switch (which) {
    case 0: f80F2xm1(env, R1, se, hi, lo); break;
    case 1: f80Sqrt(env, R1, se, hi, lo); break;
    case 2: f80RoundInt(env, R1, se, hi, lo); break;
    case 3: f80Sin(env, R1, se, hi, lo); trig = true; break;
    default: f80Cos(env, R1, se, hi, lo); trig = true; break;
  }
  if (trig) {
    // C2 = 1: operand out of range (|x| >= 2^63), left unchanged.
    f.sw = transStatus.c2 ? f.sw | SW_C2 : f.sw & ~SW_C2;
    if (transStatus.c2) { f.raise(env.flags); return; }
  }
  deliver(f, 0, 0);
}

/** FYL2X, FYL2XP1, FPATAN: ST(1) = f(ST(1), ST(0)), pop. */
function binaryPop(c: X86Cpu, which: number): void {
  const f = c.state.fpu;
  if (f.isEmpty(0) || f.isEmpty(1)) { underflowTo(f, 1, 1); return; }
  setX87Control(env, f.cw);
  const sY = f.stSe(1), hY = f.stHi(1), lY = f.stLo(1), sX = f.stSe(0), hX = f.stHi(0), lX = f.stLo(0);
  if (which === 0) f80Yl2x(env, R1, sY, hY, lY, sX, hX, lX);
  else if (which === 1) f80Yl2xp1(env, R1, sY, hY, lY, sX, hX, lX);
  else f80Atan(env, R1, sY, hY, lY, sX, hX, lX);
  deliver(f, 1, 1);
}

/** FSCALE: ST(0) = ST(0) * 2^trunc(ST(1)). */
function fscale(c: X86Cpu): void {
  const f = c.state.fpu;
  if (f.isEmpty(0) || f.isEmpty(1)) { underflowTo(f, 0, 0); return; }
  setX87Control(env, f.cw);
  f80Scale(env, R1, f.stSe(0), f.stHi(0), f.stLo(0), f.stSe(1), f.stHi(1), f.stLo(1));
  deliver(f, 0, 0);
}

/** FPREM / FPREM1: C2 = incomplete reduction; else C0 C3 C1 = quotient bits 2 1 0. */
function fprem(c: X86Cpu, ieee: boolean): void {
  const f = c.state.fpu;
  if (f.isEmpty(0) || f.isEmpty(1)) { underflowTo(f, 0, 0); return; }
  setX87Control(env, f.cw);
  f80Prem(env, R1, f.stSe(0), f.stHi(0), f.stLo(0), f.stSe(1), f.stHi(1), f.stLo(1), ieee);
  if (delivered()) {
    f.setSt(0, R1.se, R1.hi, R1.lo);
    const q = premStatus.q;
    let cc = premStatus.incomplete ? SW_C2 : 0;
    if (!premStatus.incomplete) cc |= (q & 4 ? SW_C0 : 0) | (q & 2 ? SW_C3 : 0) | (q & 1 ? SW_C1 : 0);
    setCc(f, cc);
  }
  f.raise(env.flags);
}

/** A push after replacing ST(0) needs ST(7) empty; otherwise it is a stack overflow. */
function overflowForPush(f: X87State): boolean {
  if (f.isEmpty(7)) return false;
  // push() records IE/SF/C1 and, masked, the indefinite; the replaced ST(0) becomes the indefinite too.
  if (f.push(0xffff, 0xc0000000, 0)) f.setSt(1, 0xffff, 0xc0000000, 0);
  return true;
}

/**
 * The start of the instructions that replace ST(0) and push a second result (FXTRACT, FPTAN,
 * FSINCOS): an empty ST(0) is a stack underflow (masked: both results are the indefinite), a
 * full stack an overflow. True when the operation goes ahead, with the control word loaded.
 */
function twoResultStart(f: X87State): boolean {
  if (f.isEmpty(0)) {
    if (f.stackUnderflow()) {
      f.setSt(0, 0xffff, 0xc0000000, 0);
      f.push(0xffff, 0xc0000000, 0);
    }
    return false;
  }
  if (overflowForPush(f)) return false;
  setX87Control(env, f.cw);
  return true;
}

/** FXTRACT: ST(0) = exponent, then push the significand. */
function fxtract(c: X86Cpu): void {
  const f = c.state.fpu;
  if (!twoResultStart(f)) return;
  f80Xtract(env, R1, R2, f.stSe(0), f.stHi(0), f.stLo(0));
  if (delivered()) {
    f.setSt(0, R2.se, R2.hi, R2.lo);
    f.push(R1.se, R1.hi, R1.lo);
    setC1(f, false);
  }
  f.raise(env.flags);
}

/** FPTAN: ST(0) = tan, then push 1.0 (a NaN result is pushed again instead, as Intel does). */
function fptan(c: X86Cpu): void {
  const f = c.state.fpu;
  if (!twoResultStart(f)) return;
  f80Tan(env, R1, f.stSe(0), f.stHi(0), f.stLo(0));
  f.sw = transStatus.c2 ? f.sw | SW_C2 : f.sw & ~SW_C2;
  if (!transStatus.c2 && delivered()) {
    f.setSt(0, R1.se, R1.hi, R1.lo);
    setC1(f, env.roundedUp);
    if ((R1.se & 0x7fff) === 0x7fff && ((R1.hi & 0x7fffffff) | R1.lo) !== 0) f.push(R1.se, R1.hi, R1.lo);
    else f.push(0x3fff, 0x80000000, 0);
  }
  f.raise(env.flags);
}

/** FSINCOS: ST(0) = sin, then push cos. */
function fsincos(c: X86Cpu): void {
  const f = c.state.fpu;
  if (!twoResultStart(f)) return;
  f80SinCos(env, R1, R2, f.stSe(0), f.stHi(0), f.stLo(0));
  f.sw = transStatus.c2 ? f.sw | SW_C2 : f.sw & ~SW_C2;
  if (!transStatus.c2 && delivered()) {
    f.setSt(0, R1.se, R1.hi, R1.lo);
    f.push(R2.se, R2.hi, R2.lo);
    setC1(f, env.roundedUp);
  }
  f.raise(env.flags);
}

function fincDec(c: X86Cpu, inc: boolean): void {
  const f = c.state.fpu;
  f.top = (f.top + (inc ? 1 : 7)) & 7;
  setC1(f, false);
}

// ---------------------------------------------------------------------------------------------
// Control instructions

function fnstcw(c: X86Cpu): void {
  wr16(c, memLa(c, 2, 2), c.state.fpu.cw);
}

function fldcw(c: X86Cpu): void {
  const v = rd16(c, memLa(c, 2, 1));
  const f = c.state.fpu;
  f.cw = x87ControlWord(v);
  x87UpdateSummary(f);
}

function fnstswMem(c: X86Cpu): void {
  wr16(c, memLa(c, 2, 2), c.state.fpu.statusWord());
}

/** Environment image format for the current mode and operand size (SDM Vol. 1 8.1.10). */
function envFormat(c: X86Cpu): number {
  const real = !c.pe || c.v86;
  if (c.osz === 1) return real ? ENV_RM16 : ENV_PM16;
  return real ? ENV_RM32 : ENV_PM32;
}

/** FNSTENV: store the environment, then mask every exception. */
function fnstenv(c: X86Cpu): void {
  const fmt = envFormat(c), n = envSize(fmt);
  const la = memLa(c, n, 2);
  const f = c.state.fpu;
  encodeEnv(f, IMG, 0, fmt);
  writeImage(c, la, n, IMG, 0);
  f.cw |= 0x3f;
  // Every exception is now masked, so none is pending any more (ES and B follow the masks).
  x87UpdateSummary(f);
}

function fldenv(c: X86Cpu): void {
  const fmt = envFormat(c), n = envSize(fmt);
  readImage(c, memLa(c, n, 1), n, IMG, 0);
  const f = c.state.fpu;
  decodeEnv(f, IMG, 0, fmt);
  f.cw = x87ControlWord(f.cw);
  x87UpdateSummary(f);
}

/** FNSAVE: store the environment and ST(0)-ST(7), then FNINIT. */
function fnsave(c: X86Cpu): void {
  const fmt = envFormat(c), n = envSize(fmt) + 80;
  const la = memLa(c, n, 2);
  const f = c.state.fpu;
  encodeFsave(f, IMG, 0, fmt);
  writeImage(c, la, n, IMG, 0);
  f.init();
}

function frstor(c: X86Cpu): void {
  const fmt = envFormat(c), n = envSize(fmt) + 80;
  readImage(c, memLa(c, n, 1), n, IMG, 0);
  const f = c.state.fpu;
  decodeFsave(f, IMG, 0, fmt);
  f.cw = x87ControlWord(f.cw);
  x87UpdateSummary(f);
}

/** FNCLEX: clear the exception flags, SF, ES and B. */
function fnclex(c: X86Cpu): void {
  c.state.fpu.sw &= ~(0x3f | SW_SF | SW_ES | SW_B);
}

// ---------------------------------------------------------------------------------------------
// Tables

type RegOp = (c: X86Cpu, i: number) => void;
type MemOp = (c: X86Cpu) => void;

/** Instruction kinds: undefined, non-waiting control, waiting control, non-control (records FIP/FOP[/FDP]). */
const K_UD = 0, K_NOWAIT = 1, K_CTRL = 2, K_NORMAL = 3;

const REG_OPS: RegOp[] = new Array<RegOp>(512);
const REG_KIND = new Uint8Array(512);
const MEM_OPS: MemOp[] = new Array<MemOp>(64);
const MEM_KIND = new Uint8Array(64);

function regDef(esc: number, modrmLow: number, count: number, kind: number, h: RegOp): void {
  for (let k = 0; k < count; k++) {
    const idx = ((esc & 7) << 6) | ((modrmLow & 0x3f) + k);
    REG_OPS[idx] = h;
    REG_KIND[idx] = kind;
  }
}

function memDef(esc: number, reg: number, kind: number, h: MemOp): void {
  MEM_OPS[((esc & 7) << 3) | reg] = h;
  MEM_KIND[((esc & 7) << 3) | reg] = kind;
}

const N = K_NORMAL;
const noop: RegOp = () => {};

// D8: arithmetic ST(0) op ST(i), FCOM/FCOMP ST(i); memory m32fp.
for (let r = 0; r < 8; r++) {
  const op = OP_D8[r]!;
  if (r === 2 || r === 3) regDef(0xd8, r << 3, 8, N, (c, i) => fcomReg(c, i, false, r & 1));
  else regDef(0xd8, r << 3, 8, N, (c, i) => arithRR(c, op, 0, i, false));
}
// DC: arithmetic ST(i) op ST(0) (SUB/SUBR and DIV/DIVR swapped); FCOM2/FCOMP3 aliases.
// DE: the same with a pop; FCOMP5 alias, FCOMPP (DE D9).
for (let r = 0; r < 8; r++) {
  const op = OP_DC[r]!;
  if (r === 2 || r === 3) {
    regDef(0xdc, r << 3, 8, N, (c, i) => fcomReg(c, i, false, r & 1));
    continue;
  }
  regDef(0xdc, r << 3, 8, N, (c, i) => arithRR(c, op, i, 0, false));
  regDef(0xde, r << 3, 8, N, (c, i) => arithRR(c, op, i, 0, true));
}
regDef(0xde, 0x10, 8, N, (c, i) => fcomReg(c, i, false, 1));
regDef(0xde, 0x19, 1, N, (c) => fcomReg(c, 1, false, 2));
// Memory arithmetic and compares of D8 (m32fp), DA (m32int), DC (m64fp), DE (m16int).
for (const esc of [0xd8, 0xda, 0xdc, 0xde]) {
  for (let r = 0; r < 8; r++) memDef(esc, r, N, r === 2 || r === 3 ? fcomMem : arithMem);
}

// D9
memDef(0xd9, 0, N, fldM32);
memDef(0xd9, 2, N, (c) => storeMem(c, ST_F32, false));
memDef(0xd9, 3, N, (c) => storeMem(c, ST_F32, true));
memDef(0xd9, 4, K_CTRL, fldenv);
memDef(0xd9, 5, K_CTRL, fldcw);
memDef(0xd9, 6, K_NOWAIT, fnstenv);
memDef(0xd9, 7, K_NOWAIT, fnstcw);
regDef(0xd9, 0x00, 8, N, fldSt);
regDef(0xd9, 0x08, 8, N, fxch);
regDef(0xd9, 0x10, 1, N, noop); // FNOP
regDef(0xd9, 0x18, 8, N, (c, i) => fstSt(c, i, true)); // FSTP1
regDef(0xd9, 0x20, 1, N, (c) => signOp(c, false));
regDef(0xd9, 0x21, 1, N, (c) => signOp(c, true));
regDef(0xd9, 0x24, 1, N, ftst);
regDef(0xd9, 0x25, 1, N, fxam);
for (let k = 0; k < 7; k++) regDef(0xd9, 0x28 + k, 1, N, (c) => fldConst(c, k));
regDef(0xd9, 0x30, 1, N, (c) => unary(c, 0)); // F2XM1
regDef(0xd9, 0x31, 1, N, (c) => binaryPop(c, 0)); // FYL2X
regDef(0xd9, 0x32, 1, N, fptan);
regDef(0xd9, 0x33, 1, N, (c) => binaryPop(c, 2)); // FPATAN
regDef(0xd9, 0x34, 1, N, fxtract);
regDef(0xd9, 0x35, 1, N, (c) => fprem(c, true));
regDef(0xd9, 0x36, 1, N, (c) => fincDec(c, false)); // FDECSTP
regDef(0xd9, 0x37, 1, N, (c) => fincDec(c, true)); // FINCSTP
regDef(0xd9, 0x38, 1, N, (c) => fprem(c, false));
regDef(0xd9, 0x39, 1, N, (c) => binaryPop(c, 1)); // FYL2XP1
regDef(0xd9, 0x3a, 1, N, (c) => unary(c, 1)); // FSQRT
regDef(0xd9, 0x3b, 1, N, fsincos);
regDef(0xd9, 0x3c, 1, N, (c) => unary(c, 2)); // FRNDINT
regDef(0xd9, 0x3d, 1, N, fscale);
regDef(0xd9, 0x3e, 1, N, (c) => unary(c, 3)); // FSIN
regDef(0xd9, 0x3f, 1, N, (c) => unary(c, 4)); // FCOS

// DA: FCMOVB/E/BE/U, FUCOMPP.
regDef(0xda, 0x00, 8, N, (c, i) => fcmov(c, i, 2));
regDef(0xda, 0x08, 8, N, (c, i) => fcmov(c, i, 4));
regDef(0xda, 0x10, 8, N, (c, i) => fcmov(c, i, 6));
regDef(0xda, 0x18, 8, N, (c, i) => fcmov(c, i, 10));
regDef(0xda, 0x29, 1, N, (c) => fcomReg(c, 1, true, 2));

// DB
memDef(0xdb, 0, N, (c) => fild(c, 4));
memDef(0xdb, 1, N, (c) => storeMem(c, ST_I32T, true));
memDef(0xdb, 2, N, (c) => storeMem(c, ST_I32, false));
memDef(0xdb, 3, N, (c) => storeMem(c, ST_I32, true));
memDef(0xdb, 5, N, fldM80);
memDef(0xdb, 7, N, (c) => storeMem(c, ST_F80, true));
regDef(0xdb, 0x00, 8, N, (c, i) => fcmov(c, i, 3));
regDef(0xdb, 0x08, 8, N, (c, i) => fcmov(c, i, 5));
regDef(0xdb, 0x10, 8, N, (c, i) => fcmov(c, i, 7));
regDef(0xdb, 0x18, 8, N, (c, i) => fcmov(c, i, 11));
// FNENI, FNDISI (8087) and FNSETPM (287) execute as no-ops (SDM Vol. 1 8.3.13 / Table A-19 note).
regDef(0xdb, 0x20, 2, K_NOWAIT, noop);
regDef(0xdb, 0x22, 1, K_NOWAIT, fnclex);
regDef(0xdb, 0x23, 1, K_NOWAIT, (c) => c.state.fpu.init());
regDef(0xdb, 0x24, 1, K_NOWAIT, noop);
regDef(0xdb, 0x28, 8, N, (c, i) => fcomi(c, i, true, false));
regDef(0xdb, 0x30, 8, N, (c, i) => fcomi(c, i, false, false));

// DC memory: m64fp arithmetic (above). DD:
memDef(0xdd, 0, N, fldM64);
memDef(0xdd, 1, N, (c) => storeMem(c, ST_I64T, true));
memDef(0xdd, 2, N, (c) => storeMem(c, ST_F64, false));
memDef(0xdd, 3, N, (c) => storeMem(c, ST_F64, true));
memDef(0xdd, 4, K_CTRL, frstor);
memDef(0xdd, 6, K_NOWAIT, fnsave);
memDef(0xdd, 7, K_NOWAIT, fnstswMem);
regDef(0xdd, 0x00, 8, N, (c, i) => { c.state.fpu.setTag(c.state.fpu.phys(i), TAG_EMPTY); });
regDef(0xdd, 0x08, 8, N, fxch); // FXCH4
regDef(0xdd, 0x10, 8, N, (c, i) => fstSt(c, i, false));
regDef(0xdd, 0x18, 8, N, (c, i) => fstSt(c, i, true));
regDef(0xdd, 0x20, 8, N, (c, i) => fcomReg(c, i, true, 0));
regDef(0xdd, 0x28, 8, N, (c, i) => fcomReg(c, i, true, 1));

// DF
memDef(0xdf, 0, N, (c) => fild(c, 2));
memDef(0xdf, 1, N, (c) => storeMem(c, ST_I16T, true));
memDef(0xdf, 2, N, (c) => storeMem(c, ST_I16, false));
memDef(0xdf, 3, N, (c) => storeMem(c, ST_I16, true));
memDef(0xdf, 4, N, fbld);
memDef(0xdf, 5, N, (c) => fild(c, 8));
memDef(0xdf, 6, N, (c) => storeMem(c, ST_BCD, true));
memDef(0xdf, 7, N, (c) => storeMem(c, ST_I64, true));
regDef(0xdf, 0x00, 8, N, (c, i) => { const f = c.state.fpu; f.setTag(f.phys(i), TAG_EMPTY); f.pop(); }); // FFREEP
regDef(0xdf, 0x08, 8, N, fxch); // FXCH7
regDef(0xdf, 0x10, 8, N, (c, i) => fstSt(c, i, true)); // FSTP8
regDef(0xdf, 0x18, 8, N, (c, i) => fstSt(c, i, true)); // FSTP9
regDef(0xdf, 0x20, 1, K_NOWAIT, (c) => c.setReg(1, 0, c.state.fpu.statusWord(), 0)); // FNSTSW AX
regDef(0xdf, 0x28, 8, N, (c, i) => fcomi(c, i, true, true));
regDef(0xdf, 0x30, 8, N, (c, i) => fcomi(c, i, false, true));

/**
 * D8-DF: the x87 escape. #NM when CR0.EM or CR0.TS; #UD for undefined encodings; the pending
 * exception check for waiting instructions; the last-instruction pointers; then the handler.
 */
export function x87(c: X86Cpu): void {
  const st = c.state;
  if (st.cr0 & (CR0_EM | CR0_TS)) c.raise(NM_VECTOR, -1);
  const esc = c.opb & 7;
  if (c.mod === 3) {
    const idx = (esc << 6) | ((c.reg & 7) << 3) | (c.rm & 7);
    const kind = REG_KIND[idx];
    if (kind === K_UD) c.raise(UD_VECTOR, -1);
    if (kind !== K_NOWAIT) x87Pending(c);
    if (kind === K_NORMAL) recordIp(c);
    REG_OPS[idx]!(c, c.rm & 7);
    if (kind === K_NORMAL && (st.fpu.sw & SW_ES) !== 0) recordOp(c);
    return;
  }
  const idx = (esc << 3) | (c.reg & 7);
  const kind = MEM_KIND[idx];
  if (kind === K_UD) c.raise(UD_VECTOR, -1);
  if (kind !== K_NOWAIT) x87Pending(c);
  mOff = ea(c);
  if (kind === K_NORMAL) recordIp(c);
  MEM_OPS[idx]!(c);
  if (kind === K_NORMAL && (st.fpu.sw & SW_ES) !== 0) { recordOp(c); recordDp(c); }
}
