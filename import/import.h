/* import.h: bulk import of datasets into the store (recctl import).  One
 * driver reads files in large blocks, splits records, reports bad lines and
 * applies records in batches, each batch one write transaction that also
 * records how far the source has been applied, so a killed import resumes
 * where its last commit ended and a finished one is never applied twice.
 * The formats are described in import/FORMATS.md.
 */
#ifndef RECD_IMPORT_H
#define RECD_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define IMPORT_LINE_MAX       (1u << 20) /* longest line (record) accepted */
#define IMPORT_BATCH_DEFAULT  65536u     /* lines per write transaction */
#define IMPORT_BATCH_MAX      (1u << 20)
#define IMPORT_MESSAGES_MAX   20u        /* bad-line messages shown before "... and N more" */
#define IMPORT_DATASET_MAX    128u       /* longest dataset name */

/* A file, or a file found in a directory, that one import reads. */
enum import_kind {
	IMPORT_KIND_ITEMS = 0, IMPORT_KIND_USERS, IMPORT_KIND_LINKS, IMPORT_KIND_TRIPLES,
	IMPORT_KIND_EVENTS,
	IMPORT_KIND_COUNT,
};
const char *import_kind_name(enum import_kind kind);

struct import_options {
	const char *format;    /* ml1m-seq, ml1m, ml100k (= recbole), foursquare, amazon, generic */
	const char *path;      /* FILE or DIR; NULL for generic given by the options below */
	/* generic only: files by role (each NULL when absent) */
	const char *events, *items, *users, *triples, *links;
	const char *dataset;   /* NULL: derived from the path */
	int strict;            /* any bad line: apply nothing, fail */
	size_t batch_lines;    /* 0: IMPORT_BATCH_DEFAULT */
	/* Bad-line messages and warnings, one per call without a line end.
	 * NULL: written to stderr. */
	void (*message)(void *arg, const char *msg);
	/* Called after each committed batch and at the end of each file. */
	void (*progress)(void *arg, const char *file, uint64_t lines, uint64_t bytes_done,
	                 uint64_t bytes_total);
	void *cb_arg;
};

/* What was found and done for one file. */
struct import_file_result {
	char path[4096];
	enum import_kind kind;
	int present;            /* 0: optional file not found */
	uint64_t lines;         /* physical lines read, header included */
	uint64_t records;       /* good records in the file */
	uint64_t bad_lines;
	uint64_t applied_lines; /* lines applied by this run (the rest was done before) */
};

#define IMPORT_FILES_MAX 8
struct import_result {
	char dataset[IMPORT_DATASET_MAX + 1];
	char time_unit[16];      /* "second", "minute" or "order" */
	int already_done;        /* the same input was fully imported before: nothing applied */
	int resumed;             /* an earlier, interrupted run had applied part of it */
	uint64_t lines, bad_lines;
	uint64_t events_added, triples_added, links_added;
	/* store totals before and after, for users/items/entities/relations added */
	struct store_counts before, after;
	double seconds;
	size_t nfiles;
	struct import_file_result files[IMPORT_FILES_MAX];
};

struct import_ctx;

/* Checks the options (format known, paths given) and makes a context for
 * one import into st.  -EINVAL for bad options: import_errmsg says why. */
int  import_new(struct import_ctx **out, struct store *st, const struct import_options *opt);
void import_free(struct import_ctx *ctx);
/* Runs the import (once per context).  Returns 0 when it completed (res->bad_lines may be
 * non-zero: those lines were skipped), or -errno: then import_errmsg says
 * why, and what earlier batches committed stays applied and is resumed by
 * the next run of the same import (with --strict nothing was applied when
 * the input had bad lines). */
int  import_run(struct import_ctx *ctx, struct import_result *res);
const char *import_errmsg(const struct import_ctx *ctx);

/* Names of the formats, NULL-terminated, for usage messages. */
extern const char *const import_format_names[];

#endif
