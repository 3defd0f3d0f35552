/*
 * fp-oracle: runs real x87/SSE instructions on the host CPU and prints the bit patterns of the
 * results and the exception flags, so the TypeScript floating-point library can be checked bit
 * for bit. Exceptions are always masked here (unmasked ones would trap).
 *
 * Input, one case per line, hexadecimal tokens:  <op> <ctl> <operand>...
 *   ctl is the x87 control word (x87 ops) or MXCSR (SSE ops).
 *   an 80-bit operand is two tokens: <sign+exponent 16 bits> <significand 64 bits>.
 * Output, one line per case: the result tokens then the status word (x87) or MXCSR (SSE);
 * "?" for an unknown op.
 *
 * "exec <mxcsr> <instruction bytes> <xmm0> <xmm1> <xmm2> <eax> <edx>" runs one instruction (any
 * encoding using those registers) and prints "<xmm0> <xmm1> <xmm2> <ecx> <eflags> <mxcsr>"; 128-bit
 * values are written as 32 hex digits, most significant first. With unmasked MXCSR exceptions the
 * #XM fault is caught, the instruction skipped and " T" appended.
 *
 * "x87img <cw> <ops> <k> <f80>..." loads k values, optionally runs FADD ST(1) (ops&1), FFREE ST(2)
 * (ops&2), FINCSTP (ops&4), and prints the FXSAVE, FXSAVE64, FNSTENV (32- and 16-bit) and FNSAVE
 * images in hex.
 *
 * Build: gcc -O1 -mno-red-zone -o build/oracle oracle.c   (x86-64 host)
 */
#define _GNU_SOURCE
#include <signal.h>
#include <ucontext.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct __attribute__((packed)) { uint64_t sig; uint16_t se; } f80;
typedef struct __attribute__((packed)) { uint8_t b[10]; } bcd80;

static char *tok(char **p) {
  while (**p == ' ' || **p == '\t') (*p)++;
  if (**p == 0 || **p == '\n') return NULL;
  char *s = *p;
  while (**p && **p != ' ' && **p != '\t' && **p != '\n') (*p)++;
  if (**p) { **p = 0; (*p)++; }
  return s;
}
static uint64_t hx(char **p) { char *t = tok(p); return t ? strtoull(t, NULL, 16) : 0; }
static void rd80(char **p, f80 *v) { v->se = (uint16_t)hx(p); v->sig = hx(p); }
static void pr80(const f80 *v) { printf("%04x %016llx ", v->se, (unsigned long long)v->sig); }

#define X87_PRE "fninit\n\tfldcw %[cw]\n\t"

/* st0 = a OP b with b in st1; status captured right after the operation. */
#define X87_BIN(name, insn) \
  static void name(uint16_t cw, f80 *a, f80 *b, f80 *r, uint16_t *sw) { \
    __asm__ volatile(X87_PRE "fldt %[b]\n\tfldt %[a]\n\t" insn "\n\tfnstsw %[sw]\n\tfstpt %[r]\n\tfstp %%st(0)" \
      : [r] "=m"(*r), [sw] "=m"(*sw) : [cw] "m"(cw), [a] "m"(*a), [b] "m"(*b)); }
X87_BIN(x_fadd, "fadd %%st(1), %%st")
X87_BIN(x_fsub, "fsub %%st(1), %%st")
X87_BIN(x_fmul, "fmul %%st(1), %%st")
X87_BIN(x_fdiv, "fdiv %%st(1), %%st")
X87_BIN(x_fscale, "fscale")
X87_BIN(x_fprem, "fprem")
X87_BIN(x_fprem1, "fprem1")
X87_BIN(x_fpatan_raw, "fpatan\n\tfld %%st(0)")   /* st1 = atan(st1/st0): a=st0 x, b=st1 y */
X87_BIN(x_fyl2x_raw, "fyl2x\n\tfld %%st(0)")     /* b * log2(a) */
X87_BIN(x_fyl2xp1_raw, "fyl2xp1\n\tfld %%st(0)") /* b * log2(a+1) */

