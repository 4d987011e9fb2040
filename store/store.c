/* store.c: recd's stores on LMDB.  Layouts are in store_int.h; the API and its
 * error conventions in store.h.  LMDB's return codes are translated to
 * negative errnos here and nowhere else (store_rc). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "store/recent.h"
#include "store/store.h"
#include "store/store_int.h"

#define STORE_MAP_DEFAULT  ((size_t)64 << 20)
#define STORE_MAP_MAX      ((size_t)1 << 40)   /* growth stops at 1 TiB */
#define STORE_KEY_FILE     "user-id.key"
#define STORE_MAX_RETRIES  40

enum {
	DBI_META, DBI_USER_KEY, DBI_USER, DBI_ITEM_KEY, DBI_ITEM, DBI_EVENTS,
	DBI_EVENT_TEXT, DBI_ITEM_TEXT, DBI_VOCAB, DBI_ENTITY_KEY, DBI_ENTITY,
	DBI_RELATION_KEY, DBI_RELATION, DBI_KG_OUT, DBI_KG_IN, DBI_ITEM_ENT,
	DBI_ENT_ITEM, DBI_MODEL, DBI_MODEL_BLOB, DBI_DATASET, DBI_IMPORT,
	DBI_RECENT,  /* schema 2: absent from a version-1 store until its first append */
	DBI_COUNT
};

static const struct { const char *name; unsigned flags; } store_dbs[DBI_COUNT] = {
	[DBI_META]         = { "meta", 0 },
	[DBI_USER_KEY]     = { "user_key", 0 },
	[DBI_USER]         = { "user", MDB_INTEGERKEY },
	[DBI_ITEM_KEY]     = { "item_key", 0 },
	[DBI_ITEM]         = { "item", MDB_INTEGERKEY },
	[DBI_EVENTS]       = { "events", MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED },
	[DBI_EVENT_TEXT]   = { "event_text", 0 },
	[DBI_ITEM_TEXT]    = { "item_text", MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED },
	[DBI_VOCAB]        = { "vocab", 0 },
	[DBI_ENTITY_KEY]   = { "entity_key", 0 },
	[DBI_ENTITY]       = { "entity", MDB_INTEGERKEY },
	[DBI_RELATION_KEY] = { "relation_key", 0 },
	[DBI_RELATION]     = { "relation", MDB_INTEGERKEY },
	[DBI_KG_OUT]       = { "kg_out", MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP },
	[DBI_KG_IN]        = { "kg_in", MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP },
	[DBI_ITEM_ENT]     = { "item_ent", MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP },
	[DBI_ENT_ITEM]     = { "ent_item", MDB_INTEGERKEY },
	[DBI_MODEL]        = { "model", MDB_INTEGERKEY },
	[DBI_MODEL_BLOB]   = { "model_blob", MDB_INTEGERKEY },
	[DBI_DATASET]      = { "dataset", 0 },
	[DBI_IMPORT]       = { "import", 0 },
	[DBI_RECENT]       = { "recent", MDB_INTEGERKEY },
};

/* A process-local cache of external ID -> internal ID.  Mappings never change
 * once committed, so a cached entry stays true; entries added by a write
 * transaction that is then aborted are dropped by clearing the whole cache
 * (aborts are rare: map growth and errors).  Only the writer uses it, and
 * LMDB lets one write transaction run at a time, so it needs no lock.
 * Short keys (most IDs) are kept in the entry itself: a lookup then touches
 * one cache line, not two (real-time ingest does two per event). */
#define IDCACHE_INLINE 16
struct idcache {
	struct idcache_ent {
		uint64_t h;
		uint32_t id;
		uint32_t len;  /* 0: a free slot (IDs are never empty) */
		union { char *key; char inl[IDCACHE_INLINE]; };  /* inl when len <= IDCACHE_INLINE */
	} *ent;
	size_t cap, used;  /* cap is a power of two */
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[DBI_COUNT];
	char *dir;
	int pseudonymise;
	int readonly;
	uint8_t user_key[crypto_generichash_KEYBYTES];
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct idcache users, items, entities, relations;
	/* LMDB may remap only while no transaction of this process is open.
	 * Every transaction holds this shared; a resize holds it exclusive.
	 * Writer-preferring, so a resize is not starved by a stream of readers.
	 * Hence: never call store_write from a thread that holds a read txn. */
	pthread_rwlock_t maplock;
	/* Serialises store_write in this process: LMDB's writer lock ends with
	 * the transaction, but a failed write still clears the ID caches and
	 * grows the map after that, which must not overlap the next writer's
	 * use of the caches (recd's workers ingest from several threads). */
	pthread_mutex_t writemu;
	/* recent_ok: st->dbi[DBI_RECENT] is open in the environment.  While it is
	 * not (a version-1 store), each transaction checks whether its snapshot
	 * has the table (another process may have made it) and opens it first.
	 * LMDB lets mdb_dbi_open run in one transaction of a process at a time:
	 * dbimu is held from that call until its transaction ends. */
	atomic_int recent_ok;
	pthread_mutex_t dbimu;
	/* The index of the recent table (recent.h), shared by this process's
	 * readers; rimu guards it.  Lock order: maplock, then rimu. */
	pthread_mutex_t rimu;
	struct recent_index ri;
};

struct store_txn {
	struct store *st;
	MDB_txn *txn;
	int write;
	int map_full;         /* a put hit MDB_MAP_FULL: store_write grows and retries */
	int seq_loaded, seq_dirty;
	uint64_t seq;         /* next event tie-break */
	uint32_t next_user, next_item, next_entity, next_relation; /* 0 = not loaded */
	MDB_cursor *ev_cur;   /* positioned after the last event put */
	uint32_t ev_last_user;
	uint8_t ev_last_rec[STORE_EVENT_REC_LEN];
	int ev_last_valid;
	int has_recent;       /* DBI_RECENT is usable in this txn */
	int holds_dbimu;      /* this write txn opened DBI_RECENT: st->dbimu held until it ends */
	MDB_dbi new_recent;   /* ... and this is the handle */
	int rr_state;         /* read txns: 0 = range not read yet, 1 = table empty, 2 = rr_first..rr_last */
	uint64_t rr_first, rr_last;
	MDB_cursor *rc_cur;   /* write txns: appends to DBI_RECENT */
};

static __thread char store_errbuf[512];

const char *store_errmsg(const struct store *st)
{
	(void)st;
	return store_errbuf[0] ? store_errbuf : "no error";
}

static int store_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int store_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(store_errbuf, sizeof store_errbuf, fmt, ap);
	va_end(ap);
	return err;
}

int store_txn_error(struct store_txn *tx, int err, const char *fmt, ...)
{
	va_list ap;
	(void)tx;
	va_start(ap, fmt);
	vsnprintf(store_errbuf, sizeof store_errbuf, fmt, ap);
	va_end(ap);
	return err;
}

/* The one place where LMDB's codes become ours. */
static int store_rc(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:          return 0;
	case MDB_NOTFOUND:         return -ENOENT;
	case MDB_KEYEXIST:         return -EEXIST;
	case MDB_MAP_FULL:         return -ENOSPC;
	case MDB_DBS_FULL:
	case MDB_TLS_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:        return -ENOSPC;
	case MDB_TXN_FULL:         return -E2BIG;
	case MDB_READERS_FULL:     return -EUSERS;
	case MDB_MAP_RESIZED:      return -EAGAIN;
	case MDB_VERSION_MISMATCH:
	case MDB_INVALID:          return -EPROTO;
	case MDB_BAD_VALSIZE:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_DBI:          return -EINVAL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_PANIC:
	case MDB_BAD_RSLOT:
	case MDB_BAD_TXN:          return -EIO;
	default:                   return rc > 0 ? -rc : -EIO;
	}
}

/* Translates and records what failed; notes map exhaustion on the txn. */
static int store_fail(struct store_txn *tx, int rc, const char *what)
{
	if (tx && rc == MDB_MAP_FULL)
		tx->map_full = 1;
	return store_err(store_rc(rc), "%s: %s", what, mdb_strerror(rc));
}

/* --- ID cache ---------------------------------------------------------- */

static uint64_t idcache_hash(const struct store *st, const char *key, size_t len)
{
	uint64_t h;
	crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, len, st->hash_key);
	return h;
}

static void idcache_clear(struct idcache *c)
{
	for (size_t i = 0; i < c->cap; i++)
		if (c->ent[i].len > IDCACHE_INLINE)
			free(c->ent[i].key);
	free(c->ent);
	memset(c, 0, sizeof *c);
}

static const char *idcache_key(const struct idcache_ent *e)
{
	return e->len > IDCACHE_INLINE ? e->key : e->inl;
}

static int idcache_get(const struct idcache *c, uint64_t h, const char *key, size_t len, uint32_t *id)
{
	if (!c->cap)
		return -ENOENT;
	for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
		const struct idcache_ent *e = &c->ent[i];
		if (!e->len)
			return -ENOENT;
		if (e->h == h && e->len == len && memcmp(idcache_key(e), key, len) == 0) {
			*id = e->id;
			return 0;
		}
	}
}

/* Best effort: a cache that cannot grow just stops caching. */
static void idcache_put(struct idcache *c, uint64_t h, const char *key, size_t len, uint32_t id)
{
	if ((c->used + 1) * 4 > c->cap * 3) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		struct idcache_ent *n = calloc(ncap, sizeof *n);
		if (!n)
			return;
		for (size_t i = 0; i < c->cap; i++) {
			struct idcache_ent *e = &c->ent[i];
			if (!e->len)
				continue;
			size_t j = e->h & (ncap - 1);
			while (n[j].len)
				j = (j + 1) & (ncap - 1);
			n[j] = *e;
		}
		free(c->ent);
		c->ent = n;
		c->cap = ncap;
	}
	if (len == 0 || len > UINT32_MAX)
		return;
	struct idcache_ent ne = { .h = h, .id = id, .len = (uint32_t)len };
	if (len > IDCACHE_INLINE) {
		if (!(ne.key = malloc(len)))
			return;
		memcpy(ne.key, key, len);
	} else {
		memcpy(ne.inl, key, len);
	}
	size_t i = h & (c->cap - 1);
	while (c->ent[i].len)
		i = (i + 1) & (c->cap - 1);
	c->ent[i] = ne;
	c->used++;
}

static void store_caches_clear(struct store *st)
{
	idcache_clear(&st->users);
	idcache_clear(&st->items);
	idcache_clear(&st->entities);
	idcache_clear(&st->relations);
}

/* --- opening ----------------------------------------------------------- */

static int store_read_full(int fd, void *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t r = read(fd, (char *)buf + off, len - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EBADMSG;
		off += (size_t)r;
	}
	return 0;
}

static int store_write_full(int fd, const void *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t r = write(fd, (const char *)buf + off, len - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		off += (size_t)r;
	}
	return 0;
}

/* Loads the pseudonymisation key, creating it on first use.  It is written to
 * a temporary file and linked into place, so two processes creating it at
 * once agree on one key and nobody ever reads a half-written one. */
static int store_load_key(struct store *st, int create)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, r;
	struct stat sb;

	if (snprintf(path, sizeof path, "%s/%s", st->dir, STORE_KEY_FILE) >= (int)sizeof path)
		return store_err(-ENAMETOOLONG, "%s: path too long", st->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create) {
		uint8_t key[sizeof st->user_key];
		snprintf(tmp, sizeof tmp, "%s/.%s.%ld", st->dir, STORE_KEY_FILE, (long)getpid());
		int w = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (w < 0)
			return store_err(-errno, "%s: cannot create: %s", tmp, strerror(errno));
		randombytes_buf(key, sizeof key);
		r = store_write_full(w, key, sizeof key);
		if (r == 0 && fsync(w) < 0)
			r = -errno;
		close(w);
		sodium_memzero(key, sizeof key);
		if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
			r = -errno;
		unlink(tmp);
		if (r < 0)
			return store_err(r, "%s: cannot write the user-ID key: %s", path, strerror(-r));
		int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return store_err(-errno, "%s: cannot open the user-ID key: %s", path, strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size != (off_t)sizeof st->user_key) {
		close(fd);
		return store_err(-EBADMSG, "%s: not a %zu-byte key file", path, sizeof st->user_key);
	}
	if (sb.st_mode & 077) {
		close(fd);
		return store_err(-EPERM, "%s: the user-ID key is readable by others (mode %04o); "
		                 "run: chmod 600 %s", path, (unsigned)(sb.st_mode & 07777), path);
	}
	r = store_read_full(fd, st->user_key, sizeof st->user_key);
	close(fd);
	if (r < 0)
		return store_err(r, "%s: cannot read the user-ID key", path);
	return 0;
}

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *v)
{
	MDB_val k = { strlen(name), (void *)name }, d;
	int rc = mdb_get(txn, dbi, &k, &d);
	if (rc)
		return rc;
	if (d.mv_size != sizeof *v)
		return MDB_CORRUPTED;
	memcpy(v, d.mv_data, sizeof *v);
	return 0;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t v)
{
	MDB_val k = { strlen(name), (void *)name }, d = { sizeof v, &v };
	return mdb_put(txn, dbi, &k, &d, 0);
}

