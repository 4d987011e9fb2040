/* cpu.c: the CPU backend instance: its op table, a small persistent thread
 * pool (the caller is thread 0, workers sleep between jobs), scratch memory,
 * and the choice between the AVX2/FMA and the portable row kernels. */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "kernels/cpu/cpu.h"

/* A thread that waits for the pool (a worker for the next job, the caller
 * for the workers to finish) polls for this long before it sleeps: the ops
 * of a training step follow each other closely, and a futex wake-up costs
 * about as much as a small op.  Short, so a poller does not hold a core
 * that OpenBLAS's threads want during the sgemm that often comes next. */
#define CPU_SPIN_NS 30000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The pool's state word: generation << 32 | JOB_OPEN | the number of
 * workers inside the current job.  A worker joins a job only while it is
 * open, and the caller closes it as soon as its own share is done: from
 * then on it waits only for workers that joined, never for one the OS has
 * not run yet (this machine runs other work too).  Every op hands its work
 * out from a shared counter (cpu_chunks), so the caller alone finishes
 * whatever no worker took, with the same results. */
#define JOB_OPEN  (1ull << 31)
#define JOB_COUNT (JOB_OPEN - 1)

static inline uint32_t job_gen(uint64_t s)
{
	return (uint32_t)(s >> 32);
}

/* Polls the state, for at most CPU_SPIN_NS, until a job newer than seen is
 * published (new_job) or until no worker is inside the job (!new_job). */
static uint64_t spin_state(const uint64_t *p, int new_job, uint32_t seen)
{
	uint64_t s = __atomic_load_n(p, __ATOMIC_ACQUIRE);
	uint64_t t0 = 0;
	for (unsigned i = 1; new_job ? job_gen(s) == seen : (s & JOB_COUNT) != 0; i++) {
		cpu_relax();
		s = __atomic_load_n(p, __ATOMIC_ACQUIRE);
		if ((i & 63) == 0) {
			uint64_t t = now_ns();
			if (!t0)
				t0 = t;
			else if (t - t0 > CPU_SPIN_NS)
				break;
		}
	}
	return s;
}

static const struct kern_ops cpu_ops = {
	.name = "cpu",
	.matmul_forward = cpu_matmul_forward,
	.matmul_backward = cpu_matmul_backward,
	.embed_forward = cpu_embed_forward,
	.embed_backward = cpu_embed_backward,
	.layernorm_forward = cpu_layernorm_forward,
	.layernorm_backward = cpu_layernorm_backward,
	.attention_forward = cpu_attention_forward,
	.attention_backward = cpu_attention_backward,
	.attention_row = cpu_attention_row,
	.gelu_forward = cpu_gelu_forward,
	.gelu_backward = cpu_gelu_backward,
	.relu_forward = cpu_relu_forward,
	.relu_backward = cpu_relu_backward,
	.dropout_forward = cpu_dropout_forward,
	.dropout_backward = cpu_dropout_backward,
	.add = cpu_add,
	.xent_full = cpu_xent_full,
	.xent_sampled = cpu_xent_sampled,
	.score = cpu_score,
	.sumsq = cpu_sumsq,
	.scale = cpu_scale,
	.adamw = cpu_adamw,
};

/* ---- thread pool ---- */

struct worker_arg {
	struct cpu *c;
	int tid;
};

static void *cpu_worker(void *p)
{
	struct worker_arg *wa = p;
	struct cpu *c = wa->c;
	int tid = wa->tid;
	uint32_t seen = 0;

	free(wa);
	for (;;) {
		uint64_t s = spin_state(&c->state, 1, seen);
		if (job_gen(s) == seen) {
			pthread_mutex_lock(&c->mu);
			__atomic_add_fetch(&c->sleeping, 1, __ATOMIC_RELAXED);
			while (job_gen(s = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE)) == seen && !c->stop)
				pthread_cond_wait(&c->cv_work, &c->mu);
			__atomic_sub_fetch(&c->sleeping, 1, __ATOMIC_RELAXED);
			int stop = c->stop;
			pthread_mutex_unlock(&c->mu);
			if (stop)
				return NULL;
		}
		seen = job_gen(s);
		/* Join, unless the caller has closed the job already. */
		int joined = 0;
		while (job_gen(s) == seen && (s & JOB_OPEN) && !joined)
			joined = __atomic_compare_exchange_n(&c->state, &s, s + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE);
		if (!joined)
			continue;
		__atomic_add_fetch(&c->joined, 1, __ATOMIC_RELAXED);
		/* job_* were written before the state was published (release), and
		 * stay put while this worker is counted in it. */
		c->job_fn(c->job_arg, tid, c->job_nth);
		s = __atomic_sub_fetch(&c->state, 1, __ATOMIC_RELEASE);
		if ((s & JOB_COUNT) == 0 && !(s & JOB_OPEN)) {
			pthread_mutex_lock(&c->mu);
			pthread_cond_signal(&c->cv_done);
			pthread_mutex_unlock(&c->mu);
		}
	}
}

void cpu_parallel(struct cpu *c, cpu_task_fn fn, void *arg, size_t work)
{
	int nth = c->nthreads;
	if (nth <= 1 || work < c->tune.min_work ||
	    (work < c->tune.min_work_cold && __atomic_load_n(&c->sleeping, __ATOMIC_RELAXED) != 0)) {
		fn(arg, 0, 1);
		return;
	}
	c->job_fn = fn;
	c->job_arg = arg;
	c->job_nth = nth;
	c->gen++;
	__atomic_store_n(&c->state, (uint64_t)c->gen << 32 | JOB_OPEN, __ATOMIC_RELEASE);
	/* Taking the lock orders the store before any worker's check-then-wait. */
	pthread_mutex_lock(&c->mu);
	pthread_cond_broadcast(&c->cv_work);
	pthread_mutex_unlock(&c->mu);

	fn(arg, 0, nth);

	uint64_t s = __atomic_and_fetch(&c->state, ~JOB_OPEN, __ATOMIC_ACQ_REL);
	if (s & JOB_COUNT && spin_state(&c->state, 0, 0) & JOB_COUNT) {
		pthread_mutex_lock(&c->mu);
		while (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) & JOB_COUNT)
			pthread_cond_wait(&c->cv_done, &c->mu);
		pthread_mutex_unlock(&c->mu);
	}
}

