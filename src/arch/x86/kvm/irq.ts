/**
 * arch/x86/kvm/irq.c plus the irqchip VM ioctls of x86.c: the per-VM in-kernel interrupt
 * controller (PIC pair, IOAPIC, PIT, GSI routing, one LAPIC per vCPU) and the questions the run
 * loop asks it: kvm_cpu_has_injectable_intr(), kvm_cpu_get_interrupt(), pending timers, the HLT
 * wake-up deadline.
 *
 * Life cycle: `new KvmX86Irq(opts)` in kvm_arch_init_vm(); `createIrqchip()` for
 * KVM_CREATE_IRQCHIP (before any vCPU); `createLapic()` in kvm_arch_vcpu_create().
 */
import { EEXIST, EINVAL, ENOENT, ENXIO } from "../../../uapi/errno.js";
import {
  KVM_IRQCHIP_IOAPIC,
  KVM_IRQCHIP_PIC_MASTER,
  KVM_IRQCHIP_PIC_SLAVE,
  KVM_USERSPACE_IRQ_SOURCE_ID,
  type KvmIrqchip,
  type KvmIrqRoutingEntry,
  type KvmMsi,
  type KvmPitChannelState,
  type KvmPitState2,
} from "../../../uapi/irqchip.js";
import type { KvmIoBusRegistry } from "../../../virt/kvm/eventfd.js";
import { KvmIrqRouting, type KvmTracer } from "../../../virt/kvm/irqchip.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import { KvmBus, type KvmIoDevice } from "../../../virt/kvm/kvm_host.js";
import { KvmPit, KVM_PIT_BASE_ADDRESS, KVM_SPEAKER_BASE_ADDRESS } from "./i8254.js";
import { KvmPic } from "./i8259.js";
import { IOAPIC_MEM_LENGTH, KvmIoapic } from "./ioapic.js";
import { defaultIrqRouting, kvmIrqDeliveryToApic, X86IrqRoutingArch, type LapicList } from "./irq_comm.js";
import type { HostClock } from "../../../host/clock.js";
import { KvmLapic, type KvmLapicIrq, type LapicApicBus, type LapicOptions, type LapicVcpuOps } from "./lapic.js";

export interface KvmX86IrqOptions {
  clock: HostClock;
  /** The VM's io buses (kvm_io_bus_register_dev). */
  bus: KvmIoBusRegistry;
  /** Defaults for every LAPIC (TSC frequency, MAXPHYADDR, x2APIC / TSC-deadline exposure). */
  lapic?: Omit<LapicOptions, "clock" | "tracer">;
  /** The VM, for tracepoints (kvm.tracing / kvm.trace). */
  kvm?: KvmTracer;
}

/** The vCPU as the irqchip sees it: only its index in kvm->vcpus. */
export interface IrqVcpuRef {
  readonly vcpuIdx: number;
}

/** KVM_PIT_SPEAKER_DUMMY: the speaker port is left to userspace. */
const KVM_PIT_SPEAKER_DUMMY = 1;

/** kvm->arch's interrupt controller part: vpic, vioapic, vpit, irq routing, and the vCPUs' LAPICs. */
export class KvmX86Irq implements LapicApicBus {
  pic: KvmPic | null = null;
  ioapic: KvmIoapic | null = null;
  routing: KvmIrqRouting | null = null;
  pit: KvmPit | null = null;
  readonly lapics: LapicList = [];
  private pitSpeaker = false;

  constructor(readonly opts: KvmX86IrqOptions) {}

  /** irqchip_in_kernel() */
  irqchipInKernel(): boolean {
    return this.pic !== null;
  }

  /** KVM_CREATE_IRQCHIP: PIC pair + IOAPIC on the buses, default GSI routing. */
  createIrqchip(createdVcpus: number): void {
    const ioctl = "KVM_CREATE_IRQCHIP";
    if (this.pic) throw new KvmError(EEXIST, ioctl);
    if (createdVcpus > 0) throw new KvmError(EINVAL, ioctl, "vCPUs already exist");
    const routing = new KvmIrqRouting(new X86IrqRoutingArch(this, this.lapics), this.opts.kvm);
    const pic = new KvmPic(routing, (level) => this.picOutput(level));
    const ioapic = new KvmIoapic(routing, (irq, destMap) => kvmIrqDeliveryToApic(this.lapics, null, irq, destMap), this.lapics);
    routing.setIrqRouting(defaultIrqRouting());
    const b = this.opts.bus;
    const devs: [KvmBus, number, number, KvmIoDevice][] = [
      [KvmBus.PIO, 0x20, 2, pic.devMaster],
      [KvmBus.PIO, 0xa0, 2, pic.devSlave],
      [KvmBus.PIO, 0x4d0, 2, pic.devElcr],
      [KvmBus.MMIO, ioapic.baseAddress, IOAPIC_MEM_LENGTH, ioapic],
    ];
    let done = 0;
    try {
      for (; done < devs.length; done++) b.ioBusRegisterDev(...devs[done]);
    } catch (e) {
      while (done-- > 0) b.ioBusUnregisterDev(devs[done][0], devs[done][3]);
      throw e;
    }
    this.pic = pic;
    this.ioapic = ioapic;
    this.routing = routing;
  }

