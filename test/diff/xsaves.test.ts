/**
 * XSAVES/XRSTORS and IA32_XSS at CPL 0 in 64-bit mode, on the real /dev/kvm and on tskvm: the
 * XSAVE header XSAVES writes (XSTATE_BV, XCOMP_BV), the state XRSTORS brings back, RDMSR of
 * IA32_XSS. The legacy region is not compared (FIP/FDP and MXCSR_MASK differ by vendor).
 * Skips with the reason when either side cannot run here, or when the real KVM's guest CPUID
 * has no XSAVES.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { realKvmUnavailable, runRealKvm, type InitState } from "./harness.js";
import { assemble, toolchainUnavailable } from "./asm.js";
import { compareRuns } from "./compare.js";
import { runTskvm, tskvmUnavailable } from "./tskvm.js";
import { LAYOUT } from "./gen.js";

const AREA = LAYOUT.data;
const exit = (k: number): string => `movl $${k}, ${LAYOUT.exitMmio}`;
const clear = ["xorl %eax, %eax", "xorl %ebx, %ebx", "xorl %ecx, %ecx", "xorl %edx, %edx"];

const BODY = [
  // Exit 0: CPUID.(0DH,1):EAX[3] in R8 (the rest of the leaf is the host's business).
  "movl $0xd, %eax", "movl $1, %ecx", "cpuid", "movl %eax, %r8d", "andl $8, %r8d", ...clear, exit(0),
  // XCR0 = x87 | SSE; x87 and XMM0 in use; XSAVES with EDX:EAX = all ones.
  "xorl %ecx, %ecx", "movl $3, %eax", "xorl %edx, %edx", "xsetbv",
  "fninit", "fld1", "fldpi", "movl $0x12345678, %eax", "movd %eax, %xmm0",
  "movl $-1, %eax", "movl $-1, %edx", `xsaves ${AREA}`, ...clear, exit(1),
  // Clobber, XRSTORS, read back ST0 (low half), TOP and XMM0 into R9-R11.
  "fninit", "pxor %xmm0, %xmm0", "movl $3, %eax", "xorl %edx, %edx", `xrstors ${AREA}`,
  "fnstsw %ax", "movzwl %ax, %r10d", `fstpl ${AREA + 0x400}`, `movq ${AREA + 0x400}, %r9`, "movq %xmm0, %r11", ...clear, exit(2),
  // IA32_XSS reads 0.
  "movl $0xda0, %ecx", "rdmsr", "movq %rax, %r12", "movq %rdx, %r13", ...clear, exit(3),
  `movl $4, ${LAYOUT.stopMmio}`,
];

function source(): string {
  return [
    "\t.text", "\t.code64",
    `pml4:\t.quad ${LAYOUT.pdpt} + 3`, "\t.fill 511, 8, 0",
    `pdpt:\t.quad ${LAYOUT.pd} + 3`, "\t.fill 511, 8, 0",
    "pd:", "\t.set i, 0", "\t.rept 512", "\t.quad (i << 21) | 0x83", "\t.set i, i + 1", "\t.endr",
    "code:", ...BODY.map((l) => `\t${l}`),
    `\t.fill ${LAYOUT.data} - ${LAYOUT.image} - (. - pml4), 1, 0xcc`,
    `\t.fill 0x2000, 1, 0`,
    "",
  ].join("\n");
}

const INIT: InitState = {
  mode: "long64", cpl: 0, cr3: BigInt(LAYOUT.pml4), gpa: LAYOUT.image, mem: LAYOUT.mem, entry: LAYOUT.code,
  cr4: 0x40620n, // PAE, OSFXSR, OSXMMEXCPT, OSXSAVE
  regs: { rsp: BigInt(LAYOUT.stackTop), rflags: 0x2n },
  exitMmio: LAYOUT.stopMmio, maxExits: 8,
  hash: [AREA + 512, 64], // the XSAVE header
};

test("XSAVES/XRSTORS round trip and IA32_XSS at CPL 0 (64-bit) on tskvm; diff against the real KVM when its guest has XSAVES", async (t) => {
  const why = toolchainUnavailable() ?? (await tskvmUnavailable());
  if (why) return t.skip(why);
  const image = assemble(source(), LAYOUT.image);
  const ours = await runTskvm(image, INIT);
  assert.equal(ours.exits.length, 5, `four exits and the stop; tskvm stop ${ours.stop}`);
  assert.equal(ours.exits[0]!.regs.r8, 8n, "CPUID.(0DH,1):EAX[3]");
  const e2 = ours.exits[2]!.regs;
  assert.equal(e2.r9, 0x400921fb54442d18n, "ST0 = pi after XRSTORS");
  assert.equal((e2.r10 >> 11n) & 7n, 6n, "TOP after two pushes");
  assert.equal(e2.r11, 0x12345678n, "XMM0");
  assert.deepEqual([ours.exits[3]!.regs.r12, ours.exits[3]!.regs.r13], [0n, 0n], "IA32_XSS");
  const noReal = realKvmUnavailable();
  if (noReal) return t.skip(noReal);
  const real = runRealKvm(image, INIT);
  if (real.exits[0]?.regs.r8 !== 8n) return t.skip("the real KVM gives its guest no XSAVES (CPUID.(0DH,1):EAX[3] = 0)");
  assert.equal(ours.exits.length, real.exits.length, `exits: real ${real.exits.length} (${real.stop}), tskvm ${ours.exits.length} (${ours.stop})`);
  const d = compareRuns(real, ours);
  assert.equal(d, undefined, d && `exit ${d.index}: ${d.diffs.join("; ")}`);
});
