/**
 * arch/x86/kvm/x86.c: the vendor-neutral half of x86 KVM: the kvm_arch_* hooks the core calls
 * (`X86KvmArch`), the KVM_RUN loop (vcpu_run / vcpu_enter_guest) with vCPU requests and event
 * injection, port I/O and the exits to userspace, HLT, and the completion of userspace I/O on
 * the next KVM_RUN (complete_userspace_io).
 *
 * Register/state ioctls live in x86_regs.ts, MSRs in msr.ts, CPUID in cpuid.ts, the MMU in mmu/.
 */

import { kvmBuildMsrFilter, type KvmMsrFilter } from "./msr_filter.js";
import { EAGAIN, EINTR, EINVAL, ENOTTY } from "../../../uapi/errno.js";
import * as K from "../../../uapi/kvm.js";
import { KvmBus, KvmMrChange, type KvmArch, type KvmLike, type KvmMemorySlot, type KvmStatDesc, type KvmVcpuLike } from "../../../virt/kvm/kvm_host.js";
import { statCounter, statIBoolean, statICounter, statPCounter } from "../../../virt/kvm/stats.js";
import { kvmHandleSignalExit } from "../../../virt/kvm/kvm_main.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import type { PageAllocator } from "../../../host/page_alloc.js";
import { ExitResult, EXIT_FASTPATH_REENTER_GUEST, type KvmX86Ops } from "./kvm_x86_ops.js";
import {
  CompleteUserspaceIo, KvmArchX86, KvmVcpuArch, KVM_REQ_EVENT, KVM_REQ_LOAD_MMU_PGD, KVM_REQ_TLB_FLUSH,
  KVM_REQ_TLB_FLUSH_CURRENT, KVM_REQ_TLB_FLUSH_GUEST, KVM_REQ_TRIPLE_FAULT, KVM_REQ_NMI,
  EXCEPTION_HAS_ERROR_CODE_MASK, DB_VECTOR, DF_VECTOR, PF_VECTOR,
  kvmCheckRequest, kvmMakeRequest, kvmRegisterWrite, kvmRipRead,
  type X86Kvm, type X86Vcpu,
} from "./kvm_host.js";
import { TdpMmu } from "./mmu/tdp_mmu.js";
import { EPT_MT_MASK_WB } from "./mmu/spte.js";
import { kvmGetSupportedCpuid, type HostCpuid } from "./cpuid.js";
import { x86VcpuIoctl } from "./x86_regs.js";
import { kvmFpuInitGuest, kvmFpuVcpuIoctl, KVM_XSAVE_SIZE } from "./fpu.js";
import { kvmMmuCommitMemoryRegion, kvmMmuEnableLogDirtyPtMasked, kvmMmuFlushShadowMemslot, kvmMmuUnmapGfnRange } from "./mmu/mmu.js";
import { completeEmulatedMsr, kvmGetMsrIndexList } from "./msr.js";
import { kvmTscVcpuInit, kvmTscVcpuIoctl } from "./tsc.js";
import { KVM_CLOCK_VALID_FLAGS, kvmClockCheckRequests, kvmClockInitVm, kvmClockVmIoctl } from "./kvmclock.js";
import {
  kvmCreateLapic, kvmFreeLapic, kvmIrqchipBeforeEntry, kvmIrqchipDestroyVm, kvmIrqchipInitVm, kvmIrqchipVmIoctl,
  kvmLapicVcpuIoctl, kvmVcpuBlock,
} from "./x86_irqchip.js";

/** The x86 PIO data page is the second page of the vCPU mmap area (KVM_PIO_PAGE_OFFSET). */
export const KVM_PIO_DATA_OFFSET = K.KVM_PIO_PAGE_OFFSET * 4096;

/** kvm_x86_vendor_init() options: what the vendor module and the host give x86 KVM. */
export interface X86ArchOptions {
  ops: KvmX86Ops;
  pageAlloc: PageAllocator;
  /** The host processor's CPUID (boot_cpu_data), for KVM_GET_SUPPORTED_CPUID. */
  hostCpuid: HostCpuid;
  /** EPT accessed/dirty flags available and enabled (enable_ept_ad_bits). */
  eptAdBits: boolean;
  /** The vendor module's per-instance data, handed to every VM (kvm.arch.vendor). */
  vendor: unknown;
}

// ----------------------------------------------------------------------------------------------
// Tracing helpers: one place builds the fields of each tracepoint (trace.h).
// ----------------------------------------------------------------------------------------------

function traceUserspaceExit(vcpu: X86Vcpu, errno: number): void {
  const kvm = vcpu.kvm;
  if (kvm.tracing) kvm.trace("kvm_userspace_exit", { reason: vcpu.arch.run.exitReason, errno: -errno }, vcpu);
}

// ----------------------------------------------------------------------------------------------
// Event queueing (kvm_queue_exception and friends)
// ----------------------------------------------------------------------------------------------

/** kvm_multiple_exception(): queue an exception, merging into #DF / triple fault per SDM Table 6-5. */
export function kvmQueueExceptionFull(vcpu: X86Vcpu, nr: number, hasError: boolean, errorCode: number, hasPayload: boolean, payload: number): void {
  const ex = vcpu.arch.exception;
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
  if (!ex.pending && !ex.injected) {
    ex.pending = true;
    ex.injected = false;
    ex.vector = nr;
    ex.hasErrorCode = hasError;
    ex.errorCode = errorCode;
    ex.hasPayload = hasPayload;
    ex.payload = payload;
    return;
  }
  const prev = ex.vector;
  if (prev === DF_VECTOR) {
    // A fault while delivering #DF: triple fault (SDM 6.15, "Interrupt 8").
    kvmMakeRequest(vcpu, KVM_REQ_TRIPLE_FAULT);
    return;
  }
  const class1 = exceptionClass(prev);
  const class2 = exceptionClass(nr);
  if ((class1 === EXCPT_CONTRIBUTORY && class2 === EXCPT_CONTRIBUTORY) || (class1 === EXCPT_PF && class2 !== EXCPT_BENIGN)) {
    ex.pending = true;
    ex.injected = false;
    ex.vector = DF_VECTOR;
    ex.hasErrorCode = true;
    ex.errorCode = 0;
    ex.hasPayload = false;
    ex.payload = 0;
    return;
  }
  // Otherwise the new exception replaces the old one, which will be re-raised when the
  // faulting instruction is restarted.
  ex.pending = true;
  ex.injected = false;
  ex.vector = nr;
  ex.hasErrorCode = hasError;
  ex.errorCode = errorCode;
  ex.hasPayload = hasPayload;
  ex.payload = payload;
}

