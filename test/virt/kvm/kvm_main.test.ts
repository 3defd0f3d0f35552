import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../src/uapi/kvm.js";
import * as S from "../../../src/uapi/kvm_structs.js";
import { EBADF, EINTR, EFAULT } from "../../../src/uapi/errno.js";
import { HostError } from "../../../src/host/errors.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../src/uapi/mman.js";
import { KVM_PFN_ERR_FAULT, KVM_PFN_ERR_RO_FAULT, KVM_PFN_NOSLOT, KvmBus, type KvmIoDevice } from "../../../src/virt/kvm/kvm_host.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
import { SIGALRM } from "../../../src/uapi/signal.js";
import { setup } from "./fake_arch.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const errno = (fn: () => unknown): number => {
  try { fn(); } catch (e) { if (e instanceof KvmError) return e.errno; throw e; }
  return 0;
};

test("hello-world flow through the typed API", () => {
  const { dev, proc, arch } = setup();
  assert.equal(dev.getApiVersion(), 12);
  assert.equal(dev.getVcpuMmapSize(), 3 * 4096);
  assert.equal(dev.checkExtension(K.KVM_CAP_USER_MEMORY), 1);
  assert.equal(dev.checkExtension(K.KVM_CAP_HLT), 1, "falls through to the arch");
  assert.equal(dev.checkExtension(K.KVM_CAP_IRQCHIP), 0);
  assert.equal(dev.checkExtension(K.KVM_CAP_NR_VCPUS), 2);
  assert.equal(dev.checkExtension(K.KVM_CAP_MULTI_ADDRESS_SPACE), 2);
  const kvm = dev.createVm();
  const mem = proc.mm.mmap(0, 0x10000, RW, ANON);
  kvm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0x0n, memory_size: 0x10000n, userspace_addr: BigInt(mem) });
  proc.mm.copyToUser(mem + 0x1000, new Uint8Array([0xf4]));
  const pfn = kvm.gfnToPfn(1, false);
  assert.equal(proc.host.physmem.read8(pfn * 4096), 0xf4, "gfn 1 -> hva -> the page written by the VMM");
  assert.equal(kvm.gfnToPfn(0x10, false), KVM_PFN_NOSLOT);
  const vcpu = kvm.createVcpu(0);
  assert.equal(vcpu.kvmRun.bytes.length, 3 * 4096);
  const regs = vcpu.getRegs();
  regs.rip = 0x1000n;
  vcpu.setRegs(regs);
  assert.equal(vcpu.getRegs().rip, 0x1000n);
  assert.equal(vcpu.run(), 0);
  assert.equal(vcpu.kvmRun.exitReason, K.KVM_EXIT_IO);
  assert.equal(vcpu.kvmRun.ioPort, 0x3f8);
  assert.equal(vcpu.stat.exits, 1);
  assert.deepEqual(arch.calls.slice(0, 4), ["initVm", "prepare 0 - 0", "commit 0 - 0", "vcpuCreate 0"]);
});

test("KVM_RUN: immediate_exit completes pending I/O first, then EINTR; signals give KVM_EXIT_INTR", () => {
  const { dev, proc, arch } = setup();
  const vcpu = dev.createVm().createVcpu(0);
  const lines: string[] = [];
  const off = dev.subscribeTrace(["kvm_userspace_exit"], (e) => lines.push(`${e.fields.errno}`));
  arch.pendingCompletion = true;
  vcpu.kvmRun.immediateExit = 1;
  assert.equal(errno(() => vcpu.run()), EINTR);
  assert.deepEqual(lines, ["-4"], "kvm_userspace_exit: restart");
  off();
  assert.ok(arch.calls.includes("complete"));
  assert.ok(!arch.calls.includes("run"));
  vcpu.kvmRun.immediateExit = 0;
  proc.task.kill(SIGALRM);
  assert.equal(errno(() => vcpu.run()), EINTR);
  assert.equal(vcpu.kvmRun.exitReason, K.KVM_EXIT_INTR);
  assert.equal(vcpu.stat.signal_exits, 1);
  proc.task.dequeueSignal();
  assert.equal(vcpu.run(), 0);
});

test("byte-level ioctls copy structs through the process's memory", () => {
  const { dev, proc } = setup();
  const kvm = dev.createVm();
  const mm = proc.mm;
  const scratch = mm.mmap(0, 4096, RW, ANON);
  const guest = mm.mmap(0, 0x200000, RW, ANON);
  mm.copyToUser(scratch, S.kvm_userspace_memory_region.encode({ slot: 3, guest_phys_addr: 0x100000n, memory_size: 0x200000n, userspace_addr: BigInt(guest) }));
  assert.equal(kvm.ioctl(K.KVM_SET_USER_MEMORY_REGION, scratch), 0);
  assert.equal(kvm.gfnToMemslot(0x100)?.id, 3);
  assert.equal(kvm.gfnToMemslot(0x2ff)?.id, 3);
  assert.equal(kvm.gfnToMemslot(0x300), null);
  const vcpufd = kvm.ioctl(K.KVM_CREATE_VCPU, 5);
  const vcpu = kvm.getVcpuById(5)!;
  assert.equal(proc.files.get(vcpufd), vcpu);
  assert.equal(vcpu.ioctl(K.KVM_GET_REGS, scratch), 0);
  assert.equal(S.kvm_regs.decode(mm.copyFromUser(scratch, 144)).rip, 0xfff0n);
  mm.writeU64(scratch + 128, 0x7c00n);
  vcpu.ioctl(K.KVM_SET_REGS, scratch);
  assert.equal(vcpu.getRegs().rip, 0x7c00n);
  assert.equal(errno(() => vcpu.ioctl(K.KVM_GET_REGS, 0x1000)), EFAULT);
  assert.equal(kvm.ioctl(K.KVM_SET_TSS_ADDR, 0xfffbd000), 0);
  assert.equal(dev.ioctl(K.KVM_GET_API_VERSION), 12);
});

