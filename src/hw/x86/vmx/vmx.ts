/**
 * VMX operation as the host (root operation, CPL 0) sees it: the VMX instructions of SDM Vol. 3C
 * ch. 31, VM entry (ch. 26) and VM exit (ch. 28), one `VmxRoot` per logical processor.
 *
 * KVM's vmx code calls these methods where Linux executes the instructions (`vmcs_write32()` ->
 * `vmwrite()`, `__vmx_vcpu_run()` -> `vmlaunch()`/`vmresume()`):
 *
 *   const vmx = new VmxRoot(cpu);
 *   vmx.vmxon(vmxonRegionHpa);            // region: 4 KiB, first dword = IA32_VMX_BASIC[30:0]
 *   vmx.vmclear(vmcsHpa); vmx.vmptrld(vmcsHpa);
 *   vmx.vmwrite(GUEST_RIP, 0x1000); ...
 *   // guest GPRs other than RSP are the processor's: cpu.state.gpr, as after __vmx_vcpu_run's pushes/pops
 *   if (vmx.vmlaunch() === VMX_SUCCEED) reason = vmx.vmread(VM_EXIT_REASON);
 *
 * Every instruction returns VMX_SUCCEED, VMX_FAIL_INVALID (no current VMCS) or VMX_FAIL_VALID
 * (VM_INSTRUCTION_ERROR holds the number) and leaves the same in `status`. VMREAD returns the
 * value and sets `status`. VMLAUNCH/VMRESUME return VMX_SUCCEED once the guest has run and a VM
 * exit (or a VM-entry failure, reason bit 31) is recorded in the VMCS.
 *
 * The host does not execute on the emulated core, so the conditions that make VMX instructions
 * #UD/#GP in root operation at CPL 0 (CR4.VMXE, IA32_FEATURE_CONTROL, CPL) cannot arise except
 * "outside VMX operation", which throws `VmxUsageError` (a host bug, like #UD in the kernel).
 *
 * Around a VM entry the register file is shared as on hardware: RSP/RIP/RFLAGS, control, segment
 * and descriptor-table registers come from the VMCS; every other GPR, CR2, DR0-DR3/DR6 and XCR0
 * are whatever the caller left in `cpu.state` (and hold the guest's values after the exit).
 * A VM exit loads the host-state fields into `cpu.state` but the host never runs on the core.
 *
 * Host interrupts: the guest runs `sliceInsns` instructions per entry at most; then the host
 * timer is an external-interrupt exit (vector HOST_TIMER_VECTOR with "acknowledge interrupt on
 * exit"); `cpu.hostIrq[0] != 0` (a kick from another thread) is one with HOST_KICK_VECTOR, and
 * acknowledging it clears hostIrq[0] (without acknowledge the host must clear it). A guest in
 * the HLT state with nothing to wake it also ends the entry with a host-timer exit.
 *
 * Not implemented, hence not advertised (entry with them set fails with
 * VMXERR_ENTRY_INVALID_CONTROL_FIELD): TPR shadow and APIC virtualization, posted interrupts,
 * PML, VMCS shadowing, VM functions, PAUSE-loop exiting, XSAVES/XRSTORS enabling, TSC scaling,
 * the wait-for-SIPI and shutdown activity states, INS/OUTS instruction information, SMM.
 */
