/**
 * arch/x86/kvm/mmu/paging_tmpl.h (walk_addr_generic / gva_to_gpa): KVM's software walk of the
 * guest's own page tables, used where KVM must turn a guest linear address into a guest-physical
 * one itself: KVM_TRANSLATE and the emulator (string I/O, MMIO instruction fetch). The tables are
 * read from guest memory through the memslots; nothing is written (no A/D updates: callers that
 * access memory go through the hardware path for that).
 *
 * Modes (SDM Vol. 3A 4.3-4.5): no paging, 32-bit (4 MiB pages with CR4.PSE), PAE, 4-level and
 * 5-level.
 */

import {
  EFER_LMA, EFER_NX, X86_CR0_PG, X86_CR0_WP, X86_CR4_LA57, X86_CR4_PAE, X86_CR4_PSE, X86_CR4_SMAP, X86_CR4_SMEP, type X86Vcpu,
} from "../kvm_host.js";

export interface GvaTranslation {
  valid: boolean;
  gpa: number;
  writable: boolean;
  user: boolean;
  /** #PF error code when !valid (P bit set if a present entry refused the access). */
  errorCode: number;
}

/** Read 4 bytes of guest-physical memory through the memslots; -1 (as a sentinel, NaN) if unbacked. */
export function readGpa32(vcpu: X86Vcpu, gpa: number): number {
  const kvm = vcpu.kvm;
  const pfn = kvm.gfnToPfn(Math.floor(gpa / 4096), false);
  if (pfn < 0) return NaN;
  const pm = kvm.physmem;
  return pm.chunk32(pfn)[(pm.frameOffset(pfn) + (gpa & 0xffc)) >>> 2] >>> 0;
}

/** Read `len` bytes of guest-physical memory into `out` (false if any page is unbacked). */
export function readGpa(vcpu: X86Vcpu, gpa: number, out: Uint8Array, len: number): boolean {
  const kvm = vcpu.kvm;
  const pm = kvm.physmem;
  let done = 0;
  while (done < len) {
    const cur = gpa + done;
    const pfn = kvm.gfnToPfn(Math.floor(cur / 4096), false);
    if (pfn < 0) return false;
    const off = cur & 4095;
    const n = Math.min(len - done, 4096 - off);
    const base = pm.frameOffset(pfn) + off;
    out.set(pm.chunk(pfn).subarray(base, base + n), done);
    done += n;
  }
  return true;
}

/** Write `len` bytes into guest-physical memory (false if any page is unbacked or read-only). */
export function writeGpa(vcpu: X86Vcpu, gpa: number, data: Uint8Array, len: number): boolean {
  const kvm = vcpu.kvm;
  const pm = kvm.physmem;
  let done = 0;
  while (done < len) {
    const cur = gpa + done;
    const gfn = Math.floor(cur / 4096);
    const pfn = kvm.gfnToPfn(gfn, true);
    if (pfn < 0) return false;
    const off = cur & 4095;
    const n = Math.min(len - done, 4096 - off);
    // Stores reach decoded code as from any other writer (PhysMem.codeWritten).
    if (pm.codeFrames[pfn]) pm.codeWritten(pfn);
    pm.chunk(pfn).set(data.subarray(done, done + n), pm.frameOffset(pfn) + off);
    kvm.markPageDirty(vcpu, gfn);
    done += n;
  }
  return true;
}

const pdptrBuf = new Int32Array(2);

/**
 * kvm_pdptr_read(): half `half` (0 low, 1 high) of PAE PDPTE register `i` (SDM 4.4.1: loaded with
 * CR3 and by the CR0/CR4 writes that enable PAE paging, not re-read from memory by walks); from
 * guest memory when the vendor keeps no PDPTE registers. NaN when that memory is unbacked.
 */
export function kvmPdptr(vcpu: X86Vcpu, i: number, half: number): number {
  const a = vcpu.arch;
  if (a.ops.getPdptr !== undefined) {
    a.ops.getPdptr(vcpu, i, pdptrBuf);
    return pdptrBuf[half] >>> 0;
  }
  return readGpa32(vcpu, (a.cr3 & 0xffffffe0) + i * 8 + half * 4);
}