const EXCPT_BENIGN = 0;
const EXCPT_CONTRIBUTORY = 1;
const EXCPT_PF = 2;
function exceptionClass(v: number): number {
  if (v === PF_VECTOR) return EXCPT_PF;
  if (v === 0 || (v >= 10 && v <= 13)) return EXCPT_CONTRIBUTORY;
  return EXCPT_BENIGN;
}

/** kvm_queue_exception() */
export function kvmQueueException(vcpu: X86Vcpu, nr: number): void {
  kvmQueueExceptionFull(vcpu, nr, false, 0, false, 0);
}

/** kvm_queue_exception_e() */
export function kvmQueueExceptionE(vcpu: X86Vcpu, nr: number, errorCode: number): void {
  kvmQueueExceptionFull(vcpu, nr, true, errorCode, false, 0);
}

/** kvm_inject_gp() */
export function kvmInjectGp(vcpu: X86Vcpu, errorCode: number): void {
  kvmQueueExceptionE(vcpu, 13, errorCode);
}

/** kvm_queue_exception_p(): #DB (payload = DR6 bits) / #PF (payload = CR2). */
export function kvmQueueExceptionP(vcpu: X86Vcpu, nr: number, payload: number, errorCode = -1): void {
  kvmQueueExceptionFull(vcpu, nr, errorCode >= 0 || ((EXCEPTION_HAS_ERROR_CODE_MASK >>> nr) & 1) === 1, errorCode < 0 ? 0 : errorCode, true, payload);
}

/** kvm_deliver_exception_payload(): CR2 for #PF, DR6 for #DB, at the moment of injection. */
function deliverExceptionPayload(vcpu: X86Vcpu): void {
  const a = vcpu.arch;
  const ex = a.exception;
  if (!ex.hasPayload) return;
  if (ex.vector === PF_VECTOR) a.cr2 = ex.payload;
  else if (ex.vector === DB_VECTOR) {
    // DR6.RTM is active-low; B0-B3/BS/BD come from the payload (SDM 17.2.3).
    a.dr6 = ((a.dr6 & ~0x400f) | ex.payload | 0xffff0ff0) >>> 0;
  }
  ex.hasPayload = false;
  ex.payload = 0;
}

// ----------------------------------------------------------------------------------------------
// The run loop
// ----------------------------------------------------------------------------------------------

/** signal_pending(current) for the task running this vCPU. */
function signalPending(vcpu: X86Vcpu): boolean {
  return vcpu.signalPending();
}

/** kvm_vcpu_ready_for_interrupt_injection() */
function readyForInterruptInjection(vcpu: X86Vcpu): boolean {
  const a = vcpu.arch;
  return a.ops.interruptAllowed(vcpu, false) && !a.interrupt.injected && a.pendingExternalVector < 0 && !a.exception.pending && !a.exception.injected;
}

/** dm_request_for_irq_injection(): userspace asked to be told when it can inject. */
function dmRequestForIrqInjection(vcpu: X86Vcpu): boolean {
  return vcpu.arch.run.requestInterruptWindow !== 0 && vcpu.kvm.arch.irqchip === null;
}

/** post_kvm_run_save(): the kvm_run fields every exit reports. */
function postKvmRunSave(vcpu: X86Vcpu): void {
  const a = vcpu.arch;
  const run = a.run;
  run.ifFlag = a.ops.getIfFlag(vcpu) ? 1 : 0;
  run.cr8 = a.cr8;
  run.apicBase = a.apicBase;
  // With the PIC in the kernel, userspace never injects: it may always "inject" (post_kvm_run_save).
  run.readyForInterruptInjection = vcpu.kvm.arch.irqchip !== null || readyForInterruptInjection(vcpu) ? 1 : 0;
  run.flags = 0;
}

/**
 * kvm_check_and_inject_events(): re-inject what the last exit interrupted, then the highest
 * priority new event (exception > NMI > maskable interrupt), and open a window when an event
 * is waiting for the guest to become interruptible.
 */
