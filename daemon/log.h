/* log.h: recd's log lines.  They go to standard error, one write(2) per line,
 * each starting with the sd-daemon priority prefix ("<3>" for an error) that
 * journald turns into the entry's priority; see sd-daemon(3). */
#ifndef RECD_LOG_H
#define RECD_LOG_H

#include <syslog.h>   /* LOG_ERR .. LOG_DEBUG: the same numbers as SD_ERR .. SD_DEBUG */

/* Lines with a priority numerically above level are dropped. */
void recd_log_set_level(int level);
int  recd_log_level(void);

/* A terminal gets "recd: error: ..." instead of "<3>...", for people who run
 * recd --check by hand; anything else (the journal, a file) gets prefixes. */
void recd_log_init(void);

void recd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)     recd_log(LOG_ERR, __VA_ARGS__)
#define log_warning(...) recd_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  recd_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    recd_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   recd_log(LOG_DEBUG, __VA_ARGS__)

#endif
