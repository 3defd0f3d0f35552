/**
 * Compiled blocks: a straight run of decoded 64-bit-mode instructions (up to 64, in one 4 KiB
 * page, through not-taken branches) turned into one JS function, entered by the run loop (cpu.ts
 * `loop`) once its first instruction has been a block start `blockJit.hot` times.
 *
 * Each instruction either has a Plan (block_emit.ts, block_emit_mem.ts: inline code with its
 * registers, operation and constants baked in) or calls its handler exactly as the interpreter
 * would, after a sync of the state a handler may look at:
 *
 *   c.icount = ic + k; c.curRip = rip + d; c.w0 = W0; c.w1 = W1; c.wb = B; st.rip = rip + d';
 *   h_k(c); if (c.breakLoop !== 0 || st.rip !== rip + d') { c.icount = ic + k + 1; return; }
 *
 * (each handler in a closure variable of its own, so every call site is monomorphic). Inline
 * code updates neither RIP nor the count: the block's exits set them, and a slow path that may
 * fault or exit syncs first, so faults (curRip, the faulting instruction not counted), VM exits
 * and block ends (`breakLoop`) stay exact. A block runs only when the budget (`stop`) covers all
 * of it, else the interpreter takes those instructions one by one; a block branching to its own
 * start loops inside its function (host interrupt word checked each pass). Taken branches leave
 * with breakLoop = BREAK_BRANCH so the run loop can chain to the next compiled block. Arithmetic
 * flags: see flagLiveness and blockSource below.
 *
 * The functions are built with `new Function` (available in Node and browsers unless a Content
 * Security Policy forbids 'unsafe-eval': construction then throws EvalError and compilation turns
 * itself off). They are shared by source text, which holds offsets from the block's start rather
 * than addresses, so the same code elsewhere reuses one function.
 *
 * Validity: a block hangs off its first instruction's decoded-cache slot (so it is found only
 * while that slot holds the same host-physical address and decode mode) and lies inside one
 * 4 KiB page, i.e. one 4096-slot region of the decoded cache. Each region has a generation,
 * bumped whenever one of its slots is dropped (invalidateCode: a write into cached code) or
 * overwritten by another frame's instruction (decode.ts); a block records the generation it was
 * built under and is used only while it still matches, so its baked words and the cache slots
 * its handlers read (disp/imm via `wb`) agree. 64-bit mode and 32-bit protected mode are
 * compiled (without TF/RF/shadows/debug registers: the run loop's fast path); block_emit*.ts
 * generate code for fewer forms in 32-bit mode (no stack or indirect transfers).
 */
import type { X86Cpu } from "./cpu.js";
import type { X86State } from "./state.js";
import { HANDLERS, DCACHE_SIZE, DW } from "./decode.js";
import { ARITH, cond, getCF, flagsSync, setArith, szp, szp64 } from "./flags.js";
import { rdS, rdSW, wrS } from "./mmu.js";
import { planInsn, mulhu, condExpr, BR_NONE, BR_COND, BR_EXIT, BREAK_BRANCH } from "./block_emit.js";
import { planMemInsn } from "./block_emit_mem.js";
import type { BlockInsn, Plan, Producer } from "./block_emit.js";

/** A compiled block: runs from `rip` (its first instruction) until `stop` retired, a block end, or its last instruction. */
export type BlockFn = (c: X86Cpu, st: X86State, rip: number, stop: number) => void;

/** Switches of the block compiler (process-wide; read when a block is entered). */
export const blockJit = {
  /** Compile hot blocks; false: interpreter only (see bench/RESULTS.md "Compiled blocks"). */
  enabled: true,
  /**
   * Entries of a block start seen by the interpreter before it is compiled. Building a block
   * (planning, source, new Function, V8's own compilation) costs about what a thousand
   * interpreted entries do: at 16, compilation was a quarter of a Linux boot's CPU time; boot to
   * shell 44 s at 16, 27 s at 200, 24 s at 800-2000, 27 s at 6000 (bench/RESULTS.md).
   */
  hot: 1000,
  /** Blocks shorter than this many instructions are not compiled (with inline code even one pays). */
  minInsns: 1,
  /** Generate inline code for the forms block_emit.ts knows; false: every instruction calls its handler. */
  emit: true,
  /** Blocks compiled so far in this process (a count for tests and profiling). */
  compiled: 0,
};

const REGION_SHIFT = 12;
/** Most instructions in one compiled block (the run loop cuts blocks at 64 anyway). */
const MAX_INSNS = 64;

/** Word 6 of a decoded-cache slot: the compiled block starting there (> 0: index in BlockCache.table), 0 none yet, below 0 entry count, or NO_BLOCK. */
export const DW_BLOCK = 6;
/** Word 7 of a decoded-cache slot: the region generation its block was built under. */
export const DW_BLOCK_GEN = 7;
/** DW_BLOCK value of a block start too short to compile (kept until the slot is decoded again). */
export const NO_BLOCK = -0x7fffffff;
/** Most distinct block functions one CPU indexes before its table starts over. */
const TABLE_MAX = 1 << 16;