const PT_PRESENT = 1;
const PT_WRITABLE = 2;
const PT_USER = 4;
const PT_PAGE_SIZE = 0x80;

/**
 * gva_to_gpa(): translate `la` (a canonical number) with the vCPU's current paging mode.
 * `write`/`user`/`fetch` describe the access for the permission checks (KVM_TRANSLATE passes a
 * supervisor read).
 */
export function kvmTranslateGva(vcpu: X86Vcpu, la: number, write = false, user = false): GvaTranslation {
  const a = vcpu.arch;
  a.ops.cacheReg(vcpu, 18);
  const res: GvaTranslation = { valid: true, gpa: la, writable: true, user: true, errorCode: 0 };
  if ((a.cr0 & X86_CR0_PG) === 0) {
    res.gpa = la >= 0 ? la % 4294967296 : (la % 4294967296) + 4294967296;
    return res;
  }
  const wp = (a.cr0 & X86_CR0_WP) !== 0;
  let w = true;
  let u = true;
  const fail = (present: boolean): GvaTranslation => {
    res.valid = false;
    res.writable = false;
    res.user = false;
    res.errorCode = (present ? 1 : 0) | (write ? 2 : 0) | (user ? 4 : 0);
    return res;
  };
  const ula = la < 0 ? la + 2 ** 64 : la;

  if ((a.cr4 & X86_CR4_PAE) === 0) {
    // 32-bit paging: 10/10/12 with 4 MiB PDEs under CR4.PSE (SDM 4.3).
    const pdeAddr = (a.cr3 & 0xfffff000) + ((ula >>> 22) & 0x3ff) * 4;
    const pde = readGpa32(vcpu, pdeAddr);
    if (Number.isNaN(pde) || (pde & PT_PRESENT) === 0) return fail(false);
    w = w && (pde & PT_WRITABLE) !== 0;
    u = u && (pde & PT_USER) !== 0;
    if ((pde & PT_PAGE_SIZE) !== 0 && (a.cr4 & X86_CR4_PSE) !== 0) {
      const base = (pde & 0xffc00000) >>> 0;
      const hi = ((pde >>> 13) & 0xff) * 4294967296;
      res.gpa = hi + base + (ula & 0x3fffff);
    } else {
      const pte = readGpa32(vcpu, (pde & 0xfffff000) + ((ula >>> 12) & 0x3ff) * 4);
      if (Number.isNaN(pte) || (pte & PT_PRESENT) === 0) return fail(false);
      w = w && (pte & PT_WRITABLE) !== 0;
      u = u && (pte & PT_USER) !== 0;
      res.gpa = (pte & 0xfffff000) + (ula & 0xfff);
    }
  } else {
    let level: number;
    let table: number;
    if ((a.efer & EFER_LMA) !== 0) {
      level = (a.cr4 & X86_CR4_LA57) !== 0 ? 5 : 4;
      table = a.cr3 - (a.cr3 % 4096);
    } else {
      // PAE: the PDPTE registers loaded from the table CR3 points to.
      const idx = Math.floor(ula / 2 ** 30) & 3;
      const lo = kvmPdptr(vcpu, idx, 0);
      const hi = kvmPdptr(vcpu, idx, 1);
      if (Number.isNaN(lo) || (lo & PT_PRESENT) === 0) return fail(false);
      table = (hi & 0xfffff) * 4294967296 + (lo & 0xfffff000);
      level = 2;
    }
    for (; level >= 1; level--) {
      const shift = 12 + 9 * (level - 1);
      const idx = Math.floor(ula / 2 ** shift) % 512;
      const lo = readGpa32(vcpu, table + idx * 8);
      const hi = readGpa32(vcpu, table + idx * 8 + 4);
      if (Number.isNaN(lo) || (lo & PT_PRESENT) === 0) return fail(false);
      w = w && (lo & PT_WRITABLE) !== 0;
      u = u && (lo & PT_USER) !== 0;
      const addr = (hi & 0xfffff) * 4294967296 + (lo & 0xfffff000);
      if (level === 1 || ((level === 2 || level === 3) && (lo & PT_PAGE_SIZE) !== 0)) {
        const size = 2 ** shift;
        res.gpa = addr - (addr % size) + (ula % size);
        break;
      }
      table = addr;
    }
  }
  res.writable = w;
  res.user = u;
  if (user && !u) return fail(true);
  if (write && !w && (user || wp)) return fail(true);
  return res;
}

