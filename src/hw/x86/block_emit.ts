/**
 * Code generation for compiled blocks (block_jit.ts): the hottest 64-bit-mode instruction forms
 * become inline JavaScript with their registers, operation and constants baked in, instead of a
 * call to their handler.
 *
 * Every form is described by a Plan: the arithmetic flags it reads and fully writes, whether it
 * may fault or exit (then it needs the interpreter's view of the machine at that point), whether
 * it ends the block or branches, and an emitter. Flags are kept in the interpreter's lazy-flag
 * record (flags.ts) with exactly the fields the handler would write, so they stay those of the
 * interpreter by construction. block_jit.ts runs a backward liveness pass over the flags with
 * these masks (anything that may fault, exit or call a handler counts as reading every flag: an
 * exception or VM exit saves RFLAGS) and an emitter skips its record when it is dead.
 *
 * The generated code works on `g` (the GPR halves, state.ts), `c` (the CPU) and `st`, with
 * `rip` the block's start and `ic` the retired-instruction count at the start of the current
 * pass. An instruction that cannot fault updates neither RIP nor icount; the block's exits set
 * them. An instruction that can fault does so only on a slow path, which first makes the state
 * exactly what the interpreter would have at that instruction (`sync`): icount, curRip, RIP of
 * the next instruction, and its decoded words.
 */
import { ARITH, CF, PF, ZF, SF, OF, LOP_ADD, LOP_ADC, LOP_SUB, LOP_SBB, LOP_LOGIC, LOP_INC, LOP_DEC } from "./flags.js";
import { SPEC_ALU_RR32, SPEC_ALU_RR64, SPEC_MOV_RR32, SPEC_MOV_RR64, SPEC_INCDEC_R } from "./decode.js";

/** One decoded instruction of the block, with its offsets from the block start. */
export interface BlockInsn {
  w0: number; w1: number; disp: number; imm: number; imm2: number;
  /** Decoded-cache word index of its slot (for the handler's `c.wb`). */
  wb: number;
  /** Offset of its first byte and of the next instruction from the block's first instruction. */
  d: number; next: number;
  /** Position in the block. */
  k: number;
  /** Decoded in 64-bit mode (else 32-bit protected mode, the other mode blocks are compiled in). */
  m64: boolean;
}

/** Emission context handed to each emitter. */
export interface EmitCtx {
  /** Flags live after this instruction (ARITH bits). */
  liveOut: number;
  /** Code that makes the interpreter's state exact before this instruction may fault. */
  sync: string;
  /** Code that leaves the block after this instruction retired (RIP already set by it). */
  leaveAfter: string;
  /** The producer of the flags this instruction sees, when known in this block (for Jcc). */
  producer: Producer | null;
}

/** The last flag writer, by the local names of its operands and result (for fused conditions). */
export interface Producer {
  kind: number; // LOP_*
  q: boolean;   // 64-bit
  d: string; dh: string; s: string; sh: string; r: string; rh: string;
}

export const BR_NONE = 0;
/** Conditional branch: `cc` and `target` (offset from the block start) are set. */
export const BR_COND = 1;
/** Unconditional near jump to `target`. */
export const BR_JMP = 2;
/** Ends the block on its own (CALL, RET, indirect jumps): its code sets RIP and returns. */
export const BR_EXIT = 3;

/**
 * breakLoop value of a taken branch in generated code: only RIP changed, so the run loop may go
 * straight on to a compiled block at the target (cpu.ts chaining). Anything else sets 1.
 */
export const BREAK_BRANCH = 2;

export interface Plan {
  reads: number;
  writes: number;
  fault: boolean;
  br: number;
  cc: number;
  /** Branch target as an offset from the block start. */
  target: number;
  /** Flag producer this instruction becomes (when it writes a complete record), else null. */
  producer: Producer | null;
  /** The code, or null to call the handler instead (same flags and faults as the plan says). */
  emit(x: EmitCtx): string | null;
}


/** Flags each condition code nibble reads (SDM Vol. 1 Table B-1). */
export function condReads(cc: number): number {
  switch (cc >> 1) {
    case 0: return OF;
    case 1: return CF;
    case 2: return ZF;
    case 3: return CF | ZF;
    case 4: return SF;
    case 5: return PF;
    case 6: return SF | OF;
    default: return ZF | SF | OF;
  }
}

