#!/usr/bin/env python3
"""Writes bench/run.sh's Markdown report from its raw files (paths and metadata in the environment).

Exit status: 0 when every run was clean, 3 when errors were recorded (the report is written then
too), anything else when the report itself failed.
"""

import os
import re
import statistics
import sys

env = os.environ
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
UNIT_B = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
SATURATED = 0.90   # proxy CPU use at or above which the proxy was the bottleneck


def lat_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None


def parse_wrk(path):
    r = {"requests": None, "rps": None, "p50": None, "p99": None, "bytes": None, "secs": None,
         "sock": {}, "non2xx": 0}
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return r
    if m := re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+)(B|KB|MB|GB|TB) read", text, re.M):
        r["requests"] = int(m.group(1))
        r["secs"] = float(m.group(2)) * UNIT_S[m.group(3)]
        r["bytes"] = float(m.group(4)) * UNIT_B[m.group(5)]
    if m := re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M):
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        if m := re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M):
            r[key] = lat_ms(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        r["sock"] = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups()) if int(v)}
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        r["non2xx"] = int(m.group(1))
    return r


def busy_share(before, after):
    """(busy, irq) fractions of one CPU between two "busy irq total" /proc/stat snapshots."""
    b0, i0, t0 = map(int, before.split())
    b1, i1, t1 = map(int, after.split())
    return ((b1 - b0) / (t1 - t0), (i1 - i0) / (t1 - t0)) if t1 > t0 else (None, None)


clk = int(env["CLK_TCK"])
runs = []
with open(env["RUNS_TSV"]) as f:
    header = f.readline().rstrip("\n").split("\t")
    for line in f:
        row = dict(zip(header, line.rstrip("\n").split("\t")))
        w = parse_wrk(row["wrk_file"])
        ticks = int(row["ticks_after"]) - int(row["ticks_before"])
        alive = row["alive"] == "1"
        wall = int(row["wall_ns"]) / 1e9
        w["ticks"] = ticks
        w["cpu_us"] = ticks * 1e6 / clk / w["requests"] if w["requests"] and alive else None
        w["mibps"] = w["bytes"] / w["secs"] / 2**20 if w["bytes"] and w["secs"] else None
        w["use"] = ticks / clk / wall if wall > 0 else None      # proxy process CPU s / wall s
        w["cpu_p"], w["irq_p"] = busy_share(row["proxy_cpu_before"], row["proxy_cpu_after"])
        w["cpu_l"], w["irq_l"] = busy_share(row["load_cpu_before"], row["load_cpu_after"])
        load_use = int(row["load_ticks"]) / clk / wall if wall > 0 else None   # wrk + origin worker
        # other work: busy time of a core that was neither what this script runs there nor interrupts
        w["other_p"] = (max(0.0, w["cpu_p"] - w["irq_p"] - w["use"])
                        if None not in (w["cpu_p"], w["irq_p"], w["use"]) else None)
        w["other_l"] = (max(0.0, w["cpu_l"] - w["irq_l"] - load_use)
                        if None not in (w["cpu_l"], w["irq_l"], load_use) else None)
        w["retries"] = int(row["retries"])
        w.update(group=row["group"], scenario=row["scenario"], conns=row["conns"], proxy=row["proxy"],
                 run=int(row["run"]), wrk_rc=int(row["wrk_rc"]), alive=alive)
        runs.append(w)

scen_load = {}
with open(env["SCEN_TSV"]) as f:
    for line in f:
        g, s, l = line.rstrip("\n").split("\t")
        scen_load[(g, s)] = l


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def fmt_ms(x):
    if x is None:
        return "n/a"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def pct(x):
    return "n/a" if x is None else f"{100 * x:.0f}%"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def errors_of(rs):
    parts = []
    non2xx = sum(r["non2xx"] for r in rs)
    if non2xx:
        parts.append(f"{non2xx} non-2xx")
    sock = {}
    for r in rs:
        for k, v in r["sock"].items():
            sock[k] = sock.get(k, 0) + v
    parts += [f"{v} {k}" for k, v in sock.items()]
    bad_rc = [r["wrk_rc"] for r in rs if r["wrk_rc"] != 0]
    if bad_rc:
        parts.append(f"wrk exit {','.join(map(str, bad_rc))}")
    if any(not r["alive"] for r in rs):
        parts.append("process died")
    if any(r["requests"] is None for r in rs):
        parts.append("no wrk result")
    return ", ".join(parts)


