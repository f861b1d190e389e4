"""Annotating large inputs: stream records through `nlp.pipe`, write JSONL, resume after a kill.

Input formats: plain text (one document per line, the id is the line number), JSONL (an object
per line with a string "text" and optionally an "id"), PubTator (title and abstract lines
`PMID|t|…` / `PMID|a|…`, the id is the PMID). A malformed record is reported with its file
and line and skipped; the run goes on.

Engines: `annotate` runs `nlp.pipe` in this process (with `n_process` workers);
`annotate_dask` sends chunks of records to a Dask cluster (`pip install "spacy-entlink[dask]"`;
an existing scheduler's address, or a local cluster) whose workers load the same pipeline
(a name or a path they can read) and return the JSON lines; they are written in input order
with the same resume bookkeeping, so the output is identical.

Output: one JSON object per input record, in input order, with the record's "id", the
entities (offsets, label, KB id, scores) and the relations. Lines are flushed after every
batch. Resuming reads the output back, drops a partial last line, checks that its last id is
the id of the same record in the input, and continues after it, so a killed run restarted
with the same arguments neither loses nor duplicates a document.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import srsly

from .errors import DataError, EntlinkError
from .files import parse_json

FORMATS = ("auto", "text", "jsonl", "pubtator")

Record = Tuple[str, str]  # (id, text)


@dataclass
class ReadStats:
    records: int = 0
    malformed: List[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    if path.suffix in (".jsonl", ".json"):
        return "jsonl"
    if path.suffix in (".pubtator", ".PubTator") or path.name.endswith(".PubTator.txt"):
        return "pubtator"
    return "text"


def read_records(path: Path, fmt: str = "auto", stats: Optional[ReadStats] = None,
                 warn: Optional[Callable[[str], None]] = None) -> Iterator[Record]:
    """(id, text) records of `path`, streamed; malformed records are reported and skipped."""
    if fmt not in FORMATS:
        raise EntlinkError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError(path, None, "file not found")
    fmt = detect_format(path) if fmt == "auto" else fmt
    stats = stats if stats is not None else ReadStats()

    def bad(line: int, message: str) -> None:
        msg = str(DataError(path, line, message + "; skipped"))
        stats.malformed.append(msg)
        if warn is not None:
            warn(msg)

    reader = {"text": _text_records, "jsonl": _jsonl_records, "pubtator": _pubtator_records}[fmt]
    for rec in reader(path, bad):
        stats.records += 1
        yield rec


def _lines(path: Path, bad) -> Iterator[Tuple[int, Optional[str]]]:
    """(line number, text without its line break) of each line, read as bytes and decoded one
    by one: a line that is not UTF-8 is reported and comes as None, the next line reads on."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark
            try:
                yield n, raw.decode("utf8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                bad(n, f"not valid UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1})")
                yield n, None


def _text_records(path: Path, bad) -> Iterator[Record]:
    for n, line in _lines(path, bad):
        if line is not None:
            yield str(n), line


def _jsonl_records(path: Path, bad) -> Iterator[Record]:
    for n, line in _lines(path, bad):
        if line is None or not line.strip():
            continue
        try:
            obj = parse_json(line, path, n, what="line")
        except DataError as err:
            bad(n, err.message)
            continue
        if not isinstance(obj.get("text"), str):
            bad(n, "expected an object with a string field 'text'")
            continue
        rec_id = obj.get("id", n)
        if isinstance(rec_id, bool) or not isinstance(rec_id, (str, int)):
            bad(n, f"'id' must be a string or an integer, not {type(rec_id).__name__}")
            continue
        yield str(rec_id), obj["text"]


def _pubtator_records(path: Path, bad) -> Iterator[Record]:
    pmid, title, abstract, start = None, None, None, 0

    def flush():
        if pmid is not None:
            if title is None or abstract is None:
                bad(start, f"document {pmid} lacks its {'title' if title is None else 'abstract'} line")
                return None
            return pmid, f"{title} {abstract}"
        return None

    for n, line in _lines(path, bad):
        if line is None:
            continue
        if not line.strip():
            rec = flush()
            if rec:
                yield rec
            pmid, title, abstract = None, None, None
            continue
        parts = line.split("|", 2)
        if len(parts) == 3 and parts[1] in ("t", "a"):
            if pmid is not None and parts[0] != pmid:
                rec = flush()
                if rec:
                    yield rec
                pmid, title, abstract = None, None, None
            if pmid is None:
                pmid, start = parts[0], n
            if parts[1] == "t":
                title = parts[2]
            else:
                abstract = parts[2]
        elif "\t" in line and pmid is not None:
            continue  # an annotation line of the current document
        else:
            bad(n, "neither a title/abstract line (PMID|t|text) nor an annotation line")
    rec = flush()
    if rec:
        yield rec


