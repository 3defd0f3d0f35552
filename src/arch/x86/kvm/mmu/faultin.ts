/**
 * __kvm_faultin_pfn() for both MMUs (TDP and shadow): the host frame behind a guest frame number
 * for a fault, or what the fault handler must do instead.
 */
import { EFAULT } from "../../../../uapi/errno.js";
import { KVM_MEM_READONLY } from "../../../../uapi/kvm.js";
import { KvmError } from "../../../../virt/kvm/kvm_error.js";
import { KVM_PFN_ERR_RO_FAULT, KVM_PFN_NOSLOT, type KvmMemorySlot } from "../../../../virt/kvm/kvm_host.js";
import type { X86Kvm } from "../kvm_host.js";
import { RET_PF_EMULATE, RET_PF_RETRY } from "./tdp_mmu.js";

/** The frame and whether the host mapping is writable, filled by kvmFaultinPfn (no allocation per fault). */
export const faultin = { pfn: 0, hostWritable: false };

/**
 * Resolve `gfn` in `slot` for a fault (write or read). A read still asks for a writable host page
 * when the slot allows it, so the new entry can be writable from the start (map_writable).
 * Returns 0 with `faultin` filled, or RET_PF_EMULATE (a write to a read-only slot or page: MMIO
 * semantics) or RET_PF_RETRY (the slot went away). A host mapping that cannot be read is EFAULT.
 */
export function kvmFaultinPfn(kvm: X86Kvm, slot: KvmMemorySlot, gfn: number, write: boolean): number {
  const readonly = (slot.flags & KVM_MEM_READONLY) !== 0;
  if (write && readonly) return RET_PF_EMULATE;
  let pfn: number;
  let hostWritable = false;
  if (!readonly) {
    pfn = kvm.gfnToPfn(gfn, true);
    if (pfn >= 0) hostWritable = true;
    else if (!write) pfn = kvm.gfnToPfn(gfn, false);
  } else {
    pfn = kvm.gfnToPfn(gfn, false);
  }
  if (pfn === KVM_PFN_NOSLOT) return RET_PF_RETRY;
  if (pfn === KVM_PFN_ERR_RO_FAULT) return RET_PF_EMULATE;
  if (pfn < 0) throw new KvmError(EFAULT, "KVM_RUN", `gfn 0x${gfn.toString(16)}: host mapping not accessible`);
  faultin.pfn = pfn;
  faultin.hostWritable = hostWritable;
  return 0;
}