  /** pic_unlock()'s kick: wake the first vCPU whose LAPIC takes PIC interrupts. */
  private picOutput(level: boolean): void {
    if (!level) return;
    for (const apic of this.lapics) {
      if (apic && apic.acceptPicIntr()) {
        apic.vcpu.kick();
        return;
      }
    }
  }

  /** kvm_create_lapic(): the LAPIC of vCPU `vcpuIdx` (vcpu_id in ops.vcpuId); BSP is vcpu_id 0 unless told. */
  createLapic(vcpuIdx: number, ops: LapicVcpuOps, isBsp = ops.vcpuId === 0): KvmLapic {
    const apic = new KvmLapic(ops, this, { clock: this.opts.clock, tracer: this.opts.kvm, ...this.opts.lapic }, isBsp);
    while (this.lapics.length <= vcpuIdx) this.lapics.push(null);
    this.lapics[vcpuIdx] = apic;
    return apic;
  }

  /** kvm_free_lapic() */
  destroyLapic(vcpuIdx: number): void {
    if (vcpuIdx < this.lapics.length) this.lapics[vcpuIdx] = null;
  }

  lapic(vcpu: IrqVcpuRef): KvmLapic | null {
    return this.lapics[vcpu.vcpuIdx] ?? null;
  }

  // LapicApicBus
  deliverToApic(src: KvmLapic | null, irq: KvmLapicIrq): number {
    return kvmIrqDeliveryToApic(this.lapics, src, irq);
  }
  ioapicHandlesVector(vector: number): boolean {
    return this.ioapic !== null && this.ioapic.handlesVector(vector);
  }
  ioapicEoi(vector: number, levelTriggered: boolean, directedEoi: boolean, from: KvmLapic): void {
    this.ioapic?.updateEoi(vector, levelTriggered, directedEoi, from);
  }

  // ------------------------------------------------------------------ VM ioctls
  private requireIrqchip(ioctl: string, errno = ENXIO): KvmIrqRouting {
    if (!this.routing) throw new KvmError(errno, ioctl, "no in-kernel irqchip");
    return this.routing;
  }

  /** KVM_IRQ_LINE / KVM_IRQ_LINE_STATUS (kvm_vm_ioctl_irq_line): returns the status (-1 / 0 / >0). */
  irqLine(irq: number, level: number, lineStatus = false): number {
    const routing = this.requireIrqchip(lineStatus ? "KVM_IRQ_LINE_STATUS" : "KVM_IRQ_LINE");
    return routing.setIrq(KVM_USERSPACE_IRQ_SOURCE_ID, irq >>> 0, level ? 1 : 0, lineStatus);
  }

  /** KVM_GET_IRQCHIP */
  getIrqchip(chipId: number): KvmIrqchip {
    this.requireIrqchip("KVM_GET_IRQCHIP");
    switch (chipId) {
      case KVM_IRQCHIP_PIC_MASTER:
      case KVM_IRQCHIP_PIC_SLAVE:
        return { chipId, pic: this.pic!.getState(chipId) };
      case KVM_IRQCHIP_IOAPIC:
        return { chipId, ioapic: this.ioapic!.getState() };
      default:
        throw new KvmError(EINVAL, "KVM_GET_IRQCHIP", `chip ${chipId}`);
    }
  }

  /** KVM_SET_IRQCHIP */
  setIrqchip(chip: KvmIrqchip | { chipId: number }): void {
    this.requireIrqchip("KVM_SET_IRQCHIP");
    if ("pic" in chip && (chip.chipId === KVM_IRQCHIP_PIC_MASTER || chip.chipId === KVM_IRQCHIP_PIC_SLAVE)) this.pic!.setState(chip.chipId, chip.pic);
    else if ("ioapic" in chip && chip.chipId === KVM_IRQCHIP_IOAPIC) this.ioapic!.setState(chip.ioapic);
    else throw new KvmError(EINVAL, "KVM_SET_IRQCHIP", `chip ${chip.chipId}`);
  }

  /** KVM_SET_GSI_ROUTING (EINVAL without an in-kernel irqchip: kvm_arch_can_set_irq_routing()). */
  setGsiRouting(entries: readonly KvmIrqRoutingEntry[], flags = 0): void {
    this.requireIrqchip("KVM_SET_GSI_ROUTING", EINVAL).setIrqRouting(entries, flags);
  }

  /** KVM_SIGNAL_MSI: returns >0 delivered, 0 blocked, -1 no target... as kvm_send_userspace_msi(). */
  signalMsi(msi: KvmMsi): number {
    return this.requireIrqchip("KVM_SIGNAL_MSI", EINVAL).sendUserspaceMsi(msi);
  }

