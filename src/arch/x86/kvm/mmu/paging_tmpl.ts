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

import { EFER_LMA, X86_CR0_PG, X86_CR0_WP, X86_CR4_LA57, X86_CR4_PAE, X86_CR4_PSE, type X86Vcpu } from "../kvm_host.js";

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
    pm.chunk(pfn).set(data.subarray(done, done + n), pm.frameOffset(pfn) + off);
    kvm.markPageDirty(vcpu, gfn);
    done += n;
  }
  return true;
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
      // PAE: CR3 points to four PDPTEs (32-byte aligned).
      const idx = Math.floor(ula / 2 ** 30) & 3;
      const pdpteAddr = (a.cr3 & 0xffffffe0) + idx * 8;
      const lo = readGpa32(vcpu, pdpteAddr);
      const hi = readGpa32(vcpu, pdpteAddr + 4);
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
