import { test } from "node:test";
import assert from "node:assert/strict";
import { apicEnable, apicWrite, makeVm, type Vm } from "./irqchip_fixture.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { EEXIST, ENOENT, ENXIO } from "../../../../src/uapi/errno.js";
import { decodePitState, decodePitState2, encodePitState, encodePitState2 } from "../../../../src/uapi/irqchip.js";
import { KvmX86Irq } from "../../../../src/arch/x86/kvm/irq.js";
import { FakeBus, VirtualClock } from "./irqchip_fixture.js";

const V0 = { vcpuIdx: 0 };
const FREQ = 1193182;
/** ns for `ticks` PIT clocks, nudged past the tick so float rounding cannot land one short. */
const ns = (ticks: number) => Math.ceil((ticks * 1e9) / FREQ) + 1;

function pitVm(): Vm {
  const vm = makeVm(1, true);
  const b = vm.bus;
  b.outb(0x20, 0x11);
  b.outb(0x21, 0x20);
  b.outb(0x21, 0x04);
  b.outb(0x21, 0x01);
  b.outb(0xa0, 0x11);
  b.outb(0xa1, 0x28);
  b.outb(0xa1, 0x02);
  b.outb(0xa1, 0x01);
  b.outb(0x21, 0x00);
  return vm;
}

function load(vm: Vm, ch: number, ctrl: number, count: number): void {
  vm.bus.outb(0x43, ctrl);
  vm.bus.outb(0x40 + ch, count & 0xff);
  vm.bus.outb(0x40 + ch, count >> 8);
}

function latchRead(vm: Vm, ch: number): number {
  vm.bus.outb(0x43, ch << 6);
  const lo = vm.bus.inb(0x40 + ch);
  return lo | (vm.bus.inb(0x40 + ch) << 8);
}

/** Run the loop's timer step and take every interrupt the PIC has, EOIing each; returns how many. */
function service(vm: Vm): number {
  vm.irq.pollTimers(V0, vm.clock.t);
  let n = 0;
  while (vm.irq.hasInjectableIntr(V0)) {
    assert.equal(vm.irq.getInterrupt(V0), 0x20);
    vm.bus.outb(0x20, 0x20);
    n++;
  }
  return n;
}

test("mode 2 at 100 Hz: IRQ0 every 11932 clocks, counter readable with the latch command", () => {
  const vm = pitVm();
  load(vm, 0, 0x34, 11932);
  const period = (11932 * 1e9) / FREQ;
  assert.ok(Math.abs(vm.irq.nextDeadlineNs(V0) - period) < 1);
  vm.clock.t = ns(5000);
  assert.equal(latchRead(vm, 0), 11932 - 5000);
  assert.equal(service(vm), 0);
  vm.clock.t = ns(11932);
  assert.equal(service(vm), 1);
  vm.clock.t = ns(2 * 11932);
  assert.equal(service(vm), 1);
  assert.equal(latchRead(vm, 0), 11932, "reloaded");
});

test("reinject: ticks missed while IRQ0 was not acknowledged are delivered one per EOI", () => {
  const vm = pitVm();
  load(vm, 0, 0x34, 1193); // ~1 ms
  for (let i = 1; i <= 3; i++) {
    vm.clock.t = ns(1193 * i);
    vm.irq.pollTimers(V0, vm.clock.t);
  }
  let taken = 0;
  while (vm.irq.hasInjectableIntr(V0)) {
    assert.equal(vm.irq.getInterrupt(V0), 0x20);
    taken++;
    vm.bus.outb(0x20, 0x20);
  }
  assert.equal(taken, 3);
});

test("KVM_REINJECT_CONTROL off: missed ticks are dropped", () => {
  const vm = pitVm();
  vm.irq.reinjectControl(0);
  load(vm, 0, 0x34, 1193);
  for (let i = 1; i <= 3; i++) {
    vm.clock.t = ns(1193 * i);
    vm.irq.pollTimers(V0, vm.clock.t);
  }
  let taken = 0;
  while (vm.irq.hasInjectableIntr(V0)) {
    vm.irq.getInterrupt(V0);
    taken++;
    vm.bus.outb(0x20, 0x20);
  }
  assert.equal(taken, 1);
});

test("mode 0 one-shot raises IRQ0 once; OUT of a mode 0 counter rises at terminal count", () => {
  const vm = pitVm();
  load(vm, 0, 0x30, 100);
  vm.clock.t = ns(1000);
  assert.equal(service(vm), 1);
  vm.clock.t = ns(5000);
  assert.equal(service(vm), 0);
  assert.equal(vm.irq.nextDeadlineNs(V0), Infinity);
  vm.bus.outb(0x43, 0xe2); // read-back: status of channel 0
  assert.equal(vm.bus.inb(0x40), 0x80 | 0x30, "OUT high, lobyte/hibyte, mode 0, binary");
});

test("mode 3 counts down by two and OUT is a square wave", () => {
  const vm = pitVm();
  load(vm, 1, 0x76, 1000); // channel 1, lo/hi, mode 3
  vm.clock.t = ns(100);
  assert.equal(latchRead(vm, 1), 800);
  vm.bus.outb(0x43, 0xe4); // read-back status channel 1
  assert.equal(vm.bus.inb(0x41) >> 7, 1, "first half: high");
  vm.clock.t = ns(700);
  vm.bus.outb(0x43, 0xe4);
  assert.equal(vm.bus.inb(0x41) >> 7, 0, "second half: low");
});

