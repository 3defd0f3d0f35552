/**
 * Guest tests pinning what booting Debian's 6.1 kernel exposed in the CPU and KVM layers
 * (scripts/linux/NOTES.md). Each is a tiny real-mode guest; a #GP lands in a handler that
 * marks BX = 0xdead and halts, so a wrong fault shows up as that marker.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../src/uapi/kvm.js";
import { realModeGuest } from "../arch/x86/kvm/guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const HLT = 0xf4;
const GP_HANDLER = 0x2000;

function guestWithGpHandler(code: Uint8Array) {
  const g = realModeGuest({ code });
  // IVT entry 13 -> 0000:2000: mov bx, 0xdead; hlt
  g.poke(13 * 4, b(GP_HANDLER & 0xff, GP_HANDLER >> 8, 0, 0));
  g.poke(GP_HANDLER, b(0xbb, 0xad, 0xde, HLT));
  return g;
}

test("CR4.UMIP can be set: CPUID.7.0:ECX[2] advertises it (identify_cpu's cr4_set_bits(X86_CR4_UMIP))", () => {
  // mov eax, cr4; or eax, 0x800; mov cr4, eax; mov eax, cr4; mov bx, 1; hlt
  const g = guestWithGpHandler(b(0x0f, 0x20, 0xe0, 0x66, 0x0d, 0x00, 0x08, 0x00, 0x00, 0x0f, 0x22, 0xe0, 0x0f, 0x20, 0xe0, 0xbb, 0x01, 0x00, HLT));
  const leaf7 = g.kvm.getSupportedCpuid(100).entries.find((e) => e.function === 7 && e.index === 0);
  assert.ok(leaf7 && (leaf7.ecx & 4) !== 0, "KVM advertises UMIP");
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  const r = g.vcpu.getRegs();
  assert.equal(r.rbx & 0xffffn, 1n, "no #GP on the CR4 write");
  assert.equal(r.rax & 0x800n, 0x800n);
  assert.equal(g.vcpu.getSregs().cr4 & 0x800n, 0x800n);
});

test("WRMSR to IA32_UCODE_REV (0x8b) from the guest is accepted and dropped (early_init_intel)", () => {
  // xor eax,eax; xor edx,edx; mov ecx,0x8b; wrmsr; mov ecx,0x8b; rdmsr; mov bx,1; hlt
  const g = guestWithGpHandler(b(
    0x66, 0x31, 0xc0, 0x66, 0x31, 0xd2, 0x66, 0xb9, 0x8b, 0x00, 0x00, 0x00, 0x0f, 0x30,
    0x66, 0xb9, 0x8b, 0x00, 0x00, 0x00, 0x0f, 0x32, 0xbb, 0x01, 0x00, HLT));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  const r = g.vcpu.getRegs();
  assert.equal(r.rbx & 0xffffn, 1n, "no #GP on the WRMSR");
  assert.equal(r.rdx, 1n, "the revision KVM reports is unchanged");
});
