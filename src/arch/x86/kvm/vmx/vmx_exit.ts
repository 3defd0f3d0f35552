/**
 * VM-exit handling of arch/x86/kvm/vmx/vmx.c: `kvmVmxExitHandlers` (kvm_vmx_exit_handlers[]),
 * indexed by basic exit reason (SDM Vol. 3D Appendix C), and vmx_handle_exit() which dispatches
 * through it. Every handler returns ExitResult.Resume (re-enter the guest) or
 * ExitResult.ToUserspace (kvm_run has been filled in); an exit reason without a handler goes to
 * the one unexpected-exit path (KVM_EXIT_INTERNAL_ERROR, UNEXPECTED_EXIT_REASON).
 */

import * as V from "../../../../hw/x86/vmx/vmcs.js";
import * as R from "../../../../uapi/vmx.js";
import * as K from "../../../../uapi/kvm.js";
import { ExitResult } from "../kvm_x86_ops.js";
import {
  AC_VECTOR, BP_VECTOR, DB_VECTOR, MC_VECTOR, NMI_VECTOR, PF_VECTOR, SS_VECTOR, UD_VECTOR, KVM_REQ_EVENT, KVM_REQ_TLB_FLUSH_GUEST,
  X86_CR4_PCIDE, X86_EFLAGS_AC, kvmMakeRequest, kvmRegisterRead, kvmRipRead, type X86Vcpu,
} from "../kvm_host.js";
import { guestCpuidHas } from "../cpuid.js";
import { kvmTranslateGva, readGpa } from "../mmu/paging_tmpl.js";
import {
  kvmEmulateHalt, kvmFastPio, kvmInjectGp, kvmPrepareInternalError, kvmQueueException, kvmQueueExceptionE,
  kvmQueueExceptionP, kvmSkipEmulatedInstruction, kvmVcpuOnSpin,
} from "../x86.js";
import { kvmEmulateRdmsr, kvmEmulateWrmsr } from "../msr.js";
import { kvmGuestTsc } from "../tsc.js";
import { kvmMmuPageFault, PFERR_FETCH_MASK, PFERR_PRESENT_MASK, PFERR_RSVD_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK } from "../mmu/mmu.js";
import { RET_PF_EMULATE, RET_PF_INVALID, RET_PF_WRITE_PROTECTED } from "../mmu/tdp_mmu.js";
import { is64BitMode, kvmEmulateCpuid, kvmEmulateHypercall, kvmEmulateXsetbv, kvmHandleCrAccess, kvmHandleDrAccess } from "../x86_insn.js";
import { kvmEmulateStringPio } from "../emulate.js";
import { EMULATE_FAIL_RETRY, kvmEmulateMmio, kvmEmulateWriteProtected, kvmFastMmio } from "../emulate_mmio.js";
import { kvmTaskSwitch, TASK_SWITCH_GATE } from "../task_switch.js";
import { execControlsClearbit, growPleWindow, toVmx, vmcsRead } from "./vmx.js";
import { kvmShadowPageFault, kvmShadowUnprotectPage, RET_PF_GUEST, shadowFault } from "../mmu/shadow.js";

export type ExitHandler = (vcpu: X86Vcpu) => ExitResult;

const injectGp0 = (v: X86Vcpu): void => kvmInjectGp(v, 0);

/** kvm_handle_invalid_op(): the instruction is #UD for this guest. */
function handleInvalidOp(vcpu: X86Vcpu): ExitResult {
  kvmQueueException(vcpu, UD_VECTOR);
  return ExitResult.Resume;
}

