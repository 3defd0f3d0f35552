/**
 * Shadow paging (openKvm(proc, { ept: false })): small protected-mode and long-mode guests built
 * by hand through the KVM API. Each walker mode (no paging, 32-bit with 4K and 4M pages, PAE,
 * 4-level) is checked for the faults the guest sees (#PF error code and CR2, delivered to the
 * guest's own handler), the A/D bits written into the guest's tables, and the shadow-specific
 * paths: CR0.WP=0, INVLPG, CR3 switches, MMIO through a guest mapping, dirty logging, real mode.
 */
import { enterRealMode } from "../guest_helpers.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHost } from "../../../../../src/host/process.js";
import { openKvm } from "../../../../../src/kvm.js";
import * as K from "../../../../../src/uapi/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../../src/uapi/mman.js";
import {
  CODE, HLT, LA, MEM, PF_HANDLER, b, buildTables, faultCase, invlpg, jmpTo, load, movEax, setCr3, shadowGuest, store, u32,
} from "./shadow_guest.js";

test("kvm.params.ept reflects the option; ept=0 VMs run a flat protected-mode guest (no paging)", () => {
  assert.equal(openKvm(undefined, {}).params.ept, true);
  const g = shadowGuest("nonpaging");
  assert.equal(g.kvm.params.ept, false);
  // Store and load back through the shadow identity map.
  g.poke(CODE, [...movEax(0x12345678), ...store(0x20000), 0x31, 0xc0, ...load(0x20000), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rax), 0x12345678);
  assert.equal(g.peek32(0x20000), 0x12345678);
  assert.ok(g.vcpu.stats.stat.pf_fixed > 0, "the shadow tables were filled by #PF exits");
});

for (const mode of ["32", "pae", "64"] as const) {
  test(`${mode}: not-present read/write and RO write at CPL 0 reach the guest's #PF handler with its error code and CR2`, () => {
    let c = faultCase(mode, 0, load(LA + 0x10));
    assert.ok(c.faulted);
    assert.equal(c.err, 0x0);
    assert.equal(c.cr2, LA + 0x10);
    c = faultCase(mode, 0, store(LA + 0x24));
    assert.equal(c.err, 0x2);
    assert.equal(c.cr2, LA + 0x24);
    // Read-only present page, CR0.WP=1: P|W.
    c = faultCase(mode, 0x20000 | 1, store(LA));
    assert.ok(c.faulted);
    assert.equal(c.err, 0x3);
    assert.ok(c.g.vcpu.stats.stat.pf_guest >= 1);
  });

  test(`${mode}: A is set by a read, D by a write, in the guest's PTE and PDE`, () => {
    const c = faultCase(mode, 0x20000 | 3, load(LA + 4));
    assert.equal(c.faulted, false);
    const ent = c.g.peek32(c.pt);
    assert.equal(ent & 0x60, 0x20, "read: A set, D clear");
    // The PDE pointing at the PT got A too.
    const pde = mode === "32" ? c.g.peek32(0x4000 + 0x100 * 4) : c.g.peek32(0x8000);
    assert.equal(pde & 0x20, 0x20);
    // Now write through the mapping (the read left a read-only shadow entry: the write must come back and set D).
    c.g.enter([...movEax(0xabcd), ...store(LA + 8), HLT]);
    assert.equal(c.g.run(), K.KVM_EXIT_HLT);
    assert.equal(c.g.peek32(c.pt) & 0x60, 0x60, "write: A and D set");
    assert.equal(c.g.peek32(0x20008), 0xabcd);
  });

  test(`${mode}: CR0.WP=0 lets a supervisor write to a read-only page; WP=1 faults`, () => {
    const c = faultCase(mode, 0x20000 | 1, [...movEax(0x55), ...store(LA + 0x30)], { cr0Extra: 0 });
    assert.equal(c.faulted, false);
    assert.equal(c.g.peek32(0x20030), 0x55);
    assert.equal(c.g.peek32(c.pt) & 0x60, 0x60, "D set by the write");
  });

  test(`${mode}: INVLPG makes a PTE changed behind the guest's back take effect; a guest's own PTE change is seen after a CR3 load`, () => {
    const c = faultCase(mode, 0x20000 | 3, load(LA));
    assert.equal(c.faulted, false);
    c.g.poke(0x20000, u32(0x1111));
    c.g.poke(0x21000, u32(0x2222));
    // Retarget the PTE to 0x21000 without INVLPG: the cached translation may stay (TLB semantics);
    // after INVLPG the new frame is used.
    const ent = mode === "32" ? [...u32(0x21003)] : [...u32(0x21003), 0, 0, 0, 0];
    c.g.poke(c.pt, ent);
    c.g.enter([...invlpg(LA), ...load(LA), HLT]);
    assert.equal(c.g.run(), K.KVM_EXIT_HLT);
    assert.equal(Number(c.g.vcpu.getRegs().rax), 0x2222);
    // Back to 0x20000, written by the guest through its identity mapping of the PT (the shadow
    // tables see it: page_track), then a CR3 reload instead of INVLPG.
    c.g.enter([...movEax(0x20003), ...store(c.pt), ...setCr3(0x4000), ...load(LA), HLT]);
    assert.equal(c.g.run(), K.KVM_EXIT_HLT);
    assert.equal(Number(c.g.vcpu.getRegs().rax), 0x1111);
    assert.equal(Number(c.g.vcpu.getSregs().cr3), 0x4000, "the guest's CR3, not the shadow root");
  });

  test(`${mode}: a linear address mapped to a gpa without a memslot exits as MMIO`, () => {
    const c = shadowGuest(mode, { cr3: 0x4000 });
    const { pt } = buildTables(c, mode);
    c.pte(pt, 0x00800000 | 3);
    c.poke(CODE, [...movEax(0xfeed), ...store(LA + 0x40), HLT]);
    assert.equal(c.run(), K.KVM_EXIT_MMIO);
    assert.equal(c.vcpu.kvmRun.mmioPhysAddr, 0x800040);
    assert.equal(c.vcpu.kvmRun.mmioIsWrite, 1);
    assert.equal(c.run(), K.KVM_EXIT_HLT);
    const t = c.vcpu.translate(BigInt(LA + 0x40));
    assert.equal(t.valid, 1);
    assert.equal(t.physical_address, 0x800040n);
  });
}

