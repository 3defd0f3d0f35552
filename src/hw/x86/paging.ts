/**
 * Linear-address translation: the page walk of every paging mode (SDM Vol. 3A ch. 4):
 * 32-bit paging (4 KiB and PSE 4 MiB pages), PAE, 4-level and 5-level, with A/D updates,
 * U/S, R/W + CR0.WP, XD (EFER.NXE), SMEP, SMAP (EFLAGS.AC, implicit accesses), global pages
 * and reserved-bit checks. A fault throws #PF with the SDM 4.7 error code; CR2 is written at
 * delivery (interrupt.ts), after the VMX exception hook has had its chance.
 *
 * With EPT active in VMX non-root operation each paging-structure access and the final address
 * are guest-physical and go through vmx.eptTranslate (SDM 29.3.2).
 *
 * PAE paging walks from the four PDPTE registers (X86State.pdpte, SDM 4.4.1), not from the table
 * in memory: a guest that rewrites a PDPTE keeps translating through the old one until something
 * reloads the registers. Loads (loadPdptes) check the reserved bits, so a bad present PDPTE is a
 * #GP(0) on the loading instruction and a not-present one a #PF at walk time. They happen at
 *   - MOV to CR3 while PAE paging is in use (ops/system.ts setCr3);
 *   - MOV to CR0/CR4 after which PAE paging is in use and that changes CR0.CD/NW/PG or
 *     CR4.PAE/PGE/PSE/SMEP (setCr0/setCr4);
 *   - VM entry to a PAE guest: from the VMCS guest PDPTE fields with EPT, else from the table at
 *     the guest CR3 (vmx/vmx.ts; checked in vmx/entry.ts, 26.3.1.6); a VM exit with EPT stores
 *     them back (28.3.4);
 *   - state written from outside the instruction stream (tests, a bare-metal caller) that turns
 *     PAE paging on: X86Cpu.stateChanged calls pdptesAfterStateChange, which reads the table at
 *     CR3 unchecked. Such state keeps the reserved-bit check at walk time (#PF with RSVD). A
 *     caller that changes CR3 of a state already in PAE paging, or that attached a non-root view
 *     (cpu.vmx) of its own, calls loadPdptes / fills X86State.pdpte itself.
 * (Task switches that load CR3 are not modelled on bare metal: interrupt.ts.)
 */
import type { X86Cpu } from "./cpu.js";
import type { PhysMem } from "../physmem.js";
import { FAULT, PF_VECTOR, PFERR_P, PFERR_W, PFERR_U, PFERR_RSVD, PFERR_I } from "./fault.js";
import { FRAMES_PER_CHUNK_SHIFT, FRAMES_PER_CHUNK } from "../physmem.js";
import { AC } from "./flags.js";

export const WALK_R = 1;
export const WALK_W = 2;
export const WALK_X = 4;

/** MAXPHYADDR reported by CPUID 0x80000008. */
export const MAXPHYADDR = 46;
/** Bits 46..51 of an entry (bits 14..19 of its high half) are reserved with MAXPHYADDR 46. */
const RSVD_HI_ADDR = 0x000fc000;

const CR0_WP = 1 << 16;
const CR4_PSE = 1 << 4, CR4_PGE = 1 << 7, CR4_SMEP = 1 << 20, CR4_SMAP = 1 << 21;
const EFER_NXE = 1 << 11;

function gpaToHpa(c: X86Cpu, gpa: number, acc: number, la: number, isWalk: boolean): number {
  const v = c.vmx;
  if (v !== null && v.eptEnabled) return v.eptTranslate(gpa, acc, la, true, isWalk);
  return gpa;
}

/** Read a paging-structure word (32-bit) at host physical address; unbacked memory reads as 0 (not present). */
function physRd32(pm: PhysMem, hpa: number): number {
  const pfn = Math.floor(hpa / 4096);
  if (pfn >= pm.nrFrames) return 0;
  const m = pm.chunks32[pfn >>> FRAMES_PER_CHUNK_SHIFT];
  if (m === undefined) return 0;
  return m[(((pfn & (FRAMES_PER_CHUNK - 1)) << 12) + (hpa & 4095)) >> 2];
}

