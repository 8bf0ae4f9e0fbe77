/*
 * libwebhook's Redis Streams queue: jobs shared by processes on several
 * machines.  Built when hiredis is found (make WITH_REDIS=, meson -Dredis=;
 * detected by default).  In a library built without it, this header is the
 * same, wh_redis_options_init() only sets struct_size and
 * wh_queue_redis_new() returns WH_E_UNSUPPORTED.  The durability notes of
 * <webhook/sqlite.h> apply here too.
 */
#ifndef WEBHOOK_REDIS_H
#define WEBHOOK_REDIS_H

#include <webhook/webhook.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Options of the Redis Streams queue. */
typedef struct wh_redis_options {
    size_t struct_size;          /* set by wh_redis_options_init() */
    const char *host;            /* default "127.0.0.1"; give an IP literal:
                                    a host name is resolved with
                                    getaddrinfo, which waits (at every
                                    connect) */
    int port;                    /* default 6379 */
    const char *prefix;          /* key prefix, default "wh"; every process
                                    sharing the work uses the same prefix */
    const char *consumer;        /* this process's consumer name; default
                                    "<hostname>-<pid>-<random>" */
    uint32_t lease_ms;           /* jobs claimed by a consumer that has not
                                    finished them within this time are
                                    reclaimed by the others; renewed while
                                    the request runs; default 30,000 */
    uint32_t poll_interval_ms;   /* how often to look for new jobs; default
                                    50 */
    uint32_t timeout_ms;         /* how long a command (or the connect)
                                    may go unanswered: then Redis counts as
                                    away, the connection is dropped and
                                    retried after reconnect_ms.  Also the
                                    most wh_queue_redis_new and the queue's
                                    destroy wait (see below).  No other call
                                    waits on Redis.  Default 50 */
    uint32_t reconnect_ms;       /* delay between reconnection attempts;
                                    default 500 */
    uint64_t max_buffered;       /* new jobs in memory not confirmed by
                                    Redis yet (sent at the end of each
                                    round, confirmed a round trip later;
                                    when full while Redis answers, wh_emit
                                    returns WH_E_FULL until replies come).
                                    Without a spool, while Redis is
                                    unreachable, at most this many accepted
                                    jobs are only in memory (lost if the
                                    process dies) and wh_emit returns
                                    WH_E_UNAVAILABLE beyond it; default
                                    10,000 */
    uint64_t max_jobs;           /* stream length bound (approximate across
                                    processes) -> WH_E_FULL; default 10M */
    int producer_only;           /* 1: enqueue only, never claim */
    const wh_clock *clock;       /* default wh_clock_system() */
    wh_log_fn on_log;
    void *log_user;
    const char *spool_path;      /* NULL (default): no spool.  A local
                                    SQLite file that takes every job
                                    accepted while Redis is unreachable
                                    (from when it is found away: broken
                                    connection, or timeout_ms without an
                                    answer; durable at the end of the
                                    round, like the SQLite queue) and
                                    forwards it, in order, when Redis
                                    answers again.  One file per process;
                                    a process that opens a spool forwards
                                    what an earlier one left in it. */
} wh_redis_options;
WH_EXTERN void wh_redis_options_init_sized(wh_redis_options *o, size_t size);
#define wh_redis_options_init(o) wh_redis_options_init_sized((o), sizeof *(o))

/* Connect the Redis Streams queue.  Jobs go to one stream per endpoint,
 * "<prefix>:s:<endpoint id>", read through the consumer group "workers"
 * that every delivering process joins; retried jobs wait in the sorted set
 * "<prefix>:r:<endpoint id>" (score: due time) and move back into the
 * stream when due.  A job stays pending on the consumer that claimed it
 * until XACK; one not finished within lease_ms (its process died) is taken
 * over by another consumer (XAUTOCLAIM).  Each endpoint's job holds its own
 * copy of the payload.  Use Redis persistence (appendonly yes) for jobs to
 * survive a restart of Redis itself.
 *
 * What waits.  The queue talks to Redis through hiredis's async API (queue
 * vtable version 5): its socket is watched on the engine's hooks (the
 * host's loop from wh_loop_attach, or the engine's epoll set behind wh_fd,
 * which wh_poll also sets up for it, so wh_poll(e, N) wakes for Redis's
 * replies), every command is pipelined, and claims are prefetched (4 jobs
 * per read, 4 handed out per engine round, the rest in the next round,
 * 1 ms later at the latest): wh_emit, wh_poll(e, 0), wh_socket_action and wh_tick
 * never wait on Redis.  A queue used with no hooks at all polls its socket
 * with a timeout of 0 in its methods.  Two calls wait, each at most
 * timeout_ms: wh_queue_redis_new (the first connect and its answer; the
 * connection is tried again later when it is not done by then) and the
 * queue's destroy (from wh_engine_free or wh_queue_free: the last writes,
 * the jobs held going back to their streams; what is not confirmed by then
 * goes to the spool, or is lost without one, and is logged).  A host name
 * (not an IP literal) is resolved with getaddrinfo at every connect, which
 * waits.  The spool's SQLite waits at most 10 ms for a lock held by
 * another process on the same file (one file per process).
 *
 * When Redis is unreachable, accepted jobs
 * go to the spool (spool_path), or, without one, wait in the bounded local
 * buffer (max_buffered; beyond it wh_emit returns WH_E_UNAVAILABLE and
 * stores nothing) and are written when the connection returns.  Each
 * outage is logged once.  An unreachable server at creation is not an
 * error (the queue keeps trying).  opts may be NULL.  Returns WH_OK,
 * WH_E_INVAL, WH_E_VERSION, WH_E_NOMEM, WH_E_IO (the spool cannot be
 * opened; the reason goes to on_log) or WH_E_UNSUPPORTED (library built
 * without hiredis, or a spool asked of a library built without SQLite;
 * *out is set to NULL). */
WH_EXTERN int wh_queue_redis_new(const wh_redis_options *opts, wh_queue **out);

#ifdef __cplusplus
}
#endif
#endif /* WEBHOOK_REDIS_H */
