/* proto.h: the wire protocol between recd and its local clients (librecd):
 * the hello exchanged on the Unix socket, the layout of a client's
 * shared-memory region, its two byte rings and the messages in them.  Both
 * sides include this one header; recd(8) describes the protocol in words.
 *
 * A client connects to runtime_dir/recd.sock and sends a struct rp_hello;
 * recd checks the peer's credentials, answers with a struct rp_welcome and,
 * when admitted, passes two descriptors with SCM_RIGHTS: a sealed memfd of
 * RP_REGION_SIZE bytes (the region) and an eventfd (the doorbell the client
 * rings when recd asked for it).  The socket then carries nothing more; it
 * stays open as the connection's lifeline.
 *
 * Both sides run on one host, so numbers are in host byte order.  Messages
 * are read with memcpy through struct rp_cur, never through casts into the
 * ring, so nothing depends on the alignment of a field in shared memory. */
#ifndef RECD_DAEMON_PROTO_H
#define RECD_DAEMON_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#define RP_MAGIC        UINT64_C(0x31676e6972646365)  /* "ecdring1" little-endian */
#define RP_VERSION      2u  /* 2: rp_job_status has epoch, epochs and loss */
#define RP_SOCKET_NAME  "recd.sock"

/* --- the hello on the socket --------------------------------------------- */

struct rp_hello {               /* client -> recd */
	uint64_t magic;             /* RP_MAGIC */
	uint32_t version;           /* RP_VERSION of the client */
	uint32_t flags;             /* 0; reserved */
};

#define RP_WELCOME_MSG_MAX 200
struct rp_welcome {             /* recd -> client; with the two fds when status == 0 */
	uint64_t magic;             /* RP_MAGIC */
	uint32_t version;           /* RP_VERSION of recd */
	int32_t  status;            /* 0 admitted, else a negative errno */
	uint32_t region_size;       /* bytes of the memfd */
	uint32_t pad;
	char     msg[RP_WELCOME_MSG_MAX];  /* NUL-terminated reason when refused */
};
_Static_assert(sizeof(struct rp_hello) == 16, "rp_hello layout");
_Static_assert(sizeof(struct rp_welcome) == 224, "rp_welcome layout");
_Static_assert(offsetof(struct rp_welcome, msg) == 24, "rp_welcome layout");

/* --- the region ---------------------------------------------------------- */

#define RP_HDR_SIZE     4096u
#define RP_RING_SIZE    (1u << 20)                  /* bytes of each ring, a power of two */
#define RP_REGION_SIZE  (RP_HDR_SIZE + 2 * RP_RING_SIZE)
#define RP_MSG_MAX      (RP_RING_SIZE / 2)          /* bytes of one message, header included */
#define RP_ALIGN        8u                          /* messages start on multiples of this */

/* Who writes what.  recd writes the fields marked recd and the response ring;
 * the client writes the fields marked client and the request ring.  recd
 * never reads back a field it writes (it keeps its own copy), and checks every
 * client-written position before use: a client that breaks an invariant is
 * disconnected.  Positions are free-running byte counters (mod 2^32); a
 * ring's used bytes are head - tail, at most RP_RING_SIZE. */
