/* test_import.c: the importers end to end on small made-up files of every
 * format, written here into a scratch directory: counts, event order, values,
 * text conversion, attributes, the knowledge graph, bad-line reports with
 * their line numbers, --strict, re-import, and resuming after a crash. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "import/import.h"
#include "store/store.h"
#include "tests/test.h"

static char *g_dir;

/* --- fixtures ------------------------------------------------------------ */
static const char *path_of(const char *rel)
{
	static char p[8][4200];
	static int k;
	k = (k + 1) % 8;
	snprintf(p[k], sizeof(p[k]), "%s/%s", g_dir, rel);
	return p[k];
}

static void put(const char *rel, const char *content, size_t len)
{
	char path[4200], *slash;
	snprintf(path, sizeof(path), "%s/%s", g_dir, rel);
	for (slash = strchr(path + strlen(g_dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = 0;
		CHECK(mkdir(path, 0755) == 0 || errno == EEXIST);
		*slash = '/';
	}
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK_EQ(fwrite(content, 1, len, f), len);
	CHECK_EQ(fclose(f), 0);
}

static void puts_file(const char *rel, const char *content)
{
	put(rel, content, strlen(content));
}

static struct store *fresh_store(const char *name)
{
	struct store *st;
	struct store_options o = { .map_size = 0, .pseudonymise = -1, .readonly = 0 };
	CHECK_OK(store_open(&st, path_of(name), &o));
	return st;
}

/* --- running an import, capturing its messages ---------------------------- */
struct msgs {
	char buf[1 << 16];
	size_t len;
	int n;
};

static void on_msg(void *arg, const char *m)
{
	struct msgs *ms = arg;
	size_t l = strlen(m);
	if (ms->len + l + 2 < sizeof(ms->buf)) {
		memcpy(ms->buf + ms->len, m, l);
		ms->len += l;
		ms->buf[ms->len++] = '\n';
		ms->buf[ms->len] = 0;
	}
	ms->n++;
}

static int do_import(struct store *st, struct import_options *o, struct import_result *r,
                     struct msgs *m)
{
	struct import_ctx *ctx;
	memset(m, 0, sizeof(*m));
	o->message = on_msg;
	o->cb_arg = m;
	CHECK_OK(import_new(&ctx, st, o));
	int rc = import_run(ctx, r);
	if (rc < 0)
		snprintf(m->buf + m->len, sizeof(m->buf) - m->len, "error: %s\n", import_errmsg(ctx));
	import_free(ctx);
	return rc;
}

static int has(const struct msgs *m, const char *s)
{
	return strstr(m->buf, s) != NULL;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void counts(struct store *st, struct store_counts *c)
{
	struct store_txn *tx;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, c));
	store_txn_end(tx);
}

/* --- reading back ----------------------------------------------------------- */
struct evs {
	struct store_event ev[64];
	size_t n;
};

/* A user's events, oldest first. */
static void user_events(struct store_txn *tx, const char *user, struct evs *out)
{
	uint32_t uid;
	CHECK_OK(store_user_lookup(tx, user, strlen(user), &uid));
	CHECK_OK(store_events_last(tx, uid, 64, out->ev, &out->n));
	CHECK(out->n < 64);
}

static uint32_t item_of(struct store_txn *tx, const char *ext)
{
	uint32_t id;
	CHECK_OK(store_item_lookup(tx, ext, strlen(ext), &id));
	return id;
}

static void check_item_seq(struct store_txn *tx, const struct evs *e, const char *const *items, size_t n)
{
	CHECK_EQ(e->n, n);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(e->ev[i].item, item_of(tx, items[i]));
}

struct dsfind {
	const char *name;
	char json[4096];
};

static int find_dataset(const char *name, const char *json, void *arg)
{
	struct dsfind *d = arg;
	if (strcmp(name, d->name) == 0)
		snprintf(d->json, sizeof(d->json), "%s", json);
	return 0;
}

static void dataset_json(struct store *st, const char *name, struct dsfind *d)
{
	struct store_txn *tx;
	d->name = name;
	d->json[0] = 0;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_dataset_foreach(tx, find_dataset, d));
	store_txn_end(tx);
	CHECK(d->json[0] != 0);
}

/* --- ml1m-seq ------------------------------------------------------------------ */
static const char seq_file[] =
	"u1 i1\n"          /* 1 */
	"u1 i2\n"          /* 2 */
	"u2 i1\n"          /* 3 */
	"u1 i3\n"          /* 4: u1 again, after u2: position 2 */
	"u3\n"             /* 5: missing field */
	"u2 i2 extra\n"    /* 6: one field too many */
	"\n"               /* 7: blank, skipped silently */
	"%s i1\n"          /* 8: user ID too long */
	"u2\ti3\r\n";      /* 9: tab and CRLF are fine */

static void write_seq(const char *rel)
{
	char longid[300], buf[1024];
	memset(longid, 'x', 299);
	longid[299] = 0;
	snprintf(buf, sizeof(buf), seq_file, longid);
	puts_file(rel, buf);
}

