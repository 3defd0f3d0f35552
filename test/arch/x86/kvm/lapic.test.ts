import { test } from "node:test";
import assert from "node:assert/strict";
import { apicEnable, apicRead, apicWrite, makeVm } from "./irqchip_fixture.js";
import { KVM_MP_STATE_INIT_RECEIVED, KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_UNINITIALIZED } from "../../../../src/uapi/kvm.js";
import type { KvmLapic } from "../../../../src/arch/x86/kvm/lapic.js";

const ID = 0x20, LVR = 0x30, TPR = 0x80, PPR = 0xa0, EOI = 0xb0, LDR = 0xd0, DFR = 0xe0, SVR = 0xf0;
const ESR = 0x280, ICR = 0x300, ICR2 = 0x310, LVTT = 0x320, LVT0 = 0x350, LVTERR = 0x370;
const TMICT = 0x380, TMCCT = 0x390, TDCR = 0x3e0;

function irrHas(apic: KvmLapic, v: number): boolean {
  return (apic.getReg(0x200 + 16 * (v >> 5)) & (1 << (v & 31))) !== 0;
}

test("reset state: IDs, version, SVR, masked LVTs, BSP's LINT0 in ExtINT, APIC base", () => {
  const vm = makeVm(2);
  const [a0, a1] = vm.apics;
  assert.equal(apicRead(a0, ID), 0);
  assert.equal(apicRead(a1, ID), 0x01000000);
  assert.equal(apicRead(a0, LVR), 0x01050014);
  assert.equal(apicRead(a0, SVR), 0xff);
  assert.equal(apicRead(a0, LVT0), 0x700);
  assert.equal(apicRead(a1, LVT0), 0x10000);
  assert.equal(apicRead(a0, LVTT), 0x10000);
  assert.equal(apicRead(a0, DFR), 0xffffffff);
  assert.equal(a0.apicBaseLo, 0xfee00900);
  assert.equal(a1.apicBaseLo, 0xfee00800);
});

test("MMIO: sub-dword reads pick bytes; non-dword writes are dropped; EOI is not readable", () => {
  const vm = makeVm(2);
  const a1 = vm.apics[1];
  const b = new Uint8Array(1);
  assert.ok(a1.read(null, 0xfee00023, 1, b));
  assert.equal(b[0], 1);
  assert.ok(a1.write(null, 0xfee00080, 1, Uint8Array.of(0x70)));
  assert.equal(apicRead(a1, TPR), 0);
  apicWrite(a1, EOI, 0);
  assert.equal(apicRead(a1, EOI), 0);
  assert.equal(a1.read(null, 0xfee01000, 4, new Uint8Array(4)), false, "outside the page");
});

test("one-shot timer: TMCCT counts down on the VM clock, fires once at TMICT x divide", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  apicEnable(a);
  apicWrite(a, TDCR, 0x1); // divide by 4
  apicWrite(a, LVTT, 0xec);
  apicWrite(a, TMICT, 1000);
  assert.equal(a.nextDeadlineNs(), 4000);
  vm.clock.advance(2000);
  assert.equal(apicRead(a, TMCCT), 500);
  assert.equal(a.pollTimer(vm.clock.t), false);
  vm.clock.advance(2000);
  assert.equal(a.pollTimer(vm.clock.t), true);
  assert.ok(irrHas(a, 0xec));
  assert.equal(apicRead(a, TMCCT), 0);
  assert.equal(a.nextDeadlineNs(), Infinity);
  assert.equal(vm.irq.getInterrupt({ vcpuIdx: 0 }), 0xec);
});

