/**
 * Compares two exit streams (real KVM vs tskvm, or two runs of one side). Flags the SDM leaves
 * undefined for the instructions before an exit are masked with that exit's mask; RF (bit 16)
 * is always masked, since whether a VMM reports it after an exit is not architectural state
 * the guest can observe before its next instruction.
 *
 * RIP at an IO or MMIO exit is compared up to one instruction: whether KVM_GET_REGS shows the
 * exiting instruction's address or the next one depends on KVM's path, not on the architecture
 * (VMX fast PIO advances RIP only when the next KVM_RUN completes the OUT, x86.c
 * complete_fast_pio_out; the emulator path writes RIP back before exiting for OUT and MMIO
 * writes, as kvm_pvm does for everything it emulates). Control flow is still pinned down by the
 * exit's port/address/data and by every later exit.
 */
import { REG_NAMES } from "./harness.js";
import type { ExitRecord, RegName, RunResult } from "./harness.js";

export const RFLAGS_RF = 0x10000n;
/** The longest x86 instruction (SDM Vol 2A 2.3.11). */
export const MAX_INSN_LEN = 15n;

export interface CompareOptions {
  /** Undefined-flag mask per exit index (missing: none). */
  masks?: readonly number[];
  /** Compare the memory checksum (default true). */
  memory?: boolean;
  /** Compare control registers and selectors (default true). */
  sregs?: boolean;
  /** Which registers to compare (default all, RFLAGS masked). */
  regs?: readonly RegName[];
}

function describe(e: ExitRecord | undefined): string {
  if (!e) return "(no exit)";
  const d = e.io ? ` io ${e.io.dir} port 0x${e.io.port.toString(16)} size ${e.io.size} data ${e.io.data}`
    : e.mmio ? ` mmio ${e.mmio.write ? "write" : "read"} 0x${e.mmio.addr.toString(16)} len ${e.mmio.len} data ${e.mmio.data}`
    : e.internal ? ` internal suberror ${e.internal.suberror}` : "";
  return `${e.exit}${d} at rip 0x${e.regs.rip.toString(16)}`;
}

/** Differences between the i-th exits, as readable strings (empty when they match). */
export function compareExit(a: ExitRecord, b: ExitRecord, mask = 0, opts: CompareOptions = {}): string[] {
  const out: string[] = [];
  if (a.reason !== b.reason) return [`exit ${describe(a)} vs ${describe(b)}`];
  if (JSON.stringify(a.io) !== JSON.stringify(b.io)) out.push(`io ${describe(a)} vs ${describe(b)}`);
  if (a.mmio || b.mmio) {
    const am = a.mmio!, bm = b.mmio!;
    if (!am || !bm || am.addr !== bm.addr || am.len !== bm.len || am.write !== bm.write || am.data !== bm.data) {
      out.push(`mmio ${describe(a)} vs ${describe(b)}`);
    }
  }
  for (const r of opts.regs ?? REG_NAMES) {
    let x = a.regs[r], y = b.regs[r];
    if (r === "rflags") {
      const m = ~(BigInt(mask) | RFLAGS_RF);
      x &= m;
      y &= m;
    }
    if (r === "rip" && (a.io || a.mmio) && (x > y ? x - y : y - x) <= MAX_INSN_LEN) continue;
    if (x !== y) out.push(`${r} 0x${x.toString(16)} vs 0x${y.toString(16)}`);
  }
  if (opts.sregs !== false) {
    for (const k of ["cr0", "cr2", "cr3", "cr4", "efer", "cs", "ss", "ds", "es", "fs", "gs"] as const) {
      if (a.sregs[k] !== b.sregs[k]) out.push(`${k} 0x${a.sregs[k].toString(16)} vs 0x${b.sregs[k].toString(16)}`);
    }
  }
  if (opts.memory !== false && a.mem !== b.mem) out.push(`memory checksum ${a.mem} vs ${b.mem}`);
  return out;
}

/**
 * Compares two runs exit by exit; returns the first mismatching exit's differences (with its
 * index), or undefined when the runs agree.
 */
export function compareRuns(a: RunResult, b: RunResult, opts: CompareOptions = {}): { index: number; diffs: string[] } | undefined {
  const n = Math.max(a.exits.length, b.exits.length);
  for (let i = 0; i < n; i++) {
    const x = a.exits[i], y = b.exits[i];
    if (!x || !y) return { index: i, diffs: [`exit count ${a.exits.length} vs ${b.exits.length}: ${describe(x)} vs ${describe(y)}`] };
    const d = compareExit(x, y, opts.masks?.[i] ?? 0, opts);
    if (d.length) return { index: i, diffs: d };
  }
  if (a.stop !== b.stop) return { index: n, diffs: [`stop ${a.stop} vs ${b.stop}`] };
  if (a.serial !== b.serial) return { index: n, diffs: [`serial ${JSON.stringify(a.serial)} vs ${JSON.stringify(b.serial)}`] };
  return undefined;
}
