"""The leaderboard page in a real headless Chromium: no injected script runs, the table sorts.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; the path can be given in
``$RB_CROSSCLASS_CHROMIUM``); skipped with the reason when it is absent or cannot start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_leaderboard import measured_card, official_card, write

from rb_crossclass.leaderboard import build_leaderboard

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
PWNED = "pwned"
EVIL_ID = 'Id"><img src=x onerror=document.title=1>'  # a model ID (file name) carrying markup
EVIL_MEASURED_ID = "Meas<svg onload=document.title=1>"  # its per-model page gets a safe file name


def chromium_binary() -> str | None:
    candidates = [os.environ.get("RB_CROSSCLASS_CHROMIUM"), "chromium", "chromium-browser",
                  "google-chrome", "google-chrome-stable"]
    for c in candidates:
        if c and shutil.which(c):
            return shutil.which(c)
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"chromium at {binary} cannot start: {err}")
    if out.returncode != 0:
        pytest.skip(f"chromium at {binary} cannot start: {out.stderr.strip()[:200]}")
    return binary


def run_chromium(binary: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def dump_dom(binary: str, tmp: Path, url: str) -> str:
    result = run_chromium(binary, tmp, "--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<html" in result.stdout, result.stderr[-2000:]
    return result.stdout


class DomScan(HTMLParser):
    """Tags, attributes, the title text and the row order of each table in a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.title = ""
        self._in_title = False
        self._table: str | None = None
        self.rows: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "title":
            self._in_title = True
        if tag == "table":
            self._table = a.get("id")
            self.rows[self._table] = []
        if tag == "tr" and self._table and "data-model-id" in a:
            self.rows[self._table].append(a["data-model-id"])

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def scan(dom: str) -> DomScan:
    s = DomScan()
    s.feed(dom)
    return s


def payload(js: str) -> str:
    return (f"document.title='{PWNED}';"
            f"document.getElementById('sentinel').setAttribute('data-state','{PWNED}');{js}")


