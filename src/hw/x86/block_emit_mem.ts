/**
 * Compiled-block code for instructions that touch memory (see block_emit.ts for the plan model
 * and the conventions of the generated code): loads, stores and read-modify-writes through the
 * software TLB, the stack forms (PUSH/POP r, CALL rel, RET) and indirect JMP/CALL.
 *
 * Every access does inline exactly what the mmu.ts fast paths do (rd8..wr64: probe the
 * permission tag of the TLB slot, then index the host frame's typed array) and falls back to the
 * generic path (rdS/wrS/rdSW: segment and canonical checks, translation, faults, alignment check,
 * code-page writes) after a sync, so a fault or VM exit sees the interpreter's state. A slow path
 * may set breakLoop (a store into cached code); the instruction then completes and the block ends.
 */
import { ARITH } from "./flags.js";
import { SPEC_MOV_RM } from "./decode.js";
import { TLB_MASK } from "./mmu.js";
import { aluCore, logicPlan, plan, lo, hi, rdB, wrB, BR_EXIT, BREAK_BRANCH } from "./block_emit.js";
import type { BlockInsn, EmitCtx, Plan } from "./block_emit.js";

const TMASK = TLB_MASK;
/** Bytes -> the `sz` code of rdS/wrS (0 byte .. 3 qword). */
const SZ: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };

/**
 * Offset expression of a 64-bit-address-size memory operand (operand.ts ea), or null for the
 * forms left to the handler. RIP-relative operands are relative to the next instruction.
 */
function eaExpr(i: BlockInsn): string | null {
  const w1 = i.w1;
  const base = (w1 >>> 10) & 31, index = (w1 >>> 15) & 31, scale = (w1 >>> 20) & 3;
  const asz = (i.w0 >>> 17) & 3;
  if (!i.m64) {
    // 32-bit addressing in 32-bit protected mode: the offset modulo 2^32 (operand.ts ea).
    if (asz !== 2) return null;
    return `((${i.disp}${base < 16 ? `+${lo(base)}` : ""}${index < 16 ? `+(${lo(index)}<<${scale})` : ""})>>>0)`;
  }
  if (asz !== 3) return null;
  let e = `${i.disp}`;
  if (base < 16) e += `+(${hi(base)}*4294967296+(${lo(base)}>>>0))`;
  else if (base === 16) e += `+rip+${i.next}`;
  if (index < 16) e += `+(${hi(index)}*4294967296+(${lo(index)}>>>0))*${1 << scale}`;
  return e;
}

/**
 * Declares o (offset), la (linear), vp (page) and ti (TLB slot) of an access at offset `e` in
 * segment `seg`: in 64-bit mode only FS/GS have a base; in 32-bit mode every segment's base
 * applies and the linear address wraps at 4 GiB (mmu.ts linAddr).
 */
function addr(u: string, e: string, seg: number, m64: boolean): string {
  const la = m64 ? `o${u}${seg >= 4 ? `+c.effBase[${seg}]` : ""}` : `(o${u}+c.effBase[${seg}])>>>0`;
  return `const o${u}=${e},la${u}=${la},vp${u}=Math.floor(la${u}/4096),ti${u}=vp${u}&${TMASK};`;
}

/**
 * Fast-path condition of an access of `n` bytes on tag array `tag` (tR / tW): in 32-bit mode
 * first the segment checks of linAddr (limits, expand-down, readable/writable), then the TLB hit
 * plus what the typed-array index needs. The slow path repeats the checks and raises.
 */
function hit(u: string, tag: string, n: number, seg: number, m64: boolean): string {
  const lim = m64 ? "" : `o${u}>=c.segLo[${seg}]&&o${u}+${n - 1}<=c.segHi[${seg}]&&(c.segRW[${seg}]&${tag === "tR" ? 1 : 2})!==0&&`;
  const t = `${lim}c.${tag}[ti${u}]===vp${u}`;
  if (n === 1) return t;
  if (n === 2) return `${t}&&(la${u}&4095)!==4095`;
  return `${t}&&(la${u}&${n - 1})===0`;
}

