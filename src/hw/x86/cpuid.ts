/**
 * The CPU's own CPUID (SDM Vol. 2 CPUID): an Intel family-6 processor with exactly the features
 * this core implements. KVM builds the guest's CPUID from these leaves.
 */
import type { X86Cpu } from "./cpu.js";
import { MAXPHYADDR } from "./paging.js";
import { IA32_XSS_SUPPORTED, XCR0_SUPPORTED, XSAVE_AREA_SIZE } from "./ops/xsave.js";

// Leaf 1 EDX (one feature per line group; the SIMD bits are added where their instructions are).
const L1_EDX = (1 << 0) /* FPU */ | (1 << 24) /* FXSR */
  | (1 << 1) /* VME */ | (1 << 2) /* DE */ | (1 << 3) /* PSE */ | (1 << 4) /* TSC */ | (1 << 5) /* MSR */
  | (1 << 6) /* PAE */ | (1 << 8) /* CX8 */ | (1 << 9) /* APIC */ | (1 << 11) /* SEP */ | (1 << 12) /* MTRR */
  | (1 << 13) /* PGE */ | (1 << 15) /* CMOV */ | (1 << 16) /* PAT */ | (1 << 17) /* PSE36 */;
const L1_ECX = (1 << 5) /* VMX */ | (1 << 13) /* CX16 */ | (1 << 17) /* PCID */
  | (1 << 22) /* MOVBE */ | (1 << 23) /* POPCNT */ | (1 << 26) /* XSAVE */ | (1 << 30) /* RDRAND */;
// MMX, SSE, SSE2 (EDX) and SSE3, SSSE3, SSE4.1, SSE4.2 (ECX): ops/sse*.ts.
const L1_EDX_SIMD = (1 << 23) /* MMX */ | (1 << 25) /* SSE */ | (1 << 26) /* SSE2 */;
const L1_ECX_SIMD = (1 << 0) /* SSE3 */ | (1 << 9) /* SSSE3 */ | (1 << 19) /* SSE4.1 */ | (1 << 20) /* SSE4.2 */;
const L7_EBX = (1 << 6) /* FDP_EXCPTN_ONLY */ | (1 << 13) /* FCS/FDS deprecated */ | (1 << 0) /* FSGSBASE */ | (1 << 3) /* BMI1 */ | (1 << 7) /* SMEP */ | (1 << 8) /* BMI2 */ | (1 << 10) /* INVPCID */
  | (1 << 18) /* RDSEED */ | (1 << 19) /* ADX */ | (1 << 20) /* SMAP */;
const X1_ECX = (1 << 0) /* LAHF/SAHF in 64-bit */ | (1 << 5) /* LZCNT */;
const X1_EDX = (1 << 11) /* SYSCALL */ | (1 << 20) /* NX */ | (1 << 26) /* 1 GiB pages */ | (1 << 27) /* RDTSCP */ | (1 << 29) /* LM */;

function str4(s: string, i: number): number {
  return s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24);
}

const VENDOR = "GenuineIntel";
const BRAND = "tskvm emulated x86-64 processor".padEnd(48, "\0");

export function cpuid(c: X86Cpu, leaf: number, subleaf: number, out: Int32Array): void {
  leaf = leaf >>> 0;
  out[0] = 0; out[1] = 0; out[2] = 0; out[3] = 0;
  switch (leaf) {
    case 0: out[0] = 0xd; out[1] = str4(VENDOR, 0); out[3] = str4(VENDOR, 4); out[2] = str4(VENDOR, 8); return;
    case 1: {
      out[0] = 0x000806f0 | 0; // family 6, model 0x8f
      out[1] = (1 << 16) | (8 << 8); // 1 logical processor, CLFLUSH line 64 bytes
      out[2] = L1_ECX | L1_ECX_SIMD | ((c.state.cr4 & (1 << 18)) ? 1 << 27 : 0); // OSXSAVE mirrors CR4
      out[3] = L1_EDX | L1_EDX_SIMD;
      return;
    }
    case 7: if ((subleaf >>> 0) === 0) { out[0] = 0; out[1] = L7_EBX; out[2] = 1 << 2 /* UMIP */; } return;
    case 0xd:
      // XSAVE components x87 and SSE, both in the legacy region: the area is 512 + 64 bytes
      // whatever XCR0 holds. Subleaf 1: XSAVEOPT, XSAVEC, XGETBV with ECX=1, XSAVES/XRSTORS;
      // EBX is the XSAVES area size for XCR0 | IA32_XSS (also 576: both components are legacy),
      // ECX:EDX the IA32_XSS bits supported (none).
      if (subleaf === 0) { out[0] = XCR0_SUPPORTED; out[1] = XSAVE_AREA_SIZE; out[2] = XSAVE_AREA_SIZE; out[3] = 0; }
      else if (subleaf === 1) { out[0] = 0xf; out[1] = XSAVE_AREA_SIZE; out[2] = IA32_XSS_SUPPORTED; out[3] = 0; }
      return;
    case 0x80000000: out[0] = 0x80000008; return;
    case 0x80000001: out[2] = X1_ECX; out[3] = X1_EDX; return;
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const b = (leaf - 0x80000002) * 16;
      for (let i = 0; i < 4; i++) out[i] = str4(BRAND, b + i * 4);
      return;
    }
    case 0x80000008: out[0] = MAXPHYADDR | (48 << 8); return;
  }
  // Leaves above the maximum return the highest basic leaf's data on Intel; this core returns zeros for unknown leaves below it.
  if (leaf > 0xd && leaf < 0x80000000) cpuid(c, 0xd, subleaf, out);
}