#define X87_UN(name, insn) \
  static void name(uint16_t cw, f80 *a, f80 *r, uint16_t *sw) { \
    __asm__ volatile(X87_PRE "fldt %[a]\n\t" insn "\n\tfnstsw %[sw]\n\tfstpt %[r]" \
      : [r] "=m"(*r), [sw] "=m"(*sw) : [cw] "m"(cw), [a] "m"(*a)); }
X87_UN(x_fsqrt, "fsqrt")
X87_UN(x_frndint, "frndint")
X87_UN(x_fsin, "fsin")
X87_UN(x_fcos, "fcos")
X87_UN(x_f2xm1, "f2xm1")
X87_UN(x_fchs, "fchs")
X87_UN(x_fabs, "fabs")
X87_UN(x_fxam, "fxam")
X87_UN(x_ftst, "ftst")

/* Two results: st0 and st1 after the instruction. */
#define X87_UN2(name, insn) \
  static void name(uint16_t cw, f80 *a, f80 *r0, f80 *r1, uint16_t *sw) { \
    __asm__ volatile(X87_PRE "fldt %[a]\n\t" insn "\n\tfnstsw %[sw]\n\tfstpt %[r0]\n\tfstpt %[r1]" \
      : [r0] "=m"(*r0), [r1] "=m"(*r1), [sw] "=m"(*sw) : [cw] "m"(cw), [a] "m"(*a)); }
X87_UN2(x_fxtract, "fxtract")
X87_UN2(x_fsincos, "fsincos")
X87_UN2(x_fptan, "fptan")

#define X87_CMP(name, insn) \
  static void name(uint16_t cw, f80 *a, f80 *b, uint16_t *sw) { \
    __asm__ volatile(X87_PRE "fldt %[b]\n\tfldt %[a]\n\t" insn "\n\tfnstsw %[sw]\n\tfstp %%st(0)\n\tfstp %%st(0)" \
      : [sw] "=m"(*sw) : [cw] "m"(cw), [a] "m"(*a), [b] "m"(*b)); }
X87_CMP(x_fcom, "fcom %%st(1)")
X87_CMP(x_fucom, "fucom %%st(1)")

#define X87_CMPI(name, insn) \
  static void name(uint16_t cw, f80 *a, f80 *b, uint64_t *fl, uint16_t *sw) { \
    __asm__ volatile(X87_PRE "fldt %[b]\n\tfldt %[a]\n\t" insn "\n\tpushfq\n\tpopq %[fl]\n\tfnstsw %[sw]\n\tfstp %%st(0)\n\tfstp %%st(0)" \
      : [fl] "=m"(*fl), [sw] "=m"(*sw) : [cw] "m"(cw), [a] "m"(*a), [b] "m"(*b)); }
X87_CMPI(x_fcomi, "fcomi %%st(1), %%st")
X87_CMPI(x_fucomi, "fucomi %%st(1), %%st")

/* Stores of st0 to memory: result bytes in *m. */
#define X87_ST(name, insn, T) \
  static void name(uint16_t cw, f80 *a, T *m, uint16_t *sw) { \
    __asm__ volatile(X87_PRE "fldt %[a]\n\t" insn " %[m]\n\tfnstsw %[sw]" \
      : [m] "=m"(*m), [sw] "=m"(*sw) : [cw] "m"(cw), [a] "m"(*a)); }
X87_ST(x_fist16, "fistps", uint16_t)
X87_ST(x_fist32, "fistpl", uint32_t)
X87_ST(x_fist64, "fistpll", uint64_t)
X87_ST(x_fisttp16, "fisttps", uint16_t)
X87_ST(x_fisttp32, "fisttpl", uint32_t)
X87_ST(x_fisttp64, "fisttpll", uint64_t)
X87_ST(x_fst32, "fstps", uint32_t)
X87_ST(x_fst64, "fstpl", uint64_t)
X87_ST(x_fbstp, "fbstp", bcd80)

/* Loads from memory into st0. */
#define X87_LD(name, insn, T) \
  static void name(uint16_t cw, T *m, f80 *r, uint16_t *sw) { \
    __asm__ volatile(X87_PRE insn " %[m]\n\tfnstsw %[sw]\n\tfstpt %[r]" \
      : [r] "=m"(*r), [sw] "=m"(*sw) : [cw] "m"(cw), [m] "m"(*m)); }
