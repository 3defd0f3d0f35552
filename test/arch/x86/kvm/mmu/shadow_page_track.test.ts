/**
 * Shadow paging keeps its tables coherent with the guest's (page_track): a guest store to one of
 * its page tables is write-protected, emulated and zaps the shadow entries it changes, so the
 * guest sees its new entries with the semantics of SDM Vol. 3A 4.10.4 (and A/D bits as in 4.8),
 * while a CR3 switch keeps translations in the cached roots (current + 3 previous).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../../src/uapi/kvm.js";
import { kvmShadowVmIfAny, vcpuShadowMmuIfAny } from "../../../../../src/arch/x86/kvm/mmu/shadow.js";
import type { X86Kvm, X86Vcpu } from "../../../../../src/arch/x86/kvm/kvm_host.js";
import { CODE, HLT, LA, MEM, PF_HANDLER, buildTables, faultCase, invlpg, load, movEax, setCr3, shadowGuest, store, u32 } from "./shadow_guest.js";

/** mov ecx, eax */
const MOV_ECX_EAX = [0x89, 0xc1];
/** add ecx, eax */
const ADD_ECX_EAX = [0x01, 0xc1];
/** xor ecx, ecx */
const XOR_ECX = [0x31, 0xc9];

/**
 * `n` 64-bit address spaces: PML4 at base = 0x40000 + i * 0x4000, PDPT base+0x1000 ([0] -> the
 * shared low PD at 0x7000, [1] -> PD base+0x2000), PT base+0x3000 mapping LA to data frame
 * 0x20000 + i * 0x1000, which holds i + 1. Returns the PML4 bases.
 */
function addressSpaces(g: ReturnType<typeof shadowGuest>, n: number): number[] {
  const bases: number[] = [];
  for (let i = 0; i < n; i++) {
    const base = 0x40000 + i * 0x4000;
    bases.push(base);
    g.pte(base, (base + 0x1000) | 7);
    g.pte(base + 0x1000, 0x7003);
    g.pte(base + 0x1008, (base + 0x2000) | 7);
    g.pte(base + 0x2000, (base + 0x3000) | 7);
    g.pte(base + 0x3000, (0x20000 + i * 0x1000) | 3);
    g.poke(0x20000 + i * 0x1000, u32(i + 1));
  }
  return bases;
}

