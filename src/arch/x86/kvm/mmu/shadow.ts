/**
 * arch/x86/kvm/mmu/mmu.c's shadow paging (kvm_intel.ept=0): the processor runs the guest on page
 * tables KVM builds in host memory ("shadow" tables whose leaves map guest linear addresses to
 * host frames), and every #PF is intercepted. kvm_mmu_page_fault -> FNAME(page_fault) walks the
 * guest's own tables (paging_tmpl.ts walkAddrGeneric, setting A/D like the processor), then either
 * reflects the fault to the guest (#PF with the guest's error code and CR2) or installs the
 * translation in the shadow tables and resumes.
 *
 * The shadow tables here act as the guest's TLB rather than as a cache kept coherent with the
 * guest's tables by write-protection: translations are only ever installed from a successful
 * guest walk and are dropped exactly where the architecture lets a processor drop cached ones
 * (MOV to CR3, INVLPG, INVPCID, paging-mode changes in CR0/CR4/EFER), so a guest that maintains
 * its tables as the SDM requires (4.10.4) sees the same behaviour as on EPT. Roots are therefore
 * not cached across CR3 switches, and there is no page_track write-protection of guest tables.
 *
 * Format (what the hardware walks): the processor always runs with CR0.PG=CR0.WP=1, CR4.PAE=1 and
 * EFER.NXE=1 (vmx.ts forces them), so shadow tables are 64-bit entries: a 4-level hierarchy for a
 * guest in long mode, PAE (four PDPTEs at the root, 32-byte aligned below 4 GiB) for every other
 * guest mode (no paging, 32-bit, PAE). Every leaf is 4 KiB; a guest 4M/2M/1G page is shadowed by
 * 4 KiB pieces, and a table that holds such pieces remembers the size so INVLPG drops it whole.
 *
 * Guest CR0.WP=0 (supervisor writes ignore R/W): a supervisor write to a read-only page gets a
 * writable supervisor-only shadow entry (XD too under SMEP), as KVM does; a later user access
 * faults and gets the user view back.
 */

import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY } from "../../../../uapi/kvm.js";
import {
  EFER_LMA, KVM_REQ_TLB_FLUSH_CURRENT, X86_CR0_PG, X86_CR0_WP, X86_CR4_SMEP, kvmMakeRequest, type X86Kvm, type X86Vcpu,
} from "../kvm_host.js";
import { GuestWalk, walkAddrGeneric } from "./paging_tmpl.js";
import { faultin, kvmFaultinPfn } from "./faultin.js";
import { RET_PF_EMULATE, RET_PF_FIXED, RET_PF_RETRY } from "./tdp_mmu.js";

/** x86 page-table entry bits of the shadow entries (SDM 4.5 Tables 4-14 .. 4-19). */
const SPT_P = 1;
const SPT_W = 2;
const SPT_U = 4;
const SPT_A = 0x20;
const SPT_D = 0x40;
/** XD is bit 63: bit 31 of the high half. */
const SPT_XD_HI = 0x80000000;

/** Shadow root kinds. */
export const SHADOW_ROOT_NONE = 0;
export const SHADOW_ROOT_PAE = 3;
export const SHADOW_ROOT_4LEVEL = 4;

/** The page frames shadow tables come from (the host page allocator). */
export interface ShadowPageAllocator {
  allocPage(): number;
  putPage(pfn: number): void;
}

/** One vCPU's shadow MMU (the root and the tables under it; struct kvm_mmu for shadow paging). */
export class ShadowMmu {
  /** Root table pfn, or -1. */
  private rootPfn = -1;
  rootKind = SHADOW_ROOT_NONE;
  /** Frames holding shadow tables now; the level of each (1 = PT ... 4 = PML4). */
  private readonly tables = new Map<number, number>();
  /** Tables whose leaves (level 1) or subtrees (level 2) shadow a guest page larger than they map. */
  private readonly bigOrigin = new Map<number, number>();
  /** Frames given back by a zap, reused before asking the allocator. */
  private readonly freeFrames: number[] = [];

  constructor(
    private readonly kvm: X86Kvm,
    private readonly alloc: ShadowPageAllocator,
  ) {}

  get tableCount(): number {
    return this.tables.size;
  }

