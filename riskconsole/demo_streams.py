"""The demo world beyond orders: signups, logins, refunds and clicks streams; merchants, influencers, IP ranges.

Every stream row speaks the orders' public ids (user, device, merchant, influencer) and an integer `ip_num`
that falls in exactly one row of `ip_ranges`. Streams are derived from the orders they explain (a signup
before a user's first order, logins and clicks before an order, refunds after it), chunk by chunk, so memory
stays bounded at any size; rows are sorted by time within each chunk, not across chunks. The tables carry
versions (`updated_at`): a merchant that re-lists in another category, a creator who grows, so an as-of join
gives a different answer than the latest row.

Five fraud scenarios live here because only the other streams reveal them: device farms (many signups on one
device), serial refunders, click injection (a creator's click fired seconds before a real buyer pays), a
merchant bust-out after a category change, and credential stuffing (failed logins from a new device).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from riskconsole.demo import (APP, BEAUTY, CARD, CATEGORIES, COUNTRIES, COUNTRY_P, DAY, DIGITAL, ELECTRONICS,
                              FASHION, GIFT, HOME, LIVE, NEVER, SCENARIOS, TIERS, WALLET, WEB, AFFILIATE, BNPL,
                              Rows, _World, _after, _expand, _frame, _legit, _legit_places, _price, event_ids)

NETWORKS = ("residential", "mobile", "hosting")  # IP blocks per country: 4 residential, 2 mobile, 1 hosting
SLOTS = (0, 4, 6)  # first block of each network kind among a country's 7
BANDS = ("<10k", "10k-100k", "100k-1M", "1M+")
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "tempmail.dev")
REASONS = ("not_received", "not_as_described", "damaged", "changed_mind", "late_delivery")
STREAMS = ("signups", "logins", "refunds", "clicks")
CHUNK = 1_000_000  # orders per chunk of stream generation (and rows per row group): bounds the memory
TABLES = ("merchants", "influencers", "ip_ranges")
MERCHANT_FRAUD = (SCENARIOS.index("brushing"), SCENARIOS.index("merchant_bust_out"))  # the merchant is the fraudster
CREATOR_FRAUD = (SCENARIOS.index("affiliate_fraud"), SCENARIOS.index("click_injection"))  # the creator is


# ---------------------------------------------------------------- the world's tables, planned before orders


def plan_world(w: _World, seed: int) -> None:
    """IP blocks, merchant and creator histories (tier upgrades, re-listings, growth) on their own random stream."""
    r = np.random.default_rng([seed, 1])
    w.ip_low = r.choice(np.arange(256, 224 * 256), 70, replace=False).reshape(10, 7).astype(np.int64) << 16
    m = w.m_p.size
    w.m_country = np.where(r.random(m) < 0.8, r.choice(10, m, p=COUNTRY_P), 0)
    since = -np.where(w.m_tier == 0, r.integers(1, 60, m), r.integers(100, 1500, m)) * DAY
    upgrade = np.flatnonzero((w.m_tier == 0) & (r.random(m) < 0.3))
    w.m_rebrand = (w.m_tier < 2) & (r.random(m) < 0.03)
    rebrand = np.flatnonzero(w.m_rebrand)
    relisted = (w.m_cat[rebrand] + r.integers(1, 10, rebrand.size)) % 10  # any other category
    w.m_events = [(np.arange(m), since, w.m_cat, w.m_tier),
                  (upgrade, r.integers(0, w.end, upgrade.size), np.full(upgrade.size, -1), np.ones(upgrade.size, int)),
                  (rebrand, r.integers(0, w.end, rebrand.size), relisted, np.full(rebrand.size, -1))]
    _plan_influencers(w, r)


def _plan_influencers(w: _World, r: np.random.Generator) -> None:
    """Follower bands by popularity rank; a fifth of creators grow one band during the period."""
    k = w.i_p.size
    rank = np.argsort(np.argsort(-w.i_p)) / k
    band = np.select([rank < 0.02, rank < 0.12, rank < 0.42], [3, 2, 1], 0)
    grow = np.flatnonzero((band < 3) & (r.random(k) < 0.2))
    w.i_versions = (np.concatenate([np.arange(k), grow]),
                    np.concatenate([-r.integers(30, 1500, k) * DAY, r.integers(0, w.end, grow.size)]),
                    np.concatenate([band, band[grow] + 1]))


def _merchant_versions(w: _World) -> tuple[np.ndarray, ...]:
    """Every merchant version (merchant, from, category, tier), sorted; an update keeps what it does not change."""
    merchant, t, cat, tier = (np.concatenate(cols) for cols in zip(*w.m_events))
    order = np.lexsort((t, merchant))
    merchant, t, cat, tier = merchant[order], t[order], cat[order], tier[order]
    rows = np.arange(merchant.size)  # each merchant's first row is its onboarding: both attributes known
    cat = cat[np.maximum.accumulate(np.where(cat >= 0, rows, 0))]
    tier = tier[np.maximum.accumulate(np.where(tier >= 0, rows, 0))]
    return merchant, t, cat, tier


def merchant_asof(w: _World, merchant: np.ndarray, ts: np.ndarray) -> Rows:
    """The category and tier each order's merchant had at the order's time (the latest version not after it)."""
    versions = _merchant_versions(w)
    keys = (versions[0] << 37) + versions[1] + (1 << 35)
    at = np.searchsorted(keys, (merchant.astype(np.int64) << 37) + ts + (1 << 35), side="right") - 1
    return {"category": versions[2][at], "tier": versions[3][at]}


def _mix(x: np.ndarray) -> np.ndarray:
    """A cheap deterministic hash of integers (non-negative results)."""
    golden = np.asarray(x, np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps modulo 2**64
    return (golden >> np.uint64(29)).astype(np.int64)


def order_ips(w: _World, c: Rows) -> np.ndarray:
    """Each order's IP as an integer inside a block of its `ipcountry`: the buyer's home line, a mobile
    carrier's (some app orders, changing daily), or a scenario's own (`ipkey`, `iptype`)."""
    own = c["ipkey"] < 0
    mobile = own & (c["iptype"] == 0) & (c["channel"] == APP) & (_mix(c["user"] * 131 + c["ts"] // DAY) % 10 < 3)
    kind = np.where(mobile, 1, c["iptype"])
    key = np.where(own, np.where(mobile, c["user"] * 1000 + c["ts"] // DAY + (1 << 34), c["user"]),
                   c["ipkey"] + (1 << 33))
    h = _mix(key)
    slot = np.array(SLOTS)[kind] + np.where(kind == 0, h % 4, np.where(kind == 1, h % 2, 0))
    return w.ip_low[c["ipcountry"], slot] + (h >> 8) % 65536


# ---------------------------------------------------------------- fraud seen only across streams (orders side)


def _signup_farm(w: _World, rows: int) -> Rows:
    """A device farm signs up 20-40 accounts within hours behind one hosting IP; each account orders once."""
    rng, f = w.rng, max(1, round(rows / 30))
    farm_of, _ = _expand(rng.integers(20, 41, f))
    n = farm_of.size
    created = rng.integers(0, w.end - 3 * DAY, f)[farm_of] + rng.integers(0, 6 * 3600, n)
    first = w.ids("device", 3 * f)[::3]
    cat = rng.choice([DIGITAL, GIFT, FASHION, BEAUTY], n, p=[.35, .3, .2, .15])
    country = rng.choice(10, f, p=COUNTRY_P)[farm_of]
    return _frame(7, n, ts=created + rng.integers(600, 20 * 3600, n), user=w.ids("user", n), created=created,
                  merchant=w.merchants_in(cat), device=first[farm_of] + rng.integers(0, rng.integers(1, 4, f)[farm_of]),
                  payment=w.ids("payment", n), address=w.ids("address", n), ucountry=country, ipcountry=country,
                  channel=rng.choice([APP, WEB], n, p=[.7, .3]), method=rng.choice([CARD, WALLET], n, p=[.6, .4]),
                  amount=np.clip(_price(rng, cat), 5, 300), iptype=2, ipkey=first[farm_of])


def _refund_abuse(w: _World, rows: int) -> Rows:
    """Serial refunders: own accounts whose 4-9 orders are nearly all refunded ("not received"), then 1-3 bigger
    orders claimed the same way. The earlier orders are not chargebacks: they stay labelled good."""
    rng, a = w.rng, max(1, round(rows / 1.9))
    acc, pos = _expand(rng.choice([1, 2, 3], a, p=[.35, .4, .25]))
    hist, _ = _expand(rng.integers(4, 10, a))
    t0 = rng.integers(min(35 * DAY, w.end // 2), w.end - DAY, a)
    owner = np.concatenate([hist, acc])
    ts = np.concatenate([np.maximum(t0[hist] - rng.integers(3 * DAY, 35 * DAY, hist.size), 0),
                         np.minimum(t0[acc] + pos * rng.integers(3600, DAY, acc.size), w.end - 1)])
    cat = rng.choice([FASHION, BEAUTY, ELECTRONICS, HOME], owner.size, p=[.4, .2, .25, .15])
    fraud = np.arange(owner.size) >= hist.size
    amount = np.where(fraud, np.clip(_price(rng, cat, 180, 0.5), 60, 900), _price(rng, cat))
    country = rng.choice(10, a, p=COUNTRY_P)
    rows_ = _frame(8, owner.size, ts=ts, user=w.ids("user", a)[owner],
                   created=(t0 - rng.integers(60, 400, a) * DAY)[owner], merchant=w.merchants_in(cat),
                   device=w.ids("device", a)[owner], payment=w.ids("payment", a)[owner],
                   address=w.ids("address", a)[owner], ucountry=country[owner], ipcountry=country[owner],
                   channel=rng.choice([APP, WEB], owner.size, p=[.6, .4]), known_device=True, known_address=True,
                   method=rng.choice([CARD, WALLET, BNPL], owner.size, p=[.5, .3, .2]), amount=amount,
                   refund_p=np.where(fraud, 0.9, 0.85))
    rows_["scenario"][~fraud] = 0
    return rows_


def _click_injection(w: _World, rows: int) -> Rows:
    """Click injection: malware on real buyers' phones fires a creator's affiliate clicks (many, the last seconds
    before payment) to steal the commission. The orders are the buyers' own, ordinary in every column; the
    cheating creators are mid-sized ones whose genuine traffic dwarfs the injected part."""
    rng, n = w.rng, max(1, rows)
    rank = np.argsort(np.argsort(-w.i_p)) / w.i_p.size
    cheats = rng.choice(np.flatnonzero((rank >= 0.05) & (rank < 0.3)), max(1, w.i_p.size // 10))
    inf = rng.choice(cheats, n)
    base = _legit(w, n)
    merchant = w.partners[inf, rng.integers(0, 4, n)]
    return {**base, "channel": np.full(n, AFFILIATE), "influencer": inf, "merchant": merchant,
            "amount": _price(rng, w.m_cat[merchant]) * base["items"], "coupon": np.zeros(n),
            "clicks": rng.integers(8, 40, n), "gap": rng.integers(1, 20, n), "scenario": np.full(n, 9, np.int8)}


def _merchant_bust_out(w: _World, rows: int) -> Rows:
    """A quiet merchant re-lists as electronics or gift cards, then takes a few days of big orders it never ships."""
    rng, m = w.rng, max(1, round(rows / 70))
    pool = np.flatnonzero((w.m_tier < 2) & ~np.isin(w.m_cat, [ELECTRONICS, GIFT]) & ~w.m_rebrand)
    merchant = rng.choice(pool, m, replace=pool.size < m)
    change, new_cat = rng.integers(5 * DAY, w.end - 9 * DAY, m), rng.choice([ELECTRONICS, GIFT], m, p=[.7, .3])
    w.m_events.append((merchant, change, new_cat, np.full(m, -1)))
    of, _ = _expand(rng.integers(40, 101, m))
    n = of.size
    bust = change + rng.integers(2 * DAY, 7 * DAY, m)
    ts = np.minimum(bust[of] + (rng.random(n) * rng.integers(DAY, 4 * DAY, m)[of]).astype(np.int64), w.end - 1)
    u = rng.choice(w.n_users, n, p=w.user_p)
    u = np.where(w.created[u] < ts, u, rng.choice(np.flatnonzero(w.created < 0), n))
    cat = new_cat[of]
    amount = np.where(cat == GIFT, rng.choice([100, 200, 500], n), np.clip(_price(rng, cat, 420, 0.5), 80, 3000))
    return _frame(10, n, ts=ts, user=u, created=w.created[u], merchant=merchant[of], payment=w.pay_base[u],
                  ucountry=w.country[u], ipcountry=w.ip_home[u], channel=rng.choice([WEB, APP], n),
                  method=w.pay_method[w.pay_base[u]], amount=amount, **_legit_places(w, u, ts))


def _credential_stuffing(w: _World, rows: int) -> Rows:
    """A bot burns through failed logins on an old account from a new device (a proxy in the victim's country or
    a data centre), gets in, and buys gift cards and goods in ordinary amounts to the victim's own address."""
    rng, a = w.rng, max(1, round(rows / 1.3))
    acc, pos = _expand(rng.choice([1, 2], a, p=[.7, .3]))
    n, victim, bot = acc.size, rng.choice(np.flatnonzero(w.created < -90 * DAY), a), w.ids("device", a)
    cat = rng.choice([GIFT, DIGITAL, ELECTRONICS, FASHION], n, p=[.4, .25, .2, .15])
    country, payment = w.country[victim][acc], w.pay_base[victim][acc]
    return _frame(11, n, ts=np.minimum(w.sample(a)[acc] + pos * rng.integers(300, 2400, n), w.end - 1),
                  user=victim[acc], created=w.created[victim][acc], merchant=w.merchants_in(cat), device=bot[acc],
                  payment=payment, address=w.home[victim][acc], ucountry=country, ipcountry=country,
                  method=w.pay_method[payment], amount=np.clip(_price(rng, cat), 5, 800), known_address=True,
                  channel=rng.choice([WEB, APP], n, p=[.6, .4]), iptype=np.where(rng.random(a) < .5, 0, 2)[acc],
                  ipkey=bot[acc], fails=rng.integers(4, 30, a)[acc] * (pos == 0))


