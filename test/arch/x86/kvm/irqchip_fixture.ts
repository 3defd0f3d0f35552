// Shared test fixture for the x86 irqchip tests: a virtual clock, a small io bus that dispatches
// the way kvm_io_bus does (first device whose range holds the access and that accepts it), and a
// VM with the in-kernel irqchip and N LAPICs whose vCPU hooks are recorded.
import type { KvmIoBusRegistry } from "../../../../src/virt/kvm/eventfd.js";
import { KvmBus, type KvmIoDevice } from "../../../../src/virt/kvm/kvm_host.js";
import { KvmX86Irq } from "../../../../src/arch/x86/kvm/irq.js";
import type { KvmLapic, LapicVcpuOps } from "../../../../src/arch/x86/kvm/lapic.js";

export class VirtualClock {
  t = 0;
  nowNs(): number {
    return this.t;
  }
  advance(ns: number): void {
    this.t += ns;
  }
}

interface Reg {
  bus: KvmBus;
  addr: number;
  len: number;
  dev: KvmIoDevice;
}

export class FakeBus implements KvmIoBusRegistry {
  readonly regs: Reg[] = [];
  ioBusRegisterDev(bus: KvmBus, addr: number, len: number, dev: KvmIoDevice): void {
    this.regs.push({ bus, addr, len, dev });
  }
  ioBusUnregisterDev(bus: KvmBus, dev: KvmIoDevice): void {
    const i = this.regs.findIndex((r) => r.bus === bus && r.dev === dev);
    if (i < 0) throw new Error("not registered");
    this.regs.splice(i, 1);
  }
  write(bus: KvmBus, addr: number, len: number, data: Uint8Array): boolean {
    for (const r of this.regs) {
      if (r.bus !== bus) continue;
      const inside = r.len === 0 ? addr === r.addr : addr >= r.addr && addr + len <= r.addr + r.len;
      if (inside && r.dev.write(null, addr, len, data)) return true;
    }
    return false;
  }
  read(bus: KvmBus, addr: number, len: number, data: Uint8Array): boolean {
    for (const r of this.regs) {
      if (r.bus !== bus) continue;
      if (addr >= r.addr && addr + len <= r.addr + r.len && r.dev.read(null, addr, len, data)) return true;
    }
    return false;
  }
  outb(port: number, v: number): void {
    if (!this.write(KvmBus.PIO, port, 1, Uint8Array.of(v))) throw new Error(`no device at port 0x${port.toString(16)}`);
  }
  inb(port: number): number {
    const d = new Uint8Array(1);
    if (!this.read(KvmBus.PIO, port, 1, d)) throw new Error(`no device at port 0x${port.toString(16)}`);
    return d[0];
  }
  writel(addr: number, v: number): void {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    if (!this.write(KvmBus.MMIO, addr, 4, d)) throw new Error(`no device at 0x${addr.toString(16)}`);
  }
  readl(addr: number): number {
    const d = new Uint8Array(4);
    if (!this.read(KvmBus.MMIO, addr, 4, d)) throw new Error(`no device at 0x${addr.toString(16)}`);
    return new DataView(d.buffer).getUint32(0, true);
  }
}

export class RecordingVcpu implements LapicVcpuOps {
  kicks = 0;
  inits = 0;
  sipis: number[] = [];
  tsc = 0;
  constructor(readonly vcpuId: number) {}
  kick(): void {
    this.kicks++;
  }
  initReset(): void {
    this.inits++;
  }
  deliverSipiVector(v: number): void {
    this.sipis.push(v);
  }
  guestTsc(): number {
    return this.tsc;
  }
}

export interface Vm {
  clock: VirtualClock;
  bus: FakeBus;
  irq: KvmX86Irq;
  vcpus: RecordingVcpu[];
  apics: KvmLapic[];
}

export function makeVm(nVcpus = 1, withPit = false): Vm {
  const clock = new VirtualClock();
  const bus = new FakeBus();
  const irq = new KvmX86Irq({ clock, bus, lapic: { tscKhz: 1_000_000 } });
  irq.createIrqchip(0);
  if (withPit) irq.createPit2(0);
  const vcpus: RecordingVcpu[] = [];
  const apics: KvmLapic[] = [];
  for (let i = 0; i < nVcpus; i++) {
    const v = new RecordingVcpu(i);
    vcpus.push(v);
    apics.push(irq.createLapic(i, v));
  }
  return { clock, bus, irq, vcpus, apics };
}

/** The LAPIC MMIO page of vCPU 0 at the default base. */
export const APIC_BASE = 0xfee00000;

export function apicWrite(apic: KvmLapic, reg: number, v: number): void {
  const d = new Uint8Array(4);
  new DataView(d.buffer).setUint32(0, v >>> 0, true);
  if (!apic.write(null, apic.baseAddress() + reg, 4, d)) throw new Error("LAPIC MMIO not claimed");
}
export function apicRead(apic: KvmLapic, reg: number): number {
  const d = new Uint8Array(4);
  if (!apic.read(null, apic.baseAddress() + reg, 4, d)) throw new Error("LAPIC MMIO not claimed");
  return new DataView(d.buffer).getUint32(0, true);
}

/** Software-enable a LAPIC the way an OS does (SVR = 0x1ff, TPR 0). */
export function apicEnable(apic: KvmLapic): void {
  apicWrite(apic, 0xf0, 0x1ff);
  apicWrite(apic, 0x80, 0);
}
