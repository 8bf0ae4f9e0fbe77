/*
 * libwebhook on a libevent 2 event_base (header-only; link libevent).
 *
 *     struct event_base *base = event_base_new();
 *     wh_libevent_attach(e, base);       // before the first wh_poll
 *     ... wh_emit(e, ...) from callbacks ...
 *     event_base_dispatch(base);         // until event_base_loopexit
 *     wh_libevent_detach(e);
 *
 * One persistent event per socket the engine watches and one timer event:
 * idle, no timer is pending and nothing wakes up.  The engine's wakeup fd
 * is a pending event, so event_base_dispatch does not return by itself
 * while the engine is attached: end the loop with event_base_loopexit()
 * or event_base_loopbreak().  wh_libevent_attach returns WH_OK,
 * WH_E_INVAL, WH_E_NOMEM, WH_E_EXISTS (already attached: a second attach
 * is refused) or what wh_loop_attach returns.  wh_libevent_detach frees
 * every event and the adapter's state (libevent frees synchronously);
 * call it before wh_engine_free and before event_base_free.
 * Everything here runs on the base's thread.
 */
#ifndef WEBHOOK_ADAPTERS_LIBEVENT_H
#define WEBHOOK_ADAPTERS_LIBEVENT_H

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <webhook/webhook.h>

#define WH_LIBEVENT_MAGIC_ 0x77686576u /* "whev" */

typedef struct wh_libevent_ {
    unsigned magic;
    wh_engine *e;
    struct event_base *base;
    struct event *timer;
} wh_libevent_;

typedef struct wh_libevent_sock_ {
    struct event *ev;
    wh_libevent_ *st;
    int fd;
    int events;
} wh_libevent_sock_;

static inline void wh_libevent_sock_cb_(evutil_socket_t fd, short what, void *arg)
{
    wh_libevent_sock_ *k = (wh_libevent_sock_ *)arg;
    int ev = (what & EV_READ ? WH_POLL_IN : 0) | (what & EV_WRITE ? WH_POLL_OUT : 0);
    wh_socket_action(k->st->e, (int)fd, ev);
}

static inline void wh_libevent_timer_cb_(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wh_socket_action(((wh_libevent_ *)arg)->e, WH_SOCKET_TIMEOUT, 0);
}

static inline int wh_libevent_watch_(void *user, int fd, int events, void **sock)
{
    wh_libevent_ *st = (wh_libevent_ *)user;
    wh_libevent_sock_ *k = (wh_libevent_sock_ *)*sock;
    if (!events) {
        if (k) {
            event_free(k->ev);
            free(k);
            *sock = NULL;
        }
        return 0;
    }
    short flags = (short)((events & WH_POLL_IN ? EV_READ : 0) |
                          (events & WH_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!k) {
        k = (wh_libevent_sock_ *)calloc(1, sizeof *k);
        if (!k) return -1;
        k->st = st;
        k->fd = fd;
        k->ev = event_new(st->base, fd, flags, wh_libevent_sock_cb_, k);
        if (!k->ev) {
            free(k);
            return -1;
        }
        *sock = k;
    } else if (k->events != events) {
        event_del(k->ev);
        event_assign(k->ev, st->base, fd, flags, wh_libevent_sock_cb_, k);
    } else {
        return 0;
    }
    k->events = events;
    return event_add(k->ev, NULL) == 0 ? 0 : -1;
}

static inline int wh_libevent_timer_(void *user, int64_t ms)
{
    wh_libevent_ *st = (wh_libevent_ *)user;
    if (ms < 0) {
        evtimer_del(st->timer);
        return 0;
    }
    struct timeval tv;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return evtimer_add(st->timer, &tv) == 0 ? 0 : -1;
}

static inline int wh_libevent_attach(wh_engine *e, struct event_base *base)
{
    if (!e || !base) return WH_E_INVAL;
    if (wh_loop_attached(e)) return WH_E_EXISTS;
    wh_libevent_ *st = (wh_libevent_ *)calloc(1, sizeof *st);
    if (!st) return WH_E_NOMEM;
    st->magic = WH_LIBEVENT_MAGIC_;
    st->e = e;
    st->base = base;
    st->timer = evtimer_new(base, wh_libevent_timer_cb_, st);
    if (!st->timer) {
        free(st);
        return WH_E_NOMEM;
    }
    wh_loop l;
    l.version = WH_LOOP_VERSION;
    l.user = st;
    l.watch = wh_libevent_watch_;
    l.timer = wh_libevent_timer_;
    int rc = wh_loop_attach(e, &l);
    if (rc != WH_OK) {
        event_free(st->timer);
        free(st);
    }
    return rc;
}

static inline void wh_libevent_detach(wh_engine *e)
{
    const wh_loop *l = wh_loop_attached(e);
    if (!l || !l->user || ((const wh_libevent_ *)l->user)->magic != WH_LIBEVENT_MAGIC_) return;
    wh_libevent_ *st = (wh_libevent_ *)l->user;
    wh_loop_attach(e, NULL); /* frees every socket event, cancels the timer */
    event_free(st->timer);
    free(st);
}

#endif /* WEBHOOK_ADAPTERS_LIBEVENT_H */