test("periodic timer re-arms; missed periods coalesce; tiny periods are raised to 200us", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  apicEnable(a);
  apicWrite(a, TDCR, 0xb); // divide by 1
  apicWrite(a, LVTT, (1 << 17) | 0xed);
  apicWrite(a, TMICT, 1_000_000);
  assert.equal(a.nextDeadlineNs(), 1_000_000);
  vm.clock.t = 1_000_000;
  assert.ok(a.pollTimer(vm.clock.t));
  assert.equal(a.nextDeadlineNs(), 2_000_000);
  vm.clock.t = 3_500_000;
  assert.equal(apicRead(a, TMCCT), 500_000, "count within the current period");
  assert.ok(a.pollTimer(vm.clock.t));
  assert.equal(a.nextDeadlineNs(), 4_000_000);
  apicWrite(a, TMICT, 10);
  assert.equal(a.nextDeadlineNs(), vm.clock.t + 200_000);
});

test("masked LVTT: the timer expires but raises nothing", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  apicEnable(a);
  apicWrite(a, LVTT, 0x100ec);
  apicWrite(a, TMICT, 100);
  vm.clock.advance(1000);
  assert.ok(a.pollTimer(vm.clock.t));
  assert.equal(a.findHighestIrr(), -1);
});

test("TSC-deadline mode: MSR 0x6e0 arms at the guest TSC, fires once, reads 0 after", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  apicEnable(a);
  apicWrite(a, LVTT, (2 << 17) | 0xef);
  vm.vcpus[0].tsc = 1000;
  a.setTscDeadline(6000); // tscKhz 1e6: one TSC tick per ns
  assert.equal(a.getTscDeadline(), 6000);
  assert.equal(a.nextDeadlineNs(), 5000);
  apicWrite(a, TMICT, 5); // ignored in TSC-deadline mode
  assert.equal(apicRead(a, TMICT), 0);
  vm.clock.t = 5000;
  assert.ok(a.pollTimer(vm.clock.t));
  assert.ok(irrHas(a, 0xef));
  assert.equal(a.getTscDeadline(), 0);
  a.setTscDeadline(9000);
  apicWrite(a, LVTT, 0xef); // back to one-shot disarms the deadline
  assert.equal(a.nextDeadlineNs(), Infinity);
  a.setTscDeadline(9000);
  assert.equal(a.getTscDeadline(), 0, "writes are ignored outside TSC-deadline mode");
});

test("TPR/PPR gate delivery by priority class; EOI retires the highest ISR", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  apicEnable(a);
  apicWrite(a, LVT0, 0x10000);
  apicWrite(a, TPR, 0x50);
  a.acceptIrq(0, 0x45, 1, 0);
  assert.equal(a.hasInterrupt(), -1);
  a.acceptIrq(0, 0x61, 1, 0);
  assert.equal(a.getInterrupt(), 0x61);
  assert.equal(apicRead(a, PPR), 0x60);
  a.setCr8(0);
  assert.equal(apicRead(a, TPR), 0);
  assert.equal(apicRead(a, PPR), 0x60, "in-service 0x61 keeps PPR");
  a.acceptIrq(0, 0x72, 1, 0);
  assert.equal(a.getInterrupt(), 0x72);
  apicWrite(a, EOI, 0);
  assert.equal(a.findHighestIsr(), 0x61);
  apicWrite(a, EOI, 0);
  assert.equal(a.getInterrupt(), 0x45);
});

test("software disable masks the LVTs and refuses fixed interrupts", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  apicEnable(a);
  apicWrite(a, LVTT, 0xec);
  apicWrite(a, SVR, 0xff);
  assert.equal(apicRead(a, LVTT), 0x100ec);
  assert.equal(a.acceptIrq(0, 0x40, 1, 0), 0);
  apicWrite(a, LVTT, 0xec);
  assert.equal(apicRead(a, LVTT), 0x100ec, "LVTs stay masked while software-disabled");
});

