/* bench_kernels.c: times the forward and backward pass of every CPU kernel
 * at the SASRec ML-1M training shape (B 128, T 200, C 64, one head, V 3417
 * items), with 1 and 2 threads; prints a table and, as its last line, one
 * JSON object with the milliseconds (median of the repetitions).
 *
 * Usage: bench/kernels_bin [-B n] [-T n] [-C n] [-H heads] [-V n] [-F n]
 *          [-S negatives] [-r reps] [-m min_threads] [-t max_threads] [-g]
 *          [-R xent_rows] [-o op]
 * -g: the portable row kernels instead of AVX2; -o: time one op only.
 *
 * Sequences are left-padded with ML-1M-like lengths (18 + an exponential
 * with mean 135, capped at T: about 57% of positions real, a quarter of the
 * sequences full); every real position is a training target. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/cpu/cpu.h"
#include "kernels/kernels.h"

static int B = 128, T = 200, C = 64, NH = 1, V = 3417, F = 256, S = 512, reps = 7, max_threads = 2, generic;
static int xent_rows, only_op = -1, min_threads = 1;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double urand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static float *frand(size_t n, double a)
{
	float *p = malloc((n ? n : 1) * sizeof(float));
	if (!p) {
		fprintf(stderr, "bench_kernels: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (float)((2 * urand() - 1) * a);
	return p;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The ops, as closures over the buffers below. */
enum { OP_EMBED, OP_LAYERNORM, OP_QKV, OP_ATTENTION, OP_PROJ, OP_FC, OP_GELU, OP_RELU, OP_FCPROJ,
       OP_DROPOUT, OP_ADD, OP_XENT_FULL, OP_XENT_SAMPLED, OP_ADAMW, OP_SUMSQ, OP_ATTN_DROP, OP_COUNT };
static const char *op_names[OP_COUNT] = {
	"embed", "layernorm", "matmul_qkv", "attention", "matmul_proj", "matmul_fc", "gelu", "relu",
	"matmul_fcproj", "dropout", "add", "xent_full", "xent_sampled", "adamw", "sumsq",
	"attention_dropout",  /* attention with dropout 0.1 on its probabilities, as the small preset trains */
};

struct bufs {
	int N;
	int32_t *pad, *idx, *tgt, *neg;
	float *x, *dx, *y, *dy, *mean, *rstd, *lnw, *lnb, *dlnw, *dlnb;
	float *qkv, *dqkv, *att, *datt, *lse;
	float *wqkv, *bqkv, *dwqkv, *dbqkv, *wproj, *dwproj, *wfc, *dwfc, *wfp, *dwfp;
	float *h1, *dh1, *h2, *dh2;
	float *emb, *demb, *logq;
	float *param, *grad, *m, *v;
	size_t nparam;
	double sink;
};

