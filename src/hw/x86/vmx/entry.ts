/**
 * VM entry checks (SDM Vol. 3C 26.2 controls and host state, 26.3.1 guest state) and the
 * loading of guest state into the processor (26.3.2), plus the MSR-load area (26.4).
 * Pure functions of the current VMCS; vmx.ts sequences them.
 */
import type { PhysMem } from "../../physmem.js";
import { FRAMES_PER_CHUNK_SHIFT } from "../../physmem.js";
import type { X86State } from "../state.js";
import { AR_S, AR_P, AR_L, AR_DB, AR_G, AR_UNUSABLE, AR_DPL_SHIFT, ActivityState } from "../state.js";
import {
  type VmcsCache,
  PIN_BASED_VM_EXEC_CONTROL, CPU_BASED_VM_EXEC_CONTROL, SECONDARY_VM_EXEC_CONTROL, VM_EXIT_CONTROLS,
  VM_ENTRY_CONTROLS, CR3_TARGET_COUNT, IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP, EPT_POINTER, VIRTUAL_PROCESSOR_ID,
  VM_ENTRY_INTR_INFO_FIELD, VM_ENTRY_EXCEPTION_ERROR_CODE, VM_ENTRY_INSTRUCTION_LEN,
  VM_EXIT_MSR_STORE_COUNT, VM_EXIT_MSR_LOAD_COUNT, VM_ENTRY_MSR_LOAD_COUNT,
  VM_EXIT_MSR_STORE_ADDR, VM_EXIT_MSR_LOAD_ADDR, VM_ENTRY_MSR_LOAD_ADDR,
  HOST_CR0, HOST_CR3, HOST_CR4, HOST_RIP, HOST_CS_SELECTOR, HOST_TR_SELECTOR, HOST_ES_SELECTOR,
  HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE, HOST_IDTR_BASE, HOST_IA32_SYSENTER_ESP,
  HOST_IA32_SYSENTER_EIP, HOST_IA32_EFER, HOST_IA32_PAT,
  GUEST_CR0, GUEST_CR3, GUEST_CR4, GUEST_DR7, GUEST_RIP, GUEST_RSP, GUEST_RFLAGS, GUEST_IA32_EFER,
  GUEST_IA32_PAT, GUEST_IA32_DEBUGCTL, GUEST_SEG_SELECTOR_BASE, GUEST_SEG_LIMIT_BASE, GUEST_SEG_AR_BASE,
  GUEST_SEG_BASE_BASE, GUEST_GDTR_BASE, GUEST_GDTR_LIMIT, GUEST_IDTR_BASE, GUEST_IDTR_LIMIT,
  GUEST_INTERRUPTIBILITY_INFO, GUEST_ACTIVITY_STATE, GUEST_PENDING_DBG_EXCEPTIONS, VMCS_LINK_POINTER,
  GUEST_PDPTR0, GUEST_SYSENTER_CS, GUEST_SYSENTER_ESP, GUEST_SYSENTER_EIP,
  PIN_BASED_NMI_EXITING, PIN_BASED_VIRTUAL_NMIS, PIN_BASED_VMX_PREEMPTION_TIMER,
  CPU_BASED_USE_IO_BITMAPS, CPU_BASED_USE_MSR_BITMAPS, CPU_BASED_NMI_WINDOW_EXITING,
  CPU_BASED_ACTIVATE_SECONDARY_CONTROLS,
  SECONDARY_EXEC_ENABLE_EPT, SECONDARY_EXEC_UNRESTRICTED_GUEST, SECONDARY_EXEC_ENABLE_VPID,
  VM_EXIT_SAVE_VMX_PREEMPTION_TIMER, VM_EXIT_HOST_ADDR_SPACE_SIZE, VM_EXIT_LOAD_IA32_EFER, VM_EXIT_LOAD_IA32_PAT,
  VM_ENTRY_IA32E_MODE, VM_ENTRY_LOAD_IA32_EFER, VM_ENTRY_LOAD_IA32_PAT, VM_ENTRY_LOAD_DEBUG_CONTROLS,
  INTR_INFO_VALID_MASK, INTR_INFO_RESVD_BITS_MASK, INTR_INFO_DELIVER_CODE_MASK, INTR_INFO_VECTOR_MASK,
  INTR_INFO_INTR_TYPE_MASK, INTR_TYPE_RESERVED, INTR_TYPE_NMI_INTR, INTR_TYPE_HARD_EXCEPTION,
  INTR_TYPE_SOFT_INTR, INTR_TYPE_PRIV_SW_EXCEPTION, INTR_TYPE_SOFT_EXCEPTION, INTR_TYPE_OTHER_EVENT,
  INTR_TYPE_EXT_INTR, CPU_BASED_MONITOR_TRAP_FLAG,
  GUEST_INTR_STATE_STI, GUEST_INTR_STATE_MOV_SS, GUEST_INTR_STATE_NMI, GUEST_INTR_STATE_SMI,
  GUEST_ACTIVITY_ACTIVE, GUEST_ACTIVITY_HLT,
  ENTRY_FAIL_DEFAULT, ENTRY_FAIL_PDPTE, ENTRY_FAIL_VMCS_LINK_PTR,
  VMXERR_ENTRY_INVALID_CONTROL_FIELD, VMXERR_ENTRY_INVALID_HOST_STATE_FIELD,
  VMCS_REVISION_ID, physRangePopulated,
} from "./vmcs.js";
import {
  controlsValid, PIN_DEFAULT1, PIN_ALLOWED1, PROC_TRUE_DEFAULT1, PROC_ALLOWED1, PROC2_ALLOWED1,
  EXIT_TRUE_DEFAULT1, EXIT_ALLOWED1, ENTRY_TRUE_DEFAULT1, ENTRY_ALLOWED1, CR0_FIXED0, CR0_FIXED1,
  CR4_FIXED0, CR4_FIXED1, VMX_MISC_CR3_COUNT, VMX_PHYS_ADDR_BITS, VMX_MSR_LIST_MAX,
} from "./caps.js";
import { eptpValid } from "./ept.js";
import { pdpteReserved, readPdptes, pdptTableAddr } from "../paging.js";