X87_LD(x_fild16, "filds", int16_t)
X87_LD(x_fild32, "fildl", int32_t)
X87_LD(x_fild64, "fildll", int64_t)
X87_LD(x_fld32, "flds", uint32_t)
X87_LD(x_fld64, "fldl", uint64_t)
X87_LD(x_fbld, "fbld", bcd80)


/* Unmasked-exception variants: the result and status are read back with the no-wait FNSAVE, so a
 * pending unmasked exception never traps. ST(0) after the operation and the status word are printed. */
#define X87U_BIN(name, insn) \
  static void name(uint16_t cw, f80 *a, f80 *b, f80 *r, uint16_t *sw) { \
    static uint8_t img[108]; \
    __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t" insn "\n\tfnsave %[img]\n\tfninit" \
      : [img] "=m"(img) : [cw] "m"(cw), [a] "m"(*a), [b] "m"(*b)); \
    memcpy(r, img + 28, 10); memcpy(sw, img + 4, 2); }
X87U_BIN(u_fadd, "fadd %%st(1), %%st")
X87U_BIN(u_fsub, "fsub %%st(1), %%st")
X87U_BIN(u_fmul, "fmul %%st(1), %%st")
X87U_BIN(u_fdiv, "fdiv %%st(1), %%st")
X87U_BIN(u_fsqrt, "fsqrt")
X87U_BIN(u_fscale, "fscale")


/* Constants, FXAM (also on an empty ST(0)) and FTST: status word after the instruction. */
#define X87_K(name, insn) \
  static void name(uint16_t cw, f80 *r, uint16_t *sw) { \
    __asm__ volatile(X87_PRE insn "\n\tfnstsw %[sw]\n\tfstpt %[r]" : [r] "=m"(*r), [sw] "=m"(*sw) : [cw] "m"(cw)); }
X87_K(k_fld1, "fld1") X87_K(k_fldl2t, "fldl2t") X87_K(k_fldl2e, "fldl2e") X87_K(k_fldpi, "fldpi")
X87_K(k_fldlg2, "fldlg2") X87_K(k_fldln2, "fldln2") X87_K(k_fldz, "fldz")
static void x_fxam_empty(uint16_t cw, uint16_t *sw) { __asm__ volatile(X87_PRE "fxam\n\tfnstsw %[sw]" : [sw] "=m"(*sw) : [cw] "m"(cw)); }

/* ---- SSE: scalar ops on xmm0 (first operand) and a memory second operand ---- */
#define SSE_BIN(name, insn, mov, T) \
  static void name(uint32_t mx, T *a, T *b, T *r, uint32_t *mo) { \
    __asm__ volatile("ldmxcsr %[mx]\n\t" mov " %[a], %%xmm0\n\t" mov " %[b], %%xmm1\n\t" insn " %%xmm1, %%xmm0\n\t" \
      mov " %%xmm0, %[r]\n\tstmxcsr %[mo]" \
      : [r] "=m"(*r), [mo] "=m"(*mo) : [mx] "m"(mx), [a] "m"(*a), [b] "m"(*b) : "xmm0", "xmm1"); }
SSE_BIN(s_addss, "addss", "movss", uint32_t)
SSE_BIN(s_subss, "subss", "movss", uint32_t)
SSE_BIN(s_mulss, "mulss", "movss", uint32_t)
SSE_BIN(s_divss, "divss", "movss", uint32_t)
SSE_BIN(s_minss, "minss", "movss", uint32_t)
SSE_BIN(s_maxss, "maxss", "movss", uint32_t)
SSE_BIN(s_sqrtss, "sqrtss", "movss", uint32_t)
SSE_BIN(s_cvtss2sd_raw, "cvtss2sd", "movq", uint64_t)
SSE_BIN(s_addsd, "addsd", "movsd", uint64_t)
SSE_BIN(s_subsd, "subsd", "movsd", uint64_t)
SSE_BIN(s_mulsd, "mulsd", "movsd", uint64_t)
SSE_BIN(s_divsd, "divsd", "movsd", uint64_t)
SSE_BIN(s_minsd, "minsd", "movsd", uint64_t)
SSE_BIN(s_maxsd, "maxsd", "movsd", uint64_t)
SSE_BIN(s_sqrtsd, "sqrtsd", "movsd", uint64_t)
SSE_BIN(s_cvtsd2ss_raw, "cvtsd2ss", "movq", uint64_t)

#define SSE_IMM8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define SSE_IMM16(X) SSE_IMM8(X) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define DEF_CMPSS(i) SSE_BIN(s_cmpss_##i, "cmpss $" #i ",", "movss", uint32_t) SSE_BIN(s_cmpsd_##i, "cmpsd $" #i ",", "movsd", uint64_t)
SSE_IMM8(DEF_CMPSS)
#define DEF_ROUND(i) SSE_BIN(s_roundss_##i, "roundss $" #i ",", "movss", uint32_t) SSE_BIN(s_roundsd_##i, "roundsd $" #i ",", "movsd", uint64_t)
SSE_IMM16(DEF_ROUND)

#define SSE_COMI(name, insn, mov, T) \
  static void name(uint32_t mx, T *a, T *b, uint64_t *fl, uint32_t *mo) { \
    __asm__ volatile("ldmxcsr %[mx]\n\t" mov " %[a], %%xmm0\n\t" mov " %[b], %%xmm1\n\t" insn " %%xmm1, %%xmm0\n\t" \
      "pushfq\n\tpopq %[fl]\n\tstmxcsr %[mo]" \
      : [fl] "=m"(*fl), [mo] "=m"(*mo) : [mx] "m"(mx), [a] "m"(*a), [b] "m"(*b) : "xmm0", "xmm1", "cc"); }
SSE_COMI(s_comiss, "comiss", "movss", uint32_t)
SSE_COMI(s_ucomiss, "ucomiss", "movss", uint32_t)
SSE_COMI(s_comisd, "comisd", "movsd", uint64_t)
SSE_COMI(s_ucomisd, "ucomisd", "movsd", uint64_t)

/* Conversions with a register or memory source, result to memory. */
#define SSE_CVT(name, insn, TI, TO) \
  static void name(uint32_t mx, TI *a, TO *r, uint32_t *mo) { \
    __asm__ volatile("ldmxcsr %[mx]\n\t" insn "\n\tstmxcsr %[mo]" \
      : [r] "=m"(*r), [mo] "=m"(*mo) : [mx] "m"(mx), [a] "m"(*a) : "rax", "xmm0"); }
SSE_CVT(s_cvtss2sd, "xorps %%xmm0, %%xmm0\n\tcvtss2sd %[a], %%xmm0\n\tmovsd %%xmm0, %[r]", uint32_t, uint64_t)
SSE_CVT(s_cvtsd2ss, "xorps %%xmm0, %%xmm0\n\tcvtsd2ss %[a], %%xmm0\n\tmovss %%xmm0, %[r]", uint64_t, uint32_t)
SSE_CVT(s_cvtsi2ss32, "cvtsi2ssl %[a], %%xmm0\n\tmovss %%xmm0, %[r]", int32_t, uint32_t)
SSE_CVT(s_cvtsi2ss64, "cvtsi2ssq %[a], %%xmm0\n\tmovss %%xmm0, %[r]", int64_t, uint32_t)
SSE_CVT(s_cvtsi2sd32, "cvtsi2sdl %[a], %%xmm0\n\tmovsd %%xmm0, %[r]", int32_t, uint64_t)
SSE_CVT(s_cvtsi2sd64, "cvtsi2sdq %[a], %%xmm0\n\tmovsd %%xmm0, %[r]", int64_t, uint64_t)
SSE_CVT(s_cvtss2si32, "cvtss2si %[a], %%eax\n\tmovl %%eax, %[r]", uint32_t, uint32_t)
SSE_CVT(s_cvtss2si64, "cvtss2si %[a], %%rax\n\tmovq %%rax, %[r]", uint32_t, uint64_t)
SSE_CVT(s_cvttss2si32, "cvttss2si %[a], %%eax\n\tmovl %%eax, %[r]", uint32_t, uint32_t)
SSE_CVT(s_cvttss2si64, "cvttss2si %[a], %%rax\n\tmovq %%rax, %[r]", uint32_t, uint64_t)
SSE_CVT(s_cvtsd2si32, "cvtsd2si %[a], %%eax\n\tmovl %%eax, %[r]", uint64_t, uint32_t)
SSE_CVT(s_cvtsd2si64, "cvtsd2si %[a], %%rax\n\tmovq %%rax, %[r]", uint64_t, uint64_t)
SSE_CVT(s_cvttsd2si32, "cvttsd2si %[a], %%eax\n\tmovl %%eax, %[r]", uint64_t, uint32_t)
SSE_CVT(s_cvttsd2si64, "cvttsd2si %[a], %%rax\n\tmovq %%rax, %[r]", uint64_t, uint64_t)

typedef struct { const char *name; void (*fn)(uint32_t, uint32_t *, uint32_t *, uint32_t *, uint32_t *); } ss_op;
typedef struct { const char *name; void (*fn)(uint32_t, uint64_t *, uint64_t *, uint64_t *, uint32_t *); } sd_op;
#define SS_ENT(i) { "cmpss" #i, s_cmpss_##i }, { "roundss" #i, s_roundss_##i },
#define SD_ENT(i) { "cmpsd" #i, s_cmpsd_##i }, { "roundsd" #i, s_roundsd_##i },
#define SS_RND(i) { "roundss" #i, s_roundss_##i },
#define SD_RND(i) { "roundsd" #i, s_roundsd_##i },
static const ss_op ssops[] = {
  { "addss", s_addss }, { "subss", s_subss }, { "mulss", s_mulss }, { "divss", s_divss },
  { "minss", s_minss }, { "maxss", s_maxss }, { "sqrtss", s_sqrtss },
  { "cmpss0", s_cmpss_0 }, { "cmpss1", s_cmpss_1 }, { "cmpss2", s_cmpss_2 }, { "cmpss3", s_cmpss_3 },
  { "cmpss4", s_cmpss_4 }, { "cmpss5", s_cmpss_5 }, { "cmpss6", s_cmpss_6 }, { "cmpss7", s_cmpss_7 },
  SSE_IMM16(SS_RND)
};
static const sd_op sdops[] = {
  { "addsd", s_addsd }, { "subsd", s_subsd }, { "mulsd", s_mulsd }, { "divsd", s_divsd },
  { "minsd", s_minsd }, { "maxsd", s_maxsd }, { "sqrtsd", s_sqrtsd },
  { "cmpsd0", s_cmpsd_0 }, { "cmpsd1", s_cmpsd_1 }, { "cmpsd2", s_cmpsd_2 }, { "cmpsd3", s_cmpsd_3 },
  { "cmpsd4", s_cmpsd_4 }, { "cmpsd5", s_cmpsd_5 }, { "cmpsd6", s_cmpsd_6 }, { "cmpsd7", s_cmpsd_7 },
  SSE_IMM16(SD_RND)
};

static int eq(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* ---- x87 state images: load k values, optional ops, then FXSAVE, FXSAVE64, FNSTENV (32/16), FNSAVE ---- */
static void hexdump(const uint8_t *b, size_t n) { for (size_t i = 0; i < n; i++) printf("%02x", b[i]); printf(" "); }
static void x87img(char *p) {
  uint16_t cw = (uint16_t)hx(&p);
  int ops = (int)hx(&p), k = (int)hx(&p);
  f80 v[8];
  for (int i = 0; i < k && i < 8; i++) rd80(&p, &v[i]);
  static uint8_t fx[512] __attribute__((aligned(16))), fx64[512] __attribute__((aligned(16)));
  static uint8_t env32[28], env16[14], sav[108];
  memset(fx, 0, sizeof fx); memset(fx64, 0, sizeof fx64);
  /* Empty registers keep stale contents in the images: start from zeros. */
  __asm__ volatile("fninit\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfninit\n\tfldcw %0" :: "m"(cw));
  for (int i = 0; i < k && i < 8; i++) __asm__ volatile("fldt %0" :: "m"(v[i]));
  if (ops & 1) __asm__ volatile("fadd %st(1), %st");
  if (ops & 2) __asm__ volatile("ffree %st(2)");
  if (ops & 4) __asm__ volatile("fincstp");
  __asm__ volatile("fxsave %0\n\tfxsave64 %1\n\tfnstenv %2\n\tfldcw %5\n\tdata16 fnstenv %3\n\tfnsave %4\n\tfninit"
    : "=m"(fx), "=m"(fx64), "=m"(env32), "=m"(env16), "=m"(sav) : "m"(cw));
  hexdump(fx, 512); hexdump(fx64, 512); hexdump(env32, 28); hexdump(env16, 14); hexdump(sav, 108); printf("\n");
}

/* ---- one arbitrary instruction on xmm0-2/eax/edx, run from an executable buffer ---- */
typedef struct { uint64_t lo, hi; } x128;
static uint8_t *codebuf;
/* An unmasked SIMD exception (#XM -> SIGFPE) resumes at the RET after the instruction. */
static volatile int trapped, in_exec;
static size_t ilen;
static void on_fpe(int sig, siginfo_t *si, void *ctx) {
  (void)sig; (void)si;
  ucontext_t *uc = ctx;
  if (!in_exec) abort(); /* only "exec" knows where to resume */
  uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)(codebuf + ilen);
  trapped = 1;
}
static void rd128(char **p, x128 *v) {
  char *t = tok(p);
  char buf[17];
  size_t n = t ? strlen(t) : 0;
  v->hi = v->lo = 0;
  if (!t) return;
  if (n > 16) { memcpy(buf, t, n - 16); buf[n - 16] = 0; v->hi = strtoull(buf, NULL, 16); t += n - 16; }
  v->lo = strtoull(t, NULL, 16);
}
static void exec_one(char *p) {
  uint32_t mx = (uint32_t)hx(&p);
  char *bytes = tok(&p);
  x128 x0, x1, x2;
  rd128(&p, &x0); rd128(&p, &x1); rd128(&p, &x2);
  uint32_t eax = (uint32_t)hx(&p), edx = (uint32_t)hx(&p), ecx = 0, mo = 0;
  uint64_t fl = 0;
  if (!codebuf) {
    codebuf = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (codebuf == MAP_FAILED) { printf("?\n"); codebuf = NULL; return; }
  }
  size_t n = bytes ? strlen(bytes) / 2 : 0;
  if (n == 0 || n > 15) { printf("?\n"); return; }
  for (size_t i = 0; i < n; i++) { char b[3] = { bytes[2 * i], bytes[2 * i + 1], 0 }; codebuf[i] = (uint8_t)strtoul(b, NULL, 16); }
  codebuf[n] = 0xc3;
  ilen = n;
  trapped = 0;
  in_exec = 1;
  void *fn = codebuf;
  __asm__ volatile(
    "ldmxcsr %[mx]\n\tmovdqu %[x0], %%xmm0\n\tmovdqu %[x1], %%xmm1\n\tmovdqu %[x2], %%xmm2\n\t"
    "movl %[eax], %%eax\n\tmovl %[edx], %%edx\n\txorl %%ecx, %%ecx\n\t"
    "pushq $0\n\tpopfq\n\t"
    "call *%[fn]\n\t"
    "pushfq\n\tpopq %[fl]\n\tmovl %%ecx, %[ecx]\n\t"
    "movdqu %%xmm0, %[x0]\n\tmovdqu %%xmm1, %[x1]\n\tmovdqu %%xmm2, %[x2]\n\tstmxcsr %[mo]"
    : [x0] "+m"(x0), [x1] "+m"(x1), [x2] "+m"(x2), [fl] "=m"(fl), [ecx] "=m"(ecx), [mo] "=m"(mo)
    : [mx] "m"(mx), [eax] "m"(eax), [edx] "m"(edx), [fn] "r"(fn)
    : "rax", "rcx", "rdx", "xmm0", "xmm1", "xmm2", "cc", "memory");
  in_exec = 0;
  printf("%016llx%016llx %016llx%016llx %016llx%016llx %08x %03llx %08x%s\n",
    (unsigned long long)x0.hi, (unsigned long long)x0.lo, (unsigned long long)x1.hi, (unsigned long long)x1.lo,
    (unsigned long long)x2.hi, (unsigned long long)x2.lo, ecx, (unsigned long long)(fl & 0x8d5), mo, trapped ? " T" : "");
}


static void run(char *line) {
  char *p = line;
  char *op = tok(&p);
  if (!op) return;
  if (eq(op, "exec")) { exec_one(p); return; }
  if (eq(op, "x87img")) { x87img(p); return; }
  uint32_t ctl = (uint32_t)hx(&p);
  uint16_t cw = (uint16_t)ctl, sw = 0;
  f80 a, b, r, r1;
  uint64_t fl;
  uint32_t mo;
  for (size_t i = 0; i < sizeof ssops / sizeof ssops[0]; i++)
    if (eq(op, ssops[i].name)) {
      uint32_t x = (uint32_t)hx(&p), y = (uint32_t)hx(&p), z;
      ssops[i].fn(ctl, &x, &y, &z, &mo);
      printf("%08x %08x\n", z, mo);
      return;
    }
  for (size_t i = 0; i < sizeof sdops / sizeof sdops[0]; i++)
    if (eq(op, sdops[i].name)) {
      uint64_t x = hx(&p), y = hx(&p), z;
      sdops[i].fn(ctl, &x, &y, &z, &mo);
      printf("%016llx %08x\n", (unsigned long long)z, mo);
      return;
    }
#define COMI(nm, fn, T) if (eq(op, nm)) { T x = (T)hx(&p), y = (T)hx(&p); fn(ctl, &x, &y, &fl, &mo); \
    printf("%03llx %08x\n", (unsigned long long)(fl & 0x8d5), mo); return; }
  COMI("comiss", s_comiss, uint32_t) COMI("ucomiss", s_ucomiss, uint32_t)
  COMI("comisd", s_comisd, uint64_t) COMI("ucomisd", s_ucomisd, uint64_t)
#define CVT(nm, fn, TI, TO, fmt) if (eq(op, nm)) { TI x = (TI)hx(&p); TO z; fn(ctl, &x, &z, &mo); \
    printf(fmt " %08x\n", (unsigned long long)(uint64_t)z, mo); return; }
  CVT("cvtss2sd", s_cvtss2sd, uint32_t, uint64_t, "%016llx")
  CVT("cvtsd2ss", s_cvtsd2ss, uint64_t, uint32_t, "%08llx")
  CVT("cvtsi2ss32", s_cvtsi2ss32, int32_t, uint32_t, "%08llx")
  CVT("cvtsi2ss64", s_cvtsi2ss64, int64_t, uint32_t, "%08llx")
  CVT("cvtsi2sd32", s_cvtsi2sd32, int32_t, uint64_t, "%016llx")
  CVT("cvtsi2sd64", s_cvtsi2sd64, int64_t, uint64_t, "%016llx")
  CVT("cvtss2si32", s_cvtss2si32, uint32_t, uint32_t, "%08llx")
  CVT("cvtss2si64", s_cvtss2si64, uint32_t, uint64_t, "%016llx")
  CVT("cvttss2si32", s_cvttss2si32, uint32_t, uint32_t, "%08llx")
  CVT("cvttss2si64", s_cvttss2si64, uint32_t, uint64_t, "%016llx")
  CVT("cvtsd2si32", s_cvtsd2si32, uint64_t, uint32_t, "%08llx")
  CVT("cvtsd2si64", s_cvtsd2si64, uint64_t, uint64_t, "%016llx")
  CVT("cvttsd2si32", s_cvttsd2si32, uint64_t, uint32_t, "%08llx")
  CVT("cvttsd2si64", s_cvttsd2si64, uint64_t, uint64_t, "%016llx")
