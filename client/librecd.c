/* librecd.c: the client side of recd's request protocol (daemon/proto.h):
 * connect and map the region recd hands over, write requests into its
 * request ring, read replies from its response ring, and sleep on a futex in
 * between.  The library trusts recd, but still checks what it reads from the
 * shared region, so a broken daemon gives an error rather than a crash. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/jobs.h"
#include "daemon/proto.h"
#include "recd/recd.h"

_Static_assert(RECD_ID_MAX == RP_STR_MAX, "ID limits agree");
_Static_assert(RECD_K_MAX == RP_K_MAX && RECD_WHY_MAX == RP_WHY_MAX && RECD_LIST_MAX == RP_LIST_MAX,
               "limits agree");
_Static_assert(RECD_ERR_MAX == RP_ERR_MAX, "error text limits agree");
_Static_assert(RECD_JOB_ID_MAX == RP_JOB_ID_MAX && RECD_JOB_JSON_MAX == RP_JOB_JSON_MAX &&
               RECD_JOB_CHUNK_MAX == RP_JOB_CHUNK_MAX, "job limits agree");
_Static_assert((int)RECD_JOB_QUEUED == (int)JOBS_QUEUED && (int)RECD_JOB_RUNNING == (int)JOBS_RUNNING &&
               (int)RECD_JOB_DONE == (int)JOBS_DONE && (int)RECD_JOB_FAILED == (int)JOBS_FAILED &&
               (int)RECD_JOB_CANCELLED == (int)JOBS_CANCELLED, "job states agree");
_Static_assert(RP_JOB_FAILED == -EREMOTEIO, "a failed job's code as documented in recd.h");

#define RECD_SPIN_NS        20000     /* poll a ring at most this long before sleeping */
#define RECD_SPIN_MIN_NS    1000      /* and at least this long (see conn_wait) */
#define RECD_SLICE_MS       200       /* a sleeper checks that recd is alive this often */
#define RECD_CONNECT_MS     10000     /* the most a connect waits for recd's welcome */
#define RECD_TIMEOUT_DEFAULT 30000

struct recd_reply {
	uint64_t id;
	uint16_t type;                  /* the request's type */
	int status;
	char err[RP_ERR_MAX + 1];
	size_t len;                     /* bytes of body */
	const uint8_t *body;            /* data, or the connection's rbuf for a synchronous call */
	uint8_t data[];
};

struct recd_conn {
	int sock, bell;
	struct rp_region *rg;
	uint8_t *req, *resp;
	uint32_t req_head, resp_tail;   /* our own copies of the positions we write */
	uint64_t next_id;
	unsigned long pending;
	int timeout_ms;
	uint8_t *wbuf, *rbuf;           /* a request being built; the last reply read */
	struct recd_reply sync;         /* a synchronous call's reply, its body in rbuf */
	char err[RP_ERR_MAX + 128];
	uint64_t spin_ns;               /* conn_wait's current spin, RECD_SPIN_MIN_NS to RECD_SPIN_NS */
};


const char *recd_version(void)
{
	return PACKAGE_VERSION;
}

const char *recd_strerror(int err)
{
	/* Codes whose generic text would mislead a recd user. */
	switch (err) {
	case 0:             return "success";
	case -EPROTO:       return "protocol or schema version mismatch";
	case -ENOKEY:       return "the user-ID pseudonymisation key is missing";
	case -ECONNREFUSED: return "recd is not running (connection refused)";
	case -EAGAIN:       return "recd is busy: try again";
	case -EACCES:       return "not allowed to use recd (allow_users, allow_groups)";
	case -EUSERS:       return "recd has as many clients as max_clients allows";
	case -ESHUTDOWN:    return "recd is stopping";
	case -ECONNRESET:   return "recd closed the connection";
	case -ENODATA:      return "no model to answer with";
	case -ENOSYS:       return "not supported by this recd";
	case -EBUSY:        return "pipelined replies are still unread on this connection";
	case -ENOMSG:       return "no request is waiting for a reply";
	case -ENOTSUP:      return "recd runs no batch jobs (no spool directory)";
	case -EINPROGRESS:  return "the job has not finished yet";
	case -EREMOTEIO:    return "the job failed";
	case -ECANCELED:    return "the job was cancelled";
	default:
		break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);  /* glibc's table is static and thread-safe for known codes */
	return "unknown error";
}

