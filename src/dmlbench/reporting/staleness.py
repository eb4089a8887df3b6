"""Whether a metrics file's row is what the current code would make, and if not, why (the tables mark it with †).

The rule, from what a metrics file records: a row is stale when it has no provenance (made before provenance was
recorded), or when identity.make_run, given the file's experiment, method section and recorded identity values
(``run.identity``: the resolved IDENTITY_PARAMS and the prepared data's digest), names it otherwise than the name it
was made under, or the current code refuses those params, or the file records no identity values. Code digests are
not compared: ``provenance.code_digest`` hashes every file of the package, so any edit (a docstring, a table's
layout) would mark every row, and the README would change with commits that no tables dependency tracks.
``current_name`` is the one call into the identity code: replace it to change the rule.
"""

from dmlbench.errors import DmlbenchError

NO_PROVENANCE = "no provenance: made before provenance was recorded"


def staleness(record: dict, name_of=None) -> str | None:
    """Why ``record`` (a metrics file) is not what the current code would make of it; None when it is.
    ``name_of`` (default ``current_name``) gives the current code's name of a record, or raises DmlbenchError."""
    reasons = [] if record.get("provenance") else [NO_PROVENANCE]
    try:
        name = (name_of or current_name)(record)
    except DmlbenchError as exc:
        reasons.append(f"{exc}: rerun it with the current code")
    else:
        if name != record["run"]["name"]:
            reasons.append(f"the current code names it {name}: rerun it with the current code")
    return "; ".join(reasons) or None


def current_name(record: dict) -> str:
    """The name identity.make_run gives the run ``record`` describes: its experiment, its method section and the
    identity values (resolved IDENTITY_PARAMS and the prepared data's digest) its file records as run.identity."""
    import dataclasses

    from dmlbench.identity import Experiment, make_run
    from dmlbench.methods import get_method

    run, params = record["run"], record.get("params") or {}
    if not isinstance(run.get("identity"), dict):
        raise DmlbenchError("its metrics file does not record the identity values the current code names runs by")
    try:
        cfg = get_method(run["method"]).config_cls(**params.get("method", {}))
        exp = Experiment(**{f.name: run[f.name] for f in dataclasses.fields(Experiment)})
    except (TypeError, ValueError, KeyError, DmlbenchError) as exc:
        raise DmlbenchError(f"the current code refuses its recorded params ({type(exc).__name__}: {exc})") from None
    identity = dict(run["identity"])
    if identity.get("train.select", "last") != "last":  # made before train.select_metric: it selected by Recall@1
        identity.setdefault("train.select_metric", "recall@1")
    return make_run(exp, run["variant"], cfg, identity).name
