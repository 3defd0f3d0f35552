import { test } from "node:test";
import assert from "node:assert/strict";
import { FlatMemory, buildElf, note } from "../helpers.js";
import { loadKernel, loadFlat } from "../../../src/vmm/loader/kernel.js";
import { buildE820 } from "../../../src/vmm/machine/e820.js";
import { BOOT_CMDLINE, BOOT_GDT, BOOT_INFO, BOOT_PML4, BOOT_PD } from "../../../src/vmm/loader/boot_state.js";
import { parseElf } from "../../../src/vmm/loader/elf.js";
import { VmmError } from "../../../src/vmm/error.js";

const MB = 1 << 20;
const opts = (name: string, data: Uint8Array, extra: Partial<{ cmdline: string; initrds: { name: string; data: Uint8Array }[] }> = {}) => ({
  kernel: { name, data }, cmdline: extra.cmdline ?? "", initrds: extra.initrds ?? [], e820: buildE820(32 * MB), rsdp: 0xe0000,
});

test("flat binary: real mode CS:IP, protected mode GDT, long mode identity paging", () => {
  const mem = new FlatMemory(32 * MB);
  const code = new Uint8Array([0xba, 0xf8, 0x03, 0xf4]);
  const r = loadFlat(mem, { name: "hello.bin", data: code }, 0x1000, "real");
  assert.equal(r.mode, "real");
  assert.equal(r.cs.selector, 0);
  assert.equal(r.rip, 0x1000);
  assert.deepEqual([...mem.read(0x1000, 4)], [...code]);
  const hi = loadFlat(mem, { name: "x", data: code }, 0x12340, "real");
  assert.equal(hi.cs.selector, 0x1234);
  assert.equal(hi.cs.base, 0x12340);
  assert.equal(hi.rip, 0);
  const p = loadFlat(mem, { name: "x", data: code }, 0x200000, "protected");
  assert.equal(p.cr0 & 1, 1);
  assert.equal(p.cs.selector, 0x10);
  assert.equal(p.cs.db, 1);
  assert.equal(mem.u64(BOOT_GDT + 0x10), 0x00cf9b000000ffff);
  const l = loadFlat(mem, { name: "x", data: code }, 0x200000, "long");
  assert.equal(l.cs.l, 1);
  assert.equal(l.efer, 0x500);
  assert.equal(l.cr3, BOOT_PML4);
  assert.equal(l.cr0 >>> 31, 1);
  assert.equal(mem.u64(BOOT_PD + 8 * 3) , 3 * 0x200000 + 0x83, "2 MiB identity mapping");
  assert.throws(() => loadFlat(mem, { name: "x", data: code }, 0x90000, "long"), /overlaps the boot structures/);
  assert.throws(() => loadFlat(mem, { name: "big", data: new Uint8Array(16) }, 32 * MB - 8, "real"), VmmError);
});

test("ELF32 and ELF64 load at p_paddr, bss zeroed, entered in protected / long mode", () => {
  const mem = new FlatMemory(32 * MB);
  mem.bytes.fill(0xcc, 0x100000, 0x100100);
  const e32 = buildElf(32, 0x100010, [{ paddr: 0x100000, data: new Uint8Array([1, 2, 3, 4]), memsz: 0x100 }]);
  const r = loadKernel(mem, opts("k32.elf", e32));
  assert.equal(r.format, "elf32");
  assert.equal(r.state.mode, "protected");
  assert.equal(r.state.rip, 0x100010);
  assert.deepEqual([...mem.read(0x100000, 6)], [1, 2, 3, 4, 0, 0]);
  assert.equal(mem.bytes[0x1000ff], 0);
  const e64 = buildElf(64, 0x200000, [{ paddr: 0x200000, data: new Uint8Array([0x90]) }]);
  const r64 = loadKernel(mem, opts("k64.elf", e64));
  assert.equal(r64.format, "elf64");
  assert.equal(r64.state.mode, "long");
});

test("corrupt ELF images fail with clear errors", () => {
  const good = buildElf(32, 0x100000, [{ paddr: 0x100000, data: new Uint8Array(16) }]);
  const bad = (mut: (b: Uint8Array, dv: DataView) => void) => { const b = good.slice(); mut(b, new DataView(b.buffer)); return b; };
  assert.throws(() => parseElf(bad((b) => { b[4] = 9; })), /unknown ELF class 9/);
  assert.throws(() => parseElf(bad((_b, dv) => dv.setUint16(18, 40, true))), /machine 40 is not x86/);
  assert.throws(() => parseElf(bad((_b, dv) => dv.setUint32(28, 0xfff0, true))), /program headers extend past/);
  assert.throws(() => parseElf(bad((_b, dv) => dv.setUint32(52 + 16, 0x10000, true))), /past the end of the file/);
  assert.throws(() => parseElf(good.subarray(0, 30)), /truncated/);
  const mem = new FlatMemory(4 * MB);
  const far = buildElf(32, 0x100000, [{ paddr: 0x800000, data: new Uint8Array(16) }]);
  assert.throws(() => loadKernel(mem, { ...opts("far", far), e820: buildE820(4 * MB) }), /outside RAM/);
  assert.throws(() => loadKernel(mem, opts("junk", new Uint8Array(1024))), /unrecognised kernel format/);
});