#define BIN(nm, fn) if (eq(op, nm)) { rd80(&p, &a); rd80(&p, &b); fn(cw, &a, &b, &r, &sw); pr80(&r); printf("%04x\n", sw); return; }
  BIN("fadd", x_fadd) BIN("fsub", x_fsub) BIN("fmul", x_fmul) BIN("fdiv", x_fdiv)
  BIN("fscale", x_fscale) BIN("fprem", x_fprem) BIN("fprem1", x_fprem1)
  BIN("ufadd", u_fadd) BIN("ufsub", u_fsub) BIN("ufmul", u_fmul) BIN("ufdiv", u_fdiv) BIN("ufsqrt", u_fsqrt) BIN("ufscale", u_fscale)
  BIN("fpatan", x_fpatan_raw) BIN("fyl2x", x_fyl2x_raw) BIN("fyl2xp1", x_fyl2xp1_raw)
#define UN(nm, fn) if (eq(op, nm)) { rd80(&p, &a); fn(cw, &a, &r, &sw); pr80(&r); printf("%04x\n", sw); return; }
  UN("fsqrt", x_fsqrt) UN("frndint", x_frndint) UN("fsin", x_fsin) UN("fcos", x_fcos)
  UN("f2xm1", x_f2xm1) UN("fchs", x_fchs) UN("fabs", x_fabs)