@pytest.fixture(scope="module")
def evil_board(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("board")
    cards = tmp / "cards"
    p = payload("")
    evil = official_card(
        "Evil2024", "35.00", clean="70.00",
        name=f"<script>{p}</script>Evil paper",
        link=f"javascript:{p}",
        authors=f"</td></tr></table><script>{p}</script>",
        architecture=f'<img src=x onerror="{p}">',
        venue=f'<a href="javascript:{p}" onclick="{p}">ICML</a><br><svg onload="{p}"></svg>',
        footnote=(f'<img src=x onerror="{p}"><script>{p}</script>'
                  f'<a href="https://example.org/ok" onmouseover="{p}">safe link</a>'
                  f'<iframe srcdoc="<script>{p}</script>"></iframe><b>bold</b>'),
    )
    write(cards, "Evil2024", evil)
    # a model ID (file name) carrying markup as well
    write(cards, EVIL_ID, official_card("IdEvil", "20.00", clean="50.00"))
    write(cards, "Top2024", official_card("Top2024", "60.00", clean="85.00"))
    write(cards, "CasHigh", measured_card("CasHigh", "10.00", cas=40.0, clean="65.00"))
    write(cards, "CasLow", measured_card("CasLow", "30.00", cas=12.0, clean="90.00"))
    evil_measured = measured_card(f"<script>{p}</script>", "25.00", cas=20.0, clean="55.00",
                                  footnote=f'<img src=x onerror="{p}">', venue=f"<script>{p}</script>NeurIPS")
    names = [f"<script>{p}</script>", f'<img src=x onerror="{p}">']
    evil_measured["cross_class"]["class_names"] = names
    evil_measured["cross_class"]["top_pairs"] = [{"class_i": names[0], "class_j": names[1], "cosine": 0.5}]
    evil_measured["evaluation"]["per_class"] = {
        "class_names": names, "counts": [3, 4], "clean_accuracy": [1.0, 0.5], "robust_accuracy": [0.0, 0.25],
        "worst_class": names[0], "worst_class_robust_accuracy": 0.0, "spread": 0.25}
    evil_measured["evaluation"]["diagnostics"] = [f"<script>{p}</script>"]
    write(cards, EVIL_MEASURED_ID, evil_measured)
    build_leaderboard([cards], "cifar10", "Linf", tmp / "out")
    return tmp / "out"


def test_no_injected_script_runs(chromium, evil_board, tmp_path):
    page = evil_board / "index.html"
    dom = dump_dom(chromium, tmp_path, page.as_uri())
    s = scan(dom)
    assert s.title == "Extended RobustBench leaderboard: CIFAR-10, Linf, ε = 8/255"
    sentinel = [a for t, a in s.tags if a.get("id") == "sentinel"]
    assert sentinel and sentinel[0]["data-state"] == "intact"
    # no payload became markup: one script (ours), one image (the plot), no svg/iframe,
    # no event-handler attributes, only http(s) links
    names = [t for t, _ in s.tags]
    assert names.count("script") == 1 and "svg" not in names and "iframe" not in names
    imgs = [a for t, a in s.tags if t == "img"]
    assert len(imgs) == 1 and imgs[0]["src"].startswith("data:image/png;base64,")
    assert not [(t, k) for t, a in s.tags for k in a if k.startswith("on")]
    hrefs = [a["href"] for t, a in s.tags if t == "a"]
    assert all(h.startswith(("https://", "http://", "#", "models/")) for h in hrefs), hrefs
    import re

    pages = [h for h in hrefs if h.startswith("models/")]  # per-model pages: safe names, in the board
    assert pages and all(re.fullmatch(r"models/[A-Za-z0-9_.+-]+\.html", h) and ".." not in h for h in pages)
    assert "https://example.org/ok" in hrefs
    assert s.rows["leaderboard"] == ["Top2024", "Evil2024", "CasLow", EVIL_MEASURED_ID, EVIL_ID, "CasHigh"]
    assert "Evil paper" in dom and "safe link" in dom


def test_table_sorts_in_the_browser(chromium, evil_board, tmp_path):
    data = json.loads((evil_board / "leaderboard.json").read_text())
    by = {e["model_id"]: e for e in data["entries"]}
    url = (evil_board / "index.html").as_uri()

    s = scan(dump_dom(chromium, tmp_path, url + "#sort=cas"))
    expected_cas = sorted([m for m in by if by[m]["cas"] is not None], key=lambda m: -by[m]["cas"])
    assert s.rows["leaderboard"][:3] == expected_cas == ["CasHigh", EVIL_MEASURED_ID, "CasLow"]
    # entries without CAS keep their current (board) order, after the measured ones
    assert s.rows["leaderboard"][3:] == [r for r in [e["model_id"] for e in data["entries"]]
                                         if by[r]["cas"] is None]

    s = scan(dump_dom(chromium, tmp_path, url + "?sort=clean:asc"))
    assert s.rows["leaderboard"] == sorted(by, key=lambda m: by[m]["clean_acc"])
    header = [a for t, a in s.tags if t == "th" and a.get("data-key") == "clean"][0]
    assert header["aria-sort"] == "ascending"

    # text columns compare lower-cased text; ties (same architecture) keep the current order
    s = scan(dump_dom(chromium, tmp_path, url + "#sort=architecture:asc"))
    board = [e["model_id"] for e in data["entries"]]
    assert s.rows["leaderboard"] == sorted(board, key=lambda m: by[m]["architecture"].lower())
    assert s.rows["leaderboard"][0] == "Evil2024"  # its architecture text starts with "<"

    # the composition view sorts too, and without a parameter it stays in Python's order
    s = scan(dump_dom(chromium, tmp_path, url + "?table=composition&sort=clean"))
    assert s.rows["composition"] == ["CasLow", "CasHigh", EVIL_MEASURED_ID]
    s = scan(dump_dom(chromium, tmp_path, url))
    assert s.rows["composition"] == ["CasHigh", EVIL_MEASURED_ID, "CasLow"]
    assert s.rows["leaderboard"] == [e["model_id"] for e in data["entries"]]


def test_screenshot(chromium, evil_board, tmp_path):
    shot = tmp_path / "shot.png"
    result = run_chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,900",
                          (evil_board / "index.html").as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 900)


