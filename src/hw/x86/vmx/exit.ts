/**
 * VM exit state handling (SDM Vol. 3C 28.3 saving guest state, 28.5 loading host state).
 * The exit-information fields are written by the caller (vmx.ts `vmExit`).
 */
import type { X86State } from "../state.js";
import { ActivityState, AR_S, AR_P, AR_L, AR_G, AR_DB, AR_UNUSABLE } from "../state.js";
import {
  type VmcsCache,
  VM_EXIT_CONTROLS, VM_ENTRY_CONTROLS, VM_ENTRY_IA32E_MODE,
  GUEST_CR0, GUEST_CR3, GUEST_CR4, GUEST_DR7, GUEST_RIP, GUEST_RSP, GUEST_RFLAGS, GUEST_IA32_EFER,
  GUEST_IA32_PAT, GUEST_IA32_DEBUGCTL, GUEST_SEG_SELECTOR_BASE, GUEST_SEG_LIMIT_BASE, GUEST_SEG_AR_BASE,
  GUEST_SEG_BASE_BASE, GUEST_GDTR_BASE, GUEST_GDTR_LIMIT, GUEST_IDTR_BASE, GUEST_IDTR_LIMIT,
  GUEST_INTERRUPTIBILITY_INFO, GUEST_ACTIVITY_STATE, GUEST_PENDING_DBG_EXCEPTIONS,
  GUEST_SYSENTER_CS, GUEST_SYSENTER_ESP, GUEST_SYSENTER_EIP,
  VM_EXIT_SAVE_DEBUG_CONTROLS, VM_EXIT_SAVE_IA32_PAT, VM_EXIT_SAVE_IA32_EFER, VM_EXIT_LOAD_IA32_PAT,
  VM_EXIT_LOAD_IA32_EFER, VM_EXIT_HOST_ADDR_SPACE_SIZE,
  HOST_CR0, HOST_CR3, HOST_CR4, HOST_RIP, HOST_RSP, HOST_ES_SELECTOR, HOST_FS_BASE, HOST_GS_BASE,
  HOST_TR_BASE, HOST_GDTR_BASE, HOST_IDTR_BASE, HOST_IA32_SYSENTER_CS, HOST_IA32_SYSENTER_ESP,
  HOST_IA32_SYSENTER_EIP, HOST_IA32_EFER, HOST_IA32_PAT, HOST_TR_SELECTOR,
  GUEST_ACTIVITY_HLT, GUEST_ACTIVITY_ACTIVE, GUEST_ACTIVITY_SHUTDOWN,
} from "./vmcs.js";

const EFER_LME = 1 << 8, EFER_LMA = 1 << 10;

export interface MsrAccess {
  readMsr(msr: number, out: Int32Array): boolean;
  writeMsr(msr: number, lo: number, hi: number): boolean;
}

/** SDM 28.3: save guest state. `rip` and `rflags` come from the caller (RIP depends on the exit kind). */
export function saveGuestState(v: VmcsCache, st: X86State, rip: number, rflags: number, msr: MsrAccess, tmp: Int32Array): void {
  const exit = v.r32(VM_EXIT_CONTROLS);
  v.w32(GUEST_CR0, st.cr0);
  v.wNum(GUEST_CR3, st.cr3);
  v.w32(GUEST_CR4, st.cr4);
  if (exit & VM_EXIT_SAVE_DEBUG_CONTROLS) {
    v.w32(GUEST_DR7, st.dr[7]);
    if (msr.readMsr(0x1d9, tmp)) v.w64(GUEST_IA32_DEBUGCTL, tmp[0], tmp[1]);
  }
  v.wNum(GUEST_RIP, rip);
  v.w64(GUEST_RSP, st.gpr[8], st.gpr[9]);
  v.w32(GUEST_RFLAGS, rflags);
  for (let s = 0; s < 8; s++) {
    v.w32(GUEST_SEG_SELECTOR_BASE + 2 * s, st.segSel[s]);
    v.wNum(GUEST_SEG_BASE_BASE + 2 * s, st.segBase[s]);
    v.w32(GUEST_SEG_LIMIT_BASE + 2 * s, st.segLimit[s]);
    v.w32(GUEST_SEG_AR_BASE + 2 * s, st.segAr[s]);
  }
  v.wNum(GUEST_GDTR_BASE, st.gdtrBase);
  v.w32(GUEST_GDTR_LIMIT, st.gdtrLimit);
  v.wNum(GUEST_IDTR_BASE, st.idtrBase);
  v.w32(GUEST_IDTR_LIMIT, st.idtrLimit);
  if (msr.readMsr(0x174, tmp)) v.w32(GUEST_SYSENTER_CS, tmp[0]);
  if (msr.readMsr(0x175, tmp)) v.w64(GUEST_SYSENTER_ESP, tmp[0], tmp[1]);
  if (msr.readMsr(0x176, tmp)) v.w64(GUEST_SYSENTER_EIP, tmp[0], tmp[1]);
  if ((exit & VM_EXIT_SAVE_IA32_PAT) && msr.readMsr(0x277, tmp)) v.w64(GUEST_IA32_PAT, tmp[0], tmp[1]);
  if (exit & VM_EXIT_SAVE_IA32_EFER) v.w64(GUEST_IA32_EFER, st.efer, 0);
  // IA32_VMX_MISC[5]: the IA-32e mode guest control tracks EFER.LMA on every exit.
  const entry = v.r32(VM_ENTRY_CONTROLS);
  v.w32(VM_ENTRY_CONTROLS, st.efer & EFER_LMA ? entry | VM_ENTRY_IA32E_MODE : entry & ~VM_ENTRY_IA32E_MODE);
  v.w32(GUEST_INTERRUPTIBILITY_INFO, st.interruptibility);
  v.w32(GUEST_ACTIVITY_STATE, st.activityState === ActivityState.HLT ? GUEST_ACTIVITY_HLT
    : st.activityState === ActivityState.SHUTDOWN ? GUEST_ACTIVITY_SHUTDOWN : GUEST_ACTIVITY_ACTIVE);
  v.w64(GUEST_PENDING_DBG_EXCEPTIONS, 0, 0);
}

