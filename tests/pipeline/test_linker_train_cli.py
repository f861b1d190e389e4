"""`spacy train configs/linker.cfg` and `train-linker` end to end with a tiny saved BART."""

from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from spacy_entlink.cli import main
from tests.linking.conftest import tiny_bart
from tests.pipeline.test_linker import make_doc

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, demo_kb):
    tmp = tmp_path_factory.mktemp("linker_train")
    seq2seq = tiny_bart(tmp / "tok")
    seq2seq.save(tmp / "bart")
    nlp = spacy.blank("en")
    docs = [make_doc(nlp, with_ids=True) for _ in range(6)]
    docs.append(make_doc(nlp, "Her hypertension and MS got worse .",
                         [("hypertension", "Disease", "DEMO:D006"), ("MS", "Disease", "DEMO:D004")], with_ids=True))
    DocBin(docs=docs, store_user_data=True).to_disk(tmp / "train.spacy")
    DocBin(docs=docs[-2:], store_user_data=True).to_disk(tmp / "dev.spacy")
    return tmp, demo_kb


@pytest.mark.slow
@pytest.mark.parametrize("train_precision", ["float32", "bfloat16"])
def test_spacy_train_with_the_linker_config(setup, train_precision):
    from spacy.cli.train import train

    tmp, kb = setup
    train(REPO / "configs" / "linker.cfg", tmp / "out", overrides={
        "paths.train": str(tmp / "train.spacy"), "paths.dev": str(tmp / "dev.spacy"), "paths.kb": str(kb.path),
        "paths.model": str(tmp / "bart"), "training.max_steps": 6, "training.eval_frequency": 3,
        "components.entlink_linker.train_precision": train_precision,
    })
    nlp = spacy.load(tmp / "out" / "model-last")
    assert nlp.get_pipe("entlink_linker").train_precision == train_precision
    doc = nlp(make_doc(nlp))
    assert [e.kb_id_ for e in doc.ents][0] == "DEMO:D001"
    assert all(e.kb_id_ in kb for e in doc.ents)
    assert (tmp / "out" / "model-last" / "entlink_linker" / "model" / "model.safetensors").exists()


@pytest.mark.slow
def test_train_linker_cli(setup):
    tmp, kb = setup
    out = tmp / "cli_out"
    main(["train-linker", str(out), "--kb", str(kb.path), "--train", str(tmp / "train.spacy"), "--dev",
          str(tmp / "dev.spacy"), "--model", str(tmp / "bart"), "--kb-pairs", "1", "--max-steps", "4",
          "--eval-every", "2", "--batch-size", "8", "--metrics", str(tmp / "m.json"), "--train-precision", "bfloat16"])
    nlp = spacy.load(out)
    assert nlp.pipe_names == ["entlink_linker"]
    assert nlp.get_pipe("entlink_linker").train_precision == "bfloat16"
    assert nlp.get_pipe("entlink_linker").calibration.fitted_on > 0
    assert (tmp / "m.json").exists()


def test_train_linker_cli_names_a_missing_file(setup, capsys):
    tmp, kb = setup
    with pytest.raises(SystemExit):
        main(["train-linker", str(tmp / "x"), "--kb", str(kb.path), "--train", str(tmp / "nope.spacy")])
    assert "--train" in capsys.readouterr().err


def test_calibrate_linker_context_model_needs_training_documents(setup, capsys):
    tmp, kb = setup
    with pytest.raises(SystemExit):
        main(["calibrate-linker", str(tmp), str(tmp / "y"), "--dev", str(tmp / "dev.spacy"), "--context-model"])
    assert "--context-model" in capsys.readouterr().err


