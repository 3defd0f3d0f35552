/**
 * The vCPU-state ioctls of arch/x86/kvm/x86.c (kvm_arch_vcpu_ioctl and the __get/__set helpers):
 * KVM_GET/SET_REGS, KVM_GET/SET_SREGS, KVM_GET/SET_MSRS, KVM_SET_CPUID2 / KVM_GET_CPUID2,
 * KVM_GET/SET_MP_STATE, KVM_INTERRUPT, KVM_NMI, KVM_SET_GUEST_DEBUG, KVM_GET/SET_VCPU_EVENTS,
 * KVM_GET/SET_DEBUGREGS, KVM_TRANSLATE.
 *
 * Arguments and results are the decoded structs of uapi/kvm_structs.ts (u64 fields as bigint).
 */

import { E2BIG, EBUSY, EEXIST, EINVAL, ENXIO } from "../../../uapi/errno.js";
import * as K from "../../../uapi/kvm.js";
import { kvm_sregs } from "../../../uapi/kvm_structs.js";
import type {
  KvmCpuid2, KvmCpuidEntry2, KvmDebugregs, KvmGuestDebug, KvmMpState, KvmMsrs, KvmRegs, KvmSegment, KvmSregs,
  KvmTranslation, KvmVcpuEvents,
} from "../../../uapi/kvm_structs.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import type { DescPtr, KvmSeg } from "./kvm_x86_ops.js";
import {
  EFER_LMA, EFER_LME, KVM_REQ_EVENT, KVM_REQ_NMI, X86_CR0_PG, X86_CR4_PAE, kvmMakeRequest, kvmRipRead, kvmRipWrite,
  type CpuidEntry, type X86Vcpu,
} from "./kvm_host.js";
import { kvmVcpuSetCpuid2 } from "./cpuid.js";
import { kvmGetMsr, kvmSetMsr } from "./msr.js";
import { kvmTranslateGva } from "./mmu/paging_tmpl.js";
import { kvmLoadPdptrs } from "./x86_insn.js";

const TWO32 = 4294967296;
const big = (n: number): bigint => BigInt.asUintN(64, BigInt(Math.trunc(n)));
/** A u64 from userspace as a number; canonical addresses come back sign-extended. */
const num = (b: bigint): number => Number(BigInt.asIntN(64, b));
const unum = (b: bigint): number => Number(BigInt.asUintN(64, b));

/** GPR order of struct kvm_regs mapped to ModRM register numbers. */
const REGS_ORDER: readonly (keyof KvmRegs)[] = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/** __get_regs() */
export function kvmGetRegs(vcpu: X86Vcpu): KvmRegs {
  const a = vcpu.arch;
  if ((a.regsAvail & (1 << 4)) === 0) a.ops.cacheReg(vcpu, 4);
  const out = {} as KvmRegs;
  for (let i = 0; i < 16; i++) out[REGS_ORDER[i]] = (BigInt(a.regs[i * 2 + 1] >>> 0) << 32n) | BigInt(a.regs[i * 2] >>> 0);
  out.rip = big(kvmRipRead(vcpu));
  out.rflags = big(a.ops.getRflags(vcpu));
  return out;
}

/** __set_regs() */
export function kvmSetRegs(vcpu: X86Vcpu, regs: KvmRegs): void {
  const a = vcpu.arch;
  for (let i = 0; i < 16; i++) {
    const v = BigInt.asUintN(64, regs[REGS_ORDER[i]]);
    a.regs[i * 2] = Number(v & 0xffffffffn) | 0;
    a.regs[i * 2 + 1] = Number(v >> 32n) | 0;
  }
  a.regsAvail |= 1 << 4;
  a.regsDirty |= 1 << 4;
  kvmRipWrite(vcpu, num(regs.rip));
  // RFLAGS bit 1 is always set (SDM 3.4.3).
  a.ops.setRflags(vcpu, (Number(BigInt.asUintN(32, regs.rflags)) | 2) >>> 0);
  // An event injected before the register write is dropped (KVM: vcpu->arch.exception.pending = false).
  a.exception.pending = false;
  a.exception.injected = false;
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
}