test("READONLY slots and unmapped backing give KVM_PFN_* errors", () => {
  const { dev, proc } = setup();
  const kvm = dev.createVm();
  const ro = proc.mm.mmap(0, 0x4000, RW, ANON);
  kvm.setUserMemoryRegion({ slot: 1, flags: K.KVM_MEM_READONLY, guest_phys_addr: 0xf0000n, memory_size: 0x4000n, userspace_addr: BigInt(ro) });
  assert.equal(kvm.gfnToPfn(0xf0, true), KVM_PFN_ERR_RO_FAULT);
  assert.ok(kvm.gfnToPfn(0xf0, false) >= 0);
  kvm.setUserMemoryRegion({ slot: 2, flags: 0, guest_phys_addr: 0x0n, memory_size: 0x4000n, userspace_addr: 0x10000000n });
  assert.equal(kvm.gfnToPfn(0, false), KVM_PFN_ERR_FAULT, "hva not mapped");
});

test("memslot MOVE/DELETE call the arch and munmap reaches unmapGfnRange", () => {
  const { dev, proc, arch } = setup();
  const kvm = dev.createVm();
  const vcpu = kvm.createVcpu(0);
  const hva = proc.mm.mmap(0, 0x10000, RW, ANON);
  const r = { slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x10000n, userspace_addr: BigInt(hva) };
  kvm.setUserMemoryRegion(r);
  kvm.setUserMemoryRegion(r); // no-op
  arch.calls.length = 0;
  kvm.setUserMemoryRegion({ ...r, guest_phys_addr: 0x100000n });
  assert.deepEqual(arch.calls, ["prepare 2 0 0", "flush 0", "commit 2 0 0"]);
  assert.equal(kvm.gfnToMemslot(0), null);
  assert.equal(kvm.gfnToMemslot(0x10f)?.baseGfn, 0x100);
  arch.calls.length = 0;
  proc.mm.munmap(hva + 0x2000, 0x2000);
  assert.deepEqual(arch.calls, ["unmap 0 102-104"]);
  assert.equal(kvm.stat.remote_tlb_flush, 1);
  assert.notEqual(vcpu.requests & 1, 0, "KVM_REQ_TLB_FLUSH pending");
  arch.calls.length = 0;
  kvm.setUserMemoryRegion({ ...r, guest_phys_addr: 0x100000n, memory_size: 0n });
  assert.deepEqual(arch.calls, ["prepare 1 0 -", "flush 0", "commit 1 0 -"]);
  assert.equal(kvm.gfnToMemslot(0x100), null);
});

test("address space 1 is independent", () => {
  const { dev, proc } = setup();
  const kvm = dev.createVm();
  const a = proc.mm.mmap(0, 0x2000, RW, ANON);
  const b = proc.mm.mmap(0, 0x2000, RW, ANON);
  kvm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x2000n, userspace_addr: BigInt(a) });
  kvm.setUserMemoryRegion({ slot: (1 << 16) | 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x2000n, userspace_addr: BigInt(b) });
  assert.notEqual(kvm.gfnToPfn(0, true, 0), kvm.gfnToPfn(0, true, 1));
  assert.equal(kvm.gfnToMemslot(0, 1)?.asId, 1);
});

test("io bus: sorted ranges, overlap rejection, declining devices", () => {
  const { dev } = setup();
  const kvm = dev.createVm();
  const log: string[] = [];
  const mk = (name: string, take: boolean): KvmIoDevice => ({
    read: (_v, addr, len, data) => { log.push(`${name} r ${addr.toString(16)}`); data[0] = 0x42; return take; },
    write: (_v, addr, len, data) => { log.push(`${name} w ${addr.toString(16)} ${data[0]}`); return take; },
  });
  kvm.ioBusRegisterDev(KvmBus.PIO, 0x60, 1, mk("kbd", true));
  kvm.ioBusRegisterDev(KvmBus.PIO, 0x40, 4, mk("pit", true));
  const decline = mk("efd", false);
  kvm.ioBusRegisterDev(KvmBus.MMIO, 0x1000, 4, decline);
  kvm.ioBusRegisterDev(KvmBus.MMIO, 0x1000, 4, mk("dev", true));
  assert.throws(() => kvm.ioBusRegisterDev(KvmBus.PIO, 0x42, 4, mk("x", true)), /EEXIST/);
  const d = new Uint8Array(8);
  assert.equal(kvm.ioBusWrite(null, KvmBus.PIO, 0x43, 1, d), true);
  assert.equal(kvm.ioBusRead(null, KvmBus.PIO, 0x61, 1, d), false, "no device");
  assert.equal(kvm.ioBusRead(null, KvmBus.PIO, 0x43, 2, d), false, "crosses the range end");
  assert.equal(kvm.ioBusWrite(null, KvmBus.MMIO, 0x1000, 4, d), true);
  assert.deepEqual(log, ["pit w 43 0", "efd w 1000 0", "dev w 1000 0"]);
  kvm.ioBusUnregisterDev(KvmBus.MMIO, decline);
  log.length = 0;
  kvm.ioBusRead(null, KvmBus.MMIO, 0x1002, 1, d);
  assert.deepEqual(log, ["dev r 1002"]);
});