@pytest.mark.slow
def test_calibrate_linker_cli_fits_priors(setup):
    tmp, kb = setup
    pipe = tmp / "to_calibrate"
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker")
    linker.set_seq2seq(tiny_bart(tmp / "tok2")).set_kb(kb)
    nlp.to_disk(pipe)
    main(["calibrate-linker", str(pipe), str(tmp / "calibrated"), "--dev", str(tmp / "dev.spacy"),
          "--train", str(tmp / "train.spacy"), "--folds", "2", "--metrics", str(tmp / "cal.json")])
    report = srsly.read_json(tmp / "cal.json")
    assert 0.0 <= report["cross_validation"]["cross_validated_acc"] <= 1.0
    assert len(report["calibration"]["prior_weights"]) == 10
    again = spacy.load(tmp / "calibrated").get_pipe("entlink_linker")
    assert again.entity_counts["DEMO:D001"] == 6
    # p(entity | mention) from the training mentions, keyed by the KB's normalisation
    assert again.mention_counts[again.kb.normalize("MS")] == {"DEMO:D004": 1}
    ms, d006 = again.kb.row_of("DEMO:D004"), again.kb.row_of("DEMO:D006")
    feats = again.features([ms, d006], "MS")
    assert feats.shape == (2, 10) and feats[0, 2] > 0 and feats[1, 2] == 0
    assert again.features([ms], None)[0, 2] == 0
    # indicators: the frequency prior's choice (one per mention) and the mention text's usual id
    key = [(again.entity_counts.get(again.kb.get_id(r), 0), again.kb.get_prior(r)) for r in (ms, d006)]
    assert feats[:, 3].sum() == 1 and feats[int(key[1] > key[0]), 3] == 1
    assert list(feats[:, 4]) == [1.0, 0.0] and again.features([ms, d006], None)[:, 4].sum() == 0
    # name similarity: "MS" is one of D004's names; no dense index, so no cosine column
    assert feats[0, 5] == 1.0 and feats[1, 5] < 1.0 and not feats[:, 6].any()
    assert not again.features([ms, d006], "MS", similarity=False)[:, 5].any()
    assert again.features([], "MS").shape == (0, 10)
    # 7: an exact name/alias of the candidate; 8: the best plain ratio
    assert list(feats[:, 7]) == [1.0, 0.0] and feats[0, 8] == 1.0 and feats[1, 8] < 1.0
    assert len(again.calibration.prior_weights) == 10 and again.calibration.fitted_on > 0
    with pytest.raises(SystemExit):
        main(["calibrate-linker", str(pipe), str(pipe), "--dev", str(tmp / "dev.spacy")])
    assert "gate" in report["calibration"]  # the cascade's gate (None when no gate loses nothing)
    # no context model without --context-model: its column stays 0
    assert again.context_model is None and not feats[:, 9].any()


@pytest.mark.slow
def test_calibrate_linker_cli_swaps_in_a_kb_with_a_hierarchy(setup, tmp_path):
    import json

    tmp, kb = setup
    src = [json.loads(line) for line in (REPO / "assets" / "demo_kb.jsonl").read_text(encoding="utf8").splitlines()]
    for rec in src:
        if rec["id"] in ("DEMO:D001", "DEMO:D002"):
            rec["parents"] = ["DEMO:D006"]  # invented, for the test
    (tmp_path / "kb.jsonl").write_text("\n".join(json.dumps(r) for r in src) + "\n", encoding="utf8")
    main(["build-kb", str(tmp_path / "kb.jsonl"), "--output", str(tmp_path / "kb_h")])
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_linker").set_seq2seq(tiny_bart(tmp_path / "tok")).set_kb(kb)
    nlp.to_disk(tmp_path / "pipe")
    main(["calibrate-linker", str(tmp_path / "pipe"), str(tmp_path / "cal_h"), "--dev", str(tmp / "dev.spacy"),
          "--kb", str(tmp_path / "kb_h"), "--candidates", "span,kb,ancestors", "--folds", "0", "--no-gate"])
    linker = spacy.load(tmp_path / "cal_h").get_pipe("entlink_linker")
    assert linker.kb.has_hierarchy and linker.cfg["candidates"] == ["span", "kb", "ancestors"]
    assert linker.calibration.gate is None
    assert [linker.kb.get_id(r) for r in linker.kb.get_parents(linker.kb.row_of("DEMO:D001"))] == ["DEMO:D006"]
    with pytest.raises(SystemExit):
        main(["calibrate-linker", str(tmp_path / "pipe"), str(tmp_path / "x"), "--dev", str(tmp / "dev.spacy"),
              "--kb", str(tmp_path / "no_such_kb")])


