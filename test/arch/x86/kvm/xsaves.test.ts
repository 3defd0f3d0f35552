// XSAVES/XRSTORS and IA32_XSS through KVM: KVM_GET_SUPPORTED_CPUID leaf 0DH subleaf 1, the
// guest's "enable XSAVES/XRSTORS" control following its CPUID (vmx_secondary_exec_control), and
// MSR_IA32_XSS in kvm_get/set_msr_common (only supported_xss bits: none).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { realModeGuest, type Guest } from "./guest_helpers.js";

const MSR_IA32_XSS = 0xda0;

/**
 * Real mode at 0x1000: CR4 |= OSXSAVE | OSFXSR; XCR0 = 3; FLD1; XSAVES [0x3000]; FNINIT;
 * XRSTORS [0x3000]; RDMSR(IA32_XSS); mov si, 11H; HLT; then WRMSR IA32_XSS = 1 (#GP); HLT.
 * IVT: #UD and #GP go to "mov si, vector; hlt".
 */
const CODE = [
  0x0f, 0x20, 0xe0, 0x66, 0x0d, 0x00, 0x02, 0x04, 0x00, 0x0f, 0x22, 0xe0, // mov eax,cr4; or eax,40200h; mov cr4,eax
  0x66, 0x31, 0xc9, 0x66, 0xb8, 3, 0, 0, 0, 0x66, 0x31, 0xd2, 0x0f, 0x01, 0xd1, // xcr0 = 3
  0xd9, 0xe8, // fld1
  0x0f, 0xc7, 0x2e, 0x00, 0x30, // xsaves [0x3000]
  0xdb, 0xe3, // fninit
  0x0f, 0xc7, 0x1e, 0x00, 0x30, // xrstors [0x3000]
  0x66, 0xb9, 0xa0, 0x0d, 0, 0, 0x66, 0xb8, 0x55, 0, 0, 0, 0x0f, 0x32, // ecx = IA32_XSS; eax = 55h; rdmsr
  0xbe, 0x11, 0x00, 0xf4, // mov si, 11h; hlt
  0x66, 0xb8, 1, 0, 0, 0, 0x66, 0x31, 0xd2, 0x0f, 0x30, // wrmsr IA32_XSS = 1
  0xbe, 0x22, 0x00, 0xf4, // mov si, 22h; hlt
];

function guest(xsaves: boolean): Guest {
  const g = realModeGuest({ code: new Uint8Array(CODE) });
  for (const v of [6, 13]) {
    g.poke(v * 4, new Uint8Array([0x00 + v * 8, 0x18, 0, 0])); // IVT: 0000:1800 + v*8
    g.poke(0x1800 + v * 8, new Uint8Array([0xbe, v, 0, 0xf4])); // mov si, v; hlt
  }
  const sup = g.kvm.getSupportedCpuid(100);
  if (!xsaves) for (const e of sup.entries) if (e.function === 0xd && e.index === 1) e.eax &= ~8;
  g.vcpu.setCpuid2(sup);
  return g;
}

function runToHlt(g: Guest): number {
  for (let i = 0; i < 10; i++) {
    g.vcpu.run();
    if (g.run.exitReason === K.KVM_EXIT_HLT) return Number(g.vcpu.getRegs().rsi & 0xffffn);
  }
  return assert.fail(`guest did not halt (exit ${g.run.exitReason})`);
}

test("KVM_GET_SUPPORTED_CPUID: leaf 0DH subleaf 1 has XSAVES and no IA32_XSS bits", () => {
  const g = realModeGuest({ code: new Uint8Array([0xf4]) });
  const d1 = g.kvm.getSupportedCpuid(100).entries.find((e) => e.function === 0xd && e.index === 1)!;
  assert.equal(d1.eax & 0xf, 0xf, "XSAVEOPT XSAVEC XGETBV1 XSAVES");
  assert.deepEqual([d1.ecx, d1.edx], [0, 0]);
  assert.equal(d1.ebx, 576);
});

test("a guest with XSAVES in CPUID: XSAVES/XRSTORS round trip at CPL 0; IA32_XSS reads 0; WRMSR IA32_XSS=1 is #GP", () => {
  const g = guest(true);
  assert.equal(runToHlt(g), 0x11);
  const img = g.peek(0x3000, 576);
  const dv = new DataView(img.buffer, img.byteOffset);
  assert.equal(dv.getUint32(512, true), 1, "XSTATE_BV: x87 in use");
  assert.equal(dv.getBigUint64(520, true), 0x8000000000000003n, "XCOMP_BV");
  const f = g.vcpu.getFpu();
  assert.equal((f.fsw >> 11) & 7, 7, "XRSTORS brought back the FLD1 stack");
  assert.deepEqual(f.fpr.slice(0, 10), [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
  const r = g.vcpu.getRegs();
  assert.equal(r.rax & 0xffffffffn, 0n, "RDMSR IA32_XSS");
  assert.equal(runToHlt(g), 13, "WRMSR IA32_XSS = 1 raised #GP");
});

test("a guest without XSAVES in CPUID gets #UD for XSAVES (the control stays off)", () => {
  const g = guest(false);
  assert.equal(runToHlt(g), 6);
  const hdr = g.peek(0x3200, 16);
  assert.ok(hdr.every((b) => b === 0), "nothing saved");
});

test("KVM_GET/SET_MSRS IA32_XSS: host writes of 0 succeed, of a set bit stop the list", () => {
  const g = guest(true);
  const m = { nmsrs: 1, entries: [{ index: MSR_IA32_XSS, reserved: 0, data: 7n }] };
  assert.equal(g.vcpu.getMsrs(m), 1);
  assert.equal(m.entries[0]!.data, 0n);
  assert.equal(g.vcpu.setMsrs({ nmsrs: 1, entries: [{ index: MSR_IA32_XSS, reserved: 0, data: 0n }] }), 1);
  assert.equal(g.vcpu.setMsrs({ nmsrs: 1, entries: [{ index: MSR_IA32_XSS, reserved: 0, data: 1n }] }), 0);
  assert.equal(g.vcpu.setMsrs({ nmsrs: 1, entries: [{ index: MSR_IA32_XSS, reserved: 0, data: 1n << 40n }] }), 0);
});
