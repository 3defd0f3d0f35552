import { test } from "node:test";
import assert from "node:assert/strict";
import { KvmEventfds } from "../../../src/virt/kvm/eventfd.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
import { KvmBus } from "../../../src/virt/kvm/kvm_host.js";
import { EAGAIN, EBADF, EBUSY, EEXIST, EINVAL, ENOENT } from "../../../src/uapi/errno.js";
import {
  KVM_IOEVENTFD_FLAG_DATAMATCH,
  KVM_IOEVENTFD_FLAG_DEASSIGN,
  KVM_IOEVENTFD_FLAG_PIO,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_FLAG_RESAMPLE,
} from "../../../src/uapi/kvm.js";
import { EFD_SEMAPHORE, eventfd as eventfdIn } from "../../../src/host/eventfd.js";
import { HostError } from "../../../src/host/errors.js";
import { FdTable } from "../../../src/host/file.js";

const files = new FdTable();
const eventfd = (initval: number | bigint = 0, flags = 0) => eventfdIn(files, initval, flags);
import { apicEnable, FakeBus, makeVm } from "../../arch/x86/kvm/irqchip_fixture.js";

const kvmErr = (n: number) => (e: unknown) => e instanceof KvmError && e.errno === n;
const hostErr = (n: number) => (e: unknown) => e instanceof HostError && e.errno === n;

test("host eventfd: counter semantics of read/write, semaphore mode, EAGAIN/EINVAL", () => {
  const efd = eventfd(0);
  assert.throws(() => efd.readCount(), hostErr(EAGAIN));
  efd.write(3n);
  efd.signal();
  assert.equal(efd.readCount(), 4n);
  assert.throws(() => efd.write(0xffffffffffffffffn), hostErr(EINVAL));
  efd.write(0xfffffffffffffffen);
  assert.throws(() => efd.write(1), hostErr(EAGAIN), "counter would pass 2^64-2");
  const sem = eventfd(2, EFD_SEMAPHORE);
  assert.equal(sem.readCount(), 1n);
  assert.equal(sem.readCount(), 1n);
  assert.throws(() => sem.readCount(), hostErr(EAGAIN));
  const seen: number[] = [];
  sem.addWaiter((ev) => seen.push(ev));
  sem.signal();
  files.close(sem.fd);
  assert.deepEqual(seen, [0x1, 0x10], "EPOLLIN then EPOLLHUP");
  const byFd = eventfd(0x0102);
  assert.deepEqual([...files.pread(byFd.fd, 8, 0)], [2, 1, 0, 0, 0, 0, 0, 0], "read(2) through the file table");
  assert.throws(() => files.pread(byFd.fd, 8, 0), hostErr(EAGAIN));
});

/** A VM in APIC mode with IOAPIC pin 5 edge (vector 0x35) and pin 10 level (vector 0x3a). */
function irqfdVm() {
  const vm = makeVm();
  vm.bus.outb(0x21, 0xff);
  vm.bus.outb(0xa1, 0xff);
  apicEnable(vm.apics[0]);
  const prog = (pin: number, low: number) => {
    vm.bus.writel(0xfec00000, 0x10 + 2 * pin);
    vm.bus.writel(0xfec00010, low);
  };
  prog(5, 0x35);
  prog(10, (1 << 15) | 0x3a);
  const fds = new KvmEventfds(vm.bus, files, vm.irq.routing);
  return { vm, fds };
}

test("KVM_IRQFD: signalling injects the GSI edge; deassign and close stop it", () => {
  const { vm, fds } = irqfdVm();
  const efd = eventfd();
  assert.equal(fds.irqfd({ fd: efd.fd, gsi: 5, flags: 0, resamplefd: 0 }), 0);
  efd.write(1);
  assert.equal(efd.counter, 0n, "irqfd consumed the count");
  assert.equal(vm.irq.getInterrupt({ vcpuIdx: 0 }), 0x35);
  const eoi = () => vm.apics[0].write(null, 0xfee000b0, 4, new Uint8Array(4));
  eoi();
  efd.signal();
  assert.equal(vm.apics[0].findHighestIrr(), 0x35, "a second pulse is a second edge");
  assert.equal(vm.apics[0].getInterrupt(), 0x35);
  eoi();
  fds.irqfd({ fd: efd.fd, gsi: 5, flags: KVM_IRQFD_FLAG_DEASSIGN, resamplefd: 0 });
  efd.signal();
  assert.equal(vm.apics[0].findHighestIrr(), -1);
  assert.equal(efd.counter, 1n);
  // A pending count is delivered at assign time; closing the eventfd tears the irqfd down.
  fds.irqfd({ fd: efd.fd, gsi: 5, flags: 0, resamplefd: 0 });
  assert.equal(vm.apics[0].findHighestIrr(), 0x35);
  assert.equal(fds.counts.irqfds, 1);
  files.close(efd.fd);
  assert.equal(fds.counts.irqfds, 0);
});

