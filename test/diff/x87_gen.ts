/**
 * Generated x87 cases for the differential tests: at CPL 3 in 64-bit mode, each block sets a
 * random control word (rounding, precision, exception masks), loads random operands (special
 * values included: signed zeros, denormals, pseudo-denormals, unnormals, infinities, QNaN/SNaN,
 * the indefinite, pseudo-NaNs, extreme exponents), runs one arithmetic / compare / convert
 * instruction, and exposes the result in GPRs before an MMIO exit:
 *   RAX = FSW (exception flags, condition codes, TOP), RBX:RCX = ST(0) significand and
 *   sign/exponent, RDX:RSI = ST(1) (or the memory result of a store), RFLAGS (FCOMI family:
 *   nothing after the operation touches the arithmetic flags);
 *   in some blocks also R8-R11 = the FNSTENV image (control/status/tag words, FIP/FCS/FOP,
 *   FDP/FDS right after the operation) and R12-R15 = the first 32 bytes of an FXSAVE image.
 * Some blocks free ST(0) or ST(1) first (with IE masked), for the stack-underflow responses.
 * Exceptions are captured by FNSTSW and then cleared by FNCLEX before the stores, so an
 * unmasked exception never reaches #MF. Transcendentals are left out: tskvm's are within 1 ulp
 * of Intel's, not bit-identical (src/hw/x86/fp/f80_trans.ts).
 */
import { LAYOUT, Rng } from "./gen.js";
import type { InitState } from "./harness.js";

/** One operation: the instruction text, and how the block exposes its result. */
interface X87Op {
  name: string;
  /** Assembly run with ST(1) = a, ST(0) = b. */
  text: string;
  /** Operands on the stack after it: 0, 1 or 2 (stored to RBX:RCX and RDX:RSI). */
  left: number;
  /** The operation stores to SCRATCH + 32 (bytes); that value goes to RDX. */
  store?: number;
  /** Operands only from the classes with exactly defined results (zeros, infinities, NaNs, unsupported encodings). */
  special?: boolean;
}

const SCRATCH = LAYOUT.stack; // bottom of the stack page: never reached by the stack
const RES = SCRATCH + 32;
const ENV = SCRATCH + 64;
const SAVE = SCRATCH + 0x100;
const FXA = SCRATCH + 0x200;
const FXB = SCRATCH + 0x400;

const b = (...bytes: number[]): string => `.byte ${bytes.map((x) => `0x${x.toString(16)}`).join(", ")}`;

