/**
 * Seeded, reproducible random instruction sequences for the differential tests.
 *
 * A case is one flat image run at CPL 3 under long mode (where kvm_pvm runs guest code
 * natively), in 64-bit mode or in compatibility mode (32-bit code): identity page tables, then
 * `blocks` blocks of random integer instructions (ALU, shifts and
 * rotates, mul/div with guarded divisors, bit ops, stack ops, string ops with small counts,
 * cmov/setcc, lea, moves and extensions, forward conditional branches) in 8/16/32/64-bit operand sizes (8/16/32 in
 * compatibility mode) and 32/64-bit address sizes. Each block ends with an MMIO write of its number to EXIT_MMIO, so the architectural
 * state is compared at every block boundary; the last write goes to STOP_MMIO.
 *
 * Rules that keep both sides comparable:
 * - memory operands are RBP-relative inside the data page (RBP is never written) or stack
 *   operations inside the stack page (push depth tracked); string ops use small counts with
 *   RSI/RDI set inside the data page for the direction chosen;
 * - flags the SDM leaves undefined are tracked: an instruction that would read an undefined flag
 *   (ADC, SETcc, CMOVcc, PUSHF, LAHF, RCL...) is preceded by a CMP that defines them all, and
 *   the flags still undefined at a block end are reported in `masks` for the comparison;
 * - no instruction whose result the SDM leaves undefined (BSF/BSR of 0, shift counts past the
 *   operand size, #DE-raising divisions), nothing vendor-specific (CPUID, LZCNT/POPCNT,
 *   SYSCALL) and nothing privileged.
 */
import type { InitState, Regs } from "./harness.js";

export const FL_CF = 0x1, FL_PF = 0x4, FL_AF = 0x10, FL_ZF = 0x40, FL_SF = 0x80, FL_OF = 0x800;
export const FL_ALL = FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF;

/** Guest-physical layout of a generated case. */
export const LAYOUT = {
  image: 0x1000, pml4: 0x1000, pdpt: 0x2000, pd: 0x3000, code: 0x4000,
  data: 0x20000, stack: 0x21000, stackTop: 0x21c00, mem: 0x40000,
  exitMmio: 0x300000, stopMmio: 0x300008,
} as const;

/**
 * Real mode: everything the code touches lies inside the 64 KiB segments (base 0), and the exit
 * MMIO addresses are the first unbacked page after a RAM slot that ends at 0xe000.
 */
export const LAYOUT_REAL = {
  ...LAYOUT, data: 0x8000, stack: 0x9000, stackTop: 0x9c00, mem: 0xe000, exitMmio: 0xe000, stopMmio: 0xe008,
} as const;

export interface GenOptions {
  seed: number;
  /**
   * "64" (default): 64-bit mode at CPL 3; "compat32": 32-bit code in compatibility mode at CPL 3;
   * "prot32": 32-bit protected mode at CPL 0 with paging off (emulated instruction by instruction
   * by kvm_pvm, so cases stay short); "real16": real-address mode (16-bit code; 32-bit operands
   * and addresses through the 66/67 prefixes, all inside 64 KiB, LAYOUT_REAL).
   */
  mode?: "64" | "compat32" | "prot32" | "real16";
  blocks?: number;
  insnsPerBlock?: number;
}

export interface GenCase {
  seed: number;
  source: string;
  init: InitState;
  /** Undefined-flag mask at the exit that ends block i (index = block number). */
  masks: number[];
}

/** mulberry32: small, fast, and the same sequence in every JS engine. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number { return this.u32() % n; }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  /** Values that hit edge cases more often than uniform ones: 0, ±1, sign bits, small. */
  interesting(): bigint {
    const k = this.int(8);
    if (k === 0) return this.pick([0n, 1n, 0xffffffffffffffffn, 0x8000000000000000n, 0x7fffffffffffffffn, 0x80000000n, 0xffffffffn, 0x80n, 0x8000n]);
    if (k === 1) return BigInt(this.int(256));
    return this.u64();
  }
}

type Size = 8 | 16 | 32 | 64;
const SUFFIX: Record<Size, string> = { 8: "b", 16: "w", 32: "l", 64: "q" };
// RSP and RBP are reserved (stack and data base); the rest are fair game.
const GPR64 = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"] as const;
type Gpr = (typeof GPR64)[number];

/**
 * What the code being generated may use: 64-bit mode has every GPR and operand size;
 * compatibility mode (32-bit code at CPL 3 under long mode) has the eight legacy registers,
 * byte registers without REX (AL-DL), and no 64-bit operands. Set by generateCase() for the
 * duration of one (synchronous) generation.
 */
