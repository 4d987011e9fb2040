/* recd.h: librecd, the C client library of the recd recommendation daemon.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure; recd_strerror() turns one into words.  The library keeps
 * no global mutable state, so every function may be called from any thread.
 *
 * This release carries the library's version and error helpers; the daemon
 * connection API (connect, recommend, score, ingest, jobs) is added by the
 * online-path work and keeps these conventions.
 */
#ifndef RECD_RECD_H
#define RECD_RECD_H

#ifdef __cplusplus
extern "C" {
#endif

#define RECD_VERSION_MAJOR 0
#define RECD_VERSION_MINOR 1
#define RECD_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH" (of the .so actually loaded,
 * which may be newer than the header a program was built with). */
const char *recd_version(void);

/* A message for a negative errno returned by librecd (or by recd over the
 * wire).  Never NULL; the string is static. */
const char *recd_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