struct rp_region {
	/* Set by recd before the memfd is passed, never changed. */
	uint64_t magic;             /* RP_MAGIC */
	uint32_t version;           /* RP_VERSION */
	uint32_t region_size;       /* RP_REGION_SIZE */
	uint32_t req_off, ring_size, resp_off, msg_max;
	uint8_t  pad0[64 - 32];
	/* The request ring (client produces, recd consumes). */
	uint32_t req_head;          /* client: bytes written */
	uint8_t  pad1[60];
	uint32_t req_tail;          /* recd: bytes consumed; futex word for space */
	uint32_t req_space_waiters; /* client: nonzero while it sleeps on req_tail */
	uint8_t  pad2[56];
	/* The response ring (recd produces, client consumes). */
	uint32_t resp_head;         /* recd: bytes written; futex word for replies */
	uint32_t resp_waiters;      /* client: nonzero while it sleeps on resp_head */
	uint32_t state;             /* recd: enum rp_state */
	uint8_t  pad3[52];
	uint32_t resp_tail;         /* client: bytes consumed */
	uint8_t  pad4[60];
	/* What recd, sleeping on this client, wants to be woken for: the client
	 * writes 1 to the doorbell eventfd after moving req_head while this is
	 * RP_BELL_REQUEST or RP_BELL_SPACE, and after moving resp_tail while it
	 * is RP_BELL_SPACE (recd waits for room for a response). */
	uint32_t doorbell;          /* recd: enum rp_bell */
	uint8_t  pad5[60];
};
_Static_assert(sizeof(struct rp_region) == 384, "rp_region layout");
_Static_assert(offsetof(struct rp_region, req_head) == 64, "rp_region layout");
_Static_assert(offsetof(struct rp_region, req_tail) == 128, "rp_region layout");
_Static_assert(offsetof(struct rp_region, resp_head) == 192, "rp_region layout");
_Static_assert(offsetof(struct rp_region, resp_tail) == 256, "rp_region layout");
_Static_assert(offsetof(struct rp_region, doorbell) == 320, "rp_region layout");
_Static_assert(sizeof(struct rp_region) <= RP_HDR_SIZE, "rp_region fits its page");
_Static_assert((RP_RING_SIZE & (RP_RING_SIZE - 1)) == 0, "ring size is a power of two");

enum rp_bell {
	RP_BELL_NONE = 0,           /* a worker is on this client: no need to ring */
	RP_BELL_REQUEST = 1,
	RP_BELL_SPACE = 2,
};

enum rp_state {
	RP_STATE_OPEN = 0,          /* requests are taken */
	RP_STATE_STOPPING = 1,      /* recd is stopping: requests already in the ring are
	                             * answered, new ones are refused by librecd */
	RP_STATE_CLOSED = 2,        /* recd closed this connection; nothing more comes */
};

/* --- messages ------------------------------------------------------------- */

/* Every message starts with this header; the next one starts at the next
 * multiple of RP_ALIGN.  A message may wrap around the ring's end. */
struct rp_msg {
	uint32_t len;               /* header + body bytes, RP_MSG_MIN .. RP_MSG_MAX */
	uint16_t type;              /* enum rp_type; responses have RP_RESPONSE set */
	uint16_t flags;             /* 0; reserved */
	uint64_t id;                /* the client's request ID, echoed in the response */
};
_Static_assert(sizeof(struct rp_msg) == 16, "rp_msg layout");
#define RP_MSG_MIN ((uint32_t)sizeof(struct rp_msg))

/* A response's body starts with int32 status (0 or a negative errno) and a
 * string (the error text; empty on success), then the type's body. */
#define RP_RESPONSE 0x8000u

enum rp_type {
	RP_PING = 1,        /* -> (nothing) */
	RP_STATS = 2,       /* -> struct rp_stats */
	RP_RECOMMEND = 3,   /* see below */
	RP_SCORE = 4,
	RP_INGEST = 5,
	RP_MODEL_USE = 6,   /* u32 version (0 = latest) -> u32 version now served */
	/* Batch jobs, run by the spool's job engine (daemon/jobs.h). */
	RP_JOB_SUBMIT = 16,
	RP_JOB_STATUS = 17,
	RP_JOB_RESULT = 18,
	RP_JOB_CANCEL = 19,
};

/* Bodies (u32/i64/f32 in host order; str = u16 length + bytes, no NUL):
 *
 * RP_RECOMMEND: u32 k, u32 flags (RP_REC_*), u32 why_cap, u32 ninclude,
 *   u32 nexclude, i64 ctx_ts, f32 ctx_lat, f32 ctx_lon, str user,
 *   ninclude x str, nexclude x str.
 *   -> u32 version, u32 n, u32 nwhy, u32 cached, n x (f32 score, str item),
 *      nwhy x (i64 ts, f32 weight, u8 action, str item).
 * RP_SCORE: u32 n, str user, n x str item.  -> u32 version, u32 n, n x f32.
 * RP_INGEST: u32 n, n x (i64 ts, f32 value, f32 lat, f32 lon, u8 flags
 *   (RP_EV_*), str user, str item, str action, str device).  An empty action
 *   or device means none.  -> u32 n (events written).
 * RP_STATS: -> struct rp_stats.
 * RP_JOB_SUBMIT: the whole body is the job's JSON (recd-spool(5)), 1 ..
 *   RP_JOB_JSON_MAX bytes; it runs at interactive priority.  -> str ID.
 * RP_JOB_STATUS: str ID.  -> struct rp_job_status.
 * RP_JOB_RESULT: u64 offset, u32 max (1 .. RP_JOB_CHUNK_MAX), str ID.
 *   -> struct rp_job_chunk, then chunk.len bytes of results/ID.jsonl from
 *   offset.  While the job is queued or running: -EINPROGRESS; a failed job:
 *   RP_JOB_FAILED with its reason (failed/ID.error) as the error text; a
 *   cancelled one: -ECANCELED; an offset past the end: -EINVAL.
 * RP_JOB_CANCEL: str ID.  -> (nothing); -ENOENT when unknown or ended.
 * Without a spool directory every job request is -ENOTSUP.
 */