/* Opens the named databases, and on a new store writes its schema version
 * and user-ID mode; on an existing one checks them. */
static int store_init_dbs_txn(struct store *st, int want_pseudo, int create);

/* Opening an existing store takes only a read transaction, so it never waits
 * behind a long import in another process; a new store needs one write. */
static int store_init_dbs(struct store *st, int want_pseudo)
{
	int r = store_init_dbs_txn(st, want_pseudo, 0);
	if (r == -ENOENT && !st->readonly)
		r = store_init_dbs_txn(st, want_pseudo, 1);
	return r;
}

static int store_init_dbs_txn(struct store *st, int want_pseudo, int create)
{
	MDB_txn *txn;
	uint64_t schema, mode;
	int rc, r = 0;
	unsigned flags = create ? 0 : MDB_RDONLY;

	st->dbi[DBI_RECENT] = 0;
	for (int tries = 0;; tries++) {
		rc = mdb_txn_begin(st->env, NULL, flags, &txn);
		if (rc != MDB_MAP_RESIZED || tries > 3)
			break;
		mdb_env_set_mapsize(st->env, 0);
	}
	if (rc)
		return store_err(store_rc(rc), "%s: cannot begin a transaction: %s", st->dir, mdb_strerror(rc));
	for (int i = 0; i < DBI_COUNT; i++) {
		rc = mdb_dbi_open(txn, store_dbs[i].name, store_dbs[i].flags | (create ? MDB_CREATE : 0), &st->dbi[i]);
		if (rc == MDB_NOTFOUND && i == DBI_RECENT)
			continue;   /* a version-1 store: made by its first append */
		if (rc == MDB_NOTFOUND && !create) {
			r = store_err(-ENOENT, "%s: not a recd store (import data first, or check -d)", st->dir);
			goto out;
		}
		if (rc) {
			r = store_err(store_rc(rc), "%s: database %s: %s", st->dir, store_dbs[i].name, mdb_strerror(rc));
			goto out;
		}
	}
	rc = meta_get_u64(txn, st->dbi[DBI_META], "schema", &schema);
	if (rc == MDB_NOTFOUND && !create) {
		r = store_err(-ENOENT, "%s: not a recd store (import data first, or check -d)", st->dir);
		goto out;
	}
	if (rc == MDB_NOTFOUND) {
		mode = want_pseudo != 0;
		if ((rc = meta_put_u64(txn, st->dbi[DBI_META], "schema", STORE_SCHEMA_VERSION)) ||
		    (rc = meta_put_u64(txn, st->dbi[DBI_META], "pseudonymise", mode))) {
			r = store_err(store_rc(rc), "%s: cannot initialise: %s", st->dir, mdb_strerror(rc));
			goto out;
		}
		schema = STORE_SCHEMA_VERSION;
	} else if (rc) {
		r = store_err(store_rc(rc), "%s: cannot read the schema version: %s", st->dir, mdb_strerror(rc));
		goto out;
	}
	if (schema < STORE_SCHEMA_MIN || schema > STORE_SCHEMA_VERSION) {
		r = store_err(-EPROTO, "%s: the store has schema version %llu, this recd reads versions %u to %u "
		              "(export with the recd that wrote it, or import again into a new state directory)",
		              st->dir, (unsigned long long)schema, STORE_SCHEMA_MIN, STORE_SCHEMA_VERSION);
		goto out;
	}
	rc = meta_get_u64(txn, st->dbi[DBI_META], "pseudonymise", &mode);
	if (rc) {
		r = store_err(store_rc(rc), "%s: cannot read the user-ID mode: %s", st->dir, mdb_strerror(rc));
		goto out;
	}
	if (want_pseudo >= 0 && (uint64_t)want_pseudo != mode) {
		r = store_err(-EINVAL, "%s: the store keeps user IDs %s; it cannot be opened with pseudonymisation %s",
		              st->dir, mode ? "pseudonymised" : "as given", want_pseudo ? "on" : "off");
		goto out;
	}
	st->pseudonymise = (int)mode;
	/* Committing (even a read txn) keeps the database handles for the env. */
	rc = mdb_txn_commit(txn);
	if (rc)
		return store_err(store_rc(rc), "%s: cannot initialise: %s", st->dir, mdb_strerror(rc));
	if (st->dbi[DBI_RECENT])
		atomic_store(&st->recent_ok, 1);
	return 0;
out:
	mdb_txn_abort(txn);
	return r;
}

int store_open(struct store **out, const char *dir, const struct store_options *opt)
{
	static const struct store_options defaults = { 0, -1, 0 };
	struct store *st;
	int rc, r, dead;

	if (!opt)
		opt = &defaults;
	if (sodium_init() < 0)
		return store_err(-EIO, "libsodium failed to initialise");
	st = calloc(1, sizeof *st);
	if (!st || !(st->dir = strdup(dir))) {
		free(st);
		return store_err(-ENOMEM, "out of memory");
	}
	st->readonly = opt->readonly;
	randombytes_buf(st->hash_key, sizeof st->hash_key);
	pthread_rwlockattr_t la;
	pthread_rwlockattr_init(&la);
	pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->maplock, &la);
	pthread_rwlockattr_destroy(&la);
	pthread_mutex_init(&st->writemu, NULL);
	pthread_mutex_init(&st->dbimu, NULL);
	pthread_mutex_init(&st->rimu, NULL);
	recent_index_init(&st->ri);
	if (!st->readonly && mkdir(dir, 0750) < 0 && errno != EEXIST) {
		r = store_err(-errno, "%s: cannot create the state directory: %s", dir, strerror(errno));
		goto fail;
	}
	if ((rc = mdb_env_create(&st->env)) ||
	    (rc = mdb_env_set_maxdbs(st->env, DBI_COUNT + 4)) ||
	    (rc = mdb_env_set_maxreaders(st->env, 254))) {
		r = store_err(store_rc(rc), "%s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	/* The map size only reserves address space; the file grows as used.  An
	 * existing larger map is kept (LMDB takes the file's size if bigger). */
	mdb_env_set_mapsize(st->env, opt->map_size ? opt->map_size : STORE_MAP_DEFAULT);
	rc = mdb_env_open(st->env, dir, MDB_NOTLS | (st->readonly ? MDB_RDONLY : 0), 0640);
	if (rc) {
		r = store_err(store_rc(rc), "%s: cannot open the store: %s", dir, mdb_strerror(rc));
		if (rc == ENOENT)
			r = store_err(-ENOENT, "%s: no store here (import data first, or check -d)", dir);
		goto fail;
	}
	/* Reader slots of processes that died without ending their transactions
	 * would pin old pages forever; clear them. */
	mdb_reader_check(st->env, &dead);
	if ((r = store_init_dbs(st, opt->pseudonymise)) < 0)
		goto fail;
	if (st->pseudonymise && (r = store_load_key(st, !st->readonly)) < 0) {
		/* A read-only user without the key can still count and read events. */
		if (!(st->readonly && r == -ENOENT))
			goto fail;
	}
	*out = st;
	return 0;
fail:
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->maplock);
	pthread_mutex_destroy(&st->writemu);
	pthread_mutex_destroy(&st->dbimu);
	pthread_mutex_destroy(&st->rimu);
	free(st->dir);
	free(st);
	return r;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	mdb_env_close(st->env);
	store_caches_clear(st);
	recent_index_free(&st->ri);
	pthread_rwlock_destroy(&st->maplock);
	pthread_mutex_destroy(&st->writemu);
	pthread_mutex_destroy(&st->dbimu);
	pthread_mutex_destroy(&st->rimu);
	sodium_memzero(st->user_key, sizeof st->user_key);
	free(st->dir);
	free(st);
}

const char *store_dir(const struct store *st) { return st->dir; }
int store_pseudonymised(const struct store *st) { return st->pseudonymise; }
struct store *store_txn_store(struct store_txn *tx) { return tx->st; }

/* --- transactions ------------------------------------------------------ */

/* Opens DBI_RECENT, which another process has made since this one opened
 * the store (see recent_ok).  Called with maplock held shared and no
 * transaction of this thread open that needs the handle. */
static void store_recent_probe(struct store *st)
{
	MDB_txn *txn;
	MDB_dbi dbi;

	pthread_mutex_lock(&st->dbimu);
	if (!atomic_load(&st->recent_ok) && mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) == 0) {
		if (mdb_dbi_open(txn, store_dbs[DBI_RECENT].name, store_dbs[DBI_RECENT].flags, &dbi) == 0 &&
		    mdb_txn_commit(txn) == 0) {
			st->dbi[DBI_RECENT] = dbi;
			atomic_store(&st->recent_ok, 1);
		} else {
			mdb_txn_abort(txn);  /* a no-op after a failed commit */
		}
	}
	pthread_mutex_unlock(&st->dbimu);
}

/* Whether txn's snapshot holds DBI_RECENT, asked of the main database (its
 * keys are the named databases' names): no handle needed. */
static int store_recent_exists(MDB_txn *txn)
{
	MDB_dbi main;
	MDB_val k = { 6, "recent" }, d;
	return mdb_dbi_open(txn, NULL, 0, &main) == 0 && mdb_get(txn, main, &k, &d) == 0;
}

static int store_begin(struct store *st, int write, struct store_txn **out)
{
	struct store_txn *tx = calloc(1, sizeof *tx);
	int rc;

	if (!tx)
		return store_err(-ENOMEM, "out of memory");
	tx->st = st;
	tx->write = write;
	for (int tries = 0;; tries++) {
		pthread_rwlock_rdlock(&st->maplock);
		/* Read before the txn starts: then the handle predates it. */
		tx->has_recent = atomic_load(&st->recent_ok);
		rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &tx->txn);
		if (rc == 0 && !tx->has_recent && store_recent_exists(tx->txn)) {
			/* Made by another process: open it, then start again.  Never
			 * go on without it: the snapshot's recent events would be
			 * missing. */
			mdb_txn_abort(tx->txn);
			if (tries > 3) {
				rc = MDB_BAD_DBI;
				break;
			}
			store_recent_probe(st);
			pthread_rwlock_unlock(&st->maplock);
			continue;
		}
		/* Another process grew the map: adopt its size and try again. */
		if (rc != MDB_MAP_RESIZED || tries > 3)
			break;
		pthread_rwlock_unlock(&st->maplock);
		pthread_rwlock_wrlock(&st->maplock);
		mdb_env_set_mapsize(st->env, 0);
		pthread_rwlock_unlock(&st->maplock);
	}
	if (rc) {
		pthread_rwlock_unlock(&st->maplock);
		free(tx);
		return store_err(store_rc(rc), "%s: cannot begin a transaction: %s", st->dir, mdb_strerror(rc));
	}
	*out = tx;
	return 0;
}

int store_read_begin(struct store *st, struct store_txn **out)
{
	return store_begin(st, 0, out);
}

void store_txn_end(struct store_txn *tx)
{
	if (!tx)
		return;
	if (tx->ev_cur)
		mdb_cursor_close(tx->ev_cur);
	if (tx->rc_cur)
		mdb_cursor_close(tx->rc_cur);
	mdb_txn_abort(tx->txn);
	if (tx->holds_dbimu)
		pthread_mutex_unlock(&tx->st->dbimu);
	pthread_rwlock_unlock(&tx->st->maplock);
	free(tx);
}

