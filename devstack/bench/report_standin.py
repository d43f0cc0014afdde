"""The report's section on payments against the provider stand-in, beside the sandbox's figures."""

from __future__ import annotations

from pathlib import Path

from devstack.bench.core import Step
from devstack.bench.report_parts import by_target, fmt_ms, fmt_rate, plot
from devstack.bench.standin_payments import CALLS, LABEL, added_p99, sustainable


def section(out: Path, r: dict, sandbox: dict | None) -> list[str]:
    groups = by_target(r["steps"])
    plot(out / "payments-standin.png", "payments, stand-in provider", groups)
    rows = list(zip(groups["paystream start"], groups["paystream post"], groups[f"floor: {LABEL} create"],
                    groups[f"floor: {LABEL} attach+confirm"]))
    per_call = r["added_p99_ms_per_call"]
    lines = [f"## Payments: start + post, with the latency stand-in as provider ({r['latency_ms']} ms a call)", "",
             "The stand-in (`devstack/standin.py`) answers each call after a uniform "
             f"{r['latency_ms']} ms, as a real provider does, with no throughput cap of its own; the floor is "
             "the same provider calls made straight at it at the same rate. Start makes one provider call, "
             "post two (attach, confirm). Overflows / SYN retx: the kernel's listen-queue overflows and SYNs "
             "sent again during the step, machine-wide (`nstat`); non-zero means some requests waited ≥ 1 s "
             "in the kernel, not in paystream.", "",
             "| offered/s | achieved/s | start p50 | start p99 | post p50 | post p99 | added p99 start | "
             "added p99 post | errors | overflows / SYN retx | stand-in alone/s | create p50 | p99 | "
             "attach+confirm p50 | p99 | errors | overflows / SYN retx |", "|" + "---:|" * 17]
    for s, p, c, f in rows:
        lines.append(f"| {fmt_rate(s.offered_rps)} | {fmt_rate(p.achieved_rps)} | {fmt_ms(s.p50_ms)} | {fmt_ms(s.p99_ms)} | "
                     f"{fmt_ms(p.p50_ms)} | {fmt_ms(p.p99_ms)} | {fmt_ms(added_p99(s, c))} | {fmt_ms(added_p99(p, f))} | "
                     f"{p.errors} | {_tcp(p)} | {fmt_rate(f.achieved_rps)} | {fmt_ms(c.p50_ms)} | {fmt_ms(c.p99_ms)} | "
                     f"{fmt_ms(f.p50_ms)} | {fmt_ms(f.p99_ms)} | {f.errors} | {_tcp(f)} |")
    ok = [s.achieved_rps for s, p, c, f in rows if sustainable(s, p, c, f)]
    floor_ok = [f.achieved_rps for *_, f in rows if f.sustainable(float("inf"))]
    sustained = max(ok) if ok else None
    floor_best = max(floor_ok) if floor_ok else None
    lines += ["", f"Sustainable (errors < 0.1 %, paystream adding ≤ {per_call:g} ms p99 per provider call over the "
              f"stand-in's own: start {CALLS['start']}, post {CALLS['post']} calls): paystream **{fmt_rate(sustained)} "
              f"payments/s**; the stand-in alone answered every step up to **{fmt_rate(floor_best)}/s** without "
              f"errors. Target ≥ 200/s (aim 300/s): **{'met' if (sustained or 0) >= 200 else 'missed'}**."]
    if sandbox is not None:
        lines.append(_side_by_side(sandbox, sustained))
    lines += ["", "![payments with the stand-in](payments-standin.png)", ""]
    return lines


def _tcp(step: Step) -> str:
    """The kernel's listen-queue overflows and SYN retransmits during the step (machine-wide)."""
    extra = step.extra
    return f"{extra.get('listen_overflows', '–')} / {extra.get('syn_retransmits', '–')}"


def _side_by_side(sandbox: dict, standin_sustained: float | None) -> str:
    """Each provider alone and paystream in front of it, in one sentence."""
    groups = by_target(sandbox["steps"])
    target = sandbox["p99_target_ms"]

    def best(steps: list[Step]) -> float | None:
        ok = [s.achieved_rps for s in steps if s.sustainable(target)]
        return max(ok) if ok else None

    ours = best(groups["paystream post"])
    alone = best(groups["floor: sandbox attach+confirm"])
    ratio = f"{ours / alone:.0%}" if ours and alone else "–"
    return (f"Side by side: with localstripe paystream sustains {fmt_rate(ours)}/s against localstripe's own "
            f"{fmt_rate(alone)}/s ({ratio}; target ≥ 90 %); with the stand-in {fmt_rate(standin_sustained)}/s.")
