// The VMM's structural view of the API must be satisfied by the real core's handles.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KvmDev, Kvm, KvmVcpu } from "../../src/virt/kvm/kvm_main.js";
import type { KvmSystemApi, KvmVcpuApi, KvmVmApi } from "../../src/vmm/kvm_api.js";

type Assignable<A, B> = A extends B ? true : false;
const dev: Assignable<KvmDev, KvmSystemApi> = true;
const vm: Assignable<Kvm, KvmVmApi> = true;
const vcpu: Assignable<KvmVcpu, KvmVcpuApi> = true;

test("KvmDev/Kvm/KvmVcpu satisfy the VMM's API types (checked by tsc)", () => {
  assert.deepEqual([dev, vm, vcpu], [true, true, true]);
});