function pRd32(c: X86Cpu, hpa: number): number {
  return physRd32(c.physmem, hpa);
}

function pWr32(c: X86Cpu, hpa: number, v: number): void {
  const pfn = Math.floor(hpa / 4096);
  if (pfn >= c.physmem.nrFrames) return;
  const m = c.physmem.chunks32[pfn >>> FRAMES_PER_CHUNK_SHIFT];
  if (m === undefined) return;
  if (c.physmem.codeFrames[pfn]) c.physmem.codeWritten(pfn);
  m[(((pfn & (FRAMES_PER_CHUNK - 1)) << 12) + (hpa & 4095)) >> 2] = v;
}

/** A present PAE PDPTE with any of bits 2:1, 8:5 or 63:MAXPHYADDR set is invalid (SDM 4.4.1, Table 4-8). */
export function pdpteReserved(lo: number, hi: number): boolean {
  return (lo & 0x1e6) !== 0 || (hi & (RSVD_HI_ADDR | 0xfff00000)) !== 0;
}

/**
 * Read the four PDPTEs of the 32-byte table at host-physical `hpa` into out[0..8) (lo/hi pairs,
 * the X86State.pdpte layout). Returns false if a present one sets a reserved bit.
 */
export function readPdptes(pm: PhysMem, hpa: number, out: Int32Array): boolean {
  let ok = true;
  for (let i = 0; i < 8; i += 2) {
    const lo = physRd32(pm, hpa + 4 * i), hi = physRd32(pm, hpa + 4 * i + 4);
    out[i] = lo;
    out[i + 1] = hi;
    if ((lo & 1) && pdpteReserved(lo, hi)) ok = false;
  }
  return ok;
}

/** Physical address of the PDPTE table named by a PAE CR3 (bits 31:5; 63:32 are ignored, SDM Table 4-7). */
export function pdptTableAddr(cr3: number): number {
  return (cr3 & ~0x1f) >>> 0;
}

const pdTmp = new Int32Array(8);

/**
 * Load PDPTE0-3 from the table a PAE `cr3` names, as MOV to CR0/CR3/CR4 does when it establishes
 * or reloads PAE paging (SDM 4.4.1). Returns false, with the registers unchanged, when a present
 * PDPTE sets a reserved bit: the instruction then raises #GP(0) and changes nothing. In VMX
 * non-root operation with EPT the table is guest-physical: an EPT violation or misconfiguration
 * is a VM exit on the instruction, with the guest-linear-address field not valid (SDM 28.2.1,
 * Table 28-7 bit 7) and the access a read even with EPT A/D flags on (SDM 29.3.3.2).
 */
export function loadPdptes(c: X86Cpu, cr3: number): boolean {
  const base = pdptTableAddr(cr3);
  const v = c.vmx;
  const hpa = v !== null && v.eptEnabled ? v.eptTranslate(base, WALK_R, 0, false, false) : base;
  if (!readPdptes(c.physmem, hpa, pdTmp)) return false;
  c.state.pdpte.set(pdTmp);
  return true;
}

/**
 * X86Cpu.stateChanged: state written from outside that turns PAE paging on outside VMX non-root
 * operation gets its PDPTE registers from the table at CR3, as the MOV to CR0 that would have done
 * so on hardware, but without the reserved-bit check (nothing can fault here; the walk checks).
 */
export function pdptesAfterStateChange(c: X86Cpu, oldPgMode: number): void {
  if (c.pgMode === 2 && oldPgMode !== 2 && c.vmx === null) readPdptes(c.physmem, pdptTableAddr(c.state.cr3), c.state.pdpte);
}

function pageFault(c: X86Cpu, la: number, err: number): never {
  c.faultVec = PF_VECTOR;
  c.faultErr = err;
  c.faultExtra = la;
  throw FAULT;
}

/**
 * Translate linear address `la` for an access of kind acc (WALK_R/W/X) made with user privilege
 * `user` (`implicit` = a supervisor access made on behalf of any CPL, which SMAP always checks).
 * Returns the host-physical address. Leaves in c.walkPerm the access kinds the TLB may cache for
 * this page at this privilege and in c.walkGlobal the G bit.
 */