function kvmCheckAndInjectEvents(vcpu: X86Vcpu, reqIntWin: boolean): void {
  const a = vcpu.arch;
  const ops = a.ops;
  let canInject = true;
  if (a.exception.injected) {
    ops.injectException(vcpu);
    canInject = false;
  } else if (a.nmiInjected) {
    ops.injectNmi(vcpu);
    canInject = false;
  } else if (a.interrupt.injected) {
    ops.injectIrq(vcpu, true);
    canInject = false;
  }

  if (a.exception.pending) {
    if (canInject) {
      deliverExceptionPayload(vcpu);
      a.exception.pending = false;
      a.exception.injected = true;
      ops.injectException(vcpu);
      canInject = false;
    }
  }

  if (a.nmiPending > 0) {
    if (canInject && ops.nmiAllowed(vcpu, true)) {
      a.nmiPending--;
      a.nmiInjected = true;
      vcpu.stat.nmi_injections = vcpu.stat.nmi_injections + 1;
      ops.injectNmi(vcpu);
      canInject = false;
    }
    if (a.nmiPending > 0) ops.enableNmiWindow(vcpu);
  }

  const chip = vcpu.kvm.arch.irqchip;
  const hasIntr = chip !== null ? chip.hasInjectableIntr(vcpu) : a.pendingExternalVector >= 0;
  if (hasIntr) {
    if (canInject && ops.interruptAllowed(vcpu, true)) {
      const vec = chip !== null ? chip.getInterrupt(vcpu) : a.pendingExternalVector;
      a.pendingExternalVector = -1;
      a.interrupt.injected = true;
      a.interrupt.nr = vec;
      a.interrupt.soft = false;
      vcpu.stat.irq_injections = vcpu.stat.irq_injections + 1;
      if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_inj_virq", { vector: vec, soft: false, reinjected: false }, vcpu);
      ops.injectIrq(vcpu, false);
    } else {
      ops.enableIrqWindow(vcpu);
    }
  } else if (reqIntWin) {
    ops.enableIrqWindow(vcpu);
  }
}

/**
 * process_nmi(): fold the queued NMIs into nmi_pending. The processor latches one NMI while
 * another is in service, so two may be pending when NMIs are unblocked (one injected now, one
 * through the NMI window), but only one when NMIs are blocked or an injection is in flight.
 */
function processNmi(vcpu: X86Vcpu): void {
  const a = vcpu.arch;
  const limit = a.ops.getNmiMask(vcpu) || a.nmiInjected ? 1 : 2;
  a.nmiPending = Math.min(a.nmiPending + a.nmiQueued, limit);
  a.nmiQueued = 0;
  if (a.nmiPending > 0) kvmMakeRequest(vcpu, KVM_REQ_EVENT);
}

const exitInfo = new Float64Array(7);

/** vcpu_enter_guest(): service requests, inject events, run the guest once and handle the exit. */
function vcpuEnterGuest(vcpu: X86Vcpu): ExitResult {
  const a = vcpu.arch;
  const ops = a.ops;
  const kvm = vcpu.kvm;
  const reqIntWin = dmRequestForIrqInjection(vcpu);

  if (vcpu.requests !== 0) {
    if (kvmCheckRequest(vcpu, KVM_REQ_TRIPLE_FAULT)) {
      a.run.exitReason = K.KVM_EXIT_SHUTDOWN;
      return ExitResult.ToUserspace;
    }
    if (kvmCheckRequest(vcpu, KVM_REQ_LOAD_MMU_PGD)) ops.loadMmuPgd(vcpu, kvm.arch.mmu.rootHpa());
    if (kvmCheckRequest(vcpu, KVM_REQ_TLB_FLUSH)) {
      vcpu.stat.tlb_flush = vcpu.stat.tlb_flush + 1;
      ops.flushTlbAll(vcpu);
    }
    if (kvmCheckRequest(vcpu, KVM_REQ_TLB_FLUSH_CURRENT)) ops.flushTlbCurrent(vcpu);
    if (kvmCheckRequest(vcpu, KVM_REQ_TLB_FLUSH_GUEST)) ops.flushTlbGuest(vcpu);
    if (kvmCheckRequest(vcpu, KVM_REQ_NMI)) processNmi(vcpu);
    kvmClockCheckRequests(vcpu);
    if (kvmCheckRequest(vcpu, KVM_REQ_EVENT) || reqIntWin) {
      vcpu.stat.req_event = vcpu.stat.req_event + 1;
      kvmCheckAndInjectEvents(vcpu, reqIntWin);
    }
  } else if (reqIntWin || a.interrupt.injected || a.exception.injected || a.nmiInjected) {
    kvmCheckAndInjectEvents(vcpu, reqIntWin);
  }

  if (kvm.tracing) kvm.trace("kvm_entry", { vcpu_id: vcpu.vcpuId, rip: kvmRipRead(vcpu) }, vcpu);
  let fastpath = ops.vcpuRun(vcpu);
  while (fastpath === EXIT_FASTPATH_REENTER_GUEST) fastpath = ops.vcpuRun(vcpu);
  vcpu.stat.exits = vcpu.stat.exits + 1;
  if (kvm.tracing) {
    ops.getExitInfo(vcpu, exitInfo);
    kvm.trace("kvm_exit", {
      vcpu_id: vcpu.vcpuId, exit_reason: exitInfo[0], guest_rip: kvmRipRead(vcpu), isa: 1,
      info1: exitInfo[1] * 4294967296 + exitInfo[2], info2: exitInfo[3] * 4294967296 + exitInfo[4],
      intr_info: exitInfo[5], error_code: exitInfo[6],
    }, vcpu);
  }
  ops.completeInterrupts?.(vcpu);
  return ops.handleExit(vcpu, fastpath);
}

/** vcpu_run(): enter the guest until an exit needs userspace or a signal is pending. */
function vcpuRun(vcpu: X86Vcpu): number {
  const a = vcpu.arch;
  const irqchip = vcpu.kvm.arch.irqchip !== null;
  for (;;) {
    if (irqchip) {
      kvmIrqchipBeforeEntry(vcpu);
      // kvm_vcpu_running() is false while halted or waiting for SIPI: vcpu_block().
      if (a.mpState !== K.KVM_MP_STATE_RUNNABLE && !kvmVcpuBlock(vcpu)) return -EINTR;
    }
    const r = vcpuEnterGuest(vcpu);
    if (r === ExitResult.ToUserspace) return 0;
    if (dmRequestForIrqInjection(vcpu) && readyForInterruptInjection(vcpu)) {
      a.run.exitReason = K.KVM_EXIT_IRQ_WINDOW_OPEN;
      vcpu.stat.request_irq_exits = vcpu.stat.request_irq_exits + 1;
      return 0;
    }
    if (signalPending(vcpu)) return -EINTR;
  }
}

