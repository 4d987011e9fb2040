/* daemon.c: recd's life cycle and event loop.  One epoll set waits on a
 * signalfd (SIGHUP, SIGTERM, SIGINT) and two timerfds (watchdog, STATUS=
 * updates); nothing polls, so an idle recd sleeps in epoll_wait(2). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "daemon/compact.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/ring.h"
#include "daemon/spool.h"
#include "model/serve.h"
#include "store/store.h"

struct daemon {
	struct daemon_options opt;
	struct recd_conf conf;
	struct store *st;
	uint32_t model_version;           /* 0 = no model stored */
	struct store_model_meta model;    /* valid when model_version != 0 */
	struct serve *sv;                 /* the resident model (model/serve.h) */
	struct ring_server *ring;         /* the request socket and rings (daemon/ring.h) */
	struct spool *spool;              /* batch jobs (daemon/spool.h); NULL = no spool_dir */
	struct compactor *compact;        /* the recent events' compaction (daemon/compact.h) */
	int epfd, sigfd, wdfd, statusfd;  /* -1 when not open */
	uint64_t watchdog_usec;           /* 0 = no watchdog asked for */
	int notify_failed;                /* a failed sd_notify was logged once */
};

static void daemon_signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
}

/* The thread that reads the signalfd (the one that blocked the signals). */
static pthread_t daemon_main_thread;

/* Threads started before main (OpenBLAS starts its pool from a library
 * constructor) have these signals unblocked, and the kernel may deliver a
 * process-directed one to them: with the default action that would kill
 * recd on SIGHUP.  Such a thread passes the signal on to the main thread,
 * which blocks it, so it waits there for the signalfd. */
static void daemon_forward_signal(int sig)
{
	int saved = errno;
	pthread_kill(daemon_main_thread, sig);
	errno = saved;
}