import type { PhysMem } from "../../physmem.js";
import type { X86State } from "../state.js";
import { ActivityState, INTR_BLOCKING_MOV_SS } from "../state.js";
import { VMEXIT, type VmxNonRoot } from "./hooks.js";
import {
  VmcsCache, vmcsSlot, setRegionLaunchState, vmcsFieldWidth, vmcsFieldType, validRegionPointer, regionRevision,
  VMCS_REVISION_ID, VMCS_FIELD_WIDTH_U16, VMCS_FIELD_WIDTH_U32, VMCS_FIELD_WIDTH_U64, VMCS_FIELD_TYPE_EXIT_INFO,
  VMCS_FIELD_ACCESS_HIGH, VM_INSTRUCTION_ERROR, VM_EXIT_REASON, EXIT_QUALIFICATION, VM_EXIT_INTR_INFO,
  VM_EXIT_INTR_ERROR_CODE, IDT_VECTORING_INFO_FIELD, IDT_VECTORING_ERROR_CODE, VM_EXIT_INSTRUCTION_LEN,
  VM_ENTRY_INTR_INFO_FIELD, VM_ENTRY_EXCEPTION_ERROR_CODE, VM_ENTRY_INSTRUCTION_LEN, GUEST_RFLAGS, GUEST_PDPTR0, GUEST_PENDING_DBG_EXCEPTIONS,
  DEBUG_PENDING_B0_3, DEBUG_PENDING_ENABLED_BP, DEBUG_PENDING_BS,
  VM_EXIT_CONTROLS, VM_ENTRY_MSR_LOAD_COUNT, VM_ENTRY_MSR_LOAD_ADDR, VM_EXIT_MSR_STORE_COUNT,
  VM_EXIT_MSR_STORE_ADDR, VM_EXIT_MSR_LOAD_COUNT, VM_EXIT_MSR_LOAD_ADDR, EPT_POINTER, VIRTUAL_PROCESSOR_ID,
  VMX_PREEMPTION_TIMER_VALUE, PIN_BASED_VM_EXEC_CONTROL, VM_EXIT_ACK_INTR_ON_EXIT, VM_EXIT_SAVE_VMX_PREEMPTION_TIMER, PIN_BASED_VMX_PREEMPTION_TIMER,
  SECONDARY_EXEC_ENABLE_EPT, SECONDARY_EXEC_ENABLE_VPID,
  INTR_INFO_VALID_MASK, INTR_INFO_DELIVER_CODE_MASK, INTR_TYPE_EXT_INTR, INTR_TYPE_SOFT_INTR, INTR_TYPE_HARD_EXCEPTION,
  INTR_TYPE_PRIV_SW_EXCEPTION, INTR_TYPE_SOFT_EXCEPTION, INTR_TYPE_OTHER_EVENT,
  VMXERR_VMCLEAR_INVALID_ADDRESS, VMXERR_VMCLEAR_VMXON_POINTER, VMXERR_VMLAUNCH_NONCLEAR_VMCS,
  VMXERR_VMRESUME_NONLAUNCHED_VMCS, VMXERR_VMPTRLD_INVALID_ADDRESS, VMXERR_VMPTRLD_VMXON_POINTER,
  VMXERR_VMPTRLD_INCORRECT_VMCS_REVISION_ID, VMXERR_UNSUPPORTED_VMCS_COMPONENT,
  VMXERR_VMWRITE_READ_ONLY_VMCS_COMPONENT, VMXERR_VMXON_IN_VMX_ROOT_OPERATION,
  VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID, VMX_EXIT_REASON_BASIC_MASK,
  VMX_EPT_EXTENT_CONTEXT, VMX_EPT_EXTENT_GLOBAL, VMX_VPID_EXTENT_INDIVIDUAL_ADDR, VMX_VPID_EXTENT_SINGLE_CONTEXT,
  VMX_VPID_EXTENT_ALL_CONTEXT, VMX_VPID_EXTENT_SINGLE_NON_GLOBAL,
} from "./vmcs.js";
import {
  EXIT_REASON_INVALID_STATE, EXIT_REASON_MSR_LOAD_FAIL, EXIT_REASON_EXTERNAL_INTERRUPT,
  EXIT_REASON_MONITOR_TRAP_FLAG, VMX_EXIT_REASONS_FAILED_VMENTRY,
} from "../../../uapi/vmx.js";
import { VMX_MISC_PREEMPTION_TIMER_RATE } from "./caps.js";
import { checkControls, checkHostState, checkGuestState, loadGuestState, loadGuestPdptes, loadMsrArea, storeMsrArea, secondaryControls } from "./entry.js";
import { saveGuestState, loadHostState } from "./exit.js";
import { Ept, eptpValid } from "./ept.js";
import { NonRoot } from "./nonroot.js";

