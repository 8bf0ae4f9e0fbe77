#!/usr/bin/env python3
"""The host-loop benchmarks (issue 11): run BUILD_DIR/bench/loop_bench against a
local nginx (bench/run.py's) and write bench/LOOP.md.

    python3 bench/loop_run.py BUILD_DIR [--quick] [--out bench/LOOP.md]

Figures are medians of `reps` runs (1 with --quick); ratios are between
figures of this same run."""

import datetime
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as suite  # noqa: E402  (Nginx, machine, log)


def lb(build, *args, timeout=120):
    exe = os.path.join(build, "bench", "loop_bench")
    out = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"loop_bench {' '.join(map(str, args))}: {out.stderr}")
    r = {}
    for line in out.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            r[k] = float(v)
    return r


def medians(rows):
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    build = os.path.abspath(args[0])
    quick = "--quick" in args
    out_path = os.path.join(HERE, "LOOP.md")
    if "--out" in args:
        out_path = args[args.index("--out") + 1]
    reps = 1 if quick else 3
    idle_s = 2 if quick else 5
    lat_s = 2 if quick else 5
    frames = 120 if quick else 300
    n_thr = 400000 if quick else 2000000
    R = {"load": os.getloadavg()[0]}
    started = datetime.datetime.now(datetime.timezone.utc)
    tmp = tempfile.mkdtemp(prefix="whloop-nginx-")
    ng = suite.Nginx(tmp)
    try:
        url = ng.start()
        suite.log(f"nginx on {url}")
        R["idle"] = {k: medians([lb(build, "idle", k, idle_s) for _ in range(reps)])
                     for k in ("uv", "poll1ms", "fd", "tick")}
        for k, v in R["idle"].items():
            suite.log(f"idle {k}: {v}")
        R["lat"] = {}
        for rate in (2000, 20000):
            for k in ("uv", "poll1ms"):   # interleaved: the same conditions
                R["lat"][(k, rate)] = medians([lb(build, "lat", k, rate, lat_s, url)
                                               for _ in range(reps)])
                suite.log(f"lat {k} {rate}/s: {R['lat'][(k, rate)]}")
        R["lone"] = lb(build, "lone", url, 50)
        R["game"] = {m: medians([lb(build, "game", m, frames, 500, url) for _ in range(reps)])
                     for m in GAME_MODES}
        for k, v in R["game"].items():
            suite.log(f"game {k}: {v}")
        R["thr"] = {n: medians([lb(build, "threads", n, n_thr) for _ in range(reps)])
                    for n in (1, 4)}
        suite.log(f"threads: {R['thr']}")
    finally:
        ng.stop()
    write(R, out_path, started, reps, idle_s, lat_s, frames, n_thr)
    suite.log(f"wrote {out_path}")
    return 0


GAME_MODES = ("single", "single-lean", "batch", "batch-lean")
GAME_NAMES = {"single": "single, libcurl", "single-lean": "single, lean",
              "batch": "batch, libcurl", "batch-lean": "batch, lean"}


def ok(c):
    return "**met**" if c else "**not met**"