interface Profile {
  w64: boolean;
  /** 16-bit code: memory operands and LEA also use 16-bit addressing forms. */
  a16: boolean;
  gprs: readonly Gpr[];
  gprs8: readonly Gpr[];
  sizes: readonly Size[];
  sizesNo8: readonly Size[];
}
const PROFILE_64: Profile = { w64: true, a16: false, gprs: GPR64, gprs8: GPR64, sizes: [8, 16, 32, 64], sizesNo8: [16, 32, 64] };
const PROFILE_32: Profile = {
  w64: false, a16: false, gprs: ["rax", "rbx", "rcx", "rdx", "rsi", "rdi"], gprs8: ["rax", "rbx", "rcx", "rdx"],
  sizes: [8, 16, 32], sizesNo8: [16, 32],
};
const PROFILE_16: Profile = { ...PROFILE_32, a16: true };
let P: Profile = PROFILE_64;

/** A random register of the profile, named for `size`. */
function greg(r: Rng, size: Size): string {
  return reg(r.pick(size === 8 ? P.gprs8 : P.gprs), size);
}
const LEGACY: Record<string, [string, string, string]> = {
  rax: ["eax", "ax", "al"], rbx: ["ebx", "bx", "bl"], rcx: ["ecx", "cx", "cl"], rdx: ["edx", "dx", "dl"],
  rsi: ["esi", "si", "sil"], rdi: ["edi", "di", "dil"],
};
function reg(r: Gpr, size: Size): string {
  if (size === 64) return `%${r}`;
  const l = LEGACY[r];
  if (l) return `%${size === 32 ? l[0] : size === 16 ? l[1] : l[2]}`;
  return `%${r}${size === 32 ? "d" : size === 16 ? "w" : "b"}`;
}

const CC: Record<string, number> = {
  o: FL_OF, no: FL_OF, b: FL_CF, ae: FL_CF, e: FL_ZF, ne: FL_ZF, be: FL_CF | FL_ZF, a: FL_CF | FL_ZF,
  s: FL_SF, ns: FL_SF, p: FL_PF, np: FL_PF, l: FL_SF | FL_OF, ge: FL_SF | FL_OF, le: FL_ZF | FL_SF | FL_OF, g: FL_ZF | FL_SF | FL_OF,
};

/** Emits instructions while tracking which status flags are undefined. */
class Emitter {
  lines: string[] = [];
  undef = 0;
  depth = 0; // qwords pushed on the stack page
  constructor(readonly rng: Rng) {}

  /** One instruction: flags it reads, defines, and leaves undefined (the rest are unchanged). */
  insn(text: string, reads = 0, defines = 0, undefines = 0): void {
    if (reads & this.undef) {
      const w: Size = P.w64 ? 64 : 32;
      this.lines.push(`cmp ${greg(this.rng, w)}, ${greg(this.rng, w)}`);
      this.undef = 0;
    }
    this.lines.push(text);
    this.undef = (this.undef & ~defines & ~undefines) | undefines;
  }
}

type Gen = (e: Emitter, r: Rng) => void;


function mem(r: Rng, size: Size, addr32 = false): string {
  const disp = r.int(4096 - size / 8 + 1);
  // BP-based 16-bit addressing goes through SS, whose base (0) is DS's in real mode.
  if (P.a16 && r.int(2)) return `${disp}(%bp)`;
  return !P.w64 || (addr32 && r.int(4) === 0) ? `${disp}(%ebp)` : `${disp}(%rbp)`;
}

function imm(r: Rng, size: Size): string {
  const v = r.interesting();
  // AT&T immediates: 8/16/32-bit as their own width; 64-bit ALU immediates are sign-extended imm32.
  if (size === 64) return `$${BigInt.asIntN(32, v)}`;
  return `$${BigInt.asUintN(size, v)}`;
}

/** A source/destination pair: reg,reg / imm,reg / mem,reg / reg,mem / imm,mem. */
function operands(r: Rng, size: Size): [string, string] {
  const dst = greg(r, size);
  switch (r.int(5)) {
    case 0: return [greg(r, size), dst];
    case 1: return [imm(r, size), dst];
    case 2: return [mem(r, size, true), dst];
    case 3: return [greg(r, size), mem(r, size, true)];
    default: return [imm(r, size), mem(r, size, true)];
  }
}

