/**
 * The in-kernel irqchip side of arch/x86/kvm/x86.c: the irqchip VM ioctls (KVM_CREATE_IRQCHIP,
 * KVM_IRQ_LINE(_STATUS), KVM_GET/SET_IRQCHIP, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI,
 * KVM_CREATE_PIT2, KVM_GET/SET_PIT2, KVM_REINJECT_CONTROL, KVM_IRQFD, KVM_IOEVENTFD), the
 * per-vCPU LAPIC (kvm_create_lapic, KVM_GET/SET_LAPIC, the APIC MSRs, CR8 as the TPR), and
 * what the run loop asks of them: pending timers, INIT/SIPI (kvm_apic_accept_events), NMIs,
 * and blocking a halted vCPU until an interrupt or timer wakes it (kvm_vcpu_halt).
 *
 * The device models themselves are irq.ts, lapic.ts, i8259.ts, ioapic.ts, i8254.ts.
 */

import { EINVAL, ENXIO } from "../../../uapi/errno.js";
import * as K from "../../../uapi/kvm.js";
import {
  KVM_REINJECT_CONTROL, decodeIrqRouting, decodeIrqchip, decodePitState2, encodeIrqchip, encodePitState2,
  type KvmIrqchip, type KvmMsi,
} from "../../../uapi/irqchip.js";
import type { KvmIrqLevel, KvmIrqfd, KvmIoeventfd, KvmPitConfig } from "../../../uapi/kvm_structs.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import { KvmEventfds } from "../../../virt/kvm/eventfd.js";
import { registerArchIoctlArg, copyIn, copyInBytes } from "../../../virt/kvm/kvm_ioctl_args.js";
import { StructCodec } from "../../../uapi/struct.js";
import { kvmVcpuKick, type KvmVcpu } from "../../../virt/kvm/kvm_main.js";
import { kvmVcpuHalt, HaltResult } from "../../../virt/kvm/kvm_vcpu_halt.js";
import { kvmGuestTsc, kvmHasTsc } from "./tsc.js";
import { KvmX86Irq } from "./irq.js";
import type { KvmLapic } from "./lapic.js";
import { KVM_REQ_EVENT, KVM_REQ_NMI, kvmMakeRequest, type X86Kvm, type X86Vcpu } from "./kvm_host.js";

const SZ_LAPIC_STATE = 1024;

/** The VM's irqchip state: the devices (created by KVM_CREATE_IRQCHIP) and the eventfd plumbing. */
export class KvmX86IrqchipState {
  constructor(
    readonly irq: KvmX86Irq,
    readonly eventfds: KvmEventfds | null,
  ) {}
}

/** kvm_arch_init_vm(): the (not yet created) interrupt controller of a VM. */
export function kvmIrqchipInitVm(kvm: X86Kvm): KvmX86IrqchipState {
  const vm = kvm;
  const irq = new KvmX86Irq({ clock: vm.proc.clock, bus: vm, lapic: { maxPhyAddr: 36, x2apic: true, tscDeadline: true, directedEoi: true } });
  const eventfds = new KvmEventfds(vm, vm.proc.files);
  return new KvmX86IrqchipState(irq, eventfds);
}

function irqState(kvm: X86Kvm): KvmX86IrqchipState {
  return kvm.arch.irqState as KvmX86IrqchipState;
}

/** irqchip_in_kernel() */
export function irqchipInKernel(kvm: X86Kvm): boolean {
  return kvm.arch.irqchip !== null;
}