static int store_grow(struct store *st)
{
	MDB_envinfo info;
	pthread_rwlock_wrlock(&st->maplock);
	mdb_env_info(st->env, &info);
	size_t next = info.me_mapsize * 2;
	int rc = next > STORE_MAP_MAX ? 0 : mdb_env_set_mapsize(st->env, next);
	pthread_rwlock_unlock(&st->maplock);
	if (next > STORE_MAP_MAX)
		return store_err(-ENOSPC, "%s: the store would outgrow its %zu-byte limit", st->dir, STORE_MAP_MAX);
	return rc ? store_err(store_rc(rc), "%s: cannot grow the map: %s", st->dir, mdb_strerror(rc)) : 0;
}

static int store_write_locked(struct store *st, store_write_fn fn, void *arg);

int store_write(struct store *st, store_write_fn fn, void *arg)
{
	if (st->readonly)
		return store_err(-EROFS, "%s: the store was opened read-only", st->dir);
	pthread_mutex_lock(&st->writemu);
	int r = store_write_locked(st, fn, arg);
	pthread_mutex_unlock(&st->writemu);
	return r;
}

static int store_write_locked(struct store *st, store_write_fn fn, void *arg)
{
	struct store_txn *tx;
	int r, rc;

	for (int tries = 0; tries < STORE_MAX_RETRIES; tries++) {
		if ((r = store_begin(st, 1, &tx)) < 0)
			return r;
		r = fn(tx, arg);
		if (r == 0 && tx->seq_dirty) {
			rc = meta_put_u64(tx->txn, st->dbi[DBI_META], "seq", tx->seq);
			if (rc)
				r = store_fail(tx, rc, "meta seq");
		}
		if (tx->ev_cur) {
			mdb_cursor_close(tx->ev_cur);
			tx->ev_cur = NULL;
		}
		if (tx->rc_cur) {
			mdb_cursor_close(tx->rc_cur);
			tx->rc_cur = NULL;
		}
		if (r == 0) {
			rc = mdb_txn_commit(tx->txn);
			int full = tx->map_full || rc == MDB_MAP_FULL;
			if (tx->holds_dbimu) {
				/* The handle outlives a committed txn: later txns may use it. */
				if (rc == 0) {
					st->dbi[DBI_RECENT] = tx->new_recent;
					atomic_store(&st->recent_ok, 1);
				}
				pthread_mutex_unlock(&st->dbimu);
			}
			pthread_rwlock_unlock(&st->maplock);
			free(tx);
			if (rc == 0)
				return 0;
			if (!full) {
				store_caches_clear(st);
				return store_err(store_rc(rc), "%s: commit failed: %s", st->dir, mdb_strerror(rc));
			}
		} else {
			int full = tx->map_full;
			mdb_txn_abort(tx->txn);
			if (tx->holds_dbimu)
				pthread_mutex_unlock(&st->dbimu);
			pthread_rwlock_unlock(&st->maplock);
			free(tx);
			store_caches_clear(st);
			if (!full)
				return r;
		}
		store_caches_clear(st);
		if ((r = store_grow(st)) < 0)
			return r;
	}
	return store_err(-ENOSPC, "%s: the write did not fit after growing the map %d times", st->dir, STORE_MAX_RETRIES);
}

/* --- helpers ----------------------------------------------------------- */

static int store_need_write(struct store_txn *tx)
{
	return tx->write ? 0 : store_err(-EROFS, "write in a read transaction");
}

/* Next free ID in an INTEGERKEY database whose IDs are handed out densely. */
static int store_next_id(struct store_txn *tx, int dbi, uint32_t *next)
{
	MDB_cursor *c;
	MDB_val k, d;
	int rc;

	if (*next)
		return 0;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[dbi], &c)))
		return store_fail(tx, rc, store_dbs[dbi].name);
	rc = mdb_cursor_get(c, &k, &d, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND) {
		*next = 1;
		return 0;
	}
	if (rc)
		return store_fail(tx, rc, store_dbs[dbi].name);
	uint32_t last;
	memcpy(&last, k.mv_data, sizeof last);
	if (last == UINT32_MAX - 1)
		return store_err(-EOVERFLOW, "%s: all 32-bit IDs are used", store_dbs[dbi].name);
	*next = last + 1;
	return 0;
}

static int store_check_id(const char *what, const char *id, size_t len)
{
	if (len == 0)
		return store_err(-EINVAL, "empty %s ID", what);
	if (len > STORE_ID_MAX_LEN)
		return store_err(-ENAMETOOLONG, "%s ID of %zu bytes is longer than %d", what, len, STORE_ID_MAX_LEN);
	return 0;
}

/* Maps an external ID to its on-disk key: the keyed BLAKE2b pseudonym for
 * users of a pseudonymising store, the ID itself otherwise. */
static void store_user_diskkey(const struct store *st, const char *ext, size_t len,
                               uint8_t buf[STORE_ID_MAX_LEN], MDB_val *k)
{
	if (st->pseudonymise) {
		crypto_generichash(buf, STORE_USER_KEY_LEN, (const unsigned char *)ext, len,
		                   st->user_key, sizeof st->user_key);
		k->mv_size = STORE_USER_KEY_LEN;
	} else {
		memcpy(buf, ext, len);
		k->mv_size = len;
	}
	k->mv_data = buf;
}

/* Shared by users, items and entities: external ID -> internal ID, through
 * the cache, then the key database; optionally adds a new ID with its
 * record (built by mkrec into the reserved space). */
struct store_idspace {
	struct idcache *cache;
	int key_dbi, rec_dbi;
	uint32_t *next;
	const char *what;
};

static int store_id_resolve(struct store_txn *tx, const struct store_idspace *sp, const char *ext,
                            size_t len, const MDB_val *diskkey, int add, const MDB_val *rec, uint32_t *id)
{
	struct store *st = tx->st;
	/* Only writers use the cache (see struct idcache): readers skip the hash. */
	uint64_t h = tx->write ? idcache_hash(st, ext, len) : 0;
	MDB_val k = *diskkey, d;
	uint32_t v;
	int rc, r;

	if (tx->write && idcache_get(sp->cache, h, ext, len, id) == 0)
		return 0;
	rc = mdb_get(tx->txn, st->dbi[sp->key_dbi], &k, &d);
	if (rc == 0) {
		if (d.mv_size != sizeof v)
			return store_err(-EIO, "%s: corrupt ID record", store_dbs[sp->key_dbi].name);
		memcpy(&v, d.mv_data, sizeof v);
		if (tx->write)
			idcache_put(sp->cache, h, ext, len, v);
		*id = v;
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return store_fail(tx, rc, store_dbs[sp->key_dbi].name);
	if (!add)
		return store_err(-ENOENT, "unknown %s %.*s", sp->what, (int)len, ext);
	if ((r = store_need_write(tx)) < 0 || (r = store_next_id(tx, sp->rec_dbi, sp->next)) < 0)
		return r;
	v = *sp->next;
	d = (MDB_val){ sizeof v, &v };
	if ((rc = mdb_put(tx->txn, st->dbi[sp->key_dbi], &k, &d, MDB_NOOVERWRITE)))
		return store_fail(tx, rc, store_dbs[sp->key_dbi].name);
	MDB_val ik = { sizeof v, &v }, rd = *rec;
	if ((rc = mdb_put(tx->txn, st->dbi[sp->rec_dbi], &ik, &rd, MDB_APPEND)))
		return store_fail(tx, rc, store_dbs[sp->rec_dbi].name);
	(*sp->next)++;
	idcache_put(sp->cache, h, ext, len, v);
	*id = v;
	return 0;
}

/* --- users ------------------------------------------------------------- */

/* User record: u32 key length, key (pseudonym or raw ID), attributes. */
static int store_user_resolve(struct store_txn *tx, const char *ext, size_t len, int add, uint32_t *id)
{
	struct store *st = tx->st;
	uint8_t kbuf[STORE_ID_MAX_LEN], rbuf[4 + STORE_ID_MAX_LEN];
	MDB_val k, rec;
	int r;

	if ((r = store_check_id("user", ext, len)) < 0)
		return r;
	/* A writer finds a known user in the cache without the cost of its
	 * pseudonym (a BLAKE2b hash: most of real-time ingest's CPU once). */
	if (tx->write && idcache_get(&st->users, idcache_hash(st, ext, len), ext, len, id) == 0)
		return 0;
	if (st->pseudonymise && sodium_is_zero(st->user_key, sizeof st->user_key))
		return store_err(-ENOKEY, "%s: the user-ID key %s is missing; user IDs cannot be looked up",
		                 st->dir, STORE_KEY_FILE);
	store_user_diskkey(st, ext, len, kbuf, &k);
	uint32_t klen = (uint32_t)k.mv_size;
	memcpy(rbuf, &klen, 4);
	memcpy(rbuf + 4, k.mv_data, klen);
	rec = (MDB_val){ 4 + klen, rbuf };
	const struct store_idspace sp = { &st->users, DBI_USER_KEY, DBI_USER, &tx->next_user, "user" };
	return store_id_resolve(tx, &sp, ext, len, &k, add, &rec, id);
}

int store_user_get_or_add(struct store_txn *tx, const char *ext, size_t len, uint32_t *id)
{
	return store_user_resolve(tx, ext, len, 1, id);
}

int store_user_lookup(struct store_txn *tx, const char *ext, size_t len, uint32_t *id)
{
	return store_user_resolve(tx, ext, len, 0, id);
}

static int store_get_u32key(struct store_txn *tx, int dbi, uint32_t id, MDB_val *d)
{
	MDB_val k = { sizeof id, &id };
	int rc = mdb_get(tx->txn, tx->st->dbi[dbi], &k, d);
	if (rc == MDB_NOTFOUND)
		return store_err(-ENOENT, "%s %u does not exist", store_dbs[dbi].name, id);
	return rc ? store_fail(tx, rc, store_dbs[dbi].name) : 0;
}

int store_user_set_attrs(struct store_txn *tx, uint32_t id, const char *attrs, size_t len)
{
	MDB_val d, k = { sizeof id, &id };
	uint32_t klen;
	uint8_t key[4 + STORE_ID_MAX_LEN];
	int r, rc;

	if ((r = store_need_write(tx)) < 0)
		return r;
	if (len > STORE_TEXT_MAX_LEN)
		return store_err(-E2BIG, "user attributes of %zu bytes exceed %u", len, STORE_TEXT_MAX_LEN);
	if ((r = store_get_u32key(tx, DBI_USER, id, &d)) < 0)
		return r;
	memcpy(&klen, d.mv_data, 4);
	if (klen > STORE_ID_MAX_LEN || 4 + (size_t)klen > d.mv_size)
		return store_err(-EIO, "user %u: corrupt record", id);
	memcpy(key, d.mv_data, 4 + klen);
	d = (MDB_val){ 4 + klen + len, NULL };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_USER], &k, &d, MDB_RESERVE)))
		return store_fail(tx, rc, "user");
	memcpy(d.mv_data, key, 4 + klen);
	if (len)
		memcpy((char *)d.mv_data + 4 + klen, attrs, len);
	return 0;
}

int store_user_get_attrs(struct store_txn *tx, uint32_t id, const char **attrs, size_t *len)
{
	MDB_val d;
	uint32_t klen;
	int r = store_get_u32key(tx, DBI_USER, id, &d);
	if (r < 0)
		return r;
	memcpy(&klen, d.mv_data, 4);
	if (4 + (size_t)klen > d.mv_size)
		return store_err(-EIO, "user %u: corrupt record", id);
	*attrs = (const char *)d.mv_data + 4 + klen;
	*len = d.mv_size - 4 - klen;
	return 0;
}

/* --- items ------------------------------------------------------------- */

/* Item record: u32 lengths of ext ID, title, text, categories, attributes;
 * then those bytes in that order. */
#define ITEM_FIELDS 5

static int item_decode(const MDB_val *d, const char *f[ITEM_FIELDS], size_t n[ITEM_FIELDS])
{
	const char *p = d->mv_data;
	size_t off = 4 * ITEM_FIELDS;
	if (d->mv_size < off)
		return -EIO;
	for (int i = 0; i < ITEM_FIELDS; i++) {
		uint32_t l;
		memcpy(&l, p + 4 * i, 4);
		if (l > d->mv_size - off)
			return -EIO;
		f[i] = p + off;
		n[i] = l;
		off += l;
	}
	return off == d->mv_size ? 0 : -EIO;
}

