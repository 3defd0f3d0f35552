/**
 * arch/x86/kvm/mmu/tdp_mmu.c: the two-dimensional-paging MMU. It owns one EPT hierarchy per VM
 * (4 levels, tables in host physical memory taken from the host page allocator), installs
 * leaves on EPT violations, and zaps ranges when memslots change or the host mapping goes away.
 *
 * Entries are read and written as 32-bit halves through PhysMem's chunk views (spte.ts), the
 * same way the hardware walker reads them.
 */

import type { PhysMem } from "../../../../hw/physmem.js";
import {
  PG_LEVEL_1G, PG_LEVEL_2M, PG_LEVEL_4K, PT64_ROOT_4LEVEL, SPTE_ENT_PER_PAGE, VMX_EPT_DIRTY_BIT,
  VMX_EPT_WRITABLE_MASK, isLastSpte, isMmioSpte, isShadowPresentPte, kvmPagesPerHpage,
  makeLeafSpteHi, makeLeafSpteLo, makeMmioSpteHi, makeMmioSpteLo, makeNonleafSpteLo, spteIndex,
  spteToPfn,
} from "./spte.js";

/** What the TDP MMU needs from the host page allocator (host/page_alloc.ts). */
export interface MmuPageAllocator {
  /** One zeroed 4 KiB frame; returns its pfn (throws when memory is exhausted). */
  allocPage(): number;
  /** Give a frame back. */
  putPage(pfn: number): void;
}

/** enum ret_pf (mmu_internal.h): outcome of a TDP page fault. */
export const RET_PF_CONTINUE = 0;
export const RET_PF_RETRY = 1;
export const RET_PF_EMULATE = 2;
export const RET_PF_WRITE_PROTECTED = 3;
export const RET_PF_INVALID = 4;
export const RET_PF_FIXED = 5;
export const RET_PF_SPURIOUS = 6;

/** The VM-wide page counters this MMU maintains (kvm->stat, KVM's names). */
export interface TdpMmuVmStat {
  pages_4k: number;
  pages_2m: number;
  pages_1g: number;
}

/** A leaf to install (struct kvm_page_fault, the parts the map step uses). */
export interface TdpLeaf {
  gfn: number;
  /** PG_LEVEL_* of the mapping (the gfn and pfn are aligned to it by the caller). */
  level: number;
  pfn: number;
  writable: boolean;
  hostWritable: boolean;
  mmuWritable: boolean;
  /** Set the dirty bit right away (write fault). */
  dirty: boolean;
  exec: boolean;
}

export class TdpMmu {
  /** pfn of the PML4 table, or -1 before the first fault (kvm_tdp_mmu_get_vcpu_root_hpa allocates it). */
  private rootPfn = -1;
  /** Frames holding tables, for teardown. */
  private readonly tablePages = new Set<number>();

  constructor(
    private readonly physmem: PhysMem,
    private readonly pageAlloc: MmuPageAllocator,
    private readonly stat: Record<string, number>,
    /** EPTP bit 6: the processor maintains accessed/dirty flags, so KVM presets them on creation. */
    readonly adEnabled: boolean,
    /** kvm_x86_ops.get_mt_mask for RAM. */
    private readonly mtMask: number,
  ) {}

  /** kvm_tdp_mmu_get_vcpu_root_hpa(): the hpa of the root table, allocating it on first use. */
  rootHpa(): number {
    if (this.rootPfn < 0) this.rootPfn = this.allocTable();
    return this.rootPfn * 4096;
  }

  get hasRoot(): boolean {
    return this.rootPfn >= 0;
  }

  private allocTable(): number {
    const pfn = this.pageAlloc.allocPage();
    this.physmem.zeroFrame(pfn);
    this.tablePages.add(pfn);
    return pfn;
  }

  private freeTable(pfn: number): void {
    this.tablePages.delete(pfn);
    this.pageAlloc.putPage(pfn);
  }

  private accountLeaf(level: number, delta: number): void {
    const s = this.stat;
    if (level === PG_LEVEL_4K) s.pages_4k = (s.pages_4k ?? 0) + delta;
    else if (level === PG_LEVEL_2M) s.pages_2m = (s.pages_2m ?? 0) + delta;
    else s.pages_1g = (s.pages_1g ?? 0) + delta;
  }

  /**
   * kvm_tdp_mmu_map(): walk from the root to `leaf.level`, creating missing tables, replacing a
   * huge leaf or an MMIO SPTE in the way, and install the leaf. Returns RET_PF_FIXED, or
   * RET_PF_SPURIOUS when an identical leaf was already there (another vCPU fixed it).
   */
  map(leaf: TdpLeaf): number {
    const lo = makeLeafSpteLo(leaf.pfn, leaf.level, leaf.writable, leaf.exec, this.mtMask, this.adEnabled, leaf.dirty);
    const hi = makeLeafSpteHi(leaf.pfn, leaf.hostWritable, leaf.mmuWritable);
    return this.install(leaf.gfn, leaf.level, lo, hi, true);
  }

