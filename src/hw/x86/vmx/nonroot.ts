/**
 * VMX non-root operation (SDM Vol. 3C ch. 26.1-26.2 "instructions that cause VM exits", 26.3
 * changes to instruction behaviour, 26.7 VM exits at instruction boundaries): the `VmxNonRoot`
 * the CPU core calls at every intercept point while a guest runs.
 *
 * The controls of the current VMCS are decoded into plain fields at VM entry (`begin`) so the
 * checks on hot paths are a bit test. Exits go through `VmxRoot.vmExit`.
 */
import type { VmxNonRoot } from "./hooks.js";
import type { VmxRoot, VmxCpu } from "./vmx.js";
import type { VmcsCache } from "./vmcs.js";
import { physByteOrOnes } from "./vmcs.js";
import type { Ept } from "./ept.js";
import { INTR_BLOCKING_STI, INTR_BLOCKING_MOV_SS, INTR_BLOCKING_NMI } from "../state.js";
import { EPT_FAULT_MISCONFIG } from "./ept.js";
import { tscScale } from "./tsc_scaling.js";
import {
  PIN_BASED_VM_EXEC_CONTROL, CPU_BASED_VM_EXEC_CONTROL, EXCEPTION_BITMAP, PAGE_FAULT_ERROR_CODE_MASK,
  PAGE_FAULT_ERROR_CODE_MATCH, CR3_TARGET_COUNT, CR3_TARGET_VALUE0, CR0_GUEST_HOST_MASK, CR4_GUEST_HOST_MASK,
  CR0_READ_SHADOW, CR4_READ_SHADOW, IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP, TSC_OFFSET, VMX_INSTRUCTION_INFO,
  GUEST_LINEAR_ADDRESS, GUEST_PHYSICAL_ADDRESS,
  PIN_BASED_VMX_PREEMPTION_TIMER,
  CPU_BASED_INTR_WINDOW_EXITING, CPU_BASED_USE_TSC_OFFSETTING, CPU_BASED_HLT_EXITING, CPU_BASED_INVLPG_EXITING,
  CPU_BASED_MWAIT_EXITING, CPU_BASED_RDPMC_EXITING, CPU_BASED_RDTSC_EXITING, CPU_BASED_CR3_LOAD_EXITING,
  CPU_BASED_CR3_STORE_EXITING, CPU_BASED_CR8_LOAD_EXITING, CPU_BASED_CR8_STORE_EXITING,
  CPU_BASED_NMI_WINDOW_EXITING, CPU_BASED_MOV_DR_EXITING, CPU_BASED_UNCOND_IO_EXITING, CPU_BASED_USE_IO_BITMAPS,
  CPU_BASED_MONITOR_TRAP_FLAG, CPU_BASED_USE_MSR_BITMAPS, CPU_BASED_MONITOR_EXITING, CPU_BASED_PAUSE_EXITING,
  SECONDARY_EXEC_ENABLE_EPT, SECONDARY_EXEC_DESC, SECONDARY_EXEC_ENABLE_RDTSCP, SECONDARY_EXEC_WBINVD_EXITING,
  SECONDARY_EXEC_UNRESTRICTED_GUEST, SECONDARY_EXEC_RDRAND_EXITING, SECONDARY_EXEC_ENABLE_INVPCID,
  SECONDARY_EXEC_RDSEED_EXITING, SECONDARY_EXEC_TSC_SCALING, TSC_MULTIPLIER, SECONDARY_EXEC_ENABLE_XSAVES, XSS_EXIT_BITMAP,
  SECONDARY_EXEC_PAUSE_LOOP_EXITING, PLE_GAP, PLE_WINDOW,
  INTR_INFO_VALID_MASK, INTR_INFO_DELIVER_CODE_MASK, INTR_TYPE_HARD_EXCEPTION, INTR_TYPE_SOFT_EXCEPTION,
  INTR_TYPE_PRIV_SW_EXCEPTION,
  CR_ACCESS_TYPE_SHIFT, CR_ACCESS_TYPE_MOV_FROM_CR, CR_ACCESS_TYPE_CLTS, CR_ACCESS_TYPE_LMSW, CR_ACCESS_LMSW_MEM,
  CR_ACCESS_GPR_SHIFT, CR_ACCESS_LMSW_SRC_SHIFT, TYPE_MOV_FROM_DR, DEBUG_REG_ACCESS_REG_SHIFT,
  TASK_SWITCH_SOURCE_SHIFT,
} from "./vmcs.js";
import {
  EXIT_REASON_EXCEPTION_NMI, EXIT_REASON_TRIPLE_FAULT, EXIT_REASON_INTERRUPT_WINDOW, EXIT_REASON_NMI_WINDOW,
  EXIT_REASON_TASK_SWITCH, EXIT_REASON_CPUID, EXIT_REASON_HLT, EXIT_REASON_INVD, EXIT_REASON_INVLPG,
  EXIT_REASON_RDPMC, EXIT_REASON_RDTSC, EXIT_REASON_CR_ACCESS, EXIT_REASON_DR_ACCESS, EXIT_REASON_IO_INSTRUCTION,
  EXIT_REASON_MSR_READ, EXIT_REASON_MSR_WRITE, EXIT_REASON_MWAIT_INSTRUCTION, EXIT_REASON_MONITOR_TRAP_FLAG,
  EXIT_REASON_MONITOR_INSTRUCTION, EXIT_REASON_PAUSE_INSTRUCTION, EXIT_REASON_EPT_VIOLATION,
  EXIT_REASON_EPT_MISCONFIG, EXIT_REASON_RDTSCP, EXIT_REASON_PREEMPTION_TIMER, EXIT_REASON_WBINVD,
  EXIT_REASON_XSETBV, EXIT_REASON_RDRAND, EXIT_REASON_INVPCID, EXIT_REASON_RDSEED, EXIT_REASON_XSAVES, EXIT_REASON_XRSTORS,
} from "../../../uapi/vmx.js";
import { secondaryControls } from "./entry.js";

