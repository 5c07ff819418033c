"""Builds bench/data/project_chats.json: three long project chats between one user and a coding assistant.

Each chat runs over several dated sessions. The assistant's replies are long and full of code; the user's
standing instructions, preferences and facts are short asides inside messages about something else, and some
change later. Every question lists the user turns that hold its answer (``evidence``), by turn id
``<chat>-s<session>-<k>`` with k the 1-based position among all turns of the session.

Run ``python bench/data/project_chats_build.py`` to write the JSON beside this file. The file is long because it
is the data itself (every turn written out in full, code included), kept in one place so the chats read in order.
"""

from __future__ import annotations

import json
from pathlib import Path

U, A = "user", "assistant"


def code_reply(intro: str, lang: str, code: str, outro: str) -> str:
    return f"{intro}\n\n```{lang}\n{code.strip()}\n```\n\n{outro}"


TIDE = {
    "id": "tide",
    "sessions": [
        {
            "date": "2026-03-02T09:10:00Z",
            "turns": [
                (U, "I'm starting a small command line tool called tidewatch that downloads tide predictions for "
                    "a harbour station and prints the next high and low water. Python 3.11. Can you sketch the "
                    "module layout? By the way, the station I care about most is Newlyn, station id 0001."),
                (A, code_reply(
                    "Here is a layout that keeps the network code, the parsing and the printing apart, so each "
                    "can be tested on its own. The fetcher returns raw JSON, the parser turns it into typed "
                    "records, and the CLI only formats.",
                    "text",
                    """
tidewatch/
    __init__.py
    cli.py          # argument parsing and output formatting
    fetch.py        # HTTP calls to the tide API, retries, caching
    parse.py        # JSON -> TideEvent records
    models.py       # dataclasses shared by the other modules
tests/
    test_parse.py
    test_cli.py
pyproject.toml
""",
                    "I would start with models.py: a frozen dataclass TideEvent with the station id, a timezone "
                    "aware datetime, the height in metres and a kind that is either HIGH or LOW. Everything else "
                    "passes these around. The fetcher can cache responses on disk keyed by station and date so "
                    "you do not hit the API every time you run the tool while developing.")),
                (U, "Looks good. Write models.py please. Oh and one rule for this whole project: always use "
                    "pathlib for file paths, never os.path."),
                (A, code_reply(
                    "Here is models.py with the event type and a small helper for the cache location, using "
                    "pathlib throughout as you asked.",
                    "python",
                    """
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path


class Kind(Enum):
    HIGH = "high"
    LOW = "low"


@dataclass(frozen=True)
class TideEvent:
    station: str
    at: datetime
    height_m: float
    kind: Kind

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("TideEvent.at must be timezone aware")


def cache_dir(root: Path | None = None) -> Path:
    base = root or Path.home() / ".cache" / "tidewatch"
    base.mkdir(parents=True, exist_ok=True)
    return base
""",
                    "The post-init check catches naive datetimes early, which is the most common bug with tide "
                    "data because the API returns UTC strings without an offset marker on some endpoints. The "
                    "cache directory helper creates the folder on first use.")),
                (U, "Now the fetcher. Use httpx. The API key lives in an environment variable called "
                    "TIDE_API_KEY."),
                (A, code_reply(
                    "Here is fetch.py with httpx, a timeout, three retries with backoff on 5xx responses, and a "
                    "disk cache keyed by station and date.",
                    "python",
                    """
from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path

import httpx

from tidewatch.models import cache_dir

BASE = "https://api.example-tides.org/v1/stations"


def fetch_day(station: str, day: date, root: Path | None = None) -> dict:
    cached = cache_dir(root) / f"{station}-{day.isoformat()}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    key = os.environ["TIDE_API_KEY"]
    for attempt in range(3):
        r = httpx.get(f"{BASE}/{station}/events", params={"date": day.isoformat()},
                      headers={"Authorization": f"Bearer {key}"}, timeout=10.0)
        if r.status_code < 500:
            r.raise_for_status()
            cached.write_text(r.text)
            return r.json()
        time.sleep(2 ** attempt)
    r.raise_for_status()
    return {}
""",
                    "A missing key raises KeyError with the variable name, which is a clear enough message for a "
                    "personal tool. If you want a friendlier error, wrap the lookup and raise a custom "
                    "ConfigError that the CLI prints without a traceback.")),
            ],
        },
        {
            "date": "2026-03-09T19:40:00Z",
            "turns": [
                (U, "Back on tidewatch. The parser chokes on the API's height field, which is sometimes a string "
                    "like '4.2m'. Can you make it robust? Also I'd rather keep the dependencies minimal, so no "
                    "pandas anywhere in this project."),
                (A, code_reply(
                    "Here is parse.py. It accepts numbers and strings with or without a unit suffix, and skips "
                    "events it cannot read instead of failing the whole day. No pandas: the standard library "
                    "is enough for this much data.",
                    "python",
                    """
from __future__ import annotations

import re
from datetime import datetime, timezone

from tidewatch.models import Kind, TideEvent

_HEIGHT = re.compile(r"^\\s*(-?\\d+(?:\\.\\d+)?)\\s*(m|ft)?\\s*$")


def height_metres(raw: object) -> float | None:
    if isinstance(raw, (int, float)):
        return float(raw)
    m = _HEIGHT.match(str(raw))
    if not m:
        return None
    value = float(m.group(1))
    return value * 0.3048 if m.group(2) == "ft" else value


def parse_events(station: str, payload: dict) -> list[TideEvent]:
    out = []
    for item in payload.get("events", []):
        h = height_metres(item.get("height"))
        if h is None:
            continue
        at = datetime.fromisoformat(item["time"]).replace(tzinfo=timezone.utc)
        out.append(TideEvent(station, at, h, Kind(item["type"].lower())))
    return sorted(out, key=lambda e: e.at)
""",
                    "Feet are converted to metres so the rest of the program deals in one unit. Skipped events "
                    "could be logged at debug level if you want to see how often the API sends junk.")),
                (U, "Good. Tests next, with pytest. I like each test to have a one-line docstring saying what it "
                    "checks, please keep to that."),
                (A, code_reply(
                    "Here are tests for the parser, each with a one-line docstring.",
                    "python",
                    """
from datetime import timezone

from tidewatch.models import Kind
from tidewatch.parse import height_metres, parse_events


def test_height_plain_number() -> None:
    \"\"\"A bare number is taken as metres.\"\"\"
    assert height_metres(4.2) == 4.2


def test_height_with_unit() -> None:
    \"\"\"A string with a metre or foot suffix is read and converted.\"\"\"
    assert height_metres("4.2m") == 4.2
    assert abs(height_metres("10ft") - 3.048) < 1e-9


def test_bad_height_skipped() -> None:
    \"\"\"An unreadable height drops the event, not the day.\"\"\"
    payload = {"events": [{"time": "2026-03-09T04:12:00", "type": "HIGH", "height": "n/a"},
                          {"time": "2026-03-09T10:30:00", "type": "LOW", "height": "0.9"}]}
    events = parse_events("0001", payload)
    assert [e.kind for e in events] == [Kind.LOW]
    assert events[0].at.tzinfo is timezone.utc
""",
                    "Run them with pytest -q. The third test also checks that times come back timezone aware, "
                    "which guards the dataclass check from the other side.")),
                (U, "Nice. Unrelated, but I'm moving the project to Codeberg instead of GitHub next week, so "
                    "the CI config will need to change. What CI do they offer?"),
                (A, "Codeberg runs Woodpecker CI for hosted projects, and more recently Forgejo Actions, which "
                    "reads workflow files very close to GitHub Actions syntax. If your current workflow is a "
                    "plain matrix of Python versions running pytest, Forgejo Actions is the smaller change: "
                    "copy .github/workflows/ci.yml to .forgejo/workflows/ci.yml and adjust the runner label. "
                    "Woodpecker uses its own .woodpecker.yml with a pipeline of steps, each a container image "
                    "and a list of commands. Either way, keep secrets such as TIDE_API_KEY in the repository "
                    "settings rather than the file, and mark the integration tests that call the real API so "
                    "they are skipped when the secret is absent. I can write either config once you pick one."),
            ],
        },
        {
            "date": "2026-03-21T08:05:00Z",
            "turns": [
                (U, "Let's do the CLI output now. Print a table of the next four events. Small thing: I changed "
                    "my mind on the station, the default should now be Falmouth, station id 0005, not Newlyn."),
                (A, code_reply(
                    "Here is cli.py with argparse, a default station you can override with --station, and a "
                    "plain text table of the next four events.",
                    "python",
                    """
from __future__ import annotations

import argparse
from datetime import date, datetime, timezone

from tidewatch.fetch import fetch_day
from tidewatch.parse import parse_events

DEFAULT_STATION = "0005"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tidewatch")
    ap.add_argument("--station", default=DEFAULT_STATION)
    ap.add_argument("--count", type=int, default=4)
    args = ap.parse_args(argv)
    now = datetime.now(timezone.utc)
    events = [e for e in parse_events(args.station, fetch_day(args.station, date.today())) if e.at >= now]
    print(f"{'time (UTC)':<18}{'kind':<6}{'height':>8}")
    for e in events[: args.count]:
        print(f"{e.at:%Y-%m-%d %H:%M}  {e.kind.value:<6}{e.height_m:>7.2f}m")
    return 0
""",
                    "Events that already happened today are filtered out. If fewer than four remain you may want "
                    "to fetch tomorrow as well; that is a two-line change in main.")),
                (U, "Add a --json flag. And a reminder for you: I always want the commit messages you suggest "
                    "written in the imperative mood, short subject line under 50 characters."),
                (A, code_reply(
                    "Here is the --json flag; the table stays the default.",
                    "python",
                    """
    ap.add_argument("--json", action="store_true", help="print events as JSON lines")
    ...
    if args.json:
        for e in events[: args.count]:
            print(json.dumps({"station": e.station, "at": e.at.isoformat(),
                              "kind": e.kind.value, "height_m": round(e.height_m, 2)}))
        return 0
""",
                    "Suggested commit message: Add --json output to the CLI. JSON lines rather than one array "
                    "make it easy to pipe into jq or grep.")),
                (U, "One more: the fetcher should honour a proxy. My office network only allows traffic through "
                    "a proxy at proxy.internal:3128."),
                (A, code_reply(
                    "httpx reads HTTPS_PROXY from the environment by default, so the simplest route is to export "
                    "it in your shell profile. If you want it explicit in code, pass a client:",
                    "python",
                    """
import os
import httpx

def client() -> httpx.Client:
    proxy = os.environ.get("TIDEWATCH_PROXY")
    return httpx.Client(proxy=proxy, timeout=10.0) if proxy else httpx.Client(timeout=10.0)
""",
                    "Then fetch_day uses client().get(...) instead of httpx.get. Suggested commit message: "
                    "Route API calls through an optional proxy.")),
            ],
        },
    ],
    "questions": [
        ("Which path library did I ask you to always use in tidewatch?", "instruction", ["tide-s1-3"]),
        ("Is pandas allowed in my tide project?", "instruction", ["tide-s2-1"]),
        ("How do I want the test docstrings written?", "instruction", ["tide-s2-3"]),
        ("What style should suggested commit messages follow?", "instruction", ["tide-s3-3"]),
        ("What is the default tide station now?", "update", ["tide-s3-1"]),
        ("Which station did I originally say I care about most?", "fact", ["tide-s1-1"]),
        ("What environment variable holds the tide API key?", "fact", ["tide-s1-5"]),
        ("Where am I moving the tidewatch repository?", "fact", ["tide-s2-5"]),
        ("What proxy does my office network require?", "fact", ["tide-s3-5"]),
        ("Which HTTP library did I ask for in the fetcher?", "fact", ["tide-s1-5"]),
    ],
}

