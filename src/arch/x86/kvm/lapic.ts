/**
 * arch/x86/kvm/lapic.c: one local APIC per vCPU (SDM Vol. 3A ch. 11 "Advanced Programmable
 * Interrupt Controller"). Registers live in a 1 KiB page laid out as struct kvm_lapic_state /
 * the xAPIC MMIO page (register at offset R is the u32 at R), so KVM_GET/SET_LAPIC is a copy.
 * The xAPIC MMIO window is at the APIC base (0xfee00000 by default); in x2APIC mode the same
 * registers are MSRs 0x800 + (R >> 4) (SDM 11.12.1.2).
 *
 * The APIC timer runs on the VM clock (APIC bus 1 GHz as in KVM, so one tick of TMICT at
 * divide-by-1 is 1 ns). Timers are polled: the run loop calls `pollTimer(now)` before entry and
 * blocks HLT until `nextDeadlineNs()`.
 */
import type { KvmIoDevice, KvmVcpuLike } from "../../../virt/kvm/kvm_host.js";
import { KVM_MP_STATE_INIT_RECEIVED, KVM_MP_STATE_RUNNABLE } from "../../../uapi/kvm.js";
import type { HostClock } from "../../../host/clock.js";
import { NO_TRACER, type KvmTracer } from "../../../virt/kvm/irqchip.js";

// Register offsets (SDM Table 11-1 / 11-6)
export const APIC_ID = 0x20;
export const APIC_LVR = 0x30;
export const APIC_TASKPRI = 0x80;
export const APIC_ARBPRI = 0x90;
export const APIC_PROCPRI = 0xa0;
export const APIC_EOI = 0xb0;
export const APIC_RRR = 0xc0;
export const APIC_LDR = 0xd0;
export const APIC_DFR = 0xe0;
export const APIC_SPIV = 0xf0;
export const APIC_ISR = 0x100;
export const APIC_TMR = 0x180;
export const APIC_IRR = 0x200;
export const APIC_ESR = 0x280;
export const APIC_LVTCMCI = 0x2f0;
export const APIC_ICR = 0x300;
export const APIC_ICR2 = 0x310;
export const APIC_LVTT = 0x320;
export const APIC_LVTTHMR = 0x330;
export const APIC_LVTPC = 0x340;
export const APIC_LVT0 = 0x350;
export const APIC_LVT1 = 0x360;
export const APIC_LVTERR = 0x370;
export const APIC_TMICT = 0x380;
export const APIC_TMCCT = 0x390;
export const APIC_TDCR = 0x3e0;
export const APIC_SELF_IPI = 0x3f0;

export const APIC_VERSION = 0x14;
export const APIC_LVR_DIRECTED_EOI = 1 << 24;
export const KVM_APIC_NR_LVT = 6;
export const APIC_SPIV_APIC_ENABLED = 1 << 8;
export const APIC_SPIV_FOCUS_DISABLED = 1 << 9;
export const APIC_SPIV_DIRECTED_EOI = 1 << 12;
export const APIC_LVT_MASKED = 1 << 16;
export const APIC_SEND_PENDING = 1 << 12;
export const APIC_INPUT_POLARITY = 1 << 13;
export const APIC_LVT_REMOTE_IRR = 1 << 14;
export const APIC_LVT_LEVEL_TRIGGER = 1 << 15;
export const APIC_MODE_MASK = 0x700;
export const APIC_LVT_TIMER_ONESHOT = 0;
export const APIC_LVT_TIMER_PERIODIC = 1 << 17;
export const APIC_LVT_TIMER_TSCDEADLINE = 2 << 17;
export const APIC_DFR_FLAT = 0xffffffff;
export const APIC_DFR_CLUSTER = 0x0fffffff;
export const APIC_DEST_LOGICAL = 1 << 11;
export const APIC_INT_ASSERT = 1 << 14;
export const APIC_INT_LEVELTRIG = 1 << 15;
export const APIC_BROADCAST = 0xff;
export const X2APIC_BROADCAST = 0xffffffff;

// Delivery modes (ICR / LVT / IOAPIC bits 10:8), unshifted
export const APIC_DM_FIXED = 0;
export const APIC_DM_LOWEST = 1;
export const APIC_DM_SMI = 2;
export const APIC_DM_REMRD = 3;
export const APIC_DM_NMI = 4;
export const APIC_DM_INIT = 5;
export const APIC_DM_STARTUP = 6;
export const APIC_DM_EXTINT = 7;
// Destination shorthands (ICR bits 19:18), unshifted
export const APIC_DEST_NOSHORT = 0;
export const APIC_DEST_SELF = 1;
export const APIC_DEST_ALLINC = 2;
export const APIC_DEST_ALLBUT = 3;
// ESR bits (SDM 11.5.3)
export const APIC_ESR_SEND_ILLEGAL_VECTOR = 1 << 5;
export const APIC_ESR_RECV_ILLEGAL_VECTOR = 1 << 6;
export const APIC_ESR_ILLEGAL_REGISTER = 1 << 7;

// IA32_APIC_BASE (MSR 0x1b)
export const MSR_IA32_APICBASE = 0x1b;
export const MSR_IA32_APICBASE_BSP = 1 << 8;
export const X2APIC_ENABLE = 1 << 10;
export const MSR_IA32_APICBASE_ENABLE = 1 << 11;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const APIC_BASE_MSR = 0x800;
export const APIC_DEFAULT_PHYS_BASE = 0xfee00000;
export const LAPIC_MMIO_LENGTH = 0x1000;

/** KVM's APIC bus cycle, in ns (APIC_BUS_CYCLE_NS). */
export const APIC_BUS_CYCLE_NS = 1;
/** Periodic timers faster than this are slowed to it (min_timer_period_us = 200). */
export const MIN_TIMER_PERIOD_NS = 200_000;

const KVM_APIC_INIT = 1;
const KVM_APIC_SIPI = 2;

/** struct kvm_lapic_irq: an interrupt message (fields unshifted). */
export interface KvmLapicIrq {
  vector: number;
  deliveryMode: number;
  /** 0 physical, 1 logical */
  destMode: number;
  level: number;
  /** 0 edge, 1 level */
  trigMode: number;
  shorthand: number;
  destId: number;
  msiRedirHint: boolean;
}