static void test_ml1m_seq(void)
{
	struct import_options o = { .format = "ml1m-seq" };
	struct import_result r;
	struct msgs m;
	struct store_txn *tx;
	struct evs e;
	struct store_counts c;

	write_seq("seq/toy_seq.txt");
	struct store *st = fresh_store("st_seq");
	o.path = path_of("seq/toy_seq.txt");
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK_EQ(r.events_added, 5);
	CHECK_EQ(r.bad_lines, 3);
	CHECK_EQ(r.lines, 9);
	CHECK_EQ(r.after.users, 2);
	CHECK_EQ(r.after.items, 3);
	CHECK(strcmp(r.dataset, "toy_seq") == 0);
	CHECK(strcmp(r.time_unit, "order") == 0);
	CHECK_EQ(m.n, 3);
	CHECK(has(&m, "toy_seq.txt:5: expected 2 fields (user item), found 1"));
	CHECK(has(&m, "toy_seq.txt:6: expected 2 fields (user item), found more"));
	CHECK(has(&m, "toy_seq.txt:8: field 'user': longer than 255 bytes"));

	CHECK_OK(store_read_begin(st, &tx));
	user_events(tx, "u1", &e);
	static const char *const u1[] = { "i1", "i2", "i3" };
	check_item_seq(tx, &e, u1, 3);
	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ(e.ev[i].ts, (long long)i);
		CHECK_EQ(e.ev[i].action, STORE_ACTION_RATE);
		CHECK_EQ(e.ev[i].flags & STORE_EV_VALUE, 0);
	}
	user_events(tx, "u2", &e);
	static const char *const u2[] = { "i1", "i3" };
	check_item_seq(tx, &e, u2, 2);
	CHECK_EQ(e.ev[1].ts, 1);
	store_txn_end(tx);

	struct dsfind d;
	dataset_json(st, "toy_seq", &d);
	CHECK(strstr(d.json, "\"time_unit\":\"order\""));
	CHECK(strstr(d.json, "\"format\":\"ml1m-seq\""));
	CHECK(strstr(d.json, "\"records\":{\"events\":5}"));
	CHECK(strstr(d.json, "\"bad_lines\":3"));
	CHECK(strstr(d.json, "\"store_after\":{\"users\":2,\"items\":3,\"events\":5,"));

	/* the same file again: nothing applied */
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK(r.already_done);
	CHECK_EQ(r.events_added, 0);
	counts(st, &c);
	CHECK_EQ(c.events, 5);
	/* under another dataset name too: same file, same content */
	o.dataset = "other";
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK(r.already_done);
	counts(st, &c);
	CHECK_EQ(c.events, 5);
	o.dataset = NULL;

	/* --strict: the bad lines fail it and the store stays empty */
	struct store *st2 = fresh_store("st_seq_strict");
	o.strict = 1;
	CHECK_EQ(do_import(st2, &o, &r, &m), -EINVAL);
	CHECK(has(&m, "toy_seq.txt:5:"));
	CHECK(has(&m, "3 bad lines: nothing was imported (--strict)"));
	counts(st2, &c);
	CHECK_EQ(c.events, 0);
	CHECK_EQ(c.users, 0);
	CHECK_EQ(c.items, 0);
	CHECK_EQ(c.datasets, 0);
	/* a clean file under --strict goes in whole */
	puts_file("seq/clean.txt", "a x\na y\nb x\n");
	o.path = path_of("seq/clean.txt");
	CHECK_OK(do_import(st2, &o, &r, &m));
	CHECK_EQ(r.events_added, 3);
	CHECK_EQ(r.bad_lines, 0);
	store_close(st2);
	store_close(st);
}

/* --- resuming after a crash ----------------------------------------------------- */
static int g_batches;

static void die_after_two(void *arg, const char *file, uint64_t lines, uint64_t done, uint64_t total)
{
	(void)arg; (void)file; (void)lines; (void)done; (void)total;
	if (++g_batches == 2)
		raise(SIGKILL);  /* as a kill -9 right after the second commit */
}

static void test_resume(void)
{
	/* 40 lines, 4 users interleaved; batches of 3 lines: the child dies
	 * after 6 lines were committed. */
	char buf[4096];
	size_t len = 0;
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "r%d m%d\n", i % 4, i);
	put("seq/resume.txt", buf, len);

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct store *st = fresh_store("st_resume");
		struct import_options o = { .format = "ml1m-seq", .path = path_of("seq/resume.txt"),
		                            .batch_lines = 3, .progress = die_after_two };
		struct import_ctx *ctx;
		struct import_result r;
		if (import_new(&ctx, st, &o) < 0)
			_exit(2);
		import_run(ctx, &r);
		_exit(3);  /* not reached: killed first */
	}
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	struct store *st = fresh_store("st_resume");
	struct store_counts c;
	counts(st, &c);
	CHECK_EQ(c.events, 6);  /* two committed batches of 3 */

	struct import_options o = { .format = "ml1m-seq", .path = path_of("seq/resume.txt"), .batch_lines = 7 };
	struct import_result r;
	struct msgs m;
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK(r.resumed);
	CHECK(!r.already_done);
	CHECK_EQ(r.events_added, 34);
	counts(st, &c);
	CHECK_EQ(c.events, 40);
	/* positions were rebuilt from the lines applied before the crash */
	struct store_txn *tx;
	struct evs e;
	CHECK_OK(store_read_begin(st, &tx));
	for (int u = 0; u < 4; u++) {
		char name[8];
		snprintf(name, sizeof(name), "r%d", u);
		user_events(tx, name, &e);
		CHECK_EQ(e.n, 10);
		for (size_t i = 0; i < e.n; i++) {
			char it[8];
			snprintf(it, sizeof(it), "m%d", (int)i * 4 + u);
			CHECK_EQ(e.ev[i].ts, (long long)i);
			CHECK_EQ(e.ev[i].item, item_of(tx, it));
		}
	}
	store_txn_end(tx);
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK(r.already_done);
	counts(st, &c);
	CHECK_EQ(c.events, 40);
	store_close(st);
}