test("32-bit: a 4 MiB PSE page maps its whole range and gets A/D in the PDE; PDE bit 21 is reserved", () => {
  const g = shadowGuest("32", { cr3: 0x4000, cr4: 0x10 });
  buildTables(g, "32");
  // PD[0x101] (la 0x40400000): 4 MiB page at gpa 0 (PS).
  g.pte(0x4000 + 0x101 * 4, 0x83);
  g.poke(0x20004, u32(0xcafe));
  g.poke(CODE, [...movEax(0x77), ...store(0x40400000 + 0x30000), ...load(0x40400000 + 0x20004), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rax), 0xcafe);
  assert.equal(g.peek32(0x30000), 0x77);
  assert.equal(g.peek32(0x4000 + 0x101 * 4) & 0x60, 0x60);
  // Reserved bit 21 in a 4 MiB PDE: #PF with P|RSVD.
  g.pte(0x4000 + 0x102 * 4, 0x83 | (1 << 21));
  g.enter([...load(0x40800000), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rip), PF_HANDLER + 5);
  assert.equal(Number(g.vcpu.getRegs().rax & 0xffffffffn), 0x9);
});

test("INVLPG of any address in a guest 4 MiB page drops the whole page's shadow entries", () => {
  const g = shadowGuest("32", { cr3: 0x4000, cr4: 0x10 });
  buildTables(g, "32");
  g.pte(0x4000 + 0x101 * 4, 0x83); // la 0x40400000 -> gpa 0 (4 MiB)
  g.poke(0x20000, u32(0xa));
  g.poke(0x21000, u32(0xb));
  const la1 = 0x40400000 + 0x20000;
  const la2 = 0x40400000 + 0x221000; // the other 2 MiB half
  g.poke(CODE, [...load(la1), 0x89, 0xc1, ...load(la2), HLT]); // mov ecx, eax
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rcx), 0xa);
  // Make the PDE not present and INVLPG an address in the first half: the second half faults too.
  g.pte(0x4000 + 0x101 * 4, 0);
  g.enter([...invlpg(la1), ...load(la2), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rip), PF_HANDLER + 5, "the other half of the 4 MiB page was dropped too");
  assert.equal(Number(g.vcpu.getRegs().rbx), la2);
});

test("PAE with NXE: fetch from an XD page is #PF with I|P; XD with NXE=0 is a reserved-bit fault", () => {
  let c = faultCase("pae", 0x1000 | 3, jmpTo(LA), { hi: 0x80000000, nxe: true });
  assert.ok(c.faulted);
  assert.equal(c.err, 0x11);
  assert.equal(c.cr2, LA);
  c = faultCase("pae", 0x20000 | 3, load(LA), { hi: 0x80000000, nxe: false });
  assert.ok(c.faulted);
  assert.equal(c.err, 0x9);
  // The same jump to an executable page runs the HLT there.
  const g = shadowGuest("pae", { cr3: 0x4000, nxe: true });
  const { pt } = buildTables(g, "pae");
  g.pte(pt, 0x30000 | 3);
  g.poke(0x30000, [HLT]);
  g.poke(CODE, jmpTo(LA));
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rip), LA + 1);
});