static int conn_fail(struct recd_conn *c, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int conn_fail(struct recd_conn *c, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return r;
}

const char *recd_conn_error(const struct recd_conn *c)
{
	return c ? c->err : "";
}

void recd_set_timeout(struct recd_conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms < -1 ? -1 : timeout_ms;
}

unsigned long recd_pending(const struct recd_conn *c)
{
	return c->pending;
}

/* --- connecting ---------------------------------------------------------------- */

static void conn_free(struct recd_conn *c)
{
	if (c->rg)
		munmap(c->rg, RP_REGION_SIZE);
	if (c->bell >= 0)
		close(c->bell);
	if (c->sock >= 0)
		close(c->sock);
	free(c->wbuf);
	free(c->rbuf);
	free(c);
}

void recd_close(struct recd_conn *c)
{
	if (c)
		conn_free(c);
}

static void set_err(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Receives the welcome and its descriptors.  Returns 0, or a negative errno
 * with c->err set. */
static int conn_welcome(struct recd_conn *c, const char *path)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct rp_welcome w;
	struct msghdr mh;
	struct iovec iov = { &w, sizeof w };
	struct pollfd pfd = { c->sock, POLLIN, 0 };
	int fds[4], nfds = 0, mfd = -1, r;
	ssize_t n;

	r = poll(&pfd, 1, RECD_CONNECT_MS);
	if (r == 0)
		return conn_fail(c, -ETIMEDOUT, "%s: recd did not answer within %d s", path, RECD_CONNECT_MS / 1000);
	if (r < 0)
		return conn_fail(c, -errno, "%s: poll: %s", path, strerror(errno));
	memset(&mh, 0, sizeof mh);
	memset(&w, 0, sizeof w);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof cbuf;
	n = recvmsg(c->sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return conn_fail(c, -errno, "%s: %s", path, strerror(errno));
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k && nfds < 4; i++)
				memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		}
	}
	if (n == 0) {
		r = conn_fail(c, -ECONNRESET, "%s: recd closed the connection without an answer", path);
		goto out;
	}
	if ((size_t)n != sizeof w || w.magic != RP_MAGIC) {
		r = conn_fail(c, -EPROTO, "%s: the answer is not recd's (bad magic number or size)", path);
		goto out;
	}
	w.msg[sizeof w.msg - 1] = '\0';
	if (w.version != RP_VERSION) {
		r = conn_fail(c, -EPROTO, "%s: protocol version mismatch: recd speaks version %u, "
		              "this librecd speaks version %u%s%s", path, (unsigned)w.version, RP_VERSION,
		              w.msg[0] ? ": " : "", w.msg);
		goto out;
	}
	if (w.status < 0) {
		r = w.status > -4096 ? w.status : -EPROTO;
		conn_fail(c, r, "%s: recd refused the connection: %s", path,
		          w.msg[0] ? w.msg : recd_strerror(r));
		goto out;
	}
	if (nfds != 2 || w.region_size != RP_REGION_SIZE) {
		r = conn_fail(c, -EPROTO, "%s: recd's answer came without its region", path);
		goto out;
	}
	mfd = fds[0];
	c->bell = fds[1];
	nfds = 0;
	/* The region must be sealed against shrinking, or recd (or anyone
	 * holding the memfd) could make our reads fault. */
	struct stat sb;
	int seals = fcntl(mfd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(mfd, &sb) < 0 || sb.st_size < RP_REGION_SIZE) {
		r = conn_fail(c, -EPROTO, "%s: the region recd passed is not sealed or too small", path);
		goto out;
	}
	void *map = mmap(NULL, RP_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED) {
		r = conn_fail(c, -errno, "%s: mapping the region: %s", path, strerror(errno));
		goto out;
	}
	c->rg = map;
	if (c->rg->magic != RP_MAGIC || c->rg->version != RP_VERSION || c->rg->region_size != RP_REGION_SIZE ||
	    c->rg->ring_size != RP_RING_SIZE || c->rg->req_off != RP_HDR_SIZE ||
	    c->rg->resp_off != RP_HDR_SIZE + RP_RING_SIZE || c->rg->msg_max != RP_MSG_MAX) {
		r = conn_fail(c, -EPROTO, "%s: the region's header is not protocol version %u's", path, RP_VERSION);
		goto out;
	}
	c->req = (uint8_t *)map + RP_HDR_SIZE;
	c->resp = (uint8_t *)map + RP_HDR_SIZE + RP_RING_SIZE;
	c->req_head = __atomic_load_n(&c->rg->req_head, __ATOMIC_ACQUIRE);
	c->resp_tail = __atomic_load_n(&c->rg->resp_tail, __ATOMIC_ACQUIRE);
	r = 0;
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (mfd >= 0)
		close(mfd);
	return r;
}