/** JS boolean expression for condition `cc`, fused with a known producer where that is simple. */
export function condExpr(cc: number, p: Producer | null): string {
  const neg = (cc & 1) !== 0;
  let e: string | null = null;
  if (p !== null) {
    const z = p.q ? `(${p.r}|${p.rh})===0` : `${p.r}===0`;
    const s = p.q ? `${p.rh}<0` : `${p.r}<0`;
    const sub = p.kind === LOP_SUB;
    const logic = p.kind === LOP_LOGIC;
    const ltu = p.q
      ? `((${p.dh}>>>0)<(${p.sh}>>>0)||(${p.dh}===${p.sh}&&(${p.d}>>>0)<(${p.s}>>>0)))`
      : `((${p.d}>>>0)<(${p.s}>>>0))`;
    const lts = p.q
      ? `(${p.dh}<${p.sh}||(${p.dh}===${p.sh}&&(${p.d}>>>0)<(${p.s}>>>0)))`
      : `(${p.d}<${p.s})`;
    switch (cc >> 1) {
      case 1: if (sub) e = ltu; else if (logic) e = "false"; break;
      case 2: e = z; break;
      case 3: if (sub) e = `(${ltu}||${z})`; else if (logic) e = z; break;
      case 4: e = s; break;
      case 6: if (sub) e = lts; else if (logic) e = s; break;
      case 7: if (sub) e = `(${lts}||${z})`; else if (logic) e = `(${z}||${s})`; break;
      default: break;
    }
  }
  if (e === null) return `cond(c,${cc})`;
  return neg ? `!(${e})` : e;
}

// ---- register helpers (operands in the generated code) ----
export const lo = (r: number): string => `g[${r << 1}]`;
export const hi = (r: number): string => `g[${(r << 1) | 1}]`;
/** Byte register r (0-15); without REX, 4-7 are AH, CH, DH, BH (SDM Vol. 1 3.4.1.1). */
export const rdB = (r: number, rex: number): string => r < 4 || r > 7 || rex ? `(${lo(r)}&255)` : `((${lo(r - 4)}>>>8)&255)`;
export const wrB = (r: number, rex: number, v: string): string => r < 4 || r > 7 || rex
  ? `${lo(r)}=(${lo(r)}&-256)|${v};`
  : `${lo(r - 4)}=(${lo(r - 4)}&-65281)|(${v}<<8);`;

/** Lazy-flag record of a 64-bit ALU result (alu64's fields). */
function rec64(lop: number, d: string, dh: string, s: string, sh: string, r: string, rh: string, cin: string | null): string {
  return `c.lop=${lop};c.lsh=0;c.l64=1;c.ldst=${d};c.ldstH=${dh};c.lsrc=${s};c.lsrcH=${sh};c.lres=${r};c.lresH=${rh};${cin === null ? "" : `c.lcin=${cin};`}`;
}
/** Lazy-flag record of an 8/32-bit ALU result (alu's fields; operands already shifted by lsh). */
function rec32(lop: number, lsh: number, d: string, s: string, r: string, cin: string | null): string {
  return `c.lop=${lop};c.lsh=${lsh};c.l64=0;c.ldst=${d};c.lsrc=${s};c.lres=${r};${cin === null ? "" : `c.lcin=${cin};`}`;
}

export function plan(reads: number, writes: number, fault: boolean, emit: (x: EmitCtx) => string | null,
  producer: Producer | null = null): Plan {
  return { reads, writes, fault, br: BR_NONE, cc: 0, target: 0, producer, emit };
}

/**
 * ALU op (0 ADD 1 OR 2 ADC 3 SBB 4 AND 5 SUB 6 XOR 7 CMP) of register/constant operands into
 * register `dst` (not written for CMP). `s`/`sh` are expressions of the source halves.
 */
export function aluPlan(op: number, q: boolean, dst: number, s: string, sh: string, k: number): Plan {
  return aluCore(op, q ? 64 : 32, lo(dst), hi(dst), s, sh, k,
    (r, rh) => q ? `${lo(dst)}=${r};${hi(dst)}=${rh};` : `${lo(dst)}=${r};${hi(dst)}=0;`);
}

/**
 * ALU op of width 8, 32 or 64 on operand expressions `dv`/`dhv` and `s`/`sh` (8-bit: byte
 * values 0-255), as alu/alu64 do it: 8-bit operands are kept shifted to bit 31 (record lsh 24).
 * `write` stores the result (low half, 32-bit value, or the byte in 0-255) unless the op is CMP.
 */