LEDGER = {
    "id": "ledger",
    "sessions": [
        {
            "date": "2026-04-04T14:00:00Z",
            "turns": [
                (U, "New project: a budgeting web app for my household, called Ledgerly. React with TypeScript "
                    "on Vite. Can you set up the folder structure? Quick note, I only ever want function "
                    "components with hooks, no class components."),
                (A, code_reply(
                    "Here is a structure that groups code by feature rather than by file type, which scales "
                    "better once the app has more than a handful of screens.",
                    "text",
                    """
ledgerly/
  src/
    app/            App.tsx, routes, providers
    features/
      accounts/     AccountList.tsx, useAccounts.ts, accounts.api.ts
      budgets/      BudgetTable.tsx, useBudgets.ts, budgets.api.ts
      transactions/ TransactionForm.tsx, useTransactions.ts
    shared/
      ui/           Button.tsx, Money.tsx, Modal.tsx
      lib/          money.ts, dates.ts
  index.html
  vite.config.ts
  tsconfig.json
""",
                    "Every component will be a function component with hooks. I would add ESLint with the "
                    "react-hooks plugin from the start so the rules of hooks are checked on save.")),
                (U, "Write the Money component. Amounts are stored as integer cents. My household uses euros, "
                    "and I want amounts shown with a comma as the decimal separator."),
                (A, code_reply(
                    "Here is Money.tsx. It takes integer cents and formats with Intl.NumberFormat for the de-DE "
                    "locale, which gives a comma decimal separator and the euro sign after the number.",
                    "tsx",
                    """
type MoneyProps = { cents: number; currency?: string; className?: string };

const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currency: string): Intl.NumberFormat {
  let f = formatters.get(currency);
  if (!f) {
    f = new Intl.NumberFormat("de-DE", { style: "currency", currency });
    formatters.set(currency, f);
  }
  return f;
}

export function Money({ cents, currency = "EUR", className }: MoneyProps) {
  const negative = cents < 0;
  return (
    <span className={negative ? `money money--negative ${className ?? ""}` : `money ${className ?? ""}`}>
      {formatter(currency).format(cents / 100)}
    </span>
  );
}
""",
                    "Formatters are cached per currency because constructing Intl.NumberFormat is surprisingly "
                    "slow when a table renders hundreds of rows.")),
                (U, "Great. For the data layer, should I use React Query or plain fetch in hooks?"),
                (A, code_reply(
                    "For an app whose screens are mostly lists that refetch after edits, React Query (TanStack "
                    "Query) pays for itself: caching, deduplication, background refetch and mutation "
                    "invalidation come for free. A hook then looks like this:",
                    "ts",
                    """
import { useQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { listBudgets, saveBudget, type Budget } from "./budgets.api";

export function useBudgets(month: string) {
  return useQuery({ queryKey: ["budgets", month], queryFn: () => listBudgets(month) });
}

export function useSaveBudget(month: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (b: Budget) => saveBudget(b),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["budgets", month] }),
  });
}
""",
                    "Plain fetch in useEffect is fine for one or two calls, but you would end up writing your "
                    "own cache and loading states.")),
            ],
        },
        {
            "date": "2026-04-12T20:30:00Z",
            "turns": [
                (U, "The backend will be a small Go service with SQLite. We're only two people using it, me and "
                    "my partner Sam, so no need for multi-tenant anything. Can you write the budgets table "
                    "schema?"),
                (A, code_reply(
                    "Here is a schema for two users sharing one household. Amounts are integer cents, months are "
                    "stored as 'YYYY-MM' text, and every row records who last changed it.",
                    "sql",
                    """
CREATE TABLE users (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE
);

CREATE TABLE categories (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  archived   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE budgets (
  id          INTEGER PRIMARY KEY,
  month       TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]'),
  category_id INTEGER NOT NULL REFERENCES categories(id),
  limit_cents INTEGER NOT NULL CHECK (limit_cents >= 0),
  updated_by  INTEGER NOT NULL REFERENCES users(id),
  updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  UNIQUE (month, category_id)
);
""",
                    "The unique constraint on month and category makes saving a budget an upsert: INSERT ... ON "
                    "CONFLICT (month, category_id) DO UPDATE SET limit_cents = excluded.limit_cents.")),
                (U, "Now the Go handler for saving a budget. Please never use an ORM in this codebase, I want "
                    "plain database/sql with hand-written queries."),
                (A, code_reply(
                    "Here is the handler with database/sql and a hand-written upsert.",
                    "go",
                    """
type budgetIn struct {
	Month      string `json:"month"`
	CategoryID int64  `json:"category_id"`
	LimitCents int64  `json:"limit_cents"`
}

func (s *Server) saveBudget(w http.ResponseWriter, r *http.Request) {
	var in budgetIn
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	user := userFrom(r.Context())
	_, err := s.db.ExecContext(r.Context(), `
		INSERT INTO budgets (month, category_id, limit_cents, updated_by)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (month, category_id) DO UPDATE
		SET limit_cents = excluded.limit_cents, updated_by = excluded.updated_by,
			updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')`,
		in.Month, in.CategoryID, in.LimitCents, user.ID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
""",
                    "Validation of the month format is left to the CHECK constraint; if you want a friendlier "
                    "400 instead of a 500, parse it with time.Parse(\"2006-01\", in.Month) first.")),
                (U, "How should I run it? I'll host it on a Raspberry Pi 4 in the hallway cupboard."),
                (A, "On a Raspberry Pi 4 the simplest setup is a single static binary managed by systemd. Build "
                    "it on your laptop with GOOS=linux GOARCH=arm64 CGO_ENABLED=1 if you use mattn/go-sqlite3, "
                    "which needs a cross compiler, or switch to modernc.org/sqlite, which is pure Go and cross "
                    "compiles with CGO_ENABLED=0. Copy the binary to /usr/local/bin, create a system user, and "
                    "write a unit file with Restart=on-failure and the database path in an Environment= line. "
                    "Put Caddy in front for HTTPS on your local network. Back up the SQLite file nightly with "
                    "the sqlite3 .backup command from a systemd timer rather than copying the file, so a write in "
                    "progress never leaves you with a torn copy."),
            ],
        },
        {
            "date": "2026-04-25T11:15:00Z",
            "turns": [
                (U, "Let's add a chart of spending per category for the month. Which library? Keep it light. "
                    "Also, accessibility matters to me here: every chart must have a text table alternative."),
                (A, code_reply(
                    "For a few bar charts, Recharts is the easiest React fit; if bundle size matters more, "
                    "visx lets you import only the pieces you use. Here is a Recharts version with a table "
                    "alternative rendered beside it and linked with aria-describedby.",
                    "tsx",
                    """
import { Bar, BarChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Money } from "../../shared/ui/Money";

type Row = { category: string; spentCents: number };

export function SpendingChart({ rows }: { rows: Row[] }) {
  const data = rows.map((r) => ({ ...r, euros: r.spentCents / 100 }));
  return (
    <figure aria-describedby="spending-table">
      <ResponsiveContainer width="100%" height={260}>
        <BarChart data={data}>
          <XAxis dataKey="category" />
          <YAxis />
          <Tooltip />
          <Bar dataKey="euros" />
        </BarChart>
      </ResponsiveContainer>
      <table id="spending-table" className="visually-hidden-toggle">
        <tbody>
          {rows.map((r) => (
            <tr key={r.category}><th scope="row">{r.category}</th><td><Money cents={r.spentCents} /></td></tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
""",
                    "The table can be visible on small screens and toggled elsewhere; screen readers always get "
                    "it.")),
                (U, "Perfect. By the way, we switched the household currency question: Sam and I now keep the "
                    "budget in Swiss francs since we moved to Basel, so the default currency should be CHF."),
                (A, code_reply(
                    "Then the default in Money changes and the locale should follow, since Swiss formatting uses "
                    "an apostrophe for thousands and a period for decimals:",
                    "tsx",
                    """
export function Money({ cents, currency = "CHF", locale = "de-CH", className }: MoneyProps) {
  return <span className={className}>{formatter(locale, currency).format(cents / 100)}</span>;
}
""",
                    "Cache the formatter by locale and currency together. Existing rows keep their cents; only "
                    "the display changes.")),
                (U, "Last thing today: write the category colours as CSS variables. My favourite palette is "
                    "the Okabe-Ito colourblind-safe one, use that."),
                (A, code_reply(
                    "Here are the Okabe-Ito colours as custom properties, assigned to categories in order.",
                    "css",
                    """
:root {
  --cat-1: #E69F00;
  --cat-2: #56B4E9;
  --cat-3: #009E73;
  --cat-4: #F0E442;
  --cat-5: #0072B2;
  --cat-6: #D55E00;
  --cat-7: #CC79A7;
  --cat-8: #000000;
}
""",
                    "Recharts takes a fill prop per Bar or per Cell, so map each category index to "
                    "var(--cat-n).")),
            ],
        },
    ],
    "questions": [
        ("What kind of React components do I want in Ledgerly?", "instruction", ["ledger-s1-1"]),
        ("Am I okay with using an ORM in the budgeting backend?", "instruction", ["ledger-s2-3"]),
        ("What must every chart in the app come with?", "instruction", ["ledger-s3-1"]),
        ("Which colour palette do I like best?", "instruction", ["ledger-s3-5"]),
        ("What currency does the household budget use now?", "update", ["ledger-s3-3"]),
        ("Which decimal separator did I ask for when amounts were in euros?", "instruction", ["ledger-s1-3"]),
        ("Who else uses the budgeting app besides me?", "fact", ["ledger-s2-1"]),
        ("What hardware will the Ledgerly server run on?", "fact", ["ledger-s2-5"]),
        ("Which city did we move to?", "fact", ["ledger-s3-3"]),
        ("How are amounts stored in the app?", "fact", ["ledger-s1-3"]),
    ],
}

