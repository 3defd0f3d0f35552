/**
 * EPT: the guest-physical -> host-physical translation of VMX non-root operation
 * (SDM Vol. 3C 29.3). A 4-level walk over 8-byte entries in host physical memory, read as two
 * 32-bit halves (no BigInt), with EPT accessed/dirty flags (29.3.5), 2 MiB and 1 GiB leaves,
 * misconfiguration checks (29.3.3.1) and violations with the Table 28-7 qualification.
 *
 * Completed translations are cached per 4 KiB guest frame in a small direct-mapped software TLB,
 * tagged by the EPTP it was made under (29.4: "guest-physical mappings"). INVEPT and EPTP
 * changes flush it.
 */
import type { PhysMem } from "../../physmem.js";
import { FRAMES_PER_CHUNK_SHIFT, FRAMES_PER_CHUNK } from "../../physmem.js";
import { VMX_PHYS_ADDR_BITS } from "./caps.js";
import {
  VMX_EPTP_MT_MASK, VMX_EPTP_MT_UC, VMX_EPTP_MT_WB, VMX_EPTP_PWL_MASK, VMX_EPTP_PWL_4, VMX_EPTP_AD_ENABLE_BIT,
  VMX_EPT_ACCESS_BIT, VMX_EPT_DIRTY_BIT, VMX_EPT_LARGE_PAGE,
  EPT_VIOLATION_GVA_IS_VALID, EPT_VIOLATION_GVA_TRANSLATED, EPT_VIOLATION_RWX_SHIFT,
} from "./vmcs.js";

export const EPT_OK = 0;
export const EPT_FAULT_VIOLATION = 1;
export const EPT_FAULT_MISCONFIG = 2;

const TLB_BITS = 12;
const TLB_SIZE = 1 << TLB_BITS;
const TLB_MASK = TLB_SIZE - 1;
/** perm bit 3: the leaf's dirty flag is already set (or A/D is off), so a write needs no walk. */
const PERM_DIRTY_DONE = 8;

const TWO32 = 4294967296;
/** Address bits 51:MAXPHYADDR of an entry's high dword are reserved. */
const HI_RESERVED = (0x000fffff & ~((1 << (VMX_PHYS_ADDR_BITS - 32)) - 1)) >>> 0;
const HI_ADDR = (1 << (VMX_PHYS_ADDR_BITS - 32)) - 1;

/** EPTP validity (SDM 26.2.1.1 "enable EPT" checks), against the capabilities caps.ts reports. */
export function eptpValid(lo: number, hi: number): boolean {
  const mt = lo & VMX_EPTP_MT_MASK;
  if (mt !== VMX_EPTP_MT_UC && mt !== VMX_EPTP_MT_WB) return false;
  if ((lo & VMX_EPTP_PWL_MASK) !== VMX_EPTP_PWL_4) return false;
  if (lo & 0xf80) return false; // bits 11:7 reserved
  return (hi & ~HI_ADDR) === 0;
}

export class Ept {
  readonly physmem: PhysMem;
  /** EPTP of the current translations (number; < 2^52). */
  eptp = -1;
  ad = false;
  private root = 0;

  /** Set by a failing `translate`: EPT_FAULT_* and, for violations, the exit qualification. */
  fault = EPT_OK;
  qualification = 0;

  private readonly tag = new Float64Array(TLB_SIZE).fill(-1);
  private readonly hpfn = new Float64Array(TLB_SIZE);
  private readonly perm = new Uint8Array(TLB_SIZE);

  constructor(physmem: PhysMem) {
    this.physmem = physmem;
  }

  /** Use the tables of `eptp` (lo/hi of the VMCS field); flushes cached translations if it changed. */
  setEptp(lo: number, hi: number): void {
    const v = (hi >>> 0) * TWO32 + (lo >>> 0);
    if (v === this.eptp) return;
    this.eptp = v;
    this.ad = (lo & VMX_EPTP_AD_ENABLE_BIT) !== 0;
    this.root = (hi & HI_ADDR) * TWO32 + ((lo & 0xfffff000) >>> 0);
    this.flush();
  }

  /** Drop every cached guest-physical mapping (INVEPT, SDM 29.4.3.1). */
  flush(): void {
    this.tag.fill(-1);
  }

  /**
   * Translate `gpa` for `access` (MemAccess bits: 1 read, 2 write, 4 fetch). Returns the hpa or
   * -1 with `fault`/`qualification` set. `isWalk`: the access reads/updates a guest
   * paging-structure entry, which with A/D enabled counts as a write (SDM 29.3.3.2).
   */
  translate(gpa: number, access: number, linearValid: boolean, isWalk: boolean): number {
    const gfn = Math.floor(gpa / 4096);
    const i = gfn & TLB_MASK;
    let need = access & 7;
    if (isWalk && this.ad) need |= 2;
    if (this.tag[i] === gfn) {
      const p = this.perm[i];
      if ((p & need) === need && (!(need & 2) || (p & PERM_DIRTY_DONE))) return this.hpfn[i] * 4096 + (gpa & 4095);
    }
    return this.walk(gpa, gfn, need, access, linearValid, isWalk);
  }