const UD_VECTOR = 6;
const PF_VECTOR = 14;
const RFLAGS_IF = 1 << 9;

export class NonRoot implements VmxNonRoot {
  private readonly root: VmxRoot;
  private readonly cpu: VmxCpu;
  private readonly v: VmcsCache;
  private readonly ept: Ept;

  // Controls decoded at VM entry.
  pin = 0;
  proc = 0;
  proc2 = 0;
  private excBitmap = 0;
  private pfMask = 0;
  private pfMatch = 0;
  private cr0Mask = 0;
  private cr0Shadow = 0;
  private cr4Mask = 0;
  private cr4Shadow = 0;
  private cr3Count = 0;
  private readonly cr3Targets = new Float64Array(4);
  private ioA = 0;
  private ioB = 0;
  private msrBitmap = 0;
  private tscLo = 0;
  private tscHi = 0;
  private tscScaling = false;
  private tscMulLo = 0;
  private tscMulHi = 0;
  eptEnabled = false;
  unrestrictedGuest = false;
  /** "monitor trap flag" is set: the entry loop runs one instruction at a time. */
  mtf = false;
  /** An MTF VM exit is due before the next instruction (injected "other event" or after injection). */
  mtfPending = false;
  /** The event being injected at VM entry is not subject to the exception bitmap (SDM 27.6). */
  injecting = false;
  /** Pending debug exceptions being delivered at VM entry (DR6-format bits), else 0. */
  pendingDebug = 0;
  timerActive = false;
  private timerDeadline = 0;
  /** PAUSE-loop exiting (SDM 26.1.3): PLE_Gap/PLE_Window and the TSC of the last and of the loop's first PAUSE at CPL 0. */
  private ple = false;
  private pleGap = 0;
  private pleWindow = 0;
  private pleLast = -Infinity;
  private pleFirst = 0;
  private readonly pleTsc = new Int32Array(2);

  // Event delivery in progress (for IDT-vectoring information, SDM 28.2.4).
  delivering = false;
  dVector = 0;
  dType = 0;
  dErr = -1;
  dLen = 0;

  constructor(root: VmxRoot) {
    this.root = root;
    this.cpu = root.cpu;
    this.v = root.vmcs;
    this.ept = root.ept;
  }