#define RP_REC_INCLUDE_SEEN 1u
#define RP_REC_EXPLAIN      2u
#define RP_REC_CONTEXT      4u  /* ctx_* are set; reserved: recd ignores them for now */
#define RP_REC_FLAGS        7u
#define RP_EV_VALUE         1u
#define RP_EV_LOC           2u
#define RP_EV_FLAGS         3u

#define RP_STR_MAX          255u   /* bytes of an ID or name on the wire (STORE_ID_MAX_LEN) */
#define RP_ERR_MAX          512u   /* bytes of a response's error text */
#define RP_K_MAX            1000u
#define RP_WHY_MAX          200u
#define RP_LIST_MAX         10000u /* items in a filter, candidates, events in one message */
#define RP_JOB_ID_MAX       128u   /* bytes of a job ID (JOBS_ID_MAX) */
#define RP_JOB_JSON_MAX     (RP_MSG_MAX - RP_MSG_MIN)  /* bytes of a submitted job */
#define RP_JOB_CHUNK_MAX    (256u * 1024u)  /* result bytes in one RP_JOB_RESULT reply */
#define RP_JOB_FAILED       (-EREMOTEIO)    /* RP_JOB_RESULT: the job failed */

struct rp_job_status {
	uint32_t state;             /* enum jobs_state: queued, running, done, failed, cancelled */
	uint32_t type;              /* enum jobs_type */
	uint64_t done, total;       /* units (users, requests, events, epochs) */
	double   elapsed_s;         /* while running; 0 else */
	double   eta_s;             /* < 0: unknown */
	uint32_t epoch, epochs;     /* train and fine-tune: the epoch reached, of the most; 0 else */
	double   loss;              /* the last reported training loss; NaN: none */
};
_Static_assert(sizeof(struct rp_job_status) == 56, "rp_job_status layout");
_Static_assert(offsetof(struct rp_job_status, loss) == 48, "rp_job_status layout");
_Static_assert(offsetof(struct rp_job_status, elapsed_s) == 24, "rp_job_status layout");

struct rp_job_chunk {
	uint64_t total;             /* bytes of results/ID.jsonl */
	uint64_t offset;            /* where this chunk starts (the request's offset) */
	uint32_t len;               /* bytes following, at most the request's max */
	uint32_t pad;
};
_Static_assert(sizeof(struct rp_job_chunk) == 24, "rp_job_chunk layout");
_Static_assert(offsetof(struct rp_job_chunk, len) == 16, "rp_job_chunk layout");

struct rp_stats {
	uint64_t uptime_ms;
	uint64_t requests;          /* answered, all types */
	uint64_t errors;            /* answered with a nonzero status */
	uint64_t recommends, scores, ingested_events;
	uint64_t cache_hits, cache_misses, swaps;
	uint64_t disconnects_bad;   /* clients dropped for breaking the protocol */
	uint32_t pid;
	uint32_t model_version;     /* 0 = none served */
	uint32_t clients, max_clients;
	uint32_t workers;
	uint32_t pad;
	char     version[16];       /* recd's PACKAGE_VERSION, NUL-terminated */
};
_Static_assert(sizeof(struct rp_stats) == 120, "rp_stats layout");

/* --- ring positions -------------------------------------------------------- */

static inline uint32_t rp_align(uint32_t n)
{
	return (n + (RP_ALIGN - 1)) & ~(RP_ALIGN - 1);
}