static size_t item_encode(char *out, const char *f[ITEM_FIELDS], const size_t n[ITEM_FIELDS])
{
	size_t off = 4 * ITEM_FIELDS;
	for (int i = 0; i < ITEM_FIELDS; i++) {
		uint32_t l = (uint32_t)n[i];
		memcpy(out + 4 * i, &l, 4);
		if (n[i])
			memcpy(out + off, f[i], n[i]);
		off += n[i];
	}
	return off;
}

static int store_item_resolve(struct store_txn *tx, const char *ext, size_t len, int add, uint32_t *id)
{
	char rbuf[4 * ITEM_FIELDS + STORE_ID_MAX_LEN];
	const char *f[ITEM_FIELDS] = { ext };
	size_t n[ITEM_FIELDS] = { len };
	int r;

	if ((r = store_check_id("item", ext, len)) < 0)
		return r;
	MDB_val k = { len, (void *)ext }, rec = { item_encode(rbuf, f, n), rbuf };
	const struct store_idspace sp = { &tx->st->items, DBI_ITEM_KEY, DBI_ITEM, &tx->next_item, "item" };
	return store_id_resolve(tx, &sp, ext, len, &k, add, &rec, id);
}

int store_item_get_or_add(struct store_txn *tx, const char *ext, size_t len, uint32_t *id)
{
	return store_item_resolve(tx, ext, len, 1, id);
}

int store_item_lookup(struct store_txn *tx, const char *ext, size_t len, uint32_t *id)
{
	return store_item_resolve(tx, ext, len, 0, id);
}

int store_item_update(struct store_txn *tx, uint32_t id, const struct store_item *it)
{
	const char *f[ITEM_FIELDS];
	size_t n[ITEM_FIELDS], total = 4 * ITEM_FIELDS;
	MDB_val d, k = { sizeof id, &id };
	char *buf;
	int r, rc;

	if ((r = store_need_write(tx)) < 0 || (r = store_get_u32key(tx, DBI_ITEM, id, &d)) < 0)
		return r;
	if (item_decode(&d, f, n) < 0)
		return store_err(-EIO, "item %u: corrupt record", id);
	const char *nf[ITEM_FIELDS] = { NULL, it->title, it->text, it->categories, it->attrs };
	const size_t nn[ITEM_FIELDS] = { 0, it->title_len, it->text_len, it->categories_len, it->attrs_len };
	static const char *names[ITEM_FIELDS] = { "ID", "title", "text", "categories", "attributes" };
	for (int i = 1; i < ITEM_FIELDS; i++) {
		if (!nf[i])
			continue;
		if (nn[i] > STORE_TEXT_MAX_LEN)
			return store_err(-E2BIG, "item %u: %s of %zu bytes exceeds %u", id, names[i], nn[i], STORE_TEXT_MAX_LEN);
		f[i] = nf[i];
		n[i] = nn[i];
	}
	for (int i = 0; i < ITEM_FIELDS; i++)
		total += n[i];
	/* The old fields point into the map, which the put below may change:
	 * build the new record in memory first. */
	if (!(buf = malloc(total)))
		return store_err(-ENOMEM, "out of memory");
	item_encode(buf, f, n);
	d = (MDB_val){ total, buf };
	rc = mdb_put(tx->txn, tx->st->dbi[DBI_ITEM], &k, &d, 0);
	free(buf);
	return rc ? store_fail(tx, rc, "item") : 0;
}

int store_item_get(struct store_txn *tx, uint32_t id, struct store_item *it)
{
	const char *f[ITEM_FIELDS];
	size_t n[ITEM_FIELDS];
	MDB_val d;
	int r = store_get_u32key(tx, DBI_ITEM, id, &d);
	if (r < 0)
		return r;
	if (item_decode(&d, f, n) < 0)
		return store_err(-EIO, "item %u: corrupt record", id);
	*it = (struct store_item){ f[0], n[0], f[1], n[1], f[2], n[2], f[3], n[3], f[4], n[4] };
	return 0;
}

/* --- events ------------------------------------------------------------ */

static int store_seq_next(struct store_txn *tx, uint64_t *seq)
{
	if (!tx->seq_loaded) {
		int rc = meta_get_u64(tx->txn, tx->st->dbi[DBI_META], "seq", &tx->seq);
		if (rc == MDB_NOTFOUND)
			tx->seq = 0;
		else if (rc)
			return store_fail(tx, rc, "meta seq");
		tx->seq_loaded = 1;
	}
	*seq = tx->seq++;
	tx->seq_dirty = 1;
	return 0;
}

static void store_event_key(uint8_t key[STORE_EVENT_KEY_LEN], uint32_t user, const uint8_t rec[STORE_EVENT_REC_LEN])
{
	store_put_be32(key, user);
	memcpy(key + 4, rec, 12);
}

/* What store_event_add and store_event_append share: the checks, the
 * sequence number (*arrival: all 64 bits) and the record. */
static int store_event_prepare(struct store_txn *tx, uint32_t user, const struct store_event *ev,
                               const char *text, size_t text_len, struct store_event *e,
                               uint8_t rec[STORE_EVENT_REC_LEN], uint64_t *arrival)
{
	int r;

	if ((r = store_need_write(tx)) < 0)
		return r;
	*e = *ev;
	if (user == 0 || user == STORE_NONE || e->item == 0 || e->item == STORE_NONE)
		return store_err(-EINVAL, "event with no user or item");
	if (text && text_len > STORE_TEXT_MAX_LEN)
		return store_err(-E2BIG, "event text of %zu bytes exceeds %u", text_len, STORE_TEXT_MAX_LEN);
	if ((e->flags & STORE_EV_LOC) && !(isfinite(e->lat) && isfinite(e->lon) && fabsf(e->lat) <= 90 && fabsf(e->lon) <= 180))
		return store_err(-EINVAL, "event location %g,%g is not a valid latitude,longitude", e->lat, e->lon);
	if ((e->flags & STORE_EV_VALUE) && !isfinite(e->value))
		return store_err(-EINVAL, "event value is not a finite number");
	if ((r = store_seq_next(tx, arrival)) < 0)
		return r;
	/* Only the low 32 bits are kept in the record: they order events that
	 * share a user and a timestamp, which wrap-around could only misorder
	 * for events 2^32 arrivals apart with the same timestamp. */
	e->seq = (uint32_t)*arrival;
	if (text)
		e->flags |= STORE_EV_TEXT;
	else
		e->flags &= (uint8_t)~STORE_EV_TEXT;
	store_event_encode(rec, e);
	return 0;
}

/* The event's text, keyed by (user, ts, seq): the same wherever the record
 * is, so compaction leaves it alone. */
static int store_event_put_text(struct store_txn *tx, uint32_t user, const struct store_event *e,
                                const uint8_t rec[STORE_EVENT_REC_LEN], const char *text, size_t text_len)
{
	uint8_t key[STORE_EVENT_KEY_LEN];
	int rc;

	store_event_key(key, user, rec);
	MDB_val tk = { sizeof key, key }, td = { text_len, (void *)text };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_EVENT_TEXT], &tk, &td, 0)))
		return store_fail(tx, rc, "event_text");
	uint32_t item = e->item;
	MDB_val ik = { sizeof item, &item }, id = { sizeof key, key };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_ITEM_TEXT], &ik, &id, MDB_NODUPDATA)) && rc != MDB_KEYEXIST)
		return store_fail(tx, rc, "item_text");
	return 0;
}

int store_event_add(struct store_txn *tx, uint32_t user, struct store_event *ev,
                    const char *text, size_t text_len)
{
	struct store *st = tx->st;
	uint8_t rec[STORE_EVENT_REC_LEN];
	struct store_event e;
	uint64_t arrival;
	MDB_val k = { sizeof user, &user }, d = { sizeof rec, rec };
	int r, rc;

	if ((r = store_event_prepare(tx, user, ev, text, text_len, &e, rec, &arrival)) < 0)
		return r;
	if (!tx->ev_cur && (rc = mdb_cursor_open(tx->txn, st->dbi[DBI_EVENTS], &tx->ev_cur)))
		return store_fail(tx, rc, "events");
	/* Events mostly arrive in time order per user: then the record goes at
	 * the end of that user's list without a search. */
	unsigned flags = 0;
	if (tx->ev_last_valid && tx->ev_last_user == user && memcmp(rec, tx->ev_last_rec, sizeof rec) > 0)
		flags = MDB_APPENDDUP;
	rc = mdb_cursor_put(tx->ev_cur, &k, &d, flags);
	if (rc == MDB_KEYEXIST && flags) {
		d = (MDB_val){ sizeof rec, rec };
		rc = mdb_cursor_put(tx->ev_cur, &k, &d, 0);
	}
	if (rc) {
		tx->ev_last_valid = 0;
		return store_fail(tx, rc, "events");
	}
	/* Remember the user's last record.  Known when this one went to the end
	 * of a list we already tracked; otherwise (a new user in this txn, or an
	 * out-of-order insert) read it from the end of the user's list. */
	MDB_val lk, ld;
	if (tx->ev_last_valid && tx->ev_last_user == user) {
		if (memcmp(rec, tx->ev_last_rec, sizeof rec) > 0)
			memcpy(tx->ev_last_rec, rec, sizeof rec);
	} else if (mdb_cursor_get(tx->ev_cur, &lk, &ld, MDB_LAST_DUP) == 0 && ld.mv_size == sizeof rec) {
		memcpy(tx->ev_last_rec, ld.mv_data, sizeof rec);
		tx->ev_last_user = user;
		tx->ev_last_valid = 1;
	} else {
		tx->ev_last_valid = 0;
	}
	if (text && (r = store_event_put_text(tx, user, &e, rec, text, text_len)) < 0)
		return r;
	ev->seq = e.seq;
	ev->flags = e.flags;
	return 0;
}

/* Makes DBI_RECENT in a version-1 store, in this write txn (which then
 * holds dbimu until it ends: see struct store), and marks the store
 * version 2 in the same txn. */
static int store_recent_create(struct store_txn *tx)
{
	struct store *st = tx->st;
	MDB_dbi dbi;
	int rc;

	pthread_mutex_lock(&st->dbimu);
	tx->holds_dbimu = 1;
	if ((rc = mdb_dbi_open(tx->txn, store_dbs[DBI_RECENT].name, store_dbs[DBI_RECENT].flags | MDB_CREATE, &dbi)))
		return store_fail(tx, rc, "recent");
	if ((rc = meta_put_u64(tx->txn, st->dbi[DBI_META], "schema", STORE_SCHEMA_VERSION)))
		return store_fail(tx, rc, "meta schema");
	tx->new_recent = dbi;
	tx->has_recent = 1;
	return 0;
}

static MDB_dbi store_recent_dbi(const struct store_txn *tx)
{
	return tx->holds_dbimu ? tx->new_recent : tx->st->dbi[DBI_RECENT];
}

int store_event_append(struct store_txn *tx, uint32_t user, struct store_event *ev,
                       const char *text, size_t text_len)
{
	uint8_t val[STORE_RECENT_VAL_LEN];
	struct store_event e;
	uint64_t arrival;
	int r, rc;

	if ((r = store_event_prepare(tx, user, ev, text, text_len, &e, val + 4, &arrival)) < 0)
		return r;
	if (!tx->has_recent && (r = store_recent_create(tx)) < 0)
		return r;
	if (!tx->rc_cur && (rc = mdb_cursor_open(tx->txn, store_recent_dbi(tx), &tx->rc_cur)))
		return store_fail(tx, rc, "recent");
	memcpy(val, &user, 4);
	/* Arrival numbers only grow: every append goes at the end of the table,
	 * onto the page the previous one filled. */
	MDB_val k = { sizeof arrival, &arrival }, d = { sizeof val, val };
	rc = mdb_cursor_put(tx->rc_cur, &k, &d, MDB_APPEND);
	if (rc == MDB_KEYEXIST)
		return store_err(-EIO, "recent: arrival %llu is not past the table's last (corrupt meta seq?)",
		                 (unsigned long long)arrival);
	if (rc)
		return store_fail(tx, rc, "recent");
	if (text && (r = store_event_put_text(tx, user, &e, val + 4, text, text_len)) < 0)
		return r;
	ev->seq = e.seq;
	ev->flags = e.flags;
	return 0;
}

/* --- the recent table, as readers see it ---------------------------------- */

/* [first, last] of the recent table in tx's snapshot: 0, or 1 when it is
 * empty (or absent).  Read txns keep the answer: their snapshot is fixed. */