  private allocTable(level: number): number {
    const pfn = this.freeFrames.length > 0 ? this.freeFrames.pop()! : this.alloc.allocPage();
    this.kvm.physmem.zeroFrame(pfn);
    this.tables.set(pfn, level);
    const st = this.kvm.stat;
    st.mmu_cache_miss = (st.mmu_cache_miss ?? 0) + 1;
    return pfn;
  }

  /**
   * kvm_mmu_load(): the hpa the processor's CR3 must hold for the guest's current mode, building
   * an empty root when the mode changed or there is none.
   */
  rootHpa(long: boolean): number {
    const kind = long ? SHADOW_ROOT_4LEVEL : SHADOW_ROOT_PAE;
    if (this.rootPfn >= 0 && this.rootKind === kind) return this.rootPfn * 4096;
    this.zapAll();
    this.rootPfn = this.allocTable(kind);
    // The processor reads PAE PDPTEs through a 32-bit CR3 (SDM 4.4.1): the root must be below 4 GiB.
    if (kind === SHADOW_ROOT_PAE && this.rootPfn >= 0x100000) throw new Error("kvm: shadow PAE root above 4 GiB");
    this.rootKind = kind;
    return this.rootPfn * 4096;
  }

  /**
   * kvm_mmu_zap_all() for this vCPU (kvm_mmu_reset_context / kvm_mmu_unload): drop every shadow
   * table. Returns true if anything was mapped (the caller flushes the TLB).
   */
  zapAll(): boolean {
    if (this.tables.size === 0) return false;
    const st = this.kvm.stat;
    st.mmu_shadow_zapped = (st.mmu_shadow_zapped ?? 0) + this.tables.size;
    for (const pfn of this.tables.keys()) this.freeFrames.push(pfn);
    this.tables.clear();
    this.bigOrigin.clear();
    this.rootPfn = -1;
    this.rootKind = SHADOW_ROOT_NONE;
    return true;
  }

  /** VM teardown: every frame back to the allocator. */
  destroy(): void {
    this.zapAll();
    for (const pfn of this.freeFrames) this.alloc.putPage(pfn);
    this.freeFrames.length = 0;
  }

  /** Index of `la` in a table at `level` (1 = PT). */
  private static index(ula: number, level: number): number {
    return level === 1 ? (ula >>> 12) & 511 : Math.floor(ula / 2 ** (12 + 9 * (level - 1))) % 512;
  }

  /**
   * mmu_set_spte() through FNAME(fetch): install a 4 KiB leaf for linear address `ula` (unsigned)
   * -> host frame `pfn`, creating tables on the way. `guestLevel` is the size of the guest page
   * it shadows.
   */
  install(ula: number, pfn: number, lo: number, hi: number, guestLevel: number): void {
    const pm = this.kvm.physmem;
    let table = this.rootPfn;
    let level = this.rootKind;
    if (this.rootKind === SHADOW_ROOT_PAE) {
      // PDPTE: only P and the address (bits 1-2 and 5-8 are reserved, SDM 4.4.1).
      const t = pm.chunk32(table);
      const i = (pm.frameOffset(table) >>> 2) + (Math.floor(ula / 2 ** 30) & 3) * 2;
      if ((t[i] & SPT_P) === 0) {
        const child = this.allocTable(2);
        t[i + 1] = Math.floor(child / 0x100000);
        t[i] = (((child % 0x100000) << 12) | SPT_P) >>> 0;
      }
      table = (t[i + 1] & 0xfffff) * 0x100000 + (t[i] >>> 12);
      level = 2;
    }
    for (; level > 1; level--) {
      const t = pm.chunk32(table);
      const i = (pm.frameOffset(table) >>> 2) + ShadowMmu.index(ula, level) * 2;
      if ((t[i] & SPT_P) === 0) {
        const child = this.allocTable(level - 1);
        t[i + 1] = Math.floor(child / 0x100000);
        t[i] = (((child % 0x100000) << 12) | SPT_P | SPT_W | SPT_U | SPT_A) >>> 0;
      }
      table = (t[i + 1] & 0xfffff) * 0x100000 + (t[i] >>> 12);
      // A 1 GiB guest page is shadowed by several PTs under one PD: the PD remembers it.
      if (guestLevel === 3 && level === 3) this.bigOrigin.set(table, 3);
    }
    if (guestLevel >= 2) this.bigOrigin.set(table, Math.max(this.bigOrigin.get(table) ?? 0, guestLevel));
    const t = pm.chunk32(table);
    const i = (pm.frameOffset(table) >>> 2) + ((ula >>> 12) & 511) * 2;
    t[i + 1] = (hi | Math.floor(pfn / 0x100000)) >>> 0;
    t[i] = (((pfn % 0x100000) << 12) | lo) >>> 0;
  }

