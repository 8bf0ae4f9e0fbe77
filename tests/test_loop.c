/* Living in the host's loop, on the manual clock with the scripted
 * transport (exact times): the loop hooks (wh_loop_attach,
 * wh_socket_action), wh_fd, wh_wakeup, emit_any_thread's inbox in one
 * thread, the pull API, wh_tick, and a version-1 transport on a loop. */
#include "fixture.h"
#include <webhook/adapters/tick.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a recording host loop ------------------------------------------------ */
#define RL_MAX 16
typedef struct rl {
    tf *f;
    int fd[RL_MAX], ev[RL_MAX];
    int n;                    /* fds watched now */
    int watch_calls;
    int64_t due;              /* timer: absolute manual time, -1 none */
    int64_t timers[64];       /* every timer(ms) call, in order */
    int n_timers;
    int bad_slot;             /* a slot came back different from what was set */
} rl;

static int rl_find(rl *r, int fd)
{
    for (int i = 0; i < r->n; i++)
        if (r->fd[i] == fd) return i;
    return -1;
}

static int rl_watch(void *user, int fd, int events, void **sock)
{
    rl *r = user;
    r->watch_calls++;
    int i = rl_find(r, fd);
    if ((i < 0) != (*sock == NULL)) r->bad_slot++;
    if (!events) {
        if (i >= 0) {
            r->fd[i] = r->fd[r->n - 1];
            r->ev[i] = r->ev[r->n - 1];
            r->n--;
        }
        *sock = NULL;
        return 0;
    }
    if (i < 0) {
        if (r->n == RL_MAX) return -1;
        i = r->n++;
        r->fd[i] = fd;
    }
    r->ev[i] = events;
    *sock = &r->fd[0]; /* any marker */
    return 0;
}

static int rl_timer(void *user, int64_t ms)
{
    rl *r = user;
    if (r->n_timers < 64) r->timers[r->n_timers] = ms;
    r->n_timers++;
    r->due = ms < 0 ? -1 : wh_manual_clock_now(r->f->clock) + ms;
    return 0;
}

static void rl_attach(rl *r, tf *f)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->due = -1;
    wh_loop l = {WH_LOOP_VERSION, r, rl_watch, rl_timer};
    CHECK_EQ(wh_loop_attach(f->e, &l), WH_OK);
}

static int readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* One step of the loop: a readable watched fd first, else the timer (the
 * manual clock jumps to it).  Returns 0 when nothing is left to do. */
static int rl_step(rl *r)
{
    for (int i = 0; i < r->n; i++)
        if ((r->ev[i] & WH_POLL_IN) && readable(r->fd[i])) {
            CHECK_INT(wh_socket_action(r->f->e, r->fd[i], WH_POLL_IN), >=, 0);
            return 1;
        }
    if (r->due < 0) return 0;
    int64_t now = wh_manual_clock_now(r->f->clock);
    if (r->due > now) wh_manual_clock_advance(r->f->clock, r->due - now);
    r->due = -1; /* fired */
    CHECK_INT(wh_socket_action(r->f->e, WH_SOCKET_TIMEOUT, 0), >=, 0);
    return 1;
}

static void rl_run(rl *r, int max_steps)
{
    int steps = 0;
    while (rl_step(r)) CHECK_INT(++steps, <=, max_steps);
}

/* ---- cases ---------------------------------------------------------------------- */
/* Idle: attaching watches the wakeup fd and arms nothing; a lone event
 * goes out in the timer call it asked for and is delivered in the call
 * that reads the fake socket, at the same manual time; then the timer is
 * cancelled and the socket released. */
