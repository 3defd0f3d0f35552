/*
 * The x87 FPU at CPL 3 (SDM Vol 1 ch. 8, Vol 2 D8-DF): arithmetic in every rounding mode and
 * precision, special operands (zeros, denormals, infinities, QNaN/SNaN), compares into FSW and
 * EFLAGS, FXAM, integer/BCD conversions, stack overflow/underflow, FSTENV pointers, FXSAVE, and
 * an unmasked exception reported as #MF at the next waiting instruction (CR0.NE = 1).
 * Each record is an 80-bit result (significand, then sign/exponent | FSW << 16) or an integer.
 * The wanted values are the results of an Intel Xeon (the real KVM runs ring 3 natively); the
 * exactly-defined ones (1/3 in each rounding mode, constants, compares, conversions, FXAM,
 * stack faults) agree with the SDM's rules by hand.
 * tskvm-guest: lib=64 expect=kvm
 */
#include "lib.h"

struct f80 {
	u64 m;
	u16 se;
} __attribute__((packed));

#define NREC 256
static const char *rname[NREC];
static u64 rval[NREC];
static int nrec;

static void rec(const char *n, u64 v)
{
	if (nrec < NREC) {
		rname[nrec] = n;
		rval[nrec] = v;
	}
	nrec++;
}

static void rec80(const char *n, struct f80 r, u16 sw)
{
	rec(n, r.m);
	rec(n, (u64)r.se | ((u64)sw << 16));
}

/* Double bit patterns (no floating point in C: the guests build with -mgeneral-regs-only). */
#define D_1 0x3ff0000000000000ull
#define D_3 0x4008000000000000ull
#define D_01 0x3fb999999999999aull
#define D_M75 0xc01e000000000000ull
#define D_BIG 0x7e37e43c8800759cull /* 1e300 */
#define D_DEN 0x0000000000000001ull
#define D_INF 0x7ff0000000000000ull
#define D_QNAN 0x7ff8000000000123ull
#define D_SNAN 0x7ff4000000000456ull
#define D_M0 0x8000000000000000ull
#define D_2 0x4000000000000000ull
#define D_10 0x4024000000000000ull
#define D_25 0x4004000000000000ull
#define D_M25 0xc004000000000000ull

static void fldcw(u16 cw) { __asm__ volatile("fldcw %0" ::"m"(cw)); }

/* ST(1) = a, ST(0) = b, then one operation that leaves one value; FSW before the store. */
#define BINOP(fn, insn)                                                                      \
	static void fn(const char *n, u64 a, u64 b)                                          \
	{                                                                                    \
		struct f80 r;                                                                \
		u16 sw;                                                                      \
		__asm__ volatile("fnclex\n\tfldl %2\n\tfldl %3\n\t" insn "\n\tfnstsw %1\n\tfstpt %0" \
				 : "=m"(r), "=m"(sw) : "m"(a), "m"(b));                        \
		rec80(n, r, sw);                                                             \
	}
BINOP(op_add, "faddp")
BINOP(op_sub, "fsubrp")
BINOP(op_mul, "fmulp")
BINOP(op_div, "fdivrp")
BINOP(op_scale, "fxch\n\tfscale\n\tfstp %%st(1)")
BINOP(op_prem, "fxch\n\tfprem\n\tfstp %%st(1)")
BINOP(op_prem1, "fxch\n\tfprem1\n\tfstp %%st(1)")
BINOP(op_yl2x, "fyl2x")
BINOP(op_atan, "fpatan")

#define UNOP(fn, insn)                                                                       \
	static void fn(const char *n, u64 a)                                                 \
	{                                                                                    \
		struct f80 r;                                                                \
		u16 sw;                                                                      \
		__asm__ volatile("fnclex\n\tfldl %2\n\t" insn "\n\tfnstsw %1\n\tfstpt %0"    \
				 : "=m"(r), "=m"(sw) : "m"(a));                                \
		rec80(n, r, sw);                                                             \
	}
UNOP(op_sqrt, "fsqrt")
UNOP(op_rndint, "frndint")
UNOP(op_sin, "fsin")
UNOP(op_cos, "fcos")
UNOP(op_f2xm1, "f2xm1")
UNOP(op_xtract, "fxtract\n\tfstp %%st(1)")
UNOP(op_tan, "fptan\n\tfstp %%st(0)")
UNOP(op_chs, "fchs")
UNOP(op_abs, "fabs")

