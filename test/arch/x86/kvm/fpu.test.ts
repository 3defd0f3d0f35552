// KVM_GET/SET_FPU, KVM_GET/SET_XSAVE, KVM_GET_XSAVE2, KVM_GET/SET_XCRS and the FP bits of
// KVM_GET_SUPPORTED_CPUID, against a real-mode guest that uses the x87 (api.rst 4.22-4.23,
// 4.42-4.45; errno rules of arch/x86/kvm/x86.c).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { realModeGuest, type Guest } from "./guest_helpers.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../src/uapi/mman.js";

const einval = (e: unknown): boolean => e instanceof KvmError && e.code === "EINVAL";

/** FLD1; FLDPI; FADDP; FSTP qword [0x2000]; FLD1; HLT */
const CODE = new Uint8Array([0xd9, 0xe8, 0xd9, 0xeb, 0xde, 0xc1, 0xdd, 0x1e, 0x00, 0x20, 0xd9, 0xe8, 0xf4]);

function guest(code = CODE): Guest {
  return realModeGuest({ code });
}

function runToHlt(g: Guest): void {
  for (let i = 0; i < 10; i++) {
    g.vcpu.run();
    if (g.run.exitReason === K.KVM_EXIT_HLT) return;
  }
  assert.fail(`guest did not halt (exit ${g.run.exitReason})`);
}

function xcrs(nr: number, flags: number, entries: [number, bigint][]): Uint8Array {
  const b = new Uint8Array(392);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, nr, true);
  dv.setUint32(4, flags, true);
  entries.forEach(([xcr, v], i) => { dv.setUint32(8 + 16 * i, xcr, true); dv.setBigUint64(16 + 16 * i, v, true); });
  return b;
}

test("a new vCPU's FPU is KVM's initial fpstate; a guest's x87 work shows in KVM_GET_FPU", () => {
  const g = guest();
  const f0 = g.vcpu.getFpu();
  assert.equal(f0.fcw, 0x37f);
  assert.equal(f0.mxcsr, 0x1f80);
  assert.equal(f0.ftwx, 0);
  runToHlt(g);
  const bytes = g.peek(0x2000, 8);
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getFloat64(0, true), 1 + Math.PI);
  const f = g.vcpu.getFpu();
  assert.equal((f.fsw >> 11) & 7, 7, "TOP after one push");
  assert.equal(f.ftwx, 0x80);
  assert.deepEqual(f.fpr.slice(0, 10), [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f], "ST0 = 1.0");
  assert.equal(f.last_opcode, 0, "FOP is recorded only with an unmasked exception");
  assert.equal(f.last_ip, 0x100an);
});

test("KVM_SET_FPU loads registers the guest then uses", () => {
  const g = guest(new Uint8Array([0xdd, 0x1e, 0x00, 0x20, 0xf4])); // FSTP qword [0x2000]; HLT
  const f = g.vcpu.getFpu();
  f.fsw = 7 << 11;
  f.ftwx = 0x80;
  f.fpr.splice(0, 10, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0x00, 0x40); // 3.0
  f.xmm[0] = 0x5a;
  f.mxcsr = 0x1fa0;
  g.vcpu.setFpu(f);
  const back = g.vcpu.getFpu();
  assert.equal(back.xmm[0], 0x5a);
  assert.equal(back.mxcsr, 0x1fa0);
  runToHlt(g);
  const b = g.peek(0x2000, 8);
  assert.equal(new DataView(b.buffer, b.byteOffset).getFloat64(0, true), 3);
});

