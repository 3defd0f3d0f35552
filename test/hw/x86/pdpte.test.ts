// PAE PDPTE registers on bare metal (SDM Vol. 3A 4.4.1): loaded by MOV to CR0/CR3/CR4, used by
// the walk instead of the table in memory, checked for reserved bits at load time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, flat32, writeBytes, write32, write64, writeGdt, segDesc, idtGate32, type Rig } from "./helpers.js";

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const EAX = 0, ECX = 1, EDX = 2, EBX = 3;
/** A few 32-bit instructions, enough to drive the control registers and probe translations. */
const asm = {
  movEaxCr: (n: number): number[] => [0x0f, 0x20, 0xc0 | (n << 3)],
  movCrEax: (n: number): number[] => [0x0f, 0x22, 0xc0 | (n << 3)],
  orEax: (imm: number): number[] => [0x0d, ...le32(imm)],
  movEax: (imm: number): number[] => [0xb8, ...le32(imm)],
  load: (reg: number, addr: number): number[] => [0x8b, 0x05 | (reg << 3), ...le32(addr)],
  store: (addr: number, imm: number): number[] => [0xc7, 0x05, ...le32(addr), ...le32(imm)],
  invlpg: (addr: number): number[] => [0x0f, 0x01, 0x3d, ...le32(addr)],
  hlt: [0xf4],
};

/** PDPT A: PDPTE0 -> identity PD, PDPTE1 -> PD_X (0x40000000 -> 0x200000). */
const PDPT_A = 0x20000;
/** PDPT B: like A but PDPTE1 sets reserved bit 1 (R/W does not exist in a PDPTE). */
const PDPT_B = 0x24000;
/** PDPT C: like A but PDPTE1 is not present, with "reserved" bits that do not matter then. */
const PDPT_C = 0x24020;
const PD_ID = 0x21000, PD_X = 0x22000, PD_Y = 0x23000;
const PROBE = 0x40000010;
const VIA_X = 0x1111, VIA_Y = 0x2222;
const GP_HANDLER = 0x3000, PF_HANDLER = 0x3100;

/**
 * Flat 32-bit protected mode without paging at 0x1000 running `code`; #GP goes to a handler that
 * pops its error code into ESI and halts, #PF to one that pops it into EDI, reads CR2 into EAX
 * and halts.
 */
function paeRig(code: number[]): Rig {
  const r = makeRig(8);
  const { mem, cpu } = r;
  writeBytes(mem, 0x1000, [...code, ...asm.hlt]);
  flat32(cpu, 0x1000);
  writeGdt(mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xc), segDesc(0, 0xfffff, 0x93, 0xc)]);
  const st = cpu.state;
  st.gdtrBase = 0x8000; st.gdtrLimit = 0x17;
  st.idtrBase = 0x9000; st.idtrLimit = 0x7ff;
  idtGate32(mem, 0x9000, 13, 0x08, GP_HANDLER);
  idtGate32(mem, 0x9000, 14, 0x08, PF_HANDLER);
  writeBytes(mem, GP_HANDLER, [0x5e, 0xf4]); // pop esi; hlt
  writeBytes(mem, PF_HANDLER, [0x5f, 0x0f, 0x20, 0xd0, 0xf4]); // pop edi; mov eax, cr2; hlt
  write64(mem, PDPT_A, PD_ID | 1, 0);
  write64(mem, PDPT_A + 8, PD_X | 1, 0);
  write64(mem, PDPT_B, PD_ID | 1, 0);
  write64(mem, PDPT_B + 8, PD_X | 3, 0);
  write64(mem, PDPT_C, PD_ID | 1, 0);
  write64(mem, PDPT_C + 8, 0x6, 0);
  write64(mem, PD_ID, 0x83, 0); // 2 MiB identity at 0
  write64(mem, PD_X, 0x200083, 0);
  write64(mem, PD_Y, 0x400083, 0);
  write32(mem, 0x200000 + (PROBE & 0xfff), VIA_X);
  write32(mem, 0x400000 + (PROBE & 0xfff), VIA_Y);
  // Stale markers: a handler that never ran leaves these.
  st.gpr[2 * 6] = -1; st.gpr[2 * 7] = -1;
  return r;
}

