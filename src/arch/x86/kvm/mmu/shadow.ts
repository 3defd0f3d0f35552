/**
 * arch/x86/kvm/mmu/mmu.c's shadow paging (kvm_intel.ept=0): the processor runs the guest on page
 * tables KVM builds in host memory ("shadow" tables whose leaves map guest linear addresses to
 * host frames), and every #PF is intercepted. kvm_mmu_page_fault -> FNAME(page_fault) walks the
 * guest's own tables (paging_tmpl.ts walkAddrGeneric, setting A/D like the processor), then either
 * reflects the fault to the guest (#PF with the guest's error code and CR2) or installs the
 * translation in the shadow tables (FNAME(fetch)) and resumes.
 *
 * Shadow pages (struct kvm_mmu_page) are per VM and keyed by what they shadow: the gfn of a guest
 * page table plus a role (level, 4-byte guest entries and quadrant for 32-bit paging, the access
 * the upper guest levels grant, and the CR0.WP/SMEP/SMAP/NXE bits the leaves depend on), in a
 * hash (mmu_page_hash; shadow_page.ts). A guest 2M/4M/1G page is shadowed by 4 KiB leaves in
 * "direct" pages keyed by the gfn range they map. The tables are kept coherent with the guest's:
 * - a gfn holding a shadowed upper-level guest table (PML4, PDPT, PD) is write-tracked
 *   (page_track.ts): no shadow leaf maps it writable (the rmap of writable leaves finds them when
 *   tracking starts), so a guest store to it faults, is emulated (emulate_mmio.ts), and
 *   kvmMmuTrackWrite zaps the shadow entries of the written guest entry (kvm_mmu_track_write:
 *   mmu_pte_write, mmu_pde_zapped). Stores to a page that stopped being a table (three with no
 *   fault through it in between), or that do not cover one whole entry, zap the shadow page
 *   instead (mmu_flooded). A store the emulator cannot carry out unprotects the gfn (its shadow
 *   pages go) and is retried (kvm_mmu_unprotect_page).
 * - a guest leaf table (PT) is write-protected when its shadow is made; the guest's first store
 *   to it makes its shadows unsync (mmu_try_to_unsync_pages, stat mmu_unsync) and maps it
 *   writable, so the guest edits its PTEs without exits. Each leaf of an unsync shadow remembers
 *   the guest entry it was made from; when the guest flushes its TLB (MOV CR3, INVPCID, a
 *   paging-mode change) every unsync shadow is synced (leaves whose guest entry changed go,
 *   kvm_sync_page) and write-protected again; INVLPG drops the address's leaf in every cached
 *   root. Stale leaves of an unsync table in between are what a TLB may hold (SDM 4.10.4.2),
 *   and A/D bits the guest clears are set again by the next access after its flush.
 * - so a MOV to CR3 keeps translations: each vCPU caches its current root plus
 *   KVM_MMU_NUM_PREV_ROOTS (3) previous ones keyed by (guest CR3, mode), switches to a cached one
 *   on a CR3 load (kvm_mmu_new_pgd's fast path) and drops the least recently used one. The
 *   processor's own TLB is still flushed on every CR3 load (it has no PCIDs under shadow paging).
 *   PAE and 32-bit roots are cached too (KVM caches 4-level ones only); a PAE root follows the
 *   guest's PDPTE registers (paging_tmpl.ts kvmPdptr) whenever they are loaded.
 * - a page nothing links to any more (a dropped root, an unlinked child) stays in the hash, still
 *   coherent, and is linked again by the next fault that needs it. Pages are freed by flooding,
 *   unprotecting, zap-all, and recycling: above KVM's default limit (20 per 1000 guest pages, at
 *   least 64) the oldest non-root pages are zapped (mmu_recycled).
 * - paging-mode changes (CR0.PG/WP, CR4 paging bits, EFER.NXE/LMA) drop the vCPU's roots; memslot
 *   changes and host unmaps zap every shadow page; dirty logging write-protects the logged
 *   gfns' leaves through the rmap, as page tables are (a leaf is writable only if neither asks
 *   otherwise). Stores KVM cannot see (userspace writing guest page tables) reach the shadows
 *   only through INVLPG or a zap, as in KVM.
 *
 * Format (what the hardware walks): the processor always runs with CR0.PG=CR0.WP=1, CR4.PAE=1 and
 * EFER.NXE=1 (vmx.ts forces them), so shadow tables are 64-bit entries: a 4-level hierarchy for a
 * guest in long mode, a PAE root (four PDPTEs, 32-byte aligned below 4 GiB) for every other guest
 * mode (no paging, 32-bit, PAE). Every leaf is 4 KiB. A 32-bit guest table of 1024 entries is
 * shadowed by two (PT) or four (PD) shadow pages, one per quadrant.
 *
 * Guest CR0.WP=0 (supervisor writes ignore R/W): a supervisor write to a read-only page gets a
 * writable supervisor-only shadow entry (XD too under SMEP), as KVM does; a later user access
 * faults and gets the user view back.
 */

