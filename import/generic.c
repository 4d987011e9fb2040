/* generic.c: the generic format: CSV or TSV files with a header line naming
 * the columns, one file per role (events, items, users, triples, links),
 * given one by one or found in a directory as ROLE.csv or ROLE.tsv.  The
 * delimiter is a tab when the header holds one, else a comma; CSV fields may
 * be quoted as in RFC 4180 (TSV fields never are).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "import/import_int.h"

enum { E_USER, E_ITEM, E_TIME, E_ACTION, E_VALUE, E_LAT, E_LON, E_DEVICE, E_TEXT };
static const struct import_colspec event_cols[] = {
	{ "user|user_id", 1 }, { "item|item_id", 1 }, { "time|timestamp|ts", 0 },
	{ "action", 0 }, { "value|rating", 0 }, { "lat|latitude", 0 }, { "lon|lng|longitude", 0 },
	{ "device", 0 }, { "text", 0 },
};
enum { I_ITEM, I_TITLE, I_TEXT, I_CATS };
static const struct import_colspec item_cols[] = {
	{ "item|item_id", 1 }, { "title", 0 }, { "text|description", 0 },
	{ "categories|category|genres", 0 },
};
static const struct import_colspec user_cols[] = { { "user|user_id", 1 } };
enum { T_HEAD, T_REL, T_TAIL, T_HTYPE, T_TTYPE };
static const struct import_colspec triple_cols[] = {
	{ "head", 1 }, { "relation|rel", 1 }, { "tail", 1 }, { "head_type", 0 }, { "tail_type", 0 },
};
enum { L_ITEM, L_ENTITY };
static const struct import_colspec link_cols[] = { { "item|item_id", 1 }, { "entity|entity_id", 1 } };

#define NSPEC(a) (sizeof(a) / sizeof((a)[0]))

/* The header decides the delimiter, and with it whether quotes count. */
static void set_delim(struct import_unit *u, const char *rec, size_t len)
{
	u->delim = csv_guess_delim(rec, len);
	u->quoting = u->delim == ',';
	u->split = u->quoting ? IMPORT_SPLIT_CSV : IMPORT_SPLIT_LINES;
}

static int empty_record(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != ',')
			return 0;
	return 1;
}

/* A field that may be absent: the column is missing, or the cell empty. */
static const struct csv_field *opt_field(const struct import_unit *u, const struct csv_field *f, int col)
{
	int c = u->col[col];
	return c >= 0 && f[c].len ? &f[c] : NULL;
}

static int event_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	set_delim(u, rec, len);
	int rc = import_header_columns(ctx, u, rec, len, event_cols, NSPEC(event_cols), 0);
	if (rc < 0)
		return rc;
	if ((u->col[E_LAT] < 0) != (u->col[E_LON] < 0))
		return import_fail(ctx, -EINVAL, "%s:1: header: a 'lat' column needs a 'lon' column and the other way round",
		                   u->label);
	u->time_order = u->col[E_TIME] < 0;
	import_set_time_unit(ctx, u->time_order ? "order" : "second");
	return 0;
}

static int event_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                       struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	const struct csv_field *x, *y;
	struct store_event *ev = &out->ev.ev;
	int rc;
	if (empty_record(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	x = &f[u->col[E_USER]];
	if ((rc = import_id(ctx, "user", x->p, x->len, &out->ev.user)) < 0)
		return rc;
	x = &f[u->col[E_ITEM]];
	if ((rc = import_id(ctx, "item", x->p, x->len, &out->ev.item)) < 0)
		return rc;
	if (!u->time_order) {
		x = &f[u->col[E_TIME]];
		if ((rc = import_time(ctx, "time", x->p, x->len, &ev->ts)) < 0)
			return rc;
	}
	if ((x = opt_field(u, f, E_ACTION)) &&
	    (rc = import_action(ctx, x->p, x->len, &ev->action, &out->ev.action)) < 0)
		return rc;
	if ((x = opt_field(u, f, E_VALUE))) {
		if ((rc = import_float(ctx, "value", x->p, x->len, &ev->value)) < 0)
			return rc;
		ev->flags |= STORE_EV_VALUE;
	}
	x = opt_field(u, f, E_LAT);
	y = opt_field(u, f, E_LON);
	if (x || y) {
		if (!x || !y)
			return import_bad(ctx, "field '%s': empty while '%s' is set", x ? "lon" : "lat", x ? "lat" : "lon");
		if ((rc = import_lat_lon(ctx, x->p, x->len, y->p, y->len, &ev->lat, &ev->lon)) < 0)
			return rc;
		ev->flags |= STORE_EV_LOC;
	}
	if ((x = opt_field(u, f, E_DEVICE)) && (rc = import_device(ctx, x->p, x->len, &out->ev.device)) < 0)
		return rc;
	if ((x = opt_field(u, f, E_TEXT)) && (rc = import_text(ctx, "text", x->p, x->len, 1, &out->ev.text)) < 0)
		return rc;
	/* Last: a line rejected above must not take a position. */
	if (u->time_order)
		return import_seq_next(ctx, &out->ev.user, &ev->ts);
	return 0;
}

static int item_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	set_delim(u, rec, len);
	return import_header_columns(ctx, u, rec, len, item_cols, NSPEC(item_cols), 1);
}

