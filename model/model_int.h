/* model_int.h: helpers shared by the files of model/ and nothing else. */
#ifndef RECD_MODEL_INT_H
#define RECD_MODEL_INT_H

#include <stddef.h>
#include <stdint.h>

/* Writes the reason into why (when given) and returns err. */
int seqrec_why(char *why, size_t whylen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* splitmix64 (Steele, Lea & Flood 2014): the step of the generators that
 * order batches, seed dropout and draw evaluation negatives. */
static inline uint64_t seqrec_mix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
