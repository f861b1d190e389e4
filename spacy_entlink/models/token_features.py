"""Extra per-token columns appended to a tok2vec's vectors.

`append_columns` is the per-document concatenation both feature tok2vecs use. thinc's
`concatenate` cannot serve here: spacy-transformers' listener returns a (0, 0) array for an empty
Doc, and `concatenate` stacks each layer's rows over the whole batch before joining the columns,
so a batch with one empty Doc fails.

`spacy_entlink.CasedTok2Vec.v1` appends a hash embedding of spaCy's cased token attributes
(SHAPE, first character, last three characters by default) to a tok2vec such as the transformer
listener: an uncased encoder (all-MiniLM-L6-v2, all-mpnet-base-v2) lower-cases its input, so
without these columns the NER cannot see that "Bush" is capitalised and "bush" is not.
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d

from ..errors import ConfigError

CASED_ATTRS = ("SHAPE", "PREFIX", "SUFFIX")


def append_columns(
    tok2vec: Model[List[Doc], List[Floats2d]],
    extra: Model[List[Doc], List[Floats2d]],
    name: str,
    *,
    refs: Optional[Dict[str, Model]] = None,
    attrs: Optional[dict] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Each Doc's `tok2vec` rows with `extra`'s rows for the same Doc appended (width: the two
    widths added)."""
    return Model(
        name,
        _append_forward,
        init=_append_init,
        layers=[tok2vec, extra],
        refs=refs or {},
        dims={"nO": None},
        attrs=dict(attrs or {}),
    )


def _append_init(model: Model, X=None, Y=None) -> None:
    tok2vec, extra = model.layers
    tok2vec.initialize(X=X)
    extra.initialize(X=X)
    if tok2vec.has_dim("nO") and extra.has_dim("nO"):
        model.set_dim("nO", tok2vec.get_dim("nO") + extra.get_dim("nO"))


def _append_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    tok2vec, extra = model.layers
    vectors, bp_vectors = tok2vec(docs, is_train)
    columns, bp_columns = extra(docs, is_train)
    xp = model.ops.xp
    # an empty Doc's vectors may be (0, 0): its row count, not its width, is what must agree
    out = [xp.hstack((v, c)) for v, c in zip(vectors, columns)]
    if not model.has_dim("nO"):
        full = [o for o, v in zip(out, vectors) if v.shape[1]]
        if full:
            model.set_dim("nO", full[0].shape[1])
    n_extra = [c.shape[1] for c in columns]

    def backprop(d_out: List[Floats2d]) -> List[Doc]:
        bp_columns([xp.ascontiguousarray(d[:, d.shape[1] - n:]) for d, n in zip(d_out, n_extra)])
        return bp_vectors([xp.ascontiguousarray(d[:, : d.shape[1] - n]) for d, n in zip(d_out, n_extra)])

    return out, backprop


def cased_tok2vec(
    tok2vec: Model[List[Doc], List[Floats2d]],
    width: int = 64,
    attrs: Sequence[str] = CASED_ATTRS,
    rows: Sequence[int] = (1000, 1000, 2500),
) -> Model[List[Doc], List[Floats2d]]:
    """`spacy_entlink.CasedTok2Vec.v1`: `tok2vec`'s vectors with a `width`-wide embedding of the
    token attributes `attrs` (spaCy attribute names, hashed into `rows` rows each) appended,
    trained with the downstream component."""
    if width < 1:
        raise ConfigError(f"CasedTok2Vec: width must be positive, got {width}")
    if len(attrs) != len(rows) or not attrs:
        raise ConfigError(f"CasedTok2Vec: give one row count per attribute, got attrs={list(attrs)} rows={list(rows)}")
    embed = MultiHashEmbed(width=width, attrs=list(attrs), rows=list(rows), include_static_vectors=False)
    return append_columns(tok2vec, embed, "entlink_cased_tok2vec", refs={"tok2vec": tok2vec, "cased": embed},
                          attrs={"width": width, "attrs": list(attrs)})