const ARITH: Gen = (e, r) => {
  const op = r.pick(["add", "sub", "adc", "sbb", "cmp", "and", "or", "xor", "test"]);
  const size = r.pick(P.sizes);
  let [src, dst] = operands(r, size);
  if (op === "test" && src.includes("(")) [src, dst] = [dst, src]; // test has no mem,reg form
  const logic = op === "and" || op === "or" || op === "xor" || op === "test";
  const reads = op === "adc" || op === "sbb" ? FL_CF : 0;
  e.insn(`${op}${SUFFIX[size]} ${src}, ${dst}`, reads, logic ? FL_ALL & ~FL_AF : FL_ALL, logic ? FL_AF : 0);
};

const UNARY: Gen = (e, r) => {
  const op = r.pick(["inc", "dec", "neg", "not"]);
  const size = r.pick(P.sizes);
  const dst = r.int(3) ? greg(r, size) : mem(r, size, true);
  const defines = op === "neg" ? FL_ALL : op === "not" ? 0 : FL_ALL & ~FL_CF;
  e.insn(`${op}${SUFFIX[size]} ${dst}`, 0, defines);
};

const SHIFT: Gen = (e, r) => {
  const op = r.pick(["shl", "shr", "sar", "rol", "ror", "rcl", "rcr"]);
  const size = r.pick(P.sizes);
  const count = r.range(1, size - 1); // inside the operand: CF and the result are defined
  const dst = r.int(3) ? greg(r, size) : mem(r, size, true);
  const rotate = op[0] === "r" && op !== "rcl" && op !== "rcr" ? true : op === "rcl" || op === "rcr";
  const defines = rotate ? FL_CF | (count === 1 ? FL_OF : 0) : (FL_CF | FL_PF | FL_ZF | FL_SF | (count === 1 ? FL_OF : 0));
  const undefines = (count === 1 ? 0 : FL_OF) | (rotate ? 0 : FL_AF);
  const reads = op === "rcl" || op === "rcr" ? FL_CF : 0;
  if (r.int(2)) {
    e.insn(`movb $${count}, %cl`);
    if (dst === "%cl" || dst === "%cx" || dst === "%ecx" || dst === "%rcx") return;
    e.insn(`${op}${SUFFIX[size]} %cl, ${dst}`, reads, defines, undefines);
  } else {
    e.insn(`${op}${SUFFIX[size]} $${count}, ${dst}`, reads, defines, undefines);
  }
};

const DOUBLE_SHIFT: Gen = (e, r) => {
  const op = r.pick(["shld", "shrd"]);
  const size = r.pick(P.sizesNo8);
  const count = r.range(1, size - 1);
  const dst = r.int(3) ? greg(r, size) : mem(r, size, true);
  e.insn(`${op}${SUFFIX[size]} $${count}, ${greg(r, size)}, ${dst}`, 0,
    FL_CF | FL_PF | FL_ZF | FL_SF | (count === 1 ? FL_OF : 0), FL_AF | (count === 1 ? 0 : FL_OF));
};

const MUL: Gen = (e, r) => {
  const size = r.pick(P.sizes);
  const src = r.int(3) ? greg(r, size) : mem(r, size, true);
  const k = r.int(3);
  const undef = FL_SF | FL_ZF | FL_AF | FL_PF;
  if (k === 0 || size === 8) e.insn(`${r.pick(["mul", "imul"])}${SUFFIX[size]} ${src}`, 0, FL_CF | FL_OF, undef);
  else if (k === 1) e.insn(`imul${SUFFIX[size]} ${src}, ${greg(r, size)}`, 0, FL_CF | FL_OF, undef);
  else e.insn(`imul${SUFFIX[size]} ${imm(r, size)}, ${src}, ${greg(r, size)}`, 0, FL_CF | FL_OF, undef);
};

