/* test.h: the few checks the C tests share.  A failed check prints where and
 * why and exits 1; test_skip() exits 77, which make check counts as SKIP. */
#ifndef RECD_TEST_H
#define RECD_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		exit(1); \
	} \
} while (0)

#define CHECK_OK(expr) do { \
	long long check_r_ = (long long)(expr); \
	if (check_r_ < 0) { \
		fprintf(stderr, "%s:%d: %s returned %lld (%s)\n", __FILE__, __LINE__, #expr, \
		        check_r_, strerror((int)-check_r_)); \
		exit(1); \
	} \
} while (0)

#define CHECK_EQ(a, b) do { \
	long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
	if (check_a_ != check_b_) { \
		fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
		        #a, check_a_, #b, check_b_); \
		exit(1); \
	} \
} while (0)

#define CHECK_STREQ(a, alen, b) do { \
	size_t check_l_ = strlen(b); \
	if ((size_t)(alen) != check_l_ || memcmp((a), (b), check_l_) != 0) { \
		fprintf(stderr, "%s:%d: %s is \"%.*s\", expected \"%s\"\n", __FILE__, __LINE__, \
		        #a, (int)(alen), (a), (b)); \
		exit(1); \
	} \
} while (0)

static inline void test_skip(const char *why)
{
	fprintf(stderr, "SKIP: %s\n", why);
	exit(77);
}

/* A fresh scratch directory under $TMPDIR; removed by test_rmtree(). */
static inline char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	static char path[4096];
	snprintf(path, sizeof path, "%s/recd-test.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		exit(1);
	}
	return path;
}

static inline void test_rmtree(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
}

#endif
