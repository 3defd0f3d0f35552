/**
 * arch/x86/kvm/cpuid.c: what KVM_GET_SUPPORTED_CPUID reports (the host processor's CPUID masked
 * by what KVM virtualizes, kvm_cpu_caps), the guest's table (KVM_SET_CPUID2 / KVM_GET_CPUID2),
 * and CPUID emulation on EXIT_REASON_CPUID (kvm_emulate_cpuid / kvm_cpuid).
 */

import { E2BIG, EINVAL } from "../../../uapi/errno.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import type { CpuidEntry, X86Vcpu } from "./kvm_host.js";

export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1 << 0;
/** KVM_MAX_CPUID_ENTRIES */
export const KVM_MAX_CPUID_ENTRIES = 256;

// Paravirtual leaves (arch/x86/include/uapi/asm/kvm_para.h).
export const KVM_CPUID_SIGNATURE = 0x40000000;
export const KVM_CPUID_FEATURES = 0x40000001;
/** "KVMKVMKVM\0\0\0" in EBX, ECX, EDX. */
export const KVM_SIGNATURE_EBX = 0x4b4d564b;
export const KVM_SIGNATURE_ECX = 0x564b4d56;
export const KVM_SIGNATURE_EDX = 0x4d;
export const KVM_FEATURE_CLOCKSOURCE = 0;
export const KVM_FEATURE_NOP_IO_DELAY = 1;
export const KVM_FEATURE_CLOCKSOURCE2 = 3;
export const KVM_FEATURE_PV_UNHALT = 7;
export const KVM_FEATURE_CLOCKSOURCE_STABLE_BIT = 24;

/** The PV features this KVM really implements (each bit needs its MSR / hypercall behind it). */
export const KVM_PV_FEATURES_SUPPORTED = (1 << KVM_FEATURE_CLOCKSOURCE) | (1 << KVM_FEATURE_NOP_IO_DELAY) |
  (1 << KVM_FEATURE_CLOCKSOURCE2) | (1 << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT);

/** CPUID bits KVM virtualizes, by leaf register (kvm_set_cpu_caps); the rest of the host's are hidden. */
const bits = (...b: number[]): number => b.reduce((m, x) => (m | (1 << x)) >>> 0, 0);
/** CPUID.1:EDX: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36 CLFLUSH MMX FXSR XMM XMM2 SS */
const CPUID_1_EDX_MASK = bits(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 23, 24, 25, 26, 27);
/** CPUID.1:ECX: SSE3 PCLMULQDQ SSSE3 FMA CX16 PCID SSE4.1 SSE4.2 X2APIC MOVBE POPCNT AES XSAVE AVX F16C RDRAND (no VMX: no nested; no MONITOR) */
const CPUID_1_ECX_MASK = bits(0, 1, 9, 12, 13, 17, 19, 20, 21, 22, 23, 25, 26, 28, 29, 30);
export const X86_FEATURE_HYPERVISOR_ECX = 1 << 31;
export const X86_FEATURE_OSXSAVE_ECX = 1 << 27;
export const X86_FEATURE_X2APIC_ECX = 1 << 21;
/** CPUID.7.0:EBX: FSGSBASE BMI1 AVX2 FDP_EXCPTN_ONLY SMEP BMI2 ERMS INVPCID ZERO_FCS_FDS ADX SMAP CLFLUSHOPT CLWB SHA */
const CPUID_7_0_EBX_MASK = bits(0, 3, 5, 6, 7, 8, 9, 10, 13, 19, 20, 23, 24, 29);
/** CPUID.7.0:ECX: UMIP PKU? (not without PKRU state) -> UMIP, RDPID */
const CPUID_7_0_ECX_MASK = bits(2, 22);
/** CPUID.(0DH,1):EAX: XSAVEOPT XSAVEC XGETBV1 XSAVES */
const CPUID_D_1_EAX_MASK = bits(0, 1, 2, 3);
/**
 * IA32_XSS bits KVM lets a guest set (KVM_SUPPORTED_XSS and kvm_caps.supported_xss): none, as
 * the processor has no supervisor state component (CPUID.(0DH,1):ECX = 0). A guest's IA32_XSS
 * is therefore always 0 (kvm_set_msr_common refuses any set bit).
 */
export const KVM_SUPPORTED_XSS = 0;
/** CPUID.0x80000001:ECX: LAHF_LM ABM(LZCNT) PREFETCHW */
const CPUID_8000_0001_ECX_MASK = bits(0, 5, 8);
/** CPUID.0x80000001:EDX: SYSCALL NX GBPAGES RDTSCP LM */
const CPUID_8000_0001_EDX_MASK = bits(11, 20, 26, 27, 29);

