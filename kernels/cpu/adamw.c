/* adamw.c: the optimizer step and the gradient norm for clipping. */
#include "config.h"

#include <math.h>

#include "kernels/cpu/cpu.h"

/* The sum of squares is taken over fixed chunks of the array, each in
 * double, and the chunks' sums are added in order: the same result for any
 * thread count. */
#define SUMSQ_MAX_CHUNKS 4096

struct sumsq_job {
	const struct cpu_vec *vec;
	const float *g;
	size_t n, chunk;
	double *part;
	int nchunks;
	struct cpu_chunks q;
};

static void sumsq_task(void *arg, int tid, int nth)
{
	struct sumsq_job *j = arg;
	size_t a, b;
	while (cpu_chunk(&j->q, &a, &b))
		j->part[a / j->chunk] = j->vec->sumsq(j->g + a, b - a);
}

double cpu_sumsq(struct kern *k, const float *g, size_t n)
{
	struct cpu *c = cpu_of(k);
	double part[SUMSQ_MAX_CHUNKS];
	size_t chunk = 16384;
	if (n > chunk * SUMSQ_MAX_CHUNKS)
		chunk = ((n + SUMSQ_MAX_CHUNKS - 1) / SUMSQ_MAX_CHUNKS + 15) & ~(size_t)15;
	struct sumsq_job j = { c->vec, g, n, chunk, part, (int)((n + chunk - 1) / chunk), cpu_chunks(n, chunk) };
	cpu_parallel(c, sumsq_task, &j, n);
	double s = 0.0;
	for (int q = 0; q < j.nchunks; q++)
		s += part[q];
	return s;
}

struct adamw_job {
	const struct cpu_vec *vec;
	float *p, *m, *v;
	const float *g;
	const uint8_t *mask;
	size_t n;
	struct adamw_coef coef;
	struct cpu_chunks q;
};

static void adamw_task(void *arg, int tid, int nth)
{
	struct adamw_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi))
		j->vec->adamw(j->p + lo, j->g + lo, j->m + lo, j->v + lo, j->mask ? j->mask + lo : NULL, hi - lo, &j->coef);
}

/* Adam (Kingma & Ba, ICLR 2015) with bias correction, and weight decay
 * decoupled from the gradient (Loshchilov & Hutter, ICLR 2019). */
void cpu_adamw(struct kern *k, float *param, const float *grad, float *m, float *v, size_t n,
               const struct kern_adamw *o, const uint8_t *decay_mask)
{
	struct cpu *c = cpu_of(k);
	int t = o->t < 1 ? 1 : o->t;
	struct adamw_job j = { .vec = c->vec, .p = param, .m = m, .v = v, .g = grad, .mask = decay_mask, .n = n,
	                       .coef = { .lr = o->lr, .beta1 = o->beta1, .beta2 = o->beta2, .eps = o->eps,
	                                 .decay = o->lr * o->weight_decay,
	                                 .bc1 = (float)(1.0 - pow(o->beta1, t)),
	                                 .bc2 = (float)(1.0 - pow(o->beta2, t)) },
	                       .q = cpu_chunks(n, CPU_CHUNK_ELEMS) };
	cpu_parallel(c, adamw_task, &j, n);
}
