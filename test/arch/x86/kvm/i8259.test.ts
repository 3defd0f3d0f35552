import { test } from "node:test";
import assert from "node:assert/strict";
import { makeVm, apicWrite, type Vm } from "./irqchip_fixture.js";
import { decodeIrqchip, encodeIrqchip, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE } from "../../../../src/uapi/irqchip.js";

const V0 = { vcpuIdx: 0 };

/** The BIOS/Linux remap: master at 0x20, slave at 0x28, cascade on IR2, 8086 mode. */
function remap(vm: Vm, icw4 = 0x01): void {
  const b = vm.bus;
  b.outb(0x20, 0x11);
  b.outb(0x21, 0x20);
  b.outb(0x21, 0x04);
  b.outb(0x21, icw4);
  b.outb(0xa0, 0x11);
  b.outb(0xa1, 0x28);
  b.outb(0xa1, 0x02);
  b.outb(0xa1, icw4);
  b.outb(0x21, 0x00);
  b.outb(0xa1, 0x00);
}

function readIsr(vm: Vm, port: number): number {
  vm.bus.outb(port, 0x0b);
  const v = vm.bus.inb(port);
  vm.bus.outb(port, 0x0a);
  return v;
}

test("remapped master IRQ1: INTA returns 0x21, ISR set until EOI, edge needs a new rising edge", () => {
  const vm = makeVm();
  remap(vm);
  assert.equal(vm.irq.hasInjectableIntr(V0), false);
  vm.irq.irqLine(1, 1);
  assert.ok(vm.vcpus[0].kicks > 0, "the BSP is kicked when INTR rises");
  assert.equal(vm.irq.hasInjectableIntr(V0), true);
  assert.equal(vm.irq.getInterrupt(V0), 0x21);
  assert.equal(readIsr(vm, 0x20), 0x02);
  assert.equal(vm.irq.hasInjectableIntr(V0), false, "line still high but the edge was consumed");
  vm.bus.outb(0x20, 0x20); // non-specific EOI
  assert.equal(readIsr(vm, 0x20), 0);
  assert.equal(vm.irq.hasInjectableIntr(V0), false);
  vm.irq.irqLine(1, 0);
  vm.irq.irqLine(1, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x21);
});

test("OCW1 mask holds a request in IRR; unmasking releases it; status -1 while masked everywhere", () => {
  const vm = makeVm();
  remap(vm);
  vm.bus.outb(0x21, 0x02);
  assert.equal(vm.bus.inb(0x21), 0x02);
  // The IOAPIC pin 1 is masked after reset too, so no route delivered it.
  assert.equal(vm.irq.irqLine(1, 1, true), -1);
  assert.equal(vm.irq.hasInjectableIntr(V0), false);
  assert.equal(vm.bus.inb(0x20) & 0x02, 0x02, "IRR shows the request");
  vm.bus.outb(0x21, 0x00);
  assert.equal(vm.irq.getInterrupt(V0), 0x21);
});

test("slave IRQ12 cascades through master IR2 and needs EOI on both", () => {
  const vm = makeVm();
  remap(vm);
  assert.equal(vm.irq.irqLine(12, 1, true), 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x2c);
  assert.equal(readIsr(vm, 0x20), 0x04);
  assert.equal(readIsr(vm, 0xa0), 0x10);
  // A second slave request of lower priority waits for the slave's EOI, not for the master's.
  vm.irq.irqLine(13, 1);
  assert.equal(vm.irq.hasInjectableIntr(V0), false);
  vm.bus.outb(0xa0, 0x20);
  vm.bus.outb(0x20, 0x20);
  assert.equal(vm.irq.getInterrupt(V0), 0x2d);
});

test("priority: IRQ1 before IRQ3; IRQ3 waits for the EOI of IRQ1; a higher one preempts", () => {
  const vm = makeVm();
  remap(vm);
  vm.irq.irqLine(3, 1);
  vm.irq.irqLine(1, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x21);
  assert.equal(vm.irq.hasInjectableIntr(V0), false);
  vm.irq.irqLine(0, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x20, "IRQ0 outranks the in-service IRQ1");
  vm.bus.outb(0x20, 0x20); // EOIs IRQ0 (highest in service)
  assert.equal(readIsr(vm, 0x20), 0x02);
  vm.bus.outb(0x20, 0x61); // specific EOI for IRQ1
  assert.equal(vm.irq.getInterrupt(V0), 0x23);
});

test("OCW2 set-priority rotation makes IR1 lowest: IR3 beats IR0", () => {
  const vm = makeVm();
  remap(vm);
  vm.bus.outb(0x20, 0xc1);
  vm.irq.irqLine(0, 1);
  vm.irq.irqLine(3, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x23);
  vm.bus.outb(0x20, 0x20);
  assert.equal(vm.irq.getInterrupt(V0), 0x20);
});

test("rotate on non-specific EOI moves the serviced level to the bottom", () => {
  const vm = makeVm();
  remap(vm);
  vm.irq.irqLine(2, 0);
  vm.irq.irqLine(1, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x21);
  vm.bus.outb(0x20, 0xa0); // rotate on non-specific EOI: IR1 lowest, IR2 highest
  vm.irq.irqLine(0, 1);
  vm.irq.irqLine(4, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x24, "after rotation IR4 outranks IR0");
});