/* --- two runs of one import at once ------------------------------------------------ */
static struct store *g_race_store;
static int g_race_done;

/* After the outer run's first commit, a second run of the same import
 * goes all the way through; the outer run must then stop, not add twice. */
static void race(void *arg, const char *file, uint64_t lines, uint64_t done, uint64_t total)
{
	(void)arg; (void)file; (void)lines; (void)done; (void)total;
	if (g_race_done++)
		return;
	struct import_options o = { .format = "ml1m-seq", .path = path_of("seq/resume.txt"), .batch_lines = 5 };
	struct import_result r;
	struct msgs m;
	CHECK_OK(do_import(g_race_store, &o, &r, &m));
	CHECK(r.resumed);
	CHECK_EQ(r.events_added, 37);
}

static void test_concurrent(void)
{
	struct store *st = fresh_store("st_race");
	struct import_options o = { .format = "ml1m-seq", .path = path_of("seq/resume.txt"), .batch_lines = 3,
	                            .progress = race };
	struct import_ctx *ctx;
	struct import_result r;
	struct store_counts c;
	g_race_store = st;
	CHECK_OK(import_new(&ctx, st, &o));
	CHECK_EQ(import_run(ctx, &r), -EBUSY);
	CHECK(strstr(import_errmsg(ctx), "another import of the same file"));
	import_free(ctx);
	counts(st, &c);
	CHECK_EQ(c.events, 40);
	store_close(st);
}

