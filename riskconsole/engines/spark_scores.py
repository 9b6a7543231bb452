"""Detector scores on engine spark: every trained detector scores the Spark frame on the executors (DESIGN §4, §7).

The model folder's files (LightGBM's text model, the calibration, categories.json, detector.json; a PyOD kind's
model.joblib) are broadcast once; each executor rebuilds the detector with `detectors.load_detector` (cached per
Python worker) and scores its partitions with `mapInArrow` (the Arrow sibling of `mapInPandas`: the batches reach
`Encoding.matrix` as Arrow, the very path DuckDB's scoring takes, with no pandas conversion of NULLs or text). The
rows are read with the encoding's own query (`Encoding.select`, rendered for Spark), so numbers are the same
float32s and text the same codes (LightGBM's category codes, PyOD's training frequencies). Scoring a partition
alone is scoring it with the rest: a PyOD kind's score of a row does not depend on the other rows of its batch
(ECOD and COPOD rank against frozen training ECDFs, other PyOD models are checked to be inductive at training,
outliers.py). Executors need riskconsole, LightGBM and PyOD installed (as they need PySpark).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
from sqlglot import exp

from riskconsole.engines import spark_worker

_MODELS: dict[str, Any] = {}  # per Python worker: files' digest -> loaded detector
_LOCK = threading.Lock()


CARD_FILES = ("card.json", "card.md")  # written beside the model by `train`; they do not score


def model_files(folder: Path) -> dict[str, bytes]:
    """The files of a model folder that `load_detector` reads, by name (not its card: a model's scores, and the
    folder they are kept in, are the same before and after `train` writes the card)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name not in CARD_FILES}


def digest(files: dict[str, bytes]) -> str:
    """What identifies a trained model: the sha1 of its files."""
    sha = hashlib.sha1()
    for name in sorted(files):
        sha.update(name.encode() + b"\0" + hashlib.sha1(files[name]).digest())
    return sha.hexdigest()[:12]


def scored_on_spark(files: dict[str, bytes]) -> bool:
    """Whether this is a trained model's folder (scored on the executors) rather than scores to export from DuckDB."""
    meta = files.get("detector.json")
    return meta is not None and bool(json.loads(meta).get("kind"))


def score_frame(spark: Any, frame_sql: Callable[[exp.Expression], str], files: dict[str, bytes], name: str) -> Any:
    """A Spark DataFrame (`_pos`, `name`) of the model's score of every frame row, computed on the executors.

    `frame_sql` renders a DuckDB-dialect AST for Spark (with the engine's checks)."""
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    _local_workers(spark)
    model = _load(files)  # on the driver: the folder reads, and the encoding says which columns to select
    features = json.loads(files["detector.json"])["features"]
    query = _encoding(model, features).select([exp.column("_pos")])
    rows = spark.sql(frame_sql(query))
    from riskconsole.engines.spark import is_connect

    # a Connect client has no SparkContext to broadcast from: the files travel in the function's closure instead
    shipped = _Shipped(files) if is_connect(spark) else spark.sparkContext.broadcast(files)
    schema = StructType([StructField("_pos", LongType()), StructField(name, DoubleType())])
    return rows.mapInArrow(_scorer(shipped, features, name), schema)


class _Shipped:
    """The model's files where a broadcast variable cannot be made (a Spark Connect client): `.value`, as a
    broadcast's, pickled with the scoring function that holds it."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.value = files


def _local_workers(spark: Any) -> None:
    """The Python the executors' workers run: $PYSPARK_PYTHON if set (PySpark's own choice), else the session's
    `spark.pyspark.python` (e.g. the dataset's `spark: conf:`), which PySpark applies only under spark-submit, else in
    local mode this interpreter (the one with riskconsole and LightGBM): PySpark's default is whatever `python3` is on
    PATH, which here lacked even pyarrow. A Spark Connect server's workers are its own setting (nothing to set from a
    client). The setting is read from the session (one call), where `engines.spark.start` puts a dataset's settings
    on a session it finds: the context's copy (`getConf()`, a Py4J call per setting) lacks them then."""
    from riskconsole.engines.spark import is_connect

    if is_connect(spark) or os.environ.get("PYSPARK_PYTHON"):
        return
    context = spark.sparkContext
    chosen = spark.conf.get("spark.pyspark.python", None)
    if chosen:
        context.pythonExec = chosen
    elif context.master.startswith("local"):
        context.pythonExec = sys.executable


def _scorer(shipped: Any, features: list[str], name: str) -> Callable[[Iterator[pa.RecordBatch]], Iterator]:
    """What each executor runs over its partition's batches: encode as DuckDB's scoring does, score, clip."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        spark_worker.settle()
        model = _load(shipped.value)
        spark_worker.settle()  # the model's libraries: imported by its first task in this worker
        encoding, dtype = _encoding(model, features), getattr(model, "input_dtype", np.float32)  # as score_into
        for batch in batches:
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            scores = np.clip(np.asarray(model.score(encoding.matrix(table, dtype)), dtype=np.float64), 0.0, 1.0)
            positions = pa.array(table.column("_pos").to_numpy(zero_copy_only=False), pa.int64())
            yield pa.RecordBatch.from_arrays([positions, pa.array(scores, pa.float64())], names=["_pos", name])

    return run


def _encoding(model: Any, features: list[str]) -> Any:
    from riskconsole.detectors.registry import encoding_of

    return encoding_of(model, features)


def _load(files: dict[str, bytes]) -> Any:
    """The detector of these files, loaded once per Python process from a private temporary folder, removed once
    it is loaded: a Python worker ends by `os._exit`, so a removal left to `atexit` never ran there (a folder per
    worker and model stayed on every executor's disk). Loading reads every file the scores need (LightGBM's text
    model, PyOD's joblib, the compiled trees already mapped by `dlopen`); the TreeSHAP tables an explanation could
    read are recomputed where missing (detectors/treeshap.py), and no worker explains."""
    from riskconsole.detectors import load_detector

    key = digest(files)
    with _LOCK:
        if key not in _MODELS:
            with tempfile.TemporaryDirectory(prefix="riskconsole-model-") as folder:
                for file, data in files.items():
                    (Path(folder) / file).write_bytes(data)
                _MODELS[key] = load_detector(Path(folder))[0]
        return _MODELS[key]