/**
 * Per-CPU compiled blocks. The decoded-cache slot of a block's first instruction holds the
 * block's index and the generation of its region (words DW_BLOCK, DW_BLOCK_GEN), so looking a
 * block up costs the run loop one load from a cache line it reads anyway; decode.ts clears both
 * words whenever it fills a slot.
 */
export class BlockCache {
  /** Index 0 is unused (0 means "no block"). */
  table: BlockFn[] = [];
  private readonly index = new Map<BlockFn, number>();
  /** Per 4096-slot region of the decoded cache: bumped when one of its slots is dropped or replaced. */
  readonly regionGen = new Int32Array(DCACHE_SIZE >>> REGION_SHIFT);

  /** The decoded-cache slots of region `ci >> 12` changed: every block built on them is stale. */
  invalidateRegion(ci: number): void {
    this.regionGen[ci >>> REGION_SHIFT]++;
  }

  /** Index (>= 1) of `fn` in the table, adding it; a full table is emptied first (every slot's index dropped). */
  indexOf(fn: BlockFn, dcW: Int32Array): number {
    let i = this.index.get(fn);
    if (i !== undefined) return i;
    if (this.table.length >= TABLE_MAX) {
      // Start over: forget every slot's block index (the functions stay shared by source).
      for (let b = DW_BLOCK; b < DCACHE_SIZE * DW; b += DW) if (dcW[b] > 0) dcW[b] = 0;
      this.table = [];
      this.index.clear();
    }
    if (this.table.length === 0) this.table.push(fn); // placeholder for index 0, never called
    i = this.table.length;
    this.table.push(fn);
    this.index.set(fn, i);
    return i;
  }

  /** Number of decoded-cache slots that currently start a compiled block (tests, profiling). */
  static compiledSlots(dcW: Int32Array): number {
    let n = 0;
    for (let b = DW_BLOCK; b < DCACHE_SIZE * DW; b += DW) if (dcW[b] > 0) n++;
    return n;
  }
}

const shared = new Map<string, BlockFn>();
/** Bound on the shared functions kept (their source text and code); past it the table starts over. */
const SHARED_MAX = 16384;

/** Runtime helpers the generated code calls (passed once per function, by name). */
const HELPERS: [string, unknown][] = [
  ["cond", cond], ["getCF", getCF], ["flagsSync", flagsSync], ["setArith", setArith], ["szp", szp], ["szp64", szp64],
  ["mulhu", mulhu], ["rdS", rdS], ["rdSW", rdSW], ["wrS", wrS],
];

/**
 * Build the block starting at decoded-cache slot `ci0` (key `key0`) from the instructions already
 * decoded after it in the same page and records it in that slot (DW_BLOCK/DW_BLOCK_GEN).
 * Returns false when the block is too short (the slot is marked NO_BLOCK) or compilation is
 * unavailable.
 */
export function compileBlock(c: X86Cpu, ci0: number, key0: number): boolean {
  const bc = c.blocks;
  const dcTag = c.dcTag, dcW = c.dcW;
  const off0 = ci0 & 4095;
  const region = ci0 - off0;
  const keyBase = key0 - off0 * 8;
  const insns: BlockInsn[] = [];
  const plans: (Plan | null)[] = [];
  let d = 0;
  let off = off0;
  while (insns.length < MAX_INSNS && off < 4096 && dcTag[region | off] === keyBase + off * 8) {
    const b = (region | off) * DW;
    const w0 = dcW[b];
    const len = (w0 >>> 11) & 15;
    const i: BlockInsn = { w0, w1: dcW[b + 1], disp: dcW[b + 2], imm: dcW[b + 3], imm2: dcW[b + 4], wb: b, d, next: d + len, k: insns.length, m64: c.m64 !== 0 };
    const p = blockJit.emit ? planInsn(i) ?? planMemInsn(i) : null;
    insns.push(i);
    plans.push(p);
    d += len;
    off += len;
    if (p !== null && p.br !== BR_NONE && p.br !== BR_COND) break; // nothing after an unconditional transfer runs
  }
  const n = insns.length;
  if (n < blockJit.minInsns) {
    // Remembered as "no block here" until the slot is decoded again, so it is not retried.
    dcW[ci0 * DW + DW_BLOCK] = NO_BLOCK;
    return false;
  }
  const src = blockSource(insns, plans, off0, c.m64 !== 0);
  let fn = shared.get(src);
  if (fn === undefined) {
    try {
      fn = (new Function("H", ...HELPERS.map((h) => h[0]), src) as (...a: unknown[]) => BlockFn)(HANDLERS, ...HELPERS.map((h) => h[1]));
    } catch (e) {
      if (!(e instanceof EvalError)) throw e;
      // No eval in this environment (CSP): keep interpreting.
      blockJit.enabled = false;
      return false;
    }
    if (shared.size >= SHARED_MAX) shared.clear();
    shared.set(src, fn);
  }
  blockJit.compiled++;
  const idx = bc.indexOf(fn, dcW);
  dcW[ci0 * DW + DW_BLOCK] = idx;
  dcW[ci0 * DW + DW_BLOCK_GEN] = bc.regionGen[ci0 >>> REGION_SHIFT];
  return true;
}

