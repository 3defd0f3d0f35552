/**
 * Hardware task switches (kvm_task_switch / emulator_task_switch, SDM Vol. 3A 8.3 "Task
 * Switching"). Under VMX every task switch exits (EXIT_REASON_TASK_SWITCH) and KVM performs it:
 * the source (CALL, JMP, IRET, or an IDT task gate) comes from the exit qualification, the
 * event being delivered through a gate from the IDT-vectoring information.
 *
 * The switch runs in the emulator context (a CPU-core instance loaded with the vCPU's state),
 * so descriptor-table and TSS accesses use the core's own linear/system accessors and segment
 * descriptor decoding; its memory is guest RAM only (a TSS or descriptor table outside RAM
 * ends in KVM_EXIT_INTERNAL_ERROR, as when KVM's emulator cannot access it).
 *
 * Order (SDM 8.3 steps; emulator_do_task_switch): read the new and current TSS descriptors;
 * the task-gate DPL check for INT n; the new TSS limit and presence (#TS); clear the current
 * task's busy bit (JMP, IRET) and NT (IRET); save the current state in the current TSS; write
 * the back link (CALL, gate); load CR3 (32-bit TSS), EIP, EFLAGS, the GPRs and the selectors;
 * NT (CALL, gate), busy bit of the new TSS (not IRET), CR0.TS, TR; then the descriptors with the
 * task-switch checks (a fault there is taken in the new task: KVM's emulator checks them before
 * TR changes, the SDM order is kept here); push the error code of the exception being delivered;
 * clear the local breakpoint enables in DR7.
 */

import * as K from "../../../uapi/kvm.js";
import type { X86Cpu } from "../../../hw/x86/cpu.js";
import { FAULT, GP_VECTOR, NP_VECTOR, PF_VECTOR, SS_VECTOR, TS_VECTOR } from "../../../hw/x86/fault.js";
import { sysRd, sysWr } from "../../../hw/x86/mmu.js";
import { Desc, loadCache, loadNull, readDesc, setAccessed, SEG_CS, SEG_GS, SEG_LDTR, SEG_SS, SEG_TR } from "../../../hw/x86/segment.js";
import { push } from "../../../hw/x86/ops/operand.js";
import type { KvmSeg } from "./kvm_x86_ops.js";
import { ExitResult } from "./kvm_x86_ops.js";
import { X86_CR0_TS, X86_EFLAGS_NT, X86_EFLAGS_VM, kvmRegisterWrite, kvmRipWrite, type X86Vcpu } from "./kvm_host.js";
import { kvmPrepareInternalError, kvmQueueException, kvmQueueExceptionE, kvmQueueExceptionP } from "./x86.js";
import { kvmSetCr0, kvmSetCr3 } from "./x86_insn.js";
import { EMUL_FAILED, initEmulateCtxt } from "./emulate_mmio.js";

/** Exit-qualification sources (SDM Table 28-2): bits 31:30. */
export const TASK_SWITCH_CALL = 0;
export const TASK_SWITCH_IRET = 1;
export const TASK_SWITCH_JMP = 2;
export const TASK_SWITCH_GATE = 3;

/** DR7 L0-L3 and LE (DR_LOCAL_ENABLE_MASK | DR_LOCAL_SLOWDOWN): cleared by a task switch (SDM 17.2.4). */
const DR7_LOCAL_BITS = 0x155;
const BUSY = 0x200;

const newDesc = new Desc();
const curDesc = new Desc();
const segDesc = new Desc();
const tssRegs = new Int32Array(8);
const tssSels = new Int32Array(7);
const segOut: KvmSeg = { base: 0, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };

/** Write back the access-rights byte (type, S, DPL, P) of descriptor `sel` in the GDT. */
function writeDescTypeByte(c: X86Cpu, sel: number, d: Desc): void {
  sysWr(c, (c.state.gdtrBase + (sel & ~7) + 5) >>> 0, 1, (d.hi >>> 8) & 0xff, 0);
}

/**
 * __load_segment_descriptor(X86_TRANSFER_TASK_SWITCH): load segment register `s` of the new task
 * with the checks of SDM 8.3 step 13; violations are #TS(selector), not-present #NP / #SS.
 */
