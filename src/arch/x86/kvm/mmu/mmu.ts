/**
 * arch/x86/kvm/mmu/mmu.c: the MMU entry points: the TDP page-fault path (kvm_mmu_page_fault ->
 * kvm_tdp_page_fault: gfn -> memslot -> hva -> pfn, page size, install), the MMIO-SPTE fast
 * path of EPT misconfigurations, and the memslot / mmu-notifier / dirty-log hooks that zap or
 * write-protect SPTEs.
 */

import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY } from "../../../../uapi/kvm.js";
import { KvmMrChange, type KvmMemorySlot } from "../../../../virt/kvm/kvm_host.js";
import type { X86Kvm, X86Vcpu } from "../kvm_host.js";
import type { Kvm } from "../../../../virt/kvm/kvm_main.js";
import { getMmioSpteGeneration, isMmioSpte, MMIO_SPTE_GEN_MASK, PG_LEVEL_2M, PG_LEVEL_4K } from "./spte.js";
import { kvmShadowWriteProtectMasked, kvmShadowWriteProtectRange, kvmShadowZapAllVcpus } from "./shadow.js";
import { kvmShadowAccountMemslot } from "./shadow_page.js";
import { faultin, kvmFaultinPfn } from "./faultin.js";
import { RET_PF_EMULATE, RET_PF_FIXED, RET_PF_INVALID, RET_PF_RETRY, RET_PF_SPURIOUS } from "./tdp_mmu.js";

/** Page-fault error code bits (PFERR_*, SDM 4.7 plus KVM's synthetic upper bits). */
export const PFERR_PRESENT_MASK = 1 << 0;
export const PFERR_WRITE_MASK = 1 << 1;
export const PFERR_USER_MASK = 1 << 2;
export const PFERR_RSVD_MASK = 1 << 3;
export const PFERR_FETCH_MASK = 1 << 4;
/** Bits 32/33 in KVM (PFERR_GUEST_FINAL/PAGE); kept as a separate flag word here. */
export const PFERR_GUEST_FINAL = 1;
export const PFERR_GUEST_PAGE = 2;

/** Something that can tell whether a host frame belongs to a 2 MiB compound page (host_pfn_mapping_level). */
export interface HostPageInfo {
  compoundHead(pfn: number): number;
  compoundOrder(pfn: number): number;
}

/** host_pfn_mapping_level(): the largest level the host maps `pfn` at, given the gfn's offset. */
function hostPfnMappingLevel(kvm: X86Kvm, gfn: number, pfn: number): number {
  const hostPages = kvm.arch.hostPages;
  if (hostPages === null) return PG_LEVEL_4K;
  const head = hostPages.compoundHead(pfn);
  const order = hostPages.compoundOrder(head);
  // The guest and host offsets inside the 2 MiB block must agree (slot alignment checked separately).
  if (order >= 9 && (head & 511) === 0 && (pfn & 511) === (gfn & 511)) return PG_LEVEL_2M;
  return PG_LEVEL_4K;
}