import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY } from "../../../../uapi/kvm.js";
import {
  EFER_LMA, EFER_NX, KVM_REQ_TLB_FLUSH_CURRENT, X86_CR0_PG, X86_CR0_WP, X86_CR4_PAE, X86_CR4_SMAP, X86_CR4_SMEP,
  kvmMakeRequest, type X86Kvm, type X86Vcpu,
} from "../kvm_host.js";
import { GuestWalk, WALK_PERM_ALL, WALK_PERM_EXEC, WALK_PERM_USER, WALK_PERM_WRITE, kvmPdptr, walkAddrGeneric } from "./paging_tmpl.js";
import { faultin, kvmFaultinPfn } from "./faultin.js";
import { RET_PF_EMULATE, RET_PF_FIXED, RET_PF_RETRY, RET_PF_WRITE_PROTECTED } from "./tdp_mmu.js";
import {
  ROLE_ACCESS_SHIFT, ROLE_CR0_WP, ROLE_DIRECT, ROLE_GPTE4, ROLE_NXE, ROLE_QUADRANT_SHIFT, ROLE_SMAP, ROLE_SMEP, ROLE_SPAN,
  SPT_A, SPT_D, SPT_P, SPT_U, SPT_W, SPT_XD_HI, ShadowPage, ShadowVm, entryPfn,
} from "./shadow_page.js";

/** KVM_MMU_NUM_PREV_ROOTS */
export const KVM_MMU_NUM_PREV_ROOTS = 3;

/** Guest paging modes (the root's shape). */
const MODE_NONPAGING = 0;
const MODE_32 = 1;
const MODE_PAE = 2;
const MODE_LONG = 3;

/** Shadow root kinds (kept for callers that check the hierarchy shape). */
export const SHADOW_ROOT_NONE = 0;
export const SHADOW_ROOT_PAE = 3;
export const SHADOW_ROOT_4LEVEL = 4;

/** A cached root: the table the processor's CR3 points to for one (guest CR3, mode). */
interface ShadowRoot {
  cr3Key: number;
  mode: number;
  roleBase: number;
  /** Frame of the root table (the PML4 shadow, or the four-PDPTE PAE root). */
  pfn: number;
  /** The PML4 shadow page (4-level roots); null for a PAE root, which shadows no guest table. */
  sp: ShadowPage | null;
}

/** One vCPU's shadow MMU: its cached roots (struct kvm_mmu's root and prev_roots). */
export class ShadowMmu {
  /** The root the processor runs on, or null until kvm_mmu_load. */
  private cur: ShadowRoot | null = null;
  /** prev_roots, most recent first. */
  private readonly prev: ShadowRoot[] = [];

  constructor(
    readonly vm: ShadowVm,
    private readonly vcpu: X86Vcpu,
  ) {}

  /** Root table frame (-1 without a root) and hierarchy shape, for tests and fault handling. */
  get rootPfn(): number {
    return this.cur === null ? -1 : this.cur.pfn;
  }

  get rootKind(): number {
    return this.cur === null ? SHADOW_ROOT_NONE : this.cur.mode === MODE_LONG ? SHADOW_ROOT_4LEVEL : SHADOW_ROOT_PAE;
  }

  /** Guest CR3 keys of the cached roots, current first (tests). */
  cachedRootCr3s(): number[] {
    const r = this.cur === null ? [] : [this.cur.cr3Key];
    for (const p of this.prev) r.push(p.cr3Key);
    return r;
  }

  /** The guest's paging mode and the role bits every page under its root carries. */
  private static mode(vcpu: X86Vcpu): number {
    const a = vcpu.arch;
    if ((a.cr0 & X86_CR0_PG) === 0) return MODE_NONPAGING;
    if ((a.efer & EFER_LMA) !== 0) return MODE_LONG;
    return (a.cr4 & X86_CR4_PAE) !== 0 ? MODE_PAE : MODE_32;
  }

  private static roleBase(vcpu: X86Vcpu): number {
    const a = vcpu.arch;
    if ((a.cr0 & X86_CR0_PG) === 0) return 0;
    return ((a.cr0 & X86_CR0_WP) !== 0 ? ROLE_CR0_WP : 0) | ((a.cr4 & X86_CR4_SMEP) !== 0 ? ROLE_SMEP : 0) |
      ((a.cr4 & X86_CR4_SMAP) !== 0 ? ROLE_SMAP : 0) | ((a.efer & EFER_NX) !== 0 ? ROLE_NXE : 0);
  }

