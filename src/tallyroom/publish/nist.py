"""The NIST SP 1500-100 v2 Election Results Reporting export (JSON), one report per count kind.

Each report is a ``summary-contest`` ``ElectionReport`` with one ``ReportingUnit`` per area
(the country, its regions, constituencies — not the stations: the station protocols are in
``data/results.json`` and the CSV files) and, for every contest, one ``VoteCounts`` of type
``total`` per choice and area. Machine and hand counts go to different reports and are never
added together. "Against all" is reported as a party selection of a pseudo-party
``party-<id>`` whose name says what it is. Validated in the tests against
``NIST_V2_election_results_reporting.json`` (usnistgov/ElectionResultsReporting, version 2).
"""

from __future__ import annotations

import re
from typing import Any

from tallyroom import __version__
from tallyroom.definition.compiled import CompiledElection, name_in
from tallyroom.definition.model import ContestKind, Name
from tallyroom.publish.results import Results

_ID = re.compile(r"[^A-Za-z0-9_.:-]")
_COLOUR = re.compile(r"^#([0-9a-fA-F]{6})$")
_UNIT_TYPES = {"country", "city", "state", "county", "municipality", "precinct", "polling-place"}


def _gp(area_id: str) -> str:
    return "gp-" + _ID.sub("_", area_id)


def _text(name: Name, languages: list[str]) -> dict[str, Any]:
    langs = [name] if isinstance(name, str) else None
    strings = (
        [
            {
                "@type": "ElectionResults.LanguageString",
                "Content": str(name),
                "Language": languages[0] if languages else "en",
            }
        ]
        if langs is not None
        else [
            {"@type": "ElectionResults.LanguageString", "Content": text, "Language": lang}
            for lang, text in name.items()  # type: ignore[union-attr]
        ]
    )
    return {"@type": "ElectionResults.InternationalizedText", "Text": strings}


def _unit_type(kind: str) -> dict[str, str]:
    if kind in _UNIT_TYPES:
        return {"Type": kind}
    return {"Type": "other", "OtherType": kind}


