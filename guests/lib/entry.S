/*
 * Exception/interrupt entry stubs and the ring-3 call helper for library-based guests.
 *
 * Every vector 0-31 gets a stub that pushes a zero error code
 * when the CPU does not push one (SDM Vol 3A 7.3, table 7-1: #DF, #TS, #NP, #SS, #GP, #PF,
 * #AC, #CP push one), then the vector, saves the GPRs and calls the C dispatcher
 * exc_dispatch(struct frame *). The dispatcher may change frame fields (RIP to skip an
 * instruction); the stub restores them and returns with IRET.
 *
 * user_call(fn, arg) runs fn(arg) at CPL 3 and returns its value: IRET to a ring-3
 * trampoline, which calls fn and then executes UD2 at the label user_exit; the #UD stub
 * recognises that address and resumes the kernel context saved by user_call. (Not INT n:
 * kvm_pvm reports a software interrupt from ring 3 as #UD, see tools/kvm-runner/README.md.)
 */
#define HAS_ERR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21)

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
1:
	mov %rsp, %rdi
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
user_exit:
	ud2

	/* 16-byte interrupt gates, present, type 0xE; DPL 3 for #BP/#OF so that int3/into
	   work from ring 3. */
	.globl idt_init
idt_init:
	lea idt(%rip), %rdi
	lea stub_table(%rip), %rsi
	xor %ecx, %ecx
1:	mov (%rsi,%rcx,8), %rax
	mov %ax, (%rdi)
	movw $0x08, 2(%rdi)
	movb $0, 4(%rdi)
	movb $0x8e, 5(%rdi)
	cmp $3, %ecx
	je 2f
	cmp $4, %ecx
	jne 3f
2:	movb $0xee, 5(%rdi)
3:	shr $16, %rax
	mov %ax, 6(%rdi)
	shr $16, %rax
	mov %eax, 8(%rdi)
	movl $0, 12(%rdi)
	add $16, %rdi
	inc %ecx
	cmp $32, %ecx
	jne 1b
	ret

	.section .rodata
	.balign 8
stub_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad stub_\v
	.endr

	.text
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	STUB \v
	.endr

	.data
	.globl idt_desc
idt_desc:
	.word 256*16 - 1
	.quad idt
saved_ksp:
	.quad 0
	.bss
	.balign 16
idt:
	.skip 256*16
	.skip 8192
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
	push %esp		/* placeholder slot; popped into nothing below */
	push %ebx
	push %edx
	push %ecx
	push %eax
	mov %esp, %eax
	push %eax
	call exc_dispatch
	add $4, %esp
	pop %eax
	pop %ecx
	pop %edx
	pop %ebx
	add $4, %esp
	pop %ebp
	pop %esi
	pop %edi
	add $8, %esp
	iret

	.globl idt_init
idt_init:
	mov $idt, %edi
	xor %ecx, %ecx
1:	mov stub_table(,%ecx,4), %eax
	mov %ax, (%edi)
	movw $0x18, 2(%edi)
	movb $0, 4(%edi)
	movb $0x8e, 5(%edi)
	cmp $3, %ecx
	je 2f
	cmp $4, %ecx
	jne 3f
2:	movb $0xee, 5(%edi)
3:	shr $16, %eax
	mov %ax, 6(%edi)
	add $8, %edi
	inc %ecx
	cmp $32, %ecx
	jne 1b
	ret

	.section .rodata
	.balign 4
stub_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.long stub_\v
	.endr

	.text
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	STUB \v
	.endr

	.data
	.globl idt_desc
idt_desc:
	.word 256*8 - 1
	.long idt
	.bss
	.balign 16
idt:
	.skip 256*8
#endif