function loadSegTaskSwitch(c: X86Cpu, s: number, sel: number, cpl: number, v86: boolean): void {
  const st = c.state;
  if (v86 && s <= SEG_GS) {
    st.segSel[s] = sel;
    st.segBase[s] = sel << 4;
    st.segLimit[s] = 0xffff;
    st.segAr[s] = s === SEG_CS ? 0xfb : 0xf3;
    return;
  }
  const rpl = sel & 3;
  const err = sel & 0xfffc;
  if (err === 0) {
    // A null selector is not valid in CS or (outside 64-bit mode) SS.
    if (s === SEG_CS || s === SEG_SS) c.raise(TS_VECTOR, 0);
    loadNull(c, s, sel);
    return;
  }
  if (s === SEG_LDTR && (sel & 4) !== 0) c.raise(TS_VECTOR, err);
  const d = segDesc;
  if (!readDesc(c, sel, d, false)) c.raise(TS_VECTOR, err);
  if (s <= SEG_GS && !d.s) c.raise(TS_VECTOR, err);
  const dpl = d.dpl;
  const type = d.type;
  let loadSel = sel;
  if (s === SEG_SS) {
    if (rpl !== cpl || (type & 0xa) !== 0x2 || dpl !== cpl) c.raise(TS_VECTOR, err);
  } else if (s === SEG_CS) {
    if ((type & 8) === 0) c.raise(TS_VECTOR, err);
    if ((type & 4) !== 0 ? dpl > cpl : rpl > cpl || dpl !== cpl) c.raise(TS_VECTOR, err);
    loadSel = (sel & 0xfffc) | cpl;
  } else if (s === SEG_LDTR) {
    if (d.s || type !== 2) c.raise(TS_VECTOR, err);
  } else if ((type & 0xa) === 0x8 || ((type & 0xc) !== 0xc && (rpl > dpl || cpl > dpl))) {
    // Not data or readable code; data and non-conforming code need max(CPL, RPL) <= DPL.
    c.raise(TS_VECTOR, err);
  }
  if (!d.present) c.raise(s === SEG_SS ? SS_VECTOR : NP_VECTOR, err);
  if (d.s) setAccessed(c, sel, d);
  loadCache(c, s, loadSel, d);
}

/** The state of the switch: set once the current task's state has been saved (faults then belong to the new task). */
let reachedNewTask = false;

/**
 * save_state_to_tss32/16: EIP, EFLAGS, the GPRs and the selectors go to the current TSS in its
 * own format (SDM 8.3 step 10; KVM's emulator uses the new TSS's format for both halves, which
 * differs only when switching between a 16- and a 32-bit TSS).
 */
function saveTaskState(c: X86Cpu, oldBase: number, old32: boolean): void {
  const st = c.state;
  const g = st.gpr;
  if (old32) {
    sysWr(c, oldBase + 0x20, 4, st.rip | 0, 0);
    sysWr(c, oldBase + 0x24, 4, c.getRflags(), 0);
    for (let r = 0; r < 8; r++) sysWr(c, oldBase + 0x28 + r * 4, 4, g[r * 2], 0);
    for (let s = 0; s < 6; s++) sysWr(c, oldBase + 0x48 + s * 4, 4, st.segSel[s], 0);
    return;
  }
  sysWr(c, oldBase + 14, 2, st.rip & 0xffff, 0);
  sysWr(c, oldBase + 16, 2, c.getRflags() & 0xffff, 0);
  for (let r = 0; r < 8; r++) sysWr(c, oldBase + 18 + r * 2, 2, g[r * 2] & 0xffff, 0);
  for (let s = 0; s < 4; s++) sysWr(c, oldBase + 34 + s * 2, 2, st.segSel[s], 0);
}

/** load_state_from_tss32 (SDM Figure 8-2): CR3, EIP, EFLAGS, GPRs, ES-GS and the LDT selector. */
function loadTss32(c: X86Cpu, newBase: number): void {
  const st = c.state;
  const cr3 = sysRd(c, newBase + 0x1c, 4) >>> 0;
  const eip = sysRd(c, newBase + 0x20, 4) >>> 0;
  const eflags = sysRd(c, newBase + 0x24, 4) >>> 0;
  const regs = tssRegs;
  for (let r = 0; r < 8; r++) regs[r] = sysRd(c, newBase + 0x28 + r * 4, 4);
  const sels = tssSels;
  for (let s = 0; s < 6; s++) sels[s] = sysRd(c, newBase + 0x48 + s * 4, 2);
  sels[6] = sysRd(c, newBase + 0x60, 2);
  // CR3 first: the new task's descriptor tables are read through its address space.
  if (cr3 !== st.cr3) {
    st.cr3 = cr3;
    c.tlbFlushAll();
  }
  loadTaskState(c, eip, eflags | 2, regs, sels, 6);
}