export function aluCore(op: number, width: number, dv: string, dhv: string, s: string, sh: string, k: number,
  write: (r: string, rh: string) => string): Plan {
  const n = `_${k}`;
  const d = `d${n}`, dh = `dh${n}`, sv = `s${n}`, svh = `sh${n}`, r = `r${n}`, rh = `rh${n}`;
  const q = width === 64;
  const carry = op === 2 || op === 3;
  const lop = [LOP_ADD, LOP_LOGIC, LOP_ADC, LOP_SBB, LOP_LOGIC, LOP_SUB, LOP_LOGIC, LOP_SUB][op];
  const reads = carry ? CF : 0;
  const producer: Producer | null = carry ? null : { kind: lop, q, d, dh, s: sv, sh: svh, r, rh };
  const emit = (x: EmitCtx): string => {
    const live = (x.liveOut & ARITH) !== 0;
    const ci = carry ? `ci${n}` : "0";
    let code = q
      ? `const ${d}=${dv},${dh}=${dhv},${sv}=${s},${svh}=${sh};`
      : width === 8 ? `const ${d}=(${dv})<<24,${sv}=(${s})<<24;` : `const ${d}=${dv},${sv}=${s};`;
    if (carry) code += `const ${ci}=getCF(c);`;
    const cin = width === 8 ? `(${ci}<<24)` : ci;
    if (q) {
      switch (op) {
        case 0: case 2: code += `const t${n}=(${d}>>>0)+(${sv}>>>0)${carry ? `+${ci}` : ""},${r}=t${n}|0,${rh}=(${dh}+${svh}+(t${n}>4294967295?1:0))|0;`; break;
        case 3: case 5: case 7: code += `const t${n}=(${d}>>>0)-(${sv}>>>0)${carry ? `-${ci}` : ""},${r}=t${n}|0,${rh}=(${dh}-${svh}-(t${n}<0?1:0))|0;`; break;
        case 1: code += `const ${r}=${d}|${sv},${rh}=${dh}|${svh};`; break;
        case 4: code += `const ${r}=${d}&${sv},${rh}=${dh}&${svh};`; break;
        default: code += `const ${r}=${d}^${sv},${rh}=${dh}^${svh};`; break;
      }
      if (live) code += rec64(lop, d, dh, sv, svh, r, rh, op === 1 || op === 4 || op === 6 ? null : ci);
    } else {
      switch (op) {
        case 0: case 2: code += `const ${r}=(${d}+${sv}${carry ? `+${cin}` : ""})|0;`; break;
        case 3: case 5: case 7: code += `const ${r}=(${d}-${sv}${carry ? `-${cin}` : ""})|0;`; break;
        case 1: code += `const ${r}=${d}|${sv};`; break;
        case 4: code += `const ${r}=${d}&${sv};`; break;
        default: code += `const ${r}=${d}^${sv};`; break;
      }
      if (live) code += rec32(lop, width === 8 ? 24 : 0, d, sv, r, carry ? ci : null);
    }
    if (op !== 7) code += write(width === 8 ? `(${r}>>>24)` : r, rh);
    return code;
  };
  return plan(reads, ARITH, false, emit, producer);
}

/** INC/DEC of register `r` (incDec: CF kept in fl, record LOP_INC/LOP_DEC). */
function incDecPlan(q: boolean, r: number, dec: boolean, k: number): Plan {
  const n = `_${k}`;
  const d = `d${n}`, dh = `dh${n}`, res = `r${n}`, rh = `rh${n}`;
  const lop = dec ? LOP_DEC : LOP_INC;
  const producer: Producer = { kind: lop, q, d, dh, s: "1", sh: "0", r: res, rh };
  const emit = (x: EmitCtx): string => {
    const live = (x.liveOut & (ARITH & ~CF)) !== 0;
    const cfLive = (x.liveOut & CF) !== 0;
    let code = "";
    // CF is carried through c.fl (flags.ts: an INC/DEC record reads CF from fl).
    if (cfLive) code += `c.fl=(c.fl&-2)|getCF(c);`;
    if (q) {
      code += `const ${d}=${lo(r)},${dh}=${hi(r)},t${n}=(${d}>>>0)${dec ? "-" : "+"}1,${res}=t${n}|0,` +
        `${rh}=(${dh}+(t${n}>4294967295?1:t${n}<0?-1:0))|0;`;
      if (live || cfLive) code += rec64(lop, d, dh, "1", "0", res, rh, null);
      code += `${lo(r)}=${res};${hi(r)}=${rh};`;
    } else {
      code += `const ${d}=${lo(r)},${res}=(${d}${dec ? "-" : "+"}1)|0;`;
      if (live || cfLive) code += rec32(lop, 0, d, "1", res, null);
      code += `${lo(r)}=${res};${hi(r)}=0;`;
    }
    return code;
  };
  // Writes every flag but CF; CF is read (and carried) only when live, so it is a pass-through.
  return plan(0, ARITH & ~CF, false, emit, producer);
}

