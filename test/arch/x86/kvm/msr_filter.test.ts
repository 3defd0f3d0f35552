import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { EFAULT, EINVAL } from "../../../../src/uapi/errno.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../src/uapi/mman.js";
import { KVM_MSR_FILTER_DEFAULT_DENY, KVM_MSR_FILTER_READ, KVM_MSR_FILTER_WRITE } from "../../../../src/arch/x86/kvm/msr_filter.js";
import { realModeGuest, type Guest } from "./guest_helpers.js";

const HLT = 0xf4;
const SYSENTER_CS = 0x174;

interface Range { flags: number; nmsrs: number; base: number; bitmap?: number[]; bitmapHva?: number }

/** struct kvm_msr_filter in the process's memory (the bitmaps after it); returns its address. */
function writeFilter(g: Guest, flags: number, ranges: Range[]): number {
  const mm = g.proc.mm;
  const hva = mm.mmap(0, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const s = new Uint8Array(K.KVM_X86_SET_MSR_FILTER >>> 16 & 0x3fff);
  const dv = new DataView(s.buffer);
  dv.setUint32(0, flags, true);
  let bm = hva + 0x1000;
  ranges.forEach((r, i) => {
    const o = 8 + i * 24;
    dv.setUint32(o, r.flags, true);
    dv.setUint32(o + 4, r.nmsrs, true);
    dv.setUint32(o + 8, r.base, true);
    let ptr = r.bitmapHva ?? 0;
    if (r.bitmap) { mm.copyToUser(bm, Uint8Array.from(r.bitmap)); ptr = bm; bm += 0x100; }
    dv.setBigUint64(o + 16, BigInt(ptr), true);
  });
  mm.copyToUser(hva, s);
  return hva;
}

function errnoOf(f: () => void): number {
  try { f(); } catch (e) { if (e instanceof KvmError) return e.errno; throw e; }
  return 0;
}

// mov $0x174, %ecx ; rdmsr ; out %al, $0x10 ; wrmsr ; out %al, $0x12 ; hlt      (real mode, CPL 0)
// #GP handler (IVT 13 -> 0:0x2000): mov $0x13, %al ; out %al, $0x11 ; hlt
function guest(): Guest {
  const g = realModeGuest({ code: Uint8Array.of(0x66, 0xb9, 0x74, 0x01, 0, 0, 0x0f, 0x32, 0xe6, 0x10, 0x0f, 0x30, 0xe6, 0x12, HLT) });
  g.poke(13 * 4, Uint8Array.of(0x00, 0x20, 0x00, 0x00));
  g.poke(0x2000, Uint8Array.of(0xb0, 0x13, 0xe6, 0x11, HLT));
  return g;
}

test("KVM_X86_SET_MSR_FILTER: number, capability and KVM's EINVAL/EFAULT rules", () => {
  const g = guest();
  assert.equal(K.KVM_X86_SET_MSR_FILTER >>> 0, 0x4188aec6);
  assert.equal(g.kvm.checkExtension(K.KVM_CAP_X86_MSR_FILTER), 1);
  const set = (flags: number, ranges: Range[]): number => errnoOf(() => g.vm.ioctl(K.KVM_X86_SET_MSR_FILTER, writeFilter(g, flags, ranges)));
  assert.equal(set(2, []), EINVAL, "unknown filter flag");
  assert.equal(set(KVM_MSR_FILTER_DEFAULT_DENY, []), EINVAL, "deny everything with no ranges");
  assert.equal(set(0, [{ flags: 0, nmsrs: 1, base: 0, bitmap: [1] }]), EINVAL, "a range with MSRs but no READ/WRITE");
  assert.equal(set(0, [{ flags: 4, nmsrs: 1, base: 0, bitmap: [1] }]), EINVAL, "unknown range flag");
  assert.equal(set(0, [{ flags: KVM_MSR_FILTER_READ, nmsrs: 0x600 * 8 + 1, base: 0, bitmap: [0] }]), EINVAL, "bitmap larger than 0x600 bytes");
  assert.equal(set(0, [{ flags: KVM_MSR_FILTER_READ, nmsrs: 8, base: 0, bitmapHva: 0x10 }]), EFAULT, "bitmap pointer not mapped");
  assert.equal(set(0, [{ flags: 0, nmsrs: 0, base: 0 }, { flags: KVM_MSR_FILTER_WRITE, nmsrs: 8, base: 0, bitmap: [0xff] }]), 0);
  assert.equal(set(0, []), 0, "an empty allow-all filter removes filtering");
});

test("a denied RDMSR of a pass-through MSR exits with KVM_MSR_EXIT_REASON_FILTER; without that reason the guest gets #GP", () => {
  for (const toUser of [true, false]) {
    const g = guest();
    // Deny reads of SYSENTER_CS (bit 0 of the range's bitmap clear), allow its writes (no WRITE range).
    g.vm.ioctl(K.KVM_X86_SET_MSR_FILTER, writeFilter(g, 0, [{ flags: KVM_MSR_FILTER_READ, nmsrs: 8, base: SYSENTER_CS, bitmap: [0xfe] }]));
    if (toUser) g.vm.enableCap({ cap: K.KVM_CAP_X86_USER_SPACE_MSR, args: [BigInt(K.KVM_MSR_EXIT_REASON_FILTER), 0n, 0n, 0n] });
    g.vcpu.run();
    if (toUser) {
      assert.equal(g.run.exitReason, K.KVM_EXIT_X86_RDMSR);
      assert.equal(g.run.msrReason, K.KVM_MSR_EXIT_REASON_FILTER);
      assert.equal(g.run.msrIndex, SYSENTER_CS);
      g.run.msrDataBig = 0x42n;
      g.vcpu.run();
      assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
      assert.equal(g.run.ioPort, 0x10);
      assert.equal(g.run.ioData()[0], 0x42, "userspace supplied the value");
      g.vcpu.run();
      assert.equal(g.run.ioPort, 0x12, "the WRMSR is allowed (no WRITE range covers it)");
    } else {
      assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
      assert.equal(g.run.ioPort, 0x11, "#GP handler ran");
    }
  }
});

test("the MSR filter never applies to host accesses through KVM_GET/SET_MSRS", () => {
  const g = guest();
  g.vm.ioctl(K.KVM_X86_SET_MSR_FILTER, writeFilter(g, KVM_MSR_FILTER_DEFAULT_DENY, [{ flags: KVM_MSR_FILTER_READ, nmsrs: 1, base: 0x10, bitmap: [0] }]));
  assert.equal(g.vcpu.setMsrs({ nmsrs: 1, entries: [{ index: SYSENTER_CS, reserved: 0, data: 0x10n }] }), 1);
  const m = { nmsrs: 1, entries: [{ index: SYSENTER_CS, reserved: 0, data: 0n }] };
  assert.equal(g.vcpu.getMsrs(m), 1);
  assert.equal(m.entries[0]!.data, 0x10n);
});
