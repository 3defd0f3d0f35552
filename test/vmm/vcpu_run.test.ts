import { test } from "node:test";
import assert from "node:assert/strict";
import { KvmRun } from "../../src/uapi/kvm_run.js";
import * as K from "../../src/uapi/kvm.js";
import { IoBus } from "../../src/vmm/io_bus.js";
import { ExitAction, handleExit, isRetry, type ExitContext } from "../../src/vmm/vcpu_run.js";
import { KvmError } from "../../src/virt/kvm/kvm_error.js";
import { EAGAIN, EINTR, EINVAL } from "../../src/uapi/errno.js";
import { Serial8250 } from "../../src/vmm/devices/serial8250.js";
import { PcTestdevIomem } from "../../src/vmm/devices/pc_testdev.js";

function ctx() {
  const out: number[] = [];
  const c: ExitContext & { warnings: string[] } = {
    pio: new IoBus("pio"), mmio: new IoBus("mmio"), pendingEnd: null, warnings: [],
    warnOnce(m: string) { this.warnings.push(m); },
  };
  c.pio.register(0x3f8, 8, new Serial8250("ttyS0", { setIrq() {} }, 4, (b) => out.push(b)));
  c.mmio.register(0xff000000, 0x10000, new PcTestdevIomem());
  return { c, out, run: new KvmRun(new Uint8Array(3 * 4096)) };
}

test("IO exits: OUT with count > 1 reaches the device in order; IN fills every element", () => {
  const { c, out, run } = ctx();
  run.exitReason = K.KVM_EXIT_IO;
  run.ioDirection = K.KVM_EXIT_IO_OUT; run.ioSize = 1; run.ioPort = 0x3f8; run.ioCount = 3; run.ioDataOffset = 4096;
  run.bytes.set([0x68, 0x69, 0x0a], 4096);
  assert.equal(handleExit(c, run, 0), ExitAction.Continue);
  assert.deepEqual(out, [0x68, 0x69, 0x0a]);
  run.ioDirection = K.KVM_EXIT_IO_IN; run.ioPort = 0x3fd; run.ioCount = 2;
  run.bytes.fill(0, 4096, 4098);
  handleExit(c, run, 0);
  assert.deepEqual([...run.bytes.subarray(4096, 4098)], [0x60, 0x60], "LSR: THRE|TEMT");
  run.ioPort = 0x1234; run.ioCount = 1; run.ioSize = 2;
  handleExit(c, run, 0);
  assert.deepEqual([...run.bytes.subarray(4096, 4098)], [0xff, 0xff], "no device: all ones");
});

test("MMIO exits read and write through the bus", () => {
  const { c, run } = ctx();
  run.exitReason = K.KVM_EXIT_MMIO;
  run.setU64(32, 0xff000100); run.dv.setUint32(48, 4, true); run.dv.setUint8(52, 1);
  run.mmioData.set([1, 2, 3, 4]);
  handleExit(c, run, 0);
  run.dv.setUint8(52, 0); run.mmioData.fill(0);
  handleExit(c, run, 0);
  assert.deepEqual([...run.mmioData.subarray(0, 4)], [1, 2, 3, 4]);
});

test("HLT parks, SHUTDOWN/SYSTEM_EVENT/INTERNAL_ERROR/unknown end the machine with a reason", () => {
  const { c, run } = ctx();
  run.exitReason = K.KVM_EXIT_HLT;
  assert.equal(handleExit(c, run, 0), ExitAction.Halted);
  run.exitReason = K.KVM_EXIT_INTR;
  assert.equal(handleExit(c, run, 0), ExitAction.Continue);
  run.exitReason = K.KVM_EXIT_SHUTDOWN;
  assert.equal(handleExit(c, run, 1), ExitAction.End);
  assert.equal(c.pendingEnd?.kind, "shutdown");
  run.exitReason = K.KVM_EXIT_SYSTEM_EVENT; run.dv.setUint32(32, K.KVM_SYSTEM_EVENT_SHUTDOWN, true);
  handleExit(c, run, 0);
  assert.equal(c.pendingEnd?.kind, "poweroff");
  run.exitReason = K.KVM_EXIT_INTERNAL_ERROR;
  run.dv.setUint32(32, K.KVM_INTERNAL_ERROR_EMULATION, true); run.dv.setUint32(36, 2, true);
  run.setInternalData(0, 0xdeadn); run.setInternalData(1, 0x1000n);
  handleExit(c, run, 0);
  assert.equal(c.pendingEnd?.kind, "error");
  assert.equal(c.pendingEnd?.status, 1);
  assert.match(c.pendingEnd!.message, /Suberror: 1 \(emulation failure\)\nextra data\[0\]: 0x000000000000dead\nextra data\[1\]: 0x0000000000001000/);
  run.exitReason = 99;
  handleExit(c, run, 0);
  assert.match(c.pendingEnd!.message, /unhandled exit reason 99/);
});

test("KVM_RUN errors the runner retries: EINTR (slice end, kick) and EAGAIN (an AP between INIT and SIPI); others end the machine", () => {
  assert.equal(isRetry(new KvmError(EINTR, "KVM_RUN")), true);
  assert.equal(isRetry(new KvmError(EAGAIN, "KVM_RUN", "vCPU waits for INIT/SIPI")), true);
  assert.equal(isRetry(new KvmError(EINVAL, "KVM_RUN")), false);
  assert.equal(isRetry(new Error("EAGAIN")), false);
  assert.equal(isRetry(null), false);
});

