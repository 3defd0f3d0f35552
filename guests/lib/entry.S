/*
 * Exception/interrupt entry stubs and the ring-3 call helper for library-based guests.
 *
 * Vectors 0-31 and the software-interrupt vectors 0x40 (gate DPL 0) and 0x41 (gate DPL 3)
 * get a stub that pushes a zero error code when the CPU does not push one (SDM Vol 3A 7.3,
 * table 7-1: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP push one), then the vector, saves the GPRs
 * and calls the C dispatcher exc_dispatch(struct frame *). The dispatcher may change frame
 * fields (the IP, to resume elsewhere); the stub restores them and returns with IRET.
 * Gates are interrupt gates (IF cleared on entry); #BP, #OF and 0x41 have DPL 3 so that INT3,
 * INTO and INT 0x41 work from ring 3.
 *
 * user_call(fn, arg) runs fn(arg) at CPL 3 and returns its value: IRET to a ring-3
 * trampoline, which calls fn and then executes UD2 at the label user_exit; the #UD stub
 * recognises that address and resumes the kernel context saved by user_call. (Not INT n:
 * kvm_pvm reports a software interrupt from ring 3 as #UD, see tools/kvm-runner/README.md.)
 */
#define HAS_ERR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21)
#define GATE_DPL0 0x8e
#define GATE_DPL3 0xee

	/* One gate_table entry: the stub's address, then vector | gate attributes << 8. */
	.macro GATE v, word
	\word stub_\v
	.if (\v == 3) || (\v == 4) || (\v == 0x41)
	\word \v | (GATE_DPL3 << 8)
	.else
	\word \v | (GATE_DPL0 << 8)
	.endif
	.endm


	/* The gate table, the stubs (STUB of the mode being built), the IDT and its descriptor, the
	   saved kernel stack pointer and the ring-3 stack. `word` is the pointer size, `gate` the
	   IDT entry size. */
#define VECTORS 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,0x40,0x41
	.macro IDT_TABLES word, gate
	.section .rodata
	.balign 8
gate_table:
	.irp v, VECTORS
	GATE \v, \word
	.endr
	\word 0, 0

	.text
	.irp v, VECTORS
	STUB \v
	.endr

	.data
	.globl idt_desc
idt_desc:
	.word 256*\gate - 1
	\word idt
saved_ksp:
	\word 0
	.bss
	.balign 16
idt:
	.skip 256*\gate
	.skip 8192
	.endm

	.text
#ifdef LONG
	.code64
	.macro STUB v
	.balign 16
stub_\v:
	.if !HAS_ERR(\v)
	pushq $0
	.endif
	pushq $\v
	jmp exc_common
	.endm

exc_common:
	push %r15
	push %r14
	push %r13
	push %r12
	push %r11
	push %r10
	push %r9
	push %r8
	push %rbp
	push %rdi
	push %rsi
	push %rdx
	push %rcx
	push %rbx
	push %rax
	cmpq $6, 15*8(%rsp)
	jne 1f
	lea user_exit(%rip), %rax
	cmp %rax, 17*8(%rsp)
	je user_return
	mov (%rsp), %rax
1:	mov %rsp, %rdi
	call exc_dispatch
	pop %rax
	pop %rbx
	pop %rcx
	pop %rdx
	pop %rsi
	pop %rdi
	pop %rbp
	pop %r8
	pop %r9
	pop %r10
	pop %r11
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	add $16, %rsp
	iretq

	/* UD2 at user_exit in the ring-3 trampoline: the user function's result is in RDI. */
user_return:
	mov 5*8(%rsp), %rax
	mov saved_ksp(%rip), %rsp
	/* IRETQ to ring 3 nulled the DPL-0 data selectors (SDM IRET); load them again as a kernel
	   does, so exits after a user_call report the same selectors on every implementation
	   (kvm_pvm does not null them, tools/kvm-runner/README.md). */
	mov $0x10, %ecx
	mov %ecx, %ds
	mov %ecx, %es
	mov %ecx, %fs
	mov %ecx, %gs
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

	.globl user_call