static void hooks_idle_and_lone_event(void)
{
    tf f;
    tf_init(&f, 1);
    tf_add_url(&f, TF_URL);
    rl r;
    rl_attach(&r, &f);
    CHECK_EQ(r.n, 1);            /* the wakeup fd */
    CHECK_EQ(r.n_timers, 0);     /* nothing due: no timer */
    CHECK(wh_loop_attached(f.e) != NULL);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(r.n_timers, 1);
    CHECK_EQ(r.timers[0], 0);    /* due now */
    CHECK_EQ(wh_socket_action(f.e, WH_SOCKET_TIMEOUT, 0), 0);
    r.due = -1;
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(r.n, 2);            /* + the transport's (fake) socket */
    rl_run(&r, 4);
    CHECK_EQ(f.delivered, 1);
    CHECK_EQ(f.out[0].at, TF_T0);
    CHECK_EQ(r.n, 1);            /* the socket released */
    CHECK_EQ(r.due, -1);         /* no timer armed when idle */
    CHECK_EQ(r.bad_slot, 0);
    int calls = r.watch_calls, timers = r.n_timers;
    /* idle: polling the hooks' state changes nothing */
    CHECK_EQ(wh_work_due(f.e), 0);
    CHECK_EQ(wh_timeout_ms(f.e), -1);
    CHECK_EQ(r.watch_calls, calls);
    CHECK_EQ(r.n_timers, timers);
    tf_done(&f);
}

/* Exact times: a 40 ms answer, a 503, a retry after 250 ms, a 40 ms 200:
 * the timer is asked for exactly those delays. */
static void hooks_exact_retry_times(void)
{
    tf f;
    tf_init(&f, 2);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = TF_URL;
    static const uint32_t sched[] = {250};
    ep.retry_schedule_ms = sched;
    ep.n_retry_schedule = 1;
    tf_add(&f, &ep);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 503, WH_OK, 40, NULL, 1), WH_OK);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 40, NULL, 0), WH_OK);
    rl r;
    rl_attach(&r, &f);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    rl_run(&r, 20);
    CHECK_EQ(f.n_out, 2);
    CHECK_EQ(f.out[0].kind, WH_RETRY);
    CHECK_EQ(f.out[0].at, TF_T0 + 40);
    CHECK_EQ(f.out[1].kind, WH_DELIVERED);
    CHECK_EQ(f.out[1].at, TF_T0 + 40 + 250 + 40);
    CHECK_EQ(tf_req(&f, 1).submitted_ms, TF_T0 + 290);
    /* the timer calls: 0 (emit), 40 (answer), 250 (retry), 40; the last
     * one fired and nothing is due: nothing to cancel */
    int64_t want[] = {0, 40, 250, 40};
    CHECK_EQ(r.n_timers, 4);
    for (int i = 0; i < 4; i++) CHECK_EQ(r.timers[i], want[i]);
    CHECK_EQ(r.due, -1);
    tf_done(&f);
}

/* A completion frees an in-flight slot: the next request starts in the
 * same wh_socket_action call. */
static void hooks_completion_starts_next_in_same_call(void)
{
    tf f;
    tf_init(&f, 3);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = TF_URL;
    ep.max_in_flight = 1;
    tf_add(&f, &ep);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 10, NULL, 0), WH_OK);
    rl r;
    rl_attach(&r, &f);
    for (int i = 0; i < 3; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    rl_run(&r, 20);
    CHECK_EQ(f.delivered, 3);
    for (size_t i = 1; i < 3; i++) {
        wh_scripted_request prev = tf_req(&f, i - 1), q = tf_req(&f, i);
        CHECK_EQ(q.submitted_ms, prev.completed_ms); /* no gap */
    }
    CHECK_EQ(f.out[2].at, TF_T0 + 30);
    tf_done(&f);
}

/* Second attach refused; wh_fd refused while attached; detach releases
 * every fd and the timer; wh_socket_action then refused; bad loops. */
