import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysMem } from "../../../../../src/hw/physmem.js";
import { TdpMmu, RET_PF_FIXED, RET_PF_SPURIOUS, type MmuPageAllocator } from "../../../../../src/arch/x86/kvm/mmu/tdp_mmu.js";
import {
  EPT_MT_MASK_WB, PG_LEVEL_1G, PG_LEVEL_2M, PG_LEVEL_4K, VMX_EPT_WRITABLE_MASK, getMmioSpteGeneration,
  getMmioSpteGfn, isMmioSpte, spteIndex, spteToPfn,
} from "../../../../../src/arch/x86/kvm/mmu/spte.js";

function setup(): { pm: PhysMem; mmu: TdpMmu; stat: Record<string, number>; alloc: MmuPageAllocator & { live: Set<number> } } {
  const pm = new PhysMem(8 << 20);
  let next = 0x100;
  const free: number[] = [];
  const live = new Set<number>();
  const alloc = {
    live,
    allocPage(): number {
      const pfn = free.pop() ?? next++;
      pm.populate(pfn);
      live.add(pfn);
      return pfn;
    },
    putPage(pfn: number): void {
      assert.ok(live.delete(pfn), `double free of pfn ${pfn}`);
      free.push(pfn);
    },
  };
  const stat: Record<string, number> = { pages_4k: 0, pages_2m: 0, pages_1g: 0 };
  return { pm, mmu: new TdpMmu(pm, alloc, stat, true, EPT_MT_MASK_WB), stat, alloc };
}

/** Walk the EPT the way the hardware does (SDM 29.3.2) to check what was built. */
function hwWalk(pm: PhysMem, rootHpa: number, gpa: number): number | null {
  let table = rootHpa / 4096;
  for (let level = 4; level >= 1; level--) {
    const gfn = Math.floor(gpa / 4096);
    const off = pm.frameOffset(table) + spteIndex(gfn, level) * 8;
    const lo = pm.chunk32(table)[off >>> 2] >>> 0;
    const hi = pm.chunk32(table)[(off >>> 2) + 1] >>> 0;
    if ((lo & 7) === 0) return null;
    const pfn = spteToPfn(lo, hi);
    if (level === 1 || (lo & 0x80) !== 0) {
      const pageBytes = 4096 * (level === 1 ? 1 : level === 2 ? 512 : 262144);
      return pfn * 4096 + (gpa % pageBytes);
    }
    table = pfn;
  }
  return null;
}

test("4K, 2M and 1G leaves are walkable by the hardware format and counted", () => {
  const { pm, mmu, stat } = setup();
  const leaf = { writable: true, hostWritable: true, mmuWritable: true, dirty: false, exec: true };
  assert.equal(mmu.map({ gfn: 0x1, level: PG_LEVEL_4K, pfn: 0x1234, ...leaf }), RET_PF_FIXED);
  assert.equal(mmu.map({ gfn: 0x200, level: PG_LEVEL_2M, pfn: 0x40000, ...leaf }), RET_PF_FIXED);
  assert.equal(mmu.map({ gfn: 0x40000, level: PG_LEVEL_1G, pfn: 0x80000, ...leaf }), RET_PF_FIXED);
  const root = mmu.rootHpa();
  assert.equal(hwWalk(pm, root, 0x1abc), 0x1234abc);
  assert.equal(hwWalk(pm, root, 0x200000 + 0x12345), 0x40000000 + 0x12345);
  assert.equal(hwWalk(pm, root, 0x40000000 + 0x3456789), 0x80000000 + 0x3456789);
  assert.equal(hwWalk(pm, root, 0x5000), null);
  assert.deepEqual({ ...stat }, { pages_4k: 1, pages_2m: 1, pages_1g: 1 });
  assert.equal(mmu.map({ gfn: 0x1, level: PG_LEVEL_4K, pfn: 0x1234, ...leaf }), RET_PF_SPURIOUS);
});