static int recent_range(struct store_txn *tx, uint64_t *first, uint64_t *last)
{
	MDB_cursor *c;
	MDB_val k, d;
	int rc;

	if (!tx->has_recent)
		return 1;
	if (tx->write || !tx->rr_state) {
		if ((rc = mdb_cursor_open(tx->txn, store_recent_dbi(tx), &c)))
			return store_fail(tx, rc, "recent");
		rc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
		if (rc == 0 && k.mv_size == 8) {
			memcpy(&tx->rr_first, k.mv_data, 8);
			rc = mdb_cursor_get(c, &k, &d, MDB_LAST);
			if (rc == 0 && k.mv_size == 8)
				memcpy(&tx->rr_last, k.mv_data, 8);
		}
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			tx->rr_state = 1;
		else if (rc)
			return store_fail(tx, rc, "recent");
		else if (k.mv_size != 8)
			return store_err(-EIO, "recent: corrupt key");
		else
			tx->rr_state = 2;
	}
	if (tx->rr_state == 1)
		return 1;
	*first = tx->rr_first;
	*last = tx->rr_last;
	return 0;
}

/* Walks the recent table of tx's snapshot from arrival `from` to `last`;
 * fn(arrival, user, rec) returning non-zero stops the walk and is returned. */
typedef int (*recent_walk_fn)(uint64_t arrival, uint32_t user, const uint8_t *rec, void *arg);
static int recent_walk(struct store_txn *tx, uint64_t from, uint64_t last, recent_walk_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k = { sizeof from, &from }, d;
	int rc, r = 0;

	if ((rc = mdb_cursor_open(tx->txn, store_recent_dbi(tx), &c)))
		return store_fail(tx, rc, "recent");
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		uint64_t a;
		uint32_t user;
		if (k.mv_size != 8 || d.mv_size != STORE_RECENT_VAL_LEN) {
			r = store_err(-EIO, "recent: corrupt record");
			break;
		}
		memcpy(&a, k.mv_data, 8);
		if (a > last)
			break;
		memcpy(&user, d.mv_data, 4);
		if ((r = fn(a, user, (const uint8_t *)d.mv_data + 4, arg)))
			break;
	}
	mdb_cursor_close(c);
	if (r)
		return r;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_fail(tx, rc, "recent");
}

static int recent_index_fill(uint64_t arrival, uint32_t user, const uint8_t *rec, void *arg)
{
	return recent_index_add(arg, arrival, user, rec) < 0 ? store_err(-ENOMEM, "out of memory") : 0;
}

struct recent_scan {
	uint32_t user;
	uint8_t *recs;   /* STORE_EVENT_REC_LEN each */
	size_t n, cap;
};

static int recent_scan_one(uint64_t arrival, uint32_t user, const uint8_t *rec, void *arg)
{
	struct recent_scan *sc = arg;
	(void)arrival;
	if (user != sc->user)
		return 0;
	if (sc->n == sc->cap) {
		size_t nc = sc->cap ? sc->cap * 2 : 16;
		uint8_t *p = realloc(sc->recs, nc * STORE_EVENT_REC_LEN);
		if (!p)
			return store_err(-ENOMEM, "out of memory");
		sc->recs = p;
		sc->cap = nc;
	}
	memcpy(sc->recs + sc->n++ * STORE_EVENT_REC_LEN, rec, STORE_EVENT_REC_LEN);
	return 0;
}

static int rec_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_EVENT_REC_LEN);
}

/* The user's recent records in tx's snapshot, in (ts, seq) order: *total of
 * them, and with max > 0 the last min(max, *total) in *recs (malloc'd,
 * STORE_EVENT_REC_LEN each; NULL when none), *got of them.
 *
 * Read txns go through the index (recent.h), under rimu: a snapshot whose
 * table starts at first prunes what lies below (compacted since), extends
 * the index from its own snapshot up to its last arrival, and uses the
 * entries up to that.  A snapshot older than the index's horizon (it began
 * before a compaction that a newer reader has seen), and every write txn
 * (its appends are not committed), scans the table itself instead. */
static int recent_user(struct store_txn *tx, uint32_t user, size_t max, uint8_t **recs,
                       size_t *got, size_t *total)
{
	struct store *st = tx->st;
	uint64_t first, last;
	int r = recent_range(tx, &first, &last);

	*recs = NULL;
	*got = *total = 0;
	if (r)
		return r < 0 ? r : 0;
	if (!tx->write) {
		struct recent_index *ri = &st->ri;
		pthread_mutex_lock(&st->rimu);
		if (first >= ri->horizon) {
			if (first > ri->horizon)
				recent_index_prune(ri, first);
			if (ri->next <= last) {
				if ((r = recent_walk(tx, ri->next, last, recent_index_fill, ri)) < 0) {
					recent_index_reset(ri, first);
					pthread_mutex_unlock(&st->rimu);
					return r;
				}
				ri->next = last + 1;
			}
			const struct recent_list *l = recent_index_find(ri, user);
			size_t n = 0, t = 0, room = l ? (max < l->n ? max : l->n) : 0;
			uint8_t *out = room ? malloc(room * STORE_EVENT_REC_LEN) : NULL;
			if (room && !out) {
				pthread_mutex_unlock(&st->rimu);
				return store_err(-ENOMEM, "out of memory");
			}
			if (l && l->max_arrival <= last && room == 0) {
				t = l->n;
			} else if (l) {
				/* From the end, skipping what is newer than this snapshot;
				 * fill out[] from its end, then slide to the front. */
				for (uint32_t j = l->n; j > 0; j--) {
					const struct recent_ent *e = &l->e[j - 1];
					if (e->arrival > last)
						continue;
					t++;
					if (n < room) {
						memcpy(out + (room - 1 - n) * STORE_EVENT_REC_LEN, e->rec, STORE_EVENT_REC_LEN);
						n++;
					}
				}
				if (n < room)
					memmove(out, out + (room - n) * STORE_EVENT_REC_LEN, n * STORE_EVENT_REC_LEN);
			}
			pthread_mutex_unlock(&st->rimu);
			if (!n) {
				free(out);
				out = NULL;
			}
			*recs = out;
			*got = n;
			*total = t;
			return 0;
		}
		pthread_mutex_unlock(&st->rimu);
	}
	struct recent_scan sc = { user, NULL, 0, 0 };
	if ((r = recent_walk(tx, first, last, recent_scan_one, &sc)) < 0) {
		free(sc.recs);
		return r;
	}
	if (sc.n > 1)
		qsort(sc.recs, sc.n, STORE_EVENT_REC_LEN, rec_cmp);
	size_t n = max < sc.n ? max : sc.n;
	if (n < sc.n)
		memmove(sc.recs, sc.recs + (sc.n - n) * STORE_EVENT_REC_LEN, n * STORE_EVENT_REC_LEN);
	if (!n) {
		free(sc.recs);
		sc.recs = NULL;
	}
	*recs = sc.recs;
	*got = n;
	*total = sc.n;
	return 0;
}

/* --- events: readers -------------------------------------------------------- */

int store_events_last(struct store_txn *tx, uint32_t user, size_t n, struct store_event *out, size_t *got)
{
	MDB_cursor *c;
	MDB_val k = { sizeof user, &user }, d;
	uint8_t *rr;
	size_t i = 0, nr, total;
	int rc, r;

	if ((r = recent_user(tx, user, n, &rr, &nr, &total)) < 0)
		return r;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_EVENTS], &c))) {
		free(rr);
		return store_fail(tx, rc, "events");
	}
	rc = mdb_cursor_get(c, &k, &d, MDB_SET_KEY);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &d, MDB_LAST_DUP);
	/* Walk both backwards, newest first, filling out[] from its end, then
	 * slide to the front.  have: d holds the list's next record. */
	int have = rc == 0;
	while (i < n && (have || nr > 0)) {
		if (nr > 0 && (!have || memcmp(rr + (nr - 1) * STORE_EVENT_REC_LEN, d.mv_data, STORE_EVENT_REC_LEN) > 0)) {
			nr--;
			store_event_decode(&out[n - 1 - i], rr + nr * STORE_EVENT_REC_LEN);
		} else {
			store_event_decode(&out[n - 1 - i], d.mv_data);
			rc = mdb_cursor_get(c, &k, &d, MDB_PREV_DUP);
			have = rc == 0;
		}
		i++;
	}
	mdb_cursor_close(c);
	free(rr);
	if (rc && rc != MDB_NOTFOUND)
		return store_fail(tx, rc, "events");
	if (i < n && i)
		memmove(out, out + (n - i), i * sizeof *out);
	*got = i;
	return 0;
}

static int store_emit_recs(uint32_t user, const uint8_t *recs, size_t n, store_event_fn fn, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		struct store_event ev;
		store_event_decode(&ev, recs + i * STORE_EVENT_REC_LEN);
		int r = fn(user, &ev, arg);
		if (r)
			return r;
	}
	return 0;
}

/* Walks the duplicates of the cursor's current key a page at a time, with
 * the user's recent records recs[0..nr) (in order) merged in.  d holds the
 * record the cursor was positioned on: for a key with a single record
 * MDB_GET_MULTIPLE succeeds without touching d, and that record is the
 * whole list. */
static int store_events_walk_key(struct store_txn *tx, MDB_cursor *c, uint32_t user, MDB_val d,
                                 const uint8_t *recs, size_t nr, store_event_fn fn, void *arg)
{
	MDB_val k;
	size_t ri = 0;
	int r, rc = mdb_cursor_get(c, &k, &d, MDB_GET_MULTIPLE);
	while (rc == 0) {
		const uint8_t *p = d.mv_data;
		for (size_t off = 0; off + STORE_EVENT_REC_LEN <= d.mv_size; off += STORE_EVENT_REC_LEN) {
			struct store_event ev;
			size_t m = ri;
			while (m < nr && memcmp(recs + m * STORE_EVENT_REC_LEN, p + off, STORE_EVENT_REC_LEN) < 0)
				m++;
			if (m > ri && (r = store_emit_recs(user, recs + ri * STORE_EVENT_REC_LEN, m - ri, fn, arg)))
				return r;
			ri = m;
			store_event_decode(&ev, p + off);
			if ((r = fn(user, &ev, arg)))
				return r;
		}
		rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_MULTIPLE);
	}
	if (rc != MDB_NOTFOUND)
		return store_fail(tx, rc, "events");
	return ri < nr ? store_emit_recs(user, recs + ri * STORE_EVENT_REC_LEN, nr - ri, fn, arg) : 0;
}

int store_events_foreach(struct store_txn *tx, uint32_t user, store_event_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k = { sizeof user, &user }, d;
	uint8_t *rr;
	size_t nr, total;
	int rc, r;

	if ((r = recent_user(tx, user, SIZE_MAX, &rr, &nr, &total)) < 0)
		return r;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_EVENTS], &c))) {
		free(rr);
		return store_fail(tx, rc, "events");
	}
	rc = mdb_cursor_get(c, &k, &d, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND)
		r = store_emit_recs(user, rr, nr, fn, arg);
	else if (rc)
		r = store_fail(tx, rc, "events");
	else
		r = store_events_walk_key(tx, c, user, d, rr, nr, fn, arg);
	mdb_cursor_close(c);
	free(rr);
	return r;
}

/* Every recent entry of a snapshot, to be sorted by (user, record). */
struct recent_all {
	struct recent_all_ent { uint32_t user; uint8_t rec[STORE_EVENT_REC_LEN]; } *e;
	size_t n, cap;
};

static int recent_all_one(uint64_t arrival, uint32_t user, const uint8_t *rec, void *arg)
{
	struct recent_all *ra = arg;
	(void)arrival;
	if (ra->n == ra->cap) {
		size_t nc = ra->cap ? ra->cap * 2 : 256;
		struct recent_all_ent *p = realloc(ra->e, nc * sizeof *p);
		if (!p)
			return store_err(-ENOMEM, "out of memory");
		ra->e = p;
		ra->cap = nc;
	}
	ra->e[ra->n].user = user;
	memcpy(ra->e[ra->n].rec, rec, STORE_EVENT_REC_LEN);
	ra->n++;
	return 0;
}

static int recent_all_cmp(const void *a, const void *b)
{
	const struct recent_all_ent *x = a, *y = b;
	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	return memcmp(x->rec, y->rec, STORE_EVENT_REC_LEN);
}