test("64-bit: reserved physical-address bits in a PTE fault with RSVD; SMEP blocks supervisor fetch from a user page", () => {
  const c = faultCase("64", 0x20000 | 3, load(LA), { hi: 1 << 16 });
  assert.ok(c.faulted);
  assert.equal(c.err, 0x9);
  const g = shadowGuest("64", { cr3: 0x4000, cr4: 1 << 20 });
  const { pt } = buildTables(g, "64");
  g.pte(pt, 0x30000 | 7);
  g.poke(0x30000, [HLT]);
  g.poke(CODE, jmpTo(LA));
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  assert.equal(Number(g.vcpu.getRegs().rip), PF_HANDLER + 5);
  assert.equal(Number(g.vcpu.getRegs().rax), 0x11);
});

test("a CR3 switch between two address spaces maps the same linear address to different frames", () => {
  const g = shadowGuest("64", { cr3: 0x4000 });
  const { pt } = buildTables(g, "64");
  g.pte(pt, 0x20000 | 3);
  // Second hierarchy: PML4 0xa000 -> PDPT 0xb000 -> [0] low PD 0x7000, [1] PD 0xc000 -> PT 0xd000.
  g.pte(0xa000, 0xb007);
  g.pte(0xb000, 0x7003);
  g.pte(0xb008, 0xc007);
  g.pte(0xc000, 0xd007);
  g.pte(0xd000, 0x21000 | 3);
  g.poke(0x20000, u32(1));
  g.poke(0x21000, u32(2));
  g.poke(CODE, [...load(LA), 0x89, 0xc1, ...setCr3(0xa000), ...load(LA), 0x89, 0xc2, ...setCr3(0x4000), ...load(LA), HLT]);
  assert.equal(g.run(), K.KVM_EXIT_HLT);
  const r = g.vcpu.getRegs();
  assert.deepEqual([Number(r.rcx), Number(r.rdx), Number(r.rax)], [1, 2, 1]);
});

test("real mode with ept=0: KVM_RUN ends in KVM_EXIT_INTERNAL_ERROR (emulation), never runs the guest wrongly", () => {
  const proc = createHost({ memBytes: 64 << 20 }).createProcess("shadow-real");
  const kvm = openKvm(proc, { ept: false });
  const vm = kvm.createVm(0);
  const hva = proc.mm.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  proc.mm.copyToUser(hva + 0x1000, b(0x90, HLT));
  vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x10000n, userspace_addr: BigInt(hva) });
  const vcpu = vm.createVcpu(0);
  enterRealMode(vcpu, 0x1000);
  vcpu.run();
  assert.equal(vcpu.kvmRun.exitReason, K.KVM_EXIT_INTERNAL_ERROR);
  assert.equal(vcpu.kvmRun.internalSuberror, K.KVM_INTERNAL_ERROR_EMULATION);
  assert.equal(Number(vcpu.getRegs().rip), 0x1000, "nothing ran");
});

test("dirty logging with shadow paging: each round reports exactly the pages written through guest mappings", () => {
  const g = shadowGuest("32", { cr3: 0x4000, slotFlags: K.KVM_MEM_LOG_DIRTY_PAGES });
  const { pt } = buildTables(g, "32");
  for (let i = 0; i < 8; i++) g.pte(pt + i * 4, ((0x40 + i) << 12) | 3);
  for (let round = 0; round < 3; round++) {
    g.vm.getDirtyLog(0); // clears
    const pages = [round, round + 3];
    const code: number[] = [];
    for (const p of pages) code.push(...movEax(round + 1), ...store(LA + p * 0x1000 + 4 * round));
    g.enter([...code, HLT]);
    assert.equal(g.run(), K.KVM_EXIT_HLT);
    const bm = g.vm.getDirtyLog(0);
    const dirty: number[] = [];
    for (let gfn = 0; gfn < MEM / 4096; gfn++) if (bm[gfn >> 3] & (1 << (gfn & 7))) dirty.push(gfn);
    // The written data pages, plus guest page-table pages whose A/D bits the walks set (0x4000-0x9fff) and the stack.
    const want = new Set(pages.map((p) => 0x40 + p));
    for (const d of dirty) assert.ok(want.has(d) || (d >= 0x4 && d <= 0x9) || d === 0xe, `unexpected dirty gfn 0x${d.toString(16)} in round ${round}`);
    for (const w of want) assert.ok(dirty.includes(w), `gfn 0x${w.toString(16)} written in round ${round} but not reported`);
  }
});