/* --- ml1m -------------------------------------------------------------------- */
static void test_ml1m(void)
{
	/* Latin-1: 0xe9 is e-acute, 0xf1 n-tilde */
	puts_file("ml1m/movies.dat",
	          "10::Caf\xe9 Stories (1999)::Comedy|Drama\n"
	          "20::Ma\xf1" "ana::Documentary\n"
	          "30::A Title With No Genres (2001)::\n");
	puts_file("ml1m/users.dat", "1::F::25::4::12345\n2::M::56::16::70072\n");
	puts_file("ml1m/ratings.dat",
	          "1::10::5::978300760\n"
	          "1::20::3::978300700\n"   /* earlier: sorted before the first */
	          "2::10::x::978300761\n"   /* 3: bad rating */
	          "2::30::4\n"              /* 4: a field short */
	          "2::30::4::978300800\n");
	puts_file("ml1m/kg/kg.txt", "e10\tfilm.film.director\tp1\r\ne10\tfilm.film.genre\tg1\r\ne20\tfilm.film.director\tp1\r\n");
	puts_file("ml1m/kg/item_index2entity_id.txt", "10\te10\r\n20\te20\r\n");

	struct store *st = fresh_store("st_ml1m");
	struct import_options o = { .format = "ml1m", .path = path_of("ml1m") };
	struct import_result r;
	struct msgs m;
	CHECK_EQ(do_import(st, &o, &r, &m), 0);
	CHECK_EQ(r.events_added, 3);
	CHECK_EQ(r.bad_lines, 2);
	CHECK(has(&m, "ratings.dat:3: field 'Rating': not a number: \"x\""));
	CHECK(has(&m, "ratings.dat:4: expected 4 fields separated by '::', found 3"));
	CHECK_EQ(r.after.users, 2);
	CHECK_EQ(r.after.items, 3);
	CHECK_EQ(r.after.triples, 3);
	CHECK_EQ(r.after.relations, 2);
	CHECK_EQ(r.after.entities, 4);
	CHECK_EQ(r.links_added, 2);
	CHECK(strcmp(r.dataset, "ml1m") == 0);
	CHECK_EQ(r.nfiles, 5);
	for (size_t i = 0; i < r.nfiles; i++)
		CHECK(r.files[i].present);

	struct store_txn *tx;
	struct store_item it;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_item_get(tx, item_of(tx, "10"), &it));
	CHECK_STREQ(it.title, it.title_len, "Caf\xc3\xa9 Stories (1999)");
	CHECK_STREQ(it.categories, it.categories_len, "Comedy|Drama");
	CHECK_STREQ(it.attrs, it.attrs_len, "year=1999");
	CHECK_OK(store_item_get(tx, item_of(tx, "20"), &it));
	CHECK_STREQ(it.title, it.title_len, "Ma\xc3\xb1" "ana");
	CHECK_EQ(it.attrs_len, 0);
	CHECK_OK(store_item_get(tx, item_of(tx, "30"), &it));
	CHECK_EQ(it.categories_len, 0);

	uint32_t uid;
	const char *attrs;
	size_t alen;
	CHECK_OK(store_user_lookup(tx, "1", 1, &uid));
	CHECK_OK(store_user_get_attrs(tx, uid, &attrs, &alen));
	CHECK_STREQ(attrs, alen, "gender=F\nage=25\noccupation=4\nzip=12345");

	struct evs e;
	user_events(tx, "1", &e);
	static const char *const u1[] = { "20", "10" };
	check_item_seq(tx, &e, u1, 2);
	CHECK_EQ(e.ev[0].ts, 978300700);
	CHECK(e.ev[0].flags & STORE_EV_VALUE);
	CHECK(e.ev[0].value == 3.0f);
	CHECK(e.ev[1].value == 5.0f);
	CHECK_EQ(e.ev[1].action, STORE_ACTION_RATE);

	/* the knowledge graph: e10 -director-> p1 <-director- e20 */
	uint32_t e10, p1, rel, ents[4], nb[4];
	size_t got, total;
	CHECK_OK(store_entity_lookup(tx, "e10", 3, &e10));
	CHECK_OK(store_entity_lookup(tx, "p1", 2, &p1));
	CHECK_OK(store_relation_get_or_add(tx, "film.film.director", 18, &rel));
	CHECK_OK(store_kg_neighbours(tx, e10, rel, STORE_OUT, nb, 4, &got, &total));
	CHECK_EQ(got, 1);
	CHECK_EQ(nb[0], p1);
	CHECK_OK(store_kg_neighbours(tx, p1, rel, STORE_IN, nb, 4, &got, &total));
	CHECK_EQ(total, 2);
	CHECK_OK(store_item_entities(tx, item_of(tx, "10"), ents, 4, &got));
	CHECK_EQ(got, 1);
	CHECK_EQ(ents[0], e10);
	store_txn_end(tx);

	/* ml1m-seq over the same store shares the items, keyed by MovieID */
	puts_file("ml1m/seq.txt", "1 10\n1 30\n3 20\n");
	struct import_options s = { .format = "ml1m-seq", .path = path_of("ml1m/seq.txt") };
	CHECK_OK(do_import(st, &s, &r, &m));
	CHECK_EQ(r.events_added, 3);
	CHECK_EQ(r.after.items, 3);
	CHECK_EQ(r.after.users, 3);
	store_close(st);

	/* a directory with only some parts: what is there is imported */
	puts_file("ml1m_part/movies.dat", "5::Five (1995)::Drama\n");
	st = fresh_store("st_ml1m_part");
	o.path = path_of("ml1m_part");
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK_EQ(r.after.items, 1);
	CHECK_EQ(r.events_added, 0);
	CHECK(r.files[0].present);
	for (size_t i = 1; i < r.nfiles; i++)
		CHECK(!r.files[i].present);
	store_close(st);

	/* a directory with none of them fails and says so */
	CHECK(mkdir(path_of("empty"), 0755) == 0);
	st = fresh_store("st_ml1m_none");
	o.path = path_of("empty");
	CHECK_EQ(do_import(st, &o, &r, &m), -ENOENT);
	CHECK(has(&m, "none of the files"));
	store_close(st);
}

