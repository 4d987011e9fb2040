/* import_int.h: what the import driver (import.c) shares with the format
 * readers (one file per format).  A format adds the files it reads as units;
 * the driver reads each unit's records and hands them to the unit's parse
 * function, which turns one record into a format-independent import_rec (or
 * rejects it with a reason); the driver applies records in batches.
 */
#ifndef RECD_IMPORT_INT_H
#define RECD_IMPORT_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "import/csv.h"
#include "import/import.h"

/* A string inside the read buffer or the batch arena: valid until the batch
 * it belongs to has been applied.  p == NULL means "not given". */
struct imp_str {
	const char *p;
	uint32_t n;
};

struct import_rec {
	uint64_t line;   /* line the record starts on, for messages */
	union {
		struct {
			struct imp_str user, item;
			struct imp_str action;  /* custom action name; else ev.action holds the id */
			struct imp_str device;  /* device name, resolved when applied */
			struct imp_str text;
			struct store_event ev;
		} ev;
		struct {
			struct imp_str item, title, text, categories, attrs;
		} item;
		struct {
			struct imp_str user, attrs;
		} user;
		struct {
			struct imp_str head, rel, tail, head_type, tail_type;
		} triple;
		struct {
			struct imp_str item, entity;
		} link;
	};
};

/* How a unit's file is cut into records. */
enum import_split {
	IMPORT_SPLIT_LINES = 0,  /* one record per line, "\r\n" or "\n" */
	IMPORT_SPLIT_CSV,        /* CSV: quoted fields may hold line ends */
};

struct import_ctx;
struct import_unit;

/* Parses the header line (units with has_header).  0, or -errno with the
 * reason in the context: a bad header fails the whole import. */
typedef int (*import_header_fn)(struct import_ctx *ctx, struct import_unit *u,
                                const char *rec, size_t len);
/* Parses one record.  0: *out holds it; IMPORT_SKIP: nothing to apply (a
 * blank line); -EINVAL: a bad line, the reason set with import_bad(); other
 * -errno: the import fails. */
#define IMPORT_SKIP 1
typedef int (*import_parse_fn)(struct import_ctx *ctx, struct import_unit *u,
                               const char *rec, size_t len, struct import_rec *out);

#define IMPORT_COLS_MAX 16  /* named columns a format looks up in a header */

struct import_unit {
	char path[4096];
	const char *label;        /* the name in messages and results: path */
	enum import_kind kind;
	int present;
	enum import_split split;
	int has_header;
	char delim;               /* for formats that split with csv_split */
	int quoting;
	import_header_fn header;
	import_parse_fn parse;
	/* Filled by the header parser: column index of each named column the
	 * format looks for (-1 absent), the header's field count, and which
	 * columns go into attributes. */
	int col[IMPORT_COLS_MAX];
	int ncols;
	uint64_t attr_cols;       /* bit i: column i becomes an attribute */
	char *hdr_buf;            /* owned copy of the header line */
	struct csv_field hdr[CSV_MAX_FIELDS];
	int time_order;           /* events: ts is the position in the user's sequence */
	/* Set by the driver */
	uint8_t file_hash[32];
	uint8_t key[32];
	struct import_file_result *res;
};

/* --- what formats call ------------------------------------------------ */
/* Adds a unit for path (a file that must exist when required, else one that
 * is skipped when absent).  *out points into the context. */
int import_add_unit(struct import_ctx *ctx, const char *path, enum import_kind kind,
                    int required, struct import_unit **out);