  /** The part of CR3 that names the guest's top table in `mode`. */
  private static cr3Key(cr3: number, mode: number): number {
    if (mode === MODE_NONPAGING) return 0;
    if (mode === MODE_PAE) return cr3 % 4294967296 - (cr3 % 32);
    if (mode === MODE_32) return (cr3 & 0xfffff000) >>> 0;
    return (cr3 - (cr3 % 4096)) % 2 ** 52;
  }

  /** kvm_mmu_load(): the hpa the processor's CR3 must hold, building the root when there is none. */
  rootHpa(): number {
    if (this.pdptrsLoaded) {
      this.pdptrsLoaded = false;
      if (this.cur !== null && this.cur.mode === MODE_PAE) {
        this.checkPdptes(this.cur);
        this.vm.flushIfNeeded();
      }
    }
    if (this.cur !== null) return this.cur.pfn * 4096;
    const vcpu = this.vcpu;
    const mode = ShadowMmu.mode(vcpu);
    const roleBase = ShadowMmu.roleBase(vcpu);
    const cr3Key = ShadowMmu.cr3Key(vcpu.arch.cr3, mode);
    this.vm.makePagesAvailable();
    let root: ShadowRoot;
    if (mode === MODE_LONG) {
      const sp = this.vm.getPage(cr3Key / 4096, 4 | (WALK_PERM_ALL << ROLE_ACCESS_SHIFT) | roleBase);
      sp.rootCount++;
      root = { cr3Key, mode, roleBase, pfn: sp.pfn, sp };
    } else {
      const pfn = this.vm.allocFrame();
      // The processor reads PAE PDPTEs through a 32-bit CR3 (SDM 4.4.1): the root must be below 4 GiB.
      if (pfn >= 0x100000) throw new Error("kvm: shadow PAE root above 4 GiB");
      root = { cr3Key, mode, roleBase, pfn, sp: null };
    }
    this.cur = root;
    this.vm.flushIfNeeded();
    return root.pfn * 4096;
  }

  /**
   * kvm_mmu_new_pgd(): the guest loaded CR3. A cached root for the new value becomes current
   * (the current one joins the previous roots, the least recent beyond KVM_MMU_NUM_PREV_ROOTS is
   * freed); otherwise a new root is built at the next entry. The processor's TLB is flushed
   * either way (its entries carry no address-space tag here).
   */
  newPgd(): void {
    const vcpu = this.vcpu;
    const mode = ShadowMmu.mode(vcpu);
    const roleBase = ShadowMmu.roleBase(vcpu);
    const cr3Key = ShadowMmu.cr3Key(vcpu.arch.cr3, mode);
    kvmMakeRequest(vcpu, KVM_REQ_TLB_FLUSH_CURRENT);
    // KVM_REQ_MMU_SYNC: the guest's edits of unsync leaf tables take effect now.
    this.vm.syncAll();
    const cur = this.cur;
    if (cur !== null && cur.cr3Key === cr3Key && cur.mode === mode && cur.roleBase === roleBase) {
      if (mode === MODE_PAE) this.checkPdptes(cur);
      return;
    }
    let found: ShadowRoot | null = null;
    for (let k = 0; k < this.prev.length; k++) {
      const p = this.prev[k];
      if (p.cr3Key === cr3Key && p.mode === mode && p.roleBase === roleBase) {
        found = p;
        this.prev.splice(k, 1);
        break;
      }
    }
    if (cur !== null) {
      this.prev.unshift(cur);
      if (this.prev.length > KVM_MMU_NUM_PREV_ROOTS) this.freeRoot(this.prev.pop()!);
    }
    this.cur = found;
    if (found !== null) {
      if (found.sp !== null) found.sp.writeFlooding = 0;
      if (mode === MODE_PAE) this.checkPdptes(found);
    }
    this.vm.flushIfNeeded();
  }

  /** The guest's PDPTE registers were (re)loaded: the current PAE root is checked at the next entry. */
  pdptrsLoaded = false;

  /** load_pdptrs(): a PAE root's PDPTEs must lead to the page directories the guest's PDPTE registers name now. */
  private checkPdptes(root: ShadowRoot): void {
    const pm = this.vm.kvm.physmem;
    const t = pm.chunk32(root.pfn);
    const base = pm.frameOffset(root.pfn) >>> 2;
    for (let i = 0; i < 4; i++) {
      const lo = t[base + i * 2];
      if ((lo & SPT_P) === 0) continue;
      const child = this.vm.byPfn.get(entryPfn(lo, t[base + i * 2 + 1]));
      const glo = kvmPdptr(this.vcpu, i, 0);
      const ghi = kvmPdptr(this.vcpu, i, 1);
      const gfn = (ghi & 0xfffff) * 0x100000 + (glo >>> 12);
      if (Number.isNaN(glo) || (glo & SPT_P) === 0 || child === undefined || child.gfn !== gfn) this.vm.zapEntry(null, root.pfn, i);
    }
  }

