/**
 * Compiled blocks: a straight run of decoded 64-bit-mode instructions turned into one JS
 * function, so the run loop's per-instruction work (decoded-cache probe, copy of the packed
 * words, indirect call through HANDLERS) is done once at compile time. Each instruction becomes
 *
 *   c.curRip = rip + d; c.w0 = W0; c.w1 = W1; c.wb = B; st.rip = rip + d'; h_k(c);
 *   if (++c.icount >= stop || c.breakLoop !== 0 || st.rip !== rip + d') return;
 *
 * with its packed words as constants and its handler in a closure variable of its own, so every
 * call site sees a single target (monomorphic, inlinable). The sequence is exactly what the
 * interpreter loop (cpu.ts `loop`) does per instruction, so faults (curRip, icount unchanged for
 * the faulting one), VM exits, the budget (`stop`) and block ends (`breakLoop`) stay exact; the
 * RIP check also ends the block if a handler moved RIP without setting breakLoop.
 *
 * The functions are built with `new Function` (available in Node and browsers unless a Content
 * Security Policy forbids 'unsafe-eval'; then set `blockJit.enabled = false`, or construction
 * fails and compilation turns itself off). They are shared by source text, which names handler
 * indices and constants only, so the same code at another address reuses one function.
 *
 * Validity: a block hangs off its first instruction's decoded-cache slot (so it is found only
 * while that slot holds the same host-physical address and decode mode) and lies inside one
 * 4 KiB page, i.e. one 4096-slot region of the decoded cache. Each region has a generation, bumped whenever one of its slots is dropped
 * (invalidateCode: a write into cached code) or overwritten by another frame's instruction
 * (decode.ts); a block records the generation it was built under and is used only while it still
 * matches, so its baked words and the cache slots its handlers read (disp/imm via `wb`) agree.
 * Only 64-bit mode without TF/RF/shadows/debug registers is compiled (the run loop's fast path).
 */
import type { X86Cpu } from "./cpu.js";
import type { X86State } from "./state.js";
import { HANDLERS, DCACHE_SIZE, DW } from "./decode.js";
import type { Handler } from "./decode.js";

/** A compiled block: runs from `rip` (its first instruction) until `stop` retired, a block end, or its last instruction. */
export type BlockFn = (c: X86Cpu, st: X86State, rip: number, stop: number) => void;

/** Switches of the block compiler (process-wide; read when a block is entered). */
export const blockJit = {
  /**
   * Compile hot blocks; false: interpreter only. Off by default: measured +10 % on int but -5 %
   * on branchy (short blocks), see bench/RESULTS.md "Compiled blocks".
   */
  enabled: false,
  /** Entries of a block start seen by the interpreter before it is compiled. */
  hot: 16,
  /** Blocks shorter than this many instructions are not compiled (nothing to gain). */
  minInsns: 3,
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
  const hIdx: number[] = [];
  let body = "";
  let d = 0;
  let off = off0;
  let n = 0;
  while (n < MAX_INSNS && off < 4096 && dcTag[region | off] === keyBase + off * 8) {
    const b = (region | off) * DW;
    const w0 = dcW[b], w1 = dcW[b + 1];
    const len = (w0 >>> 11) & 15;
    const h = w0 & 0x7ff;
    let hv = hIdx.indexOf(h);
    if (hv < 0) { hv = hIdx.length; hIdx.push(h); }
    const next = d + len;
    body += `c.curRip=${d === 0 ? "rip" : `rip+${d}`};c.w0=${w0};c.w1=${w1};c.wb=${b};st.rip=rip+${next};h${hv}(c);` +
      `if(++c.icount>=stop||c.breakLoop!==0||st.rip!==rip+${next})return;\n`;
    d = next;
    off += len;
    n++;
  }
  if (n < blockJit.minInsns) {
    // Remembered as "no block here" until the slot is decoded again, so it is not retried.
    dcW[ci0 * DW + DW_BLOCK] = NO_BLOCK;
    return false;
  }
  const src = `${hIdx.map((h, i) => `const h${i}=H[${h}];`).join("")}\nreturn function blk(c,st,rip,stop){\n${body}};`;
  let fn = shared.get(src);
  if (fn === undefined) {
    try {
      fn = (new Function("H", src) as (h: Handler[]) => BlockFn)(HANDLERS);
    } catch {
      // No eval in this environment (CSP): keep interpreting.
      blockJit.enabled = false;
      return false;
    }
    if (shared.size >= SHARED_MAX) shared.clear();
    shared.set(src, fn);
  }
  const idx = bc.indexOf(fn, dcW);
  dcW[ci0 * DW + DW_BLOCK] = idx;
  dcW[ci0 * DW + DW_BLOCK_GEN] = bc.regionGen[ci0 >>> REGION_SHIFT];
  return true;
}