/** Register-form encodings (SDM Vol. 2 Tables A-7..A-22) as bytes, so no AT&T operand-order doubt. */
export const X87_OPS: X87Op[] = [
  { name: "fadd st0,st1", text: b(0xd8, 0xc1), left: 2 },
  { name: "fmul st0,st1", text: b(0xd8, 0xc9), left: 2 },
  { name: "fsub st0,st1", text: b(0xd8, 0xe1), left: 2 },
  { name: "fsubr st0,st1", text: b(0xd8, 0xe9), left: 2 },
  { name: "fdiv st0,st1", text: b(0xd8, 0xf1), left: 2 },
  { name: "fdivr st0,st1", text: b(0xd8, 0xf9), left: 2 },
  { name: "fsub st1,st0", text: b(0xdc, 0xe9), left: 2 },
  { name: "fdivp st1,st0", text: b(0xde, 0xf9), left: 1 },
  { name: "fsqrt", text: b(0xd9, 0xfa), left: 2 },
  { name: "frndint", text: b(0xd9, 0xfc), left: 2 },
  { name: "fscale", text: b(0xd9, 0xfd), left: 2 },
  { name: "fprem", text: b(0xd9, 0xf8), left: 2 },
  { name: "fprem1", text: b(0xd9, 0xf5), left: 2 },
  { name: "fxtract", text: `fstp %st(1)\n${b(0xd9, 0xf4)}`, left: 2 },
  { name: "fchs", text: b(0xd9, 0xe0), left: 2 },
  { name: "fabs", text: b(0xd9, 0xe1), left: 2 },
  { name: "fxam", text: b(0xd9, 0xe5), left: 2 },
  { name: "ftst", text: b(0xd9, 0xe4), left: 2 },
  { name: "fcom st1", text: b(0xd8, 0xd1), left: 2 },
  { name: "fucom st1", text: b(0xdd, 0xe1), left: 2 },
  { name: "fcompp", text: b(0xde, 0xd9), left: 0 },
  { name: "fucompp", text: b(0xda, 0xe9), left: 0 },
  { name: "fcomi st1", text: b(0xdb, 0xf1), left: 2 },
  { name: "fucomip st1", text: b(0xdf, 0xe9), left: 1 },
  { name: "fcmovb st1", text: b(0xda, 0xc1), left: 2 },
  { name: "fxch st1", text: b(0xd9, 0xc9), left: 2 },
  { name: "fst m32", text: `fsts ${RES}`, left: 2, store: 4 },
  { name: "fst m64", text: `fstl ${RES}`, left: 2, store: 8 },
  { name: "fist m16", text: `fists ${RES}`, left: 2, store: 2 },
  { name: "fist m32", text: `fistl ${RES}`, left: 2, store: 4 },
  { name: "fistp m64", text: `fistpll ${RES}`, left: 1, store: 8 },
  { name: "fisttp m32", text: `fisttpl ${RES}`, left: 1, store: 4 },
  { name: "fisttp m64", text: `fisttpll ${RES}`, left: 1, store: 8 },
  { name: "fbstp", text: `fbstp ${RES}`, left: 1, store: 8 },
  { name: "fld m32", text: `flds ${RES}`, left: 2 },
  { name: "fld m64", text: `fldl ${RES}`, left: 2 },
  { name: "fadd m32", text: `fadds ${RES}`, left: 2 },
  { name: "fdiv m64", text: `fdivl ${RES}`, left: 2 },
  { name: "fcom m64", text: `fcoml ${RES}`, left: 2 },
  { name: "fiadd m32", text: `fiaddl ${RES}`, left: 2 },
  { name: "ficom m16", text: `ficoms ${RES}`, left: 2 },
  // Transcendentals only on operands whose results the SDM defines exactly (tskvm's kernels are
  // within 1 ulp of Intel's on the rest, not bit-identical): the exception and NaN wiring.
  ...([["fsin", 0xfe, 2], ["fcos", 0xff, 2], ["fptan", 0xf2, 2], ["fpatan", 0xf3, 1], ["f2xm1", 0xf0, 2], ["fyl2x", 0xf1, 1],
    ["fyl2xp1", 0xf9, 1], ["fsincos", 0xfb, 2]] as const).map(([name, op, left]) => ({ name: `${name} (special)`, text: b(0xd9, op), left, special: true })),
  // State images written and read back: FSAVE/FRSTOR, FSTENV/FLDENV after an exception (the
  // pending state must survive the masking FNSTENV does), FXSAVE/FXRSTOR.
  { name: "fdiv; fnsave; frstor", text: `${b(0xd8, 0xf1)}\nfnsave ${SAVE}\nfrstor ${SAVE}`, left: 2 },
  { name: "fsqrt; fnstenv; fldenv", text: `${b(0xd9, 0xfa)}\nfnstenv ${SAVE}\nfldenv ${SAVE}`, left: 2 },
  { name: "fadd; fnstenv16; fldenv16", text: `${b(0xd8, 0xc1)}\n${b(0x66)}\nfnstenv ${SAVE}\n${b(0x66)}\nfldenv ${SAVE}`, left: 2 },
  { name: "fmul; fxsave; fninit; fxrstor", text: `${b(0xd8, 0xc9)}\nfxsave ${FXB}\nfninit\nfxrstor ${FXB}`, left: 2 },
  { name: "fsub; fxsave64; fninit; fxrstor64", text: `${b(0xd8, 0xe1)}\nfxsave64 ${FXB}\nfninit\nfxrstor64 ${FXB}`, left: 2 },
  // XSAVE family with RFBM = EDX:EAX = 1 (x87 only: kvm_pvm runs the guest with the host's XCR0,
  // not KVM's reset value 1, and CPL 3 cannot set it). XSTATE_BV / XCOMP_BV go to RDI / RBP.
  ...["xsave", "xsaveopt", "xsave64", "xsavec"].map((insn) => ({
    name: `fdivr; ${insn}; fninit; xrstor`,
    text: [b(0xd8, 0xf9), `movq $0, ${FXB + 512}`, `movq $0, ${FXB + 520}`, "movl $1, %eax", "movl $0, %edx", `${insn} ${FXB}`, "fninit",
      `${insn === "xsave64" ? "xrstor64" : "xrstor"} ${FXB}`, `movq ${FXB + 512}, %rdi`, `movq ${FXB + 520}, %rbp`].join("\n"),
    left: 2,
  })),
];