static void hooks_attach_rules(void)
{
    tf f;
    tf_init(&f, 4);
    tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_socket_action(f.e, WH_SOCKET_TIMEOUT, 0), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "no loop attached"));
    wh_loop bad = {WH_LOOP_VERSION, NULL, NULL, rl_timer};
    CHECK_EQ(wh_loop_attach(f.e, &bad), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "loop.watch"));
    bad.version = 0;
    CHECK_EQ(wh_loop_attach(f.e, &bad), WH_E_VERSION);
    rl r;
    rl_attach(&r, &f);
    wh_loop l2 = {WH_LOOP_VERSION, &r, rl_watch, rl_timer};
    CHECK_EQ(wh_loop_attach(f.e, &l2), WH_E_EXISTS);
    CHECK_EQ(wh_fd(f.e), WH_E_EXISTS);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_socket_action(f.e, WH_SOCKET_TIMEOUT, 0), 0); /* now in flight */
    r.due = -1; /* it fired */
    CHECK_EQ(r.n, 2);
    CHECK_EQ(wh_loop_attach(f.e, NULL), WH_OK);
    CHECK_EQ(r.n, 0);           /* wakeup fd and fake socket released */
    CHECK_EQ(r.due, -1);
    CHECK(wh_loop_attached(f.e) == NULL);
    CHECK_EQ(wh_socket_action(f.e, WH_SOCKET_TIMEOUT, 0), WH_E_INVAL);
    /* in flight: a version-2 transport cannot be handed hooks now */
    rl r2;
    memset(&r2, 0, sizeof r2);
    r2.f = &f;
    wh_loop l3 = {WH_LOOP_VERSION, &r2, rl_watch, rl_timer};
    CHECK_EQ(wh_loop_attach(f.e, &l3), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "in flight"));
    tf_run_to_idle(&f, 1000);   /* wh_poll drives it again */
    CHECK_EQ(f.delivered, 1);
    CHECK_EQ(wh_loop_attach(f.e, &l3), WH_OK);
    tf_done(&f);
    CHECK_EQ(r2.n, 0);          /* wh_engine_free released the hooks */
}

/* wh_fd: readable exactly when wh_poll(e, 0) has work. */
static void fd_readable_exactly_when_work(void)
{
    tf f;
    tf_init(&f, 5);
    tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 100, NULL, 0), WH_OK);
    int fd = wh_fd(f.e);
    CHECK_INT(fd, >=, 0);
    CHECK_EQ(wh_fd(f.e), fd);
    CHECK(!readable(fd));
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    struct pollfd p = {fd, POLLIN, 0};
    CHECK_EQ(poll(&p, 1, 1000), 1);    /* due now: readable at once */
    CHECK_EQ(wh_poll(f.e, 0), 0);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK(!readable(fd));              /* answer due in 100 ms (manual) */
    wh_manual_clock_advance(f.clock, 100);
    CHECK_EQ(wh_poll(f.e, 0), 1);
    CHECK_EQ(f.delivered, 1);
    CHECK_EQ(f.out[0].at, TF_T0 + 100);
    CHECK(!readable(fd));
    CHECK_EQ(wh_work_due(f.e), 0);
    /* a 0 ms answer: the fake socket makes the fd readable */
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 0, NULL, 0), WH_OK);
    wh_transport_free(NULL);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(poll(&p, 1, 1000), 1);
    wh_poll(f.e, 0);                   /* sends; rule 1 still applies: 100 ms */
    wh_manual_clock_advance(f.clock, 100);
    CHECK_EQ(wh_poll(f.e, 0), 1);
    CHECK(!readable(fd));
    /* wh_wakeup: readable until polled */
    CHECK_EQ(wh_wakeup(f.e), WH_OK);
    CHECK(readable(fd));
    CHECK_EQ(wh_poll(f.e, 0), 0);
    CHECK(!readable(fd));
    CHECK_EQ(wh_loop_attach(f.e, NULL), WH_E_INVAL); /* wh_fd stays */
    tf_done(&f);
}

/* The inbox in one thread: accepted (0), counted when drained, bounded
 * (WH_E_FULL, message in this thread), argument errors named. */
