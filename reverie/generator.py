"""Demo data: a deterministic e-commerce event stream with weekly seasonality, trend, noise and planted events.

Every day is drawn from its own random stream keyed by (seed, day index), so generating 30 days and then
20 more gives exactly the same data as generating 50 at once. Planted events follow a schedule that
depends only on the seed; the ones that fall inside the generated range are written to `labels.jsonl`
so later work can measure what the detectors find.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SOURCE = "events"
STATE_FILE = "_generator.json"
LABELS_FILE = "labels.jsonl"

COUNTRIES = {"US": 0.35, "DE": 0.15, "GB": 0.15, "FR": 0.12, "BR": 0.13, "IN": 0.10}
CHANNELS = {"organic": 0.40, "paid_search": 0.25, "social": 0.15, "email": 0.10, "referral": 0.10}
DEVICES = {"mobile": 0.55, "desktop": 0.38, "tablet": 0.07}
CATEGORIES = {"electronics": 0.25, "apparel": 0.30, "home": 0.20, "beauty": 0.15, "sports": 0.10}
MEAN_AMOUNT = {"electronics": 300.0, "apparel": 60.0, "home": 90.0, "beauty": 35.0, "sports": 75.0}
WEEKDAY_FACTOR = np.array([1.00, 1.02, 1.03, 1.00, 0.95, 0.80, 0.85])  # Monday first
SESSIONS_PER_DAY = 10000
TREND_PER_DAY = 0.0005
SIGNUP_RATE = 0.08
CONVERSION_RATE = 0.03
FAILED_RATE = 0.03
REFUNDED_RATE = 0.03
FIRST_EVENT_DAY = 38  # leaves detectors five weeks of history before anything is planted
EVENT_GAP_DAYS = (10, 17)
EVENT_KINDS = ("payment_outage", "channel_surge", "refund_spike", "price_change")

SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_time", pa.timestamp("us")),
        ("event_type", pa.string()),  # session | signup | order
        ("session_id", pa.string()),
        ("country", pa.string()),
        ("channel", pa.string()),
        ("device", pa.string()),
        ("category", pa.string()),  # orders only
        ("amount", pa.float64()),  # orders only
        ("status", pa.string()),  # orders only: paid | failed | refunded
    ]
)


@dataclass(frozen=True)
class PlantedEvent:
    kind: str
    start: date
    end: date  # inclusive; price_change has no end and keeps the new level
    dimension: str
    member: str
    metrics: tuple[str, ...]  # every demo metric the event moves in that slice ...
    directions: tuple[str, ...]  # ... and which way each one moves
    description: str

    def active(self, day: date) -> bool:
        return self.start <= day <= self.end

    def label(self) -> dict:
        row = asdict(self)
        row.update(start=self.start.isoformat(), end=self.end.isoformat(), metrics=list(self.metrics),
                   directions=list(self.directions))
        return row


@dataclass(frozen=True)
class StreamState:
    seed: int
    scale: float
    start: date
    days: int

    @property
    def next_day(self) -> date:
        return self.start + timedelta(days=self.days)


def planted_events(seed: int, start: date, until_day: int) -> list[PlantedEvent]:
    """The seed's event schedule, for events starting before day index `until_day`."""
    rng = np.random.default_rng([seed, 7_777])
    events: list[PlantedEvent] = []
    day = FIRST_EVENT_DAY + int(rng.integers(0, 5))
    i = int(rng.integers(0, len(EVENT_KINDS)))
    while day < until_day:
        kind = EVENT_KINDS[i % len(EVENT_KINDS)]
        first = start + timedelta(days=day)
        if kind == "payment_outage":
            member = str(rng.choice(list(COUNTRIES)))
            events.append(PlantedEvent(kind, first, first, "country", member, ("orders", "revenue", "conversion_rate"),
                                       ("down", "down", "down"), f"payment provider outage in {member}: most payments fail"))
        elif kind == "channel_surge":
            member = str(rng.choice(["social", "referral", "email"]))
            # 2.5x the visitors converting at 40% of the usual rate: as many orders as usual, a lower rate
            events.append(PlantedEvent(kind, first, first + timedelta(days=1), "channel", member,
                                       ("sessions", "signups", "conversion_rate"), ("up", "up", "down"),
                                       f"traffic surge from {member} (low-intent visitors)"))
        elif kind == "refund_spike":
            member = str(rng.choice(list(CATEGORIES)))
            # refunded orders are not paid: orders, revenue and (overall) conversion fall with it
            events.append(PlantedEvent(kind, first, first + timedelta(days=2), "category", member,
                                       ("refund_rate", "orders", "revenue", "conversion_rate"), ("up", "down", "down", "down"),
                                       f"refund spike in {member} (faulty batch)"))
        else:
            member = str(rng.choice(list(CATEGORIES)))
            events.append(PlantedEvent(kind, first, date.max, "category", member, ("revenue", "average_order_value"),
                                       ("up", "up"), f"price increase of 25% in {member}"))
        day += int(rng.integers(*EVENT_GAP_DAYS))
        i += 1
    return events


