/* backend.h: what every backend instance begins with, private to kernels/.
 * kernels.h's op table has no destructor, so kern_free() finds one here:
 * k->impl of every backend points to a struct whose first member is a
 * struct kern_backend. */
#ifndef RECD_KERNELS_BACKEND_H
#define RECD_KERNELS_BACKEND_H

#include "kernels/kernels.h"

struct kern_backend {
	void (*destroy)(struct kern *k);
};

#endif
