import type { E820Entry } from "../machine/e820.js";

/** A file handed to a loader (the CLI reads it; browsers fetch it). */
export interface BootFile {
  name: string;
  data: Uint8Array;
}

/** What a kernel loader needs to know about the machine and the user's request. */
export interface KernelLoadOptions {
  kernel: BootFile;
  /** -append */
  cmdline: string;
  /** -initrd: a Linux initrd, or multiboot modules (one per file). */
  initrds: BootFile[];
  e820: readonly E820Entry[];
  /** Guest-physical address of the ACPI RSDP (0 if none). */
  rsdp: number;
}
