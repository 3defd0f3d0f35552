import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../src/uapi/kvm.js";
import * as S from "../../../src/uapi/kvm_structs.js";
import { EINVAL } from "../../../src/uapi/errno.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../src/uapi/mman.js";
import { KvmBus } from "../../../src/virt/kvm/kvm_host.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
import { KVM_COALESCED_MMIO_MAX } from "../../../src/virt/kvm/coalesced_mmio.js";
import { setup } from "./fake_arch.js";

test("coalesced MMIO: writes in a zone go to the shared ring until it is full; reads still exit", () => {
  const { dev, proc } = setup();
  assert.equal(dev.checkExtension(K.KVM_CAP_COALESCED_MMIO), K.KVM_COALESCED_MMIO_PAGE_OFFSET);
  assert.equal(dev.checkExtension(K.KVM_CAP_COALESCED_PIO), 1);
  const kvm = dev.createVm();
  const vcpu = kvm.createVcpu(0);
  const vcpu1 = kvm.createVcpu(1);
  const scratch = proc.mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  proc.mm.copyToUser(scratch, S.kvm_coalesced_mmio_zone.encode({ addr: 0xa0000n, size: 0x20000, pad: 0 }));
  assert.equal(kvm.ioctl(K.KVM_REGISTER_COALESCED_MMIO, scratch), 0);
  const ring = vcpu.mmap(K.KVM_COALESCED_MMIO_PAGE_OFFSET * 4096, 4096);
  const dv = new DataView(ring.buffer, ring.byteOffset);
  assert.equal(kvm.ioBusWrite(vcpu, KvmBus.MMIO, 0xb8000, 2, Uint8Array.of(0x41, 0x07)), true);
  assert.equal(kvm.ioBusRead(vcpu, KvmBus.MMIO, 0xb8000, 2, new Uint8Array(2)), false, "reads are not coalesced");
  assert.equal(kvm.ioBusWrite(vcpu, KvmBus.MMIO, 0xbfffe, 4, new Uint8Array(4)), false, "crosses the zone end");
  assert.deepEqual([dv.getUint32(0, true), dv.getUint32(4, true)], [0, 1]);
  assert.equal(dv.getBigUint64(8, true), 0xb8000n);
  assert.deepEqual([dv.getUint32(16, true), dv.getUint32(20, true), ring[24], ring[25]], [2, 0, 0x41, 0x07]);
  let n = 1;
  while (kvm.ioBusWrite(vcpu, KvmBus.MMIO, 0xa0000 + n, 1, Uint8Array.of(n & 0xff))) n++;
  assert.equal(n, KVM_COALESCED_MMIO_MAX - 1, "one slot stays empty");
  // Every vCPU's mapping shows the same ring.
  const ring1 = vcpu1.mmap(0, 3 * 4096).subarray(2 * 4096);
  assert.deepEqual(ring1, ring);
  new DataView(ring1.buffer, ring1.byteOffset).setUint32(0, 5, true); // the VMM consumed 5 entries through vCPU 1's mapping
  assert.equal(kvm.ioBusWrite(vcpu1, KvmBus.MMIO, 0xa0000, 1, Uint8Array.of(1)), true);
  assert.equal(dv.getUint32(0, true), 5, "first reconciled into vCPU 0's mapping");
  assert.deepEqual(ring1, ring);
  proc.mm.copyToUser(scratch, S.kvm_coalesced_mmio_zone.encode({ addr: 0x0n, size: 0x100000, pad: 0 }));
  kvm.ioctl(K.KVM_UNREGISTER_COALESCED_MMIO, scratch);
  assert.equal(kvm.ioBusWrite(vcpu, KvmBus.MMIO, 0xb8000, 1, Uint8Array.of(1)), false, "zone gone");
  proc.mm.copyToUser(scratch, S.kvm_coalesced_mmio_zone.encode({ addr: 0x3f8n, size: 8, pad: 2 }));
  assert.throws(() => kvm.ioctl(K.KVM_REGISTER_COALESCED_MMIO, scratch), (e: unknown) => e instanceof KvmError && e.errno === EINVAL);
  proc.mm.copyToUser(scratch, S.kvm_coalesced_mmio_zone.encode({ addr: 0x3f8n, size: 8, pad: 1 }));
  kvm.ioctl(K.KVM_REGISTER_COALESCED_MMIO, scratch);
  assert.equal(kvm.ioBusWrite(vcpu, KvmBus.PIO, 0x3f8, 1, Uint8Array.of(0x61)), true, "coalesced PIO");
});
