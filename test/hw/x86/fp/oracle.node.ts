/**
 * Test helper: builds tools/fp-oracle (C, inline asm) with the system gcc once and runs batches
 * of cases through it, so the TypeScript FP library can be compared bit for bit with the host
 * CPU. oracleSkipReason() says why the oracle cannot run here (no gcc, not x86-64).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../../..");
const src = join(root, "tools/fp-oracle/oracle.c");
const bin = join(root, "tools/fp-oracle/build/oracle");

let skip: string | null | undefined;

/** Null if the oracle is ready, else a reason to skip oracle tests. */
export function oracleSkipReason(): string | null {
  if (skip !== undefined) return skip;
  if (process.arch !== "x64") return (skip = `host is ${process.arch}, the oracle needs x86-64`);
  try {
    if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
      mkdirSync(dirname(bin), { recursive: true });
      // Test files run in parallel and may build it at the same time: each links its own file and
      // renames it into place, so nobody executes a half-written binary.
      const tmp = `${bin}.${process.pid}`;
      execFileSync("gcc", ["-O1", "-mno-red-zone", "-o", tmp, src], { stdio: "pipe" });
      renameSync(tmp, bin);
    }
    skip = null;
  } catch (e) {
    skip = `cannot build the fp oracle with gcc: ${(e as Error).message.split("\n")[0]}`;
  }
  return skip;
}

/** Run one batch of oracle input lines; returns one output line per input line. */
export function runOracle(lines: string[]): string[] {
  const r = spawnSync(bin, [], { input: lines.join("\n") + "\n", encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`fp oracle failed: ${r.error?.message ?? r.stderr}`);
  const out = r.stdout.split("\n");
  out.length = lines.length;
  return out;
}

/** Deterministic PRNG (mulberry32) for reproducible operand streams. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export function hex(v: number, digits: number): string {
  return (v >>> 0).toString(16).padStart(digits, "0").slice(-digits);
}

/**
 * Compare oracle lines with ours; collect at most `limit` mismatch descriptions. `norm` may
 * rewrite both lines (e.g. mask undefined status bits) before comparison.
 */
export function diffLines(inputs: string[], expected: string[], actual: string[], limit = 15, norm?: (line: string, input: string) => string): string[] {
  const bad: string[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const e = norm ? norm(expected[i]!, inputs[i]!) : expected[i]!;
    const a = norm ? norm(actual[i]!, inputs[i]!) : actual[i]!;
    if (e !== a) {
      bad.push(`${inputs[i]}  => hw ${expected[i]}  ours ${actual[i]}`);
      if (bad.length >= limit) break;
    }
  }
  return bad;
}