int recd_connect(struct recd_conn **out, const char *path, char *errbuf, size_t errlen)
{
	struct sockaddr_un sa;
	struct rp_hello h;
	struct recd_conn *c;
	int r;

	if (!path) {
		path = getenv("RECD_SOCKET");
		if (!path || !*path)
			path = RECD_SOCKET_DEFAULT;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		set_err(errbuf, errlen, "%s: longer than a socket path may be", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	if (!(c = calloc(1, sizeof *c))) {
		set_err(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	c->sock = c->bell = -1;
	c->timeout_ms = RECD_TIMEOUT_DEFAULT;
	c->spin_ns = RECD_SPIN_NS;
	c->next_id = 1;
	c->wbuf = malloc(RP_MSG_MAX);
	c->rbuf = malloc(RP_MSG_MAX);
	if (!c->wbuf || !c->rbuf) {
		r = conn_fail(c, -ENOMEM, "out of memory");
		goto fail;
	}
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0) {
		r = conn_fail(c, -errno, "socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(c->sock, (struct sockaddr *)&sa, sizeof sa) < 0) {
		r = -errno;
		if (r == -ENOENT)
			conn_fail(c, r, "%s: no such socket: is recd running?", path);
		else
			conn_fail(c, r, "%s: %s", path, recd_strerror(r));
		goto fail;
	}
	memset(&h, 0, sizeof h);
	h.magic = RP_MAGIC;
	h.version = RP_VERSION;
	if (send(c->sock, &h, sizeof h, MSG_NOSIGNAL) != (ssize_t)sizeof h) {
		r = conn_fail(c, -errno, "%s: sending the hello: %s", path, strerror(errno));
		goto fail;
	}
	if ((r = conn_welcome(c, path)) < 0)
		goto fail;
	c->err[0] = '\0';
	*out = c;
	return 0;
fail:
	set_err(errbuf, errlen, "%s", c->err);
	conn_free(c);
	return r;
}

/* --- waiting ------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether recd is gone: the region says closed, or the socket hung up. */
static int conn_dead(struct recd_conn *c)
{
	struct pollfd pfd = { c->sock, POLLIN | POLLRDHUP, 0 };
	if (__atomic_load_n(&c->rg->state, __ATOMIC_ACQUIRE) == RP_STATE_CLOSED)
		return 1;
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLRDHUP | POLLERR));
}

/* The spin adapts to the replies' pace: a wait that ended within the
 * longest spin after sleeping means a longer spin would have saved the
 * sleep (doubled); a much longer wait means the spin only burnt a core that
 * recd needed (halved).  Pings stay at the full 20 us, and 4 clients asking
 * for 50-us recommendations on 2 cores stop taking the cores from the
 * workers that answer them. */
static void conn_spin_adapt(struct recd_conn *c, uint64_t waited, uint64_t spin)
{
	if (waited <= RECD_SPIN_NS)
		spin = spin * 2 < RECD_SPIN_NS ? spin * 2 : RECD_SPIN_NS;
	else
		spin = spin / 2 > RECD_SPIN_MIN_NS ? spin / 2 : RECD_SPIN_MIN_NS;
	__atomic_store_n(&c->spin_ns, spin, __ATOMIC_RELAXED);
}

/* Waits until *word differs from val (the futex word recd moves), spinning
 * first.  waiters is our flag that tells recd to wake us.  Returns 0 when it
 * moved, -EAGAIN when timeout_ms passed (0: at once), -ECONNRESET when recd
 * went away. */
static int conn_wait(struct recd_conn *c, uint32_t *word, uint32_t val, uint32_t *waiters, int timeout_ms)
{
	uint64_t spin = __atomic_load_n(&c->spin_ns, __ATOMIC_RELAXED);
	uint64_t start = now_ns(), spin_end = start + spin;
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000u;

	if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != val)
		return 0;
	if (timeout_ms == 0)
		return -EAGAIN;
	while (now_ns() < spin_end) {
		if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != val)
			return 0;
		rp_cpu_relax();
	}
	for (;;) {
		uint64_t t = now_ns(), left;
		struct timespec rel;
		if (t >= end)
			return -EAGAIN;
		left = end - t;
		if (left > (uint64_t)RECD_SLICE_MS * 1000000u)
			left = (uint64_t)RECD_SLICE_MS * 1000000u;
		rel.tv_sec = (time_t)(left / 1000000000u);
		rel.tv_nsec = (long)(left % 1000000000u);
		/* Dekker with recd: we publish waiters, then read the word; recd
		 * publishes the word, then reads waiters. */
		__atomic_store_n(waiters, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != val) {
			__atomic_store_n(waiters, 0, __ATOMIC_RELAXED);
			conn_spin_adapt(c, now_ns() - start, spin);
			return 0;
		}
		int r = rp_futex_wait(word, val, &rel);
		__atomic_store_n(waiters, 0, __ATOMIC_RELAXED);
		if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != val) {
			conn_spin_adapt(c, now_ns() - start, spin);
			return 0;
		}
		if ((r == -ETIMEDOUT || r == 0) && conn_dead(c))
			return -ECONNRESET;
	}
}

static void conn_ring(struct recd_conn *c)
{
	uint64_t one = 1;
	if (write(c->bell, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is saturated, so recd is woken anyway. */
	}
}

/* --- sending ------------------------------------------------------------------------ */

/* Starts a request in c->wbuf: the header is filled in by conn_send. */
static void req_begin(struct recd_conn *c, struct rp_put *w)
{
	w->p = c->wbuf;
	w->cap = RP_MSG_MAX;
	w->off = RP_MSG_MIN;
	w->bad = 0;
}

static int conn_send(struct recd_conn *c, uint16_t type, struct rp_put *w, uint64_t *id_out)
{
	struct rp_msg h;
	uint32_t need, state;
	int r;

	if (w->bad)
		return conn_fail(c, -EMSGSIZE, "the request is larger than %u bytes", RP_MSG_MAX);
	h.len = (uint32_t)w->off;
	h.type = type;
	h.flags = 0;
	h.id = c->next_id;
	memcpy(c->wbuf, &h, sizeof h);
	need = rp_align(h.len);
	for (;;) {
		state = __atomic_load_n(&c->rg->state, __ATOMIC_ACQUIRE);
		if (state != RP_STATE_OPEN)
			return conn_fail(c, state == RP_STATE_STOPPING ? -ESHUTDOWN : -ECONNRESET,
			                 "recd is %s", state == RP_STATE_STOPPING ? "stopping: it takes no new requests"
			                                                           : "gone");
		uint32_t tail = __atomic_load_n(&c->rg->req_tail, __ATOMIC_ACQUIRE);
		uint32_t used = c->req_head - tail;
		if (used > RP_RING_SIZE)
			return conn_fail(c, -EPROTO, "recd's request ring position is broken");
		if (RP_RING_SIZE - used >= need)
			break;
		r = conn_wait(c, &c->rg->req_tail, tail, &c->rg->req_space_waiters, c->timeout_ms);
		if (r == -EAGAIN)
			return conn_fail(c, -EAGAIN, "the request ring is full (%lu requests unanswered)",
			                 c->pending);
		if (r < 0)
			return conn_fail(c, r, "recd went away");
	}
	rp_ring_write(c->req, RP_RING_SIZE, c->req_head, c->wbuf, h.len);
	c->req_head += need;
	__atomic_store_n(&c->rg->req_head, c->req_head, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->rg->doorbell, __ATOMIC_SEQ_CST) != RP_BELL_NONE)
		conn_ring(c);
	c->next_id++;
	c->pending++;
	if (id_out)
		*id_out = h.id;
	c->err[0] = '\0';
	return 0;
}

