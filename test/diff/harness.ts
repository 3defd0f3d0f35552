/**
 * Differential harness, real-KVM side: the initial-state model shared with the tskvm side,
 * the exit records both sides produce, and runRealKvm() which runs an image through
 * tools/kvm-runner on this machine's /dev/kvm.
 *
 * The initial state is computed here once (initialState) and handed to the runner as explicit
 * registers, segments and control registers, so the runner's own presets play no part and
 * both sides start from the same bytes.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import { buildRunner } from "../../scripts/build-guests.mjs";

export const REG_NAMES = [
  "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags",
] as const;
export type RegName = (typeof REG_NAMES)[number];
export type Regs = Record<RegName, bigint>;

export type Mode = "real16" | "prot32" | "long64";

export interface Segment {
  selector: number; base: bigint; limit: number; type: number; s: number; dpl: number;
  present: number; db: number; l: number; g: number;
}
export const SEG_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"] as const;
export type SegName = (typeof SEG_NAMES)[number];

export interface Sregs {
  segs: Record<SegName, Segment>;
  gdt: { base: bigint; limit: number };
  idt: { base: bigint; limit: number };
  cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint;
}

/** How to start a guest: where the image goes, the mode preset and overrides, when to stop. */
export interface InitState {
  mode: Mode;
  /** prot32/long64: start at CPL 3 (user selectors of guests/lib's GDT layout). */
  cpl?: 0 | 3;
  /** long64: start in compatibility mode (a 32-bit code segment, L=0 D=1) instead of 64-bit. */
  compat32?: boolean;
  /** Load address of the image. */
  gpa: number;
  /** Guest RAM size: one memslot at GPA 0. */
  mem: number;
  entry?: number;
  regs?: Partial<Regs>;
  cr3?: bigint;
  /** Overrides the preset CR4 (e.g. OSFXSR/OSXMMEXCPT for SSE cases). */
  cr4?: bigint;
  gdt?: { base: bigint; limit: number };
  idt?: { base: bigint; limit: number };
  maxExits?: number;
  exitPort?: number;
  /** An MMIO write to this GPA ends the run. */
  exitMmio?: number;
  /** [base, length] summarised by ExitRecord.mem at every exit; default none (it costs a pass
   *  over the range per exit). */
  hash?: [number, number];
  /** Wall-clock guard for the real KVM (seconds). */
  timeoutSec?: number;
  /** KVM_SET_GUEST_DEBUG before the first KVM_RUN: control flags, DR0-DR3 and DR7; debug exits then continue the run. */
  guestDebug?: { control: number; debugreg?: [number, number, number, number]; dr7?: number };
}

export interface ExitRecord {
  n: number;
  exit: string;
  reason: number;
  io?: { dir: "in" | "out"; size: number; port: number; count: number; data: string };
  mmio?: { addr: bigint; len: number; write: number; data: string };
  internal?: { suberror: number; data: bigint[] };
  debug?: { exception: number; pc: bigint; dr6: bigint; dr7: bigint };
  regs: Regs;
  sregs: { cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; efer: bigint; cs: number; ss: number; ds: number; es: number; fs: number; gs: number };
  /** FNV-1a (32-bit, hex) of the hash range at this exit. */
  mem: string;
}

export interface RunResult {
  exits: ExitRecord[];
  stop: string;
  serial: string;
}

/** Raised when a side cannot run at all on this machine; tests turn it into a skip. */
export class Unavailable extends Error {}

/** The value an IN instruction reads from the harness (both sides): byte i = 0x11 * (i % 4 + 1). */
export function inPattern(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = 0x11 * ((i % 4) + 1);
  return out;
}

/** FNV-1a 32-bit, the runner's memory checksum. */
export function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

function flatSeg(selector: number, type: number, dpl: number, l: number, db: number): Segment {
  return { selector, base: 0n, limit: 0xffffffff, type, s: 1, dpl, present: 1, db, l, g: 1 };
}

/**
 * The full initial register state for an InitState (the same presets as kvm-runner's --mode,
 * which the runner is not asked to apply). GDT selectors are those of guests/lib/boot.S.
 */