static void run_op(struct kern *k, struct bufs *b, int op, int bwd)
{
	const struct kern_ops *o = k->ops;
	int N = b->N;
	size_t NC = (size_t)N * C, NF = (size_t)N * F;
	struct kern_attn_shape as = { .B = B, .T = T, .C = C, .NH = NH, .pad = b->pad,
	                              .dropout = op == OP_ATTN_DROP ? 0.1f : 0.0f, .seed = 17 };
	struct kern_xent_shape xs = { N, C, V, b->tgt, NULL, 0 };
	switch (op) {
	case OP_EMBED:
		if (!bwd)
			o->embed_forward(k, b->x, b->emb, b->idx, N, C);
		else
			o->embed_backward(k, b->demb, b->dx, b->idx, N, C);
		break;
	case OP_LAYERNORM:
		if (!bwd)
			o->layernorm_forward(k, b->y, b->mean, b->rstd, b->x, b->lnw, b->lnb, N, C);
		else
			o->layernorm_backward(k, b->dx, b->dlnw, b->dlnb, b->dy, b->x, b->lnw, b->mean, b->rstd, N, C);
		break;
	case OP_QKV:
		if (!bwd)
			o->matmul_forward(k, b->qkv, b->x, b->wqkv, b->bqkv, N, C, 3 * C);
		else
			o->matmul_backward(k, b->dx, b->dwqkv, b->dbqkv, b->dqkv, b->x, b->wqkv, N, C, 3 * C);
		break;
	case OP_ATTENTION:
	case OP_ATTN_DROP:
		if (!bwd)
			o->attention_forward(k, b->att, b->lse, b->qkv, &as);
		else
			o->attention_backward(k, b->dqkv, b->datt, b->att, b->lse, b->qkv, &as);
		break;
	case OP_PROJ:
		if (!bwd)
			o->matmul_forward(k, b->y, b->att, b->wproj, NULL, N, C, C);
		else
			o->matmul_backward(k, b->datt, b->dwproj, NULL, b->dy, b->att, b->wproj, N, C, C);
		break;
	case OP_FC:
		if (!bwd)
			o->matmul_forward(k, b->h1, b->x, b->wfc, NULL, N, C, F);
		else
			o->matmul_backward(k, b->dx, b->dwfc, NULL, b->dh1, b->x, b->wfc, N, C, F);
		break;
	case OP_GELU:
		if (!bwd)
			o->gelu_forward(k, b->h2, b->h1, NF);
		else
			o->gelu_backward(k, b->dh1, b->h1, b->dh2, NF);
		break;
	case OP_RELU:
		if (!bwd)
			o->relu_forward(k, b->h2, b->h1, NF);
		else
			o->relu_backward(k, b->dh1, b->h1, b->dh2, NF);
		break;
	case OP_FCPROJ:
		if (!bwd)
			o->matmul_forward(k, b->y, b->h2, b->wfp, NULL, N, F, C);
		else
			o->matmul_backward(k, b->dh2, b->dwfp, NULL, b->dy, b->h2, b->wfp, N, F, C);
		break;
	case OP_DROPOUT:
		if (!bwd)
			o->dropout_forward(k, b->y, b->x, NC, 0.2f, 1234);
		else
			o->dropout_backward(k, b->dx, b->dy, NC, 0.2f, 1234);
		break;
	case OP_ADD:
		if (!bwd)
			o->add(k, b->y, b->x, b->y, NC);
		break;
	case OP_XENT_FULL:
		/* One call does both; the forward alone is the loss-only call. */
		b->sink += bwd ? o->xent_full(k, b->dx, b->demb, b->x, b->emb, &xs, 1e-4f)
		               : o->xent_full(k, NULL, NULL, b->x, b->emb, &xs, 1e-4f);
		break;
	case OP_XENT_SAMPLED:
		b->sink += bwd ? o->xent_sampled(k, b->dx, b->demb, b->x, b->emb, &xs, b->neg, S, b->logq, 1e-4f)
		               : o->xent_sampled(k, NULL, NULL, b->x, b->emb, &xs, b->neg, S, b->logq, 1e-4f);
		break;
	case OP_ADAMW:
		if (bwd) {
			struct kern_adamw a = { 1e-3f, 0.9f, 0.98f, 1e-8f, 0.01f, 1 };
			o->adamw(k, b->param, b->grad, b->m, b->v, b->nparam, &a, NULL);
		}
		break;
	case OP_SUMSQ:
		if (bwd)
			b->sink += o->sumsq(k, b->grad, b->nparam);
		break;
	}
}

static int op_has(int op, int bwd)
{
	if (op == OP_ADD)
		return !bwd;
	if (op == OP_ADAMW || op == OP_SUMSQ)
		return bwd;
	return 1;
}

