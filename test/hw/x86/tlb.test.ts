// The software TLB's slot list (mmu.ts TlbSet): flushes visit only the slots filled since the
// last full flush, so each flush path must still drop exactly what the SDM says (4.10.4).
import { test } from "node:test";
import assert from "node:assert/strict";
import { TlbSet, TLB_SIZE, TLB_MASK } from "../../../src/hw/x86/mmu.js";
import { makeRig, long64, writeBytes, write64 } from "./helpers.js";

function fill(t: TlbSet, vpn: number, pfn: number, glob: number): void {
  const i = vpn & TLB_MASK;
  t.note(i);
  t.vpn[i] = vpn; t.pfn[i] = pfn; t.glob[i] = glob;
  t.tagR[i] = vpn; t.tagW[i] = vpn; t.tagX[i] = vpn;
}

for (const count of [10, TLB_SIZE >> 2]) {
  test(`TLB: ${count} entries: a non-global flush keeps only global entries, a full flush drops all, refills work`, () => {
    const t = new TlbSet();
    for (let k = 0; k < count; k++) fill(t, 0x1000 + k, 0x200 + k, k % 3 === 0 ? 1 : 0);
    fill(t, 0x1000, 0x200, 1); // refilling a listed slot does not list it twice
    assert.equal(t.nUsed, count);
    t.flush(true);
    for (let k = 0; k < count; k++) {
      const i = (0x1000 + k) & TLB_MASK;
      assert.equal(t.tagR[i] === 0x1000 + k, k % 3 === 0, `slot of vpn ${k}`);
    }
    t.dropWrites(0x200 + 3);
    assert.ok(Number.isNaN(t.tagW[(0x1003) & TLB_MASK]));
    assert.equal(t.tagR[(0x1003) & TLB_MASK], 0x1003);
    t.flush(false);
    assert.equal(t.nUsed, 0);
    for (let k = 0; k < count; k++) assert.ok(Number.isNaN(t.tagR[(0x1000 + k) & TLB_MASK]));
    fill(t, 0x5000, 1, 0);
    t.flush(true);
    assert.ok(Number.isNaN(t.tagX[0x5000 & TLB_MASK]));
  });
}

test("TLB: 8192 distinct pages all stay cached (a write to the page tables is not seen until INVLPG)", () => {
  const { cpu, mem } = makeRig(48);
  long64(cpu, 0x1000);
  // Map 0x40000000.. with 4 KiB pages onto 32 MiB of RAM from 0x1000000: PDPT[1] -> PD at 0x13000, 16 PTs at 0x20000.
  write64(mem, 0x11000 + 8, 0x13000 | 7, 0);
  for (let p = 0; p < 16; p++) {
    write64(mem, 0x13000 + p * 8, (0x20000 + p * 0x1000) | 7, 0);
    for (let e = 0; e < 512; e++) write64(mem, 0x20000 + p * 0x1000 + e * 8, 0x1000000 + (p * 512 + e) * 4096 + 7, 0);
  }
  // 1000: mov rax, [rbx] ; add rbx, 4096 ; dec ecx ; jnz 1000 ; hlt  (touches 8192 pages, reads the first qword of each)
  writeBytes(mem, 0x1000, [0x48, 0x8b, 0x03, 0x48, 0x81, 0xc3, 0x00, 0x10, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xf2, 0xf4]);
  const pass = (): void => {
    cpu.state.gpr[6] = 0x40000000; cpu.state.gpr[7] = 0; cpu.state.gpr[2] = 8192;
    cpu.state.rip = 0x1000; cpu.state.activityState = 0;
    cpu.run(100000);
  };
  pass();
  // Repoint the last page's PTE to another frame: the cached translation must still be used.
  write64(mem, 0x1000000 + 8191 * 4096, 0x11, 0);
  write64(mem, 0x2800000, 0x22, 0);
  write64(mem, 0x20000 + 15 * 0x1000 + 511 * 8, 0x2800000 + 7, 0);
  pass();
  assert.equal(cpu.state.gpr[0], 0x11, "stale translation used: the entry survived 8191 other pages");
  cpu.tlbFlushPage(0x40000000 + 8191 * 4096);
  pass();
  assert.equal(cpu.state.gpr[0], 0x22);
});