def resume_point(output: Path) -> Tuple[int, Optional[str]]:
    """Complete lines in `output` and the id of the last one; a partial last line (a run
    killed while writing) is cut off."""
    if not output.exists():
        return 0, None
    done, last_id, good_end = 0, None, 0
    with output.open("rb") as f:
        offset = 0
        for raw in f:
            offset += len(raw)
            if not raw.endswith(b"\n"):
                break
            try:
                last_id = json.loads(raw)["id"]
            except (ValueError, KeyError, TypeError):
                break
            done += 1
            good_end = offset
    if good_end != output.stat().st_size:
        with output.open("r+b") as f:
            f.truncate(good_end)
    return done, last_id


def _skip_done(records: Iterable[Record], output: Path, resume: bool) -> Tuple[Iterator[Record], int]:
    """The records still to annotate, after checking an existing output's last id."""
    skip, last_id = resume_point(output) if resume else (0, None)
    records = iter(records)
    if skip:
        seen = list(islice(records, skip))
        if len(seen) < skip or seen[-1][0] != str(last_id):
            raise EntlinkError(f"{output} has {skip:,} annotated records ending with id {last_id!r}, which do not "
                               "match the input; resume with the same input, or pass --no-resume to start over")
    return records, skip


def _json_line(rec_id: str, doc, to_json: Callable) -> str:
    """One output line: the record's id and the Doc's annotations."""
    return srsly.json_dumps({"id": rec_id, **to_json(doc)}) + "\n"


def _too_long_line(rec_id: str, text: str, max_length: int) -> str:
    """The output line of a record over `max_length` characters: its text, no annotations, and
    why (the output keeps one line per record, so resuming stays aligned)."""
    error = (f"not annotated: {len(text):,} characters, over the pipeline's max_length of {max_length:,} "
             "(rerun with a larger --max-length if the pipeline can take it)")
    return srsly.json_dumps({"id": rec_id, "text": text, "ents": [], "relations": [], "error": error}) + "\n"


def annotated_lines(nlp, records: Iterable[Record], *, to_json: Callable, batch_size: int = 64,
                    n_process: int = 1, max_length: Optional[int] = None) -> Iterator[Tuple[str, int, bool]]:
    """(output line, characters, whether the record was too long) for each record, in order.
    `max_length` (default `nlp.max_length`, which it raises when larger): records over it are
    not given to the pipeline; their line says so."""
    if max_length is None:
        max_length = nlp.max_length
    if max_length < 1:
        raise EntlinkError(f"--max-length must be positive, got {max_length}")
    nlp.max_length = max(nlp.max_length, max_length)

    def texts() -> Iterator[Tuple[str, Tuple[str, Optional[str]]]]:
        for rec_id, text in records:
            if len(text) > max_length:
                yield "", (rec_id, text)  # an empty doc keeps its place in the stream
            else:
                yield text, (rec_id, None)

    for doc, (rec_id, long_text) in nlp.pipe(texts(), batch_size=batch_size, n_process=n_process, as_tuples=True):
        if long_text is None:
            yield _json_line(rec_id, doc, to_json), len(doc.text), False
        else:
            yield _too_long_line(rec_id, long_text, max_length), len(long_text), True