/** DIV/IDIV with the dividend's high half and the divisor guarded so no #DE is possible. */
const DIV: Gen = (e, r) => {
  const size = r.pick(P.sizes);
  const signed = r.int(2) === 1;
  const tmp = r.pick((size === 8 ? P.gprs8 : P.gprs).filter((g) => g !== "rax" && g !== "rdx"));
  const t = reg(tmp, size);
  e.insn(`mov${SUFFIX[size]} ${greg(r, size)}, ${t}`);
  if (signed) {
    // Divisor in [2, 0x3f]: the quotient's magnitude is at most half the dividend's.
    e.insn(`and${SUFFIX[size]} $0x3f, ${t}`, 0, FL_ALL & ~FL_AF, FL_AF);
    e.insn(`or${SUFFIX[size]} $2, ${t}`, 0, FL_ALL & ~FL_AF, FL_AF);
    e.insn(size === 8 ? "cbtw" : size === 16 ? "cwtd" : size === 32 ? "cltd" : "cqto");
  } else {
    e.insn(`or${SUFFIX[size]} $1, ${t}`, 0, FL_ALL & ~FL_AF, FL_AF);
    e.insn(size === 8 ? "movzbw %al, %ax" : `xor${SUFFIX[size]} ${reg("rdx", size)}, ${reg("rdx", size)}`, 0, size === 8 ? 0 : FL_ALL & ~FL_AF, size === 8 ? 0 : FL_AF);
  }
  e.insn(`${signed ? "idiv" : "div"}${SUFFIX[size]} ${t}`, 0, 0, FL_ALL);
};

const BITS: Gen = (e, r) => {
  const size = r.pick(P.sizesNo8);
  const k = r.int(4);
  if (k === 0) {
    const op = r.pick(["bt", "bts", "btr", "btc"]);
    // Register-offset forms only on registers: on memory the offset may leave the data page.
    const dst = r.int(2) ? greg(r, size) : mem(r, size, true);
    const src = dst.includes("(") || r.int(2) ? `$${r.int(size)}` : greg(r, size);
    e.insn(`${op}${SUFFIX[size]} ${src}, ${dst}`, 0, FL_CF, FL_OF | FL_SF | FL_AF | FL_PF | FL_ZF);
  } else if (k === 1) {
    const tmp = greg(r, size);
    e.insn(`or${SUFFIX[size]} $${1 << r.int(15)}, ${tmp}`, 0, FL_ALL & ~FL_AF, FL_AF);
    e.insn(`${r.pick(["bsf", "bsr"])}${SUFFIX[size]} ${tmp}, ${greg(r, size)}`, 0, FL_ZF, FL_CF | FL_OF | FL_SF | FL_AF | FL_PF);
  } else if (k === 2) {
    const s: Size = P.w64 && r.int(2) ? 64 : 32;
    e.insn(`bswap ${greg(r, s)}`);
  } else {
    e.insn(`${r.pick(["xchg", "xadd", "cmpxchg"])}${SUFFIX[size]} ${greg(r, size)}, ${r.int(2) ? greg(r, size) : mem(r, size, true)}`);
    const last = e.lines[e.lines.length - 1]!;
    if (!last.startsWith("xchg")) e.undef = 0; // xadd/cmpxchg define all six flags
    if (last.startsWith("cmpxchg")) { /* reads RAX, no flags */ }
  }
};

const CMOV_SET: Gen = (e, r) => {
  const cc = r.pick(Object.keys(CC));
  if (r.int(2)) {
    const size = r.pick(P.sizesNo8);
    const src = r.int(2) ? greg(r, size) : mem(r, size, true);
    e.insn(`cmov${cc}${SUFFIX[size]} ${src}, ${greg(r, size)}`, CC[cc]);
  } else {
    const dst = r.int(2) ? greg(r, 8) : mem(r, 8, true);
    e.insn(`set${cc} ${dst}`, CC[cc]);
  }
};

const LEA: Gen = (e, r) => {
  const size = r.pick(P.sizesNo8);
  const base = r.pick(P.gprs);
  const idx = r.pick(P.gprs);
  const disp = BigInt.asIntN(32, r.u64());
  if (P.a16 && r.int(2)) {
    // 16-bit addressing: the sum wraps at 64 KiB (SDM Vol. 2 Table 2-1 forms).
    const form = r.pick(["(%bx,%si)", "(%bx,%di)", "(%bp,%si)", "(%bp,%di)", "(%si)", "(%di)", "(%bx)", "(%bp)"]);
    e.insn(`lea${SUFFIX[size]} ${BigInt.asIntN(16, disp)}${form}, ${greg(r, size)}`);
  } else if (!P.w64 || r.int(3) === 0) {
    e.insn(`lea${SUFFIX[size]} ${disp}(${reg(base, 32)},${reg(idx, 32)},${r.pick([1, 2, 4, 8])}), ${greg(r, size)}`);
  } else {
    e.insn(`lea${SUFFIX[size]} ${disp}(%${base},%${idx},${r.pick([1, 2, 4, 8])}), ${greg(r, size)}`);
  }
};