test("fixed IPI with a destination, shorthands self and all-but-self", () => {
  const vm = makeVm(3);
  for (const a of vm.apics) apicEnable(a);
  const [a0, a1, a2] = vm.apics;
  const kicks = vm.vcpus[2].kicks;
  apicWrite(a0, ICR2, 2 << 24);
  apicWrite(a0, ICR, 0x4041);
  assert.ok(irrHas(a2, 0x41));
  assert.ok(!irrHas(a1, 0x41));
  assert.ok(vm.vcpus[2].kicks > kicks);
  assert.equal(apicRead(a0, ICR), 0x4041, "delivery status reads idle");
  apicWrite(a0, ICR, 0x44042); // self
  assert.ok(irrHas(a0, 0x42) && !irrHas(a1, 0x42));
  apicWrite(a0, ICR, 0xc4043); // all excluding self
  assert.ok(!irrHas(a0, 0x43) && irrHas(a1, 0x43) && irrHas(a2, 0x43));
  apicWrite(a0, ICR, 0x84044); // all including self
  assert.ok(irrHas(a0, 0x44) && irrHas(a1, 0x44) && irrHas(a2, 0x44));
});

test("logical destinations: flat and cluster models", () => {
  const vm = makeVm(2);
  for (const a of vm.apics) apicEnable(a);
  const [a0, a1] = vm.apics;
  apicWrite(a0, LDR, 0x01000000);
  apicWrite(a1, LDR, 0x02000000);
  apicWrite(a0, ICR2, 0x03000000);
  apicWrite(a0, ICR, 0x4851); // logical, flat: both
  assert.ok(irrHas(a0, 0x51) && irrHas(a1, 0x51));
  for (const a of vm.apics) apicWrite(a, DFR, 0x0fffffff);
  apicWrite(a0, LDR, 0x11000000); // cluster 1, member bit 0
  apicWrite(a1, LDR, 0x21000000); // cluster 2, member bit 0
  apicWrite(a0, ICR2, 0x21000000);
  apicWrite(a0, ICR, 0x4852);
  assert.ok(!irrHas(a0, 0x52) && irrHas(a1, 0x52));
  assert.equal(apicRead(a0, DFR), 0x0fffffff);
});

test("INIT / SIPI bring an AP from UNINITIALIZED to RUNNABLE at the SIPI vector", () => {
  const vm = makeVm(2);
  for (const a of vm.apics) apicEnable(a);
  const [a0, a1] = vm.apics;
  // A SIPI before INIT is dropped.
  apicWrite(a0, ICR2, 1 << 24);
  apicWrite(a0, ICR, 0x4608);
  assert.equal(a1.acceptEvents(KVM_MP_STATE_UNINITIALIZED), KVM_MP_STATE_UNINITIALIZED);
  assert.deepEqual(vm.vcpus[1].sipis, []);
  apicWrite(a0, ICR, 0xc500); // INIT assert, level
  apicWrite(a0, ICR, 0x8500); // INIT de-assert: ignored
  assert.equal(a1.acceptEvents(KVM_MP_STATE_UNINITIALIZED), KVM_MP_STATE_INIT_RECEIVED);
  assert.equal(vm.vcpus[1].inits, 1);
  assert.equal(apicRead(a1, SVR), 0xff, "INIT reset the LAPIC");
  apicWrite(a0, ICR, 0x4608);
  assert.ok(a1.hasPendingInitOrSipi());
  assert.equal(a1.acceptEvents(KVM_MP_STATE_INIT_RECEIVED), KVM_MP_STATE_RUNNABLE);
  assert.deepEqual(vm.vcpus[1].sipis, [0x08]);
  // INIT then SIPI latched together before the AP looks.
  apicWrite(a0, ICR, 0x4500);
  apicWrite(a0, ICR, 0x4609);
  assert.equal(a1.acceptEvents(KVM_MP_STATE_RUNNABLE), KVM_MP_STATE_RUNNABLE);
  assert.deepEqual(vm.vcpus[1].sipis, [0x08, 0x09]);
  assert.equal(a1.apicBaseLo, 0xfee00800, "INIT keeps IA32_APIC_BASE");
});

