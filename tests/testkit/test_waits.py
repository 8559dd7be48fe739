"""The one knob that scales every test wait."""

from __future__ import annotations

import pytest

from testkit.waits import DEFAULT_WAIT, SCALE_ENV, bound


def test_unset_means_the_generous_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCALE_ENV, raising=False)
    assert bound() == DEFAULT_WAIT >= 30.0
    assert bound(5.0) == 5.0


def test_the_knob_scales_every_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCALE_ENV, "3")
    assert bound() == 3 * DEFAULT_WAIT
    assert bound(5.0) == 15.0


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "inf", "nan"])
def test_a_bad_scale_fails_loudly_naming_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(SCALE_ENV, raw)
    with pytest.raises(ValueError, match=SCALE_ENV):
        bound()