/**
 * CF and OF of ROL (op 0) / ROR (op 1) from the result's low word `low` and the word holding its
 * sign bit `top` (shift.ts: OF as for a one-bit rotate), merged into fl.
 */
function rotateFlags(op: number, low: string, top: string, u: string): string {
  return (op === 0
    ? `const cf${u}=${low}&1,of${u}=((${top}>>>31)&1)^cf${u};`
    : `const cf${u}=(${top}>>>31)&1,of${u}=cf${u}^((${top}>>>30)&1);`) +
    `flagsSync(c);c.fl=(c.fl&~${CF | OF})|cf${u}|(of${u}<<11);`;
}

/** 64-bit shift/rotate of register `r` by a constant count 1..63 (shift.ts shift64). */
function shift64Plan(op: number, r: number, n: number, k: number): Plan | null {
  const u = `_${k}`;
  const a = `a${u}`, b = `b${u}`, rl = `rl${u}`, rh = `rh${u}`;
  const load = `const ${a}=${lo(r)},${b}=${hi(r)};`;
  // Left/right shifts of the pair by a constant (shl64/shr64/sar64 with n fixed).
  const shl = (m: number): [string, string] => m === 0 ? [a, b] : m < 32 ? [`(${a}<<${m})`, `((${b}<<${m})|(${a}>>>${32 - m}))`] : [`0`, m < 64 ? `(${a}<<${m - 32})` : `0`];
  const shr = (m: number, arith: boolean): [string, string] => m === 0 ? [a, b] : m < 32
    ? [`((${a}>>>${m})|(${b}<<${32 - m}))`, `(${b}${arith ? ">>" : ">>>"}${m})`]
    : [arith ? `(${b}>>${m - 32})` : m < 64 ? `(${b}>>>${m - 32})` : `0`, arith ? `(${b}>>31)` : `0`];
  const bit = (i: number): string => i < 32 ? `((${a}>>>${i})&1)` : `((${b}>>>${i - 32})&1)`;
  const store = `${lo(r)}=${rl};${hi(r)}=${rh};`;
  switch (op) {
    case 0: case 1: { // ROL / ROR: CF and OF only
      const [l1, h1] = op === 0 ? shl(n) : shr(n, false);
      const [l2, h2] = op === 0 ? shr(64 - n, false) : shl(64 - n);
      return plan(0, CF | OF, false, (x) => {
        let code = `${load}const ${rl}=(${l1}|${l2})|0,${rh}=(${h1}|${h2})|0;`;
        if (x.liveOut & (CF | OF)) code += rotateFlags(op, rl, rh, u);
        return code + store;
      });
    }
    case 4: case 6: case 5: case 7: {
      const [l, h] = op === 5 ? shr(n, false) : op === 7 ? shr(n, true) : shl(n);
      const cf = op === 4 || op === 6 ? bit(64 - n) : bit(n - 1);
      return plan(0, ARITH, false, (x) => {
        let code = `${load}const ${rl}=${l}|0,${rh}=${h}|0;`;
        if (x.liveOut & ARITH) {
          const of = op === 5 ? `((${b}>>>31)&1)` : op === 7 ? "0" : `(((${rh}>>>31)&1)^${cf})`;
          code += `setArith(c,szp64(${rl},${rh})|${cf}|(${of}<<11));`;
        }
        return code + store;
      });
    }
    default: return null;
  }
}