test("KVM_IRQFD errors: EAGAIN without irqchip, EINVAL flags, EBADF fd, EBUSY reuse", () => {
  const bare = new KvmEventfds(new FakeBus(), files, null);
  const efd = eventfd();
  assert.throws(() => bare.irqfd({ fd: efd.fd, gsi: 1, flags: 0, resamplefd: 0 }), kvmErr(EAGAIN));
  const { fds } = irqfdVm();
  assert.throws(() => fds.irqfd({ fd: efd.fd, gsi: 1, flags: 4, resamplefd: 0 }), kvmErr(EINVAL));
  assert.throws(() => fds.irqfd({ fd: 999999, gsi: 1, flags: 0, resamplefd: 0 }), kvmErr(EBADF));
  const notEventfd = files.install({ fileKind: "kvm-vm" });
  assert.throws(() => fds.irqfd({ fd: notEventfd, gsi: 1, flags: 0, resamplefd: 0 }), kvmErr(EINVAL));
  assert.throws(() => fds.irqfd({ fd: 999999, gsi: 1, flags: KVM_IRQFD_FLAG_DEASSIGN, resamplefd: 0 }), kvmErr(EBADF));
  fds.irqfd({ fd: efd.fd, gsi: 1, flags: 0, resamplefd: 0 });
  assert.throws(() => fds.irqfd({ fd: efd.fd, gsi: 2, flags: 0, resamplefd: 0 }), kvmErr(EBUSY));
  assert.throws(() => fds.irqfd({ fd: eventfd().fd, gsi: 2, flags: KVM_IRQFD_FLAG_RESAMPLE, resamplefd: 424242 }), kvmErr(EBADF));
});

test("resample irqfd: the level stays asserted until EOI, then drops and the resample fd fires", () => {
  const { vm, fds } = irqfdVm();
  const efd = eventfd();
  const rfd = eventfd();
  fds.irqfd({ fd: efd.fd, gsi: 10, flags: KVM_IRQFD_FLAG_RESAMPLE, resamplefd: rfd.fd });
  efd.signal();
  const v0 = { vcpuIdx: 0 };
  assert.equal(vm.irq.getInterrupt(v0), 0x3a);
  assert.equal(rfd.counter, 0n);
  vm.apics[0].write(null, 0xfee000b0, 4, new Uint8Array(4)); // EOI
  assert.equal(rfd.counter, 1n, "device model asked to re-check its level");
  assert.equal(vm.irq.hasInjectableIntr(v0), false, "line was de-asserted on EOI");
  // The device still has work: it signals again and gets another interrupt.
  efd.signal();
  assert.equal(vm.irq.getInterrupt(v0), 0x3a);
  fds.irqfd({ fd: efd.fd, gsi: 10, flags: KVM_IRQFD_FLAG_DEASSIGN, resamplefd: 0 });
  assert.equal(vm.irq.routing!.irqHasNotifier(2, 10), false, "last resampler gone");
});

function ioeventfdBus() {
  const bus = new FakeBus();
  return { bus, fds: new KvmEventfds(bus, files, null) };
}

