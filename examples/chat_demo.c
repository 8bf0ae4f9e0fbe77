/* chat_demo — a simulated chat server that reports what happens in its rooms
 * through webhooks, using only the public libwebhook API.
 *
 *   chat_demo --url URL --secret whsec_... [--seconds 4] [--rate 500]
 *
 * For --seconds it emits about --rate events per second -- rooms created and
 * closed, members joining and leaving, messages sent (most of the traffic)
 * and reacted to -- each on channel "room-<n>", to one endpoint signed with
 * the secret (Standard Webhooks).  The engine runs inside this loop: the
 * program calls wh_poll() between events and lets it wait a few ms when
 * ahead of schedule.  A progress line goes to stderr; at the end it drains
 * with wh_flush() and prints on stdout
 *   {"emitted":N,"delivered":N,"retries":N,"dead":N}
 * Exit status 0 only when every event was delivered and none died. */
#include <webhook/webhook.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- outcome counters (filled by the callback) ----------------------------- */

typedef struct counters {
    uint64_t delivered, retries, dead;
    unsigned dead_printed;
    int tty;            /* stderr is a terminal: end the progress line first */
} counters;

static void on_outcome(void *user, const wh_outcome *o)
{
    counters *c = user;
    switch (o->kind) {
    case WH_DELIVERED: c->delivered++; break;
    case WH_RETRY: c->retries++; break;
    case WH_DEAD:
        c->dead++;
        if (c->dead_printed++ < 5) /* say why, but do not flood */
            fprintf(stderr, "%schat_demo: event %s dead after %" PRIu32
                    " attempt(s): %s\n", c->tty ? "\n" : "", o->ev.id,
                    o->attempt, o->error_msg);
        break;
    }
}

static void on_log(void *user, wh_log_level level, const char *msg)
{
    const counters *c = user;
    fprintf(stderr, "%schat_demo: libwebhook %s: %s\n", c->tty ? "\n" : "",
            level == WH_LOG_ERROR ? "error" : "warning", msg);
}

/* ---- time ----------------------------------------------------------------------- */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the simulated chat ------------------------------------------------------------ */

#define MAX_ROOMS 24
#define MAX_MEMBERS 12
#define N_USERS 400

typedef struct room {
    int id;                  /* 0: slot unused */
    int members[MAX_MEMBERS];
    int n_members;
    uint64_t last_message;   /* id of the room's latest message, 0 if none */
} room;

typedef struct chat {
    uint64_t rng;
    room rooms[MAX_ROOMS];
    int n_open;
    int next_room;
    uint64_t next_message;
} chat;

static uint32_t rnd(chat *c, uint32_t n) /* uniform enough in [0, n) */
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return (uint32_t)((c->rng >> 11) % n);
}

static const char *const texts[] = {
    "hi all", "good morning!", "can everyone hear me?", "brb",
    "the build is green again", "who is taking notes today?",
    "lgtm, merging", "let's move this to the thread", "thanks :)",
    "I'll share my screen", "sounds good", "ping me when you are back",
    "see you tomorrow", "new mockups are up", "+1",
};
static const char *const reactions[] = {
    "thumbsup", "heart", "laughing", "tada", "eyes", "rocket",
};
static const char *const titles[] = {
    "standup", "design review", "support", "random", "release", "oncall",
};

static room *pick_open_room(chat *c)
{
    int k = (int)rnd(c, (uint32_t)c->n_open);
    for (int i = 0; i < MAX_ROOMS; i++)
        if (c->rooms[i].id && k-- == 0) return &c->rooms[i];
    return NULL;
}

static int is_member(const room *r, int user)
{
    for (int i = 0; i < r->n_members; i++)
        if (r->members[i] == user) return 1;
    return 0;
}