/** 32-bit shift/rotate of register `r` by a constant count 1..31 (shift.ts shiftE with w = 32). */
function shift32Plan(op: number, r: number, n: number, k: number): Plan | null {
  const u = `_${k}`;
  const x = `x${u}`, res = `r${u}`;
  const load = `const ${x}=${lo(r)}>>>0;`;
  const store = `${lo(r)}=${res}|0;${hi(r)}=0;`;
  switch (op) {
    case 0: case 1:
      return plan(0, CF | OF, false, (cx) => {
        let code = load + (op === 0 ? `const ${res}=((${x}<<${n})|(${x}>>>${32 - n}))>>>0;` : `const ${res}=((${x}>>>${n})|(${x}<<${32 - n}))>>>0;`);
        if (cx.liveOut & (CF | OF)) code += rotateFlags(op, res, res, u);
        return code + store;
      });
    case 4: case 6: case 5: case 7:
      return plan(0, ARITH, false, (cx) => {
        let code = load;
        let cf: string, of: string;
        if (op === 5) { code += `const ${res}=${x}>>>${n};`; cf = `((${x}>>>${n - 1})&1)`; of = `((${x}>>>31)&1)`; }
        else if (op === 7) { code += `const ${res}=(${x}>>${n})>>>0;`; cf = `((${x}>>${n - 1})&1)`; of = "0"; }
        else { code += `const ${res}=(${x}<<${n})>>>0;`; cf = `((${x}>>>${32 - n})&1)`; of = `(((${res}>>>31)&1)^${cf})`; }
        if (cx.liveOut & ARITH) code += `setArith(c,szp(${res},32)|${cf}|(${of}<<11));`;
        return code + store;
      });
    default: return null;
  }
}

/**
 * IMUL r, r/m(register), imm with the flags dead: the low 64 (or 32) bits of the product. With a
 * live CF/OF (rare in compiled code) the handler runs instead.
 */
function imulImmPlan(q: boolean, dst: number, src: number, imm: number, k: number): Plan {
  const u = `_${k}`;
  return plan(0, ARITH, false, (x) => {
    if (x.liveOut & ARITH) return null;
    if (!q) return `${lo(dst)}=Math.imul(${lo(src)},${imm});${hi(dst)}=0;`;
    if (imm >= -0x100000 && imm <= 0x100000) {
      // lo(src) * imm is exact in a double (|product| < 2^53), so its high word is a floor division.
      return `const p${u}=(${lo(src)}>>>0)*${imm},h${u}=(Math.imul(${hi(src)},${imm})+Math.floor(p${u}/4294967296))|0;` +
        `${lo(dst)}=p${u}|0;${hi(dst)}=h${u};`;
    }
    // Full 32x32 -> 64 of the low halves by 16-bit pieces, plus the cross terms of the high word.
    return `const a${u}=${lo(src)},ah${u}=${hi(src)},bl${u}=${imm},bh${u}=${imm >> 31};` +
      `const m${u}=mulhu(a${u},bl${u});${lo(dst)}=Math.imul(a${u},bl${u});` +
      `${hi(dst)}=(m${u}+Math.imul(ah${u},bl${u})+Math.imul(a${u},bh${u}))|0;`;
  });
}

/** IMUL r, r (0F AF, register form) with the flags dead. */
function imulRRPlan(q: boolean, dst: number, src: number, k: number): Plan {
  const u = `_${k}`;
  return plan(0, ARITH, false, (x) => {
    if (x.liveOut & ARITH) return null;
    if (!q) return `${lo(dst)}=Math.imul(${lo(dst)},${lo(src)});${hi(dst)}=0;`;
    return `const a${u}=${lo(dst)},ah${u}=${hi(dst)},b${u}=${lo(src)},bh${u}=${hi(src)};` +
      `const m${u}=mulhu(a${u},b${u});${lo(dst)}=Math.imul(a${u},b${u});` +
      `${hi(dst)}=(m${u}+Math.imul(ah${u},b${u})+Math.imul(a${u},bh${u}))|0;`;
  });
}

/** High 32 bits of the unsigned product of two 32-bit values (exact, by 16-bit pieces). */
export function mulhu(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
}

