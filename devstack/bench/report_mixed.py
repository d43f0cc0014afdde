"""The report's section on the mixed step: reads and payments at once, at the design's ratio."""

from __future__ import annotations

from devstack.bench.report_parts import by_target, fmt_ms, fmt_rate


def section(r: dict) -> list[str]:
    groups = by_target(r["steps"])
    design = r["design"]
    lines = [f"## Reads and payments at once (design: {design['reads']:,} getReceipt + {design['payments']} "
             "payments per second)", "",
             "| multiple | reads offered/s | reads achieved/s | reads p50 | p99 | read errors | payments offered/s "
             "| achieved/s | start p99 | post p99 | payment errors | overflows / SYN retx |", "|" + "---:|" * 12]
    for reads, start, post in zip(groups["mixed getReceipt"], groups["mixed start"], groups["mixed post"]):
        lines.append(f"| {reads.extra['multiple']:g}× | {fmt_rate(reads.offered_rps)} | {fmt_rate(reads.achieved_rps)} | "
                     f"{fmt_ms(reads.p50_ms)} | {fmt_ms(reads.p99_ms)} | {reads.errors} | {start.offered_rps:g} | "
                     f"{post.achieved_rps:g} | {fmt_ms(start.p99_ms)} | {fmt_ms(post.p99_ms)} | {post.errors} | "
                     f"{reads.extra.get('listen_overflows', '–')} / {reads.extra.get('syn_retransmits', '–')} |")
    best = r["sustained_multiple"]
    repeated = sum(1 for a in r["attempts"] if a["attempt"] == 2)
    t = r["targets_ms"]
    lines += ["", f"Sustained (reads p99 ≤ {t['reads']:g} ms, each payment call p99 ≤ {t['payment_call']:g} ms, "
              f"errors < 0.1 % on both): **{'none' if best is None else f'{best:g}×'}** the design's capacity. "
              f"Target ≥ 1×: **{'met' if best is not None and best >= 1 else 'missed'}**. A failing step is run "
              f"once more before it counts ({repeated} repeated here); the table shows the last attempt.", ""]
    return lines