export type HostCpuid = (leaf: number, subleaf: number, out: Int32Array) => void;

function entry(fn: number, index: number, flags: number, r: Int32Array): CpuidEntry {
  return { function: fn, index, flags, eax: r[0] >>> 0, ebx: r[1] >>> 0, ecx: r[2] >>> 0, edx: r[3] >>> 0 };
}

/**
 * kvm_dev_ioctl_get_cpuid(KVM_GET_SUPPORTED_CPUID): the leaves of the host processor, masked to
 * what KVM can give a guest, plus KVM's paravirtual leaves.
 */
export function kvmGetSupportedCpuid(host: HostCpuid): CpuidEntry[] {
  const r = new Int32Array(4);
  const out: CpuidEntry[] = [];
  host(0, 0, r);
  const maxBasic = Math.min(r[0] >>> 0, 0xd);
  out.push({ ...entry(0, 0, 0, r), eax: maxBasic });
  for (let fn = 1; fn <= maxBasic; fn++) {
    switch (fn) {
      case 1:
        host(1, 0, r);
        // x2APIC is emulated by KVM's LAPIC whatever the host has (kvm_cpu_cap_set(X86_FEATURE_X2APIC)).
        r[2] = ((r[2] & CPUID_1_ECX_MASK) | X86_FEATURE_HYPERVISOR_ECX | X86_FEATURE_X2APIC_ECX) | 0;
        r[3] &= CPUID_1_EDX_MASK;
        out.push(entry(1, 0, 0, r));
        break;
      case 4:
        // Deterministic cache parameters: one subleaf per cache until type 0.
        for (let i = 0; i < 8; i++) {
          host(4, i, r);
          out.push(entry(4, i, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, r));
          if ((r[0] & 0x1f) === 0) break;
        }
        break;
      case 6:
        // Thermal and power management: only ARAT (the APIC timer keeps running in deep C-states).
        r.fill(0);
        r[0] = 4;
        out.push(entry(6, 0, 0, r));
        break;
      case 7:
        host(7, 0, r);
        r[0] = 0;
        r[1] &= CPUID_7_0_EBX_MASK;
        r[2] &= CPUID_7_0_ECX_MASK;
        r[3] = 0;
        out.push(entry(7, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, r));
        break;
      case 0xa:
        // No virtual PMU.
        r.fill(0);
        out.push(entry(0xa, 0, 0, r));
        break;
      case 0xb:
        for (let i = 0; i < 4; i++) {
          host(0xb, i, r);
          out.push(entry(0xb, i, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, r));
          if (((r[2] >>> 8) & 0xff) === 0) break;
        }
        break;
      case 0xd:
        for (let i = 0; i < 2; i++) {
          host(0xd, i, r);
          if (i === 1) {
            // Subleaf 1: XSAVEOPT, XSAVEC, XGETBV with ECX=1, XSAVES (VMX "enable XSAVES/XRSTORS");
            // ECX:EDX = kvm_caps.supported_xss; EBX (size for XCR0 | XSS in use) is filled per guest.
            r[0] &= CPUID_D_1_EAX_MASK;
            r[2] &= KVM_SUPPORTED_XSS;
            r[3] = 0;
          }
          out.push(entry(0xd, i, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, r));
        }
        break;
      case 3: case 5: case 8: case 9: case 0xc:
        // Reserved or not virtualized (PSN, MONITOR/MWAIT, DCA): KVM reports zeros.
        r.fill(0);
        out.push(entry(fn, 0, 0, r));
        break;
      default:
        host(fn, 0, r);
        out.push(entry(fn, 0, 0, r));
    }
  }

  r.fill(0);
  r[0] = KVM_CPUID_FEATURES;
  r[1] = KVM_SIGNATURE_EBX;
  r[2] = KVM_SIGNATURE_ECX;
  r[3] = KVM_SIGNATURE_EDX;
  out.push(entry(KVM_CPUID_SIGNATURE, 0, 0, r));
  r.fill(0);
  r[0] = KVM_PV_FEATURES_SUPPORTED;
  out.push(entry(KVM_CPUID_FEATURES, 0, 0, r));

  host(0x80000000, 0, r);
  const maxExt = Math.min(r[0] >>> 0, 0x80000008);
  if (maxExt >= 0x80000000) {
    out.push({ ...entry(0x80000000, 0, 0, r), eax: maxExt });
    for (let fn = 0x80000001; fn <= maxExt; fn++) {
      host(fn, 0, r);
      if (fn === 0x80000001) {
        r[0] = 0;
        r[1] = 0;
        r[2] &= CPUID_8000_0001_ECX_MASK;
        r[3] &= CPUID_8000_0001_EDX_MASK;
      } else if (fn === 0x80000005 || fn === 0x80000007) {
        r.fill(0);
      }
      out.push(entry(fn, 0, 0, r));
    }
  }
  return out;
}