static int check_str(struct recd_conn *c, const char *what, const char *s)
{
	if (!s)
		return conn_fail(c, -EINVAL, "%s is missing", what);
	if (strlen(s) > RP_STR_MAX)
		return conn_fail(c, -EINVAL, "%s is longer than %u bytes", what, RP_STR_MAX);
	return 0;
}

int recd_send_ping(struct recd_conn *c, uint64_t *id)
{
	struct rp_put w;
	req_begin(c, &w);
	return conn_send(c, RP_PING, &w, id);
}

int recd_send_stats(struct recd_conn *c, uint64_t *id)
{
	struct rp_put w;
	req_begin(c, &w);
	return conn_send(c, RP_STATS, &w, id);
}

int recd_send_model_use(struct recd_conn *c, uint32_t version, uint64_t *id)
{
	struct rp_put w;
	req_begin(c, &w);
	rp_put_u32(&w, version);
	return conn_send(c, RP_MODEL_USE, &w, id);
}

int recd_send_recommend(struct recd_conn *c, const char *user, int k,
                        const struct recd_recommend_opts *opt, uint64_t *id)
{
	struct recd_recommend_opts none;
	struct rp_put w;
	uint32_t flags = 0, why_cap = 0;
	int r;

	if (!opt) {
		memset(&none, 0, sizeof none);
		opt = &none;
	}
	if ((r = check_str(c, "the user ID", user)) < 0)
		return r;
	if (k < 1 || k > RECD_K_MAX)
		return conn_fail(c, -EINVAL, "k = %d is not from 1 to %d", k, RECD_K_MAX);
	if (opt->ninclude > RECD_LIST_MAX || opt->nexclude > RECD_LIST_MAX)
		return conn_fail(c, -EINVAL, "more than %d items in a filter", RECD_LIST_MAX);
	if (opt->explain && (opt->why_cap < 0 || opt->why_cap > RECD_WHY_MAX))
		return conn_fail(c, -EINVAL, "why_cap = %d is not from 0 to %d", opt->why_cap, RECD_WHY_MAX);
	if (opt->include_seen)
		flags |= RP_REC_INCLUDE_SEEN;
	if (opt->explain) {
		flags |= RP_REC_EXPLAIN;
		why_cap = (uint32_t)opt->why_cap;
	}
	if (opt->has_context)
		flags |= RP_REC_CONTEXT;
	req_begin(c, &w);
	rp_put_u32(&w, (uint32_t)k);
	rp_put_u32(&w, flags);
	rp_put_u32(&w, why_cap);
	rp_put_u32(&w, (uint32_t)opt->ninclude);
	rp_put_u32(&w, (uint32_t)opt->nexclude);
	rp_put_i64(&w, opt->has_context ? opt->ctx_ts : 0);
	rp_put_f32(&w, opt->has_context ? opt->ctx_lat : 0);
	rp_put_f32(&w, opt->has_context ? opt->ctx_lon : 0);
	rp_put_str(&w, user, strlen(user));
	for (size_t i = 0; i < opt->ninclude; i++) {
		if ((r = check_str(c, "an include item", opt->include[i])) < 0)
			return r;
		rp_put_str(&w, opt->include[i], strlen(opt->include[i]));
	}
	for (size_t i = 0; i < opt->nexclude; i++) {
		if ((r = check_str(c, "an exclude item", opt->exclude[i])) < 0)
			return r;
		rp_put_str(&w, opt->exclude[i], strlen(opt->exclude[i]));
	}
	return conn_send(c, RP_RECOMMEND, &w, id);
}

int recd_send_score(struct recd_conn *c, const char *user, const char *const *items, size_t n, uint64_t *id)
{
	struct rp_put w;
	int r;

	if ((r = check_str(c, "the user ID", user)) < 0)
		return r;
	if (n > RECD_LIST_MAX)
		return conn_fail(c, -EINVAL, "%zu candidates; at most %d", n, RECD_LIST_MAX);
	req_begin(c, &w);
	rp_put_u32(&w, (uint32_t)n);
	rp_put_str(&w, user, strlen(user));
	for (size_t i = 0; i < n; i++) {
		if ((r = check_str(c, "a candidate item", items[i])) < 0)
			return r;
		rp_put_str(&w, items[i], strlen(items[i]));
	}
	return conn_send(c, RP_SCORE, &w, id);
}