def write(R, path, started, reps, idle_s, lat_s, frames, n_thr):
    I, L, G, T = R["idle"], R["lat"], R["game"], R["thr"]
    ratio = T[4]["events_per_s"] / T[1]["events_per_s"]
    uv2, uv20 = L[("uv", 2000)], L[("uv", 20000)]
    p2, p20 = L[("poll1ms", 2000)], L[("poll1ms", 20000)]
    lines = [
        "# libwebhook host-loop benchmarks (issue 11)", "",
        f"Run {started:%Y-%m-%d %H:%M UTC} by `bench/loop_run.py` (`make bench`); medians of "
        f"{reps} run(s) each, nginx on 127.0.0.1 answering 204; load average "
        f"{R['load']:.1f} at the start (other work shares the cores: tail latencies move "
        "with it).", "",
        "## Summary against the targets", "",
        "| Target | Measured | |", "|---|---|---|",
        f"| idle: 0 % CPU, no wakeups (libuv adapter) | {I['uv']['cpu_pct']:.3f} % CPU, "
        f"{I['uv']['wakeups_per_s']:.1f} wakeups/s | {ok(I['uv']['wakeups_per_s'] == 0)} |",
        f"| libuv adapter at 2,000 events/s: p50 ≤ 0.2 ms, p99 ≤ 1 ms | p50 {uv2['p50_ms']:.3f} ms, "
        f"p99 {uv2['p99_ms']:.3f} ms | {ok(uv2['p50_ms'] <= 0.2 and uv2['p99_ms'] <= 1)} |",
        *[f"| 60 Hz, 500 events/tick, all delivered, p99 in wh_tick ≤ 0.5 ms ({GAME_NAMES[m]}"
          f"{', 64 in flight' if m.startswith('single') else ''}) | "
          f"{G[m]['delivered_in_frames']:.0f} of {G[m]['emitted']:.0f} by the last drain frame, p99 "
          f"{G[m]['tick_p99_ms']:.3f} ms | "
          f"{ok(G[m]['delivered_in_frames'] == G[m]['emitted'] and G[m]['tick_p99_ms'] <= 0.5)} |"
          for m in GAME_MODES],
        f"| 4 threads emit_any_thread ≥ 0.6× one thread, producer p99 ≤ 5 µs, 0 lost | "
        f"{ratio:.2f}×, a wh_emit call p99 {T[4]['call_p99_us']:.2f} µs (to get an event accepted, "
        f"WH_E_FULL retries included: p99 {T[4]['producer_p99_us']:.2f} µs), {T[4]['lost']:.0f} lost | "
        f"{ok(ratio >= 0.6 and T[4]['call_p99_us'] <= 5 and T[4]['lost'] == 0)} |",
        "",
        f"## 1. Idle ({idle_s} s, an endpoint configured, nothing emitted)", "",
        "| integration | CPU | wakeups/s |", "|---|---|---|",
        f"| libuv adapter (`wh_libuv_attach`) | {I['uv']['cpu_pct']:.3f} % | {I['uv']['wakeups_per_s']:.1f} |",
        f"| libuv 1 ms timer calling `wh_poll(e, 0)` | {I['poll1ms']['cpu_pct']:.3f} % | {I['poll1ms']['wakeups_per_s']:.1f} |",
        f"| `poll(2)` on `wh_fd` | {I['fd']['cpu_pct']:.3f} % | {I['fd']['wakeups_per_s']:.1f} |",
        f"| 60 Hz loop with `wh_tick` (ticks that had work) | {I['tick']['cpu_pct']:.3f} % | {I['tick']['wakeups_per_s']:.1f} |",
        "",
        "The tick loop's CPU is its own 60 Hz frame (nanosleep); `wh_tick` made no system call.", "",
        f"## 2. emit → 2xx through the libuv adapter vs a 1 ms `wh_poll(0)` timer ({lat_s} s each, "
        "64 in flight, interleaved)", "",
        "| rate | integration | delivered | p50 | p99 | CPU s |", "|---|---|---|---|---|---|",
    ]
    for rate in (2000, 20000):
        for k, name in (("uv", "libuv adapter"), ("poll1ms", "1 ms wh_poll timer")):
            r = L[(k, rate)]
            lines.append(f"| {rate:,}/s | {name} | {r['delivered']:.0f} | {r['p50_ms']:.3f} ms | "
                         f"{r['p99_ms']:.3f} ms | {r['cpu_s']:.2f} |")
    lo = R["lone"]
    lines += [
        "", f"A lone event through the libuv adapter (50 times, the loop idle in between): "
        f"p50 {lo['lone_p50_ms']:.3f} ms, max {lo['lone_max_ms']:.3f} ms emit → 2xx.", "",
        f"## 3. 60 Hz game loop, 500 events per tick, `wh_tick(e, 500)` ({frames} frames)", "",
        "| mode, transport | delivered in the frames | requests | delivered/s | frames to drain after | wh_tick p50 | p99 | max | CPU in wh_tick p50 | p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in GAME_MODES:
        g = G[m]
        lines.append(f"| {GAME_NAMES[m]} | {g['delivered_in_frames']:.0f} of {g['emitted']:.0f} | {g['requests']:.0f} | "
                     f"{g['delivered_per_s']:,.0f} | {g['drain_frames']:.0f} | {g['tick_p50_ms']:.3f} ms | "
                     f"{g['tick_p99_ms']:.3f} ms | {g['tick_max_ms']:.3f} ms | {g['tick_cpu_p50_ms']:.3f} ms | "
                     f"{g['tick_cpu_p99_ms']:.3f} ms |")
    lines += [
        "", f"## 4. emit_any_thread ({n_thr:,} events, scripted transport, batch mode; the engine "
        "thread drains on `wh_fd`)", "",
        "| producers | events/s | ÷ 1 thread | accepted p50 | p99 | one call p50 | p99 | WH_E_FULL retries | lost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in (1, 4):
        t = T[n]
        lines.append(f"| {n} | {t['events_per_s']:,.0f} | {t['events_per_s'] / T[1]['events_per_s']:.2f} | "
                     f"{t['producer_p50_us']:.2f} µs | {t['producer_p99_us']:.2f} µs | {t['call_p50_us']:.2f} µs | "
                     f"{t['call_p99_us']:.2f} µs | {t['fulls']:.0f} | {t['lost']:.0f} |")
    lines += ["", "Producer times are sampled every 16th event: \"accepted\" from its first `wh_emit` "
              "call to the one that took it (retries after WH_E_FULL, with a `sched_yield` between, "
              "included: the time the producer waited), \"one call\" that first call alone (what a "
              "call costs, whether it returns the event's index or WH_E_FULL). The target is read on the "
              "call: `wh_emit` never waits (a full inbox returns WH_E_FULL at once), so the call "
              "is how long a producer is held, the figure the mutex design got wrong (5-9 ms at "
              "p99 while the loop held the lock). Producers here emit as fast as they can, more "
              "than one engine thread drains, so the inbox is full much of the time and the "
              "time to acceptance is the consumer's pace, not the producer's cost. Five threads "
              "share 2 cores: a producer preempted inside a sample shows in the tail.", "",
              "## Notes on the targets not met", "",
              "* Single mode at 60 Hz × 500 events is 30,000 signed requests/s. One request costs "
              "about 7-8 µs of CPU over the lean transport (the same as `wrk`'s own cost per request "
              "on this machine, bench/RESULTS.md §11) and about 19 µs over libcurl: 0.23-0.6 "
              "CPU-seconds per second, 3.8-10 ms of every 16.7 ms frame, so no 0.5 ms budget can "
              "hold it. `wh_tick` stops starting requests once its budget is spent "
              "(`wh_poll_budget`, at most 4 requests over), so its time follows the budget plus the "
              "I/O that was already ready (up to 64 answers), not the backlog; what the frames "
              "cannot hold waits, in order, for the next frames (\"frames to drain\", capped at "
              "1,200; the rest is delivered by a final `wh_flush`, outside these figures, nothing "
              "lost). A game that emits 30,000 single requests a second gives `wh_tick` a budget "
              "that holds them (about 4 ms per frame over the lean transport) or uses batch mode: "
              "one request per tick.",
              "* Batch mode: a tick builds, signs and sends one 500-event body and "
              "takes the previous answer (500 outcomes); its CPU column is the thread's own CPU "
              "time inside `wh_tick`. Where the wall-clock p99 is far above the CPU p99, the "
              "difference is the thread waiting for a core (the machine's other load), not work "
              "or waiting in the library.",
              "* Latency p99 at 2,000 events/s is sensitive to other processes on the 2 cores: "
              "on a quiet machine it measured 0.3-0.7 ms (p50 0.12 ms) in single runs.", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
