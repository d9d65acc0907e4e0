"""Per-extract writers: background population events merged with planted cohort data.

Delta extracts are generated month by month from per-month seeded generators
(the first delivery carries the backlog), snapshots are filtered from compact
episode tables, so memory stays flat however many months are written.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np

from .calendar import (
    academic_year_label,
    age_on,
    d,
    last_ended_term,
    month_end,
    month_start,
    o,
    term_end,
    term_sessions,
    term_start,
    term_year,
)
from .cohort import Family, Planted
from .conventions import DEFAULTS, Conventions
from .corruption import View, noisy, postcode_style, stable_view
from .ids import format_nhs, format_ni
from .people import ROLE_CHILD, ROLE_HEAD, ROLE_PARTNER, County, nicknames
from .rand import KeyedRandom
from .truth import Truth, hid, pid
from .writer import FileWriter, columns, plan_faults, variant

# files not delivered every month: the ones a source may send again unchanged
SOMETIMES = ("dwp_benefits.csv", "dwp_employment.csv", "school_attendance.csv",
             "school_exclusions.csv")
SCHOOL_MONTHS = (1, 5, 9)
DWP_MONTHS = (3, 6, 9, 12)
THREE_YEARS = 1096
CATEGORIES = ("DOMESTIC", "ASB", "MISSING_PERSON", "CONCERN_FOR_WELFARE", "CRIME", "OTHER")
CAT_P = (0.12, 0.2, 0.03, 0.12, 0.38, 0.15)
SUSPECT_OUTCOMES = ("CHARGED", "CAUTIONED", "COMMUNITY_RESOLUTION", "NFA", "ONGOING")
OFFENCES = ("Theft and handling", "Violence against the person", "Criminal damage",
            "Public order", "Drugs", "Burglary", "Robbery", "Motoring offences")
DISPOSALS = ("caution", "conditional_caution", "referral_order", "youth_rehabilitation_order",
             "custody", "other")


def dmy(day: int | None) -> str:
    """%d/%m/%Y."""
    if day is None:
        return ""
    x = d(day)
    return f"{x.day:02d}/{x.month:02d}/{x.year}"


def iso(day: int | None) -> str:
    """%Y-%m-%d."""
    return "" if day is None else d(day).isoformat()


def ymd(day: int | None) -> str:
    """%Y%m%d."""
    return "" if day is None else d(day).strftime("%Y%m%d")


def scramble(p: int, k: int = 0) -> int:
    """A bijection on 0..9,999,999 so source references don't reveal person ids."""
    return (p * 2_654_435_761 + 1_234_567 + k * 7_777_777) % 10_000_000