/** handle_exception_nmi() */
function handleExceptionNmi(vcpu: X86Vcpu): ExitResult {
  const vmx = toVmx(vcpu);
  const a = vcpu.arch;
  const intrInfo = vmcsRead(vcpu, V.VM_EXIT_INTR_INFO) >>> 0;
  vmx.exitIntrInfo = intrInfo;
  const vector = intrInfo & V.INTR_INFO_VECTOR_MASK;
  const type = intrInfo & V.INTR_INFO_INTR_TYPE_MASK;
  // A host NMI or machine check was taken while the guest ran: the host handled it.
  if (type === V.INTR_TYPE_NMI_INTR && vector === NMI_VECTOR) return ExitResult.Resume;
  if (vector === MC_VECTOR) return ExitResult.Resume;
  const errorCode = (intrInfo & V.INTR_INFO_DELIVER_CODE_MASK) !== 0 ? vmcsRead(vcpu, V.VM_EXIT_INTR_ERROR_CODE) >>> 0 : -1;
  const run = a.run;
  switch (vector) {
    case UD_VECTOR:
      // handle_ud(): KVM's emulator would try the instruction; this processor has no more
      // instructions than the guest sees, so #UD goes back to the guest.
      return handleInvalidOp(vcpu);
    case DB_VECTOR: {
      const dr6 = vmcsRead(vcpu, V.EXIT_QUALIFICATION) >>> 0;
      if ((a.guestDebug & (K.KVM_GUESTDBG_SINGLESTEP | K.KVM_GUESTDBG_USE_HW_BP)) !== 0) {
        run.exitReason = K.KVM_EXIT_DEBUG;
        run.debugException = DB_VECTOR;
        run.debugDr6 = (dr6 | 0xffff0ff0) >>> 0;
        run.debugDr7 = vmcsRead(vcpu, V.GUEST_DR7) >>> 0;
        run.debugPc = kvmRipRead(vcpu) + vmcsRead(vcpu, V.GUEST_CS_BASE);
        return ExitResult.ToUserspace;
      }
      kvmQueueExceptionP(vcpu, DB_VECTOR, dr6);
      return ExitResult.Resume;
    }
    case BP_VECTOR:
      // INT3 with KVM_GUESTDBG_USE_SW_BP: userspace owns the breakpoint; RIP stays on the INT3.
      vmx.eventExitInstLen = vmcsRead(vcpu, V.VM_EXIT_INSTRUCTION_LEN);
      if ((a.guestDebug & K.KVM_GUESTDBG_USE_SW_BP) !== 0) {
        run.exitReason = K.KVM_EXIT_DEBUG;
        run.debugException = BP_VECTOR;
        run.debugPc = kvmRipRead(vcpu) + vmcsRead(vcpu, V.GUEST_CS_BASE);
        run.debugDr6 = 0;
        run.debugDr7 = 0;
        return ExitResult.ToUserspace;
      }
      kvmQueueException(vcpu, BP_VECTOR);
      return ExitResult.Resume;
    case AC_VECTOR:
      kvmQueueExceptionE(vcpu, AC_VECTOR, errorCode < 0 ? 0 : errorCode);
      return ExitResult.Resume;
    case PF_VECTOR:
      if (!vmx.ept) return handleShadowPageFault(vcpu, vmcsRead(vcpu, V.EXIT_QUALIFICATION), errorCode < 0 ? 0 : errorCode);
      break;
    default:
      break;
  }
  // Intercepted exceptions KVM has no use for are reported to userspace (KVM_EXIT_EXCEPTION).
  run.exitReason = K.KVM_EXIT_EXCEPTION;
  run.exException = vector;
  run.exErrorCode = errorCode < 0 ? 0 : errorCode;
  return ExitResult.ToUserspace;
}

/**
 * handle_exception_nmi()'s #PF case with shadow paging (kvm_handle_page_fault ->
 * kvm_mmu_page_fault -> FNAME(page_fault)): the guest's own fault is reflected with its error
 * code and CR2; otherwise the shadow entry is built, or the access is emulated (MMIO).
 */
function handleShadowPageFault(vcpu: X86Vcpu, la: number, errorCode: number): ExitResult {
  const a = vcpu.arch;
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_page_fault", { vcpu_id: vcpu.vcpuId, guest_rip: kvmRipRead(vcpu), fault_address: la, error_code: errorCode }, vcpu);
  const r = kvmShadowPageFault(vcpu, la, errorCode, a.ops.getCpl(vcpu), (a.ops.getRflags(vcpu) & X86_EFLAGS_AC) !== 0);
  if (r === RET_PF_GUEST) {
    kvmQueueExceptionP(vcpu, PF_VECTOR, la, shadowFault.errorCode);
    return ExitResult.Resume;
  }
  if (r === RET_PF_EMULATE) return emulateFault(vcpu, shadowFault.gpa, (errorCode & PFERR_WRITE_MASK) !== 0);
  if (r === RET_PF_WRITE_PROTECTED) return emulateWriteProtected(vcpu, shadowFault.gpa, shadowFault.selfChange);
  return ExitResult.Resume;
}

