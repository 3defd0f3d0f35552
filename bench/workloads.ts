/**
 * The bench workloads: which guest (guests/bench/<guest>.c, 64-bit build), which ring its timed
 * loop runs in, how much work each peer does (the scale patched into the image), and the phases
 * the guest reports. Peers run different amounts of work so each phase lasts long enough to
 * time; rates (units/s) are what get compared.
 */
export type PeerName = "tskvm" | "kvm" | "qemu";

export interface Workload {
  name: string;
  guest: string;
  /** Ring of the timed loop (kvm_pvm runs ring 3 natively and emulates ring 0). */
  ring: string;
  what: string;
  /** Scale per peer: full run, then --short. */
  scale: Record<PeerName, [number, number]>;
  /** Timed phases the guest prints (@begin/@end); empty: boot latency (first serial byte). */
  phases: string[];
  /**
   * Peers whose ratio the --short regression check uses (default: all). TCG has no VM exits (its
   * OUT/MMIO is a helper call whose speed swings 2x run to run), so exit ratios gate on KVM only;
   * boot latencies (JIT and GC dominated, 3x swings between runs) are reported, never gated.
   */
  gatePeers?: PeerName[];
  /** Run once unmeasured first (tskvm: the JS engine has then compiled the whole path). */
  warmup?: boolean;
}

export const WORKLOADS: Workload[] = [
  {
    name: "boot", guest: "boot", ring: "0", what: "createVm() to first serial byte (QEMU: process spawn to first byte)",
    scale: { tskvm: [1, 1], kvm: [1, 1], qemu: [1, 1] }, phases: [], gatePeers: [],
  },
  {
    name: "boot-warm", guest: "boot", ring: "0", what: "the same, measured on a second run (tskvm: same process, second VM)",
    scale: { tskvm: [1, 1], kvm: [1, 1], qemu: [1, 1] }, phases: [], warmup: true, gatePeers: [],
  },
  {
    name: "int", guest: "int", ring: "3", what: "integer loop, 8 instructions/iteration",
    scale: { tskvm: [20, 4], kvm: [400, 100], qemu: [100, 20] }, phases: ["int"],
  },
  {
    name: "mem", guest: "mem", ring: "3", what: "pointer chase over 32 MiB, a node per 256 B",
    scale: { tskvm: [2, 1], kvm: [10, 4], qemu: [10, 4] }, phases: ["mem"],
  },
  {
    name: "branchy", guest: "branchy", ring: "3", what: "bytecode interpreter (switch dispatch), Collatz program",
    scale: { tskvm: [10, 3], kvm: [400, 100], qemu: [100, 20] }, phases: ["branchy"],
  },
  {
    name: "fp", guest: "fp", ring: "3", what: "SSE2 double: 32x32 matmul + 256-point FFT",
    scale: { tskvm: [1, 1], kvm: [1000, 200], qemu: [100, 20] }, phases: ["fp"],
  },
  {
    name: "exits", guest: "exits", ring: "0 (PIO), 3 (MMIO)", what: "OUT to port 0x80; MMIO write to an unbacked GPA; at N and 4N",
    scale: { tskvm: [2, 1], kvm: [4, 2], qemu: [2000, 1000] }, phases: ["pio-1x", "pio-4x", "mmio-1x", "mmio-4x"],
    gatePeers: ["kvm"],
  },
  {
    name: "pagefault", guest: "pagefault", ring: "3", what: "first write to each 4 KiB page of fresh RAM, 8 MiB then 32 MiB",
    scale: { tskvm: [1, 1], kvm: [1, 1], qemu: [1, 1] }, phases: ["pf-8M", "pf-32M"],
  },
];