/** load_state_from_tss16 (SDM Figure 8-9): IP, FLAGS, the GPRs (zero-extended), ES CS SS DS and the LDT selector. */
function loadTss16(c: X86Cpu, newBase: number): void {
  const st = c.state;
  const ip = sysRd(c, newBase + 14, 2);
  const flags = sysRd(c, newBase + 16, 2);
  const regs = tssRegs;
  for (let r = 0; r < 8; r++) regs[r] = sysRd(c, newBase + 18 + r * 2, 2);
  const sels = tssSels;
  for (let s = 0; s < 4; s++) sels[s] = sysRd(c, newBase + 34 + s * 2, 2);
  sels[4] = st.segSel[4];
  sels[5] = st.segSel[5];
  sels[6] = sysRd(c, newBase + 42, 2);
  loadTaskState(c, ip, flags | 2, regs, sels, 4);
}

/** Segment registers the new TSS format holds (6 for a 32-bit TSS, ES-DS for a 16-bit one), for loadTaskSegments. */
let newTaskSegs = 0;

/** Load EIP, EFLAGS, the GPRs and the selectors of the new task (SDM 8.3 step 12); the descriptors follow later. */
function loadTaskState(c: X86Cpu, eip: number, eflags: number, regs: Int32Array, sels: Int32Array, nSegs: number): void {
  const st = c.state;
  st.rip = eip;
  for (let r = 0; r < 8; r++) {
    st.gpr[r * 2] = regs[r];
    st.gpr[r * 2 + 1] = 0;
  }
  c.setRflags(eflags);
  for (let s = 0; s < nSegs; s++) st.segSel[s] = sels[s];
  st.segSel[SEG_LDTR] = sels[6];
  newTaskSegs = nSegs;
}

/**
 * Load the LDTR and segment descriptors of the new task (SDM 8.3 step 13, selectors first: CPL
 * comes from CS.RPL, or 3 in virtual-8086 mode). A fault here is taken in the new task.
 */
function loadTaskSegments(c: X86Cpu): void {
  const st = c.state;
  const v86 = (c.getRflags() & X86_EFLAGS_VM) !== 0;
  const cpl = v86 ? 3 : st.segSel[SEG_CS] & 3;
  loadSegTaskSwitch(c, SEG_LDTR, st.segSel[SEG_LDTR], cpl, v86);
  for (let s = 0; s < newTaskSegs; s++) loadSegTaskSwitch(c, s, st.segSel[s], cpl, v86);
  c.stateChanged();
}

/** emulator_do_task_switch() */
function doTaskSwitch(c: X86Cpu, tssSel: number, idtIndex: number, reason: number, hasErrorCode: boolean, errorCode: number): void {
  const st = c.state;
  const oldSel = st.segSel[SEG_TR];
  const oldBase = st.segBase[SEG_TR];
  if ((tssSel & 4) !== 0 || !readDesc(c, tssSel, newDesc, false)) c.raise(GP_VECTOR, tssSel & 0xfffc);
  if (!readDesc(c, oldSel, curDesc, false)) c.raise(GP_VECTOR, oldSel & 0xfffc);
  // INT n through a task gate checks the gate's DPL (SDM 6.12.1.1); events from hardware and
  // CALL/JMP (checked by the processor before the exit) do not.
  if (reason === TASK_SWITCH_GATE && idtIndex >= 0) {
    const la = st.idtrBase + idtIndex * 8;
    const gateHi = sysRd(c, (la + 4) >>> 0, 4);
    const dpl = (gateHi >>> 13) & 3;
    if ((tssSel & 3) > dpl || c.cpl > dpl) c.raise(GP_VECTOR, (idtIndex << 3) | 2);
  }
  const is32 = (newDesc.type & 8) !== 0;
  const limit = newDesc.limit;
  if (!newDesc.present || (is32 && limit < 0x67) || limit < 0x2b || newDesc.s || (newDesc.type & 5) !== 1) c.raise(TS_VECTOR, tssSel & 0xfffc);
  if (reason === TASK_SWITCH_IRET || reason === TASK_SWITCH_JMP) {
    curDesc.hi &= ~BUSY;
    writeDescTypeByte(c, oldSel, curDesc);
  }
  if (reason === TASK_SWITCH_IRET) c.setRflags(c.getRflags() & ~X86_EFLAGS_NT);
  const link = reason === TASK_SWITCH_CALL || reason === TASK_SWITCH_GATE ? oldSel : 0xffff;
  saveTaskState(c, oldBase, (curDesc.type & 8) !== 0);
  if (link !== 0xffff) sysWr(c, newDesc.base, 2, link, 0);
  reachedNewTask = true;
  if (is32) loadTss32(c, newDesc.base);
  else loadTss16(c, newDesc.base);
  if (reason === TASK_SWITCH_CALL || reason === TASK_SWITCH_GATE) c.setRflags(c.getRflags() | X86_EFLAGS_NT);
  if (reason !== TASK_SWITCH_IRET) {
    newDesc.hi |= BUSY;
    writeDescTypeByte(c, tssSel, newDesc);
  }
  st.cr0 = (st.cr0 | X86_CR0_TS) >>> 0;
  loadCache(c, SEG_TR, tssSel, newDesc);
  loadTaskSegments(c);
  if (hasErrorCode) push(c, is32 ? 4 : 2, errorCode, 0);
}