KEYS = ("rps", "mibps", "p50", "p99", "cpu_us", "use", "cpu_p", "irq_p", "cpu_l", "other_p", "other_l")
dead = {"nginx": env.get("REPORT_DEAD_NGX", ""), "gatehouse": env.get("REPORT_DEAD_GH", ""),
        "nginx-x2": env.get("REPORT_DEAD_NGX2", "")}


def aggregate(group, scen, proxies):
    """Per proxy: medians over its runs; plus the error texts of the scenario."""
    agg, errs = {}, []
    for p in proxies:
        rs = [r for r in runs if r["group"] == group and r["scenario"] == scen and r["proxy"] == p]
        ok = [r for r in rs if r["alive"]]   # a run during which the proxy died is not a measurement
        agg[p] = {k: med([r[k] for r in ok]) for k in KEYS}
        e = errors_of(rs)
        if not rs:
            e = "not measured" + (f" ({dead[p]})" if dead.get(p) else "")
        if e:
            errs.append(f"{p}: {e}")
    return agg, errs


def bottleneck(a):
    """What limited the run, from the medians: the proxy (its core saturated) or what else."""
    if a["use"] is None:
        return "n/a"
    if a["use"] >= SATURATED:
        return "proxy"
    why = []
    if (a["other_p"] or 0) >= 0.10:
        why.append(f"CPU {env['PROXY_CPU']} shared")
    if (a["other_l"] or 0) >= 0.10:
        why.append(f"CPU {env['LOAD_CPU']} shared")
    if a["cpu_l"] is not None and a["cpu_l"] >= 0.95:
        why.append("load core")
    return " + ".join(why) or "?"


def scen_label(s):
    path, scheme, conns, _ = env["REPORT_SCEN_" + s.replace("-", "_")].split()
    return f"{s} ({scheme} {path})", conns


reps = int(env["BENCH_REPEATS"])
out = []
P = out.append
any_errors = False
P("# gatehouse vs nginx: reverse proxy benchmark")
P("")
P(f"- date: {env['REPORT_DATE']}")
P(f"- command: `{env['REPORT_CMD']}`")
P(f"- machine: {env['REPORT_NPROC']} CPUs, {env['REPORT_CPU']}, Linux {env['REPORT_KERNEL']}; "
  f"load average (1/5/15 min) {env['REPORT_LOAD']}")
P(f"- versions: {env['REPORT_NGINX']}; {env['REPORT_WRK']}; {env['REPORT_OPENSSL']}"
  + (f"; {env['REPORT_HAPROXY']}" if env.get("REPORT_HAPROXY") else "")
  + (f"; {env['REPORT_STRACE']}" if env.get("REPORT_STRACE") else ""))
P(f"- gatehouse: {env['REPORT_GH']}")
P(f"- pinning (checked on every thread): {env['REPORT_PIN']}; the proxy not being measured is idle")
P(f"- each proxy: ONE worker; origin: nginx, 1 worker, sendfile; `wrk -t1 --latency`; ports: {env['REPORT_PORTS']}")
if env.get("REPORT_QUIET"):
    P(f"- other work on the machine: {env['REPORT_QUIET']}")
P(f"- TLS negotiated by wrk's OpenSSL: gatehouse {env['REPORT_TLS_GH'] or 'n/a'}; nginx {env['REPORT_TLS_NGX'] or 'n/a'}")
P(f"- each figure: MEDIAN of {reps} interleaved {env['BENCH_SECONDS']} s runs per proxy"
  + (" (with 2 runs: their mean)" if reps == 2 else "")
  + f", after {env['BENCH_WARMUP']} s of unrecorded warm-up; every ratio is **gatehouse / nginx**")
