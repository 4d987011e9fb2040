/* test_daemon.c: the daemon's open, status line, reload (a good config
 * applied, a bad one refused with file:line and the old one kept, a new model
 * version seen) and its startup errors, called directly without the loop
 * (tests/daemon_notify.sh runs the whole process). */
#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/log.h"
#include "store/store.h"
#include "tests/test.h"

static void write_conf(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
	CHECK_OK(close(fd));
}

static int add_model(struct store_txn *tx, void *arg)
{
	struct store_model_meta m;
	struct store_event ev;
	uint32_t user, item;
	int r;

	(void)arg;
	memset(&m, 0, sizeof m);
	snprintf(m.kind, sizeof m.kind, "sasrec");
	memset(&ev, 0, sizeof ev);
	ev.ts = 1;
	ev.action = STORE_ACTION_VIEW;
	if ((r = store_user_get_or_add(tx, "alice", 5, &user)) < 0 ||
	    (r = store_item_get_or_add(tx, "item-1", 6, &item)) < 0)
		return r;
	ev.item = item;
	if ((r = store_event_add(tx, user, &ev, NULL, 0)) < 0)
		return r;
	return store_model_put(tx, &m, "blob", 4);
}

int main(void)
{
	char *tmp = test_tmpdir();
	char sockp[4300], conf[4200], state[4200], state2[4200], text[9000], err[DAEMON_ERR_MAX], status[DAEMON_STATUS_MAX];
	struct daemon_options opt = { conf, 1, NULL };
	struct daemon *d;

	/* No service manager in this test: every notify is a no-op. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	recd_log_init();

	snprintf(conf, sizeof conf, "%s/recd.conf", tmp);
	snprintf(state, sizeof state, "%s/state", tmp);
	snprintf(state2, sizeof state2, "%s/state2", tmp);
	snprintf(text, sizeof text, "state_dir = %s\nruntime_dir = %s/run\nlog_level = err\nmax_clients = 5\n",
	         state, tmp);
	write_conf(conf, text);

	/* An empty store: created in the missing state directory. */
	err[0] = '\0';
	if (daemon_open(&d, &opt, err, sizeof err) < 0) {
		fprintf(stderr, "daemon_open: %s\n", err);
		return 1;
	}
	CHECK(access(state, F_OK) == 0);
	CHECK_EQ(daemon_model_version(d), 0);
	CHECK_OK(daemon_status(d, status, sizeof status));
	CHECK(strcmp(status, "no model trained, serving nothing; 0 users, 0 items, 0 events; "
	             "0 clients, 0 requests, 0 errors") == 0);
	/* The request socket is up. */
	snprintf(sockp, sizeof sockp, "%s/run/recd.sock", tmp);
	CHECK(access(sockp, F_OK) == 0);

	/* A model version and an event appear; a reload sees them.  The model is
	 * a 4-byte blob, which cannot be served: the reload says so and recd
	 * goes on serving what it served (nothing). */
	CHECK_OK(store_write(daemon_store(d), add_model, NULL));
	CHECK(daemon_reload(d, err, sizeof err) < 0);
	CHECK_EQ(daemon_model_version(d), 1);
	CHECK_OK(daemon_status(d, status, sizeof status));
	CHECK(strcmp(status, "model v1 stored, none served; 1 users, 1 items, 1 events; "
	             "0 clients, 0 requests, 0 errors") == 0);

	/* A bad config: refused with file:line, the old one kept. */
	write_conf(conf, "max_clients = 9\nbogus = 1\n");
	CHECK_EQ(daemon_reload(d, err, sizeof err), -EINVAL);
	snprintf(text, sizeof text, "%s:2: unknown key 'bogus'; keeping the previous configuration", conf);
	CHECK(strcmp(err, text) == 0);
	CHECK_EQ(daemon_conf(d)->max_clients, 5);
	CHECK_EQ(daemon_model_version(d), 1);

	/* A good one: applied, except the state directory, which waits for a restart. */
	snprintf(text, sizeof text, "state_dir = %s\nruntime_dir = %s/run\nlog_level = err\nmax_clients = 9\n",
	         state2, tmp);
	write_conf(conf, text);
	CHECK(daemon_reload(d, err, sizeof err) < 0);   /* the model still cannot be served */
	CHECK_EQ(daemon_conf(d)->max_clients, 9);
	CHECK(strcmp(daemon_conf(d)->state_dir, state) == 0);
	CHECK(access(state2, F_OK) != 0);
	daemon_close(d);
	CHECK(access(sockp, F_OK) != 0);   /* the socket went with it */

	/* -s overrides state_dir in the file; the store there is another one. */
	opt.state_dir = state2;
	CHECK_OK(daemon_open(&d, &opt, err, sizeof err));
	CHECK(strcmp(daemon_conf(d)->state_dir, state2) == 0);
	CHECK_EQ(daemon_model_version(d), 0);
	daemon_close(d);

	/* Startup errors say why, for main to log. */
	opt.state_dir = "relative";
	CHECK(daemon_open(&d, &opt, err, sizeof err) < 0);
	CHECK(strcmp(err, "-s: state_dir: 'relative' is not an absolute path") == 0);
	opt.state_dir = "/nonexistent-recd-test/a/b";
	CHECK(daemon_open(&d, &opt, err, sizeof err) < 0);
	CHECK(strstr(err, "/nonexistent-recd-test/a/b") != NULL);
	opt.state_dir = NULL;
	snprintf(conf, sizeof conf, "%s/missing.conf", tmp);
	CHECK_EQ(daemon_open(&d, &opt, err, sizeof err), -ENOENT);
	snprintf(text, sizeof text, "%s: No such file or directory", conf);
	CHECK(strcmp(err, text) == 0);

	/* ... but a missing default file means the defaults: with -s, a daemon,
	 * which gets as far as the model, and refuses to start on one it cannot
	 * load (before it makes its socket in the default /run/recd). */
	opt.conf_required = 0;
	opt.state_dir = state;
	CHECK(daemon_open(&d, &opt, err, sizeof err) < 0);
	snprintf(text, sizeof text, "%s: loading the model: ", state);
	CHECK(strncmp(err, text, strlen(text)) == 0);

	test_rmtree(tmp);
	return 0;
}