  private freeRoot(root: ShadowRoot): void {
    if (root.sp !== null) {
      root.sp.rootCount--;
      return;
    }
    for (let i = 0; i < 4; i++) this.vm.zapEntry(null, root.pfn, i);
    this.vm.freeFrames.push(root.pfn);
  }

  /** A root page is being zapped (kvm_mmu_zap_all, unprotect, flooding): stop using it. */
  forgetRoot(sp: ShadowPage): void {
    if (this.cur !== null && this.cur.sp === sp) {
      sp.rootCount--;
      this.cur = null;
      kvmMakeRequest(this.vcpu, KVM_REQ_TLB_FLUSH_CURRENT);
    }
    for (let k = this.prev.length - 1; k >= 0; k--) {
      if (this.prev[k].sp === sp) {
        sp.rootCount--;
        this.prev.splice(k, 1);
      }
    }
  }

  /** kvm_mmu_unload() / kvm_mmu_free_roots(KVM_MMU_ROOTS_ALL). */
  unload(): void {
    const roots = this.prev.splice(0);
    if (this.cur !== null) roots.push(this.cur);
    this.cur = null;
    for (const r of roots) this.freeRoot(r);
    kvmMakeRequest(this.vcpu, KVM_REQ_TLB_FLUSH_CURRENT);
  }

  /** Index of `ula` in a table at `level` (1 = PT). */
  private static index(ula: number, level: number): number {
    return level === 1 ? (ula >>> 12) & 511 : Math.floor(ula / 2 ** (12 + 9 * (level - 1))) % 512;
  }

  /**
   * The child of the entry at `hpa` must be the page for (gfn, role): keep it if it is, else
   * replace whatever is there (the guest changed an entry KVM could not see) and link it.
   */
  private child(hpa: number, gfn: number, role: number, pdpte: boolean): ShadowPage {
    const vm = this.vm;
    const pm = vm.kvm.physmem;
    const tablePfn = Math.floor(hpa / 4096);
    const t = pm.chunk32(tablePfn);
    const i = (pm.frameOffset(tablePfn) + (hpa % 4096)) >>> 2;
    const lo = t[i];
    if ((lo & SPT_P) !== 0) {
      const c = vm.byPfn.get(entryPfn(lo, t[i + 1]));
      if (c !== undefined && c.key === gfn * ROLE_SPAN + role) {
        c.writeFlooding = 0;
        return c;
      }
      vm.zapEntry(vm.byPfn.get(tablePfn) ?? null, tablePfn, (hpa % 4096) / 8);
    }
    const c = vm.getPage(gfn, role);
    vm.link(hpa, c, pdpte);
    c.writeFlooding = 0;
    return c;
  }

  /**
   * FNAME(fetch)()'s descent: make the shadow hierarchy of `ula` follow the guest walk `w`
   * (creating and write-tracking the shadows of the guest tables it went through) and return the
   * leaf table; `gfn` is the guest frame the leaf will map.
   */
  fetch(ula: number, w: GuestWalk, gfn: number): ShadowPage {
    const cur = this.cur!;
    const mode = cur.mode;
    const base = cur.roleBase;
    const paging = mode !== MODE_NONPAGING;
    const gpte4 = mode === MODE_32 ? ROLE_GPTE4 : 0;
    // The guest's own leaf permissions (a clean page is not writable yet), for direct pages.
    const leafAccess = (w.writable && w.dirty ? WALK_PERM_WRITE : 0) | (w.user ? WALK_PERM_USER : 0) | (w.nx ? 0 : WALK_PERM_EXEC);
    let sp: ShadowPage;
    let level: number;
    if (mode === MODE_LONG) {
      sp = cur.sp!;
      sp.writeFlooding = 0;
      level = 4;
    } else {
      const q = Math.floor(ula / 2 ** 30) & 3;
      let role: number;
      let pdGfn: number;
      if (mode === MODE_NONPAGING) {
        role = 2 | ROLE_DIRECT | (WALK_PERM_ALL << ROLE_ACCESS_SHIFT) | base;
        pdGfn = q * 262144;
      } else {
        role = 2 | gpte4 | (mode === MODE_32 ? q << ROLE_QUADRANT_SHIFT : 0) | (WALK_PERM_ALL << ROLE_ACCESS_SHIFT) | base;
        pdGfn = w.tableGfn[2];
      }
      sp = this.child(cur.pfn * 4096 + q * 8, pdGfn, role, true);
      level = 2;
    }
    const gpaPage = gfn;
    for (; level > 1; level--) {
      const c = level - 1;
      let role: number;
      let childGfn: number;
      if (paging && c >= w.level) {
        const quadrant = gpte4 !== 0 && c === 1 ? (ula >>> 21) & 1 : 0;
        role = c | gpte4 | (quadrant << ROLE_QUADRANT_SHIFT) | (w.tableAccess[c] << ROLE_ACCESS_SHIFT) | base;
        childGfn = w.tableGfn[c];
      } else {
        const span = 512 ** c;
        role = c | ROLE_DIRECT | (leafAccess << ROLE_ACCESS_SHIFT) | base;
        childGfn = gpaPage - (gpaPage % span);
      }
      sp = this.child(sp.pfn * 4096 + ShadowMmu.index(ula, level) * 8, childGfn, role, false);
    }
    return sp;
  }

