/* event.c: single events through the importer's own field checks (the
 * generic format's event columns), for callers that apply them in their own
 * write transaction; see event.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/event.h"
#include "import/import_int.h"

struct import_events {
	struct import_ctx *ctx;    /* for its checks, action/device tables and arena */
	struct import_rec *recs;
	size_t n, cap;
};

int import_events_new(struct import_events **out, struct store *st)
{
	struct import_options o;
	struct import_events *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	memset(&o, 0, sizeof o);
	o.format = "generic";
	int r = import_new(&b->ctx, st, &o);
	if (r < 0) {
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

void import_events_free(struct import_events *b)
{
	if (!b)
		return;
	import_free(b->ctx);
	free(b->recs);
	free(b);
}

size_t import_events_count(const struct import_events *b)
{
	return b->n;
}

static int ev_check(struct import_ctx *ctx, const struct import_ev_text *f, struct import_rec *out)
{
	const struct import_ev_text *x, *y;
	struct store_event *ev = &out->ev.ev;
	int rc;

	memset(out, 0, sizeof *out);
	x = &f[IMPORT_EV_USER];
	if (!x->p)
		return import_bad(ctx, "field 'user': missing");
	if ((rc = import_id(ctx, "user", x->p, x->n, &out->ev.user)) < 0)
		return rc;
	x = &f[IMPORT_EV_ITEM];
	if (!x->p)
		return import_bad(ctx, "field 'item': missing");
	if ((rc = import_id(ctx, "item", x->p, x->n, &out->ev.item)) < 0)
		return rc;
	x = &f[IMPORT_EV_TIME];
	if (!x->p)
		return import_bad(ctx, "field 'time': missing");
	if ((rc = import_time(ctx, "time", x->p, x->n, &ev->ts)) < 0)
		return rc;
	if ((x = &f[IMPORT_EV_ACTION])->p &&
	    (rc = import_action(ctx, x->p, x->n, &ev->action, &out->ev.action)) < 0)
		return rc;
	if ((x = &f[IMPORT_EV_VALUE])->p) {
		if ((rc = import_float(ctx, "value", x->p, x->n, &ev->value)) < 0)
			return rc;
		ev->flags |= STORE_EV_VALUE;
	}
	x = &f[IMPORT_EV_LAT];
	y = &f[IMPORT_EV_LON];
	if (x->p || y->p) {
		if (!x->p || !y->p)
			return import_bad(ctx, "field '%s': missing while '%s' is set", x->p ? "lon" : "lat",
			                  x->p ? "lat" : "lon");
		if ((rc = import_lat_lon(ctx, x->p, x->n, y->p, y->n, &ev->lat, &ev->lon)) < 0)
			return rc;
		ev->flags |= STORE_EV_LOC;
	}
	if ((x = &f[IMPORT_EV_DEVICE])->p && (rc = import_device(ctx, x->p, x->n, &out->ev.device)) < 0)
		return rc;
	if ((x = &f[IMPORT_EV_TEXT])->p && (rc = import_text(ctx, "text", x->p, x->n, 1, &out->ev.text)) < 0)
		return rc;
	return 0;
}

int import_events_add(struct import_events *b, const struct import_ev_text f[IMPORT_EV_COUNT],
                      char *why, size_t whylen)
{
	struct import_rec rec;
	int rc;

	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 64;
		struct import_rec *nr = realloc(b->recs, nc * sizeof *nr);
		if (!nr)
			return -ENOMEM;
		b->recs = nr;
		b->cap = nc;
	}
	rc = ev_check(b->ctx, f, &rec);
	if (rc == -EINVAL) {
		snprintf(why, whylen, "%s", import_why(b->ctx));
		return rc;
	}
	if (rc < 0)
		return rc;
	rec.line = b->n;
	b->recs[b->n++] = rec;
	return 0;
}

int import_events_apply(struct store_txn *tx, const struct import_events *b,
                        enum import_events_mode mode, uint32_t *uids)
{
	const struct imp_str *last_user = NULL;
	uint32_t uid = 0;
	for (size_t i = 0; i < b->n; i++) {
		int rc = import_apply_event(tx, &b->recs[i], mode == IMPORT_EVENTS_APPEND, &uid, &last_user);
		if (rc < 0)
			return rc;
		if (uids)
			uids[i] = uid;
	}
	return 0;
}