/** A random 80-bit operand as [se, significand]: special encodings about half the time. */
export function randF80(r: Rng): [number, bigint] {
  const sign = r.u32() & 1 ? 0x8000 : 0;
  const mant = (): bigint => (BigInt(r.u32()) << 32n) | BigInt(r.u32());
  const norm = (): bigint => mant() | (1n << 63n);
  switch (r.u32() % 16) {
    case 0: return [sign, 0n];
    case 1: return [sign, mant() & ~(1n << 63n) | 1n]; // denormal
    case 2: return [sign, norm()]; // pseudo-denormal
    case 3: return [sign | 0x7fff, 1n << 63n]; // infinity
    case 4: return [sign | 0x7fff, (3n << 62n) | (mant() & ((1n << 62n) - 1n))]; // QNaN
    case 5: return [sign | 0x7fff, (2n << 62n) | (mant() & ((1n << 62n) - 1n)) | 1n]; // SNaN
    case 6: return [0xffff, 3n << 62n]; // indefinite
    case 7: return [sign | (1 + (r.u32() % 0x7ffe)), mant() & ~(1n << 63n)]; // unnormal
    case 8: return [sign | (r.u32() % 2 ? 1 : 0x7ffe), norm()]; // extreme exponents
    case 9: return [sign | 0x7fff, mant() & ~(1n << 63n) | 1n]; // pseudo-NaN
    default: return [sign | (0x3fff - 70 + (r.u32() % 140)), norm()]; // ordinary, near 1
  }
}

/** A random operand of a class with exactly defined transcendental results. */
function randSpecial(r: Rng): [number, bigint] {
  for (;;) {
    const v = randF80(r);
    const e = v[0] & 0x7fff, int = v[1] >> 63n;
    if ((e === 0 && v[1] === 0n) || e === 0x7fff || (e !== 0 && int === 0n)) return v;
  }
}

/** A random 64-bit memory operand: a double, single or integer pattern with specials. */
function randMem(r: Rng): bigint {
  switch (r.u32() % 6) {
    case 0: return [0x7ff0000000000000n, 0xfff8000000000000n, 0x7ff4000000000001n, 0x8000000000000000n, 1n, 0x000fffffffffffffn][r.u32() % 6]!;
    case 1: return BigInt([0x7f800000, 0xffc00000, 0x7fa00001, 0x80000000, 1, 0x007fffff][r.u32() % 6]!);
    case 2: return BigInt(r.u32() & 0xffff);
    case 3: return BigInt(r.u32());
    default: return (BigInt(r.u32()) << 32n) | BigInt(r.u32());
  }
}