def annotate(nlp, records: Iterable[Record], output: Path, *, to_json: Callable, batch_size: int = 64,
             n_process: int = 1, resume: bool = True, progress: bool = True,
             max_length: Optional[int] = None) -> dict:
    """Annotate `records` with `nlp` into `output` (JSONL); returns counts and throughput."""
    from tqdm import tqdm

    records, skip = _skip_done(records, output, resume)
    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n, chars, too_long = 0, 0, 0
    bar = tqdm(desc="annotating", unit=" doc", initial=skip, disable=not progress, mininterval=1)
    lines = annotated_lines(nlp, records, to_json=to_json, batch_size=batch_size, n_process=n_process,
                            max_length=max_length)
    with output.open("a" if resume else "w", encoding="utf8") as out:
        pending: List[str] = []
        for line, n_chars, long in lines:
            pending.append(line)
            n += 1
            chars += n_chars
            too_long += long
            if len(pending) >= batch_size:
                out.write("".join(pending))
                out.flush()
                bar.update(len(pending))
                pending = []
        out.write("".join(pending))
        out.flush()
        os.fsync(out.fileno())
        bar.update(len(pending))
    bar.close()
    seconds = time.perf_counter() - t0
    return {"skipped_done": skip, "annotated": n, "too_long": too_long, "seconds": seconds,
            "docs_per_s": n / seconds if seconds else 0.0, "chars_per_s": chars / seconds if seconds else 0.0}


_WORKER_PIPELINES: Dict[str, object] = {}


def annotate_chunk(model: str, chunk: List[Record], batch_size: int = 64,
                   max_length: Optional[int] = None) -> Tuple[List[str], int, int]:
    """JSON lines of `chunk` annotated by the pipeline `model` (loaded once per worker process),
    the characters read and the records over `max_length`. Runs on Dask workers."""
    import spacy

    from .io import doc_to_json

    nlp = _WORKER_PIPELINES.get(model)
    if nlp is None:
        nlp = _WORKER_PIPELINES[model] = spacy.load(model)
    lines, chars, too_long = [], 0, 0
    for line, n_chars, long in annotated_lines(nlp, chunk, to_json=doc_to_json, batch_size=batch_size,
                                               max_length=max_length):
        lines.append(line)
        chars += n_chars
        too_long += long
    return lines, chars, too_long


def annotate_dask(model: str, records: Iterable[Record], output: Path, *, address: Optional[str] = None,
                  n_workers: int = 2, chunk_size: int = 500, batch_size: int = 64, in_flight: int = 0,
                  resume: bool = True, progress: bool = True, max_length: Optional[int] = None) -> dict:
    """Annotate `records` on a Dask cluster: chunks of `chunk_size` records go to the workers,
    at most `in_flight` chunks at a time (default twice the workers), and come back in input
    order into `output`, flushed per chunk, resumable like `annotate`. `address`: an existing
    scheduler (its workers must be able to load `model`); None starts a local cluster of
    `n_workers` processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:
        raise EntlinkError("--engine dask needs Dask: pip install 'spacy-entlink[dask]'") from err
    from collections import deque

    from tqdm import tqdm

    if chunk_size < 1:
        raise EntlinkError(f"--chunk-size must be positive, got {chunk_size}")
    records, skip = _skip_done(records, output, resume)
    output.parent.mkdir(parents=True, exist_ok=True)
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    limit = in_flight or 2 * max(1, len(client.scheduler_info().get("workers", {})) or n_workers)
    t0 = time.perf_counter()
    n, chars, too_long = 0, 0, 0
    bar = tqdm(desc="annotating (dask)", unit=" doc", initial=skip, disable=not progress, mininterval=1)
    try:
        with output.open("a" if resume else "w", encoding="utf8") as out:
            futures: deque = deque()
            chunks = iter(lambda: list(islice(records, chunk_size)), [])
            exhausted = False
            while futures or not exhausted:
                while not exhausted and len(futures) < limit:
                    chunk = next(chunks, None)
                    if chunk is None:
                        exhausted = True
                    else:
                        futures.append(client.submit(annotate_chunk, model, chunk, batch_size, max_length,
                                                     pure=False))
                if futures:
                    lines, c, long = futures.popleft().result()
                    out.write("".join(lines))
                    out.flush()
                    n += len(lines)
                    chars += c
                    too_long += long
                    bar.update(len(lines))
            os.fsync(out.fileno())
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    seconds = time.perf_counter() - t0
    return {"skipped_done": skip, "annotated": n, "too_long": too_long, "seconds": seconds,
            "docs_per_s": n / seconds if seconds else 0.0, "chars_per_s": chars / seconds if seconds else 0.0,
            "engine": "dask"}


def warn_to_stderr(message: str) -> None:
    print(f"⚠ {message}", file=sys.stderr, flush=True)