def test_model_pages_are_inert_and_show_per_class_bars(chromium, evil_board, tmp_path):
    board = json.loads((evil_board / "leaderboard.json").read_text())
    pages = {e["model_id"]: e["page"] for e in board["entries"] if e["page"]}
    assert set(pages) == {"CasHigh", "CasLow", EVIL_MEASURED_ID}
    assert all((evil_board / page).is_file() and "/" not in page.split("/", 1)[1] for page in pages.values())
    s = scan(dump_dom(chromium, tmp_path, (evil_board / pages[EVIL_MEASURED_ID]).as_uri()))
    # the card's name is shown as text in the title (a script that ran would have replaced it)
    assert s.title.startswith("Our <script>")
    assert s.title.endswith("per-class robustness and cross-class features")
    sentinel = [a for t, a in s.tags if a.get("id") == "sentinel"]
    assert sentinel and sentinel[0]["data-state"] == "intact"
    names = [t for t, _ in s.tags]
    assert "script" not in names and "svg" not in names and "iframe" not in names
    assert not [(t, k) for t, a in s.tags for k in a if k.startswith("on")]
    meters = [a for t, a in s.tags if t == "meter"]
    assert [m["value"] for m in meters] == ["100.0", "0.0", "50.0", "25.0"]  # clean/robust per class
    imgs = [a for t, a in s.tags if t == "img"]
    assert len(imgs) == 2 and all(i["src"].startswith("data:image/png;base64,") for i in imgs)
    assert {i.get("id") for i in imgs} == {"per-class-figure", None}  # the per-class bars and the heatmap


def test_worst_class_column_sorts(chromium, evil_board, tmp_path):
    board = json.loads((evil_board / "leaderboard.json").read_text())
    by = {e["model_id"]: e for e in board["entries"]}
    s = scan(dump_dom(chromium, tmp_path, (evil_board / "index.html").as_uri() + "#sort=worst:asc"))
    measured = [m for m in s.rows["leaderboard"] if by[m]["worst_class_robust"] is not None]
    assert measured == sorted(measured, key=lambda m: by[m]["worst_class_robust"])
    assert s.rows["leaderboard"][: len(measured)] == measured  # entries without the value go last


def test_mixed_n_board_shows_n_eps_tiers_and_groups(chromium, evil_board, tmp_path):
    """RobustBench's 10,000-point rows and our 500-point rows: every row shows N, ε and a tier
    whose letter names its comparability group, and the page lists the groups and how they differ."""
    dom = dump_dom(chromium, tmp_path, (evil_board / "index.html").as_uri())
    s = scan(dom)
    assert s.tags[0] and "Tier" in dom and ">N<" in dom and ">ε<" in dom
    board = json.loads((evil_board / "leaderboard.json").read_text())
    groups = {g["group"]: g for g in board["comparability_groups"]}
    assert set(groups) == {"A", "B"} and "N = 10,000" in groups["A"]["protocol"]
    assert "N = 500" in groups["B"]["protocol"]
    assert 'id="groups"' in dom and "only entries of the same group may be compared" in dom
    for e in board["entries"]:
        assert e["tier"][0] == e["group"] and f">{e['tier']}<" in dom


PUBLISHED_2_255 = Path(__file__).resolve().parent.parent / "leaderboards" / "cifar10_Linf_2-255"


@pytest.mark.skipif(not (PUBLISHED_2_255 / "index.html").is_file(), reason="the 2/255 board is not built")
def test_published_2_255_board_pages_in_the_browser(chromium, tmp_path):
    """The published board of the four published CIFAR-10 models: the page renders with its tiers
    and the 8/255 columns, and each model page shows ε as 2/255, the confusion check and both figures."""
    dom = dump_dom(chromium, tmp_path, (PUBLISHED_2_255 / "index.html").as_uri())
    assert "ε = 2/255" in dom and "PGD-20 @8/255" in dom and "CAS @8/255" in dom
    s = scan(dom)
    assert len(s.rows["leaderboard"]) == 4
    board = json.loads((PUBLISHED_2_255 / "leaderboard.json").read_text())
    for e in board["entries"]:
        page = dump_dom(chromium, tmp_path, (PUBLISHED_2_255 / e["page"]).as_uri())
        assert "ε = 2/255" in page and "0.00784" not in page
        assert 'id="confusion-check"' in page and "Spearman ρ" in page
        assert page.count("data:image/png;base64,") == 2