  /**
   * mmu_set_spte(): the 4 KiB leaf of `ula` in leaf table `sp` maps host frame `pfn` (guest frame
   * `gfn`) with entry bits `lo`/`hi`; it was made from guest entry `gLo`/`gHi`.
   */
  setSpte(sp: ShadowPage, ula: number, gfn: number, pfn: number, lo: number, hi: number, gLo: number, gHi: number): void {
    const vm = this.vm;
    const pm = vm.kvm.physmem;
    const idx = (ula >>> 12) & 511;
    const t = pm.chunk32(sp.pfn);
    const i = (pm.frameOffset(sp.pfn) >>> 2) + idx * 2;
    const hpa = sp.pfn * 4096 + idx * 8;
    if ((t[i] & (SPT_P | SPT_W)) === (SPT_P | SPT_W)) vm.rmapRemove(sp.gfns![idx], hpa);
    else if ((t[i] & SPT_P) !== 0) vm.needFlush = true;
    t[i + 1] = (hi | Math.floor(pfn / 0x100000)) >>> 0;
    t[i] = (((pfn % 0x100000) << 12) | lo) >>> 0;
    sp.gfns![idx] = gfn;
    if (sp.gptes !== null) {
      sp.gptes[idx * 2] = gLo;
      sp.gptes[idx * 2 + 1] = gHi;
    }
    if ((lo & SPT_W) !== 0) vm.rmapAdd(gfn, hpa);
    vm.flushIfNeeded();
  }

  /** Where a walk of root `r` for `ula` starts (wTable, wLevel): the PAE root's PDPTE is resolved first. */
  private wTable = -1;
  private wLevel = 0;
  private walkStart(r: ShadowRoot, ula: number): boolean {
    this.wTable = r.pfn;
    this.wLevel = r.mode === MODE_LONG ? 4 : 3;
    if (r.mode !== MODE_LONG) {
      const pm = this.vm.kvm.physmem;
      const t = pm.chunk32(r.pfn);
      const i = (pm.frameOffset(r.pfn) >>> 2) + (Math.floor(ula / 2 ** 30) & 3) * 2;
      if ((t[i] & SPT_P) === 0) return false;
      this.wTable = entryPfn(t[i], t[i + 1]);
      this.wLevel = 2;
    }
    return true;
  }

  /**
   * kvm_mmu_invalidate_addr(KVM_MMU_ROOTS_ALL) for INVLPG/INVPCID: drop the leaf of `ula` in
   * every cached root, and the whole guest page it belongs to when that page is larger than
   * 4 KiB (a 4 MiB page of 32-bit paging spans two shadow PTs: both go). Returns true if a
   * present entry was removed.
   */
  invlpg(ula: number): boolean {
    let any = false;
    if (this.cur !== null && this.invlpgRoot(this.cur, ula, true)) any = true;
    for (const r of this.prev) if (this.invlpgRoot(r, ula, true)) any = true;
    this.vm.flushIfNeeded();
    return any;
  }

  private invlpgRoot(r: ShadowRoot, ula: number, buddy: boolean): boolean {
    if (!this.walkStart(r, ula)) return false;
    const vm = this.vm;
    const pm = vm.kvm.physmem;
    let table = this.wTable;
    for (let level = this.wLevel; level >= 1; level--) {
      const t = pm.chunk32(table);
      const idx = ShadowMmu.index(ula, level);
      const i = (pm.frameOffset(table) >>> 2) + idx * 2;
      if ((t[i] & SPT_P) === 0) return false;
      const sp = vm.byPfn.get(table) ?? null;
      if (level === 1) {
        vm.zapEntry(sp, table, idx);
        return true;
      }
      const child = vm.byPfn.get(entryPfn(t[i], t[i + 1]));
      if (child === undefined) return false;
      // The child maps (part of) a guest page as large as the range it covers: drop it whole.
      if (child.direct && r.mode !== MODE_NONPAGING) {
        vm.zapEntry(sp, table, idx);
        if (buddy && level === 2 && r.mode === MODE_32) this.invlpgRoot(r, ula ^ 0x200000, false);
        return true;
      }
      table = child.pfn;
    }
    return false;
  }