user_call:			/* long user_call(long (*fn)(long), long arg) */
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, saved_ksp(%rip)
	mov %rdi, %rax
	mov %rsi, %rdi
	pushq $0x23			/* SS: data DPL3 */
	pushq $ustack_top
	pushq $0x2			/* RFLAGS: IF=0, IOPL=0 */
	pushq $0x2b			/* CS: code64 DPL3 */
	pushq $user_trampoline
	iretq

user_trampoline:
	call *%rax
	mov %rax, %rdi
	.globl user_exit
user_exit:
	ud2

	/* 16-byte interrupt gates from gate_table: {stub, vector | attributes << 8}. */
	.globl idt_init
idt_init:
	lea gate_table(%rip), %rsi
1:	mov (%rsi), %rax
	test %rax, %rax
	jz 2f
	movzbl 8(%rsi), %ecx
	shl $4, %ecx
	lea idt(%rip), %rdi
	add %rcx, %rdi
	mov %ax, (%rdi)
	movw $0x08, 2(%rdi)
	movb $0, 4(%rdi)
	movb 9(%rsi), %cl
	movb %cl, 5(%rdi)
	shr $16, %rax
	mov %ax, 6(%rdi)
	shr $16, %rax
	mov %eax, 8(%rdi)
	movl $0, 12(%rdi)
	add $16, %rsi
	jmp 1b
2:	ret

	IDT_TABLES .quad, 16
ustack_top:

#else /* 32-bit */
	.code32
	.macro STUB v
	.balign 16
stub_\v:
	.if !HAS_ERR(\v)
	pushl $0
	.endif
	pushl $\v
	jmp exc_common
	.endm

exc_common:
	push %edi
	push %esi
	push %ebp
	push %esp		/* placeholder slot (struct frame.esp_unused) */
	push %ebx
	push %edx
	push %ecx
	push %eax
	mov $0x10, %ax		/* kernel data, whatever ring 3 left in DS/ES */
	mov %ax, %ds
	mov %ax, %es
	cmpl $6, 8*4(%esp)
	jne 1f
	cmpl $user_exit, 10*4(%esp)
	je user_return
1:	mov (%esp), %eax
	push %esp
	call exc_dispatch
	add $4, %esp
	/* Returning to ring 3: its data segments must be usable there (DPL 3). */
	testl $3, 11*4(%esp)
	jz 2f
	mov $0x23, %ax
	mov %ax, %ds
	mov %ax, %es
2:	pop %eax
	pop %ecx
	pop %edx
	pop %ebx
	add $4, %esp
	pop %ebp
	pop %esi
	pop %edi
	add $8, %esp
	iret

	/* UD2 at user_exit in the ring-3 trampoline: the user function's result is in EDI. */
user_return:
	mov 7*4(%esp), %eax
	mov saved_ksp, %esp
	pop %edi
	pop %esi
	pop %ebx
	pop %ebp
	ret

	.globl user_call
user_call:			/* long user_call(long (*fn)(long), long arg): cdecl */
	mov 4(%esp), %eax
	mov 8(%esp), %edx
	push %ebp
	push %ebx
	push %esi
	push %edi
	mov %esp, saved_ksp
	mov $0x23, %cx
	mov %cx, %ds
	mov %cx, %es
	pushl $0x23			/* SS: data DPL3 */
	pushl $ustack_top
	pushl $0x2			/* EFLAGS: IF=0, IOPL=0 */
	pushl $0x33			/* CS: code32 DPL3 */
	pushl $user_trampoline
	iret

user_trampoline:
	push %edx
	call *%eax
	add $4, %esp
	mov %eax, %edi
	.globl user_exit
user_exit:
	ud2

	/* 8-byte interrupt gates from gate_table: {stub, vector | attributes << 8}. */
	.globl idt_init
idt_init:
	mov $gate_table, %esi
1:	mov (%esi), %eax
	test %eax, %eax
	jz 2f
	movzbl 4(%esi), %ecx
	lea idt(,%ecx,8), %edi
	mov %ax, (%edi)
	movw $0x18, 2(%edi)
	movb $0, 4(%edi)
	movb 5(%esi), %cl
	movb %cl, 5(%edi)
	shr $16, %eax
	mov %ax, 6(%edi)
	add $8, %esi
	jmp 1b
2:	ret

	IDT_TABLES .long, 8
ustack_top:
#endif