int daemon_block_signals(void)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT };
	struct sigaction sa;
	sigset_t set;

	daemon_signal_set(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	daemon_main_thread = pthread_self();
	/* A shell starts background jobs with SIGINT ignored, and nohup ignores
	 * SIGHUP.  Linux still queues an ignored signal while it is blocked, but
	 * POSIX lets it be dropped: take a handler (never run in the main thread,
	 * which blocks them), not SIG_IGN. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = daemon_forward_signal;
	sa.sa_flags = SA_RESTART;
	sa.sa_mask = set;
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -errno;
	return 0;
}

int daemon_conf_load(const struct daemon_options *opt, struct recd_conf *out,
                     char *err, size_t errlen)
{
	struct recd_conf c;
	int r = conf_load(&c, opt->conf_path, !opt->conf_required, err, errlen);
	if (r < 0)
		return r;
	if (opt->state_dir) {
		char why[DAEMON_ERR_MAX];
		int s = conf_set_state_dir(&c, opt->state_dir, why, sizeof why);
		if (s < 0) {
			snprintf(err, errlen, "-s: %s", why);
			return s;
		}
	}
	*out = c;
	return r;
}

/* Re-reads the latest model version's metadata.  Models are not loaded yet:
 * only what is stored is known, which is what STATUS= and the log report. */
static int daemon_refresh_model(struct daemon *d, char *err, size_t errlen)
{
	struct store_model_meta meta;
	struct store_txn *tx = NULL;
	const void *blob;
	size_t len;
	uint32_t v;
	int r;

	if ((r = store_read_begin(d->st, &tx)) < 0)
		goto fail;
	r = store_model_latest(tx, &v);
	if (r == -ENOENT) {
		d->model_version = 0;
		r = 0;
		goto out;
	}
	if (r < 0 || (r = store_model_get(tx, v, &meta, &blob, &len)) < 0)
		goto fail;
	meta.kind[sizeof meta.kind - 1] = '\0';
	d->model = meta;
	d->model_version = v;
	goto out;
fail:
	snprintf(err, errlen, "%s: reading the model versions: %s", d->conf.state_dir,
	         store_errmsg(d->st));
out:
	if (tx)
		store_txn_end(tx);
	return r;
}

static void daemon_log_model(const struct daemon *d)
{
	uint32_t v = d->sv ? serve_version(d->sv) : 0;
	if (!d->model_version)
		log_notice("no model version stored; serving nothing until one is trained");
	else if (!v)
		log_notice("latest model version is %" PRIu32 ", but no version is served",
		           d->model_version);
	else
		log_notice("serving model version %" PRIu32 " (the latest stored is %" PRIu32 ")",
		           v, d->model_version);
}

int daemon_status(struct daemon *d, char *buf, size_t len)
{
	struct store_counts c;
	struct store_txn *tx;
	char model[96];
	int r;

	if ((r = store_read_begin(d->st, &tx)) < 0)
		return r;
	r = store_counts(tx, &c);
	store_txn_end(tx);
	if (r < 0)
		return r;
	uint32_t v = d->sv ? serve_version(d->sv) : 0;
	if (v)
		snprintf(model, sizeof model, "model v%" PRIu32 " (%s) served", v,
		         v == d->model_version && d->model.kind[0] ? d->model.kind : "unknown kind");
	else if (d->model_version)
		snprintf(model, sizeof model, "model v%" PRIu32 " stored, none served", d->model_version);
	else
		snprintf(model, sizeof model, "no model trained, serving nothing");
	struct ring_counters rc = { 0 };
	if (d->ring)
		ring_server_counters(d->ring, &rc);
	snprintf(buf, len, "%s; %" PRIu64 " users, %" PRIu64 " items, %" PRIu64 " events; "
	         "%u clients, %" PRIu64 " requests, %" PRIu64 " errors",
	         model, c.users, c.items, c.events, rc.clients, rc.requests, rc.errors);
	return 0;
}

static int daemon_arm(int fd, uint64_t usec)
{
	struct itimerspec its;
	memset(&its, 0, sizeof its);
	if (usec) {
		its.it_interval.tv_sec = (time_t)(usec / 1000000u);
		its.it_interval.tv_nsec = (long)(usec % 1000000u) * 1000;
		its.it_value = its.it_interval;
	}
	return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static int daemon_add(int epfd, int fd)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.fd = fd;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int daemon_open(struct daemon **out, const struct daemon_options *opt, char *err, size_t errlen)
{
	struct store_options so = { 0, -1, 0 };
	struct daemon *d;
	sigset_t set;
	int r;

	if (!(d = calloc(1, sizeof *d))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->opt = *opt;
	d->epfd = d->sigfd = d->wdfd = d->statusfd = -1;
	if ((r = daemon_conf_load(opt, &d->conf, err, errlen)) < 0)
		goto fail;
	recd_log_set_level(d->conf.log_level);
	if (r == 1)
		log_info("%s: not found; using the defaults", opt->conf_path);
	if ((r = store_open(&d->st, d->conf.state_dir, &so)) < 0) {
		snprintf(err, errlen, "%s", store_errmsg(NULL));
		goto fail;
	}
	if ((r = compact_start(&d->compact, d->st, &d->conf, err, errlen)) < 0)
		goto fail;
	if ((r = daemon_refresh_model(d, err, errlen)) < 0)
		goto fail;
	{
		struct serve_options svo;
		char why[DAEMON_ERR_MAX];
		serve_options_default(&svo);
		if ((r = serve_open(&d->sv, d->st, &svo, why, sizeof why)) < 0) {
			snprintf(err, errlen, "%s: loading the model: %s", d->conf.state_dir, why);
			goto fail;
		}
	}
	/* The signals are blocked in every thread the ring starts: they come
	 * to the loop's signalfd only. */
	if ((r = ring_server_open(&d->ring, &d->conf, d->sv, NULL, err, errlen)) < 0)
		goto fail;
	if ((r = spool_start(&d->spool, &d->conf, d->st, d->sv, err, errlen)) < 0)
		goto fail;
	ring_server_set_spool(d->ring, d->spool);   /* the ring's job requests */

	daemon_signal_set(&set);
	if ((d->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (d->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (d->wdfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0 ||
	    (d->statusfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0) {
		r = -errno;
		snprintf(err, errlen, "setting up the event loop: %s", strerror(-r));
		goto fail;
	}
	if ((r = daemon_add(d->epfd, d->sigfd)) < 0 || (r = daemon_add(d->epfd, d->wdfd)) < 0 ||
	    (r = daemon_add(d->epfd, d->statusfd)) < 0) {
		snprintf(err, errlen, "setting up the event loop: %s", strerror(-r));
		goto fail;
	}

	r = notify_watchdog_enabled(&d->watchdog_usec);
	if (r < 0)
		log_warning("ignoring malformed WATCHDOG_USEC or WATCHDOG_PID: %s", strerror(-r));
	if (r <= 0)
		d->watchdog_usec = 0;
	/* sd_watchdog_enabled(3): ping at half the interval, so one late wake-up
	 * does not get recd killed. */
	if ((r = daemon_arm(d->wdfd, d->watchdog_usec / 2 ? d->watchdog_usec / 2 : d->watchdog_usec)) < 0 ||
	    (r = daemon_arm(d->statusfd, (uint64_t)d->conf.status_interval * 1000000u)) < 0) {
		snprintf(err, errlen, "arming a timer: %s", strerror(-r));
		goto fail;
	}
	if (d->watchdog_usec)
		log_info("store %s open; watchdog every %" PRIu64 " ms", d->conf.state_dir,
		         d->watchdog_usec / 2000u);
	else
		log_info("store %s open; no watchdog", d->conf.state_dir);
	daemon_log_model(d);
	*out = d;
	return 0;
fail:
	daemon_close(d);
	return r;
}

int daemon_reload(struct daemon *d, char *err, size_t errlen)
{
	char why[DAEMON_ERR_MAX];
	struct recd_conf nc;
	uint32_t old_model = d->model_version;
	int r, rm;

	r = daemon_conf_load(&d->opt, &nc, why, sizeof why);
	if (r < 0) {
		snprintf(err, errlen, "%s; keeping the previous configuration", why);
	} else {
		/* The store stays open where it is and the runtime directory is
		 * systemd's: moving either under a running recd would strand what is
		 * in the old place, so they wait for a restart. */
		if (strcmp(nc.state_dir, d->conf.state_dir) != 0) {
			log_warning("state_dir changed to %s; recd keeps using %s until it restarts",
			            nc.state_dir, d->conf.state_dir);
			memcpy(nc.state_dir, d->conf.state_dir, sizeof nc.state_dir);
		}
		if (strcmp(nc.runtime_dir, d->conf.runtime_dir) != 0) {
			log_warning("runtime_dir changed to %s; recd keeps using %s until it restarts",
			            nc.runtime_dir, d->conf.runtime_dir);
			memcpy(nc.runtime_dir, d->conf.runtime_dir, sizeof nc.runtime_dir);
		}
		int missing = r == 1, a = 0;
		if (nc.status_interval != d->conf.status_interval)
			a = daemon_arm(d->statusfd, (uint64_t)nc.status_interval * 1000000u);
		if (a < 0) {
			r = a;
			snprintf(err, errlen, "arming the status timer: %s; keeping the previous "
			         "configuration", strerror(-a));
		} else {
			d->conf = nc;
			recd_log_set_level(d->conf.log_level);
			if (missing)
				log_info("%s: not found; using the defaults", d->opt.conf_path);
			else
				log_info("configuration reloaded from %s", d->opt.conf_path);
			r = 0;
		}
	}
	if (r == 0 && d->ring)
		ring_server_set_conf(d->ring, &d->conf);
	if (r == 0)
		compact_set_conf(d->compact, &d->conf);
	rm = daemon_refresh_model(d, why, sizeof why);
	if (rm == 0 && d->sv) {
		/* The active version may have changed in the store (recctl model
		 * use, or a new training): serve what it says now. */
		rm = serve_reload(d->sv, NULL, why, sizeof why);
	}
	if (rm < 0) {
		if (r == 0)
			snprintf(err, errlen, "%s", why);
		return r < 0 ? r : rm;
	}
	if (d->model_version != old_model)
		daemon_log_model(d);
	return r;
}

static void daemon_notify_result(struct daemon *d, const char *what, int r)
{
	if (r >= 0)
		return;
	/* Once at warning: a vanished socket would otherwise log every ping. */
	if (!d->notify_failed)
		log_warning("sd_notify %s: %s", what, strerror(-r));
	else
		log_debug("sd_notify %s: %s", what, strerror(-r));
	d->notify_failed = 1;
}

static void daemon_send_status(struct daemon *d, int ready)
{
	char status[DAEMON_STATUS_MAX];
	int r = daemon_status(d, status, sizeof status);
	if (r < 0) {
		log_warning("reading the store's counts: %s", store_errmsg(d->st));
		snprintf(status, sizeof status, "store unreadable: %s", strerror(-r));
	}
	if (ready) {
		daemon_notify_result(d, "READY", notify_ready(status));
		log_info("ready: %s", status);
	} else {
		daemon_notify_result(d, "STATUS", notify_status(status));
		log_debug("status: %s", status);
	}
}

/* Drains a timerfd; how many expirations were missed does not matter. */
static void daemon_drain_timer(int fd)
{
	uint64_t n;
	while (read(fd, &n, sizeof n) == (ssize_t)sizeof n)
		;
}

int daemon_run(struct daemon *d)
{
	int stop = 0, stop_sig = 0, r = 0;

	daemon_send_status(d, 1);
	while (!stop) {
		struct epoll_event evs[4];
		int reload = 0, n;

		n = epoll_wait(d->epfd, evs, 4, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			log_err("epoll_wait: %s", strerror(-r));
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == d->sigfd) {
				struct signalfd_siginfo si;
				while (read(d->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
					if (si.ssi_signo == SIGHUP) {
						reload = 1;
					} else {
						stop = 1;
						stop_sig = (int)si.ssi_signo;
					}
				}
			} else if (fd == d->wdfd) {
				daemon_drain_timer(d->wdfd);
				daemon_notify_result(d, "WATCHDOG", notify_watchdog());
			} else if (fd == d->statusfd) {
				daemon_drain_timer(d->statusfd);
				daemon_send_status(d, 0);
			}
		}
		/* A stop that arrives with a reload wins: reloading only to stop
		 * would delay the stop for nothing. */
		if (reload && !stop) {
			char err[DAEMON_ERR_MAX];
			daemon_notify_result(d, "RELOADING", notify_reloading());
			log_info("reloading on SIGHUP");
			if (daemon_reload(d, err, sizeof err) < 0)
				log_err("reload: %s", err);
			daemon_send_status(d, 1);
		}
	}
	daemon_notify_result(d, "STOPPING", notify_stopping());
	if (stop_sig)
		log_notice("stopping on %s", strsignal(stop_sig));
	/* No new connections or requests; those already in the rings are answered. */
	if (d->ring)
		ring_server_stop(d->ring);
	return r;
}

const struct recd_conf *daemon_conf(const struct daemon *d)
{
	return &d->conf;
}

struct store *daemon_store(struct daemon *d)
{
	return d->st;
}

uint32_t daemon_model_version(const struct daemon *d)
{
	return d->model_version;
}

void daemon_close(struct daemon *d)
{
	if (!d)
		return;
	if (d->statusfd >= 0)
		close(d->statusfd);
	if (d->wdfd >= 0)
		close(d->wdfd);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->epfd >= 0)
		close(d->epfd);
	/* The ring's workers use the spool's job engine: they stop first. */
	if (d->ring)
		ring_server_stop(d->ring);
	spool_stop(d->spool);
	/* No writer is left but this: what the recent table holds goes into the
	 * users' lists now (a restart would find it there anyway). */
	compact_stop(d->compact, 1);
	ring_server_close(d->ring);
	serve_close(d->sv);
	if (d->st)
		store_close(d->st);
	free(d);
}
