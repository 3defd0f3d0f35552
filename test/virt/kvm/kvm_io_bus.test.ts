import { test } from "node:test";
import assert from "node:assert/strict";
import { KvmIoBus } from "../../../src/virt/kvm/kvm_io_bus.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
import { EEXIST, EINVAL, ENOENT } from "../../../src/uapi/errno.js";
import type { KvmIoDevice, KvmVcpuLike } from "../../../src/virt/kvm/kvm_host.js";

const kvmErr = (n: number) => (e: unknown) => e instanceof KvmError && e.errno === n;

/** A device that records what it took; `accept` decides whether it claims the access. */
function dev(name: string, log: string[], accept: (len: number) => boolean = () => true): KvmIoDevice {
  return {
    write(_v: KvmVcpuLike | null, addr: number, len: number): boolean {
      if (!accept(len)) return false;
      log.push(`${name} w ${addr.toString(16)}/${len}`);
      return true;
    },
    read(_v: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
      if (!accept(len)) return false;
      data.fill(0xab);
      log.push(`${name} r ${addr.toString(16)}/${len}`);
      return true;
    },
  };
}

test("io bus: a zero-length registration is offered every access starting at its address, of any width", () => {
  const bus = new KvmIoBus();
  const log: string[] = [];
  bus.register(0x500, 0, dev("any", log));
  const d = new Uint8Array(8);
  for (const len of [1, 2, 4, 8]) assert.equal(bus.write(null, 0x500, len, d), true);
  assert.equal(bus.write(null, 0x501, 1, d), false, "only the exact address");
  assert.equal(bus.write(null, 0x4ff, 2, d), false, "an access that merely covers the address is not it");
  assert.deepEqual(log, ["any w 500/1", "any w 500/2", "any w 500/4", "any w 500/8"]);
  assert.equal(bus.devCount, 1);
});

test("io bus: zero-length entries come first, never conflict with sized ranges, and fall through when they decline", () => {
  const bus = new KvmIoBus();
  const log: string[] = [];
  bus.register(0x1000, 0x100, dev("big", log));
  bus.register(0x1040, 0, dev("pt", log, (len) => len === 4)); // inside a sized range: no EEXIST
  bus.register(0x1040, 0, dev("pt2", log, (len) => len === 2)); // stacks at the same address
  const d = new Uint8Array(8);
  assert.equal(bus.write(null, 0x1040, 4, d), true);
  assert.equal(bus.write(null, 0x1040, 2, d), true);
  assert.equal(bus.write(null, 0x1040, 1, d), true);
  assert.equal(bus.read(null, 0x1044, 4, d), true);
  assert.deepEqual(log, ["pt w 1040/4", "pt2 w 1040/2", "big w 1040/1", "big r 1044/4"]);
  assert.throws(() => bus.register(0x10f0, 0x20, dev("x", log)), kvmErr(EEXIST), "sized ranges still refuse partial overlap");
  assert.throws(() => bus.register(0x2000, -1, dev("x", log)), kvmErr(EINVAL));
  assert.equal(bus.devCount, 3);
});

test("io bus: unregister and destroy cover zero-length entries", () => {
  const bus = new KvmIoBus();
  const log: string[] = [];
  let destroyed = 0;
  const p = { ...dev("pt", log), destructor: () => void destroyed++ };
  const q = { ...dev("q", log), destructor: () => void destroyed++ };
  bus.register(0x60, 0, p);
  bus.register(0x64, 0, q);
  bus.unregister(p);
  assert.equal(destroyed, 1);
  assert.throws(() => bus.unregister(p), kvmErr(ENOENT));
  assert.equal(bus.write(null, 0x60, 1, new Uint8Array(1)), false);
  bus.destroy();
  assert.equal(destroyed, 2);
  assert.equal(bus.devCount, 0);
});