  /**
   * FNAME(invlpg)(): drop the translation of `ula`, and the whole guest page it belongs to when
   * that page was larger than 4 KiB (a 4 MiB page of 32-bit paging spans two shadow PTs: both
   * go). Returns true if a present entry was removed.
   */
  invlpg(ula: number, buddy = true): boolean {
    if (!this.walkStart(ula)) return false;
    const pm = this.kvm.physmem;
    let table = this.wTable;
    let level = this.wLevel;
    for (; level >= 1; level--) {
      const t = pm.chunk32(table);
      const i = (pm.frameOffset(table) >>> 2) + ShadowMmu.index(ula, level) * 2;
      if ((t[i] & SPT_P) === 0) return false;
      if (level === 1) {
        t[i] = 0;
        t[i + 1] = 0;
        return true;
      }
      const child = (t[i + 1] & 0xfffff) * 0x100000 + (t[i] >>> 12);
      // The child shadows (part of) a guest page as large as the range it covers: drop it whole.
      if (this.bigOrigin.has(child)) {
        t[i] = 0;
        t[i + 1] = 0;
        this.freeSubtree(child, level - 1);
        if (buddy && level === 2 && this.rootKind === SHADOW_ROOT_PAE) this.invlpg(ula ^ 0x200000, false);
        return true;
      }
      table = child;
    }
    return false;
  }

  /** Where a walk of the shadow tables for `ula` starts (wTable, wLevel): the PAE root's PDPTE is resolved first. */
  private wTable = -1;
  private wLevel = 0;
  private walkStart(ula: number): boolean {
    if (this.rootPfn < 0) return false;
    this.wTable = this.rootPfn;
    this.wLevel = this.rootKind;
    if (this.rootKind === SHADOW_ROOT_PAE) {
      const pm = this.kvm.physmem;
      const t = pm.chunk32(this.rootPfn);
      const i = (pm.frameOffset(this.rootPfn) >>> 2) + (Math.floor(ula / 2 ** 30) & 3) * 2;
      if ((t[i] & SPT_P) === 0) return false;
      this.wTable = (t[i + 1] & 0xfffff) * 0x100000 + (t[i] >>> 12);
      this.wLevel = 2;
    }
    return true;
  }

  private freeSubtree(table: number, level: number): void {
    if (level > 1) {
      const pm = this.kvm.physmem;
      const t = pm.chunk32(table);
      const base = pm.frameOffset(table) >>> 2;
      for (let k = 0; k < 512; k++) {
        const lo = t[base + k * 2];
        if ((lo & SPT_P) !== 0) this.freeSubtree((t[base + k * 2 + 1] & 0xfffff) * 0x100000 + (lo >>> 12), level - 1);
      }
    }
    this.tables.delete(table);
    this.bigOrigin.delete(table);
    this.freeFrames.push(table);
    const st = this.kvm.stat;
    st.mmu_shadow_zapped = (st.mmu_shadow_zapped ?? 0) + 1;
  }

  /**
   * Look up the shadow leaf of `ula` (tests, debugging): [lo, hi] of the entry into `out`, or
   * false when nothing is mapped.
   */
  lookup(ula: number, out: Float64Array): boolean {
    if (!this.walkStart(ula)) return false;
    const pm = this.kvm.physmem;
    let table = this.wTable;
    let level = this.wLevel;
    for (; level >= 1; level--) {
      const t = pm.chunk32(table);
      const i = (pm.frameOffset(table) >>> 2) + ShadowMmu.index(ula, level) * 2;
      if ((t[i] & SPT_P) === 0) return false;
      if (level === 1) {
        out[0] = t[i] >>> 0;
        out[1] = t[i + 1] >>> 0;
        return true;
      }
      table = (t[i + 1] & 0xfffff) * 0x100000 + (t[i] >>> 12);
    }
    return false;
  }
}

