// Where the CLI gets KVM from: `openKvm()` in src/kvm.ts (the x86 + VMX wiring), opened for a
// host process the VMM lives in. Loaded lazily so that commands which do not run a guest
// (help, report) work in any build, and a build without the backend says so clearly.
import { createHost, type HostProcess } from "../host/process.js";
import type { KvmSystemApi } from "../vmm/kvm_api.js";
import { CliError } from "./args.js";

export interface Backend {
  kvm: KvmSystemApi;
  proc: HostProcess;
}

type OpenKvm = (proc?: HostProcess) => KvmSystemApi;

export async function openBackend(ramBytes: number): Promise<Backend> {
  const modPath = "../kvm.js";
  let mod: { openKvm?: OpenKvm };
  try {
    mod = (await import(modPath)) as { openKvm?: OpenKvm };
  } catch (e) {
    throw new CliError(`the KVM backend (src/kvm.ts: openKvm) is not available in this build: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
  }
  if (typeof mod.openKvm !== "function") throw new CliError("src/kvm.ts does not export openKvm()");
  // Host RAM is allocated on demand; leave headroom for page tables and the VMM's own mappings.
  const host = createHost({ memBytes: Math.max(4 * 1024 ** 3, ramBytes + 1024 ** 3) });
  const proc = host.createProcess("tskvm");
  return { kvm: mod.openKvm(proc), proc };
}