export function newLapicIrq(): KvmLapicIrq {
  return { vector: 0, deliveryMode: 0, destMode: 0, level: 0, trigMode: 0, shorthand: 0, destId: 0, msiRedirHint: false };
}


/** What the LAPIC needs from its vCPU (kvm_vcpu_kick, kvm_vcpu_reset, SIPI delivery, TSC). */
export interface LapicVcpuOps {
  readonly vcpuId: number;
  /** KVM_REQ_EVENT + kvm_vcpu_kick(): an interrupt, NMI, SMI, INIT or SIPI became pending. */
  kick(): void;
  /** kvm_vcpu_reset(vcpu, init_event = true), minus the LAPIC (acceptEvents already reset it). */
  initReset?(): void;
  /** kvm_x86_ops.vcpu_deliver_sipi_vector(): CS = vector << 8, IP = 0. */
  deliverSipiVector?(vector: number): void;
  /** The guest's TSC now (for TSC-deadline mode). */
  guestTsc?(): number;
  /** The guest's TSC rate in kHz (KVM_SET_TSC_KHZ may change it); LapicOptions.tscKhz when absent. */
  guestTscKhz?(): number;
}

/** What the LAPIC needs from the VM: message delivery to all LAPICs, and EOI to the IOAPIC. */
export interface LapicApicBus {
  /** kvm_irq_delivery_to_apic(): -1 if nobody took it, else the number of LAPICs that did. */
  deliverToApic(src: KvmLapic | null, irq: KvmLapicIrq): number;
  /** kvm_ioapic_send_eoi(): only called for vectors the IOAPIC handles. */
  ioapicHandlesVector(vector: number): boolean;
  ioapicEoi(vector: number, levelTriggered: boolean, directedEoi: boolean, from: KvmLapic): void;
}

export interface LapicOptions {
  clock: HostClock;
  /** Guest TSC frequency in kHz (TSC-deadline conversions). */
  tscKhz?: number;
  /** Guest MAXPHYADDR: APIC base bits at and above it are reserved. */
  maxPhyAddr?: number;
  /** CPUID.1:ECX.x2APIC given to the guest. */
  x2apic?: boolean;
  /** CPUID.1:ECX.TSC_DEADLINE given to the guest. */
  tscDeadline?: boolean;
  /** Advertise directed EOI (LVR bit 24): the in-kernel IOAPIC has an EOI register. */
  directedEoi?: boolean;
  /** Tracepoints (kvm_apic, kvm_apic_accept_irq, kvm_eoi, kvm_apic_ipi) go to the VM. */
  tracer?: KvmTracer;
}

/** Register names as kvm_trace_symbol_apic prints them. */
const APIC_REG_NAMES: Record<number, string> = {
  0x20: "APIC_ID", 0x30: "APIC_LVR", 0x80: "APIC_TASKPRI", 0x90: "APIC_ARBPRI", 0xa0: "APIC_PROCPRI",
  0xb0: "APIC_EOI", 0xc0: "APIC_RRR", 0xd0: "APIC_LDR", 0xe0: "APIC_DFR", 0xf0: "APIC_SPIV", 0x100: "APIC_ISR",
  0x180: "APIC_TMR", 0x200: "APIC_IRR", 0x280: "APIC_ESR", 0x300: "APIC_ICR", 0x310: "APIC_ICR2",
  0x320: "APIC_LVTT", 0x330: "APIC_LVTTHMR", 0x340: "APIC_LVTPC", 0x350: "APIC_LVT0", 0x360: "APIC_LVT1",
  0x370: "APIC_LVTERR", 0x380: "APIC_TMICT", 0x390: "APIC_TMCCT", 0x3e0: "APIC_TDCR", 0x3f0: "APIC_SELF_IPI",
};
function apicRegName(reg: number): string | number {
  return APIC_REG_NAMES[reg] ?? reg;
}

const LVT_MASK = APIC_LVT_MASKED | 0xff;
const LINT_MASK = LVT_MASK | APIC_MODE_MASK | APIC_INPUT_POLARITY | APIC_LVT_REMOTE_IRR | APIC_LVT_LEVEL_TRIGGER;
/** Writable bits per LVT (timer mode bits added per TSC-deadline support). */
const LVT_WRITE_MASK: Record<number, number> = {
  [APIC_LVTT]: LVT_MASK,
  [APIC_LVTTHMR]: LVT_MASK | APIC_MODE_MASK,
  [APIC_LVTPC]: LVT_MASK | APIC_MODE_MASK,
  [APIC_LVT0]: LINT_MASK,
  [APIC_LVT1]: LINT_MASK,
  [APIC_LVTERR]: LVT_MASK,
};
const LVT_REGS = [APIC_LVTT, APIC_LVTTHMR, APIC_LVTPC, APIC_LVT0, APIC_LVT1, APIC_LVTERR];

function regBit(reg: number): number {
  return reg >> 4;
}
/** Readable registers as bit (reg >> 4) in a 64-bit mask split in two u32 (kvm_lapic_readable_reg_mask). */
function maskOf(regs: number[]): [number, number] {
  const m: [number, number] = [0, 0];
  for (const r of regs) m[regBit(r) >> 5] |= 1 << (regBit(r) & 31);
  return m;
}
const COMMON_READABLE = [
  APIC_ID, APIC_LVR, APIC_TASKPRI, APIC_PROCPRI, APIC_LDR, APIC_SPIV, APIC_ESR, APIC_ICR, APIC_LVTT, APIC_LVTTHMR,
  APIC_LVTPC, APIC_LVT0, APIC_LVT1, APIC_LVTERR, APIC_TMICT, APIC_TMCCT, APIC_TDCR,
];
for (let i = 0; i < 8; i++) COMMON_READABLE.push(APIC_ISR + 16 * i, APIC_TMR + 16 * i, APIC_IRR + 16 * i);
const X2APIC_READABLE = maskOf(COMMON_READABLE);
const XAPIC_READABLE = maskOf([...COMMON_READABLE, APIC_ARBPRI, APIC_DFR, APIC_ICR2]);