test("KVM_IOEVENTFD: a PIO write signals the eventfd; datamatch filters; reads are not claimed", () => {
  const { bus, fds } = ioeventfdBus();
  const efd = eventfd();
  fds.ioeventfd({ datamatch: 0x1234n, addr: 0xc050n, len: 2, fd: efd.fd, flags: KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH });
  assert.equal(bus.write(KvmBus.PIO, 0xc050, 2, Uint8Array.of(0x34, 0x12)), true);
  assert.equal(efd.counter, 1n);
  assert.equal(bus.write(KvmBus.PIO, 0xc050, 2, Uint8Array.of(0x35, 0x12)), false, "other data: not ours, exits to userspace");
  assert.equal(bus.write(KvmBus.PIO, 0xc050, 1, Uint8Array.of(0x34)), false, "other length");
  assert.equal(bus.read(KvmBus.PIO, 0xc050, 2, new Uint8Array(2)), false);
  assert.equal(efd.counter, 1n);
});

test("KVM_IOEVENTFD: 8-byte datamatch, wildcard, length 0 on MMIO and FAST_MMIO", () => {
  const { bus, fds } = ioeventfdBus();
  const e8 = eventfd();
  fds.ioeventfd({ datamatch: 0x1122334455667788n, addr: 0xd0000000n, len: 8, fd: e8.fd, flags: KVM_IOEVENTFD_FLAG_DATAMATCH });
  assert.equal(bus.write(KvmBus.MMIO, 0xd0000000, 8, Uint8Array.of(0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11)), true);
  assert.equal(bus.write(KvmBus.MMIO, 0xd0000000, 8, Uint8Array.of(0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x12)), false);
  const e0 = eventfd();
  fds.ioeventfd({ datamatch: 0n, addr: 0xd0001000n, len: 0, fd: e0.fd, flags: 0 });
  assert.deepEqual(bus.regs.filter((r) => r.addr === 0xd0001000).map((r) => [r.bus, r.len]), [[KvmBus.MMIO, 0], [KvmBus.FAST_MMIO, 0]]);
  assert.equal(bus.write(KvmBus.MMIO, 0xd0001000, 4, Uint8Array.of(1, 2, 3, 4)), true);
  assert.equal(e0.counter, 1n);
  fds.ioeventfd({ datamatch: 0n, addr: 0xd0001000n, len: 0, fd: e0.fd, flags: KVM_IOEVENTFD_FLAG_DEASSIGN });
  assert.equal(bus.regs.filter((r) => r.addr === 0xd0001000).length, 0);
});

test("KVM_IOEVENTFD errors: bad length, datamatch without length, unknown flags, collision, deassign unknown", () => {
  const { fds } = ioeventfdBus();
  const efd = eventfd();
  const base = { datamatch: 0n, addr: 0x1000n, len: 4, fd: efd.fd, flags: 0 };
  assert.throws(() => fds.ioeventfd({ ...base, len: 3 }), kvmErr(EINVAL));
  assert.throws(() => fds.ioeventfd({ ...base, len: 0, flags: KVM_IOEVENTFD_FLAG_DATAMATCH }), kvmErr(EINVAL));
  assert.throws(() => fds.ioeventfd({ ...base, flags: 1 << 5 }), kvmErr(EINVAL));
  assert.throws(() => fds.ioeventfd({ ...base, addr: 0xfffffffffffffffen }), kvmErr(EINVAL), "range wraps");
  assert.throws(() => fds.ioeventfd({ ...base, fd: 777777 }), kvmErr(EBADF));
  fds.ioeventfd({ ...base, flags: KVM_IOEVENTFD_FLAG_DATAMATCH, datamatch: 1n });
  fds.ioeventfd({ ...base, flags: KVM_IOEVENTFD_FLAG_DATAMATCH, datamatch: 2n });
  assert.throws(() => fds.ioeventfd({ ...base, flags: KVM_IOEVENTFD_FLAG_DATAMATCH, datamatch: 2n }), kvmErr(EEXIST));
  assert.throws(() => fds.ioeventfd(base), kvmErr(EEXIST), "a wildcard collides with any datamatch");
  assert.throws(() => fds.ioeventfd({ ...base, flags: KVM_IOEVENTFD_FLAG_DEASSIGN }), kvmErr(ENOENT));
  assert.equal(fds.ioeventfd({ ...base, flags: KVM_IOEVENTFD_FLAG_DATAMATCH | KVM_IOEVENTFD_FLAG_DEASSIGN, datamatch: 2n }), 0);
  assert.equal(fds.counts.ioeventfds, 1);
  fds.release();
  assert.equal(fds.counts.ioeventfds, 0);
});