static void inbox_bounded_single_thread(void)
{
    tf f;
    wh_engine_options o;
    tf_options(&f, &o, 6);
    o.emit_any_thread = 1;
    o.inbox_capacity = 4;
    tf_start(&f, &o);
    tf_add_url(&f, TF_URL);
    int fd = wh_fd(f.e);
    CHECK_INT(fd, >=, 0);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{\"a\":1", 6, NULL), WH_E_JSON);
    CHECK(strstr(wh_last_error(f.e), "not valid JSON"));
    CHECK_EQ(wh_emit(f.e, NULL, NULL, "{}", 2, NULL), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "event type"));
    CHECK(!readable(fd));
    for (int i = 0; i < 4; i++) {
        char b[16];
        int n = snprintf(b, sizeof b, "{\"i\":%d}", i);
        CHECK_EQ(wh_emit(f.e, "t", NULL, b, (size_t)n, NULL), 0);
    }
    CHECK(readable(fd));                /* woken */
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), WH_E_FULL);
    CHECK(strstr(wh_last_error(f.e), "inbox is full"));
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.emitted, 0);
    CHECK_EQ(st.rejected, 3);
    CHECK_EQ(wh_timeout_ms(f.e), 0);
    tf_run_to_idle(&f, 1000);
    CHECK_EQ(f.delivered, 4);
    CHECK_STR(f.out[0].data, "{\"i\":0}");
    CHECK_STR(f.out[3].data, "{\"i\":3}");
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.emitted, 4);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, "fixed-id"), 0); /* room again */
    /* accepted events are never lost: freeing the engine reports them */
    tf_done(&f);
}

static void inbox_events_reported_at_free(void)
{
    tf f;
    wh_engine_options o;
    tf_options(&f, &o, 7);
    o.emit_any_thread = 1;
    tf_start(&f, &o);
    tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 0);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 0);
    wh_engine_free(f.e);
    f.e = NULL;
    CHECK_EQ(f.dead, 2);           /* reported, cancelled: nothing silent */
    tf_done(&f);
}

/* The pull API: outcomes kept with their strings, oldest first; valid
 * until the next call, also after the endpoint is gone. */
static void pull_outcomes(void)
{
    tf f;
    wh_engine_options o;
    tf_options(&f, &o, 8);
    o.outcome_queue = 1;
    tf_start(&f, &o);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = TF_URL;
    ep.id = "ep-pull";
    int h = tf_add(&f, &ep);
    wh_outcome out;
    CHECK_EQ(wh_outcome_next(f.e, &out), 0);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 1), WH_OK);
    CHECK_EQ(wh_emit(f.e, "a.b", "room-1", "{\"n\":1}", 7, "id-1"), 1);
    CHECK_EQ(wh_emit(f.e, "a.b", NULL, "{\"n\":2}", 7, "id-2"), 1);
    CHECK_EQ(wh_poll(f.e, 0), 2);   /* counted, not called back */
    CHECK_EQ(f.n_out, 0);
    CHECK_EQ(wh_endpoint_remove(f.e, h), WH_OK); /* the retry is cancelled */
    CHECK_EQ(wh_outcome_next(f.e, &out), 1);
    CHECK_EQ(out.kind, WH_RETRY);
    CHECK_EQ(out.http_status, 500);
    CHECK_STR(out.ev.id, "id-1");
    CHECK_STR(out.ev.channel, "room-1");
    CHECK_STR(out.endpoint_id, "ep-pull");
    CHECK_STR(out.url, TF_URL);
    CHECK(strstr(out.error_msg, "500"));
    CHECK_EQ(wh_outcome_next(f.e, &out), 1);
    CHECK_EQ(out.kind, WH_DELIVERED);
    CHECK_STR(out.ev.id, "id-2");
    CHECK(out.ev.channel == NULL);
    CHECK_EQ((int)out.ev.data_len, 7);
    CHECK(memcmp(out.ev.data, "{\"n\":2}", 7) == 0);
    CHECK_EQ(wh_outcome_next(f.e, &out), 1);
    CHECK_EQ(out.kind, WH_DEAD);     /* id-1 cancelled by the removal */
    CHECK_EQ(out.error, WH_E_CANCELLED);
    CHECK_EQ(wh_outcome_next(f.e, &out), 0);
    CHECK_EQ(wh_outcome_next(f.e, NULL), WH_E_INVAL);
    tf_done(&f);
    tf f2;
    tf_init(&f2, 9);
    CHECK_EQ(wh_outcome_next(f2.e, &out), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f2.e), "outcome_queue"));
    tf_done(&f2);
}