BREW = {
    "id": "brew",
    "sessions": [
        {
            "date": "2026-05-03T17:20:00Z",
            "turns": [
                (U, "I want to log my homebrew batches. A Rust command line tool called brewlog, storing "
                    "batches in SQLite. Help me design the data model? Context: I brew all-grain, about one "
                    "20 litre batch a month."),
                (A, code_reply(
                    "Here is a data model that covers recipes, batches and gravity readings, with each reading "
                    "tied to a batch so you can plot fermentation over time.",
                    "rust",
                    """
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct Recipe {
    pub id: i64,
    pub name: String,
    pub style: String,
    pub target_og: f32,
    pub target_fg: f32,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub id: i64,
    pub recipe_id: i64,
    pub brewed_on: DateTime<Utc>,
    pub volume_l: f32,
    pub notes: String,
}

#[derive(Debug, Clone)]
pub struct Reading {
    pub batch_id: i64,
    pub at: DateTime<Utc>,
    pub gravity: f32,
    pub temp_c: f32,
}
""",
                    "Original and final gravity targets live on the recipe; the measured values come from the "
                    "first and last readings of a batch, so nothing is stored twice.")),
                (U, "Use rusqlite for storage. And please, error handling with anyhow in the binary and "
                    "thiserror in the library part, that's how I always structure Rust projects."),
                (A, code_reply(
                    "Here is the storage module with rusqlite and a thiserror error type for the library; the "
                    "binary wraps it with anyhow::Context.",
                    "rust",
                    """
use rusqlite::{params, Connection};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("no batch with id {0}")]
    NoBatch(i64),
}

pub struct Store {
    conn: Connection,
}

impl Store {
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(include_str!("schema.sql"))?;
        Ok(Self { conn })
    }

    pub fn add_reading(&self, batch: i64, gravity: f32, temp_c: f32) -> Result<(), StoreError> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM batches WHERE id = ?1", [batch], |r| r.get(0))?;
        if n == 0 {
            return Err(StoreError::NoBatch(batch));
        }
        self.conn.execute(
            "INSERT INTO readings (batch_id, at, gravity, temp_c) VALUES (?1, datetime('now'), ?2, ?3)",
            params![batch, gravity, temp_c],
        )?;
        Ok(())
    }
}
""",
                    "In main.rs, store.add_reading(id, g, t).context(\"saving the reading\")? gives a readable "
                    "chain when something fails.")),
                (U, "What's the formula for ABV from the gravities?"),
                (A, "The common homebrew approximation is ABV = (OG - FG) x 131.25, with gravities as specific "
                    "gravity (1.050, not 50 points). For stronger beers above about 7 percent it underestimates; "
                    "the more accurate version is ABV = (76.08 x (OG - FG) / (1.775 - OG)) x (FG / 0.794). In "
                    "Rust, write it as a pure function on two f32 values and test it against a few known pairs: "
                    "1.050 to 1.010 should give about 5.25 percent with the simple formula. Refractometer "
                    "readings after fermentation starts need an alcohol correction before either formula "
                    "applies, so record which instrument each reading came from."),
            ],
        },
        {
            "date": "2026-05-18T21:00:00Z",
            "turns": [
                (U, "I bought a Tilt hydrometer that floats in the fermenter and broadcasts gravity over "
                    "Bluetooth. Can brewlog read it? My brewing laptop runs Debian, if that matters."),
                (A, code_reply(
                    "Yes. The Tilt sends iBeacon advertisements: the major field is temperature in Fahrenheit and "
                    "the minor field is gravity times 1000. On Linux, btleplug can scan for them:",
                    "rust",
                    """
use btleplug::api::{Central, Manager as _, ScanFilter};
use btleplug::platform::Manager;

pub async fn scan_tilt() -> anyhow::Result<Option<(f32, f32)>> {
    let manager = Manager::new().await?;
    let adapter = manager.adapters().await?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no adapter"))?;
    adapter.start_scan(ScanFilter::default()).await?;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    for p in adapter.peripherals().await? {
        if let Some(props) = p.properties().await? {
            if let Some(data) = props.manufacturer_data.get(&0x004c) {
                if data.len() >= 23 && data[0] == 0x02 {
                    let major = u16::from_be_bytes([data[18], data[19]]) as f32;
                    let minor = u16::from_be_bytes([data[20], data[21]]) as f32;
                    return Ok(Some(((major - 32.0) / 1.8, minor / 1000.0)));
                }
            }
        }
    }
    Ok(None)
}
""",
                    "On Debian, BlueZ must be running and your user needs to be in the bluetooth group. The "
                    "colour of the Tilt is encoded in the UUID if you ever own more than one.")),
                (U, "Cool. Make the scan a subcommand, brewlog tilt --batch 12. Oh, and keep all user-facing "
                    "output in metric units, I never want Fahrenheit shown."),
                (A, code_reply(
                    "Here is the subcommand with clap derive; temperatures are converted to Celsius before "
                    "anything is printed or stored.",
                    "rust",
                    """
#[derive(clap::Subcommand)]
enum Cmd {
    /// Read the Tilt once and store the reading against a batch
    Tilt {
        #[arg(long)]
        batch: i64,
    },
}

async fn run_tilt(store: &Store, batch: i64) -> anyhow::Result<()> {
    match scan_tilt().await? {
        Some((temp_c, gravity)) => {
            store.add_reading(batch, gravity, temp_c).context("saving the Tilt reading")?;
            println!("batch {batch}: SG {gravity:.3} at {temp_c:.1} °C");
        }
        None => println!("no Tilt found within 5 seconds"),
    }
    Ok(())
}
""",
                    "If you want continuous logging, a --every 15m flag could loop with tokio::time::interval.")),
            ],
        },
        {
            "date": "2026-06-02T18:45:00Z",
            "turns": [
                (U, "I'd like a report command that prints a batch summary: recipe, dates, OG, FG, ABV and "
                    "attenuation. Heads up, I've upped my batch size, I now brew 40 litre batches."),
                (A, code_reply(
                    "Here is the report, computing OG and FG from the first and last readings and the apparent "
                    "attenuation from both.",
                    "rust",
                    """
pub struct Summary {
    pub recipe: String,
    pub brewed_on: String,
    pub og: f32,
    pub fg: f32,
}

impl Summary {
    pub fn abv(&self) -> f32 {
        (self.og - self.fg) * 131.25
    }

    pub fn attenuation(&self) -> f32 {
        if self.og <= 1.0 {
            return 0.0;
        }
        100.0 * (self.og - self.fg) / (self.og - 1.0)
    }
}

pub fn print_summary(s: &Summary) {
    println!("{:<12}{}", "recipe", s.recipe);
    println!("{:<12}{}", "brewed", s.brewed_on);
    println!("{:<12}{:.3}", "OG", s.og);
    println!("{:<12}{:.3}", "FG", s.fg);
    println!("{:<12}{:.1} %", "ABV", s.abv());
    println!("{:<12}{:.0} %", "attenuation", s.attenuation());
}
""",
                    "With 40 litre batches the volume column matters more for efficiency numbers; a later "
                    "report could add mash efficiency from grain weight and volume.")),
                (U, "Write the schema.sql to go with all this. I prefer STRICT tables in SQLite wherever "
                    "possible."),
                (A, code_reply(
                    "Here is schema.sql with STRICT tables; REAL and INTEGER columns are then type checked by "
                    "SQLite itself.",
                    "sql",
                    """
CREATE TABLE IF NOT EXISTS recipes (
  id        INTEGER PRIMARY KEY,
  name      TEXT NOT NULL,
  style     TEXT NOT NULL,
  target_og REAL NOT NULL,
  target_fg REAL NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS batches (
  id        INTEGER PRIMARY KEY,
  recipe_id INTEGER NOT NULL REFERENCES recipes(id),
  brewed_on TEXT NOT NULL,
  volume_l  REAL NOT NULL,
  notes     TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE IF NOT EXISTS readings (
  batch_id  INTEGER NOT NULL REFERENCES batches(id),
  at        TEXT NOT NULL,
  gravity   REAL NOT NULL,
  temp_c    REAL NOT NULL,
  source    TEXT NOT NULL DEFAULT 'hydrometer'
) STRICT;
""",
                    "The source column records whether a reading came from the Tilt, a refractometer or a glass "
                    "hydrometer, as discussed earlier.")),
                (U, "Thanks. My next brew day is June 14th, a Czech pilsner, so I'll test the Tilt logging "
                    "then."),
                (A, "Sounds like a good first real run. For a Czech pilsner you will be fermenting cold, around "
                    "10 to 12 degrees Celsius, so expect the Tilt's readings to change slowly over the first two "
                    "days; a reading every 30 minutes is plenty. Check that the Tilt is close enough to the "
                    "laptop if the fermenter sits in a fridge, because a metal fridge blocks a lot of the "
                    "Bluetooth signal; a Raspberry Pi or an old phone next to the fridge can relay readings if "
                    "needed. After primary, the lagering phase at near freezing will show almost no gravity "
                    "change, so you can stop logging once the reading is stable for three days."),
            ],
        },
    ],
    "questions": [
        ("How do I always structure error handling in Rust projects?", "instruction", ["brew-s1-3"]),
        ("What units should brewlog show to the user?", "instruction", ["brew-s2-3"]),
        ("What kind of SQLite tables do I prefer?", "instruction", ["brew-s3-3"]),
        ("How big are my batches now?", "update", ["brew-s3-1"]),
        ("How often do I brew?", "fact", ["brew-s1-1"]),
        ("What operating system is on my brewing laptop?", "fact", ["brew-s2-1"]),
        ("What hydrometer did I buy?", "fact", ["brew-s2-1"]),
        ("When is my next brew day and what am I brewing?", "fact", ["brew-s3-5"]),
        ("Which Rust crate did I choose for SQLite storage?", "fact", ["brew-s1-3"]),
        ("What brewing method do I use, extract or all-grain?", "fact", ["brew-s1-1"]),
    ],
}


def build() -> dict:
    chats = []
    for conv in (TIDE, LEDGER, BREW):
        sessions = []
        for n, s in enumerate(conv["sessions"], start=1):
            turns = [{"id": f"{conv['id']}-s{n}-{k}", "role": role, "content": text}
                     for k, (role, text) in enumerate(s["turns"], start=1)]
            sessions.append({"id": f"{conv['id']}-s{n}", "date": s["date"], "turns": turns})
        questions = [{"question": q, "type": t, "evidence": ev} for q, t, ev in conv["questions"]]
        chats.append({"id": conv["id"], "sessions": sessions, "questions": questions,
                      "question_date": "2026-07-01T12:00:00Z"})
    return {"description": "Long project chats (one user, one coding assistant), written for memstrata's "
                           "retrieval benchmarks. Evidence ids are user turns.", "chats": chats}


if __name__ == "__main__":
    out = Path(__file__).with_name("project_chats.json")
    data = build()
    known = {t["id"] for c in data["chats"] for s in c["sessions"] for t in s["turns"]}
    for c in data["chats"]:
        for q in c["questions"]:
            assert all(e in known for e in q["evidence"]), q
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: {sum(len(c['questions']) for c in data['chats'])} questions")