const MOVE: Gen = (e, r) => {
  const k = r.int(5);
  if (k === 0) {
    if (P.w64) e.insn(`movabsq $${BigInt.asIntN(64, r.interesting())}, %${r.pick(P.gprs)}`);
    else e.insn(`movl $${BigInt.asUintN(32, r.interesting())}, ${greg(r, 32)}`);
  }
  else if (k === 1) {
    const size = r.pick(P.sizes);
    const [src, dst] = operands(r, size);
    e.insn(`mov${SUFFIX[size]} ${src}, ${dst}`);
  } else if (k === 2) {
    const [from, to] = r.pick(([[8, 16], [8, 32], [8, 64], [16, 32], [16, 64]] as const).filter(([, t]) => P.sizes.includes(t)));
    const src = r.int(2) ? greg(r, from) : mem(r, from);
    e.insn(`mov${r.pick(["z", "s"])}${SUFFIX[from]}${SUFFIX[to]} ${src}, ${greg(r, to)}`);
  } else if (k === 3 && P.w64) {
    e.insn(`movslq ${r.int(2) ? greg(r, 32) : mem(r, 32)}, %${r.pick(P.gprs)}`);
  } else {
    e.insn(r.pick(P.w64 ? ["cbtw", "cwtl", "cltq", "cwtd", "cltd", "cqto"] : ["cbtw", "cwtl", "cwtd", "cltd"]));
  }
};

const STACK: Gen = (e, r) => {
  const k = r.int(6);
  if (e.depth > 0 && (k < 2 || e.depth >= 48)) {
    const w: Size = P.w64 ? 64 : 32;
    e.insn(r.int(3) ? `pop ${greg(r, w)}` : `pop${SUFFIX[w]} ${mem(r, w)}`);
    e.depth--;
  } else if (k === 2) {
    e.insn(`call 1f\n1: pop ${greg(r, P.w64 ? 64 : 32)}`); // pushes the (same-on-both-sides) return RIP
  } else if (k === 3) {
    // POPF of a known value: status flags and DF (IF/IOPL/TF/AC are left as they are at CPL 3).
    const v = r.int(0x1000) & (FL_ALL | 0x400);
    e.insn(P.w64 ? `pushq $${v | 0x202}\npopfq` : `pushl $${v | 0x202}\npopfl`, 0, FL_ALL);
    e.insn("cld");
  } else if (k === 4) {
    e.insn(P.w64 ? "pushfq" : "pushfl", FL_ALL);
    e.depth++;
  } else {
    const w: Size = P.w64 ? 64 : 32;
    const src = r.pick([greg(r, w), `$${BigInt.asIntN(32, r.interesting())}`, mem(r, w)]);
    e.insn(`push${src.startsWith("%") ? "" : SUFFIX[w]} ${src}`);
    e.depth++;
  }
};

const FLAGOPS: Gen = (e, r) => {
  const k = r.int(5);
  if (k === 0) e.insn("lahf", FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF);
  else if (k === 1) e.insn("sahf", 0, FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF);
  else if (k === 2) e.insn("clc", 0, FL_CF);
  else if (k === 3) e.insn("stc", 0, FL_CF);
  else e.insn("cmc", FL_CF, FL_CF);
};

/** MOVS/STOS/LODS/CMPS/SCAS, REP/REPE/REPNE, either direction, 64- or 32-bit addressing. */
const STRING: Gen = (e, r) => {
  const size = r.pick(P.sizes);
  const bytes = size / 8;
  const n = r.range(1, 8);
  const down = r.int(2) === 1;
  const span = n * bytes;
  const off = () => (down ? r.range(span, 4096 - bytes) : r.range(0, 4096 - span));
  const a32 = P.w64 && r.int(3) === 0;
  const op = r.pick(["movs", "stos", "lods", "cmps", "scas"]);
  e.insn(P.w64 ? `lea ${off()}(%rbp), %rsi` : `lea ${off()}(%ebp), %esi`);
  e.insn(P.w64 ? `lea ${off()}(%rbp), %rdi` : `lea ${off()}(%ebp), %edi`);
  e.insn(`mov $${n}, %ecx`);
  e.insn(down ? "std" : "cld");
  const rep = op === "cmps" || op === "scas" ? r.pick(["repe ", "repne ", ""]) : op === "lods" ? r.pick(["", "rep "]) : r.pick(["rep ", ""]);
  const defines = op === "cmps" || op === "scas" ? FL_ALL : 0;
  e.insn(`${a32 ? "addr32 " : ""}${rep}${op}${SUFFIX[size]}`, 0, defines);
  e.insn("cld");
};

