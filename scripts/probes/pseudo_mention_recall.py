"""Candidate recall on the zero-shot calibration's pseudo-mentions, per linker (docs/benchmarks.md (s)).

    python scripts/probes/pseudo_mention_recall.py PIPELINE [PIPELINE ...]

Each linker is set on kb/medic_zs (the KB without the held-out aliases) and given the
pseudo-mentions `calibrate-linker --kb-pairs training/retriever_medic/holdout.jsonl` uses."""
import sys
import spacy
from _examples import HOLDOUT, calibration_examples  # scripts/probes/_examples.py
from spacy_entlink.linking.retriever import read_holdout

for path in sys.argv[1:]:
    nlp = spacy.load(path)
    linker = nlp.get_pipe("entlink_linker")
    examples = calibration_examples(nlp, linker, "pseudo")
    n_held = len(read_holdout(HOLDOUT, linker.kb))
    spans = [e for eg in examples for e in eg.reference.ents]
    rows = linker.candidate_rows_batch(spans)
    hit = held = held_hit = 0
    for i, (s, r) in enumerate(zip(spans, rows)):
        scored = linker.linker.scored_rows(r) if r else []
        ok = linker.kb.row_of(s.kb_id_) in scored
        hit += ok
        if i < n_held:
            held += 1; held_hit += ok
    print(path, f"recall {100*hit/len(spans):.2f} ({hit}/{len(spans)}); held-out aliases {100*held_hit/held:.2f} ({held_hit}/{held})", flush=True)