/** kvm_arch_vcpu_ioctl_run(): the core has already completed userspace I/O and checked immediate_exit. */
export function kvmArchVcpuIoctlRun(vcpu: X86Vcpu): number {
  const a = vcpu.arch;
  let r: number;
  try {
    if (a.mpState === K.KVM_MP_STATE_UNINITIALIZED) {
      // An AP before INIT/SIPI: wait for them; still not started -> -EAGAIN (kvm_arch_vcpu_ioctl_run).
      const woke = vcpu.kvm.arch.irqchip !== null && kvmVcpuBlock(vcpu);
      if (!woke) {
        if (signalPending(vcpu)) {
          const err = kvmHandleSignalExit(vcpu);
          postKvmRunSave(vcpu);
          throw err;
        }
        throw new KvmError(EAGAIN, "KVM_RUN", "vCPU waits for INIT/SIPI");
      }
    }
    a.ops.schedIn?.(vcpu);
    r = signalPending(vcpu) ? -EINTR : vcpuRun(vcpu);
  } catch (e) {
    if (e instanceof KvmError) {
      postKvmRunSave(vcpu);
      traceUserspaceExit(vcpu, e.errno);
    }
    throw e;
  }
  if (r === -EINTR) {
    const err = kvmHandleSignalExit(vcpu);
    postKvmRunSave(vcpu);
    traceUserspaceExit(vcpu, EINTR);
    throw err;
  }
  postKvmRunSave(vcpu);
  traceUserspaceExit(vcpu, 0);
  return 0;
}

/**
 * kvm_arch_vcpu_ioctl_run()'s first step: vcpu->arch.complete_userspace_io. Returns > 0 to go
 * on into the guest, 0 when the completion itself needs userspace again.
 */
export function kvmArchCompleteUserspaceIo(vcpu: X86Vcpu): number {
  const a = vcpu.arch;
  if (a.completeUserspaceIo === CompleteUserspaceIo.None) return 1;
  const cui = a.completeUserspaceIo;
  a.completeUserspaceIo = CompleteUserspaceIo.None;
  if (completeUserspaceIo(vcpu, cui) === ExitResult.ToUserspace) {
    postKvmRunSave(vcpu);
    traceUserspaceExit(vcpu, 0);
    return 0;
  }
  return 1;
}

// ----------------------------------------------------------------------------------------------
// Instruction completion, HLT, port I/O
// ----------------------------------------------------------------------------------------------

/** kvm_skip_emulated_instruction(): advance RIP; single-step (guest TF or KVM_GUESTDBG_SINGLESTEP) raises #DB. */
/**
 * kvm_vcpu_on_spin() (virt/kvm/kvm_main.c): the vCPU is spinning (a PAUSE-loop exit), so if
 * another vCPU of the VM could run (kvm_vcpu_on_spin's candidates: runnable, not halted), give
 * it the host CPU: in this single-threaded host that ends the spinning vCPU's time slice now.
 */
export function kvmVcpuOnSpin(vcpu: X86Vcpu): boolean {
  for (const v of vcpu.kvm.arch.vcpus) {
    if (v === vcpu || v.arch.mpState !== K.KVM_MP_STATE_RUNNABLE) continue;
    vcpu.yieldCpu();
    return true;
  }
  return false;
}

export function kvmSkipEmulatedInstruction(vcpu: X86Vcpu): ExitResult {
  const a = vcpu.arch;
  const tf = kvmSinglestepPending(vcpu);
  if (!a.ops.skipEmulatedInstruction(vcpu)) return ExitResult.ToUserspace;
  if (tf) return kvmVcpuDoSinglestep(vcpu);
  return ExitResult.Resume;
}

/**
 * The raw RFLAGS.TF of the instruction being completed: the guest's own TF, or the one KVM sets
 * for KVM_GUESTDBG_SINGLESTEP (which get_rflags hides from the guest's view).
 */
export function kvmSinglestepPending(vcpu: X86Vcpu): boolean {
  const a = vcpu.arch;
  return (a.ops.getRflags(vcpu) & 0x100) !== 0 || (a.guestDebug & K.KVM_GUESTDBG_SINGLESTEP) !== 0;
}

/** kvm_vcpu_do_singlestep(): the instruction KVM completed was single-stepped. */
export function kvmVcpuDoSinglestep(vcpu: X86Vcpu): ExitResult {
  const a = vcpu.arch;
  if ((a.guestDebug & K.KVM_GUESTDBG_SINGLESTEP) !== 0) {
    const run = a.run;
    run.exitReason = K.KVM_EXIT_DEBUG;
    run.debugException = DB_VECTOR;
    run.debugPc = kvmRipRead(vcpu) + a.ops.getSegmentBase(vcpu, 1);
    run.debugDr6 = (0xffff0ff0 | 0x4000) >>> 0; // DR6_BS | DR6_ACTIVE_LOW, as a u64
    run.debugDr7 = 0;
    return ExitResult.ToUserspace;
  }
  kvmQueueExceptionP(vcpu, DB_VECTOR, 0x4000);
  return ExitResult.Resume;
}

/** kvm_emulate_halt(): skip HLT, then halt in the kernel (in-kernel LAPIC) or exit with KVM_EXIT_HLT. */
export function kvmEmulateHalt(vcpu: X86Vcpu): ExitResult {
  const ret = kvmSkipEmulatedInstruction(vcpu);
  vcpu.stat.halt_exits = vcpu.stat.halt_exits + 1;
  if (vcpu.kvm.arch.irqchip !== null) {
    vcpu.arch.mpState = K.KVM_MP_STATE_HALTED;
    return ret;
  }
  vcpu.arch.run.exitReason = K.KVM_EXIT_HLT;
  return ExitResult.ToUserspace;
}