/** The VM-level irqchip ioctls; returns undefined for any other request. */
export function kvmIrqchipVmIoctl(kvm: X86Kvm, nr: number, arg: number | object): number | object | undefined {
  const st = irqState(kvm);
  const irq = st.irq;
  switch (nr) {
    case K.KVM_CREATE_IRQCHIP:
      irq.createIrqchip(kvm.arch.vcpus.length);
      kvm.arch.irqchip = irq;
      if (st.eventfds) st.eventfds.irqRouting = irq.routing;
      return 0;
    case K.KVM_IRQ_LINE: {
      const l = arg as KvmIrqLevel;
      irq.irqLine(l.irq, l.level, false);
      return 0;
    }
    case K.KVM_IRQ_LINE_STATUS: {
      const l = arg as KvmIrqLevel;
      // The status comes back in the irq field of struct kvm_irq_level.
      const status = irq.irqLine(l.irq, l.level, true);
      return { irq: status >>> 0, level: l.level };
    }
    case K.KVM_GET_IRQCHIP: {
      const req = arg instanceof Uint8Array ? decodeIrqchip(arg) : (arg as { chipId: number });
      return arg instanceof Uint8Array ? encodeIrqchip(irq.getIrqchip(req.chipId)) : irq.getIrqchip(req.chipId);
    }
    case K.KVM_SET_IRQCHIP:
      irq.setIrqchip(arg instanceof Uint8Array ? decodeIrqchip(arg) : (arg as KvmIrqchip));
      return 0;
    case K.KVM_SET_GSI_ROUTING: {
      const r = arg as { flags: number; entries: ReturnType<typeof decodeIrqRouting>["entries"] };
      irq.setGsiRouting(r.entries, r.flags);
      return 0;
    }
    case K.KVM_SIGNAL_MSI: {
      const m = arg as { address_lo: number; address_hi: number; data: number; flags: number; devid: number };
      const msi: KvmMsi = { addressLo: m.address_lo, addressHi: m.address_hi, data: m.data, flags: m.flags, devid: m.devid };
      return irq.signalMsi(msi);
    }
    case K.KVM_CREATE_PIT2:
      irq.createPit2((arg as KvmPitConfig).flags);
      return 0;
    case K.KVM_GET_PIT2:
      return arg instanceof Uint8Array ? encodePitState2(irq.getPit2()) : irq.getPit2();
    case K.KVM_SET_PIT2:
      irq.setPit2(arg instanceof Uint8Array ? decodePitState2(arg) : (arg as ReturnType<typeof decodePitState2>));
      return 0;
    case KVM_REINJECT_CONTROL: {
      const v = arg instanceof Uint8Array ? arg[0] : typeof arg === "number" ? arg : (arg as { pit_reinject: number }).pit_reinject;
      irq.reinjectControl(v);
      return 0;
    }
    case K.KVM_IRQFD: {
      if (!st.eventfds) throw new KvmError(ENXIO, "KVM_IRQFD");
      const a = arg as KvmIrqfd;
      return st.eventfds.irqfd({ fd: a.fd, gsi: a.gsi, flags: a.flags, resamplefd: a.resamplefd });
    }
    case K.KVM_IOEVENTFD: {
      if (!st.eventfds) throw new KvmError(ENXIO, "KVM_IOEVENTFD");
      const a = arg as KvmIoeventfd;
      return st.eventfds.ioeventfd({ datamatch: a.datamatch, addr: a.addr, len: a.len, fd: a.fd, flags: a.flags });
    }
    default:
      return undefined;
  }
}

/** The vCPU's LAPIC, or null without an in-kernel irqchip (vcpu->arch.apic). */
export function vcpuLapic(vcpu: X86Vcpu): KvmLapic | null {
  return (vcpu.arch.lapic as KvmLapic | null) ?? null;
}

/** kvm_create_lapic() from kvm_arch_vcpu_create(). */
export function kvmCreateLapic(vcpu: X86Vcpu): void {
  const kvm = vcpu.kvm;
  if (!irqchipInKernel(kvm)) return;
  const irq = irqState(kvm).irq;
  const a = vcpu.arch;
  a.lapic = irq.createLapic(vcpu.vcpuIdx, {
    vcpuId: vcpu.vcpuId,
    kick: () => {
      kvmMakeRequest(vcpu, KVM_REQ_EVENT);
      kvmVcpuKick(vcpu);
    },
    initReset: () => a.ops.vcpuReset(vcpu, true),
    deliverSipiVector: (vector: number) => {
      // vcpu_deliver_sipi_vector(): CS.selector = vector << 8, CS.base = vector << 12, IP = 0.
      const seg = { base: vector * 4096, limit: 0xffff, selector: (vector << 8) & 0xffff, type: 0xb, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0, unusable: 0 };
      a.ops.setSegment(vcpu, seg, 1);
      a.rip = 0;
      a.regsAvail |= 1 << 16;
      a.regsDirty |= 1 << 16;
    },
    guestTsc: kvmHasTsc(vcpu) ? () => kvmGuestTsc(vcpu) : undefined,
    guestTscKhz: () => a.tsc.virtualTscKhz,
  });
  const lapic = vcpuLapic(vcpu)!;
  lapic.setApicBase((0xfee00000 | (vcpu.vcpuIdx === 0 ? 0x900 : 0x800)) >>> 0, 0, true);
  a.apicBase = (0xfee00000 | (vcpu.vcpuIdx === 0 ? 0x900 : 0x800)) >>> 0;
  // An AP waits for INIT/SIPI (kvm_arch_vcpu_create: only the BSP starts RUNNABLE with a LAPIC).
  a.mpState = vcpu.vcpuIdx === 0 ? K.KVM_MP_STATE_RUNNABLE : K.KVM_MP_STATE_UNINITIALIZED;
}

