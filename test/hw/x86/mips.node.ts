// Guest-MIPS measurement of the bare x86 core on a tight integer loop (not a test: no timing is
// asserted anywhere). Run: node --import tsx test/hw/x86/mips.node.ts [pm|pg|lm] [iterations]
//   pm: flat 32-bit protected mode, no paging; pg: 32-bit paging (4 MiB PSE page); lm: 64-bit mode.
// The loop is 5 instructions: add r,r; add [mem],r; xor r,r; dec r; jnz. MIPS is reported
// against process CPU time as well as wall time (the build machine is shared).
import { PhysMem } from "../../../src/hw/physmem.js";
import { X86Cpu } from "../../../src/hw/x86/cpu.js";

const mode = process.argv[2] ?? "lm";
const N = Number(process.argv[3] ?? 5_000_000);
const mem = new PhysMem(4 << 20);
mem.populate(0);
const cpu = new X86Cpu(mem);
const st = cpu.state;
const n = [N & 0xff, (N >>> 8) & 0xff, (N >>> 16) & 0xff, N >>> 24];
const code32 = [0xb9, ...n, 0x31, 0xc0, 0x01, 0xc8, 0x01, 0x0d, 0x00, 0x20, 0x00, 0x00, 0x31, 0xc2, 0x49, 0x75, 0xf3, 0xf4];
const code64 = [0xb9, ...n, 0x31, 0xc0, 0x48, 0x01, 0xc8, 0x48, 0x01, 0x0c, 0x25, 0x00, 0x20, 0x00, 0x00, 0x48, 0x31, 0xc2, 0x48, 0xff, 0xc9, 0x75, 0xed, 0xf4];
(mode === "lm" ? code64 : code32).forEach((b, i) => mem.write8(0x1000 + i, b));
for (let s = 0; s < 6; s++) { st.segSel[s] = s === 1 ? 8 : 16; st.segBase[s] = 0; st.segLimit[s] = 0xffffffff; st.segAr[s] = s === 1 ? 0xc09b : 0xc093; }
st.cr0 = 0x60000011;
if (mode === "pg") { mem.write32(0x3000, 0x83); st.cr3 = 0x3000; st.cr4 = 0x10; st.cr0 = 0xe0000011 | 0; }
if (mode === "lm") {
  mem.write32(0x10000, 0x11007); mem.write32(0x11000, 0x12007); mem.write32(0x12000, 0x87);
  st.cr3 = 0x10000; st.cr4 = 0x20; st.efer = 0x500; st.cr0 = 0x80000011 | 0; st.segAr[1] = 0xa09b;
}
for (let rep = 0; rep < 3; rep++) {
  st.rip = 0x1000; st.activityState = 0; mem.write32(0x2000, 0);
  cpu.stateChanged();
  const t0 = performance.now(), u0 = process.cpuUsage();
  const done = cpu.run(1e10);
  const wall = performance.now() - t0, u = process.cpuUsage(u0), cpuMs = (u.user + u.system) / 1000;
  console.log(`${mode}: ${done} insns, wall ${wall.toFixed(0)} ms (${(done / wall / 1000).toFixed(1)} MIPS), cpu ${cpuMs.toFixed(0)} ms (${(done / cpuMs / 1000).toFixed(1)} MIPS)`);
}
