import { test } from "node:test";
import assert from "node:assert/strict";
import { KvmRun, KVM_RUN_SIZE } from "../../src/uapi/kvm_run.js";

function run(): { r: KvmRun; dv: DataView; b: Uint8Array } {
  const b = new Uint8Array(new SharedArrayBuffer(3 * 4096));
  return { r: new KvmRun(b), dv: new DataView(b.buffer), b };
}

test("header fields sit at the x86-64 offsets", () => {
  const { r, dv, b } = run();
  r.requestInterruptWindow = 1;
  r.immediateExit = 1;
  r.exitReason = 0x11223344;
  r.readyForInterruptInjection = 1;
  r.ifFlag = 1;
  r.flags = 0x8001;
  r.cr8 = 0xf;
  r.apicBase = 0xfee00900;
  r.kvmValidRegs = 7;
  r.kvmDirtyRegsBig = 1n << 63n;
  assert.deepEqual([b[0], b[1], dv.getUint32(8, true), b[12], b[13], dv.getUint16(14, true)], [1, 1, 0x11223344, 1, 1, 0x8001]);
  assert.equal(dv.getBigUint64(16, true), 0xfn);
  assert.equal(dv.getBigUint64(24, true), 0xfee00900n);
  assert.equal(dv.getBigUint64(288, true), 7n);
  assert.equal(dv.getBigUint64(296, true), 1n << 63n);
  assert.equal(KVM_RUN_SIZE, 2352);
});

test("io and mmio union members", () => {
  const { r, dv, b } = run();
  r.ioDirection = 1;
  r.ioSize = 2;
  r.ioPort = 0x3f8;
  r.ioCount = 3;
  r.ioDataOffset = 4096;
  assert.deepEqual([b[32], b[33], dv.getUint16(34, true), dv.getUint32(36, true), Number(dv.getBigUint64(40, true))], [1, 2, 0x3f8, 3, 4096]);
  b.set([1, 2, 3, 4, 5, 6], 4096);
  assert.deepEqual([...r.ioData()], [1, 2, 3, 4, 5, 6]);
  r.clearUnion();
  r.mmioPhysAddr = 0xfee00030;
  r.mmioData.set([0xaa, 0xbb]);
  r.mmioLen = 4;
  r.mmioIsWrite = 1;
  assert.equal(dv.getBigUint64(32, true), 0xfee00030n);
  assert.deepEqual([b[40], b[41], dv.getUint32(48, true), b[52]], [0xaa, 0xbb, 4, 1]);
  r.mmioPhysAddrBig = 0xfffffffffffff000n;
  assert.equal(r.mmioPhysAddrBig, 0xfffffffffffff000n);
});

test("hypercall, internal, system_event, msr, debug, fail_entry", () => {
  const { r, dv } = run();
  r.hypercallNr = 5;
  r.setHypercallArg(5, 0x1234n);
  r.hypercallRet = 9;
  r.hypercallFlags = 1;
  assert.equal(dv.getBigUint64(40 + 40, true), 0x1234n);
  assert.equal(dv.getBigUint64(88, true), 9n);
  assert.equal(dv.getBigUint64(96, true), 1n);
  r.internalSuberror = 1;
  r.internalNdata = 2;
  r.setInternalData(15, -1n);
  assert.equal(dv.getUint32(36, true), 2);
  assert.equal(dv.getBigUint64(40 + 120, true), 0xffffffffffffffffn);
  assert.throws(() => r.internalData(16), RangeError);
  r.systemEventType = 2;
  assert.equal(dv.getUint32(32, true), 2);
  r.msrError = 1;
  r.msrReason = 2;
  r.msrIndex = 0xc0000080;
  r.msrDataBig = 0xdeadbeefcafen;
  assert.deepEqual([dv.getUint8(32), dv.getUint32(40, true), dv.getUint32(44, true), dv.getBigUint64(48, true)], [1, 2, 0xc0000080, 0xdeadbeefcafen]);
  r.debugException = 1;
  r.debugPc = 0x1000;
  r.debugDr6 = 0xffff0ff0;
  r.debugDr7 = 0x400;
  assert.deepEqual([dv.getUint32(32, true), dv.getBigUint64(40, true), dv.getBigUint64(48, true), dv.getBigUint64(56, true)], [1, 0x1000n, 0xffff0ff0n, 0x400n]);
  r.failEntryHardwareEntryFailureReason = 0x80000021;
  r.failEntryCpu = 3;
  assert.deepEqual([dv.getBigUint64(32, true), dv.getUint32(40, true)], [0x80000021n, 3]);
});

test("number setters write negative values as 64-bit two's complement", () => {
  const { r, dv } = run();
  r.debugPc = -0x7f000000;
  assert.equal(dv.getBigUint64(40, true), 0xffffffff81000000n);
});