export function kvmFreeLapic(vcpu: X86Vcpu): void {
  if (vcpuLapic(vcpu) === null) return;
  irqState(vcpu.kvm).irq.destroyLapic(vcpu.vcpuIdx);
  vcpu.arch.lapic = null;
}

/** KVM_GET_LAPIC / KVM_SET_LAPIC; returns undefined for other requests. */
export function kvmLapicVcpuIoctl(vcpu: X86Vcpu, nr: number, arg: number | object): number | object | undefined {
  if (nr !== K.KVM_GET_LAPIC && nr !== K.KVM_SET_LAPIC) return undefined;
  const lapic = vcpuLapic(vcpu);
  const name = nr === K.KVM_GET_LAPIC ? "KVM_GET_LAPIC" : "KVM_SET_LAPIC";
  if (lapic === null) throw new KvmError(ENXIO, name, "no in-kernel irqchip");
  if (nr === K.KVM_GET_LAPIC) return lapic.getState();
  if (!(arg instanceof Uint8Array) || arg.byteLength < SZ_LAPIC_STATE) throw new KvmError(EINVAL, name, "struct kvm_lapic_state is 1024 bytes");
  lapic.setState(arg);
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
  return 0;
}

const msrU32 = new Uint32Array(2);

/** APIC MSRs: IA32_APIC_BASE (0x1b), x2APIC (0x800-0x8ff), TSC_DEADLINE (0x6e0). Undefined = not an APIC MSR / no LAPIC. */
export function kvmLapicGetMsr(vcpu: X86Vcpu, index: number, out: Int32Array): boolean | undefined {
  const lapic = vcpuLapic(vcpu);
  if (lapic === null) return undefined;
  if (index === 0x1b) {
    out[0] = lapic.apicBaseLo | 0;
    out[1] = lapic.apicBaseHi | 0;
    return true;
  }
  if (index === 0x6e0) {
    const d = lapic.getTscDeadline();
    const hi = Math.floor(d / 4294967296);
    out[0] = (d - hi * 4294967296) | 0;
    out[1] = hi | 0;
    return true;
  }
  if (index >= 0x800 && index <= 0x8ff) {
    if (!lapic.x2apicMsrRead(index, msrU32)) return false;
    out[0] = msrU32[0] | 0;
    out[1] = msrU32[1] | 0;
    return true;
  }
  return undefined;
}

export function kvmLapicSetMsr(vcpu: X86Vcpu, index: number, lo: number, hi: number, hostInitiated: boolean): boolean | undefined {
  const lapic = vcpuLapic(vcpu);
  if (lapic === null) return undefined;
  if (index === 0x1b) {
    if (!lapic.setApicBase(lo >>> 0, hi >>> 0, hostInitiated)) return false;
    vcpu.arch.apicBase = (hi >>> 0) * 4294967296 + (lo >>> 0);
    return true;
  }
  if (index === 0x6e0) {
    lapic.setTscDeadline((hi >>> 0) * 4294967296 + (lo >>> 0));
    return true;
  }
  if (index >= 0x800 && index <= 0x8ff) return lapic.x2apicMsrWrite(index, lo >>> 0, hi >>> 0);
  return undefined;
}

/**
 * Before each entry (vcpu_run's kvm_cpu_has_pending_timer / kvm_inject_pending_timer_irqs and
 * kvm_apic_accept_events): fire due timers, take INIT/SIPI and queued NMIs, and ask for
 * event injection when an interrupt is pending.
 */