const CR0_PE = 1, CR0_NW = 1 << 29, CR0_CD = 1 << 30, CR0_PG = 0x80000000;
const CR4_PAE = 1 << 5, CR4_PCIDE = 1 << 17;
const EFER_LME = 1 << 8, EFER_LMA = 1 << 10;
/** EFER bits this processor implements: SCE, LME, LMA, NXE. */
const EFER_VALID = 1 | EFER_LME | EFER_LMA | (1 << 11);
const RFLAGS_VM = 1 << 17, RFLAGS_IF = 1 << 9;
/** RFLAGS bits 63:22, 15, 5, 3 must be 0 and bit 1 must be 1 (SDM 26.3.1.4). */
const RFLAGS_RESERVED = 0xffc08028;
const HI_ADDR_MASK = ~((1 << (VMX_PHYS_ADDR_BITS - 32)) - 1);
const TWO32 = 4294967296;
const pdpteTmp = new Int32Array(8);

/** A physical address (lo/hi) that is 4 KiB aligned and inside the physical-address width. */
function physPageOk(lo: number, hi: number): boolean {
  return (lo & 0xfff) === 0 && (hi & HI_ADDR_MASK) === 0;
}

/** Canonical for 48-bit linear addresses, as a JS number holding the sign-extended value. */
function canonical(v: number): boolean {
  return v >= -0x800000000000 && v < 0x800000000000;
}

function patValid(lo: number, hi: number): boolean {
  for (let i = 0; i < 4; i++) {
    const a = (lo >>> (i * 8)) & 0xff, b = (hi >>> (i * 8)) & 0xff;
    if (a === 2 || a === 3 || a > 7 || b === 2 || b === 3 || b > 7) return false;
  }
  return true;
}