CROSS_MAKERS = (_signup_farm, _refund_abuse, _click_injection, _merchant_bust_out, _credential_stuffing)


# ---------------------------------------------------------------- streams and tables, written in chunks


class _Sink:
    """Parquet writers opened on first use, one per stream or table; counts the rows written."""

    def __init__(self, folder: Path, start_s: int) -> None:
        self.folder, self.start_s, self.writers, self.rows = folder, start_s, {}, {}

    def stamp(self, t: np.ndarray) -> pa.Array:
        return pa.array(t + self.start_s, pa.timestamp("s"))

    def add(self, name: str, table: pa.Table, time: str | None) -> None:
        """Append a chunk, sorted by its `time` column when it has one."""
        table = table.sort_by(time) if time else table
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", table.schema, compression="zstd")
        self.writers[name].write_table(table, row_group_size=CHUNK)
        self.rows[name] = self.rows.get(name, 0) + table.num_rows

    def close(self) -> dict[str, int]:
        for writer in self.writers.values():
            writer.close()
        return dict(self.rows)


def _text(vocabulary: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int8)), pa.array(vocabulary)).cast(pa.string())


def write_streams(w: _World, cols: Rows, folder: Path, start_s: int, seed: int) -> dict:
    """Write the streams and tables of the world whose finished orders are `cols`; return rows per file."""
    folder.mkdir(parents=True, exist_ok=True)
    chunk = CHUNK
    rng, sink = np.random.default_rng([seed, 2]), _Sink(folder, start_s)
    _signups(cols, rng, sink, chunk)
    partners, n = _public_partners(w), cols["ts"].size
    for first in range(0, n, chunk):
        part = {k: v[first:first + chunk] for k, v in cols.items()}
        sink.add("logins", _logins(rng, part, sink), "login_time")
        sink.add("clicks", _clicks(w, rng, part, partners, sink), "click_time")
        sink.add("refunds", _refunds(w, rng, part, np.arange(first, first + part["ts"].size), sink), "refund_time")
    confirm = np.random.default_rng([seed, 3])  # its own stream: labelling the tables changes no other row
    merchant_labels = _entity_labels(w, cols, "merchant", MERCHANT_FRAUD, confirm)
    sink.add("merchants", _merchants_table(w, sink, merchant_labels), None)
    sink.add("influencers", _influencers_table(w, sink, _entity_labels(w, cols, "influencer", CREATOR_FRAUD, confirm)),
             None)
    sink.add("ip_ranges", _ip_ranges_table(w), None)
    return sink.close()