  /** Decode the controls of the current VMCS (called by VM entry before the guest runs). */
  begin(): void {
    const v = this.v;
    this.pin = v.r32(PIN_BASED_VM_EXEC_CONTROL);
    this.proc = v.r32(CPU_BASED_VM_EXEC_CONTROL);
    this.proc2 = secondaryControls(v);
    this.excBitmap = v.r32(EXCEPTION_BITMAP);
    this.pfMask = v.r32(PAGE_FAULT_ERROR_CODE_MASK);
    this.pfMatch = v.r32(PAGE_FAULT_ERROR_CODE_MATCH);
    this.cr0Mask = v.r32(CR0_GUEST_HOST_MASK);
    this.cr0Shadow = v.r32(CR0_READ_SHADOW);
    this.cr4Mask = v.r32(CR4_GUEST_HOST_MASK);
    this.cr4Shadow = v.r32(CR4_READ_SHADOW);
    this.cr3Count = v.r32(CR3_TARGET_COUNT);
    for (let i = 0; i < 4; i++) this.cr3Targets[i] = v.rNum(CR3_TARGET_VALUE0 + 2 * i);
    this.ioA = v.rNum(IO_BITMAP_A);
    this.ioB = v.rNum(IO_BITMAP_B);
    this.msrBitmap = v.rNum(MSR_BITMAP);
    const tsc = (this.proc & CPU_BASED_USE_TSC_OFFSETTING) !== 0;
    this.tscLo = tsc ? v.r32(TSC_OFFSET) | 0 : 0;
    this.tscHi = tsc ? v.rHi(TSC_OFFSET) | 0 : 0;
    this.tscScaling = tsc && (this.proc2 & SECONDARY_EXEC_TSC_SCALING) !== 0;
    this.tscMulLo = this.tscScaling ? v.r32(TSC_MULTIPLIER) | 0 : 0;
    this.tscMulHi = this.tscScaling ? v.rHi(TSC_MULTIPLIER) | 0 : 0;
    this.eptEnabled = (this.proc2 & SECONDARY_EXEC_ENABLE_EPT) !== 0;
    this.unrestrictedGuest = (this.proc2 & SECONDARY_EXEC_UNRESTRICTED_GUEST) !== 0;
    this.mtf = (this.proc & CPU_BASED_MONITOR_TRAP_FLAG) !== 0;
    this.mtfPending = false;
    this.injecting = false;
    this.delivering = false;
    this.ple = (this.proc2 & SECONDARY_EXEC_PAUSE_LOOP_EXITING) !== 0;
    this.pleGap = this.ple ? v.r32(PLE_GAP) >>> 0 : 0;
    this.pleWindow = this.ple ? v.r32(PLE_WINDOW) >>> 0 : 0;
    // The first PAUSE at CPL 0 after VM entry starts a loop.
    this.pleLast = -Infinity;
    const tv = this.root.timerValue();
    this.timerActive = tv >= 0 && (this.pin & PIN_BASED_VMX_PREEMPTION_TIMER) !== 0;
    if (this.timerActive) this.timerDeadline = this.root.timerNow() + tv;
  }

  /** Leaving non-root operation. */
  end(): void {
    this.delivering = false;
    this.injecting = false;
    this.mtfPending = false;
  }

  timerRemaining(): number {
    const left = this.timerDeadline - this.root.timerNow();
    return left > 0 ? left >>> 0 : 0;
  }

  // ---- exits ----
  /** Exit caused by the instruction in flight (RIP = its first byte). */
  private exitInsn(reason: number, qualification: number, insnLen: number): never {
    return this.root.vmExit(reason, qualification, insnLen, 0, 0, false);
  }

  private exitInsnInfo(reason: number, qualification: number, insnLen: number, info: number): never {
    this.v.w32(VMX_INSTRUCTION_INFO, info);
    return this.root.vmExit(reason, qualification, insnLen, 0, 0, false);
  }