def test_zero_shot_chain_kb_only(setup, tmp_path):
    """KB aliases held out of the KB, a linker trained on KB pairs only and calibrated on the
    held-out aliases: no annotated text anywhere; the pipeline saves, loads and links."""
    from spacy_entlink.kb import read_source

    _, kb = setup
    held = tmp_path / "holdout.jsonl"
    held.write_text('{"id": "DEMO:D005", "text": "cardiac infarction"}\n{"id": "DEMO:D006", "text": "arterial hypertension"}\n'
                    '{"id": "DEMO:D001", "text": "adult-onset diabetes"}\n', encoding="utf8")
    src = REPO / "assets" / "demo_kb.jsonl"
    main(["build-kb", str(src), "--output", str(tmp_path / "kb_fit"), "--exclude-aliases", str(held)])
    from spacy_entlink.kb import KnowledgeBase

    fit = KnowledgeBase.from_disk(tmp_path / "kb_fit")
    assert fit.get_candidates("cardiac infarction") == [] and fit.get_candidates("heart attack")
    assert len(fit) == len(kb) and sum(1 for _ in read_source(src)) == len(kb)
    with pytest.raises(SystemExit):  # KB pairs only needs --kb-pairs
        main(["train-linker", str(tmp_path / "zs"), "--kb", str(tmp_path / "kb_fit")])
    setup_tmp = setup[0]
    main(["train-linker", str(tmp_path / "zs"), "--kb", str(tmp_path / "kb_fit"), "--model", str(setup_tmp / "bart"),
          "--kb-pairs", "2", "--max-steps", "3", "--batch-size", "8"])
    main(["calibrate-linker", str(tmp_path / "zs"), str(tmp_path / "zs_cal"), "--kb-pairs", str(held), "--folds", "0",
          "--dense-k", "16", "--max-candidates", "24", "--metrics", str(tmp_path / "cal.json")])
    saved = spacy.util.load_config(tmp_path / "zs_cal" / "config.cfg")["components"]["entlink_linker"]
    assert saved["dense_k"] == 16 and saved["max_candidates"] == 24  # the settings reach config.cfg too
    report = srsly.read_json(tmp_path / "cal.json")
    assert report["calibration"]["fitted_on"] == 6  # 3 held-out aliases + as many names the KB has (--kb-share 0.5)
    nlp = spacy.load(tmp_path / "zs_cal")
    linker = nlp.get_pipe("entlink_linker")
    assert not linker.entity_counts and len(linker.calibration.prior_weights) == 10
    assert linker.cfg["dense_k"] == 16
    w = linker.calibration.prior_weights
    assert w[0] == w[2] == w[4] == w[9] == 0.0  # count features carry nothing without counts, nor context without a model
    doc = nlp(make_doc(nlp))
    assert all(e.kb_id_ in kb for e in doc.ents)
    # the same calibration, then the full KB (with the held-out aliases) swapped in for linking
    main(["build-kb", str(src), "--output", str(tmp_path / "kb_full")])
    main(["calibrate-linker", str(tmp_path / "zs"), str(tmp_path / "zs_final"), "--kb-pairs", str(held), "--folds", "0",
          "--dense-k", "16", "--max-candidates", "24", "--final-kb", str(tmp_path / "kb_full")])
    final = spacy.load(tmp_path / "zs_final").get_pipe("entlink_linker")
    assert [final.kb.get_id(c.row) for c in final.kb.get_candidates("cardiac infarction")] == ["DEMO:D005"]
    assert linker.kb.get_candidates("cardiac infarction") == []
    assert final.calibration.prior_weights == pytest.approx(linker.calibration.prior_weights)
    assert final.calibration.scale == pytest.approx(linker.calibration.scale)
    # dense candidates from two encoders: --extra-dense-model builds the second index, --final-kb rebuilds both
    from spacy_entlink.linking.dense import kb_names
    from tests.linking.test_retriever import tiny_encoder_folder

    enc_a, enc_b = tiny_encoder_folder(tmp_path / "enc_a"), tiny_encoder_folder(tmp_path / "enc_b", seed=1)
    main(["calibrate-linker", str(tmp_path / "zs"), str(tmp_path / "zs_two"), "--kb-pairs", str(held), "--folds", "0",
          "--candidates", "kb,abbreviation,fuzzy,dense,dense_extra", "--dense-model", str(enc_a),
          "--extra-dense-model", str(enc_b), "--final-kb", str(tmp_path / "kb_full")])
    saved = spacy.util.load_config(tmp_path / "zs_two" / "config.cfg")["components"]["entlink_linker"]
    assert (saved["dense_model"], saved["extra_dense_model"]) == (str(enc_a), str(enc_b))
    two_nlp = spacy.load(tmp_path / "zs_two")
    two = two_nlp.get_pipe("entlink_linker")
    full_names = len(kb_names(two.kb)[1])
    assert full_names > len(kb_names(fit)[1]) and len(two.dense.rows) == len(two.dense_extra.rows) == full_names
    assert all(e.kb_id_ in kb for e in two_nlp(make_doc(two_nlp)).ents)
    main(["train-linker", str(tmp_path / "zs_extra"), "--kb", str(tmp_path / "kb_fit"), "--model", str(setup_tmp / "bart"),
          "--kb-pairs", "1", "--max-steps", "1", "--batch-size", "8", "--candidates", "kb,dense_extra",
          "--extra-dense-model", str(enc_b)])
    trained = spacy.load(tmp_path / "zs_extra").get_pipe("entlink_linker")
    assert trained.dense is None and trained.dense_extra is not None and trained.cfg["extra_dense_model"] == str(enc_b)
    # NIL fitted with a share of the pseudo-mentions' entities out of the KB; the saved linker has them all
    main(["calibrate-linker", str(tmp_path / "zs"), str(tmp_path / "zs_oov"), "--kb-pairs", str(held), "--folds", "0",
          "--out-of-kb", "0.5"])
    oov = spacy.load(tmp_path / "zs_oov").get_pipe("entlink_linker")
    assert oov.calibration.nil_score is not None and len(oov.kb) == len(fit)
    with pytest.raises(SystemExit):
        main(["calibrate-linker", str(tmp_path / "zs"), str(tmp_path / "x"), "--kb-pairs", str(held), "--no-nil",
              "--out-of-kb", "0.1"])
    with pytest.raises(SystemExit):
        main(["calibrate-linker", str(tmp_path / "zs"), str(tmp_path / "x"), "--kb-pairs", str(held),
              "--final-kb", str(tmp_path / "no_such_kb")])
    with pytest.raises(SystemExit):
        main(["calibrate-linker", str(tmp_path / "zs"), str(tmp_path / "x"), "--kb-pairs", str(held), "--dev",
              str(setup_tmp / "dev.spacy")])