def _affected(events: list[PlantedEvent], day: date, kind: str, members: np.ndarray) -> np.ndarray:
    """Which rows an active event of `kind` hits (by the row's member of the event's dimension)."""
    hit = np.zeros(len(members), dtype=bool)
    for event in events:
        if event.kind == kind and event.active(day):
            hit |= members == event.member
    return hit


def generate_day(seed: int, scale: float, start: date, day_index: int, events: list[PlantedEvent]) -> pa.Table:
    """All events of one day as an Arrow table."""
    day = start + timedelta(days=day_index)
    rng = np.random.default_rng([seed, day_index])
    countries, country_p = list(COUNTRIES), np.array(list(COUNTRIES.values()))
    channels, channel_p = list(CHANNELS), np.array(list(CHANNELS.values()))
    devices, device_p = list(DEVICES), np.array(list(DEVICES.values()))

    # expected sessions per (country, channel, device) cell
    cells = np.array(np.meshgrid(np.arange(len(countries)), np.arange(len(channels)), np.arange(len(devices)), indexing="ij")).reshape(3, -1)
    share = country_p[cells[0]] * channel_p[cells[1]] * device_p[cells[2]]
    level = SESSIONS_PER_DAY * scale * WEEKDAY_FACTOR[day.weekday()] * (1 + TREND_PER_DAY * day_index)
    country_noise = np.exp(rng.normal(0, 0.03, len(countries)))[cells[0]]
    cell_channel = np.array(channels)[cells[1]]
    surge = np.where(_affected(events, day, "channel_surge", cell_channel), 2.5, 1.0)
    counts = rng.poisson(level * share * country_noise * surge)

    n = int(counts.sum())
    idx = np.repeat(np.arange(cells.shape[1]), counts)
    country = np.array(countries)[cells[0][idx]]
    channel = np.array(channels)[cells[1][idx]]
    device = np.array(devices)[cells[2][idx]]
    # visits peak in the evening: a beta-shaped spread over the day
    seconds = np.sort(rng.beta(2.2, 1.6, n) * 86_399)
    session_time = np.datetime64(day.isoformat(), "s") + seconds.astype("timedelta64[s]")
    session_id = np.char.add(f"s{day:%Y%m%d}-", np.arange(n).astype(str))

    signed_up = rng.random(n) < SIGNUP_RATE
    # surge visitors are low-intent: they convert at 40% of the usual rate
    conversion = np.where(_affected(events, day, "channel_surge", channel), 0.4 * CONVERSION_RATE, CONVERSION_RATE)
    ordered = rng.random(n) < conversion
    m = int(ordered.sum())
    cats, cat_p = list(CATEGORIES), np.array(list(CATEGORIES.values()))
    cat_idx = rng.choice(len(cats), m, p=cat_p)
    category = np.array(cats)[cat_idx]
    price = np.array([MEAN_AMOUNT[c] for c in cats])[cat_idx]
    # each price increase in force multiplies the category's prices again: two of them are +56%
    increases = sum(_affected([e], day, "price_change", category).astype(int) for e in events if e.kind == "price_change")
    price = price * 1.25 ** increases
    amount = np.round(price * rng.lognormal(-0.08, 0.4, m), 2)
    order_country = country[ordered]
    failed_p = np.where(_affected(events, day, "payment_outage", order_country), 0.9, FAILED_RATE)
    refunded_p = np.where(_affected(events, day, "refund_spike", category), 0.35, REFUNDED_RATE)
    u = rng.random(m)
    status = np.where(u < failed_p, "failed", np.where(u < failed_p + refunded_p, "refunded", "paid"))
    order_time = session_time[ordered] + rng.integers(30, 900, m).astype("timedelta64[s]")
    order_time = np.minimum(order_time, np.datetime64(day.isoformat(), "s") + np.timedelta64(86_399, "s"))

    k = int(signed_up.sum())
    none_m = np.full(n + k, None)
    parts = {
        "event_time": np.concatenate([session_time, session_time[signed_up] + np.timedelta64(60, "s"), order_time]),
        "event_type": np.concatenate([np.full(n, "session"), np.full(k, "signup"), np.full(m, "order")]),
        "session_id": np.concatenate([session_id, session_id[signed_up], session_id[ordered]]),
        "country": np.concatenate([country, country[signed_up], order_country]),
        "channel": np.concatenate([channel, channel[signed_up], channel[ordered]]),
        "device": np.concatenate([device, device[signed_up], device[ordered]]),
        "category": np.concatenate([none_m, category.astype(object)]),
        "amount": np.concatenate([np.full(n + k, np.nan), amount]),
        "status": np.concatenate([none_m, status.astype(object)]),
    }
    order = np.argsort(parts["event_time"], kind="stable")
    columns = {name: values[order] for name, values in parts.items()}
    columns["event_id"] = np.char.add(f"e{day:%Y%m%d}-", np.arange(len(order)).astype(str))
    table = pa.table(
        {
            name: pa.array(columns[name], type=field.type, from_pandas=True)
            for name, field in zip(SCHEMA.names, SCHEMA)
        },
        schema=SCHEMA,
    )
    return table


