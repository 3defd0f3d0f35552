import { test } from "node:test";
import assert from "node:assert/strict";
import { apicEnable, apicWrite, FakeBus, makeVm, VirtualClock } from "./irqchip_fixture.js";
import { KvmX86Irq } from "../../../../src/arch/x86/kvm/irq.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { EEXIST, EINVAL, ENXIO } from "../../../../src/uapi/errno.js";
import { KvmBus } from "../../../../src/virt/kvm/kvm_host.js";

const errno = (n: number) => (e: unknown) => e instanceof KvmError && e.errno === n;

test("KVM_CREATE_IRQCHIP registers PIC, ELCR and IOAPIC; EEXIST twice; EINVAL after vCPUs", () => {
  const bus = new FakeBus();
  const irq = new KvmX86Irq({ clock: new VirtualClock(), bus });
  assert.throws(() => irq.createIrqchip(1), errno(EINVAL));
  assert.equal(irq.irqchipInKernel(), false);
  irq.createIrqchip(0);
  assert.deepEqual(
    bus.regs.map((r) => [r.bus, r.addr, r.len]),
    [[KvmBus.PIO, 0x20, 2], [KvmBus.PIO, 0xa0, 2], [KvmBus.PIO, 0x4d0, 2], [KvmBus.MMIO, 0xfec00000, 0x100]],
  );
  assert.throws(() => irq.createIrqchip(0), errno(EEXIST));
  irq.createPit2(0);
  assert.deepEqual(bus.regs.slice(4).map((r) => [r.addr, r.len]), [[0x40, 4], [0x61, 1]]);
  irq.destroy();
  assert.equal(bus.regs.length, 4);
});

test("irqchip VM ioctls without an irqchip: IRQ_LINE / GET_IRQCHIP ENXIO, GSI routing and MSI EINVAL", () => {
  const irq = new KvmX86Irq({ clock: new VirtualClock(), bus: new FakeBus() });
  assert.throws(() => irq.irqLine(1, 1), errno(ENXIO));
  assert.throws(() => irq.getIrqchip(0), errno(ENXIO));
  assert.throws(() => irq.setIrqchip({ chipId: 0 }), errno(ENXIO));
  assert.throws(() => irq.setGsiRouting([]), errno(EINVAL));
  assert.throws(() => irq.signalMsi({ addressLo: 0xfee00000, addressHi: 0, data: 0x30, flags: 0, devid: 0 }), errno(EINVAL));
  irq.createIrqchip(0);
  assert.throws(() => irq.getIrqchip(3), errno(EINVAL));
  assert.throws(() => irq.setIrqchip({ chipId: 7 }), errno(EINVAL));
});

test("run loop view: HLT deadline is the earliest of LAPIC timer and PIT; hasEvents wakes on interrupts", () => {
  const vm = makeVm(2, true);
  const v0 = { vcpuIdx: 0 };
  const v1 = { vcpuIdx: 1 };
  for (const a of vm.apics) apicEnable(a);
  assert.equal(vm.irq.nextDeadlineNs(v0), Infinity);
  apicWrite(vm.apics[1], 0x3e0, 0xb);
  apicWrite(vm.apics[1], 0x320, 0xe5);
  apicWrite(vm.apics[1], 0x380, 500_000);
  assert.equal(vm.irq.nextDeadlineNs(v1), 500_000);
  assert.equal(vm.irq.nextDeadlineNs(v0), Infinity, "a LAPIC timer only wakes its own vCPU");
  vm.bus.outb(0x43, 0x34);
  vm.bus.outb(0x40, 0xa9);
  vm.bus.outb(0x40, 0x04); // 1193 clocks ~ 1 ms
  assert.ok(Math.abs(vm.irq.nextDeadlineNs(v0) - 999_847) < 1);
  assert.equal(vm.irq.nextDeadlineNs(v1), 500_000);
  assert.equal(vm.irq.hasEvents(v1), false);
  vm.clock.t = 500_000;
  vm.irq.pollTimers(v1, vm.clock.t);
  assert.ok(vm.irq.hasEvents(v1));
  assert.equal(vm.irq.getInterrupt(v1), 0xe5);
  // The PIT reaches vCPU 0 through PIC + LINT0 ExtINT (the PIC is uninitialised: base 0).
  vm.clock.t = 1_000_000;
  vm.irq.pollTimers(v0, vm.clock.t);
  assert.ok(vm.irq.cpuHasExtint(v0));
  assert.equal(vm.irq.cpuHasExtint(v1), false, "APs keep LINT0 masked");
  assert.equal(vm.irq.getInterrupt(v0), 0x00);
});