  /**
   * Exits due at an instruction boundary, in priority order (SDM 26.7.?/6.9): pending MTF,
   * VMX-preemption timer, NMI window, interrupt window. Also called by VM entry before the
   * first instruction and while the guest is in the HLT state.
   */
  pendingEvents(): void {
    if (this.mtfPending) { this.mtfPending = false; this.root.vmExit(EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0, 0, 0, true); }
    this.instructionBoundary();
  }

  instructionBoundary(): void {
    if (this.timerActive && this.root.timerNow() >= this.timerDeadline) {
      this.root.vmExit(EXIT_REASON_PREEMPTION_TIMER, 0, 0, 0, 0, true);
    }
    const proc = this.proc;
    if (!(proc & (CPU_BASED_NMI_WINDOW_EXITING | CPU_BASED_INTR_WINDOW_EXITING))) return;
    const intr = this.cpu.state.interruptibility;
    if ((proc & CPU_BASED_NMI_WINDOW_EXITING) && !(intr & (INTR_BLOCKING_NMI | INTR_BLOCKING_MOV_SS))) {
      this.root.vmExit(EXIT_REASON_NMI_WINDOW, 0, 0, 0, 0, true);
    }
    if ((proc & CPU_BASED_INTR_WINDOW_EXITING) && !(intr & (INTR_BLOCKING_STI | INTR_BLOCKING_MOV_SS)) &&
      (this.cpu.getRflags() & RFLAGS_IF)) {
      this.root.vmExit(EXIT_REASON_INTERRUPT_WINDOW, 0, 0, 0, 0, true);
    }
  }

  // ---- instructions (SDM 26.1.2 unconditional, 26.1.3 by control) ----
  cpuid(insnLen: number): void { this.exitInsn(EXIT_REASON_CPUID, 0, insnLen); }
  invd(insnLen: number): void { this.exitInsn(EXIT_REASON_INVD, 0, insnLen); }
  xsetbv(insnLen: number): void { this.exitInsn(EXIT_REASON_XSETBV, 0, insnLen); }

  hlt(insnLen: number): void {
    if (this.proc & CPU_BASED_HLT_EXITING) this.exitInsn(EXIT_REASON_HLT, 0, insnLen);
  }

  invlpg(linearAddr: number, insnLen: number): void {
    if (this.proc & CPU_BASED_INVLPG_EXITING) this.exitInsn(EXIT_REASON_INVLPG, linearAddr, insnLen);
  }

  invpcid(insnLen: number, info: number, qualification: number): void {
    if (!(this.proc2 & SECONDARY_EXEC_ENABLE_INVPCID)) this.cpu.raise(UD_VECTOR, -1);
    if (this.proc & CPU_BASED_INVLPG_EXITING) this.exitInsnInfo(EXIT_REASON_INVPCID, qualification, insnLen, info);
  }

  rdpmc(insnLen: number): void {
    if (this.proc & CPU_BASED_RDPMC_EXITING) this.exitInsn(EXIT_REASON_RDPMC, 0, insnLen);
  }

  rdtsc(insnLen: number, rdtscp: boolean): void {
    if (rdtscp && !(this.proc2 & SECONDARY_EXEC_ENABLE_RDTSCP)) this.cpu.raise(UD_VECTOR, -1);
    if (this.proc & CPU_BASED_RDTSC_EXITING) this.exitInsn(rdtscp ? EXIT_REASON_RDTSCP : EXIT_REASON_RDTSC, 0, insnLen);
  }

  tscOffsetLo(): number { return this.tscLo; }
  tscOffsetHi(): number { return this.tscHi; }

  /** The TSC the guest reads (RDTSC, RDTSCP, RDMSR IA32_TSC): scaled when TSC scaling is on, plus the offset (SDM 26.3). */
  guestTsc(hostTsc: number): number {
    const t = this.tscScaling ? tscScale(hostTsc, this.tscMulLo, this.tscMulHi) : hostTsc;
    return t + this.tscHi * 4294967296 + (this.tscLo >>> 0);
  }