static int item_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                      struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	const struct csv_field *x;
	int rc;
	if (empty_record(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	x = &f[u->col[I_ITEM]];
	if ((rc = import_id(ctx, "item", x->p, x->len, &out->item.item)) < 0)
		return rc;
	if ((x = opt_field(u, f, I_TITLE)) && (rc = import_text(ctx, "title", x->p, x->len, 1, &out->item.title)) < 0)
		return rc;
	if ((x = opt_field(u, f, I_TEXT)) && (rc = import_text(ctx, "text", x->p, x->len, 1, &out->item.text)) < 0)
		return rc;
	if ((x = opt_field(u, f, I_CATS)) &&
	    (rc = import_text(ctx, "categories", x->p, x->len, 1, &out->item.categories)) < 0)
		return rc;
	return import_attr_columns(ctx, u, f, &out->item.attrs);
}

static int user_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	set_delim(u, rec, len);
	return import_header_columns(ctx, u, rec, len, user_cols, NSPEC(user_cols), 1);
}

static int user_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                      struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	int rc;
	if (empty_record(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	const struct csv_field *x = &f[u->col[0]];
	if ((rc = import_id(ctx, "user", x->p, x->len, &out->user.user)) < 0)
		return rc;
	return import_attr_columns(ctx, u, f, &out->user.attrs);
}

static int triple_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	set_delim(u, rec, len);
	return import_header_columns(ctx, u, rec, len, triple_cols, NSPEC(triple_cols), 0);
}

static int triple_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                        struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	const struct csv_field *x;
	int rc;
	if (empty_record(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	x = &f[u->col[T_HEAD]];
	if ((rc = import_id(ctx, "head", x->p, x->len, &out->triple.head)) < 0)
		return rc;
	x = &f[u->col[T_REL]];
	if ((rc = import_id(ctx, "relation", x->p, x->len, &out->triple.rel)) < 0)
		return rc;
	x = &f[u->col[T_TAIL]];
	if ((rc = import_id(ctx, "tail", x->p, x->len, &out->triple.tail)) < 0)
		return rc;
	if ((x = opt_field(u, f, T_HTYPE)) && (rc = import_id(ctx, "head_type", x->p, x->len, &out->triple.head_type)) < 0)
		return rc;
	if ((x = opt_field(u, f, T_TTYPE)) && (rc = import_id(ctx, "tail_type", x->p, x->len, &out->triple.tail_type)) < 0)
		return rc;
	return 0;
}

static int link_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	set_delim(u, rec, len);
	return import_header_columns(ctx, u, rec, len, link_cols, NSPEC(link_cols), 0);
}

static int link_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                      struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	const struct csv_field *x;
	int rc;
	if (empty_record(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	x = &f[u->col[L_ITEM]];
	if ((rc = import_id(ctx, "item", x->p, x->len, &out->link.item)) < 0)
		return rc;
	x = &f[u->col[L_ENTITY]];
	return import_id(ctx, "entity", x->p, x->len, &out->link.entity);
}

struct generic_role {
	const char *name;
	enum import_kind kind;
	import_header_fn header;
	import_parse_fn parse;
};

/* Applied in this order: what events refer to exists, with its details,
 * before the events arrive. */
static const struct generic_role roles[] = {
	{ "items", IMPORT_KIND_ITEMS, item_header, item_parse },
	{ "users", IMPORT_KIND_USERS, user_header, user_parse },
	{ "triples", IMPORT_KIND_TRIPLES, triple_header, triple_parse },
	{ "links", IMPORT_KIND_LINKS, link_header, link_parse },
	{ "events", IMPORT_KIND_EVENTS, event_header, event_parse },
};

static int add_role(struct import_ctx *ctx, const struct generic_role *r, const char *path, int required)
{
	struct import_unit *u;
	int rc = import_add_unit(ctx, path, r->kind, required, &u);
	if (rc < 0)
		return rc;
	u->has_header = 1;
	u->header = r->header;
	u->parse = r->parse;
	return 0;
}

int import_fmt_generic(struct import_ctx *ctx)
{
	const struct import_options *opt = import_opts(ctx);
	const char *given[5] = { opt->items, opt->users, opt->triples, opt->links, opt->events };
	int any = 0, rc;

	for (size_t i = 0; i < 5; i++)
		any |= given[i] != NULL;
	if (opt->path && any)
		return import_fail(ctx, -EINVAL, "generic: give either a directory or --events/--items/... files, not both");
	if (!opt->path && !any)
		return import_fail(ctx, -EINVAL, "generic: no files given (a directory, or --events, --items, --users, --triples, --links)");
	if (any) {
		for (size_t i = 0; i < 5; i++)
			if (given[i] && (rc = add_role(ctx, &roles[i], given[i], 1)) < 0)
				return rc;
		const char *first = opt->events;
		for (size_t i = 0; !first && i < 5; i++)
			first = given[i];
		return import_set_default_dataset(ctx, first, 1);
	}
	if ((rc = import_need_dir(ctx, opt->path)) < 0)
		return rc;
	for (size_t i = 0; i < 5; i++) {
		char csv[4096], tsv[4096];
		if ((size_t)snprintf(csv, sizeof(csv), "%s/%s.csv", opt->path, roles[i].name) >= sizeof(csv) ||
		    (size_t)snprintf(tsv, sizeof(tsv), "%s/%s.tsv", opt->path, roles[i].name) >= sizeof(tsv))
			return import_fail(ctx, -ENAMETOOLONG, "%s: path too long", opt->path);
		int has_csv = access(csv, F_OK) == 0, has_tsv = access(tsv, F_OK) == 0;
		if (has_csv && has_tsv)
			return import_fail(ctx, -EINVAL, "%s: both %s.csv and %s.tsv: remove one", opt->path,
			                   roles[i].name, roles[i].name);
		if ((rc = add_role(ctx, &roles[i], has_tsv ? tsv : csv, 0)) < 0)
			return rc;
	}
	return import_set_default_dataset(ctx, opt->path, 0);
}