/**
 * kvm_mmu_page_fault()'s RET_PF_WRITE_PROTECTED: a store to a guest page table that the shadow
 * MMU write-tracks. It is emulated; if it cannot be (or it happened while delivering an event),
 * the page stops being shadowed and the guest retries it (kvm_mmu_unprotect_page) — unless the
 * store goes to a table of its own translation, which unprotecting would only rebuild
 * (write_fault_to_shadow_pgtable): then it fails like any emulation.
 */
function emulateWriteProtected(vcpu: X86Vcpu, gpa: number, selfChange: boolean): ExitResult {
  vcpu.stat.pf_emulate = vcpu.stat.pf_emulate + 1;
  if ((toVmx(vcpu).idtVectoringInfo & V.VECTORING_INFO_VALID_MASK) !== 0) {
    if (!selfChange && kvmShadowUnprotectPage(vcpu, gpa)) return ExitResult.Resume;
    return prepareEventVectoringExit(vcpu, gpa);
  }
  const r = kvmEmulateWriteProtected(vcpu, gpa, !selfChange);
  if (r !== EMULATE_FAIL_RETRY) return r;
  kvmShadowUnprotectPage(vcpu, gpa);
  return ExitResult.Resume;
}

/** handle_external_interrupt(): the host's timer or a kick; the run loop then checks for signals. */
function handleExternalInterrupt(vcpu: X86Vcpu): ExitResult {
  vcpu.stat.irq_exits = vcpu.stat.irq_exits + 1;
  return ExitResult.Resume;
}

/** handle_triple_fault() */
function handleTripleFault(vcpu: X86Vcpu): ExitResult {
  vcpu.arch.run.exitReason = K.KVM_EXIT_SHUTDOWN;
  return ExitResult.ToUserspace;
}

/** handle_interrupt_window() */
function handleInterruptWindow(vcpu: X86Vcpu): ExitResult {
  execControlsClearbit(vcpu, V.CPU_BASED_INTR_WINDOW_EXITING);
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
  vcpu.stat.irq_window_exits = vcpu.stat.irq_window_exits + 1;
  return ExitResult.Resume;
}

/** handle_nmi_window() */
function handleNmiWindow(vcpu: X86Vcpu): ExitResult {
  execControlsClearbit(vcpu, V.CPU_BASED_NMI_WINDOW_EXITING);
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
  vcpu.stat.nmi_window_exits = vcpu.stat.nmi_window_exits + 1;
  return ExitResult.Resume;
}

/**
 * handle_task_switch(): an event being delivered through a task gate is consumed by the switch
 * (its error code is pushed on the new task's stack); CALL/JMP/IRET/INT n are skipped first, so
 * the old task resumes after them.
 */