#define UN2(nm, fn) if (eq(op, nm)) { rd80(&p, &a); fn(cw, &a, &r, &r1, &sw); pr80(&r); pr80(&r1); printf("%04x\n", sw); return; }
  UN("fxam", x_fxam) UN("ftst", x_ftst)
  if (eq(op, "fxamempty")) { x_fxam_empty(cw, &sw); printf("%04x\n", sw); return; }
#define KK(nm, fn) if (eq(op, nm)) { fn(cw, &r, &sw); pr80(&r); printf("%04x\n", sw); return; }
  KK("fld1", k_fld1) KK("fldl2t", k_fldl2t) KK("fldl2e", k_fldl2e) KK("fldpi", k_fldpi)
  KK("fldlg2", k_fldlg2) KK("fldln2", k_fldln2) KK("fldz", k_fldz)
  UN2("fxtract", x_fxtract) UN2("fsincos", x_fsincos) UN2("fptan", x_fptan)
#define CMP(nm, fn) if (eq(op, nm)) { rd80(&p, &a); rd80(&p, &b); fn(cw, &a, &b, &sw); printf("%04x\n", sw); return; }
  CMP("fcom", x_fcom) CMP("fucom", x_fucom)
#define CMPI(nm, fn) if (eq(op, nm)) { rd80(&p, &a); rd80(&p, &b); fn(cw, &a, &b, &fl, &sw); \
    printf("%03llx %04x\n", (unsigned long long)(fl & 0x8d5), sw); return; }
  CMPI("fcomi", x_fcomi) CMPI("fucomi", x_fucomi)
