/**
 * struct kvm_mmu_page and the VM-wide half of arch/x86/kvm/mmu/mmu.c's shadow paging: the hash of
 * shadow pages keyed by (gfn, role), their parent links, the rmap of writable leaves, write
 * tracking of the guest tables they shadow, zapping, and the page limit with recycling. The
 * per-vCPU half (roots, the fault path, write tracking's MMU side) is shadow.ts, whose header
 * describes the design.
 */

import type { X86Kvm } from "../kvm_host.js";
import type { Kvm } from "../../../../virt/kvm/kvm_main.js";
import { KvmPageTrack } from "./page_track.js";

/** x86 page-table entry bits of the shadow entries (SDM 4.5 Tables 4-14 .. 4-19). */
export const SPT_P = 1;
export const SPT_W = 2;
export const SPT_U = 4;
export const SPT_A = 0x20;
export const SPT_D = 0x40;
/** XD is bit 63: bit 31 of the high half. */
export const SPT_XD_HI = 0x80000000;

/** The shadow-page limit (KVM_PERMILLE_MMU_PAGES, KVM_MIN_ALLOC_MMU_PAGES) and recycling margins. */
const KVM_PERMILLE_MMU_PAGES = 20;
const KVM_MIN_ALLOC_MMU_PAGES = 64;
const KVM_MIN_FREE_MMU_PAGES = 5;
const KVM_REFILL_PAGES = 25;

/** Pages in the VM's memslots (for the shadow-page limit), kept by kvmShadowAccountMemslot. */
const memslotPages = new WeakMap<X86Kvm, number>();

/** kvm_arch_commit_memory_region()'s share for the shadow MMU: the memslots grew or shrank by `deltaPages`. */
export function kvmShadowAccountMemslot(kvm: X86Kvm, deltaPages: number): void {
  memslotPages.set(kvm, (memslotPages.get(kvm) ?? 0) + deltaPages);
}

// union kvm_mmu_page_role, packed in a number.
export const ROLE_LEVEL_MASK = 7;
/** has_4_byte_gpte: shadows a 32-bit paging table. */
export const ROLE_GPTE4 = 1 << 3;
/** quadrant (2 bits): which part of a 1024-entry 32-bit table the page shadows. */
export const ROLE_QUADRANT_SHIFT = 4;
/** direct: maps a gfn range (a guest huge page, or no paging) rather than shadowing a table. */
export const ROLE_DIRECT = 1 << 6;
/** access (3 bits, WALK_PERM_*): the most the guest entries above grant. */
export const ROLE_ACCESS_SHIFT = 7;
export const ROLE_CR0_WP = 1 << 10;
export const ROLE_SMEP = 1 << 11;
export const ROLE_SMAP = 1 << 12;
export const ROLE_NXE = 1 << 13;
/** Role values are below this: key = gfn * ROLE_SPAN + role. */
export const ROLE_SPAN = 1 << 14;

/** The page frames shadow tables come from (the host page allocator). */
export interface ShadowPageAllocator {
  allocPage(): number;
  putPage(pfn: number): void;
}

/** struct kvm_mmu_page: one shadow table. */
export class ShadowPage {
  /** parent_ptes: host physical addresses of the entries that point to this table. */
  readonly parents: number[] = [];
  /** Roots (of any vCPU) this page is. */
  rootCount = 0;
  /** write_flooding_count */
  writeFlooding = 0;
  zapped = false;
  /** A leaf table whose guest table may have changed since it was last synced (sp->unsync). */
  unsync = false;
  /** shadowed_translation of a leaf table: the gfn each present leaf maps (for the rmap). */
  readonly gfns: Float64Array | null;
  /** A guest leaf table's shadow: the guest entry (low, high) each present leaf was made from, for sync. */
  readonly gptes: Uint32Array | null;

  constructor(
    readonly pfn: number,
    readonly gfn: number,
    readonly role: number,
    readonly key: number,
  ) {
    const leaf = (role & ROLE_LEVEL_MASK) === 1;
    this.gfns = leaf ? new Float64Array(512) : null;
    this.gptes = leaf && (role & ROLE_DIRECT) === 0 ? new Uint32Array(1024) : null;
  }

  get level(): number {
    return this.role & ROLE_LEVEL_MASK;
  }

  get direct(): boolean {
    return (this.role & ROLE_DIRECT) !== 0;
  }
}

/** What the VM needs from a vCPU's shadow MMU (ShadowMmu in shadow.ts). */
export interface ShadowRootHolder {
  /** kvm_mmu_unload(): drop every cached root. */
  unload(): void;
  /** A root page is being zapped: stop using it. */
  forgetRoot(sp: ShadowPage): void;
}