  /** MSR bitmaps (SDM 25.6.9): read-low 0x000, read-high 0x400, write-low 0x800, write-high 0xc00. */
  private msrExits(msr: number, write: boolean): boolean {
    if (!(this.proc & CPU_BASED_USE_MSR_BITMAPS)) return true;
    let base: number;
    if (msr >= 0 && msr <= 0x1fff) base = 0;
    else if (msr >= 0xc0000000 && msr <= 0xc0001fff) base = 0x400;
    else return true;
    if (write) base += 0x800;
    const bit = msr & 0x1fff;
    return ((physByteOrOnes(this.cpu.physmem, this.msrBitmap + base + (bit >>> 3)) >>> (bit & 7)) & 1) !== 0;
  }

  rdmsr(msr: number, insnLen: number): void {
    if (this.msrExits(msr >>> 0, false)) this.exitInsn(EXIT_REASON_MSR_READ, 0, insnLen);
  }

  wrmsr(msr: number, insnLen: number): void {
    if (this.msrExits(msr >>> 0, true)) this.exitInsn(EXIT_REASON_MSR_WRITE, 0, insnLen);
  }

  mwait(insnLen: number): void {
    if (this.proc & CPU_BASED_MWAIT_EXITING) this.exitInsn(EXIT_REASON_MWAIT_INSTRUCTION, 0, insnLen);
  }

  monitor(insnLen: number): void {
    if (this.proc & CPU_BASED_MONITOR_EXITING) this.exitInsn(EXIT_REASON_MONITOR_INSTRUCTION, 0, insnLen);
  }

  pause(insnLen: number): void {
    if (this.proc & CPU_BASED_PAUSE_EXITING) this.exitInsn(EXIT_REASON_PAUSE_INSTRUCTION, 0, insnLen);
    // CPL is SS.DPL in the guest state (SDM 25.4.1).
    if (this.ple && (this.cpu.state.segAr[2] & 0x60) === 0) {
      // SDM 26.1.3 "PAUSE-loop exiting": time runs at the TSC's rate. A PAUSE more than PLE_Gap
      // after the previous one starts a loop; one more than PLE_Window after the loop's first exits.
      const t = this.pleTsc;
      this.cpu.readMsr(0x10, t);
      const now = (t[1] >>> 0) * 4294967296 + (t[0] >>> 0);
      if (now - this.pleLast > this.pleGap) this.pleFirst = now;
      else if (now - this.pleFirst > this.pleWindow) {
        this.pleLast = -Infinity;
        this.exitInsn(EXIT_REASON_PAUSE_INSTRUCTION, 0, insnLen);
      }
      this.pleLast = now;
    }
  }

  wbinvd(insnLen: number): void {
    if (this.proc2 & SECONDARY_EXEC_WBINVD_EXITING) this.exitInsn(EXIT_REASON_WBINVD, 0, insnLen);
  }

  rdrand(insnLen: number, info: number): void {
    if (this.proc2 & SECONDARY_EXEC_RDRAND_EXITING) this.exitInsnInfo(EXIT_REASON_RDRAND, 0, insnLen, info);
  }

  rdseed(insnLen: number, info: number): void {
    if (this.proc2 & SECONDARY_EXEC_RDSEED_EXITING) this.exitInsnInfo(EXIT_REASON_RDSEED, 0, insnLen, info);
  }

  /** XSAVES/XRSTORS: #UD without "enable XSAVES/XRSTORS"; else exit if the XSS-exiting bitmap has a requested bit (SDM 26.1.3). */
  xsaves(restore: boolean, maskLo: number, maskHi: number, insnLen: number, info: number, qualification: number): void {
    if (!(this.proc2 & SECONDARY_EXEC_ENABLE_XSAVES)) this.cpu.raise(UD_VECTOR, -1);
    const v = this.v;
    if ((maskLo & v.r32(XSS_EXIT_BITMAP)) !== 0 || (maskHi & v.rHi(XSS_EXIT_BITMAP)) !== 0) {
      this.exitInsnInfo(restore ? EXIT_REASON_XRSTORS : EXIT_REASON_XSAVES, qualification, insnLen, info);
    }
  }

  vmxInstruction(reason: number, insnLen: number, info: number, qualification: number): void {
    this.exitInsnInfo(reason, qualification, insnLen, info);
  }

