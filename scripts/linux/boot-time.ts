// Time from start to the busybox shell prompt for Debian's kernel (scripts/linux/fetch.sh
// images), under tskvm and under qemu-system-x86_64 -accel tcg with the same vmlinux (PVH
// entry), initramfs and command line. Measured, never asserted. Each boot then runs `uname -r`
// and powers off.
//
//   npx tsx scripts/linux/boot-time.ts [--runs N] [--only tskvm|qemu] [--append-results]
//
// --append-results appends a dated table to bench/RESULTS.md's "Linux boot" section.
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cpus } from "node:os";
import { DEFAULT_APPEND, findImages, haveQemu, LinuxSession, REPO } from "./session.js";

const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf("--runs") + 1] || 1) || 1;
const only = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : null;
const images = findImages();
if (typeof images === "string") {
  console.error(`boot-time: ${images}`);
  process.exit(2);
}

interface Sample { vmm: "tskvm" | "qemu"; readyMs: number; totalMs: number; kernel: string }

async function once(vmm: "tskvm" | "qemu"): Promise<Sample> {
  const img = images as Exclude<typeof images, string>;
  const s = new LinuxSession({ vmm, kernel: img.vmlinux, initrd: img.initrd });
  try {
    const readyMs = await s.waitReady(30 * 60_000);
    const kernel = (await s.run("uname -r", 120_000)).trim();
    s.send("poweroff -f\n");
    await s.waitExit(120_000);
    return { vmm, readyMs, totalMs: performance.now() - s.startedAt, kernel };
  } finally {
    s.kill();
  }
}

const vmms: Array<"tskvm" | "qemu"> = [];
if (only !== "qemu") vmms.push("tskvm");
if (only !== "tskvm") {
  if (haveQemu()) vmms.push("qemu");
  else console.error("boot-time: qemu-system-x86_64 not found (bench/setup.sh installs it); tskvm only");
}
const samples: Sample[] = [];
for (let i = 0; i < runs; i++) {
  for (const vmm of vmms) {
    const s = await once(vmm);
    console.log(`${vmm.padEnd(6)} start->prompt ${(s.readyMs / 1000).toFixed(1)} s   start->poweroff ${(s.totalMs / 1000).toFixed(1)} s   (${s.kernel})`);
    samples.push(s);
  }
}

const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v[v.length >> 1];
};
const med = (vmm: string): number | null => {
  const xs = samples.filter((s) => s.vmm === vmm).map((s) => s.readyMs);
  return xs.length ? median(xs) : null;
};
const t = med("tskvm"), q = med("qemu");
if (t !== null && q !== null) console.log(`ratio tskvm/qemu-tcg: ${(t / q).toFixed(1)}x`);

if (argv.includes("--append-results")) {
  const path = join(REPO, "bench/RESULTS.md");
  const heading = "## Linux boot (scripts/linux/boot-time.ts)";
  const lines: string[] = [];
  if (!readFileSync(path, "utf8").includes(heading)) {
    lines.push("", heading, "",
      "Debian bookworm's linux-image-amd64 (the vmlinux from its bzImage, PVH entry) with a busybox",
      "initramfs, `-m 512M -smp 1`, append `" + DEFAULT_APPEND + "`; time from spawning",
      "the VMM to the shell's READY marker on ttyS0. QEMU runs the same vmlinux with `-accel tcg",
      "-cpu max`. Host: a shared machine (other jobs running), so single runs are noisy.", "");
  }
  const kernel = samples[0]?.kernel ?? "?";
  lines.push(`### ${new Date().toISOString().slice(0, 16)}Z, ${runs} run(s) each, kernel ${kernel}, ${cpus().length} host cores`, "",
    "| VMM | start->prompt (median) | runs |", "|---|---|---|");
  for (const vmm of vmms) {
    const xs = samples.filter((s) => s.vmm === vmm).map((s) => (s.readyMs / 1000).toFixed(1) + " s");
    lines.push(`| ${vmm === "qemu" ? "qemu-system-x86_64 -accel tcg" : "tskvm"} | ${((med(vmm) ?? 0) / 1000).toFixed(1)} s | ${xs.join(", ")} |`);
  }
  if (t !== null && q !== null) lines.push("", `tskvm / QEMU TCG: **${(t / q).toFixed(1)}x**`);
  lines.push("");
  appendFileSync(path, lines.join("\n"));
  console.log(`appended to ${path}`);
}