const pioScratch = new Uint8Array(4);

/** Read `size` bytes of RAX into a little-endian buffer. */
function raxBytes(vcpu: X86Vcpu, size: number, out: Uint8Array): void {
  const lo = vcpu.arch.regs[0];
  for (let i = 0; i < size; i++) out[i] = (lo >>> (8 * i)) & 0xff;
}

function tracePio(vcpu: X86Vcpu, rw: number, port: number, size: number, count: number, data: Uint8Array): void {
  let val = 0;
  for (let i = size - 1; i >= 0; i--) val = val * 256 + data[i];
  vcpu.kvm.trace("kvm_pio", { rw, port, size, count, val }, vcpu);
}

/** Fill kvm_run for a port I/O exit; the data is at data_offset in the run area. */
function prepareUserspacePio(vcpu: X86Vcpu, port: number, size: number, count: number, isIn: boolean): void {
  const a = vcpu.arch;
  const run = a.run;
  a.pio.port = port;
  a.pio.in = isIn;
  a.pio.size = size;
  a.pio.count = count;
  run.exitReason = K.KVM_EXIT_IO;
  run.ioDirection = isIn ? K.KVM_EXIT_IO_IN : K.KVM_EXIT_IO_OUT;
  run.ioSize = size;
  run.ioPort = port;
  run.ioCount = count;
  run.ioDataOffset = KVM_PIO_DATA_OFFSET;
  vcpu.stat.io_exits = vcpu.stat.io_exits + 1;
}

/**
 * emulator_pio_out(): offer `count` items of `size` bytes to the in-kernel PIO bus; if no
 * device takes them, copy them to the PIO data page for userspace. Returns true when handled
 * in the kernel.
 */
export function emulatorPioOut(vcpu: X86Vcpu, size: number, port: number, data: Uint8Array, count: number): boolean {
  const kvm = vcpu.kvm;
  if (kvm.tracing) tracePio(vcpu, 1, port, size, count, data);
  let handled = true;
  for (let i = 0; i < count && handled; i++) handled = kvm.ioBusWrite(vcpu, KvmBus.PIO, port, size, data.subarray(i * size, (i + 1) * size));
  if (handled) return true;
  vcpu.runBytes.set(data.subarray(0, size * count), KVM_PIO_DATA_OFFSET);
  prepareUserspacePio(vcpu, port, size, count, false);
  return false;
}

/**
 * emulator_pio_in(): read `count` items from the in-kernel PIO bus into `data`; if no device
 * answers, set up a userspace exit (the data arrives on the next KVM_RUN). Returns true when
 * the data is already in `data`.
 */
export function emulatorPioIn(vcpu: X86Vcpu, size: number, port: number, data: Uint8Array, count: number): boolean {
  const kvm = vcpu.kvm;
  let handled = true;
  for (let i = 0; i < count && handled; i++) handled = kvm.ioBusRead(vcpu, KvmBus.PIO, port, size, data.subarray(i * size, (i + 1) * size));
  if (handled) {
    if (kvm.tracing) tracePio(vcpu, 0, port, size, count, data);
    return true;
  }
  prepareUserspacePio(vcpu, port, size, count, true);
  return false;
}

/** Merge an IN result of `size` bytes into RAX (8/16-bit keep the upper bits; 32-bit zero-extends). */
function writeRaxIn(vcpu: X86Vcpu, size: number, data: Uint8Array, off: number): void {
  const r = vcpu.arch.regs;
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = (v << 8) | data[off + i];
  if (size === 4) kvmRegisterWrite(vcpu, 0, v, 0);
  else if (size === 2) r[0] = (r[0] & ~0xffff) | (v & 0xffff);
  else r[0] = (r[0] & ~0xff) | (v & 0xff);
}

/** kvm_fast_pio(): IN/OUT (not string) with the port and size from the exit qualification. */
export function kvmFastPio(vcpu: X86Vcpu, size: number, port: number, isIn: boolean): ExitResult {
  const a = vcpu.arch;
  if (isIn) {
    if (emulatorPioIn(vcpu, size, port, pioScratch, 1)) {
      writeRaxIn(vcpu, size, pioScratch, 0);
      return kvmSkipEmulatedInstruction(vcpu);
    }
    a.completeUserspaceIo = CompleteUserspaceIo.FastPioIn;
    return ExitResult.ToUserspace;
  }
  raxBytes(vcpu, size, pioScratch);
  if (emulatorPioOut(vcpu, size, port, pioScratch, 1)) return kvmSkipEmulatedInstruction(vcpu);
  // RIP stays on the OUT until userspace has seen the exit (complete_fast_pio_out skips it).
  a.completeUserspaceIo = CompleteUserspaceIo.FastPioOut;
  return ExitResult.ToUserspace;
}

/** Handlers for the complete_userspace_io kinds owned by other modules (emulator, MSR, hypercall). */
export type CompleteFn = (vcpu: X86Vcpu) => ExitResult;
const completeHandlers: (CompleteFn | undefined)[] = [];

/** Register the completion of a userspace exit kind (called once by the module that owns it). */
export function registerCompleteUserspaceIo(kind: CompleteUserspaceIo, fn: CompleteFn): void {
  completeHandlers[kind] = fn;
}