test("tracepoints: kvm_set_irq, kvm_pic_set_irq, kvm_ioapic_set_irq, kvm_apic, kvm_eoi reach the VM's tracer", () => {
  const events: [string, Record<string, unknown>][] = [];
  const kvm = { tracing: true, trace: (name: string, fields: Record<string, unknown>) => void events.push([name, fields]) };
  const irq = new KvmX86Irq({ clock: new VirtualClock(), bus: new FakeBus(), kvm });
  irq.createIrqchip(0);
  const apic = irq.createLapic(0, { vcpuId: 0, kick: () => {} });
  events.length = 0;
  irq.irqLine(4, 1);
  assert.deepEqual(events.map((e) => e[0]).sort(), ["kvm_ioapic_set_irq", "kvm_pic_set_irq", "kvm_set_irq"]);
  assert.equal(events[0][0], "kvm_set_irq");
  assert.deepEqual(events[0][1], { gsi: 4, level: 1, irq_source_id: 0 });
  events.length = 0;
  apicWrite(apic, 0xf0, 0x1ff);
  apicWrite(apic, 0xb0, 0);
  assert.deepEqual(events[0], ["kvm_apic", { rw: 1, reg: "APIC_SPIV", val: 0x1ff }]);
  assert.equal(events[1][0], "kvm_apic");
});

test("random guest programming of every irqchip register never throws and keeps registers in range", () => {
  const vm = makeVm(2, true);
  let seed = 0x12345678;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const ports = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x40, 0x41, 0x42, 0x43, 0x61];
  const out = new Uint32Array(2);
  for (let i = 0; i < 3000; i++) {
    switch (rnd(6)) {
      case 0:
        vm.bus.outb(ports[rnd(ports.length)], rnd(256));
        break;
      case 1:
        vm.bus.inb(ports[rnd(ports.length)]);
        break;
      case 2:
        vm.bus.writel(0xfec00000 + 16 * rnd(5), (rnd(0x10000) << 16) | rnd(0x10000));
        break;
      case 3: {
        const a = vm.apics[rnd(2)];
        if (a.x2apicMode()) a.x2apicMsrWrite(0x800 + rnd(0x40), rnd(0x10000) | (rnd(0x10000) << 16), rnd(2));
        else apicWrite(a, 16 * rnd(0x40), (rnd(0x10000) << 16) | rnd(0x10000));
        a.x2apicMsrRead(0x800 + rnd(0x40), out);
        break;
      }
      case 4:
        vm.irq.irqLine(rnd(26), rnd(2), true);
        break;
      default:
        vm.clock.advance(rnd(2_000_000));
        for (const v of [{ vcpuIdx: 0 }, { vcpuIdx: 1 }]) {
          vm.irq.pollTimers(v, vm.clock.t);
          if (vm.irq.hasInjectableIntr(v)) vm.irq.getInterrupt(v);
          vm.apics[v.vcpuIdx].acceptEvents(0);
        }
    }
  }
  for (const chip of [0, 1] as const) {
    const s = vm.irq.getIrqchip(chip);
    if ("pic" in s) for (const v of Object.values(s.pic)) assert.ok(v >= 0 && v <= 0xff);
  }
  for (const a of vm.apics) {
    const v = a.hasInterrupt();
    assert.ok(v === -1 || (v >= 16 && v <= 255));
  }
});
