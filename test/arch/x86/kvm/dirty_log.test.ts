/**
 * Dirty-page tracking with a running guest (the dirty_log_test selftest's idea): the guest writes
 * a known, different set of pages each round and stops (OUT) after each; the host harvests the
 * dirty pages: KVM_GET_DIRTY_LOG, KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG with manual protect,
 * and the dirty ring with KVM_RESET_DIRTY_RINGS. Every round reports exactly the pages written
 * in it: none lost, none extra (the code and the table the guest only reads never show up).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { createHost } from "../../../../src/host/process.js";
import { openKvm } from "../../../../src/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../src/uapi/mman.js";
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from "../../../../src/virt/kvm/kvm_main.js";
import { realModeGuest, enterRealMode } from "./guest_helpers.js";

const MEM = 1 << 20;
const PAGES = MEM / 4096;
const TABLE = 0x2000;

/**
 * mov si, TABLE; next: lodsw; cmp ax, -1; je done; test ax, ax; jz round; mov es, ax;
 * mov [es:0x10], al; jmp next; round: out 0x10, al; jmp next; done: hlt
 */
const CODE = Uint8Array.of(
  0xbe, 0x00, 0x20, 0xad, 0x83, 0xf8, 0xff, 0x74, 0x10, 0x85, 0xc0, 0x74, 0x08, 0x8e, 0xc0,
  0x26, 0xa2, 0x10, 0x00, 0xeb, 0xee, 0xe6, 0x10, 0xeb, 0xea, 0xf4,
);

/** Rounds of distinct pages in [0x10, 0x100): a fixed pseudo-random pattern, some pages in several rounds. */
function rounds(): number[][] {
  let x = 0x2545f491;
  const rnd = (n: number): number => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) % n;
  };
  const out: number[][] = [];
  for (let r = 0; r < 10; r++) {
    const set = new Set<number>();
    const n = 1 + rnd(24);
    while (set.size < n) set.add(0x10 + rnd(0xf0));
    if (r > 0) set.add(out[r - 1]![0]!); // written again after a harvest: must be reported again
    out.push([...set]);
  }
  return out;
}

type Harvest = "bitmap" | "manual" | "ring";

function setup(mode: Harvest) {
  const proc = createHost({ memBytes: 64 << 20 }).createProcess("dirty-test");
  const kvm = openKvm(proc);
  const vm = kvm.createVm(0);
  if (mode === "manual") vm.enableCap({ cap: K.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, args: [BigInt(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)] });
  if (mode === "ring") vm.enableCap({ cap: K.KVM_CAP_DIRTY_LOG_RING, args: [4096n * 16n] });
  const mem = proc.mm.mmap(0, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  proc.mm.copyToUser(mem + 0x1000, CODE);
  const table: number[] = [];
  const rs = rounds();
  for (const r of rs) table.push(...r.map((p) => p << 8), 0);
  table.push(0xffff);
  proc.mm.copyToUser(mem + TABLE, new Uint8Array(Uint16Array.from(table).buffer));
  vm.setUserMemoryRegion({ slot: 0, flags: K.KVM_MEM_LOG_DIRTY_PAGES, guest_phys_addr: 0n, memory_size: BigInt(MEM), userspace_addr: BigInt(mem) });
  const vcpu = vm.createVcpu(0);
  enterRealMode(vcpu, 0x1000);
  return { vm, vcpu, rs };
}

function bitmapPages(bm: Uint8Array, npages = PAGES): number[] {
  const pages: number[] = [];
  for (let p = 0; p < npages; p++) if ((bm[p >> 3]! >> (p & 7)) & 1) pages.push(p);
  return pages;
}

function runRounds(mode: Harvest): void {
  const { vm, vcpu, rs } = setup(mode);
  const ring = mode === "ring" ? vcpu.mmap(K.KVM_DIRTY_LOG_PAGE_OFFSET * 4096, 16 * 4096) : null;
  const dv = ring ? new DataView(ring.buffer, ring.byteOffset, ring.byteLength) : null;
  let fetch = 0;
  const harvest = (): number[] => {
    if (mode === "ring") {
      const pages: number[] = [];
      for (;;) {
        const off = (fetch % 4096) * 16;
        if ((dv!.getUint32(off, true) & K.KVM_DIRTY_GFN_F_DIRTY) === 0) break;
        assert.equal(dv!.getUint32(off + 4, true), 0, "slot 0");
        pages.push(Number(dv!.getBigUint64(off + 8, true)));
        dv!.setUint32(off, K.KVM_DIRTY_GFN_F_RESET, true);
        fetch++;
      }
      vm.resetDirtyRings();
      return pages;
    }
    const bm = vm.getDirtyLog(0);
    const pages = bitmapPages(bm);
    if (mode === "manual") {
      assert.deepEqual(bitmapPages(vm.getDirtyLog(0)), pages, "manual protect: GET does not clear");
      vm.clearDirtyLog(0, 0, PAGES, bm);
      assert.deepEqual(bitmapPages(vm.getDirtyLog(0)), [], "CLEAR cleared what was harvested");
    }
    return pages;
  };
  for (const [i, written] of rs.entries()) {
    vcpu.run();
    assert.equal(vcpu.kvmRun.exitReason, K.KVM_EXIT_IO, `round ${i}`);
    const got = harvest().sort((a, b) => a - b);
    assert.deepEqual(got, [...written].sort((a, b) => a - b), `${mode}: round ${i}`);
  }
  vcpu.run();
  assert.equal(vcpu.kvmRun.exitReason, K.KVM_EXIT_HLT);
  assert.deepEqual(harvest(), [], "nothing after the last round");
}

test("dirty bitmap (KVM_GET_DIRTY_LOG clears and re-protects): each round reports exactly its pages", () => runRounds("bitmap"));
test("manual protect (GET, then CLEAR_DIRTY_LOG): each round reports exactly its pages", () => runRounds("manual"));
test("dirty ring (harvest, RESET_DIRTY_RINGS): each round reports exactly its pages", () => runRounds("ring"));

test("turning dirty logging on for a slot mapped with 2 MiB pages (KVM_MR_FLAGS_ONLY): writes after it are all reported", () => {
  // l: mov [es:0x10], al; out 0x10, al; jmp l     (ES chosen by the host between rounds)
  const g = realModeGuest({ code: Uint8Array.of(0x26, 0xa2, 0x10, 0x00, 0xe6, 0x10, 0xeb, 0xf8), slotSize: 2 << 20, huge: true });
  const setEs = (page: number): void => {
    const s = g.vcpu.getSregs();
    s.es = { ...s.es, selector: (page << 8) & 0xffff, base: BigInt(page << 12) }; // base set directly (beyond 1 MiB for page 0x1ff)
    g.vcpu.setSregs(s);
  };
  setEs(0x20);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
  assert.ok(g.vm.stat.pages_2m >= 1, "mapped with a 2 MiB page before logging");
  g.vm.setUserMemoryRegion({ slot: 0, flags: K.KVM_MEM_LOG_DIRTY_PAGES, guest_phys_addr: 0n, memory_size: BigInt(2 << 20), userspace_addr: BigInt(g.mem) });
  for (const page of [0x30, 0x1ff, 0x30, 0x100]) {
    setEs(page);
    g.vcpu.run();
    assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
    assert.deepEqual(bitmapPages(g.vm.getDirtyLog(0), 512), [page], `page 0x${page.toString(16)}`);
  }
});