/** LEA with 64-bit addressing (mov.ts lea64), into a 64- or 32-bit register. */
function leaPlan(q: boolean, dst: number, base: number, index: number, scale: number, disp: number, next: number, k: number): Plan {
  const u = `_${k}`;
  return plan(0, 0, false, () => {
    let code = "";
    let l = `${disp}`, h = `${disp >> 31}`;
    if (base < 16) {
      code += `const t${u}=${disp >>> 0}+(${lo(base)}>>>0);`;
      l = `(t${u}|0)`; h = `(${disp >> 31}+${hi(base)}+(t${u}>4294967295?1:0))`;
    } else if (base === 16) {
      // RIP-relative: the next instruction's address (canonical, exact) plus the displacement.
      code += `const a${u}=rip+${next}+${disp};`;
      l = `(a${u}|0)`; h = `Math.floor(a${u}/4294967296)`;
    }
    if (index < 16) {
      let il = lo(index), ih = hi(index);
      if (scale) { ih = `((${ih}<<${scale})|(${il}>>>${32 - scale}))`; il = `(${il}<<${scale})`; }
      code += `const l${u}=${l},h${u}=${h},v${u}=(l${u}>>>0)+(${il}>>>0);`;
      l = `(v${u}|0)`; h = `(h${u}+${ih}+(v${u}>4294967295?1:0))`;
    }
    code += `const rl${u}=${l},rh${u}=${q ? `${h}|0` : "0"};${lo(dst)}=rl${u};${hi(dst)}=rh${u};`;
    return code;
  });
}

/**
 * The plan for one instruction, or null when its handler runs instead. Only forms whose
 * semantics here are checked against the handlers (test/hw/x86/block_emit.test.ts) are listed.
 */