def _signups(cols: Rows, rng: np.random.Generator, sink: _Sink, chunk: int) -> None:
    """One signup per ordering user, on the device and IP of the first order, before it."""
    user, first = np.unique(cols["user"], return_index=True)
    t = np.minimum(cols["created"][first], cols["ts"][first] - 1)
    order = np.argsort(t, kind="stable")
    user, first, t = user[order], first[order], t[order]
    fresh = np.isin(cols["scenario"][first], [3, 5, 7])  # promo rings, fake conversions, farms: throwaway mail
    domain = np.where(fresh, rng.choice(6, user.size, p=[.2, .05, .05, 0, .2, .5]),
                      rng.choice(6, user.size, p=[.5, .15, .15, .15, .04, .01]))
    channel = np.where(cols["channel"][first] == APP, APP, WEB)
    for lo in range(0, user.size, chunk):
        at, f = slice(lo, lo + chunk), first[lo:lo + chunk]
        sink.add("signups", pa.table({
            "user_id": pa.array(user[at]), "device_id": pa.array(cols["device"][f]),
            "ip_num": pa.array(cols["ip_num"][f]), "signup_time": sink.stamp(t[at]),
            "country": _text(COUNTRIES, cols["ucountry"][f]), "email_domain": _text(DOMAINS, domain[at]),
            "signup_channel": _text(("web", "app"), (channel[at] == APP).astype(np.int8))}), None)