test("access modes: lobyte only, hibyte only, and the word flip-flop on reads", () => {
  const vm = pitVm();
  vm.bus.outb(0x43, 0x90); // channel 2, lobyte only, mode 0
  vm.bus.outb(0x42, 0x80);
  assert.equal(vm.bus.inb(0x42), 0x80);
  vm.bus.outb(0x43, 0xa0); // channel 2, hibyte only
  vm.bus.outb(0x42, 0x12);
  assert.equal(vm.bus.inb(0x42), 0x12);
  vm.bus.outb(0x43, 0xb0);
  vm.bus.outb(0x42, 0x34);
  vm.bus.outb(0x42, 0x12);
  assert.equal(vm.bus.inb(0x42), 0x34);
  assert.equal(vm.bus.inb(0x42), 0x12);
  assert.equal(vm.bus.inb(0x43), 0, "the control port reads 0");
});

test("BCD counting: 1000 decimal loaded as 0x1000 reads 0x0900 after 100 clocks", () => {
  const vm = pitVm();
  load(vm, 2, 0xb1, 0x1000);
  vm.clock.t = ns(100);
  assert.equal(latchRead(vm, 2), 0x0900);
});

test("port 0x61: gate 2 and speaker data read back; OUT2 in bit 5 follows channel 2", () => {
  const vm = pitVm();
  vm.bus.outb(0x61, 0x03);
  assert.equal(vm.bus.inb(0x61) & 0x03, 0x03);
  load(vm, 2, 0xb0, 1193);
  assert.equal(vm.bus.inb(0x61) & 0x20, 0);
  vm.clock.t += ns(1200);
  assert.equal(vm.bus.inb(0x61) & 0x20, 0x20);
  vm.bus.outb(0x61, 0x00);
  assert.equal(vm.bus.inb(0x61) & 0x03, 0);
});

test("KVM_GET/SET_PIT2 (112 bytes) round trip into a fresh VM: same counts, same IRQ0 cadence", () => {
  const a = pitVm();
  load(a, 0, 0x34, 2386);
  load(a, 2, 0xb0, 5000);
  a.bus.outb(0x61, 0x01);
  const bytes = encodePitState2(a.irq.getPit2());
  assert.equal(bytes.length, 112);
  const b = pitVm();
  b.clock.t = a.clock.t;
  b.irq.setPit2(decodePitState2(bytes));
  assert.deepEqual(b.irq.getPit2(), a.irq.getPit2());
  for (const vm of [a, b]) {
    vm.clock.t = ns(1000);
    assert.equal(latchRead(vm, 0), 2386 - 1000);
    assert.equal(latchRead(vm, 2), 5000 - 1000);
    vm.clock.t = ns(2386);
    assert.equal(service(vm), 1);
  }
});

test("PIT ioctl errors: no irqchip ENOENT, twice EEXIST, no PIT ENXIO", () => {
  const bare = new KvmX86Irq({ clock: new VirtualClock(), bus: new FakeBus() });
  assert.throws(() => bare.createPit2(0), (e) => e instanceof KvmError && e.errno === ENOENT);
  bare.createIrqchip(0);
  assert.throws(() => bare.getPit2(), (e) => e instanceof KvmError && e.errno === ENXIO);
  assert.throws(() => bare.reinjectControl(1), (e) => e instanceof KvmError && e.errno === ENXIO);
  bare.createPit2(0);
  assert.throws(() => bare.createPit2(0), (e) => e instanceof KvmError && e.errno === EEXIST);
});

test("APIC mode: PIT ticks reach the LAPIC through IOAPIC pin 0; reinject waits for the LAPIC EOI", () => {
  const vm = makeVm(1, true);
  vm.bus.outb(0x21, 0xff);
  vm.bus.outb(0xa1, 0xff);
  apicEnable(vm.apics[0]);
  vm.bus.writel(0xfec00000, 0x10);
  vm.bus.writel(0xfec00010, 0x30); // pin 0: edge, fixed, vector 0x30, APIC 0
  load(vm, 0, 0x34, 1193);
  for (let i = 1; i <= 4; i++) {
    vm.clock.t = ns(1193 * i);
    vm.irq.pollTimers(V0, vm.clock.t);
  }
  let taken = 0;
  while (vm.irq.hasInjectableIntr(V0)) {
    assert.equal(vm.irq.getInterrupt(V0), 0x30);
    taken++;
    apicWrite(vm.apics[0], 0xb0, 0);
  }
  assert.equal(taken, 4);
  // Masking and unmasking IRQ0 forgets the ticks owed while masked (pit_mask_notifer).
  vm.bus.writel(0xfec00000, 0x10);
  vm.bus.writel(0xfec00010, 0x10030);
  for (let i = 5; i <= 7; i++) {
    vm.clock.t = ns(1193 * i);
    vm.irq.pollTimers(V0, vm.clock.t);
  }
  assert.equal(vm.irq.pit!.pending, 3);
  vm.bus.writel(0xfec00010, 0x30);
  assert.equal(vm.irq.pit!.pending, 0);
  assert.equal(vm.irq.pit!.irqAck, true);
});

test("legacy KVM_CREATE_PIT / KVM_GET_PIT / KVM_SET_PIT: 72-byte channel state, speaker port left to userspace", () => {
  const a = pitVm();
  load(a, 0, 0x34, 3000);
  const bytes = encodePitState(a.irq.getPit());
  assert.equal(bytes.length, 72);
  const bus = new FakeBus();
  const irq = new KvmX86Irq({ clock: new VirtualClock(), bus });
  irq.createIrqchip(0);
  irq.createPit();
  assert.equal(bus.regs.some((r) => r.addr === 0x61), false);
  irq.setPit(decodePitState(bytes));
  assert.deepEqual(irq.getPit(), a.irq.getPit());
  assert.ok(Math.abs(irq.nextDeadlineNs({ vcpuIdx: 0 }) - (3000 * 1e9) / FREQ) < 1);
});
