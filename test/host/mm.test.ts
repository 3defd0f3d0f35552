import { test } from "node:test";
import assert from "node:assert/strict";
import { createHost } from "../../src/host/process.js";
import { MMAP_BASE, type MmuNotifier } from "../../src/host/mm.js";
import { HostError } from "../../src/host/errors.js";
import { EBADF, EEXIST, EFAULT, EINVAL, ENOMEM } from "../../src/uapi/errno.js";
import { MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_HUGETLB, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE } from "../../src/uapi/mman.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const errnoOf = (fn: () => unknown): number => {
  try { fn(); } catch (e) { if (e instanceof HostError) return e.errno; throw e; }
  return 0;
};

test("mmap is top-down and deterministic; demand paging allocates only touched pages", () => {
  const host = createHost({ memBytes: 64 << 20 });
  const { mm } = host.createProcess();
  const a = mm.mmap(0, 1 << 30, RW, ANON);
  assert.equal(a, MMAP_BASE - (1 << 30));
  const b = mm.mmap(0, 8192, RW, ANON);
  assert.equal(b, a - 8192);
  assert.equal(host.pageAlloc.allocatedFrames, 0);
  for (let off = 0; off < 1 << 20; off += 4096) mm.writeU8(a + off, 1);
  assert.equal(host.pageAlloc.allocatedFrames, 256);
  assert.equal(mm.rssPages, 256);
  mm.writeU64(a + 4094, 0x1122334455667788n); // crosses a page
  assert.equal(mm.readU64(a + 4094), 0x1122334455667788n);
  assert.equal(mm.readU16(a + 4094), 0x7788);
  mm.copyToUser(a + 100, new Uint8Array([9, 8, 7]));
  assert.deepEqual([...mm.copyFromUser(a + 100, 3)], [9, 8, 7]);
  assert.equal(mm.getUserPage(a + 100, false), mm.getUserPage(a + 200, true));
});

test("getUserPage errors and permission changes with notifier calls", () => {
  const host = createHost({ memBytes: 16 << 20 });
  const { mm } = host.createProcess();
  const calls: string[] = [];
  const n: MmuNotifier = {
    invalidateRangeStart: (s, e) => calls.push(`start ${s.toString(16)}-${e.toString(16)}`),
    invalidateRangeEnd: (s, e) => calls.push(`end ${s.toString(16)}-${e.toString(16)}`),
  };
  const unreg = mm.registerMmuNotifier(n);
  const a = mm.mmap(0, 4 * 4096, PROT_READ, ANON);
  assert.equal(mm.getUserPage(a - 4096, false), -EFAULT, "unmapped");
  assert.equal(mm.getUserPage(a, true), -EFAULT, "write to a read-only mapping");
  assert.ok(mm.getUserPage(a, false) >= 0);
  mm.mprotect(a, 4096, RW);
  assert.deepEqual(calls, [`start ${a.toString(16)}-${(a + 4096).toString(16)}`, `end ${a.toString(16)}-${(a + 4096).toString(16)}`]);
  assert.ok(mm.getUserPage(a, true) >= 0);
  mm.mprotect(a, 4096, PROT_NONE);
  assert.equal(mm.getUserPage(a, false), -EFAULT);
  assert.equal(mm.vmaList.length, 2, "mprotect split the VMA");
  assert.equal(errnoOf(() => mm.mprotect(a - 4096, 8192, RW)), ENOMEM);
  calls.length = 0;
  const before = host.pageAlloc.allocatedFrames;
  mm.munmap(a, 4096);
  assert.equal(host.pageAlloc.allocatedFrames, before - 1);
  assert.equal(calls.length, 2);
  assert.equal(mm.getUserPage(a, false), -EFAULT);
  unreg();
  mm.munmap(a, 4 * 4096);
  assert.equal(calls.length, 2, "unregistered notifier not called");
  assert.equal(host.pageAlloc.allocatedFrames, 0);
  assert.throws(() => mm.readU8(a), (e: unknown) => e instanceof HostError && e.errno === EFAULT);
});

test("mmap argument errors", () => {
  const { mm } = createHost({ memBytes: 4 << 20 }).createProcess();
  assert.equal(errnoOf(() => mm.mmap(0, 0, RW, ANON)), EINVAL);
  assert.equal(errnoOf(() => mm.mmap(0, 4096, RW, MAP_ANONYMOUS)), EINVAL, "neither private nor shared");
  assert.equal(errnoOf(() => mm.mmap(0, 4096, RW, MAP_PRIVATE)), EBADF, "file mapping with fd -1");
  assert.equal(errnoOf(() => mm.mmap(0x1001, 4096, RW, ANON | MAP_FIXED)), EINVAL);
  const f = mm.mmap(0x400000, 8192, RW, ANON | MAP_FIXED);
  assert.equal(f, 0x400000);
  assert.equal(errnoOf(() => mm.mmap(0x401000, 4096, RW, ANON | MAP_FIXED_NOREPLACE)), EEXIST);
  mm.writeU32(0x400000, 0xdeadbeef);
  mm.mmap(0x400000, 4096, RW, ANON | MAP_FIXED); // replaces: fresh zero page
  assert.equal(mm.readU32(0x400000), 0);
  assert.equal(errnoOf(() => mm.munmap(0x400001, 1)), EINVAL);
});

test("MAP_HUGETLB: one 2 MiB block, 2 MiB aligned, freed by munmap", () => {
  const host = createHost({ memBytes: 8 << 20 });
  const { mm } = host.createProcess();
  const a = mm.mmap(0, 4 << 20, RW, ANON | MAP_HUGETLB);
  assert.equal(a % (2 << 20), 0);
  const p = mm.getUserPage(a + 5 * 4096, true);
  assert.equal(p % 512, 5);
  assert.equal(mm.getUserPage(a, false), p - 5);
  assert.equal(host.pageAlloc.allocatedFrames, 512);
  mm.munmap(a, 4 << 20);
  assert.equal(host.pageAlloc.allocatedFrames, 0);
  assert.equal(mm.rssPages, 0);
});
