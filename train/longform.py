"""Build the very long seed requests (50k-500k characters) from hand-written specs and fragments.

Issue 3 lets only the padding of very long contexts be assembled by a script: every question, label,
needle (the fact a question asks about) and fragment is written by hand in data/longform/ (its
README describes the fragment syntax); this module only strings fragments together to each spec's
size. Seeded by spec id, so data/seed/long_context.jsonl is byte-reproducible and
tests/test_longform.py holds it to its specs. The specs are ``specs.ndjson``, not ``.jsonl``:
``load_rows`` reads every ``*.jsonl`` under data/ as labeled rows, and spec lines are not rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator

from router_ml.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "data" / "longform" / "specs.ndjson"
FRAGMENTS = ROOT / "data" / "longform" / "fragments"
OUT = ROOT / "data" / "seed" / "long_context.jsonl"

SLOT = re.compile(r"<<([a-z_]+)(?:#(\d+))?(?::([^<>]*?))?(?:\|(first|upper|slug|cap))?>>")
VAR = re.compile(r"\{([a-z]+)\}")
META = re.compile(r"^@([a-z]+)(?: (.*))?$")
META_KEYS = {"doc", "section", "each", "weight", "title", "path", "from", "to", "subject", "id",
             "status", "priority", "requester", "bind", "fill"}
FILTERS = {"first": lambda v: v.split()[0], "upper": str.upper,
           "slug": lambda v: re.sub(r"[^a-z0-9]+", "-", v.lower()).strip("-"),
           "cap": lambda v: "".join(w.capitalize() for w in re.split(r"[_\s-]+", v))}
LANGS = {".py": "python", ".yaml": "yaml", ".sql": "sql", ".ts": "typescript", ".go": "go"}


@dataclass(frozen=True)
class Frame:
    """How one kind of material is laid out: the unit template and how the clock moves."""

    unit: str = "{body}"
    join: str = "\n\n"
    per_doc: tuple[int, int] = (6, 14)
    repeat: bool = False  # units may repeat inside a document (log lines, table rows)
    stamp: str = ""  # strftime prefix put before every unindented line of a unit
    ts: str = "%Y-%m-%d %H:%M"  # format of {ts}, one clock tick per unit
    step: tuple[float, float] = (60, 600)  # seconds per clock tick
    start_h: float = 9.0  # clock start, hours after the document's midnight
    gap: tuple[int, int] = (0, 3)  # days between documents
    office: bool = False  # keep {ts} within office hours
    defaults: dict[str, str] = field(default_factory=dict)


FRAMES = {
    "logs": Frame(join="\n", per_doc=(10**7, 10**7), repeat=True, stamp="%Y-%m-%dT%H:%M:%S.%fZ ",
                  step=(0.05, 3.5), start_h=1.0),
    "chat-history": Frame(join="\n", per_doc=(9, 22), stamp="[%H:%M] ", step=(40, 1500), start_h=8.4, gap=(1, 2)),
    "transcript": Frame(join="\n", per_doc=(16, 30), stamp="[%H:%M:%S] ", step=(4, 55), start_h=0, gap=(1, 6)),
    "emails": Frame(unit="From: {from}\nTo: {to}\nDate: {ts}\nSubject: {re}{subject}\n\n{body}\n",
                    ts="%a, %d %b %Y %H:%M", per_doc=(3, 9), step=(1500, 50000), start_h=8.0, gap=(0, 4), office=True,
                    defaults={"from": "<<person#1>>", "to": "<<person#2>>"}),
    "tickets": Frame(unit="=== {id} | {title}\nStatus: {status} | Priority: {priority} | Created: {ts} | "
                          "Requester: {requester}\n\n{body}",
                     per_doc=(10**7, 10**7), step=(200, 5400),
                     defaults={"id": "SUP-<<int:70000-99999>>", "status": "<<pick:Open|Pending|Solved|Closed|Solved|Closed>>",
                               "priority": "<<pick:P1|P2|P2|P3|P3|P3|P4>>", "requester": "<<person>> (<<company>>)"}),
    "contract": Frame(unit="{n}. {title}\n\n{body}"),
    "papers": Frame(unit="{title}\n{body}"),
    "code": Frame(unit="### File {n}: {path}\n```{lang}\n{body}\n```", per_doc=(8, 16)),
    "docs": Frame(unit="## {title}\n\n{body}", per_doc=(6, 13)),
    "tables": Frame(join="\n", per_doc=(120, 700), repeat=True),
}


@dataclass
class Fragment:
    meta: dict[str, str]
    body: str
    group: str = ""


def parse_fragments(text: str) -> list[Fragment]:
    """Split a fragment file into fragments (see the module docstring for the syntax)."""
    out: list[Fragment] = []
    group = ""
    for chunk in re.split(r"^%%%[ \t]*$", text, flags=re.M):
        lines = [ln for ln in chunk.split("\n") if not (ln.startswith("%%") and not ln.startswith("%%%"))]
        meta: dict[str, str] = {}
        while lines and (not lines[0].strip() or lines[0].startswith("@@ ") or
                         ((m := META.match(lines[0])) and m.group(1) in META_KEYS)):
            ln = lines.pop(0)
            if ln.startswith("@@ "):
                group = ln[3:].strip()
            elif ln.strip():
                m = META.match(ln)
                meta[m.group(1)] = (m.group(2) or "").strip()
        body = "\n".join(lines).strip("\n")
        if not body and not meta:
            continue
        if meta.pop("each", None) is not None:  # one fragment a line; indented lines continue the one above
            items = re.split(r"\n(?=\S)", "\n".join(ln for ln in body.split("\n") if ln.strip()))
            out += [Fragment(dict(meta), item, group) for item in items]
        else:
            out.append(Fragment(meta, body, group))
    return out


def parse_pools(text: str) -> dict[str, list[str]]:
    pairs = (ln.partition(":") for ln in text.splitlines() if ln.strip() and not ln.startswith("%%"))
    return {name.strip(): [v.strip() for v in values.split("|") if v.strip()] for name, _, values in pairs}


def _fmt_date(d: date, style: str) -> str:
    return {"long": f"{d.day} {d:%B %Y}", "dmy2": f"{d:%d/%m/%y}"}.get(style, d.isoformat())


class Builder:
    """Assembles the material of one spec; all randomness comes from ``Random(spec id)``."""

    def __init__(self, spec: dict, frags: list[Fragment], pools: dict[str, list[str]]):
        self.spec, self.pools, self.frame = spec, pools, FRAMES[spec["kind"]]
        self.rng = random.Random(spec["id"])
        groups = spec.get("groups")
        chosen = [f for f in frags if not groups or f.group in groups]
        self.headers = [f for f in chosen if "doc" in f.meta]
        self.units = [f for f in chosen if "doc" not in f.meta]
        self.day = date.fromisoformat(spec.get("start", "2024-02-05"))
        self.clock = datetime.combine(self.day, datetime.min.time())
        self.bind: dict[str, str] = {}
        self.docvars: dict[str, str] = {}
        self.docs = self.i = 0

    def fill(self, text: str) -> str:
        for _ in range(3):  # slots may nest: <<pick:round <<int:2-6>>|final>>
            text, n = SLOT.subn(self._slot, text)
            if not n:
                break
        return text

    def _slot(self, m: re.Match) -> str:
        name, k, arg, flt = m.groups()
        r, arg = self.rng, arg or ""
        if name in ("int", "dec", "money", "pct"):
            a, b = (float(x) for x in arg.split("-"))
            v = r.uniform(a, b)
            return {"int": str(round(v)), "dec": f"{v:.2f}", "money": f"{v:,.2f}", "pct": f"{v:.1f}"}[name]
        if name == "hex":
            return "".join(r.choice("0123456789abcdef") for _ in range(int(arg or 8)))
        if name == "pick":
            return r.choice(arg.split("|"))
        if name == "n":  # the number of the unit being rendered (clause numbers)
            return str(self.i)
        if name in ("date", "day", "ago"):  # near the document's day, the day itself, or before it
            shift = {"date": lambda: r.randint(-25, 45), "day": lambda: 0, "ago": lambda: -r.randint(0, 60)}[name]()
            return _fmt_date(self.day + timedelta(days=shift), arg)
        if name not in self.pools:
            return m.group(0)
        if k:
            key = f"{name}#{k}"
            if key not in self.bind:
                taken = {v for kk, v in self.bind.items() if kk.startswith(name + "#")}
                self.bind[key] = r.choice([v for v in self.pools[name] if v not in taken] or self.pools[name])
            v = self.bind[key]
        else:
            v = r.choice(self.pools[name])
        return FILTERS[flt](v) if flt else v

    def tick(self, fmt: str) -> str:
        self.clock += timedelta(seconds=self.rng.uniform(*self.frame.step))
        if self.frame.office and not 7 <= self.clock.hour < 20:  # people mail in office hours
            morning = datetime.combine(self.clock.date(), datetime.min.time()) + timedelta(hours=7)
            self.clock = morning + timedelta(days=self.clock.hour >= 20, minutes=self.rng.randint(0, 150))
        return self.clock.strftime(fmt)

    def new_doc(self, header: Fragment | None) -> str:
        """Start a document: fresh bindings, a later day, the clock reset; return its header."""
        self.docs += 1
        self.bind = dict(self.spec.get("bind", {}))
        if header and "bind" in header.meta:
            self.bind.update(kv.split("=", 1) for kv in header.meta["bind"].split(";"))
        if self.docs > 1:
            self.day += timedelta(days=self.rng.randint(*self.frame.gap))
        self.clock = datetime.combine(self.day, datetime.min.time()) + timedelta(hours=self.frame.start_h)
        self.docvars = {k: self.fill(v) for k, v in header.meta.items()} if header else {}
        self.docvars["n"] = str(self.docs)
        return self.sub(self.fill(header.body), self.docvars) if header and header.body else ""

    @staticmethod
    def sub(template: str, values: dict[str, str]) -> str:
        return VAR.sub(lambda m: values.get(m.group(1), m.group(0)), template)

    def doc_units(self, header: Fragment | None) -> Iterator[Fragment]:
        f = self.frame
        pool = [u for u in self.units if header and u.group == header.group] or self.units
        if any("section" in u.meta for u in pool):
            for s in dict.fromkeys(u.meta.get("section", "") for u in pool):
                cands = [u for u in pool if u.meta.get("section", "") == s]
                yield self.rng.choice(cands)  # one variant per section, sections in file order
        elif f.repeat:
            weights = [float(u.meta.get("weight", 1)) for u in pool]
            for _ in range(self.rng.randint(*f.per_doc)):
                yield self.rng.choices(pool, weights)[0]
        else:
            picked = self.rng.sample(pool, min(len(pool), self.rng.randint(*f.per_doc)))
            yield from sorted(picked, key=lambda u: u.meta.get("path", ""))  # a repo dump lists files by path

    def render(self, frag: Fragment, n: int) -> str:
        self.i = n
        f = self.frame
        body = self.fill(frag.body)
        if f.stamp:
            body = "\n".join(self.tick(f.stamp) + ln if ln and not ln[0].isspace() else ln for ln in body.split("\n"))
        values = {k: self.fill(v) for k, v in f.defaults.items()} | self.docvars
        values |= {k: self.fill(v) for k, v in frag.meta.items()}
        values |= {"body": body, "n": str(n), "re": "Re: " if n > 1 else "",
                   "lang": LANGS.get(os.path.splitext(values.get("path", ""))[1], "")}
        if "{ts}" in f.unit:
            values["ts"] = self.tick(f.ts)
        return self.sub(f.unit, values)

    def material(self, target: int) -> str:
        """Documents of units up to ``target`` characters, needles dropped in at seeded points."""
        f = self.frame
        needles = [parse_fragments(t)[0] for t in self.spec.get("needles", [])]
        marks = sorted(self.rng.uniform(0.12, 0.88) * target for _ in needles)
        out: list[str] = []
        size, n, queue = 0, 0, iter(())

        def put(text: str, sep: str) -> None:
            nonlocal size
            out.append(sep + text if out else text)
            size += len(out[-1])

        while size < target:
            if marks and size >= marks[0]:
                marks.pop(0)
                frag = needles.pop(0)
                if "doc" in frag.meta:  # a whole document of its own, or a header with generated units
                    put(self.new_doc(frag), "\n\n\n")
                    queue, n = (self.doc_units(frag) if "fill" in frag.meta else iter(())), 0
                else:
                    n += 1
                    put(self.render(frag, n), f.join)
                continue
            frag = next(queue, None)
            if frag is None:
                weights = [float(h.meta.get("weight", 1)) for h in self.headers]
                header = self.rng.choices(self.headers, weights)[0] if self.headers else None
                head = self.new_doc(header)
                if head:
                    put(head, "\n\n\n")
                queue, n = self.doc_units(header), 0
                continue
            n += 1
            text = self.render(frag, n)
            if size + len(text) > target * 1.01 and size > target * 0.97:
                break
            put(text, f.join)
        return "".join(out)


def build_row(spec: dict, frags: list[Fragment], pools: dict[str, list[str]]) -> dict:
    """One data row: the material sized so the whole request is ``spec['chars']`` long."""
    q, lead, shape, before = spec["question"], spec.get("lead", ""), spec["shape"], spec["position"] == "before"
    extra = {"prompt": 2, "messages": len(spec.get("ack", "")), "system": len(spec.get("system", "")) + 2}[shape]
    body = Builder(spec, frags, pools).material(spec["chars"] - len(q) - extra - (len(lead) + 2 if lead else 0))
    material = f"{lead}\n\n{body}" if lead else body
    row: dict = {"id": spec["id"]}
    if shape == "prompt":
        row["prompt"] = f"{q}\n\n{material}" if before else f"{material}\n\n{q}"
    elif shape == "messages":
        turns = [q, spec["ack"], material] if before else [material, spec["ack"], q]
        row["messages"] = [{"role": r, "content": c} for r, c in zip(("user", "assistant", "user"), turns)]
    else:
        row["system"] = f"{spec['system']}\n\n{material}" if before else f"{material}\n\n{spec['system']}"
        row["messages"] = [{"role": "user", "content": q}]
    tags = spec["tags"] + ["long-context", "very-long"] + {"messages": ["multi-turn"], "system": ["system-prompt"]}.get(shape, [])
    tags += ["non-english"] if spec["lang"] != "en" else []
    row |= {"tier": spec["tier"], "label_source": "author", "lang": spec["lang"], "domain": spec["domain"],
            "tags": list(dict.fromkeys(tags))}
    return row


def build_rows(specs_path: str | Path = SPECS, fragments_dir: str | Path = FRAGMENTS) -> list[dict]:
    fragments_dir = Path(fragments_dir)
    pools = parse_pools((fragments_dir / "_pools.txt").read_text(encoding="utf-8"))
    frags = {p.stem: parse_fragments(p.read_text(encoding="utf-8"))
             for p in sorted(fragments_dir.glob("*.txt")) if not p.name.startswith("_")}
    specs = [json.loads(ln) for ln in Path(specs_path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    return [build_row(s, frags[s["kind"]], pools) for s in specs]


def dumps(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m train.longform", description=__doc__.split("\n")[0])
    ap.add_argument("--specs", type=Path, default=SPECS)
    ap.add_argument("--fragments", type=Path, default=FRAGMENTS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows = build_rows(args.specs, args.fragments)
    atomic_write_text(args.out, dumps(rows))
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
