# The smallest guest: 16-bit real mode at 0x1000. Prints the digit AL+BL and a newline on
# COM1, then halts. Run with AL=2, BL=3 (rax=2 rbx=3) it prints "5\n".
# tskvm-guest: mode=real16 gpa=0x1000 regs=rax:2,rbx:3 expect=kvm
	.code16
	.globl _start
_start:
	mov $0x3f8, %dx
	add %bl, %al
	add $'0', %al
	out %al, (%dx)
	mov $'\n', %al
	out %al, (%dx)
	hlt