function handleTaskSwitch(vcpu: X86Vcpu): ExitResult {
  const a = vcpu.arch;
  const info = toVmx(vcpu).idtVectoringInfo;
  const idtValid = (info & V.VECTORING_INFO_VALID_MASK) !== 0;
  const type = info & V.VECTORING_INFO_TYPE_MASK;
  const q = vmcsRead(vcpu, V.EXIT_QUALIFICATION) >>> 0;
  const reason = q >>> 30;
  let hasErrorCode = false;
  let errorCode = 0;
  if (reason === TASK_SWITCH_GATE && idtValid) {
    switch (type) {
      case V.INTR_TYPE_NMI_INTR:
        a.nmiInjected = false;
        a.ops.setNmiMask(vcpu, true);
        break;
      case V.INTR_TYPE_EXT_INTR:
      case V.INTR_TYPE_SOFT_INTR:
        a.interrupt.injected = false;
        break;
      case V.INTR_TYPE_HARD_EXCEPTION:
      case V.INTR_TYPE_SOFT_EXCEPTION:
        if (type === V.INTR_TYPE_HARD_EXCEPTION && (info & V.VECTORING_INFO_DELIVER_CODE_MASK) !== 0) {
          hasErrorCode = true;
          errorCode = vmcsRead(vcpu, V.IDT_VECTORING_ERROR_CODE) >>> 0;
        }
        a.exception.injected = false;
        a.exception.pending = false;
        break;
      default:
        break;
    }
  }
  if (!idtValid || (type !== V.INTR_TYPE_HARD_EXCEPTION && type !== V.INTR_TYPE_EXT_INTR && type !== V.INTR_TYPE_NMI_INTR)) a.ops.skipEmulatedInstruction(vcpu);
  return kvmTaskSwitch(vcpu, q & 0xffff, type === V.INTR_TYPE_SOFT_INTR ? info & V.VECTORING_INFO_VECTOR_MASK : -1, reason, hasErrorCode, errorCode);
}

/** handle_io(): string I/O goes through the emulator, IN/OUT through kvm_fast_pio(). */
function handleIo(vcpu: X86Vcpu): ExitResult {
  const q = vmcsRead(vcpu, V.EXIT_QUALIFICATION) >>> 0;
  const size = (q & V.IO_QUAL_SIZE_MASK) + 1;
  const isIn = (q & V.IO_QUAL_IN) !== 0;
  const port = q >>> V.IO_QUAL_PORT_SHIFT;
  if ((q & V.IO_QUAL_STRING) !== 0) return kvmEmulateStringPio(vcpu, port, size, isIn, (q & V.IO_QUAL_REP) !== 0, vmcsRead(vcpu, V.GUEST_LINEAR_ADDRESS));
  return kvmFastPio(vcpu, size, port, isIn);
}

/** handle_cr() */
function handleCr(vcpu: X86Vcpu): ExitResult {
  return kvmHandleCrAccess(vcpu, vmcsRead(vcpu, V.EXIT_QUALIFICATION) >>> 0);
}

/** handle_dr() */
function handleDr(vcpu: X86Vcpu): ExitResult {
  return kvmHandleDrAccess(vcpu, vmcsRead(vcpu, V.EXIT_QUALIFICATION) >>> 0);
}

const skip = (v: X86Vcpu): ExitResult => kvmSkipEmulatedInstruction(v);

/** handle_rdmsr / handle_wrmsr */
const handleRdmsr: ExitHandler = (vcpu) => kvmEmulateRdmsr(vcpu, skip, injectGp0);
const handleWrmsr: ExitHandler = (vcpu) => kvmEmulateWrmsr(vcpu, skip, injectGp0);

/** RDTSC / RDTSCP when intercepted: the guest's TSC, scaled and offset as the VMCS would (SDM 26.6.5; tsc.ts). */
const tscScratch = new Int32Array(2);

function handleRdtsc(vcpu: X86Vcpu, rdtscp: boolean): ExitResult {
  const vmx = toVmx(vcpu);
  const tsc = kvmGuestTsc(vcpu);
  const hi = Math.floor(tsc / 4294967296);
  const r = vcpu.arch.regs;
  r[0] = (tsc - hi * 4294967296) | 0;
  r[1] = 0;
  r[4] = hi | 0;
  r[5] = 0;
  if (rdtscp) {
    vmx.pcpu.cpu.readMsr(0xc0000103, tscScratch);
    r[2] = tscScratch[0];
    r[3] = 0;
  }
  return kvmSkipEmulatedInstruction(vcpu);
}