// ------------------------------------------------------------------------------------------------
// Per-vCPU instances
// ------------------------------------------------------------------------------------------------

const shadows = new WeakMap<X86Vcpu, ShadowMmu>();

/** The vCPU's shadow MMU, created on first use (kvm_mmu_create for shadow paging). */
export function vcpuShadowMmu(vcpu: X86Vcpu): ShadowMmu {
  let s = shadows.get(vcpu);
  if (s === undefined) {
    const alloc = vcpu.kvm.arch.pageAlloc;
    if (alloc === null) throw new Error("kvm: shadow MMU needs the host page allocator");
    s = new ShadowMmu(vcpu.kvm, alloc);
    shadows.set(vcpu, s);
  }
  return s;
}

/** The vCPU's shadow MMU if it has one (ept=0), else null. */
export function vcpuShadowMmuIfAny(vcpu: X86Vcpu): ShadowMmu | null {
  return shadows.get(vcpu) ?? null;
}

/** kvm_mmu_destroy() */
export function kvmShadowMmuDestroy(vcpu: X86Vcpu): void {
  const s = shadows.get(vcpu);
  if (s === undefined) return;
  s.destroy();
  shadows.delete(vcpu);
}

/**
 * kvm_mmu_reset_context() / kvm_mmu_unload(): the guest's paging mode or CR3 changed, or it asked
 * for its TLB to be flushed: every shadow translation goes, and the processor's TLB with it.
 */
export function kvmShadowMmuReset(vcpu: X86Vcpu): void {
  const s = shadows.get(vcpu);
  if (s === undefined) return;
  if (s.zapAll()) kvmMakeRequest(vcpu, KVM_REQ_TLB_FLUSH_CURRENT);
}

/** Zap every vCPU's shadow tables (memslot changes, host unmaps, dirty-log write protection). Returns true if any mapping went. */
export function kvmShadowZapAllVcpus(kvm: X86Kvm): boolean {
  let any = false;
  for (const v of kvm.arch.vcpus) {
    const s = shadows.get(v);
    if (s !== undefined && s.zapAll()) any = true;
  }
  return any;
}

// ------------------------------------------------------------------------------------------------
// The page-fault path
// ------------------------------------------------------------------------------------------------

/** Results of kvmShadowPageFault besides RET_PF_*: the guest's own fault, to be injected. */
export const RET_PF_GUEST = 100;

const walk = new GuestWalk();

/** Where kvmShadowPageFault leaves its by-products. */
export const shadowFault = {
  /** The guest-physical address (RET_PF_EMULATE) */
  gpa: 0,
  /** The #PF error code for the guest (RET_PF_GUEST). */
  errorCode: 0,
};

/**
 * FNAME(page_fault)(): a #PF the processor raised on the shadow tables at linear address `la`
 * with hardware error code `errorCode`. Returns RET_PF_GUEST (the guest's tables refuse the
 * access: shadowFault.errorCode is the #PF to inject with CR2 = la), RET_PF_FIXED (translation
 * installed), RET_PF_EMULATE (the gpa, in shadowFault.gpa, is MMIO or a read-only slot being
 * written) or RET_PF_RETRY.
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
  const long = (a.efer & EFER_LMA) !== 0;
  if (s.rootKind !== (long ? 4 : 3)) return RET_PF_RETRY;
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
  // it (SDM 4.8); a dirty-logged page stays read-only until written, so the write is recorded.
  const canWrite = w && walk.dirty && hostWritable && !readonly && (!logDirty || write);
  let lo = SPT_P | SPT_A;
  if (u) lo |= SPT_U;
  if (canWrite) lo |= SPT_W | SPT_D;
  s.install(ula, pfn, lo, xd ? SPT_XD_HI : 0, walk.level);
  if (canWrite && logDirty) kvm.markPageDirty(vcpu, gfn);
  vcpu.stat.pf_fixed = vcpu.stat.pf_fixed + 1;
  return RET_PF_FIXED;
}
