// The PAE PDPTRs through the KVM API with EPT: KVM_SET_SREGS loads them from guest memory,
// KVM_SET_SREGS2 with KVM_SREGS2_FLAGS_PDPTRS_VALID hands them over (the guest walks from those,
// not from the table at CR3), and KVM_GET_SREGS2 reports the processor's registers as the last
// VM exit saved them.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { realModeGuest, ZERO_REGS } from "./guest_helpers.js";

const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const u64 = (v: number): Uint8Array => Uint8Array.from([...u32(v), 0, 0, 0, 0]);
const HLT = 0xf4;
/** mov eax, [moffs32] */
const LOAD_PROBE = [0xa1, ...u32(0x40000000)];
const RELOAD_CR3 = [0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8];
const SREGS2_PDPTRS = 288;

/**
 * A 32-bit PAE guest: PDPT at 0x2000 whose PDPTE0 maps the low 2 MiB and whose PDPTE1 points to
 * PD_A (linear 0x40000000 -> 0x7000, holding 0x1111); PD_B (-> 0xa000, holding 0x2222) is only
 * reachable through a PDPTE1 of 0x8001.
 */
function paeGuest() {
  const g = realModeGuest({ code: Uint8Array.from([HLT]) });
  g.poke(0x2000, u64(0x3001));
  g.poke(0x2008, u64(0x5001));
  g.poke(0x3000, u64(0x83));
  g.poke(0x5000, u64(0x6001));
  g.poke(0x6000, u64(0x7003));
  g.poke(0x8000, u64(0x9001));
  g.poke(0x9000, u64(0xa003));
  g.poke(0x7000, Uint8Array.from(u32(0x1111)));
  g.poke(0xa000, Uint8Array.from(u32(0x2222)));
  const s = g.vcpu.getSregs();
  const code = { base: 0n, limit: 0xffffffff, selector: 8, type: 0xb, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data = { ...code, selector: 0x10, type: 0x3 };
  Object.assign(s, { cs: code, ds: data, es: data, ss: data, fs: data, gs: data, cr3: 0x2000n, cr4: 0x20n, cr0: 0x80000011n });
  g.vcpu.setSregs(s);
  let next = 0x1100;
  /** Run `code` + HLT at a fresh address; returns EAX at the HLT exit. */
  const exec = (bytes: number[]): number => {
    g.poke(next, Uint8Array.from([...bytes, HLT]));
    g.vcpu.setRegs({ ...ZERO_REGS, rip: BigInt(next), rflags: 2n });
    next += 0x100;
    g.vcpu.run();
    assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
    return Number(g.vcpu.getRegs().rax & 0xffffffffn);
  };
  const sregs2 = (): { bytes: Uint8Array; dv: DataView } => {
    const bytes = g.vcpu.archIoctl(K.KVM_GET_SREGS2, 0) as Uint8Array;
    return { bytes, dv: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  };
  const pdptr = (i: number): number => sregs2().dv.getUint32(SREGS2_PDPTRS + 8 * i, true);
  return { g, exec, sregs2, pdptr };
}

test("KVM_SET_SREGS2 with PDPTRS_VALID: the guest walks from the given PDPTRs, not the table at CR3", () => {
  const { exec, sregs2, pdptr, g } = paeGuest();
  assert.equal(pdptr(1), 0x5001, "KVM_SET_SREGS loaded them from guest memory");
  const { bytes, dv } = sregs2();
  dv.setUint32(SREGS2_PDPTRS + 8, 0x8001, true);
  g.vcpu.archIoctl(K.KVM_SET_SREGS2, bytes);
  assert.equal(exec(LOAD_PROBE), 0x2222, "translated through the PDPTR given to KVM_SET_SREGS2");
  assert.equal(pdptr(1), 0x8001);
  assert.equal(pdptr(0), 0x3001);
});

test("KVM_GET_SREGS2 reports the PDPTE registers: a guest MOV to CR3 reloads them, a store to the table alone does not", () => {
  const { exec, pdptr } = paeGuest();
  // The guest rewrites PDPTE1 in memory and keeps using the old one.
  assert.equal(exec([0xc7, 0x05, ...u32(0x2008), ...u32(0x8001), ...LOAD_PROBE]), 0x1111);
  assert.equal(pdptr(1), 0x5001);
  // MOV to CR3 reloads the registers from the table (no exit with EPT); the exit saves them.
  assert.equal(exec([...RELOAD_CR3, ...LOAD_PROBE]), 0x2222);
  assert.equal(pdptr(1), 0x8001);
});

test("MOV to CR0 establishing PAE paging through a PDPTE with a reserved bit: #GP(0) in the guest, CR0 unchanged (kvm_set_cr0 -> load_pdptrs)", () => {
  // mov eax, cr0; or eax, 0x80000000; mov cr0, eax; hlt   -- #GP handler at 0x1800: pop ebx; hlt
  const g = realModeGuest({ code: Uint8Array.from([0x0f, 0x20, 0xc0, 0x0d, ...u32(0x80000000), 0x0f, 0x22, 0xc0, HLT]) });
  g.poke(0x2000, u64(0x3003)); // PDPTE0: bit 1 is reserved
  g.poke(0x1800, Uint8Array.from([0x5b, HLT]));
  // GDT at 0x500 (null, code 0x08, data 0x10); IDT at 0x600 with gate 13 -> 0x08:0x1800.
  g.poke(0x500, Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0, 0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0]));
  g.poke(0x600 + 13 * 8, Uint8Array.from([0x00, 0x18, 0x08, 0, 0, 0x8e, 0, 0]));
  const s = g.vcpu.getSregs();
  const code = { base: 0n, limit: 0xffffffff, selector: 8, type: 0xb, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data = { ...code, selector: 0x10, type: 0x3 };
  Object.assign(s, {
    cs: code, ds: data, es: data, ss: data, fs: data, gs: data, cr3: 0x2000n, cr4: 0x20n, cr0: 0x11n,
    gdt: { base: 0x500n, limit: 0x17, padding: [0, 0, 0] }, idt: { base: 0x600n, limit: 0x7f, padding: [0, 0, 0] },
  });
  g.vcpu.setSregs(s);
  g.vcpu.setRegs({ ...ZERO_REGS, rip: 0x1000n, rsp: 0x8000n, rflags: 2n });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rip, 0x1802n, "the guest's #GP handler ran");
  assert.equal(g.vcpu.getRegs().rbx, 0n, "error code 0");
  assert.equal(g.vcpu.getSregs().cr0 & 0x80000000n, 0n, "CR0.PG still clear");
});
