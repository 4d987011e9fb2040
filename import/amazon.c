/* amazon.c: Amazon review dumps (McAuley's 2014 "5-core" files): one JSON
 * object per line.  reviewerID and asin name the user and the item, overall
 * is the rating, unixReviewTime the time, and summary + "\n" + reviewText
 * the event's text.  reviewerName is personal data and is never read.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "import/import_int.h"

static void tokener_free(void *p)
{
	json_tokener_free(p);
}

/* A string member: *p points into the JSON object (copy it before the
 * object is freed), NULL when absent. */
static int member_string(struct import_ctx *ctx, json_object *o, const char *name, int required,
                         const char **p, size_t *n)
{
	json_object *v;
	*p = NULL;
	*n = 0;
	if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			return import_bad(ctx, "field '%s': missing", name);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return import_bad(ctx, "field '%s': not a string", name);
	*p = json_object_get_string(v);
	*n = (size_t)json_object_get_string_len(v);
	return 0;
}

static int copy_str(struct import_ctx *ctx, const char *p, size_t n, struct imp_str *out)
{
	char *c = import_alloc(ctx, n ? n : 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, p, n);
	out->p = c;
	out->n = (uint32_t)n;
	return 0;
}

static int review_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                        struct import_rec *out)
{
	json_tokener *tok = import_fmt_state(ctx);
	json_object *o, *v;
	const char *s, *sum, *body;
	size_t sn, sumn, bodyn;
	int rc;

	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i == n)
		return IMPORT_SKIP;
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, p, (int)n);
	if (!o) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		if (e == json_tokener_continue)
			return import_bad(ctx, "truncated JSON");
		return import_bad(ctx, "not JSON: %s", json_tokener_error_desc(e));
	}
	for (size_t k = json_tokener_get_parse_end(tok); k < n; k++) {
		if (p[k] != ' ' && p[k] != '\t') {
			rc = import_bad(ctx, "text after the JSON object");
			goto out;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		rc = import_bad(ctx, "not a JSON object");
		goto out;
	}
	if ((rc = member_string(ctx, o, "reviewerID", 1, &s, &sn)) < 0 ||
	    (rc = import_id(ctx, "reviewerID", s, sn, &out->ev.user)) < 0 ||
	    (rc = copy_str(ctx, s, sn, &out->ev.user)) < 0 ||
	    (rc = member_string(ctx, o, "asin", 1, &s, &sn)) < 0 ||
	    (rc = import_id(ctx, "asin", s, sn, &out->ev.item)) < 0 ||
	    (rc = copy_str(ctx, s, sn, &out->ev.item)) < 0)
		goto out;
	if (!json_object_object_get_ex(o, "unixReviewTime", &v)) {
		rc = import_bad(ctx, "field 'unixReviewTime': missing");
		goto out;
	}
	if (!json_object_is_type(v, json_type_int)) {
		rc = import_bad(ctx, "field 'unixReviewTime': not an integer");
		goto out;
	}
	out->ev.ev.ts = json_object_get_int64(v);
	out->ev.ev.action = STORE_ACTION_RATE;
	if (json_object_object_get_ex(o, "overall", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
			rc = import_bad(ctx, "field 'overall': not a number");
			goto out;
		}
		double d = json_object_get_double(v);
		if (!(d >= -1e30 && d <= 1e30)) {
			rc = import_bad(ctx, "field 'overall': out of range");
			goto out;
		}
		out->ev.ev.value = (float)d;
		out->ev.ev.flags |= STORE_EV_VALUE;
	}
	if ((rc = member_string(ctx, o, "summary", 0, &sum, &sumn)) < 0 ||
	    (rc = member_string(ctx, o, "reviewText", 0, &body, &bodyn)) < 0)
		goto out;
	if (sumn || bodyn) {
		size_t tn = sumn + 1 + bodyn;
		if (tn > STORE_TEXT_MAX_LEN) {
			rc = import_bad(ctx, "field 'reviewText': summary and text longer than %u bytes",
			                STORE_TEXT_MAX_LEN);
			goto out;
		}
		char *t = import_alloc(ctx, tn);
		if (!t) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(t, sum ? sum : "", sumn);
		t[sumn] = '\n';
		memcpy(t + sumn + 1, body ? body : "", bodyn);
		if (memchr(t, 0, tn)) {
			rc = import_bad(ctx, "field 'reviewText': contains a NUL character");
			goto out;
		}
		out->ev.text.p = t;
		out->ev.text.n = (uint32_t)tn;
	}
	rc = 0;
out:
	json_object_put(o);
	return rc;
}

int import_fmt_amazon(struct import_ctx *ctx)
{
	const struct import_options *opt = import_opts(ctx);
	struct import_unit *u;
	int rc;
	if (!opt->path)
		return import_fail(ctx, -EINVAL, "amazon: no file given");
	if ((rc = import_add_unit(ctx, opt->path, IMPORT_KIND_EVENTS, 1, &u)) < 0)
		return rc;
	u->parse = review_parse;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return import_fail(ctx, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	import_set_fmt_state(ctx, tok, tokener_free);
	import_set_time_unit(ctx, "second");
	return import_set_default_dataset(ctx, opt->path, 1);
}
