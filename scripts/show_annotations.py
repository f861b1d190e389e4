"""Print the entities of an `annotate` JSONL output, one document per block."""

import sys

import srsly


def main(path: str) -> None:
    for n, doc in enumerate(srsly.read_jsonl(path), start=1):
        print(f"[{n}] {doc['text'][:100]}{'…' if len(doc['text']) > 100 else ''}")
        for e in doc["ents"]:
            print(f"    {e['text']!r:40} {e['label']:9} {e.get('kb_id', '-'):11} {e.get('source', '')} {e.get('score', '')}")


if __name__ == "__main__":
    main(sys.argv[1])
