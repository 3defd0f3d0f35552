import { test } from "node:test";
import assert from "node:assert/strict";
import { apicEnable, makeVm } from "./irqchip_fixture.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { EINVAL } from "../../../../src/uapi/errno.js";
import { KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI } from "../../../../src/uapi/kvm.js";
import { defaultIrqRouting, kvmSetMsiIrq } from "../../../../src/arch/x86/kvm/irq_comm.js";
import { newLapicIrq } from "../../../../src/arch/x86/kvm/lapic.js";

const einval = (e: unknown) => e instanceof KvmError && e.errno === EINVAL;

test("default routing: GSI 0-15 on PIC and IOAPIC pins, 16-23 on the IOAPIC only", () => {
  const entries = defaultIrqRouting();
  assert.equal(entries.length, 16 * 2 + 8);
  const vm = makeVm();
  const r = vm.irq.routing!;
  assert.equal(r.irqMapChipPin(0, 3), 3);
  assert.equal(r.irqMapChipPin(1, 8 + 4), 12, "slave pins are stored as 8-15");
  assert.equal(r.irqMapChipPin(2, 20), 20);
  assert.equal(r.irqMapGsi(9).length, 2);
  assert.equal(r.irqMapGsi(17).length, 1);
  assert.equal(r.irqMapGsi(24).length, 0);
});

test("x86 routing entry validation: PIC pin < 8, IOAPIC pin < 24, known chips and types", () => {
  const vm = makeVm();
  const irqchip = (irqchipId: number, pin: number) => [{ gsi: 1, type: KVM_IRQ_ROUTING_IRQCHIP, flags: 0, irqchip: { irqchip: irqchipId, pin } }];
  assert.throws(() => vm.irq.setGsiRouting(irqchip(0, 8)), einval);
  assert.throws(() => vm.irq.setGsiRouting(irqchip(1, 8)), einval);
  assert.throws(() => vm.irq.setGsiRouting(irqchip(2, 24)), einval);
  assert.throws(() => vm.irq.setGsiRouting(irqchip(3, 0)), einval);
  assert.throws(() => vm.irq.setGsiRouting([{ gsi: 1, type: 3, flags: 0 }]), einval);
  vm.irq.setGsiRouting(irqchip(1, 7));
  assert.equal(vm.irq.routing!.irqMapChipPin(1, 15), 1);
});

test("MSI address/data decode (SDM 11.11)", () => {
  const irq = newLapicIrq();
  kvmSetMsiIrq(0xfee0300c, 0, 0xc000 | (1 << 8) | 0x61, irq);
  assert.deepEqual(
    [irq.destId, irq.destMode, irq.msiRedirHint, irq.vector, irq.deliveryMode, irq.trigMode, irq.level],
    [3, 1, true, 0x61, 1, 1, 1],
  );
});

test("MSI routes and KVM_SIGNAL_MSI deliver to the addressed LAPIC", () => {
  const vm = makeVm(2);
  for (const a of vm.apics) apicEnable(a);
  vm.irq.setGsiRouting([
    ...defaultIrqRouting(),
    { gsi: 30, type: KVM_IRQ_ROUTING_MSI, flags: 0, msi: { addressLo: 0xfee01000, addressHi: 0, data: 0x55, devid: 0 } },
  ]);
  assert.equal(vm.irq.irqLine(30, 1, true), 1);
  assert.equal(vm.irq.irqLine(30, 0, true), -1, "an MSI has no deassert");
  assert.equal(vm.apics[1].findHighestIrr(), 0x55);
  assert.equal(vm.apics[0].findHighestIrr(), -1);
  assert.equal(vm.irq.signalMsi({ addressLo: 0xfee00000, addressHi: 0, data: 0x56, flags: 0, devid: 0 }), 1);
  assert.equal(vm.apics[0].findHighestIrr(), 0x56);
  assert.equal(vm.irq.signalMsi({ addressLo: 0xfee07000, addressHi: 0, data: 0x57, flags: 0, devid: 0 }), -1, "no APIC 7");
  assert.equal(vm.irq.signalMsi({ addressLo: 0xfee0f000 | 4, addressHi: 0, data: 0x400, flags: 0, devid: 0 }), -1, "logical 0x0f: no LDR matches");
  assert.equal(vm.irq.signalMsi({ addressLo: 0xfee01000, addressHi: 0, data: 0x400, flags: 0, devid: 0 }), 1, "NMI message");
  assert.equal(vm.apics[1].nmiQueued, 1);
  assert.throws(() => vm.irq.signalMsi({ addressLo: 0xfee00000, addressHi: 0, data: 0x58, flags: 1, devid: 3 }), einval);
});

test("a user routing table replaces the default one (IRQ0 -> IOAPIC pin 2 override)", () => {
  const vm = makeVm();
  apicEnable(vm.apics[0]);
  vm.bus.outb(0x21, 0xff);
  vm.irq.setGsiRouting([{ gsi: 0, type: KVM_IRQ_ROUTING_IRQCHIP, flags: 0, irqchip: { irqchip: 2, pin: 2 } }]);
  vm.bus.writel(0xfec00000, 0x14);
  vm.bus.writel(0xfec00010, 0x30);
  assert.equal(vm.irq.irqLine(0, 1, true), 1);
  assert.equal(vm.irq.getInterrupt({ vcpuIdx: 0 }), 0x30);
  assert.equal(vm.irq.irqLine(1, 1, true), -1, "GSI 1 is no longer routed");
});