/* wh_tick: nothing due -> 0 and nothing touched; otherwise delivers. */
static void tick_delivers(void)
{
    tf f;
    tf_init(&f, 10);
    tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_tick(f.e, 500), 0);
    CHECK_EQ(wh_loop_attached(f.e), NULL);
    for (int i = 0; i < 10; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_tick(f.e, 100000), 10);
    CHECK_EQ(f.delivered, 10);
    CHECK_EQ(wh_work_due(f.e), 0);
    CHECK_EQ(wh_tick(f.e, 500), 0);
    tf_done(&f);
}

/* wh_poll_budget: a spent budget stops starting requests between groups of
 * at most 4 (at least one group per call), what is left stays due and
 * leaves in emit order; wh_tick with no budget moves 4 at a time. */
static void poll_budget_bounds_requests_started(void)
{
    tf f;
    tf_init(&f, 11);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = TF_URL;
    ep.max_in_flight = 64;
    tf_add(&f, &ep);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 10, NULL, 0), WH_OK); /* answers after 10 ms */
    char body[32];
    for (int i = 0; i < 20; i++) {
        int n = snprintf(body, sizeof body, "{\"i\":%d}", i);
        CHECK_EQ(wh_emit(f.e, "t", NULL, body, (size_t)n, NULL), 1);
    }
    wh_stats st;
    CHECK_EQ(wh_poll_budget(f.e, 0), 0);
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.requests, 4);
    CHECK_EQ(st.queued, 16);
    CHECK_EQ(wh_work_due(f.e), 1);
    CHECK_EQ(wh_timeout_ms(f.e), 0); /* the rest is due now */
    CHECK_EQ(wh_tick(f.e, 0), 0);
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.requests, 8);
    CHECK_EQ(wh_poll_budget(f.e, 10 * 1000 * 1000), 0); /* 10 s: all of it */
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.requests, 20);
    CHECK_EQ(st.queued, 0);
    for (size_t i = 0; i < 20; i++) {
        wh_scripted_request q = tf_req(&f, i);
        int n = snprintf(body, sizeof body, "{\"i\":%d}", (int)i);
        CHECK_EQ(q.body_len, (size_t)n);
        CHECK(memcmp(q.body, body, (size_t)n) == 0);
    }
    tf_run_to_idle(&f, 1000);
    CHECK_EQ(f.delivered, 20);
    CHECK_EQ(wh_poll_budget(f.e, -1), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "budget_us") != NULL);
    CHECK_EQ(wh_poll_budget(NULL, 0), WH_E_INVAL);
    tf_done(&f);
}

/* A version-1 transport on a loop: the timer follows its timeout_ms and
 * the timer calls its perform. */
static wh_transport v1;
static void v1_hooks(wh_transport *inner)
{
    v1 = *inner;
    v1.version = 1;
}

static void version1_transport_on_loop(void)
{
    tf f;
    wh_engine_options o;
    tf_options(&f, &o, 11);
    v1_hooks(f.t);
    o.transport = &v1;
    tf_start(&f, &o);
    tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 30, NULL, 0), WH_OK);
    rl r;
    rl_attach(&r, &f);
    CHECK_EQ(r.n, 1);              /* only the wakeup fd: no sockets from v1 */
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    rl_run(&r, 10);
    CHECK_EQ(f.delivered, 1);
    CHECK_EQ(f.out[0].at, TF_T0 + 30);
    CHECK_EQ(r.due, -1);
    tf_done(&f);
}

TH_MAIN(TH_CASE(hooks_idle_and_lone_event), TH_CASE(hooks_exact_retry_times),
        TH_CASE(hooks_completion_starts_next_in_same_call), TH_CASE(hooks_attach_rules),
        TH_CASE(fd_readable_exactly_when_work), TH_CASE(inbox_bounded_single_thread),
        TH_CASE(inbox_events_reported_at_free), TH_CASE(pull_outcomes),
        TH_CASE(tick_delivers), TH_CASE(version1_transport_on_loop),
        TH_CASE(poll_budget_bounds_requests_started))