#define ST(nm, fn, T, fmt) if (eq(op, nm)) { rd80(&p, &a); T m; fn(cw, &a, &m, &sw); \
    printf(fmt " %04x\n", (unsigned long long)(uint64_t)m, sw); return; }
  ST("fist16", x_fist16, uint16_t, "%04llx") ST("fist32", x_fist32, uint32_t, "%08llx")
  ST("fist64", x_fist64, uint64_t, "%016llx") ST("fisttp16", x_fisttp16, uint16_t, "%04llx")
  ST("fisttp32", x_fisttp32, uint32_t, "%08llx") ST("fisttp64", x_fisttp64, uint64_t, "%016llx")
  ST("fst32", x_fst32, uint32_t, "%08llx") ST("fst64", x_fst64, uint64_t, "%016llx")
  if (eq(op, "fbstp")) {
    bcd80 m; rd80(&p, &a); x_fbstp(cw, &a, &m, &sw);
    uint64_t lo; uint16_t hi; memcpy(&lo, m.b, 8); memcpy(&hi, m.b + 8, 2);
    printf("%04x %016llx %04x\n", hi, (unsigned long long)lo, sw); return;
  }
#define LD(nm, fn, T) if (eq(op, nm)) { T m = (T)hx(&p); fn(cw, &m, &r, &sw); pr80(&r); printf("%04x\n", sw); return; }
  LD("fild16", x_fild16, int16_t) LD("fild32", x_fild32, int32_t) LD("fild64", x_fild64, int64_t)
  LD("fld32", x_fld32, uint32_t) LD("fld64", x_fld64, uint64_t)
  if (eq(op, "fbld")) {
    bcd80 m; uint16_t hi = (uint16_t)hx(&p); uint64_t lo = hx(&p);
    memcpy(m.b, &lo, 8); memcpy(m.b + 8, &hi, 2);
    x_fbld(cw, &m, &r, &sw); pr80(&r); printf("%04x\n", sw); return;
  }
  printf("?\n");
}

int main(void) {
  static char line[4096];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fpe;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGFPE, &sa, NULL);
  (void)s_cvtss2sd_raw; (void)s_cvtsd2ss_raw;
  while (fgets(line, sizeof line, stdin)) run(line);
  return 0;
}
