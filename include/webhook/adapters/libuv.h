/*
 * libwebhook on a libuv loop (header-only; link libuv yourself).
 *
 *     uv_loop_t *loop = uv_default_loop();
 *     wh_engine *e = wh_engine_new(&opts, &err);
 *     wh_libuv_attach(e, loop);          // before the first wh_poll
 *     ... wh_emit(e, ...) from the loop's callbacks ...
 *     uv_run(loop, UV_RUN_DEFAULT);
 *     wh_libuv_detach(e);                // its handles close on the loop
 *     uv_run(loop, UV_RUN_NOWAIT);       // runs the close callbacks
 *     wh_engine_free(e);
 *
 * One uv_poll_t per socket the engine watches and one uv_timer_t for its
 * one timer: idle, nothing is armed and the loop never wakes for the
 * engine.  The engine keeps the loop alive only while it has work (the
 * wakeup fd's handle is unreferenced), so uv_run(UV_RUN_DEFAULT) returns
 * once everything is delivered and the host has nothing else.
 * wh_libuv_attach returns WH_OK, WH_E_INVAL (NULL), WH_E_NOMEM, WH_E_EXISTS
 * (a loop or wh_fd() is attached already: a second attach is refused) or
 * what wh_loop_attach returns.  wh_libuv_detach detaches an engine
 * attached with wh_libuv_attach (nothing otherwise); the adapter's state
 * is freed in the close callbacks of its handles, so run the loop once
 * more before closing it.  Call it before wh_engine_free (which lets go of
 * the sockets but does not know the adapter's timer and state).
 * Everything here runs on the loop's thread.
 */
#ifndef WEBHOOK_ADAPTERS_LIBUV_H
#define WEBHOOK_ADAPTERS_LIBUV_H

#include <stdlib.h>
#include <uv.h>
#include <webhook/webhook.h>

#define WH_LIBUV_MAGIC_ 0x77687576u /* "whuv" */

typedef struct wh_libuv_ {
    unsigned magic;
    wh_engine *e;
    uv_loop_t *loop;
    uv_timer_t timer;
    int handles;          /* open handles (timer included); freed at 0 */
    int attaching;        /* watches made during attach: the wakeup fd */
} wh_libuv_;

typedef struct wh_libuv_sock_ {
    uv_poll_t poll;
    wh_libuv_ *st;
    int fd;
} wh_libuv_sock_;

static inline void wh_libuv_release_(wh_libuv_ *st)
{
    if (--st->handles == 0) free(st);
}

static inline void wh_libuv_sock_closed_(uv_handle_t *h)
{
    wh_libuv_sock_ *k = (wh_libuv_sock_ *)h->data;
    wh_libuv_ *st = k->st;
    free(k);
    wh_libuv_release_(st);
}

static inline void wh_libuv_timer_closed_(uv_handle_t *h)
{
    wh_libuv_release_((wh_libuv_ *)h->data);
}

static inline void wh_libuv_poll_cb_(uv_poll_t *p, int status, int events)
{
    wh_libuv_sock_ *k = (wh_libuv_sock_ *)p->data;
    int ev = 0;
    if (status < 0) ev = WH_POLL_IN | WH_POLL_OUT; /* let the engine see the error */
    if (events & UV_READABLE) ev |= WH_POLL_IN;
    if (events & UV_WRITABLE) ev |= WH_POLL_OUT;
    wh_socket_action(k->st->e, k->fd, ev);
}

static inline void wh_libuv_timer_cb_(uv_timer_t *t)
{
    wh_libuv_ *st = (wh_libuv_ *)t->data;
    wh_socket_action(st->e, WH_SOCKET_TIMEOUT, 0);
}

static inline int wh_libuv_watch_(void *user, int fd, int events, void **sock)
{
    wh_libuv_ *st = (wh_libuv_ *)user;
    wh_libuv_sock_ *k = (wh_libuv_sock_ *)*sock;
    if (!events) {
        if (k) {
            uv_poll_stop(&k->poll);
            uv_close((uv_handle_t *)&k->poll, wh_libuv_sock_closed_);
            *sock = NULL;
        }
        return 0;
    }
    if (!k) {
        k = (wh_libuv_sock_ *)calloc(1, sizeof *k);
        if (!k) return -1;
        if (uv_poll_init(st->loop, &k->poll, fd) != 0) {
            free(k);
            return -1;
        }
        k->st = st;
        k->fd = fd;
        k->poll.data = k;
        st->handles++;
        if (st->attaching) uv_unref((uv_handle_t *)&k->poll);
        *sock = k;
    }
    int uvev = (events & WH_POLL_IN ? UV_READABLE : 0) | (events & WH_POLL_OUT ? UV_WRITABLE : 0);
    return uv_poll_start(&k->poll, uvev, wh_libuv_poll_cb_) == 0 ? 0 : -1;
}

static inline int wh_libuv_timer_(void *user, int64_t ms)
{
    wh_libuv_ *st = (wh_libuv_ *)user;
    if (ms < 0) {
        uv_timer_stop(&st->timer);
        return 0;
    }
    /* from now, not from the loop's cached time of this iteration */
    uv_update_time(st->loop);
    uv_timer_start(&st->timer, wh_libuv_timer_cb_, (uint64_t)ms, 0);
    return 0;
}

static inline int wh_libuv_attach(wh_engine *e, uv_loop_t *loop)
{
    if (!e || !loop) return WH_E_INVAL;
    if (wh_loop_attached(e)) return WH_E_EXISTS;
    wh_libuv_ *st = (wh_libuv_ *)calloc(1, sizeof *st);
    if (!st) return WH_E_NOMEM;
    st->magic = WH_LIBUV_MAGIC_;
    st->e = e;
    st->loop = loop;
    if (uv_timer_init(loop, &st->timer) != 0) {
        free(st);
        return WH_E_INVAL;
    }
    st->timer.data = st;
    st->handles = 1;
    wh_loop l;
    l.version = WH_LOOP_VERSION;
    l.user = st;
    l.watch = wh_libuv_watch_;
    l.timer = wh_libuv_timer_;
    st->attaching = 1;
    int rc = wh_loop_attach(e, &l);
    st->attaching = 0;
    if (rc != WH_OK) uv_close((uv_handle_t *)&st->timer, wh_libuv_timer_closed_);
    return rc;
}

static inline void wh_libuv_detach(wh_engine *e)
{
    const wh_loop *l = wh_loop_attached(e);
    if (!l || !l->user || ((const wh_libuv_ *)l->user)->magic != WH_LIBUV_MAGIC_) return;
    wh_libuv_ *st = (wh_libuv_ *)l->user;
    wh_loop_attach(e, NULL); /* closes every poll handle, stops the timer */
    st->magic = 0;
    uv_close((uv_handle_t *)&st->timer, wh_libuv_timer_closed_);
}

#endif /* WEBHOOK_ADAPTERS_LIBUV_H */