/* FCOMI/FUCOMI EFLAGS (ZF PF CF) and FCOM/FUCOM condition codes for ST(0) = a, ST(1) = b. */
static void cmp(const char *n, u64 a, u64 b)
{
	ulong fl1, fl2;
	u16 sw1, sw2;
	__asm__ volatile("fnclex\n\tfldl %4\n\tfldl %5\n\tfcomi %%st(1), %%st\n\tpushf\n\tpop %0\n\tfnstsw %2\n\t"
			 "fucomi %%st(1), %%st\n\tpushf\n\tpop %1\n\tfcom %%st(1)\n\tfnstsw %3\n\tfstp %%st(0)\n\tfstp %%st(0)"
			 : "=&r"(fl1), "=&r"(fl2), "=m"(sw1), "=m"(sw2) : "m"(b), "m"(a) : "cc");
	rec(n, (fl1 & 0x8d5) | ((fl2 & 0x8d5) << 16) | ((u64)(sw1 & 0x3f) << 32) | ((u64)(sw2 & 0x473f) << 48));
}

static void xam(const char *n, struct f80 v, int empty)
{
	u16 sw;
	if (empty)
		__asm__ volatile("fninit\n\tfxam\n\tfnstsw %0" : "=m"(sw));
	else
		__asm__ volatile("fninit\n\tfldt %1\n\tfxam\n\tfnstsw %0\n\tfstp %%st(0)" : "=m"(sw) : "m"(v));
	rec(n, sw & 0x4700);
}

static void conv(const char *n, u64 a)
{
	u32 i32, t32;
	u16 i16, sw;
	u64 i64;
	struct f80 bcd;
	__asm__ volatile("fnclex\n\tfldl %6\n\tfistl %0\n\tfists %1\n\tfisttpl %3\n\tfldl %6\n\tfistpll %2\n\tfldl %6\n\tfbstp %4\n\tfnstsw %5"
			 : "=m"(i32), "=m"(i16), "=m"(i64), "=m"(t32), "=m"(bcd), "=m"(sw) : "m"(a));
	rec(n, i32 | ((u64)t32 << 32));
	rec(n, i64);
	rec(n, i16 | ((u64)(sw & 0x3f) << 16));
	rec(n, bcd.m);
	rec(n, bcd.se);
}