function segToUapi(s: KvmSeg): KvmSegment {
  return {
    base: big(s.base), limit: s.limit >>> 0, selector: s.selector, type: s.type, present: s.present, dpl: s.dpl,
    db: s.db, s: s.s, l: s.l, g: s.g, avl: s.avl, unusable: s.unusable, padding: 0,
  };
}

function segFromUapi(s: KvmSegment): KvmSeg {
  return {
    base: num(s.base), limit: s.limit >>> 0, selector: s.selector & 0xffff, type: s.type & 0xf, present: s.present ? 1 : 0,
    dpl: s.dpl & 3, db: s.db ? 1 : 0, s: s.s ? 1 : 0, l: s.l ? 1 : 0, g: s.g ? 1 : 0, avl: s.avl ? 1 : 0, unusable: s.unusable ? 1 : 0,
  };
}

const SEG_NAMES = ["es", "cs", "ss", "ds", "fs", "gs", "ldt", "tr"] as const;

export function emptySeg(): KvmSeg {
  return { base: 0, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
}

/** __get_sregs() */
export function kvmGetSregs(vcpu: X86Vcpu): KvmSregs {
  const a = vcpu.arch;
  const ops = a.ops;
  const segs: Record<string, KvmSegment> = {};
  for (let i = 0; i < 8; i++) {
    const s = emptySeg();
    ops.getSegment(vcpu, s, i);
    segs[SEG_NAMES[i]] = segToUapi(s);
  }
  const dt: DescPtr = { base: 0, limit: 0 };
  ops.getIdt(vcpu, dt);
  const idt = { base: big(dt.base), limit: dt.limit, padding: [0, 0, 0] };
  ops.getGdt(vcpu, dt);
  const gdt = { base: big(dt.base), limit: dt.limit, padding: [0, 0, 0] };
  const bitmap = [0n, 0n, 0n, 0n];
  if (a.interrupt.injected && !a.interrupt.soft) bitmap[a.interrupt.nr >>> 6] |= 1n << BigInt(a.interrupt.nr & 63);
  ops.cacheReg(vcpu, 18);
  return {
    cs: segs.cs, ds: segs.ds, es: segs.es, fs: segs.fs, gs: segs.gs, ss: segs.ss, tr: segs.tr, ldt: segs.ldt,
    gdt, idt,
    cr0: big(a.cr0 >>> 0), cr2: big(a.cr2), cr3: big(a.cr3), cr4: big(a.cr4 >>> 0), cr8: big(a.cr8),
    efer: big(a.efer >>> 0), apic_base: big(a.apicBase), interrupt_bitmap: bitmap,
  };
}

/** kvm_is_valid_sregs() */
function isValidSregs(vcpu: X86Vcpu, s: KvmSregs): boolean {
  const efer = unum(s.efer);
  const cr0 = unum(s.cr0);
  const cr4 = unum(s.cr4);
  if ((efer & EFER_LME) !== 0 && (cr0 & X86_CR0_PG) !== 0) {
    if ((cr4 & X86_CR4_PAE) === 0 || (efer & EFER_LMA) === 0) return false;
    if (unum(s.cr3) >= 2 ** vcpu.arch.maxphyaddr) return false;
  } else if ((efer & EFER_LMA) !== 0 || s.cs.l) {
    return false;
  }
  if (cr0 >= TWO32 || cr4 >= TWO32) return false;
  return vcpu.arch.ops.isValidCr0(vcpu, cr0) && vcpu.arch.ops.isValidCr4(vcpu, cr4);
}

/** __set_sregs() */
export function kvmSetSregs(vcpu: X86Vcpu, s: KvmSregs): void {
  if (!isValidSregs(vcpu, s)) throw new KvmError(EINVAL, "KVM_SET_SREGS", "invalid control register combination");
  const a = vcpu.arch;
  const ops = a.ops;
  if (!kvmSetMsr(vcpu, 0x1b, Number(s.apic_base & 0xffffffffn), Number(s.apic_base >> 32n), true)) throw new KvmError(EINVAL, "KVM_SET_SREGS", "apic_base");
  ops.setIdt(vcpu, { base: num(s.idt.base), limit: s.idt.limit & 0xffff });
  ops.setGdt(vcpu, { base: num(s.gdt.base), limit: s.gdt.limit & 0xffff });
  a.cr2 = unum(s.cr2);
  a.cr3 = unum(s.cr3);
  ops.postSetCr3?.(vcpu, a.cr3);
  a.cr8 = unum(s.cr8) & 0xf;
  ops.setEfer(vcpu, unum(s.efer));
  ops.setCr0(vcpu, unum(s.cr0));
  ops.setCr4(vcpu, unum(s.cr4));
  // __set_sregs_common(): PAE paging takes its PDPTRs from guest memory now (a bad table is not an error here).
  if (isPaePaging(vcpu)) kvmLoadPdptrs(vcpu, a.cr3);
  for (let i = 0; i < 8; i++) ops.setSegment(vcpu, segFromUapi(s[SEG_NAMES[i]]), i);
  // A pending external interrupt in the bitmap becomes the injected interrupt (kvm_queue_interrupt).
  for (let w = 0; w < 4; w++) {
    const bits = BigInt.asUintN(64, s.interrupt_bitmap[w] ?? 0n);
    if (bits === 0n) continue;
    let bit = 0;
    while (((bits >> BigInt(bit)) & 1n) === 0n) bit++;
    a.interrupt.injected = true;
    a.interrupt.nr = w * 64 + bit;
    a.interrupt.soft = false;
    break;
  }
  // Leaving the reset state (SIPI semantics): an AP set up by userspace runs.
  if (a.mpState === K.KVM_MP_STATE_SIPI_RECEIVED) a.mpState = K.KVM_MP_STATE_RUNNABLE;
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
}

const msrBuf = new Int32Array(2);

/** __msr_io(KVM_GET_MSRS / KVM_SET_MSRS): process entries in order, stop at the first failure, return how many were done. */
function msrIo(vcpu: X86Vcpu, msrs: KvmMsrs, write: boolean, ioctl: string): number {
  if (msrs.entries.length >= 0x10000 || msrs.nmsrs >= 0x10000) throw new KvmError(E2BIG, ioctl, `${msrs.nmsrs} entries`);
  const n = Math.min(msrs.nmsrs, msrs.entries.length);
  for (let i = 0; i < n; i++) {
    const e = msrs.entries[i];
    if (write) {
      const v = BigInt.asUintN(64, e.data);
      if (!kvmSetMsr(vcpu, e.index, Number(v & 0xffffffffn) | 0, Number(v >> 32n) | 0, true)) return i;
    } else {
      if (!kvmGetMsr(vcpu, e.index, msrBuf, true)) return i;
      e.data = (BigInt(msrBuf[1] >>> 0) << 32n) | BigInt(msrBuf[0] >>> 0);
    }
  }
  return n;
}

function cpuidToUapi(e: CpuidEntry): KvmCpuidEntry2 {
  return { function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx, padding: [0, 0, 0] };
}

/** kvm_vcpu_ioctl_x86_get_vcpu_events() */
export function kvmGetVcpuEvents(vcpu: X86Vcpu): KvmVcpuEvents {
  const a = vcpu.arch;
  const ex = a.exception;
  const shadow = a.ops.getInterruptShadow(vcpu);
  return {
    // Without KVM_CAP_EXCEPTION_PAYLOAD a pending exception is reported as injected.
    exception: { injected: ex.injected || ex.pending ? 1 : 0, nr: ex.vector, has_error_code: ex.hasErrorCode ? 1 : 0, pending: 0, error_code: ex.errorCode >>> 0 },
    interrupt: { injected: a.interrupt.injected ? 1 : 0, nr: a.interrupt.nr, soft: a.interrupt.soft ? 1 : 0, shadow },
    nmi: { injected: a.nmiInjected ? 1 : 0, pending: a.nmiPending + a.nmiQueued > 0 ? 1 : 0, masked: a.ops.getNmiMask(vcpu) ? 1 : 0, pad: 0 },
    sipi_vector: 0,
    flags: K_VCPUEVENT_VALID_NMI_PENDING | K_VCPUEVENT_VALID_SHADOW,
    smi: { smm: 0, pending: 0, smm_inside_nmi: 0, latched_init: 0 },
    triple_fault_pending: 0,
    exception_has_payload: 0,
    exception_payload: 0n,
  };
}

const K_VCPUEVENT_VALID_NMI_PENDING = 0x1;
const K_VCPUEVENT_VALID_SIPI_VECTOR = 0x2;
const K_VCPUEVENT_VALID_SHADOW = 0x4;
const K_VCPUEVENT_VALID_SMM = 0x8;
const K_VCPUEVENT_VALID_PAYLOAD = 0x10;
const K_VCPUEVENT_VALID_TRIPLE_FAULT = 0x20;

/** kvm_vcpu_ioctl_x86_set_vcpu_events() */
export function kvmSetVcpuEvents(vcpu: X86Vcpu, ev: KvmVcpuEvents): void {
  const known = K_VCPUEVENT_VALID_NMI_PENDING | K_VCPUEVENT_VALID_SIPI_VECTOR | K_VCPUEVENT_VALID_SHADOW | K_VCPUEVENT_VALID_SMM | K_VCPUEVENT_VALID_PAYLOAD | K_VCPUEVENT_VALID_TRIPLE_FAULT;
  if ((ev.flags & ~known) !== 0) throw new KvmError(EINVAL, "KVM_SET_VCPU_EVENTS", "flags");
  // Payload / triple-fault state need their capabilities enabled first.
  if ((ev.flags & (K_VCPUEVENT_VALID_PAYLOAD | K_VCPUEVENT_VALID_TRIPLE_FAULT)) !== 0) throw new KvmError(EINVAL, "KVM_SET_VCPU_EVENTS", "capability not enabled");
  if ((ev.flags & K_VCPUEVENT_VALID_SMM) !== 0 && ev.smi.smm) throw new KvmError(EINVAL, "KVM_SET_VCPU_EVENTS", "SMM not supported");
  if (ev.exception.injected && (ev.exception.nr > 31 || ev.exception.nr === 2)) throw new KvmError(EINVAL, "KVM_SET_VCPU_EVENTS", "exception vector");
  const a = vcpu.arch;
  a.exception.pending = false;
  a.exception.injected = ev.exception.injected !== 0;
  a.exception.vector = ev.exception.nr;
  a.exception.hasErrorCode = ev.exception.has_error_code !== 0;
  a.exception.errorCode = ev.exception.error_code;
  a.exception.hasPayload = false;
  a.interrupt.injected = ev.interrupt.injected !== 0;
  a.interrupt.nr = ev.interrupt.nr;
  a.interrupt.soft = ev.interrupt.soft !== 0;
  if ((ev.flags & K_VCPUEVENT_VALID_SHADOW) !== 0) a.ops.setInterruptShadow(vcpu, ev.interrupt.shadow);
  a.nmiInjected = ev.nmi.injected !== 0;
  if ((ev.flags & K_VCPUEVENT_VALID_NMI_PENDING) !== 0) {
    // Restored NMIs are queued: process_nmi() applies the pending limit on the next entry.
    a.nmiPending = 0;
    a.nmiQueued = ev.nmi.pending ? 1 : 0;
    if (a.nmiQueued > 0) kvmMakeRequest(vcpu, KVM_REQ_NMI);
  }
  a.ops.setNmiMask(vcpu, ev.nmi.masked !== 0);
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
}

const DR6_FIXED_1 = 0xfffe0ff0;
const DR7_FIXED_1 = 0x400;

/** KVM_GET/SET_DEBUGREGS */
function getDebugregs(vcpu: X86Vcpu): KvmDebugregs {
  const a = vcpu.arch;
  return { db: [0, 1, 2, 3].map((i) => big(a.db[i])), dr6: big(a.dr6), dr7: big(a.dr7), flags: 0n, reserved: new Array<bigint>(9).fill(0n) };
}

function setDebugregs(vcpu: X86Vcpu, d: KvmDebugregs): void {
  if (d.flags !== 0n) throw new KvmError(EINVAL, "KVM_SET_DEBUGREGS", "flags");
  // Upper 32 bits of DR6/DR7 are reserved (must be zero).
  if (d.dr6 >> 32n !== 0n || d.dr7 >> 32n !== 0n) throw new KvmError(EINVAL, "KVM_SET_DEBUGREGS", "dr6/dr7 upper bits");
  const a = vcpu.arch;
  for (let i = 0; i < 4; i++) a.db[i] = num(d.db[i]);
  a.dr6 = (Number(d.dr6) | DR6_FIXED_1) >>> 0;
  a.dr7 = (Number(d.dr7) | DR7_FIXED_1) >>> 0;
  a.ops.setDr7(vcpu, a.guestDebug & K.KVM_GUESTDBG_USE_HW_BP ? a.guestDebugDr7 : a.dr7);
}

/** kvm_arch_vcpu_ioctl_set_guest_debug() */
function setGuestDebug(vcpu: X86Vcpu, dbg: KvmGuestDebug): void {
  const known = K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_SINGLESTEP | K.KVM_GUESTDBG_USE_SW_BP | K.KVM_GUESTDBG_USE_HW_BP | K.KVM_GUESTDBG_INJECT_DB | K.KVM_GUESTDBG_INJECT_BP;
  if ((dbg.control & ~known) !== 0) throw new KvmError(EINVAL, "KVM_SET_GUEST_DEBUG", "control");
  const a = vcpu.arch;
  if ((dbg.control & (K.KVM_GUESTDBG_INJECT_DB | K.KVM_GUESTDBG_INJECT_BP)) !== 0) {
    if (a.exception.pending || a.exception.injected) throw new KvmError(EBUSY, "KVM_SET_GUEST_DEBUG", "exception pending");
    a.exception.pending = true;
    a.exception.vector = dbg.control & K.KVM_GUESTDBG_INJECT_DB ? 1 : 3;
    a.exception.hasErrorCode = false;
    kvmMakeRequest(vcpu, KVM_REQ_EVENT);
  }
  const rflags = a.ops.getRflags(vcpu);
  a.guestDebug = dbg.control & K.KVM_GUESTDBG_ENABLE ? dbg.control & ~(K.KVM_GUESTDBG_INJECT_DB | K.KVM_GUESTDBG_INJECT_BP) : 0;
  if (a.guestDebug & K.KVM_GUESTDBG_USE_HW_BP) {
    for (let i = 0; i < 4; i++) a.guestDebugDb[i] = num(dbg.debugreg[i]);
    a.guestDebugDr7 = (Number(BigInt.asUintN(32, dbg.debugreg[7])) | DR7_FIXED_1) >>> 0;
  } else {
    for (let i = 0; i < 4; i++) a.guestDebugDb[i] = a.db[i];
  }
  a.ops.setDr7(vcpu, a.guestDebug & K.KVM_GUESTDBG_USE_HW_BP ? a.guestDebugDr7 : a.dr7);
  // Single-step uses RFLAGS.TF on the guest's behalf; remember where so KVM can hide it (kvm_set_rflags).
  if (a.guestDebug & K.KVM_GUESTDBG_SINGLESTEP) a.singlestepRip = kvmRipRead(vcpu);
  a.ops.setRflags(vcpu, rflags);
  a.ops.updateExceptionBitmap(vcpu);
}


/** KVM_SREGS2_FLAGS_PDPTRS_VALID */
export const KVM_SREGS2_FLAGS_PDPTRS_VALID = 1;
/** struct kvm_sregs2: kvm_sregs without interrupt_bitmap, then flags and pdptrs[4] (320 bytes). */
const SREGS2_SIZE = 320;
const SREGS2_FLAGS = 280;
const SREGS2_PDPTRS = 288;

function isPaePaging(vcpu: X86Vcpu): boolean {
  const a = vcpu.arch;
  return (a.cr0 & X86_CR0_PG) !== 0 && (a.cr4 & X86_CR4_PAE) !== 0 && (a.efer & EFER_LMA) === 0;
}

const pdptrBuf = new Int32Array(2);

/** __get_sregs2(): as bytes (the core has no codec for struct kvm_sregs2). */
export function kvmGetSregs2(vcpu: X86Vcpu): Uint8Array {
  const out = new Uint8Array(SREGS2_SIZE);
  out.set(kvm_sregs.encode(kvmGetSregs(vcpu)).subarray(0, SREGS2_FLAGS));
  const dv = new DataView(out.buffer);
  const ops = vcpu.arch.ops;
  if (isPaePaging(vcpu) && ops.getPdptr !== undefined) {
    dv.setUint32(SREGS2_FLAGS, KVM_SREGS2_FLAGS_PDPTRS_VALID, true);
    for (let i = 0; i < 4; i++) {
      ops.getPdptr(vcpu, i, pdptrBuf);
      dv.setInt32(SREGS2_PDPTRS + 8 * i, pdptrBuf[0], true);
      dv.setInt32(SREGS2_PDPTRS + 8 * i + 4, pdptrBuf[1], true);
    }
  }
  return out;
}

/** __set_sregs2(): PDPTRS_VALID hands the PDPTEs over instead of reading them from guest memory. */
export function kvmSetSregs2(vcpu: X86Vcpu, bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < SREGS2_SIZE) throw new KvmError(EINVAL, "KVM_SET_SREGS2", "struct kvm_sregs2 is 320 bytes");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flagsLo = dv.getUint32(SREGS2_FLAGS, true);
  if (dv.getUint32(SREGS2_FLAGS + 4, true) !== 0 || (flagsLo & ~KVM_SREGS2_FLAGS_PDPTRS_VALID) !== 0) throw new KvmError(EINVAL, "KVM_SET_SREGS2", "flags");
  const buf = new Uint8Array(kvm_sregs.size);
  buf.set(bytes.subarray(0, SREGS2_FLAGS));
  const s = kvm_sregs.decode(buf);
  const validPdptrs = (flagsLo & KVM_SREGS2_FLAGS_PDPTRS_VALID) !== 0;
  const cr0 = Number(s.cr0 & 0xffffffffn);
  const pae = (cr0 & X86_CR0_PG) !== 0 && (Number(s.cr4 & 0xffffffffn) & X86_CR4_PAE) !== 0 && (Number(s.efer & 0xffffffffn) & EFER_LMA) === 0;
  if (validPdptrs && !pae) throw new KvmError(EINVAL, "KVM_SET_SREGS2", "PDPTRs given outside PAE paging");
  kvmSetSregs(vcpu, s);
  const ops = vcpu.arch.ops;
  if (validPdptrs && ops.setPdptr !== undefined) {
    for (let i = 0; i < 4; i++) ops.setPdptr(vcpu, i, dv.getInt32(SREGS2_PDPTRS + 8 * i, true), dv.getInt32(SREGS2_PDPTRS + 8 * i + 4, true));
  }
}