int recd_send_ingest(struct recd_conn *c, const struct recd_event *ev, size_t n, uint64_t *id)
{
	struct rp_put w;
	int r;

	if (n > RECD_LIST_MAX)
		return conn_fail(c, -EINVAL, "%zu events; at most %d in one request", n, RECD_LIST_MAX);
	req_begin(c, &w);
	rp_put_u32(&w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct recd_event *e = &ev[i];
		const char *action = e->action ? e->action : "", *device = e->device ? e->device : "";
		if ((r = check_str(c, "an event's user", e->user)) < 0 ||
		    (r = check_str(c, "an event's item", e->item)) < 0 ||
		    (r = check_str(c, "an event's action", action)) < 0 ||
		    (r = check_str(c, "an event's device", device)) < 0)
			return r;
		rp_put_i64(&w, e->ts);
		rp_put_f32(&w, e->has_value ? e->value : 0);
		rp_put_f32(&w, e->has_loc ? e->lat : 0);
		rp_put_f32(&w, e->has_loc ? e->lon : 0);
		rp_put_u8(&w, (uint8_t)((e->has_value ? RP_EV_VALUE : 0) | (e->has_loc ? RP_EV_LOC : 0)));
		rp_put_str(&w, e->user, strlen(e->user));
		rp_put_str(&w, e->item, strlen(e->item));
		rp_put_str(&w, action, strlen(action));
		rp_put_str(&w, device, strlen(device));
	}
	return conn_send(c, RP_INGEST, &w, id);
}

static int check_job_id(struct recd_conn *c, const char *job)
{
	if (!job || !*job)
		return conn_fail(c, -EINVAL, "the job ID is missing");
	if (strlen(job) > RP_JOB_ID_MAX)
		return conn_fail(c, -EINVAL, "the job ID is longer than %u bytes", RP_JOB_ID_MAX);
	return 0;
}

int recd_send_job_submit(struct recd_conn *c, const char *json, size_t len, uint64_t *id)
{
	struct rp_put w;
	if (!json || len == 0)
		return conn_fail(c, -EINVAL, "the job is empty");
	if (len > RP_JOB_JSON_MAX)
		return conn_fail(c, -EMSGSIZE, "the job is %zu bytes; at most %u go in one request", len,
		                 RP_JOB_JSON_MAX);
	req_begin(c, &w);
	rp_put(&w, json, len);
	return conn_send(c, RP_JOB_SUBMIT, &w, id);
}

static int send_job_id(struct recd_conn *c, uint16_t type, const char *job, uint64_t *id)
{
	struct rp_put w;
	int r;
	if ((r = check_job_id(c, job)) < 0)
		return r;
	req_begin(c, &w);
	rp_put_str(&w, job, strlen(job));
	return conn_send(c, type, &w, id);
}

int recd_send_job_status(struct recd_conn *c, const char *job, uint64_t *id)
{
	return send_job_id(c, RP_JOB_STATUS, job, id);
}

int recd_send_job_cancel(struct recd_conn *c, const char *job, uint64_t *id)
{
	return send_job_id(c, RP_JOB_CANCEL, job, id);
}

int recd_send_job_result(struct recd_conn *c, const char *job, uint64_t offset, size_t cap, uint64_t *id)
{
	struct rp_put w;
	int r;
	if ((r = check_job_id(c, job)) < 0)
		return r;
	if (cap < 1 || cap > RP_JOB_CHUNK_MAX)
		return conn_fail(c, -EINVAL, "chunk size %zu is not from 1 to %u", cap, RP_JOB_CHUNK_MAX);
	if (offset > INT64_MAX)
		return conn_fail(c, -EINVAL, "offset %llu is out of range", (unsigned long long)offset);
	req_begin(c, &w);
	rp_put_i64(&w, (int64_t)offset);
	rp_put_u32(&w, (uint32_t)cap);
	rp_put_str(&w, job, strlen(job));
	return conn_send(c, RP_JOB_RESULT, &w, id);
}

/* --- receiving ------------------------------------------------------------------------ */

/* Copies the next reply into c->rbuf.  Returns its length or a negative errno. */
static int conn_next(struct recd_conn *c, int timeout_ms)
{
	struct rp_msg h;
	uint32_t head, avail;
	int r;

	if (!c->pending)
		return conn_fail(c, -ENOMSG, "no request is waiting for a reply");
	for (;;) {
		head = __atomic_load_n(&c->rg->resp_head, __ATOMIC_ACQUIRE);
		if (head != c->resp_tail)
			break;
		if (__atomic_load_n(&c->rg->state, __ATOMIC_ACQUIRE) == RP_STATE_CLOSED)
			return conn_fail(c, -ECONNRESET, "recd closed the connection with %lu requests "
			                 "unanswered", c->pending);
		r = conn_wait(c, &c->rg->resp_head, head, &c->rg->resp_waiters, timeout_ms);
		if (r == -EAGAIN)
			return timeout_ms == 0 ? conn_fail(c, -EAGAIN, "no reply yet")
			                       : conn_fail(c, -ETIMEDOUT, "no reply within %d ms", timeout_ms);
		if (r < 0)
			return conn_fail(c, r, "recd went away with %lu requests unanswered", c->pending);
	}
	avail = head - c->resp_tail;
	if (avail > RP_RING_SIZE || avail < RP_MSG_MIN)
		return conn_fail(c, -EPROTO, "recd's response ring position is broken");
	rp_ring_read(c->resp, RP_RING_SIZE, c->resp_tail, &h, sizeof h);
	if (h.len < RP_MSG_MIN + 6 || h.len > RP_MSG_MAX || rp_align(h.len) > avail || !(h.type & RP_RESPONSE))
		return conn_fail(c, -EPROTO, "a malformed reply from recd (length %u, type %#x)",
		                 (unsigned)h.len, (unsigned)h.type);
	rp_ring_read(c->resp, RP_RING_SIZE, c->resp_tail, c->rbuf, h.len);
	c->resp_tail += rp_align(h.len);
	__atomic_store_n(&c->rg->resp_tail, c->resp_tail, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->rg->doorbell, __ATOMIC_SEQ_CST) == RP_BELL_SPACE)
		conn_ring(c);
	c->pending--;
	return (int)h.len;
}

