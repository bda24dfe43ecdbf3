"""A compiled prediction plan: the pipeline's arithmetic without its per-call overhead.

``pipeline.predict`` on one row costs milliseconds, nearly all of it framework:
sklearn-pandas selects each column through pandas, every transformer re-validates
its input, the estimator validates again, while the arithmetic of a linear model
is microseconds (issue 11). At load time :func:`compile_plan` reads the fitted
pipeline and builds the same computation on numpy arrays taken straight from the
validated request columns::

    columns ─► first step: each mapper / ColumnTransformer entry, as per-column ops
            ─► middle steps compiled while they are known elementwise transformers
            ─► [hand-off: the remaining original steps, from the first unknown one]
            ─► estimator: linear models computed directly, forests' trees summed
                          directly, any other its own predict

Each op repeats what the installed scikit-learn does, down to the order of the
floating-point operations and the dtypes, so answers are equal rather than close.
Nothing is guessed: an unknown transformer or option in the first step makes a
:class:`Fallback` (the pipeline serves, and ``describe()`` says why); later, the
plan hands its matrix to the original steps. :func:`verify` then runs the plan
beside the pipeline on the packed sample and synthetic rows before it may serve;
:func:`prepare` does both.

Where each part lives:

- ``core``: :class:`Plan` and :class:`Fallback`, and how each scores a batch
- ``compile``: :func:`compile_plan`, the steps front to back
- ``columns``: the first step, mapper entries / ColumnTransformer parts to blocks
- ``features``: those blocks at run time, request columns as pandas would hold them
- ``transformers``: which transformer class compiles how (the registry)
- ``scalers``, ``imputers``, ``functions``, ``labels``, ``encoders``: the compilers
- ``estimators``, ``linear`` and ``forests``: the final estimator
- ``verify``, ``compare``, ``synthetic``: :func:`verify` and :func:`prepare`
- ``base``: what every compiler shares (``Flow``, ``Compiled``, ``Unsupported``)
"""

from service.model.plan.base import Compiled
from service.model.plan.compile import compile_plan
from service.model.plan.core import Fallback, Plan
from service.model.plan.verify import Verdict, prepare, verify

__all__ = ["Compiled", "Fallback", "Plan", "Verdict", "compile_plan", "prepare", "verify"]
