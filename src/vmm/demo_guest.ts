/**
 * The demo guest `tskvm demo` boots: 16-bit real-mode code at 0x1000 that prints a banner
 * on COM1 one byte per OUT (each one a KVM_EXIT_IO), then powers the machine off through the
 * ACPI PM1a control register (SLP_TYP 0 | SLP_EN), which the VMM turns into a clean exit.
 *
 *   1000: be 18 10     mov  $msg, %si
 *   1003: ba f8 03     mov  $0x3f8, %dx
 *   1006: 8a 04        mov  (%si), %al
 *   1008: 46           inc  %si
 *   1009: 84 c0        test %al, %al
 *   100b: 74 03        jz   1010
 *   100d: ee           out  %al, (%dx)
 *   100e: eb f6        jmp  1006
 *   1010: ba 04 06     mov  $0x604, %dx
 *   1013: b8 00 20     mov  $0x2000, %ax      (SLP_TYP 0 = S5, SLP_EN)
 *   1016: ef           out  %ax, (%dx)
 *   1017: f4           hlt
 *   1018: msg
 */
export const DEMO_LOAD_ADDR = 0x1000;

export const DEMO_MESSAGE =
  "Hello from a real-mode guest on tskvm!\n" +
  "Every byte of this line left the guest as an OUT to port 0x3f8,\n" +
  "a VMX I/O-instruction exit turned into KVM_EXIT_IO for the VMM's 16550A UART.\n" +
  "Powering off through ACPI S5...\n";

export function demoGuestImage(): Uint8Array {
  const code = [0xbe, 0x18, 0x10, 0xba, 0xf8, 0x03, 0x8a, 0x04, 0x46, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf6, 0xba, 0x04, 0x06, 0xb8, 0x00, 0x20, 0xef, 0xf4];
  const msg = new TextEncoder().encode(DEMO_MESSAGE + "\0");
  const img = new Uint8Array(code.length + msg.length);
  img.set(code);
  img.set(msg, code.length);
  return img;
}