  /** make_mmio_spte() + install at 4K: the gfn has no memslot. */
  mapMmio(gfn: number, generation: number): number {
    return this.install(gfn, PG_LEVEL_4K, makeMmioSpteLo(gfn, generation), makeMmioSpteHi(gfn, generation), false);
  }

  private install(gfn: number, goal: number, lo: number, hi: number, isLeafMapping: boolean): number {
    const pm = this.physmem;
    let tablePfn = this.rootPfn >= 0 ? this.rootPfn : (this.rootPfn = this.allocTable());
    for (let level = PT64_ROOT_4LEVEL; ; level--) {
      const t = pm.chunk32(tablePfn);
      const i = (pm.frameOffset(tablePfn) >>> 2) + spteIndex(gfn, level) * 2;
      const oldLo = t[i] >>> 0;
      const oldHi = t[i + 1] >>> 0;
      if (level === goal) {
        if (oldLo === lo && oldHi === hi) return RET_PF_SPURIOUS;
        if (isShadowPresentPte(oldLo)) {
          if (isLastSpte(oldLo, level)) this.accountLeaf(level, -1);
          else this.freeSubtree(spteToPfn(oldLo, oldHi), level - 1);
        }
        t[i + 1] = hi;
        t[i] = lo;
        if (isLeafMapping) this.accountLeaf(level, 1);
        return RET_PF_FIXED;
      }
      if (isShadowPresentPte(oldLo) && !isLastSpte(oldLo, level)) {
        tablePfn = spteToPfn(oldLo, oldHi);
        continue;
      }
      // Missing, MMIO, or a huge leaf that must give way to a smaller mapping.
      if (isShadowPresentPte(oldLo)) this.accountLeaf(level, -1);
      const child = this.allocTable();
      t[i + 1] = 0;
      t[i] = makeNonleafSpteLo(child, this.adEnabled);
      tablePfn = child;
    }
  }

  /**
   * Look up the SPTE mapping `gfn` (for tests, KVM_TRANSLATE-style queries and fast paths).
   * Writes [lo, hi, level] into `out`; returns false when nothing (not even MMIO) is installed.
   */
  lookup(gfn: number, out: Float64Array): boolean {
    if (this.rootPfn < 0) return false;
    const pm = this.physmem;
    let tablePfn = this.rootPfn;
    for (let level = PT64_ROOT_4LEVEL; level >= PG_LEVEL_4K; level--) {
      const t = pm.chunk32(tablePfn);
      const i = (pm.frameOffset(tablePfn) >>> 2) + spteIndex(gfn, level) * 2;
      const lo = t[i] >>> 0;
      const hi = t[i + 1] >>> 0;
      if (isMmioSpte(lo) || (isShadowPresentPte(lo) && isLastSpte(lo, level))) {
        out[0] = lo;
        out[1] = hi;
        out[2] = level;
        return true;
      }
      if (!isShadowPresentPte(lo)) return false;
      tablePfn = spteToPfn(lo, hi);
    }
    return false;
  }

  /**
   * kvm_tdp_mmu_zap_leafs(): remove every mapping (leaf and MMIO) of gfns in [start, end).
   * Tables wholly inside the range are freed. Returns true if a present leaf was removed (the
   * caller must flush the TLBs: INVEPT).
   */
  zapGfnRange(start: number, end: number): boolean {
    if (this.rootPfn < 0 || end <= start) return false;
    return this.zapRange(this.rootPfn, PT64_ROOT_4LEVEL, 0, start, end);
  }

  private zapRange(tablePfn: number, level: number, baseGfn: number, start: number, end: number): boolean {
    const pm = this.physmem;
    const t = pm.chunk32(tablePfn);
    const base = pm.frameOffset(tablePfn) >>> 2;
    const span = kvmPagesPerHpage(level);
    let flush = false;
    const first = Math.max(0, Math.floor((start - baseGfn) / span));
    const last = Math.min(SPTE_ENT_PER_PAGE - 1, Math.floor((end - 1 - baseGfn) / span));
    for (let idx = first; idx <= last; idx++) {
      const i = base + idx * 2;
      const lo = t[i] >>> 0;
      if ((lo & 7) === 0 && !isShadowPresentPte(lo)) continue;
      const entGfn = baseGfn + idx * span;
      const whole = entGfn >= start && entGfn + span <= end;
      if (isMmioSpte(lo)) {
        t[i] = 0;
        t[i + 1] = 0;
        continue;
      }
      if (isLastSpte(lo, level)) {
        // A huge leaf partly inside the range goes entirely; it refaults at a smaller size.
        t[i] = 0;
        t[i + 1] = 0;
        this.accountLeaf(level, -1);
        flush = true;
        continue;
      }
      const child = spteToPfn(lo, t[i + 1] >>> 0);
      if (whole) {
        t[i] = 0;
        t[i + 1] = 0;
        if (this.freeSubtree(child, level - 1)) flush = true;
        flush = true;
      } else if (this.zapRange(child, level - 1, entGfn, start, end)) {
        flush = true;
      }
    }
    return flush;
  }

