"""Where engine spark keeps its Parquet: `data/spark/` of the workspace, or `spark.store` of dataset.yaml (issue 15).

A store holds one folder per data version (`<store>/<version>/`: the events by day, streams, tables, the frame,
scores, entity frames). Every question about it — does a marker exist, list the versions, remove one, write or read
a marker — goes through Hadoop's FileSystem API of the Spark session, so a store on a shared mount (`file:///mnt/x`)
or an object store (`s3a://bucket/prefix`, with the session's Hadoop settings) works as `data/spark/` does.
DuckDB's side (the export of a DuckDB load, reading a Spark load's tables back, an entity frame saved by
entities.py) writes and reads local folders: on a store that is not a local path, those are copied through a local
temporary folder with the same API. A Spark Connect client has no JVM: its store questions go to Python's own
file calls on a local store and to pyarrow's file systems on a URI (`s3a://` read as pyarrow's `s3://`, with the
AWS settings of this machine).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse


class Store:
    """A folder of a store: `base` is a URI (`file:///mnt/x`, `s3a://bucket/prefix`) or an absolute path; `session`
    gives the SparkSession whose Hadoop settings reach it (asked only when the store is used)."""

    def __init__(self, session: Callable[[], Any], base: str, connect: bool | None = None) -> None:
        self._session = session
        self.base = base.rstrip("/") if "://" in base else str(Path(base))
        self.local = _local_path(self.base)  # a folder of this machine (file: URIs, absolute paths), else None
        self._connect = connect  # None: whatever the session is, asked when the store is first used

    @property
    def connect(self) -> bool:
        """Whether the session is a Spark Connect client (no JVM: Python's file calls, or pyarrow's file systems)."""
        if self._connect is None:
            from riskconsole.engines.spark import is_connect

            self._connect = is_connect(self.spark)
        return self._connect

    @property
    def spark(self) -> Any:
        return self._session()

    def child(self, name: str) -> Store:
        return Store(self._session, self.uri(name), self._connect)

    def uri(self, *parts: str) -> str:
        """What Spark reads and writes: the base with `parts` appended (a local store: its path)."""
        if self.local is not None:
            return str(self.local.joinpath(*parts))
        return "/".join([self.base, *parts]) if parts else self.base

    def read_uri(self, *parts: str) -> str:
        """`uri` as Spark's readers take it literally: Hadoop reads a path as a glob (a workspace in `risk [v2]/`)."""
        return literal(self.uri(*parts))

    # ------------------------------------------------------------ Hadoop's FileSystem API

    def _path(self, *parts: str) -> Any:
        jvm = self.spark._jvm
        if self.local is not None:
            return jvm.org.apache.hadoop.fs.Path(jvm.java.io.File(str(self.local.joinpath(*parts))).toURI())
        return jvm.org.apache.hadoop.fs.Path(self.uri(*parts))

    def _fs(self, path: Any) -> Any:
        return path.getFileSystem(self.spark._jsc.hadoopConfiguration())

    def exists(self, *parts: str) -> bool:
        if self.connect:
            return self._arrow(*parts)[2].type != _arrow_fs().FileType.NotFound
        path = self._path(*parts)
        return bool(self._fs(path).exists(path))

    def children(self, *parts: str) -> list[str]:
        """Names of the entries of a folder (none when it does not exist)."""
        if self.connect:
            fs, path, info = self._arrow(*parts)
            if info.type != _arrow_fs().FileType.Directory:
                return []
            return sorted(info.base_name for info in fs.get_file_info(_arrow_fs().FileSelector(path)))
        path = self._path(*parts)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        return sorted(str(s.getPath().getName()) for s in fs.listStatus(path))

    def remove(self, *parts: str) -> None:
        if self.connect:
            fs, path, info = self._arrow(*parts)
            if info.type == _arrow_fs().FileType.Directory:
                fs.delete_dir(path)
            elif info.type == _arrow_fs().FileType.File:
                fs.delete_file(path)
            return
        path = self._path(*parts)
        self._fs(path).delete(path, True)

    def write_text(self, *parts: str, text: str) -> None:
        if self.connect:
            fs, path, _ = self._arrow(*parts)
            fs.create_dir(path.rsplit("/", 1)[0], recursive=True)  # as Hadoop's create makes the parents
            with fs.open_output_stream(path) as out:
                out.write(text.encode("utf-8"))
            return
        path = self._path(*parts)
        out = self._fs(path).create(path, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()

    def read_text(self, *parts: str) -> str | None:
        """A small file's text (None when it does not exist)."""
        if self.connect:
            fs, path, info = self._arrow(*parts)
            if info.type != _arrow_fs().FileType.File:
                return None
            with fs.open_input_stream(path) as stream:
                return stream.read().decode("utf-8")
        path = self._path(*parts)
        fs = self._fs(path)
        if not fs.exists(path):
            return None
        stream = fs.open(path)
        try:
            return bytes(stream.readAllBytes()).decode("utf-8")
        finally:
            stream.close()

    # ------------------------------------------------------------ pyarrow's file systems (a Spark Connect client)

    def _arrow(self, *parts: str) -> tuple[Any, str, Any]:
        """(file system, path, what is there) of `parts` by pyarrow: a local store's folder, else the URI's own file
        system (S3 for `s3a://`, which is Hadoop's name for it; GCS, HDFS, Azure as pyarrow reaches them)."""
        system, path = arrow_path(str(self.local.joinpath(*parts)) if self.local is not None else self.uri(*parts))
        return system, path, system.get_file_info(path)

    # ------------------------------------------------------------ local folders for DuckDB's side

    @contextlib.contextmanager
    def writing(self, *parts: str) -> Iterator[Path]:
        """A local folder to write `parts` into: the store's own on a local store, else a temporary folder copied
        to the store when the block ends without an error."""
        if self.local is not None:
            yield self.local.joinpath(*parts)
            return
        with tempfile.TemporaryDirectory(prefix="riskconsole-store-") as folder:
            local = Path(folder) / "out"
            yield local
            if self.connect:
                self.remove(*parts)
                fs, path, _ = self._arrow(*parts)
                _arrow_fs().copy_files(str(local), path, source_filesystem=_arrow_fs().LocalFileSystem(),
                                       destination_filesystem=fs)
                return
            target = self._path(*parts)
            self._fs(target).delete(target, True)
            self._fs(target).copyFromLocalFile(False, True, self._local(local), target)

    @contextlib.contextmanager
    def reading(self, *parts: str) -> Iterator[Path]:
        """A local folder holding `parts`: the store's own on a local store, else a temporary copy."""
        if self.local is not None:
            yield self.local.joinpath(*parts)
            return
        with tempfile.TemporaryDirectory(prefix="riskconsole-store-") as folder:
            local = Path(folder) / "in"
            if self.connect:
                fs, path, info = self._arrow(*parts)
                if info.type != _arrow_fs().FileType.NotFound:
                    _arrow_fs().copy_files(path, str(local), source_filesystem=fs,
                                           destination_filesystem=_arrow_fs().LocalFileSystem())
                yield local
                return
            source = self._path(*parts)
            if self._fs(source).exists(source):
                self._fs(source).copyToLocalFile(False, source, self._local(local), True)
            yield local

    def _local(self, path: Path) -> Any:
        jvm = self.spark._jvm
        return jvm.org.apache.hadoop.fs.Path(jvm.java.io.File(str(path)).toURI())


def literal(path: str) -> str:
    """A file's path as Spark's reader takes it literally: Hadoop reads every path as a glob, so a file named
    `orders[1].csv` would name `orders1.csv`; its glob characters are escaped."""
    return re.sub(r"([\\\[\]?*{}])", r"\\\1", path)


def arrow_path(where: str) -> tuple[Any, str]:
    """(pyarrow file system, path) of a local path or a URI: the URI's own file system (S3 for `s3a://`, which is
    Hadoop's name for it; GCS, HDFS, Azure as pyarrow reaches them)."""
    fs = _arrow_fs()
    if "://" not in where:
        return fs.LocalFileSystem(), where
    scheme, rest = where.split("://", 1)
    return fs.FileSystem.from_uri(f"{'s3' if scheme.lower() in ('s3a', 's3n') else scheme}://{rest}")


def _arrow_fs() -> Any:
    import pyarrow.fs

    return pyarrow.fs


def _local_path(base: str) -> Path | None:
    if "://" not in base:
        return Path(base)
    parsed = urlparse(base)
    return Path(parsed.path) if parsed.scheme == "file" and parsed.netloc in ("", "localhost") else None