/** handle_ept_violation(): exit qualification -> page-fault error code -> kvm_mmu_page_fault(). */
function handleEptViolation(vcpu: X86Vcpu): ExitResult {
  const q = vmcsRead(vcpu, V.EXIT_QUALIFICATION) >>> 0;
  const gpa = vmcsRead(vcpu, V.GUEST_PHYSICAL_ADDRESS);
  // An EPT violation while an IRET unblocked NMIs re-blocks them (SDM 28.2.3).
  if ((q & V.EPT_VIOLATION_NMI_UNBLOCKING) !== 0 && (toVmx(vcpu).idtVectoringInfo & V.VECTORING_INFO_VALID_MASK) === 0) {
    const info = vmcsRead(vcpu, V.GUEST_INTERRUPTIBILITY_INFO);
    toVmx(vcpu).pcpu.vmx.vmwrite(V.GUEST_INTERRUPTIBILITY_INFO, info | V.GUEST_INTR_STATE_NMI);
  }
  let err = (q & V.EPT_VIOLATION_ACC_READ) !== 0 ? PFERR_USER_MASK : 0;
  if ((q & V.EPT_VIOLATION_ACC_WRITE) !== 0) err |= PFERR_WRITE_MASK;
  if ((q & V.EPT_VIOLATION_ACC_INSTR) !== 0) err |= PFERR_FETCH_MASK;
  if ((q & (V.EPT_VIOLATION_PROT_READ | V.EPT_VIOLATION_PROT_WRITE | V.EPT_VIOLATION_PROT_EXEC)) !== 0) err |= PFERR_PRESENT_MASK;
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_page_fault", { vcpu_id: vcpu.vcpuId, guest_rip: kvmRipRead(vcpu), fault_address: gpa, error_code: err }, vcpu);
  return mmuFault(vcpu, gpa, err);
}

/** handle_ept_misconfig(): the MMIO SPTE fast path (straight to the emulator). */
function handleEptMisconfig(vcpu: X86Vcpu): ExitResult {
  const gpa = vmcsRead(vcpu, V.GUEST_PHYSICAL_ADDRESS);
  const fast = kvmFastMmio(vcpu, gpa);
  if (fast !== -1) return fast;
  return mmuFault(vcpu, gpa, PFERR_RSVD_MASK);
}

function mmuFault(vcpu: X86Vcpu, gpa: number, err: number): ExitResult {
  let r = kvmMmuPageFault(vcpu, gpa, err);
  if (r === RET_PF_INVALID) r = kvmMmuPageFault(vcpu, gpa, err & ~PFERR_RSVD_MASK);
  if (r === RET_PF_EMULATE) return emulateFault(vcpu, gpa, (err & PFERR_WRITE_MASK) !== 0);
  return ExitResult.Resume;
}

/** kvm_mmu_page_fault()'s RET_PF_EMULATE: the access at `gpa` goes through the emulator. */
function emulateFault(vcpu: X86Vcpu, gpa: number, write: boolean): ExitResult {
  vcpu.stat.pf_emulate = vcpu.stat.pf_emulate + 1;
  // The access was part of delivering an event (IDT-vectoring info valid): the instruction at
  // RIP is not the one that accessed MMIO, so it cannot be emulated (kvm_mmu_page_fault ->
  // kvm_prepare_event_vectoring_exit).
  if ((toVmx(vcpu).idtVectoringInfo & V.VECTORING_INFO_VALID_MASK) !== 0) return prepareEventVectoringExit(vcpu, gpa);
  return kvmEmulateMmio(vcpu, gpa, write);
}

/** kvm_prepare_event_vectoring_exit(): KVM_INTERNAL_ERROR_DELIVERY_EV with [vectoring info, exit reason, qualification, gpa, cpu]. */
function prepareEventVectoringExit(vcpu: X86Vcpu, gpa: number): ExitResult {
  const vmx = toVmx(vcpu);
  return kvmPrepareInternalError(vcpu, K.KVM_INTERNAL_ERROR_DELIVERY_EV, [vmx.idtVectoringInfo, vmx.exitReason, vmcsRead(vcpu, V.EXIT_QUALIFICATION), gpa, 0]);
}

/** handle_preemption_timer(): the VMX-preemption timer only bounds the time slice here. */
function handlePreemptionTimer(_vcpu: X86Vcpu): ExitResult {
  return ExitResult.Resume;
}

/** handle_rdpmc(): no virtual PMU, so every counter index is invalid (#GP, SDM RDPMC). */
function handleRdpmc(vcpu: X86Vcpu): ExitResult {
  kvmInjectGp(vcpu, 0);
  return ExitResult.Resume;
}