/* Parses c->rbuf (len bytes) into a reply header; the body follows at *body. */
static int reply_parse(struct recd_conn *c, uint32_t len, struct recd_reply *r, struct rp_cur *body)
{
	struct rp_msg h;
	const char *e;
	size_t elen;

	memcpy(&h, c->rbuf, sizeof h);
	body->p = c->rbuf + RP_MSG_MIN;
	body->len = len - RP_MSG_MIN;
	body->off = 0;
	body->bad = 0;
	r->id = h.id;
	r->type = (uint16_t)(h.type & ~RP_RESPONSE);
	r->status = rp_get_i32(body);
	rp_get_str(body, RP_ERR_MAX, &e, &elen);
	if (body->bad || r->status > 0 || r->status <= -4096)
		return conn_fail(c, -EPROTO, "a malformed reply from recd to request %llu",
		                 (unsigned long long)h.id);
	memcpy(r->err, e, elen);
	r->err[elen] = '\0';
	return 0;
}

int recd_receive(struct recd_conn *c, int timeout_ms, struct recd_reply **out)
{
	struct recd_reply hdr, *r;
	struct rp_cur body;
	int len = conn_next(c, timeout_ms);

	if (len < 0)
		return len;
	if ((len = reply_parse(c, (uint32_t)len, &hdr, &body)) < 0)
		return len;
	hdr.len = body.len - body.off;
	if (!(r = malloc(sizeof *r + hdr.len)))
		return conn_fail(c, -ENOMEM, "out of memory");
	*r = hdr;
	memcpy(r->data, body.p + body.off, hdr.len);
	r->body = r->data;
	*out = r;
	c->err[0] = '\0';
	return 0;
}

uint64_t recd_reply_id(const struct recd_reply *r)
{
	return r->id;
}

int recd_reply_status(const struct recd_reply *r)
{
	return r->status;
}

const char *recd_reply_error(const struct recd_reply *r)
{
	return r->status < 0 && !r->err[0] ? recd_strerror(r->status) : r->err;
}

void recd_reply_free(struct recd_reply *r)
{
	free(r);
}

static int reply_body(const struct recd_reply *r, uint16_t type, struct rp_cur *cur)
{
	if (r->type != type)
		return -EINVAL;
	if (r->status < 0)
		return r->status;
	cur->p = r->body;
	cur->len = r->len;
	cur->off = 0;
	cur->bad = 0;
	return 0;
}

static void copy_id(char *dst, const char *s, size_t n)
{
	memcpy(dst, s, n);
	dst[n] = '\0';
}

int recd_reply_recommend(const struct recd_reply *r, struct recd_item *items, int cap,
                         struct recd_why *why, int why_cap, struct recd_result *res)
{
	struct rp_cur cur;
	struct recd_result o;
	uint32_t n, nwhy;
	int rc = reply_body(r, RP_RECOMMEND, &cur);

	if (rc < 0)
		return rc;
	o.version = rp_get_u32(&cur);
	n = rp_get_u32(&cur);
	nwhy = rp_get_u32(&cur);
	o.cached = (int)rp_get_u32(&cur);
	if (cur.bad || n > RP_K_MAX || nwhy > RP_WHY_MAX)
		return -EPROTO;
	o.n = 0;
	o.nwhy = 0;
	for (uint32_t i = 0; i < n; i++) {
		const char *s;
		size_t len;
		float sc = rp_get_f32(&cur);
		rp_get_str(&cur, RP_STR_MAX, &s, &len);
		if (cur.bad)
			return -EPROTO;
		if ((int)i < cap) {
			items[i].score = sc;
			copy_id(items[i].id, s, len);
			o.n++;
		}
	}
	for (uint32_t i = 0; i < nwhy; i++) {
		const char *s;
		size_t len;
		int64_t ts = rp_get_i64(&cur);
		float wt = rp_get_f32(&cur);
		uint8_t action = rp_get_u8(&cur);
		rp_get_str(&cur, RP_STR_MAX, &s, &len);
		if (cur.bad)
			return -EPROTO;
		if (why && (int)i < why_cap) {
			why[i].ts = ts;
			why[i].weight = wt;
			why[i].action = action;
			copy_id(why[i].item, s, len);
			o.nwhy++;
		}
	}
	if (cur.off != cur.len)
		return -EPROTO;
	if (res)
		*res = o;
	return o.n;
}