/* --- ml100k (RecBole atomic files) ------------------------------------------------ */
static void test_recbole(void)
{
	/* columns in another order than ml-100k's: found by name */
	puts_file("toy-100k/toy-100k.inter",
	          "item_id:token\tuser_id:token\ttimestamp:float\trating:float\n"
	          "i2\tu1\t200\t4\n"
	          "i1\tu1\t100\t3.5\n"
	          "i1\tu2\t150\tx\n"       /* line 4: bad rating */
	          "i3\tu2\t50\t2\n"
	          "i3\tu2\t60\n");         /* line 6: a field short */
	puts_file("toy-100k/toy-100k.item",
	          "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
	          "i1\tFirst Film\t1995\tAction Comedy\n"
	          "i2\tSecond Film\t1996\tDrama\n"
	          "i3\tThird\t\t\n");
	puts_file("toy-100k/toy-100k.user",
	          "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
	          "u1\t24\tM\ttechnician\t85711\n"
	          "u2\t53\tF\tother\t94043\n");
	puts_file("toy-100k/toy-100k.kg",
	          "head_id:token\trelation_id:token\ttail_id:token\n"
	          "m.a\tfilm.film.actor\tm.b\n"
	          "m.a\tfilm.film.actor\tm.c\n"
	          "m.d\tfilm.film.actor\tm.b\n");
	puts_file("toy-100k/toy-100k.link", "item_id:token\tentity_id:token\ni1\tm.a\ni2\tm.d\n");

	struct store *st = fresh_store("st_rb");
	struct import_options o = { .format = "ml100k", .path = path_of("toy-100k") };
	struct import_result r;
	struct msgs m;
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK_EQ(r.events_added, 3);
	CHECK_EQ(r.bad_lines, 2);
	CHECK(has(&m, "toy-100k.inter:4: field 'rating': not a number: \"x\""));
	CHECK(has(&m, "toy-100k.inter:6: expected 4 fields, found 3"));
	CHECK_EQ(r.after.users, 2);
	CHECK_EQ(r.after.items, 3);
	CHECK_EQ(r.after.triples, 3);
	CHECK_EQ(r.after.entities, 4);
	CHECK_EQ(r.links_added, 2);
	CHECK(strcmp(r.dataset, "toy-100k") == 0);
	CHECK(strcmp(r.time_unit, "second") == 0);

	struct store_txn *tx;
	struct store_item it;
	struct evs e;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_item_get(tx, item_of(tx, "i1"), &it));
	CHECK_STREQ(it.title, it.title_len, "First Film");
	CHECK_STREQ(it.categories, it.categories_len, "Action|Comedy");
	CHECK_STREQ(it.attrs, it.attrs_len, "release_year=1995");
	CHECK_OK(store_item_get(tx, item_of(tx, "i3"), &it));
	CHECK_EQ(it.attrs_len, 0);
	CHECK_EQ(it.categories_len, 0);
	uint32_t uid;
	const char *attrs;
	size_t alen;
	CHECK_OK(store_user_lookup(tx, "u2", 2, &uid));
	CHECK_OK(store_user_get_attrs(tx, uid, &attrs, &alen));
	CHECK_STREQ(attrs, alen, "age=53\ngender=F\noccupation=other\nzip_code=94043");
	user_events(tx, "u1", &e);
	static const char *const u1[] = { "i1", "i2" };
	check_item_seq(tx, &e, u1, 2);
	CHECK_EQ(e.ev[0].ts, 100);
	CHECK(e.ev[0].value == 3.5f);
	uint32_t ma, mb, rel, nb[4];
	size_t got, total;
	CHECK_OK(store_entity_lookup(tx, "m.a", 3, &ma));
	CHECK_OK(store_entity_lookup(tx, "m.b", 3, &mb));
	CHECK_OK(store_relation_get_or_add(tx, "film.film.actor", 15, &rel));
	CHECK_OK(store_kg_neighbours(tx, ma, rel, STORE_OUT, nb, 4, &got, &total));
	CHECK_EQ(total, 2);
	CHECK_OK(store_kg_neighbours(tx, mb, rel, STORE_IN, nb, 4, &got, &total));
	CHECK_EQ(total, 2);
	store_txn_end(tx);
	store_close(st);

	/* a header without a required column fails the import */
	puts_file("bad-100k/bad-100k.inter", "user_id:token\trating:float\nu1\t3\n");
	st = fresh_store("st_rb_bad");
	o.path = path_of("bad-100k");
	CHECK_EQ(do_import(st, &o, &r, &m), -EINVAL);
	CHECK(has(&m, "bad-100k.inter:1: header: no 'item_id' column"));
	store_close(st);
}

/* --- foursquare ------------------------------------------------------------------ */
static void test_foursquare(void)
{
	puts_file("poi/toy_pois.tsv",
	          "poi\tlat\tlon\n"
	          "p1\t40.5\t-73.25\n"
	          "p2\t95.0\t10.0\n"      /* line 3: bad latitude */
	          "p3\t41.0\t-74.0\n");
	puts_file("poi/toy_checkins.tsv",
	          "user\tpoi\ttime_min\n"
	          "1\tp1\t300\n"
	          "1\tp3\t100\n"
	          "2\tp1\t5\n"
	          "1\tp2\t200\n"
	          "1\tp3\tsoon\n");        /* line 6: bad time */

	struct store *st = fresh_store("st_4sq");
	struct import_options o = { .format = "foursquare", .path = path_of("poi") };
	struct import_result r;
	struct msgs m;
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK_EQ(r.events_added, 4);
	CHECK_EQ(r.bad_lines, 2);
	CHECK(has(&m, "toy_pois.tsv:3: field 'lat': outside [-90, 90]: \"95.0\""));
	CHECK(has(&m, "toy_checkins.tsv:6: field 'time_min': not an integer: \"soon\""));
	CHECK(strcmp(r.time_unit, "minute") == 0);
	CHECK_EQ(r.after.items, 3);  /* p2 arrives through its check-in */
	CHECK_EQ(r.after.users, 2);

	struct store_txn *tx;
	struct evs e;
	struct store_item it;
	CHECK_OK(store_read_begin(st, &tx));
	user_events(tx, "1", &e);
	static const char *const u1[] = { "p3", "p2", "p1" };  /* sorted by time */
	check_item_seq(tx, &e, u1, 3);
	CHECK_EQ(e.ev[0].ts, 100);
	CHECK_EQ(e.ev[1].ts, 200);
	CHECK_EQ(e.ev[2].ts, 300);
	CHECK_EQ(e.ev[0].action, STORE_ACTION_CHECKIN);
	CHECK(e.ev[0].flags & STORE_EV_LOC);
	CHECK(e.ev[0].lat == 41.0f && e.ev[0].lon == -74.0f);
	CHECK(!(e.ev[1].flags & STORE_EV_LOC));  /* p2's line was bad */
	CHECK(e.ev[2].lat == 40.5f && e.ev[2].lon == -73.25f);
	CHECK_OK(store_item_get(tx, item_of(tx, "p1"), &it));
	CHECK_STREQ(it.attrs, it.attrs_len, "lat=40.5\nlon=-73.25");
	store_txn_end(tx);
	store_close(st);
}

