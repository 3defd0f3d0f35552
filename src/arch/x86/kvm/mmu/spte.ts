/**
 * arch/x86/kvm/mmu/spte.{h,c}: the encoding of shadow page-table entries (SPTEs) in the EPT
 * format the hardware walks (SDM Vol. 3C 29.3.2, Tables 29-1 to 29-6).
 *
 * An SPTE is 64 bits in host physical memory. Hot paths never build BigInts: an SPTE is handled
 * as its low and high 32-bit halves (`lo`, `hi`), as the hardware walker reads it. Physical
 * addresses are below 2^52, so a pfn (< 2^40) splits as pfn bits 0-19 -> lo bits 12-31 and pfn
 * bits 20-39 -> hi bits 0-19.
 *
 * Three kinds of SPTE, as in KVM:
 * - not present: 0 (no R/W/X bit);
 * - present (shadow-present): carries the software bit SPTE_MMU_PRESENT_MASK (bit 11, ignored by
 *   the processor), so "present to KVM" never depends on the hardware permission bits;
 * - MMIO: W|X without R, which the SDM defines as an EPT misconfiguration (29.3.3.1), so the next
 *   access to the gfn exits with EXIT_REASON_EPT_MISCONFIG and goes straight to the emulator
 *   without a memslot lookup. The MMIO SPTE records the gfn and the memslot generation it was
 *   made under, so an SPTE made before a memslot change is recognized as stale.
 */

export const PG_LEVEL_4K = 1;
export const PG_LEVEL_2M = 2;
export const PG_LEVEL_1G = 3;
/** 4-level EPT: the root table (PML4) is level 4. */
export const PT64_ROOT_4LEVEL = 4;
export const SPTE_ENT_PER_PAGE = 512;

// Low-half bits (bits 0-31 of the entry).
export const VMX_EPT_READABLE_MASK = 1 << 0;
export const VMX_EPT_WRITABLE_MASK = 1 << 1;
export const VMX_EPT_EXECUTABLE_MASK = 1 << 2;
export const VMX_EPT_RWX_MASK = 7;
export const VMX_EPT_MT_EPTE_SHIFT = 3;
export const VMX_EPT_MT_MASK = 7 << VMX_EPT_MT_EPTE_SHIFT;
export const VMX_EPT_IPAT_BIT = 1 << 6;
/** Bit 7 of a PDPTE/PDE: maps a 1 GiB / 2 MiB page. */
export const PT_PAGE_SIZE_MASK = 1 << 7;
export const VMX_EPT_ACCESS_BIT = 1 << 8;
export const VMX_EPT_DIRTY_BIT = 1 << 9;
/** Software bit 11: the SPTE is present as far as KVM is concerned. */
export const SPTE_MMU_PRESENT_MASK = 1 << 11;
/** W|X without R: an EPT misconfiguration by definition (SDM 29.3.3.1). */
export const VMX_EPT_MISCONFIG_WX_VALUE = VMX_EPT_WRITABLE_MASK | VMX_EPT_EXECUTABLE_MASK;

// High-half bits (bit n of the entry is bit n-32 of `hi`).
/** Software bit 57: the host mapping allows writes (KVM's SPTE_HOST_WRITABLE). */
export const SPTE_HOST_WRITABLE_HI = 1 << (57 - 32);
/** Software bit 58: KVM's MMU allows writes; W may be clear for dirty logging (SPTE_MMU_WRITABLE). */
export const SPTE_MMU_WRITABLE_HI = 1 << (58 - 32);
/** The pfn bits 20-39 live in hi bits 0-19 (entry bits 32-51). */
export const SPTE_PFN_HI_MASK = 0xfffff;

/** Memory types (SDM 11.11 / 29.3.7). */
export const MTRR_TYPE_UNCACHABLE = 0;
export const MTRR_TYPE_WRBACK = 6;

/**
 * MMIO SPTE layout: W|X in bits 0-2, generation bits 0-7 in entry bits 3-10, gfn in entry bits
 * 12-51, generation bits 8-16 in entry bits 54-62 (all ignored by the walker once it has seen the
 * misconfiguration). Generations wrap at MMIO_SPTE_GEN_MASK + 1.
 */
export const MMIO_SPTE_GEN_LOW_SHIFT = 3;
export const MMIO_SPTE_GEN_LOW_BITS = 8;
export const MMIO_SPTE_GEN_HIGH_SHIFT_HI = 54 - 32;
export const MMIO_SPTE_GEN_MASK = (1 << 17) - 1;

export function isShadowPresentPte(lo: number): boolean {
  return (lo & SPTE_MMU_PRESENT_MASK) !== 0;
}

/** is_mmio_spte(): the R/W/X bits hold the misconfiguration pattern. */
export function isMmioSpte(lo: number): boolean {
  return (lo & VMX_EPT_RWX_MASK) === VMX_EPT_MISCONFIG_WX_VALUE && (lo & SPTE_MMU_PRESENT_MASK) === 0;
}