/** Reads the value at the slot into v (and vh for 8 bytes), fast path only. */
function fastRead(u: string, n: number): string {
  if (n === 1) return `v${u}=c.tM8[ti${u}][c.tOff[ti${u}]+(la${u}&4095)];`;
  if (n === 2) return `{const m=c.tM8[ti${u}],p=c.tOff[ti${u}]+(la${u}&4095);v${u}=m[p]|(m[p+1]<<8);}`;
  if (n === 4) return `v${u}=c.tM32[ti${u}][(c.tOff[ti${u}]+(la${u}&4095))>>2];`;
  return `{const m=c.tM32[ti${u}],p=(c.tOff[ti${u}]+(la${u}&4095))>>2;v${u}=m[p];vh${u}=m[p+1];}`;
}

function fastWrite(u: string, n: number, vl: string, vh: string): string {
  if (n === 1) return `c.tM8[ti${u}][c.tOff[ti${u}]+(la${u}&4095)]=${vl};`;
  if (n === 2) return `{const m=c.tM8[ti${u}],p=c.tOff[ti${u}]+(la${u}&4095);m[p]=${vl};m[p+1]=${vl}>>8;}`;
  if (n === 4) return `c.tM32[ti${u}][(c.tOff[ti${u}]+(la${u}&4095))>>2]=${vl};`;
  return `{const m=c.tM32[ti${u}],p=(c.tOff[ti${u}]+(la${u}&4095))>>2;m[p]=${vl};m[p+1]=${vh};}`;
}

/** Load of `n` bytes at offset `e` into v/vh (vh only for 8 bytes). */
export function loadCode(u: string, e: string, seg: number, n: number, x: EmitCtx, m64: boolean): string {
  return addr(u, e, seg, m64) + `let v${u}=0${n === 8 ? `,vh${u}=0` : ""};if(${hit(u, "tR", n, seg, m64)})${fastRead(u, n)}` +
    `else{${x.sync}v${u}=rdS(c,${SZ[n]},${seg},o${u});${n === 8 ? `vh${u}=c.rhi;` : ""}}`;
}

/** Store of `n` bytes at offset `e`. */
export function storeCode(u: string, e: string, seg: number, n: number, vl: string, vh: string, x: EmitCtx, m64: boolean): string {
  return addr(u, e, seg, m64) + `if(${hit(u, "tW", n, seg, m64)})${fastWrite(u, n, vl, vh)}else{${x.sync}wrS(c,${SZ[n]},${seg},o${u},${vl},${n === 8 ? vh : "0"});}`;
}

/** End of an instruction whose slow path (any taken so far: `sl`) may have ended the block (a store into cached code). */
const endCheck = (x: EmitCtx): string => `if(sl!==0&&c.breakLoop!==0)${x.leaveAfter}`;

/**
 * A memory-operand plan: `body` gets the value names of the load (or null names for a pure store)
 * and returns the code after it. reads/writes are the flags of the operation proper.
 */
function memPlan(reads: number, writes: number, emit: (x: EmitCtx) => string, producer: Plan["producer"] = null): Plan {
  return plan(ARITH | reads, writes, true, (x) => emit(x) + endCheck(x), producer);
}

/**
 * Read-modify-write of a 4/8-byte operand: the translation is checked for writing before the read
 * (operand.ts rdERmw), `op` computes from v/vh and calls `write(r, rh)` for the result.
 */
function rmwCode(u: string, e: string, seg: number, n: number, x: EmitCtx, m64: boolean, op: (v: string, vh: string, write: (r: string, rh: string) => string) => string): string {
  const f = `f${u}`;
  let code = addr(u, e, seg, m64) + `const ${f}=${hit(u, "tW", n, seg, m64)};let v${u}=0,vh${u}=0;if(${f})${fastRead(u, n)}` +
    `else{${x.sync}v${u}=rdSW(c,${SZ[n]},${seg},o${u});${n === 8 ? `vh${u}=c.rhi;` : ""}}`;
  code += op(`v${u}`, `vh${u}`, (r, rh) => `if(${f})${fastWrite(u, n, r, rh)}else wrS(c,${SZ[n]},${seg},o${u},${r},${n === 8 ? rh : "0"});`);
  return code;
}

