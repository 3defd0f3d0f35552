/*
 * Boot stub for the library-based guests (guests/<area>/*.c and *.S that link with lib).
 *
 * Entry: 32-bit protected mode with flat segments and paging off, as the Multiboot spec
 * (version 0.6.96, section 3.2 "Machine state") leaves the machine. The same image therefore
 * boots from QEMU's -kernel, tskvm's multiboot loader, or kvm-runner's "--mode prot32" preset.
 *
 * Assembled twice by scripts/build-guests.mjs: with --32 for 32-bit guests and with --64
 * plus "--defsym LONG=1" for 64-bit guests, which go on to long mode (SDM Vol 3A 10.8.5
 * "Initializing IA-32e Mode"): PAE page tables identity-mapping the first 1 GiB with 2 MiB
 * pages (U/S set, so ring-3 code can run anywhere in the image), EFER.LME, CR0.PG.
 *
 * GDT layout (shared with tools/kvm-runner presets and test/diff/):
 *   0x08 code64 DPL0, 0x10 data DPL0, 0x18 code32 DPL0, 0x20 data DPL3, 0x28 code64 DPL3,
 *   0x30 code32 DPL3, 0x38 TSS (16 bytes in long mode), 0x48 code16 DPL0, 0x50 data16 DPL0.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00010000 /* bit 16: the address fields below are valid (a flat image) */

	.section .text.boot, "ax"
	.code32
	.globl _start
_start:
	jmp entry32

	.balign 4
mb_header:
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	.long mb_header, _start, _edata, _end, entry32

entry32:
	cli
	cld
	lgdt gdt_desc
	ljmp $0x18, $1f
1:	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	mov $kstack_top, %esp

	/* TSS descriptor at 0x38: base = tss, limit = 0x67, type 9 (available 32/64-bit TSS). */
	mov $tss, %eax
	mov %ax, gdt + 0x38 + 2
	shr $16, %eax
	mov %al, gdt + 0x38 + 4
	mov %ah, gdt + 0x38 + 7
	movw $0x67, gdt + 0x38
	movb $0x89, gdt + 0x38 + 5

#ifdef LONG
	/* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB | PS|U|W|P. Tables live in .bss. */
	mov $pml4, %edi
	xor %eax, %eax
	mov $(3 * 1024), %ecx
	rep stosl
	mov $pdpt, %eax
	or $7, %eax
	mov %eax, pml4
	mov $pd, %eax
	or $7, %eax
	mov %eax, pdpt
	mov $pd, %edi
	mov $0x87, %eax
	mov $512, %ecx
2:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 2b
	mov $pml4, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax		/* PAE */
	mov %eax, %cr4
	mov $0xc0000080, %ecx	/* IA32_EFER */
	rdmsr
	or $0x100, %eax		/* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80010000, %eax	/* PG | WP */
	mov %eax, %cr0
	ljmp $0x08, $entry64

	.code64
entry64:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	mov $kstack_top, %rsp
	movq $istack_top, tss + 4	/* RSP0: the stack for interrupts from ring 3 */
	mov $0x38, %ax
	ltr %ax
	call idt_init
	lidt idt_desc
	call main
	mov %eax, %edi
	call guest_exit
3:	hlt
	jmp 3b
#else
	movl $istack_top, tss + 4	/* ESP0 */
	movl $0x10, tss + 8		/* SS0 */
	mov $0x38, %ax
	ltr %ax
	call idt_init
	lidt idt_desc
	call main
	push %eax
	call guest_exit
3:	hlt
	jmp 3b
#endif

	.section .data
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00af9b000000ffff	/* 0x08 code64 DPL0 */
	.quad 0x00cf93000000ffff	/* 0x10 data DPL0 */
	.quad 0x00cf9b000000ffff	/* 0x18 code32 DPL0 */
	.quad 0x00cff3000000ffff	/* 0x20 data DPL3 */
	.quad 0x00affb000000ffff	/* 0x28 code64 DPL3 */
	.quad 0x00cffb000000ffff	/* 0x30 code32 DPL3 */
	.quad 0, 0			/* 0x38 TSS (filled at boot) */
	.quad 0x00009b000000ffff	/* 0x48 code16 DPL0 */
	.quad 0x000093000000ffff	/* 0x50 data16 DPL0 */
	.globl gdt_spare
gdt_spare:
	.quad 0, 0, 0, 0		/* 0x58..0x70: free for guests (call gates, test descriptors) */
gdt_end:
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
	.long 0

	.globl tss
	.balign 16
tss:
	.fill 104, 1, 0

	.section .bss
	.balign 4096
#ifdef LONG
	.globl pml4, pdpt, pd
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
#endif
	.globl kstack_top
	.skip 16384
kstack_top:
	/* Separate ring-0 stack for entries from ring 3, so they never land on frames in use. */
	.skip 8192
istack_top:
