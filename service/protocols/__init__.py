"""The front doors' request and answer formats, on top of the model layer's validation.

Each protocol reads its body into raw columns and hands them to
:func:`service.model.payload.from_columns`, so every format shares one set of checks and
messages (which column, which row), the batching, the plan and the limits; each renders a
:class:`~service.model.predictor.Prediction` its own way. No HTTP here: the routes in
``service.http`` call these.

- ``csv_table``: ``text/csv`` bodies (this API's and MLflow's);
- ``open_inference``: the Open Inference Protocol (KServe V2) over REST;
- ``mlflow``: MLflow's scoring protocol (``POST /invocations``).
"""