/* --- amazon ------------------------------------------------------------------------ */
static void test_amazon(void)
{
	puts_file("amz/Toy_Reviews.json",
	          "{\"reviewerID\": \"R1\", \"asin\": \"B01\", \"reviewerName\": \"Zebulon Quixote\", "
	          "\"helpful\": [1, 2], \"reviewText\": \"Works \\\"fine\\\".\", \"overall\": 4.0, "
	          "\"summary\": \"Good\", \"unixReviewTime\": 1400000000, \"reviewTime\": \"05 13, 2014\"}\n"
	          "{\"reviewerID\": \"R1\", \"asin\": \"B02\", \"overall\": 2.0, \"summary\": \"Meh\", "
	          "\"reviewText\": \"\", \"unixReviewTime\": 1300000000}\n"
	          "{\"reviewerID\": \"R2\", \"asin\": \"B01\", \"overall\": 5\n"   /* 3: truncated */
	          "{\"reviewerID\": \"R2\", \"overall\": 5, \"unixReviewTime\": 1}\n" /* 4: no asin */
	          "[1, 2]\n"                                                      /* 5: not an object */
	          "{\"reviewerID\": \"R2\", \"asin\": \"B03\", \"overall\": 3.0, \"unixReviewTime\": 1500000000}\n");
	struct store *st = fresh_store("st_amz");
	struct import_options o = { .format = "amazon", .path = path_of("amz/Toy_Reviews.json") };
	struct import_result r;
	struct msgs m;
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK_EQ(r.events_added, 3);
	CHECK_EQ(r.bad_lines, 3);
	CHECK(has(&m, "Toy_Reviews.json:3: truncated JSON"));
	CHECK(has(&m, "Toy_Reviews.json:4: field 'asin': missing"));
	CHECK(has(&m, "Toy_Reviews.json:5: not a JSON object"));
	CHECK(strcmp(r.dataset, "Toy_Reviews") == 0);
	CHECK_EQ(r.after.users, 2);
	CHECK_EQ(r.after.items, 3);

	struct store_txn *tx;
	struct evs e;
	const char *text;
	size_t tlen;
	CHECK_OK(store_read_begin(st, &tx));
	user_events(tx, "R1", &e);
	static const char *const r1[] = { "B02", "B01" };
	check_item_seq(tx, &e, r1, 2);
	CHECK(e.ev[1].value == 4.0f);
	CHECK_EQ(e.ev[1].ts, 1400000000);
	CHECK(e.ev[1].flags & STORE_EV_TEXT);
	uint32_t uid;
	CHECK_OK(store_user_lookup(tx, "R1", 2, &uid));
	CHECK_OK(store_event_text(tx, uid, &e.ev[1], &text, &tlen));
	CHECK_STREQ(text, tlen, "Good\nWorks \"fine\".");
	CHECK_OK(store_event_text(tx, uid, &e.ev[0], &text, &tlen));
	CHECK_STREQ(text, tlen, "Meh\n");
	user_events(tx, "R2", &e);
	CHECK_EQ(e.n, 1);
	CHECK(!(e.ev[0].flags & STORE_EV_TEXT));
	store_txn_end(tx);
	store_close(st);

	/* reviewerName is personal data: it is nowhere in the store file */
	struct stat sb;
	CHECK_EQ(stat(path_of("st_amz/data.mdb"), &sb), 0);
	char *blob = malloc((size_t)sb.st_size);
	CHECK(blob != NULL);
	FILE *f = fopen(path_of("st_amz/data.mdb"), "rb");
	CHECK(f != NULL);
	size_t n = fread(blob, 1, (size_t)sb.st_size, f);
	fclose(f);
	CHECK_EQ(n, (size_t)sb.st_size);
	CHECK(memmem(blob, n, "Zebulon", 7) == NULL);
	CHECK(memmem(blob, n, "Works", 5) != NULL);  /* while the review text is */
	free(blob);
}

