"""The benchmark report: Markdown tables and PNG plots, in the results folder."""

from __future__ import annotations

from pathlib import Path

from devstack.bench.core import Step
from devstack.bench.paypal_payments import section as paypal_section
from devstack.bench.refunds import section as refunds_section
from devstack.bench.report_bulkheads import markdown as bulkheads_markdown
from devstack.bench.report_mixed import section as mixed_section
from devstack.bench.report_parts import by_target, fmt_ms, fmt_rate, machine, plot
from devstack.bench.report_standin import section as standin_section


def _sustainable(steps: list[Step], target_ms: float) -> float | None:
    ok = [s.achieved_rps for s in steps if s.sustainable(target_ms)]
    return max(ok) if ok else None


def write(out: Path, results: dict, command: str, commit: str) -> Path:
    lines = ["# paystream benchmarks", "",
             f"- command: `{command}`", f"- commit: `{commit}`, run at {results['started_at']}, "
             f"{results['mode']} mode, {results['seconds']:g} s per step",
             f"- machine: {machine()}",
             "- load: open loop at fixed offered rates, latency measured from each request's due time "
             "(vegeta for getReceipt, an asyncio generator for payments)", ""]
    if "receipts" in results:
        lines += _receipts(out, results["receipts"])
    if "payments" in results:
        lines += _payments(out, results["payments"])
    if "refunds" in results:
        lines += [*refunds_section(results["refunds"], command, commit), ""]
    if "paypal" in results:
        lines += [*paypal_section(results["paypal"], command, commit), ""]
    if "mixed" in results:
        lines += mixed_section(results["mixed"])
    if "standin" in results:
        lines += standin_section(out, results["standin"], results.get("payments"))
    if "scale" in results:
        lines += _scale(results["scale"])
    if "balancer" in results:
        from devstack.bench.balancing import markdown

        lines += markdown(results["balancer"])
    if "bulkheads" in results:
        lines += [*bulkheads_markdown(results["bulkheads"], command, commit), ""]
    if results.get("memory"):
        names = sorted({name for peaks in results["memory"].values() for name in peaks})
        lines += ["## Peak memory (RSS, MiB)", "", "| suite | " + " | ".join(names) + " |",
                  "|---|" + "---:|" * len(names)]
        for suite, peaks in results["memory"].items():
            lines.append(f"| {suite} | " + " | ".join(fmt_ms(peaks.get(k)) for k in names) + " |")
        lines += ["", "A blank is a process that was not running during that suite.", ""]
    if results.get("profiles"):
        lines += ["## Where the time goes", "",
                  "CPU of every process (paystream's and the stack's) during the first step past the target "
                  "(or the highest step when none was); the hottest was profiled with py-spy where it is a "
                  "Python process.", ""]
        for suite, f in results["profiles"].items():
            cpu = ", ".join(f"{k} {v:.0f} %" for k, v in sorted(f["cpu_percent"].items(), key=lambda kv: -kv[1]))
            prof = f"[{f['profile']}]({f['profile']})" if f.get("profile", "").endswith(".svg") else f.get("profile")
            step = f.get("step", suite).split("@")[-1]
            lines.append(f"- {suite} at {step}/s: hottest **{f['hottest']}** ({cpu}); profile: {prof}")
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _receipts(out: Path, r: dict) -> list[str]:
    groups = by_target(r["steps"])
    plot(out / "receipts.png", "getReceipt (cache hit)", groups)
    ours, floor = groups["paystream getReceipt"], groups["floor: aiohttp + Redis GET"]
    lines = ["## getReceipt, cache hit", "",
             "| offered/s | paystream achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | "
             "floor achieved/s | floor p50 ms | floor p99 ms |", "|" + "---:|" * 10]
    for a, b in zip(ours, floor):
        lines.append(f"| {fmt_rate(a.offered_rps)} | {fmt_rate(a.achieved_rps)} | {fmt_ms(a.p50_ms)} | {fmt_ms(a.p90_ms)} | "
                     f"{fmt_ms(a.p99_ms)} | {fmt_ms(a.p999_ms)} | {a.errors} | {fmt_rate(b.achieved_rps)} | "
                     f"{fmt_ms(b.p50_ms)} | {fmt_ms(b.p99_ms)} |")
    target = r["p99_target_ms"]
    s_ours, s_floor = _sustainable(ours, target), _sustainable(floor, target)
    ratio = f"{s_ours / s_floor:.0%}" if s_ours and s_floor else "–"
    rb = r["redis_benchmark"]
    lines += ["", f"Sustainable (p99 ≤ {target:g} ms, errors < 0.1 %): paystream **{fmt_rate(s_ours)}/s**, "
              f"bare aiohttp + Redis floor **{fmt_rate(s_floor)}/s**: paystream runs at **{ratio}** of its floor "
              f"(both on the {r.get('event_loop', 'asyncio')} event loop). "
              f"`redis-benchmark` GET (50 clients): {fmt_rate(rb['rps'])} requests/s, p50 {rb['p50_ms']} ms.",
              f"Targets: ≥ 5,000/s at p99 ≤ 10 ms: **{'met' if (s_ours or 0) >= 5000 else 'missed'}**; "
              f"≥ 80 % of the floor: **{'met' if s_ours and s_floor and s_ours >= 0.8 * s_floor else 'missed'}**.",
              "", "![getReceipt](receipts.png)", ""]
    cpu = [(a.offered_rps, a.extra.get("cpu_us_per_request"), b.extra.get("cpu_us_per_request"))
           for a, b in zip(ours, floor) if a.extra.get("cpu_us_per_request")]
    if cpu:
        lines[-3:-3] = ["CPU per request (µs of the one process's CPU time over the requests it served; the "
                        "figure a busy neighbour disturbs least): " + ", ".join(
                            f"at {fmt_rate(rate)}/s paystream {a}, floor {b}" for rate, a, b in cpu) + "."]
    return lines