def election_report(
    election: CompiledElection, results: Results, kind: str, snapshot: dict[str, Any]
) -> dict[str, Any]:
    d = election.definition
    langs = list(d.election.languages)
    root_area = election.areas[election.roots[0]]
    main = next((c for c in election.contests if c.contest.area == root_area.id), election.contests[0])
    units = []
    for i, a in enumerate(election.areas):
        unit: dict[str, Any] = {
            "@id": _gp(a.id),
            "@type": "ElectionResults.ReportingUnit",
            "Name": _text(a.name, langs),
            **_unit_type(a.kind),
            "ExternalIdentifier": [
                {"@type": "ElectionResults.ExternalIdentifier", "Type": "local-level", "Value": a.id}
            ]
            + (
                [
                    {
                        "@type": "ElectionResults.ExternalIdentifier",
                        "Type": "other",
                        "OtherType": "p-code",
                        "Value": a.code,
                    }
                ]
                if a.code
                else []
            ),
        }
        children = [election.areas[c].id for c in election.children[i]]
        if children:
            unit["ComposingGpUnitIds"] = [_gp(c) for c in children]
        row = results.rows.get((main.id, a.id, kind))
        if row is not None:
            unit["SubUnitsReported"] = row["stations_reporting"]
            unit["TotalSubUnits"] = row["stations_expected"]
            if row["registered"] is not None:
                unit["VotersRegistered"] = row["registered"]
            if row["took_part"] is not None:
                unit["VotersParticipated"] = row["took_part"]
        units.append(unit)
    parties: dict[str, dict[str, Any]] = {}
    candidates: list[dict[str, Any]] = []
    contests = []
    ballot_counts = []
    complete = True
    for c in election.contests:
        rows: dict[str, dict[str, Any]] = {}
        for ai in sorted(c.stations_expected):
            got = results.rows.get((c.id, election.areas[ai].id, kind))
            if got is not None:
                rows[election.areas[ai].id] = got
        own = rows.get(c.contest.area)
        if own is not None and own["stations_reporting"] < own["stations_expected"]:
            complete = False
        selections = []
        for j, ch in enumerate(c.contest.choices):
            counts = [
                {
                    "@type": "ElectionResults.VoteCounts",
                    "Count": r["lines"][ch.id],
                    "GpUnitId": _gp(aid),
                    "Type": "total",
                }
                for aid, r in rows.items()
            ]
            sel_id = f"sel-{_ID.sub('_', c.id)}-{_ID.sub('_', ch.id)}"
            if c.contest.kind == ContestKind.PARTY_LIST:
                pid = f"party-{_ID.sub('_', ch.id)}"
                if pid not in parties:
                    party: dict[str, Any] = {
                        "@id": pid,
                        "@type": "ElectionResults.Party",
                        "Name": _text(ch.name, langs),
                    }
                    m = _COLOUR.match(ch.color or "")
                    if m:
                        party["Color"] = m.group(1).lower()
                    parties[pid] = party
                selections.append(
                    {
                        "@id": sel_id,
                        "@type": "ElectionResults.PartySelection",
                        "PartyIds": [pid],
                        "SequenceOrder": j + 1,
                        "VoteCounts": counts,
                    }
                )
            else:
                cand_id = f"cand-{_ID.sub('_', c.id)}-{_ID.sub('_', ch.id)}"
                cand: dict[str, Any] = {
                    "@id": cand_id,
                    "@type": "ElectionResults.Candidate",
                    "BallotName": _text(ch.name, langs),
                }
                if ch.party:
                    pid = f"party-{_ID.sub('_', ch.party)}"
                    cand["PartyId"] = pid
                    if pid not in parties:
                        parties[pid] = {
                            "@id": pid,
                            "@type": "ElectionResults.Party",
                            "Name": _text(ch.party, langs),
                        }
                candidates.append(cand)
                selections.append(
                    {
                        "@id": sel_id,
                        "@type": "ElectionResults.CandidateSelection",
                        "CandidateIds": [cand_id],
                        "SequenceOrder": j + 1,
                        "VoteCounts": counts,
                    }
                )
        contest: dict[str, Any] = {
            "@id": f"contest-{_ID.sub('_', c.id)}",
            "ElectionDistrictId": _gp(c.contest.area),
            "Name": name_in(c.contest.name, "en"),
            "ContestSelection": selections,
        }
        if own is not None:
            contest["SubUnitsReported"] = own["stations_reporting"]
            contest["TotalSubUnits"] = own["stations_expected"]
        if c.contest.kind == ContestKind.PARTY_LIST:
            contest["@type"] = "ElectionResults.PartyContest"
        else:
            contest["@type"] = "ElectionResults.CandidateContest"
            contest["VotesAllowed"] = 1
            contest["NumberElected"] = c.contest.allocation.seats if c.contest.allocation else 1
        contests.append(contest)
        if c is main:
            for aid, r in rows.items():
                entry: dict[str, Any] = {
                    "@type": "ElectionResults.BallotCounts",
                    "GpUnitId": _gp(aid),
                    "Type": "total",
                }
                if r["ballots_cast"] is not None:
                    entry["BallotsCast"] = r["ballots_cast"]
                if r["invalid"] is not None:
                    entry["BallotsRejected"] = r["invalid"]
                ballot_counts.append(entry)
    status = "unofficial-complete" if complete else "unofficial-partial"
    return {
        "@type": "ElectionResults.ElectionReport",
        "Format": "summary-contest",
        "GeneratedDate": snapshot["published_at"],
        "Issuer": d.election.origin or f"tallyroom/{d.election.id}",
        "IssuerAbbreviation": d.election.id,
        "SequenceStart": 1,
        "SequenceEnd": 1,
        "Status": status,
        "VendorApplicationId": f"tallyroom {__version__}",
        "Notes": (
            f"Count kind: {kind} ({'official' if kind == str(main.official_count) else 'preliminary'}); "
            f"tallyroom snapshot {snapshot['number']}, ledger size {snapshot['ledger_size']}, "
            f"root {snapshot['root']}. Machine and hand counts are separate reports."
        ),
        "GpUnit": units,
        "Party": list(parties.values()),
        "Election": [
            {
                "@type": "ElectionResults.Election",
                "ElectionScopeId": _gp(root_area.id),
                "Name": _text(d.election.name, langs),
                "StartDate": d.election.date,
                "EndDate": d.election.date,
                "Type": "general",
                "Candidate": candidates,
                "Contest": contests,
                "BallotCounts": ballot_counts,
                "CountStatus": [
                    {
                        "@type": "ElectionResults.CountStatus",
                        "Status": "completed" if complete else "in-process",
                        "Type": "total",
                    }
                ],
            }
        ],
    }
