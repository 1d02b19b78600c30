from __future__ import annotations

import re

import pytest

from dqmflow.names import SLUG_PATTERN, HistogramName, slugify, unslugify

TRICKY = [
    "L1T//Run summary/L1TStage2EMTF/emtfTrackPhi",
    "DT//Run summary/02-Segments/Wheel-2/Sector1/Station1/h4DSegmNHits_W-2_St1_Sec1",
    "CSC//Run summary/CSCOfflineMonitor/Occupancy/ME+1/1 #hits (a.b)",
    "X/~tilde.dot_under-minus+plus space%percent",
    "HLT//Run summary/Ünïcode/µ",
]


@pytest.mark.parametrize("name", TRICKY)
def test_slug_round_trip_and_is_shell_and_file_safe(name: str) -> None:
    slug = slugify(name)
    assert re.fullmatch(SLUG_PATTERN, slug)
    assert "/" not in slug and " " not in slug
    assert unslugify(slug) == name


def test_slug_is_readable() -> None:
    assert slugify("L1T//Run summary/L1TStage2EMTF/emtfTrackPhi") == "L1T..Run+summary.L1TStage2EMTF.emtfTrackPhi"


@pytest.mark.parametrize("bad", ["", "a/b", "~zz", "~2", "a~2e"])
def test_bad_slugs_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        unslugify(bad) if bad else slugify(bad)


def test_non_canonical_escape_is_rejected() -> None:
    # "~41" decodes to "A", which encodes as a literal: two slugs for one name would break wildcards.
    with pytest.raises(ValueError, match="canonical"):
        unslugify("~41")


@pytest.mark.parametrize("path", ["/Run summary/EMTF/h", "Run summary/EMTF/h", "  /Run summary/EMTF/h "])
def test_paths_with_and_without_leading_slash_are_the_same_histogram(path: str) -> None:
    name = HistogramName("L1T", path)
    assert name.column == "L1T//Run summary/EMTF/h"
    assert name.in_file(355872) == "DQMData/Run 355872/L1T/Run summary/EMTF/h"
    assert HistogramName.from_slug(name.slug) == name
    assert name.short == "h"


@pytest.mark.parametrize("subsystem,path", [("", "/a"), ("A/B", "/a"), ("L1T", "/"), ("L1T", "")])
def test_invalid_names(subsystem: str, path: str) -> None:
    with pytest.raises(ValueError):
        HistogramName(subsystem, path)