/** is_large_pte() */
export function isLargePte(lo: number): boolean {
  return (lo & PT_PAGE_SIZE_MASK) !== 0;
}

/** is_last_spte(): a leaf at this level (4K level is always a leaf). */
export function isLastSpte(lo: number, level: number): boolean {
  return level === PG_LEVEL_4K || (lo & PT_PAGE_SIZE_MASK) !== 0;
}

export function isWritablePte(lo: number): boolean {
  return (lo & VMX_EPT_WRITABLE_MASK) !== 0;
}

export function isMmuWritableSpte(hi: number): boolean {
  return (hi & SPTE_MMU_WRITABLE_HI) !== 0;
}

/** spte_to_pfn() */
export function spteToPfn(lo: number, hi: number): number {
  return (hi & SPTE_PFN_HI_MASK) * 0x100000 + (lo >>> 12);
}

export function pfnLo(pfn: number): number {
  return (pfn % 0x100000) << 12;
}

export function pfnHi(pfn: number): number {
  return Math.floor(pfn / 0x100000) & SPTE_PFN_HI_MASK;
}

/** Pages covered by one entry at `level`: 1, 512, 512^2. */
export function kvmPagesPerHpage(level: number): number {
  return level === PG_LEVEL_4K ? 1 : level === PG_LEVEL_2M ? 512 : 262144;
}

/** SPTE_INDEX(): index of `gfn` in the table at `level`. */
export function spteIndex(gfn: number, level: number): number {
  // gfn < 2^40: level 4 needs a division (gfn >> 27 would lose bits above 31).
  return level === PG_LEVEL_4K ? gfn & 511 : Math.floor(gfn / kvmPagesPerHpage(level)) & 511;
}

/**
 * make_nonleaf_spte(): points to a child table; full RWX (permissions are decided at the leaf)
 * and the accessed bit, as KVM does when A/D bits are enabled.
 */
export function makeNonleafSpteLo(childPfn: number, adEnabled: boolean): number {
  return (pfnLo(childPfn) | SPTE_MMU_PRESENT_MASK | VMX_EPT_RWX_MASK | (adEnabled ? VMX_EPT_ACCESS_BIT : 0)) >>> 0;
}

/**
 * make_spte() for a leaf, low half. `writable` is the hardware W bit; the caller decides it (a
 * dirty-logged page is mapped read-only until its first write). `mtMask` comes from
 * kvm_x86_ops.get_mt_mask. A and D are preset on the access that created the mapping, as KVM
 * does, so the hardware does not have to set them right away.
 */
export function makeLeafSpteLo(pfn: number, level: number, writable: boolean, exec: boolean, mtMask: number, adEnabled: boolean, dirty: boolean): number {
  let lo = pfnLo(pfn) | SPTE_MMU_PRESENT_MASK | VMX_EPT_READABLE_MASK | mtMask;
  if (writable) lo |= VMX_EPT_WRITABLE_MASK;
  if (exec) lo |= VMX_EPT_EXECUTABLE_MASK;
  if (level > PG_LEVEL_4K) lo |= PT_PAGE_SIZE_MASK;
  if (adEnabled) lo |= VMX_EPT_ACCESS_BIT | (dirty && writable ? VMX_EPT_DIRTY_BIT : 0);
  return lo >>> 0;
}

export function makeLeafSpteHi(pfn: number, hostWritable: boolean, mmuWritable: boolean): number {
  let hi = pfnHi(pfn);
  if (hostWritable) hi |= SPTE_HOST_WRITABLE_HI;
  if (mmuWritable) hi |= SPTE_MMU_WRITABLE_HI;
  return hi;
}

/** make_mmio_spte(), low half. */
export function makeMmioSpteLo(gfn: number, gen: number): number {
  return (VMX_EPT_MISCONFIG_WX_VALUE | ((gen & 0xff) << MMIO_SPTE_GEN_LOW_SHIFT) | pfnLo(gfn)) >>> 0;
}

export function makeMmioSpteHi(gfn: number, gen: number): number {
  return (pfnHi(gfn) | (((gen >>> MMIO_SPTE_GEN_LOW_BITS) & 0x1ff) << MMIO_SPTE_GEN_HIGH_SHIFT_HI)) >>> 0;
}

/** get_mmio_spte_generation() */
export function getMmioSpteGeneration(lo: number, hi: number): number {
  return ((lo >>> MMIO_SPTE_GEN_LOW_SHIFT) & 0xff) | (((hi >>> MMIO_SPTE_GEN_HIGH_SHIFT_HI) & 0x1ff) << MMIO_SPTE_GEN_LOW_BITS);
}

/** get_mmio_spte_gfn() */
export function getMmioSpteGfn(lo: number, hi: number): number {
  return spteToPfn(lo, hi);
}

/** The memory-type bits KVM puts in a RAM leaf (vmx_get_mt_mask without non-coherent DMA): WB, ignore PAT. */
export const EPT_MT_MASK_WB = (MTRR_TYPE_WRBACK << VMX_EPT_MT_EPTE_SHIFT) | VMX_EPT_IPAT_BIT;
