"""Version skew: the scikit-learn that pickled a model against the one that runs it.

scikit-learn promises nothing across versions for a pickle: an estimator's attributes may
be renamed, or its arithmetic changed, between minor releases, so a model unpickled by
another minor version may fail, or worse, predict differently without a word. It records
its version in every estimator (``_sklearn_version``) and warns on a mismatch when
unpickling (``InconsistentVersionWarning``; ``service.model.artifact`` keeps what it says),
and a packed artifact's record states it too. The policy (VERSION_SKEW):

- ``refuse`` (the default): another major or minor version stops the boot, and refuses
  an upload or a version another replica stored (422 ``version_skew``); another patch
  release only warns, as patch releases keep pickles.
- ``warn``: any difference is logged and the model serves.

Either way the one line names both versions, and ``GET /model`` shows them.
"""

from __future__ import annotations

import sklearn
from packaging.version import InvalidVersion, Version

from service.errors import VersionSkew


def judge(trained: str | None, policy: str, running: str = sklearn.__version__) -> str | None:
    """The warning to log for a model pickled with scikit-learn ``trained`` served by
    ``running`` (None: they agree, or ``trained`` is unknown); raises :class:`VersionSkew`
    when ``policy`` refuses the difference."""
    if trained is None or trained == running:
        return None
    found = f"pickled with scikit-learn {trained}, served by scikit-learn {running}"
    if policy == "refuse" and _minor(trained) != _minor(running):
        raise VersionSkew(
            f"the model was {found}: another minor version may unpickle or predict "
            "differently. Re-pack it with this scikit-learn, serve it with its own, or set "
            "VERSION_SKEW=warn to serve it anyway",
            details={"trained_sklearn": trained, "running_sklearn": running},
        )
    return f"version skew: the model was {found}; VERSION_SKEW={policy} lets it serve"


def _minor(version: str) -> tuple[int, ...] | str:
    """``(major, minor)``; the text itself when it is not a version (then only equal text
    is the same minor)."""
    try:
        return Version(version).release[:2]
    except InvalidVersion:
        return version