/* --- generic ----------------------------------------------------------------------- */
static void test_generic(void)
{
	puts_file("gen/items.csv",
	          "item,title,categories,color,text\n"
	          "a1,\"Chair, wooden\",furniture|home,brown,\"Says \"\"sit\"\"\"\n"
	          "a2,Lamp,home,,\"two\nlines\"\n"      /* lines 3-4 */
	          "a3,Ghost\n"                          /* line 5: a field short */
	          "a4,Table,,white,\n");
	puts_file("gen/users.tsv", "user\tcountry\tsegment\nv1\tDE\tgold\nv2\t\tsilver\n");
	puts_file("gen/triples.csv", "head,relation,tail,head_type,tail_type\nx1,made_by,x2,product,brand\n");
	puts_file("gen/links.csv", "item,entity\na1,x1\n");
	puts_file("gen/events.csv",
	          "user,item,time,action,value,lat,lon,device,extra\n"
	          "v1,a1,2020-01-02T03:04:05Z,view,,,,phone,q\n"
	          "v1,a2,1577934200,purchase,19.5,48.1,11.5,web,q\n"
	          "v1,a3,2020-01-02T03:04:06,wishlist,,,,,q\n"
	          "v2,a1,100,VIEW,,91,0,,q\n"           /* line 5: bad latitude */
	          "v2,a1,2020-13-01T00:00:00,view,,,,,q\n" /* line 6: bad month */
	          "v2,a1,100,view,1e999,,,,q\n"        /* line 7: value overflows */
	          "v2,a2,100,,,,,,q\n");
	struct store *st = fresh_store("st_gen");
	struct import_options o = { .format = "generic", .path = path_of("gen") };
	struct import_result r;
	struct msgs m;
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK_EQ(r.events_added, 4);
	CHECK_EQ(r.bad_lines, 4);
	CHECK(has(&m, "items.csv:5: expected 5 fields, found 2"));
	CHECK(has(&m, "events.csv:5: field 'lat': outside [-90, 90]: \"91\""));
	CHECK(has(&m, "events.csv:6: field 'time': not a Unix time or YYYY-MM-DDTHH:MM:SS[Z]"));
	CHECK(has(&m, "events.csv:7: field 'value': not a number: \"1e999\""));
	CHECK_EQ(count_of(m.buf, "ignoring unknown columns 'extra'"), 1);
	CHECK_EQ(r.after.items, 4);   /* a1 a2 a4 from items.csv, a3 from events */
	CHECK_EQ(r.after.users, 2);
	CHECK_EQ(r.after.triples, 1);
	CHECK_EQ(r.links_added, 1);
	CHECK(strcmp(r.dataset, "gen") == 0);

	struct store_txn *tx;
	struct store_item it;
	struct evs e;
	const char *s;
	size_t sl;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_item_get(tx, item_of(tx, "a1"), &it));
	CHECK_STREQ(it.title, it.title_len, "Chair, wooden");
	CHECK_STREQ(it.categories, it.categories_len, "furniture|home");
	CHECK_STREQ(it.attrs, it.attrs_len, "color=brown");
	CHECK_STREQ(it.text, it.text_len, "Says \"sit\"");
	CHECK_OK(store_item_get(tx, item_of(tx, "a2"), &it));
	CHECK_STREQ(it.text, it.text_len, "two\nlines");
	CHECK_EQ(it.attrs_len, 0);
	uint32_t uid;
	CHECK_OK(store_user_lookup(tx, "v2", 2, &uid));
	CHECK_OK(store_user_get_attrs(tx, uid, &s, &sl));
	CHECK_STREQ(s, sl, "segment=silver");

	user_events(tx, "v1", &e);
	static const char *const v1[] = { "a2", "a1", "a3" };
	check_item_seq(tx, &e, v1, 3);
	CHECK_EQ(e.ev[1].ts, 1577934245);   /* 2020-01-02T03:04:05Z */
	CHECK_EQ(e.ev[2].ts, 1577934246);
	CHECK_EQ(e.ev[0].action, STORE_ACTION_PURCHASE);
	CHECK(e.ev[0].value == 19.5f);
	CHECK(e.ev[0].flags & STORE_EV_LOC);
	CHECK(e.ev[0].lat == 48.1f);
	CHECK_OK(store_device_name(tx, e.ev[0].device, &s, &sl));
	CHECK_STREQ(s, sl, "web");
	CHECK_OK(store_device_name(tx, e.ev[1].device, &s, &sl));
	CHECK_STREQ(s, sl, "phone");
	CHECK_EQ(e.ev[1].action, STORE_ACTION_VIEW);
	CHECK(e.ev[2].action >= STORE_ACTION_BUILTIN_COUNT);
	CHECK_OK(store_action_name(tx, e.ev[2].action, &s, &sl));
	CHECK_STREQ(s, sl, "wishlist");
	CHECK_EQ(e.ev[2].device, STORE_DEVICE_NONE);
	user_events(tx, "v2", &e);
	CHECK_EQ(e.n, 1);
	CHECK_EQ(e.ev[0].action, STORE_ACTION_NONE);

	uint32_t x1, x2, rel, nb[2];
	size_t got, total;
	const char *type;
	size_t tl;
	CHECK_OK(store_entity_lookup(tx, "x1", 2, &x1));
	CHECK_OK(store_entity_lookup(tx, "x2", 2, &x2));
	CHECK_OK(store_entity_get(tx, x2, &s, &sl, &type, &tl));
	CHECK_STREQ(type, tl, "brand");
	CHECK_OK(store_relation_get_or_add(tx, "made_by", 7, &rel));
	CHECK_OK(store_kg_neighbours(tx, x1, rel, STORE_OUT, nb, 2, &got, &total));
	CHECK_EQ(got, 1);
	CHECK_EQ(nb[0], x2);
	CHECK_OK(store_item_entities(tx, item_of(tx, "a1"), nb, 2, &got));
	CHECK_EQ(got, 1);
	CHECK_EQ(nb[0], x1);
	store_txn_end(tx);
	store_close(st);

	/* events only, TSV, no time column: time is the position, unit "order" */
	puts_file("gen2/clicks.tsv", "user_id\titem_id\nw1\tb1\nw1\tb2\nw2\tb1\nw1\tb3\n");
	st = fresh_store("st_gen2");
	struct import_options o2 = { .format = "generic", .events = path_of("gen2/clicks.tsv") };
	CHECK_OK(do_import(st, &o2, &r, &m));
	CHECK_EQ(r.events_added, 4);
	CHECK(strcmp(r.time_unit, "order") == 0);
	CHECK(strcmp(r.dataset, "clicks") == 0);
	CHECK_OK(store_read_begin(st, &tx));
	user_events(tx, "w1", &e);
	static const char *const w1[] = { "b1", "b2", "b3" };
	check_item_seq(tx, &e, w1, 3);
	CHECK_EQ(e.ev[2].ts, 2);
	store_txn_end(tx);

	/* --strict with one bad line: the store is unchanged */
	struct store_counts before, after;
	counts(st, &before);
	puts_file("gen2/more.csv", "user,item,time\nw9,b9,10\nw9,b8,oops\nw9,b7,12\n");
	struct import_options o3 = { .format = "generic", .events = path_of("gen2/more.csv"), .strict = 1 };
	CHECK_EQ(do_import(st, &o3, &r, &m), -EINVAL);
	CHECK(has(&m, "more.csv:3: field 'time': not a Unix time"));
	CHECK(has(&m, "1 bad line: nothing was imported (--strict)"));
	counts(st, &after);
	CHECK_EQ(after.events, before.events);
	CHECK_EQ(after.users, before.users);
	CHECK_EQ(after.items, before.items);
	CHECK_EQ(after.datasets, before.datasets);
	store_close(st);
}