/* The whole recent table of tx's snapshot, sorted by (user, record): the
 * same order compaction writes in.  *out is malloc'd (NULL when empty). */
static int recent_all_sorted(struct store_txn *tx, struct recent_all *out)
{
	struct recent_all ra = { NULL, 0, 0 };
	uint64_t first, last;
	int r = recent_range(tx, &first, &last);

	if (r == 0 && (r = recent_walk(tx, first, last, recent_all_one, &ra)) < 0) {
		free(ra.e);
		return r;
	}
	if (r < 0)
		return r;
	if (ra.n > 1)
		qsort(ra.e, ra.n, sizeof *ra.e, recent_all_cmp);
	*out = ra;
	return 0;
}

/* Calls fn for the recent records of one user that start at ra->e[*at];
 * *at moves past them.  The records of one user are contiguous. */
static int recent_user_slice(const struct recent_all *ra, size_t *at, uint8_t **recs, size_t *n)
{
	size_t i = *at, j = i;
	uint32_t user = ra->e[i].user;
	while (j < ra->n && ra->e[j].user == user)
		j++;
	uint8_t *p = malloc((j - i) * STORE_EVENT_REC_LEN);
	if (!p)
		return store_err(-ENOMEM, "out of memory");
	for (size_t m = i; m < j; m++)
		memcpy(p + (m - i) * STORE_EVENT_REC_LEN, ra->e[m].rec, STORE_EVENT_REC_LEN);
	*recs = p;
	*n = j - i;
	*at = j;
	return 0;
}

int store_events_foreach_all(struct store_txn *tx, store_event_fn fn, void *arg)
{
	struct recent_all ra;
	MDB_cursor *c;
	MDB_val k, d;
	size_t at = 0;
	int rc, r = 0;

	if ((r = recent_all_sorted(tx, &ra)) < 0)
		return r;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_EVENTS], &c))) {
		free(ra.e);
		return store_fail(tx, rc, "events");
	}
	/* Users in id order: those of the users' lists and those only in the
	 * recent table, merged. */
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_NODUP)) {
		uint32_t user;
		uint8_t *recs = NULL;
		size_t nr = 0;
		memcpy(&user, k.mv_data, sizeof user);
		while (!r && at < ra.n && ra.e[at].user < user) {
			uint32_t only = ra.e[at].user;
			if ((r = recent_user_slice(&ra, &at, &recs, &nr)) == 0)
				r = store_emit_recs(only, recs, nr, fn, arg);
			free(recs);
			recs = NULL;
		}
		if (!r && at < ra.n && ra.e[at].user == user)
			r = recent_user_slice(&ra, &at, &recs, &nr);
		if (!r)
			r = store_events_walk_key(tx, c, user, d, recs, nr, fn, arg);
		free(recs);
		if (r)
			break;
	}
	mdb_cursor_close(c);
	if (!r && rc != MDB_NOTFOUND)
		r = store_fail(tx, rc, "events");
	while (!r && at < ra.n) {
		uint8_t *recs = NULL;
		size_t nr = 0;
		uint32_t only = ra.e[at].user;
		if ((r = recent_user_slice(&ra, &at, &recs, &nr)) == 0)
			r = store_emit_recs(only, recs, nr, fn, arg);
		free(recs);
	}
	free(ra.e);
	return r;
}

int store_events_count(struct store_txn *tx, uint32_t user, size_t *n)
{
	MDB_cursor *c;
	MDB_val k = { sizeof user, &user }, d;
	uint8_t *rr;
	size_t cnt = 0, nr, total;
	int rc, r;

	if ((r = recent_user(tx, user, 0, &rr, &nr, &total)) < 0)
		return r;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_EVENTS], &c)))
		return store_fail(tx, rc, "events");
	rc = mdb_cursor_get(c, &k, &d, MDB_SET_KEY);
	if (rc == 0)
		rc = mdb_cursor_count(c, &cnt);
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return store_fail(tx, rc, "events");
	*n = cnt + total;
	return 0;
}

int store_event_text(struct store_txn *tx, uint32_t user, const struct store_event *ev, const char **text, size_t *len)
{
	uint8_t rec[STORE_EVENT_REC_LEN], key[STORE_EVENT_KEY_LEN];
	MDB_val k = { sizeof key, key }, d;
	int rc;

	store_event_encode(rec, ev);
	store_event_key(key, user, rec);
	rc = mdb_get(tx->txn, tx->st->dbi[DBI_EVENT_TEXT], &k, &d);
	if (rc == MDB_NOTFOUND)
		return store_err(-ENOENT, "the event has no text");
	if (rc)
		return store_fail(tx, rc, "event_text");
	*text = d.mv_data;
	*len = d.mv_size;
	return 0;
}

/* --- actions and devices ------------------------------------------------ */

static const char *const store_action_names[STORE_ACTION_BUILTIN_COUNT] = {
	[STORE_ACTION_NONE] = "none", [STORE_ACTION_VIEW] = "view", [STORE_ACTION_CLICK] = "click",
	[STORE_ACTION_CART] = "cart", [STORE_ACTION_PURCHASE] = "purchase", [STORE_ACTION_RATE] = "rate",
	[STORE_ACTION_CHECKIN] = "checkin", [STORE_ACTION_LIKE] = "like", [STORE_ACTION_SHARE] = "share",
	[STORE_ACTION_REVIEW] = "review", [STORE_ACTION_PLAY] = "play",
};

const char *store_action_builtin_name(unsigned action)
{
	return action < STORE_ACTION_BUILTIN_COUNT ? store_action_names[action] : NULL;
}

/* vocab keys: kind letter (lower case) + name -> u32 id; kind letter (upper
 * case) + BE u32 id -> name. */
static int store_vocab_id(struct store_txn *tx, char kind, const char *name, size_t len,
                          uint32_t first, uint32_t max, uint32_t *id)
{
	uint8_t kbuf[1 + STORE_ID_MAX_LEN], rkey[5];
	MDB_val k = { 1 + len, kbuf }, d;
	MDB_cursor *c;
	uint32_t v;
	int rc, r;

	if ((r = store_check_id(kind == 'a' ? "action" : "device", name, len)) < 0)
		return r;
	kbuf[0] = (uint8_t)kind;
	memcpy(kbuf + 1, name, len);
	rc = mdb_get(tx->txn, tx->st->dbi[DBI_VOCAB], &k, &d);
	if (rc == 0 && d.mv_size == sizeof v) {
		memcpy(&v, d.mv_data, sizeof v);
		*id = v;
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return store_fail(tx, rc, "vocab");
	if ((r = store_need_write(tx)) < 0)
		return r;
	/* The last reverse key of this kind holds the highest id handed out. */
	uint8_t upper = (uint8_t)(kind - 'a' + 'A'), probe[1] = { (uint8_t)(upper + 1) };
	MDB_val pk = { 1, probe }, pd;
	v = first;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_VOCAB], &c)))
		return store_fail(tx, rc, "vocab");
	rc = mdb_cursor_get(c, &pk, &pd, MDB_SET_RANGE);
	rc = rc == 0 ? mdb_cursor_get(c, &pk, &pd, MDB_PREV) : mdb_cursor_get(c, &pk, &pd, MDB_LAST);
	if (rc == 0 && pk.mv_size == 5 && ((uint8_t *)pk.mv_data)[0] == upper)
		v = store_get_be32((uint8_t *)pk.mv_data + 1) + 1;
	mdb_cursor_close(c);
	if (v > max)
		return store_err(-ENOSPC, "too many distinct %s names (at most %u)", kind == 'a' ? "action" : "device", max - first + 1);
	d = (MDB_val){ sizeof v, &v };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_VOCAB], &k, &d, 0)))
		return store_fail(tx, rc, "vocab");
	rkey[0] = upper;
	store_put_be32(rkey + 1, v);
	MDB_val rk = { sizeof rkey, rkey }, rd = { len, (void *)name };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_VOCAB], &rk, &rd, 0)))
		return store_fail(tx, rc, "vocab");
	*id = v;
	return 0;
}

static int store_vocab_name(struct store_txn *tx, char kind, uint32_t id, const char **name, size_t *len)
{
	uint8_t rkey[5];
	rkey[0] = (uint8_t)(kind - 'a' + 'A');
	store_put_be32(rkey + 1, id);
	MDB_val k = { sizeof rkey, rkey }, d;
	int rc = mdb_get(tx->txn, tx->st->dbi[DBI_VOCAB], &k, &d);
	if (rc == MDB_NOTFOUND)
		return store_err(-ENOENT, "no %s with id %u", kind == 'a' ? "action" : "device", id);
	if (rc)
		return store_fail(tx, rc, "vocab");
	*name = d.mv_data;
	*len = d.mv_size;
	return 0;
}

int store_action_id(struct store_txn *tx, const char *name, size_t len, uint8_t *id)
{
	uint32_t v;
	for (unsigned i = 0; i < STORE_ACTION_BUILTIN_COUNT; i++) {
		if (strlen(store_action_names[i]) == len && strncasecmp(store_action_names[i], name, len) == 0) {
			*id = (uint8_t)i;
			return 0;
		}
	}
	int r = store_vocab_id(tx, 'a', name, len, STORE_ACTION_BUILTIN_COUNT, 255, &v);
	if (r == 0)
		*id = (uint8_t)v;
	return r;
}

int store_action_name(struct store_txn *tx, uint8_t id, const char **name, size_t *len)
{
	if (id < STORE_ACTION_BUILTIN_COUNT) {
		*name = store_action_names[id];
		*len = strlen(*name);
		return 0;
	}
	return store_vocab_name(tx, 'a', id, name, len);
}

int store_device_id(struct store_txn *tx, const char *name, size_t len, uint16_t *id)
{
	uint32_t v;
	int r = store_vocab_id(tx, 'd', name, len, 1, UINT16_MAX, &v);
	if (r == 0)
		*id = (uint16_t)v;
	return r;
}

int store_device_name(struct store_txn *tx, uint16_t id, const char **name, size_t *len)
{
	return store_vocab_name(tx, 'd', id, name, len);
}

/* --- knowledge graph ---------------------------------------------------- */

/* Entity record: u32 type length, type, name. */
int store_entity_get_or_add(struct store_txn *tx, const char *name, size_t len,
                            const char *type, size_t type_len, uint32_t *id)
{
	char rbuf[4 + 2 * STORE_ID_MAX_LEN];
	uint32_t tl = (uint32_t)type_len;
	int r;

	if ((r = store_check_id("entity", name, len)) < 0)
		return r;
	if (type_len > STORE_ID_MAX_LEN)
		return store_err(-ENAMETOOLONG, "entity type of %zu bytes is longer than %d", type_len, STORE_ID_MAX_LEN);
	memcpy(rbuf, &tl, 4);
	if (type_len)
		memcpy(rbuf + 4, type, type_len);
	memcpy(rbuf + 4 + type_len, name, len);
	MDB_val k = { len, (void *)name }, rec = { 4 + type_len + len, rbuf };
	const struct store_idspace sp = { &tx->st->entities, DBI_ENTITY_KEY, DBI_ENTITY, &tx->next_entity, "entity" };
	return store_id_resolve(tx, &sp, name, len, &k, 1, &rec, id);
}

int store_entity_lookup(struct store_txn *tx, const char *name, size_t len, uint32_t *id)
{
	int r;
	if ((r = store_check_id("entity", name, len)) < 0)
		return r;
	MDB_val k = { len, (void *)name }, none = { 0, NULL };
	const struct store_idspace sp = { &tx->st->entities, DBI_ENTITY_KEY, DBI_ENTITY, &tx->next_entity, "entity" };
	return store_id_resolve(tx, &sp, name, len, &k, 0, &none, id);
}

int store_entity_get(struct store_txn *tx, uint32_t id, const char **name, size_t *len,
                     const char **type, size_t *type_len)
{
	MDB_val d;
	uint32_t tl;
	int r = store_get_u32key(tx, DBI_ENTITY, id, &d);
	if (r < 0)
		return r;
	memcpy(&tl, d.mv_data, 4);
	if (4 + (size_t)tl > d.mv_size)
		return store_err(-EIO, "entity %u: corrupt record", id);
	*type = (const char *)d.mv_data + 4;
	*type_len = tl;
	*name = (const char *)d.mv_data + 4 + tl;
	*len = d.mv_size - 4 - tl;
	return 0;
}

