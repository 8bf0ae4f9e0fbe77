/* Living in the host's loop: the hooks the engine calls (the host's, from
 * wh_loop_attach, or its own epoll set for wh_fd), the hooks it hands the
 * transport (sockets pass straight through; the transport's timer is
 * merged with the engine's deadlines into the one timer of the hooks), and
 * the wakeup eventfd.  A queue of version 5 (the Redis queue) gets hooks
 * of its own the same way: its socket passes through, its timer is a call
 * of its poll().
 *
 * The one timer covers: the transport's timer, the wake heap (which holds
 * every retry, batch linger, rate-limit gate, breaker probe), the queue's
 * poll (leases, other processes' jobs) and events left in the inbox.  It is
 * re-armed only when that deadline changes, and cancelled when there is
 * none: an idle engine arms nothing and wakes nothing.
 *
 * Calls scheduler.c (the first wake), inbox.c, the transport's vtable and
 * the hooks; never a host callback other than the hooks. */
#include "engine.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define INBOX_RETRY_MS 5   /* events left in the inbox (queue full): look again */

int wh__wakeup_fd_new(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void wh__wakeup_signal(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already huge, it is readable anyway */
}

void wh__wakeup_drain(int fd)
{
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
}

static int64_t now_ms(wh_engine *e) { return e->clock.now_ms(e->clock.user); }

/* ---- the transport's hooks ------------------------------------------------ */
static int inner_watch(void *user, int fd, int events, void **sock)
{
    wh_engine *e = user;
    int rc = e->loop.watch(e->loop.user, fd, events, sock);
    if (rc != 0) wh__log(e, WH_LOG_ERROR, "loop: cannot watch fd %d", fd);
    return rc;
}

static int inner_timer(void *user, int64_t ms)
{
    wh_engine *e = user;
    e->tp_due = ms < 0 ? INT64_MAX : now_ms(e) + ms;
    if (!e->in_round) wh__loop_rearm(e);
    return 0;
}

/* ---- the queue's hooks (queue version 5) ----------------------------------- */
/* Its socket passes straight through (the engine remembers which fd is the
 * queue's, to dispatch it); its timer is a call of poll() by then. */
static int q_watch(void *user, int fd, int events, void **sock)
{
    wh_engine *e = user;
    int rc = e->loop.watch(e->loop.user, fd, events, sock);
    if (rc != 0) wh__log(e, WH_LOG_ERROR, "loop: cannot watch the queue's fd %d", fd);
    e->q_fd = events ? fd : (fd == e->q_fd ? -1 : e->q_fd);
    return rc;
}

static int q_timer(void *user, int64_t ms)
{
    wh_engine *e = user;
    int64_t at = ms < 0 ? INT64_MAX : now_ms(e) + ms;
    if (at < e->queue_next) e->queue_next = at;
    if (!e->in_round) wh__loop_rearm(e);
    return 0;
}

int wh__loop_queue_wants(const wh_engine *e)
{
    const wh_queue *q = e->queue;
    return q && q->version >= 5 && q->set_loop && q->socket_action;
}

void wh__loop_rearm(wh_engine *e)
{
    if (!e->loop_on) return;
    int64_t now = now_ms(e);
    int64_t want = wh__sched_first(e);
    if (e->tp_loop) {
        if (e->tp_due < want) want = e->tp_due;
    } else {
        int64_t t = e->transport->timeout_ms(e->transport->user);
        if (t >= 0 && now + t < want) want = now + t;
    }
    if (e->queue_next < want) want = e->queue_next;
    if (e->inbox && !wh__inbox_empty(e->inbox) && now + INBOX_RETRY_MS < want)
        want = now + INBOX_RETRY_MS;
    if (want == e->armed) return;
    e->armed = want;
    e->loop.timer(e->loop.user, want == INT64_MAX ? -1 : want <= now ? 0 : want - now);
}

/* ---- wh_fd: the engine's own epoll set ------------------------------------- */
static int ep_watch(void *user, int fd, int events, void **sock)
{
    wh_engine *e = user;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (events & WH_POLL_IN ? EPOLLIN : 0u) | (events & WH_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (!events) {
        if (*sock) (void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, &ev);
        *sock = NULL;
        return 0;
    }
    int op = *sock ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(e->epfd, op, fd, &ev) != 0) {
        /* an fd closed and reused without a stop, or stopped twice */
        if (errno == EEXIST) op = EPOLL_CTL_MOD;
        else if (errno == ENOENT) op = EPOLL_CTL_ADD;
        else return -1;
        if (epoll_ctl(e->epfd, op, fd, &ev) != 0) return -1;
    }
    *sock = &e->epfd; /* any non-NULL marker: "in the set" */
    return 0;
}

static int ep_timer(void *user, int64_t ms)
{
    wh_engine *e = user;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (ms == 0) {
        its.it_value.tv_nsec = 1; /* 0 would disarm it */
    } else if (ms > 0) {
        its.it_value.tv_sec = (time_t)(ms / 1000);
        its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
    }
    return timerfd_settime(e->tfd, 0, &its, NULL) == 0 ? 0 : -1;
}

void wh__loop_fd_wait(wh_engine *e, int wait_ms, void (*fn)(wh_engine *e, int fd, int events))
{
    struct epoll_event evs[64];
    int n = epoll_wait(e->epfd, evs, 64, wait_ms);
    /* under wh_poll_budget, what is left when the time is up stays ready
     * (level-triggered) for the next call; one fd is always handled */
    for (int i = 0; i < n && (i == 0 || !wh__budget_over(e)); i++) {
        int fd = evs[i].data.fd;
        uint32_t m = evs[i].events;
        if (fd == e->tfd) {
            uint64_t x;
            ssize_t r = read(e->tfd, &x, sizeof x);
            (void)r;
            fn(e, WH_SOCKET_TIMEOUT, 0);
            continue;
        }
        int ev = 0;
        if (m & (EPOLLIN | EPOLLHUP | EPOLLERR)) ev |= WH_POLL_IN;
        if (m & (EPOLLOUT | EPOLLERR)) ev |= WH_POLL_OUT;
        fn(e, fd, ev);
    }
}

/* ---- attach, detach -------------------------------------------------------- */
int wh__loop_set(wh_engine *e, const wh_loop *loop, int fd_mode)
{
    wh_loop own;
    if (fd_mode) {
        e->epfd = epoll_create1(EPOLL_CLOEXEC);
        e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.fd = e->tfd;
        if (e->epfd < 0 || e->tfd < 0 || epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->tfd, &ev) != 0) {
            if (e->epfd >= 0) close(e->epfd);
            if (e->tfd >= 0) close(e->tfd);
            e->epfd = e->tfd = -1;
            return WH_E_IO;
        }
        own.version = WH_LOOP_VERSION;
        own.user = e;
        own.watch = ep_watch;
        own.timer = ep_timer;
        loop = &own;
    }
    e->loop = *loop;
    e->loop_on = 1;
    e->fd_mode = fd_mode;
    e->armed = INT64_MAX;
    e->tp_due = INT64_MAX;
    e->tp_loop = 0;
    wh_transport *t = e->transport;
    if (t->version >= 2 && t->set_loop) {
        e->inner.version = WH_LOOP_VERSION;
        e->inner.user = e;
        e->inner.watch = inner_watch;
        e->inner.timer = inner_timer;
        e->in_round++; /* the transport may arm its timer: re-armed below */
        int rc = t->set_loop(t->user, &e->inner);
        e->in_round--;
        if (rc == WH_OK) e->tp_loop = 1;
        else wh__log(e, WH_LOG_WARN, "loop: the transport refused the hooks (%s); "
                     "it is polled instead", wh_strerror(rc));
    }
    e->q_fd = -1;
    if (wh__loop_queue_wants(e)) {
        e->q_inner.version = WH_LOOP_VERSION;
        e->q_inner.user = e;
        e->q_inner.watch = q_watch;
        e->q_inner.timer = q_timer;
        e->in_round++;
        int rc = e->queue->set_loop(e->queue->user, &e->q_inner);
        e->in_round--;
        if (rc == WH_OK) e->q_loop = 1;
        else wh__log(e, WH_LOG_WARN, "loop: the queue refused the hooks (%s)", wh_strerror(rc));
    }
    e->wfd_slot = NULL;
    if (e->loop.watch(e->loop.user, e->wfd, WH_POLL_IN, &e->wfd_slot) == 0)
        e->wfd_watched = 1;
    else
        wh__log(e, WH_LOG_ERROR, "loop: cannot watch the wakeup fd");
    wh__loop_rearm(e);
    return WH_OK;
}

void wh__loop_clear(wh_engine *e)
{
    if (!e->loop_on) return;
    if (e->tp_loop) {
        e->in_round++;
        e->transport->set_loop(e->transport->user, NULL);
        e->in_round--;
        e->tp_loop = 0;
    }
    if (e->q_loop) {
        e->in_round++;
        e->queue->set_loop(e->queue->user, NULL);
        e->in_round--;
        e->q_loop = 0;
    }
    e->q_fd = -1;
    if (e->wfd_watched) e->loop.watch(e->loop.user, e->wfd, 0, &e->wfd_slot);
    e->wfd_watched = 0;
    if (e->armed != INT64_MAX) e->loop.timer(e->loop.user, -1);
    e->armed = INT64_MAX;
    e->tp_due = INT64_MAX;
    e->loop_on = 0;
    if (e->fd_mode) {
        close(e->epfd);
        close(e->tfd);
        e->epfd = e->tfd = -1;
        e->fd_mode = 0;
        e->fd_implicit = 0;
    }
}
