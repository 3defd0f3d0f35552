// The tskvm command: run / demo / stat / report / help. User mistakes print one line and
// exit 1; a guest's ending decides the exit status of run/demo/stat.
import { readFileSync } from "node:fs";
import { VmmError } from "../vmm/error.js";
import { DEMO_LOAD_ADDR, demoGuestImage } from "../vmm/demo_guest.js";
import { CliError, defaultRunOptions, parseRunArgs, USAGE } from "./args.js";
import { analyzeTrace, formatReport } from "./report.js";
import { runVm } from "./run.js";

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
      return runVm(o, { flat: [{ file: { name: "demo", data: demoGuestImage() }, addr: DEMO_LOAD_ADDR, mode: "real" }] });
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