/** What VMX needs of the CPU core (a subset of X86Cpu, src/hw/x86/cpu.ts). */
export interface VmxCpu {
  readonly physmem: PhysMem;
  readonly state: X86State;
  vmx: VmxNonRoot | null;
  readonly hostIrq: Int32Array;
  /** RIP of the first byte of the instruction being executed (or of the event being delivered). */
  curRip: number;
  getRflags(): number;
  setRflags(v: number): void;
  stateChanged(): void;
  run(maxInsns: number): number;
  deliverEvent(vector: number, type: number, errorCode: number, insnLen: number): void;
  tlbFlushAll(): void;
  tlbFlushNonGlobal(): void;
  tlbFlushPage(linearAddr: number): void;
  readMsr(msr: number, out: Int32Array): boolean;
  writeMsr(msr: number, lo: number, hi: number): boolean;
  /** Raise an exception in the current instruction (unwinds to the core's run loop). */
  raise(vector: number, errorCode: number): never;
}

export const VMX_SUCCEED = 0;
export const VMX_FAIL_INVALID = 1;
export const VMX_FAIL_VALID = 2;

/** Host interrupt vectors reported with "acknowledge interrupt on exit" (Linux's LOCAL_TIMER_VECTOR, RESCHEDULE_VECTOR). */
export const HOST_TIMER_VECTOR = 0xec;
export const HOST_KICK_VECTOR = 0xfd;

/** A VMX instruction used where the SDM says #UD (outside VMX operation): a bug in the host. */
export class VmxUsageError extends Error {}

/** A VMX abort (SDM 28.7): the processor shut down after a failure during a VM exit. */
export class VmxAbortError extends Error {}

/** VMX-abort indicator values (SDM 28.7). */
export const VMX_ABORT_SAVE_GUEST_MSR_FAIL = 1;
export const VMX_ABORT_LOAD_HOST_PDPTE_FAIL = 2;
export const VMX_ABORT_LOAD_HOST_MSR_FAIL = 4;

export interface VmxRootOptions {
  /** Guest instructions per VM entry before the host's timer tick forces an external-interrupt exit. */
  sliceInsns?: number;
}

const TWO32 = 4294967296;

export class VmxRoot {
  readonly cpu: VmxCpu;
  readonly physmem: PhysMem;
  readonly vmcs = new VmcsCache();
  readonly ept: Ept;
  readonly nonRoot: NonRoot;
  sliceInsns: number;
  /** Result of the last VMX instruction (VMX_SUCCEED / VMX_FAIL_*). */
  status = VMX_SUCCEED;
  inVmxOperation = false;
  vmxonPtr = -1;

  // TLB tagging: the (VPID, EPTP) the CPU's TLB entries were made under; -2 = unknown.
  private tlbVpid = -2;
  private tlbEptp = -2;
  private readonly tmp = new Int32Array(2);
  private readonly readMsrFn: (msr: number, out: Int32Array) => boolean;
  private readonly writeMsrFn: (msr: number, lo: number, hi: number) => boolean;

  constructor(cpu: VmxCpu, opts: VmxRootOptions = {}) {
    this.cpu = cpu;
    this.physmem = cpu.physmem;
    this.ept = new Ept(cpu.physmem);
    this.nonRoot = new NonRoot(this);
    this.sliceInsns = opts.sliceInsns ?? 1_000_000;
    this.readMsrFn = (m, o) => cpu.readMsr(m, o);
    this.writeMsrFn = (m, lo, hi) => cpu.writeMsr(m, lo, hi);
  }

  // ---- status helpers (SDM 31.2 conventions) ----
  private succeed(): number { return (this.status = VMX_SUCCEED); }
  private failInvalid(): number { return (this.status = VMX_FAIL_INVALID); }
  private failValid(err: number): number {
    this.vmcs.w32(VM_INSTRUCTION_ERROR, err);
    return (this.status = VMX_FAIL_VALID);
  }
  /** VMfail: VMfailValid if there is a current VMCS, else VMfailInvalid. */
  private fail(err: number): number {
    return this.vmcs.hpa >= 0 ? this.failValid(err) : this.failInvalid();
  }
  private requireVmx(insn: string): void {
    if (!this.inVmxOperation) throw new VmxUsageError(`${insn} outside VMX operation (#UD)`);
  }

  /** VMXON (SDM 31): enter VMX root operation with the VMXON region at `regionHpa`. */
  vmxon(regionHpa: number): number {
    if (this.inVmxOperation) return this.fail(VMXERR_VMXON_IN_VMX_ROOT_OPERATION);
    if (!validRegionPointer(this.physmem, regionHpa)) return this.failInvalid();
    if (regionRevision(this.physmem, regionHpa) !== VMCS_REVISION_ID) return this.failInvalid();
    this.inVmxOperation = true;
    this.vmxonPtr = regionHpa;
    this.vmcs.hpa = -1;
    return this.succeed();
  }