load_before = float(env["REPORT_LOAD"].split()[0])
if load_before > int(env["REPORT_NPROC"]) / 2:
    P("")
    P(f"> **Warning:** the 1-minute load average was {load_before:.2f} on {env['REPORT_NPROC']} CPUs when the "
      "benchmark started: other processes may have competed for the CPUs (the column \"CPU 0 other\" "
      "below shows how much, run by run). CPU µs/req is the least affected figure; req/s and latency are "
      "not reliable in runs with other work. Rerun on a quiet machine (BENCH_QUIET_WAIT helps) for firm figures.")
P("")

# --- Main tables ------------------------------------------------------------------------------
scenarios = env["REPORT_SCENARIOS"].split()
P("## Cost and throughput (one core each)")
P("")
P("| scenario | wrk -c | CPU µs/req gatehouse | CPU µs/req nginx | **ratio** | req/s gatehouse | req/s nginx "
  "| **ratio** | MiB/s gatehouse | MiB/s nginx | ratio | errors |")
P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
main_agg = {}
for s in scenarios:
    label, conns = scen_label(s)
    agg, errs = aggregate("main", s, ("gatehouse", "nginx"))
    main_agg[s] = agg
    any_errors |= bool(errs)
    g, n = agg["gatehouse"], agg["nginx"]
    P(f"| {label} | {conns} | {fmt(g['cpu_us'], 1)} | {fmt(n['cpu_us'], 1)} | **{ratio(g['cpu_us'], n['cpu_us'])}** "
      f"| {fmt(g['rps'])} | {fmt(n['rps'])} | **{ratio(g['rps'], n['rps'])}** "
      f"| {fmt(g['mibps'], 1)} | {fmt(n['mibps'], 1)} | {ratio(g['mibps'], n['mibps'])} "
      f"| {'; '.join(errs) or 'none'} |")
P("")
P("## Latency and saturation")
P("")
pc, lc = env["PROXY_CPU"], env["LOAD_CPU"]
P(f"**Proxy CPU use** = the proxy process's CPU seconds (utime + stime) / wall seconds of the run: "
  f"{SATURATED:.0%} or more means its core was saturated and the proxy was the bottleneck. From "
  f"/proc/stat: **CPU {pc} irq** = interrupt and softirq time on the proxy's core (on loopback, the "
  f"TCP receive work of what the proxy sends); **CPU {lc} busy** = how busy the load core (wrk + "
  f"origin) was; **other** = busy time of a core that was neither what the benchmark runs there "
  f"nor interrupts (other processes: a busy machine). **Bottleneck**: `proxy` when saturated, else "
  f"`load core` (CPU {lc} ≥ 95% busy: wrk and the origin could not ask for more) and/or "
  f"`CPU n shared` (other ≥ 10%). Values: gatehouse / nginx.")
P("")
P(f"| scenario | p50 ms gatehouse | p50 ms nginx | ratio | p99 ms gatehouse | p99 ms nginx | ratio "
  f"| proxy CPU use | CPU {pc} irq | CPU {lc} busy | other CPU {pc} | other CPU {lc} | bottleneck "
  f"| load avg at start |")
P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
for s in scenarios:
    label, _ = scen_label(s)
    g, n = main_agg[s]["gatehouse"], main_agg[s]["nginx"]
    P(f"| {label} | {fmt_ms(g['p50'])} | {fmt_ms(n['p50'])} | {ratio(g['p50'], n['p50'])} "
      f"| {fmt_ms(g['p99'])} | {fmt_ms(n['p99'])} | {ratio(g['p99'], n['p99'])} "
      f"| {pct(g['use'])} / {pct(n['use'])} | {pct(g['irq_p'])} / {pct(n['irq_p'])} "
      f"| {pct(g['cpu_l'])} / {pct(n['cpu_l'])} | {pct(g['other_p'])} / {pct(n['other_p'])} "
      f"| {pct(g['other_l'])} / {pct(n['other_l'])} "
      f"| {bottleneck(g)} / {bottleneck(n)} | {scen_load.get(('main', s), 'n/a')} |")
P("")