test("KVM_GET_XSAVE / KVM_GET_XSAVE2 give the standard XSAVE layout; KVM_SET_XSAVE validates like KVM", () => {
  const g = guest();
  runToHlt(g);
  const x = g.vcpu.archIoctl(K.KVM_GET_XSAVE, 0) as Uint8Array;
  assert.equal(x.byteLength, 4096);
  assert.equal(x[0]! | (x[1]! << 8), 0x37f);
  assert.equal(x[512]! & 1, 1, "XSTATE_BV: x87 in use");
  const dv = new DataView(x.buffer, x.byteOffset);
  assert.deepEqual([dv.getUint32(464, true), dv.getUint32(468, true), dv.getUint32(480, true)], [0x46505853, 580, 576], "fx_sw_reserved");
  assert.deepEqual(g.vcpu.archIoctl(K.KVM_GET_XSAVE2, 0), x);
  assert.equal(g.vm.checkExtension(K.KVM_CAP_XSAVE2), 4096);
  assert.equal(g.vm.checkExtension(K.KVM_CAP_XCRS), 1);
  // Through the byte-level ioctl: the struct lands in user memory.
  const hva = g.proc.mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert.equal(g.vcpu.ioctl(K.KVM_GET_XSAVE, hva), 0);
  assert.deepEqual(g.proc.mm.copyFromUser(hva, 4096), x);

  const bad = (patch: (b: Uint8Array) => void): void => {
    const b = x.slice();
    patch(b);
    assert.throws(() => g.vcpu.archIoctl(K.KVM_SET_XSAVE, b), einval);
  };
  bad((b) => { b[512] = 4; }); // AVX is not supported
  bad((b) => { b[527] = 0x80; }); // compacted
  bad((b) => { b[540] = 1; }); // reserved header byte
  bad((b) => { b[26] = 1; }); // MXCSR bit 16
  // XSTATE_BV = 0: both components to their initial configuration.
  const init = x.slice();
  init[512] = 0;
  assert.equal(g.vcpu.archIoctl(K.KVM_SET_XSAVE, init), 0);
  const f = g.vcpu.getFpu();
  assert.equal(f.ftwx, 0);
  assert.equal(f.fsw, 0);
  // Round trip of the saved image.
  g.vcpu.archIoctl(K.KVM_SET_XSAVE, x);
  assert.deepEqual(g.vcpu.archIoctl(K.KVM_GET_XSAVE, 0), x);
});

test("KVM_GET_XCRS / KVM_SET_XCRS follow __kvm_set_xcr and the guest's CPUID", () => {
  const g = guest();
  const get = (): bigint => new DataView((g.vcpu.archIoctl(K.KVM_GET_XCRS, 0) as Uint8Array).buffer).getBigUint64(16, true);
  assert.equal(get(), 1n);
  const out = g.vcpu.archIoctl(K.KVM_GET_XCRS, 0) as Uint8Array;
  assert.equal(new DataView(out.buffer).getUint32(0, true), 1, "nr_xcrs");
  // Without a CPUID leaf 0DH only x87 is allowed.
  assert.throws(() => g.vcpu.archIoctl(K.KVM_SET_XCRS, xcrs(1, 0, [[0, 3n]])), einval);
  const sup = g.kvm.getSupportedCpuid(100);
  const leaf1 = sup.entries.find((e) => e.function === 1)!;
  assert.equal(leaf1.edx & 1, 1, "FPU");
  assert.equal((leaf1.edx >>> 24) & 1, 1, "FXSR");
  assert.equal((leaf1.ecx >>> 26) & 1, 1, "XSAVE");
  const d0 = sup.entries.find((e) => e.function === 0xd && e.index === 0)!;
  assert.deepEqual([d0.eax, d0.ebx, d0.ecx, d0.edx], [3, 576, 576, 0]);
  g.vcpu.setCpuid2(sup);
  assert.equal(g.vcpu.archIoctl(K.KVM_SET_XCRS, xcrs(1, 0, [[0, 3n]])), 0);
  assert.equal(get(), 3n);
  for (const v of [0n, 2n, 7n, 1n << 32n]) assert.throws(() => g.vcpu.archIoctl(K.KVM_SET_XCRS, xcrs(1, 0, [[0, v]])), einval, `XCR0=${v}`);
  assert.throws(() => g.vcpu.archIoctl(K.KVM_SET_XCRS, xcrs(17, 0, [])), einval);
  assert.throws(() => g.vcpu.archIoctl(K.KVM_SET_XCRS, xcrs(1, 1, [[0, 1n]])), einval);
  // Other XCR indexes are ignored.
  assert.equal(g.vcpu.archIoctl(K.KVM_SET_XCRS, xcrs(2, 0, [[5, 9n], [0, 1n]])), 0);
  assert.equal(get(), 1n);
});