export function planInsn(i: BlockInsn): Plan | null {
  const w0 = i.w0, w1 = i.w1;
  const h = w0 & 0x7ff, opb = w0 >>> 24, osz = (w0 >>> 15) & 3;
  const mod = w1 & 3, reg = (w1 >>> 2) & 15, rm = (w1 >>> 6) & 15;
  const q = osz === 3;
  const k = i.k;
  if ((w0 >>> 21) & 1) return null; // LOCK
  switch (h) {
    case SPEC_ALU_RR32: case SPEC_ALU_RR64: {
      const op = (opb >> 3) & 7;
      const dst = opb & 2 ? reg : rm, src = opb & 2 ? rm : reg;
      return aluPlan(op, h === SPEC_ALU_RR64, dst, lo(src), hi(src), k);
    }
    case SPEC_MOV_RR32: case SPEC_MOV_RR64: {
      const dst = opb === 0x89 ? rm : reg, src = opb === 0x89 ? reg : rm;
      const q2 = h === SPEC_MOV_RR64;
      return plan(0, 0, false, () => q2
        ? `{const a=${lo(src)},b=${hi(src)};${lo(dst)}=a;${hi(dst)}=b;}`
        : `${lo(dst)}=${lo(src)};${hi(dst)}=0;`);
    }
    case SPEC_INCDEC_R:
      return incDecPlan(q, rm, (w1 & 4) !== 0, k);
    default: break;
  }
  if (h >= 0x100) {
    // 0F map
    const op2 = h & 0xff;
    if (h >= 0x200) return null;
    if (op2 >= 0x80 && op2 <= 0x8f && osz === (i.m64 ? 3 : 2)) return jccPlan(op2 & 15, i);
    // 0F 1F /0: the multi-byte NOP (its memory operand is never accessed, SDM Vol. 2 NOP).
    if (op2 === 0x1f && (reg & 7) === 0) return plan(0, 0, false, () => "");
    if (op2 === 0xaf && mod === 3 && osz >= 2) return imulRRPlan(q, reg, rm, k);
    if ((op2 === 0xb6 || op2 === 0xb7 || op2 === 0xbe || op2 === 0xbf) && osz >= 2) {
      if (mod === 3) {
        if (op2 === 0xb6 || op2 === 0xbe) {
          // Byte register source: without REX, 4-7 are AH..BH.
          const rex = (w0 >>> 22) & 1;
          const src = rm < 4 || rm > 7 || rex ? `(${lo(rm)}&255)` : `((${lo(rm - 4)}>>>8)&255)`;
          const v = op2 === 0xbe ? `((${src}<<24)>>24)` : src;
          return plan(0, 0, false, () => `{const v=${v};${lo(reg)}=v;${hi(reg)}=${q ? "v>>31" : "0"};}`);
        }
        const v = op2 === 0xbf ? `((${lo(rm)}<<16)>>16)` : `(${lo(rm)}&65535)`;
        return plan(0, 0, false, () => `{const v=${v};${lo(reg)}=v;${hi(reg)}=${q ? "v>>31" : "0"};}`);
      }
      return null;
    }
    if (op2 >= 0x90 && op2 <= 0x9f && mod === 3) {
      // SETcc r/m8 (register form)
      const cc = op2 & 15, rex = (w0 >>> 22) & 1;
      return plan(condReads(cc), 0, false, (x) => `{const v=${condExpr(cc, x.producer)}?1:0;${wrB(rm, rex, "v")}}`);
    }
    if (op2 >= 0x40 && op2 <= 0x4f && mod === 3 && osz >= 2) {
      // CMOVcc r, r: a 32-bit CMOV zero-extends the destination even when the condition is false.
      const cc = op2 & 15;
      return plan(condReads(cc), 0, false, (x) => q
        ? `if(${condExpr(cc, x.producer)}){const a=${lo(rm)},b=${hi(rm)};${lo(reg)}=a;${hi(reg)}=b;}`
        : `if(${condExpr(cc, x.producer)})${lo(reg)}=${lo(rm)};${hi(reg)}=0;`);
    }
    return null;
  }
  switch (opb) {
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
      return osz === (i.m64 ? 3 : 2) ? jccPlan(opb & 15, i) : null;
    case 0xeb: case 0xe9:
      if (osz !== (i.m64 ? 3 : 2)) return null;
      return { ...plan(0, 0, false, () => ""), br: BR_JMP, target: i.next + i.imm };
    case 0x81: case 0x83:
      if (mod !== 3 || osz < 2) return null;
      return aluPlan(reg & 7, q, rm, `${i.imm}`, `${i.imm >> 31}`, k);
    case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d:
      if (osz < 2) return null;
      return aluPlan((opb >> 3) & 7, q, 0, `${i.imm}`, `${i.imm >> 31}`, k);
    case 0x85:
      if (mod !== 3 || osz < 2) return null;
      return testPlan(q, rm, reg, k);
    case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c:
      return aluCore((opb >> 3) & 7, 8, rdB(0, 1), "", `${i.imm & 0xff}`, "", k, (r) => wrB(0, 1, r));
    case 0x00: case 0x08: case 0x10: case 0x18: case 0x20: case 0x28: case 0x30: case 0x38:
    case 0x02: case 0x0a: case 0x12: case 0x1a: case 0x22: case 0x2a: case 0x32: case 0x3a: {
      if (mod !== 3) return null;
      const rex = (w0 >>> 22) & 1;
      const dst = opb & 2 ? reg : rm, src = opb & 2 ? rm : reg;
      return aluCore((opb >> 3) & 7, 8, rdB(dst, rex), "", rdB(src, rex), "", k, (r) => wrB(dst, rex, r));
    }
    case 0x80: {
      if (mod !== 3) return null;
      const rex = (w0 >>> 22) & 1;
      return aluCore(reg & 7, 8, rdB(rm, rex), "", `${i.imm & 0xff}`, "", k, (r) => wrB(rm, rex, r));
    }
    case 0x84: case 0xa8: {
      // TEST r/m8, r8 / TEST AL, imm8: a logical record of the byte (logicFlags with lsh 24).
      if (opb === 0x84 && mod !== 3) return null;
      const rex = (w0 >>> 22) & 1;
      const e = opb === 0xa8 ? `(${rdB(0, 1)}&${i.imm & 0xff})` : `(${rdB(rm, rex)}&${rdB(reg, rex)})`;
      return logicPlan(`const r_${k}=${e}<<24,rh_${k}=0;`, 8, k);
    }
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
      // INC/DEC r32 (one-byte forms outside 64-bit mode, where 40-4F are REX)
      if (i.m64 || osz !== 2) return null;
      return incDecPlan(false, opb & 7, (opb & 8) !== 0, k);
    case 0x63:
      // MOVSXD r64, r/m32 (64-bit mode; ARPL elsewhere); without REX.W a plain 32-bit move.
      if (mod !== 3 || osz < 2 || !i.m64) return null;
      return plan(0, 0, false, () => q ? `{const v=${lo(rm)};${lo(reg)}=v;${hi(reg)}=v>>31;}` : `${lo(reg)}=${lo(rm)};${hi(reg)}=0;`);
    case 0x8d: {
      if (mod === 3 || osz < 2) return null;
      const asz = (w0 >>> 17) & 3;
      if (asz === 2 && !q) {
        // 32-bit addressing into a 32-bit register: operand.ts ea() modulo 2^32.
        const base = (w1 >>> 10) & 31, index = (w1 >>> 15) & 31, scale = (w1 >>> 20) & 3;
        if (base === 16) return null;
        const e = `${i.disp}${base < 16 ? `+${lo(base)}` : ""}${index < 16 ? `+(${lo(index)}<<${scale})` : ""}`;
        return plan(0, 0, false, () => `${lo(reg)}=(${e})|0;${hi(reg)}=0;`);
      }
      if (asz !== 3) return null;
      return leaPlan(q, reg, (w1 >>> 10) & 31, (w1 >>> 15) & 31, (w1 >>> 20) & 3, i.disp, i.next, k);
    }
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf: {
      if (osz < 2) return null;
      const r = (opb & 7) | (rm & 8);
      return plan(0, 0, false, () => `${lo(r)}=${i.imm};${hi(r)}=${q ? i.imm2 : 0};`);
    }
    case 0xc7:
      if (mod !== 3 || osz < 2 || (reg & 7) !== 0) return null;
      return plan(0, 0, false, () => `${lo(rm)}=${i.imm};${hi(rm)}=${q ? i.imm >> 31 : 0};`);
    case 0xc1: case 0xd1: {
      // grp2 r, imm8 / r, 1
      if (mod !== 3 || osz < 2) return null;
      const n = (opb === 0xd1 ? 1 : i.imm) & (q ? 63 : 31);
      if (n === 0) return null;
      return q ? shift64Plan(reg & 7, rm, n, k) : shift32Plan(reg & 7, rm, n, k);
    }
    case 0xf7: {
      // grp3 r: TEST r, imm32; NOT r; NEG r (the multiplies and divides stay with the handler)
      if (mod !== 3 || osz < 2) return null;
      const op = reg & 7;
      if (op === 0) {
        return logicPlan(q ? `const r_${k}=${lo(rm)}&${i.imm},rh_${k}=${hi(rm)}&${i.imm >> 31};` : `const r_${k}=${lo(rm)}&${i.imm},rh_${k}=0;`, q ? 64 : 32, k);
      }
      if (op === 2) return plan(0, 0, false, () => `${lo(rm)}=~${lo(rm)};${hi(rm)}=${q ? `~${hi(rm)}` : "0"};`);
      if (op === 3) {
        return aluCore(5, q ? 64 : 32, "0", "0", lo(rm), hi(rm), k,
          (r, rh) => q ? `${lo(rm)}=${r};${hi(rm)}=${rh};` : `${lo(rm)}=${r};${hi(rm)}=0;`);
      }
      return null;
    }
    case 0xf6: {
      // TEST r8, imm8
      if (mod !== 3 || (reg & 7) !== 0) return null;
      return logicPlan(`const r_${k}=(${rdB(rm, (w0 >>> 22) & 1)}&${i.imm & 0xff})<<24,rh_${k}=0;`, 8, k);
    }
    case 0x6b: case 0x69:
      if (mod !== 3 || osz < 2) return null;
      return imulImmPlan(q, reg, rm, i.imm, k);
    default:
      return null;
  }
}

