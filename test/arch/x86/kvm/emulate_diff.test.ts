/**
 * The MMIO emulator against the real KVM: a 64-bit ring-3 guest (native on this machine's
 * kvm_pvm, whose MMIO exits come from KVM's own emulator) runs read-modify-write, exchange, bit,
 * string and stack instructions on an unbacked GPA; both sides must produce the same sequence of
 * KVM_EXIT_MMIO exits (address, length, direction, data) with the same registers and flags at
 * each. Reads are answered with zeroes on both sides (tools/kvm-runner's rule).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { realKvmUnavailable, runRealKvm, type ExitRecord, type InitState } from "../../../diff/harness.js";
import { assemble, toolchainUnavailable } from "../../../diff/asm.js";
import { runTskvm, tskvmUnavailable } from "../../../diff/tskvm.js";
import { LAYOUT } from "../../../diff/gen.js";

const BODY = `
	mov $0x300100, %rbx
	mov $0x11223344, %eax
	addl %eax, 0(%rbx)
	orb $0x5a, 4(%rbx)
	xchg %rcx, 8(%rbx)
	btsl $3, 0x10(%rbx)
	incw 0x14(%rbx)
	negq 0x18(%rbx)
	notl 0x1c(%rbx)
	movzbl 0x20(%rbx), %edx
	movsbq 0x21(%rbx), %r8
	cmpl $5, 0x24(%rbx)
	testb $1, 0x28(%rbx)
	subl $7, 0x2c(%rbx)
	lea 0x40(%rbx), %rdi
	mov $${LAYOUT.data}, %rsi
	mov $2, %ecx
	cld
	rep movsq
	lea 0x60(%rbx), %rdi
	mov $0x7777, %eax
	mov $3, %ecx
	rep stosw
	pushq 0x30(%rbx)
	popq 0x38(%rbx)
	movnti %eax, 0x70(%rbx)
	xaddl %eax, 0x74(%rbx)
	cmpxchgl %edx, 0x78(%rbx)
	shll $4, 0x7c(%rbx)
	movl %eax, 0xefe(%rbx)
	movl 0xefe(%rbx), %edx
	lea 0x80(%rbx), %rsi
	mov $${LAYOUT.data} + 16, %rdi
	mov $4, %ecx
	repe cmpsb
	std
	lea 0x98(%rbx), %rdi
	mov $2, %ecx
	rep stosl
	cld
	movl $1, ${LAYOUT.stopMmio}
`;

function image(): Uint8Array {
  const source = [
    `pml4:\t.quad ${LAYOUT.pdpt} + 7`, "\t.fill 511, 8, 0",
    `pdpt:\t.quad ${LAYOUT.pd} + 7`, "\t.fill 511, 8, 0",
    "pd:", "\t.set i, 0", "\t.rept 512", "\t.quad (i << 21) | 0x87", "\t.set i, i + 1", "\t.endr",
    "\t.code64", "code:", BODY,
    `\t.fill ${LAYOUT.data} - ${LAYOUT.image} - (. - pml4), 1, 0xcc`,
    "data:\t.quad 0x0102030405060708, 0x1112131415161718, 0x0000000000090000",
    "\t.fill 4096, 1, 0",
    "",
  ].join("\n");
  return assemble(source, LAYOUT.image);
}

const INIT: InitState = {
  mode: "long64", cpl: 3, cr3: BigInt(LAYOUT.pml4), gpa: LAYOUT.image, mem: LAYOUT.mem, entry: LAYOUT.code,
  regs: { rsp: BigInt(LAYOUT.stackTop), rflags: 0x202n, rcx: 0xaabbn }, exitMmio: LAYOUT.stopMmio, maxExits: 64,
};

/** Arithmetic flags, as both sides must leave them (AF/PF/SF/ZF/CF/OF and the fixed bit 1). */
const FLAGS = 0x8d5n | 2n;

function summary(e: ExitRecord): string {
  const m = e.mmio ? ` ${e.mmio.write ? "W" : "R"} ${e.mmio.addr.toString(16)}/${e.mmio.len} ${e.mmio.data}` : "";
  const r = e.regs;
  const regs = [r.rip, r.rax, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.r8].map((v) => v.toString(16)).join(" ");
  return `${e.exit}${m} | ${regs} fl=${(r.rflags & FLAGS).toString(16)}`;
}

test("real KVM vs tskvm: MMIO exits of RMW, XCHG, BT*, MOVZX/MOVSX, REP MOVS/STOS (both directions), REPE CMPS, PUSH/POP m, MOVNTI, XADD, CMPXCHG, shifts, page-crossing accesses", async (t) => {
  const why = toolchainUnavailable() ?? realKvmUnavailable() ?? (await tskvmUnavailable());
  if (why) return t.skip(why);
  const img = image();
  const real = runRealKvm(img, INIT);
  const ts = await runTskvm(img, INIT);
  assert.equal(real.stop, "exit-mmio", `real KVM stopped with ${real.stop}`);
  assert.deepEqual(ts.exits.map(summary), real.exits.map(summary));
  assert.ok(real.exits.length > 30, `${real.exits.length} exits`);
});