static double time_op(struct kern *k, struct bufs *b, int op, int bwd)
{
	double t[64];
	int n = reps < 64 ? reps : 64;
	run_op(k, b, op, bwd);   /* warm: scratch, page faults, caches */
	for (int r = 0; r < n; r++) {
		double t0 = now();
		run_op(k, b, op, bwd);
		t[r] = (now() - t0) * 1e3;
	}
	qsort(t, (size_t)n, sizeof t[0], cmp_double);
	return t[n / 2];
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "B:T:C:H:V:F:S:r:t:m:gR:o:")) != -1) {
		switch (opt) {
		case 'B': B = atoi(optarg); break;
		case 'T': T = atoi(optarg); break;
		case 'C': C = atoi(optarg); break;
		case 'H': NH = atoi(optarg); break;
		case 'V': V = atoi(optarg); break;
		case 'F': F = atoi(optarg); break;
		case 'S': S = atoi(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 't': max_threads = atoi(optarg); break;
		case 'm': min_threads = atoi(optarg); break;
		case 'g': generic = 1; break;
		case 'R': xent_rows = atoi(optarg); break;
		case 'o':
			for (int i = 0; i < OP_COUNT; i++)
				if (strcmp(optarg, op_names[i]) == 0)
					only_op = i;
			if (only_op < 0) {
				fprintf(stderr, "bench_kernels: no op %s\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: %s [-B n] [-T n] [-C n] [-H heads] [-V n] [-F n] [-S n] [-r reps] "
			        "[-m min_threads] [-t max_threads] [-g] [-R xent_rows] [-o op]\n", argv[0]);
			return 2;
		}
	}
	if (B < 1 || T < 1 || C < 1 || NH < 1 || C % NH || V < 2 || F < 1 || S < 1 || reps < 1 || min_threads < 1 ||
	    max_threads < min_threads) {
		fprintf(stderr, "bench_kernels: bad shape\n");
		return 2;
	}

	struct bufs b = { 0 };
	int N = b.N = B * T;
	size_t NC = (size_t)N * C, NF = (size_t)N * F;
	b.pad = malloc(sizeof(int32_t) * B);
	b.idx = malloc(sizeof(int32_t) * N);
	b.tgt = malloc(sizeof(int32_t) * N);
	b.neg = malloc(sizeof(int32_t) * S);
	if (!b.pad || !b.idx || !b.tgt || !b.neg)
		return 1;
	long real = 0;
	for (int i = 0; i < B; i++) {
		int len = 18 + (int)(-135.0 * log(1.0 - urand()));
		len = len > T ? T : len;
		b.pad[i] = T - len;
		real += len;
	}
	for (int i = 0; i < N; i++) {
		int t = i % T, bi = i / T;
		b.idx[i] = t < b.pad[bi] ? 0 : 1 + (int)(urand() * (V - 1));
		b.tgt[i] = t < b.pad[bi] ? 0 : 1 + (int)(urand() * (V - 1));
	}
	for (int i = 0; i < S; i++)
		b.neg[i] = 1 + (int)(urand() * (V - 1));
	b.x = frand(NC, 1), b.dx = frand(NC, 1), b.y = frand(NC, 1), b.dy = frand(NC, 1);
	b.mean = frand(N, 0), b.rstd = frand(N, 0);
	b.lnw = frand(C, 1), b.lnb = frand(C, 1), b.dlnw = frand(C, 0), b.dlnb = frand(C, 0);
	b.qkv = frand(3 * NC, 1), b.dqkv = frand(3 * NC, 1), b.att = frand(NC, 1), b.datt = frand(NC, 1);
	b.lse = frand((size_t)B * NH * T, 0);
	b.wqkv = frand((size_t)3 * C * C, 0.1), b.bqkv = frand(3 * C, 0.1), b.dwqkv = frand((size_t)3 * C * C, 0);
	b.dbqkv = frand(3 * C, 0), b.wproj = frand((size_t)C * C, 0.1), b.dwproj = frand((size_t)C * C, 0);
	b.wfc = frand((size_t)F * C, 0.1), b.dwfc = frand((size_t)F * C, 0);
	b.wfp = frand((size_t)C * F, 0.1), b.dwfp = frand((size_t)C * F, 0);
	b.h1 = frand(NF, 1), b.dh1 = frand(NF, 1), b.h2 = frand(NF, 1), b.dh2 = frand(NF, 1);
	b.emb = frand((size_t)V * C, 0.5), b.demb = frand((size_t)V * C, 0), b.logq = frand(V, 1);
	for (int i = 0; i < V; i++)
		b.logq[i] = -8.0f + b.logq[i];
	/* SASRec's parameters at this shape, two blocks: items, positions,
	 * per block two layer norms, qkv, proj, fc, fcproj; a final layer norm. */
	b.nparam = (size_t)V * C + (size_t)T * C + 2 * ((size_t)4 * C + 3 * C * C + 3 * C + C * C + C +
	                                                 (size_t)F * C + F + (size_t)C * F + C) + 2 * C;
	b.param = frand(b.nparam, 0.1), b.grad = frand(b.nparam, 0.01);
	b.m = frand(b.nparam, 0), b.v = frand(b.nparam, 0);

	int nt = max_threads;
	double (*ms)[OP_COUNT][2] = calloc((size_t)nt + 1, sizeof *ms);
	const char *simd = "";
	if (!ms)
		return 1;
	for (int th = min_threads; th <= nt; th++) {
		struct kern *k;
		int r = kern_cpu_new(&k, th);
		if (r < 0) {
			fprintf(stderr, "bench_kernels: kern_cpu_new: %s\n", strerror(-r));
			return 1;
		}
		struct kern_cpu_tune tu;
		kern_cpu_get_tune(k, &tu);
		tu.simd = !generic;
		if (xent_rows > 0)
			tu.xent_rows = xent_rows;
		kern_cpu_set_tune(k, &tu);
		simd = kern_cpu_simd_name(k);
		for (int op = 0; op < OP_COUNT; op++)
			for (int bwd = 0; bwd < 2; bwd++)
				ms[th][op][bwd] = op_has(op, bwd) && (only_op < 0 || op == only_op) ? time_op(k, &b, op, bwd) : 0.0;
		kern_free(k);
	}

	printf("CPU kernels at B=%d T=%d C=%d NH=%d V=%d F=%d S=%d (%.0f%% real positions), %s row kernels, "
	       "median of %d, milliseconds\n", B, T, C, NH, V, F, S, 100.0 * real / N, simd, reps);
	printf("%-14s", "op");
	for (int th = min_threads; th <= nt; th++)
		printf("  fwd %dT   bwd %dT ", th, th);
	printf("\n");
	for (int op = 0; op < OP_COUNT; op++) {
		if (only_op >= 0 && op != only_op)
			continue;
		printf("%-14s", op_names[op]);
		for (int th = min_threads; th <= nt; th++)
			for (int bwd = 0; bwd < 2; bwd++)
				if (op_has(op, bwd))
					printf(" %8.3f", ms[th][op][bwd]);
				else
					printf(" %8s", "-");
		printf("\n");
	}
	printf("(xent fwd: loss only; xent bwd: loss and both gradients in one call; adamw, sumsq over %zu "
	       "parameters; checksum %g)\n", b.nparam, b.sink);

	printf("{\"bench\":\"kernels\",\"B\":%d,\"T\":%d,\"C\":%d,\"NH\":%d,\"V\":%d,\"F\":%d,\"S\":%d,"
	       "\"real_fraction\":%.3f,\"simd\":\"%s\",\"params\":%zu,\"ms\":{", B, T, C, NH, V, F, S,
	       (double)real / N, simd, b.nparam);
	for (int th = min_threads; th <= nt; th++) {
		printf("%s\"%d\":{", th > min_threads ? "," : "", th);
		int first = 1;
		for (int op = 0; op < OP_COUNT; op++)
			for (int bwd = 0; bwd < 2; bwd++)
				if (op_has(op, bwd) && (only_op < 0 || op == only_op)) {
					printf("%s\"%s_%s\":%.3f", first ? "" : ",", op_names[op], bwd ? "bwd" : "fwd", ms[th][op][bwd]);
					first = 0;
				}
		printf("}");
	}
	printf("}}\n");
	return 0;
}