function multibootAout(loadAddr: number, entry: number, body: number[], bssPad: number): Uint8Array {
  const img = new Uint8Array(32 + body.length);
  const dv = new DataView(img.buffer);
  const flags = (1 << 16) | (1 << 1);
  dv.setUint32(0, 0x1badb002, true);
  dv.setUint32(4, flags, true);
  dv.setUint32(8, (-(0x1badb002 + flags)) >>> 0, true);
  dv.setUint32(12, loadAddr, true); // header_addr (header at file offset 0)
  dv.setUint32(16, loadAddr, true);
  dv.setUint32(20, loadAddr + img.length, true);
  dv.setUint32(24, loadAddr + img.length + bssPad, true);
  dv.setUint32(28, entry, true);
  img.set(body, 32);
  return img;
}

test("multiboot (a.out kludge): load, info with mem_lower/upper, mmap, cmdline, modules; EAX/EBX", () => {
  const mem = new FlatMemory(32 * MB);
  const img = multibootAout(0x100000, 0x100020, [0xf4], 0x1000);
  const r = loadKernel(mem, opts("kern.bin", img, { cmdline: "console=ttyS0", initrds: [{ name: "mod1 arg", data: new Uint8Array([7, 7]) }, { name: "mod2", data: new Uint8Array(5000) }] }));
  assert.equal(r.format, "multiboot");
  const st = r.state;
  assert.equal(st.mode, "protected");
  assert.equal(st.gprs.rax, 0x2badb002);
  assert.equal(st.gprs.rbx, BOOT_INFO);
  assert.equal(st.rip, 0x100020);
  assert.equal(st.cr0 & 0x80000001, 1, "protected mode, paging off");
  assert.equal(mem.bytes[0x100020], 0xf4);
  const flags = mem.u32(BOOT_INFO);
  assert.equal(flags & 0x24d, 0x24d, "MEMORY|CMDLINE|MODS|MEM_MAP|LOADER_NAME");
  assert.equal(mem.u32(BOOT_INFO + 4), 639);
  assert.equal(mem.u32(BOOT_INFO + 8), 31 * 1024);
  assert.equal(mem.cstr(mem.u32(BOOT_INFO + 16)), "kern.bin console=ttyS0");
  assert.equal(mem.u32(BOOT_INFO + 20), 2);
  const mods = mem.u32(BOOT_INFO + 24);
  const m0 = mem.u32(mods), m0end = mem.u32(mods + 4);
  assert.equal(m0 % 4096, 0);
  assert.ok(m0 >= 0x100000 + 33 + 0x1000, "modules after the kernel's bss");
  assert.equal(m0end - m0, 2);
  assert.equal(mem.cstr(mem.u32(mods + 8)), "mod1 arg");
  assert.equal(mem.u32(mods + 16) % 4096, 0);
  assert.equal(mem.u32(mods + 16) - m0, 4096);
  const mmapLen = mem.u32(BOOT_INFO + 44), mmap = mem.u32(BOOT_INFO + 48);
  assert.equal(mmapLen, 24 * buildE820(32 * MB).length);
  assert.equal(mem.u32(mmap), 20);
  assert.equal(mem.u64(mmap + 12), 0x9fc00);
  assert.equal(mem.u32(mmap + 20), 1);
  assert.equal(mem.cstr(mem.u32(BOOT_INFO + 64)), "tskvm");
});

test("multiboot: ELF32 variant, bad checksum ignored, unsupported required flags refused, ELF64 refused", () => {
  const hdr = new Uint8Array(12);
  const dv = new DataView(hdr.buffer);
  dv.setUint32(0, 0x1badb002, true); dv.setUint32(4, 0, true); dv.setUint32(8, (-0x1badb002) >>> 0, true);
  const elf = buildElf(32, 0x100000, [{ paddr: 0x100000, data: hdr }]);
  const mem = new FlatMemory(32 * MB);
  assert.equal(loadKernel(mem, opts("mb.elf", elf)).format, "multiboot");
  dv.setUint32(8, 1, true);
  assert.equal(loadKernel(mem, opts("nomb.elf", buildElf(32, 0x100000, [{ paddr: 0x100000, data: hdr }]))).format, "elf32");
  dv.setUint32(4, 1 << 5, true); dv.setUint32(8, (-(0x1badb002 + (1 << 5))) >>> 0, true);
  assert.throws(() => loadKernel(mem, opts("req.elf", buildElf(32, 0x100000, [{ paddr: 0x100000, data: hdr }]))), /unsupported features/);
  dv.setUint32(4, 0, true); dv.setUint32(8, (-0x1badb002) >>> 0, true);
  assert.throws(() => loadKernel(mem, opts("mb64.elf", buildElf(64, 0x100000, [{ paddr: 0x100000, data: hdr }]))), /must be 32-bit/);
});