static long fp_run(long unused)
{
	(void)unused;
	__asm__ volatile("fninit");
	static const u64 a[] = { D_1, D_01, D_BIG, D_M75, D_INF, D_1, D_QNAN, D_SNAN, D_DEN, D_M0 };
	static const u64 b[] = { D_3, D_3, D_BIG, D_01, D_INF, D_M0, D_1, D_1, D_1, D_M0 };
	static const char *an[] = { "add 1+3", "add .1+3", "add big", "add -7.5+.1", "add inf+inf", "add 1+-0", "add qnan", "add snan", "add den", "add -0+-0" };
	static const char *sn[] = { "sub 1-3", "sub .1-3", "sub big", "sub -7.5-.1", "sub inf-inf", "sub 1--0", "sub qnan", "sub snan", "sub den", "sub -0--0" };
	static const char *mn[] = { "mul 1*3", "mul .1*3", "mul big", "mul -7.5*.1", "mul inf*inf", "mul 1*-0", "mul qnan", "mul snan", "mul den", "mul -0*-0" };
	static const char *dn[] = { "div 1/3", "div .1/3", "div big", "div -7.5/.1", "div inf/inf", "div 1/-0", "div qnan", "div snan", "div den", "div -0/-0" };
	for (int i = 0; i < 10; i++) {
		op_add(an[i], a[i], b[i]);
		op_sub(sn[i], a[i], b[i]);
		op_mul(mn[i], a[i], b[i]);
		op_div(dn[i], a[i], b[i]);
	}
	/* Rounding control and precision control on 1/3 and -1/3 (SDM Vol 1 4.8.4, 8.1.5.2). */
	static const char *rc[] = { "1/3 rc=near", "1/3 rc=down", "1/3 rc=up", "1/3 rc=zero" };
	static const char *rcn[] = { "-1/3 rc=near", "-1/3 rc=down", "-1/3 rc=up", "-1/3 rc=zero" };
	for (int r = 0; r < 4; r++) {
		fldcw((u16)(0x37f | (r << 10)));
		op_div(rc[r], D_1, D_3);
		op_div(rcn[r], 0xbff0000000000000ull, D_3);
		op_rndint(r == 0 ? "rndint 2.5 near" : r == 1 ? "rndint 2.5 down" : r == 2 ? "rndint 2.5 up" : "rndint 2.5 zero", D_25);
		op_rndint(r == 0 ? "rndint -2.5 near" : r == 1 ? "rndint -2.5 down" : r == 2 ? "rndint -2.5 up" : "rndint -2.5 zero", D_M25);
	}
	fldcw(0x07f);
	op_div("1/3 pc=24", D_1, D_3);
	fldcw(0x27f);
	op_div("1/3 pc=53", D_1, D_3);
	fldcw(0x37f);
	op_sqrt("sqrt 2", D_2);
	op_sqrt("sqrt -1", 0xbff0000000000000ull);
	op_sqrt("sqrt -0", D_M0);
	op_scale("scale 3*2^2.5", D_3, D_25);
	op_prem("prem 10 rem 3", D_10, D_3);
	op_prem1("prem1 10 rem 3", D_10, D_3);
	op_prem("prem -7.5 rem .1", D_M75, D_01);
	op_xtract("xtract 10", D_10);
	op_chs("chs 3", D_3);
	op_abs("abs -7.5", D_M75);
	op_sin("sin 0", 0);
	op_cos("cos 0", 0);
	op_tan("tan inf", D_INF);
	op_f2xm1("f2xm1 0", 0);
	op_yl2x("yl2x 3*log2(2)", D_3, D_2);
	op_atan("atan(1/1)", D_1, D_1);
	/* Constants in RC = down and up. */
	u64 k[8];
	__asm__ volatile("fldcw %2\n\tfldpi\n\tfstpt %0\n\tfldl2e\n\tfstpt %1" : "=m"(k[0]), "=m"(k[2]) : "m"((u16){ 0x77f }));
	rec("fldpi down", k[0]);
	rec("fldl2e down", k[2]);
	__asm__ volatile("fldcw %2\n\tfldpi\n\tfstpt %0\n\tfldln2\n\tfstpt %1" : "=m"(k[0]), "=m"(k[2]) : "m"((u16){ 0xb7f }));
	rec("fldpi up", k[0]);
	rec("fldln2 up", k[2]);
	fldcw(0x37f);
	cmp("cmp 1,3", D_1, D_3);
	cmp("cmp 3,1", D_3, D_1);
	cmp("cmp -0,0", D_M0, 0);
	cmp("cmp qnan,1", D_QNAN, D_1);
	cmp("cmp snan,1", D_SNAN, D_1);
	xam("xam +0", (struct f80){ 0, 0 }, 0);
	xam("xam -inf", (struct f80){ 1ull << 63, 0xffff }, 0);
	xam("xam nan", (struct f80){ 3ull << 62, 0x7fff }, 0);
	xam("xam denormal", (struct f80){ 1, 0 }, 0);
	xam("xam unnormal", (struct f80){ 1, 0x4000 }, 0);
	xam("xam normal", (struct f80){ 1ull << 63, 0x3fff }, 0);
	xam("xam empty", (struct f80){ 0, 0 }, 1);
	conv("conv 2.5", D_25);
	conv("conv -2.5", D_M25);
	conv("conv -7.5", D_M75);
	conv("conv 1e300", D_BIG);
	conv("conv qnan", D_QNAN);
	/* Stack overflow (nine pushes) and underflow, masked. */
	u16 sw;
	struct f80 r;
	__asm__ volatile("fninit\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfnstsw %0\n\tfstpt %1\n\tfninit"
			 : "=m"(sw), "=m"(r));
	rec80("stack overflow", r, sw);
	__asm__ volatile("fninit\n\tfadd %%st(1), %%st\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r));
	rec80("stack underflow", r, sw);
	/* FSTENV: FOP and FIP of the last non-control instruction, FDP of its operand. */
	u32 env[7];
	ulong ip;
	static u64 one = D_1;
	__asm__ volatile("fninit\n\t1: fldl %2\n\tfnstenv %0\n\tlea 1b(%%rip), %1" : "=m"(env), "=r"(ip) : "m"(one));
	rec("fstenv fcw fsw", (env[0] & 0xffff) | ((u64)(env[1] & 0xffff) << 16) | ((u64)(env[2] & 0xffff) << 32));
	rec("fstenv fip ok", env[3] == (u32)ip);
	rec("fstenv fop", env[4] >> 16);
	rec("fstenv fdp ok", env[5] == (u32)(ulong)&one);
	__asm__ volatile("fldcw %0" ::"m"((u16){ 0x37f }));
	/* FXSAVE: control/status/tag words, MXCSR and its mask. */
	static u8 fx[512] __attribute__((aligned(16)));
	__asm__ volatile("fninit\n\tfld1\n\tfldz\n\tfxsave %0\n\tfninit" : "=m"(fx));
	rec("fxsave fcw fsw ftw", fx[0] | (fx[1] << 8) | ((u64)(fx[2] | fx[3] << 8) << 16) | ((u64)fx[4] << 32));
	rec("fxsave mxcsr", *(u32 *)(fx + 24) | ((u64)*(u32 *)(fx + 28) << 32));
	rec("fxsave st0", *(u64 *)(fx + 32) | ((u64)(fx[40] | fx[41] << 8) << 48));
	return 0;
}

/* An unmasked invalid operation: FSQRT(-1) sets ES; the next waiting instruction (FWAIT) raises #MF. */
static long mf_run(long unused)
{
	(void)unused;
	static u64 m1 = 0xbff0000000000000ull;
	__asm__ volatile("fninit\n\tfldcw %0\n\tfldl %1\n\tfsqrt\n\tfwait\n\tfnclex\n\tfninit" ::"m"((u16){ 0x37e }), "m"(m1));
	return 0;
}

/* The Xeon's results, in record order. */
static const u64 want[] = {
	0x8000000000000000ull, 0x0000000038004001ull, 0x8000000000000000ull, 0x000000003800c000ull,
	0xc000000000000000ull, 0x0000000038004000ull, 0xaaaaaaaaaaaaaaabull, 0x000000003a203ffdull,
	0xc666666666666680ull, 0x0000000038004000ull, 0xb999999999999980ull, 0x000000003800c000ull,
	0x9999999999999c00ull, 0x0000000038003ffdull, 0x8888888888888aabull, 0x000000003a203ffaull,
	0xbf21e44003ace000ull, 0x00000000380043e4ull, 0x0000000000000000ull, 0x0000000038000000ull,
	0x8eb39714297eff60ull, 0x000000003a2047c8ull, 0x8000000000000000ull, 0x0000000038003fffull,
	0xecccccccccccccc0ull, 0x000000003800c001ull, 0xf333333333333340ull, 0x000000003800c001ull,
	0xc000000000000300ull, 0x000000003800bffeull, 0x95fffffffffffda8ull, 0x000000003820c005ull,
	0x8000000000000000ull, 0x0000000038007fffull, 0xc000000000000000ull, 0x000000003801ffffull,
	0x8000000000000000ull, 0x0000000038007fffull, 0xc000000000000000ull, 0x000000003801ffffull,
	0x8000000000000000ull, 0x0000000038003fffull, 0x8000000000000000ull, 0x0000000038003fffull,
	0x0000000000000000ull, 0x0000000038008000ull, 0x8000000000000000ull, 0x000000003804ffffull,
	0xc000000000091800ull, 0x0000000038007fffull, 0xc000000000091800ull, 0x0000000038007fffull,
	0xc000000000091800ull, 0x0000000038007fffull, 0xc000000000091800ull, 0x0000000038007fffull,
	0xe00000000022b000ull, 0x0000000038017fffull, 0xe00000000022b000ull, 0x0000000038017fffull,
	0xe00000000022b000ull, 0x0000000038017fffull, 0xe00000000022b000ull, 0x0000000038017fffull,
	0x8000000000000000ull, 0x0000000038223fffull, 0x8000000000000000ull, 0x000000003a22bfffull,
	0x8000000000000000ull, 0x0000000038023bcdull, 0x8000000000000000ull, 0x0000000038023bcdull,
	0x0000000000000000ull, 0x0000000038008000ull, 0x0000000000000000ull, 0x0000000038000000ull,
	0x0000000000000000ull, 0x0000000038000000ull, 0xc000000000000000ull, 0x000000003801ffffull,
	0xaaaaaaaaaaaaaaabull, 0x000000003a203ffdull, 0xaaaaaaaaaaaaaaabull, 0x000000003a20bffdull,
	0x8000000000000000ull, 0x0000000038204000ull, 0x8000000000000000ull, 0x000000003820c000ull,
	0xaaaaaaaaaaaaaaaaull, 0x0000000038203ffdull, 0xaaaaaaaaaaaaaaabull, 0x000000003a20bffdull,
	0x8000000000000000ull, 0x0000000038204000ull, 0xc000000000000000ull, 0x000000003a20c000ull,
	0xaaaaaaaaaaaaaaabull, 0x000000003a203ffdull, 0xaaaaaaaaaaaaaaaaull, 0x000000003820bffdull,
	0xc000000000000000ull, 0x000000003a204000ull, 0x8000000000000000ull, 0x000000003820c000ull,
	0xaaaaaaaaaaaaaaaaull, 0x0000000038203ffdull, 0xaaaaaaaaaaaaaaaaull, 0x000000003820bffdull,
	0x8000000000000000ull, 0x0000000038204000ull, 0x8000000000000000ull, 0x000000003820c000ull,
	0xaaaaab0000000000ull, 0x000000003a203ffdull, 0xaaaaaaaaaaaaa800ull, 0x0000000038203ffdull,
	0xb504f333f9de6484ull, 0x0000000038203fffull, 0xc000000000000000ull, 0x000000003801ffffull,
	0x0000000000000000ull, 0x0000000038008000ull, 0xc000000000000000ull, 0x0000000038004002ull,
	0x8000000000000000ull, 0x0000000078003fffull, 0x8000000000000000ull, 0x0000000078003fffull,
	0xcccccccccccbe000ull, 0x000000007800bffbull, 0xa000000000000000ull, 0x0000000078003fffull,
	0xc000000000000000ull, 0x000000007800c000ull, 0xf000000000000000ull, 0x0000000078004001ull,
	0x0000000000000000ull, 0x0000000078000000ull, 0x8000000000000000ull, 0x0000000078003fffull,
	0xc000000000000000ull, 0x000000007801ffffull, 0x0000000000000000ull, 0x0000000078000000ull,
	0xc000000000000000ull, 0x0000000078204000ull, 0xc90fdaa22168c235ull, 0x000000007a203ffeull,
	0xc90fdaa22168c234ull, 0xb8aa3b295c17f0bbull, 0xc90fdaa22168c235ull, 0xb17217f7d1cf79acull,
	0x0100000000010001ull, 0x0000000000000000ull, 0x4000000000400040ull, 0x4501000100450045ull,
	0x4501000100450045ull, 0x0000000000004000ull, 0x0000000000000700ull, 0x0000000000000100ull,
	0x0000000000004400ull, 0x0000000000000000ull, 0x0000000000000400ull, 0x0000000000004100ull,
	0x0000000200000002ull, 0x0000000000000002ull, 0x0000000000200002ull, 0x0000000000000002ull,
	0x0000000000000000ull, 0xfffffffefffffffeull, 0xfffffffffffffffeull, 0x000000000020fffeull,
	0x0000000000000002ull, 0x0000000000008000ull, 0xfffffff9fffffff8ull, 0xfffffffffffffff8ull,
	0x000000000020fff8ull, 0x0000000000000008ull, 0x0000000000008000ull, 0x8000000080000000ull,
	0x8000000000000000ull, 0x0000000000018000ull, 0xc000000000000000ull, 0x000000000000ffffull,
	0x8000000080000000ull, 0x8000000000000000ull, 0x0000000000018000ull, 0xc000000000000000ull,
	0x000000000000ffffull, 0xc000000000000000ull, 0x000000003a41ffffull, 0xc000000000000000ull,
	0x000000000041ffffull, 0x00003fff3800037full, 0x0000000000000001ull, 0x0000000000000000ull,
	0x0000000000000000ull, 0x000000c03000037full, 0x0000ffff00001f80ull, 0x0000000000000000ull,
};
#define NWANT (sizeof(want) / sizeof(want[0]))

int main(void)
{
	ulong cr0, cr4;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr0 = (cr0 & ~0xcUL) | 0x22UL; /* EM = TS = 0, MP = NE = 1 */
	cr4 |= 1UL << 9;                /* OSFXSR */
	__asm__ volatile("mov %0, %%cr0" ::"r"(cr0));
	__asm__ volatile("mov %0, %%cr4" ::"r"(cr4));
	user_call(fp_run, 0);
	check("records", nrec, NWANT);
	for (int i = 0; i < nrec && i < NREC && i < (int)NWANT; i++)
		check(rname[i], rval[i], want[i]);
	exc_hooks[16] = exc_record;
	skip_len = 1;
	user_call(mf_run, 0);
	skip_len = 0;
	check("#MF at FWAIT", last_vector, 16);
	check("#MF count", exc_count, 1);
	return failures;
}