int recd_reply_score(const struct recd_reply *r, float *scores, size_t cap, uint32_t *version)
{
	struct rp_cur cur;
	uint32_t v, n;
	int rc = reply_body(r, RP_SCORE, &cur);

	if (rc < 0)
		return rc;
	v = rp_get_u32(&cur);
	n = rp_get_u32(&cur);
	if (cur.bad || n > RP_LIST_MAX || cur.len - cur.off != (size_t)n * 4)
		return -EPROTO;
	for (uint32_t i = 0; i < n; i++) {
		float s = rp_get_f32(&cur);
		if (i < cap)
			scores[i] = s;
	}
	if (version)
		*version = v;
	return (int)(n < cap ? n : cap);
}

int recd_reply_ingest(const struct recd_reply *r)
{
	struct rp_cur cur;
	uint32_t n;
	int rc = reply_body(r, RP_INGEST, &cur);
	if (rc < 0)
		return rc;
	n = rp_get_u32(&cur);
	if (cur.bad || cur.off != cur.len || n > RP_LIST_MAX)
		return -EPROTO;
	return (int)n;
}

int recd_reply_stats(const struct recd_reply *r, struct recd_stats *out)
{
	struct rp_cur cur;
	struct rp_stats s;
	int rc = reply_body(r, RP_STATS, &cur);
	if (rc < 0)
		return rc;
	rp_get(&cur, &s, sizeof s);
	if (cur.bad || cur.off != cur.len)
		return -EPROTO;
	memset(out, 0, sizeof *out);
	s.version[sizeof s.version - 1] = '\0';
	memcpy(out->version, s.version, sizeof out->version);
	out->pid = s.pid;
	out->uptime_ms = s.uptime_ms;
	out->model_version = s.model_version;
	out->clients = s.clients;
	out->max_clients = s.max_clients;
	out->workers = s.workers;
	out->requests = s.requests;
	out->errors = s.errors;
	out->recommends = s.recommends;
	out->scores = s.scores;
	out->ingested_events = s.ingested_events;
	out->cache_hits = s.cache_hits;
	out->cache_misses = s.cache_misses;
	out->swaps = s.swaps;
	out->disconnects_bad = s.disconnects_bad;
	return 0;
}

int recd_reply_model_use(const struct recd_reply *r, uint32_t *now)
{
	struct rp_cur cur;
	uint32_t v;
	int rc = reply_body(r, RP_MODEL_USE, &cur);
	if (rc < 0)
		return rc;
	v = rp_get_u32(&cur);
	if (cur.bad || cur.off != cur.len)
		return -EPROTO;
	if (now)
		*now = v;
	return 0;
}

int recd_reply_job_submit(const struct recd_reply *r, char *id, size_t idcap)
{
	struct rp_cur cur;
	const char *s;
	size_t n;
	int rc = reply_body(r, RP_JOB_SUBMIT, &cur);
	if (rc < 0)
		return rc;
	rp_get_str(&cur, RP_JOB_ID_MAX, &s, &n);
	if (cur.bad || cur.off != cur.len || n == 0 || memchr(s, '\0', n))
		return -EPROTO;
	if (!id || idcap <= n)
		return -ERANGE;
	memcpy(id, s, n);
	id[n] = '\0';
	return 0;
}

int recd_reply_job_status(const struct recd_reply *r, struct recd_job_status *out)
{
	struct rp_cur cur;
	struct rp_job_status s;
	int rc = reply_body(r, RP_JOB_STATUS, &cur);
	if (rc < 0)
		return rc;
	rp_get(&cur, &s, sizeof s);
	if (cur.bad || cur.off != cur.len || s.state > JOBS_CANCELLED || s.type >= JOBS_TYPE_COUNT)
		return -EPROTO;
	memset(out, 0, sizeof *out);
	out->state = s.state;
	snprintf(out->state_name, sizeof out->state_name, "%s", jobs_state_name(s.state));
	snprintf(out->type, sizeof out->type, "%s", jobs_type_name(s.type));
	out->done = s.done;
	out->total = s.total;
	out->elapsed_s = s.elapsed_s;
	out->eta_s = s.eta_s;
	out->epoch = s.epoch;
	out->epochs = s.epochs;
	out->loss = s.epochs ? s.loss : NAN;
	return 0;
}

int recd_reply_job_result(const struct recd_reply *r, void *buf, size_t cap, size_t *got, uint64_t *total)
{
	struct rp_cur cur;
	struct rp_job_chunk ch;
	int rc = reply_body(r, RP_JOB_RESULT, &cur);
	if (rc < 0)
		return rc;
	rp_get(&cur, &ch, sizeof ch);
	if (cur.bad || ch.len > RP_JOB_CHUNK_MAX || cur.len - cur.off != ch.len ||
	    ch.offset > ch.total || ch.len > ch.total - ch.offset)
		return -EPROTO;
	size_t n = ch.len < cap ? ch.len : cap;
	if (n)
		memcpy(buf, cur.p + cur.off, n);
	if (got)
		*got = n;
	if (total)
		*total = ch.total;
	return (int)n;
}

