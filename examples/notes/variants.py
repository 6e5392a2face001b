"""Seeded regressions of the notes service and the replay environments retap cannot reproduce.

Each regression changes one observable thing on one route, so a gate has something real to
catch; `python3 notes_service.py --list-variants` prints them as JSON (name -> what it does).
"""

REGRESSIONS = {
    "changed-field": "GET /notes/{id} answers `owner` as the display name ('Ana Lima') instead of the user name",
    "missing-field": "GET /me leaves out `quota`",
    "changed-status": "POST /notes answers 200 instead of 201",
    "error-burst": "GET /notes/{id} answers 500 to about a fifth of the requests, at random",
    "extra-call": "PUT /notes/{id} asks the directory for the user a second time",
    "missing-call": "POST /notes no longer sends its audit event",
    "changed-param": "POST /notes sends its audit event as kind 'created' instead of 'note.created'",
    "slow": "GET /notes (the list) answers 150 ms later",
    "changed-header": "GET /notes/{id} answers Cache-Control 'public, max-age=60' instead of 'private, no-store'",
    "type-change": "GET /stats answers `words` as a string",
    "dropped-item": "GET /notes (the list) leaves out the oldest note",
}

# What the traffic does besides the ordinary sessions (`traffic.py --phase`); the service always
# serves these routes, the recording decides whether a replay can reproduce them.
BROKEN = {
    "unmockable": "GET /notes/{id}/export has the directory render the note with a fresh ticket number "
    "each time: the recorded call never matches again, so no mock can answer it",
    "unsigned": "POST /notes/{id}/share needs X-Proof, an HMAC of the request under the session "
    "key: the client computes it, no answer hands it out, so a replay cannot carry it",
}


def parse(text):
    """'a,b' -> {'a', 'b'}; 'all' -> every regression; unknown names raise ValueError."""
    names = {n.strip() for n in (text or "").split(",") if n.strip()}
    if "all" in names:
        return set(REGRESSIONS)
    unknown = sorted(names - set(REGRESSIONS))
    if unknown:
        raise ValueError(f"unknown variant {', '.join(unknown)}; valid: {', '.join(REGRESSIONS)}, all")
    return names
