/*
 * tskvm-guest: mode=real16 gpa=0x8000 mem=0x400000
 *
 * The demo guest behind `npm start` / `tskvm demo`: a machine's whole climb from reset to long
 * mode, reported on the 16550A UART at 0x3f8.
 *   1. real mode (CS:IP = 0:0x8000, as a loader of flat images leaves it)
 *   2. 32-bit protected mode with a flat GDT (SDM Vol. 3A 9.9.1 "Switching to Protected Mode")
 *   3. IA-32e mode: PAE paging with 2 MiB identity pages, EFER.LME, CR0.PG (SDM 9.8.5)
 *   4. CPUID's hypervisor leaf (0x40000000: "KVMKVMKVM")
 *   5. the 8259 PICs remapped to vectors 0x20-0x2f, the 8254 PIT at 100 Hz on IRQ 0, 25 timer
 *      interrupts taken while sleeping in HLT
 *   6. power-off through the ACPI PM1a control register (SLP_TYP=S5 | SLP_EN)
 */
        .equ    COM1, 0x3f8
        .equ    PM1A_CNT, 0x604
        .equ    TICKS, 25
        .equ    PML4, 0x10000
        .equ    PDPT, 0x11000
        .equ    PD, 0x12000
        .code16
        .globl _start
_start:
        cli
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $0x7000, %sp
        movw    $msg_real, %si
1:      lodsb
        testb   %al, %al
        jz      2f
        movw    %ax, %bx
        movw    $COM1 + 5, %dx
3:      inb     %dx, %al                /* LSR.THRE: transmitter ready */
        testb   $0x20, %al
        jz      3b
        movw    %bx, %ax
        movw    $COM1, %dx
        outb    %al, %dx
        jmp     1b
2:      lgdtl   gdt_desc
        movl    %cr0, %eax
        orl     $1, %eax                /* CR0.PE */
        movl    %eax, %cr0
        ljmpl   $0x08, $pm32

        .code32
pm32:   movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movl    $0x7000, %esp
        movl    $msg_pm, %esi
        call    puts32

        /* Identity-map the first 1 GiB with 2 MiB pages. */
        movl    $PML4, %edi
        xorl    %eax, %eax
        movl    $(3 * 4096 / 4), %ecx
        rep stosl
        movl    $(PDPT | 3), PML4
        movl    $(PD | 3), PDPT
        movl    $PD, %edi
        movl    $0x83, %eax             /* P | RW | PS */
        movl    $512, %ecx
4:      movl    %eax, (%edi)
        addl    $0x200000, %eax
        addl    $8, %edi
        loop    4b

        movl    %cr4, %eax
        orl     $0x20, %eax             /* CR4.PAE */
        movl    %eax, %cr4
        movl    $PML4, %eax
        movl    %eax, %cr3
        movl    $0xc0000080, %ecx       /* IA32_EFER */
        rdmsr
        orl     $0x100, %eax            /* LME */
        wrmsr
        movl    %cr0, %eax
        orl     $0x80000000, %eax       /* CR0.PG: activates IA-32e mode */
        movl    %eax, %cr0
        ljmpl   $0x18, $lm64

puts32: lodsb
        testb   %al, %al
        jz      2f
        movb    %al, %bl
        movw    $COM1 + 5, %dx
1:      inb     %dx, %al
        testb   $0x20, %al
        jz      1b
        movb    %bl, %al
        movw    $COM1, %dx
        outb    %al, %dx
        jmp     puts32
2:      ret

        .code64
lm64:   movw    $0x20, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movq    $0x7000, %rsp
        leaq    msg_lm(%rip), %rsi
        call    puts

        /* CPUID leaf 0x40000000: the hypervisor's signature in EBX, ECX, EDX. */
        leaq    msg_hv(%rip), %rsi
        call    puts
        movl    $0x40000000, %eax
        cpuid
        leaq    sig(%rip), %rdi
        movl    %ebx, 0(%rdi)
        movl    %ecx, 4(%rdi)
        movl    %edx, 8(%rdi)
        movq    %rdi, %rsi
        call    puts
        leaq    msg_nl(%rip), %rsi
        call    puts

        /* IDT: vector 0x20 -> timer handler, 0x27 -> spurious (IRET only). */
        leaq    timer(%rip), %rax
        movl    $0x20, %ecx
        call    set_gate
        leaq    spurious(%rip), %rax
        movl    $0x27, %ecx
        call    set_gate
        lidt    idt_desc(%rip)

        /* 8259A: ICW1 edge+cascade+ICW4, ICW2 vector bases, ICW3 wiring, ICW4 8086 mode. */
        movb    $0x11, %al
        outb    %al, $0x20
        outb    %al, $0xa0
        movb    $0x20, %al
        outb    %al, $0x21
        movb    $0x28, %al
        outb    %al, $0xa1
        movb    $0x04, %al
        outb    %al, $0x21
        movb    $0x02, %al
        outb    %al, $0xa1
        movb    $0x01, %al
        outb    %al, $0x21
        outb    %al, $0xa1
        movb    $0xfe, %al              /* OCW1: only IRQ 0 unmasked */
        outb    %al, $0x21
        movb    $0xff, %al
        outb    %al, $0xa1

        /* 8254 channel 0, lobyte/hibyte, mode 2 (rate generator), 1193182 Hz / 11932 = 100 Hz. */
        movb    $0x34, %al
        outb    %al, $0x43
        movb    $(11932 & 0xff), %al
        outb    %al, $0x40
        movb    $(11932 >> 8), %al
        outb    %al, $0x40

        leaq    msg_timer(%rip), %rsi
        call    puts
        sti