  descriptorTable(reason: number, insnLen: number, info: number, qualification: number): void {
    if (this.proc2 & SECONDARY_EXEC_DESC) this.exitInsnInfo(reason, qualification, insnLen, info);
  }

  /** I/O bitmaps (SDM 25.6.4): A covers ports 0-7FFFH, B 8000H-FFFFH; a wrap past FFFFH exits. */
  io(port: number, size: number, qualification: number, insnLen: number, linearAddr: number): void {
    const proc = this.proc;
    let exit: boolean;
    if (proc & CPU_BASED_USE_IO_BITMAPS) {
      exit = false;
      const pm = this.cpu.physmem;
      for (let p = port; p < port + size; p++) {
        if (p > 0xffff) { exit = true; break; }
        const a = (p < 0x8000 ? this.ioA : this.ioB) + ((p & 0x7fff) >>> 3);
        if ((physByteOrOnes(pm, a) >>> (p & 7)) & 1) { exit = true; break; }
      }
    } else exit = (proc & CPU_BASED_UNCOND_IO_EXITING) !== 0;
    if (!exit) return;
    if (qualification & (1 << 4)) this.v.wNum(GUEST_LINEAR_ADDRESS, linearAddr);
    this.exitInsn(EXIT_REASON_IO_INSTRUCTION, qualification, insnLen);
  }

  // ---- control and debug registers (SDM 26.1.3, Table 28-3) ----
  movToCr(cr: number, gpr: number, value: number, insnLen: number): void {
    let exit = false;
    if (cr === 0) exit = ((value ^ this.cr0Shadow) & this.cr0Mask) !== 0;
    else if (cr === 4) exit = ((value ^ this.cr4Shadow) & this.cr4Mask) !== 0;
    else if (cr === 3) {
      if (this.proc & CPU_BASED_CR3_LOAD_EXITING) {
        exit = true;
        for (let i = 0; i < this.cr3Count; i++) if (this.cr3Targets[i] === value) { exit = false; break; }
      }
    } else if (cr === 8) exit = (this.proc & CPU_BASED_CR8_LOAD_EXITING) !== 0;
    if (exit) this.exitInsn(EXIT_REASON_CR_ACCESS, cr | (gpr << CR_ACCESS_GPR_SHIFT), insnLen);
  }

  movFromCr(cr: number, gpr: number, insnLen: number): void {
    const exit = cr === 3 ? (this.proc & CPU_BASED_CR3_STORE_EXITING) !== 0
      : cr === 8 ? (this.proc & CPU_BASED_CR8_STORE_EXITING) !== 0 : false;
    if (exit) this.exitInsn(EXIT_REASON_CR_ACCESS, cr | (CR_ACCESS_TYPE_MOV_FROM_CR << CR_ACCESS_TYPE_SHIFT) | (gpr << CR_ACCESS_GPR_SHIFT), insnLen);
  }

  crReadShadow(cr: 0 | 4, actual: number): number {
    const mask = cr === 0 ? this.cr0Mask : this.cr4Mask;
    const shadow = cr === 0 ? this.cr0Shadow : this.cr4Shadow;
    return ((actual & ~mask) | (shadow & mask)) >>> 0;
  }

  crWriteValue(cr: 0 | 4, value: number, current: number): number {
    const mask = cr === 0 ? this.cr0Mask : this.cr4Mask;
    return ((value & ~mask) | (current & mask)) >>> 0;
  }

  clts(insnLen: number): void {
    if (this.cr0Mask & this.cr0Shadow & 8) this.exitInsn(EXIT_REASON_CR_ACCESS, CR_ACCESS_TYPE_CLTS << CR_ACCESS_TYPE_SHIFT, insnLen);
  }