export function initialState(init: InitState): { regs: Regs; sregs: Sregs } {
  const regs = Object.fromEntries(REG_NAMES.map((r) => [r, 0n])) as Regs;
  const none: Segment = { selector: 0, base: 0n, limit: 0xffff, type: 3, s: 1, dpl: 0, present: 1, db: 0, l: 0, g: 0 };
  let sregs: Sregs;
  const entry = init.entry ?? init.gpa;
  if (init.mode === "real16") {
    const cs = { ...none, type: 0xb };
    let ip = entry;
    if (entry > 0xffff) {
      cs.base = BigInt(entry & ~0xf);
      cs.selector = (entry & ~0xf) >>> 4;
      ip = entry & 0xf;
    }
    sregs = {
      segs: {
        cs, ds: { ...none }, es: { ...none }, fs: { ...none }, gs: { ...none }, ss: { ...none },
        tr: { selector: 0, base: 0n, limit: 0xffff, type: 0xb, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0 },
        ldt: { selector: 0, base: 0n, limit: 0xffff, type: 2, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0 },
      },
      gdt: { base: 0n, limit: 0xffff }, idt: { base: 0n, limit: 0xffff },
      cr0: 0x10n, cr3: 0n, cr4: 0n, efer: 0n,
    };
    regs.rip = BigInt(ip);
  } else {
    const lm = init.mode === "long64";
    const cpl = init.cpl ?? 0;
    const code64 = lm && !init.compat32;
    const csSel = cpl ? (code64 ? 0x2b : 0x33) : (code64 ? 0x08 : 0x18);
    const dsSel = cpl ? 0x23 : 0x10;
    const ds = flatSeg(dsSel, 3, cpl, 0, 1);
    sregs = {
      segs: {
        cs: flatSeg(csSel, 0xb, cpl, code64 ? 1 : 0, code64 ? 0 : 1),
        ds, es: { ...ds }, fs: { ...ds }, gs: { ...ds }, ss: { ...ds },
        tr: { selector: 0x38, base: 0n, limit: 0x67, type: 0xb, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0 },
        ldt: { selector: 0, base: 0n, limit: 0, type: 2, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0 },
      },
      gdt: { base: 0n, limit: 0 }, idt: { base: 0n, limit: 0 },
      cr0: lm ? 0x80050033n : 0x50033n, cr3: 0n, cr4: lm ? 0x20n : 0n, efer: lm ? 0x500n : 0n,
    };
    regs.rip = BigInt(entry);
  }
  regs.rflags = 2n;
  for (const [k, v] of Object.entries(init.regs ?? {})) regs[k as RegName] = v as bigint;
  if (init.cr3 !== undefined) sregs.cr3 = init.cr3;
  if (init.cr4 !== undefined) sregs.cr4 = init.cr4;
  if (init.gdt) sregs.gdt = init.gdt;
  if (init.idt) sregs.idt = init.idt;
  return { regs, sregs };
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** Runner arguments that pin down the whole initial state. */
export function runnerArgs(init: InitState, imagePath: string): string[] {
  const { regs, sregs } = initialState(init);
  const args = ["--gpa", hex(init.gpa), "--mem", hex(init.mem), "--mode", init.mode === "real16" ? "real16" : init.mode];
  for (const r of REG_NAMES) args.push("--reg", `${r}=${hex(regs[r])}`);
  for (const n of SEG_NAMES) {
    const s = sregs.segs[n];
    args.push("--seg", `${n}=${[s.selector, hex(s.base), hex(s.limit), s.type, s.s, s.dpl, s.present, s.db, s.l, s.g].join(":")}`);
  }
  args.push("--cr0", hex(sregs.cr0), "--cr3", hex(sregs.cr3), "--cr4", hex(sregs.cr4), "--efer", hex(sregs.efer));
  args.push("--gdt", `${hex(sregs.gdt.base)}:${hex(sregs.gdt.limit)}`, "--idt", `${hex(sregs.idt.base)}:${hex(sregs.idt.limit)}`);
  args.push("--max-exits", String(init.maxExits ?? 1000), "--exit-port", hex(init.exitPort ?? 0xf4));
  if (init.exitMmio !== undefined) args.push("--exit-mmio", hex(init.exitMmio));
  const [hb, hl] = init.hash ?? [0, 0];
  args.push("--hash", `${hex(hb)}:${hex(hl)}`);
  const dbg = init.guestDebug;
  if (dbg) {
    args.push("--guest-debug", hex(dbg.control));
    (dbg.debugreg ?? [0, 0, 0, 0]).forEach((v, i) => args.push("--debugreg", `${i}:${hex(v)}`));
    args.push("--debugreg", `7:${hex(dbg.dr7 ?? 0)}`);
  }
  args.push("--timeout", String(init.timeoutSec ?? 20), imagePath);
  return args;
}

function big(v: string): bigint {
  return BigInt(v);
}

/** Parses kvm-runner's JSON-lines output. */
export function parseRunnerOutput(out: string): RunResult {
  const exits: ExitRecord[] = [];
  let stop = "";
  let serial = "";
  for (const line of out.split("\n")) {
    if (!line.trim()) continue;
    const j = JSON.parse(line);
    if (j.error) throw new Error(`kvm-runner: ${j.error}`);
    if (j.stop !== undefined) {
      stop = j.stop;
      serial = j.serial;
      continue;
    }
    const regs = Object.fromEntries(REG_NAMES.map((r) => [r, big(j.regs[r])])) as Regs;
    const s = j.sregs;
    const rec: ExitRecord = {
      n: j.n, exit: j.exit, reason: j.reason, regs, mem: j.mem,
      sregs: { cr0: big(s.cr0), cr2: big(s.cr2), cr3: big(s.cr3), cr4: big(s.cr4), efer: big(s.efer), cs: s.cs, ss: s.ss, ds: s.ds, es: s.es, fs: s.fs, gs: s.gs },
    };
    if (j.io) rec.io = j.io;
    if (j.mmio) rec.mmio = { ...j.mmio, addr: big(j.mmio.addr) };
    if (j.internal) rec.internal = { suberror: j.internal.suberror, data: j.internal.data.map(big) };
    if (j.debug) rec.debug = { exception: j.debug.exception, pc: big(j.debug.pc), dr6: big(j.debug.dr6), dr7: big(j.debug.dr7) };
    exits.push(rec);
  }
  return { exits, stop, serial };
}

let runnerPath: string | undefined;
let unavailable: string | undefined;

/**
 * Why the real KVM cannot be used here (no /dev/kvm, no gcc, the runner cannot create a VM),
 * or undefined when it can. Checked once per process.
 */
export function realKvmUnavailable(): string | undefined {
  if (runnerPath || unavailable) return unavailable;
  if (!existsSync("/dev/kvm")) return (unavailable = "no /dev/kvm on this machine");
  try {
    runnerPath = buildRunner() as string;
  } catch (e) {
    return (unavailable = `cannot build tools/kvm-runner (${(e as Error).message.split("\n")[0]})`);
  }
  // A one-instruction probe: HLT in real mode.
  const r = runRunner(Uint8Array.of(0xf4), { mode: "real16", gpa: 0x1000, mem: 0x10000 });
  if (r.status === 3) unavailable = `kvm-runner cannot create a VM: ${r.stdout.trim()}`;
  else if (r.status !== 0) unavailable = `kvm-runner probe failed (status ${r.status}): ${r.stdout}${r.stderr}`;
  return unavailable;
}

function runRunner(image: Uint8Array, init: InitState): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), "tskvm-diff-"));
  try {
    const img = join(dir, "image.bin");
    writeFileSync(img, image);
    const r = spawnSync(runnerPath!, runnerArgs(init, img), { encoding: "utf8", maxBuffer: 256 << 20 });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `image` on this machine's /dev/kvm; throws Unavailable when that is impossible here. */
export function runRealKvm(image: Uint8Array, init: InitState): RunResult {
  const why = realKvmUnavailable();
  if (why) throw new Unavailable(why);
  const r = runRunner(image, init);
  if (r.status !== 0) throw new Error(`kvm-runner failed (status ${r.status}): ${r.stdout}${r.stderr}`);
  return parseRunnerOutput(r.stdout);
}