  /** VMXOFF: leave VMX operation; the current VMCS is written back to memory. */
  vmxoff(): number {
    this.requireVmx("VMXOFF");
    this.vmcs.store(this.physmem);
    this.vmcs.hpa = -1;
    this.inVmxOperation = false;
    this.vmxonPtr = -1;
    return this.succeed();
  }

  /** VMCLEAR: write the VMCS at `hpa` back to memory, mark it clear, and make it not current. */
  vmclear(hpa: number): number {
    this.requireVmx("VMCLEAR");
    if (!validRegionPointer(this.physmem, hpa)) return this.fail(VMXERR_VMCLEAR_INVALID_ADDRESS);
    if (hpa === this.vmxonPtr) return this.fail(VMXERR_VMCLEAR_VMXON_POINTER);
    if (hpa === this.vmcs.hpa) {
      this.vmcs.launched = false;
      this.vmcs.store(this.physmem);
      this.vmcs.hpa = -1;
    } else {
      setRegionLaunchState(this.physmem, hpa, false);
    }
    return this.succeed();
  }

  /** VMPTRLD: make the VMCS at `hpa` current. */
  vmptrld(hpa: number): number {
    this.requireVmx("VMPTRLD");
    if (!validRegionPointer(this.physmem, hpa)) return this.fail(VMXERR_VMPTRLD_INVALID_ADDRESS);
    if (hpa === this.vmxonPtr) return this.fail(VMXERR_VMPTRLD_VMXON_POINTER);
    if (regionRevision(this.physmem, hpa) !== VMCS_REVISION_ID) return this.fail(VMXERR_VMPTRLD_INCORRECT_VMCS_REVISION_ID);
    if (hpa !== this.vmcs.hpa) {
      this.vmcs.store(this.physmem);
      this.vmcs.load(this.physmem, hpa);
    }
    return this.succeed();
  }

  /** VMPTRST: the current-VMCS pointer, all ones (-1) if there is none. */
  vmptrst(): number {
    this.requireVmx("VMPTRST");
    this.succeed();
    return this.vmcs.hpa;
  }

  /** Slot of `field` for VMREAD/VMWRITE, or -1 after failing the instruction. */
  private accessSlot(field: number): number {
    if (this.vmcs.hpa < 0) { this.failInvalid(); return -1; }
    const full = field & ~VMCS_FIELD_ACCESS_HIGH;
    const slot = (field & VMCS_FIELD_ACCESS_HIGH) && vmcsFieldWidth(field) !== VMCS_FIELD_WIDTH_U64 ? -1 : vmcsSlot(full);
    if (slot < 0 || field >>> 15 !== 0) { this.failValid(VMXERR_UNSUPPORTED_VMCS_COMPONENT); return -1; }
    return slot;
  }

  /**
   * VMREAD as a number: 16/32-bit fields unsigned; 64-bit and natural-width fields exact for
   * physical and canonical addresses (use vmread64 for arbitrary 64-bit values); the "high"
   * encoding of a 64-bit field gives its upper 32 bits. Returns 0 on failure (see `status`).
   */
  vmread(field: number): number {
    this.requireVmx("VMREAD");
    const slot = this.accessSlot(field);
    if (slot < 0) return 0;
    const d = this.vmcs.data;
    this.succeed();
    if (field & VMCS_FIELD_ACCESS_HIGH) return d[2 * slot + 1] >>> 0;
    const w = vmcsFieldWidth(field);
    if (w === VMCS_FIELD_WIDTH_U16 || w === VMCS_FIELD_WIDTH_U32) return d[2 * slot] >>> 0;
    return d[2 * slot + 1] * TWO32 + (d[2 * slot] >>> 0);
  }

  /** VMREAD of any field into out[0] (low 32 bits) and out[1] (high 32 bits). */
  vmread64(field: number, out: Int32Array): number {
    this.requireVmx("VMREAD");
    const slot = this.accessSlot(field);
    if (slot < 0) return this.status;
    const d = this.vmcs.data;
    if (field & VMCS_FIELD_ACCESS_HIGH) { out[0] = d[2 * slot + 1]; out[1] = 0; } else { out[0] = d[2 * slot]; out[1] = d[2 * slot + 1]; }
    return this.succeed();
  }

