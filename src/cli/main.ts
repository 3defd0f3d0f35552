// The tskvm command: run / demo / stat / report / help. User mistakes print one line and
// exit 1; a guest's ending decides the exit status of run/demo/stat.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { KVM_CAP_IRQCHIP } from "../uapi/kvm.js";
import type { PcConfig } from "../vmm/machine/pc.js";
import { VmmError } from "../vmm/error.js";
import { DEMO_LOAD_ADDR, demoGuestImage } from "../vmm/demo_guest.js";
import { CliError, defaultRunOptions, parseRunArgs, USAGE } from "./args.js";
import { analyzeTrace, formatReport } from "./report.js";
import { runVm } from "./run.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** guests/demo/demo.S as built by scripts/build-guests.mjs (built now if the toolchain is there), or null. */
async function guestsDemo(): Promise<PcConfig["flat"][number] | null> {
  const manifest = join(ROOT, "guests/build/demo/demo.json");
  if (!existsSync(manifest)) {
    try {
      const build = (await import(pathToFileURL(join(ROOT, "scripts/build-guests.mjs")).href)) as { buildGuests(o: { filter: string }): unknown };
      build.buildGuests({ filter: "demo/demo" });
    } catch {
      return null; // no toolchain or no guests/ tree: the built-in demo will do
    }
  }
  try {
    const m = JSON.parse(readFileSync(manifest, "utf8")) as { bin: string; gpa: number; entry: number; mode: string };
    if (m.mode !== "real16" || m.entry !== m.gpa) return null;
    return { file: { name: "guests/demo/demo.S", data: new Uint8Array(readFileSync(join(ROOT, m.bin))) }, addr: m.gpa, mode: "real" };
  } catch {
    return null;
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case "help":
    case "-h":
    case "--help":
      process.stdout.write(USAGE + "\n");
      return cmd === undefined ? 1 : 0;
    case "run":
      return runVm(parseRunArgs(rest));
    case "stat":
      return runVm(parseRunArgs(rest, true), { stat: true });
    case "demo": {
      if (rest.length) throw new CliError(`demo takes no arguments (got '${rest.join(" ")}')`);
      const o = defaultRunOptions();
      o.ramBytes = 16 * 1024 * 1024;
      const tour = await guestsDemo();
      return runVm(o, {
        flat: (kvm) => {
          // The guests/ demo tours real -> protected -> long mode and takes PIT interrupts, so it
          // needs the in-kernel irqchip; without one (or without a toolchain) the built-in demo runs.
          if (tour && kvm.checkExtension(KVM_CAP_IRQCHIP)) return [tour];
          return [{ file: { name: "demo", data: demoGuestImage() }, addr: DEMO_LOAD_ADDR, mode: "real" }];
        },
      });
    }
    case "report": {
      if (rest.length !== 1) throw new CliError("usage: tskvm report TRACE-FILE");
      let text: string;
      try {
        text = readFileSync(rest[0]!, "utf8");
      } catch {
        throw new CliError(`report: cannot read '${rest[0]}'`);
      }
      const r = analyzeTrace(text);
      if (r.stats.length === 0) throw new CliError(`report: no kvm_exit/kvm_entry pairs in '${rest[0]}' (record with: tskvm run --trace=kvm_exit,kvm_entry ...)`);
      process.stdout.write(formatReport(r) + "\n");
      return 0;
    }
    default:
      throw new CliError(`unknown command '${cmd}' (run, demo, stat, report, help)`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof CliError || e instanceof VmmError) {
    process.stderr.write(`tskvm: ${e.message}\n`);
    process.exitCode = 1;
  } else if (e instanceof Error && e.name === "KvmError") {
    process.stderr.write(`tskvm: KVM: ${e.message}\n`);
    process.exitCode = 1;
  } else {
    throw e;
  }
}
