/**
 * Guest RAM the way kvmtool sets it up: anonymous mappings in the VMM process (mmap ->
 * host virtual address), registered with KVM_SET_USER_MEMORY_REGION as slot 0 (RAM below
 * the PCI hole) and slot 1 (RAM above 4 GiB). Loaders write through the mapping, as a C VMM
 * writes through its pointer.
 */
import type { MmStruct } from "../../host/mm.js";
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE } from "../../uapi/mman.js";
import { VmmError } from "../error.js";
import type { GuestMemory } from "../guest_memory.js";
import type { KvmVmApi } from "../kvm_api.js";
import { FOUR_GIB, splitRam } from "./e820.js";

export interface RamSlot {
  slot: number;
  gpa: number;
  size: number;
  hva: number;
}

export class GuestRam implements GuestMemory {
  readonly slots: RamSlot[] = [];

  constructor(
    private readonly mm: MmStruct,
    readonly ramSize: number,
  ) {
    const { below4g, above4g } = splitRam(ramSize);
    this.map(0, 0, below4g);
    if (above4g > 0) this.map(1, FOUR_GIB, above4g);
  }

  private map(slot: number, gpa: number, size: number): void {
    const hva = this.mm.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    this.slots.push({ slot, gpa, size, hva });
  }

  /** KVM_SET_USER_MEMORY_REGION for every RAM slot. */
  register(vm: KvmVmApi): void {
    for (const s of this.slots) {
      vm.setUserMemoryRegion({ slot: s.slot, flags: 0, guest_phys_addr: BigInt(s.gpa), memory_size: BigInt(s.size), userspace_addr: BigInt(s.hva) });
    }
  }

  /** The host virtual address of `gpa` with at least `len` bytes in the same slot, or -1. */
  gpaToHva(gpa: number, len = 1): number {
    for (const s of this.slots) if (gpa >= s.gpa && gpa + len <= s.gpa + s.size) return s.hva + (gpa - s.gpa);
    return -1;
  }

  write(gpa: number, bytes: Uint8Array): void {
    const hva = this.gpaToHva(gpa, bytes.length);
    if (hva < 0) throw new VmmError(`0x${bytes.length.toString(16)} bytes at guest address 0x${gpa.toString(16)} are outside guest RAM (${this.ramSize / 1048576} MiB)`);
    this.mm.copyToUser(hva, bytes);
  }

  read(gpa: number, len: number): Uint8Array {
    const hva = this.gpaToHva(gpa, len);
    if (hva < 0) throw new VmmError(`0x${len.toString(16)} bytes at guest address 0x${gpa.toString(16)} are outside guest RAM`);
    return this.mm.copyFromUser(hva, len);
  }

  /** pc-testdev's flush-page: drop and restore access to the host page, firing the mmu notifiers. */
  flushPage(gpa: number): void {
    const hva = this.gpaToHva(gpa, 4096);
    if (hva < 0) return; // not RAM: nothing to flush (QEMU maps nothing either)
    this.mm.mprotect(hva, 4096, PROT_NONE);
    this.mm.mprotect(hva, 4096, PROT_READ | PROT_WRITE);
  }

  unmap(): void {
    for (const s of this.slots) this.mm.munmap(s.hva, s.size);
    this.slots.length = 0;
  }
}