  /** VMWRITE of a number (see vmread for exactness); 16/32-bit fields take the low bits. */
  vmwrite(field: number, value: number): number {
    const hi = Math.floor(value / TWO32);
    return this.vmwrite64(field, value - hi * TWO32, hi);
  }

  /** VMWRITE of a 64-bit value given as low/high 32-bit halves. */
  vmwrite64(field: number, lo: number, hi: number): number {
    this.requireVmx("VMWRITE");
    const slot = this.accessSlot(field);
    if (slot < 0) return this.status;
    if (vmcsFieldType(field) === VMCS_FIELD_TYPE_EXIT_INFO) return this.failValid(VMXERR_VMWRITE_READ_ONLY_VMCS_COMPONENT);
    const d = this.vmcs.data;
    if (field & VMCS_FIELD_ACCESS_HIGH) { d[2 * slot + 1] = lo; return this.succeed(); }
    const w = vmcsFieldWidth(field);
    if (w === VMCS_FIELD_WIDTH_U16) { d[2 * slot] = lo & 0xffff; d[2 * slot + 1] = 0; }
    else if (w === VMCS_FIELD_WIDTH_U32) { d[2 * slot] = lo; d[2 * slot + 1] = 0; }
    else { d[2 * slot] = lo; d[2 * slot + 1] = hi; }
    return this.succeed();
  }

  /** INVEPT (SDM 31): invalidate guest-physical and combined mappings of one EPTP or of all. */
  invept(type: number, eptp: number): number {
    this.requireVmx("INVEPT");
    if (type === VMX_EPT_EXTENT_CONTEXT) {
      const hi = Math.floor(eptp / TWO32);
      if (!eptpValid(eptp - hi * TWO32, hi)) return this.fail(VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID);
      const root = Math.floor(eptp / 4096);
      if (this.ept.eptp >= 0 && Math.floor(this.ept.eptp / 4096) === root) this.ept.flush();
      if (this.tlbEptp >= 0 && Math.floor(this.tlbEptp / 4096) === root) this.cpu.tlbFlushAll();
    } else if (type === VMX_EPT_EXTENT_GLOBAL) {
      this.ept.flush();
      this.cpu.tlbFlushAll();
    } else return this.fail(VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID);
    return this.succeed();
  }

  /** INVVPID (SDM 31): invalidate linear and combined mappings tagged with `vpid`. */
  invvpid(type: number, vpid: number, linearAddr: number): number {
    this.requireVmx("INVVPID");
    const cpu = this.cpu;
    const mine = vpid === this.tlbVpid;
    switch (type) {
      case VMX_VPID_EXTENT_INDIVIDUAL_ADDR:
        if (vpid === 0 || !(linearAddr >= -0x800000000000 && linearAddr < 0x800000000000)) return this.fail(VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID);
        if (mine) cpu.tlbFlushPage(linearAddr);
        break;
      case VMX_VPID_EXTENT_SINGLE_CONTEXT:
        if (vpid === 0) return this.fail(VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID);
        if (mine) cpu.tlbFlushAll();
        break;
      case VMX_VPID_EXTENT_ALL_CONTEXT:
        cpu.tlbFlushAll();
        break;
      case VMX_VPID_EXTENT_SINGLE_NON_GLOBAL:
        if (vpid === 0) return this.fail(VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID);
        if (mine) cpu.tlbFlushNonGlobal();
        break;
      default:
        return this.fail(VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID);
    }
    return this.succeed();
  }

  /** VMLAUNCH: VM entry with a clear VMCS (SDM 26). */
  vmlaunch(): number {
    this.requireVmx("VMLAUNCH");
    if (this.vmcs.hpa < 0) return this.failInvalid();
    if (this.vmcs.launched) return this.failValid(VMXERR_VMLAUNCH_NONCLEAR_VMCS);
    return this.vmentry(true);
  }