/**
 * SDM 28.5: load host state. The host does not execute on the emulated core (KVM is the
 * caller of vmlaunch/vmresume), but the processor state is left as the SDM says: host control
 * registers, selectors, bases, RSP/RIP, RFLAGS = 2, DR7 = 0x400 (in X86State; the core's derived
 * mode caches are refreshed at the next VM entry, not here). The other GPRs keep the
 * guest's values, as on hardware.
 */
export function loadHostState(v: VmcsCache, st: X86State, msr: MsrAccess): void {
  const exit = v.r32(VM_EXIT_CONTROLS);
  const host64 = (exit & VM_EXIT_HOST_ADDR_SPACE_SIZE) !== 0;
  st.cr0 = v.r32(HOST_CR0);
  st.cr3 = v.rNum(HOST_CR3);
  st.cr4 = v.r32(HOST_CR4);
  st.dr[7] = 0x400;
  msr.writeMsr(0x1d9, 0, 0);
  msr.writeMsr(0x174, v.r32(HOST_IA32_SYSENTER_CS), 0);
  msr.writeMsr(0x175, v.r32(HOST_IA32_SYSENTER_ESP), v.rHi(HOST_IA32_SYSENTER_ESP));
  msr.writeMsr(0x176, v.r32(HOST_IA32_SYSENTER_EIP), v.rHi(HOST_IA32_SYSENTER_EIP));
  if (exit & VM_EXIT_LOAD_IA32_PAT) msr.writeMsr(0x277, v.r32(HOST_IA32_PAT), v.rHi(HOST_IA32_PAT));
  if (exit & VM_EXIT_LOAD_IA32_EFER) st.efer = v.r32(HOST_IA32_EFER);
  else st.efer = host64 ? st.efer | EFER_LMA | EFER_LME : st.efer & ~(EFER_LMA | EFER_LME);
  const data = 3 | AR_S | AR_P | AR_G | AR_DB;
  for (let s = 0; s < 8; s++) {
    const sel = s === 6 ? 0 : v.r32(s === 7 ? HOST_TR_SELECTOR : HOST_ES_SELECTOR + 2 * s);
    st.segSel[s] = sel;
    st.segLimit[s] = 0xffffffff;
    st.segBase[s] = 0;
    if (s === 1) st.segAr[s] = 11 | AR_S | AR_P | AR_G | (host64 ? AR_L : AR_DB);
    else if (s === 6) { st.segAr[s] = AR_UNUSABLE; st.segLimit[s] = 0; }
    else if (s === 7) { st.segAr[s] = 11 | AR_P; st.segLimit[s] = 0x67; }
    else st.segAr[s] = sel === 0 && s !== 2 ? data | AR_UNUSABLE : data;
  }
  st.segBase[4] = v.rNum(HOST_FS_BASE);
  st.segBase[5] = v.rNum(HOST_GS_BASE);
  st.segBase[7] = v.rNum(HOST_TR_BASE);
  st.gdtrBase = v.rNum(HOST_GDTR_BASE);
  st.gdtrLimit = 0xffff;
  st.idtrBase = v.rNum(HOST_IDTR_BASE);
  st.idtrLimit = 0xffff;
  st.rip = v.rNum(HOST_RIP);
  st.gpr[8] = v.r32(HOST_RSP);
  st.gpr[9] = v.rHi(HOST_RSP);
  st.interruptibility = 0;
  st.activityState = ActivityState.ACTIVE;
}