/** Copy the context's state (the new task) into the vCPU. */
function commitTaskState(vcpu: X86Vcpu, c: X86Cpu, completed: boolean): void {
  const a = vcpu.arch;
  const st = c.state;
  a.regs.set(st.gpr.subarray(0, 32));
  kvmRegisterWrite(vcpu, 4, st.gpr[8], st.gpr[9]);
  for (let s = 0; s < 8; s++) {
    const ar = st.segAr[s];
    const o = segOut;
    o.base = st.segBase[s];
    o.limit = st.segLimit[s];
    o.selector = st.segSel[s];
    o.type = ar & 0xf;
    o.s = (ar >>> 4) & 1;
    o.dpl = (ar >>> 5) & 3;
    o.present = (ar >>> 7) & 1;
    o.avl = (ar >>> 12) & 1;
    o.l = (ar >>> 13) & 1;
    o.db = (ar >>> 14) & 1;
    o.g = (ar >>> 15) & 1;
    o.unusable = (ar >>> 16) & 1;
    a.ops.setSegment(vcpu, o, s);
  }
  a.ops.setRflags(vcpu, c.getRflags());
  kvmRipWrite(vcpu, st.rip);
  // load_state_from_tss32(): a CR3 the guest cannot load (PAE PDPTEs with reserved bits, beyond
  // MAXPHYADDR) is #GP(0) in the new task.
  if (st.cr3 !== a.cr3 && !kvmSetCr3(vcpu, st.cr3)) kvmQueueExceptionE(vcpu, GP_VECTOR, 0);
  if (((st.cr0 ^ a.cr0) & X86_CR0_TS) !== 0) kvmSetCr0(vcpu, (a.cr0 | X86_CR0_TS) >>> 0);
  if (completed && (a.dr7 & DR7_LOCAL_BITS) !== 0) {
    a.dr7 = (a.dr7 & ~DR7_LOCAL_BITS) >>> 0;
    // kvm_update_dr7(): the hardware keeps the guest-debug DR7 while userspace owns the breakpoints.
    a.ops.setDr7(vcpu, (a.guestDebug & K.KVM_GUESTDBG_USE_HW_BP) !== 0 ? a.guestDebugDr7 : a.dr7);
  }
  a.ops.setInterruptShadow(vcpu, 0);
}

/**
 * kvm_task_switch(): switch to the task of TSS selector `tssSel`. `idtIndex` is the vector of an
 * INT n delivered through a task gate (-1 otherwise); the error code is that of the exception
 * being delivered. A fault during the switch is injected (in the new task once its state has been
 * loaded); an inaccessible TSS or descriptor table gives KVM_EXIT_INTERNAL_ERROR (EMULATION).
 */
export function kvmTaskSwitch(vcpu: X86Vcpu, tssSel: number, idtIndex: number, reason: number, hasErrorCode: boolean, errorCode: number): ExitResult {
  const ctxt = initEmulateCtxt(vcpu);
  const c = ctxt.cpu;
  reachedNewTask = false;
  try {
    doTaskSwitch(c, tssSel, idtIndex, reason, hasErrorCode, errorCode);
  } catch (e) {
    if (e === EMUL_FAILED) return kvmPrepareInternalError(vcpu, K.KVM_INTERNAL_ERROR_EMULATION, []);
    if (e !== FAULT) throw e;
    if (reachedNewTask) commitTaskState(vcpu, c, false);
    if (c.faultVec === PF_VECTOR) kvmQueueExceptionP(vcpu, PF_VECTOR, c.faultExtra, c.faultErr);
    else if (c.faultErr >= 0) kvmQueueExceptionE(vcpu, c.faultVec, c.faultErr);
    else kvmQueueException(vcpu, c.faultVec);
    return ExitResult.Resume;
  } finally {
    c.vmx = null;
  }
  commitTaskState(vcpu, c, true);
  return ExitResult.Resume;
}