/** The highest set bit of a 256-bit APIC vector register (IRR/ISR/TMR), or -1. */
function findHighestVector(r32: Uint32Array, reg: number): number {
  for (let i = 7; i >= 0; i--) {
    const w = r32[(reg >> 2) + 4 * i];
    if (w !== 0) return 32 * i + 31 - Math.clz32(w);
  }
  return -1;
}

/** struct kvm_lapic */
export class KvmLapic implements KvmIoDevice {
  /** The register page (struct kvm_lapic_state.regs). */
  readonly regs = new Uint8Array(1024);
  private readonly r32 = new Uint32Array(this.regs.buffer);
  /** IA32_APIC_BASE as lo/hi dwords. */
  apicBaseLo = 0;
  apicBaseHi = 0;
  /** apic->pending_events (INIT / SIPI) and the latched SIPI vector. */
  pendingEvents = 0;
  sipiVector = 0;
  /** NMIs accepted and not yet taken by the run loop (vcpu->arch.nmi_queued). */
  nmiQueued = 0;
  smiPending = false;
  /** Set by an APIC_DM_REMRD message (KVM's PV unhalt, KVM_HC_KICK_CPU). */
  pvUnhalted = false;
  /** vcpu->arch.apic_arb_prio: lowest-priority arbitration tie breaker. */
  arbPrio = 0;
  /** Errors detected since the last ESR write (SDM 11.5.3: ESR is loaded on write). */
  private esrPending = 0;
  private inErrorDelivery = false;

  // Timer (struct kvm_timer)
  private divideCount = 2;
  private timerPeriodNs = 0;
  private timerTargetNs = 0;
  private timerArmed = false;
  private tscDeadline = 0;
  private timerModeMask: number;

  private readonly clock: HostClock;
  private readonly tracer: KvmTracer;
  private readonly tscKhz: number;
  private readonly reservedBaseHiMask: number;
  private readonly x2apicSupported: boolean;
  private readonly directedEoiSupported: boolean;

  constructor(
    readonly vcpu: LapicVcpuOps,
    readonly bus: LapicApicBus,
    opts: LapicOptions,
    /** The vCPU is the bootstrap processor (BSP flag of IA32_APIC_BASE after reset). */
    readonly isBsp: boolean,
  ) {
    this.clock = opts.clock;
    this.tracer = opts.tracer ?? NO_TRACER;
    this.tscKhz = opts.tscKhz ?? 1_000_000;
    const maxPhy = opts.maxPhyAddr ?? 46;
    this.reservedBaseHiMask = maxPhy >= 64 ? 0 : maxPhy <= 32 ? 0xffffffff : (0xffffffff << (maxPhy - 32)) >>> 0;
    this.x2apicSupported = opts.x2apic ?? true;
    this.directedEoiSupported = opts.directedEoi ?? true;
    this.timerModeMask = opts.tscDeadline === false ? APIC_LVT_TIMER_PERIODIC : APIC_LVT_TIMER_PERIODIC | APIC_LVT_TIMER_TSCDEADLINE;
    this.reset(false);
  }

  getReg(reg: number): number {
    return this.r32[reg >> 2];
  }
  private setReg(reg: number, v: number): void {
    this.r32[reg >> 2] = v;
  }
  private testVector(reg: number, vec: number): boolean {
    return (this.r32[(reg >> 2) + 4 * (vec >> 5)] & (1 << (vec & 31))) !== 0;
  }
  private setVector(reg: number, vec: number): void {
    this.r32[(reg >> 2) + 4 * (vec >> 5)] |= 1 << (vec & 31);
  }
  private clearVector(reg: number, vec: number): void {
    this.r32[(reg >> 2) + 4 * (vec >> 5)] &= ~(1 << (vec & 31));
  }

  // --- mode ---
  /** kvm_apic_hw_enabled(): IA32_APIC_BASE.EN */
  hwEnabled(): boolean {
    return (this.apicBaseLo & MSR_IA32_APICBASE_ENABLE) !== 0;
  }
  /** kvm_apic_sw_enabled(): SVR bit 8 */
  swEnabled(): boolean {
    return (this.getReg(APIC_SPIV) & APIC_SPIV_APIC_ENABLED) !== 0;
  }
  /** apic_enabled() */
  enabled(): boolean {
    return this.hwEnabled() && this.swEnabled();
  }
  /** apic_x2apic_mode() */
  x2apicMode(): boolean {
    return (this.apicBaseLo & X2APIC_ENABLE) !== 0;
  }
  /** The MMIO base address (apic->base_address). */
  baseAddress(): number {
    return ((this.apicBaseLo & 0xfffff000) >>> 0) + this.apicBaseHi * 0x100000000;
  }
  /** kvm_xapic_id() / kvm_x2apic_id() */
  apicId(): number {
    return this.x2apicMode() ? this.getReg(APIC_ID) : this.getReg(APIC_ID) >>> 24;
  }

  private setXapicId(id: number): void {
    this.setReg(APIC_ID, ((id & 0xff) << 24) >>> 0);
  }
  private setX2apicId(id: number): void {
    this.setReg(APIC_ID, id >>> 0);
    this.setReg(APIC_LDR, (((id >>> 4) << 16) | (1 << (id & 0xf))) >>> 0);
  }