  /** VMRESUME: VM entry with a launched VMCS (SDM 26). */
  vmresume(): number {
    this.requireVmx("VMRESUME");
    if (this.vmcs.hpa < 0) return this.failInvalid();
    if (!this.vmcs.launched) return this.failValid(VMXERR_VMRESUME_NONLAUNCHED_VMCS);
    return this.vmentry(false);
  }

  private vmentry(launch: boolean): number {
    const v = this.vmcs, cpu = this.cpu, st = cpu.state;
    let err = checkControls(v);
    if (err === 0) err = checkHostState(v);
    if (err !== 0) return this.failValid(err);
    const q = checkGuestState(v, this.physmem);
    if (q >= 0) return this.entryFailure(EXIT_REASON_INVALID_STATE, q);
    loadGuestState(v, st, this.writeMsrFn);
    cpu.setRflags(v.r32(GUEST_RFLAGS));
    const nMsr = v.r32(VM_ENTRY_MSR_LOAD_COUNT);
    if (nMsr !== 0) {
      const bad = loadMsrArea(this.physmem, v.rNum(VM_ENTRY_MSR_LOAD_ADDR), nMsr, this.writeMsrFn);
      if (bad !== 0) return this.entryFailure(EXIT_REASON_MSR_LOAD_FAIL, bad);
    }
    if (launch) v.launched = true;
    const nr = this.nonRoot;
    nr.begin();
    this.tlbOnEntry();
    cpu.stateChanged();
    // After stateChanged, whose bare-metal PDPTE fill must not be what the guest gets.
    loadGuestPdptes(v, st, this.physmem, nr.eptEnabled);
    cpu.vmx = nr;
    try {
      this.injectEvent();
      this.runGuest();
    } catch (e) {
      if (e !== VMEXIT) {
        cpu.vmx = null;
        throw e;
      }
    }
    return this.succeed();
  }

  /** SDM 26.7/26.8: a VM-entry failure after the checks of 26.2 looks like a VM exit with bit 31 set. */
  private entryFailure(reason: number, qualification: number): number {
    const v = this.vmcs;
    v.w32(VM_EXIT_REASON, (reason | VMX_EXIT_REASONS_FAILED_VMENTRY) >>> 0);
    v.wNum(EXIT_QUALIFICATION, qualification);
    loadHostState(v, this.cpu.state, this.cpu);
    this.cpu.setRflags(2);
    return this.succeed();
  }

  /** Flush the CPU's TLB unless its entries were made under the same VPID and EPTP (SDM 29.4.3.3). */
  private tlbOnEntry(): void {
    const v = this.vmcs;
    const proc2 = secondaryControls(v);
    const vpid = proc2 & SECONDARY_EXEC_ENABLE_VPID ? v.r32(VIRTUAL_PROCESSOR_ID) : -1;
    let eptp = -1;
    if (proc2 & SECONDARY_EXEC_ENABLE_EPT) {
      this.ept.setEptp(v.r32(EPT_POINTER), v.rHi(EPT_POINTER));
      eptp = this.ept.eptp;
    }
    if (vpid < 0 || vpid !== this.tlbVpid || eptp !== this.tlbEptp) this.cpu.tlbFlushAll();
    this.tlbVpid = vpid;
    this.tlbEptp = eptp;
  }

  /** SDM 27.6: event injection from the VM-entry interruption-information field. */
  private injectEvent(): void {
    const v = this.vmcs;
    const info = v.r32(VM_ENTRY_INTR_INFO_FIELD);
    const nr = this.nonRoot;
    if (!(info & INTR_INFO_VALID_MASK)) {
      this.deliverPendingDebug();
      return;
    }
    const type = info & 0x700, vector = info & 0xff;
    if (type === INTR_TYPE_OTHER_EVENT) { nr.mtfPending = true; return; }
    const err = info & INTR_INFO_DELIVER_CODE_MASK ? v.r32(VM_ENTRY_EXCEPTION_ERROR_CODE) : -1;
    const soft = type === INTR_TYPE_SOFT_INTR || type === INTR_TYPE_PRIV_SW_EXCEPTION || type === INTR_TYPE_SOFT_EXCEPTION;
    if (nr.mtf) nr.mtfPending = true;
    // Only exceptions pass the core's exception hook, which must not apply the bitmap to them.
    nr.injecting = type === INTR_TYPE_HARD_EXCEPTION || type === INTR_TYPE_SOFT_EXCEPTION || type === INTR_TYPE_PRIV_SW_EXCEPTION;
    try {
      this.cpu.deliverEvent(vector, type >>> 8, err, soft ? v.r32(VM_ENTRY_INSTRUCTION_LEN) : 0);
    } finally {
      nr.injecting = false;
    }
  }