  /** KVM_CREATE_PIT2 (kvm_pit_config.flags: KVM_PIT_SPEAKER_DUMMY leaves port 0x61 to userspace). */
  createPit2(flags = 0): void {
    if (this.pit) throw new KvmError(EEXIST, "KVM_CREATE_PIT2");
    const routing = this.requireIrqchip("KVM_CREATE_PIT2", ENOENT);
    const pit = new KvmPit(this.opts.clock, routing);
    this.opts.bus.ioBusRegisterDev(KvmBus.PIO, KVM_PIT_BASE_ADDRESS, 4, pit.dev);
    this.pitSpeaker = !(flags & KVM_PIT_SPEAKER_DUMMY);
    if (this.pitSpeaker) this.opts.bus.ioBusRegisterDev(KvmBus.PIO, KVM_SPEAKER_BASE_ADDRESS, 1, pit.speakerDev);
    this.pit = pit;
  }

  /** KVM_CREATE_PIT (legacy): a PIT whose speaker port is left to userspace. */
  createPit(): void {
    this.createPit2(KVM_PIT_SPEAKER_DUMMY);
  }

  /** KVM_GET_PIT (legacy struct kvm_pit_state: the three channels). */
  getPit(): KvmPitChannelState[] {
    return this.requirePit("KVM_GET_PIT").getState().channels;
  }

  /** KVM_SET_PIT (legacy) */
  setPit(channels: readonly KvmPitChannelState[]): void {
    this.requirePit("KVM_SET_PIT").setChannels(channels);
  }

  private requirePit(ioctl: string): KvmPit {
    if (!this.pit) throw new KvmError(ENXIO, ioctl, "no PIT");
    return this.pit;
  }

  /** KVM_GET_PIT2 */
  getPit2(): KvmPitState2 {
    return this.requirePit("KVM_GET_PIT2").getState();
  }

  /** KVM_SET_PIT2 */
  setPit2(s: KvmPitState2): void {
    this.requirePit("KVM_SET_PIT2").setState(s);
  }

  /** KVM_REINJECT_CONTROL (struct kvm_reinject_control.pit_reinject) */
  reinjectControl(pitReinject: number): void {
    this.requirePit("KVM_REINJECT_CONTROL").setReinject(pitReinject !== 0);
  }

  /** kvm_arch_destroy_vm(): free the PIT's source id and notifiers. */
  destroy(): void {
    if (this.pit) {
      this.opts.bus.ioBusUnregisterDev(KvmBus.PIO, this.pit.dev);
      if (this.pitSpeaker) this.opts.bus.ioBusUnregisterDev(KvmBus.PIO, this.pit.speakerDev);
      this.pit.destroy();
      this.pit = null;
    }
  }

  // ------------------------------------------------------------------ run loop (irq.c)
  /** kvm_cpu_has_extint(): the PIC's INTR reaches this vCPU. */
  cpuHasExtint(vcpu: IrqVcpuRef): boolean {
    const apic = this.lapics[vcpu.vcpuIdx];
    if (!this.pic || !this.pic.output) return false;
    return apic ? apic.acceptPicIntr() : true;
  }

  /** kvm_cpu_has_injectable_intr() / kvm_cpu_has_interrupt() */
  hasInjectableIntr(vcpu: IrqVcpuRef): boolean {
    if (this.cpuHasExtint(vcpu)) return true;
    const apic = this.lapics[vcpu.vcpuIdx];
    return apic ? apic.hasInterrupt() >= 0 : false;
  }

  /**
   * kvm_cpu_get_interrupt(): acknowledge and return the vector to inject: the PIC's (INTA cycle)
   * if it drives this vCPU, else the LAPIC's (IRR -> ISR). -1 if none.
   */
  getInterrupt(vcpu: IrqVcpuRef): number {
    if (this.cpuHasExtint(vcpu)) return this.pic!.readIrq();
    const apic = this.lapics[vcpu.vcpuIdx];
    return apic ? apic.getInterrupt() : -1;
  }

  /**
   * kvm_inject_pending_timer_irqs(): fire the vCPU's APIC timer and the PIT if due at `now`
   * (VM-clock ns). Call before deciding what to inject, and after waking from HLT.
   */
  pollTimers(vcpu: IrqVcpuRef, now: number): void {
    this.pit?.pollTimer(now);
    this.lapics[vcpu.vcpuIdx]?.pollTimer(now);
  }

  /** The earliest timer deadline that can wake this vCPU (ns, or Infinity): how long HLT may block. */
  nextDeadlineNs(vcpu: IrqVcpuRef): number {
    const a = this.lapics[vcpu.vcpuIdx]?.nextDeadlineNs() ?? Infinity;
    const p = this.pit ? this.pit.nextDeadlineNs() : Infinity;
    return a < p ? a : p;
  }

  /**
   * The irqchip half of kvm_vcpu_has_events() / kvm_arch_vcpu_runnable(): an interrupt, NMI,
   * SMI, INIT/SIPI or PV kick is pending for this vCPU.
   */
  hasEvents(vcpu: IrqVcpuRef): boolean {
    const apic = this.lapics[vcpu.vcpuIdx];
    if (this.hasInjectableIntr(vcpu)) return true;
    return apic !== null && apic !== undefined && (apic.nmiQueued > 0 || apic.smiPending || apic.pendingEvents !== 0 || apic.pvUnhalted);
  }
}
