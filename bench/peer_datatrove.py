"""Time datatrove's MinHash near-duplicate removal on the same crawl corpus, as a peer figure.

Why: "our release takes X s" means little without what a well-kept peer takes for the part it
does.  datatrove (HuggingFace) runs MinHash as four steps joined through folders (signatures →
buckets → clusters → filter); here with 2 workers, character 5-grams (a character tokenizer
instead of its word tokenizers, like corpuspipe's shingles) and its default 14×8 bands.  It
does *less* than a corpuspipe release: no decoding repairs, watermark removal, script
normalization, sectioning, exact verification or Parquet release — so the ratio is a lower bound
on our overhead, not a like-for-like race.

Run it with its own interpreter (datatrove is never a corpuspipe dependency; ``make bench`` makes
this one):

    python3 -m venv bench/out/dt-venv
    bench/out/dt-venv/bin/pip install datatrove==0.10.1 regex tokenizers orjson "xxhash<4"
    bench/out/dt-venv/bin/python bench/peer_datatrove.py bench/out/crawl100 [--work DIR] [--workers 2]

``regex``/``tokenizers`` (its "processing" extra) are imported by ``datatrove.pipeline.dedup``,
``orjson`` by its JSONL writer; ``xxhash<4`` because datatrove 0.10.1 hashes ``str`` and xxhash 4
rejects it ("Strings must be encoded before hashing").

Input: every ``.txt`` file under ``CORPUS/raw`` (decoded strict UTF-8 / UTF-16 with BOM /
GB18030 / Big5, in that order) and every record of the ``.jsonl`` files.  Prints wall time per
step and in total, and how many documents it removed; ``--json FILE`` also writes them, with every
document's datatrove cluster id (``save_cluster_id``), so ``bench/run_crawl.py`` can score the
peer's clusters against the corpus truth exactly as it scores ours.  ``make bench`` creates the
peer's interpreter (``bench/out/dt-venv``) and runs this beside the release, in the same run.
``--work`` (datatrove's folders, emptied first) defaults to ``bench/out/dt-work``.  datatrove is
imported after the arguments are read, so ``--help`` and a missing corpus or a missing datatrove
are each one line in any interpreter.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from _need import REPO, need  # (stdlib only: this runs in datatrove's interpreter)

PINS = 'datatrove==0.10.1 regex tokenizers orjson "xxhash<4"'


def decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for enc in ("utf-8-sig", "gb18030", "big5"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def peer_steps() -> tuple[type, type]:
    """(CharTokenizer, CrawlReader): the two datatrove classes this peer adds, defined once datatrove
    is importable."""
    from datatrove.data import Document  # noqa: PLC0415
    from datatrove.pipeline.base import PipelineStep  # noqa: PLC0415
    from datatrove.utils.word_tokenizers import WordTokenizer  # noqa: PLC0415

    class CharTokenizer(WordTokenizer):
        """Characters as tokens, spaces dropped: datatrove's n_grams=5 then means character 5-grams."""

        def __init__(self) -> None:
            super().__init__("zh")

        def word_tokenize(self, text: str) -> list[str]:
            return [c for c in text if not c.isspace()]

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(i, i + 1) for i in range(len(text))]

    class CrawlReader(PipelineStep):
        """Reads files[rank::world_size] (a fixed, sorted list), so the filter step sees the same order."""

        name = "crawl reader"
        type = "📖 - READER"

        def __init__(self, raw: str):
            super().__init__()
            self.raw = raw

        def run(self, data=None, rank: int = 0, world_size: int = 1):
            root = Path(self.raw)
            files = sorted(p for p in root.rglob("*") if p.is_file())
            for path in files[rank::world_size]:
                rel = path.relative_to(root).as_posix()
                if path.suffix == ".jsonl":
                    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                        rec = json.loads(line)
                        yield Document(text=rec.get("text", ""), id=f"{rel}#{i}")
                else:
                    yield Document(text=decode(path.read_bytes()), id=rel)

    return CharTokenizer, CrawlReader


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "dt-work",
                    help="datatrove's folders, emptied first (default: bench/out/dt-work)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, help="write the timings and every document's cluster id here")
    a = ap.parse_args(argv)
    raw = need(a.corpus / "raw" if (a.corpus / "raw").is_dir() else a.corpus, "a crawl-shaped corpus",
               "make one with `make bench` or .venv/bin/python bench/make_crawl.py --mb 100 --out DIR").resolve()
    try:
        from datatrove.executor.local import LocalPipelineExecutor  # noqa: PLC0415
        from datatrove.pipeline.dedup.minhash import (  # noqa: PLC0415
            MinhashConfig,
            MinhashDedupBuckets,
            MinhashDedupCluster,
            MinhashDedupFilter,
            MinhashDedupSignature,
        )
        from datatrove.pipeline.writers.jsonl import JsonlWriter  # noqa: PLC0415
    except ImportError as e:
        print(f"peer_datatrove.py: needs datatrove in this interpreter ({e}); `make bench` makes "
              f"bench/out/dt-venv, or: python3 -m venv DIR && DIR/bin/pip install {PINS}", file=sys.stderr)
        return 2
    CharTokenizer, CrawlReader = peer_steps()
    if a.work.exists():
        shutil.rmtree(a.work)
    w = str(a.work)
    config = MinhashConfig(n_grams=5)  # 14 buckets x 8 hashes, its default
    tok = CharTokenizer()
    n = a.workers
    steps = {
        "signatures": LocalPipelineExecutor(
            pipeline=[CrawlReader(str(raw)), MinhashDedupSignature(output_folder=f"{w}/sigs", config=config, language=tok)],
            tasks=n, workers=n, logging_dir=f"{w}/logs/sigs"),
        "buckets": LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=f"{w}/sigs", output_folder=f"{w}/buckets", config=config)],
            tasks=config.num_buckets, workers=n, logging_dir=f"{w}/logs/buckets"),
        "clusters": LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=f"{w}/buckets", output_folder=f"{w}/remove_ids", config=config,
                                          save_cluster_id=True)],
            tasks=1, workers=1, logging_dir=f"{w}/logs/clusters"),
        "filter": LocalPipelineExecutor(
            pipeline=[CrawlReader(str(raw)),
                      MinhashDedupFilter(input_folder=f"{w}/remove_ids", load_cluster_ids=True,
                                         exclusion_writer=JsonlWriter(f"{w}/removed")),
                      JsonlWriter(output_folder=f"{w}/deduplicated")],
            tasks=n, workers=n, logging_dir=f"{w}/logs/filter"),
    }
    total = 0.0
    times = {}
    for name, ex in steps.items():
        t0 = time.perf_counter()
        ex.run()
        times[name] = time.perf_counter() - t0
        total += times[name]
    import gzip  # noqa: PLC0415

    removed = 0
    clusters: dict[str, int] = {}
    for folder in ("removed", "deduplicated"):
        for f in (a.work / folder).glob("*.jsonl*"):
            with gzip.open(f, "rt", encoding="utf-8") if f.suffix == ".gz" else open(f, encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    removed += folder == "removed"
                    clusters[rec["id"]] = rec.get("metadata", {}).get("minhash_cluster_id", -1)
    mb = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()) / 1e6
    print(f"datatrove MinHash (4 steps, {n} workers, char 5-grams, {config.num_buckets}x{config.hashes_per_bucket}) "
          f"on {mb:,.1f} MB: wall {total:.1f} s ({mb / total:.2f} MB/s); "
          + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()) + f"; removed {removed:,} documents")
    if a.json:
        a.json.write_text(json.dumps({"wall_s": total, "steps": times, "removed": removed, "input_mb": mb,
                                      "config": f"char 5-grams, {config.num_buckets}x{config.hashes_per_bucket}",
                                      "clusters": clusters}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
