# Real mode: exceptions and software interrupts through the interrupt vector table (SDM Vol 3A
# 21.1.4 "Interrupt and Exception Handling" in real-address mode): INT n, INT3, INTO, #DE and
# #UD push FLAGS, CS, IP (IP of the next instruction for INT n/INT3/INTO, of the faulting one
# for #DE/#UD), clear IF/TF, and IRET returns. Also segment:offset arithmetic with a non-zero
# segment base. Prints one line per check on COM1 and ends with OUT 0xf4 (0 = pass).
# tskvm-guest: mode=real16 gpa=0x1000 expect=kvm
	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7000, %sp
	xor %bp, %bp			# failure count

	# IVT entries: vector v at 4*v = offset, segment 0.
	movw $h_de, 0*4
	movw $0, 0*4+2
	movw $h_bp, 3*4
	movw $0, 3*4+2
	movw $h_of, 4*4
	movw $0, 4*4+2
	movw $h_ud, 6*4
	movw $0, 6*4+2
	movw $h_21, 0x21*4
	movw $0, 0x21*4+2

	# INT 0x21: the handler sees the return IP of the next instruction and IF cleared.
	sti
	mov $0x1234, %bx
	int $0x21
after_int21:
	cmp $0x1234 + 1, %bx		# handler incremented BX
	mov $msg_int, %si
	call result
	cmpw $after_int21, saved_ip
	mov $msg_int_ip, %si
	call result
	testw $0x200, saved_flags_in	# IF was clear inside the handler
	setz %al
	cmp $1, %al
	mov $msg_int_if, %si
	call result
	pushf
	pop %ax
	test $0x200, %ax		# and restored by IRET
	setnz %al
	cmp $1, %al
	mov $msg_int_ifret, %si
	call result
	cli

	# INT3: trap, IP after the one-byte instruction.
	int3
after_int3:
	cmpw $after_int3, saved_ip
	mov $msg_bp, %si
	call result

	# INTO with OF=1: trap to vector 4; with OF=0: nothing.
	movw $0, hits
	mov $0x7f, %al
	add $1, %al
	into
after_into:
	cmpw $after_into, saved_ip
	mov $msg_of, %si
	call result
	xor %al, %al
	into
	cmpw $1, hits
	mov $msg_of0, %si
	call result

	# #DE: fault, IP of the DIV; the handler skips the 2-byte DIV.
	xor %dx, %dx
	mov $1, %ax
	xor %cx, %cx
de_at:
	div %cx
	cmpw $de_at, saved_ip
	mov $msg_de, %si
	call result

	# #UD: fault, IP of UD2; the handler skips it.
ud_at:
	ud2
	cmpw $ud_at, saved_ip
	mov $msg_ud, %si
	call result

	# Segment arithmetic: ES=0x0100 addresses linear 0x1000 + offset.
	mov $0x0100, %ax
	mov %ax, %es
	movw $0xbeef, %es:0x5000	# linear 0x6000
	cmpw $0xbeef, 0x6000
	mov $msg_seg, %si
	call result
	xor %ax, %ax
	mov %ax, %es

	test %bp, %bp
	jnz 1f
	mov $msg_pass, %si
	call puts
	xor %al, %al
	out %al, $0xf4
	hlt
1:	mov $msg_fail, %si
	call puts
	mov $1, %al
	out %al, $0xf4
	hlt

# Handlers: record the pushed IP (and FLAGS), count, return.
h_21:	push %bp
	mov %sp, %bp
	mov 2(%bp), %ax
	mov %ax, saved_ip
	pushf
	pop %ax
	mov %ax, saved_flags_in
	inc %bx
	pop %bp
	iret
h_bp:
h_of:	push %bp
	mov %sp, %bp
	mov 2(%bp), %ax
	mov %ax, saved_ip
	incw hits
	pop %bp
	iret
h_de:
h_ud:	push %bp
	mov %sp, %bp
	mov 2(%bp), %ax
	mov %ax, saved_ip
	addw $2, 2(%bp)			# both faulting instructions here are 2 bytes
	pop %bp
	iret

# result: ZF set = ok. Prints "ok <msg>" or "FAIL <msg>" and counts failures.
result:	pushf
	push %si
	jz 1f
	inc %bp
	mov $s_fail, %si
	call puts
	jmp 2f
1:	mov $s_ok, %si
	call puts
2:	pop %si
	call puts
	mov $'\n', %al
	call putc
	popf
	ret
puts:	lodsb
	test %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret
putc:	push %dx
	mov $0x3f8, %dx
	out %al, (%dx)
	pop %dx
	ret

saved_ip:	.word 0
saved_flags_in:	.word 0
hits:		.word 0
s_ok:		.asciz "ok "
s_fail:		.asciz "FAIL "
msg_int:	.asciz "INT 0x21 through the IVT"
msg_int_ip:	.asciz "INT 0x21 pushes the next IP"
msg_int_if:	.asciz "INT clears IF"
msg_int_ifret:	.asciz "IRET restores IF"
msg_bp:		.asciz "INT3 is a trap (next IP)"
msg_of:		.asciz "INTO with OF=1 raises vector 4 (next IP)"
msg_of0:	.asciz "INTO with OF=0 does nothing"
msg_de:		.asciz "#DE is a fault (IP of the DIV)"
msg_ud:		.asciz "#UD is a fault (IP of UD2)"
msg_seg:	.asciz "ES=0x100:0x5000 is linear 0x6000"
msg_pass:	.asciz "result: PASS\n"
msg_fail:	.asciz "result: FAIL\n"