/** The exit of an instruction that transfers control to `t` (a number variable) after it retired. */
function jumpTo(t: string, x: EmitCtx): string {
  return `if(${t}<-c.canon||${t}>=c.canon){${x.sync}c.raise(13,0);}${x.leaveAfter.replace("return;", `st.rip=${t};c.breakLoop=${BREAK_BRANCH};return;`)}`;
}

/** RSP as a number (operand.ts getSp in 64-bit mode). */
const RSP = `(g[9]*4294967296+(g[8]>>>0))`;
/** Writes a number back to RSP (setRegAddr with a 64-bit address size). */
const setRsp = (v: string): string => `g[8]=${v}|0;g[9]=Math.floor(${v}/4294967296)|0;`;

/** PUSH of the 64-bit value vl/vh: the store happens before RSP changes, so a fault leaves RSP intact. */
function pushCode(u: string, vl: string, vh: string, x: EmitCtx): string {
  return `const sp${u}=${RSP}-8;` + storeCode(u, `sp${u}`, 2, 8, vl, vh, x, true) + setRsp(`sp${u}`);
}

/** The plan for an instruction with a memory operand or a stack/indirect-branch form, or null. */
export function planMemInsn(i: BlockInsn): Plan | null {
  const w0 = i.w0, w1 = i.w1;
  const h = w0 & 0x7ff, opb = w0 >>> 24, osz = (w0 >>> 15) & 3;
  const mod = w1 & 3, reg = (w1 >>> 2) & 15, rm = (w1 >>> 6) & 15;
  const rex = (w0 >>> 22) & 1;
  const q = osz === 3, n = q ? 8 : 4;
  const u = `_${i.k}`;
  const m64 = i.m64;
  if ((w0 >>> 21) & 1) return null; // LOCK
  const seg = (w1 >>> 22) & 7;
  const e = mod === 3 ? null : eaExpr(i);
  // Register-destination forms with a memory source need no REP/segment subtleties beyond eaExpr.
  if (h === SPEC_MOV_RM) {
    if (e === null) return null;
    if (opb === 0x8b) return memPlan(0, 0, (x) => loadCode(u, e, seg, n, x, m64) + `${lo(reg)}=v${u};${hi(reg)}=${q ? `vh${u}` : "0"};`);
    return memPlan(0, 0, (x) => storeCode(u, e, seg, n, lo(reg), hi(reg), x, m64));
  }
  if (h >= 0x100) {
    if (h >= 0x200 || mod === 3 || e === null || osz < 2) return null;
    const op2 = h & 0xff;
    if (op2 === 0xb6 || op2 === 0xb7 || op2 === 0xbe || op2 === 0xbf) {
      // MOVZX/MOVSX r, m8/m16
      const nb = op2 & 1 ? 2 : 1;
      const ext = op2 & 8 ? (nb === 1 ? `((v${u}<<24)>>24)` : `((v${u}<<16)>>16)`) : `v${u}`;
      return memPlan(0, 0, (x) => loadCode(u, e, seg, nb, x, m64) + `{const v=${ext};${lo(reg)}=v;${hi(reg)}=${q ? "v>>31" : "0"};}`);
    }
    return null;
  }
  switch (opb) {
    case 0x63: // MOVSXD r64, m32 (ARPL outside 64-bit mode)
      if (e === null || osz < 2 || !m64) return null;
      return memPlan(0, 0, (x) => loadCode(u, e, seg, 4, x, m64) + `${lo(reg)}=v${u};${hi(reg)}=${q ? `v${u}>>31` : "0"};`);
    case 0x8a: case 0x88: // MOV r8 <-> m8
      if (e === null) return null;
      if (opb === 0x8a) return memPlan(0, 0, (x) => loadCode(u, e, seg, 1, x, m64) + wrB(reg, rex, `v${u}`));
      return memPlan(0, 0, (x) => storeCode(u, e, seg, 1, rdB(reg, rex), "0", x, m64));
    case 0xc6: // MOV m8, imm8
      if (e === null || (reg & 7) !== 0) return null;
      return memPlan(0, 0, (x) => storeCode(u, e, seg, 1, `${i.imm & 0xff}`, "0", x, m64));
    case 0xc7: // MOV m32/m64, imm32 (sign-extended)
      if (e === null || (reg & 7) !== 0 || osz < 2) return null;
      return memPlan(0, 0, (x) => storeCode(u, e, seg, n, `${i.imm}`, `${i.imm >> 31}`, x, m64));
    case 0x03: case 0x0b: case 0x13: case 0x1b: case 0x23: case 0x2b: case 0x33: case 0x3b: {
      // op Gv, Ev with a memory source: the load, then the register operation on the loaded value.
      if (e === null || osz < 2) return null;
      const a = aluCore((opb >> 3) & 7, q ? 64 : 32, lo(reg), hi(reg), `v${u}`, q ? `vh${u}` : "0", i.k,
        (r, rh) => q ? `${lo(reg)}=${r};${hi(reg)}=${rh};` : `${lo(reg)}=${r};${hi(reg)}=0;`);
      return memPlan(a.reads, a.writes, (x) => loadCode(u, e, seg, n, x, m64) + a.emit(x)!, a.producer);
    }
    case 0x01: case 0x09: case 0x11: case 0x19: case 0x21: case 0x29: case 0x31: case 0x39:
    case 0x81: case 0x83: {
      // op Ev, Gv / op Ev, imm with a memory destination: CMP only reads, the rest read-modify-write.
      if (e === null || osz < 2) return null;
      const op = opb < 0x40 ? (opb >> 3) & 7 : reg & 7;
      const sl = opb < 0x40 ? lo(reg) : `${i.imm}`, sh = opb < 0x40 ? hi(reg) : `${i.imm >> 31}`;
      const a = aluCore(op, q ? 64 : 32, `v${u}`, `vh${u}`, sl, q ? sh : "0", i.k, () => "");
      if (op === 7) return memPlan(a.reads, a.writes, (x) => loadCode(u, e, seg, n, x, m64) + a.emit(x)!, a.producer);
      return memPlan(a.reads, a.writes, (x) => rmwCode(u, e, seg, n, x, m64, (v, vh, write) => {
        const w = aluCore(op, q ? 64 : 32, v, vh, sl, q ? sh : "0", i.k, write);
        return w.emit(x)!;
      }), a.producer);
    }
    case 0x85: { // TEST m, r
      if (e === null || osz < 2) return null;
      const t = logicPlan(q ? `const r${u}=v${u}&${lo(reg)},rh${u}=vh${u}&${hi(reg)};` : `const r${u}=v${u}&${lo(reg)},rh${u}=0;`, q ? 64 : 32, i.k);
      return memPlan(0, ARITH, (x) => loadCode(u, e, seg, n, x, m64) + t.emit(x)!, t.producer);
    }
    case 0xf7: case 0xf6: { // TEST m, imm
      if (e === null || (reg & 7) !== 0 || (opb === 0xf7 && osz < 2)) return null;
      const nb = opb === 0xf6 ? 1 : n;
      const t = nb === 1
        ? logicPlan(`const r${u}=(v${u}&${i.imm & 0xff})<<24,rh${u}=0;`, 8, i.k)
        : logicPlan(q ? `const r${u}=v${u}&${i.imm},rh${u}=vh${u}&${i.imm >> 31};` : `const r${u}=v${u}&${i.imm},rh${u}=0;`, q ? 64 : 32, i.k);
      return memPlan(0, ARITH, (x) => loadCode(u, e, seg, nb, x, m64) + t.emit(x)!, t.producer);
    }
    case 0x80: { // CMP m8, imm8 (the other byte RMW forms go to the handler)
      if (e === null || (reg & 7) !== 7) return null;
      const a = aluCore(7, 8, `v${u}`, "", `${i.imm & 0xff}`, "", i.k, () => "");
      return memPlan(a.reads, a.writes, (x) => loadCode(u, e, seg, 1, x, m64) + a.emit(x)!, a.producer);
    }
    case 0x38: case 0x3a: { // CMP m8, r8 / CMP r8, m8
      if (e === null) return null;
      const a = opb === 0x38
        ? aluCore(7, 8, `v${u}`, "", rdB(reg, rex), "", i.k, () => "")
        : aluCore(7, 8, rdB(reg, rex), "", `v${u}`, "", i.k, () => "");
      return memPlan(a.reads, a.writes, (x) => loadCode(u, e, seg, 1, x, m64) + a.emit(x)!, a.producer);
    }
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57: {
      if (osz !== 3 || !m64) return null;
      const r = (opb & 7) | (rm & 8);
      return memPlan(0, 0, (x) => `const a${u}=${lo(r)},b${u}=${hi(r)};` + pushCode(u, `a${u}`, `b${u}`, x));
    }
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f: {
      if (osz !== 3 || !m64) return null;
      const r = (opb & 7) | (rm & 8);
      // operand.ts pop: RSP moves after the read; POP RSP then loads the popped value.
      return memPlan(0, 0, (x) => `const sp${u}=${RSP};` + loadCode(u, `sp${u}`, 2, 8, x, true) +
        `{const t=sp${u}+8;${setRsp("t")}}${lo(r)}=v${u};${hi(r)}=vh${u};`);
    }
    case 0xe8: { // CALL rel32: target checked before the push (branch.ts callRel)
      if (osz !== 3 || !m64) return null;
      return exitPlan((x) => `const t${u}=rip+${i.next + i.imm};if(t${u}<-c.canon||t${u}>=c.canon){${x.sync}c.raise(13,0);}` +
        `const ra${u}=rip+${i.next};` + pushCode(u, `(ra${u}|0)`, `(Math.floor(ra${u}/4294967296)|0)`, x) + jumpTo(`t${u}`, x));
    }
    case 0xc3: { // RET: the target is checked before RSP moves (branch.ts retNear)
      if (osz !== 3 || !m64) return null;
      return exitPlan((x) => `const sp${u}=${RSP};` + loadCode(u, `sp${u}`, 2, 8, x, true) +
        `const t${u}=vh${u}*4294967296+(v${u}>>>0);if(t${u}<-c.canon||t${u}>=c.canon){${x.sync}c.raise(13,0);}` +
        `{const t=sp${u}+8;${setRsp("t")}}` + jumpTo(`t${u}`, x));
    }
    case 0xff: {
      // FF /2 CALL r/m64, FF /4 JMP r/m64
      const op = reg & 7;
      if ((op !== 2 && op !== 4) || osz !== 3 || !m64) return null;
      if (mod !== 3 && e === null) return null;
      const target = (x: EmitCtx): string => mod === 3
        ? `const t${u}=${hi(rm)}*4294967296+(${lo(rm)}>>>0);`
        : loadCode(u, e!, seg, 8, x, m64) + `const t${u}=vh${u}*4294967296+(v${u}>>>0);`;
      if (op === 4) return exitPlan((x) => target(x) + jumpTo(`t${u}`, x));
      return exitPlan((x) => target(x) + `if(t${u}<-c.canon||t${u}>=c.canon){${x.sync}c.raise(13,0);}` +
        `const ra${u}=rip+${i.next};` + pushCode(`${u}s`, `(ra${u}|0)`, `(Math.floor(ra${u}/4294967296)|0)`, x) + jumpTo(`t${u}`, x));
    }
    default:
      return null;
  }
}

/** A plan that ends the block itself (its code sets RIP, the count and returns). */
function exitPlan(emit: (x: EmitCtx) => string): Plan {
  return { ...plan(ARITH, 0, true, emit), br: BR_EXIT, target: -1 };
}
