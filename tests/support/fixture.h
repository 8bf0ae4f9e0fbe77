/* The shared engine fixture of the unit tests: an engine on a manual clock
 * with the scripted transport, recording every outcome and health change.
 *
 *     tf f;
 *     tf_init(&f, 42);                 // clock at TF_T0, wall at TF_WALL0
 *     tf_add_url(&f, TF_URL);
 *     CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
 *     tf_run_to_idle(&f, 60000);       // simulated time, no sleeping
 *     CHECK_EQ(f.out[0].kind, WH_DELIVERED);
 *     tf_done(&f);
 *
 * The scripted transport answers 200 at once unless rules say otherwise
 * (wh_scripted_rule(f.t, ...)).  Nothing here touches the network. */
#ifndef TH_FIXTURE_H
#define TH_FIXTURE_H

#include "harness.h"
#include <webhook/webhook.h>
#include <webhook/test.h>

#define TF_WALL0 1700000000000LL /* wall clock at start: 2023-11-14T22:13:20Z */
#define TF_T0 1000               /* monotonic clock at start */
#define TF_URL "http://127.0.0.1:9/hook" /* never contacted */
#define TF_MAX_OUT 512
#define TF_MAX_HEALTH 32

/* One recorded outcome (strings truncated to the buffers). */
typedef struct tf_outcome {
    wh_outcome_kind kind;
    int endpoint;
    uint32_t attempt;
    int http_status, error;
    int64_t retry_in_ms;
    int64_t at;               /* manual clock when it was reported */
    char endpoint_id[64];
    char id[160];             /* delivery id */
    char data[256];           /* payload */
} tf_outcome;

/* One recorded health change. */
typedef struct tf_health {
    int endpoint;
    wh_ep_state state, previous;
    int http_status;
    uint32_t failures;        /* consecutive_failures */
    int64_t resume_at;        /* resume_at_ms */
    int64_t at;               /* manual clock when it was reported */
    char reason[128];
} tf_health;

typedef struct tf tf;
struct tf {
    wh_manual_clock *clock;
    wh_transport *t;          /* scripted; owned by the fixture */
    wh_engine *e;
    tf_outcome out[TF_MAX_OUT];   /* the first TF_MAX_OUT outcomes */
    size_t n_out;                 /* all outcomes (may exceed TF_MAX_OUT) */
    tf_outcome latest;            /* the latest outcome */
    tf_outcome last[4];           /* latest outcome of each kind (index:
                                     WH_DELIVERED, WH_RETRY, WH_DEAD) */
    size_t delivered, retried, dead;
    tf_health health[TF_MAX_HEALTH];
    size_t n_health;
    /* Optional, called inside the engine's callback after recording. */
    void (*outcome_hook)(tf *f, const wh_outcome *o);
    void (*health_hook)(tf *f, const wh_health *h);
    void *user;               /* for the hooks */
};

/* Create the clock and the scripted transport and fill `o` with defaults
 * plus them, the recording callbacks and `seed`; the test may change `o`
 * before tf_start.  tf_init does both with the defaults. */
void tf_options(tf *f, wh_engine_options *o, uint64_t seed);
void tf_start(tf *f, const wh_engine_options *o);  /* fails the case on error */
void tf_init(tf *f, uint64_t seed);
void tf_done(tf *f);

/* Add an endpoint; fails the case (with wh_last_error) when refused. */
int tf_add(tf *f, const wh_endpoint_options *ep);
int tf_add_url(tf *f, const char *url);

/* Advance simulated time to each next deadline until nothing is queued or
 * in flight; fails the case if that is more than limit_ms away. */
void tf_run_to_idle(tf *f, int64_t limit_ms);
/* Poll through simulated time up to `until` (absolute clock time). */
void tf_run_until(tf *f, int64_t until);
/* The latest outcome (fails the case when there is none). */
const tf_outcome *tf_last(const tf *f);
/* Request i the scripted transport received (fails the case if none). */
wh_scripted_request tf_req(const tf *f, size_t i);

#endif