  /** kvm_lapic_reset(): power-on / RESET (initEvent false) or INIT (initEvent true). */
  reset(initEvent: boolean): void {
    this.cancelTimer();
    if (!initEvent) {
      this.apicBaseLo = 0;
      this.apicBaseHi = 0;
      this.setBase(APIC_DEFAULT_PHYS_BASE | MSR_IA32_APICBASE_ENABLE | (this.isBsp ? MSR_IA32_APICBASE_BSP : 0), 0);
    }
    if (!this.x2apicMode()) this.setXapicId(this.vcpu.vcpuId);
    this.setReg(APIC_LVR, APIC_VERSION | ((KVM_APIC_NR_LVT - 1) << 16) | (this.directedEoiSupported ? APIC_LVR_DIRECTED_EOI : 0));
    for (const r of LVT_REGS) this.setReg(r, APIC_LVT_MASKED);
    // KVM_X86_QUIRK_LINT0_REENABLED: the BSP comes out of RESET with LINT0 as ExtINT, so the PIC works.
    if (this.isBsp && !initEvent) this.setReg(APIC_LVT0, APIC_DM_EXTINT << 8);
    this.setReg(APIC_DFR, APIC_DFR_FLAT);
    this.setReg(APIC_SPIV, 0xff);
    this.setReg(APIC_TASKPRI, 0);
    this.setReg(APIC_ARBPRI, 0);
    this.setReg(APIC_PROCPRI, 0);
    if (!this.x2apicMode()) this.setReg(APIC_LDR, 0);
    this.setReg(APIC_ESR, 0);
    this.esrPending = 0;
    this.setReg(APIC_ICR, 0);
    this.setReg(APIC_ICR2, 0);
    this.setReg(APIC_TDCR, 0);
    this.setReg(APIC_TMICT, 0);
    this.setReg(APIC_TMCCT, 0);
    for (let i = 0; i < 8; i++) {
      this.setReg(APIC_IRR + 16 * i, 0);
      this.setReg(APIC_ISR + 16 * i, 0);
      this.setReg(APIC_TMR + 16 * i, 0);
    }
    this.updateDivideCount();
    this.tscDeadline = 0;
    this.arbPrio = 0;
    this.pendingEvents = 0;
    this.nmiQueued = 0;
    this.smiPending = false;
    this.pvUnhalted = false;
  }

  /** kvm_lapic_set_base(): apply an already validated IA32_APIC_BASE value. */
  private setBase(lo: number, hi: number): void {
    const old = this.apicBaseLo;
    this.apicBaseLo = lo >>> 0;
    this.apicBaseHi = hi >>> 0;
    if ((old ^ lo) & MSR_IA32_APICBASE_ENABLE && lo & MSR_IA32_APICBASE_ENABLE) this.setXapicId(this.vcpu.vcpuId);
    if ((old ^ lo) & X2APIC_ENABLE) {
      if (lo & X2APIC_ENABLE) this.setX2apicId(this.vcpu.vcpuId);
      else if (lo & MSR_IA32_APICBASE_ENABLE) this.setXapicId(this.vcpu.vcpuId);
    }
    if (!(lo & MSR_IA32_APICBASE_ENABLE)) this.cancelTimer();
  }

  /**
   * kvm_set_apic_base() (WRMSR 0x1b): false means #GP. Reserved bits, EXTD without EN, EXTD
   * without x2APIC support, and (for the guest) x2APIC -> xAPIC or disabled -> x2APIC
   * (SDM 11.12.5, Figure 11-28) are refused.
   */
  setApicBase(lo: number, hi: number, hostInitiated: boolean): boolean {
    lo >>>= 0;
    hi >>>= 0;
    const reservedLo = 0x2ff | (this.x2apicSupported ? 0 : X2APIC_ENABLE);
    if (lo & reservedLo || hi & this.reservedBaseHiMask) return false;
    const newMode = lo & (MSR_IA32_APICBASE_ENABLE | X2APIC_ENABLE);
    if (newMode === X2APIC_ENABLE) return false;
    const oldMode = this.apicBaseLo & (MSR_IA32_APICBASE_ENABLE | X2APIC_ENABLE);
    const X2 = MSR_IA32_APICBASE_ENABLE | X2APIC_ENABLE;
    if (!hostInitiated) {
      if (oldMode === X2 && newMode === MSR_IA32_APICBASE_ENABLE) return false;
      if (oldMode === 0 && newMode === X2) return false;
    }
    this.setBase(lo, hi);
    return true;
  }

  // --- priorities and vectors ---
  /** apic_update_ppr() (SDM 11.8.3.1) */
  private updatePpr(): void {
    const isr = findHighestVector(this.r32, APIC_ISR);
    const isrv = isr < 0 ? 0 : isr;
    const tpr = this.getReg(APIC_TASKPRI);
    this.setReg(APIC_PROCPRI, (tpr & 0xf0) >= (isrv & 0xf0) ? tpr & 0xff : isrv & 0xf0);
  }

  /** kvm_apic_pending_eoi(): `vector` is requested or in service (not yet EOIed). */
  pendingEoi(vector: number): boolean {
    return this.testVector(APIC_IRR, vector) || this.testVector(APIC_ISR, vector);
  }

  /** kvm_lapic_find_highest_irr(): the highest requested vector, or -1. */
  findHighestIrr(): number {
    return findHighestVector(this.r32, APIC_IRR);
  }

  /** apic_find_highest_isr() */
  findHighestIsr(): number {
    return findHighestVector(this.r32, APIC_ISR);
  }

  /** kvm_apic_has_interrupt(): the vector the APIC would deliver now, or -1. */
  hasInterrupt(): number {
    if (!this.hwEnabled()) return -1;
    const irr = this.findHighestIrr();
    if (irr < 0 || (irr & 0xf0) <= this.getReg(APIC_PROCPRI)) return -1;
    return irr;
  }

  /** kvm_apic_ack_interrupt(): the CPU takes `vector`: IRR -> ISR, PPR rises. */
  ackInterrupt(vector: number): void {
    this.clearVector(APIC_IRR, vector);
    this.setVector(APIC_ISR, vector);
    this.updatePpr();
  }

  /** kvm_get_apic_interrupt(): has + ack in one; -1 if nothing is deliverable. */
  getInterrupt(): number {
    const v = this.hasInterrupt();
    if (v >= 0) this.ackInterrupt(v);
    return v;
  }

  /** kvm_lapic_set_tpr(): MOV to CR8 (CR8[3:0] = TPR[7:4]). */
  setCr8(cr8: number): void {
    this.setReg(APIC_TASKPRI, (cr8 & 0xf) << 4);
    this.updatePpr();
  }
  /** kvm_lapic_get_cr8() */
  getCr8(): number {
    return (this.getReg(APIC_TASKPRI) >> 4) & 0xf;
  }