  /**
   * Look up the shadow leaf of `ula` under the current root (tests, debugging): [lo, hi] of the
   * entry into `out`, or false when nothing is mapped.
   */
  lookup(ula: number, out: Float64Array): boolean {
    if (this.cur === null || !this.walkStart(this.cur, ula)) return false;
    const pm = this.vm.kvm.physmem;
    let table = this.wTable;
    for (let level = this.wLevel; level >= 1; level--) {
      const t = pm.chunk32(table);
      const i = (pm.frameOffset(table) >>> 2) + ShadowMmu.index(ula, level) * 2;
      if ((t[i] & SPT_P) === 0) return false;
      if (level === 1) {
        out[0] = t[i] >>> 0;
        out[1] = t[i + 1] >>> 0;
        return true;
      }
      table = entryPfn(t[i], t[i + 1]);
    }
    return false;
  }
}

// ------------------------------------------------------------------------------------------------
// Per-VM and per-vCPU instances
// ------------------------------------------------------------------------------------------------

const shadowVms = new WeakMap<X86Kvm, ShadowVm>();
const shadows = new WeakMap<X86Vcpu, ShadowMmu>();

/** The VM's shadow pages if any vCPU uses shadow paging, else null. */
export function kvmShadowVmIfAny(kvm: X86Kvm): ShadowVm | null {
  return shadowVms.get(kvm) ?? null;
}

/** The vCPU's shadow MMU, created on first use (kvm_mmu_create for shadow paging). */
export function vcpuShadowMmu(vcpu: X86Vcpu): ShadowMmu {
  let s = shadows.get(vcpu);
  if (s === undefined) {
    const kvm = vcpu.kvm;
    let vm = shadowVms.get(kvm);
    if (vm === undefined) {
      const alloc = kvm.arch.pageAlloc;
      if (alloc === null) throw new Error("kvm: shadow MMU needs the host page allocator");
      vm = new ShadowVm(kvm, alloc);
      shadowVms.set(kvm, vm);
    }
    s = new ShadowMmu(vm, vcpu);
    vm.mmus.add(s);
    shadows.set(vcpu, s);
  }
  return s;
}

/** The vCPU's shadow MMU if it has one (ept=0), else null. */
export function vcpuShadowMmuIfAny(vcpu: X86Vcpu): ShadowMmu | null {
  return shadows.get(vcpu) ?? null;
}

/** kvm_mmu_destroy(); the last vCPU's takes the VM's shadow pages with it. */
export function kvmShadowMmuDestroy(vcpu: X86Vcpu): void {
  const s = shadows.get(vcpu);
  if (s === undefined) return;
  s.unload();
  shadows.delete(vcpu);
  const vm = s.vm;
  vm.mmus.delete(s);
  if (vm.mmus.size === 0) {
    vm.destroy();
    shadowVms.delete(vm.kvm);
  }
}

/**
 * kvm_mmu_reset_context() / kvm_mmu_unload(): the guest's paging mode changed: every cached root
 * of the vCPU goes (pages other roots still use stay), and the processor's TLB with them.
 */
export function kvmShadowMmuReset(vcpu: X86Vcpu): void {
  const s = shadows.get(vcpu);
  if (s === undefined) return;
  s.unload();
  s.vm.syncAll();
  s.vm.flushIfNeeded();
}

/**
 * kvm_vcpu_flush_tlb_guest() for shadow paging (INVPCID single/all-context): the shadow tables
 * are the guest's TLB only through unsync leaf tables, which are synced.
 */
export function kvmShadowFlushTlbGuest(vcpu: X86Vcpu): void {
  shadows.get(vcpu)?.vm.syncAll();
}

/** load_pdptrs() for shadow paging: the PAE PDPTE registers changed (the root follows them before the next entry). */
export function kvmShadowPdptrsLoaded(vcpu: X86Vcpu): void {
  const s = shadows.get(vcpu);
  if (s !== undefined) s.pdptrsLoaded = true;
}

/** kvm_mmu_new_pgd(): the guest loaded CR3 (see ShadowMmu.newPgd). */
export function kvmShadowNewPgd(vcpu: X86Vcpu): void {
  vcpuShadowMmuIfAny(vcpu)?.newPgd();
}

/** Zap every shadow page of the VM (memslot changes, host unmaps). Returns true if any mapping went; the caller flushes. */
export function kvmShadowZapAllVcpus(kvm: X86Kvm): boolean {
  const vm = shadowVms.get(kvm);
  if (vm === undefined) return false;
  vm.zapAll();
  const any = vm.needFlush;
  vm.needFlush = false;
  return any;
}

/**
 * Write-protect the shadow leaves of gfns [start, end) (kvm_mmu_slot_remove_write_access for
 * dirty logging). Returns true if a leaf changed; the caller flushes.
 */