# --- Idle memory -----------------------------------------------------------------------------
if int(env["BENCH_IDLE_CONNS"]) > 0:
    P("## Memory per idle keep-alive connection")
    P("")
    P(f"RSS of the proxy process, (after − before) / N, N = {env['BENCH_IDLE_CONNS']} connections, each past "
      f"one `GET /small` and then idle, read {env.get('BENCH_IDLE_SETTLE', '2')} s after the last answer; "
      "user-space memory only (kernel socket buffers not included).")
    P("")
    P("| proxy | KiB / idle conn | ratio gatehouse / this | RSS before → after KiB | opened | failed "
      "| established at the proxy | closed by it early |")
    P("|---|---:|---:|---|---:|---:|---:|---:|")
    per = {}
    rows = []
    for p, key in (("gatehouse", "REPORT_IDLE_GH"), ("nginx", "REPORT_IDLE_NGX"), ("haproxy", "REPORT_IDLE_HA")):
        raw = env.get(key, "")
        if not raw:
            continue
        before, after, opened, failed, established, closed = map(int, raw.split())
        per[p] = (after - before) / opened if opened else None
        rows.append((p, before, after, opened, failed, established, closed))
        any_errors |= bool(failed)
    for p, before, after, opened, failed, established, closed in rows:
        P(f"| {p} | **{fmt(per[p], 2)}** | {ratio(per.get('gatehouse'), per[p]) if p != 'gatehouse' else ''} "
          f"| {before:,} → {after:,} | {opened} | {failed} | {established if established >= 0 else 'n/a'} "
          f"| {closed if closed >= 0 else 'n/a'} |")
    P("")
rss_gh, rss_ngx = env["REPORT_RSS_END"].split()
P(f"RSS of the proxy process after all the runs: gatehouse {rss_gh} KiB, nginx worker {rss_ngx} KiB.")
P("")

# --- Self-check -------------------------------------------------------------------------------
if env.get("BENCH_SELFCHECK") == "1":
    P("## Self-check: can this harness see a 2x gap?")
    P("")
    P("`nginx x2` is the same tuned nginx configuration with every request proxied twice by its one "
      "worker (front server → hop server on the same worker → origin): twice the proxy work per request "
      "on the same core, a known 2x. The harness should show CPU µs/req ≈ 2x and, when the proxy core "
      "is saturated, req/s ≈ 0.5x. Ratios here are **nginx x2 / nginx**.")
    P("")
    P("| scenario | CPU µs/req nginx | CPU µs/req nginx x2 | **ratio** | req/s nginx | req/s nginx x2 | **ratio** "
      "| proxy CPU use nginx / x2 | bottleneck nginx / x2 | verdict | errors |")
    P("|---|---:|---:|---:|---:|---:|---:|---|---|---|---|")
    for s in env.get("BENCH_SELFCHECK_SCENARIOS", "").split():
        label, _ = scen_label(s)
        agg, errs = aggregate("selfcheck", s, ("nginx", "nginx-x2"))
        any_errors |= bool(errs)
        n, x = agg["nginx"], agg["nginx-x2"]
        cr = x["cpu_us"] / n["cpu_us"] if x["cpu_us"] and n["cpu_us"] else None
        verdict = "n/a" if cr is None else ("2x gap seen" if 1.6 <= cr <= 2.5 else f"**gap NOT seen ({cr:.2f}x)**")
        P(f"| {label} | {fmt(n['cpu_us'], 1)} | {fmt(x['cpu_us'], 1)} | **{ratio(x['cpu_us'], n['cpu_us'])}** "
          f"| {fmt(n['rps'])} | {fmt(x['rps'])} | **{ratio(x['rps'], n['rps'])}** "
          f"| {pct(n['use'])} / {pct(x['use'])} | {bottleneck(n)} / {bottleneck(x)} | {verdict} "
          f"| {'; '.join(errs) or 'none'} |")
    P("")

# --- Syscalls per request ---------------------------------------------------------------------
def parse_strace(path):
    """strace -c summary -> {syscall: (calls, errors)}."""
    calls = {}
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return calls
    for line in lines:
        t = line.split()
        if len(t) not in (5, 6) or not re.fullmatch(r"[0-9.]+", t[0]) or t[-1] == "total":
            continue
        calls[t[-1]] = (int(t[3]), int(t[4]) if len(t) == 6 else 0)
    return calls