// ------------------------------------------------------------------------------------------------
// FNAME(walk_addr_generic) for the shadow MMU: the walk the processor itself would make, with the
// reserved-bit and permission checks of SDM Vol. 3A 4.6 and the accessed/dirty updates of 4.8,
// so that a guest running on shadow page tables sees the same faults and the same A/D bits as on
// EPT. The checks mirror the hardware walker in hw/x86/paging.ts (MAXPHYADDR 46).
// ------------------------------------------------------------------------------------------------

/** Result of walkAddrGeneric (one preallocated object per caller; no allocation per fault). */
export class GuestWalk {
  /** Guest-physical address of the access. */
  gpa = 0;
  /** Effective R/W and U/S of the translation (AND over all levels), and XD. */
  writable = false;
  user = false;
  nx = false;
  /** The leaf's dirty bit after this walk (a write sets it). */
  dirty = false;
  /** Size of the guest mapping: 1 = 4 KiB, 2 = 2/4 MiB, 3 = 1 GiB. */
  level = 1;
  /** #PF error code (SDM 4.7) when the walk fails. */
  errorCode = 0;
  /**
   * The guest page tables the walk went through (walker->table_gfn): tableGfn[l] is the gfn of
   * the table at level l (4 = PML4, 2 = the PD of 32-bit/PAE paging, 1 = PT), -1 above the
   * walk's top and below its leaf. For PAE the PDPT is not a table here: its entries are the
   * PDPTE registers loaded with CR3.
   */
  readonly tableGfn = new Float64Array(6);
  /**
   * tableAccess[l]: the access the entries above level l grant (WALK_PERM_* bits: AND of R/W
   * and U/S, and no XD), i.e. what a shadow of the table at level l may give at most.
   */
  readonly tableAccess = new Uint8Array(6);
  /** The leaf entry after the walk's A/D update (low and high halves; high 0 for 32-bit paging). */
  leafLo = 0;
  leafHi = 0;
}

/** Access bits of GuestWalk.tableAccess (ACC_WRITE_MASK / ACC_USER_MASK / ACC_EXEC_MASK). */
export const WALK_PERM_WRITE = 1;
export const WALK_PERM_USER = 2;
export const WALK_PERM_EXEC = 4;
export const WALK_PERM_ALL = 7;

function walkPerm(rw: number, us: number, nx: number): number {
  return ((rw & 1) !== 0 ? WALK_PERM_WRITE : 0) | ((us & 1) !== 0 ? WALK_PERM_USER : 0) | (nx === 0 ? WALK_PERM_EXEC : 0);
}

const RSVD_HI_ADDR = 0x000fc000;
const PTE_A = 0x20;
const PTE_D = 0x40;

/** Write 4 bytes of guest-physical memory (an A/D update); logged as a guest write. */
function writeGpa32(vcpu: X86Vcpu, gpa: number, v: number): void {
  const kvm = vcpu.kvm;
  const gfn = Math.floor(gpa / 4096);
  const pfn = kvm.gfnToPfn(gfn, true);
  if (pfn < 0) return;
  const pm = kvm.physmem;
  if (pm.codeFrames[pfn]) pm.codeWritten(pfn);
  pm.chunk32(pfn)[(pm.frameOffset(pfn) + (gpa & 0xffc)) >>> 2] = v;
  kvm.markPageDirty(vcpu, gfn);
}

