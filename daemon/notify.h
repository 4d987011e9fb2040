/* notify.h: the one place recd talks to its service manager, through the
 * sd_notify(3) protocol.  Each call means what sd_notify(3) says it means.
 * Every function returns 0 (also when there is no service manager to tell,
 * i.e. $NOTIFY_SOCKET is unset) or a negative errno. */
#ifndef RECD_NOTIFY_H
#define RECD_NOTIFY_H

#include <stdint.h>

#define NOTIFY_STATUS_MAX 512   /* bytes of a STATUS= text; longer ones are cut */

int notify_ready(const char *status);   /* READY=1 and STATUS=status */
int notify_status(const char *status);  /* STATUS=status */
int notify_reloading(void);             /* RELOADING=1 and MONOTONIC_USEC=now */
int notify_stopping(void);              /* STOPPING=1 */
int notify_watchdog(void);              /* WATCHDOG=1 */

/* Whether the service manager wants WATCHDOG=1 from this process: 1 with
 * *usec set to WATCHDOG_USEC, 0 when not (unset, or $WATCHDOG_PID names
 * another process), negative when the variables are malformed. */
int notify_watchdog_enabled(uint64_t *usec);

/* "libsystemd" or "built-in": which implementation this build uses. */
const char *notify_backend(void);

#endif