/* Choose the next event and write its type, channel and JSON payload. */
static void next_event(chat *c, int64_t ts, const char **type, char *channel,
                       size_t chsize, char *json, size_t jsize)
{
    enum { CREATED, JOINED, SENT, REACTED, LEFT, CLOSED } kind;
    char body[448]; /* the event's fields; "type" is put in front below */
    uint32_t p = rnd(c, 100);
    kind = p < 66 ? SENT : p < 76 ? REACTED : p < 86 ? JOINED
         : p < 93 ? LEFT : p < 97 ? CREATED : CLOSED;
    if (c->n_open < 3 && rnd(c, 4) == 0) kind = CREATED;
    if (c->n_open == 0) kind = CREATED;
    if (kind == CREATED && c->n_open == MAX_ROOMS) kind = SENT;
    if (kind == CLOSED && c->n_open <= 2) kind = SENT;

    room *r = NULL;
    if (kind == CREATED) {
        for (int i = 0; i < MAX_ROOMS && !r; i++)
            if (!c->rooms[i].id) r = &c->rooms[i];
        if (r) {
            memset(r, 0, sizeof *r);
            r->id = ++c->next_room;
            r->members[r->n_members++] = 1 + (int)rnd(c, N_USERS);
            c->n_open++;
        } else {
            kind = SENT;
        }
    }
    if (!r) r = pick_open_room(c);
    if (kind == SENT && r->n_members == 0) kind = JOINED;
    if (kind == REACTED && (r->last_message == 0 || r->n_members == 0))
        kind = r->n_members ? SENT : JOINED;
    if (kind == JOINED && r->n_members == MAX_MEMBERS) kind = SENT;
    if (kind == LEFT && r->n_members <= 1) kind = SENT;
    if (kind == SENT && r->n_members == 0) kind = JOINED;

    snprintf(channel, chsize, "room-%d", r->id);
    int user = r->n_members ? r->members[rnd(c, (uint32_t)r->n_members)] : 0;
    switch (kind) {
    case CREATED:
        *type = "room.created";
        snprintf(body, sizeof body,
                 "{\"room_id\":\"room-%d\",\"created_by\":\"u-%d\","
                 "\"title\":\"%s\",\"ts\":%" PRId64 "}",
                 r->id, r->members[0],
                 titles[rnd(c, sizeof titles / sizeof titles[0])], ts);
        break;
    case JOINED: {
        int u;
        do u = 1 + (int)rnd(c, N_USERS); while (is_member(r, u));
        r->members[r->n_members++] = u;
        *type = "member.joined";
        snprintf(body, sizeof body,
                 "{\"room_id\":\"room-%d\",\"user_id\":\"u-%d\","
                 "\"members\":%d,\"ts\":%" PRId64 "}",
                 r->id, u, r->n_members, ts);
        break;
    }
    case SENT:
        r->last_message = ++c->next_message;
        *type = "message.sent";
        snprintf(body, sizeof body,
                 "{\"room_id\":\"room-%d\",\"message_id\":\"m-%" PRIu64 "\","
                 "\"user_id\":\"u-%d\",\"text\":\"%s\",\"ts\":%" PRId64 "}",
                 r->id, r->last_message, user,
                 texts[rnd(c, sizeof texts / sizeof texts[0])], ts);
        break;
    case REACTED:
        *type = "message.reacted";
        snprintf(body, sizeof body,
                 "{\"room_id\":\"room-%d\",\"message_id\":\"m-%" PRIu64 "\","
                 "\"user_id\":\"u-%d\",\"reaction\":\"%s\",\"ts\":%" PRId64 "}",
                 r->id, r->last_message, user,
                 reactions[rnd(c, sizeof reactions / sizeof reactions[0])], ts);
        break;
    case LEFT: {
        int i = (int)rnd(c, (uint32_t)r->n_members);
        int u = r->members[i];
        r->members[i] = r->members[--r->n_members];
        *type = "member.left";
        snprintf(body, sizeof body,
                 "{\"room_id\":\"room-%d\",\"user_id\":\"u-%d\","
                 "\"members\":%d,\"ts\":%" PRId64 "}",
                 r->id, u, r->n_members, ts);
        break;
    }
    case CLOSED:
        *type = "room.closed";
        snprintf(body, sizeof body,
                 "{\"room_id\":\"room-%d\",\"closed_by\":\"u-%d\","
                 "\"members\":%d,\"ts\":%" PRId64 "}",
                 r->id, user, r->n_members, ts);
        r->id = 0;
        c->n_open--;
        break;
    }
    snprintf(json, jsize, "{\"type\":\"%s\",%s", *type, body + 1);
}

/* ---- progress line ------------------------------------------------------------------ */

