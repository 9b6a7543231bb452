"""A seeded synthetic order log of a content-commerce platform, with fraud scenarios and late labels.

Buyers, merchants and influencers come first (power-law activity and popularity); legit orders follow
a daily, weekly and promo clock; each fraud scenario adds rows with its own trace, and legit look-alikes
(live-stream bursts, viral videos, kiosks, parcel lockers, travellers, welcome coupons) keep every rule
imperfect. Labels arrive late like chargebacks, so the newest weeks are unknown. All numpy, vectorized:
loops run only over scenarios, categories or output chunks. `fraud_scenario` is the answer key. The same world's
other streams (signups, logins, refunds, clicks) and tables (merchants, influencers, IP ranges), and the five
scenarios only they reveal, are in `demo_streams.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DAY = 86_400
NEVER = np.iinfo(np.int64).max
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "MX", "ID", "VN", "PH", "NG")
COUNTRY_P = (0.32, 0.10, 0.08, 0.07, 0.10, 0.08, 0.10, 0.06, 0.06, 0.03)
CHANNELS = ("web", "app", "live", "video", "affiliate_link")
WEB, APP, LIVE, VIDEO, AFFILIATE = range(5)
CATEGORIES = ("fashion", "beauty", "home", "electronics", "food", "toys", "sports", "jewelry",
              "digital_goods", "gift_cards")
FASHION, BEAUTY, HOME, ELECTRONICS, FOOD, TOYS, SPORTS, JEWELRY, DIGITAL, GIFT = range(10)
CATEGORY_P = (0.24, 0.17, 0.13, 0.10, 0.08, 0.07, 0.07, 0.04, 0.06, 0.04)
PRICE_MEDIAN = np.log([32, 22, 40, 120, 18, 25, 45, 70, 6, 50])
PRICE_SIGMA = np.array([0.6, 0.55, 0.7, 1.0, 0.5, 0.6, 0.7, 0.9, 0.8, 0.7])
TIERS = ("new", "standard", "top")
METHODS = ("card", "wallet", "bnpl", "cod")
CARD, WALLET, BNPL, COD = range(4)
SCENARIOS = ("none", "stolen_card", "account_takeover", "promo_ring", "brushing", "affiliate_fraud",
             "new_attack_midperiod", "signup_farm", "refund_abuse", "click_injection", "merchant_bust_out",
             "credential_stuffing")  # the last five are seen only across streams (demo_streams.py)
# target share of all orders per scenario: ~1.5% fraud in all, a third of it in the cross-stream scenarios
SHARE = (0.0, 0.00198, 0.00132, 0.00198, 0.00132, 0.00119, 0.00165, 0.0012, 0.0011, 0.0011, 0.0013, 0.0011)
LABEL_DAYS = np.array([0, 10, 7, 20, 25, 18, 21, 15, 30, 35, 25, 8])  # median days until fraud is confirmed
HOURLY = np.array([.45, .3, .2, .15, .12, .15, .25, .4, .55, .65, .7, .75, .85, .8, .75, .75, .8, .9,
                   1.05, 1.25, 1.45, 1.5, 1.3, .85])
Rows = dict[str, np.ndarray]
# What an order leaves in the other streams (read by demo_streams.py, never written to events.parquet):
# network kind and key of its IP (-1: the buyer's own), failed logins before it and clicks before it
# (-1: as a legit buyer would), seconds from the last click (0: as a legit buyer would), refund chance.
TRACE_DEFAULTS = {"iptype": 0, "ipkey": -1, "fails": -1, "clicks": -1, "gap": 0, "refund_p": -1.0}
TRACE_TYPES = {"iptype": np.int8, "fails": np.int16, "clicks": np.int16, "gap": np.int32, "refund_p": np.float32}


class _World:
    """Buyers, merchants, influencers, id counters and the activity clock every scenario draws from."""

    def __init__(self, n_events: int, seed: int, days: int, start: str) -> None:
        self.rng = np.random.default_rng(seed)
        self.days, self.end = days, days * DAY
        self.counters = {"user": 0, "device": 0, "payment": 0, "address": 0}
        self._clock(int(np.datetime64(start, "D").astype(np.int64) + 3) % 7)  # 1970-01-01 was a Thursday
        self._merchants(max(60, n_events // 250))
        pop = 1 / (self.rng.permutation(max(20, n_events // 1500)) + 2.0) ** 1.2
        self.i_p = pop / pop.sum()
        self.partners = self.rng.choice(self.m_p.size, (pop.size, 4), p=self.m_p)  # merchants a creator promotes
        self._buyers(max(200, n_events // 6))

    def ids(self, kind: str, n: int) -> np.ndarray:
        """Reserve `n` fresh ids of an entity kind."""
        first = self.counters[kind]
        self.counters[kind] += int(n)
        return np.arange(first, first + int(n), dtype=np.int64)

    def _clock(self, first_weekday: int) -> None:
        day = np.arange(self.days * 24) // 24
        weekday = (day + first_weekday) % 7
        self.promo_days = np.unique([int(self.days * 0.37), int(self.days * 0.37) + 1, int(self.days * 0.8)])
        lift = np.ones(self.days)
        lift[self.promo_days] = (1.9, 1.6, 2.6)[: self.promo_days.size]
        daily = (1 + 0.25 * np.arange(self.days) / self.days) * lift * self.rng.lognormal(0, 0.08, self.days)
        weekly = np.select([weekday >= 5, weekday == 4], [1.3, 1.1], 1.0)  # weekends, Friday evening
        intensity = daily[day] * HOURLY[np.arange(day.size) % 24] * weekly
        self.edges = np.arange(day.size + 1, dtype=np.float64) * 3600
        self.cdf = np.concatenate([[0.0], np.cumsum(intensity)]) / intensity.sum()

    def cdf_at(self, t: np.ndarray) -> np.ndarray:
        """Share of the period's activity before time `t` (seconds since start)."""
        return np.interp(t, self.edges, self.cdf)

    def sample(self, n: int, after: np.ndarray | int = 0) -> np.ndarray:
        """Draw `n` times (seconds since start) from the activity clock, each not before `after`."""
        lo = self.cdf_at(np.maximum(after, 0))
        u = lo + self.rng.random(n) * (1 - lo)
        return np.minimum(np.interp(u, self.cdf, self.edges).astype(np.int64), self.end - 1)

    def _merchants(self, n: int) -> None:
        rng = self.rng
        rank = rng.permutation(n)
        pop = 1 / (rank + 3.0) ** 1.05
        self.m_cat = rng.choice(10, n, p=CATEGORY_P)
        self.m_cat[:10] = np.arange(10)  # every category has a merchant, even in tiny data sets
        self.m_tier = np.where(rank < max(1, n // 50), 2, 1)
        new = (self.m_tier == 1) & (rng.random(n) < 0.25)
        self.m_tier[new], pop[new] = 0, pop[new] * 0.3
        self.m_p = pop / pop.sum()

    def merchants_in(self, cat: np.ndarray) -> np.ndarray:
        """A popularity-weighted merchant of each requested category."""
        out = np.empty(cat.size, np.int64)
        for c in np.unique(cat):
            pick, ms = cat == c, np.flatnonzero(self.m_cat == c)
            out[pick] = self.rng.choice(ms, int(pick.sum()), p=self.m_p[ms] / self.m_p[ms].sum())
        return out

    def _buyers(self, n: int) -> None:
        rng = self.rng
        self.n_users = int(self.ids("user", n).size)  # legit buyers are users 0 .. n-1
        joined = rng.random(n) < 0.2  # signed up during the period
        created = -np.clip(rng.lognormal(np.log(500), 0.9, n), 1, 3000) * DAY
        created[joined] = self.sample(int(joined.sum())) - rng.integers(0, 3 * DAY, int(joined.sum()))
        self.created = created.astype(np.int64)
        weight = np.minimum(1 + rng.pareto(1.4, n), 150) * (1 - self.cdf_at(np.maximum(self.created, 0)))
        self.user_p = weight / weight.sum()
        self.country = rng.choice(10, n, p=COUNTRY_P)
        self.ip_home = np.where(rng.random(n) < 0.015, rng.integers(0, 10, n), self.country)  # expats
        self.hunter = rng.random(n) < 0.03  # legit coupon hunters
        self._instruments(n)
        self._homes(n)

    def _instruments(self, n: int) -> None:
        """Each buyer's 1-3 devices (some shared in a family) and 1-3 payment instruments."""
        rng = self.rng
        self.n_dev = rng.choice([1, 2, 3], n, p=[0.6, 0.33, 0.07])
        self.dev_base = self.ids("device", self.n_dev.sum())[np.cumsum(self.n_dev) - self.n_dev]
        self.dev0 = np.where(rng.random(n) < 0.04, self.dev_base[rng.integers(0, n, n)], self.dev_base)  # family
        self.dev_new, self.kiosks = self.ids("device", n), self.ids("device", max(1, n // 4000))
        self.n_pay = rng.choice([1, 2, 3], n, p=[0.55, 0.38, 0.07])
        self.pay_base = self.ids("payment", self.n_pay.sum())[np.cumsum(self.n_pay) - self.n_pay]
        # card / wallet / bnpl / cash on delivery, cumulative; COD is common from BR on in COUNTRIES
        cum = np.where(np.repeat(self.country >= 4, self.n_pay)[:, None], [.4, .65, .75, 1], [.6, .87, .98, 1])
        self.pay_method = np.minimum((rng.random(cum.shape[0])[:, None] > cum).sum(1), COD)

    def _homes(self, n: int) -> None:
        """One address per buyer (households and parcel lockers are shared), a move or a new phone for some."""
        rng = self.rng
        home = self.ids("address", n)
        home = np.where(rng.random(n) < 0.05, home[rng.integers(0, n, n)], home)  # households
        self.home = np.where(rng.random(n) < 0.03, rng.choice(self.ids("address", max(1, n // 1500)), n), home)
        self.move_at = np.where(rng.random(n) < 0.04, rng.integers(0, self.end, n), NEVER)
        self.moved_home = self.ids("address", n)
        self.upgrade_at = np.where(rng.random(n) < 0.1, rng.integers(0, self.end, n), NEVER)  # a new phone
        self.upgrade_at = np.where((self.move_at < NEVER) & (rng.random(n) < 0.35), self.move_at, self.upgrade_at)


def _expand(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row -> group index and position within the group, for groups of the given sizes."""
    group = np.repeat(np.arange(sizes.size), sizes)
    return group, np.arange(group.size) - (np.cumsum(sizes) - sizes)[group]


def _after(gaps: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Running sum of gaps within each group of contiguous rows (`pos` from `_expand`)."""
    total = np.cumsum(gaps)
    return total - (total - gaps)[np.arange(pos.size) - pos]


def _via(w: _World, channels: list[int], p: list[float], n: int) -> dict[str, np.ndarray]:
    """Channels, and the creator behind each live, video or affiliate order."""
    channel = w.rng.choice(channels, n, p=p)
    return {"channel": channel, "influencer": np.where(channel >= LIVE, w.rng.choice(w.i_p.size, n, p=w.i_p), -1)}


def _price(rng: np.random.Generator, cat: np.ndarray, median: float | None = None, sigma: float = 0.65) -> np.ndarray:
    """Unit prices: by category, or around `median`; gift cards come in denominations."""
    center = PRICE_MEDIAN[cat] if median is None else np.log(median)
    price = rng.lognormal(center, PRICE_SIGMA[cat] if median is None else sigma, cat.size)
    denominations = [10, 25, 50, 100, 200, 500] if median is None else [100, 200, 500]
    return np.where(cat == GIFT, rng.choice(denominations, cat.size), np.round(price, 2))


def _frame(scenario: int, n: int, **cols: object) -> Rows:
    """Rows of one scenario; scalars are broadcast, missing optional columns get their defaults."""
    defaults = {"coupon": 0.0, "items": 1, "influencer": -1, "known_device": False, "known_address": False,
                **TRACE_DEFAULTS}
    out = {k: np.broadcast_to(np.asarray(v), (n,)) for k, v in {**defaults, **cols}.items()}
    return {**out, "scenario": np.full(n, scenario, np.int8)}


def _legit(w: _World, n: int) -> Rows:
    """Ordinary orders: who buys is power-law, when follows the clock, where follows popularity."""
    rng = w.rng
    u = rng.choice(w.n_users, n, p=w.user_p)
    ts = w.sample(n, after=w.created[u])
    age = ts - w.created[u]
    via = rng.random(n) < np.where(age < 14 * DAY, 0.6, 0.35)  # new buyers arrive through videos
    channel = np.where(via, rng.choice([LIVE, VIDEO, AFFILIATE], n, p=[.35, .4, .25]),
                       rng.choice([WEB, APP], n, p=[.35, .65]))
    inf = np.where(via, rng.choice(w.i_p.size, n, p=w.i_p), -1)
    merchant = np.where(via, w.partners[inf, rng.integers(0, 4, n)], rng.choice(w.m_p.size, n, p=w.m_p))
    payment = w.pay_base[u] + np.where(rng.random(n) < 0.7, 0, rng.integers(0, w.n_pay[u]))
    items = 1 + rng.poisson(0.35, n)
    gross = np.round(_price(rng, w.m_cat[merchant]) * items, 2)
    coupon = _legit_coupons(w, u, ts, age, gross)
    ip = np.where(rng.random(n) < 0.025, rng.integers(0, 10, n), w.ip_home[u])  # travellers
    return _frame(0, n, ts=ts, user=u, created=w.created[u], merchant=merchant, payment=payment, influencer=inf,
                  ucountry=w.country[u], ipcountry=ip, channel=channel, method=w.pay_method[payment],
                  amount=gross - coupon, coupon=coupon, items=items, **_legit_places(w, u, ts))


def _legit_places(w: _World, u: np.ndarray, ts: np.ndarray) -> Rows:
    """Devices and addresses: mostly the buyer's own, sometimes new (phone upgrade, move, gift, kiosk)."""
    rng, n, joined = w.rng, u.size, w.created[u] >= 0
    slot = np.where(rng.random(n) < 0.75, 0, rng.integers(0, w.n_dev[u]))
    upgraded = (slot == 0) & (ts >= w.upgrade_at[u])
    device = np.where(upgraded, w.dev_new[u], np.where(slot == 0, w.dev0[u], w.dev_base[u] + slot))
    borrowed, kiosk = rng.random(n) < 0.015, rng.random(n) < 0.004  # a friend's phone; an internet cafe
    device[borrowed] = w.ids("device", borrowed.sum())
    device[kiosk] = rng.choice(w.kiosks, kiosk.sum())
    moved, gift = ts >= w.move_at[u], rng.random(n) < 0.04
    address = np.where(gift, w.home[rng.integers(0, w.n_users, n)], np.where(moved, w.moved_home[u], w.home[u]))
    return {"device": device, "address": address, "known_device": ~(upgraded | borrowed | kiosk | joined),
            "known_address": ~(moved | gift | joined)}


def _legit_coupons(w: _World, u: np.ndarray, ts: np.ndarray, age: np.ndarray, gross: np.ndarray) -> np.ndarray:
    """Coupon money: mostly none; coupon hunters, welcome offers and sale days give bigger ones more often."""
    rng = w.rng
    cases = [w.hunter[u], age < 3 * DAY, np.isin(ts // DAY, w.promo_days)]  # hunters, welcome offers, sales
    lo, hi = np.select(cases, [0.3, 0.2, 0.15], 0.05), np.select(cases, [0.6, 0.75, 0.5], 0.3)
    coupon = np.round(gross * (lo + rng.random(ts.size) * (hi - lo)), 2)
    return np.where(rng.random(ts.size) < np.select(cases, [0.85, 0.5, 0.4], 0.1), coupon, 0.0)


def _live_bursts(w: _World, base: Rows, n: int) -> Rows:
    """Legit velocity: during a live stream a buyer places a few orders within minutes."""
    rng, live = w.rng, np.flatnonzero(base["channel"] == LIVE)
    if n == 0 or live.size == 0:
        return {k: v[:0] for k, v in base.items()}
    group, pos = _expand(1 + rng.poisson(1.5, n))
    parent = rng.choice(live, n)[group[:n]]
    rows = {k: v[parent] for k, v in base.items()}
    rows["ts"] = np.minimum(rows["ts"] + (pos[:n] + 1) * rng.integers(40, 900, n), w.end - 1)
    rows["merchant"] = w.partners[rows["influencer"], rng.integers(0, 4, n)]
    rows["amount"] = _price(rng, w.m_cat[rows["merchant"]])
    rows["coupon"], rows["items"] = np.zeros(n), np.ones(n, np.int64)
    return rows


def _viral(w: _World, n: int) -> Rows:
    """Legit look-alike of affiliate fraud: a creator's video goes viral and first-time buyers pour in."""
    rng = w.rng
    event = _expand(rng.integers(20, 151, n // 20 + 1))[0][:n]
    k = int(event.max()) + 1 if n else 0
    inf = rng.choice(w.i_p.size, k)[event]  # uniform: mostly small creators
    ts = w.sample(k)[event] + (rng.random(n) * rng.integers(3600, 6 * 3600, k)[event]).astype(np.int64)
    ts = np.minimum(ts, w.end - 1)
    merchant = w.partners[inf, rng.integers(0, 4, n)]
    gross = _price(rng, w.m_cat[merchant])
    coupon = np.where(rng.random(n) < 0.5, np.round(gross * rng.uniform(0.2, 0.75, n), 2), 0.0)
    country = rng.choice(10, k, p=COUNTRY_P)[event]
    return _frame(0, n, ts=ts, user=w.ids("user", n), created=ts - rng.integers(60, 2 * DAY, n), merchant=merchant,
                  device=w.ids("device", n), payment=w.ids("payment", n), address=w.ids("address", n),
                  influencer=inf, ucountry=country, ipcountry=country,
                  channel=rng.choice([VIDEO, AFFILIATE, LIVE], n, p=[.6, .25, .15]),
                  method=rng.choice([CARD, WALLET, BNPL, COD], n, p=[.4, .3, .1, .2]), amount=gross - coupon,
                  coupon=coupon)


def _stolen_card(w: _World, rows: int) -> Rows:
    """Card testing (tiny orders minutes apart on one card and device), then a quick cash-out in big tickets."""
    rng, c = w.rng, max(2, round(rows / 5.5))
    tests = np.where(rng.random(c) < 0.65, rng.integers(2, 8, c), 0)
    camp, pos = _expand(tests + rng.integers(1, 4, c))
    n, test = camp.size, pos < tests[camp]
    t0 = np.where(rng.random(c) < 0.5, w.sample(c), rng.integers(0, w.end, c))  # fraudsters keep odd hours
    ts = t0[camp] + _after(np.where(test, rng.integers(15, 240, n), rng.integers(120, 2400, n)), pos)
    aged = rng.random(c) < 0.45  # bought aged accounts, or fresh sign-ups
    created = t0 - np.where(aged, rng.integers(30, 400, c) * DAY, rng.integers(600, 5 * DAY, c))
    country = rng.choice([0, 1, 2, 3], c, p=[.55, .2, .15, .1])
    rig = np.where(rng.random(c) < 0.25, rng.choice(w.ids("device", max(1, c // 4)), c), w.ids("device", c))
    cat = np.where(test, np.where(rng.random(n) < 0.5, DIGITAL, rng.integers(0, 10, n)),
                   rng.choice([ELECTRONICS, GIFT, JEWELRY, HOME], n, p=[.45, .3, .15, .1]))
    amount = np.where(test, np.round(rng.uniform(0.5, 5, n), 2), np.clip(_price(rng, cat, 380), 60, 4000))
    return _frame(1, n, ts=np.minimum(ts, w.end - 1), user=w.ids("user", c)[camp], created=created[camp],
                  merchant=w.merchants_in(cat), device=rig[camp], payment=w.ids("payment", c)[camp],
                  address=w.ids("address", c)[camp], ucountry=country[camp], method=CARD, amount=amount,
                  ipcountry=np.where(rng.random(n) < 0.55, rng.integers(0, 10, n), country[camp]),
                  **_via(w, [WEB, APP, LIVE, VIDEO], [.5, .3, .12, .08], n))


def _account_takeover(w: _World, rows: int) -> Rows:
    """An old account on a new device ships a few big orders, mostly to a new address, on stored payments."""
    rng, c = w.rng, max(2, round(rows / 2))
    camp, pos = _expand(rng.choice([1, 2, 3, 4], c, p=[.4, .3, .2, .1]))
    n, victim = camp.size, rng.choice(np.flatnonzero(w.created < -180 * DAY), c)
    ts = w.sample(c)[camp] + _after(rng.integers(600, 8 * 3600, n), pos)
    redirected, new_card = rng.random(c) < 0.75, rng.random(c) < 0.2
    address = np.where(redirected, w.ids("address", c), w.home[victim])
    payment = np.where(new_card, w.ids("payment", c), w.pay_base[victim])
    method = np.where(new_card, CARD, w.pay_method[w.pay_base[victim]])
    cat = rng.choice([ELECTRONICS, GIFT, JEWELRY, HOME, FASHION], n, p=[.4, .25, .15, .1, .1])
    country = w.country[victim][camp]
    return _frame(2, n, ts=np.minimum(ts, w.end - 1), user=victim[camp], created=w.created[victim][camp],
                  merchant=w.merchants_in(cat), device=w.ids("device", c)[camp], payment=payment[camp],
                  address=address[camp], ucountry=country, method=method[camp],
                  ipcountry=np.where(rng.random(n) < 0.35, rng.integers(0, 10, n), country),
                  amount=np.clip(_price(rng, cat, 320, 0.7), 40, 5000), known_address=~redirected[camp],
                  fails=rng.choice([0, 1, 2], n, p=[.6, .3, .1]), **_via(w, [WEB, APP, LIVE], [.45, .45, .1], n))


def _promo_ring(w: _World, rows: int) -> Rows:
    """Dozens of brand-new accounts on a few shared devices/addresses redeem heavy coupons, mostly on sale days.

    Half the rings are patient: their accounts sign up on the ring's devices and wait 2-10 days before buying,
    arrive over three to six weeks, a dozen devices and half a dozen addresses shared by forty accounts, coupons
    no bigger than a welcome offer's, so a 7-day window on one device or address sees one or two buyers; only
    the 30-day graph of shared devices, cards and addresses sees the ring (DESIGN §2.2)."""
    rng, r = w.rng, max(1, round(rows / 45))
    size = rng.integers(15, 61, r)
    ring_of, _ = _expand(size)
    a = ring_of.size
    acc, pos = _expand(rng.choice([1, 2, 3], a, p=[.7, .22, .08]))
    n, ring = acc.size, ring_of[acc]
    slow = rng.random(r) < 0.5
    span = np.where(slow, rng.integers(21, 43, r), 2)
    day = np.where(rng.random(r) < 0.6, rng.choice(w.promo_days, r), rng.integers(0, w.days - 2, r))
    day = np.where(slow, rng.integers(0, np.maximum(w.days - span, 1)), day)
    first = day[ring_of] * DAY + (rng.random(a) * span[ring_of] * DAY).astype(np.int64)
    spoof = ~slow & (rng.random(r) < 0.4)  # the better fast rings spoof device ids and vary the address spelling
    device = _pool(w, "device", np.where(slow, np.maximum(2, size // 3), rng.integers(2, 7, r)), ring_of)
    address = _pool(w, "address", np.where(slow, np.maximum(2, size // 7), rng.integers(1, 5, r)), ring)
    device = np.where(spoof[ring_of], w.ids("device", a), device)[acc]
    own_wallet = np.where(rng.random(a) < 0.6, w.ids("payment", a), -1)[acc]
    payment = np.where(own_wallet >= 0, own_wallet, _pool(w, "payment", np.full(r, 3), ring))
    merchants = w.merchants_in(rng.choice([BEAUTY, FASHION, FOOD], 3 * r, p=[.4, .4, .2])).reshape(r, 3)
    gross = np.clip(np.round(rng.lognormal(np.log(60), 0.4, n), 2), 15, 200)
    coupon = np.round(gross * np.where(slow[ring], rng.uniform(0.2, 0.7, n), rng.uniform(0.3, 0.85, n)), 2)
    country = rng.choice(10, r, p=COUNTRY_P)[ring]
    return _frame(3, n, ts=np.minimum(first[acc] + pos * rng.integers(1800, DAY, n), w.end - 1),
                  user=w.ids("user", a)[acc], created=(first - np.where(slow[ring_of], rng.integers(
                      2 * DAY, 10 * DAY, a), rng.integers(600, 36 * 3600, a)))[acc],
                  merchant=merchants[ring, rng.integers(0, 3, n)], device=device,
                  address=np.where(spoof[ring] & (rng.random(n) < 0.5), w.ids("address", n), address),
                  payment=payment, method=np.where(own_wallet >= 0, WALLET, CARD), amount=gross - coupon,
                  coupon=coupon, ucountry=country,
                  ipcountry=np.where(rng.random(n) < 0.92, country, rng.integers(0, 10, n)),
                  **_via(w, [APP, WEB, LIVE, VIDEO], [.6, .25, .1, .05], n))


def _pool(w: _World, kind: str, sizes: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each row, a random id from its group's own pool of fresh ids of `kind` (pool `sizes` per group)."""
    ids = w.ids(kind, sizes.sum())
    return ids[(np.cumsum(sizes) - sizes)[group] + w.rng.integers(0, sizes[group])]


def _brushing(w: _World, rows: int) -> Rows:
    """A small merchant buys its own goods: many cheap orders from a pool of aged accounts and a few addresses."""
    rng, c = w.rng, max(1, round(rows / 75))
    op, _ = _expand(rng.integers(30, 121, c))
    n, pool = op.size, rng.integers(8, 31, c)
    span = rng.integers(10, 51, c) * DAY
    t0 = rng.integers(0, np.maximum(w.end - span, 1))
    account = (np.cumsum(pool) - pool)[op] + rng.integers(0, pool[op])
    created = t0[np.repeat(np.arange(c), pool)] - rng.integers(10, 300, pool.sum()) * DAY
    drop = w.ids("address", 3 * c)[::3][op] + rng.integers(0, rng.integers(1, 4, c)[op])
    farm = w.ids("device", 5 * c)[::5][op] + rng.integers(0, rng.integers(2, 6, c)[op])
    farm = np.where(rng.random(n) < 0.4, farm, w.ids("device", pool.sum())[account])  # or one phone per account
    country = rng.choice(10, c, p=COUNTRY_P)[op]
    ts = t0[op] + (rng.random(n) * span[op]).astype(np.int64)
    merchant = rng.choice(np.flatnonzero(w.m_tier < 2), c)[op]  # small shops, not the top tier
    return _frame(4, n, ts=ts, user=w.ids("user", pool.sum())[account], created=created[account], merchant=merchant,
                  device=farm,
                  payment=w.ids("payment", 3 * c)[::3][op] + rng.integers(0, 3, n),
                  address=np.where(rng.random(n) < 0.7, drop, w.ids("address", n)), ucountry=country,
                  ipcountry=country, channel=rng.choice([APP, WEB], n, p=[.6, .4]),
                  method=rng.choice([WALLET, CARD], n, p=[.7, .3]), amount=np.round(rng.uniform(3, 25, n), 2))


def _affiliate_fraud(w: _World, rows: int) -> Rows:
    """A small creator fakes conversions: bursts of cheap affiliate orders from fresh accounts on the creator's
    device farm. The bursts are days or weeks apart, so a later order of a burst's account shares devices with
    buyers already charged back (the graph's fraud share, DESIGN §2.2)."""
    rng = w.rng
    sizes = rng.integers(15, 61, rows // 15 + 1)
    b = int(np.searchsorted(np.cumsum(sizes), rows)) + 1  # bursts until the scenario's share is reached
    c = max(1, round(b / 3.5))  # creators, three or four bursts each
    burst_op, (burst, _) = np.arange(b) * c // b, _expand(sizes[:b])
    n, op = burst.size, burst_op[burst]
    inf = rng.choice(np.flatnonzero(w.i_p <= np.median(w.i_p)), c)[op]
    at = w.sample(c)[burst_op] + (rng.random(b) * rng.integers(7, 36, c)[burst_op] * DAY).astype(np.int64)
    ts = at[burst] + (rng.random(n) * rng.integers(3600, 5 * 3600, b)[burst]).astype(np.int64)
    farm = _pool(w, "device", rng.integers(3, 13, c), op)  # one farm per creator: its bursts weeks apart share it
    drop = _pool(w, "address", np.full(c, 2), op)
    country = rng.choice(10, c, p=COUNTRY_P)[op]
    return _frame(5, n, ts=np.minimum(ts, w.end - 1), user=w.ids("user", n), created=ts - rng.integers(300, DAY, n),
                  merchant=w.partners[inf, rng.integers(0, 4, n)], device=farm, payment=w.ids("payment", n),
                  address=np.where(rng.random(n) < 0.4, drop, w.ids("address", n)), influencer=inf,
                  ucountry=country, ipcountry=np.where(rng.random(n) < 0.95, country, rng.integers(0, 10, n)),
                  channel=rng.choice([AFFILIATE, VIDEO], n, p=[.7, .3]),
                  method=rng.choice([COD, WALLET, CARD], n, p=[.4, .35, .25]), clicks=1, gap=rng.integers(30, 300, n),
                  amount=np.clip(np.round(rng.lognormal(np.log(22), 0.4, n), 2), 6, 60))


PROBE = 0.1  # share of the mid-period attack's accounts in its opening probe


def _new_attack(w: _World, rows: int) -> Rows:
    """From day ~72 on, sleeper accounts (mostly MX) max out BNPL on electronics: no rule was written for it.

    The ring opens with a probe, as a ring that has found a gap does: on the first day a tenth of its accounts
    order within hours of each other from the ring's own network abroad (their IP country is not theirs), where
    production's cross-border review sees some of them; from the next day on the ring routes through local
    proxies and ramps up. The probe draws from its own generator, so every other row is as it was without it.
    """
    rng, a = w.rng, max(2, round(rows / 1.8))
    acc, pos = _expand(rng.choice([1, 2, 3], a, p=[.4, .4, .2]))
    n, start = acc.size, int(w.days * 0.6) * DAY
    first = start + ((w.end - start) * np.sqrt(rng.random(a))).astype(np.int64)  # the attack ramps up
    country = np.where(rng.random(a) < 0.85, 5, 4)[acc]
    cat = np.where(rng.random(n) < 0.8, ELECTRONICS, HOME)
    gaps = pos * rng.integers(2 * 3600, 2 * DAY, n)
    age = rng.integers(15, 90, a) * DAY
    probe = w.rng.spawn(1)[0]
    probing = probe.random(a) < PROBE
    lo, hi = w.cdf_at(np.array([start, start + DAY]))
    first[probing] = np.interp(lo + probe.random(int(probing.sum())) * (hi - lo), w.cdf, w.edges).astype(np.int64)
    ts = np.minimum(first[acc] + gaps, w.end - 1)
    abroad = probing[acc] & (ts < start + DAY)
    ipcountry = np.where(abroad, (country + probe.integers(1, 10, n)) % 10, country)
    return _frame(6, n, ts=ts, user=w.ids("user", a)[acc], created=(first - age)[acc],
                  merchant=w.merchants_in(cat), device=w.ids("device", a)[acc], payment=w.ids("payment", a)[acc],
                  address=w.ids("address", a)[acc], ucountry=country, ipcountry=ipcountry, method=BNPL,
                  channel=rng.choice([APP, WEB], n, p=[.75, .25]), known_device=True, known_address=True,
                  amount=np.clip(_price(rng, cat, 520, 0.45), 200, 1500))


MAKERS = (_stolen_card, _account_takeover, _promo_ring, _brushing, _affiliate_fraud, _new_attack)


def _orders(w: _World, n_events: int) -> Rows:
    """All orders, legit and fraud, sorted by time (a maker may add legit rows of its own: `scenario` 0)."""
    from riskconsole.demo_streams import CROSS_MAKERS

    fraud = [make(w, round(share * n_events)) for make, share in zip(MAKERS + CROSS_MAKERS, SHARE[1:])]
    n_legit = n_events - sum(part["ts"].size for part in fraud)
    n_burst, n_viral = n_legit // 20, n_legit // 250
    base = _legit(w, n_legit - n_burst - n_viral)
    parts = [base, _live_bursts(w, base, n_burst), _viral(w, n_viral), *fraud]
    cols = {k: np.concatenate([p[k] for p in parts], dtype=TRACE_TYPES.get(k)) for k in base}
    order = np.argsort(cols["ts"], kind="stable")
    for k in cols:  # one column at a time, so only one unsorted copy is alive
        cols[k] = cols[k][order]
    return cols


def _first_use(user: np.ndarray, other: np.ndarray) -> np.ndarray:
    """True on the first row (in row order) of each (user, other) pair."""
    _, first = np.unique(user * (int(other.max()) + 1) + other, return_index=True)
    out = np.zeros(user.size, bool)
    out[first] = True
    return out


def _scramble(rng: np.random.Generator, ids: np.ndarray, size: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle an id space so that no id range gives a scenario away; -1 (none) stays -1. Returns the map too."""
    perm = rng.permutation(max(size, int(ids.max()) + 1)) + offset
    return np.where(ids >= 0, perm[np.maximum(ids, 0)], -1), perm


def _finish(w: _World, c: Rows) -> Rows:
    """Output columns: labels, new device/address flags, account age, merchant attributes, public ids."""
    from riskconsole.demo_streams import merchant_asof, order_ips

    rng, ts, n = w.rng, c["ts"], c["ts"].size
    fraud_days = np.clip(rng.lognormal(np.log(np.maximum(LABEL_DAYS[c["scenario"]], 1)), 0.6), 3, 60)
    label_ts = ts + (np.where(c["scenario"] > 0, fraud_days, rng.uniform(20, 40, n)) * DAY).astype(np.int64)
    out = {"label_ts": label_ts, "known": (label_ts < w.end) & (rng.random(n) >= 0.01),  # ~1% never labeled
           "new_device": _first_use(c["user"], c["device"]) & ~c["known_device"],
           "new_address": _first_use(c["user"], c["address"]) & ~c["known_address"],
           "age": ((ts - c["created"]) // DAY).astype(np.int32), "ip_num": order_ips(w, c),
           **merchant_asof(w, c["merchant"], ts),  # category and tier as they were at the order
           "amount": np.round(c["amount"], 2), "coupon": np.round(c["coupon"], 2)}
    sizes = {"merchant": w.m_p.size, "influencer": w.i_p.size}
    w.public = {}  # internal id -> public id, per entity kind: the other streams speak the public ids
    for name, offset in (("user", 1_000_000), ("merchant", 10_000), ("device", 20_000_000),
                         ("payment", 40_000_000), ("address", 60_000_000), ("influencer", 500_000)):
        out[name], w.public[name] = _scramble(rng, c[name], sizes.get(name, w.counters.get(name, 0)), offset)
    out.update(_production(np.random.default_rng([w.days, n, 12]), c, out))
    out["known"] &= ~((out["prod_action"] == PROD_BLOCK) & ~out["explore"])  # a blocked order never ships
    keep = ("ts", "scenario", "items", "ucountry", "ipcountry", "channel", "method", "created", *TRACE_DEFAULTS)
    return {**{k: c[k] for k in keep}, **out}


PROD_ACTIONS = ("allow", "review", "block")
MIN_EVENTS = 5_000  # the fewest orders whose month holds every scenario
PROD_BLOCK = 2
PROD_BLOCK_SHARE, PROD_REVIEW_SHARE = 0.01, 0.01  # production blocks the riskiest 1% and reviews the next 1%
EXPLORE = 0.02  # share of would-be blocks let through at random, so their outcome is learnt


def _production(rng: np.random.Generator, c: Rows, out: Rows) -> Rows:
    """What the shop's production strategy did: points on the signals plus its own model's noisy skill.

    Its model knew most scenarios (not the attack that starts mid-period); a would-be block is let through at
    random with chance EXPLORE (`explore` = 1, `propensity` = EXPLORE on every would-be block).
    """
    fraud = c["scenario"] > 0
    points = (2.0 * (out["age"] < 1) + 1.5 * out["new_device"] + 1.0 * out["new_address"]
              + 2.0 * (c["ucountry"] != c["ipcountry"]) + 1.0 * (out["amount"] > 400))
    model = 1.5 * (fraud & (c["scenario"] != SCENARIOS.index("new_attack_midperiod"))) + rng.normal(0, 1, fraud.size)
    score = points + model
    block_at, review_at = np.quantile(score, [1 - PROD_BLOCK_SHARE, 1 - PROD_BLOCK_SHARE - PROD_REVIEW_SHARE])
    action = np.where(score >= block_at, PROD_BLOCK, np.where(score >= review_at, 1, 0)).astype(np.int8)
    would_block = action == PROD_BLOCK
    return {"prod_action": action, "explore": would_block & (rng.random(fraud.size) < EXPLORE),
            "propensity": np.where(would_block, EXPLORE, np.nan)}


def _text(vocabulary: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pc.take(pa.array(vocabulary), pa.array(codes.astype(np.int8)))


def event_ids(positions: np.ndarray) -> pa.Array:
    """Public order ids of rows at these positions of the time-sorted order log: o00000001, ..."""
    return pc.binary_join_element_wise("o", pc.utf8_lpad(pa.array(positions + 1).cast(pa.string()), 8, "0"), "")


def _table(c: Rows, first: int, start_s: int) -> pa.Table:
    """One chunk of output rows as an Arrow table (event ids numbered from `first` + 1)."""
    stamp = pa.timestamp("s")
    return pa.table({
        "event_id": event_ids(np.arange(first, first + c["ts"].size)),
        "ts": pa.array(c["ts"] + start_s, stamp),
        "is_fraud": pa.array((c["scenario"] > 0).astype(np.int8), mask=~c["known"]),
        "label_ts": pa.array(c["label_ts"] + start_s, stamp, mask=~c["known"]),
        "amount": pa.array(c["amount"], pa.float64()),
        **{f"{k}_id": pa.array(c[k], pa.int64()) for k in ("user", "merchant", "device", "payment", "address")},
        "influencer_id": pa.array(c["influencer"], pa.int64(), mask=c["influencer"] < 0),
        "account_age_days": pa.array(c["age"]),
        "user_country": _text(COUNTRIES, c["ucountry"]), "ip_country": _text(COUNTRIES, c["ipcountry"]),
        "channel": _text(CHANNELS, c["channel"]), "merchant_category": _text(CATEGORIES, c["category"]),
        "merchant_tier": _text(TIERS, c["tier"]), "coupon_amount": pa.array(c["coupon"], pa.float64()),
        "items": pa.array(c["items"].astype(np.int16)), "is_new_device": pa.array(c["new_device"]),
        "is_new_address": pa.array(c["new_address"]), "payment_method": _text(METHODS, c["method"]),
        "fraud_scenario": _text(SCENARIOS, c["scenario"]), "ip_num": pa.array(c["ip_num"], pa.int64()),
        "prod_action": _text(PROD_ACTIONS, c["prod_action"]), "explore": pa.array(c["explore"].astype(np.int8)),
        "propensity": pa.array(c["propensity"], pa.float64(), mask=np.isnan(c["propensity"])),
    })


def _write(path: Path, cols: Rows, start_s: int, chunk: int = 1_000_000) -> None:
    """Write in row groups of `chunk` rows, so memory for the Arrow copy stays bounded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for first in range(0, cols["ts"].size, chunk):
        table = _table({k: v[first:first + chunk] for k, v in cols.items()}, first, start_s)
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=chunk)
    writer.close()


def generate_events(path: Path, n_events: int = 1_000_000, seed: int = 7, days: int = 120,
                    start: str = "2026-01-01", streams: bool = True) -> dict:
    """Write a seeded demo order log to one Parquet file, sorted by time, and the world's other streams beside it.

    Args:
        path: the Parquet file to write (parent folders are created). With `streams`, the signups, logins,
            refunds and clicks streams and the merchants, influencers and ip_ranges tables are written to
            `<name>.parquet` in the same folder (see `riskconsole.demo_streams`).
        n_events: number of orders (at least 5,000).
        seed: same seed, same file.
        days: length of the period (at least 30); its end is the data set's "now": later labels are unknown.
        start: first day of the period (YYYY-MM-DD).
        streams: also write the other streams and the tables.

    Returns:
        A summary: path, rows, period start and end, fraud_rate, labeled_share, orders per scenario, and rows
        per stream or table written.

    Raises:
        ValueError: n_events or days too small for the scenarios.
    """
    if n_events < MIN_EVENTS or days < 30:
        raise ValueError(f"the demo needs n_events >= {MIN_EVENTS} and days >= 30 (got {n_events} and {days})")
    from riskconsole.demo_streams import plan_world, write_streams

    world, start_s = _World(n_events, seed, days, start), int(np.datetime64(start, "s").astype(np.int64))
    plan_world(world, seed)
    cols = _finish(world, _orders(world, n_events))
    _write(Path(path), cols, start_s)
    written = write_streams(world, cols, Path(path).parent, start_s, seed) if streams else {}
    counts = np.bincount(cols["scenario"], minlength=len(SCENARIOS))
    return {"path": str(path), "rows": int(n_events), "start": start, "end": str(np.datetime64(start, "D") + days),
            "fraud_rate": round(float(counts[1:].sum() / n_events), 5),
            "labeled_share": round(float(cols["known"].mean()), 4),
            "scenarios": {name: int(k) for name, k in zip(SCENARIOS, counts)}, "streams": written}