int store_relation_get_or_add(struct store_txn *tx, const char *name, size_t len, uint32_t *id)
{
	int r;
	if ((r = store_check_id("relation", name, len)) < 0)
		return r;
	MDB_val k = { len, (void *)name }, rec = { len, (void *)name };
	const struct store_idspace sp = { &tx->st->relations, DBI_RELATION_KEY, DBI_RELATION, &tx->next_relation, "relation" };
	return store_id_resolve(tx, &sp, name, len, &k, 1, &rec, id);
}

int store_relation_name(struct store_txn *tx, uint32_t id, const char **name, size_t *len)
{
	MDB_val d;
	int r = store_get_u32key(tx, DBI_RELATION, id, &d);
	if (r < 0)
		return r;
	*name = d.mv_data;
	*len = d.mv_size;
	return 0;
}

static void kg_key(uint8_t key[8], uint32_t e, uint32_t rel)
{
	store_put_be32(key, e);
	store_put_be32(key + 4, rel);
}

int store_triple_add(struct store_txn *tx, uint32_t head, uint32_t rel, uint32_t tail, int *added)
{
	uint8_t key[8];
	MDB_val k = { sizeof key, key }, d = { sizeof tail, &tail };
	int rc, r;

	if ((r = store_need_write(tx)) < 0)
		return r;
	if (!head || !rel || !tail)
		return store_err(-EINVAL, "triple with a zero ID");
	kg_key(key, head, rel);
	rc = mdb_put(tx->txn, tx->st->dbi[DBI_KG_OUT], &k, &d, MDB_NODUPDATA);
	if (rc == MDB_KEYEXIST) {
		*added = 0;
		return 0;
	}
	if (rc)
		return store_fail(tx, rc, "kg_out");
	kg_key(key, tail, rel);
	d = (MDB_val){ sizeof head, &head };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_KG_IN], &k, &d, MDB_NODUPDATA)) && rc != MDB_KEYEXIST)
		return store_fail(tx, rc, "kg_in");
	*added = 1;
	return 0;
}

/* Reads all duplicates of key into out (up to cap) a page at a time. */
static int store_dups_u32(struct store_txn *tx, int dbi, MDB_val *k, uint32_t *out, size_t cap,
                          size_t *got, size_t *total)
{
	MDB_cursor *c;
	MDB_val d;
	size_t n = 0, cnt = 0;
	int rc;

	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[dbi], &c)))
		return store_fail(tx, rc, store_dbs[dbi].name);
	rc = mdb_cursor_get(c, k, &d, MDB_SET_KEY);
	if (rc == 0)
		rc = mdb_cursor_count(c, &cnt);
	if (rc == 0)
		rc = mdb_cursor_get(c, k, &d, MDB_GET_MULTIPLE);
	while (rc == 0 && n < cap) {
		size_t m = d.mv_size / sizeof(uint32_t);
		if (m > cap - n)
			m = cap - n;
		memcpy(out + n, d.mv_data, m * sizeof(uint32_t));
		n += m;
		rc = mdb_cursor_get(c, k, &d, MDB_NEXT_MULTIPLE);
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return store_fail(tx, rc, store_dbs[dbi].name);
	*got = n;
	if (total)
		*total = cnt;
	return 0;
}

int store_kg_neighbours(struct store_txn *tx, uint32_t e, uint32_t rel, enum store_dir dir,
                        uint32_t *out, size_t cap, size_t *got, size_t *total)
{
	uint8_t key[8];
	MDB_val k = { sizeof key, key };
	kg_key(key, e, rel);
	return store_dups_u32(tx, dir == STORE_IN ? DBI_KG_IN : DBI_KG_OUT, &k, out, cap, got, total);
}

int store_kg_foreach_edge(struct store_txn *tx, uint32_t e, enum store_dir dir, store_edge_fn fn, void *arg)
{
	int dbi = dir == STORE_IN ? DBI_KG_IN : DBI_KG_OUT;
	uint8_t key[8];
	MDB_val k = { sizeof key, key }, d;
	MDB_cursor *c;
	int rc, r = 0;

	kg_key(key, e, 0);
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[dbi], &c)))
		return store_fail(tx, rc, store_dbs[dbi].name);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		uint32_t other;
		if (k.mv_size != 8 || store_get_be32(k.mv_data) != e)
			break;
		memcpy(&other, d.mv_data, sizeof other);
		if ((r = fn(store_get_be32((const uint8_t *)k.mv_data + 4), other, arg)))
			break;
	}
	mdb_cursor_close(c);
	if (r)
		return r;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_fail(tx, rc, store_dbs[dbi].name);
}

int store_item_link(struct store_txn *tx, uint32_t item, uint32_t entity)
{
	MDB_val k = { sizeof item, &item }, d = { sizeof entity, &entity };
	int rc, r;

	if ((r = store_need_write(tx)) < 0)
		return r;
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_ITEM_ENT], &k, &d, MDB_NODUPDATA)) && rc != MDB_KEYEXIST)
		return store_fail(tx, rc, "item_ent");
	k = (MDB_val){ sizeof entity, &entity };
	d = (MDB_val){ sizeof item, &item };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_ENT_ITEM], &k, &d, 0)))
		return store_fail(tx, rc, "ent_item");
	return 0;
}

int store_item_entities(struct store_txn *tx, uint32_t item, uint32_t *out, size_t cap, size_t *got)
{
	MDB_val k = { sizeof item, &item };
	return store_dups_u32(tx, DBI_ITEM_ENT, &k, out, cap, got, NULL);
}

int store_entity_item(struct store_txn *tx, uint32_t entity, uint32_t *item)
{
	MDB_val d;
	int r = store_get_u32key(tx, DBI_ENT_ITEM, entity, &d);
	if (r < 0)
		return r;
	if (d.mv_size != sizeof *item)
		return store_err(-EIO, "ent_item %u: corrupt record", entity);
	memcpy(item, d.mv_data, sizeof *item);
	return 0;
}

/* --- model versions ----------------------------------------------------- */

int store_model_put(struct store_txn *tx, struct store_model_meta *meta, const void *blob, size_t len)
{
	struct store_model_rec rec;
	uint32_t next = 0;
	int r, rc;

	if ((r = store_need_write(tx)) < 0 || (r = store_next_id(tx, DBI_MODEL, &next)) < 0)
		return r;
	if (meta->parent) {
		MDB_val pd;
		if ((r = store_get_u32key(tx, DBI_MODEL, meta->parent, &pd)) < 0)
			return store_err(r, "parent model version %u does not exist", meta->parent);
	}
	memset(&rec, 0, sizeof rec);
	rec.version = next;
	rec.parent = meta->parent;
	rec.created = meta->created ? meta->created : (int64_t)time(NULL);
	rec.snapshot_events = meta->snapshot_events;
	rec.blob_len = len;
	memcpy(rec.kind, meta->kind, sizeof rec.kind);
	rec.kind[sizeof rec.kind - 1] = 0;
	memcpy(rec.metrics, meta->metrics, sizeof rec.metrics);
	rec.metrics[sizeof rec.metrics - 1] = 0;
	MDB_val k = { sizeof next, &next }, d = { sizeof rec, &rec };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_MODEL], &k, &d, MDB_APPEND)))
		return store_fail(tx, rc, "model");
	d = (MDB_val){ len, NULL };
	if ((rc = mdb_put(tx->txn, tx->st->dbi[DBI_MODEL_BLOB], &k, &d, MDB_RESERVE | MDB_APPEND)))
		return store_fail(tx, rc, "model_blob");
	if (len)
		memcpy(d.mv_data, blob, len);
	meta->version = next;
	meta->created = rec.created;
	return 0;
}

static void model_meta_from_rec(struct store_model_meta *m, const struct store_model_rec *rec)
{
	memset(m, 0, sizeof *m);
	m->version = rec->version;
	m->parent = rec->parent;
	m->created = rec->created;
	m->snapshot_events = rec->snapshot_events;
	memcpy(m->kind, rec->kind, sizeof m->kind);
	memcpy(m->metrics, rec->metrics, sizeof m->metrics);
	m->kind[sizeof m->kind - 1] = 0;
	m->metrics[sizeof m->metrics - 1] = 0;
}

int store_model_get(struct store_txn *tx, uint32_t version, struct store_model_meta *meta,
                    const void **blob, size_t *len)
{
	struct store_model_rec rec;
	MDB_val d, b;
	int r;

	if ((r = store_get_u32key(tx, DBI_MODEL, version, &d)) < 0)
		return store_err(r, "model version %u does not exist", version);
	if (d.mv_size != sizeof rec)
		return store_err(-EIO, "model %u: corrupt metadata", version);
	memcpy(&rec, d.mv_data, sizeof rec);
	if ((r = store_get_u32key(tx, DBI_MODEL_BLOB, version, &b)) < 0)
		return r;
	if (b.mv_size != rec.blob_len)
		return store_err(-EIO, "model %u: blob is %zu bytes, metadata says %llu", version,
		                 b.mv_size, (unsigned long long)rec.blob_len);
	if (meta)
		model_meta_from_rec(meta, &rec);
	if (blob)
		*blob = b.mv_data;
	if (len)
		*len = b.mv_size;
	return 0;
}

int store_model_foreach(struct store_txn *tx, store_model_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, d;
	int rc, r = 0;

	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_MODEL], &c)))
		return store_fail(tx, rc, "model");
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		struct store_model_rec rec;
		struct store_model_meta m;
		if (d.mv_size != sizeof rec) {
			r = store_err(-EIO, "model: corrupt metadata");
			break;
		}
		memcpy(&rec, d.mv_data, sizeof rec);
		model_meta_from_rec(&m, &rec);
		if ((r = fn(&m, (size_t)rec.blob_len, arg)))
			break;
	}
	mdb_cursor_close(c);
	if (r)
		return r;
	return rc == MDB_NOTFOUND ? 0 : store_fail(tx, rc, "model");
}

int store_model_latest(struct store_txn *tx, uint32_t *version)
{
	uint32_t next = 0;
	int r = store_next_id(tx, DBI_MODEL, &next);
	if (r < 0)
		return r;
	if (next == 1)
		return store_err(-ENOENT, "no model version stored");
	*version = next - 1;
	return 0;
}

/* The active version is the meta key "model_active" (u64); absent or 0 =
 * none chosen. */
int store_model_active_get(struct store_txn *tx, uint32_t *version)
{
	uint64_t v = 0;
	int rc = meta_get_u64(tx->txn, tx->st->dbi[DBI_META], "model_active", &v);
	if (rc == MDB_NOTFOUND)
		v = 0;
	else if (rc)
		return store_fail(tx, rc, "meta model_active");
	if (v > UINT32_MAX)
		return store_err(-EIO, "meta model_active: corrupt value %llu", (unsigned long long)v);
	*version = (uint32_t)v;
	return 0;
}

int store_model_active_set(struct store_txn *tx, uint32_t version)
{
	MDB_val d;
	int r, rc;
	if ((r = store_need_write(tx)) < 0)
		return r;
	if (version && (r = store_get_u32key(tx, DBI_MODEL, version, &d)) < 0)
		return store_err(r, "model version %u does not exist", version);
	if ((rc = meta_put_u64(tx->txn, tx->st->dbi[DBI_META], "model_active", version)))
		return store_fail(tx, rc, "meta model_active");
	return 0;
}

/* --- metadata ------------------------------------------------------------ */

int store_dataset_put(struct store_txn *tx, const char *name, const char *json)
{
	size_t nl = strlen(name), jl = strlen(json);
	int r, rc;
	if ((r = store_need_write(tx)) < 0 || (r = store_check_id("dataset", name, nl)) < 0)
		return r;
	if (jl > STORE_TEXT_MAX_LEN)
		return store_err(-E2BIG, "dataset metadata of %zu bytes exceeds %u", jl, STORE_TEXT_MAX_LEN);
	MDB_val k = { nl, (void *)name }, d = { jl + 1, (void *)json };
	rc = mdb_put(tx->txn, tx->st->dbi[DBI_DATASET], &k, &d, 0);
	return rc ? store_fail(tx, rc, "dataset") : 0;
}