test("a 1 GiB memslot whose guest touches 1 MiB costs ~256 frames", () => {
  const { dev, proc, host } = setup(256 << 20);
  const kvm = dev.createVm();
  const GiB = 1 << 30;
  const hva = proc.mm.mmap(0, GiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  kvm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(GiB), userspace_addr: BigInt(hva) });
  const before = host.pageAlloc.allocatedFrames;
  const pfns = new Set<number>();
  // 1 MiB spread over the slot: 256 pages, one every 4 MiB-ish stride.
  for (let i = 0; i < 256; i++) pfns.add(kvm.gfnToPfn(i * 1021, true));
  assert.equal(pfns.size, 256);
  assert.equal(host.pageAlloc.allocatedFrames - before, 256);
  assert.equal(host.physmem.populatedBytes, 2 << 20, "one 2 MiB chunk of host memory");
  // Touching the same pages again costs nothing.
  for (let i = 0; i < 256; i++) kvm.gfnToPfn(i * 1021, false);
  assert.equal(host.pageAlloc.allocatedFrames - before, 256);
});

test("ioctls without a core codec pass their struct as raw bytes both ways", () => {
  const { dev, proc } = setup();
  const vcpu = dev.createVm().createVcpu(0);
  const mm = proc.mm;
  const buf = mm.mmap(0, 8192, RW, ANON);
  mm.writeU32(buf + 0x20, 0x01000000); // APIC ID register
  mm.writeU8(buf + 1023, 0x5a);
  vcpu.ioctl(K.KVM_SET_LAPIC, buf);
  assert.equal(vcpu.ioctl(K.KVM_GET_LAPIC, buf + 4096), 0);
  assert.equal(mm.readU32(buf + 4096 + 0x20), 0x01000000);
  assert.equal(mm.readU8(buf + 4096 + 1023), 0x5a);
  assert.equal(errno(() => vcpu.ioctl(K.KVM_SET_LAPIC, buf + 4096 + 3500)), EFAULT, "struct runs past the mapping");
});

test("the C shape: descriptors for /dev/kvm, the VM, vCPUs and stats", () => {
  const { dev, proc } = setup();
  const files = proc.files;
  const mm = proc.mm;
  const kvmfd = dev.open();
  assert.equal(files.ioctl(kvmfd, K.KVM_GET_API_VERSION, 0), 12);
  const mmapSize = files.ioctl(kvmfd, K.KVM_GET_VCPU_MMAP_SIZE, 0);
  const vmfd = files.ioctl(kvmfd, K.KVM_CREATE_VM, 0);
  assert.notEqual(vmfd, kvmfd);
  const mem = mm.mmap(0, 0x1000, RW, ANON);
  const scratch = mm.mmap(0, 0x1000, RW, ANON);
  mm.copyToUser(scratch, S.kvm_userspace_memory_region.encode({ slot: 0, guest_phys_addr: 0x1000n, memory_size: 0x1000n, userspace_addr: BigInt(mem) }));
  files.ioctl(vmfd, K.KVM_SET_USER_MEMORY_REGION, scratch);
  const vcpufd = files.ioctl(vmfd, K.KVM_CREATE_VCPU, 0);
  const vcpu = files.get(vcpufd) as import("../../../src/virt/kvm/kvm_main.js").KvmVcpu;
  const run = vcpu.mmap(0, mmapSize);
  assert.equal(files.ioctl(vcpufd, K.KVM_RUN, 0), 0);
  assert.equal(new DataView(run.buffer).getUint32(8, true), K.KVM_EXIT_IO);
  const statsfd = files.ioctl(vcpufd, K.KVM_GET_STATS_FD, 0);
  const header = files.pread(statsfd, 24, 0);
  assert.equal(new DataView(header.buffer).getUint32(4, true), 48);
  files.close(vcpufd);
  files.close(vmfd);
  assert.throws(() => files.ioctl(vmfd, K.KVM_CREATE_VCPU, 1), (e: unknown) => e instanceof HostError && e.errno === EBADF);
  assert.equal(vcpu.kvm.dead, true, "closing the last VM fd destroyed the VM");
});