/** CR4.PAE, CR3 = `cr3`, then CR0.PG: the MOV to CR0 establishes PAE paging. */
const enablePae = (cr3: number): number[] => [
  ...asm.movEaxCr(4), ...asm.orEax(0x20), ...asm.movCrEax(4),
  ...asm.movEax(cr3), ...asm.movCrEax(3),
  ...asm.movEaxCr(0), ...asm.orEax(0x80000000), ...asm.movCrEax(0),
];

const gpr = (r: Rig, n: number): number => r.cpu.state.gpr[2 * n] >>> 0;

test("PAE: a PDPTE rewritten in memory is not used until MOV to CR3 reloads the registers", () => {
  const r = paeRig([
    ...enablePae(PDPT_A),
    ...asm.load(EBX, PROBE),
    ...asm.store(PDPT_A + 8, PD_Y | 1),
    ...asm.invlpg(PROBE), // no TLB entry left: the next access walks again
    ...asm.load(ECX, PROBE),
    ...asm.movEaxCr(3), ...asm.movCrEax(3),
    ...asm.load(EDX, PROBE),
  ]);
  r.cpu.run(1000);
  assert.equal(r.cpu.pgMode, 2);
  assert.equal(gpr(r, EBX), VIA_X, "MOV to CR0 loaded PDPTE1 -> PD_X");
  assert.equal(gpr(r, ECX), VIA_X, "the walk uses the PDPTE register, not the rewritten entry");
  assert.equal(gpr(r, EDX), VIA_Y, "MOV to CR3 reloaded PDPTE1 -> PD_Y");
  assert.deepEqual([...r.cpu.state.pdpte], [PD_ID | 1, 0, PD_Y | 1, 0, 0, 0, 0, 0]);
});

test("PAE: MOV to CR4 reloads the PDPTEs only when it changes PAE/PGE/PSE/SMEP; MOV to CR0 when it changes CD/NW/PG", () => {
  const r = paeRig([
    ...enablePae(PDPT_A),
    ...asm.store(PDPT_A + 8, PD_Y | 1),
    ...asm.movEaxCr(4), ...asm.orEax(0x200), ...asm.movCrEax(4), // OSFXSR: no reload
    ...asm.invlpg(PROBE),
    ...asm.load(EBX, PROBE),
    ...asm.movEaxCr(4), ...asm.orEax(0x80), ...asm.movCrEax(4), // PGE: reload
    ...asm.load(ECX, PROBE),
    ...asm.store(PDPT_A + 8, PD_X | 1),
    ...asm.movEaxCr(0), ...asm.orEax(0x10000), ...asm.movCrEax(0), // WP: no reload
    ...asm.invlpg(PROBE),
    ...asm.load(EDX, PROBE),
    ...asm.movEaxCr(0), [0x25], ...le32(~0x60000000), ...asm.movCrEax(0), // and eax: clear CD and NW: reload
    ...asm.invlpg(PROBE),
    ...asm.load(EAX, PROBE),
  ].flat());
  r.cpu.run(1000);
  assert.equal(gpr(r, EBX), VIA_X, "CR4.OSFXSR keeps the loaded PDPTEs");
  assert.equal(gpr(r, ECX), VIA_Y, "CR4.PGE reloads them");
  assert.equal(gpr(r, EDX), VIA_Y, "CR0.WP keeps them");
  assert.equal(gpr(r, EAX), VIA_X, "CR0.CD/NW reload them");
  assert.equal(r.cpu.state.cr0 & 0x60000000, 0);
});