def _payments(out: Path, r: dict) -> list[str]:
    groups = by_target(r["steps"])
    plot(out / "payments.png", "payments", groups)
    start, post = groups["paystream start"], groups["paystream post"]
    create, confirm = groups["floor: sandbox create"], groups["floor: sandbox attach+confirm"]
    lines = ["## Payments: start + post, with the sandbox as provider", "",
             "| offered/s | achieved/s | start p50 | start p99 | post p50 | post p99 | complete p99 | errors | "
             "sandbox create p50 | p99 | sandbox attach+confirm p50 | p99 |", "|" + "---:|" * 12]
    for s, p, c, f in zip(start, post, create, confirm):
        lines.append(f"| {fmt_rate(s.offered_rps)} | {fmt_rate(p.achieved_rps)} | {fmt_ms(s.p50_ms)} | {fmt_ms(s.p99_ms)} | "
                     f"{fmt_ms(p.p50_ms)} | {fmt_ms(p.p99_ms)} | {fmt_ms(p.extra.get('complete_p99_ms'))} | {p.errors} | "
                     f"{fmt_ms(c.p50_ms)} | {fmt_ms(c.p99_ms)} | {fmt_ms(f.p50_ms)} | {fmt_ms(f.p99_ms)} |")
    target = r["p99_target_ms"]
    ok = [s.achieved_rps for s, p in zip(start, post) if s.sustainable(target) and p.sustainable(target)]
    floor_ok = [c.achieved_rps for c, f in zip(create, confirm) if c.sustainable(target) and f.sustainable(target)]
    sustained = max(ok) if ok else None
    floor_sustained = max(floor_ok) if floor_ok else None
    lines += ["", f"Sustainable (p99 ≤ {target:g} ms per call, errors < 0.1 %): paystream **{fmt_rate(sustained)} "
              f"payments/s**; the sandbox alone **{fmt_rate(floor_sustained)}/s** "
              f"({f'{sustained / floor_sustained:.0%}' if sustained and floor_sustained else '–'} of it). "
              f"Target ≥ 300/s: **{'met' if (sustained or 0) >= 300 else 'missed'}**."]
    # The overhead means something only where neither side is queueing: at the target rate when
    # both sustain it, else at the highest rate where both do.
    rows = list(zip(start, post, create, confirm))
    calm = [row for row in rows if all(x.sustainable(target) for x in row)]
    wanted = [row for row in calm if row[0].offered_rps == r["overhead_rate"]]
    row = (wanted or calm[-1:] or [None])[0]
    if row is not None:
        s, p, c, f = row

        def diff(a, b):
            return None if a is None or b is None else a - b

        o = {"start p50": diff(s.p50_ms, c.p50_ms), "start p99": diff(s.p99_ms, c.p99_ms),
             "post p50": diff(p.p50_ms, f.p50_ms), "post p99": diff(p.p99_ms, f.p99_ms)}
        met = wanted and all(v is not None for v in o.values()) and max(o["start p50"], o["post p50"]) <= 15 \
            and max(o["start p99"], o["post p99"]) <= 40
        lines.append(f"paystream's own overhead at {fmt_rate(s.offered_rps)}/s (its latency minus the same provider "
                     f"calls made directly at that rate): " + ", ".join(f"{k} {fmt_ms(v)} ms" for k, v in o.items())
                     + f". Target at {r['overhead_rate']}/s: ≤ 15 ms p50 and ≤ 40 ms p99: "
                     f"**{'met' if met else 'missed'}**"
                     + ("" if wanted else f" (neither side sustains {r['overhead_rate']}/s here)") + ".")
    k = r["kafka"]
    pm, p1k, c = k["producer_max"], k["producer_at_1000"], k["consumer"]
    lines += ["", f"Kafka alone (Apache's perf tools, {pm['record_bytes']}-byte records, acks=all): produce "
              f"{fmt_rate(pm['rps'])} records/s ({pm['mb_per_s']} MB/s, p50 {pm['p50_ms']} ms, p99 {pm['p99_ms']} ms "
              f"flat out); at 1,000 records/s p50 {p1k['p50_ms']} ms, p99 {p1k['p99_ms']} ms; consume "
              f"{fmt_rate(c['rps'])} records/s.", "", "![payments](payments.png)", ""]
    return lines