/** kvm_mmu_max_mapping_level() for the slot's geometry (lpage_info disallow rules). */
function slotMaxLevel(slot: KvmMemorySlot, gfn: number): number {
  if ((slot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0) return PG_LEVEL_4K;
  const n = 512;
  const ugfn = Math.floor(slot.userspaceAddr / 4096);
  // Guest and host must be equally aligned within a huge page, and the huge page must lie wholly in the slot.
  if ((slot.baseGfn - ugfn) % n !== 0) return PG_LEVEL_4K;
  const start = gfn - (gfn % n);
  if (start < slot.baseGfn || start + n > slot.baseGfn + slot.npages) return PG_LEVEL_4K;
  return PG_LEVEL_2M;
}

/**
 * kvm_tdp_page_fault(): resolve a guest-physical fault. Returns RET_PF_FIXED / SPURIOUS / RETRY
 * (resume), or RET_PF_EMULATE (MMIO or a write to a read-only slot: the emulator takes over).
 * Throws KvmError(EFAULT) when the host mapping behind the slot is gone (KVM_RUN -> -EFAULT).
 */
export function kvmTdpPageFault(vcpu: X86Vcpu, gpa: number, errorCode: number): number {
  const kvm = vcpu.kvm;
  const mmu = kvm.arch.mmu;
  const gfn = Math.floor(gpa / 4096);
  const write = (errorCode & PFERR_WRITE_MASK) !== 0;
  vcpu.stat.pf_taken = vcpu.stat.pf_taken + 1;
  const slot = kvm.gfnToMemslot(gfn);
  if (slot === null) {
    // kvm_handle_noslot_fault(): cache the MMIO gfn in an SPTE so the next access is a misconfig.
    mmu.mapMmio(gfn, kvm.arch.memslotsGeneration & MMIO_SPTE_GEN_MASK);
    vcpu.stat.pf_mmio_spte_created = vcpu.stat.pf_mmio_spte_created + 1;
    return RET_PF_EMULATE;
  }
  const readonly = (slot.flags & KVM_MEM_READONLY) !== 0;
  if (write && readonly) return RET_PF_EMULATE;

  const fr = kvmFaultinPfn(kvm, slot, gfn, write);
  if (fr !== 0) return fr;
  const pfn = faultin.pfn, hostWritable = faultin.hostWritable;

  const logDirty = (slot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
  let level = Math.min(slotMaxLevel(slot, gfn), hostPfnMappingLevel(kvm, gfn, pfn));
  if (level > PG_LEVEL_4K && hostWritable === false && !readonly) level = PG_LEVEL_4K;
  const span = level === PG_LEVEL_2M ? 512 : 1;
  const off = gfn % span;
  // Dirty logging maps read-only until the first write so every written page is recorded.
  const writable = hostWritable && !readonly && (!logDirty || write);
  const r = mmu.map({
    gfn: gfn - off, level, pfn: pfn - off, writable, hostWritable, mmuWritable: !readonly, dirty: write, exec: true,
  });
  if (writable && logDirty) kvm.markPageDirty(vcpu, gfn);
  if (r === RET_PF_FIXED) vcpu.stat.pf_fixed = vcpu.stat.pf_fixed + 1;
  else if (r === RET_PF_SPURIOUS) vcpu.stat.pf_spurious = vcpu.stat.pf_spurious + 1;
  return r;
}

const lookupOut = new Float64Array(3);

/**
 * handle_mmio_page_fault(): an EPT misconfiguration at `gpa`. A current MMIO SPTE means
 * "emulate"; a stale one (made before a memslot change) is dropped and the fault retried as a
 * normal one (RET_PF_INVALID).
 */
export function handleMmioPageFault(vcpu: X86Vcpu, gpa: number): number {
  const mmu = vcpu.kvm.arch.mmu;
  const gfn = Math.floor(gpa / 4096);
  if (!mmu.lookup(gfn, lookupOut) || !isMmioSpte(lookupOut[0])) return RET_PF_RETRY;
  if (getMmioSpteGeneration(lookupOut[0], lookupOut[1]) === (vcpu.kvm.arch.memslotsGeneration & MMIO_SPTE_GEN_MASK)) return RET_PF_EMULATE;
  mmu.zapGfnRange(gfn, gfn + 1);
  return RET_PF_INVALID;
}

/**
 * kvm_mmu_page_fault(): the entry from the vendor exit handlers (EPT violation: `errorCode` from
 * the exit qualification; EPT misconfig: PFERR_RSVD_MASK).
 */
export function kvmMmuPageFault(vcpu: X86Vcpu, gpa: number, errorCode: number): number {
  let r = RET_PF_INVALID;
  if ((errorCode & PFERR_RSVD_MASK) !== 0) {
    r = handleMmioPageFault(vcpu, gpa);
    if (r === RET_PF_EMULATE || r === RET_PF_RETRY) return r;
  }
  return kvmTdpPageFault(vcpu, gpa, errorCode & ~PFERR_RSVD_MASK);
}

/** kvm_flush_remote_tlbs(): the core's (every vCPU flushes its TLB before its next entry). */
function flushRemoteTlbs(kvm: X86Kvm): void {
  (kvm as unknown as Kvm).flushRemoteTlbs();
}

/** kvm_arch_commit_memory_region(): a new generation (stale MMIO SPTEs), and dirty-log transitions. */
export function kvmMmuCommitMemoryRegion(kvm: X86Kvm, old: KvmMemorySlot | null, next: KvmMemorySlot | null, change: KvmMrChange): void {
  kvm.arch.memslotsGeneration = (kvm.arch.memslotsGeneration + 1) & MMIO_SPTE_GEN_MASK;
  kvmShadowAccountMemslot(kvm, (next?.npages ?? 0) - (old?.npages ?? 0));
  if (change === KvmMrChange.FLAGS_ONLY && next !== null) {
    const wasLogging = old !== null && (old.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    const logging = (next.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    if (logging && !wasLogging) {
      // kvm_mmu_slot_remove_write_access() (+ huge pages dropped so they refault at 4K).
      let flush = kvm.arch.mmu.writeProtectRange(next.baseGfn, next.baseGfn + next.npages);
      if (kvmShadowWriteProtectRange(kvm, next.baseGfn, next.baseGfn + next.npages)) flush = true;
      if (flush) flushRemoteTlbs(kvm);
    } else if (!logging && wasLogging) {
      // kvm_mmu_zap_collapsible_sptes(): let the slot be mapped huge again.
      if (kvm.arch.mmu.zapGfnRange(next.baseGfn, next.baseGfn + next.npages)) flushRemoteTlbs(kvm);
    }
  }
}

/** kvm_arch_flush_shadow_memslot() */
export function kvmMmuFlushShadowMemslot(kvm: X86Kvm, slot: KvmMemorySlot): void {
  let flush = kvm.arch.mmu.zapGfnRange(slot.baseGfn, slot.baseGfn + slot.npages);
  // Shadow leaves are found by gfn only while writable (the rmap): every shadow page goes (kvm_mmu_zap_all_fast).
  if (kvmShadowZapAllVcpus(kvm)) flush = true;
  if (flush) flushRemoteTlbs(kvm);
}

/** kvm_unmap_gfn_range() */
export function kvmMmuUnmapGfnRange(kvm: X86Kvm, _slot: KvmMemorySlot, startGfn: number, endGfn: number): boolean {
  let flush = kvm.arch.mmu.zapGfnRange(startGfn, endGfn);
  if (kvmShadowZapAllVcpus(kvm)) flush = true;
  if (flush) flushRemoteTlbs(kvm);
  return flush;
}

/** kvm_arch_mmu_enable_log_dirty_pt_masked() */
export function kvmMmuEnableLogDirtyPtMasked(kvm: X86Kvm, slot: KvmMemorySlot, gfnOffset: number, mask: number): void {
  let flush = kvm.arch.mmu.writeProtectMasked(slot.baseGfn + gfnOffset, mask);
  if (kvmShadowWriteProtectMasked(kvm, slot.baseGfn + gfnOffset, mask)) flush = true;
  if (flush) flushRemoteTlbs(kvm);
}