def _logins(rng: np.random.Generator, part: Rows, sink: _Sink) -> pa.Table:
    """Three orders in ten follow a login (seconds to hours before, same device and IP), a few after typos;
    scenario orders with `fails` set follow that many failed attempts, a bot's pace apart."""
    bot = part["fails"] >= 0
    idx = np.flatnonzero(bot | (rng.random(bot.size) < 0.3))
    bot = bot[idx]
    fails = np.where(bot, part["fails"][idx], rng.choice(4, idx.size, p=[.97, .025, .004, .001]))
    group, pos = _expand(1 + fails)
    row, k = idx[group], group.size
    human = np.clip(rng.lognormal(np.log(600), 1.2, idx.size), 10, 6 * 3600)
    wait = np.where(bot, rng.integers(60, 1800, idx.size), human)
    step = np.where(bot[group], rng.integers(20, 200, k), rng.integers(5, 60, k)) * (pos > 0)
    ts = part["ts"][row]
    t = np.maximum(ts - wait.astype(np.int64)[group] - _after(step, pos), np.minimum(part["created"][row], ts - 1))
    return pa.table({"user_id": pa.array(part["user"][row]), "device_id": pa.array(part["device"][row]),
                     "ip_num": pa.array(part["ip_num"][row]), "login_time": sink.stamp(t),
                     "success": pa.array((pos == 0).astype(np.int8))})