export interface X87Case {
  seed: number;
  source: string;
  init: InitState;
  /** Names of the blocks' operations, for messages. */
  ops: string[];
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

export function generateX87Case(seed: number, blocks: number): X87Case {
  const r = new Rng(seed);
  const lines: string[] = [];
  const data: string[] = [];
  const ops: string[] = [];
  for (let k = 0; k < blocks; k++) {
    const op = X87_OPS[r.u32() % X87_OPS.length]!;
    ops.push(op.name);
    const rc = r.u32() & 3, pc = [0, 2, 3][r.u32() % 3]!;
    const free = r.u32() % 8 === 0 ? 1 + (r.u32() & 1) : 0;
    const masks = (r.u32() % 2 ? 0x3f : r.u32() & 0x3f) | (free ? 1 : 0);
    const cw = 0x40 | (rc << 10) | (pc << 8) | masks;
    const a = op.special ? randSpecial(r) : randF80(r), bb = op.special ? randSpecial(r) : randF80(r);
    const at = LAYOUT.data + k * 32, bt = at + 16;
    data.push(`\t.quad ${hex(a[1])}, ${hex(a[0])}, ${hex(bb[1])}, ${hex(bb[0])}`);
    lines.push(
      `# block ${k}: ${op.name}`,
      "fninit",
      `movabsq $${hex(randMem(r))}, %rax`, `movq %rax, ${RES}`,
      `movw $${hex(cw)}, ${SCRATCH}`, `fldcw ${SCRATCH}`,
      `fldt ${at}`, `fldt ${bt}`,
      // FCMOVB reads CF: make it random but defined.
      r.u32() & 1 ? "stc" : "clc",
      ...(free ? [b(0xdd, 0xc0 + free - 1)] : []), // FFREE ST(0) / ST(1)
      ...op.text.split("\n"),
      "movl $0, %eax", "fnstsw %ax",
    );
    const env = r.u32() % 4 === 0, fx = r.u32() % 8 === 0;
    // The 14-byte (operand-size 16) environment image half the time; the area is cleared first.
    const env16 = r.u32() & 1 ? [b(0x66)] : [];
    const fx64 = r.u32() & 1 ? "fxsave64" : "fxsave";
    lines.push(
      ...(env ? ["movl $0, %r8d", `movq %r8, ${ENV}`, `movq %r8, ${ENV + 8}`, `movq %r8, ${ENV + 16}`, `movq %r8, ${ENV + 24}`,
        ...env16, `fnstenv ${ENV}`, `movq ${ENV}, %r8`, `movq ${ENV + 8}, %r9`, `movq ${ENV + 16}, %r10`, `movl ${ENV + 24}, %r11d`] : []),
      ...(fx ? [`${fx64} ${FXA}`, `movq ${FXA}, %r12`, `movq ${FXA + 8}, %r13`, `movq ${FXA + 16}, %r14`, `movq ${FXA + 24}, %r15`] : []),
      "fnclex",
      "movl $0, %ebx", "movl $0, %ecx", "movl $0, %edx", "movl $0, %esi",
    );
    if (op.left >= 1) lines.push(`fstpt ${SCRATCH}`, `movq ${SCRATCH}, %rbx`, `movzwq ${SCRATCH + 8}, %rcx`);
    if (op.store) lines.push(`movq ${RES}, %rdx`);
    else if (op.left >= 2) lines.push(`fstpt ${SCRATCH}`, `movq ${SCRATCH}, %rdx`, `movzwq ${SCRATCH + 8}, %rsi`);
    lines.push(`movl $${k}, ${LAYOUT.exitMmio}`);
  }
  lines.push(`movl $${blocks}, ${LAYOUT.stopMmio}`);
  const source = [
    `# tskvm x87 differential case, seed ${seed} (test/diff/x87_gen.ts)`,
    "\t.text", "\t.code64",
    `pml4:\t.quad ${LAYOUT.pdpt} + 7`, `\t.fill 511, 8, 0`,
    `pdpt:\t.quad ${LAYOUT.pd} + 7`, `\t.fill 511, 8, 0`,
    "pd:", "\t.set i, 0", "\t.rept 512", "\t.quad (i << 21) | 0x87", "\t.set i, i + 1", "\t.endr",
    "code:", ...lines.map((l) => (l.startsWith("#") ? l : `\t${l}`)),
    `\t.fill ${LAYOUT.data} - ${LAYOUT.image} - (. - pml4), 1, 0xcc`,
    "data:", ...data,
    `\t.fill ${LAYOUT.data + 8192} - ${LAYOUT.image} - (. - pml4), 1, 0`,
    "",
  ].join("\n");
  return {
    seed, source, ops,
    init: {
      mode: "long64", cpl: 3, cr3: BigInt(LAYOUT.pml4), gpa: LAYOUT.image, mem: LAYOUT.mem, entry: LAYOUT.code,
      // CR4.PAE, CR4.OSFXSR (FXSAVE stores MXCSR and the XMM registers), CR4.OSXSAVE.
      cr4: 0x40220n,
      regs: { rsp: BigInt(LAYOUT.stackTop), rflags: 0x202n },
      exitMmio: LAYOUT.stopMmio, maxExits: blocks + 8,
    },
  };
}
