#!/usr/bin/env node
// Builds every guest program in guests/ with the system toolchain (as, ld, objcopy, gcc) into
// guests/build/<area>/<name>.{elf,bin,json}, and tools/kvm-runner into tools/kvm-runner/build/.
// Incremental by mtime. `npm run guests` runs it; tests import buildGuests()/buildRunner().
//
// Each guest source names how it is built and booted in a header line:
//   tskvm-guest: mode=real16 gpa=0x1000      standalone .S, flat image linked at gpa
//   tskvm-guest: lib=32,64                  links with guests/lib (Multiboot, 32-bit entry at
//                                           1 MiB); one variant per width: <name>-32, <name>-64
// Optional keys: mem=<bytes> (guest RAM, default 4 MiB for lib guests, 2 MiB otherwise);
//   regs=rax:2,rbx:3 (initial registers); expect=kvm|qemu or expect=32:qemu,64:kvm (which
//   machine produced guests/<area>/<name>.expected: the real /dev/kvm through kvm-runner, or
//   QEMU TCG for guests this machine's kvm_pvm cannot run; see tools/kvm-runner/README.md), or
//   expect=sdm for a self-checking guest that neither peer can judge: its .expected file is kept
//   by hand and holds the output in which every check passes (the checks encode the SDM).
//
// `node scripts/build-guests.mjs --update-expected [filter]` rewrites the .expected files by
// running each guest on the machine its header names.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const guestsDir = join(root, "guests");
const buildDir = join(guestsDir, "build");
const libDir = join(guestsDir, "lib");
const runnerDir = join(root, "tools", "kvm-runner");
const LIB_LOAD = 0x100000;

const CFLAGS = [
  "-ffreestanding", "-nostdlib", "-fno-pic", "-static", "-fno-stack-protector", "-fno-builtin",
  "-fcf-protection=none", "-mgeneral-regs-only", "-mno-red-zone", "-fno-asynchronous-unwind-tables",
  "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
];