/* --- limits: over-long lines, the message cap ---------------------------------------- */
static void test_limits(void)
{
	size_t big = IMPORT_LINE_MAX + 100;
	char *buf = malloc(big + 4096);
	CHECK(buf != NULL);
	size_t len = (size_t)sprintf(buf, "user,item,time\nk1,j1,1\nk1,");
	memset(buf + len, 'z', big);
	len += big;
	len += (size_t)sprintf(buf + len, ",2\nk1,j3,3\n");
	/* 25 bad lines after: 20 are shown, then a summary */
	for (int i = 0; i < 25; i++)
		len += (size_t)sprintf(buf + len, "k2,j%d,never\n", i);
	put("lim/events.csv", buf, len);
	free(buf);

	struct store *st = fresh_store("st_lim");
	struct import_options o = { .format = "generic", .events = path_of("lim/events.csv") };
	struct import_result r;
	struct msgs m;
	CHECK_OK(do_import(st, &o, &r, &m));
	CHECK_EQ(r.events_added, 2);
	CHECK_EQ(r.bad_lines, 26);
	CHECK(has(&m, "events.csv:3: line longer than 1048576 bytes"));
	CHECK(has(&m, "events.csv:5: field 'time'"));
	CHECK(!has(&m, "events.csv:24:"));  /* the 21st bad line */
	CHECK(has(&m, "events.csv:23:"));   /* the 20th */
	CHECK(has(&m, "... and 6 more bad lines"));
	CHECK_EQ(m.n, 21);
	CHECK_EQ(r.nfiles, 1);
	CHECK_EQ(r.files[0].lines, 29);
	store_close(st);

	/* IDs: a too-long item, a control character */
	char ids[600];
	len = (size_t)sprintf(ids, "user,item\nk1,");
	memset(ids + len, 'i', 256);
	len += 256;
	len += (size_t)sprintf(ids + len, "\nk1,a\x01" "b\nk1,fine\n");
	put("lim/ids.csv", ids, len);
	st = fresh_store("st_lim2");
	struct import_options o2 = { .format = "generic", .events = path_of("lim/ids.csv") };
	CHECK_OK(do_import(st, &o2, &r, &m));
	CHECK_EQ(r.events_added, 1);
	CHECK(has(&m, "ids.csv:2: field 'item': longer than 255 bytes"));
	CHECK(has(&m, "ids.csv:3: field 'item': control character in ID: \"a\\x01b\""));
	store_close(st);
}

int main(void)
{
	g_dir = test_tmpdir();
	test_ml1m_seq();
	test_resume();
	test_concurrent();
	test_ml1m();
	test_recbole();
	test_foursquare();
	test_amazon();
	test_generic();
	test_limits();
	test_rmtree(g_dir);
	printf("test_import: ok\n");
	return 0;
}