export function kvmIrqchipBeforeEntry(vcpu: X86Vcpu): void {
  const kvm = vcpu.kvm;
  const st = irqState(kvm);
  const lapic = vcpuLapic(vcpu);
  st.irq.pollTimers(vcpu, kvm.proc.clock.nowNs());
  if (lapic !== null) {
    if (lapic.hasPendingInitOrSipi()) vcpu.arch.mpState = lapic.acceptEvents(vcpu.arch.mpState);
    // Each LAPIC NMI is counted (nmi_queued); process_nmi() applies the pending limit.
    let n = 0;
    while (lapic.takeNmi()) n++;
    if (n > 0) {
      vcpu.arch.nmiQueued += n;
      kvmMakeRequest(vcpu, KVM_REQ_NMI);
    }
    vcpu.arch.cr8 = lapic.getCr8();
  }
  if (st.irq.hasInjectableIntr(vcpu)) kvmMakeRequest(vcpu, KVM_REQ_EVENT);
}

/**
 * vcpu_block(): a vCPU that is not runnable (HLT with an in-kernel LAPIC, or waiting for
 * INIT/SIPI) waits until an interrupt, NMI or INIT/SIPI arrives. Returns false when the wait
 * was interrupted (signal, kick, nothing that could wake it): KVM_RUN then returns -EINTR.
 */
export function kvmVcpuBlock(vcpu: X86Vcpu): boolean {
  const kvm = vcpu.kvm;
  const st = irqState(kvm);
  const a = vcpu.arch;
  // kvm_vcpu_has_events(): an interrupt only counts if the guest can take it now (IF=1, no
  // shadow); HLT with interrupts disabled sleeps until an NMI, INIT/SIPI or a signal.
  const runnable = (): boolean => {
    const lapic = vcpuLapic(vcpu);
    if (lapic !== null && (lapic.hasPendingInitOrSipi() || lapic.pvUnhalted)) return true;
    if (a.mpState !== K.KVM_MP_STATE_HALTED) return false;
    if ((a.nmiPending > 0 || a.nmiQueued > 0 || (lapic !== null && lapic.nmiQueued > 0)) && a.ops.nmiAllowed(vcpu, false)) return true;
    return a.ops.interruptAllowed(vcpu, false) && st.irq.hasInjectableIntr(vcpu);
  };
  const r = kvmVcpuHalt(vcpu as unknown as KvmVcpu, {
    runnable,
    nextDeadlineNs: () => st.irq.nextDeadlineNs(vcpu),
    runTimers: (now) => st.irq.pollTimers(vcpu, now),
  });
  if (r !== HaltResult.Woken) return false;
  const lapic = vcpuLapic(vcpu);
  if (lapic !== null && lapic.hasPendingInitOrSipi()) a.mpState = lapic.acceptEvents(a.mpState);
  if (a.mpState === K.KVM_MP_STATE_HALTED) a.mpState = K.KVM_MP_STATE_RUNNABLE;
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
  return a.mpState === K.KVM_MP_STATE_RUNNABLE;
}

/** kvm_arch_destroy_vm() part: stop the PIT and its timers. */
export function kvmIrqchipDestroyVm(kvm: X86Kvm): void {
  irqState(kvm).irq.destroy();
}

/** struct kvm_irq_routing's header { u32 nr; u32 flags; } */
const kvm_irq_routing_header = new StructCodec<{ nr: number; flags: number }>("kvm_irq_routing", 8, { nr: [0, "u32"], flags: [4, "u32"] });

// KVM_SET_GSI_ROUTING carries nr entries after its header: the byte-level path must read them all.
registerArchIoctlArg(K.KVM_SET_GSI_ROUTING, {
  name: "KVM_SET_GSI_ROUTING",
  read(mm, hva) {
    const h = copyIn(mm, kvm_irq_routing_header, hva, "KVM_SET_GSI_ROUTING");
    if (h.nr > 4096) throw new KvmError(EINVAL, "KVM_SET_GSI_ROUTING", `nr ${h.nr}`);
    return decodeIrqRouting(copyInBytes(mm, hva, 8 + 48 * h.nr, "KVM_SET_GSI_ROUTING"));
  },
});