/**
 * Backward liveness of the arithmetic flags: liveOut[k] are the flags some later reader (an
 * instruction, an exit of the block, a fault) may observe after instruction k. A branch back to
 * the block's start sees the start's live-in, found by iterating to a fixed point.
 */
export function flagLiveness(plans: (Plan | null)[]): number[] {
  const n = plans.length;
  const liveOut = new Array<number>(n).fill(ARITH);
  let in0 = 0;
  for (let round = 0; round < 8; round++) {
    let live = ARITH; // falling out of the block's end
    for (let k = n - 1; k >= 0; k--) {
      const p = plans[k];
      if (p !== null && p.br !== BR_NONE) {
        const taken = p.target === 0 ? in0 : ARITH;
        live = p.br === BR_COND ? live | taken : taken;
      }
      liveOut[k] = live;
      if (p === null || p.fault) live = ARITH;
      else live = (live & ~p.writes) | p.reads;
    }
    if (live === in0) break;
    in0 = live;
  }
  return liveOut;
}

/** Source of the block function (see block_emit.ts for the conventions of the generated code). */
function blockSource(insns: BlockInsn[], plans: (Plan | null)[], off0: number, m64: boolean): string {
  const n = insns.length;
  // A target in the block's own page is canonical (so is the whole page): no #GP check needed.
  const samePage = (target: number): boolean => off0 + target >= 0 && off0 + target < 4096;
  // A near branch target: 64-bit mode, canonical (#GP); 32-bit mode, EIP modulo 2^32 within the
  // CS limit (#GP; branch.ts branchTo).
  const target = (off: number, sync: string): string => m64
    ? `const t=rip+${off};${samePage(off) ? "" : `if(t<-c.canon||t>=c.canon){${sync}c.raise(13,0);}`}`
    : `const t=(rip+${off})>>>0;if(t>c.segHi[1]){${sync}c.raise(13,0);}`;
  const liveOut = flagLiveness(plans);
  const loops = plans.some((p) => p !== null && p.br !== BR_NONE && p.target === 0);
  const hIdx: number[] = [];
  let body = "";
  let producer: Producer | null = null;
  for (let k = 0; k < n; k++) {
    const i = insns[k], p = plans[k];
    // The interpreter's view before this instruction (what a fault, exit or handler sees).
    const sync = `sl=1;c.icount=ic+${k};c.curRip=rip+${i.d};c.w0=${i.w0};c.w1=${i.w1};c.wb=${i.wb};st.rip=rip+${i.next};`;
    const leaveAfter = `{c.icount=ic+${k + 1};return;}`;
    const code = p === null ? null : p.emit({ liveOut: liveOut[k], sync, leaveAfter, producer });
    if (code === null) {
      const h = i.w0 & 0x7ff;
      let hv = hIdx.indexOf(h);
      if (hv < 0) { hv = hIdx.length; hIdx.push(h); }
      body += `${sync}h${hv}(c);if(c.breakLoop!==0||st.rip!==rip+${i.next}){c.icount=ic+${k + 1};return;}\n`;
      producer = null;
      continue;
    }
    body += code;
    if (p!.br === BR_EXIT) body += "\n";
    else if (p!.br !== BR_NONE) {
      const taken = p!.target === 0
        ? `ic+=${k + 1};if(ic+${n}>stop||c.hostIrq[0]!==0){c.icount=ic;st.rip=rip;c.breakLoop=1;return;}continue;`
        : target(p!.target, sync) + `c.icount=ic+${k + 1};st.rip=t;c.breakLoop=${BREAK_BRANCH};return;`;
      body += p!.br === BR_COND ? `if(${condExpr(p!.cc, producer)}){${taken}}\n` : `{${taken}}\n`;
    } else body += "\n";
    if (p!.producer !== null) producer = p!.producer;
    else if (p!.writes !== 0) producer = null;
  }
  const last = plans[n - 1];
  const tail = last !== null && last.br !== BR_NONE && last.br !== BR_COND ? "" : `c.icount=ic+${n};st.rip=rip+${insns[n - 1].next};return;\n`;
  // 32-bit mode: the block runs only while all of it lies within the CS limit (the interpreter's
  // fetch checks each instruction against it: cpu.ts fetchDecode); the EIPs cannot wrap, since
  // fLo is only kept for pages that do not (cpu.ts fetchPage).
  const limit = m64 ? "" : `||rip+${insns[n - 1].next - 1}>c.csLim`;
  const head = `const g=st.gpr;let ic=c.icount,sl=0;if(ic+${n}>stop${limit})return;\n`;
  const fnBody = loops ? `${head}for(;;){\n${body}${tail}}` : head + body + tail;
  return `${hIdx.map((h, i) => `const h${i}=H[${h}];`).join("")}\nreturn function blk(c,st,rip,stop){\n${fnBody}};`;
}