/** Effective secondary controls: 0 unless "activate secondary controls" (SDM 25.6.2). */
export function secondaryControls(v: VmcsCache): number {
  return v.r32(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS ? v.r32(SECONDARY_VM_EXEC_CONTROL) : 0;
}

/** SDM 26.2.1: VM-execution, VM-exit and VM-entry control checks. Returns 0 or the VM-instruction error. */
export function checkControls(v: VmcsCache): number {
  const pin = v.r32(PIN_BASED_VM_EXEC_CONTROL), proc = v.r32(CPU_BASED_VM_EXEC_CONTROL);
  const proc2 = secondaryControls(v), exit = v.r32(VM_EXIT_CONTROLS), entry = v.r32(VM_ENTRY_CONTROLS);
  const bad = VMXERR_ENTRY_INVALID_CONTROL_FIELD;
  if (!controlsValid(pin, PIN_DEFAULT1, PIN_ALLOWED1)) return bad;
  if (!controlsValid(proc, PROC_TRUE_DEFAULT1, PROC_ALLOWED1)) return bad;
  if (!controlsValid(proc2, 0, PROC2_ALLOWED1)) return bad;
  if (!controlsValid(exit, EXIT_TRUE_DEFAULT1, EXIT_ALLOWED1)) return bad;
  if (!controlsValid(entry, ENTRY_TRUE_DEFAULT1, ENTRY_ALLOWED1)) return bad;
  if (v.r32(CR3_TARGET_COUNT) > VMX_MISC_CR3_COUNT) return bad;
  if (proc & CPU_BASED_USE_IO_BITMAPS) {
    if (!physPageOk(v.r32(IO_BITMAP_A), v.rHi(IO_BITMAP_A)) || !physPageOk(v.r32(IO_BITMAP_B), v.rHi(IO_BITMAP_B))) return bad;
  }
  if (proc & CPU_BASED_USE_MSR_BITMAPS && !physPageOk(v.r32(MSR_BITMAP), v.rHi(MSR_BITMAP))) return bad;
  if (!(pin & PIN_BASED_NMI_EXITING) && (pin & PIN_BASED_VIRTUAL_NMIS)) return bad;
  if (!(pin & PIN_BASED_VIRTUAL_NMIS) && (proc & CPU_BASED_NMI_WINDOW_EXITING)) return bad;
  if ((proc2 & SECONDARY_EXEC_ENABLE_VPID) && (v.r32(VIRTUAL_PROCESSOR_ID) & 0xffff) === 0) return bad;
  if ((proc2 & SECONDARY_EXEC_ENABLE_EPT) && !eptpValid(v.r32(EPT_POINTER), v.rHi(EPT_POINTER))) return bad;
  if ((proc2 & SECONDARY_EXEC_UNRESTRICTED_GUEST) && !(proc2 & SECONDARY_EXEC_ENABLE_EPT)) return bad;
  // VM-exit controls (26.2.1.2)
  if (!(pin & PIN_BASED_VMX_PREEMPTION_TIMER) && (exit & VM_EXIT_SAVE_VMX_PREEMPTION_TIMER)) return bad;
  for (const [cnt, addr] of [[VM_EXIT_MSR_STORE_COUNT, VM_EXIT_MSR_STORE_ADDR], [VM_EXIT_MSR_LOAD_COUNT, VM_EXIT_MSR_LOAD_ADDR], [VM_ENTRY_MSR_LOAD_COUNT, VM_ENTRY_MSR_LOAD_ADDR]]) {
    const n = v.r32(cnt);
    if (n === 0) continue;
    if (n > VMX_MSR_LIST_MAX) return bad;
    const lo = v.r32(addr), hi = v.rHi(addr);
    if ((lo & 0xf) !== 0 || (hi & HI_ADDR_MASK) !== 0) return bad;
  }
  // VM-entry event injection (26.2.1.3)
  const info = v.r32(VM_ENTRY_INTR_INFO_FIELD);
  if (info & INTR_INFO_VALID_MASK) {
    const type = info & INTR_INFO_INTR_TYPE_MASK, vector = info & INTR_INFO_VECTOR_MASK;
    if (type === INTR_TYPE_RESERVED) return bad;
    if (type === INTR_TYPE_NMI_INTR && vector !== 2) return bad;
    if (type === INTR_TYPE_HARD_EXCEPTION && vector > 31) return bad;
    if (type === INTR_TYPE_OTHER_EVENT && (vector !== 0 || !(proc & CPU_BASED_MONITOR_TRAP_FLAG))) return bad;
    const unrestrictedReal = (proc2 & SECONDARY_EXEC_UNRESTRICTED_GUEST) && !(v.r32(GUEST_CR0) & CR0_PE);
    const needCode = type === INTR_TYPE_HARD_EXCEPTION && !unrestrictedReal &&
      (vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21);
    if (((info & INTR_INFO_DELIVER_CODE_MASK) !== 0) !== needCode) return bad;
    if (info & INTR_INFO_RESVD_BITS_MASK) return bad;
    if ((info & INTR_INFO_DELIVER_CODE_MASK) && (v.r32(VM_ENTRY_EXCEPTION_ERROR_CODE) & 0xffff8000)) return bad;
    if (type === INTR_TYPE_SOFT_INTR || type === INTR_TYPE_PRIV_SW_EXCEPTION || type === INTR_TYPE_SOFT_EXCEPTION) {
      const len = v.r32(VM_ENTRY_INSTRUCTION_LEN);
      if (len < 1 || len > 15) return bad;
    }
  }
  return 0;
}

/** SDM 26.2.2-26.2.4: host-state checks (the host runs in 64-bit mode). Returns 0 or the error. */
export function checkHostState(v: VmcsCache): number {
  const bad = VMXERR_ENTRY_INVALID_HOST_STATE_FIELD;
  const exit = v.r32(VM_EXIT_CONTROLS);
  const cr0 = v.r32(HOST_CR0), cr4 = v.r32(HOST_CR4);
  if ((cr0 & CR0_FIXED0) >>> 0 !== CR0_FIXED0 >>> 0 || (cr0 & ~CR0_FIXED1) !== 0 || v.rHi(HOST_CR0) !== 0) return bad;
  if ((cr4 & CR4_FIXED0) !== CR4_FIXED0 || (cr4 & ~CR4_FIXED1) !== 0 || v.rHi(HOST_CR4) !== 0) return bad;
  if ((v.rHi(HOST_CR3) & HI_ADDR_MASK) !== 0) return bad;
  if (!canonical(v.rNum(HOST_IA32_SYSENTER_ESP)) || !canonical(v.rNum(HOST_IA32_SYSENTER_EIP))) return bad;
  if ((exit & VM_EXIT_LOAD_IA32_PAT) && !patValid(v.r32(HOST_IA32_PAT), v.rHi(HOST_IA32_PAT))) return bad;
  if (exit & VM_EXIT_LOAD_IA32_EFER) {
    const e = v.r32(HOST_IA32_EFER), host64 = (exit & VM_EXIT_HOST_ADDR_SPACE_SIZE) !== 0;
    if ((e & ~EFER_VALID) !== 0 || v.rHi(HOST_IA32_EFER) !== 0) return bad;
    if (((e & EFER_LMA) !== 0) !== host64 || ((e & EFER_LME) !== 0) !== host64) return bad;
  }
  // Selector fields: RPL and TI 0; CS and TR not null (26.2.3).
  for (let f = HOST_ES_SELECTOR; f <= HOST_TR_SELECTOR; f += 2) if (v.r32(f) & 7) return bad;
  if (v.r32(HOST_CS_SELECTOR) === 0 || v.r32(HOST_TR_SELECTOR) === 0) return bad;
  for (const f of [HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE, HOST_IDTR_BASE]) if (!canonical(v.rNum(f))) return bad;
  // Address-space size (26.2.4): this processor's host is always in IA-32e mode.
  if (!(exit & VM_EXIT_HOST_ADDR_SPACE_SIZE)) return bad;
  if (!(cr4 & CR4_PAE)) return bad;
  if (!canonical(v.rNum(HOST_RIP))) return bad;
  return 0;
}

/**
 * SDM 26.3.1: guest-state checks. Returns -1 if the guest state is valid, else the exit
 * qualification of the VM-entry failure (ENTRY_FAIL_*).
 */
export function checkGuestState(v: VmcsCache, physmem: PhysMem): number {
  const F = ENTRY_FAIL_DEFAULT;
  const proc2 = secondaryControls(v), entry = v.r32(VM_ENTRY_CONTROLS), pin = v.r32(PIN_BASED_VM_EXEC_CONTROL);
  const unrestricted = (proc2 & SECONDARY_EXEC_UNRESTRICTED_GUEST) !== 0;
  const ia32e = (entry & VM_ENTRY_IA32E_MODE) !== 0;
  // Control registers (26.3.1.1)
  const cr0 = v.r32(GUEST_CR0), cr4 = v.r32(GUEST_CR4);
  const fixed0 = unrestricted ? CR0_FIXED0 & ~(CR0_PE | CR0_PG) : CR0_FIXED0;
  if ((cr0 & fixed0) >>> 0 !== fixed0 >>> 0 || (cr0 & ~CR0_FIXED1) !== 0 || v.rHi(GUEST_CR0) !== 0) return F;
  if ((cr0 & CR0_PG) && !(cr0 & CR0_PE)) return F;
  if ((cr0 & CR0_NW) && !(cr0 & CR0_CD)) return F;
  if ((cr4 & CR4_FIXED0) !== CR4_FIXED0 || (cr4 & ~CR4_FIXED1) !== 0 || v.rHi(GUEST_CR4) !== 0) return F;
  if (ia32e && (!(cr0 & CR0_PG) || !(cr4 & CR4_PAE))) return F;
  if (!ia32e && (cr4 & CR4_PCIDE)) return F;
  if ((v.rHi(GUEST_CR3) & HI_ADDR_MASK) !== 0) return F;
  if ((entry & VM_ENTRY_LOAD_DEBUG_CONTROLS) && v.rHi(GUEST_DR7) !== 0) return F;
  if ((entry & VM_ENTRY_LOAD_IA32_PAT) && !patValid(v.r32(GUEST_IA32_PAT), v.rHi(GUEST_IA32_PAT))) return F;
  if (entry & VM_ENTRY_LOAD_IA32_EFER) {
    const e = v.r32(GUEST_IA32_EFER);
    if ((e & ~EFER_VALID) !== 0 || v.rHi(GUEST_IA32_EFER) !== 0) return F;
    if (((e & EFER_LMA) !== 0) !== ia32e) return F;
    if ((cr0 & CR0_PG) && ((e & EFER_LMA) !== 0) !== ((e & EFER_LME) !== 0)) return F;
  }
  // RFLAGS (26.3.1.4)
  const rflHi = v.rHi(GUEST_RFLAGS), rfl = v.r32(GUEST_RFLAGS);
  if (rflHi !== 0 || (rfl & RFLAGS_RESERVED) !== 0 || !(rfl & 2)) return F;
  if ((ia32e || !(cr0 & CR0_PE)) && (rfl & RFLAGS_VM)) return F;
  const v86 = (rfl & RFLAGS_VM) !== 0;
  // Segment registers (26.3.1.2)
  const csAr = v.r32(GUEST_SEG_AR_BASE + 2);
  const csL = ia32e && (csAr & AR_L) !== 0;
  for (let s = 0; s < 8; s++) {
    const sel = v.r32(GUEST_SEG_SELECTOR_BASE + 2 * s), ar = v.r32(GUEST_SEG_AR_BASE + 2 * s);
    const lim = v.r32(GUEST_SEG_LIMIT_BASE + 2 * s), base = v.rNum(GUEST_SEG_BASE_BASE + 2 * s);
    if (v86 && s < 6) {
      if (base !== sel * 16 || lim !== 0xffff || ar !== 0xf3) return F;
      continue;
    }
    if (s === 7 && (sel & 4)) return F; // TR TI flag
    if (s === 6 && !(ar & AR_UNUSABLE) && (sel & 4)) return F;
    // Bases: FS, GS, LDTR, TR canonical; CS (and usable ES/SS/DS) bits 63:32 zero.
    if (s >= 4 ? !canonical(base) : (!(ar & AR_UNUSABLE) || s === 1) && (base < 0 || base >= TWO32)) return F;
    if (ar & AR_UNUSABLE) {
      if (s === 1 || s === 7) return F;
      continue;
    }
    if (ar & 0xfffe0f00) return F; // reserved bits 11:8 and 31:17
    if (!(ar & AR_P)) return F;
    if ((lim & 0xfff) !== 0xfff && (ar & AR_G)) return F;
    if ((lim & 0xfff00000) !== 0 && !(ar & AR_G)) return F;
    const type = ar & 0xf, dpl = (ar >>> AR_DPL_SHIFT) & 3;
    if (s === 7) {
      if ((ar & AR_S) || !(type === 11 || (!ia32e && type === 3))) return F;
    } else if (s === 6) {
      if ((ar & AR_S) || type !== 2) return F;
    } else {
      if (!(ar & AR_S)) return F;
      if (s === 1) {
        const ok = type === 9 || type === 11 || type === 13 || type === 15 || (unrestricted && type === 3);
        if (!ok) return F;
        if (csL && (ar & AR_DB)) return F;
        if (type === 3 && dpl !== 0) return F;
      } else if (s === 2) {
        if (type !== 3 && type !== 7) return F;
        if (!unrestricted && dpl !== (sel & 3)) return F;
        if (!(cr0 & CR0_PE) && dpl !== 0) return F;
      } else {
        if (!(type & 1) || ((type & 8) && !(type & 2))) return F; // accessed; code must be readable
      }
    }
  }
  // Descriptor tables (26.3.1.3)
  if (!canonical(v.rNum(GUEST_GDTR_BASE)) || !canonical(v.rNum(GUEST_IDTR_BASE))) return F;
  if (v.r32(GUEST_GDTR_LIMIT) > 0xffff || v.r32(GUEST_IDTR_LIMIT) > 0xffff) return F;
  // RIP (26.3.1.4)
  const rip = v.rNum(GUEST_RIP);
  if (csL ? !canonical(rip) : rip < 0 || rip >= TWO32) return F;
  if (!canonical(v.rNum(GUEST_RSP)) || !canonical(v.rNum(GUEST_SYSENTER_ESP)) || !canonical(v.rNum(GUEST_SYSENTER_EIP))) return F;
  // Non-register state (26.3.1.5)
  const act = v.r32(GUEST_ACTIVITY_STATE), intr = v.r32(GUEST_INTERRUPTIBILITY_INFO);
  if (act !== GUEST_ACTIVITY_ACTIVE && act !== GUEST_ACTIVITY_HLT) return F;
  if (act === GUEST_ACTIVITY_HLT && ((v.r32(GUEST_SEG_AR_BASE + 4) >>> AR_DPL_SHIFT) & 3) !== 0) return F;
  if (intr & ~0x1f) return F;
  if ((intr & GUEST_INTR_STATE_STI) && (intr & GUEST_INTR_STATE_MOV_SS)) return F;
  if (!(rfl & RFLAGS_IF) && (intr & GUEST_INTR_STATE_STI)) return F;
  if (intr & GUEST_INTR_STATE_SMI) return F;
  const info = v.r32(VM_ENTRY_INTR_INFO_FIELD);
  if (info & INTR_INFO_VALID_MASK) {
    const type = info & INTR_INFO_INTR_TYPE_MASK;
    if (type === INTR_TYPE_EXT_INTR) {
      if (!(rfl & RFLAGS_IF) || (intr & (GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS))) return F;
    }
    if (type === INTR_TYPE_NMI_INTR) {
      if (intr & GUEST_INTR_STATE_MOV_SS) return F;
      if ((pin & PIN_BASED_VIRTUAL_NMIS) && (intr & GUEST_INTR_STATE_NMI)) return F;
    }
    if (act === GUEST_ACTIVITY_HLT && !(type === INTR_TYPE_EXT_INTR || type === INTR_TYPE_NMI_INTR ||
      (type === INTR_TYPE_HARD_EXCEPTION && ((info & 0xff) === 1 || (info & 0xff) === 18)) || type === INTR_TYPE_OTHER_EVENT)) return F;
  }
  const pend = v.r32(GUEST_PENDING_DBG_EXCEPTIONS);
  if ((pend & ~0x1500f) !== 0 || v.rHi(GUEST_PENDING_DBG_EXCEPTIONS) !== 0) return F;
  // VMCS link pointer (26.3.1.5): this processor has no VMCS shadowing, so anything but
  // all ones must at least name a region with the right revision.
  const linkLo = v.r32(VMCS_LINK_POINTER), linkHi = v.rHi(VMCS_LINK_POINTER);
  if (!(linkLo === 0xffffffff && linkHi === 0xffffffff)) {
    if (!physPageOk(linkLo, linkHi)) return ENTRY_FAIL_VMCS_LINK_PTR;
    const a = linkHi * TWO32 + linkLo;
    const pfn = a / 4096;
    if (pfn >= physmem.nrFrames || physmem.chunks32[pfn >>> FRAMES_PER_CHUNK_SHIFT] === undefined) return ENTRY_FAIL_VMCS_LINK_PTR;
    if ((physmem.read32(a) & 0x7fffffff) !== VMCS_REVISION_ID) return ENTRY_FAIL_VMCS_LINK_PTR;
  }
  // PDPTEs of a PAE guest (26.3.1.6): with EPT the VMCS fields, without it the table at the
  // guest CR3 (a host-physical address then) must hold no present entry with a reserved bit.
  if ((cr0 & CR0_PG) && (cr4 & CR4_PAE) && !ia32e) {
    if (proc2 & SECONDARY_EXEC_ENABLE_EPT) {
      for (let i = 0; i < 4; i++) {
        const lo = v.r32(GUEST_PDPTR0 + 2 * i), hi = v.rHi(GUEST_PDPTR0 + 2 * i);
        if ((lo & 1) && pdpteReserved(lo, hi)) return ENTRY_FAIL_PDPTE;
      }
    } else if (!readPdptes(physmem, pdptTableAddr(v.rNum(GUEST_CR3)), pdpteTmp)) return ENTRY_FAIL_PDPTE;
  }
  return -1;
}

/**
 * MSR-load area (SDM 26.4 / 27.6): `count` 16-byte entries {index u32, reserved u32, data u64}
 * at `addr`. Returns 0, or the 1-based number of the entry that failed.
 */
export function loadMsrArea(physmem: PhysMem, addr: number, count: number, writeMsr: (msr: number, lo: number, hi: number) => boolean): number {
  for (let i = 0; i < count; i++) {
    const a = addr + i * 16;
    if (!physRangePopulated(physmem, a, 16)) return i + 1;
    const msr = physmem.read32(a);
    if (physmem.read32(a + 4) !== 0) return i + 1;
    // FS/GS base, SMBASE and the x2APIC range may not be loaded this way (SDM 26.4).
    if (msr === 0xc0000100 || msr === 0xc0000101 || msr === 0x9e || (msr >>> 8) === 8) return i + 1;
    if (!writeMsr(msr, physmem.read32(a + 8), physmem.read32(a + 12))) return i + 1;
  }
  return 0;
}

/** VM-exit MSR-store area (SDM 27.4): writes the current value of each listed MSR. Returns false on a failed read. */
export function storeMsrArea(physmem: PhysMem, addr: number, count: number, readMsr: (msr: number, out: Int32Array) => boolean, tmp: Int32Array): boolean {
  for (let i = 0; i < count; i++) {
    const a = addr + i * 16;
    if (!physRangePopulated(physmem, a, 16) || !readMsr(physmem.read32(a), tmp)) return false;
    physmem.write32(a + 8, tmp[0]);
    physmem.write32(a + 12, tmp[1]);
  }
  return true;
}

/**
 * SDM 26.3.2.4: the PDPTE registers of a guest that uses PAE paging (call after loadGuestState
 * and the core's stateChanged): with EPT from the VMCS guest PDPTE fields, else from the table
 * at the guest CR3. checkGuestState has vetted both; other guests leave the registers alone.
 */
export function loadGuestPdptes(v: VmcsCache, st: X86State, physmem: PhysMem, ept: boolean): void {
  if (!(st.cr0 & CR0_PG) || !(st.cr4 & CR4_PAE) || (st.efer & EFER_LMA)) return;
  if (!ept) {
    readPdptes(physmem, pdptTableAddr(st.cr3), st.pdpte);
    return;
  }
  for (let i = 0; i < 4; i++) {
    st.pdpte[2 * i] = v.r32(GUEST_PDPTR0 + 2 * i);
    st.pdpte[2 * i + 1] = v.rHi(GUEST_PDPTR0 + 2 * i);
  }
}

/**
 * SDM 26.3.2: load guest state from the VMCS into the processor. MSRs held outside X86State
 * (SYSENTER, PAT, DEBUGCTL) go through the CPU's WRMSR path.
 */
export function loadGuestState(v: VmcsCache, st: X86State, writeMsr: (msr: number, lo: number, hi: number) => boolean): void {
  const entry = v.r32(VM_ENTRY_CONTROLS);
  st.cr0 = v.r32(GUEST_CR0);
  st.cr3 = v.rNum(GUEST_CR3);
  st.cr4 = v.r32(GUEST_CR4);
  if (entry & VM_ENTRY_LOAD_DEBUG_CONTROLS) {
    st.dr[7] = v.r32(GUEST_DR7);
    writeMsr(0x1d9, v.r32(GUEST_IA32_DEBUGCTL), v.rHi(GUEST_IA32_DEBUGCTL));
  }
  writeMsr(0x174, v.r32(GUEST_SYSENTER_CS), 0);
  writeMsr(0x175, v.r32(GUEST_SYSENTER_ESP), v.rHi(GUEST_SYSENTER_ESP));
  writeMsr(0x176, v.r32(GUEST_SYSENTER_EIP), v.rHi(GUEST_SYSENTER_EIP));
  if (entry & VM_ENTRY_LOAD_IA32_PAT) writeMsr(0x277, v.r32(GUEST_IA32_PAT), v.rHi(GUEST_IA32_PAT));
  if (entry & VM_ENTRY_LOAD_IA32_EFER) st.efer = v.r32(GUEST_IA32_EFER);
  else {
    // LMA follows the IA-32e mode guest control; LME too when paging is on (26.3.2.1).
    let e = st.efer & ~EFER_LMA;
    if (entry & VM_ENTRY_IA32E_MODE) e |= EFER_LMA;
    if (st.cr0 & CR0_PG) e = entry & VM_ENTRY_IA32E_MODE ? e | EFER_LME : e & ~EFER_LME;
    st.efer = e;
  }
  for (let s = 0; s < 8; s++) {
    st.segSel[s] = v.r32(GUEST_SEG_SELECTOR_BASE + 2 * s);
    st.segBase[s] = v.rNum(GUEST_SEG_BASE_BASE + 2 * s);
    st.segLimit[s] = v.r32(GUEST_SEG_LIMIT_BASE + 2 * s);
    st.segAr[s] = v.r32(GUEST_SEG_AR_BASE + 2 * s);
  }
  st.gdtrBase = v.rNum(GUEST_GDTR_BASE);
  st.gdtrLimit = v.r32(GUEST_GDTR_LIMIT);
  st.idtrBase = v.rNum(GUEST_IDTR_BASE);
  st.idtrLimit = v.r32(GUEST_IDTR_LIMIT);
  st.rip = v.rNum(GUEST_RIP);
  const rsp = GUEST_RSP;
  st.gpr[8] = v.r32(rsp);
  st.gpr[9] = v.rHi(rsp);
  st.interruptibility = v.r32(GUEST_INTERRUPTIBILITY_INFO);
  st.activityState = v.r32(GUEST_ACTIVITY_STATE) === GUEST_ACTIVITY_HLT ? ActivityState.HLT : ActivityState.ACTIVE;
}
