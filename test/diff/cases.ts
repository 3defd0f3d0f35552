/**
 * Fixed differential cases with known outcomes, shared by the real-KVM and tskvm tests.
 */
import type { InitState } from "./harness.js";

/** guests/hello/hello.S run with AL=2, BL=3: prints "5\n" and halts. */
export const HELLO_INIT: InitState = { mode: "real16", gpa: 0x1000, mem: 0x10000, regs: { rax: 2n, rbx: 3n } };

/** Real mode: IN from port 0x60 (dword), OUT of it to 0xf4: exercises the harness's IN pattern. */
export const IN_PATTERN_SOURCE = `
	.code16
	mov $0x60, %dx
	inl (%dx), %eax
	outl %eax, $0xf4
`;
export const IN_PATTERN_INIT: InitState = { mode: "real16", gpa: 0x1000, mem: 0x10000 };

/** Number of generated cases and their shape; the differential suite stays within seconds. */
export const GEN_SEEDS = Array.from({ length: 48 }, (_, i) => 0x5eed0000 + i);
/** Compatibility-mode (32-bit code under long mode) cases. */
export const GEN_SEEDS_COMPAT = Array.from({ length: 24 }, (_, i) => 0xc0de0000 + i);
/** 32-bit protected mode at CPL 0, paging off (kvm_pvm emulates these instruction by instruction). */
export const GEN_SEEDS_PROT32 = Array.from({ length: 48 }, (_, i) => 0x9e320000 + i);
/** Real-address mode. */
export const GEN_SEEDS_REAL16 = Array.from({ length: 48 }, (_, i) => 0x9e160000 + i);
export const GEN_BLOCKS = 40;
export const GEN_INSNS = 12;
