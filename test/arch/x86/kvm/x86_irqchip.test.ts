import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { irqchipGuest } from "./guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);

test("with an in-kernel irqchip, a PIT tick wakes a halted vCPU through the PIC and the IVT", () => {
  const out = (port: number, v: number): number[] => [0xb0, v, 0xe6, port];
  const code = b(
    ...out(0x20, 0x11), ...out(0x21, 0x08), ...out(0x21, 0x04), ...out(0x21, 0x01), ...out(0x21, 0xfe), // PIC: base 8, only IRQ0
    ...out(0x43, 0x34), ...out(0x40, 0x00), ...out(0x40, 0x10), // PIT channel 0, mode 2, count 0x1000
    0xfb, 0xf4, 0xeb, 0xfd, // sti; hlt; jmp hlt
  );
  const handler = b(0xb0, 0x54, 0xe6, 0x10, 0xb0, 0x20, 0xe6, 0x20, 0xcf); // out 0x10 'T'; EOI; iret
  const g = irqchipGuest(code, handler, 8);
  assert.equal(g.kvm.checkExtension(K.KVM_CAP_IRQCHIP), 1);
  assert.throws(() => g.vcpu.interrupt(0x20), (e: unknown) => e instanceof KvmError && e.code === "ENXIO");
  g.vm.archIoctl(K.KVM_CREATE_PIT2, { flags: 0, pad: new Array(15).fill(0) });
  const t0 = g.clock.nowNs();
  g.vcpu.run();
  assert.equal(g.vcpu.kvmRun.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.vcpu.kvmRun.ioPort, 0x10);
  assert.equal(g.vcpu.runBytes[4096], 0x54);
  assert.ok(g.clock.nowNs() > t0, "the halt waited for the PIT deadline on the VM clock");
  assert.equal(g.vcpu.stat.halt_exits, 1);
  assert.ok(g.vcpu.stat.irq_injections >= 1);
  // Second tick: the guest is back in HLT and the next period wakes it again.
  g.vcpu.run();
  assert.equal(g.vcpu.kvmRun.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.vcpu.runBytes[4096], 0x54);
});

test("KVM_IRQ_LINE raises a PIC line; KVM_GET_LAPIC returns the 1 KiB register page", () => {
  const out = (port: number, v: number): number[] => [0xb0, v, 0xe6, port];
  const code = b(...out(0x20, 0x11), ...out(0x21, 0x20), ...out(0x21, 0x04), ...out(0x21, 0x01), ...out(0x21, 0xf7), 0xfb, 0xf4, 0xeb, 0xfd);
  const handler = b(0xb0, 0x33, 0xe6, 0x10, 0xcf);
  const g = irqchipGuest(code, handler, 0x23);
  // Programs the PIC and halts; nothing can wake it, so KVM_RUN gives the VMM control back: -EINTR / KVM_EXIT_INTR.
  assert.throws(() => g.vcpu.run(), (e: unknown) => e instanceof KvmError && e.code === "EINTR");
  assert.equal(g.vcpu.kvmRun.exitReason, K.KVM_EXIT_INTR);
  assert.equal(g.vcpu.getMpState().mp_state, K.KVM_MP_STATE_HALTED);
  g.vm.archIoctl(K.KVM_IRQ_LINE, { irq: 3, level: 1 });
  g.vcpu.run();
  assert.equal(g.vcpu.kvmRun.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.vcpu.runBytes[4096], 0x33);
  const lapic = g.vcpu.archIoctl(K.KVM_GET_LAPIC, 0) as Uint8Array;
  assert.equal(lapic.byteLength, 1024);
  assert.equal(g.vcpu.getMsrs({ nmsrs: 1, entries: [{ index: 0x1b, reserved: 0, data: 0n }] }), 1);
});

test("INIT/SIPI through the xAPIC ICR (LAPIC MMIO emulation) starts an AP at the SIPI vector", () => {
  const movImm32 = (addr: number, v: number): number[] => [0xc7, 0x05, ...le32(addr), ...le32(v)];
  const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  // BSP (32-bit flat): ICR high = APIC ID 1; ICR low = INIT (assert); ICR low = SIPI vector 8; hlt
  const bsp = b(...movImm32(0xfee00310, 0x01000000), ...movImm32(0xfee00300, 0x4500), ...movImm32(0xfee00300, 0x4608), 0xf4);
  const g = irqchipGuest(bsp, b(), 0x40);
  const s = g.vcpu.getSregs();
  const code = { base: 0n, limit: 0xffffffff, selector: 8, type: 0xb, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data = { ...code, selector: 0x10, type: 0x3 };
  Object.assign(s, { cs: code, ds: data, es: data, ss: data, cr0: 0x11n });
  g.vcpu.setSregs(s);
  const ap = g.vm.createVcpu(1);
  assert.equal(ap.getMpState().mp_state, K.KVM_MP_STATE_UNINITIALIZED);
  // AP code at 0x8000: mov al, 'A'; out 0x10, al; hlt
  g.proc.mm.copyToUser(g.mem + 0x8000, b(0xb0, 0x41, 0xe6, 0x10, 0xf4));
  assert.throws(() => g.vcpu.run(), (e: unknown) => e instanceof KvmError && e.code === "EINTR"); // BSP halts for good
  assert.equal(g.vcpu.stat.mmio_exits, 0, "ICR writes went to the in-kernel LAPIC");
  ap.run();
  assert.equal(ap.kvmRun.exitReason, K.KVM_EXIT_IO);
  assert.equal(ap.runBytes[4096], 0x41);
  assert.equal(ap.getSregs().cs.selector, 0x800);
});

