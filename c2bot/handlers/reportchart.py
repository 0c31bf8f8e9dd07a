"""`report chart`: calls (attempted and completed bars) and ASR (a line) over a period, as PNG.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global state),
in a worker thread so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import io

from c2bot.handlers.context import Context
from c2bot.handlers.replies import Reply, ReplyFile
from c2bot.handlers.reports import CallFilter, ChartData, chart_data

WIDTH, HEIGHT, DPI = 11.0, 5.0, 100
MAX_TICKS = 16


def render_chart(data: ChartData) -> bytes:
    """The chart as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    FigureCanvasAgg(figure)
    calls = figure.add_subplot()
    places = list(range(len(data.labels)))
    calls.bar([p - 0.2 for p in places], data.attempted, width=0.4, label="Attempted")
    calls.bar([p + 0.2 for p in places], data.completed, width=0.4, label="Completed")
    calls.set_ylabel("Calls")
    step = max(1, len(places) // MAX_TICKS)
    calls.set_xticks(places[::step], [_short(label, data.bucket) for label in data.labels][::step])
    calls.tick_params(axis="x", labelrotation=45)
    asr = calls.twinx()
    asr.plot(places, data.asr, color="black", marker="o", markersize=3, label="ASR %")
    asr.set_ylim(0, 100)
    asr.set_ylabel("ASR %")
    handles = calls.get_legend_handles_labels()
    more = asr.get_legend_handles_labels()
    calls.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
    calls.set_title(data.title)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _short(label: str, bucket: str) -> str:
    return label[-5:] if bucket == "hour" else label


async def chart(ctx: Context, request: CallFilter) -> Reply:
    data = await chart_data(ctx, request)
    png = await asyncio.to_thread(render_chart, data)
    total, answered = sum(data.attempted), sum(data.completed)
    return Reply(
        title=data.title,
        text=f"{total} call(s) attempted, {answered} completed, per {data.bucket}.",
        files=(ReplyFile("calls-chart.png", "image/png", png, data.title),),
    )
