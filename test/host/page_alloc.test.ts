import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysMem, CHUNK_SIZE } from "../../src/hw/physmem.js";
import { PageAllocator } from "../../src/host/page_alloc.js";

test("frames are dense, zeroed, refcounted, and merge back into a whole chunk", () => {
  const pm = new PhysMem(4 * CHUNK_SIZE);
  const pa = new PageAllocator(pm);
  assert.equal(pm.populatedBytes, 0);
  const pfns: number[] = [];
  for (let i = 0; i < 256; i++) pfns.push(pa.allocPage());
  assert.equal(pm.populatedBytes, CHUNK_SIZE, "1 MiB of frames fits one chunk");
  assert.equal(new Set(pfns).size, 256);
  assert.ok(pfns.every((p) => p < 512));
  assert.equal(pa.allocatedFrames, 256);
  pm.write8(pfns[0] * 4096 + 7, 0x55);
  pa.getPage(pfns[0]);
  assert.equal(pa.pageCount(pfns[0]), 2);
  pa.putPage(pfns[0]);
  assert.equal(pa.allocatedFrames, 256);
  for (const p of pfns) pa.putPage(p);
  assert.equal(pa.allocatedFrames, 0);
  assert.throws(() => pa.putPage(pfns[0]), /not an allocated page/);
  // Everything merged: a 2 MiB block is available again without a new chunk, and it is zero.
  const huge = pa.allocPages(9);
  assert.equal(huge % 512, 0);
  assert.equal(pm.populatedBytes, CHUNK_SIZE);
  assert.equal(pm.read8(pfns[0] * 4096 + 7), 0, "reallocated memory is zeroed");
});

test("compound pages: tail references count on the head; order 9 is 2 MiB aligned", () => {
  const pm = new PhysMem(2 * CHUNK_SIZE);
  const pa = new PageAllocator(pm);
  const small = pa.allocPage();
  const huge = pa.allocPages(9);
  assert.equal(huge, 512, "the partly used first chunk can't hold a huge page");
  pa.getPage(huge + 100);
  assert.equal(pa.pageCount(huge), 2);
  assert.equal(pa.compoundHead(huge + 511), huge);
  assert.equal(pa.compoundOrder(huge + 3), 9);
  assert.equal(pa.allocPages(9), -1, "out of memory is -1, not a throw");
  pa.putPage(huge + 5);
  pa.putPage(huge);
  assert.equal(pa.isAllocated(huge), false);
  assert.equal(pa.isAllocated(small), true);
  assert.throws(() => pa.allocPages(10), RangeError);
});