/** handle_invlpg(): flush the guest translation (only with INVLPG exiting; not used with EPT). */
function handleInvlpg(vcpu: X86Vcpu): ExitResult {
  vcpu.stat.invlpg = vcpu.stat.invlpg + 1;
  vcpu.arch.ops.flushTlbGva(vcpu, vmcsRead(vcpu, V.EXIT_QUALIFICATION));
  return kvmSkipEmulatedInstruction(vcpu);
}

const invpcidDesc = new Uint8Array(16);
const invpcidView = new DataView(invpcidDesc.buffer);

/**
 * get_vmx_mem_address(): the linear address of the memory operand of an instruction whose
 * VM-exit instruction information has the INVEPT/INVPCID/INVVPID format (SDM Table 28-10:
 * scaling 1:0, address size 9:7, segment 17:15, index 21:18 (+22 invalid), base 26:23 (+27
 * invalid)); the displacement is the exit qualification. Returns NaN after queuing #GP/#SS for
 * a non-canonical 64-bit address.
 */
function getVmxMemAddress(vcpu: X86Vcpu, qual: number, info: number): number {
  const scale = info & 3;
  const asz = (info >>> 7) & 7;
  const seg = (info >>> 15) & 7;
  const index = (info >>> 18) & 0xf;
  const base = (info >>> 23) & 0xf;
  const long64 = is64BitMode(vcpu);
  let off = qual;
  if (((info >>> 27) & 1) === 0) off += kvmRegisterRead(vcpu, base);
  if (((info >>> 22) & 1) === 0) off += kvmRegisterRead(vcpu, index) * (1 << scale);
  if (asz === 2) off = ((off % 2 ** 64) + 2 ** 64) % 2 ** 64;
  else if (asz === 1) off = off >>> 0;
  else off &= 0xffff;
  if (long64) {
    const la = (seg >= 4 ? vcpu.arch.ops.getSegmentBase(vcpu, seg) : 0) + off;
    const sla = la >= 2 ** 63 ? la - 2 ** 64 : la;
    if (sla < -(2 ** 47) || sla >= 2 ** 47) {
      if (seg === 2) kvmQueueExceptionE(vcpu, SS_VECTOR, 0);
      else kvmInjectGp(vcpu, 0);
      return NaN;
    }
    return la;
  }
  return (vcpu.arch.ops.getSegmentBase(vcpu, seg) + off) >>> 0;
}

/**
 * handle_invpcid() / kvm_handle_invpcid(): INVPCID with INVLPG exiting (shadow paging). The type
 * is in the register operand, the 16-byte descriptor (PCID, linear address) in memory (SDM Vol.
 * 2 INVPCID): individual-address and single-context invalidations flush the guest translations
 * they name, the all-context types flush everything; a bad type, reserved descriptor bits, a
 * non-zero PCID without CR4.PCIDE or a non-canonical address are #GP(0).
 */
