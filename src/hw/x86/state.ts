/**
 * Architectural state of one x86-64 logical processor, in the representation every part of
 * hw/x86 shares (the executor, the page walker, VMX entry/exit).
 *
 * Representation rules (no BigInt on hot paths):
 * - 64-bit GPRs are lo/hi 32-bit halves in `gpr` (index 2*n = low half, 2*n+1 = high half),
 *   register numbers as in the ModRM encoding (0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI,
 *   7 RDI, 8-15 R8-R15).
 * - Addresses that are architecturally canonical (RIP, linear addresses, segment bases,
 *   descriptor-table bases, DR0-3) are JS numbers holding the sign-extended value, so
 *   0xffffffff81000000 is -0x7f000000. Canonical values lie in [-2^56, 2^56) and are exact
 *   in a double. Outside 64-bit mode RIP and linear addresses are in [0, 2^32).
 * - Physical addresses (CR3, EPTP, hpa) are non-negative numbers < 2^52.
 * - Other 64-bit quantities (MSR values) are lo/hi pairs.
 * - Segment access rights use the VMCS access-rights format (SDM Vol. 3C 25.4.1, Table 25-2),
 *   so VM entry/exit copy them unchanged.
 */

import { X87State } from "./fp/x87_state.js";

export const enum Reg {
  RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7,
  R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15,
}

/** Segment register index; the order matches the VMCS guest-state field order. */
export const enum Seg {
  ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, LDTR = 6, TR = 7,
}

/** VMCS-format access rights (SDM Table 25-2). */
export const AR_TYPE_MASK = 0xf;
export const AR_S = 1 << 4;
export const AR_DPL_SHIFT = 5;
export const AR_P = 1 << 7;
export const AR_AVL = 1 << 12;
export const AR_L = 1 << 13;
export const AR_DB = 1 << 14;
export const AR_G = 1 << 15;
export const AR_UNUSABLE = 1 << 16;

export const enum ActivityState {
  ACTIVE = 0,
  HLT = 1,
  SHUTDOWN = 2,
  WAIT_SIPI = 3,
}

/** Interruptibility state bits (SDM 25.4.2, Table 25-3). */
export const INTR_BLOCKING_STI = 1 << 0;
export const INTR_BLOCKING_MOV_SS = 1 << 1;
export const INTR_BLOCKING_SMI = 1 << 2;
export const INTR_BLOCKING_NMI = 1 << 3;

export class X86State {
  readonly gpr = new Int32Array(32);
  /** RIP of the next instruction to execute (canonical number). */
  rip = 0;
  /** Segment selector, cached base, byte-granular limit and access rights, indexed by Seg. */
  readonly segSel = new Uint16Array(8);
  readonly segBase = new Float64Array(8);
  readonly segLimit = new Uint32Array(8);
  readonly segAr = new Uint32Array(8);
  gdtrBase = 0;
  gdtrLimit = 0;
  idtrBase = 0;
  idtrLimit = 0;
  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  /** CR8 / TPR[7:4] */
  cr8 = 0;
  efer = 0;
  /**
   * PDPTE0-3, the processor's PAE page-directory-pointer registers (SDM Vol. 3A 4.4.1): PDPTE i
   * at [2i] (low half) and [2i+1] (high half). Loaded from the table at CR3 by MOV to CR0/CR3/CR4
   * and by VM entry (from the VMCS with EPT); the PAE walk uses them, never the PDPTEs in memory.
   */
  readonly pdpte = new Int32Array(8);
  readonly dr = new Float64Array(8);
  /** Interruptibility state (INTR_BLOCKING_*), kept in the VMCS format. */
  interruptibility = 0;
  activityState: ActivityState = ActivityState.ACTIVE;
  /** XCR0 */
  xcr0 = 1;
  /** x87 FPU; MMX registers MM0-7 alias the mantissas of its physical registers R0-R7 (SDM Vol. 1 9.5). */
  readonly fpu = new X87State();
  /**
   * XMM0-15, register n at words [n*4, n*4+4) (little-endian lanes), followed by XMM_SCRATCH
   * spare registers into which a memory operand is loaded so every operation is register-register
   * (fp/simd_int.ts SimdRegs works over this whole array).
   */
  readonly xmm = new Int32Array((16 + XMM_SCRATCH) * 4);
  /** MXCSR (SDM Vol. 1 10.2.3); power-up value 0x1F80. */
  mxcsr = 0x1f80;
  /**
   * FERR#: set when a waiting x87 instruction met a pending unmasked exception with CR0.NE=0
   * (SDM Vol. 1 8.7). The IRQ 13 path behind it is not modelled; the instruction goes on as if
   * IGNNE# were asserted.
   */
  fpuFerr = 0;
}

/** Spare XMM slots after XMM15 (see X86State.xmm). */
export const XMM_SCRATCH = 2;