def _scale(r: dict) -> list[str]:
    lines = ["## Growth", "",
             f"getReceipt at {r['receipt_rate']}/s with N receipts in the cache; payments at {r['payment_rate']}/s "
             "with N payments in flight in the worker's table; and the time for a worker that lost its local "
             "state to rebuild the table from its changelog (process start included).", "",
             "| N | getReceipt p50 | p99 | start p50 | p99 | post p50 | p99 | table rebuild s | Redis MiB |",
             "|" + "---:|" * 9]
    for row in r["rows"]:
        g, s, p = row["receipts"], row["start"], row["post"]
        lines.append(f"| {row['size']:,} | {fmt_ms(g.p50_ms)} | {fmt_ms(g.p99_ms)} | {fmt_ms(s.p50_ms)} | {fmt_ms(s.p99_ms)} | "
                     f"{fmt_ms(p.p50_ms)} | {fmt_ms(p.p99_ms)} | {row['rebuild_s']} | {row['redis_used_mib']} |")
    rows = r["rows"]
    if len(rows) > 1:
        def flat(key: str) -> str:
            a, b = getattr(rows[0][key], "p50_ms"), getattr(rows[-1][key], "p50_ms")
            return "–" if not a or b is None else f"{(b - a) / a:+.0%}"

        lines += ["", f"p50 change from the smallest to the largest N: getReceipt {flat('receipts')}, start "
                  f"{flat('start')}, post {flat('post')} (target: within ±20 %)."]
    return lines + [""]
