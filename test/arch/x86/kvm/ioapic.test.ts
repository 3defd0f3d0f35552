import { test } from "node:test";
import assert from "node:assert/strict";
import { apicEnable, apicRead, apicWrite, makeVm, type Vm } from "./irqchip_fixture.js";
import { decodeIrqchip, encodeIrqchip, KVM_IRQCHIP_IOAPIC } from "../../../../src/uapi/irqchip.js";

const IOAPIC = 0xfec00000;

function ioapicWrite(vm: Vm, reg: number, v: number): void {
  vm.bus.writel(IOAPIC, reg);
  vm.bus.writel(IOAPIC + 0x10, v);
}
function ioapicRead(vm: Vm, reg: number): number {
  vm.bus.writel(IOAPIC, reg);
  return vm.bus.readl(IOAPIC + 0x10);
}
/** Program redirection entry `pin` as an OS does: high dword (destination) first, then low. */
function route(vm: Vm, pin: number, low: number, dest = 0): void {
  ioapicWrite(vm, 0x11 + 2 * pin, dest << 24);
  ioapicWrite(vm, 0x10 + 2 * pin, low);
}
/** An APIC-mode guest: both PICs masked, every LAPIC software-enabled. */
function apicVm(n = 1): Vm {
  const vm = makeVm(n);
  vm.bus.outb(0x21, 0xff);
  vm.bus.outb(0xa1, 0xff);
  for (const a of vm.apics) apicEnable(a);
  return vm;
}
const V = (i: number) => ({ vcpuIdx: i });
const LEVEL = 1 << 15;
const MASKED = 1 << 16;
const REMOTE_IRR = 1 << 14;

test("ID, version and arbitration registers", () => {
  const vm = apicVm();
  assert.equal(ioapicRead(vm, 1), 0x00170020, "24 pins, version 0x20");
  ioapicWrite(vm, 0, 0x05000000);
  assert.equal(ioapicRead(vm, 0), 0x05000000);
  assert.equal(ioapicRead(vm, 2), 0x05000000);
  ioapicWrite(vm, 1, 0);
  assert.equal(ioapicRead(vm, 1), 0x00170020, "version is read-only");
  assert.equal(ioapicRead(vm, 0x10 + 2 * 24), 0xffffffff, "no pin 24");
  assert.equal(ioapicRead(vm, 0x10) & MASKED, MASKED, "pins come out of reset masked");
  vm.bus.writel(IOAPIC, 0x13);
  assert.equal(vm.bus.readl(IOAPIC), 0x13, "IOREGSEL reads back");
});

test("edge pin: delivered once per rising edge; a line already high is coalesced", () => {
  const vm = apicVm();
  route(vm, 4, 0x34);
  assert.equal(vm.irq.irqLine(4, 1, true), 1);
  assert.equal(vm.irq.irqLine(4, 1, true), 0, "no new edge");
  assert.equal(vm.irq.getInterrupt(V(0)), 0x34);
  assert.equal(vm.irq.hasInjectableIntr(V(0)), false);
  vm.irq.irqLine(4, 0);
  assert.equal(vm.irq.irqLine(4, 1, true), 1);
  assert.equal(vm.apics[0].findHighestIrr(), 0x34);
});

test("level pin: Remote IRR blocks redelivery until EOI; still-asserted line fires again", () => {
  const vm = apicVm();
  route(vm, 10, LEVEL | 0x3a);
  vm.irq.irqLine(10, 1);
  assert.equal(ioapicRead(vm, 0x10 + 20) & REMOTE_IRR, REMOTE_IRR);
  assert.equal(vm.irq.getInterrupt(V(0)), 0x3a);
  assert.equal((apicRead(vm.apics[0], 0x180 + 0x10) >>> 26) & 1, 1, "TMR marks the vector level-triggered");
  assert.equal(vm.irq.irqLine(10, 1, true), -1, "awaiting EOI");
  apicWrite(vm.apics[0], 0xb0, 0); // EOI
  assert.equal(vm.irq.getInterrupt(V(0)), 0x3a, "line still high: delivered again");
  vm.irq.irqLine(10, 0);
  apicWrite(vm.apics[0], 0xb0, 0);
  assert.equal(ioapicRead(vm, 0x10 + 20) & REMOTE_IRR, 0);
  assert.equal(vm.irq.hasInjectableIntr(V(0)), false);
});