export function kvmShadowWriteProtectRange(kvm: X86Kvm, start: number, end: number): boolean {
  const vm = shadowVms.get(kvm);
  if (vm === undefined) return false;
  let any = false;
  if (end - start < vm.rmap.size) {
    for (let gfn = start; gfn < end; gfn++) if (vm.writeProtectGfn(gfn)) any = true;
  } else {
    for (const gfn of [...vm.rmap.keys()]) if (gfn >= start && gfn < end && vm.writeProtectGfn(gfn)) any = true;
  }
  return any;
}

/** kvm_mmu_write_protect_pt_masked(): write-protect gfn `base + i` for each set bit i of `mask`. */
export function kvmShadowWriteProtectMasked(kvm: X86Kvm, base: number, mask: number): boolean {
  const vm = shadowVms.get(kvm);
  if (vm === undefined) return false;
  let any = false;
  for (let bit = 0; bit < 32; bit++) if (((mask >>> bit) & 1) !== 0 && vm.writeProtectGfn(base + bit)) any = true;
  return any;
}

// ------------------------------------------------------------------------------------------------
// Guest writes to write-tracked page tables (kvm_mmu_track_write)
// ------------------------------------------------------------------------------------------------

/** detect_write_misaligned(): the store does not cover exactly one guest entry (a 1-byte store to an entry's first byte counts as one). */
function writeMisaligned(sp: ShadowPage, off: number, bytes: number): boolean {
  const size = (sp.role & ROLE_GPTE4) !== 0 ? 4 : 8;
  if ((off & (size - 1)) === 0 && bytes === 1) return false;
  return ((off ^ (off + bytes - 1)) & ~(size - 1)) !== 0 || bytes < 4;
}

/** detect_write_flooding(): three stores with no fault through the page in between: it is no longer used as a table. */
function writeFlooded(sp: ShadowPage): boolean {
  sp.writeFlooding++;
  return sp.writeFlooding >= 3;
}

/**
 * kvm_mmu_track_write() (kvm_page_track_write's MMU part): the emulator stored `data` at `gpa`.
 * The shadow entries of every page shadowing the written guest entry are zapped (they refault
 * from the new guest entry); a flooded or misaligned store zaps the whole shadow page.
 */
export function kvmMmuTrackWrite(vcpu: X86Vcpu, gpa: number, data: Uint8Array): void {
  const vm = shadowVms.get(vcpu.kvm);
  if (vm === undefined || vm.byGfn.size === 0) return;
  const gfn = Math.floor(gpa / 4096);
  const list = vm.byGfn.get(gfn);
  if (list === undefined) return;
  const st = vcpu.kvm.stat;
  st.mmu_pte_write = (st.mmu_pte_write ?? 0) + 1;
  const off = gpa % 4096;
  const bytes = data.length;
  let gentry = false;
  for (let k = 0; k < bytes; k++) if (data[k] !== 0) gentry = true;
  for (const sp of list.slice()) {
    if (sp.zapped) continue;
    if (writeMisaligned(sp, off, bytes) || writeFlooded(sp)) {
      vm.zapPage(sp);
      st.mmu_flooded = (st.mmu_flooded ?? 0) + 1;
      continue;
    }
    // get_written_sptes(): which shadow entries shadow the written guest entry.
    const level = sp.level;
    let idx: number;
    let n = 1;
    if ((sp.role & ROLE_GPTE4) !== 0) {
      const g = off >>> 2;
      const quadrant = (sp.role >>> ROLE_QUADRANT_SHIFT) & 3;
      // A 32-bit PT's 1024 entries are split over two shadow PTs; a 32-bit PDE maps 4 MiB,
      // which is two shadow PDEs, 256 guest PDEs per shadow PD.
      const per = level === 1 ? 512 : 256;
      if (Math.floor(g / per) !== quadrant) continue;
      idx = level === 1 ? g % 512 : (g % 256) * 2;
      if (level !== 1) n = 2;
    } else {
      idx = off >>> 3;
    }
    for (let j = 0; j < n; j++) {
      vm.zapEntry(sp, sp.pfn, idx + j);
      if (gentry && level !== 1) st.mmu_pde_zapped = (st.mmu_pde_zapped ?? 0) + 1;
    }
  }
  vm.flushIfNeeded();
}

/**
 * kvm_mmu_unprotect_page(): the write to `gpa` could not be emulated: stop shadowing the guest
 * table there, so the store can be retried on the processor. Returns true if it was shadowed.
 */
export function kvmShadowUnprotectPage(vcpu: X86Vcpu, gpa: number): boolean {
  const vm = shadowVms.get(vcpu.kvm);
  if (vm === undefined) return false;
  const r = vm.unprotectPage(Math.floor(gpa / 4096));
  vm.flushIfNeeded();
  return r;
}

// ------------------------------------------------------------------------------------------------
// The page-fault path
// ------------------------------------------------------------------------------------------------

/** Results of kvmShadowPageFault besides RET_PF_*: the guest's own fault, to be injected. */
export const RET_PF_GUEST = 100;

const walk = new GuestWalk();