test("NMI and SMI messages are queued for the run loop", () => {
  const vm = makeVm(2);
  for (const a of vm.apics) apicEnable(a);
  apicWrite(vm.apics[0], ICR2, 1 << 24);
  apicWrite(vm.apics[0], ICR, 0x4400);
  apicWrite(vm.apics[0], ICR, 0x4200);
  assert.equal(vm.apics[1].nmiQueued, 1);
  assert.ok(vm.apics[1].smiPending);
  assert.ok(vm.irq.hasEvents({ vcpuIdx: 1 }));
  assert.ok(vm.apics[1].takeNmi());
  assert.equal(vm.apics[1].takeNmi(), false);
});

test("ESR: illegal vectors are latched on the next ESR write and raise the error LVT", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  apicEnable(a);
  apicWrite(a, LVTERR, 0xfe);
  apicWrite(a, ICR, 0x44005); // fixed vector 5 to self
  assert.equal(apicRead(a, ESR), 0, "not visible before the ESR write");
  apicWrite(a, ESR, 0);
  assert.equal(apicRead(a, ESR), 0x20, "send illegal vector");
  assert.ok(irrHas(a, 0xfe));
  apicWrite(a, ESR, 0);
  assert.equal(apicRead(a, ESR), 0);
});

test("IA32_APIC_BASE: valid and invalid mode transitions (SDM 11.12.5)", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  assert.equal(a.setApicBase(0xfee00d00, 0, false), true, "xAPIC -> x2APIC");
  assert.ok(a.x2apicMode());
  assert.equal(a.setApicBase(0xfee00900, 0, false), false, "x2APIC -> xAPIC is #GP");
  assert.equal(a.setApicBase(0xfee00100, 0, false), true, "x2APIC -> disabled");
  assert.equal(a.setApicBase(0xfee00500, 0, false), false, "EXTD without EN");
  assert.equal(a.setApicBase(0xfee00d00, 0, false), false, "disabled -> x2APIC is #GP");
  assert.equal(a.setApicBase(0xfee00d00, 0, true), true, "but userspace may restore it");
  assert.equal(a.setApicBase(0xfee00d01, 0, true), false, "reserved bit");
  assert.equal(a.setApicBase(0xfee00900, 0x10000000, true), false, "above MAXPHYADDR");
  assert.equal(a.setApicBase(0xfee00100, 0, true), true);
  assert.equal(a.read(null, 0xfee00020, 4, new Uint8Array(4)), true);
  assert.equal(a.setApicBase(0xfe000900, 0, false), true, "relocated and enabled");
  assert.equal(apicRead(a, ID), 0);
  assert.equal(a.baseAddress(), 0xfe000000);
});