/**
 * A forward conditional branch over one to three instructions. The flags undefined after the
 * join are those undefined on either path; the skipped instructions contain no stack operations,
 * so both paths leave the same push depth.
 */
const BRANCH: Gen = (e, r) => {
  const cc = r.pick(Object.keys(CC));
  e.insn(`j${cc} 7f`, CC[cc]);
  const before = e.undef;
  for (let i = r.range(1, 3); i > 0; i--) pickGen(r, STRAIGHT)(e, r);
  e.lines.push("7:");
  e.undef |= before;
};

type Weighted = readonly [Gen, number][];
const STRAIGHT: Weighted = [
  [ARITH, 6], [UNARY, 2], [SHIFT, 3], [DOUBLE_SHIFT, 1], [MUL, 2], [DIV, 2], [BITS, 2],
  [CMOV_SET, 3], [LEA, 2], [MOVE, 3], [FLAGOPS, 1], [STRING, 2],
];
const GENS: Weighted = [...STRAIGHT, [STACK, 2], [BRANCH, 2]];

function pickGen(r: Rng, gens: Weighted = GENS): Gen {
  let x = r.int(gens.reduce((a, [, w]) => a + w, 0));
  for (const [g, w] of gens) {
    if (x < w) return g;
    x -= w;
  }
  return gens[0]![0];
}

/** One reproducible case: the same seed gives the same source, registers and masks. */
export function generateCase(opts: GenOptions): GenCase {
  const rng = new Rng(opts.seed);
  P = opts.mode === undefined || opts.mode === "64" ? PROFILE_64 : opts.mode === "real16" ? PROFILE_16 : PROFILE_32;
  const real = opts.mode === "real16";
  const L = real ? LAYOUT_REAL : LAYOUT;
  const blocks = opts.blocks ?? 32;
  const per = opts.insnsPerBlock ?? 12;
  const e = new Emitter(rng);
  const masks: number[] = [];
  for (let b = 0; b < blocks; b++) {
    e.lines.push(`# block ${b}`);
    for (let i = 0; i < per; i++) pickGen(rng)(e, rng);
    e.lines.push(`movl $${b}, ${L.exitMmio}`);
    masks.push(e.undef);
  }
  e.lines.push(`movl $${blocks}, ${L.stopMmio}`);
  masks.push(e.undef);

  const data: string[] = [];
  for (let i = 0; i < 4096 / 8; i++) data.push(`0x${rng.u64().toString(16)}`);
  const source = [
    `# tskvm differential case, seed ${opts.seed} (test/diff/gen.ts)`,
    "\t.text", "\t.code64",
    `pml4:\t.quad ${LAYOUT.pdpt} + 7`, `\t.fill 511, 8, 0`,
    `pdpt:\t.quad ${LAYOUT.pd} + 7`, `\t.fill 511, 8, 0`,
    // PD: 512 identity 2 MiB pages, present/writable/user.
    "pd:", "\t.set i, 0", "\t.rept 512", "\t.quad (i << 21) | 0x87", "\t.set i, i + 1", "\t.endr",
    P.w64 ? "\t.code64" : real ? "\t.code16" : "\t.code32",
    `code:`, ...e.lines.map((l) => `\t${l.replace(/\n/g, "\n\t")}`),
    `\t.fill ${L.data} - ${L.image} - (. - pml4), 1, 0xcc`,
    `data:\t.quad ${data.join(", ")}`,
    `\t.fill 4096, 1, 0`, // stack page
    "",
  ].join("\n");

  const regs: Partial<Regs> = {};
  // Compatibility mode: the upper halves start (and stay) zero, R8-R15 unused.
  for (const g of GPR64) regs[g] = P.w64 ? rng.interesting() : P.gprs.includes(g) ? BigInt.asUintN(32, rng.interesting()) : 0n;
  regs.rbp = BigInt(L.data);
  regs.rsp = BigInt(L.stackTop);
  regs.rflags = 0x202n;
  return {
    seed: opts.seed, source, masks,
    init: {
      ...(real ? { mode: "real16" } as const : opts.mode === "prot32" ? { mode: "prot32", cpl: 0 } as const
        : { mode: "long64", cpl: 3, compat32: !P.w64, cr3: BigInt(L.pml4) } as const),
      gpa: L.image, mem: L.mem, entry: L.code, regs,
      exitMmio: L.stopMmio, maxExits: blocks + 8,
      hash: [L.data, 0x2000],
    },
  };
}
