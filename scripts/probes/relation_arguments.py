"""What bounds end-to-end relation extraction: the share of gold relations whose head and tail an
NER pipeline finds exactly (boundaries and label), run on the corpus's own tokens as
bench/relations.py does. No relation model is involved.

    python scripts/probes/relation_arguments.py corpus/conll04_dev.spacy \
        minilm=training/ner_conll04_minilm/model-best mpnet=training/ner_conll04/model-last
"""

import argparse
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin

from spacy_entlink.extensions import RELATIONS_KEY, install_extensions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dev", type=Path)
    ap.add_argument("ner", nargs="+", metavar="NAME=PIPELINE")
    args = ap.parse_args()
    install_extensions()
    for item in args.ner:
        name, _, path = item.partition("=")
        nlp = spacy.load(path)
        gold_docs = list(DocBin().from_disk(args.dev).get_docs(nlp.vocab))
        found = total = 0
        missed = {"boundary": 0, "label": 0, "absent": 0}
        texts = (Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold_docs)
        for gold, pred in zip(gold_docs, nlp.pipe(texts)):
            ents = {(e.start_char, e.end_char): e.label_ for e in pred.ents}
            for rel in getattr(gold._, RELATIONS_KEY):
                total += 1
                ok = True
                for arg in (rel.head, rel.tail):
                    label = ents.get((arg.start_char, arg.end_char))
                    if label == arg.label_:
                        continue
                    ok = False
                    if label is not None:
                        missed["label"] += 1
                    elif any(s < arg.end_char and arg.start_char < e for s, e in ents):
                        missed["boundary"] += 1
                    else:
                        missed["absent"] += 1
                found += ok
        print(f"{name}: both arguments exact with their labels for {found}/{total} gold relations "
              f"({100 * found / max(total, 1):.2f} %); missed arguments: {missed}")


if __name__ == "__main__":
    main()