test("Remote IRR is read-only and clears when the pin is switched to edge", () => {
  const vm = apicVm();
  route(vm, 3, LEVEL | 0x33);
  vm.irq.irqLine(3, 1);
  ioapicWrite(vm, 0x16, LEVEL | 0x33); // guest rewrites the low dword
  assert.equal(ioapicRead(vm, 0x16) & REMOTE_IRR, REMOTE_IRR);
  ioapicWrite(vm, 0x16, 0x33);
  assert.equal(ioapicRead(vm, 0x16) & REMOTE_IRR, 0);
});

test("unmasking a level pin whose line is asserted delivers it", () => {
  const vm = apicVm();
  route(vm, 11, MASKED | LEVEL | 0x3b);
  assert.equal(vm.irq.irqLine(11, 1, true), -1);
  assert.equal(vm.irq.hasInjectableIntr(V(0)), false);
  route(vm, 11, LEVEL | 0x3b);
  assert.equal(vm.irq.getInterrupt(V(0)), 0x3b);
});

test("destinations: physical, logical flat, broadcast, lowest priority", () => {
  const vm = apicVm(2);
  apicWrite(vm.apics[0], 0xd0, 0x01000000);
  apicWrite(vm.apics[1], 0xd0, 0x02000000);
  route(vm, 5, 0x45, 1); // physical APIC ID 1
  vm.irq.irqLine(5, 1);
  assert.equal(vm.apics[0].findHighestIrr(), -1);
  assert.equal(vm.apics[1].findHighestIrr(), 0x45);
  route(vm, 6, (1 << 11) | 0x46, 0x02); // logical, flat: bit 1 = APIC 1
  vm.irq.irqLine(6, 1);
  assert.equal(vm.apics[0].findHighestIrr(), -1);
  assert.equal(vm.irq.getInterrupt(V(1)), 0x46);
  route(vm, 7, 0x47, 0xff); // physical broadcast
  assert.equal(vm.irq.irqLine(7, 1, true), 2, "two LAPICs accepted");
  assert.equal(vm.apics[0].findHighestIrr(), 0x47);
  // Lowest priority among APIC 0 and 1: APIC 0 raises its TPR, so APIC 1 gets it.
  apicWrite(vm.apics[0], 0x80, 0x50); // PPR 0x50 > APIC 1 PPR 0x40 (0x46 in service)
  route(vm, 8, (1 << 11) | (1 << 8) | 0x58, 0x03);
  assert.equal(vm.irq.irqLine(8, 1, true), 1);
  assert.ok(vm.apics[1].findHighestIrr() >= 0x58);
  assert.ok(vm.apics[1].getReg(0x200 + 0x20) & (1 << (0x58 - 64)), "APIC 1 got the lowest-priority vector");
  assert.equal(vm.apics[0].getReg(0x200 + 0x20) & (1 << (0x58 - 64)), 0);
});