/** vcpu->arch.complete_userspace_io(vcpu) */
function completeUserspaceIo(vcpu: X86Vcpu, kind: CompleteUserspaceIo): ExitResult {
  const a = vcpu.arch;
  switch (kind) {
    case CompleteUserspaceIo.FastPioOut:
      a.pio.count = 0;
      return kvmSkipEmulatedInstruction(vcpu);
    case CompleteUserspaceIo.FastPioIn: {
      const data = vcpu.runBytes.subarray(KVM_PIO_DATA_OFFSET, KVM_PIO_DATA_OFFSET + a.pio.size);
      if (vcpu.kvm.tracing) tracePio(vcpu, 0, a.pio.port, a.pio.size, 1, data);
      writeRaxIn(vcpu, a.pio.size, data, 0);
      a.pio.count = 0;
      return kvmSkipEmulatedInstruction(vcpu);
    }
    case CompleteUserspaceIo.EmulatedRdmsr:
    case CompleteUserspaceIo.EmulatedWrmsr:
      return completeEmulatedMsr(vcpu, kind === CompleteUserspaceIo.EmulatedRdmsr, kvmSkipEmulatedInstruction, (v) => kvmInjectGp(v, 0));
    default: {
      const fn = completeHandlers[kind];
      if (fn === undefined) throw new Error(`complete_userspace_io kind ${kind} has no handler`);
      return fn(vcpu);
    }
  }
}

/** Set up KVM_EXIT_INTERNAL_ERROR with a suberror and data words. */
export function kvmPrepareInternalError(vcpu: X86Vcpu, suberror: number, data: readonly number[]): ExitResult {
  const run = vcpu.arch.run;
  run.exitReason = K.KVM_EXIT_INTERNAL_ERROR;
  run.internalSuberror = suberror;
  const n = Math.min(data.length, 16);
  run.internalNdata = n;
  for (let i = 0; i < n; i++) run.setInternalData(i, BigInt.asUintN(64, BigInt(Math.trunc(data[i]))));
  return ExitResult.ToUserspace;
}

/** kvm_prepare_emulation_failure_exit(): suberror EMULATION with the instruction bytes (api.rst: KVM_INTERNAL_ERROR_EMULATION, flag INSTRUCTION_BYTES). */
export function kvmPrepareEmulationFailureExit(vcpu: X86Vcpu, insn: Uint8Array, insnLen: number): ExitResult {
  const run = vcpu.arch.run;
  vcpu.stat.insn_emulation_fail = vcpu.stat.insn_emulation_fail + 1;
  run.exitReason = K.KVM_EXIT_INTERNAL_ERROR;
  run.internalSuberror = K.KVM_INTERNAL_ERROR_EMULATION;
  // data[0] flags (KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES = 1), data[1] length, data[2..3] the bytes.
  run.internalNdata = 4;
  run.setInternalData(0, 1n);
  run.setInternalData(1, BigInt(insnLen));
  let lo = 0n;
  let hi = 0n;
  for (let i = 0; i < Math.min(insnLen, 16); i++) {
    if (i < 8) lo |= BigInt(insn[i]) << BigInt(8 * i);
    else hi |= BigInt(insn[i]) << BigInt(8 * (i - 8));
  }
  run.setInternalData(2, lo);
  run.setInternalData(3, hi);
  return ExitResult.ToUserspace;
}


// ----------------------------------------------------------------------------------------------
// The kvm_arch_* hooks
// ----------------------------------------------------------------------------------------------

/** kvm_vm_stats_desc[] (x86 part, KVM's names and kinds). */
export const X86_VM_STATS: readonly KvmStatDesc[] = [
  statCounter("mmu_shadow_zapped"), statCounter("mmu_pte_write"), statCounter("mmu_pde_zapped"),
  statCounter("mmu_flooded"), statCounter("mmu_recycled"), statCounter("mmu_cache_miss"), statICounter("mmu_unsync"),
  statICounter("pages_4k"), statICounter("pages_2m"), statICounter("pages_1g"), statICounter("nx_lpage_splits"),
  statPCounter("max_mmu_rmap_size"), statPCounter("max_mmu_page_hash_collisions"),
];

/** kvm_vcpu_stats_desc[] (x86 part). */
export const X86_VCPU_STATS: readonly KvmStatDesc[] = [
  statCounter("pf_taken"), statCounter("pf_fixed"), statCounter("pf_emulate"), statCounter("pf_spurious"),
  statCounter("pf_fast"), statCounter("pf_mmio_spte_created"), statCounter("pf_guest"), statCounter("tlb_flush"),
  statCounter("invlpg"), statCounter("exits"), statCounter("io_exits"), statCounter("mmio_exits"),
  statCounter("signal_exits"), statCounter("irq_window_exits"), statCounter("nmi_window_exits"), statCounter("l1d_flush"),
  statCounter("halt_exits"), statCounter("request_irq_exits"), statCounter("irq_exits"), statCounter("host_state_reload"),
  statCounter("fpu_reload"), statCounter("insn_emulation"), statCounter("insn_emulation_fail"), statCounter("hypercalls"),
  statCounter("irq_injections"), statCounter("nmi_injections"), statCounter("req_event"), statCounter("nested_run"),
  statCounter("directed_yield_attempted"), statCounter("directed_yield_successful"), statCounter("preemption_reported"),
  statCounter("preemption_other"), statIBoolean("guest_mode"), statCounter("notify_window_exits"),
];

