import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../src/uapi/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../src/uapi/mman.js";
import { KVM_DIRTY_LOG_INITIALLY_SET, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from "../../../src/virt/kvm/kvm_main.js";
import { setup } from "./fake_arch.js";

function vmWithLoggedSlot(pages = 256) {
  const s = setup();
  const kvm = s.dev.createVm();
  const hva = s.proc.mm.mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const region = { slot: 1, flags: K.KVM_MEM_LOG_DIRTY_PAGES, guest_phys_addr: 0x100000n, memory_size: BigInt(pages * 4096), userspace_addr: BigInt(hva) };
  return { ...s, kvm, hva, region };
}

test("dirty bitmap: mark, get (clears and re-protects), second get empty", () => {
  const { kvm, region, arch } = vmWithLoggedSlot();
  kvm.setUserMemoryRegion(region);
  kvm.markPageDirty(null, 0x100);
  kvm.markPageDirty(null, 0x100 + 33);
  kvm.markPageDirty(null, 0x100 + 200);
  kvm.markPageDirty(null, 0x50); // no slot: ignored
  arch.calls.length = 0;
  const log = kvm.getDirtyLog(1);
  assert.equal(log.length, 32, "256 bits, a whole number of u64s");
  assert.equal(log[0], 1);
  assert.equal(log[4], 2);
  assert.equal(log[25], 1);
  assert.deepEqual(arch.calls, ["wp 1 0 1", "wp 1 32 2", "wp 1 192 100"]);
  assert.ok(kvm.getDirtyLog(1).every((b) => b === 0));
});

test("manual protect: GET leaves the bitmap, CLEAR clears and re-protects; INITIALLY_SET", () => {
  const { kvm, region, arch } = vmWithLoggedSlot(128);
  assert.equal(kvm.enableCap({ cap: K.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, args: [BigInt(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET)] }), 0);
  kvm.setUserMemoryRegion(region);
  assert.ok(kvm.getDirtyLog(1).every((b) => b === 0xff), "initially all set");
  arch.calls.length = 0;
  const clear = new Uint8Array(8).fill(0xff);
  kvm.clearDirtyLog(1, 64, 64, clear);
  assert.deepEqual(arch.calls, ["wp 1 64 ffffffff", "wp 1 96 ffffffff"]);
  const log = kvm.getDirtyLog(1);
  assert.ok(log.subarray(0, 8).every((b) => b === 0xff));
  assert.ok(log.subarray(8).every((b) => b === 0));
});

test("dirty ring: soft-full exit, harvest, reset with coalesced re-protection", () => {
  const { kvm, region, arch, dev } = vmWithLoggedSlot(512);
  assert.equal(dev.checkExtension(K.KVM_CAP_DIRTY_LOG_RING), 65536 * 16);
  kvm.enableCap({ cap: K.KVM_CAP_DIRTY_LOG_RING, args: [4096n] });
  kvm.setUserMemoryRegion(region);
  assert.equal(kvm.gfnToMemslot(0x100)!.dirtyBitmap, null, "no bitmap with the ring");
  const vcpu = kvm.createVcpu(0);
  const ring = vcpu.mmap(K.KVM_DIRTY_LOG_PAGE_OFFSET * 4096, 4096);
  const dv = new DataView(ring.buffer, ring.byteOffset, ring.byteLength);
  for (let i = 0; i < 192; i++) kvm.markPageDirty(vcpu, 0x100 + i);
  assert.equal(dv.getUint32(0, true), K.KVM_DIRTY_GFN_F_DIRTY);
  assert.equal(dv.getUint32(4, true), 1, "slot id");
  assert.equal(dv.getBigUint64(16 + 8, true), 1n, "offset of the 2nd entry");
  arch.calls.length = 0;
  assert.equal(vcpu.run(), 0);
  assert.equal(vcpu.kvmRun.exitReason, K.KVM_EXIT_DIRTY_RING_FULL);
  assert.ok(!arch.calls.includes("run"), "did not enter the guest");
  // Userspace harvests the first 100 entries.
  for (let i = 0; i < 100; i++) dv.setUint32(i * 16, K.KVM_DIRTY_GFN_F_RESET, true);
  arch.calls.length = 0;
  assert.equal(kvm.resetDirtyRings(), 100);
  assert.deepEqual(arch.calls, ["wp 1 0 ffffffff", "wp 1 32 ffffffff", "wp 1 64 ffffffff", "wp 1 96 f"]);
  assert.equal(dv.getUint32(0, true), 0);
  assert.equal(vcpu.run(), 0);
  assert.equal(vcpu.kvmRun.exitReason, K.KVM_EXIT_IO, "ring below the soft limit: the guest runs");
});