  /** apic_set_eoi(): retire the highest in-service vector and tell the IOAPIC if it owns it. */
  private setEoi(): void {
    const vector = this.findHighestIsr();
    if (vector < 0) return;
    this.clearVector(APIC_ISR, vector);
    this.updatePpr();
    if (this.tracer.tracing) this.tracer.trace("kvm_eoi", { apicid: this.apicId(), vector });
    if (this.bus.ioapicHandlesVector(vector)) {
      const level = this.testVector(APIC_TMR, vector);
      this.bus.ioapicEoi(vector, level, (this.getReg(APIC_SPIV) & APIC_SPIV_DIRECTED_EOI) !== 0, this);
    }
  }

  /** Record an APIC error and raise the error LVT (SDM 11.5.3). */
  private apicError(bit: number): void {
    this.esrPending |= bit;
    if (this.inErrorDelivery) return;
    this.inErrorDelivery = true;
    this.localDeliver(APIC_LVTERR);
    this.inErrorDelivery = false;
  }

  /**
   * __apic_accept_irq(): this APIC receives a message. Returns 1 if accepted, 0 if not.
   */
  acceptIrq(deliveryMode: number, vector: number, level: number, trigMode: number): number {
    if (this.tracer.tracing) this.tracer.trace("kvm_apic_accept_irq", { apicid: this.apicId(), dm: deliveryMode, tm: trigMode, vec: vector });
    switch (deliveryMode) {
      case APIC_DM_LOWEST:
        this.arbPrio++;
        return this.acceptFixed(vector, level, trigMode);
      case APIC_DM_FIXED:
        return this.acceptFixed(vector, level, trigMode);
      case APIC_DM_REMRD:
        this.pvUnhalted = true;
        this.vcpu.kick();
        return 1;
      case APIC_DM_SMI:
        this.smiPending = true;
        this.vcpu.kick();
        return 1;
      case APIC_DM_NMI:
        this.nmiQueued++;
        this.vcpu.kick();
        return 1;
      case APIC_DM_INIT:
        // An INIT level de-assert is a no-op on modern processors.
        if (trigMode && !level) return 0;
        this.pendingEvents = KVM_APIC_INIT;
        this.vcpu.kick();
        return 1;
      case APIC_DM_STARTUP:
        this.sipiVector = vector;
        this.pendingEvents |= KVM_APIC_SIPI;
        this.vcpu.kick();
        return 1;
      default:
        // ExtINT reaches the CPU from the PIC through LINT0, never as a message.
        return 0;
    }
  }

  /** Fixed / lowest-priority acceptance: the vector goes to IRR, its trigger mode to TMR. */
  private acceptFixed(vector: number, level: number, trigMode: number): number {
    if (trigMode && !level) return 0;
    if (!this.enabled()) return 0;
    if (vector < 16) {
      this.apicError(APIC_ESR_RECV_ILLEGAL_VECTOR);
      return 0;
    }
    if (trigMode) this.setVector(APIC_TMR, vector);
    else this.clearVector(APIC_TMR, vector);
    this.setVector(APIC_IRR, vector);
    this.vcpu.kick();
    return 1;
  }

  /** kvm_apic_local_deliver(): raise the interrupt an LVT entry describes. */
  localDeliver(lvtReg: number): number {
    const reg = this.getReg(lvtReg);
    if (!this.hwEnabled() || reg & APIC_LVT_MASKED) return 0;
    return this.acceptIrq((reg >> 8) & 7, reg & 0xff, 1, reg & APIC_LVT_LEVEL_TRIGGER ? 1 : 0);
  }

  /** kvm_apic_accept_pic_intr(): does this vCPU take the PIC's INTR (ExtINT on LINT0, or APIC off)? */
  acceptPicIntr(): boolean {
    if (!this.hwEnabled()) return true;
    const lvt0 = this.getReg(APIC_LVT0);
    return (lvt0 & APIC_LVT_MASKED) === 0 && ((lvt0 >> 8) & 7) === APIC_DM_EXTINT;
  }

  /** kvm_apic_has_pending_init_or_sipi() */
  hasPendingInitOrSipi(): boolean {
    return this.pendingEvents !== 0;
  }

  /**
   * kvm_apic_accept_events(): act on a latched INIT / SIPI. Returns the new mp_state.
   * INIT resets the LAPIC (keeping IA32_APIC_BASE) and calls vcpu.initReset(); the BSP becomes
   * RUNNABLE, an AP waits in INIT_RECEIVED; a SIPI in INIT_RECEIVED starts it at vector << 12.
   */
  acceptEvents(mpState: number): number {
    const pe = this.pendingEvents;
    if (pe === 0) return mpState;
    this.pendingEvents = 0;
    const sipiVector = this.sipiVector;
    if (pe & KVM_APIC_INIT) {
      this.reset(true);
      this.vcpu.initReset?.();
      mpState = this.apicBaseLo & MSR_IA32_APICBASE_BSP ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_INIT_RECEIVED;
    }
    if (pe & KVM_APIC_SIPI && mpState === KVM_MP_STATE_INIT_RECEIVED) {
      this.vcpu.deliverSipiVector?.(sipiVector);
      mpState = KVM_MP_STATE_RUNNABLE;
    }
    return mpState;
  }

  /** The run loop takes one queued NMI (inject_pending_event). */
  takeNmi(): boolean {
    if (this.nmiQueued === 0) return false;
    this.nmiQueued--;
    return true;
  }

  // --- IPIs ---
  private readonly ipi = newLapicIrq();

