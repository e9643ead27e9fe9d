"""agop_book.notebook: the profile, the offline switch and the environment report that close
every chapter, read from the environment."""

import numpy as np
import pytest
import torch

from agop_book import notebook


def test_profile_reads_environment(monkeypatch):
    monkeypatch.setenv("AGOP_PROFILE", "paper")
    assert notebook.profile() == "paper"
    monkeypatch.setenv("AGOP_PROFILE", "quick")
    assert notebook.profile() == "quick"
    monkeypatch.delenv("AGOP_PROFILE")
    assert notebook.profile() == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert notebook.profile() == "quick"  # never paper silently, also on a GPU
    monkeypatch.setenv("AGOP_PROFILE", "fast")
    with pytest.raises(ValueError, match="AGOP_PROFILE"):
        notebook.profile()


def test_offline_switch(monkeypatch):
    monkeypatch.delenv("AGOP_OFFLINE", raising=False)
    assert notebook.offline() is False
    for value, expected in [("1", True), ("true", True), ("0", False), ("no", False)]:
        monkeypatch.setenv("AGOP_OFFLINE", value)
        assert notebook.offline() is expected
    monkeypatch.setenv("AGOP_OFFLINE", "maybe")
    with pytest.raises(ValueError, match="AGOP_OFFLINE"):
        notebook.offline()


def test_environment_report_names_profile_and_seed(capsys):
    text = notebook.environment_report(seed=3)
    assert "seed=3" in text and "torch" in text and "profile" in text


# Hostile inputs


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: notebook.glue("a b", 1.0), ValueError, "name must be a key"),
        (lambda: notebook.glue("a`b", 1.0), ValueError, "name must be a key"),
        (lambda: notebook.glue("ok", 1.0, display="no"), TypeError, "display must be"),
        (lambda: notebook.claim(np.array([True, False]), "t"), TypeError, "holds must be one"),
        (lambda: notebook.claim(torch.tensor([True, True]), "t"), TypeError, "holds must be one"),
        (lambda: notebook.claim(None, "t"), TypeError, "holds must be True or False"),
        (lambda: notebook.claim("False", "t"), TypeError, "holds must be True or False"),
        (lambda: notebook.claim(float("nan"), "t"), TypeError, "holds must be True or False"),
        (lambda: notebook.announce("quick", quick=3, paper="b"), TypeError, "quick must say"),
        (lambda: notebook.environment_report(data="x"), TypeError, "data must be an integer"),
        (lambda: notebook.environment_report(data=-1), ValueError, "data must be a non-neg"),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match, capsys):
    with pytest.raises(error, match=match):
        call()


def test_claim_takes_one_truth_value_of_any_kind_and_a_misspelt_mode_is_refused(monkeypatch):
    monkeypatch.delenv("AGOP_CLAIMS", raising=False)
    assert notebook.claim(np.bool_(True), "t") is True
    assert notebook.claim(torch.tensor(True), "t") is True
    assert notebook.claim(np.array([True]), "t") is True
    assert notebook.claim(torch.tensor([False]), "t") is False
    monkeypatch.setenv("AGOP_CLAIMS", "stric")  # a typo must not silently turn strict off
    with pytest.raises(ValueError, match="AGOP_CLAIMS must be 'strict'"):
        notebook.claim(False, "t")


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("-inf"), np.float32("nan"), np.array([np.inf]), torch.tensor(np.nan)],
)
def test_glue_refuses_a_non_finite_number_in_strict_mode_and_notes_it_otherwise(
    value, monkeypatch, capsys
):
    # the prose cites a glued number: a NaN would read "the gap is nan" in the book
    monkeypatch.setattr(notebook, "have_myst_nb", lambda: False)
    monkeypatch.setenv("AGOP_CLAIMS", "strict")
    with pytest.raises(ValueError, match="^value must be a finite number"):
        notebook.glue("gap", value, display=False)
    assert capsys.readouterr().out == ""  # nothing glued
    monkeypatch.setenv("AGOP_CLAIMS", "note")
    notebook.glue("gap", value, display=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("note: gap is ") and "not a number the text can cite" in lines[0]
    assert lines[1].startswith("gap = ")


@pytest.mark.parametrize(
    "value", [0.0, -1e308, np.float64(2.5), torch.tensor([1.0, np.nan]), "nan", [np.nan], 3]
)
def test_glue_takes_finite_numbers_and_anything_that_is_not_one_number(value, monkeypatch, capsys):
    monkeypatch.setattr(notebook, "have_myst_nb", lambda: False)
    monkeypatch.setenv("AGOP_CLAIMS", "strict")
    notebook.glue("x", value, display=False)
    assert capsys.readouterr().out.startswith("x = ")


# Hostile inputs, round 6


def test_claim_and_glue_take_a_tensor_on_the_meta_device_without_failing_inside(
    monkeypatch, capsys
):
    """A ``meta`` tensor has no value: ``claim`` refuses it by name (it failed in ``.item()``),
    and ``glue`` does not read it as a number (it failed copying it to the CPU)."""
    monkeypatch.delenv("AGOP_CLAIMS", raising=False)
    with pytest.raises(TypeError, match="^holds is a tensor on the 'meta' device"):
        notebook.claim(torch.tensor(True, device="meta"), "the sentence")
    monkeypatch.setenv("AGOP_CLAIMS", "strict")
    monkeypatch.setattr(notebook, "have_myst_nb", lambda: False)
    notebook.glue("shape_only", torch.tensor(1.0, device="meta"), display=False)
    assert capsys.readouterr().out.startswith("shape_only = tensor(")


# Held-out style bugs, round 5


@pytest.mark.parametrize(
    "profile, device, expected",
    [
        ("paper", "cpu", ["profile paper on cpu: expected P", "  (no GPU here: the paper profile"]),
        ("paper", "cuda", ["profile paper on cuda: expected P"]),
        ("quick", "cpu", ["profile quick on cpu: expected Q", "  paper profile: P; to run it"]),
        ("quick", "cuda", ["profile quick on cuda: expected Q", "  paper profile: P; to run it"]),
    ],
)
def test_announce_warns_of_a_slow_paper_run_only_without_a_gpu(
    profile, device, expected, monkeypatch, capsys
):
    """The note that the paper profile will take much longer belongs to a paper run on the CPU,
    and to no other: each line announce prints, against the four cases written out."""
    monkeypatch.setattr(notebook, "default_device", lambda *a: torch.device(device))
    text = notebook.announce(profile, quick="Q", paper="P")
    lines = text.splitlines()
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), (line, start)
    assert capsys.readouterr().out == text + "\n"


@pytest.mark.parametrize(
    "value",
    [
        complex(float("nan"), 0.0),
        np.complex128(complex(0.0, np.inf)),
        torch.tensor(complex(np.nan, 1.0)),
    ],
)
def test_glue_refuses_a_non_finite_complex_number_in_strict_mode(value, monkeypatch, capsys):
    """A complex NaN or infinity is as uncitable as a real one (``glue`` names floats and
    complex numbers alike): refused in strict mode, noted otherwise."""
    monkeypatch.setattr(notebook, "have_myst_nb", lambda: False)
    monkeypatch.setenv("AGOP_CLAIMS", "strict")
    with pytest.raises(ValueError, match="^value must be a finite number"):
        notebook.glue("gap", value, display=False)
    monkeypatch.setenv("AGOP_CLAIMS", "note")
    notebook.glue("gap", value, display=False)
    assert capsys.readouterr().out.startswith("note: gap is ")
