import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { eventfd } from "../../../../src/host/eventfd.js";
import { irqchipGuest } from "./guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const out = (port: number, v: number): number[] => [0xb0, v, 0xe6, port];

test("guest OUTs to ioeventfd ports (len 0 and datamatch) signal the host without a userspace exit", () => {
  const code = b(
    ...out(0x50, 0x01), ...out(0x50, 0x02), // len-0 ioeventfd: any width, any value
    0xb8, 0x34, 0x12, 0xe7, 0x54, // mov ax, 0x1234; out 0x54, ax  (datamatch hit)
    0xb8, 0x35, 0x12, 0xe7, 0x54, // mov ax, 0x1235; out 0x54, ax  (datamatch miss -> userspace)
    ...out(0x10, 0x58), 0xf4,
  );
  const g = irqchipGuest(code, b(0xcf), 0x20);
  const any = eventfd(g.proc.files);
  const match = eventfd(g.proc.files);
  g.vm.archIoctl(K.KVM_IOEVENTFD, { datamatch: 0n, addr: 0x50n, len: 0, fd: any.fd, flags: K.KVM_IOEVENTFD_FLAG_PIO, pad: [] });
  g.vm.archIoctl(K.KVM_IOEVENTFD, { datamatch: 0x1234n, addr: 0x54n, len: 2, fd: match.fd, flags: K.KVM_IOEVENTFD_FLAG_PIO | K.KVM_IOEVENTFD_FLAG_DATAMATCH, pad: [] });
  g.vcpu.run();
  const r = g.vcpu.kvmRun;
  assert.equal(r.exitReason, K.KVM_EXIT_IO);
  assert.equal(r.ioPort, 0x54, "the non-matching value is the first userspace exit");
  assert.equal(any.readCount(), 2n);
  assert.equal(match.readCount(), 1n);
  g.vcpu.run();
  assert.equal(r.ioPort, 0x10);
  assert.equal(g.vcpu.stat.io_exits, 2);
});

test("a host write to an irqfd interrupts a halted guest through the PIC", () => {
  const code = b(
    ...out(0x20, 0x11), ...out(0x21, 0x20), ...out(0x21, 0x04), ...out(0x21, 0x01), ...out(0x21, 0xdf), // PIC base 0x20, only IRQ5
    ...out(0x10, 0x52), // ready
    0xfb, 0xf4, 0xeb, 0xfd, // sti; hlt; jmp hlt
  );
  const handler = b(...out(0x11, 0x49), ...out(0x20, 0x20), 0xcf); // out 0x11 'I'; EOI; iret
  const g = irqchipGuest(code, handler, 0x25);
  const efd = eventfd(g.proc.files);
  g.vm.archIoctl(K.KVM_IRQFD, { fd: efd.fd, gsi: 5, flags: 0, resamplefd: 0, pad: [] });
  g.vcpu.run();
  assert.equal(g.vcpu.kvmRun.ioPort, 0x10);
  // With nothing to wake it, the halt hands control back (KVM_EXIT_INTR / EINTR) rather than sleeping forever.
  assert.throws(() => g.vcpu.run());
  efd.write(1n);
  g.vcpu.run();
  assert.equal(g.vcpu.kvmRun.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.vcpu.kvmRun.ioPort, 0x11);
});