function testPlan(q: boolean, a: number, b: number, k: number): Plan {
  const u = `_${k}`;
  const r = `r${u}`, rh = `rh${u}`;
  return logicPlan(q ? `const ${r}=${lo(a)}&${lo(b)},${rh}=${hi(a)}&${hi(b)};` : `const ${r}=${lo(a)}&${lo(b)},${rh}=0;`, q ? 64 : 32, k);
}

/**
 * A TEST-like plan: `code` computes r_k/rh_k (8-bit: r_k already shifted to bit 31), recorded
 * as a logical result (alu.ts logicFlags).
 */
export function logicPlan(code: string, width: number, k: number): Plan {
  const u = `_${k}`;
  const r = `r${u}`, rh = `rh${u}`;
  const record = width === 64
    ? `c.lop=${LOP_LOGIC};c.l64=1;c.lsh=0;c.lres=${r};c.lresH=${rh};c.ldst=0;c.lsrc=0;c.ldstH=0;c.lsrcH=0;`
    : `c.lop=${LOP_LOGIC};c.l64=0;c.lsh=${width === 8 ? 24 : 0};c.lres=${r};c.ldst=0;c.lsrc=0;`;
  return plan(0, ARITH, false, (x) => code + (x.liveOut & ARITH ? record : ""),
    { kind: LOP_LOGIC, q: width === 64, d: "0", dh: "0", s: "0", sh: "0", r, rh });
}

function jccPlan(cc: number, i: BlockInsn): Plan {
  return { ...plan(condReads(cc), 0, false, () => ""), br: BR_COND, cc, target: i.next + i.imm };
}