int recd_reply_job_cancel(const struct recd_reply *r)
{
	struct rp_cur cur;
	int rc = reply_body(r, RP_JOB_CANCEL, &cur);
	if (rc < 0)
		return rc;
	return cur.off == cur.len ? 0 : -EPROTO;
}

/* --- the synchronous calls ----------------------------------------------------------------- */

/* Waits for the reply to the request just sent (sent is what the send
 * returned).  The reply is c->sync, its body in c->rbuf, without a copy:
 * valid until the next call on c. */
static int conn_call(struct recd_conn *c, int sent, struct recd_reply **rep)
{
	struct recd_reply *r = &c->sync;
	struct rp_cur body;
	int len;

	if (sent < 0)
		return sent;
	len = conn_next(c, c->timeout_ms);
	if (len < 0)
		return len;
	if ((len = reply_parse(c, (uint32_t)len, r, &body)) < 0)
		return len;
	r->len = body.len - body.off;
	r->body = body.p + body.off;
	*rep = r;
	if (r->status < 0) {
		conn_fail(c, r->status, "%s", recd_reply_error(r));
		return r->status;
	}
	c->err[0] = '\0';
	return 0;
}

static int sync_ok(struct recd_conn *c)
{
	/* Replies still owed by a recd that is gone (killed, say, after a call
	 * failed with -ECONNRESET) will never come: say so, not -EBUSY. */
	if (c->pending && conn_dead(c))
		return conn_fail(c, -ECONNRESET, "recd closed the connection with %lu requests unanswered",
		                 c->pending);
	if (c->pending)
		return conn_fail(c, -EBUSY, "%lu pipelined replies are unread on this connection", c->pending);
	return 0;
}

int recd_ping(struct recd_conn *c)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_ping(c, NULL), &r);
	return rc;
}

int recd_stats(struct recd_conn *c, struct recd_stats *out)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_stats(c, NULL), &r);
	if (rc == 0 && (rc = recd_reply_stats(r, out)) < 0)
		conn_fail(c, rc, "a malformed stats reply from recd");
	return rc;
}

int recd_model_use(struct recd_conn *c, uint32_t version, uint32_t *now)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_model_use(c, version, NULL), &r);
	if (rc == 0 && (rc = recd_reply_model_use(r, now)) < 0)
		conn_fail(c, rc, "a malformed reply from recd");
	return rc;
}

int recd_recommend(struct recd_conn *c, const char *user, int k, const struct recd_recommend_opts *opt,
                   struct recd_item *items, struct recd_why *why, struct recd_result *res)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_recommend(c, user, k, opt, NULL), &r);
	if (rc == 0) {
		int wcap = opt && opt->explain ? opt->why_cap : 0;
		rc = recd_reply_recommend(r, items, k, why, wcap, res);
		if (rc < 0)
			conn_fail(c, rc, "a malformed recommend reply from recd");
	}
	return rc;
}

int recd_score(struct recd_conn *c, const char *user, const char *const *items, size_t n,
               float *scores, uint32_t *version)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_score(c, user, items, n, NULL), &r);
	if (rc == 0 && (rc = recd_reply_score(r, scores, n, version)) < 0)
		conn_fail(c, rc, "a malformed score reply from recd");
	return rc;
}

int recd_ingest(struct recd_conn *c, const struct recd_event *ev, size_t n)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_ingest(c, ev, n, NULL), &r);
	if (rc == 0 && (rc = recd_reply_ingest(r)) < 0)
		conn_fail(c, rc, "a malformed ingest reply from recd");
	return rc;
}

int recd_job_submit(struct recd_conn *c, const char *json, size_t len, char *id, size_t idcap)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_job_submit(c, json, len, NULL), &r);
	if (rc == 0 && (rc = recd_reply_job_submit(r, id, idcap)) < 0)
		conn_fail(c, rc, rc == -ERANGE ? "the job ID does not fit in %zu bytes"
		                               : "a malformed job submit reply from recd (%zu)", idcap);
	return rc;
}

int recd_job_status(struct recd_conn *c, const char *id, struct recd_job_status *out)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_job_status(c, id, NULL), &r);
	if (rc == 0 && (rc = recd_reply_job_status(r, out)) < 0)
		conn_fail(c, rc, "a malformed job status reply from recd");
	return rc;
}

int recd_job_result(struct recd_conn *c, const char *id, uint64_t offset, void *buf, size_t cap,
                    size_t *got, uint64_t *total)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	if (!buf)
		return conn_fail(c, -EINVAL, "no buffer for the result");
	rc = conn_call(c, recd_send_job_result(c, id, offset, cap, NULL), &r);
	if (rc == 0 && (rc = recd_reply_job_result(r, buf, cap, got, total)) < 0)
		conn_fail(c, rc, "a malformed job result reply from recd");
	return rc < 0 ? rc : 0;
}

int recd_job_cancel(struct recd_conn *c, const char *id)
{
	struct recd_reply *r = NULL;
	int rc;
	if ((rc = sync_ok(c)) < 0)
		return rc;
	rc = conn_call(c, recd_send_job_cancel(c, id, NULL), &r);
	if (rc == 0 && (rc = recd_reply_job_cancel(r)) < 0)
		conn_fail(c, rc, "a malformed job cancel reply from recd");
	return rc;
}