class Sources:
    """State shared by the monthly writers."""

    def __init__(self, c: County, fams: list[Family], planted: Planted, seed: int, out: Path,
                 start: date, months: int, backlog: int, truth: Truth, faults: bool,
                 conv: Conventions | None = None) -> None:
        self.c, self.fams, self.pl, self.seed, self.out = c, fams, planted, seed, out
        self.conv = conv or Conventions(seed, DEFAULTS)
        self.hooks: dict[str, object] = {}
        self.start, self.months, self.backlog, self.truth = start, months, backlog, truth
        self.faults_on = faults
        self.views: dict[str, dict[int, View]] = {}
        self.cohort_mask = np.zeros(c.n, bool)
        self.cohort_hh = np.zeros(len(c.hh_start), bool)
        self.family_of: dict[int, Family] = {}
        for f in fams:
            self.cohort_hh[f.household] = True
            for p in f.members:
                self.cohort_mask[p] = True
                self.family_of[p] = f
        self.dob_order = np.argsort(c.dob, kind="stable")
        self.dob_sorted = c.dob[self.dob_order]
        self.counts: dict[str, dict[str, int]] = {}
        self.bytes = 0
        self.end = o(month_end(month_start(start.year, start.month, months - 1)))
        self.pending_yot: dict[int, list[tuple]] = {}
        self.prev_delta: dict[str, list[tuple]] = {}
        rng = np.random.default_rng([seed, 401])
        n = c.n
        base = rng.beta(1.3, 24, n)
        high = rng.random(n) < 0.07
        base[high] = rng.beta(2.2, 9, int(high.sum()))
        self.abs_base = base.astype(np.float32)
        self.unauth_share = rng.uniform(0.1, 0.5, n).astype(np.float32)
        self.unauth_share[high] = rng.uniform(0.4, 0.8, int(high.sum()))
        self.sixth = rng.random(n) < 0.45
        self.special = rng.random(n) < 0.012
        self.joiner = rng.random(n) < 0.03
        self.p_town = c.a_town[c.hh_addr[c.hh]]
        ev = sorted(enumerate(planted.evidence), key=lambda x: (x[1][6], x[1][0], x[0]))
        self.evidence = [(f"EV{i + 10_000:06d}", e) for i, (_, e) in enumerate(ev)]
        self._build_social_care()
        self._build_missing()

    # ------------------------------------------------------------ helpers
    def month_label(self, m: int) -> str:
        """YYYY-MM of delivery m."""
        x = month_start(self.start.year, self.start.month, m)
        return f"{x.year:04d}-{x.month:02d}"

    def month_of(self, day: int) -> int:
        """Delivery index whose month contains day (negative for backlog months)."""
        x = d(day)
        return (x.year - self.start.year) * 12 + x.month - self.start.month

    def view(self, source: str, p: int) -> View:
        """Cached stable view of p in source."""
        cache = self.views.setdefault(source, {})
        v = cache.get(p)
        if v is None:
            v = stable_view(self.c, p, source, self.seed)
            cache[p] = v
        return v

    def postcode(self, p: int, v: View, day: int, rnd: KeyedRandom) -> str:
        """Household postcode on day (or the old one if the source never updated it)."""
        h = int(self.c.hh[p])
        a = self.c.addr_at(h, day)
        if v.old_address and self.c.hh_prev_addr[h] >= 0:
            a = int(self.c.hh_prev_addr[h])
        return postcode_style(self.c.a_postcode[a], rnd)

    def sample_age(self, rng: np.random.Generator, day: int, lo: float, hi: float,
                   n: int) -> np.ndarray:
        """n residents aged lo..hi on day (not cohort members)."""
        a = int(np.searchsorted(self.dob_sorted, np.int32(day - int(hi * 365.25))))
        b = int(np.searchsorted(self.dob_sorted, np.int32(day - int(lo * 365.25))))
        if b <= a or n == 0:
            return np.zeros(0, np.int64)
        ps = self.dob_order[rng.integers(a, b, n)]
        return ps[~self.cohort_mask[ps]]

    def open(self, m: int, fname: str, faults: dict) -> FileWriter:
        """Open month m's file."""
        label = self.month_label(m)
        folder = self.out / label
        folder.mkdir(parents=True, exist_ok=True)
        if fname not in self.hooks:
            self.hooks[fname] = self.conv.row_hook(fname, columns(fname))
        return FileWriter(folder / fname, fname, label, self.truth,
                          variant(self.seed, m, fname), faults.get(fname),
                          self.hooks[fname])  # type: ignore[arg-type]

    def close(self, m: int, w: FileWriter) -> None:
        """Close and count."""
        n = w.close()
        self.counts.setdefault(self.month_label(m), {})[w.fname] = n

    # ------------------------------------------------------------ run
    def write_month(self, m: int) -> None:
        """Every delivery that arrives in month m."""
        faults = plan_faults(self.seed, m, self.faults_on)
        first = month_start(self.start.year, self.start.month, m)
        as_of = o(month_end(first))
        self.cohort(m, as_of, faults)
        self.yot(m, faults)
        self.police(m, faults)
        if first.month in SCHOOL_MONTHS:
            self.school(m, o(first), faults)
        if first.month in DWP_MONTHS:
            self.dwp(m, as_of, faults)
        self.social_care(m, as_of, faults)
        if m > 0:
            self._redeliver(m)

    def _redeliver(self, m: int) -> None:
        """Last month's termly/quarterly snapshot sent again, byte-identical (conventions)."""
        label, prev = self.month_label(m), self.month_label(m - 1)
        faulted = plan_faults(self.seed, m - 1, self.faults_on)
        for fname in SOMETIMES:
            src = self.out / prev / fname
            if (self.out / label / fname).exists() or not src.exists() or fname in faulted \
                    or not self.conv.redeliver(m, fname):
                continue
            shutil.copyfile(src, self.out / label / fname)
            self.counts.setdefault(label, {})[fname] = self.counts[prev][fname]

    def second_id(self, source: str, p: int, day: int) -> bool:
        """A cohort member's record from day under a second id of the source (conventions)."""
        f = self.family_of.get(p)
        return f is not None and day >= f.attached_on and self.conv.split(source, p)

    def nickname(self, p: int, first: str) -> str:
        """The name a re-referral is recorded under: a nickname where there is one."""
        nicks = nicknames().get(self.c.first_name(p))
        return KeyedRandom(self.seed, 9_051, p).choice(nicks) if nicks else first

    # ------------------------------------------------------------ cohort
    def cohort(self, m: int, as_of: int, faults: dict) -> None:
        """cohort_* and practitioner_evidence snapshots."""
        c = self.c
        live = [f for f in self.fams if f.attached_on <= as_of]
        rnd = KeyedRandom(self.seed, 3, 11)
        wf = self.open(m, "cohort_families.csv", faults)
        wm = self.open(m, "cohort_members.csv", faults)
        wa = self.open(m, "cohort_addresses.csv", faults)
        wp = self.open(m, "cohort_problems.csv", faults)
        for f in live:
            closed = f.closed_on if f.closed_on and f.closed_on <= as_of else None
            wf.row([f.family_id, dmy(f.attached_on), f.lead_worker, dmy(closed)], bg=False)
            for p in f.members:
                v = self.view("cohort", p)
                prnd = KeyedRandom(self.seed, 5, p)
                role = ("parent_carer" if c.role[p] in (ROLE_HEAD, ROLE_PARTNER) else
                        "child" if c.role[p] == ROLE_CHILD and age_on(int(c.dob[p]), as_of) < 18
                        else "other_adult")
                upn = c.upn(p) if c.has_upn(p) and prnd.random() < 0.75 else ""
                nhs = format_nhs(c.nhs(p), prnd.randrange(3)) if prnd.random() < 0.6 else ""
                ni = (format_ni(c.ni(p), prnd.randrange(4))
                      if c.has_ni(p, as_of) and prnd.random() < 0.55 else "")
                wm.row([f.person_ref[p], f.family_id, role, v.first, v.middle, v.last,
                        dmy(v.dob if v.dob is not None else int(c.dob[p])),
                        "" if v.sex == "U" else v.sex, upn, nhs, ni], bg=False)
                self.truth.record("cohort_members.csv", f.person_ref[p], p)
            h = f.household
            cur = int(c.hh_addr[h])
            moved = int(c.hh_moved_on[h])
            rows = []
            if c.hh_prev_addr[h] >= 0:
                prev = int(c.hh_prev_addr[h])
                rows.append((prev, moved - 400 - (f.idx * 37) % 1500, moved - 1))
            rows.append((cur, moved, None))
            for a, fr, to in rows:
                line1 = c.address_line1(a)
                line2 = ""
                if ", " in line1 and rnd.random() < 0.5:
                    line2, line1 = line1.split(", ", 1)
                wa.row([f.family_id, line1, line2, c.town(a), c.a_postcode[a],
                        str(c.a_uprn[a]) if (a + f.idx) % 9 else "", dmy(fr), dmy(to)], bg=False)
            for pr in f.problems:
                ref = f.person_ref[pr.person] if pr.person is not None else ""
                wp.row([f.family_id, pr.indicator, ref, dmy(pr.identified_on)], bg=False)
        for w in (wf, wm, wa, wp):
            self.close(m, w)
        we = self.open(m, "practitioner_evidence.csv", faults)
        for i, (eid, (fi, p, kind, domain, score, code, start, end, by)) in enumerate(
                self.evidence):
            if start > as_of:
                continue
            if p is not None:  # the truth: whoever the record is about, however written
                self.truth.record("practitioner_evidence.csv", eid, p)
            r = self.conv.evidence(i, fi, p, kind, domain, code, start, end)
            if r.start > as_of:
                continue
            f = self.fams[fi]
            ref = f.person_ref[r.person] if r.person is not None else ""
            we.row([eid, f.family_id, ref, kind, r.domain, "" if score is None else str(score),
                    r.code, dmy(r.start), dmy(r.end) if r.end is not None and r.end <= as_of
                    else "", by], bg=False)
        self.close(m, we)

    # ------------------------------------------------------------ YOT
    def _yot_background(self, v: int) -> list[tuple]:
        rng = np.random.default_rng([self.seed, 501, v + 1000])
        first = month_start(self.start.year, self.start.month, v)
        day0, ndays = o(first), month_end(first).day
        n = int(rng.poisson(self.c.n * 0.00015))
        out = []
        for p in self.sample_age(rng, day0, 10, 17.9, n):
            day = day0 + int(rng.integers(0, ndays))
            proven = rng.random() < 0.75
            outcome = day + int(rng.integers(10, 90)) if proven else None
            out.append((int(p), day, outcome, OFFENCES[int(rng.integers(0, len(OFFENCES)))],
                        int(rng.integers(1, 8)),
                        DISPOSALS[int(rng.integers(0, 6))] if proven else None,
                        int(rng.integers(0, 4)) if rng.random() < 0.6 else None))
        return out

    def yot(self, m: int, faults: dict) -> None:
        """yot_offences delta: new offences, outcome corrections, a few deletions."""
        w = self.open(m, "yot_offences.csv", faults)
        as_of = o(month_end(month_start(self.start.year, self.start.month, m)))
        vs = range(-self.backlog, 1) if m == 0 else [m]
        planted_by_v: dict[int, list[tuple]] = {}
        for rec in self.pl.offences:
            planted_by_v.setdefault(max(self.month_of(rec[1]), -self.backlog), []).append(rec)
        sent: list[tuple] = []
        for v in vs:
            recs = [(r, True) for r in self._yot_background(v)]
            recs += [(r, False) for r in planted_by_v.get(v, [])]
            recs.sort(key=lambda x: (x[0][1], x[0][0]))
            for i, (r, bg) in enumerate(recs):
                oid = f"OFF{(v + 200) * 10000 + i:07d}"
                self._yot_row(w, oid, r, as_of, bg, "")
                self.truth.record_new("yot_offences.csv", oid, r[0])
                if r[2] is not None and r[2] > as_of:
                    self.pending_yot.setdefault(self.month_of(r[2]), []).append((oid, r, bg))
                if bg:
                    sent.append((oid, r))
        for oid, r, bg in self.pending_yot.pop(m, []):
            self._yot_row(w, oid, r, as_of, bg, "")
        rnd = KeyedRandom(self.seed, 17, m)
        for oid, r in self.prev_delta.get("yot", []):
            if rnd.random() < 0.02:
                self._yot_row(w, oid, r, as_of, True, "D")
        self.prev_delta["yot"] = sent
        self.close(m, w)

    def _yot_row(self, w: FileWriter, oid: str, r: tuple, as_of: int, bg: bool,
                 status: str) -> None:
        p, day, outcome, cat, grav, disp, sub = r
        v = self.view("yot", p)
        rnd = KeyedRandom(self.seed, 13, day, p)
        proven = outcome is not None and outcome <= as_of
        upn = self.c.upn(p) if self.c.has_upn(p) and not v.id_missing else ""
        yid, first = f"Y{scramble(p, 1):07d}", v.first
        if self.second_id("yot", p, day):  # ids of the same system: disjoint from all others
            yid, first = f"Y{scramble(self.c.n + p, 1):07d}", self.nickname(p, v.first)
        w.row([oid, yid, noisy(first, "yot", rnd) or first,
               noisy(v.last, "yot", rnd) or v.last,
               dmy(v.dob if v.dob is not None else int(self.c.dob[p])),
               v.sex, self.postcode(p, v, day, rnd) if rnd.random() < 0.9 else "", upn,
               dmy(day), dmy(outcome) if proven else "", cat, str(grav),
               (disp or "") if proven else "", "" if sub is None else str(sub),
               status or ("A" if rnd.random() < 0.5 else "")], bg=bg)

    # ------------------------------------------------------------ police
    def _police_background(self, v: int) -> list[dict]:
        c = self.c
        rng = np.random.default_rng([self.seed, 601, v + 1000])
        first = month_start(self.start.year, self.start.month, v)
        day0, ndays = o(first), month_end(first).day
        n = int(rng.poisson(c.n * 0.006))
        cats = rng.choice(len(CATEGORIES), n, p=CAT_P)
        out = []
        n_h = len(c.hh_start)
        for i in range(n):
            cat = CATEGORIES[cats[i]]
            day = day0 + int(rng.integers(0, ndays))
            at_home = cat == "DOMESTIC" or rng.random() < 0.6
            h = -1
            noms: list[tuple[int, str, str]] = []
            if at_home:
                for _ in range(4):
                    h = int(rng.integers(0, n_h))
                    if not self.cohort_hh[h]:
                        break
                else:
                    h, at_home = -1, False
            if at_home:
                mem = [p for p in c.members(h) if day - c.dob[p] > 10 * 365]
                mem = mem or list(c.members(h))
                if cat == "DOMESTIC" and len(mem) >= 2:
                    noms = [(mem[0], "VICTIM", ""), (mem[1], "SUSPECT", self._outcome(rng))]
                else:
                    role = {"ASB": "SUSPECT", "CRIME": "VICTIM", "OTHER": "REPORTER"}.get(
                        cat, "SUBJECT")
                    noms = [(mem[int(rng.integers(0, len(mem)))], role,
                             self._outcome(rng) if role == "SUSPECT" else "")]
            else:
                k = int(rng.integers(0, 3))
                ps = self.sample_age(rng, day, 12, 70, k)
                roles = ("SUSPECT", "VICTIM", "WITNESS")
                noms = [(int(p), roles[j], self._outcome(rng) if j == 0 else "")
                        for j, p in enumerate(ps)]
            out.append({"day": day, "secs": int(rng.integers(0, 86_400)), "category": cat,
                        "dom": "Y" if cat == "DOMESTIC" else ("N" if rng.random() < 0.7 else ""),
                        "h": h, "nominals": noms, "street": int(rng.integers(0, 10**6))})
        return out

    @staticmethod
    def _outcome(rng: np.random.Generator) -> str:
        r = rng.random()
        return SUSPECT_OUTCOMES[(r >= 0.2) + (r >= 0.3) + (r >= 0.4) + (r >= 0.75)]

    def police(self, m: int, faults: dict) -> None:
        """police_incidents and police_nominals deltas."""
        wi = self.open(m, "police_incidents.csv", faults)
        wn = self.open(m, "police_nominals.csv", faults)
        vs = range(-self.backlog, 1) if m == 0 else [m]
        planted_by_v: dict[int, list[dict]] = {}
        for inc in self.pl.incidents:
            planted_by_v.setdefault(max(self.month_of(inc["day"]), -self.backlog), []).append(
                inc)
        sent_i: list[tuple] = []
        sent_n: list[tuple] = []
        for v in vs:
            incs = [(x, True) for x in self._police_background(v)]
            incs += [(x, False) for x in planted_by_v.get(v, [])]
            incs.sort(key=lambda t: (t[0]["day"], t[0]["secs"]))
            first = month_start(self.start.year, self.start.month, v)
            for i, (inc, bg) in enumerate(incs):
                ref = f"INC{first.year % 100:02d}{first.month:02d}{i + 1:06d}"
                row, hh, matched = self._incident_row(ref, inc)
                wi.row(row, bg=bg)
                fam = ""
                if hh >= 0 and self.cohort_hh[hh]:
                    fam = self.family_of[int(self.c.hh_start[hh])].family_id
                self.truth.row("incidents.csv", [ref, hid(hh) if hh >= 0 else "", fam, matched])
                named: set[str] = set()   # the contract's key: one row per person per incident
                for p, role, outcome in inc["nominals"]:
                    nrow = self._nominal_row(ref, p, role, outcome, inc["day"])
                    if nrow[1] in named:
                        continue
                    named.add(nrow[1])
                    wn.row(nrow, bg=bg)
                    self.truth.record_new("police_nominals.csv", f"{ref}|{nrow[1]}", p)
                    if bg:
                        sent_n.append((ref, p, role, outcome, inc["day"]))
                if bg:
                    sent_i.append((ref, inc))
        rnd = KeyedRandom(self.seed, 19, m)
        for ref, inc in self.prev_delta.get("inc", []):
            r = rnd.random()
            if r < 0.01:
                row, _, _ = self._incident_row(ref, inc)
                row[-1] = "D"
                wi.row(row)
            elif r < 0.03:  # correction: the UPRN or postcode filled in later
                row, _, _ = self._incident_row(ref, inc, fix=True)
                wi.row(row)
        for ref, p, role, outcome, day in self.prev_delta.get("nom", []):
            if outcome == "ONGOING" and rnd.random() < 0.3:
                wn.row(self._nominal_row(ref, p, role, rnd.choice(("CHARGED", "NFA")), day))
            elif rnd.random() < 0.005:
                row = self._nominal_row(ref, p, role, outcome, day)
                row[-1] = "D"
                wn.row(row)
        self.prev_delta["inc"], self.prev_delta["nom"] = sent_i, sent_n
        self.close(m, wi)
        self.close(m, wn)

    def _incident_row(self, ref: str, inc: dict, fix: bool = False) -> tuple[list[str], int, str]:
        c = self.c
        day, h = inc["day"], inc["h"]
        secs = inc["secs"]
        ts = f"{iso(day)}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        rnd = KeyedRandom(self.seed, 23, day, secs)
        if h >= 0:
            a = c.addr_at(h, day)
            uprn = str(c.a_uprn[a]) if fix or rnd.random() < 0.7 else ""
            line1 = c.address_line1(a, short=rnd.random() < 0.3) if rnd.random() < 0.95 else ""
            pc = postcode_style(c.a_postcode[a], rnd) if fix or rnd.random() < 0.9 else ""
            town = c.town(a) if rnd.random() < 0.8 else ""
            matched = "uprn" if uprn else ("address" if line1 or pc else "none")
        else:
            a = inc.get("street", 0) % len(c.a_postcode)
            uprn, line1 = "", c.streets[c.a_street[a]]
            town = c.town(a)
            pc = postcode_style(c.a_postcode[a], rnd) if rnd.random() < 0.4 else ""
            matched = "none"
        status = "A" if rnd.random() < 0.3 else ""
        return ([ref, ts, inc["category"], inc["dom"], line1, town, pc, uprn, status], h,
                matched)

    def _nominal_row(self, ref: str, p: int, role: str, outcome: str, day: int) -> list[str]:
        v = self.view("police", p)
        rnd = KeyedRandom(self.seed, 29, day, p)
        first = noisy(v.first, "police", rnd) if rnd.random() > 0.03 else ""
        last = noisy(v.last, "police", rnd) or v.last
        return [ref, f"N{scramble(p, 2):07d}", role, first, last, iso(v.dob), v.sex, outcome, ""]

    # ------------------------------------------------------------ school
    def _school_of(self, p: int, t: int, age: int) -> tuple[str, str]:
        s = scramble(p, 3)
        town = int(self.p_town[p])
        phase = self.pl.att_phase.get((p, t))
        if phase == "alternative_provision":
            return "14" + f"{2000 + s % 3:04d}", phase
        if self.special[p]:
            return "11" + f"{5000 + s % 4:04d}", "special"
        move = self.pl.urn_move.get(p)
        shift = 1 if move is not None and t >= move else 0
        if age < 11:
            return "11" + f"{town * 20 + (s + shift) % 6 + 1000:04d}", "primary"
        return "13" + f"{town * 10 + (s + shift) % 3 + 6000:04d}", "secondary"

    def _pupils(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Persons enrolled in term t and their age at the start of the academic year."""
        ref = o(date(term_year(t), 8, 31))
        age = ((ref - self.c.dob) / 365.25).astype(np.int32)
        enrolled = ((age >= 4) & (age <= 15)) | (((age == 16) | (age == 17)) & self.sixth)
        ps = np.flatnonzero(enrolled)
        return ps, age[ps]

    def school(self, m: int, first_day: int, faults: dict) -> None:
        """school_attendance (one term in arrears) and school_exclusions (two) snapshots."""
        lt = last_ended_term(first_day)
        att_terms = [t for t in range(3 * (term_year(lt) - 1), lt + 1)]
        exc_last = lt - 1
        exc_terms = [t for t in range(3 * (term_year(exc_last) - 1), exc_last + 1)]
        prev_lt = last_ended_term(o(month_start(d(first_day).year, d(first_day).month, -4)))
        w = self.open(m, "school_attendance.csv", faults)
        emitted = self.views.setdefault("_att_terms", {})
        static: dict[int, list[str]] = {}
        for t in att_terms:
            ps, ages = self._pupils(t)
            rng = np.random.default_rng([self.seed, 701, t])
            noise = rng.normal(0, 0.02, self.c.n).astype(np.float32)
            part = rng.uniform(0.3, 0.9, self.c.n)
            poss_all = term_sessions(t)
            new_term = t not in emitted
            emitted[t] = 1
            ylab, tlab = academic_year_label(term_year(t)), ("AUT", "SPR", "SUM")[t % 3]
            for p, age in zip(ps.tolist(), ages.tolist(), strict=True):
                if (p, t) in self.pl.not_enrolled:
                    continue
                ov = self.pl.att.get((p, t))
                if ov is not None:
                    frac, share = ov
                    poss = poss_all
                else:
                    frac = min(0.9, max(0.0, float(self.abs_base[p] + noise[p])))
                    share = float(self.unauth_share[p])
                    poss = int(poss_all * part[p]) if self.joiner[p] and t % 3 == 1 else poss_all
                absent = round(poss * frac)
                unauth = round(absent * share)
                auth = absent - unauth
                bg = not self.cohort_mask[p]
                if bg and t <= prev_lt and (p * 31 + t * 17) % 1000 < 4:
                    auth += 2  # restated in a later delivery
                    poss = max(poss, auth + unauth)
                st = static.get(p)
                if st is None:
                    st = self._pupil_static(p, first_day)
                    static[p] = st
                urn, phase = self._school_of(p, t, age)
                w.row([st[0], st[1], st[2], st[3], st[4], st[5], urn, phase, ylab, tlab,
                       str(poss), str(auth), str(unauth)], bg=bg)
                if new_term:
                    self.truth.record_new("school_attendance.csv", f"{st[0]}|{ylab}|{tlab}", p)
        self.close(m, w)
        w = self.open(m, "school_exclusions.csv", faults)
        seen = self.views.setdefault("_exc_seen", {})
        for t in exc_terms:
            for p, day, cat, sessions in self._exclusions(t):
                st = static.get(p) or self._pupil_static(p, first_day)
                age = int((o(date(term_year(t), 8, 31)) - int(self.c.dob[p])) / 365.25)
                urn, _ = self._school_of(p, t, age)
                w.row([st[0], st[1], st[2], st[3], urn, cat, dmy(day),
                       "" if sessions is None else str(sessions)], bg=not self.cohort_mask[p])
                key = f"{st[0]}|{dmy(day)}|{cat}"
                if key not in seen:
                    seen[key] = 1
                    self.truth.record_new("school_exclusions.csv", key, p)
        self.close(m, w)

    def _pupil_static(self, p: int, day: int) -> list[str]:
        v = self.view("school", p)
        rnd = KeyedRandom(self.seed, 37, p)
        dob = v.dob if v.dob is not None else int(self.c.dob[p])
        return [self.c.upn(p), noisy(v.first, "school", rnd) or v.first,
                noisy(v.last, "school", rnd) or v.last, dmy(dob), "MF"[int(self.c.sex[p])],
                self.postcode(p, v, day, rnd) if rnd.random() < 0.97 else ""]

    def _exclusions(self, t: int) -> list[tuple]:
        cache = self.views.setdefault("_exc", {})
        if t in cache:
            return cache[t]  # type: ignore[return-value]
        ps, ages = self._pupils(t)
        rng = np.random.default_rng([self.seed, 702, t])
        sec = ps[(ages >= 11) & (ages <= 15) & ~self.cohort_mask[ps]]
        prim = ps[(ages < 11) & ~self.cohort_mask[ps]]
        out: dict[tuple, tuple] = {}
        t0, t1 = term_start(t), term_end(t)
        for pool, rate in ((sec, 0.012), (prim, 0.002)):
            if len(pool) == 0:
                continue
            for p in rng.choice(pool, int(rng.poisson(len(pool) * rate))):
                day = int(rng.integers(t0 + 2, t1 - 2))
                if d(day).weekday() >= 5:
                    day -= d(day).weekday() - 4
                permanent = rng.random() < 0.01
                cat = "PERMANENT" if permanent else "SUSPENSION"
                out[(int(p), day, cat)] = (int(p), day, cat,
                                           None if permanent else int(rng.integers(1, 11)))
        for p, day, cat, sessions in self.pl.exclusions:
            if t0 <= day <= t1:
                out[(p, day, cat)] = (p, day, cat, sessions)
        res = sorted(out.values(), key=lambda x: (x[1], x[0]))
        cache[t] = res  # type: ignore[assignment]
        return res

    # ------------------------------------------------------------ DWP
    def dwp(self, m: int, as_of: int, faults: dict) -> None:
        """dwp_benefits and dwp_employment snapshots for the cohort's adults."""
        c = self.c
        ben_by: dict[int, list[tuple]] = {}
        for b in self.pl.benefits:
            ben_by.setdefault(b[0], []).append(b)
        job_by: dict[int, list[tuple]] = {}
        for j in self.pl.jobs:
            job_by.setdefault(j[0], []).append(j)
        wb = self.open(m, "dwp_benefits.csv", faults)
        we = self.open(m, "dwp_employment.csv", faults)
        for f in self.fams:
            if f.attached_on > as_of:
                continue
            for p in f.members:
                if age_on(int(c.dob[p]), as_of) < 16 or p in self.pl.dwp_not_found:
                    continue
                ref = f.person_ref[p]
                whose = [p] + ([self.pl.dwp_wrong[p]] if p in self.pl.dwp_wrong else [])
                keys: set[str] = set()
                for q in whose:
                    v = self.view("dwp", q)
                    rnd = KeyedRandom(self.seed, 41, q)
                    ni = format_ni(c.ni(q), 0) if c.has_ni(q, as_of) and not v.id_missing else ""
                    dob = ymd(v.dob if v.dob is not None else int(c.dob[q]))
                    pc = self.postcode(q, v, as_of, rnd)
                    for _, ben, regime, s, e in sorted(ben_by.get(q, []), key=lambda b: b[3]):
                        if s > as_of or (e is not None and e < as_of - 2 * THREE_YEARS):
                            continue
                        key = f"{ref}|{ben}|{ymd(s)}"
                        if key in keys:
                            continue
                        keys.add(key)
                        wb.row([ref, ni, noisy(v.first, "dwp", rnd) or v.first,
                                noisy(v.last, "dwp", rnd) or v.last, dob, pc, ben, regime,
                                ymd(s), ymd(e) if e is not None and e <= as_of else ""],
                               bg=False)
                        self.truth.record("dwp_benefits.csv", key, q)
                    for _, emp, s, e, pay in sorted(job_by.get(q, []), key=lambda j: j[2]):
                        if s > as_of:
                            continue
                        key = f"{ref}|{emp}|{ymd(s)}"
                        if key in keys:
                            continue
                        keys.add(key)
                        we.row([ref, ni, emp, ymd(s),
                                ymd(e) if e is not None and e <= as_of else "", pay], bg=False)
                        self.truth.record("dwp_employment.csv", key, q)
        self.close(m, wb)
        self.close(m, we)

    # ------------------------------------------------------------ social care
    def _build_social_care(self) -> None:
        c = self.c
        rnd = KeyedRandom(self.seed, 43)
        lo = o(month_start(self.start.year, self.start.month, -self.backlog - 36))
        eps: list[tuple] = []
        for v in range(-self.backlog - 36, self.months):
            rng = np.random.default_rng([self.seed, 801, v + 1000])
            first = month_start(self.start.year, self.start.month, v)
            day0, ndays = o(first), month_end(first).day
            n = int(rng.poisson(c.n * 0.22 * 0.003))
            for p in self.sample_age(rng, day0, 0, 17.5, n).tolist():
                s = day0 + rnd.randrange(ndays)
                if rnd.random() < 0.45:
                    e = s + rnd.randint(60, 270)
                    eps.append((p, "EARLY_HELP", s, e, rnd.choice(("CLOSED_NFA", "CLOSED_NFA",
                                                                   "STEPPED_UP", "OTHER"))))
                    continue
                r = rnd.random()
                if r < 0.02:
                    eps.append((p, "YOUNG_CARER", s, s + rnd.randint(200, 900), "CLOSED_NFA"))
                    continue
                if r < 0.03:
                    eps.append((p, "CSE_RISK", s, s + rnd.randint(60, 400), "CLOSED_NFA"))
                    continue
                e = s + rnd.randint(1, 20)
                nxt = rnd.random()
                if nxt < 0.4:
                    eps.append((p, "REFERRAL", s, e, "CLOSED_NFA"))
                    continue
                eps.append((p, "REFERRAL", s, e, "STEPPED_UP"))
                s, e = e + 1, e + rnd.randint(20, 45)
                nxt = rnd.random()
                if nxt < 0.5:
                    eps.append((p, "ASSESSMENT", s, e, rnd.choice(("CLOSED_NFA", "STEPPED_DOWN"))))
                    continue
                eps.append((p, "ASSESSMENT", s, e, "STEPPED_UP"))
                s, e = e + 1, e + rnd.randint(90, 540)
                if rnd.random() < 0.8:
                    eps.append((p, "CIN_PLAN", s, e, rnd.choice(("CLOSED_NFA", "STEPPED_DOWN",
                                                                 "TRANSFERRED"))))
                    continue
                eps.append((p, "CP_PLAN", s, e, rnd.choice(("STEPPED_DOWN", "STEPPED_UP"))))
                if rnd.random() < 0.2:
                    eps.append((p, "LOOKED_AFTER", e + 1, e + rnd.randint(120, 1500),
                                rnd.choice(("RETURNED_HOME", "OTHER"))))
        eps = [x for x in eps if x[3] is None or x[3] >= lo]
        eps += [(p, t, s, e, r) for p, t, s, e, r in self.pl.episodes]
        eps.sort(key=lambda x: (x[2], x[0], x[1]))
        self.episodes = eps
        self.ep_start = np.array([x[2] for x in eps], np.int64)
        self.ep_end = np.array([x[3] if x[3] is not None else 10**7 for x in eps], np.int64)
        self.ep_seen = np.zeros(len(eps), bool)

    def _build_missing(self) -> None:
        rnd = KeyedRandom(self.seed, 47)
        out: list[tuple] = []
        for v in range(-36, self.months):
            rng = np.random.default_rng([self.seed, 901, v + 1000])
            first = month_start(self.start.year, self.start.month, v)
            day0, ndays = o(first), month_end(first).day
            n = int(rng.poisson(self.c.n * 0.08 * 0.002))
            for p in self.sample_age(rng, day0, 11, 17.5, n).tolist():
                st = (day0 + rnd.randrange(ndays)) * 1440 + rnd.randint(0, 1439)
                out.append((p, "MISSING" if rnd.random() < 0.7 else "AWAY", st,
                            st + rnd.randint(120, 4000)))
        out += list(self.pl.missing)
        out.sort(key=lambda x: (x[2], x[0]))
        self.missing = out
        self.mis_seen = np.zeros(len(out), bool)

    def _child_id(self, p: int, v: View, day: int) -> tuple[str, str]:
        """child_id and first name: a re-referral may be recorded under a second id."""
        if self.second_id("social_care", p, day):
            return f"C{scramble(self.c.n + p, 4):07d}", self.nickname(p, v.first)
        return f"C{scramble(p, 4):07d}", v.first

    def _sc_person(self, p: int, as_of: int) -> tuple[View, KeyedRandom]:
        return self.view("social_care", p), KeyedRandom(self.seed, 53, p)

    def social_care(self, m: int, as_of: int, faults: dict) -> None:
        """social_care_episodes and social_care_missing snapshots (last 3 years)."""
        c = self.c
        w = self.open(m, "social_care_episodes.csv", faults)
        idx = np.flatnonzero((self.ep_start <= as_of) & (self.ep_end >= as_of - THREE_YEARS))
        for i in idx.tolist():
            p, typ, s, e, reason = self.episodes[i]
            v, rnd = self._sc_person(p, as_of)
            eid = f"EP{i + 200_000:07d}"
            closed = e is not None and e <= as_of
            nhs = format_nhs(c.nhs(p), rnd.randrange(2)) if not v.id_missing else ""
            upn = c.upn(p) if c.has_upn(p) and rnd.random() < 0.6 else ""
            cid, first = self._child_id(p, v, s)
            w.row([eid, cid, first, v.last, dmy(v.dob), v.sex, nhs, upn,
                   self.postcode(p, v, s, rnd) if rnd.random() < 0.9 else "", typ, dmy(s),
                   dmy(e) if closed else "", (reason or "") if closed else ""],
                  bg=not self.cohort_mask[p])
            if not self.ep_seen[i]:
                self.ep_seen[i] = True
                self.truth.record_new("social_care_episodes.csv", eid, p)
        self.close(m, w)
        w = self.open(m, "social_care_missing.csv", faults)
        for i, (p, typ, st, en) in enumerate(self.missing):
            if st // 1440 > as_of or st // 1440 < as_of - THREE_YEARS:
                continue
            v, _ = self._sc_person(p, as_of)
            mid = f"MIS{i + 10_000:06d}"
            cid, first = self._child_id(p, v, st // 1440)
            w.row([mid, cid, first, v.last, dmy(v.dob), typ, _ts(st),
                   _ts(en) if en is not None and en // 1440 <= as_of else ""],
                  bg=not self.cohort_mask[p])
            if not self.mis_seen[i]:
                self.mis_seen[i] = True
                self.truth.record_new("social_care_missing.csv", mid, p)
        self.close(m, w)


def _ts(minutes: int) -> str:
    x = d(minutes // 1440)
    mm = minutes % 1440
    return f"{x.day:02d}/{x.month:02d}/{x.year} {mm // 60:02d}:{mm % 60:02d}"


def people_truth(c: County, fams: list[Family], truth: Truth) -> None:
    """_truth/people.csv, one row per resident."""
    fam_of: dict[int, tuple[str, str]] = {}
    for f in fams:
        for p in f.members:
            fam_of[p] = (f.family_id, f.person_ref[p])
    roles = ("head", "partner", "child", "other_adult")
    end = int(c.ref_day) + 3650
    for p in range(c.n):
        fid, ref = fam_of.get(p, ("", ""))
        truth.row("people.csv", [
            pid(p), c.first_name(p), c.middle_name(p), c.last_name(p), iso(int(c.dob[p])),
            "MF"[int(c.sex[p])], hid(int(c.hh[p])), fid, ref, roles[int(c.role[p])],
            c.upn(p) if c.has_upn(p) else "", c.nhs(p), c.ni(p) if c.has_ni(p, end) else "",
            pid(int(c.twin[p])) if c.twin[p] >= 0 else ""])