test("ELCR: level-triggered IRQ11 is requested again after EOI while the line stays high", () => {
  const vm = makeVm();
  remap(vm);
  vm.bus.outb(0x4d1, 0x08);
  assert.equal(vm.bus.inb(0x4d1), 0x08);
  vm.bus.outb(0x4d0, 0xff);
  assert.equal(vm.bus.inb(0x4d0), 0xf8, "IRQ0-2 cannot be level triggered");
  vm.irq.irqLine(11, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x2b);
  vm.bus.outb(0xa0, 0x20);
  vm.bus.outb(0x20, 0x20);
  assert.equal(vm.irq.getInterrupt(V0), 0x2b, "still asserted");
  vm.irq.irqLine(11, 0); // the device is serviced before the EOIs
  vm.bus.outb(0xa0, 0x20);
  vm.bus.outb(0x20, 0x20);
  assert.equal(vm.irq.hasInjectableIntr(V0), false);
});

test("auto-EOI (ICW4 bit 1) leaves ISR clear after INTA", () => {
  const vm = makeVm();
  remap(vm, 0x03);
  vm.irq.irqLine(5, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x25);
  assert.equal(readIsr(vm, 0x20), 0);
});

test("spurious IRQ7 when the request vanished before INTA; spurious IRQ15 on the slave", () => {
  const vm = makeVm();
  remap(vm);
  assert.equal(vm.irq.pic!.readIrq(), 0x27);
  assert.equal(readIsr(vm, 0x20), 0, "no ISR bit for a spurious IRQ7");
  // Slave request that is masked on the slave after it reached the master's IR2.
  vm.irq.irqLine(10, 1);
  vm.bus.outb(0xa1, 0x04);
  assert.equal(vm.irq.pic!.readIrq(), 0x2f);
  assert.equal(readIsr(vm, 0xa0), 0);
});

test("poll mode: the read acknowledges and returns 0x80 | level; 0x07 with nothing pending", () => {
  const vm = makeVm();
  remap(vm);
  vm.bus.outb(0x20, 0x0c);
  assert.equal(vm.bus.inb(0x20), 0x07);
  vm.irq.irqLine(6, 1);
  vm.bus.outb(0x20, 0x0c);
  assert.equal(vm.bus.inb(0x20), 0x86);
  assert.equal(readIsr(vm, 0x20), 0x40);
  vm.bus.outb(0x20, 0x20);
  assert.equal(readIsr(vm, 0x20), 0);
});

test("special mask mode lets a lower level in while a masked level is in service", () => {
  const vm = makeVm();
  remap(vm);
  vm.irq.irqLine(1, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x21);
  vm.irq.irqLine(4, 1);
  assert.equal(vm.irq.hasInjectableIntr(V0), false);
  vm.bus.outb(0x21, 0x02); // mask IR1 (in service)
  vm.bus.outb(0x20, 0x68); // OCW3: set special mask
  assert.equal(vm.irq.getInterrupt(V0), 0x24);
});

test("LINT0 masked on the LAPIC: the PIC no longer reaches the vCPU", () => {
  const vm = makeVm();
  remap(vm);
  apicWrite(vm.apics[0], 0x350, 0x10700);
  vm.irq.irqLine(1, 1);
  assert.equal(vm.irq.hasInjectableIntr(V0), false);
  apicWrite(vm.apics[0], 0xf0, 0x1ff);
  apicWrite(vm.apics[0], 0x350, 0x700);
  assert.equal(vm.irq.getInterrupt(V0), 0x21);
});

test("EOI on the PIC runs the ack notifier of the GSI", () => {
  const vm = makeVm();
  remap(vm);
  const acked: number[] = [];
  vm.irq.routing!.registerIrqAckNotifier({ gsi: 9, irqAcked: (n) => acked.push(n.gsi) });
  vm.irq.irqLine(9, 1);
  assert.equal(vm.irq.getInterrupt(V0), 0x29);
  vm.bus.outb(0xa0, 0x20);
  assert.deepEqual(acked, [9]);
});

test("KVM_GET/SET_IRQCHIP round trip through the 520-byte struct gives the same behaviour", () => {
  const a = makeVm();
  remap(a);
  a.bus.outb(0x4d1, 0x08);
  a.bus.outb(0x21, 0x10);
  a.irq.irqLine(3, 1);
  assert.equal(a.irq.getInterrupt(V0), 0x23);
  a.irq.irqLine(11, 1); // cascade IR2 outranks the in-service IR3
  const bytes0 = encodeIrqchip(a.irq.getIrqchip(KVM_IRQCHIP_PIC_MASTER));
  const bytes1 = encodeIrqchip(a.irq.getIrqchip(KVM_IRQCHIP_PIC_SLAVE));
  assert.equal(bytes0.length, 520);
  const b = makeVm();
  b.irq.setIrqchip(decodeIrqchip(bytes0));
  b.irq.setIrqchip(decodeIrqchip(bytes1));
  assert.deepEqual(b.irq.getIrqchip(0), a.irq.getIrqchip(0));
  assert.deepEqual(b.irq.getIrqchip(1), a.irq.getIrqchip(1));
  for (const vm of [a, b]) {
    assert.equal(vm.bus.inb(0x21), 0x10);
    assert.equal(vm.bus.inb(0x4d1), 0x08);
    assert.equal(vm.irq.getInterrupt(V0), 0x2b);
    vm.bus.outb(0xa0, 0x20);
    vm.bus.outb(0x20, 0x20);
    assert.equal(vm.irq.getInterrupt(V0), 0x2b, "level IRQ11 again after EOI");
    assert.equal(readIsr(vm, 0x20), 0x0c, "IR3 still in service under IR2");
  }
});