/** KVM_CAP_* this x86 KVM implements beyond the generic ones (kvm_vm_ioctl_check_extension). */
const X86_CAPS: Record<number, number> = {
  [K.KVM_CAP_HLT]: 1,
  [K.KVM_CAP_SET_TSS_ADDR]: 1,
  [K.KVM_CAP_EXT_CPUID]: 1,
  [K.KVM_CAP_NOP_IO_DELAY]: 1,
  [K.KVM_CAP_MP_STATE]: 1,
  [K.KVM_CAP_SYNC_MMU]: 1,
  [K.KVM_CAP_USER_NMI]: 1,
  [K.KVM_CAP_SET_GUEST_DEBUG]: 1,
  [K.KVM_CAP_SET_IDENTITY_MAP_ADDR]: 1,
  [K.KVM_CAP_VCPU_EVENTS]: 1,
  [K.KVM_CAP_INTR_SHADOW]: 1,
  [K.KVM_CAP_DEBUGREGS]: 1,
  [K.KVM_CAP_X86_ROBUST_SINGLESTEP]: 1,
  [K.KVM_CAP_READONLY_MEM]: 1,
  [K.KVM_CAP_X86_USER_SPACE_MSR]: 1,
  [K.KVM_CAP_X86_MSR_FILTER]: 1,
  [K.KVM_CAP_EXIT_ON_EMULATION_FAILURE]: 1,
  [K.KVM_CAP_SREGS2]: 1,
  [K.KVM_CAP_IRQCHIP]: 1,
  [K.KVM_CAP_PIT2]: 1,
  [K.KVM_CAP_PIT_STATE2]: 1,
  [K.KVM_CAP_IRQ_ROUTING]: 4096,
  [K.KVM_CAP_IRQ_INJECT_STATUS]: 1,
  [K.KVM_CAP_IRQFD]: 1,
  [K.KVM_CAP_IRQFD_RESAMPLE]: 1,
  [K.KVM_CAP_IOEVENTFD]: 1,
  [K.KVM_CAP_SIGNAL_MSI]: 1,
  [K.KVM_CAP_REINJECT_CONTROL]: 1,
  [K.KVM_CAP_TSC_DEADLINE_TIMER]: 1,
  [K.KVM_CAP_GET_TSC_KHZ]: 1,
  [K.KVM_CAP_VCPU_ATTRIBUTES]: 1,
  [K.KVM_CAP_ADJUST_CLOCK]: KVM_CLOCK_VALID_FLAGS,
  [K.KVM_CAP_XSAVE]: 1,
  [K.KVM_CAP_XCRS]: 1,
  [K.KVM_CAP_XSAVE2]: KVM_XSAVE_SIZE,
};

export class X86KvmArch implements KvmArch {
  readonly name = "x86";
  /** kvm_run, the PIO data page and the coalesced-MMIO ring page. */
  readonly vcpuMmapSize = 3 * 4096;
  readonly vmStatDescs = X86_VM_STATS;
  readonly vcpuStatDescs = X86_VCPU_STATS;
  readonly ops: KvmX86Ops;
  private readonly supportedCpuid;

  constructor(private readonly opts: X86ArchOptions) {
    this.ops = opts.ops;
    this.supportedCpuid = kvmGetSupportedCpuid(opts.hostCpuid);
  }

  checkExtension(_kvm: KvmLike | null, cap: number): number {
    // kvm_caps.has_tsc_control: the vendor can program a TSC multiplier.
    if (cap === K.KVM_CAP_TSC_CONTROL) return this.ops.writeTscMultiplier !== undefined ? 1 : 0;
    return X86_CAPS[cap] ?? 0;
  }

  /** kvm_arch_dev_ioctl() */
  devIoctl(nr: number, arg: number | object): number | object {
    switch (nr) {
      case K.KVM_GET_MSR_INDEX_LIST:
        return kvmGetMsrIndexList(arg);
      case K.KVM_GET_SUPPORTED_CPUID: {
        const nent = (arg as { nent?: number }).nent ?? 0;
        if (nent < this.supportedCpuid.length) throw new KvmError(7, "KVM_GET_SUPPORTED_CPUID", `nent ${nent} < ${this.supportedCpuid.length}`);
        return { nent: this.supportedCpuid.length, entries: this.supportedCpuid.map((e) => ({ ...e, padding: [0, 0, 0] })) };
      }
      default:
        // x86's kvm_arch_dev_ioctl() answers an unknown request with EINVAL, not ENOTTY.
        throw new KvmError(EINVAL, `ioctl 0x${(nr >>> 0).toString(16)}`);
    }
  }

  /** kvm_arch_init_vm() */
  initVm(kvm: KvmLike, type: number): void {
    if (type !== 0) throw new KvmError(EINVAL, "KVM_CREATE_VM", `machine type ${type}`);
    const mmu = new TdpMmu(kvm.physmem, this.opts.pageAlloc, kvm.stat, this.opts.eptAdBits, this.ops.getMtMask(null, 0, false) || EPT_MT_MASK_WB);
    const arch = new KvmArchX86(this.ops, mmu, this.opts.pageAlloc);
    arch.vendor = this.opts.vendor;
    arch.pageAlloc = this.opts.pageAlloc;
    kvm.arch = arch;
    kvmClockInitVm(kvm as X86Kvm);
    arch.irqState = kvmIrqchipInitVm(kvm as X86Kvm);
    this.ops.vmInit?.(kvm);
  }

  /** kvm_arch_sync_events(): free the PIT (kvm_free_pit) before the core destroys the io buses. */
  syncEvents(kvm: KvmLike): void {
    kvmIrqchipDestroyVm(kvm as X86Kvm);
  }

  destroyVm(kvm: KvmLike): void {
    const x = kvm as X86Kvm;
    for (const v of x.arch.vcpus) this.ops.vcpuFree(v);
    x.arch.mmu.destroy();
    if (x.arch.emulatorBouncePfn >= 0) this.opts.pageAlloc.putPage(x.arch.emulatorBouncePfn);
    x.arch.emulatorBouncePfn = -1;
    // The emulator's processor leaves PhysMem's code-coherence registry with the VM.
    x.arch.emulatorCpu?.release();
    x.arch.emulatorCpu = null;
  }