export function walk(c: X86Cpu, la: number, acc: number, user: boolean, implicit: boolean): number {
  const st = c.state;
  const mode = c.pgMode;
  if (mode === 0) {
    const v = c.vmx;
    c.walkGlobal = 0;
    if (v !== null && v.eptEnabled) {
      c.walkPerm = acc === WALK_W ? WALK_W | WALK_R : acc;
      return v.eptTranslate(la, acc, la, true, false);
    }
    c.walkPerm = WALK_R | WALK_W | WALK_X;
    return la;
  }
  const nxe = (st.efer & EFER_NXE) !== 0;
  const cr4 = st.cr4;
  let rw = 1, us = 1, nx = 0;
  let pageBase = 0, pageMask = 4095;
  let leafHpa = 0, leafLo = 0, global = 0;
  let errRsvd = 0;

  if (mode === 1) {
    // 32-bit paging (SDM 4.3)
    const pdeGpa = (st.cr3 & 0xfffff000) + ((la >>> 22) << 2);
    const pdeHpa = gpaToHpa(c, pdeGpa, 1, la, true);
    let pde = pRd32(c, pdeHpa);
    if (!(pde & 1)) pageFault(c, la, pfErr(c, acc, user, implicit, 0));
    rw &= pde >> 1; us &= pde >> 2;
    if ((pde & 0x80) && (cr4 & CR4_PSE)) {
      if (pde & (1 << 21)) errRsvd = 1;
      if (errRsvd) pageFault(c, la, pfErr(c, acc, user, implicit, PFERR_P | PFERR_RSVD));
      pageBase = (pde & 0xffc00000) >>> 0;
      pageBase += ((pde >>> 13) & 0xff) * 4294967296;
      pageMask = 0x3fffff;
      leafHpa = pdeHpa; leafLo = pde;
      global = (pde >> 8) & 1;
    } else {
      if (!(pde & 0x20)) { pde |= 0x20; pWr32(c, pdeHpa, pde); }
      const pteGpa = ((pde & 0xfffff000) >>> 0) + (((la >>> 12) & 0x3ff) << 2);
      const pteHpa = gpaToHpa(c, pteGpa, 1, la, true);
      const pte = pRd32(c, pteHpa);
      if (!(pte & 1)) pageFault(c, la, pfErr(c, acc, user, implicit, 0));
      rw &= pte >> 1; us &= pte >> 2;
      pageBase = (pte & 0xfffff000) >>> 0;
      leafHpa = pteHpa; leafLo = pte;
      global = (pte >> 8) & 1;
    }
  } else {
    // PAE (SDM 4.4) and 4/5-level (SDM 4.5): 64-bit entries, 9 index bits per level.
    let level: number;
    let table: number;
    if (mode === 2) {
      // PAE (SDM 4.4.2): the PDPTE register for bits 31:30, no memory access.
      const pd = st.pdpte, i = (la >>> 30) << 1;
      const lo = pd[i], hi = pd[i + 1];
      if (!(lo & 1)) pageFault(c, la, pfErr(c, acc, user, implicit, 0));
      // Only registers filled from outside (pdptesAfterStateChange) can hold reserved bits.
      if (pdpteReserved(lo, hi)) pageFault(c, la, pfErr(c, acc, user, implicit, PFERR_P | PFERR_RSVD));
      table = (hi & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0);
      level = 2;
    } else {
      level = mode === 4 ? 5 : 4;
      table = Math.floor(st.cr3 / 4096) * 4096 % 4503599627370496;
    }
    const laHi = Math.floor(la / 4294967296);
    for (;;) {
      // index bits for this level: 12 + 9*(level-1)
      const shift = 12 + 9 * (level - 1);
      let idx: number;
      if (shift >= 32) idx = (laHi >>> (shift - 32)) & 511;
      else if (shift + 9 > 32) idx = ((la >>> shift) | (laHi << (32 - shift))) & 511;
      else idx = (la >>> shift) & 511;
      const eHpa = gpaToHpa(c, table + idx * 8, 1, la, true);
      let lo = pRd32(c, eHpa);
      const hi = pRd32(c, eHpa + 4);
      if (!(lo & 1)) pageFault(c, la, pfErr(c, acc, user, implicit, 0));
      let rsvd = (hi & RSVD_HI_ADDR) !== 0 || (!nxe && hi < 0);
      const ps = (lo & 0x80) !== 0;
      if (ps && (level > 3 || (level === 3 && mode === 2))) rsvd = true;
      if (ps && level === 3 && (lo & 0x3fffe000)) rsvd = true;
      if (ps && level === 2 && (lo & 0x1fe000)) rsvd = true;
      if (rsvd) pageFault(c, la, pfErr(c, acc, user, implicit, PFERR_P | PFERR_RSVD));
      rw &= lo >> 1; us &= lo >> 2;
      if (nxe && hi < 0) nx = 1;
      const addr = (hi & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0);
      if (level === 1 || ps) {
        leafHpa = eHpa; leafLo = lo; global = (lo >> 8) & 1;
        if (level === 1) { pageBase = addr; pageMask = 4095; }
        else if (level === 2) { pageBase = addr - (addr % 0x200000); pageMask = 0x1fffff; }
        else { pageBase = addr - (addr % 0x40000000); pageMask = 0x3fffffff; }
        break;
      }
      if (!(lo & 0x20)) { lo |= 0x20; pWr32(c, eHpa, lo); }
      table = addr;
      level--;
    }
  }
  rw &= 1; us &= 1;

  // Access rights (SDM 4.6).
  const wp = (st.cr0 & CR0_WP) !== 0;
  const smap = us && !user && (cr4 & CR4_SMAP) !== 0 && acc !== WALK_X;
  if (user) {
    if (!us || (acc === WALK_W && !rw) || (acc === WALK_X && nx)) pageFault(c, la, pfErr(c, acc, user, implicit, PFERR_P));
  } else {
    if (acc === WALK_W && !rw && wp) pageFault(c, la, pfErr(c, acc, user, implicit, PFERR_P));
    if (acc === WALK_X && (nx || (us && (cr4 & CR4_SMEP)))) pageFault(c, la, pfErr(c, acc, user, implicit, PFERR_P));
    if (smap && (implicit || !(c.fl & AC))) pageFault(c, la, pfErr(c, acc, user, implicit, PFERR_P));
  }

  // Accessed and dirty flags on the leaf.
  let newLo = leafLo | 0x20;
  if (acc === WALK_W) newLo |= 0x40;
  if (newLo !== leafLo) pWr32(c, leafHpa, newLo);

  const off = pageMask === 4095 ? la & 4095 : (la & pageMask) >>> 0;
  const gpa = pageBase + off;
  // Permissions the TLB may cache for this privilege.
  let perm = 0;
  if (!implicit && !smap) {
    perm = WALK_R;
    if ((newLo & 0x40) && (user ? rw : rw || !wp)) perm |= WALK_W;
    if (!nx && !(us && !user && (cr4 & CR4_SMEP))) perm |= WALK_X;
  }
  c.walkGlobal = global && (cr4 & CR4_PGE) ? 1 : 0;
  const v = c.vmx;
  if (v !== null && v.eptEnabled) {
    // EPT permissions are only known for the kind checked now.
    perm &= acc === WALK_W ? WALK_W | WALK_R : acc;
    c.walkPerm = perm;
    return v.eptTranslate(gpa, acc, la, true, false);
  }
  c.walkPerm = perm;
  return gpa;
}

function pfErr(c: X86Cpu, acc: number, user: boolean, implicit: boolean, bits: number): number {
  let e = bits;
  if (acc === WALK_W) e |= PFERR_W;
  if (user && !implicit) e |= PFERR_U;
  if (acc === WALK_X && ((c.state.cr4 & CR4_SMEP) || (c.pgMode >= 2 && (c.state.efer & EFER_NXE)))) e |= PFERR_I;
  return e;
}