function handleInvpcid(vcpu: X86Vcpu): ExitResult {
  if (!guestCpuidHas(vcpu, 7, 0, "ebx", 10)) return handleInvalidOp(vcpu);
  const info = vmcsRead(vcpu, V.VMX_INSTRUCTION_INFO) >>> 0;
  const type = kvmRegisterRead(vcpu, (info >>> 28) & 0xf) % 2 ** (is64BitMode(vcpu) ? 64 : 32);
  if (type > 3) {
    kvmInjectGp(vcpu, 0);
    return ExitResult.Resume;
  }
  const la = getVmxMemAddress(vcpu, vmcsRead(vcpu, V.EXIT_QUALIFICATION), info);
  if (Number.isNaN(la)) return ExitResult.Resume;
  for (let i = 0; i < 2; i++) {
    const t = kvmTranslateGva(vcpu, la + i * 8, false, vcpu.arch.ops.getCpl(vcpu) === 3);
    if (!t.valid) {
      kvmQueueExceptionP(vcpu, PF_VECTOR, la + i * 8, t.errorCode);
      return ExitResult.Resume;
    }
    if (!readGpa(vcpu, t.gpa, invpcidDesc.subarray(i * 8), 8)) return kvmPrepareInternalError(vcpu, K.KVM_INTERNAL_ERROR_EMULATION, [R.EXIT_REASON_INVPCID, la]);
  }
  const pcidLo = invpcidView.getUint32(0, true);
  const pcidHi = invpcidView.getUint32(4, true);
  const gla = invpcidView.getUint32(12, true) * 4294967296 + invpcidView.getUint32(8, true);
  const pcidEnabled = (vcpu.arch.cr4 & X86_CR4_PCIDE) !== 0;
  const pcid = pcidLo & 0xfff;
  if ((pcidLo & ~0xfff) !== 0 || pcidHi !== 0) {
    kvmInjectGp(vcpu, 0);
    return ExitResult.Resume;
  }
  switch (type) {
    case 0: {
      const sgla = gla >= 2 ** 63 ? gla - 2 ** 64 : gla;
      if ((!pcidEnabled && pcid !== 0) || sgla < -(2 ** 47) || sgla >= 2 ** 47) {
        kvmInjectGp(vcpu, 0);
        return ExitResult.Resume;
      }
      vcpu.arch.ops.flushTlbGva(vcpu, gla);
      break;
    }
    case 1:
      if (!pcidEnabled && pcid !== 0) {
        kvmInjectGp(vcpu, 0);
        return ExitResult.Resume;
      }
      kvmMakeRequest(vcpu, KVM_REQ_TLB_FLUSH_GUEST);
      break;
    default:
      kvmMakeRequest(vcpu, KVM_REQ_TLB_FLUSH_GUEST);
      break;
  }
  return kvmSkipEmulatedInstruction(vcpu);
}

/** CPL-checked instructions that only need to be skipped (INVD, WBINVD: no host caches to manage). */
function handleSkip(vcpu: X86Vcpu): ExitResult {
  return kvmSkipEmulatedInstruction(vcpu);
}

/**
 * handle_pause(): a PAUSE-loop exit (or PAUSE exiting) means the vCPU spins waiting for another:
 * grow its PLE window and give the host CPU to a vCPU that can run (kvm_vcpu_on_spin).
 */
function handlePause(vcpu: X86Vcpu): ExitResult {
  if ((vcpu.kvm.arch.disabledExits & K.KVM_X86_DISABLE_EXITS_PAUSE) === 0) growPleWindow(vcpu);
  kvmVcpuOnSpin(vcpu);
  return kvmSkipEmulatedInstruction(vcpu);
}

/** handle_monitor_trap(): the MTF exit only returns control to KVM (it is armed for instruction stepping). */
function handleMonitorTrap(_vcpu: X86Vcpu): ExitResult {
  return ExitResult.Resume;
}