for (const mode of ["32", "pae", "64"] as const) {
  test(`${mode}: a guest's store to its own PTE unsyncs the leaf table (mmu_unsync, no emulation); INVLPG or a CR3 load makes the change take effect`, () => {
    const c = faultCase(mode, 0x20000 | 3, load(LA));
    assert.equal(c.faulted, false);
    const g = c.g;
    g.poke(0x20000, u32(0x1111));
    g.poke(0x21000, u32(0x2222));
    g.poke(0x22000, u32(0x3333));
    const emulated = g.vcpu.stats.stat.pf_emulate;
    // Retarget the PTE through the identity mapping of the PT, read without and with INVLPG.
    g.enter([...movEax(0x21003), ...store(c.pt), ...load(LA), ...MOV_ECX_EAX, ...invlpg(LA), ...load(LA), HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    let r = g.vcpu.getRegs();
    assert.ok(Number(r.rcx) === 0x1111 || Number(r.rcx) === 0x2222, `without INVLPG the old or the new frame (SDM 4.10.4.2), got 0x${r.rcx.toString(16)}`);
    assert.equal(Number(r.rax), 0x2222);
    assert.equal(g.peek32(c.pt) & ~0x60, 0x21003);
    assert.equal(g.vcpu.stats.stat.pf_emulate, emulated, "a leaf table is written in place once unsync");
    assert.equal(g.vm.stat.mmu_unsync, 1, "the PT's shadow is unsync");
    // Retarget again, no INVLPG: a CR3 load syncs the table (SDM 4.10.4.1).
    g.enter([...movEax(0x22003), ...store(c.pt), ...setCr3(0x4000), ...load(LA), HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    assert.equal(Number(g.vcpu.getRegs().rax), 0x3333);
    // Clear the PTE and reload CR3: the access must fault.
    g.enter([...movEax(0), ...store(c.pt), ...setCr3(0x4000), ...load(LA + 0x10), HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    r = g.vcpu.getRegs();
    assert.equal(Number(r.rip), PF_HANDLER + 5, "the cleared PTE faults");
    assert.equal(Number(r.rbx), LA + 0x10);
    assert.equal(Number(r.rax & 0xffffffffn), 0);
    assert.equal(g.vm.stat.mmu_unsync, 0, "synced by the CR3 load");
    assert.equal(g.vcpu.stats.stat.pf_emulate, emulated);
  });

  test(`${mode}: A and D cleared by the guest are set again by the next read and write`, () => {
    const c = faultCase(mode, 0x20000 | 3, [...movEax(5), ...store(LA)]);
    assert.equal(c.faulted, false);
    const g = c.g;
    assert.equal(g.peek32(c.pt) & 0x60, 0x60);
    // The guest clears A and D (a kernel scanning accessed/dirty bits), reloads CR3 and reads.
    g.enter([...movEax(0x20003), ...store(c.pt), ...setCr3(0x4000), ...load(LA), HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    assert.equal(Number(g.vcpu.getRegs().rax), 5);
    assert.equal(g.peek32(c.pt) & 0x60, 0x20, "a read sets A only");
    g.enter([...movEax(7), ...store(LA + 4), HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    assert.equal(g.peek32(c.pt) & 0x60, 0x60, "the write after D was cleared sets D again");
    assert.equal(g.peek32(0x20004), 7);
  });

  test(`${mode}: a guest's store to a PDE is emulated and relinks the shadow hierarchy (mmu_pte_write, mmu_pde_zapped)`, () => {
    const c = faultCase(mode, 0x20000 | 3, load(LA));
    const g = c.g;
    g.poke(0x20000, u32(0x1111));
    g.poke(0x22000, u32(0x3333));
    // A second PT at 0xd000 maps LA to 0x22000; the guest points its PDE for LA at it.
    g.pte(0xd000, 0x22003);
    const pde = mode === "32" ? 0x4000 + 0x100 * 4 : 0x8000;
    const zapped = g.vm.stat.mmu_pde_zapped ?? 0;
    const pteWrites = g.vm.stat.mmu_pte_write ?? 0;
    const emulated = g.vcpu.stats.stat.pf_emulate;
    g.enter([...movEax(0xd007), ...store(pde), ...invlpg(LA), ...load(LA), HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    assert.equal(Number(g.vcpu.getRegs().rax), 0x3333);
    assert.ok(g.vm.stat.mmu_pde_zapped > zapped);
    assert.ok(g.vm.stat.mmu_pte_write > pteWrites, "the PDE store went through kvm_mmu_track_write");
    assert.ok(g.vcpu.stats.stat.pf_emulate > emulated, "the PDE store was emulated");
    // The old PT is no longer a table of this address space; back to it, through the guest again.
    g.enter([...movEax(0x6007), ...store(pde), ...invlpg(LA), ...load(LA), HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    assert.equal(Number(g.vcpu.getRegs().rax), 0x1111);
  });
}

test("64-bit: switching among four CR3s refaults nothing after the first round; a fifth evicts the least recent root", () => {
  const g = shadowGuest("64", { cr3: 0x4000 });
  buildTables(g, "64");
  // Five address spaces: PML4 base, PDPT base+0x1000 ([0] -> the shared low PD, [1] -> PD base+0x2000),
  // PT base+0x3000 mapping LA to data frame 0x20000 + i * 0x1000, which holds i + 1.
  const bases = addressSpaces(g, 5);
  const visit = (idx: number[]): number[] => {
    const code = [...XOR_ECX];
    for (const i of idx) code.push(...setCr3(bases[i]), ...load(LA), ...ADD_ECX_EAX);
    return [...code, HLT];
  };
  const round = (idx: number[]): { sum: number; pf: number } => {
    const pf0 = g.vcpu.stats.stat.pf_fixed;
    g.enter(visit(idx));
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    return { sum: Number(g.vcpu.getRegs().rcx), pf: g.vcpu.stats.stat.pf_fixed - pf0 };
  };
  let r = round([0, 1, 2, 3]);
  const mmu = vcpuShadowMmuIfAny(g.vcpu as unknown as X86Vcpu)!;
  assert.equal(r.sum, 10);
  assert.ok(r.pf > 0, "the first round builds the shadow tables");
  assert.deepEqual(mmu.cachedRootCr3s(), [bases[3], bases[2], bases[1], bases[0]]);
  r = round([0, 1, 2, 3]);
  assert.equal(r.sum, 10);
  assert.equal(r.pf, 0, "the cached roots keep every translation");
  // A fifth address space: the least recently used root (bases[0]) leaves the cache.
  r = round([4]);
  assert.equal(r.sum, 5);
  assert.ok(r.pf > 0);
  assert.deepEqual(mmu.cachedRootCr3s(), [bases[4], bases[3], bases[2], bases[1]]);
  r = round([1, 2, 3, 4]);
  assert.equal(r.sum, 14);
  assert.equal(r.pf, 0);
  // Its shadow pages stayed in the hash (write-tracked, so still valid): the root is found again.
  const zapped = g.vm.stat.mmu_shadow_zapped;
  r = round([0]);
  assert.equal(r.sum, 1);
  assert.equal(r.pf, 0);
  assert.deepEqual(mmu.cachedRootCr3s(), [bases[0], bases[4], bases[3], bases[2]]);
  assert.equal(g.vm.stat.mmu_shadow_zapped, zapped);
});

test("64-bit: more address spaces than the shadow-page limit allows recycle the oldest pages (mmu_recycled)", () => {
  const g = shadowGuest("64", { cr3: 0x4000 });
  buildTables(g, "64");
  // 24 address spaces of 4 own tables each: more than the 64 pages a 4 MiB guest may have.
  const n = 24;
  const bases = addressSpaces(g, n);
  for (let round = 0; round < 2; round++) {
    const code = [...XOR_ECX];
    for (const b of bases) code.push(...setCr3(b), ...load(LA), ...ADD_ECX_EAX);
    g.enter([...code, HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    assert.equal(Number(g.vcpu.getRegs().rcx), (n * (n + 1)) / 2);
  }
  assert.ok(g.vm.stat.mmu_recycled > 0);
  const vm = kvmShadowVmIfAny(g.vm as unknown as X86Kvm)!;
  assert.ok(vm.pageCount <= vm.maxPages, `${vm.pageCount} shadow pages, limit ${vm.maxPages}`);
  assert.equal(vm.maxPages, 64);
});

test("32-bit: switching CR3 back to a cached root needs no new shadow faults", () => {
  const g = shadowGuest("32", { cr3: 0x4000 });
  const { pt } = buildTables(g, "32");
  g.pte(pt, 0x20003);
  g.poke(0x20000, u32(1));
  // A second PD at 0xa000 sharing the low PT, with LA -> PT 0xb000 -> 0x21000.
  g.pte(0xa000, 0x5003);
  g.pte(0xa000 + 0x100 * 4, 0xb007);
  g.pte(0xb000, 0x21003);
  g.poke(0x21000, u32(2));
  const code = [...XOR_ECX, ...setCr3(0xa000), ...load(LA), ...ADD_ECX_EAX, ...setCr3(0x4000), ...load(LA), ...ADD_ECX_EAX, HLT];
  g.enter(code);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rcx), 3);
  const pf = g.vcpu.stats.stat.pf_fixed;
  g.enter(code);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rcx), 3);
  assert.equal(g.vcpu.stats.stat.pf_fixed, pf);
});

test("stores flooding a page directory that is no longer used as a table unshadow it (mmu_flooded)", () => {
  const c = faultCase("64", 0x20000 | 3, load(LA));
  const g = c.g;
  g.poke(0x20000, u32(0x4444));
  const emulated = g.vcpu.stats.stat.pf_emulate;
  // Sixteen stores into the PD of LA (0x8000) with no access through it in between.
  const code: number[] = [];
  for (let k = 8; k < 24; k++) code.push(...movEax(0x5a5a0000 + k), ...store(0x8000 + k * 8));
  g.enter([...code, HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.ok(g.vm.stat.mmu_flooded >= 1);
  const n = g.vcpu.stats.stat.pf_emulate - emulated;
  assert.ok(n >= 1 && n <= 4, `${n} stores emulated before the page was unshadowed`);
  for (let k = 8; k < 24; k++) assert.equal(g.peek32(0x8000 + k * 8), 0x5a5a0000 + k);
  // Used as a table again.
  g.enter([...load(LA), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rax), 0x4444);
});

test("a store to a page table that the emulator cannot carry out unprotects the page and is retried (kvm_mmu_unprotect_page)", () => {
  const c = faultCase("64", 0x20000 | 3, load(LA));
  const g = c.g;
  g.poke(0x20000, u32(0x1234));
  const zapped = g.vm.stat.mmu_shadow_zapped;
  // xor eax, eax; sete byte [pde + 7] (SETcc is outside the emulator's set): sets the PDE's
  // bit 56, which the processor ignores.
  g.enter([0x31, 0xc0, 0x0f, 0x94, 0x04, 0x25, ...u32(0x8000 + 7), ...load(LA), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(g.peek32(0x8004), 0x01000000, "the store was done");
  assert.ok(g.vm.stat.mmu_shadow_zapped > zapped, "the PD's shadow page was zapped");
  assert.equal(Number(g.vcpu.getRegs().rax), 0x1234);
});

test("dirty logging turned on while pages are mapped writable reports their next writes", () => {
  const g = shadowGuest("32", { cr3: 0x4000 });
  const { pt } = buildTables(g, "32");
  for (let i = 0; i < 4; i++) g.pte(pt + i * 4, ((0x40 + i) << 12) | 3);
  const storeAll = (v: number): number[] => {
    const code: number[] = [];
    for (let i = 0; i < 4; i++) code.push(...movEax(v), ...store(LA + i * 0x1000));
    return [...code, HLT];
  };
  g.poke(CODE, storeAll(1));
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  g.vm.setUserMemoryRegion({ slot: 0, flags: K.KVM_MEM_LOG_DIRTY_PAGES, guest_phys_addr: 0n, memory_size: BigInt(MEM), userspace_addr: BigInt(g.hva) });
  g.enter([...movEax(2), ...store(LA + 0x2000), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  let bm = g.vm.getDirtyLog(0);
  const isDirty = (gfn: number): boolean => (bm[gfn >> 3] & (1 << (gfn & 7))) !== 0;
  assert.ok(isDirty(0x42), "the first write after enabling is logged");
  assert.ok(!isDirty(0x40) && !isDirty(0x41) && !isDirty(0x43));
  g.enter(storeAll(3));
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  bm = g.vm.getDirtyLog(0);
  for (let i = 0; i < 4; i++) assert.ok(isDirty(0x40 + i), `gfn 0x${(0x40 + i).toString(16)} written and reported`);
});

for (const ept of [false, true]) {
  test(`PAE (ept=${ept}): the PDPTE registers change only with a CR3 load, not when the guest rewrites its PDPT or does INVLPG (SDM 4.4.1)`, () => {
    const g = shadowGuest("pae", { cr3: 0x4000, ept });
    const { pt } = buildTables(g, "pae");
    g.pte(pt, 0x20003);
    g.poke(0x20000, u32(0x1111));
    // A second PD 0xc000 -> PT 0xd000 maps LA to 0x21000.
    g.pte(0xc000, 0xd007);
    g.pte(0xd000, 0x21003);
    g.poke(0x21000, u32(0x2222));
    g.poke(CODE, [...load(LA), ...MOV_ECX_EAX, ...movEax(0xc001), ...store(0x4008), ...invlpg(LA), ...load(LA), 0x89, 0xc2, ...setCr3(0x4000), ...load(LA), HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    const r = g.vcpu.getRegs();
    assert.deepEqual([Number(r.rcx), Number(r.rdx), Number(r.rax)], [0x1111, 0x1111, 0x2222]);
  });
}

test("two vCPUs share the shadow pages: one's PTE store (unsync) and PDE store (emulated) reach the other at its CR3 load", () => {
  const g = shadowGuest("64", { cr3: 0x4000 });
  const { pt } = buildTables(g, "64");
  g.pte(pt, 0x20003);
  g.poke(0x20000, u32(0x1111));
  g.poke(0x21000, u32(0x2222));
  g.poke(0x22000, u32(0x3333));
  g.pte(0xd000, 0x22003);
  const v1 = g.vm.createVcpu(1);
  v1.setSregs(g.vcpu.getSregs());
  const runOn = (v: typeof v1, at: number, code: number[]): bigint => {
    g.poke(at, code);
    v.setRegs({ ...v.getRegs(), rip: BigInt(at) });
    v.run();
    assert.equal(v.kvmRun.exitReason, K.KVM_EXIT_HLT);
    return v.getRegs().rax;
  };
  assert.equal(runOn(g.vcpu, CODE + 0x100, [...load(LA), HLT]), 0x1111n);
  assert.equal(runOn(v1, CODE + 0x200, [...load(LA), ...movEax(0x21003), ...store(pt), ...invlpg(LA), ...load(LA), HLT]), 0x2222n);
  assert.equal(runOn(g.vcpu, CODE + 0x300, [...setCr3(0x4000), ...load(LA), HLT]), 0x2222n);
  // vCPU 1 points the PDE of LA at PT 0xd000 (an emulated store to a tracked page directory).
  assert.equal(runOn(v1, CODE + 0x400, [...movEax(0xd007), ...store(0x8000), ...setCr3(0x4000), ...load(LA), HLT]), 0x3333n);
  assert.equal(runOn(g.vcpu, CODE + 0x500, [...setCr3(0x4000), ...load(LA), HLT]), 0x3333n);
});

test("64-bit with CR4.PCIDE: MOV CR3 with bit 63 (no flush) and a PCID exits to KVM, which loads CR3 without bit 63 (kvm_set_cr3)", () => {
  const g = shadowGuest("64", { cr3: 0x4000 });
  buildTables(g, "64");
  g.vcpu.setCpuid2(g.kvm.getSupportedCpuid(256));
  const s = g.vcpu.getSregs();
  s.cr4 |= 0x20000n; // PCIDE (CR3[11:0] is 0, long mode: allowed)
  g.vcpu.setSregs(s);
  // movabs rax, 0x8000000000004003; mov cr3, rax; mov eax, [LA-page-0 identity 0x1000]; hlt
  g.enter([0x48, 0xb8, ...u32(0x4003), ...u32(0x80000000), 0x0f, 0x22, 0xd8, ...load(0x1000), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getSregs().cr3, 0x4003n, "PCID 3 kept, the no-flush bit is not part of CR3");
  assert.notEqual(g.vcpu.getRegs().rip, BigInt(PF_HANDLER + 5), "no fault");
});