  /**
   * SDM 26.6.3: pending debug exceptions (B0-B3, enabled breakpoint, BS) in the guest state are
   * delivered as a #DB before the first instruction unless blocked by MOV SS. The #DB is an
   * ordinary exception (subject to the exception bitmap); NonRoot.exception puts the pending
   * bits in the exit qualification or in DR6.
   */
  private deliverPendingDebug(): void {
    const st = this.cpu.state;
    const pend = this.vmcs.r32(GUEST_PENDING_DBG_EXCEPTIONS) & (DEBUG_PENDING_B0_3 | DEBUG_PENDING_ENABLED_BP | DEBUG_PENDING_BS);
    if (pend === 0 || (st.interruptibility & INTR_BLOCKING_MOV_SS) || st.activityState !== ActivityState.ACTIVE) return;
    const nr = this.nonRoot;
    nr.pendingDebug = pend;
    try {
      this.cpu.deliverEvent(1, INTR_TYPE_HARD_EXCEPTION >>> 8, -1, 0);
    } finally {
      nr.pendingDebug = 0;
    }
  }

  /** Run the guest until something causes a VM exit (which throws VMEXIT out of here). */
  private runGuest(): void {
    const cpu = this.cpu, st = cpu.state, nr = this.nonRoot, hostIrq = cpu.hostIrq;
    let budget = this.sliceInsns;
    for (;;) {
      nr.pendingEvents();
      if (hostIrq[0] !== 0) this.hostInterrupt(HOST_KICK_VECTOR);
      // HLT (or shutdown) with nothing that wakes it: the host's next timer tick ends the wait.
      if (st.activityState !== ActivityState.ACTIVE) this.hostInterrupt(HOST_TIMER_VECTOR);
      const n = cpu.run(nr.mtf ? 1 : budget);
      if (nr.mtf && n > 0) this.vmExit(EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0, 0, 0, true);
      budget -= n;
      if (hostIrq[0] !== 0) this.hostInterrupt(HOST_KICK_VECTOR);
      if (budget <= 0) this.hostInterrupt(HOST_TIMER_VECTOR);
    }
  }

  /** A host interrupt during non-root operation: external-interrupt exiting is always 1 here (caps.ts). */
  private hostInterrupt(vector: number): never {
    let info = 0;
    if (this.vmcs.r32(VM_EXIT_CONTROLS) & VM_EXIT_ACK_INTR_ON_EXIT) {
      info = (vector | INTR_TYPE_EXT_INTR | INTR_INFO_VALID_MASK) >>> 0;
      if (vector === HOST_KICK_VECTOR) Atomics.store(this.cpu.hostIrq, 0, 0);
    }
    return this.vmExit(EXIT_REASON_EXTERNAL_INTERRUPT, 0, 0, info, 0, true);
  }