  /** kvm_apic_send_ipi(): ICR low written (xAPIC) or ICR MSR written (x2APIC). */
  sendIpi(icrLow: number, icrHigh: number): void {
    const irq = this.ipi;
    irq.vector = icrLow & 0xff;
    irq.deliveryMode = (icrLow >> 8) & 7;
    irq.destMode = icrLow & APIC_DEST_LOGICAL ? 1 : 0;
    irq.level = icrLow & APIC_INT_ASSERT ? 1 : 0;
    irq.trigMode = icrLow & APIC_INT_LEVELTRIG ? 1 : 0;
    irq.shorthand = (icrLow >> 18) & 3;
    irq.msiRedirHint = false;
    irq.destId = this.x2apicMode() ? icrHigh >>> 0 : icrHigh >>> 24;
    if (this.tracer.tracing) this.tracer.trace("kvm_apic_ipi", { icr_low: icrLow >>> 0, dest_id: irq.destId });
    if ((irq.deliveryMode === APIC_DM_FIXED || irq.deliveryMode === APIC_DM_LOWEST) && irq.vector < 16) {
      this.apicError(APIC_ESR_SEND_ILLEGAL_VECTOR);
      return;
    }
    this.bus.deliverToApic(this, irq);
  }

  // --- destination matching (SDM 11.6.2) ---
  /** kvm_apic_match_physical_addr() */
  matchPhysicalAddr(mda: number): boolean {
    if (this.x2apicMode()) return mda === X2APIC_BROADCAST || mda === this.getReg(APIC_ID);
    return mda === APIC_BROADCAST || mda === this.getReg(APIC_ID) >>> 24;
  }

  /** kvm_apic_match_logical_addr() */
  matchLogicalAddr(mda: number): boolean {
    if (this.x2apicMode()) {
      if (mda === X2APIC_BROADCAST) return true;
      const ldr = this.getReg(APIC_LDR);
      return ldr >>> 16 === mda >>> 16 && (ldr & mda & 0xffff) !== 0;
    }
    if (mda === APIC_BROADCAST) return true;
    const logicalId = this.getReg(APIC_LDR) >>> 24;
    switch (this.getReg(APIC_DFR)) {
      case APIC_DFR_FLAT:
        return (logicalId & mda) !== 0;
      case APIC_DFR_CLUSTER:
        return logicalId >> 4 === mda >> 4 && (logicalId & mda & 0xf) !== 0;
      default:
        return false;
    }
  }

  /** kvm_apic_match_dest() */
  matchDest(source: KvmLapic | null, shorthand: number, dest: number, destMode: number): boolean {
    switch (shorthand) {
      case APIC_DEST_NOSHORT: {
        // An xAPIC broadcast (0xff) from the IOAPIC or an MSI reaches x2APIC targets too.
        const mda = source === null && dest === APIC_BROADCAST && this.x2apicMode() ? X2APIC_BROADCAST : dest;
        return destMode ? this.matchLogicalAddr(mda) : this.matchPhysicalAddr(mda);
      }
      case APIC_DEST_SELF:
        return source === this;
      case APIC_DEST_ALLINC:
        return true;
      default:
        return source !== this;
    }
  }

  // --- timer ---
  /** update_divide_count(): TDCR bits 0,1,3 (SDM Figure 11-10). */
  private updateDivideCount(): void {
    const t = this.getReg(APIC_TDCR) & 0xf;
    const shift = ((t & 3) | ((t & 8) >> 1)) + 1;
    this.divideCount = 1 << (shift & 7);
  }

  private timerMode(): number {
    return this.getReg(APIC_LVTT) & (APIC_LVT_TIMER_PERIODIC | APIC_LVT_TIMER_TSCDEADLINE);
  }

  private cancelTimer(): void {
    this.timerArmed = false;
  }

  /** start_apic_timer(): arm from TMICT (one-shot / periodic) or the TSC deadline; `count` overrides TMICT for the first period. */
  private startTimer(count = -1): void {
    this.cancelTimer();
    const now = this.clock.nowNs();
    if (this.timerMode() === APIC_LVT_TIMER_TSCDEADLINE) {
      this.timerPeriodNs = 0;
      if (this.tscDeadline === 0) return;
      const tscNow = this.vcpu.guestTsc ? this.vcpu.guestTsc() : now;
      const delta = this.tscDeadline - tscNow;
      const khz = (this.vcpu.guestTscKhz ? this.vcpu.guestTscKhz() : 0) || this.tscKhz;
      this.timerTargetNs = now + (delta > 0 ? (delta * 1e6) / khz : 0);
      this.timerArmed = true;
      return;
    }
    const tmict = this.getReg(APIC_TMICT);
    if (tmict === 0) {
      this.timerPeriodNs = 0;
      return;
    }
    let period = tmict * APIC_BUS_CYCLE_NS * this.divideCount;
    if (this.timerMode() === APIC_LVT_TIMER_PERIODIC && period < MIN_TIMER_PERIOD_NS) period = MIN_TIMER_PERIOD_NS;
    this.timerPeriodNs = period;
    const first = count >= 0 ? count * APIC_BUS_CYCLE_NS * this.divideCount : period;
    this.timerTargetNs = now + first;
    this.timerArmed = true;
  }

  /** apic_update_lvtt(): switching to or from TSC-deadline mode stops the timer. */
  private updateLvtt(oldMode: number): void {
    const mode = this.timerMode();
    if (oldMode === mode) return;
    if ((oldMode === APIC_LVT_TIMER_TSCDEADLINE) !== (mode === APIC_LVT_TIMER_TSCDEADLINE)) {
      this.cancelTimer();
      this.setReg(APIC_TMICT, 0);
      this.timerPeriodNs = 0;
      this.tscDeadline = 0;
    } else if (this.timerArmed && mode === APIC_LVT_TIMER_PERIODIC && this.timerPeriodNs < MIN_TIMER_PERIOD_NS) {
      this.timerPeriodNs = MIN_TIMER_PERIOD_NS;
    }
  }

  /** apic_get_tmcct(): the current count, 0 when stopped or in TSC-deadline mode. */
  private getTmcct(): number {
    const mode = this.timerMode();
    if (mode === APIC_LVT_TIMER_TSCDEADLINE || !this.timerArmed || this.getReg(APIC_TMICT) === 0 || this.timerPeriodNs === 0) return 0;
    let rem = this.timerTargetNs - this.clock.nowNs();
    if (rem < 0) rem = mode === APIC_LVT_TIMER_PERIODIC ? ((rem % this.timerPeriodNs) + this.timerPeriodNs) % this.timerPeriodNs : 0;
    return Math.min(0xffffffff, Math.floor(rem / (APIC_BUS_CYCLE_NS * this.divideCount)));
  }