def read_state(landing: Path) -> StreamState | None:
    path = landing / STATE_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return StreamState(int(raw["seed"]), float(raw["scale"]), date.fromisoformat(raw["start"]), int(raw["days"]))


def generate(landing: Path, days: int, start: date | None = None, seed: int | None = None, scale: float | None = None,
             on_day=None) -> dict:
    """Append `days` days to the stream in `landing`, starting it if there is none yet."""
    if days < 1:
        raise ValueError("--days must be at least 1")
    state = read_state(landing)
    if state is None:
        default_start = date.today() - timedelta(days=days)
        state = StreamState(seed if seed is not None else 42, scale if scale is not None else 1.0, start or default_start, 0)
    else:
        where = landing / STATE_FILE
        if start is not None and start != state.next_day:
            raise ValueError(f"{where}: the stream continues on {state.next_day}; --start {start} would leave a gap or overlap")
        if seed is not None and seed != state.seed:
            raise ValueError(f"{where}: the stream was started with --seed {state.seed}; cannot append with --seed {seed}")
        if scale is not None and scale != state.scale:
            raise ValueError(f"{where}: the stream was started with --scale {state.scale}; cannot append with --scale {scale}")
    if state.scale <= 0:
        raise ValueError("--scale must be positive")

    first = state.days
    events = planted_events(state.seed, state.start, first + days)
    folder = landing / SOURCE
    rows = 0
    for day_index in range(first, first + days):
        table = generate_day(state.seed, state.scale, state.start, day_index, events)
        day = state.start + timedelta(days=day_index)
        partition = folder / f"date={day.isoformat()}"
        partition.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, partition / "part-0.parquet")
        rows += table.num_rows
        if on_day:
            on_day(day)

    new_state = StreamState(state.seed, state.scale, state.start, first + days)
    (landing / STATE_FILE).write_text(json.dumps({**asdict(new_state), "start": new_state.start.isoformat()}, indent=2))
    last_day = new_state.next_day - timedelta(days=1)
    labels = [e.label() for e in events if e.start <= last_day]
    (landing / LABELS_FILE).write_text("".join(json.dumps(label) + "\n" for label in labels))
    return {
        "landing": str(landing),
        "source": SOURCE,
        "days": days,
        "rows": rows,
        "first_day": (state.start + timedelta(days=first)).isoformat(),
        "last_day": last_day.isoformat(),
        "seed": state.seed,
        "scale": state.scale,
        "planted_events": len(labels),
    }