  /** Free a table and everything under it, fixing the page counters. Returns true if a leaf was present. */
  private freeSubtree(tablePfn: number, level: number): boolean {
    const pm = this.physmem;
    const t = pm.chunk32(tablePfn);
    const base = pm.frameOffset(tablePfn) >>> 2;
    let hadLeaf = false;
    for (let idx = 0; idx < SPTE_ENT_PER_PAGE; idx++) {
      const lo = t[base + idx * 2] >>> 0;
      if (!isShadowPresentPte(lo)) continue;
      if (isLastSpte(lo, level)) {
        this.accountLeaf(level, -1);
        hadLeaf = true;
      } else if (this.freeSubtree(spteToPfn(lo, t[base + idx * 2 + 1] >>> 0), level - 1)) {
        hadLeaf = true;
      }
    }
    this.freeTable(tablePfn);
    return hadLeaf;
  }

  /**
   * kvm_tdp_mmu_clear_dirty_pt_masked() in write-protect mode: clear W on the 4K leaves of
   * gfns `baseGfn + i` for each set bit i of `mask` (32 bits), so the next write faults and is
   * logged. Huge leaves in the way are zapped (dirty logging maps at 4K). Returns true if any
   * SPTE changed.
   */
  writeProtectMasked(baseGfn: number, mask: number): boolean {
    let changed = false;
    const out = this.scratch;
    for (let bit = 0; mask !== 0 && bit < 32; bit++) {
      if (((mask >>> bit) & 1) === 0) continue;
      mask &= ~(1 << bit);
      const gfn = baseGfn + bit;
      if (!this.lookup(gfn, out)) continue;
      const level = out[2];
      if (isMmioSpte(out[0])) continue;
      if (level !== PG_LEVEL_4K) {
        const span = kvmPagesPerHpage(level);
        const start = Math.floor(gfn / span) * span;
        if (this.zapGfnRange(start, start + span)) changed = true;
        continue;
      }
      if (this.clearWritable(gfn)) changed = true;
    }
    return changed;
  }

  /** Write-protect every leaf in [start, end) (kvm_tdp_mmu_wrprot_slot); huge leaves are zapped. */
  writeProtectRange(start: number, end: number): boolean {
    let changed = false;
    for (let gfn = start; gfn < end; ) {
      if (!this.lookup(gfn, this.scratch)) {
        gfn++;
        continue;
      }
      const level = this.scratch[2];
      const span = kvmPagesPerHpage(level);
      const s = Math.floor(gfn / span) * span;
      if (level !== PG_LEVEL_4K) {
        if (this.zapGfnRange(s, s + span)) changed = true;
      } else if (this.clearWritable(gfn)) {
        changed = true;
      }
      gfn = s + span;
    }
    return changed;
  }

  private readonly scratch = new Float64Array(3);

  private clearWritable(gfn: number): boolean {
    const pm = this.physmem;
    let tablePfn = this.rootPfn;
    for (let level = PT64_ROOT_4LEVEL; level > PG_LEVEL_4K; level--) {
      const t = pm.chunk32(tablePfn);
      const i = (pm.frameOffset(tablePfn) >>> 2) + spteIndex(gfn, level) * 2;
      tablePfn = spteToPfn(t[i] >>> 0, t[i + 1] >>> 0);
    }
    const t = pm.chunk32(tablePfn);
    const i = (pm.frameOffset(tablePfn) >>> 2) + spteIndex(gfn, PG_LEVEL_4K) * 2;
    const lo = t[i] >>> 0;
    if ((lo & VMX_EPT_WRITABLE_MASK) === 0) return false;
    t[i] = (lo & ~(VMX_EPT_WRITABLE_MASK | VMX_EPT_DIRTY_BIT)) | 0;
    return true;
  }

  /** kvm_tdp_mmu_invalidate_all_roots() + free: drop the whole hierarchy (VM teardown). */
  destroy(): void {
    if (this.rootPfn >= 0) this.freeSubtree(this.rootPfn, PT64_ROOT_4LEVEL);
    this.rootPfn = -1;
    for (const pfn of this.tablePages) this.pageAlloc.putPage(pfn);
    this.tablePages.clear();
  }

  /** Number of frames used by EPT tables (for tests and memory accounting). */
  get tablePageCount(): number {
    return this.tablePages.size;
  }
}

export { PG_LEVEL_1G, PG_LEVEL_2M, PG_LEVEL_4K };
