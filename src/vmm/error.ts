/**
 * The VMM's error for things a user got wrong or a guest image that cannot be used (bad
 * option, corrupt ELF, overlapping device ranges). The CLI prints `message` without a stack.
 */
export class VmmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VmmError";
  }
}
