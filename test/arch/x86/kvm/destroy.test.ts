import { test } from "node:test";
import assert from "node:assert/strict";
import { createHost } from "../../../../src/host/process.js";
import { openKvm } from "../../../../src/kvm.js";
import { KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2 } from "../../../../src/uapi/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../src/uapi/mman.js";

test("closing a VM with an in-kernel irqchip and PIT tears down cleanly (kvm_arch_sync_events before the buses go)", () => {
  const proc = createHost({ memBytes: 16 << 20 }).createProcess("destroy");
  const kvm = openKvm(proc);
  const vm = kvm.createVm(0);
  vm.ioctl(KVM_CREATE_IRQCHIP, 0);
  const cfg = proc.mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  vm.ioctl(KVM_CREATE_PIT2, cfg); // struct kvm_pit_config, all zero
  vm.createVcpu(0);
  vm.destroy();
  // The PIT's ports are gone with it: a new VM can register its own.
  const vm2 = kvm.createVm(0);
  vm2.ioctl(KVM_CREATE_IRQCHIP, 0);
  assert.equal(vm2.ioctl(KVM_CREATE_PIT2, cfg), 0);
  vm2.destroy();
});