/** Entry helpers: entries are handled as 32-bit halves through PhysMem's chunk views. */
export function entryPfn(lo: number, hi: number): number {
  return (hi & 0xfffff) * 0x100000 + (lo >>> 12);
}

/**
 * The VM's shadow pages (kvm->arch: mmu_page_hash, active_mmu_pages, the rmaps and the page
 * track counts). Shared by every vCPU.
 */
export class ShadowVm {
  /** mmu_page_hash: (gfn, role) -> page. */
  readonly hash = new Map<number, ShadowPage>();
  /** Table frame -> page (sptep_to_sp). */
  readonly byPfn = new Map<number, ShadowPage>();
  /** Guest table gfn -> the (indirect) pages shadowing it. */
  readonly byGfn = new Map<number, ShadowPage[]>();
  readonly track = new KvmPageTrack();
  /** rmap of writable leaves: gfn -> host physical addresses of the leaf entries mapping it writable. */
  readonly rmap = new Map<number, number[]>();
  /** Frames given back by zaps, reused before asking the allocator. */
  readonly freeFrames: number[] = [];
  readonly mmus = new Set<ShadowRootHolder>();
  /** Pages with sp->unsync set. */
  readonly unsyncPages = new Set<ShadowPage>();
  /** Set when a present entry was removed: the callers flush every vCPU's TLB. */
  needFlush = false;

  constructor(
    readonly kvm: X86Kvm,
    private readonly alloc: ShadowPageAllocator,
  ) {}

  get pageCount(): number {
    return this.hash.size;
  }

  allocFrame(): number {
    const pfn = this.freeFrames.length > 0 ? this.freeFrames.pop()! : this.alloc.allocPage();
    this.kvm.physmem.zeroFrame(pfn);
    return pfn;
  }

  /** kvm_mmu_get_shadow_page(): find the page for (gfn, role), or create it (write-tracking its gfn). */
  getPage(gfn: number, role: number): ShadowPage {
    const key = gfn * ROLE_SPAN + role;
    const found = this.hash.get(key);
    if (found !== undefined) {
      // An unsync page being linked again may hold leaves a TLB flush of the path it hangs from
      // would have dropped while it was unlinked: bring it up to date (it stays unsync).
      if (found.unsync) this.zapStaleLeaves(found);
      if (!found.zapped) return found;
    }
    const st = this.kvm.stat;
    st.mmu_cache_miss = (st.mmu_cache_miss ?? 0) + 1;
    const sp = new ShadowPage(this.allocFrame(), gfn, role, key);
    this.hash.set(key, sp);
    this.byPfn.set(sp.pfn, sp);
    if (!sp.direct) {
      let list = this.byGfn.get(gfn);
      if (list === undefined) this.byGfn.set(gfn, (list = []));
      list.push(sp);
      if (list.length > (st.max_mmu_page_hash_collisions ?? 0)) st.max_mmu_page_hash_collisions = list.length;
      if (sp.level > 1) {
        // An upper-level table where leaf tables were unsync: the guest most likely reused the
        // page; the unsync shadows go rather than stay writable.
        for (const o of list.slice()) if (o.unsync) this.zapPage(o);
        // account_shadowed(): upper-level guest tables stay write-protected (page_track).
        if (this.track.addPage(gfn) && this.writeProtectGfn(gfn)) this.needFlush = true;
      } else if (this.writeProtectGfn(gfn)) {
        // A leaf table is write-protected until the guest writes it, which unsyncs it.
        this.needFlush = true;
      }
    }
    return sp;
  }

  /** link_shadow_page(): make the entry at `hpa` point to `child`. A PAE root's PDPTE holds only P (SDM 4.4.1). */
  link(hpa: number, child: ShadowPage, pdpte: boolean): void {
    const pm = this.kvm.physmem;
    const pfn = Math.floor(hpa / 4096);
    const t = pm.chunk32(pfn);
    const i = (pm.frameOffset(pfn) + (hpa % 4096)) >>> 2;
    t[i + 1] = Math.floor(child.pfn / 0x100000);
    t[i] = (((child.pfn % 0x100000) << 12) | SPT_P | (pdpte ? 0 : SPT_W | SPT_U | SPT_A)) >>> 0;
    child.parents.push(hpa);
  }

