/**
 * Guest CPUID the way kvmtool sets it (x86/cpuid.c): start from KVM_GET_SUPPORTED_CPUID and
 * give each vCPU its own APIC IDs before KVM_SET_CPUID2. Without this a vCPU has an empty
 * CPUID table, and KVM refuses EFER.LME and every other feature the guest looks up there.
 */
import { E2BIG } from "../../uapi/errno.js";
import type { KvmCpuid2, KvmCpuidEntry2 } from "../../uapi/kvm_structs.js";
import type { KvmSystemApi } from "../kvm_api.js";

/** KVM_GET_SUPPORTED_CPUID, growing the buffer on E2BIG as userspace must. */
export function supportedCpuid(kvm: KvmSystemApi): KvmCpuid2 {
  for (let nent = 64; ; nent *= 2) {
    try {
      return kvm.getSupportedCpuid(nent);
    } catch (e) {
      if ((e as { errno?: number }).errno !== E2BIG || nent >= 4096) throw e;
    }
  }
}

/** The table for vCPU `id`: leaf 1 EBX[31:24] is the initial APIC ID; leaves 0xB/0x1F EDX the x2APIC ID. */
export function cpuidForVcpu(base: KvmCpuid2, id: number): KvmCpuid2 {
  const entries = base.entries.map((e): KvmCpuidEntry2 => {
    const c = { ...e, padding: [...e.padding] };
    if (c.function === 1) c.ebx = ((c.ebx & 0x00ffffff) | (id << 24)) >>> 0;
    if (c.function === 0xb || c.function === 0x1f) c.edx = id >>> 0;
    return c;
  });
  return { nent: entries.length, entries };
}