test("PAE: MOV to CR3 with a reserved bit in a present PDPTE is #GP(0) and changes nothing", () => {
  const r = paeRig([...enablePae(PDPT_A), ...asm.movEax(PDPT_B), ...asm.movCrEax(3)]);
  r.cpu.run(1000);
  assert.equal(r.cpu.state.rip, GP_HANDLER + 2, "the #GP handler ran");
  assert.equal(gpr(r, 6), 0, "error code 0");
  assert.equal(r.cpu.state.cr3, PDPT_A, "CR3 unchanged");
  assert.deepEqual([...r.cpu.state.pdpte], [PD_ID | 1, 0, PD_X | 1, 0, 0, 0, 0, 0], "PDPTE registers unchanged");
});

test("PAE: a not-present PDPTE loads without #GP (whatever its other bits) and faults at walk time", () => {
  const r = paeRig([...enablePae(PDPT_A), ...asm.movEax(PDPT_C), ...asm.movCrEax(3), ...asm.load(EBX, PROBE)]);
  r.cpu.run(1000);
  assert.equal(r.cpu.state.cr3, PDPT_C);
  assert.equal(gpr(r, 6), 0xffffffff, "no #GP");
  assert.equal(r.cpu.state.rip, PF_HANDLER + 5, "the #PF handler ran");
  assert.equal(gpr(r, 7), 0, "#PF error code: not present, read, supervisor");
  assert.equal(gpr(r, EAX), PROBE, "CR2");
});

test("PAE: MOV to CR0 that would establish PAE paging through a bad PDPTE is #GP(0); paging stays off", () => {
  const r = paeRig(enablePae(PDPT_B));
  r.cpu.run(1000);
  assert.equal(r.cpu.state.rip, GP_HANDLER + 2, "the #GP handler ran");
  assert.equal(r.cpu.state.cr0 & 0x80000000, 0, "CR0.PG still clear");
  assert.equal(r.cpu.pgMode, 0);
  assert.equal(r.cpu.state.cr3, PDPT_B, "MOV to CR3 without paging loads no PDPTEs and cannot fault");
});

test("PAE: MOV to CR4 that turns 32-bit paging into PAE paging through a bad PDPTE is #GP(0); 32-bit paging stays", () => {
  // CR3 = 0x30000 is the 32-bit page directory; read as a PDPT its PDPTE0 is PDE0 = 0x83 (a 4 MiB
  // identity page), whose bits 1 and 7 are reserved in a PDPTE.
  const r = paeRig([
    ...asm.movEaxCr(4), ...asm.orEax(0x10), ...asm.movCrEax(4),
    ...asm.movEax(0x30000), ...asm.movCrEax(3),
    ...asm.movEaxCr(0), ...asm.orEax(0x80000000), ...asm.movCrEax(0),
    ...asm.movEaxCr(4), ...asm.orEax(0x20), ...asm.movCrEax(4),
  ]);
  write32(r.mem, 0x30000, 0x83);
  r.cpu.run(1000);
  assert.equal(r.cpu.state.rip, GP_HANDLER + 2, "the #GP handler ran");
  assert.equal(r.cpu.state.cr4 & 0x20, 0, "CR4.PAE still clear");
  assert.equal(r.cpu.pgMode, 1);
});

test("PAE state set from outside (stateChanged) fills the PDPTE registers from CR3; a reserved bit there is a #PF with RSVD at walk time", () => {
  const r = paeRig([...asm.load(EBX, PROBE)]);
  const st = r.cpu.state;
  st.cr3 = PDPT_B; st.cr4 = 0x20; st.cr0 = (st.cr0 | 0x80000000) >>> 0;
  r.cpu.stateChanged();
  assert.deepEqual([...st.pdpte], [PD_ID | 1, 0, PD_X | 3, 0, 0, 0, 0, 0]);
  r.cpu.run(1000);
  assert.equal(st.rip, PF_HANDLER + 5, "the #PF handler ran");
  assert.equal(gpr(r, 7), 0x9, "P|RSVD");
});