static void progress(const wh_engine *e, uint64_t emitted, const counters *c,
                     int tty, int final)
{
    wh_stats st;
    if (wh_stats_get(e, &st) != WH_OK) memset(&st, 0, sizeof st);
    fprintf(stderr, "%semitted %" PRIu64 "  delivered %" PRIu64 "  retries %"
            PRIu64 "  dead %" PRIu64 "  in flight %" PRIu64 "%s",
            tty ? "\r" : "", emitted, c->delivered, c->retries, c->dead,
            st.in_flight, tty && !final ? "   " : "   \n");
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: chat_demo --url URL --secret whsec_... "
                    "[--seconds 4] [--rate 500]\n");
    exit(2);
}

static long parse_num(const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || v < min || v > max) usage();
    return v;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *secret = NULL;
    long seconds = 4, rate = 500;
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!next) usage();
        if (strcmp(argv[i], "--url") == 0) url = next;
        else if (strcmp(argv[i], "--secret") == 0) secret = next;
        else if (strcmp(argv[i], "--seconds") == 0) seconds = parse_num(next, 0, 3600);
        else if (strcmp(argv[i], "--rate") == 0) rate = parse_num(next, 1, 1000000);
        else usage();
        i++;
    }
    if (!url || !secret) usage();

    counters cnt;
    memset(&cnt, 0, sizeof cnt);
    cnt.tty = isatty(2);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = on_outcome;
    eo.outcome_user = &cnt;
    eo.on_log = on_log;
    eo.log_user = &cnt;
    eo.log_level = WH_LOG_WARN;
    int err = WH_OK;
    wh_engine *e = wh_engine_new(&eo, &err);
    if (!e) {
        fprintf(stderr, "chat_demo: wh_engine_new: %s\n", wh_strerror(err));
        return 1;
    }

    const char *secrets[] = {secret};
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = "chat-webhooks";
    ep.url = url;
    ep.secrets = secrets;
    ep.n_secrets = 1;
    int rc = wh_endpoint_add(e, &ep);
    if (rc < 0) {
        fprintf(stderr, "chat_demo: wh_endpoint_add: %s\n", wh_last_error(e));
        wh_engine_free(e);
        return 1;
    }

    chat c;
    memset(&c, 0, sizeof c);
    c.rng = (uint64_t)clock_ms(CLOCK_REALTIME) * 2654435761u | 1;
    const int tty = cnt.tty;
    uint64_t emitted = 0;
    int failed = 0;
    const uint64_t total = (uint64_t)seconds * (uint64_t)rate;
    const int64_t t0 = clock_ms(CLOCK_MONOTONIC);
    int64_t next_progress = t0 + (tty ? 100 : 1000);
    const char *type = NULL;      /* the next event, kept until accepted */
    char channel[32], json[512];
    while (emitted < total) {
        int64_t now = clock_ms(CLOCK_MONOTONIC);
        if (now >= next_progress) {
            progress(e, emitted, &cnt, tty, 0);
            next_progress = now + (tty ? 100 : 1000);
        }
        /* events due by now on the schedule; the last one at `seconds` */
        uint64_t due = (uint64_t)(now - t0) * (uint64_t)rate / 1000 + 1;
        if (due > total) due = total;
        if (emitted >= due) { /* ahead of schedule: let the engine work */
            wh_poll(e, 5);
            continue;
        }
        if (!type)
            next_event(&c, clock_ms(CLOCK_REALTIME), &type, channel,
                       sizeof channel, json, sizeof json);
        rc = wh_emit(e, type, channel, json, strlen(json), NULL);
        if (rc == WH_E_FULL) { /* backpressure: drain a little, retry it */
            wh_poll(e, 5);
            continue;
        }
        type = NULL;
        if (rc < 0) {
            fprintf(stderr, "%schat_demo: wh_emit: %s\n", tty ? "\n" : "",
                    wh_last_error(e));
            failed = 1;
            break;
        }
        emitted++;
        wh_poll(e, 0);
    }
    progress(e, emitted, &cnt, tty, 0);

    rc = wh_flush(e, 10000);
    progress(e, emitted, &cnt, tty, 1);
    if (rc != WH_OK)
        fprintf(stderr, "chat_demo: wh_flush: %s\n", wh_strerror(rc));
    wh_engine_free(e); /* anything left is reported dead (counted) */

    printf("{\"emitted\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"retries\":%"
           PRIu64 ",\"dead\":%" PRIu64 "}\n",
           emitted, cnt.delivered, cnt.retries, cnt.dead);
    fflush(stdout);
    return !failed && cnt.delivered == emitted && cnt.dead == 0 ? 0 : 1;
}