const struct import_options *import_opts(const struct import_ctx *ctx);
/* 0 when path is a directory, else import_fail() saying why. */
int import_need_dir(struct import_ctx *ctx, const char *path);
/* Sets the dataset's time unit ("second", "minute", "order"). */
void import_set_time_unit(struct import_ctx *ctx, const char *unit);
/* Sets the dataset name used when --dataset is not given. */
int  import_set_default_dataset(struct import_ctx *ctx, const char *path, int strip_ext);
/* The error of the import as a whole (returns err). */
int  import_fail(struct import_ctx *ctx, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The reason a record is bad (returns -EINVAL). */
int  import_bad(struct import_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The reason import_bad() last recorded (import/event.c reads it). */
const char *import_why(const struct import_ctx *ctx);
/* Applies one event record (user, item, action and device names resolved or
 * created, as a batch does) inside the caller's write transaction: into the
 * user's list (store_event_add), or with append into the recent table
 * (store_event_append).  *last_uid gets the user's internal ID; it and
 * *last_user (NULL at first) carry the user from one call to the next, so
 * a run of one user's events looks the user up once. */
int  import_apply_event(struct store_txn *tx, const struct import_rec *r, int append,
                        uint32_t *last_uid, const struct imp_str **last_user);
/* A warning about a unit, shown once by the caller's logic (not counted). */
void import_warn(struct import_ctx *ctx, const struct import_unit *u, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Memory that lives until the current batch has been applied. */
void *import_alloc(struct import_ctx *ctx, size_t n);

/* Field checks: each returns 0 or import_bad()'s -EINVAL naming the field. */
int import_id(struct import_ctx *ctx, const char *field, const char *p, size_t n,
              struct imp_str *out);
/* Text: kept when valid UTF-8, else taken as ISO-8859-1 and converted;
 * empty text gives p == NULL when empty_is_null. */
int import_text(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                int empty_is_null, struct imp_str *out);
int import_double(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                  double *out);
int import_float(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                 float *out);
int import_int64(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                 int64_t *out);
/* Integer seconds, or YYYY-MM-DDTHH:MM:SS with an optional Z (UTC). */
int import_time(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                int64_t *out);
int import_lat_lon(struct import_ctx *ctx, const char *lat, size_t lat_n,
                   const char *lon, size_t lon_n, float *out_lat, float *out_lon);
/* An action name: builtin ones set *id, others are kept for the store to
 * name (checked for length and counted against the custom-id space). */
int import_action(struct import_ctx *ctx, const char *p, size_t n, uint8_t *id,
                  struct imp_str *custom);
int import_device(struct import_ctx *ctx, const char *p, size_t n, struct imp_str *out);
/* The next position (0, 1, ...) in a user's sequence, for sources without
 * timestamps: counts the good event records of each user in file order. */
int import_seq_next(struct import_ctx *ctx, const struct imp_str *user, int64_t *pos);

/* Attributes "k=v" joined by '\n', built in the batch arena.  Values with
 * line ends get spaces instead; empty values are left out. */
struct import_attrs {
	char *buf;
	size_t len, cap;
};
int import_attrs_init(struct import_ctx *ctx, struct import_attrs *a, size_t cap);
int import_attrs_add(struct import_ctx *ctx, struct import_attrs *a, const char *key, size_t key_n,
                     const char *val, size_t val_n);
void import_attrs_done(const struct import_attrs *a, struct imp_str *out);

/* A string -> 64-bit value table that lives for the whole import (the POI
 * coordinates of foursquare, the sequence positions). */
struct import_map;
int  import_map_new(struct import_map **out);
void import_map_free(struct import_map *m);
void import_map_clear(struct import_map *m);
/* *val points at the slot (0 when new) until the next insert. */
int  import_map_upsert(struct import_map *m, const char *k, size_t n, uint64_t **val, int *added);
int  import_map_get(const struct import_map *m, const char *k, size_t n, uint64_t *val);
/* A table a format keeps in the context; reset when a pass starts. */
struct import_map *import_poi_map(struct import_ctx *ctx);

/* Generic header handling: finds the named columns (name lists terminated by
 * NULL; alternatives separated by '|', e.g. "user|user_id"), ignoring case
 * and a RecBole ":type" suffix.  Columns named nowhere are attributes when
 * rest_are_attrs, else a warning names them once. */
struct import_colspec {
	const char *names;    /* "user|user_id" */
	int required;
};
int import_header_columns(struct import_ctx *ctx, struct import_unit *u, const char *rec,
                          size_t len, const struct import_colspec *spec, size_t nspec,
                          int rest_are_attrs);
/* Splits a record with the unit's delimiter and quoting; checks the field
 * count against the header's.  Returns the field count or import_bad(). */
int import_split_fields(struct import_ctx *ctx, const struct import_unit *u, const char *rec,
                        size_t len, struct csv_field *f);
/* Builds attributes from the unit's attribute columns. */
int import_attr_columns(struct import_ctx *ctx, const struct import_unit *u,
                        const struct csv_field *f, struct imp_str *out);

/* Formats: each adds its units from the options. */
int import_fmt_ml1m_seq(struct import_ctx *ctx);
int import_fmt_ml1m(struct import_ctx *ctx);
int import_fmt_recbole(struct import_ctx *ctx);
int import_fmt_foursquare(struct import_ctx *ctx);
int import_fmt_amazon(struct import_ctx *ctx);
int import_fmt_generic(struct import_ctx *ctx);

/* State a format keeps for the whole import (freed with the context). */
void  import_set_fmt_state(struct import_ctx *ctx, void *state, void (*free_fn)(void *));
void *import_fmt_state(struct import_ctx *ctx);

#endif