  /**
   * mmu_page_zap_pte(): clear entry `idx` of `sp` (null: a PAE root). A leaf leaves the rmap; a
   * child table loses this parent (and is freed when nothing else holds it).
   */
  zapEntry(sp: ShadowPage | null, tablePfn: number, idx: number): void {
    const pm = this.kvm.physmem;
    const t = pm.chunk32(tablePfn);
    const i = (pm.frameOffset(tablePfn) >>> 2) + idx * 2;
    const lo = t[i];
    if ((lo & SPT_P) === 0) return;
    const hi = t[i + 1];
    t[i] = 0;
    t[i + 1] = 0;
    this.needFlush = true;
    const hpa = tablePfn * 4096 + idx * 8;
    if (sp !== null && sp.gfns !== null) {
      if ((lo & SPT_W) !== 0) this.rmapRemove(sp.gfns[idx], hpa);
      return;
    }
    const child = this.byPfn.get(entryPfn(lo, hi));
    if (child !== undefined) this.dropParent(child, hpa);
  }

  /**
   * drop_parent_pte(): `child` is no longer linked from `hpa`. It stays in the hash (still
   * write-tracked, so still coherent) to be linked again by a later fault, until flooding or
   * recycling takes it.
   */
  dropParent(child: ShadowPage, hpa: number): void {
    const p = child.parents;
    const k = p.indexOf(hpa);
    if (k >= 0) {
      p[k] = p[p.length - 1];
      p.pop();
    }
  }

  /** kvm_mmu_prepare_zap_page() + kvm_mmu_commit_zap_page(): unlink and free `sp` (its children only lose a parent). */
  zapPage(sp: ShadowPage): void {
    if (sp.zapped) return;
    sp.zapped = true;
    const pm = this.kvm.physmem;
    for (const hpa of sp.parents) {
      const pfn = Math.floor(hpa / 4096);
      const i = (pm.frameOffset(pfn) + (hpa % 4096)) >>> 2;
      const t = pm.chunk32(pfn);
      t[i] = 0;
      t[i + 1] = 0;
    }
    sp.parents.length = 0;
    if (sp.rootCount > 0) for (const m of this.mmus) m.forgetRoot(sp);
    if (sp.unsync) this.markSync(sp);
    for (let idx = 0; idx < 512; idx++) this.zapEntry(sp, sp.pfn, idx);
    if (!sp.direct) {
      const list = this.byGfn.get(sp.gfn)!;
      const k = list.indexOf(sp);
      list[k] = list[list.length - 1];
      list.pop();
      if (list.length === 0) this.byGfn.delete(sp.gfn);
      if (sp.level > 1) this.track.removePage(sp.gfn);
    }
    this.hash.delete(sp.key);
    this.byPfn.delete(sp.pfn);
    this.freeFrames.push(sp.pfn);
    this.needFlush = true;
    const st = this.kvm.stat;
    st.mmu_shadow_zapped = (st.mmu_shadow_zapped ?? 0) + 1;
  }

  rmapAdd(gfn: number, hpa: number): void {
    let list = this.rmap.get(gfn);
    if (list === undefined) this.rmap.set(gfn, (list = []));
    list.push(hpa);
    const st = this.kvm.stat;
    if (list.length > (st.max_mmu_rmap_size ?? 0)) st.max_mmu_rmap_size = list.length;
  }

  rmapRemove(gfn: number, hpa: number): void {
    const list = this.rmap.get(gfn);
    if (list === undefined) return;
    const k = list.indexOf(hpa);
    if (k < 0) return;
    list[k] = list[list.length - 1];
    list.pop();
    if (list.length === 0) this.rmap.delete(gfn);
  }

  /** rmap_write_protect(): clear W (and D) in every leaf mapping `gfn`. Returns true if one changed. */
  writeProtectGfn(gfn: number): boolean {
    const list = this.rmap.get(gfn);
    if (list === undefined) return false;
    const pm = this.kvm.physmem;
    for (const hpa of list) {
      const pfn = Math.floor(hpa / 4096);
      const i = (pm.frameOffset(pfn) + (hpa % 4096)) >>> 2;
      const t = pm.chunk32(pfn);
      t[i] = t[i] & ~(SPT_W | SPT_D);
    }
    this.rmap.delete(gfn);
    return true;
  }

  /**
   * mmu_try_to_unsync_pages(): the guest writes the leaf table(s) in `gfn`: they go unsync and
   * the gfn may be mapped writable. Returns false when it must stay write-protected (an
   * upper-level guest table lives there too).
   */
  unsyncGfn(gfn: number): boolean {
    if (this.track.isTracked(gfn)) return false;
    const list = this.byGfn.get(gfn);
    if (list === undefined) return true;
    const st = this.kvm.stat;
    for (const sp of list) {
      if (sp.unsync) continue;
      sp.unsync = true;
      this.unsyncPages.add(sp);
      st.mmu_unsync = (st.mmu_unsync ?? 0) + 1;
    }
    return true;
  }

  private markSync(sp: ShadowPage): void {
    sp.unsync = false;
    this.unsyncPages.delete(sp);
    const st = this.kvm.stat;
    st.mmu_unsync = (st.mmu_unsync ?? 0) - 1;
  }