test("x2APIC: MSR access, 32-bit IDs, LDR from ID, 64-bit ICR, self IPI, #GP cases, MMIO hole", () => {
  const vm = makeVm(2);
  const [a0, a1] = vm.apics;
  for (const a of vm.apics) {
    apicEnable(a);
    assert.ok(a.setApicBase(a.apicBaseLo | (1 << 10), 0, false));
  }
  const out = new Uint32Array(2);
  assert.ok(a1.x2apicMsrRead(0x802, out));
  assert.equal(out[0], 1);
  assert.ok(a1.x2apicMsrRead(0x80d, out));
  assert.equal(out[0], 0x00000002, "cluster 0, bit 1");
  const d = new Uint8Array(4);
  assert.ok(a0.read(null, 0xfee00020, 4, d));
  assert.deepEqual([...d], [0xff, 0xff, 0xff, 0xff], "MMIO reads all ones in x2APIC mode");
  assert.equal(a0.x2apicMsrWrite(0x802, 5, 0), false, "ID is read-only");
  assert.equal(a0.x2apicMsrWrite(0x80d, 5, 0), false, "LDR is read-only");
  assert.equal(a0.x2apicMsrWrite(0x80b, 1, 0), false, "EOI with a non-zero value");
  assert.equal(a0.x2apicMsrRead(0x80b, out), false, "EOI is write-only");
  assert.equal(a0.x2apicMsrWrite(0x808, 0x10, 1), false, "bits 63:32 reserved");
  assert.equal(a0.x2apicMsrRead(0x831, out), false, "no ICR2 in x2APIC mode");
  assert.ok(a0.x2apicMsrWrite(0x830, 0x4061, 1), "ICR: fixed 0x61 to x2APIC ID 1");
  assert.ok(irrHas(a1, 0x61));
  assert.ok(a0.x2apicMsrRead(0x830, out));
  assert.deepEqual([...out], [0x4061, 1]);
  assert.ok(a0.x2apicMsrWrite(0x83f, 0x62, 0), "SELF IPI");
  assert.ok(irrHas(a0, 0x62));
  assert.ok(a0.x2apicMsrWrite(0x808, 0x70, 0));
  assert.equal(a0.hasInterrupt(), -1, "TPR 0x70 blocks 0x62");
  assert.ok(a0.x2apicMsrWrite(0x830, 0x4863, 0x00010002), "logical: cluster 1, member bit 1");
  assert.ok(!irrHas(a1, 0x63), "APIC 1 is in cluster 0");
  assert.ok(a0.x2apicMsrWrite(0x830, 0x4863, 0x00000002), "logical: cluster 0, member bit 1");
  assert.ok(irrHas(a1, 0x63));
  assert.equal(a1.x2apicMsrWrite(0x80b, 0, 0), true);
  // xAPIC-mode LAPIC rejects x2APIC MSRs.
  const vm2 = makeVm();
  assert.equal(vm2.apics[0].x2apicMsrRead(0x802, out), false);
});

test("KVM_GET/SET_LAPIC: a copy of the register page restores IRR/ISR/TPR and a running timer", () => {
  const a = makeVm();
  const src = a.apics[0];
  apicEnable(src);
  apicWrite(src, TPR, 0x20);
  apicWrite(src, TDCR, 0xb);
  apicWrite(src, LVTT, (1 << 17) | 0xe1);
  apicWrite(src, TMICT, 1_000_000);
  src.acceptIrq(0, 0x80, 1, 1);
  src.acceptIrq(0, 0x90, 1, 0);
  assert.equal(src.getInterrupt(), 0x90);
  a.clock.t = 250_000;
  const state = src.getState();
  assert.equal(state.length, 1024);
  assert.equal(new DataView(state.buffer).getUint32(TMCCT, true), 750_000);

  const b = makeVm();
  b.clock.t = 250_000;
  const dst = b.apics[0];
  dst.setState(state);
  assert.deepEqual(dst.getState(), state);
  for (const [vm, apic] of [[a, src], [b, dst]] as const) {
    assert.equal(apic.findHighestIsr(), 0x90);
    assert.equal(apic.hasInterrupt(), -1, "0x80 waits under in-service 0x90");
    apicWrite(apic, EOI, 0);
    assert.equal(apic.getInterrupt(), 0x80);
    assert.equal(apic.nextDeadlineNs(), 1_000_000);
    vm.clock.t = 1_000_000;
    assert.ok(apic.pollTimer(vm.clock.t));
    assert.equal(apic.nextDeadlineNs(), 2_000_000);
  }
});

test("ESR illegal register address: a reserved offset is an error, a read-only register is not", () => {
  const vm = makeVm();
  const a = vm.apics[0];
  apicEnable(a);
  apicWrite(a, LVR, 0x12345678);
  apicWrite(a, ESR, 0);
  assert.equal(apicRead(a, ESR), 0);
  assert.equal(apicRead(a, LVR), 0x01050014, "read-only");
  apicWrite(a, 0x40, 1); // reserved
  apicWrite(a, ESR, 0);
  assert.equal(apicRead(a, ESR), 0x80);
});
