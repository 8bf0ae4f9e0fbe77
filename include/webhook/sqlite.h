/*
 * libwebhook's SQLite queue: durable jobs in one file, shared by the
 * processes of one machine.  Built when SQLite is found (make WITH_SQLITE=,
 * meson -Dsqlite=; detected by default).  In a library built without it,
 * this header is the same, wh_sqlite_options_init() only sets struct_size
 * and wh_queue_sqlite_new() returns WH_E_UNSUPPORTED.
 */
#ifndef WEBHOOK_SQLITE_H
#define WEBHOOK_SQLITE_H

#include <webhook/webhook.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- durable and shared queues -------------------------------------------- */
/* Both backends below keep every accepted job until it is delivered or
 * dead-lettered, across crashes and restarts (at-least-once: a job whose
 * attempt was in flight when its process died is attempted again, with the
 * same delivery id).  Jobs name their endpoint by its stable id
 * (wh_endpoint_options.id, which should therefore be set explicitly); jobs
 * of an endpoint this process has not configured are kept, counted in
 * wh_queue_info.unbound_jobs and logged, never dropped.  Hand the queue to
 * wh_engine_options.queue (queue_owned = 1 lets the engine free it). */


/* Options of the SQLite queue. */
typedef struct wh_sqlite_options {
    size_t struct_size;          /* set by wh_sqlite_options_init() */
    uint64_t max_jobs;           /* stored jobs (all endpoints); above ->
                                    wh_emit returns WH_E_FULL; default 10M */
    uint64_t max_bytes;          /* stored payload bytes; default 4 GiB */
    uint32_t lease_ms;           /* a claim not renewed for this long is
                                    taken back (its process died); renewed
                                    while the request runs; default 30,000 */
    uint32_t poll_interval_ms;   /* how often to look for jobs other
                                    processes wrote and leases that expired;
                                    default 100 */
    uint32_t busy_timeout_ms;    /* wait for another process's write lock,
                                    per statement that meets it; default 5
                                    (ms): the writes run inside wh_poll /
                                    wh_socket_action, which must not block
                                    the host's loop; a write that did not
                                    get the lock stays in memory and is
                                    tried again in the next round */
    int synchronous_full;        /* 0 (default): WAL with synchronous=NORMAL,
                                    survives a crash of the process; 1:
                                    synchronous=FULL, survives power loss */
    int producer_only;           /* 1: enqueue only, never claim (a process
                                    that emits while others deliver) */
    const wh_clock *clock;       /* default wh_clock_system(); must be the
                                    engine's clock */
    wh_log_fn on_log;            /* diagnostics (unbound jobs, I/O errors) */
    void *log_user;
} wh_sqlite_options;
WH_EXTERN void wh_sqlite_options_init_sized(wh_sqlite_options *o, size_t size);
#define wh_sqlite_options_init(o) wh_sqlite_options_init_sized((o), sizeof *(o))

/* Open (or create) the SQLite queue in file `path`: one file in WAL mode.
 * wh_emit only buffers the job in memory; the jobs of a wh_poll round are
 * written in one transaction at its end (group commit), so an event is
 * durable once the wh_poll() after its wh_emit() returns.  Several
 * processes on one machine may share the file (producers and workers).
 * opts may be NULL.  Returns WH_OK, WH_E_INVAL, WH_E_VERSION, WH_E_NOMEM,
 * WH_E_IO (cannot open or initialise the file; the message goes to
 * opts->on_log) or WH_E_UNSUPPORTED (library built without SQLite; *out is
 * set to NULL). */
WH_EXTERN int wh_queue_sqlite_new(const char *path,
                                  const wh_sqlite_options *opts,
                                  wh_queue **out);

#ifdef __cplusplus
}
#endif
#endif /* WEBHOOK_SQLITE_H */