  /** kvm_arch_vm_ioctl() */
  vmIoctl(kvm: KvmLike, nr: number, arg: number | object): number | object {
    const x = kvm as X86Kvm;
    const ir = kvmIrqchipVmIoctl(x, nr, arg);
    if (ir !== undefined) return ir;
    const cr = kvmClockVmIoctl(x, nr, arg);
    if (cr !== undefined) return cr;
    switch (nr) {
      case K.KVM_SET_TSS_ADDR: {
        const addr = Number(arg);
        // vmx_set_tss_addr(): the three pages must sit below 4 GiB.
        if (addr > 0xffffffff - 3 * 4096) throw new KvmError(EINVAL, "KVM_SET_TSS_ADDR", `0x${addr.toString(16)}`);
        x.arch.tssAddr = addr;
        return 0;
      }
      case K.KVM_SET_IDENTITY_MAP_ADDR: {
        if (x.arch.vcpus.length > 0) throw new KvmError(EINVAL, "KVM_SET_IDENTITY_MAP_ADDR", "vCPUs already created");
        const v = arg as { addr?: bigint | number } | number | bigint;
        x.arch.identityMapAddr = Number(typeof v === "object" ? v.addr ?? 0 : v);
        return 0;
      }
      case K.KVM_ENABLE_CAP:
        return this.enableCap(x, arg as { cap: number; flags: number; args: bigint[] });
      case K.KVM_X86_SET_MSR_FILTER:
        x.arch.msrFilter = kvmBuildMsrFilter(arg as KvmMsrFilter);
        for (const v of x.arch.vcpus) this.ops.msrFilterChanged?.(v);
        return 0;
      default:
        throw new KvmError(ENOTTY, `ioctl 0x${(nr >>> 0).toString(16)}`);
    }
  }

  /** kvm_vm_ioctl_enable_cap() (x86 part) */
  private enableCap(kvm: X86Kvm, cap: { cap: number; flags: number; args: bigint[] }): number {
    if (cap.flags !== 0) throw new KvmError(EINVAL, "KVM_ENABLE_CAP", "flags");
    switch (cap.cap) {
      case K.KVM_CAP_X86_USER_SPACE_MSR: {
        const mask = Number(cap.args[0] ?? 0n);
        if (mask & ~(K.KVM_MSR_EXIT_REASON_INVAL | K.KVM_MSR_EXIT_REASON_UNKNOWN | K.KVM_MSR_EXIT_REASON_FILTER)) throw new KvmError(EINVAL, "KVM_ENABLE_CAP", "KVM_CAP_X86_USER_SPACE_MSR reasons");
        kvm.arch.userSpaceMsrMask = mask;
        return 0;
      }
      case K.KVM_CAP_EXIT_ON_EMULATION_FAILURE:
        kvm.arch.exitOnEmulationFailure = (cap.args[0] ?? 0n) !== 0n;
        return 0;
      default:
        throw new KvmError(EINVAL, "KVM_ENABLE_CAP", `cap ${cap.cap}`);
    }
  }

  /** kvm_arch_vcpu_create() + kvm_vcpu_reset(vcpu, false) */
  vcpuCreate(vcpu: KvmVcpuLike): void {
    const v = vcpu as X86Vcpu;
    v.arch = new KvmVcpuArch(this.ops, vcpu.runBytes);
    // Without an in-kernel irqchip every vCPU starts runnable (kvm_arch_vcpu_create).
    v.arch.mpState = K.KVM_MP_STATE_RUNNABLE;
    this.ops.vcpuCreate(v);
    kvmFpuInitGuest(v);
    this.ops.vcpuReset(v, false);
    kvmCreateLapic(v);
    kvmMakeRequest(v, KVM_REQ_LOAD_MMU_PGD);
    v.kvm.arch.vcpus.push(v);
    kvmTscVcpuInit(v);
  }

  vcpuDestroy(vcpu: KvmVcpuLike): void {
    const v = vcpu as X86Vcpu;
    kvmFreeLapic(v);
    this.ops.vcpuFree(v);
    const list = v.kvm.arch.vcpus;
    const i = list.indexOf(v);
    if (i >= 0) list.splice(i, 1);
  }

  /** kvm_vcpu_kick(): a vCPU in the guest leaves it at the next instruction boundary (the reschedule IPI). */
  vcpuKick(vcpu: KvmVcpuLike): void {
    const v = vcpu as X86Vcpu;
    this.ops.kick?.(v);
  }

  vcpuIoctlRun(vcpu: KvmVcpuLike): number {
    return kvmArchVcpuIoctlRun(vcpu as X86Vcpu);
  }

  completeUserspaceIo(vcpu: KvmVcpuLike): number {
    return kvmArchCompleteUserspaceIo(vcpu as X86Vcpu);
  }

  vcpuIoctl(vcpu: KvmVcpuLike, nr: number, arg: number | object): number | object {
    const r = kvmLapicVcpuIoctl(vcpu as X86Vcpu, nr, arg) ?? kvmFpuVcpuIoctl(vcpu as X86Vcpu, nr, arg) ?? kvmTscVcpuIoctl(vcpu as X86Vcpu, nr, arg);
    if (r !== undefined) return r;
    return x86VcpuIoctl(vcpu as X86Vcpu, nr, arg, this.supportedCpuid);
  }

  commitMemoryRegion(kvm: KvmLike, old: KvmMemorySlot | null, next: KvmMemorySlot | null, change: KvmMrChange): void {
    kvmMmuCommitMemoryRegion(kvm as X86Kvm, old, next, change);
  }

  flushShadowMemslot(kvm: KvmLike, slot: KvmMemorySlot): void {
    kvmMmuFlushShadowMemslot(kvm as X86Kvm, slot);
  }

  unmapGfnRange(kvm: KvmLike, slot: KvmMemorySlot, startGfn: number, endGfn: number): boolean {
    return kvmMmuUnmapGfnRange(kvm as X86Kvm, slot, startGfn, endGfn);
  }

  enableLogDirtyPtMasked(kvm: KvmLike, slot: KvmMemorySlot, gfnOffset: number, mask: number): void {
    kvmMmuEnableLogDirtyPtMasked(kvm as X86Kvm, slot, gfnOffset, mask);
  }
}