test("PVH: XEN_ELFNOTE_PHYS32_ENTRY, hvm_start_info, memmap, cmdline, rsdp, modules", () => {
  const desc = new Uint8Array(4);
  new DataView(desc.buffer).setUint32(0, 0x1000040, true);
  const elf = buildElf(64, 0xffffffff81000000, [
    { paddr: 0x1000000, data: new Uint8Array([0x90, 0x90]) },
    { paddr: 0, data: note("Xen", 18, desc), note: true },
  ]);
  const mem = new FlatMemory(32 * MB);
  const r = loadKernel(mem, opts("vmlinux", elf, { cmdline: "root=/dev/vda", initrds: [{ name: "initrd.img", data: new Uint8Array(10) }] }));
  assert.equal(r.format, "pvh");
  assert.equal(r.state.mode, "protected");
  assert.equal(r.state.rip, 0x1000040);
  assert.equal(r.state.gprs.rbx, BOOT_INFO);
  assert.equal(mem.u32(BOOT_INFO), 0x336ec578);
  assert.equal(mem.u32(BOOT_INFO + 4), 1);
  assert.equal(mem.u32(BOOT_INFO + 12), 1);
  assert.equal(mem.cstr(mem.u64(BOOT_INFO + 24)), "root=/dev/vda");
  assert.equal(mem.u64(BOOT_INFO + 32), 0xe0000);
  const mm = mem.u64(BOOT_INFO + 40);
  assert.equal(mem.u32(BOOT_INFO + 48), buildE820(32 * MB).length);
  assert.equal(mem.u64(mm + 24), 0x9fc00, "second entry starts at the EBDA");
  const mod = mem.u64(BOOT_INFO + 16);
  assert.equal(mem.u64(mod + 8), 10);
  assert.ok(mem.u64(mod) >= 0x1000002);
});

function fakeBzImage(version: number, xload: number): Uint8Array {
  const setupSects = 2;
  const img = new Uint8Array((setupSects + 1) * 512 + 64);
  const dv = new DataView(img.buffer);
  img[0x1f1] = setupSects;
  img[0x1fe] = 0x55; img[0x1ff] = 0xaa;
  img[0x200] = 0xeb; img[0x201] = 0x66; // jmp over a header ending at 0x268
  img.set([0x48, 0x64, 0x72, 0x53], 0x202);
  dv.setUint16(0x206, version, true);
  dv.setUint32(0x22c, 0x7fffffff, true); // initrd_addr_max
  dv.setUint32(0x230, 0x200000, true);
  img[0x234] = 1;
  img[0x236] = xload;
  dv.setUint32(0x238, 2048, true);
  dv.setBigUint64(0x258, 0x1000000n, true);
  dv.setUint32(0x260, 0x100000, true);
  img[(setupSects + 1) * 512] = 0xf4;
  return img;
}

test("bzImage: zero page, cmdline, initrd high, e820, 64-bit entry in long mode", () => {
  const mem = new FlatMemory(64 * MB);
  const o = { ...opts("bzImage", fakeBzImage(0x20f, 1), { cmdline: "console=ttyS0", initrds: [{ name: "initrd", data: new Uint8Array(8192).fill(9) }] }), e820: buildE820(64 * MB) };
  const r = loadKernel(mem, o);
  assert.equal(r.format, "bzimage");
  assert.equal(r.state.mode, "long");
  assert.equal(r.state.rip, 0x1000200);
  assert.equal(r.state.gprs.rsi, BOOT_INFO);
  assert.equal(mem.bytes[0x1000000], 0xf4);
  assert.equal(mem.bytes[BOOT_INFO + 0x210], 0xff);
  assert.equal(mem.bytes[BOOT_INFO + 0x211]! & 1, 1);
  assert.equal(mem.u32(BOOT_INFO + 0x228), BOOT_CMDLINE);
  assert.equal(mem.cstr(BOOT_CMDLINE), "console=ttyS0");
  const rd = mem.u32(BOOT_INFO + 0x218);
  assert.equal(mem.u32(BOOT_INFO + 0x21c), 8192);
  assert.equal(rd % 4096, 0);
  assert.equal(rd + 8192, 64 * MB, "as high as RAM allows");
  assert.equal(mem.bytes[rd], 9);
  assert.equal(mem.bytes[BOOT_INFO + 0x1e8], buildE820(64 * MB).length);
  assert.equal(mem.u64(BOOT_INFO + 0x2d0 + 20 * 3), 0x100000);
  assert.equal(mem.u64(BOOT_INFO + 0x70), 0xe0000);
  assert.equal(mem.u32(BOOT_INFO + 0x202), 0x53726448, "setup header copied");
  assert.throws(() => loadKernel(mem, { ...o, kernel: { name: "old", data: fakeBzImage(0x20a, 1) } }), /boot protocol 2.10 has no 64-bit entry/);
  assert.throws(() => loadKernel(mem, { ...o, kernel: { name: "k32", data: fakeBzImage(0x20f, 0) } }), /XLF_KERNEL_64/);
  assert.throws(() => loadKernel(new FlatMemory(16 * MB), { ...o, e820: buildE820(16 * MB) }), /more than the guest's RAM/);
});