  /** LMSW exits if it would change a host-owned bit of CR0[3:0] relative to the shadow (it cannot clear PE). */
  lmsw(source: number, insnLen: number, memOperand: boolean, linearAddr: number): void {
    const m = this.cr0Mask, sh = this.cr0Shadow;
    const exit = ((m & 1) && (source & 1) && !(sh & 1)) || (((source ^ sh) & m & 0xe) !== 0);
    if (!exit) return;
    if (memOperand) this.v.wNum(GUEST_LINEAR_ADDRESS, linearAddr);
    const q = (CR_ACCESS_TYPE_LMSW << CR_ACCESS_TYPE_SHIFT) | (memOperand ? CR_ACCESS_LMSW_MEM : 0) | ((source & 0xffff) << CR_ACCESS_LMSW_SRC_SHIFT);
    this.exitInsn(EXIT_REASON_CR_ACCESS, q >>> 0, insnLen);
  }

  movDr(dr: number, gpr: number, toDr: boolean, insnLen: number): void {
    if (this.proc & CPU_BASED_MOV_DR_EXITING) {
      this.exitInsn(EXIT_REASON_DR_ACCESS, dr | (toDr ? 0 : TYPE_MOV_FROM_DR) | (gpr << DEBUG_REG_ACCESS_REG_SHIFT), insnLen);
    }
  }

  // ---- events ----
  /** Exception bitmap; for #PF the error-code mask/match rule (SDM 25.6.3). */
  exception(vector: number, errorCode: number, extra: number, insnLen: number): void {
    if (this.injecting) { this.injecting = false; return; }
    if (vector === 1 && this.pendingDebug !== 0) {
      extra = this.pendingDebug;
      this.pendingDebug = 0;
      // Delivered to the guest unless the bitmap says exit: DR6 gets the pending bits (the core ORs in `extra` = 0 next).
      if (!((this.excBitmap >>> 1) & 1)) { this.cpu.state.dr[6] = (this.cpu.state.dr[6] | extra) >>> 0; return; }
    }
    let exit = ((this.excBitmap >>> vector) & 1) !== 0;
    if (vector === PF_VECTOR) exit = exit === (((errorCode & this.pfMask) >>> 0) === (this.pfMatch >>> 0));
    if (!exit) return;
    // With a length it was raised by an instruction: INT3/INTO (software exception) or INT1
    // (privileged software exception, the only way #DB comes with a length).
    const type = insnLen === 0 ? INTR_TYPE_HARD_EXCEPTION : vector === 1 ? INTR_TYPE_PRIV_SW_EXCEPTION : INTR_TYPE_SOFT_EXCEPTION;
    const info = (vector | type | (errorCode >= 0 ? INTR_INFO_DELIVER_CODE_MASK : 0) | INTR_INFO_VALID_MASK) >>> 0;
    const qual = vector === PF_VECTOR || vector === 1 ? extra : 0;
    this.root.vmExit(EXIT_REASON_EXCEPTION_NMI, qual, insnLen, info, errorCode, false);
  }

  tripleFault(): void { this.exitInsn(EXIT_REASON_TRIPLE_FAULT, 0, 0); }

  taskSwitch(selector: number, source: number, insnLen: number): void {
    this.exitInsn(EXIT_REASON_TASK_SWITCH, ((selector & 0xffff) | (source << TASK_SWITCH_SOURCE_SHIFT)) >>> 0, insnLen);
  }

  beginEventDelivery(vector: number, type: number, errorCode: number, insnLen: number): void {
    this.delivering = true;
    this.dVector = vector;
    this.dType = type;
    this.dErr = errorCode;
    this.dLen = insnLen;
  }

  endEventDelivery(): void {
    this.delivering = false;
  }

  // ---- EPT (SDM 29.3.3) ----
  eptTranslate(gpa: number, access: number, linearAddr: number, linearValid: boolean, isWalk: boolean): number {
    const hpa = this.ept.translate(gpa, access, linearValid, isWalk);
    if (hpa >= 0) return hpa;
    const v = this.v;
    v.wNum(GUEST_PHYSICAL_ADDRESS, gpa);
    if (this.ept.fault === EPT_FAULT_MISCONFIG) return this.exitInsn(EXIT_REASON_EPT_MISCONFIG, 0, 0);
    if (linearValid) v.wNum(GUEST_LINEAR_ADDRESS, linearAddr);
    return this.exitInsn(EXIT_REASON_EPT_VIOLATION, this.ept.qualification, 0);
  }
}