5:      hlt
        movl    ticks(%rip), %eax
        cmpl    $TICKS, %eax
        jb      5b
        cli
        leaq    msg_ticks(%rip), %rsi
        call    puts
        movl    ticks(%rip), %eax
        call    putdec
        leaq    msg_off(%rip), %rsi
        call    puts

        movw    $0x2000, %ax            /* PM1a_CNT: SLP_TYP = 0 (S5 in the pc machine's DSDT) | SLP_EN */
        movw    $PM1A_CNT, %dx
        outw    %ax, %dx
6:      hlt
        jmp     6b

/* Install a 64-bit interrupt gate for vector %ecx pointing at %rax (SDM 6.14.1). */
set_gate:
        leaq    idt(%rip), %rdi
        shll    $4, %ecx
        addq    %rcx, %rdi
        movw    %ax, 0(%rdi)
        movw    $0x18, 2(%rdi)
        movw    $0x8e00, 4(%rdi)
        shrq    $16, %rax
        movw    %ax, 6(%rdi)
        shrq    $16, %rax
        movl    %eax, 8(%rdi)
        movl    $0, 12(%rdi)
        ret

timer:  pushq   %rax
        pushq   %rdx
        incl    ticks(%rip)
        movl    ticks(%rip), %eax
        testb   $3, %al
        jnz     1f
        movb    $'.', %al
        movw    $COM1, %dx
        outb    %al, %dx
1:      movb    $0x20, %al              /* OCW2: non-specific EOI */
        outb    %al, $0x20
        popq    %rdx
        popq    %rax
        iretq

spurious:
        iretq

puts:   pushq   %rax
        pushq   %rdx
1:      lodsb
        testb   %al, %al
        jz      3f
        movb    %al, %ah
        movw    $COM1 + 5, %dx
2:      inb     %dx, %al
        testb   $0x20, %al
        jz      2b
        movb    %ah, %al
        movw    $COM1, %dx
        outb    %al, %dx
        jmp     1b
3:      popq    %rdx
        popq    %rax
        ret

/* Print %eax in decimal. */
putdec: leaq    numbuf+15(%rip), %rdi
        movb    $0, (%rdi)
        movl    $10, %ecx
1:      xorl    %edx, %edx
        divl    %ecx
        addb    $'0', %dl
        decq    %rdi
        movb    %dl, (%rdi)
        testl   %eax, %eax
        jnz     1b
        movq    %rdi, %rsi
        jmp     puts

        .data
        .balign 8
gdt:    .quad   0
        .quad   0x00cf9a000000ffff      /* 0x08: 32-bit code, flat */
        .quad   0x00cf92000000ffff      /* 0x10: data, flat */
        .quad   0x00af9a000000ffff      /* 0x18: 64-bit code (L=1) */
        .quad   0x00cf92000000ffff      /* 0x20: data */
gdt_end:
gdt_desc:
        .word   gdt_end - gdt - 1
        .long   gdt
        .balign 8
idt_desc:
        .word   256 * 16 - 1
        .quad   idt
ticks:  .long   0
sig:    .fill   16, 1, 0
numbuf: .fill   16, 1, 0
msg_real:  .asciz "tskvm demo: real mode, CS:IP=0000:8000\r\n"
msg_pm:    .asciz "tskvm demo: 32-bit protected mode, flat segments\r\n"
msg_lm:    .asciz "tskvm demo: long mode, 2 MiB identity pages\r\n"
msg_hv:    .asciz "tskvm demo: hypervisor signature: "
msg_nl:    .asciz "\r\n"
msg_timer: .asciz "tskvm demo: PIC remapped, PIT at 100 Hz, sleeping in HLT "
msg_ticks: .asciz "\r\ntskvm demo: timer interrupts taken: "
msg_off:   .asciz "\r\ntskvm demo: powering off\r\n"

        .bss
        .balign 4096
idt:    .fill   256 * 16, 1, 0