/* Copies n bytes out of a ring of size bytes at position pos, across the end. */
static inline void rp_ring_read(const uint8_t *ring, uint32_t size, uint32_t pos, void *dst, uint32_t n)
{
	uint32_t off = pos & (size - 1), first = size - off < n ? size - off : n;
	memcpy(dst, ring + off, first);
	memcpy((uint8_t *)dst + first, ring, n - first);
}

static inline void rp_ring_write(uint8_t *ring, uint32_t size, uint32_t pos, const void *src, uint32_t n)
{
	uint32_t off = pos & (size - 1), first = size - off < n ? size - off : n;
	memcpy(ring + off, src, first);
	memcpy(ring, (const uint8_t *)src + first, n - first);
}

/* --- message bodies --------------------------------------------------------- */

/* A cursor over a private copy of a message.  A read past the end sets bad
 * and yields zeros: the caller checks bad once, after reading. */
struct rp_cur {
	const uint8_t *p;
	size_t len, off;
	int bad;
};

static inline void rp_get(struct rp_cur *c, void *dst, size_t n)
{
	if (c->bad || n > c->len - c->off) {
		c->bad = 1;
		memset(dst, 0, n);
		return;
	}
	memcpy(dst, c->p + c->off, n);
	c->off += n;
}

static inline uint32_t rp_get_u32(struct rp_cur *c) { uint32_t v; rp_get(c, &v, 4); return v; }
static inline int32_t  rp_get_i32(struct rp_cur *c) { int32_t v; rp_get(c, &v, 4); return v; }
static inline int64_t  rp_get_i64(struct rp_cur *c) { int64_t v; rp_get(c, &v, 8); return v; }
static inline float    rp_get_f32(struct rp_cur *c) { float v; rp_get(c, &v, 4); return v; }
static inline uint8_t  rp_get_u8(struct rp_cur *c)  { uint8_t v; rp_get(c, &v, 1); return v; }

/* A string of at most max bytes: *s points into the copy (not NUL-terminated). */
static inline void rp_get_str(struct rp_cur *c, size_t max, const char **s, size_t *n)
{
	uint16_t len;
	rp_get(c, &len, 2);
	if (c->bad || len > max || len > c->len - c->off) {
		c->bad = 1;
		*s = "";
		*n = 0;
		return;
	}
	*s = (const char *)c->p + c->off;
	*n = len;
	c->off += len;
}

/* A writer into a private buffer of cap bytes; overflow sets bad. */
struct rp_put {
	uint8_t *p;
	size_t cap, off;
	int bad;
};

static inline void rp_put(struct rp_put *w, const void *src, size_t n)
{
	if (w->bad || n > w->cap - w->off) {
		w->bad = 1;
		return;
	}
	memcpy(w->p + w->off, src, n);
	w->off += n;
}

static inline void rp_put_u32(struct rp_put *w, uint32_t v) { rp_put(w, &v, 4); }
static inline void rp_put_i32(struct rp_put *w, int32_t v)  { rp_put(w, &v, 4); }
static inline void rp_put_i64(struct rp_put *w, int64_t v)  { rp_put(w, &v, 8); }
static inline void rp_put_f32(struct rp_put *w, float v)    { rp_put(w, &v, 4); }
static inline void rp_put_u8(struct rp_put *w, uint8_t v)   { rp_put(w, &v, 1); }

static inline void rp_put_str(struct rp_put *w, const char *s, size_t n)
{
	uint16_t len = (uint16_t)n;
	if (n > RP_STR_MAX && n > RP_ERR_MAX) {
		w->bad = 1;
		return;
	}
	rp_put(w, &len, 2);
	rp_put(w, s, n);
}

/* --- futexes ---------------------------------------------------------------- */
/* The words live in a mapping shared by two processes: no FUTEX_PRIVATE_FLAG.
 * rp_futex_wait returns 0 when woken (or the word had changed already),
 * -ETIMEDOUT, or -EINTR; the caller rechecks its condition in every case. */
static inline int rp_futex_wait(uint32_t *word, uint32_t val, const struct timespec *rel)
{
	long r = syscall(SYS_futex, word, FUTEX_WAIT, val, rel, NULL, 0);
	if (r == 0)
		return 0;
	return errno == EAGAIN ? 0 : -errno;
}

/* In a spin loop: tell the CPU (a hyperthread sibling may run meanwhile). */
static inline void rp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static inline void rp_futex_wake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

#endif