  /** When the armed timer fires next (VM-clock ns), or Infinity: the HLT blocking deadline. */
  nextDeadlineNs(): number {
    return this.timerArmed ? this.timerTargetNs : Infinity;
  }

  /**
   * apic_timer_fn() + kvm_inject_apic_timer_irqs(): if the timer is due at `now`, raise LVTT.
   * Periodic timers that fell several periods behind fire once and re-arm after `now`.
   * Returns true if it fired.
   */
  pollTimer(now: number): boolean {
    if (!this.timerArmed || now < this.timerTargetNs) return false;
    const mode = this.timerMode();
    if (mode === APIC_LVT_TIMER_PERIODIC && this.timerPeriodNs > 0) {
      const missed = Math.floor((now - this.timerTargetNs) / this.timerPeriodNs) + 1;
      this.timerTargetNs += missed * this.timerPeriodNs;
    } else {
      this.timerArmed = false;
      if (mode === APIC_LVT_TIMER_TSCDEADLINE) this.tscDeadline = 0;
    }
    this.localDeliver(APIC_LVTT);
    return true;
  }

  /** kvm_get_lapic_tscdeadline_msr() (RDMSR 0x6e0) */
  getTscDeadline(): number {
    if (!this.hwEnabled() || this.timerMode() !== APIC_LVT_TIMER_TSCDEADLINE) return 0;
    return this.tscDeadline;
  }

  /** kvm_set_lapic_tscdeadline_msr() (WRMSR 0x6e0): ignored outside TSC-deadline mode; 0 disarms. */
  setTscDeadline(deadline: number): void {
    if (!this.hwEnabled() || this.timerMode() !== APIC_LVT_TIMER_TSCDEADLINE) return;
    this.tscDeadline = deadline;
    this.startTimer();
  }

  // --- register interface ---
  /** __apic_read() for a readable register. */
  private readReg(reg: number): number {
    switch (reg) {
      case APIC_ID:
        return this.getReg(APIC_ID);
      case APIC_ARBPRI:
        return 0; // not implemented by P6-family and later processors' APIC model KVM follows
      case APIC_TMCCT:
        return this.getTmcct();
      case APIC_PROCPRI:
        this.updatePpr();
        return this.getReg(APIC_PROCPRI);
      default:
        return this.getReg(reg);
    }
  }

  /** kvm_lapic_reg_read(): false for an unreadable register or a misaligned access. */
  regRead(offset: number, len: number, out: Uint8Array): boolean {
    const alignment = offset & 0xf;
    if (alignment + len > 4) return false;
    const reg = offset & ~0xf;
    const mask = this.x2apicMode() ? X2APIC_READABLE : XAPIC_READABLE;
    if (reg > 0x3f0 || !(mask[regBit(reg) >> 5] & (1 << (regBit(reg) & 31)))) return false;
    const v = this.readReg(reg) >>> (8 * alignment);
    for (let i = 0; i < len; i++) out[i] = (v >>> (8 * i)) & 0xff;
    return true;
  }

  /** kvm_lapic_reg_write(): false where x2APIC mode raises #GP (the xAPIC path ignores it). */
  regWrite(reg: number, val: number): boolean {
    val >>>= 0;
    const x2 = this.x2apicMode();
    switch (reg) {
      case APIC_ID:
        if (x2) return false;
        this.setReg(APIC_ID, val & 0xff000000);
        return true;
      case APIC_TASKPRI:
        this.setReg(APIC_TASKPRI, val & 0xff);
        this.updatePpr();
        return true;
      case APIC_EOI:
        if (x2 && val !== 0) return false;
        this.setEoi();
        return true;
      case APIC_LDR:
        if (x2) return false;
        this.setReg(APIC_LDR, val & 0xff000000);
        return true;
      case APIC_DFR:
        if (x2) return false;
        this.setReg(APIC_DFR, (val | 0x0fffffff) >>> 0);
        return true;
      case APIC_SPIV: {
        let mask = 0x3ff;
        if (this.getReg(APIC_LVR) & APIC_LVR_DIRECTED_EOI) mask |= APIC_SPIV_DIRECTED_EOI;
        this.setReg(APIC_SPIV, val & mask);
        if (!(val & APIC_SPIV_APIC_ENABLED)) {
          // Software disable masks every LVT (SDM 11.4.7.2).
          for (const r of LVT_REGS) this.setReg(r, (this.getReg(r) | APIC_LVT_MASKED) >>> 0);
        }
        return true;
      }
      case APIC_ICR:
        if (x2) return false; // the 64-bit ICR MSR goes through x2apicMsrWrite
        this.setReg(APIC_ICR, val & ~APIC_SEND_PENDING);
        this.sendIpi(val, this.getReg(APIC_ICR2));
        return true;
      case APIC_ICR2:
        if (x2) return false;
        this.setReg(APIC_ICR2, val & 0xff000000);
        return true;
      case APIC_LVT0:
      case APIC_LVTTHMR:
      case APIC_LVTPC:
      case APIC_LVT1:
      case APIC_LVTERR: {
        if (!this.swEnabled()) val |= APIC_LVT_MASKED;
        this.setReg(reg, (val & LVT_WRITE_MASK[reg]) >>> 0);
        return true;
      }
      case APIC_LVTT: {
        if (!this.swEnabled()) val |= APIC_LVT_MASKED;
        const old = this.timerMode();
        this.setReg(APIC_LVTT, (val & (LVT_WRITE_MASK[APIC_LVTT] | this.timerModeMask)) >>> 0);
        this.updateLvtt(old);
        return true;
      }
      case APIC_TMICT:
        if (this.timerMode() === APIC_LVT_TIMER_TSCDEADLINE) return true;
        this.setReg(APIC_TMICT, val);
        this.startTimer();
        return true;
      case APIC_TDCR: {
        this.setReg(APIC_TDCR, val & 0xb);
        const oldDiv = this.divideCount;
        this.updateDivideCount();
        // A running count keeps its remaining ticks at the new rate (the divider scales time).
        if (this.timerArmed && this.timerMode() !== APIC_LVT_TIMER_TSCDEADLINE && oldDiv !== this.divideCount) {
          const now = this.clock.nowNs();
          this.timerTargetNs = now + ((this.timerTargetNs - now) * this.divideCount) / oldDiv;
          this.timerPeriodNs = (this.timerPeriodNs * this.divideCount) / oldDiv;
        }
        return true;
      }
      case APIC_ESR:
        if (x2 && val !== 0) return false;
        this.setReg(APIC_ESR, this.esrPending);
        this.esrPending = 0;
        return true;
      case APIC_SELF_IPI:
        if (!x2) return false;
        this.sendIpi(APIC_DEST_SELF << 18 | (val & 0xff), 0);
        return true;
      default:
        // Read-only registers ignore writes; an address that is no register at all is an error.
        if (!x2 && !this.regRead(reg, 4, this.msrScratch) && reg !== APIC_RRR) this.apicError(APIC_ESR_ILLEGAL_REGISTER);
        return false;
    }
  }