/* ---- scratch ---- */

static float *grow(float **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return *buf;
	size_t want = n + n / 4;
	void *p = NULL;
	if (posix_memalign(&p, 64, want * sizeof(float)) != 0) {
		/* The ops have no error return (kernels.h); scratch is bounded by
		 * the tuning, so failing here means the machine is out of memory. */
		fprintf(stderr, "recd kernels: out of memory for %zu floats of scratch\n", want);
		abort();
	}
	free(*buf);
	*buf = p;
	*cap = want;
	return p;
}

float *cpu_scratch(struct cpu *c, size_t n)
{
	return grow(&c->scratch, &c->scratch_cap, n);
}

float *cpu_gemm_scratch(struct cpu *c, size_t n)
{
	return grow(&c->gscratch, &c->gscratch_cap, n);
}

float *cpu_tscratch(struct cpu *c, size_t n, size_t *stride)
{
	/* Round each thread's part up to a cache line so threads never share one. */
	size_t per = (n + 15) & ~(size_t)15;
	if (per > c->tscratch_cap) {
		size_t cap = 0;
		float *p = c->tscratch;
		c->tscratch = NULL;
		free(p);
		grow(&c->tscratch, &cap, per * (size_t)c->nthreads);
		c->tscratch_cap = per;
	}
	*stride = c->tscratch_cap;
	return c->tscratch;
}

/* ---- OpenBLAS's threads ---- */

/* OpenBLAS runs single-threaded, inside our pool's chunks (gemm.c): its
 * own workers would spin (sched_yield) for a while after each call and
 * compete for the two cores with our pool's ops, and on a busy machine its
 * static split waits for whichever thread the OS has put aside.  The
 * setting is process-wide, made once. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single_thread(void)
{
	openblas_set_num_threads(1);
}

/* ---- instance ---- */

static int cpu_count(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static const struct cpu_vec *pick_vec(int simd)
{
#ifdef CPU_HAVE_AVX2_BUILD
	if (simd) {
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
			return &cpu_vec_avx2;
	}
#else
	(void)simd;
#endif
	return &cpu_vec_generic;
}

static void cpu_destroy(struct kern *k)
{
	struct cpu *c = cpu_of(k);
	if (c->workers) {
		pthread_mutex_lock(&c->mu);
		c->stop = 1;
		pthread_cond_broadcast(&c->cv_work);
		pthread_mutex_unlock(&c->mu);
		for (int i = 1; i < c->nthreads; i++)
			pthread_join(c->workers[i], NULL);
		free(c->workers);
	}
	pthread_cond_destroy(&c->cv_done);
	pthread_cond_destroy(&c->cv_work);
	pthread_mutex_destroy(&c->mu);
	free(c->scratch);
	free(c->tscratch);
	free(c->gscratch);
	free(c);
}

int kern_cpu_new(struct kern **out, int nthreads)
{
	if (nthreads < 0)
		return -EINVAL;
	if (nthreads == 0)
		nthreads = cpu_count();
	if (nthreads > CPU_MAX_THREADS)
		nthreads = CPU_MAX_THREADS;

	struct cpu *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->base.destroy = cpu_destroy;
	c->kern.ops = &cpu_ops;
	c->kern.threads = nthreads;
	c->kern.impl = c;
	c->nthreads = nthreads;
	c->tune.simd = 1;
	c->tune.xent_rows = 256;
	c->tune.xent_cols = 8192;
	c->tune.min_work = 8192;
	c->tune.min_work_cold = 1 << 18;
	c->vec = pick_vec(1);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv_work, NULL);
	pthread_cond_init(&c->cv_done, NULL);

	if (nthreads > 1) {
		c->workers = calloc((size_t)nthreads, sizeof *c->workers);
		if (!c->workers)
			goto fail;
		for (int i = 1; i < nthreads; i++) {
			struct worker_arg *wa = malloc(sizeof *wa);
			int r = ENOMEM;
			if (wa) {
				wa->c = c;
				wa->tid = i;
				r = pthread_create(&c->workers[i], NULL, cpu_worker, wa);
			}
			if (r != 0) {
				free(wa);
				c->nthreads = i;  /* destroy joins the ones started */
				cpu_destroy(&c->kern);
				return -r;
			}
		}
	}
	pthread_once(&blas_once, blas_single_thread);
	*out = &c->kern;
	return 0;
fail:
	cpu_destroy(&c->kern);
	return -ENOMEM;
}

void kern_cpu_get_tune(const struct kern *k, struct kern_cpu_tune *t)
{
	*t = ((const struct cpu *)k->impl)->tune;
}

int kern_cpu_set_tune(struct kern *k, const struct kern_cpu_tune *t)
{
	if (t->xent_rows < 1 || t->xent_cols < 2)
		return -EINVAL;
	struct cpu *c = cpu_of(k);
	c->tune = *t;
	c->vec = pick_vec(t->simd);
	return 0;
}

const char *kern_cpu_simd_name(const struct kern *k)
{
	return ((const struct cpu *)k->impl)->vec->name;
}

unsigned long kern_cpu_joined(const struct kern *k)
{
	return __atomic_load_n(&((const struct cpu *)k->impl)->joined, __ATOMIC_RELAXED);
}