test("directed EOI: the LAPIC EOI leaves Remote IRR; the IOAPIC EOI register clears it", () => {
  const vm = apicVm();
  const apic = vm.apics[0];
  assert.ok(apicRead(apic, 0x30) & (1 << 24), "LVR advertises directed EOI");
  apicWrite(apic, 0xf0, 0x11ff); // enable + suppress EOI broadcast
  route(vm, 9, LEVEL | 0x39);
  vm.irq.irqLine(9, 1);
  assert.equal(vm.irq.getInterrupt(V(0)), 0x39);
  apicWrite(apic, 0xb0, 0);
  assert.equal(ioapicRead(vm, 0x22) & REMOTE_IRR, REMOTE_IRR, "no broadcast");
  vm.bus.writel(IOAPIC + 0x40, 0x39);
  assert.equal(vm.irq.getInterrupt(V(0)), 0x39, "line still asserted: redelivered");
  vm.irq.irqLine(9, 0);
  apicWrite(apic, 0xb0, 0);
  vm.bus.writel(IOAPIC + 0x40, 0x39);
  assert.equal(ioapicRead(vm, 0x22) & REMOTE_IRR, 0);
});

test("the EOI of an IOAPIC vector runs the pin's ack notifier", () => {
  const vm = apicVm();
  const acked: number[] = [];
  vm.irq.routing!.registerIrqAckNotifier({ gsi: 20, irqAcked: (n) => acked.push(n.gsi) });
  route(vm, 20, 0x50);
  vm.irq.irqLine(20, 1);
  assert.equal(vm.irq.getInterrupt(V(0)), 0x50);
  assert.deepEqual(acked, []);
  apicWrite(vm.apics[0], 0xb0, 0);
  assert.deepEqual(acked, [20]);
});

test("KVM_GET/SET_IRQCHIP (IOAPIC) round trip: same table, same pending level interrupt", () => {
  const a = apicVm();
  ioapicWrite(a, 0, 0x02000000);
  route(a, 12, LEVEL | 0x4c);
  route(a, 13, MASKED | 0x4d, 3);
  a.irq.irqLine(12, 1);
  assert.equal(a.irq.getInterrupt(V(0)), 0x4c);
  const bytes = encodeIrqchip(a.irq.getIrqchip(KVM_IRQCHIP_IOAPIC));
  const b = apicVm();
  b.irq.setIrqchip(decodeIrqchip(bytes));
  assert.deepEqual(b.irq.getIrqchip(KVM_IRQCHIP_IOAPIC), a.irq.getIrqchip(KVM_IRQCHIP_IOAPIC));
  assert.equal(ioapicRead(b, 0), 0x02000000);
  assert.equal(ioapicRead(b, 0x10 + 26), MASKED | 0x4d);
  // On b nothing is in service; clearing Remote IRR by EOI register re-delivers the asserted line.
  b.bus.writel(IOAPIC + 0x40, 0x4c);
  assert.equal(b.irq.getInterrupt(V(0)), 0x4c);
});

test("RTC (GSI 8) with KVM_IRQ_LINE_STATUS: a tick is coalesced until the previous one is EOIed", () => {
  const vm = apicVm(2);
  route(vm, 8, (1 << 11) | 0x38, 0x03); // logical flat: both APICs
  apicWrite(vm.apics[0], 0xd0, 0x01000000);
  apicWrite(vm.apics[1], 0xd0, 0x02000000);
  const tick = () => {
    const s = vm.irq.irqLine(8, 1, true);
    vm.irq.irqLine(8, 0, true);
    return s;
  };
  assert.equal(tick(), 2);
  assert.equal(vm.irq.ioapic!.rtcPendingEoi, 2);
  assert.equal(tick(), 0, "nobody EOIed yet");
  for (const [i, a] of vm.apics.entries()) {
    assert.equal(vm.irq.getInterrupt(V(i)), 0x38);
    assert.equal(tick(), 0, "still owed by at least one LAPIC");
    apicWrite(a, 0xb0, 0);
  }
  assert.equal(vm.irq.ioapic!.rtcPendingEoi, 0);
  assert.equal(tick(), 2);
  // Without line status (plain KVM_IRQ_LINE) ticks are not tracked and always go out.
  vm.irq.irqLine(8, 1);
  vm.irq.irqLine(8, 0);
  assert.equal(vm.irq.ioapic!.rtcPendingEoi, 2);
});
