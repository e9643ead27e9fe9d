"""agop_book.notebook: the profile, the offline switch and the environment report that close
every chapter, read from the environment."""

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
