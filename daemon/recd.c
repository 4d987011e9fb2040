/* recd.c: the recd command line.  Everything the daemon does is in daemon.c;
 * this reads the options, runs --check or the daemon, and picks the exit
 * status (0 done, 1 failed, 2 usage), which recd(8) documents. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/notify.h"

#ifndef RECD_SYSCONFDIR
#define RECD_SYSCONFDIR "/etc"
#endif
#define RECD_CONF_DEFAULT RECD_SYSCONFDIR "/recd/recd.conf"

enum { OPT_CHECK = 0x100 };

static void recd_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recd [-c FILE] [-s STATE_DIR] [--check]\n"
	        "The recd recommendation engine daemon; it runs in the foreground.\n"
	        "\n"
	        "  -c, --config FILE      the configuration file\n"
	        "  -s, --state-dir DIR    the store's directory (absolute), overriding state_dir\n"
	        "      --check            check the configuration and exit (0 good, 1 bad)\n"
	        "  -h, --help             show this help\n"
	        "  -V, --version          show the version\n"
	        "\n"
	        "Without -c: %s\n(the defaults when it does not exist).\n"
	        "See recd(8) and recd.conf(5).\n", RECD_CONF_DEFAULT);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon_options opt = { RECD_CONF_DEFAULT, 0, NULL };
	char err[DAEMON_ERR_MAX];
	struct daemon *d;
	int c, check = 0, r;

	recd_log_init();
	while ((c = getopt_long(argc, argv, "c:s:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opt.conf_path = optarg;
			opt.conf_required = 1;
			break;
		case 's':
			opt.state_dir = optarg;
			break;
		case OPT_CHECK:
			check = 1;
			break;
		case 'h':
			recd_usage(stdout);
			return 0;
		case 'V':
			printf("recd %s (sd_notify: %s)\n", PACKAGE_VERSION, notify_backend());
			return 0;
		default:
			fprintf(stderr, "Try 'recd --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "recd: unexpected argument '%s'\nTry 'recd --help'.\n", argv[optind]);
		return 2;
	}

	if (check) {
		struct recd_conf conf;
		r = daemon_conf_load(&opt, &conf, err, sizeof err);
		if (r < 0) {
			log_err("%s", err);
			return 1;
		}
		if (r == 1)
			printf("%s: not found; the defaults apply\n", opt.conf_path);
		else
			printf("%s: configuration OK\n", opt.conf_path);
		return 0;
	}

	if ((r = daemon_block_signals()) < 0) {
		log_err("blocking signals: %s", strerror(-r));
		return 1;
	}
	if ((r = daemon_open(&d, &opt, err, sizeof err)) < 0) {
		log_err("%s", err);
		return 1;
	}
	r = daemon_run(d);
	daemon_close(d);
	return r < 0 ? 1 : 0;
}