def _public_partners(w: _World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Creator public id -> internal index, the public merchants each creator promotes, and creator popularity."""
    public = w.public["influencer"]
    private = np.empty(public.max() - public.min() + 1, np.int64)
    private[public - public.min()] = np.arange(public.size)
    return private, w.public["merchant"][w.partners], public


def _clicks(w: _World, rng: np.random.Generator, part: Rows, partners: tuple, sink: _Sink) -> pa.Table:
    """Creator-driven orders follow 1-3 clicks (minutes to hours before; live streams sooner); scenario orders
    with `clicks` and `gap` set follow that many, the last `gap` seconds before; plus anonymous browsing."""
    private, promoted, public = partners
    inf, n = part["influencer"], part["ts"].size
    live, scripted = part["channel"] == LIVE, part["clicks"] >= 0
    usual = np.where(live, rng.integers(1, 4, n), 1 + (rng.random(n) < 0.1)) * (inf >= 0)
    idx = np.flatnonzero(np.where(scripted, part["clicks"], usual) > 0)
    group, pos = _expand(np.where(scripted, part["clicks"], usual)[idx])
    row, k = idx[group], group.size
    last = np.where(live[idx], rng.lognormal(np.log(240), 0.8, idx.size), rng.lognormal(np.log(1500), 1.1, idx.size))
    last = np.where(part["gap"][idx] > 0, part["gap"][idx], np.clip(last, 15, 3 * DAY)).astype(np.int64)
    browsing = _after(rng.lognormal(np.log(300), 1.0, k), pos)  # a human's clicks, minutes apart
    earlier = np.where(part["gap"][row] > 0, rng.random(k) * 3600, browsing) * (pos > 0)
    internal = private[np.maximum(inf[row], public.min()) - public.min()]
    merchant = np.where(pos == 0, part["merchant"][row], promoted[internal, rng.integers(0, 4, k)])
    known = (rng.random(k) < 0.75) & (part["ts"][row] > part["created"][row])
    rows = {"user": np.where(known, part["user"][row], -1), "device": part["device"][row], "ip": part["ip_num"][row],
            "influencer": inf[row], "merchant": merchant, "t": part["ts"][row] - last[group] - earlier.astype(np.int64)}
    extra = _browsing(w, rng, part, partners)
    rows = {key: np.concatenate([rows[key], extra[key]]) for key in rows}
    return pa.table({"user_id": pa.array(rows["user"], mask=rows["user"] < 0), "device_id": pa.array(rows["device"]),
                     "ip_num": pa.array(rows["ip"]), "influencer_id": pa.array(rows["influencer"]),
                     "merchant_id": pa.array(rows["merchant"]), "click_time": sink.stamp(rows["t"])})


def _browsing(w: _World, rng: np.random.Generator, part: Rows, partners: tuple) -> Rows:
    """Anonymous clicks that lead to no order: one per twenty orders, on the devices and IPs of the chunk."""
    private, promoted, public = partners
    k, n = part["ts"].size // 20, part["ts"].size
    at, creator = rng.integers(0, n, k), rng.choice(w.i_p.size, k, p=w.i_p)
    lo, hi = int(part["ts"].min()) if n else 0, int(part["ts"].max()) + 1 if n else 1
    return {"user": np.full(k, -1), "device": part["device"][at], "ip": part["ip_num"][at],
            "influencer": public[creator], "merchant": promoted[creator, rng.integers(0, 4, k)],
            "t": rng.integers(max(lo - 3600, 0), max(hi, lo + 1), k)}


def _refunds(w: _World, rng: np.random.Generator, part: Rows, pos: np.ndarray, sink: _Sink) -> pa.Table:
    """4% of good orders are refunded days later (fully or in part); refund abusers claim nearly all, fully,
    within a week ("not received"). Refunds after the period's end are not known yet: not written."""
    chance = np.where(part["refund_p"] >= 0, part["refund_p"], np.where(part["scenario"] == 0, 0.04, 0.005))
    hit = np.flatnonzero(rng.random(chance.size) < chance)
    abuse, h = chance[hit] >= 0.5, hit.size
    usual = np.clip(rng.lognormal(np.log(5 * DAY), 0.7, h), 3600, 40 * DAY)
    delay = np.where(abuse, rng.integers(2 * DAY, 9 * DAY, h), usual)
    t = part["ts"][hit] + delay.astype(np.int64)
    amount = part["amount"][hit]
    amount = np.where(abuse | (rng.random(h) < 0.75), amount, np.round(amount * rng.uniform(0.2, 0.7, h), 2))
    reason = np.where(abuse, rng.choice(3, h, p=[.6, .3, .1]), rng.choice(5, h, p=[.15, .3, .2, .25, .1]))
    keep = t < w.end
    hit = hit[keep]
    return pa.table({"order_id": event_ids(pos[hit]), "user_id": pa.array(part["user"][hit]),
                     "merchant_id": pa.array(part["merchant"][hit]), "refund_time": sink.stamp(t[keep]),
                     "refund_amount": pa.array(amount[keep], pa.float64()), "reason": _text(REASONS, reason[keep])})


def _entity_labels(w: _World, cols: Rows, kind: str, scenarios: tuple[int, ...], rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """When fraud was confirmed (NEVER: not) and the label (1 fraud, 0 good, -1 unknown) of every entity of `kind`,
    by internal index.

    An entity's fraud is confirmed (the ban) 4-45 days, median 14, after its first fraud order; a confirmation
    after the period's end is not known yet, so that entity's label is unknown, like a late chargeback. The
    generator does not stop a merchant's orders at the ban: the date is when the answer became known."""
    fraud = np.isin(cols["scenario"], scenarios)
    public, first = np.unique(cols[kind][fraud], return_index=True)  # orders are sorted: the first fraud order
    days = np.clip(rng.lognormal(np.log(14), 0.5, public.size), 4, 45)
    confirmed = cols["ts"][fraud][first] + (days * DAY).astype(np.int64)
    public, confirmed = np.append(public, NEVER), np.append(confirmed, NEVER)  # a sentinel: every id finds a slot
    at = np.searchsorted(public, w.public[kind])
    confirmed_at = np.where(public[at] == w.public[kind], confirmed[at], NEVER)
    return confirmed_at, np.where(confirmed_at < NEVER, np.where(confirmed_at < w.end, 1, -1), 0)


def _label_columns(sink: _Sink, name: str, labels: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> dict:
    """The entity label (`name`: 1/0, empty = unknown) and `confirmed_at` (when the fraud was confirmed; empty
    unless it was), the same on every version row of the entity."""
    confirmed_at, label = labels[0][rows], labels[1][rows]
    known = label == 1
    return {name: pa.array(np.maximum(label, 0).astype(np.int8), mask=label < 0),
            "confirmed_at": pa.array(np.where(known, confirmed_at, 0) + sink.start_s, pa.timestamp("s"), mask=~known)}


def _merchants_table(w: _World, sink: _Sink, labels: tuple[np.ndarray, np.ndarray]) -> pa.Table:
    """Every version of every merchant (onboarding, tier upgrades, re-listings in another category), each with the
    merchant's label: brushing and bust-out merchants are confirmed fraud some days after their fraud starts."""
    merchant, t, cat, tier = _merchant_versions(w)
    public = w.public["merchant"][merchant]
    order = np.lexsort((t, public))
    return pa.table({"merchant_id": pa.array(public[order]), "category": _text(CATEGORIES, cat[order]),
                     "tier": _text(TIERS, tier[order]), "country": _text(COUNTRIES, w.m_country[merchant][order]),
                     "updated_at": sink.stamp(t[order]),
                     **_label_columns(sink, "is_fraud_merchant", labels, merchant[order])})


def _influencers_table(w: _World, sink: _Sink, labels: tuple[np.ndarray, np.ndarray]) -> pa.Table:
    """Every version of every creator: follower band (grows for some), niche (its first partner's category), and
    the creator's label: farmed-buyer and click-injection creators are confirmed some days after their fraud starts."""
    creator, t, band = w.i_versions
    public = w.public["influencer"][creator]
    order = np.lexsort((t, public))
    joined = np.full(w.i_p.size, np.iinfo(np.int64).max)
    np.minimum.at(joined, creator, t)
    return pa.table({"influencer_id": pa.array(public[order]), "follower_band": _text(BANDS, band[order]),
                     "niche": _text(CATEGORIES, w.m_cat[w.partners[creator[order], 0]]),
                     "joined_at": sink.stamp(joined[creator[order]]), "updated_at": sink.stamp(t[order]),
                     **_label_columns(sink, "is_fraud_influencer", labels, creator[order])})


def _ip_ranges_table(w: _World) -> pa.Table:
    """Seventy non-overlapping /16 blocks: seven per country (residential, mobile, hosting), sorted by `ip_low`."""
    low = w.ip_low.ravel()
    kind = np.tile(np.repeat([0, 1, 2], [4, 2, 1]), 10)
    country = np.repeat(np.arange(10), 7)
    order = np.argsort(low)
    return pa.table({"ip_low": pa.array(low[order]), "ip_high": pa.array(low[order] + 65535),
                     "country": _text(COUNTRIES, country[order]), "network": _text(NETWORKS, kind[order])})