  // KvmIoDevice: the xAPIC MMIO page (apic_mmio_read / apic_mmio_write)
  private mmioInRange(addr: number): boolean {
    const base = this.baseAddress();
    return addr >= base && addr < base + LAPIC_MMIO_LENGTH;
  }

  read(_vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
    if (!this.mmioInRange(addr)) return false;
    // Hardware-disabled or x2APIC mode: the page reads as all ones (KVM_X86_QUIRK_LAPIC_MMIO_HOLE).
    if (!this.hwEnabled() || this.x2apicMode()) {
      data.fill(0xff, 0, len);
      return true;
    }
    const offset = addr - this.baseAddress();
    data.fill(0, 0, len);
    this.regRead(offset, len, data);
    if (this.tracer.tracing) this.tracer.trace("kvm_apic", { rw: 0, reg: apicRegName(offset), val: data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24) });
    return true;
  }

  write(_vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
    if (!this.mmioInRange(addr)) return false;
    if (!this.hwEnabled() || this.x2apicMode()) return true;
    const offset = addr - this.baseAddress();
    // xAPIC registers are written as aligned dwords only (SDM 11.4.1); anything else is dropped.
    if (len !== 4 || offset & 0xf) return true;
    const val = (data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)) >>> 0;
    if (this.tracer.tracing) this.tracer.trace("kvm_apic", { rw: 1, reg: apicRegName(offset), val });
    this.regWrite(offset, val);
    return true;
  }

  /** kvm_x2apic_msr_read(): MSR 0x800-0x8ff into out[0] (lo), out[1] (hi); false = #GP. */
  x2apicMsrRead(msr: number, out: Uint32Array): boolean {
    if (!this.x2apicMode() || msr < APIC_BASE_MSR || msr > 0x8ff) return false;
    const reg = (msr - APIC_BASE_MSR) << 4;
    if (reg === APIC_ICR) {
      out[0] = this.getReg(APIC_ICR);
      out[1] = this.getReg(APIC_ICR2);
      return true;
    }
    const b = this.msrScratch;
    if (!this.regRead(reg, 4, b)) return false;
    out[0] = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
    out[1] = 0;
    return true;
  }
  private readonly msrScratch = new Uint8Array(4);

  /** kvm_x2apic_msr_write(): false = #GP (reserved bits 63:32, read-only registers, not in x2APIC mode). */
  x2apicMsrWrite(msr: number, lo: number, hi: number): boolean {
    if (!this.x2apicMode() || msr < APIC_BASE_MSR || msr > 0x8ff) return false;
    const reg = (msr - APIC_BASE_MSR) << 4;
    if (reg === APIC_ICR) {
      lo = (lo & ~APIC_SEND_PENDING) >>> 0;
      this.setReg(APIC_ICR, lo);
      this.setReg(APIC_ICR2, hi >>> 0);
      this.sendIpi(lo, hi >>> 0);
      return true;
    }
    if (hi !== 0) return false;
    return this.regWrite(reg, lo);
  }

  // --- KVM_GET_LAPIC / KVM_SET_LAPIC ---
  /** kvm_apic_get_state(): struct kvm_lapic_state (1024 bytes), TMCCT filled in, x2APIC ID in xAPIC format. */
  getState(): Uint8Array {
    const out = this.regs.slice();
    const v = new DataView(out.buffer);
    v.setUint32(APIC_TMCCT, this.getTmcct(), true);
    v.setUint32(APIC_PROCPRI, this.readReg(APIC_PROCPRI), true);
    if (this.x2apicMode()) v.setUint32(APIC_ID, (this.getReg(APIC_ID) << 24) >>> 0, true);
    return out;
  }

  /** kvm_apic_set_state(): load registers (IA32_APIC_BASE is set separately via the MSR) and restart the timer from TMCCT. */
  setState(state: Uint8Array): void {
    if (state.byteLength < 1024) throw new RangeError("kvm_lapic_state is 1024 bytes");
    const tscDeadline = this.tscDeadline;
    this.regs.set(state.subarray(0, 1024));
    if (this.x2apicMode()) this.setX2apicId(this.getReg(APIC_ID) >>> 24);
    this.setReg(APIC_LVR, APIC_VERSION | ((KVM_APIC_NR_LVT - 1) << 16) | (this.directedEoiSupported ? APIC_LVR_DIRECTED_EOI : 0));
    this.updatePpr();
    this.updateDivideCount();
    this.esrPending = 0;
    this.cancelTimer();
    const tmcct = this.getReg(APIC_TMCCT);
    this.setReg(APIC_TMCCT, 0);
    if (this.timerMode() === APIC_LVT_TIMER_TSCDEADLINE) {
      this.tscDeadline = tscDeadline;
      this.startTimer();
    } else if (this.getReg(APIC_TMICT) !== 0 && (tmcct !== 0 || this.timerMode() === APIC_LVT_TIMER_PERIODIC)) {
      this.startTimer(tmcct !== 0 ? tmcct : -1);
    }
    if (this.findHighestIrr() >= 0) this.vcpu.kick();
  }
}