if env.get("BENCH_STRACE") == "1":
    stats = {}
    with open(env["STRACE_TSV"]) as f:
        for line in f:
            scen, proxy, path, ok, failed, skipped, nbytes, secs = line.rstrip("\n").split("\t")
            stats[(scen, proxy)] = (parse_strace(path), int(ok), int(failed), int(skipped))
            any_errors |= int(failed) > 0
    P("## System calls per request (`BENCH_STRACE=1`)")
    P("")
    P("`strace -c -f` attached to the proxy process (all threads) while `bench/count_clients.py` sends a "
      "fixed number of requests over the scenario's number of keep-alive connections (one request at a "
      "time per connection). The connections, TLS handshakes and upstream connections are set up before "
      "strace attaches, and strace detaches before they are closed, so the counts are those of the "
      "requests alone. Figures are calls per request; in brackets, the calls that failed (mostly EAGAIN). "
      "Syscalls below 0.01 per request on both sides are left out.")
    P("")
    for s in scenarios:
        g = stats.get((s, "gatehouse"))
        n = stats.get((s, "nginx"))
        if not g or not n:
            continue
        label, conns = scen_label(s)
        P(f"**{label}**: {g[1]:,} requests to gatehouse, {n[1]:,} to nginx, {conns} connections"
          + (f" — FAILED requests: gatehouse {g[2]}, nginx {n[2]}" if g[2] or n[2] else "")
          + (f" (not sent within the time limit: gatehouse {g[3]}, nginx {n[3]})" if g[3] or n[3] else ""))
        P("")
        P("| syscall | gatehouse / req | nginx / req |")
        P("|---|---:|---:|")
        names = set(g[0]) | set(n[0])

        def per(st, name):
            c, e = st[0].get(name, (0, 0))
            return (c / st[1], e / st[1]) if st[1] else (0.0, 0.0)

        def cell(v):
            c, e = v
            if c == 0:
                return "–"
            return f"{c:.2f}" + (f" ({e:.2f})" if e >= 0.005 else "")

        rows = sorted(names, key=lambda nm: -max(per(g, nm)[0], per(n, nm)[0]))
        for nm in rows:
            if max(per(g, nm)[0], per(n, nm)[0]) < 0.01:
                continue
            P(f"| {nm} | {cell(per(g, nm))} | {cell(per(n, nm))} |")
        tg = sum(c for c, _ in g[0].values()) / g[1] if g[1] else 0
        tn = sum(c for c, _ in n[0].values()) / n[1] if n[1] else 0
        P(f"| **total** | **{tg:.2f}** | **{tn:.2f}** |")
        P("")

for p in ("gatehouse", "nginx", "nginx-x2"):
    if dead.get(p):
        P(f"**{p} FAILED during the benchmark: {dead[p]}**")
        P("")
        any_errors = True

# --- Raw runs -----------------------------------------------------------------------------------
P("<details><summary>Every measured run</summary>")
P("")
P(f"| group | scenario | proxy | run | requests | req/s | MiB/s | p50 ms | p99 ms | CPU ticks | CPU µs/req "
  f"| proxy CPU use | CPU {pc} busy | CPU {pc} irq | CPU {lc} busy | other {pc} / {lc} | again "
  f"| bytes/resp | errors |")
P("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in runs:
    bpr = r["bytes"] / r["requests"] if r["bytes"] and r["requests"] else None
    P(f"| {r['group']} | {r['scenario']} | {r['proxy']} | {r['run']} | {fmt(r['requests'])} | {fmt(r['rps'])} "
      f"| {fmt(r['mibps'], 1)} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | {r['ticks']} | {fmt(r['cpu_us'], 1)} "
      f"| {pct(r['use'])} | {pct(r['cpu_p'])} | {pct(r['irq_p'])} | {pct(r['cpu_l'])} "
      f"| {pct(r['other_p'])} / {pct(r['other_l'])} | {r['retries']} | {fmt(bpr)} | {errors_of([r]) or 'none'} |")
P("")
P("</details>")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
sys.exit(3 if any_errors else 0)