/** The exit handlers (kvm_vmx_exit_handlers[]). */
export const kvmVmxExitHandlers: Partial<Record<number, ExitHandler>> = {
  [R.EXIT_REASON_EXCEPTION_NMI]: handleExceptionNmi,
  [R.EXIT_REASON_EXTERNAL_INTERRUPT]: handleExternalInterrupt,
  [R.EXIT_REASON_TRIPLE_FAULT]: handleTripleFault,
  [R.EXIT_REASON_INTERRUPT_WINDOW]: handleInterruptWindow,
  [R.EXIT_REASON_NMI_WINDOW]: handleNmiWindow,
  [R.EXIT_REASON_TASK_SWITCH]: handleTaskSwitch,
  [R.EXIT_REASON_CPUID]: kvmEmulateCpuid,
  [R.EXIT_REASON_HLT]: kvmEmulateHalt,
  [R.EXIT_REASON_INVD]: handleSkip,
  [R.EXIT_REASON_INVLPG]: handleInvlpg,
  [R.EXIT_REASON_INVPCID]: handleInvpcid,
  [R.EXIT_REASON_RDPMC]: handleRdpmc,
  [R.EXIT_REASON_RDTSC]: (v) => handleRdtsc(v, false),
  [R.EXIT_REASON_RDTSCP]: (v) => handleRdtsc(v, true),
  [R.EXIT_REASON_VMCALL]: kvmEmulateHypercall,
  [R.EXIT_REASON_CR_ACCESS]: handleCr,
  [R.EXIT_REASON_DR_ACCESS]: handleDr,
  [R.EXIT_REASON_IO_INSTRUCTION]: handleIo,
  [R.EXIT_REASON_MSR_READ]: handleRdmsr,
  [R.EXIT_REASON_MSR_WRITE]: handleWrmsr,
  [R.EXIT_REASON_MWAIT_INSTRUCTION]: handleInvalidOp,
  [R.EXIT_REASON_MONITOR_INSTRUCTION]: handleInvalidOp,
  [R.EXIT_REASON_MONITOR_TRAP_FLAG]: handleMonitorTrap,
  [R.EXIT_REASON_PAUSE_INSTRUCTION]: handlePause,
  [R.EXIT_REASON_EPT_VIOLATION]: handleEptViolation,
  [R.EXIT_REASON_EPT_MISCONFIG]: handleEptMisconfig,
  [R.EXIT_REASON_WBINVD]: handleSkip,
  [R.EXIT_REASON_XSETBV]: kvmEmulateXsetbv,
  [R.EXIT_REASON_PREEMPTION_TIMER]: handlePreemptionTimer,
  [R.EXIT_REASON_RDRAND]: handleInvalidOp,
  [R.EXIT_REASON_RDSEED]: handleInvalidOp,
  // No nested VMX: the VMX instructions are #UD in the guest (handle_vmx_instruction).
  [R.EXIT_REASON_VMCLEAR]: handleInvalidOp,
  [R.EXIT_REASON_VMLAUNCH]: handleInvalidOp,
  [R.EXIT_REASON_VMPTRLD]: handleInvalidOp,
  [R.EXIT_REASON_VMPTRST]: handleInvalidOp,
  [R.EXIT_REASON_VMREAD]: handleInvalidOp,
  [R.EXIT_REASON_VMRESUME]: handleInvalidOp,
  [R.EXIT_REASON_VMWRITE]: handleInvalidOp,
  [R.EXIT_REASON_VMOFF]: handleInvalidOp,
  [R.EXIT_REASON_VMON]: handleInvalidOp,
  [R.EXIT_REASON_INVEPT]: handleInvalidOp,
  [R.EXIT_REASON_INVVPID]: handleInvalidOp,
  [R.EXIT_REASON_VMFUNC]: handleInvalidOp,
};

/** vmx_handle_exit() / __vmx_handle_exit() */
export function vmxHandleExit(vcpu: X86Vcpu, _fastpath: number): ExitResult {
  const vmx = toVmx(vcpu);
  const run = vcpu.arch.run;
  if (vmx.fail) {
    // VMLAUNCH/VMRESUME failed (VMfailValid): report the VM-instruction error.
    run.exitReason = K.KVM_EXIT_FAIL_ENTRY;
    run.failEntryHardwareEntryFailureReason = vmcsRead(vcpu, V.VM_INSTRUCTION_ERROR) >>> 0;
    run.failEntryCpu = 0;
    return ExitResult.ToUserspace;
  }
  if (vmx.emulationRequired && !vmx.ept) {
    // handle_invalid_guest_state(): real mode without unrestricted guest (ept=0) would need the
    // emulator to run the guest; this KVM refuses instead of running it wrongly.
    return kvmPrepareInternalError(vcpu, K.KVM_INTERNAL_ERROR_EMULATION, [0, vcpu.arch.cr0]);
  }
  const reason = vmx.exitReason;
  if ((reason & R.VMX_EXIT_REASONS_FAILED_VMENTRY) !== 0) {
    run.exitReason = K.KVM_EXIT_FAIL_ENTRY;
    run.failEntryHardwareEntryFailureReason = reason >>> 0;
    run.failEntryCpu = 0;
    return ExitResult.ToUserspace;
  }
  const basic = reason & V.VMX_EXIT_REASON_BASIC_MASK;
  const handler = kvmVmxExitHandlers[basic];
  if (handler === undefined) {
    // vmx_handle_exit(): unexpected exit reason.
    return kvmPrepareInternalError(vcpu, K.KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, [reason, 0]);
  }
  return handler(vcpu);
}