test("gfns above 4 GiB index every level correctly", () => {
  const { pm, mmu } = setup();
  const gfn = 0x12345678; // gpa 0x12345678000 (> 2^32)
  mmu.map({ gfn, level: PG_LEVEL_4K, pfn: 0x77, writable: false, hostWritable: true, mmuWritable: true, dirty: false, exec: true });
  assert.equal(hwWalk(pm, mmu.rootHpa(), gfn * 4096 + 5), 0x77005);
  const out = new Float64Array(3);
  assert.ok(mmu.lookup(gfn, out));
  assert.equal(out[0] & VMX_EPT_WRITABLE_MASK, 0);
});

test("zapping a range removes leaves, frees whole tables and reports the flush", () => {
  const { mmu, stat, alloc } = setup();
  const leaf = { writable: true, hostWritable: true, mmuWritable: true, dirty: false, exec: true };
  for (let g = 0; g < 16; g++) mmu.map({ gfn: 0x400 + g, level: PG_LEVEL_4K, pfn: 0x900 + g, ...leaf });
  mmu.map({ gfn: 0x600, level: PG_LEVEL_2M, pfn: 0x1000, ...leaf });
  assert.equal(stat.pages_4k, 16);
  const tables = mmu.tablePageCount;
  assert.equal(mmu.zapGfnRange(0x404, 0x408), true);
  assert.equal(stat.pages_4k, 12);
  const out = new Float64Array(3);
  assert.equal(mmu.lookup(0x405, out), false);
  assert.ok(mmu.lookup(0x408, out));
  // A range that only clips the 2M leaf removes the whole leaf.
  assert.equal(mmu.zapGfnRange(0x601, 0x602), true);
  assert.equal(stat.pages_2m, 0);
  assert.equal(mmu.zapGfnRange(0x700, 0x800), false);
  // Zap everything: all but the root table are freed.
  mmu.zapGfnRange(0, 2 ** 36);
  assert.equal(stat.pages_4k, 0);
  assert.ok(mmu.tablePageCount < tables);
  assert.equal(mmu.tablePageCount, 1);
  mmu.destroy();
  assert.equal(alloc.live.size, 0);
});

test("a smaller mapping replaces a huge leaf; MMIO SPTEs carry gfn and generation", () => {
  const { mmu, stat } = setup();
  const leaf = { writable: true, hostWritable: true, mmuWritable: true, dirty: true, exec: true };
  mmu.map({ gfn: 0x200, level: PG_LEVEL_2M, pfn: 0x4000, ...leaf });
  mmu.map({ gfn: 0x201, level: PG_LEVEL_4K, pfn: 0x5000, ...leaf });
  assert.equal(stat.pages_2m, 0);
  assert.equal(stat.pages_4k, 1);
  mmu.mapMmio(0xfee00, 0x1abcd);
  const out = new Float64Array(3);
  assert.ok(mmu.lookup(0xfee00, out));
  assert.ok(isMmioSpte(out[0]));
  assert.equal(getMmioSpteGfn(out[0], out[1]), 0xfee00);
  assert.equal(getMmioSpteGeneration(out[0], out[1]), 0x1abcd);
  assert.equal(stat.pages_4k, 1, "MMIO SPTEs are not counted as mapped pages");
});

test("write protection clears W on 4K leaves and zaps huge ones", () => {
  const { mmu, stat } = setup();
  const leaf = { writable: true, hostWritable: true, mmuWritable: true, dirty: true, exec: true };
  mmu.map({ gfn: 0x10, level: PG_LEVEL_4K, pfn: 0x50, ...leaf });
  mmu.map({ gfn: 0x11, level: PG_LEVEL_4K, pfn: 0x51, ...leaf });
  mmu.map({ gfn: 0x400, level: PG_LEVEL_2M, pfn: 0x800, ...leaf });
  assert.equal(mmu.writeProtectMasked(0x10, 0b10), true);
  const out = new Float64Array(3);
  mmu.lookup(0x10, out);
  assert.notEqual(out[0] & VMX_EPT_WRITABLE_MASK, 0);
  mmu.lookup(0x11, out);
  assert.equal(out[0] & VMX_EPT_WRITABLE_MASK, 0);
  assert.equal(mmu.writeProtectMasked(0x11, 1), false, "already read-only");
  assert.equal(mmu.writeProtectRange(0x400, 0x600), true);
  assert.equal(stat.pages_2m, 0);
});