/** Where kvmShadowPageFault leaves its by-products. */
export const shadowFault = {
  /** The guest-physical address (RET_PF_EMULATE, RET_PF_WRITE_PROTECTED) */
  gpa: 0,
  /** The #PF error code for the guest (RET_PF_GUEST). */
  errorCode: 0,
  /** RET_PF_WRITE_PROTECTED: the store goes to a table of its own translation (write_fault_to_shadow_pgtable). */
  selfChange: false,
};

/**
 * FNAME(page_fault)(): a #PF the processor raised on the shadow tables at linear address `la`
 * with hardware error code `errorCode`. Returns RET_PF_GUEST (the guest's tables refuse the
 * access: shadowFault.errorCode is the #PF to inject with CR2 = la), RET_PF_FIXED (translation
 * installed), RET_PF_EMULATE (the gpa, in shadowFault.gpa, is MMIO or a read-only slot being
 * written), RET_PF_WRITE_PROTECTED (a store to a write-tracked guest page table: emulate it) or
 * RET_PF_RETRY.
 */
export function kvmShadowPageFault(vcpu: X86Vcpu, la: number, errorCode: number, cpl: number, ac: boolean): number {
  const kvm = vcpu.kvm;
  const a = vcpu.arch;
  vcpu.stat.pf_taken = vcpu.stat.pf_taken + 1;
  const access = errorCode & (2 | 4 | 16);
  const write = (access & 2) !== 0;
  const user = (access & 4) !== 0;
  if (!walkAddrGeneric(vcpu, la, access, cpl, ac, walk)) {
    vcpu.stat.pf_guest = (vcpu.stat.pf_guest ?? 0) + 1;
    shadowFault.errorCode = walk.errorCode;
    return RET_PF_GUEST;
  }
  const gpa = walk.gpa;
  shadowFault.gpa = gpa;
  const gfn = Math.floor(gpa / 4096);
  const slot = kvm.gfnToMemslot(gfn);
  if (slot === null) return RET_PF_EMULATE;
  const readonly = (slot.flags & KVM_MEM_READONLY) !== 0;
  const fr = kvmFaultinPfn(kvm, slot, gfn, write);
  if (fr !== 0) return fr;
  const pfn = faultin.pfn, hostWritable = faultin.hostWritable;

  const s = vcpuShadowMmu(vcpu);
  if (s.rootPfn < 0) return RET_PF_RETRY;
  const ula = la < 0 ? la + 2 ** 64 : la;
  const logDirty = (slot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
  const paging = (a.cr0 & X86_CR0_PG) !== 0;
  let u = walk.user;
  let w = walk.writable;
  let xd = walk.nx;
  if (paging && !w && write && !user && (a.cr0 & X86_CR0_WP) === 0) {
    // CR0.WP=0: the supervisor may write; the processor runs with WP=1, so the page becomes
    // writable for the supervisor only, and not executable for it under SMEP if it is a user page.
    if (u && (a.cr4 & X86_CR4_SMEP) !== 0) xd = true;
    w = true;
    u = false;
  }
  // Writable only once the guest's dirty bit is set, so the first write comes back here and sets
  // it (SDM 4.8); a dirty-logged page stays read-only until written, so the write is recorded;
  // a guest page table stays read-only so that its changes are seen (page_track).
  // The tables of this translation are shadowed (and write-tracked) before the leaf is made.
  s.vm.makePagesAvailable();
  if (s.rootPfn < 0) return RET_PF_RETRY;
  const leafTable = s.fetch(ula, walk, gfn);
  const vm = s.vm;
  let canWrite = w && walk.dirty && hostWritable && !readonly && (!logDirty || write);
  // A guest page table is mapped writable only once a store unsyncs it, which only leaf tables
  // may be (mmu_try_to_unsync_pages); an upper-level table stays write-protected.
  if (canWrite && vm.byGfn.has(gfn) && !(write && vm.unsyncGfn(gfn))) canWrite = false;
  let lo = SPT_P | SPT_A;
  if (u) lo |= SPT_U;
  if (canWrite) lo |= SPT_W | SPT_D;
  s.setSpte(leafTable, ula, gfn, pfn, lo, xd ? SPT_XD_HI : 0, walk.leafLo, walk.leafHi);
  if (canWrite && logDirty) kvm.markPageDirty(vcpu, gfn);
  if (write && w && vm.track.isTracked(gfn)) {
    // FNAME(page_fault)'s write-protected case: the store is emulated (or the page unprotected).
    let self = false;
    for (let l = 1; l <= 4; l++) if (walk.tableGfn[l] === gfn) self = true;
    shadowFault.selfChange = self;
    return RET_PF_WRITE_PROTECTED;
  }
  vcpu.stat.pf_fixed = vcpu.stat.pf_fixed + 1;
  return RET_PF_FIXED;
}