function mtime(p) {
  try { return statSync(p).mtimeMs; } catch { return -1; }
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Parses the `tskvm-guest:` header line of a guest source. */
export function parseGuestHeader(text, file) {
  const m = /tskvm-guest:([^\n*]*)/.exec(text);
  if (!m) throw new Error(`${file}: no "tskvm-guest:" header line`);
  const kv = {};
  for (const part of m[1].trim().split(/\s+/)) {
    const [k, v] = part.split("=");
    kv[k] = v ?? "";
  }
  return kv;
}

function listSources() {
  const out = [];
  for (const area of readdirSync(guestsDir).sort()) {
    if (area === "lib" || area === "build") continue;
    const dir = join(guestsDir, area);
    if (!statSync(dir).isDirectory()) continue;
    for (const f of readdirSync(dir).sort()) {
      if (f.endsWith(".S") || f.endsWith(".c")) out.push(join(dir, f));
    }
  }
  return out;
}

const libInputs = ["boot.S", "entry.S", "lib.c", "lib.h", "ref.h", "guest.ld"].map((f) => join(libDir, f));

function newest(paths) {
  return Math.max(...paths.map(mtime), mtime(fileURLToPath(import.meta.url)));
}

function buildLib(width) {
  const out = join(buildDir, "lib", String(width));
  mkdirSync(out, { recursive: true });
  const objs = [join(out, "boot.o"), join(out, "entry.o"), join(out, "lib.o")];
  if (objs.every((o) => mtime(o) > newest(libInputs))) return objs;
  const m = width === 64 ? "-m64" : "-m32";
  const defs = width === 64 ? ["-DLONG=1"] : [];
  run("gcc", [m, ...defs, "-c", "-o", objs[0], join(libDir, "boot.S")]);
  run("gcc", [m, ...defs, "-c", "-o", objs[1], join(libDir, "entry.S")]);
  run("gcc", [m, ...CFLAGS, "-c", "-o", objs[2], join(libDir, "lib.c")]);
  return objs;
}

function entryOf(elf) {
  const hdr = run("readelf", ["-h", elf]);
  const m = /Entry point address:\s+(0x[0-9a-f]+)/.exec(hdr);
  if (!m) throw new Error(`${elf}: no entry point`);
  return Number(m[1]);
}

/**
 * Builds all guests (or those whose name contains `filter`). Returns one manifest per image:
 * { name, area, bin, elf, expected, mode, gpa, entry, mem }. Throws with the tool's output
 * when a build fails; throws "toolchain missing" when gcc/as are absent.
 */
export function buildGuests(opts = {}) {
  return withBuildLock(() => buildGuestsLocked(opts));
}

/**
 * Test files run in parallel processes and each may build the guests: one at a time, so no
 * process reads an object or image another is still writing; the next one finds them current.
 */
function withBuildLock(fn) {
  mkdirSync(buildDir, { recursive: true });
  const lock = join(buildDir, ".lock");
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      closeSync(openSync(lock, "wx"));
      break;
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
      // A lock left behind by a killed build is stale after ten minutes.
      try { if (Date.now() - statSync(lock).mtimeMs > 600_000) unlinkSync(lock); } catch { /* gone meanwhile */ }
      Atomics.wait(sleeper, 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    try { unlinkSync(lock); } catch { /* already removed */ }
  }
}

function buildGuestsLocked({ filter, log = () => {} } = {}) {
  for (const tool of ["gcc", "as", "ld", "objcopy", "readelf"]) {
    const r = spawnSync(tool, ["--version"], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new Error(`toolchain missing: ${tool}`);
  }
  const manifests = [];
  for (const src of listSources()) {
    const area = relative(guestsDir, dirname(src));
    const base = src.replace(/\.(S|c)$/, "").split("/").pop();
    const text = readFileSync(src, "utf8");
    const hdr = parseGuestHeader(text, src);
    const variants = hdr.lib ? hdr.lib.split(",").map((w) => ({ width: Number(w), name: `${base}-${w}` }))
      : [{ width: 0, name: base }];
    for (const v of variants) {
      const name = `${area}/${v.name}`;
      if (filter && !name.includes(filter)) continue;
      const outDir = join(buildDir, area);
      mkdirSync(outDir, { recursive: true });
      const elf = join(outDir, `${v.name}.elf`);
      const bin = join(outDir, `${v.name}.bin`);
      const json = join(outDir, `${v.name}.json`);
      const inputs = v.width ? [src, ...libInputs] : [src];
      if (mtime(json) <= newest(inputs) || mtime(bin) < 0) {
        log(`build ${name}`);
        if (v.width) {
          const m = v.width === 64 ? "-m64" : "-m32";
          const defs = v.width === 64 ? ["-DLONG=1"] : [];
          const libObjs = buildLib(v.width);
          const obj = join(outDir, `${v.name}.o`);
          const flags = src.endsWith(".c") ? [...CFLAGS, `-I${libDir}`] : [`-I${libDir}`];
          run("gcc", [m, ...defs, ...flags, "-c", "-o", obj, src]);
          run("ld", ["-m", v.width === 64 ? "elf_x86_64" : "elf_i386", "-nostdlib", "-static",
            "-z", "noexecstack", "--no-warn-rwx-segments", "-T", join(libDir, "guest.ld"),
            "-o", elf, ...libObjs, obj]);
        } else {
          if (!hdr.gpa) throw new Error(`${src}: standalone guest needs gpa=`);
          const obj = join(outDir, `${v.name}.o`);
          // --64 so .code16/.code32/.code64 parts may all use 64-bit data relocations (.quad).
          run("as", ["--64", "-o", obj, src]);
          run("ld", ["-m", "elf_x86_64", "-nostdlib", "-static", "--no-warn-rwx-segments",
            `-Ttext=${hdr.gpa}`, "-e", hdr.gpa, "-o", elf, obj]);
        }
        run("objcopy", ["-O", "binary", "--remove-section=.note*", elf, bin]);
        const gpa = v.width ? LIB_LOAD : Number(hdr.gpa);
        const manifest = {
          name, area, bin: relative(root, bin), elf: relative(root, elf),
          expected: relative(root, join(guestsDir, area, `${v.name}.expected`)),
          mode: v.width ? "prot32" : (hdr.mode ?? "real16"),
          gpa, entry: v.width ? entryOf(elf) : gpa,
          mem: Number(hdr.mem ?? (v.width ? 0x400000 : 0x200000)),
          width: v.width || 16,
          expect: expectFor(hdr.expect, v.width),
          regs: Object.fromEntries((hdr.regs ? hdr.regs.split(",") : []).map((p) => p.split(":"))),
        };
        writeFileSync(json, JSON.stringify(manifest, null, 2) + "\n");
      }
      const manifest = JSON.parse(readFileSync(json, "utf8"));
      manifests.push(manifest);
    }
  }
  return manifests;
}

function expectFor(spec, width) {
  if (!spec) return "kvm";
  if (!spec.includes(":")) return spec;
  for (const part of spec.split(",")) {
    const [w, m] = part.split(":");
    if (Number(w) === width) return m;
  }
  return "kvm";
}

/** The text a guest run is compared by: its serial output, then how the run ended. */
export function formatGuestResult(serial, stop, exitValue) {
  const end = stop === "exit-port" ? `@end exit-port ${exitValue}` : `@end ${stop}`;
  return `${serial}${serial.endsWith("\n") || serial === "" ? "" : "\n"}${end}\n`;
}

/** The body of an .expected file (its "# " header lines removed). */
export function expectedBody(text) {
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length && lines[i].startsWith("# ")) i++;
  return lines.slice(i).join("\n");
}

/** kvm-runner arguments for a guest manifest (the initial state its header names). */
export function runnerArgsFor(m) {
  const args = ["--mode", m.mode, "--gpa", `0x${m.gpa.toString(16)}`, "--entry", `0x${m.entry.toString(16)}`,
    "--mem", `0x${m.mem.toString(16)}`, "--max-exits", "200000", "--timeout", "120", "--quiet", "--hash", "0:0"];
  for (const [r, v] of Object.entries(m.regs ?? {})) args.push("--reg", `${r}=${v}`);
  return [...args, join(root, m.bin)];
}

/** Runs a guest on the real KVM (kvm-runner) and returns formatGuestResult's text. */
export function runGuestOnKvm(m) {
  const r = spawnSync(buildRunner(), runnerArgsFor(m), { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`kvm-runner: status ${r.status}: ${r.stdout}${r.stderr}`);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const last = lines[lines.length - 1];
  let value = 0;
  if (last.stop === "exit-port") value = parseInt(lines[lines.length - 2].io.data.slice(0, 2), 16);
  return formatGuestResult(last.serial, last.stop, value);
}

/** Runs a library guest under QEMU TCG (isa-debug-exit at 0xf4) and returns its result text. */
export function runGuestOnQemu(m) {
  if (m.mode !== "prot32") throw new Error(`${m.name}: QEMU can only boot the Multiboot (library) guests`);
  const dir = join(buildDir, "qemu");
  mkdirSync(dir, { recursive: true });
  const serialFile = join(dir, `${m.name.replace("/", "_")}.serial`);
  const r = spawnSync("qemu-system-x86_64", ["-accel", "tcg", "-display", "none", "-no-reboot", "-m", "16",
    "-serial", `file:${serialFile}`, "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", join(root, m.bin)],
  { encoding: "utf8", timeout: 120_000 });
  if (r.error) throw new Error(`qemu-system-x86_64: ${r.error.message}`);
  const serial = readFileSync(serialFile, "latin1");
  // isa-debug-exit makes QEMU exit with (value << 1) | 1.
  if (r.status === null || (r.status & 1) === 0) return formatGuestResult(serial, "shutdown", 0);
  return formatGuestResult(serial, "exit-port", r.status >> 1);
}

function qemuVersion() {
  const r = spawnSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.split("\n")[0].trim() : "QEMU";
}

/** Rewrites guests/<area>/<name>.expected from a run on the machine the guest's header names. */
export function updateExpected(m) {
  if (m.expect === "sdm") {
    console.log(`${m.expected}: kept by hand (expect=sdm), not regenerated`);
    return expectedBody(readFileSync(join(root, m.expected), "utf8"));
  }
  const text = m.expect === "qemu" ? runGuestOnQemu(m) : runGuestOnKvm(m);
  const source = m.expect === "qemu"
    ? `QEMU TCG (${qemuVersion()}, -accel tcg -kernel ${m.bin})`
    : "the real /dev/kvm of the build machine (kvm_pvm) through tools/kvm-runner";
  const header = [
    `# ${m.name}: serial output, then how the run ended.`,
    `# Produced by ${source}, ${new Date().toISOString().slice(0, 10)}.`,
    `# Regenerate: node scripts/build-guests.mjs --update-expected ${m.name}`,
  ].join("\n");
  writeFileSync(join(root, m.expected), `${header}\n${text}`);
  return text;
}

/** Builds tools/kvm-runner/build/runner with the system gcc; returns its path. */
export function buildRunner() {
  return withBuildLock(buildRunnerLocked);
}

function buildRunnerLocked() {
  const src = join(runnerDir, "runner.c");
  const out = join(runnerDir, "build", "runner");
  if (mtime(out) > mtime(src)) return out;
  mkdirSync(dirname(out), { recursive: true });
  run("gcc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", out, src]);
  return out;
}

export { root as projectRoot };

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const update = process.argv.includes("--update-expected");
  const filter = process.argv.slice(2).find((a) => !a.startsWith("--"));
  try {
    const m = buildGuests({ filter, log: (s) => console.log(s) });
    if (update) {
      for (const g of m) {
        const text = updateExpected(g);
        console.log(`${g.expected} (${g.expect}): ${text.trim().split("\n").pop()}`);
      }
    }
    if (existsSync(join(runnerDir, "runner.c"))) console.log(`runner: ${relative(root, buildRunner())}`);
    console.log(`${m.length} guest image(s) in ${relative(root, buildDir)}/`);
  } catch (e) {
    console.error(String(e instanceof Error ? e.message : e));
    process.exit(1);
  }
}