/** Copy a supported-CPUID result into a caller's array of `nent` entries (E2BIG when it does not fit). */
export function checkCpuidNent(nent: number, have: number, ioctl: string): void {
  if (nent < have) throw new KvmError(E2BIG, ioctl, `nent ${nent} < ${have}`);
}

/** kvm_vcpu_ioctl_set_cpuid2(): validate and install the guest's table. */
export function kvmVcpuSetCpuid2(vcpu: X86Vcpu, entries: CpuidEntry[]): void {
  if (entries.length > KVM_MAX_CPUID_ENTRIES) throw new KvmError(E2BIG, "KVM_SET_CPUID2", `${entries.length} entries`);
  const copy = entries.map((e) => ({ function: e.function >>> 0, index: e.index >>> 0, flags: e.flags >>> 0, eax: e.eax >>> 0, ebx: e.ebx >>> 0, ecx: e.ecx >>> 0, edx: e.edx >>> 0 }));
  // kvm_check_cpuid(): the guest's physical-address width must be sane.
  const ext8 = findEntry(copy, 0x80000008, 0);
  const maxphyaddr = ext8 ? ext8.eax & 0xff : 36;
  if (ext8 && (maxphyaddr < 32 || maxphyaddr > 52)) throw new KvmError(EINVAL, "KVM_SET_CPUID2", `MAXPHYADDR ${maxphyaddr}`);
  vcpu.arch.cpuidEntries = copy;
  vcpu.arch.maxphyaddr = maxphyaddr;
  vcpu.arch.ops.vcpuAfterSetCpuid?.(vcpu);
}

/** kvm_find_cpuid_entry_index() */
export function findEntry(entries: CpuidEntry[], fn: number, index: number): CpuidEntry | undefined {
  for (const e of entries) {
    if (e.function === fn && ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) === 0 || e.index === index)) return e;
  }
  return undefined;
}

/** guest_cpuid_has() for a (leaf, register, bit) feature. */
export function guestCpuidHas(vcpu: X86Vcpu, fn: number, index: number, reg: "eax" | "ebx" | "ecx" | "edx", bit: number): boolean {
  const e = findEntry(vcpu.arch.cpuidEntries, fn, index);
  return e !== undefined && ((e[reg] >>> bit) & 1) === 1;
}

/**
 * kvm_cpuid(): look up (fn, index) in the guest's table into out[0..3]. A basic or extended leaf
 * above the table's maximum returns the highest basic leaf, as Intel processors do
 * (get_out_of_range_cpuid_entry). Returns [found, usedMaxBasic] in flags bits 0 and 1.
 */
export function kvmCpuid(vcpu: X86Vcpu, fn: number, index: number, out: Float64Array): number {
  const entries = vcpu.arch.cpuidEntries;
  let e = findEntry(entries, fn, index);
  let usedMaxBasic = false;
  if (e === undefined) {
    const cls = fn & 0x80000000 ? 0x80000000 : fn & 0x40000000 ? 0x40000000 : 0;
    const max = findEntry(entries, cls, 0);
    if (cls !== 0x40000000 && (max === undefined || fn > max.eax)) {
      const basic = findEntry(entries, 0, 0);
      if (basic !== undefined) {
        e = findEntry(entries, basic.eax, index);
        usedMaxBasic = e !== undefined;
      }
    }
  }
  if (e === undefined) {
    out[0] = out[1] = out[2] = out[3] = 0;
    return usedMaxBasic ? 2 : 0;
  }
  out[0] = e.eax;
  out[1] = e.ebx;
  out[2] = e.ecx;
  out[3] = e.edx;
  // Fields that are per-vCPU at run time (CPUID.1:ECX.OSXSAVE follows CR4.OSXSAVE).
  if (fn === 1 && (vcpu.arch.cr4 & (1 << 18)) !== 0 && (e.ecx & (1 << 26)) !== 0) out[2] = (e.ecx | X86_FEATURE_OSXSAVE_ECX) >>> 0;
  else if (fn === 1) out[2] = (e.ecx & ~X86_FEATURE_OSXSAVE_ECX) >>> 0;
  return 1 | (usedMaxBasic ? 2 : 0);
}