int store_dataset_foreach(struct store_txn *tx, store_dataset_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, d;
	int rc, r = 0;

	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_DATASET], &c)))
		return store_fail(tx, rc, "dataset");
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		char name[STORE_ID_MAX_LEN + 1];
		if (k.mv_size > STORE_ID_MAX_LEN || d.mv_size == 0 || ((char *)d.mv_data)[d.mv_size - 1]) {
			r = store_err(-EIO, "dataset: corrupt record");
			break;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = 0;
		if ((r = fn(name, d.mv_data, arg)))
			break;
	}
	mdb_cursor_close(c);
	if (r)
		return r;
	return rc == MDB_NOTFOUND ? 0 : store_fail(tx, rc, "dataset");
}

int store_import_get(struct store_txn *tx, const uint8_t key[32], struct store_import_progress *p)
{
	MDB_val k = { 32, (void *)key }, d;
	int rc = mdb_get(tx->txn, tx->st->dbi[DBI_IMPORT], &k, &d);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc)
		return store_fail(tx, rc, "import");
	if (d.mv_size != sizeof *p)
		return store_err(-EIO, "import: corrupt progress record");
	memcpy(p, d.mv_data, sizeof *p);
	return 0;
}

int store_import_put(struct store_txn *tx, const uint8_t key[32], const struct store_import_progress *p)
{
	MDB_val k = { 32, (void *)key }, d = { sizeof *p, (void *)p };
	int r, rc;
	if ((r = store_need_write(tx)) < 0)
		return r;
	rc = mdb_put(tx->txn, tx->st->dbi[DBI_IMPORT], &k, &d, 0);
	return rc ? store_fail(tx, rc, "import") : 0;
}

/* --- batch jobs ---------------------------------------------------------- */
static int store_job_key(const char *id, size_t len, char buf[sizeof STORE_JOB_PREFIX + STORE_JOB_ID_MAX],
                         MDB_val *k)
{
	if (len == 0 || len > STORE_JOB_ID_MAX)
		return store_err(-EINVAL, "job ID of %zu bytes: 1 to %d", len, STORE_JOB_ID_MAX);
	memcpy(buf, STORE_JOB_PREFIX, sizeof STORE_JOB_PREFIX - 1);
	memcpy(buf + sizeof STORE_JOB_PREFIX - 1, id, len);
	k->mv_size = sizeof STORE_JOB_PREFIX - 1 + len;
	k->mv_data = buf;
	return 0;
}

int store_job_put(struct store_txn *tx, const char *id, size_t len, const struct store_job *j)
{
	char buf[sizeof STORE_JOB_PREFIX + STORE_JOB_ID_MAX];
	MDB_val k, d = { sizeof *j, (void *)j };
	int r, rc;
	if ((r = store_need_write(tx)) < 0 || (r = store_job_key(id, len, buf, &k)) < 0)
		return r;
	rc = mdb_put(tx->txn, tx->st->dbi[DBI_META], &k, &d, 0);
	return rc ? store_fail(tx, rc, "job") : 0;
}

int store_job_get(struct store_txn *tx, const char *id, size_t len, struct store_job *j)
{
	char buf[sizeof STORE_JOB_PREFIX + STORE_JOB_ID_MAX];
	MDB_val k, d;
	int r, rc;
	if ((r = store_job_key(id, len, buf, &k)) < 0)
		return r;
	rc = mdb_get(tx->txn, tx->st->dbi[DBI_META], &k, &d);
	if (rc == MDB_NOTFOUND)
		return store_err(-ENOENT, "no job '%.*s'", (int)len, id);
	if (rc)
		return store_fail(tx, rc, "job");
	if (d.mv_size != sizeof *j && d.mv_size != STORE_JOB_V1_SIZE)
		return store_err(-EIO, "job: corrupt record");
	memset(j, 0, sizeof *j);
	memcpy(j, d.mv_data, d.mv_size);
	j->reason[sizeof j->reason - 1] = '\0';
	return 0;
}

int store_job_del(struct store_txn *tx, const char *id, size_t len)
{
	char buf[sizeof STORE_JOB_PREFIX + STORE_JOB_ID_MAX];
	MDB_val k;
	int r, rc;
	if ((r = store_need_write(tx)) < 0 || (r = store_job_key(id, len, buf, &k)) < 0)
		return r;
	rc = mdb_del(tx->txn, tx->st->dbi[DBI_META], &k, NULL);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	return rc ? store_fail(tx, rc, "job") : 0;
}

int store_job_foreach(struct store_txn *tx, store_job_fn fn, void *arg)
{
	const size_t plen = sizeof STORE_JOB_PREFIX - 1;
	MDB_cursor *c;
	MDB_val k = { plen, (void *)STORE_JOB_PREFIX }, d;
	int rc, r = 0;

	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_META], &c)))
		return store_fail(tx, rc, "job");
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		struct store_job j;
		if (k.mv_size < plen || memcmp(k.mv_data, STORE_JOB_PREFIX, plen) != 0)
			break;
		if ((d.mv_size != sizeof j && d.mv_size != STORE_JOB_V1_SIZE) || k.mv_size == plen ||
		    k.mv_size > plen + STORE_JOB_ID_MAX) {
			r = store_err(-EIO, "job: corrupt record");
			break;
		}
		memset(&j, 0, sizeof j);
		memcpy(&j, d.mv_data, d.mv_size);
		j.reason[sizeof j.reason - 1] = '\0';
		if ((r = fn((const char *)k.mv_data + plen, k.mv_size - plen, &j, arg)))
			break;
	}
	mdb_cursor_close(c);
	if (r)
		return r;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_fail(tx, rc, "job");
}

int store_counts(struct store_txn *tx, struct store_counts *c)
{
	static const struct { int dbi; size_t off; } map[] = {
		{ DBI_USER, offsetof(struct store_counts, users) },
		{ DBI_ITEM, offsetof(struct store_counts, items) },
		{ DBI_EVENTS, offsetof(struct store_counts, events) },
		{ DBI_ENTITY, offsetof(struct store_counts, entities) },
		{ DBI_RELATION, offsetof(struct store_counts, relations) },
		{ DBI_KG_OUT, offsetof(struct store_counts, triples) },
		{ DBI_MODEL, offsetof(struct store_counts, models) },
		{ DBI_DATASET, offsetof(struct store_counts, datasets) },
	};
	struct store_counts out;
	MDB_envinfo info;
	MDB_stat s;
	struct stat sb;
	char path[PATH_MAX];
	int rc;

	memset(&out, 0, sizeof out);
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		/* For duplicate-sorted databases LMDB counts every duplicate. */
		if ((rc = mdb_stat(tx->txn, tx->st->dbi[map[i].dbi], &s)))
			return store_fail(tx, rc, store_dbs[map[i].dbi].name);
		uint64_t v = s.ms_entries;
		memcpy((char *)&out + map[i].off, &v, sizeof v);
	}
	if (tx->has_recent) {
		if ((rc = mdb_stat(tx->txn, store_recent_dbi(tx), &s)))
			return store_fail(tx, rc, "recent");
		out.recent = s.ms_entries;
		out.events += out.recent;
	}
	mdb_env_info(tx->st->env, &info);
	out.map_bytes = info.me_mapsize;
	snprintf(path, sizeof path, "%s/data.mdb", tx->st->dir);
	if (stat(path, &sb) == 0)
		out.file_bytes = (uint64_t)sb.st_blocks * 512;
	*c = out;
	return 0;
}

/* --- compaction ------------------------------------------------------------ */

int store_recent_info(struct store_txn *tx, struct store_recent_info *info)
{
	struct store_recent_info o = { 0, 0, 0 };
	uint64_t first, last;
	int r = recent_range(tx, &first, &last);

	if (r < 0)
		return r;
	if (r == 0) {
		MDB_stat s;
		int rc = mdb_stat(tx->txn, store_recent_dbi(tx), &s);
		if (rc)
			return store_fail(tx, rc, "recent");
		o.events = s.ms_entries;
		o.first = first;
		o.last = last;
	}
	*info = o;
	return 0;
}

struct compact_txn {
	size_t max;
	uint64_t upto;
	struct recent_all ra;   /* the oldest entries, then sorted by (user, record) */
};

static int compact_collect(uint64_t arrival, uint32_t user, const uint8_t *rec, void *arg)
{
	struct compact_txn *ct = arg;
	if (arrival > ct->upto || ct->ra.n >= ct->max)
		return 1;   /* enough: stops the walk */
	return recent_all_one(arrival, user, rec, &ct->ra);
}

/* Puts one user's records (sorted) into its list: those past the list's last
 * record go at its end without a search. */
static int compact_user(struct store_txn *tx, MDB_cursor *c, uint32_t user,
                        const struct recent_all_ent *e, size_t n)
{
	uint8_t last[STORE_EVENT_REC_LEN];
	MDB_val k = { sizeof user, &user }, d;
	int has_last = 0;
	int rc = mdb_cursor_get(c, &k, &d, MDB_SET_KEY);

	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &d, MDB_LAST_DUP);
	if (rc == 0 && d.mv_size == STORE_EVENT_REC_LEN) {
		memcpy(last, d.mv_data, sizeof last);
		has_last = 1;
	} else if (rc && rc != MDB_NOTFOUND) {
		return store_fail(tx, rc, "events");
	}
	for (size_t i = 0; i < n; i++) {
		unsigned flags = !has_last || memcmp(e[i].rec, last, sizeof last) > 0 ? MDB_APPENDDUP : 0;
		MDB_val pk = { sizeof user, &user }, pd = { STORE_EVENT_REC_LEN, (void *)e[i].rec };
		rc = mdb_cursor_put(c, &pk, &pd, flags);
		if (rc == MDB_KEYEXIST && flags) {
			pd = (MDB_val){ STORE_EVENT_REC_LEN, (void *)e[i].rec };
			rc = mdb_cursor_put(c, &pk, &pd, 0);
		}
		if (rc)
			return store_fail(tx, rc, "events");
	}
	return 0;
}

static int compact_fn(struct store_txn *tx, void *arg)
{
	struct compact_txn *ct = arg;
	MDB_dbi rdbi = store_recent_dbi(tx);
	MDB_cursor *c;
	MDB_stat s;
	uint64_t first, last;
	int r, rc;

	ct->ra.n = 0;   /* a retry after map growth starts over */
	if ((r = recent_range(tx, &first, &last)))
		return r < 0 ? r : 0;
	if ((r = recent_walk(tx, first, last, compact_collect, ct)) < 0)
		return r;
	r = 0;   /* 1: the walk stopped at max or upto */
	if (!ct->ra.n)
		return 0;
	if (ct->ra.n > 1)
		qsort(ct->ra.e, ct->ra.n, sizeof *ct->ra.e, recent_all_cmp);
	/* By user, then record: each user's pages are touched once. */
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[DBI_EVENTS], &c)))
		return store_fail(tx, rc, "events");
	for (size_t i = 0; i < ct->ra.n && r == 0;) {
		size_t j = i;
		while (j < ct->ra.n && ct->ra.e[j].user == ct->ra.e[i].user)
			j++;
		r = compact_user(tx, c, ct->ra.e[i].user, &ct->ra.e[i], j - i);
		i = j;
	}
	mdb_cursor_close(c);
	if (r)
		return r;
	/* They were the table's first ra.n entries. */
	if ((rc = mdb_stat(tx->txn, rdbi, &s)))
		return store_fail(tx, rc, "recent");
	if (s.ms_entries == ct->ra.n) {
		if ((rc = mdb_drop(tx->txn, rdbi, 0)))
			return store_fail(tx, rc, "recent");
		return 0;
	}
	if ((rc = mdb_cursor_open(tx->txn, rdbi, &c)))
		return store_fail(tx, rc, "recent");
	for (size_t i = 0; i < ct->ra.n && rc == 0; i++) {
		MDB_val k, d;
		if ((rc = mdb_cursor_get(c, &k, &d, MDB_FIRST)) == 0)
			rc = mdb_cursor_del(c, 0);
	}
	mdb_cursor_close(c);
	return rc ? store_fail(tx, rc, "recent") : 0;
}

int store_compact(struct store *st, size_t max_events, uint64_t upto, size_t *moved)
{
	struct compact_txn ct = { max_events, upto, { NULL, 0, 0 } };
	int r;

	if (max_events == 0) {
		*moved = 0;
		return 0;
	}
	r = store_write(st, compact_fn, &ct);
	if (r == 0)
		*moved = ct.ra.n;
	free(ct.ra.e);
	return r;
}