  /**
   * Perform a VM exit (SDM 28): record the exit information, save guest state, leave non-root
   * operation, load host state and throw VMEXIT. `atBoundary`: the exit happens between
   * instructions (RIP = next instruction), else it is caused by the instruction or event in
   * flight (RIP = cpu.curRip).
   */
  vmExit(reason: number, qualification: number, insnLen: number, intrInfo: number, intrErr: number, atBoundary: boolean): never {
    const v = this.vmcs, cpu = this.cpu, st = cpu.state, nr = this.nonRoot;
    v.w32(VM_EXIT_REASON, reason & VMX_EXIT_REASON_BASIC_MASK);
    v.wNum(EXIT_QUALIFICATION, qualification);
    v.w32(VM_EXIT_INTR_INFO, intrInfo);
    if (intrInfo & INTR_INFO_DELIVER_CODE_MASK) v.w32(VM_EXIT_INTR_ERROR_CODE, intrErr);
    if (nr.delivering) {
      const t = nr.dType << 8;
      v.w32(IDT_VECTORING_INFO_FIELD, (nr.dVector | t | (nr.dErr >= 0 ? INTR_INFO_DELIVER_CODE_MASK : 0) | INTR_INFO_VALID_MASK) >>> 0);
      if (nr.dErr >= 0) v.w32(IDT_VECTORING_ERROR_CODE, nr.dErr);
      if (t === INTR_TYPE_SOFT_INTR || t === INTR_TYPE_PRIV_SW_EXCEPTION || t === INTR_TYPE_SOFT_EXCEPTION) insnLen = nr.dLen;
    } else v.w32(IDT_VECTORING_INFO_FIELD, 0);
    v.w32(VM_EXIT_INSTRUCTION_LEN, insnLen);
    // The VM-entry interruption-information valid bit is cleared by every VM exit (SDM 28.2.?).
    v.w32(VM_ENTRY_INTR_INFO_FIELD, v.r32(VM_ENTRY_INTR_INFO_FIELD) & ~INTR_INFO_VALID_MASK);
    const exitCtl = v.r32(VM_EXIT_CONTROLS);
    if (nr.timerActive && (exitCtl & VM_EXIT_SAVE_VMX_PREEMPTION_TIMER)) v.w32(VMX_PREEMPTION_TIMER_VALUE, nr.timerRemaining());
    saveGuestState(v, st, atBoundary ? st.rip : cpu.curRip, cpu.getRflags(), cpu, this.tmp);
    if (nr.eptEnabled && (st.cr0 & 0x80000000) && (st.cr4 & 0x20) && !(st.efer & 0x400)) this.savePdptes();
    const nStore = v.r32(VM_EXIT_MSR_STORE_COUNT);
    if (nStore !== 0 && !storeMsrArea(this.physmem, v.rNum(VM_EXIT_MSR_STORE_ADDR), nStore, this.readMsrFn, this.tmp)) {
      this.vmxAbort(VMX_ABORT_SAVE_GUEST_MSR_FAIL);
    }
    cpu.vmx = null;
    nr.end();
    loadHostState(v, st, cpu);
    cpu.setRflags(2);
    const nLoad = v.r32(VM_EXIT_MSR_LOAD_COUNT);
    if (nLoad !== 0 && loadMsrArea(this.physmem, v.rNum(VM_EXIT_MSR_LOAD_ADDR), nLoad, this.writeMsrFn) !== 0) {
      this.vmxAbort(VMX_ABORT_LOAD_HOST_MSR_FAIL);
    }
    // No cpu.stateChanged() here: the host context never executes on the emulated core, and
    // recomputing its mode caches would flush the TLB twice per exit (guest -> host -> guest
    // paging modes). The next VM entry refreshes them from the guest state it loads.
    throw VMEXIT;
  }

  /**
   * SDM 28.7: a VMX abort writes the abort indicator of the current VMCS and shuts the logical
   * processor down; here the shutdown is a VmxAbortError thrown to the host.
   */
  private vmxAbort(code: number): never {
    this.cpu.vmx = null;
    this.nonRoot.end();
    this.cpu.state.activityState = ActivityState.SHUTDOWN;
    this.physmem.write32(this.vmcs.hpa + 4, code);
    throw new VmxAbortError(`VMX abort ${code} (SDM 28.7)`);
  }

  /** SDM 28.3.4: with EPT and PAE paging the PDPTE registers are saved to the guest PDPTE fields. */
  private savePdptes(): void {
    const v = this.vmcs, pd = this.cpu.state.pdpte;
    for (let i = 0; i < 4; i++) v.w64(GUEST_PDPTR0 + 2 * i, pd[2 * i], pd[2 * i + 1]);
  }

  /** TSC in preemption-timer ticks (SDM 26.5.1: the timer counts down at TSC >> IA32_VMX_MISC[4:0]). */
  timerNow(): number {
    const t = this.tmp;
    this.cpu.readMsr(0x10, t);
    return Math.floor(((t[1] >>> 0) * TWO32 + (t[0] >>> 0)) / (1 << VMX_MISC_PREEMPTION_TIMER_RATE));
  }

  /** Preemption-timer value at entry (for NonRoot.begin). */
  timerValue(): number {
    return this.vmcs.r32(PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED_VMX_PREEMPTION_TIMER ? this.vmcs.r32(VMX_PREEMPTION_TIMER_VALUE) : -1;
  }
}

