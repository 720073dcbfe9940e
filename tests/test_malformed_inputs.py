"""Every command, fed malformed inputs: exit status 1, one line naming the input, no traceback, no
partial output left behind (the CLI's one error boundary, and arguments checked at parse time)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rb_crossclass.cli import main
from rb_crossclass.core.runtime import bf16_unsupported_reason

TESTS = Path(__file__).resolve().parent
TINY = f"py:{TESTS / 'conftest.py'}:tiny_convnet"


# --------------------------------------------------------------------------- files made for the table
def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _files(tmp: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    good = _npz(tmp / "good.npz", x=x, y=np.arange(8) % 10)
    f = {"good": good}
    f["truncated"] = tmp / "truncated.npz"
    f["truncated"].write_bytes(good.read_bytes()[:200])
    f["empty"] = tmp / "empty.npz"
    f["empty"].write_bytes(b"")
    f["garbage"] = tmp / "garbage.npz"
    f["garbage"].write_text("this is not an npz file\n" * 10)
    f["huge_label"] = _npz(tmp / "huge_label.npz", x=x, y=np.array([2**40] + [0] * 7))
    f["nan_pixels"] = _npz(tmp / "nan.npz", x=np.full((8, 3, 32, 32), np.nan, np.float32), y=np.zeros(8, int))
    f["negative_label"] = _npz(tmp / "negative.npz", x=x, y=np.array([-1] + [0] * 7))
    f["label_over_k"] = _npz(tmp / "over_k.npz", x=x, y=np.arange(8), num_classes=np.array(4))
    f["float_labels"] = _npz(tmp / "float_labels.npz", x=x, y=np.zeros(8))
    torch.save({1: torch.zeros(2)}, tmp / "int_keys.pt")
    torch.save({(1, 2): torch.zeros(2)}, tmp / "tuple_keys.pt")
    f["int_keys"], f["tuple_keys"] = tmp / "int_keys.pt", tmp / "tuple_keys.pt"
    torch.save({"fc.weight": torch.zeros(10, 16)}, tmp / "full.pt")
    f["truncated_pt"] = tmp / "truncated.pt"
    f["truncated_pt"].write_bytes((tmp / "full.pt").read_bytes()[:300])
    from safetensors.torch import save_file

    from conftest import tiny_convnet

    state = {k: (v * 100).to(torch.int64) for k, v in tiny_convnet().state_dict().items()}
    save_file(state, tmp / "int_weights.safetensors")
    f["int_weights"] = tmp / "int_weights.safetensors"
    f["html"] = tmp / "page.pt"
    f["html"].write_text("<!DOCTYPE html><html>quota exceeded</html>")
    models = tmp / "models.py"
    models.write_text(
        "import torch\n"
        "def raises():\n    raise RuntimeError('constructor failed')\n"
        "def needs_arg(width):\n    return torch.nn.Linear(width, 10)\n"
        "def not_module():\n    return 3\n"
        "class Conv(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__(); self.c = torch.nn.Conv2d(3, 10, 3)\n"
        "    def forward(self, x):\n        return self.c(x).mean((2, 3))\n"
        "def no_head():\n    return Conv()\n"
        "class Dict(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__(); self.fc = torch.nn.Linear(3, 10)\n"
        "    def forward(self, x):\n        return {'scores': self.fc(x.mean((2, 3)))}\n"
        "def dict_no_logits():\n    return Dict()\n"
    )
    (tmp / "syntax.py").write_text("def broken(:\n    pass\n")
    f["models"], f["syntax"] = models, tmp / "syntax.py"
    f["a_file"] = tmp / "a_file.txt"
    f["a_file"].write_text("x")
    return f


SCORE = ["score", "--no-progress", "--model", TINY, "--n-examples", "4", "--steps", "1", "--device", "cpu"]


def _score_cases(f: dict[str, Path], out: str) -> list[tuple[str, list[str], str]]:
    data = ["--dataset", f"npz:{f['good']}"]
    cases = [
        (f"npz {name}", [*SCORE[:3], TINY, "--dataset", f"npz:{f[name]}", "--out", out], f[name].name)
        for name in ("truncated", "empty", "garbage", "huge_label", "nan_pixels", "negative_label",
                     "label_over_k", "float_labels")
    ]
    cases += [
        (f"checkpoint {name}", [*SCORE, *data, "--checkpoint", str(f[name]), "--out", out], f[name].name)
        for name in ("int_keys", "tuple_keys", "truncated_pt", "int_weights", "html")
    ]
    cases += [
        (f"py model {fn}", ["score", "--model", f"py:{f['models']}:{fn}", *data, "--out", out], fn)
        for fn in ("raises", "needs_arg", "not_module", "no_head", "dict_no_logits", "absent")
    ]
    cases += [
        ("py syntax error", ["score", "--model", f"py:{f['syntax']}:broken", *data, "--out", out],
         "syntax.py"),
        ("missing checkpoint", [*SCORE, *data, "--checkpoint", "/no/such.pt", "--out", out], "/no/such.pt"),
        ("unknown source", ["score", "--model", "nope:x", *data, "--out", out], "nope"),
        ("unknown dataset", [*SCORE, "--dataset", "svhn", "--out", out], "svhn"),
        ("missing npz", [*SCORE, "--dataset", "npz:/no/such.npz", "--out", out], "/no/such.npz"),
    ]
    for flag, value in (("--eps", "inf"), ("--eps", "1e999"), ("--eps", "-1"), ("--eps", "8/0"),
                        ("--eps", "8"), ("--steps", "-3"), ("--device", "banana"), ("--num-classes", "-3"),
                        ("--num-classes", "0"), ("--batch-size", "0"), ("--n-examples", "-5"),
                        ("--n-examples", "0"), ("--img-size", "0"), ("--threat-model", "L1"),
                        ("--dataset-name", "svhn"), ("--format", "gif"), ("--dpi", "0")):
        cases.append((f"{flag} {value}", [*SCORE, *data, flag, value, "--out", out], flag))
    cases += [
        ("--out empty", [*SCORE, *data, "--out", ""], "--out"),
        ("--out a file", [*SCORE, *data, "--out", str(f["a_file"])], "--out"),
        ("--compare not json", [*SCORE, *data, "--compare", str(f["a_file"]), "--out", out], "a_file.txt"),
    ]
    return cases


def _evaluate_cases(f: dict[str, Path], out: str) -> list[tuple[str, list[str], str]]:
    base = ["evaluate", "--no-progress", "--model", TINY, "--dataset", f"npz:{f['good']}",
            "--n-examples", "4", "--aa-version", "custom", "--attacks", "apgd-ce", "--device", "cpu"]
    cases = [(f"--card-name {name!r}", [*base, "--card-name", name, "--out", out], "--card-name")
             for name in ("../x", "/abs/x", "", "..", "eval", "x" * 300, "a/b")]
    cases += [
        ("--attacks without custom", ["evaluate", "--model", TINY, "--dataset", f"npz:{f['good']}",
                                      "--attacks", "apgd-ce", "--out", out], "--aa-version"),
        ("unknown attack", [*base[:-4], "--attacks", "pgd", "--out", out], "--attacks"),
        ("official cards for npz", [*base, "--official-cards", str(f["a_file"].parent), "--out", out],
         "--dataset-name"),
    ]
    if bf16_unsupported_reason("cpu") is not None:  # bf16 is malformed only where the CPU lacks it
        cases.append(("--bf16", [*base, "--bf16", "--out", out], "--bf16"))
    return cases


def _leaderboard_cases(tmp: Path, out: str) -> list[tuple[str, list[str], str]]:
    from test_leaderboard import measured_card, official_card

    good = tmp / "cards_ok"
    good.mkdir()
    (good / "A.json").write_text(json.dumps(official_card("A", "50.00")))
    bad_cards = {
        "deep": "[" * 10000 + "]" * 10000,
        "surrogate": json.dumps(official_card("S", "50.00"))[:-1] + ', "footnote": "\\ud800"}',
        "inf_number": json.dumps(measured_card("I", "40.00", cas=1.0)).replace('"cas": 1.0', '"cas": 1e999'),
        "huge_int": json.dumps(measured_card("H", "40.00", cas=1.0)).replace('"cas": 1.0',
                                                                              '"cas": 1' + "0" * 4000),
        "big_float": json.dumps(measured_card("F", "40.00", cas=1.0)).replace('"cas": 1.0', '"cas": 1e308'),
        "long_footnote": json.dumps(official_card("L", "50.00", footnote="x" * 1_000_000)),
        "not_json": "{",
    }
    cases = []
    for name, text in bad_cards.items():
        folder = tmp / f"cards_{name}"
        folder.mkdir()
        (folder / f"{name}.json").write_text(text)
        cases.append((f"card {name}", ["leaderboard", "--cards", str(folder), "--out", out], f"{name}.json"))
    foreign = tmp / "foreign_board"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    link = tmp / "link_board"
    link.symlink_to(foreign)
    cases += [
        ("--out empty", ["leaderboard", "--cards", str(good), "--out", ""], "--out"),
        ("--out .", ["leaderboard", "--cards", str(good), "--out", "."], "--out"),
        ("--out a file", ["leaderboard", "--cards", str(good), "--out", str(tmp / "a_file.txt")],
         "a_file.txt"),
        ("--out the cards", ["leaderboard", "--cards", str(good), "--out", str(good)], "cards"),
        ("--out foreign files", ["leaderboard", "--cards", str(good), "--out", str(foreign)], "notes.txt"),
        ("--out a symlink", ["leaderboard", "--cards", str(good), "--out", str(link)], "symbolic link"),
        ("--threat-model L1", ["leaderboard", "--cards", str(good), "--threat-model", "L1", "--out", out],
         "--threat-model"),
        ("missing cards folder", ["leaderboard", "--cards", "/no/such/dir", "--out", out], "/no/such/dir"),
    ]
    return cases


def _train_cases(tmp: Path, out: str) -> list[tuple[str, list[str], str]]:
    (tmp / "bad.yaml").write_text("optim: {lr: [1, 2\n")
    (tmp / "list.yaml").write_text("- 1\n- 2\n")
    base = ["train", "--config", "cpu_small_pgd_at", "--out", out]
    cases = [
        ("missing config", ["train", "--config", "/no/such.yaml", "--out", out], "/no/such.yaml"),
        ("yaml syntax", ["train", "--config", str(tmp / "bad.yaml"), "--out", out], "bad.yaml"),
        ("yaml not a mapping", ["train", "--config", str(tmp / "list.yaml"), "--out", out], "list.yaml"),
    ]
    for override, named in (("optim.lr=abc", "optim.lr"), ("optim.epochs=-1", "optim.epochs"),
                            ("data.n_train=-5", "data.n_train"), ("eval.threat_model=L1", "L1"),
                            ("eval.eps=inf", "inf"), ("nope.key=1", "nope"),
                            ("optim.batch_size=0", "batch_size"),
                            ("runtime.device=banana", "banana"), ("recipe.name=nope", "nope"),
                            ("recipe.params.eps=abc", "abc"), ("recipe.params.bogus=1", "bogus")):
        cases.append((f"--set {override}", [*base, "--set", override], named))
    return cases


def _zoo_cases(tmp: Path) -> list[tuple[str, list[str], str]]:
    import yaml

    root = tmp / "zoo"
    folder = root / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    entry = {"name": "Bad", "dataset": "cifar10", "threat_model": "Linf", "architecture": "timm:resnet18",
             "model": {"num_classes": "abc"}, "checkpoint": {"path": "x.safetensors", "sha256": "0" * 64},
             "card": "Bad.json"}
    (folder / "Bad.yaml").write_text(yaml.safe_dump(entry))
    shape = tmp / "zoo2"
    (shape / "cifar10" / "Linf").mkdir(parents=True)
    (shape / "cifar10" / "Linf" / "Bad.yaml").write_text(
        yaml.safe_dump({**entry, "model": {"input_shape": 5}}))
    run = tmp / "run"
    cases = [
        ("zoo num_classes abc", ["zoo", "--root", str(root), "list"], "num_classes"),
        ("zoo input_shape 5", ["zoo", "--root", str(shape), "list"], "input_shape"),
        ("zoo unknown entry", ["zoo", "--root", str(root / "none"), "show", "X"], "zoo"),
    ]
    for name in ("../../x", "", "..", "a/b", "x" * 300):
        cases.append((f"zoo add --name {name[:10]!r}", ["zoo", "--root", str(root), "add", "--run", str(run),
                                                         "--name", name], "--name"))
    return cases


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("malformed")
    f = _files(tmp)
    out = str(tmp / "out")
    cases = (_score_cases(f, out) + _evaluate_cases(f, out) + _leaderboard_cases(tmp, out)
             + _train_cases(tmp, out) + _zoo_cases(tmp))
    return tmp, out, cases


def _ids():
    return None


def test_every_command_turns_malformed_input_into_one_line(table, capsys, monkeypatch):
    tmp, out, cases = table
    monkeypatch.chdir(tmp)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    failures = []
    for label, argv, named in cases:
        code = main(argv)
        err = capsys.readouterr().err.strip()
        lines = [ln for ln in err.splitlines() if not ln.startswith(("WARNING ", "INFO "))]
        problem = None
        if code != 1:
            problem = f"exit status {code}"
        elif len(lines) != 1 or ": error: " not in lines[0]:
            problem = f"not one error line: {lines[:3]}"
        elif named not in lines[0]:
            problem = f"line does not name {named!r}: {lines[0][:300]}"
        elif len(lines[0]) > 2200:
            problem = f"line of {len(lines[0])} characters"
        elif os.path.exists(out):
            problem = f"partial output left in {out}"
        if problem:
            failures.append(f"{label}: {problem}")
    assert not failures, "\n".join(failures)
    assert len(cases) > 80