  private walk(gpa: number, gfn: number, need: number, access: number, linearValid: boolean, isWalk: boolean): number {
    const pm = this.physmem;
    if (gpa >= 0x1000000000000) return this.violation(access, 0, linearValid, isWalk);
    let table = this.root;
    let permAnd = 7;
    // Entry locations, for setting A/D after a successful walk.
    let e4 = -1, e3 = -1, e2 = -1, e1 = -1;
    let m4: Int32Array | null = null, m3: Int32Array | null = null, m2: Int32Array | null = null, m1: Int32Array | null = null;
    for (let level = 4; level >= 1; level--) {
      const shift = 12 + 9 * (level - 1);
      const idx = Math.floor(gpa / 2 ** shift) & 511;
      const tpfn = Math.floor(table / 4096);
      const m = tpfn < pm.nrFrames ? pm.chunks32[tpfn >>> FRAMES_PER_CHUNK_SHIFT] : undefined;
      // A table outside populated DRAM reads as all ones: a misconfiguration.
      if (m === undefined) return this.misconfig();
      const w = (((tpfn & (FRAMES_PER_CHUNK - 1)) << 12) >>> 2) + idx * 2;
      const lo = m[w], hi = m[w + 1];
      const rwx = lo & 7;
      if (rwx === 0) return this.violation(access, 0, linearValid, isWalk);
      if (rwx === 2 || rwx === 6) return this.misconfig(); // writable but not readable
      if (hi & HI_RESERVED) return this.misconfig();
      permAnd &= rwx;
      const large = (lo & VMX_EPT_LARGE_PAGE) !== 0;
      if (level === 4) { e4 = w; m4 = m; } else if (level === 3) { e3 = w; m3 = m; } else if (level === 2) { e2 = w; m2 = m; } else { e1 = w; m1 = m; }
      if (level === 1 || (large && level <= 3)) {
        if (level === 4) return this.misconfig();
        const mt = (lo >>> 3) & 7;
        if (mt === 2 || mt === 3 || mt === 7) return this.misconfig();
        let base: number;
        if (level === 3) {
          if (lo & 0x3ffff000) return this.misconfig(); // bits 29:12 reserved in a 1 GiB leaf
          base = (hi & HI_ADDR) * TWO32 + ((lo & 0xc0000000) >>> 0) + (gpa % 0x40000000) - (gpa % 4096);
        } else if (level === 2) {
          if (lo & 0x001ff000) return this.misconfig(); // bits 20:12 reserved in a 2 MiB leaf
          base = (hi & HI_ADDR) * TWO32 + ((lo & 0xffe00000) >>> 0) + (gpa % 0x200000) - (gpa % 4096);
        } else {
          base = (hi & HI_ADDR) * TWO32 + ((lo & 0xfffff000) >>> 0);
        }
        if ((permAnd & need) !== need) return this.violation(access | (need & 2), permAnd, linearValid, isWalk);
        let dirtyDone = !this.ad;
        if (this.ad) {
          if (m4 !== null) m4[e4] |= VMX_EPT_ACCESS_BIT;
          if (m3 !== null) m3[e3] |= VMX_EPT_ACCESS_BIT;
          if (m2 !== null) m2[e2] |= VMX_EPT_ACCESS_BIT;
          if (m1 !== null) m1[e1] |= VMX_EPT_ACCESS_BIT;
          if (need & 2) { m[w] |= VMX_EPT_DIRTY_BIT; dirtyDone = true; } else dirtyDone = (m[w] & VMX_EPT_DIRTY_BIT) !== 0;
        }
        const hpfn = base / 4096;
        const i = gfn & TLB_MASK;
        this.tag[i] = gfn;
        this.hpfn[i] = hpfn;
        this.perm[i] = permAnd | (dirtyDone ? PERM_DIRTY_DONE : 0);
        return base + (gpa % 4096);
      }
      if (lo & 0xf8) return this.misconfig(); // bits 7:3 reserved in a non-leaf entry
      table = (hi & HI_ADDR) * TWO32 + ((lo & 0xfffff000) >>> 0);
    }
    return this.misconfig();
  }

  private violation(access: number, permAnd: number, linearValid: boolean, isWalk: boolean): number {
    let q = (access & 7) | (permAnd << EPT_VIOLATION_RWX_SHIFT);
    if (linearValid) {
      q |= EPT_VIOLATION_GVA_IS_VALID;
      if (!isWalk) q |= EPT_VIOLATION_GVA_TRANSLATED;
    }
    this.fault = EPT_FAULT_VIOLATION;
    this.qualification = q;
    return -1;
  }

  private misconfig(): number {
    this.fault = EPT_FAULT_MISCONFIG;
    this.qualification = 0;
    return -1;
  }
}