/** kvm_arch_vcpu_ioctl(): x86 vCPU ioctls (not KVM_RUN). */
export function x86VcpuIoctl(vcpu: X86Vcpu, nr: number, arg: number | object, _supported: CpuidEntry[]): number | object {
  const a = vcpu.arch;
  switch (nr) {
    case K.KVM_GET_REGS:
      return kvmGetRegs(vcpu);
    case K.KVM_SET_REGS:
      kvmSetRegs(vcpu, arg as KvmRegs);
      return 0;
    case K.KVM_GET_SREGS:
      return kvmGetSregs(vcpu);
    case K.KVM_SET_SREGS:
      kvmSetSregs(vcpu, arg as KvmSregs);
      return 0;
    case K.KVM_GET_SREGS2:
      return kvmGetSregs2(vcpu);
    case K.KVM_SET_SREGS2:
      kvmSetSregs2(vcpu, arg as Uint8Array);
      return 0;
    case K.KVM_GET_MSRS:
      return msrIo(vcpu, arg as KvmMsrs, false, "KVM_GET_MSRS");
    case K.KVM_SET_MSRS:
      return msrIo(vcpu, arg as KvmMsrs, true, "KVM_SET_MSRS");
    case K.KVM_SET_CPUID2: {
      const c = arg as KvmCpuid2;
      if (c.nent > 256) throw new KvmError(E2BIG, "KVM_SET_CPUID2", `nent ${c.nent}`);
      kvmVcpuSetCpuid2(vcpu, c.entries.slice(0, c.nent));
      return 0;
    }
    case K.KVM_GET_CPUID2: {
      const want = (arg as { nent: number }).nent;
      if (want < a.cpuidEntries.length) throw new KvmError(E2BIG, "KVM_GET_CPUID2", `nent ${want} < ${a.cpuidEntries.length}`);
      return { nent: a.cpuidEntries.length, entries: a.cpuidEntries.map(cpuidToUapi) } satisfies KvmCpuid2;
    }
    case K.KVM_GET_MP_STATE:
      return { mp_state: a.mpState } satisfies KvmMpState;
    case K.KVM_SET_MP_STATE: {
      const st = (arg as KvmMpState).mp_state;
      // Without an in-kernel LAPIC only RUNNABLE is accepted: the other states need INIT/SIPI delivery.
      const irqchip = vcpu.kvm.arch.irqchip !== null;
      if (st > K.KVM_MP_STATE_SIPI_RECEIVED || (!irqchip && st !== K.KVM_MP_STATE_RUNNABLE)) throw new KvmError(EINVAL, "KVM_SET_MP_STATE", `mp_state ${st}`);
      a.mpState = st;
      kvmMakeRequest(vcpu, KVM_REQ_EVENT);
      return 0;
    }
    case K.KVM_INTERRUPT: {
      const irq = typeof arg === "number" ? arg : (arg as { irq: number }).irq;
      if (irq >>> 0 >= 256) throw new KvmError(EINVAL, "KVM_INTERRUPT", `irq ${irq}`);
      if (vcpu.kvm.arch.irqchip !== null) throw new KvmError(ENXIO, "KVM_INTERRUPT", "in-kernel irqchip");
      if (a.pendingExternalVector >= 0) throw new KvmError(EEXIST, "KVM_INTERRUPT", "an interrupt is already pending");
      a.pendingExternalVector = irq;
      kvmMakeRequest(vcpu, KVM_REQ_EVENT);
      return 0;
    }
    case K.KVM_NMI:
      // kvm_inject_nmi(): queued; process_nmi() folds it into nmi_pending under the limit.
      vcpu.arch.nmiQueued++;
      kvmMakeRequest(vcpu, KVM_REQ_NMI);
      kvmMakeRequest(vcpu, KVM_REQ_EVENT);
      return 0;
    case K.KVM_SET_GUEST_DEBUG:
      setGuestDebug(vcpu, arg as KvmGuestDebug);
      return 0;
    case K.KVM_GET_VCPU_EVENTS:
      return kvmGetVcpuEvents(vcpu);
    case K.KVM_SET_VCPU_EVENTS:
      kvmSetVcpuEvents(vcpu, arg as KvmVcpuEvents);
      return 0;
    case K.KVM_GET_DEBUGREGS:
      return getDebugregs(vcpu);
    case K.KVM_SET_DEBUGREGS:
      setDebugregs(vcpu, arg as KvmDebugregs);
      return 0;
    case K.KVM_TRANSLATE: {
      const t = arg as KvmTranslation;
      const la = num(t.linear_address);
      const r = kvmTranslateGva(vcpu, la);
      return {
        linear_address: t.linear_address, physical_address: r.valid ? big(r.gpa) : 0xffffffffffffffffn,
        valid: r.valid ? 1 : 0, writeable: r.writable ? 1 : 0, usermode: r.user ? 1 : 0, pad: [0, 0, 0, 0, 0],
      } satisfies KvmTranslation;
    }
    default:
      // x86's kvm_arch_vcpu_ioctl() answers an unknown request with EINVAL (only the VM level says ENOTTY).
      throw new KvmError(EINVAL, `ioctl 0x${(nr >>> 0).toString(16)}`);
  }
}