  /**
   * mmu_sync_roots() / mmu_sync_children() for every unsync page of the VM (the guest flushed
   * its TLB: MOV CR3, INVPCID, a paging-mode change): each shadow leaf whose guest entry changed
   * since it was made goes (kvm_sync_page), and the leaf tables are write-protected again.
   */
  syncAll(): void {
    if (this.unsyncPages.size === 0) return;
    const pages = [...this.unsyncPages];
    for (const sp of pages) this.syncPage(sp);
    for (const sp of pages) if (!sp.zapped && this.writeProtectGfn(sp.gfn)) this.needFlush = true;
    this.flushIfNeeded();
  }

  private syncPage(sp: ShadowPage): void {
    this.markSync(sp);
    this.zapStaleLeaves(sp);
  }

  /** kvm_sync_page(): compare the guest entries with the ones the shadow leaves were made from. */
  private zapStaleLeaves(sp: ShadowPage): void {
    const kvm = this.kvm;
    const pm = kvm.physmem;
    const gpfn = kvm.gfnToPfn(sp.gfn, false);
    if (gpfn < 0) {
      this.zapPage(sp);
      return;
    }
    const g = pm.chunk32(gpfn);
    const gpte4 = (sp.role & ROLE_GPTE4) !== 0;
    // A 32-bit PT's quadrant q holds guest entries 512q .. 512q + 511 (4 bytes each).
    const gbase = (pm.frameOffset(gpfn) >>> 2) + (gpte4 ? ((sp.role >>> ROLE_QUADRANT_SHIFT) & 1) * 512 : 0);
    const t = pm.chunk32(sp.pfn);
    const tbase = pm.frameOffset(sp.pfn) >>> 2;
    const saved = sp.gptes!;
    for (let idx = 0; idx < 512; idx++) {
      if ((t[tbase + idx * 2] & SPT_P) === 0) continue;
      const lo = (gpte4 ? g[gbase + idx] : g[gbase + idx * 2]) >>> 0;
      const hi = gpte4 ? 0 : g[gbase + idx * 2 + 1] >>> 0;
      if (lo !== saved[idx * 2] || hi !== saved[idx * 2 + 1]) this.zapEntry(sp, sp.pfn, idx);
    }
  }

  /**
   * kvm_mmu_available_pages() against n_max_mmu_pages: KVM's default, 20 shadow pages per 1000
   * guest pages in the memslots, at least 64 (kvm_mmu_calculate_default_mmu_pages).
   */
  get maxPages(): number {
    return Math.max(KVM_MIN_ALLOC_MMU_PAGES, Math.floor(((memslotPages.get(this.kvm) ?? 0) * KVM_PERMILLE_MMU_PAGES) / 1000));
  }

  /**
   * make_mmu_pages_available(): before a fault may create pages, keep KVM_MIN_FREE_MMU_PAGES
   * free under the limit by zapping the oldest pages that are not roots (kvm_mmu_zap_oldest_mmu_pages,
   * mmu_recycled), down to KVM_REFILL_PAGES free.
   */
  makePagesAvailable(): void {
    const max = this.maxPages;
    if (this.hash.size + KVM_MIN_FREE_MMU_PAGES <= max) return;
    let n = 0;
    for (const sp of this.hash.values()) {
      if (this.hash.size + KVM_REFILL_PAGES <= max) break;
      if (sp.rootCount > 0) continue;
      this.zapPage(sp);
      n++;
    }
    const st = this.kvm.stat;
    st.mmu_recycled = (st.mmu_recycled ?? 0) + n;
    this.flushIfNeeded();
  }

  /** kvm_mmu_unprotect_page(): zap every page shadowing the guest table in `gfn`. Returns true if there was one. */
  unprotectPage(gfn: number): boolean {
    const list = this.byGfn.get(gfn);
    if (list === undefined) return false;
    for (const sp of list.slice()) this.zapPage(sp);
    return true;
  }

  /** kvm_mmu_zap_all(): every root of every vCPU, every page. */
  zapAll(): void {
    for (const m of this.mmus) m.unload();
    for (const sp of [...this.hash.values()]) this.zapPage(sp);
  }

  /** Flush every vCPU's TLB if an entry went since the last flush (kvm_flush_remote_tlbs). */
  flushIfNeeded(): boolean {
    if (!this.needFlush) return false;
    this.needFlush = false;
    (this.kvm as unknown as Kvm).flushRemoteTlbs();
    return true;
  }

  destroy(): void {
    this.zapAll();
    for (const pfn of this.freeFrames) this.alloc.putPage(pfn);
    this.freeFrames.length = 0;
  }
}
