/* kernels.c: the backend-independent part of kernels.h: releasing a backend
 * instance and the learning-rate schedule. */
#include "config.h"

#include <math.h>

#include "kernels/backend.h"
#include "kernels/kernels.h"

void kern_free(struct kern *k)
{
	if (!k)
		return;
	((struct kern_backend *)k->impl)->destroy(k);
}

/* step counts from 1, like kern_adamw.t: the rate of the step about to be
 * taken.  Warm-up is linear, lr_max * step / warmup (so step 0 gives 0 and
 * step warmup gives lr_max); after it, half a cosine period from lr_max
 * down to lr_min at step total (Loshchilov & Hutter, SGDR, ICLR 2017,
 * without restarts), and lr_min after that.  total 0: lr_max after warm-up. */
float kern_lr_schedule(int step, int warmup, int total, float lr_max, float lr_min)
{
	if (step < 0)
		step = 0;
	if (warmup > 0 && step < warmup)
		return (float)((double)lr_max * step / warmup);
	if (total <= 0)
		return lr_max;
	if (step >= total)
		return lr_min;
	double progress = (double)(step - warmup) / (double)(total - warmup);
	return (float)(lr_min + 0.5 * ((double)lr_max - lr_min) * (1.0 + cos(M_PI * progress)));
}
