// Test machine for the FPU tests: flat 32-bit protected mode with an IDT whose handler for
// vector v records v in ESI and halts, so a test sees which exception an instruction raised.
import { makeRig, writeBytes, flat32, idtGate32, writeGdt, segDesc, type Rig } from "./helpers.js";

/** ModRM disp32 memory form of opcode byte(s) `op` /reg at absolute address a. */
export const m = (op: number | number[], reg: number, a: number): number[] =>
  [...(typeof op === "number" ? [op] : op), (reg << 3) | 5, a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, a >>> 24];

export const EXC_NONE = 0xffffffff;

/** Flat 32-bit machine with an IDT whose handler for vector v sets ESI = v and halts. */
export function machine(code: number[], setup?: (r: Rig) => void): Rig & { exc: number; ax: number } {
  const rig = makeRig();
  const { mem, cpu } = rig;
  writeGdt(mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xc), segDesc(0, 0xfffff, 0x93, 0xc)]);
  flat32(cpu, 0x1000);
  const st = cpu.state;
  st.gdtrBase = 0x8000; st.gdtrLimit = 0x17; st.idtrBase = 0x9000; st.idtrLimit = 0x7ff;
  st.cr0 |= 0x20; // NE
  for (let v = 0; v < 20; v++) {
    idtGate32(mem, 0x9000, v, 0x08, 0x2000 + v * 16);
    writeBytes(mem, 0x2000 + v * 16, [0xbe, v, 0, 0, 0, 0xf4]); // mov esi, v; hlt
  }
  writeBytes(mem, 0x1000, [...code, 0xf4]);
  st.gpr[12] = EXC_NONE;
  cpu.stateChanged();
  setup?.(rig);
  cpu.run(10000);
  return Object.assign(rig, { exc: st.gpr[12] >>> 0, ax: st.gpr[0] & 0xffff });
}