function walkFail(out: GuestWalk, errorCode: number): boolean {
  out.errorCode = errorCode;
  return false;
}

/** Access kinds for walkAddrGeneric (the PFERR_* bits of the access). */
export const WALK_ACC_WRITE = 2;
export const WALK_ACC_USER = 4;
export const WALK_ACC_FETCH = 16;

/**
 * FNAME(walk_addr_generic)(): translate `la` for an access described by `access` (PFERR_WRITE /
 * PFERR_USER / PFERR_FETCH bits; a supervisor access at CPL 3 is implicit, which SMAP always
 * checks). `ac` is EFLAGS.AC. On success fills `out` and sets the A (and, for a write, D) bits in
 * the guest's entries; on failure returns false with out.errorCode set (P, W, U, RSVD, I).
 */
export function walkAddrGeneric(vcpu: X86Vcpu, la: number, access: number, cpl: number, ac: boolean, out: GuestWalk): boolean {
  const a = vcpu.arch;
  const write = (access & WALK_ACC_WRITE) !== 0;
  const fetch = (access & WALK_ACC_FETCH) !== 0;
  const user = (access & WALK_ACC_USER) !== 0;
  const implicit = !user && cpl === 3;
  const ula = la < 0 ? la + 2 ** 64 : la;
  out.level = 1;
  out.tableGfn.fill(-1);
  out.tableAccess.fill(0);
  if ((a.cr0 & X86_CR0_PG) === 0) {
    out.gpa = ula % 4294967296;
    out.writable = out.user = true;
    out.nx = false;
    out.dirty = true;
    return true;
  }
  const cr4 = a.cr4;
  const nxe = (a.efer & EFER_NX) !== 0;
  const long = (a.efer & EFER_LMA) !== 0;
  const pae = (cr4 & X86_CR4_PAE) !== 0;
  const smep = (cr4 & X86_CR4_SMEP) !== 0;
  const accBits = (write ? 2 : 0) | (user ? 4 : 0) | (fetch && (smep || (pae && nxe)) ? 16 : 0);
  let rw = 1;
  let us = 1;
  let nx = 0;
  let leafGpa = 0;
  let leafLo = 0;
  let leafHi = 0;
  let pageBase = 0;
  let pageSize = 4096;

  if (!pae) {
    out.tableGfn[2] = (a.cr3 & 0xfffff000) >>> 12;
    out.tableAccess[2] = WALK_PERM_ALL;
    const pdeGpa = (a.cr3 & 0xfffff000) + ((ula >>> 22) & 0x3ff) * 4;
    let pde = readGpa32(vcpu, pdeGpa);
    if (Number.isNaN(pde) || (pde & PT_PRESENT) === 0) return walkFail(out, 0 | accBits);
    rw &= pde >>> 1;
    us &= pde >>> 2;
    if ((pde & PT_PAGE_SIZE) !== 0 && (cr4 & X86_CR4_PSE) !== 0) {
      if ((pde & (1 << 21)) !== 0) return walkFail(out, 1 | 8 | accBits);
      pageBase = ((pde >>> 13) & 0xff) * 4294967296 + ((pde & 0xffc00000) >>> 0);
      pageSize = 0x400000;
      leafGpa = pdeGpa;
      leafLo = pde;
      out.level = 2;
    } else {
      if ((pde & PTE_A) === 0) {
        pde = (pde | PTE_A) >>> 0;
        writeGpa32(vcpu, pdeGpa, pde);
      }
      out.tableGfn[1] = (pde & 0xfffff000) >>> 12;
      out.tableAccess[1] = walkPerm(rw, us, 0);
      const pteGpa = ((pde & 0xfffff000) >>> 0) + ((ula >>> 12) & 0x3ff) * 4;
      const pte = readGpa32(vcpu, pteGpa);
      if (Number.isNaN(pte) || (pte & PT_PRESENT) === 0) return walkFail(out, 0 | accBits);
      rw &= pte >>> 1;
      us &= pte >>> 2;
      pageBase = (pte & 0xfffff000) >>> 0;
      leafGpa = pteGpa;
      leafLo = pte;
    }
  } else {
    let level: number;
    let table: number;
    if (!long) {
      const idx = Math.floor(ula / 2 ** 30) & 3;
      const lo = kvmPdptr(vcpu, idx, 0);
      const hi = kvmPdptr(vcpu, idx, 1);
      if (Number.isNaN(lo) || (lo & PT_PRESENT) === 0) return walkFail(out, 0 | accBits);
      if ((lo & 0x1e6) !== 0 || (hi & (RSVD_HI_ADDR | 0xfff00000)) !== 0) return walkFail(out, 1 | 8 | accBits);
      table = (hi & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0);
      level = 2;
    } else {
      if ((cr4 & X86_CR4_LA57) !== 0) return walkFail(out, 1 | 8 | accBits);
      table = (a.cr3 - (a.cr3 % 4096)) % 2 ** 52;
      level = 4;
    }
    out.tableGfn[level] = table / 4096;
    out.tableAccess[level] = WALK_PERM_ALL;
    for (;;) {
      const shift = 12 + 9 * (level - 1);
      const idx = Math.floor(ula / 2 ** shift) % 512;
      const eGpa = table + idx * 8;
      let lo = readGpa32(vcpu, eGpa);
      const hi = readGpa32(vcpu, eGpa + 4);
      if (Number.isNaN(lo) || (lo & PT_PRESENT) === 0) return walkFail(out, 0 | accBits);
      const ps = (lo & PT_PAGE_SIZE) !== 0;
      let rsvd = (hi & RSVD_HI_ADDR) !== 0 || (!nxe && (hi & 0x80000000) !== 0);
      if (ps && level > 3) rsvd = true;
      if (ps && level === 3 && (lo & 0x3fffe000) !== 0) rsvd = true;
      if (ps && level === 2 && (lo & 0x1fe000) !== 0) rsvd = true;
      if (rsvd) return walkFail(out, 1 | 8 | accBits);
      rw &= lo >>> 1;
      us &= lo >>> 2;
      if (nxe && (hi & 0x80000000) !== 0) nx = 1;
      const addr = (hi & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0);
      if (level === 1 || ps) {
        pageSize = 2 ** shift;
        pageBase = addr - (addr % pageSize);
        leafGpa = eGpa;
        leafLo = lo;
        leafHi = hi;
        out.level = level;
        break;
      }
      if ((lo & PTE_A) === 0) {
        lo = (lo | PTE_A) >>> 0;
        writeGpa32(vcpu, eGpa, lo);
      }
      table = addr;
      level--;
      out.tableGfn[level] = table / 4096;
      out.tableAccess[level] = walkPerm(rw, us, nx);
    }
  }
  rw &= 1;
  us &= 1;

  // Access rights (SDM 4.6), in the order the processor checks them.
  const wp = (a.cr0 & X86_CR0_WP) !== 0;
  if (user) {
    if (us === 0 || (write && rw === 0) || (fetch && nx !== 0)) return walkFail(out, 1 | accBits);
  } else {
    if (write && rw === 0 && wp) return walkFail(out, 1 | accBits);
    if (fetch && (nx !== 0 || (us !== 0 && smep))) return walkFail(out, 1 | accBits);
    if (us !== 0 && !fetch && (cr4 & X86_CR4_SMAP) !== 0 && (implicit || !ac)) return walkFail(out, 1 | accBits);
  }
  let newLo = (leafLo | PTE_A) >>> 0;
  if (write) newLo = (newLo | PTE_D) >>> 0;
  if (newLo !== leafLo >>> 0) writeGpa32(vcpu, leafGpa, newLo);
  out.gpa = pageBase + (ula % pageSize);
  out.writable = rw !== 0;
  out.user = us !== 0;
  out.nx = nx !== 0;
  out.dirty = (newLo & PTE_D) !== 0;
  out.leafLo = newLo;
  out.leafHi = leafHi;
  return true;
}
