// Where does the guest spend its boot? Boots Debian's kernel under tskvm with the monitor on a
// unix socket, samples `info cpus` (the vCPU's RIP, halted or not) once a second, remembers the
// last kernel log line seen at each sample, and at the shell resolves the sampled RIPs to
// symbols with /proc/kallsyms inside the guest (one busybox awk pass over the address-ordered
// list; string compares work because kallsyms addresses are fixed-width lowercase hex). Prints a histogram by symbol and
// a per-phase breakdown by last log line.
//
//   npx tsx scripts/linux/profile-boot.ts [--interval-ms N] [--symbols]
import { connect } from "node:net";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findImages, LinuxSession } from "./session.js";

const argv = process.argv.slice(2);
const intervalMs = Number(argv[argv.indexOf("--interval-ms") + 1] || 1000) || 1000;
const images = findImages();
if (typeof images === "string") {
  console.error(`profile-boot: ${images}`);
  process.exit(2);
}
const sock = join(tmpdir(), `tskvm-profile-${process.pid}.sock`);
rmSync(sock, { force: true });
const s = new LinuxSession({ vmm: "tskvm", kernel: images.vmlinux, initrd: images.initrd, monitor: `unix:${sock},server,nowait` });

interface Sample { pc: string; halted: boolean; phase: string }
const samples: Sample[] = [];
let reply = "";
let ready = false;

const lastLogLine = (): string => {
  const lines = s.output.split(/\r?\n/).filter((l) => l.startsWith("["));
  return (lines[lines.length - 1] ?? "(before the first log line)").replace(/^\[\s*[\d.]+\]\s*/, "").slice(0, 70);
};

async function monitorSocket(): Promise<ReturnType<typeof connect>> {
  let last: unknown = null;
  for (let i = 0; i < 300 && !s.exited; i++) {
    try {
      return await new Promise((res, rej) => {
        const c = connect(sock, () => res(c));
        c.once("error", rej);
      });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  s.kill();
  throw new Error(`cannot connect to ${sock}: ${String(last)}; VMM output:\n${s.output.slice(-2000)}`);
}

const mon = await monitorSocket();
mon.on("data", (b) => {
  reply += b.toString();
  for (let m; (m = /CPU #0: pc=0x([0-9a-f]+)( \(halted\))?/.exec(reply)); ) {
    samples.push({ pc: m[1]!, halted: m[2] !== undefined, phase: lastLogLine() });
    reply = reply.slice(m.index + m[0].length);
  }
});
const timer = setInterval(() => { if (!ready) mon.write("info cpus\n"); }, intervalMs);
try {
  const readyMs = await s.waitReady(30 * 60_000);
  ready = true;
  clearInterval(timer);
  console.log(`start->prompt ${(readyMs / 1000).toFixed(1)} s, ${samples.length} samples`);

  const byPhase = new Map<string, { run: number; halt: number }>();
  const byPc = new Map<string, number>();
  for (const x of samples) {
    const p = byPhase.get(x.phase) ?? { run: 0, halt: 0 };
    if (x.halted) p.halt++; else p.run++;
    byPhase.set(x.phase, p);
    const k = x.halted ? "(halted)" : x.pc;
    byPc.set(k, (byPc.get(k) ?? 0) + 1);
  }
  console.log("\nsamples by last log line (running / halted):");
  for (const [k, v] of [...byPhase].sort((a, b) => b[1].run + b[1].halt - a[1].run - a[1].halt).slice(0, 25)) console.log(`${String(v.run).padStart(5)} ${String(v.halt).padStart(5)}  ${k}`);
  console.log("\nsamples by RIP:");
  for (const [k, v] of [...byPc].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${String(v).padStart(5)}  ${k}`);

  if (argv.includes("--symbols")) {
    // Slow (minutes: the guest formats all of /proc/kallsyms). One linear pass: kallsyms lists
    // the kernel's symbols in address order, so sorted sample addresses need one compare a line.
    const pcs = [...byPc.keys()].filter((k) => k !== "(halted)").sort();
    const out = await s.run(
      `awk -v L="${pcs.join(" ")}" 'BEGIN{n=split(L,a," ");i=1} {while(i<=n && a[i]<$1){print a[i],ps,pa;i++} pa=$1;ps=$3; if(i>n) exit}' /proc/kallsyms`,
      30 * 60_000);
    const bySym = new Map<string, number>();
    for (const line of out.trim().split("\n")) {
      const [pc, sym] = line.trim().split(/\s+/);
      if (pc && sym) bySym.set(sym, (bySym.get(sym) ?? 0) + (byPc.get(pc) ?? 0));
    }
    console.log("\nsamples by symbol:");
    for (const [k, v] of [...bySym].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${String(v).padStart(5)}  ${k}`);
  }
  s.send("poweroff -f\n");
  await s.waitExit(120_000);
} finally {
  clearInterval(timer);
  mon.destroy();
  s.kill();
  rmSync(sock, { force: true });
}
