/* Compiled exact matching of a KB's alias keys over running text.
 *
 * `build(words, keys)` turns the KB vocabulary and its normalised alias keys into flat
 * tables (saved by build-kb as .npy files and memory-mapped on load):
 *   word_blob/word_ptr   the vocabulary as UTF-8, word id = position in `words`
 *   word_table           open-addressing hash table (FNV-1a of the UTF-8 bytes) -> word id
 *   edge_keys/edge_vals  open-addressing hash table (parent node << 32 | word id) -> child
 *   node_row             alias row of the key ending at a node, -1 for a mere prefix
 * `WordIndex(...).scan(text, ...)` normalises `text` exactly as `spacy_entlink.text`
 * does (ASCII words here; every other character and word through the Python normaliser's
 * own cached functions), computes the word breaks of `matching.exact.word_breaks`, and
 * walks the word trie from every word: the matches of `matching.exact.ExactMatcher`, in
 * the same order. `TokenScan` finds the same matches from a Doc's tokens (each lexeme described
 * once) and, for exact-only Docs without entities, writes the dictionary's whole output. Every id
 * read from a table is bounds-checked, so a damaged file gives wrong answers at worst, never a
 * crash.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define EMPTY_EDGE UINT64_MAX

static inline uint64_t fnv1a(const unsigned char *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* A power of two with room for n entries at a load of at most 2/3 (linear probing). */
static Py_ssize_t table_size(Py_ssize_t n) {
    Py_ssize_t size = 16;
    while (size < n + n / 2) size <<= 1;
    return size;
}

/* --- the tables, as plain C views -------------------------------------------------------- */
typedef struct {
    const unsigned char *blob;
    Py_ssize_t blob_len;
    const int64_t *ptr;  /* n_words + 1 */
    Py_ssize_t n_words;
    const int32_t *wtable;
    uint64_t wmask;
    const uint64_t *ekeys;
    const int32_t *evals;
    uint64_t emask;
    const int32_t *rows;
    Py_ssize_t n_nodes;
} Tables;

static int32_t word_id(const Tables *t, const unsigned char *s, Py_ssize_t n) {
    uint64_t h = fnv1a(s, n) & t->wmask;
    for (uint64_t probes = 0; probes <= t->wmask; probes++) {
        int32_t id = t->wtable[h];
        if (id < 0 || id >= t->n_words) return -1;
        int64_t a = t->ptr[id], b = t->ptr[id + 1];
        if (a >= 0 && b >= a && b <= t->blob_len && b - a == n && memcmp(t->blob + a, s, (size_t)n) == 0) return id;
        h = (h + 1) & t->wmask;
    }
    return -1;
}

static int32_t child(const Tables *t, int32_t node, int32_t word) {
    uint64_t key = ((uint64_t)(uint32_t)node << 32) | (uint32_t)word;
    uint64_t h = mix64(key) & t->emask;
    for (uint64_t probes = 0; probes <= t->emask; probes++) {
        uint64_t k = t->ekeys[h];
        if (k == EMPTY_EDGE) return -1;
        if (k == key) {
            int32_t c = t->evals[h];
            return (c > 0 && c < t->n_nodes) ? c : -1;
        }
        h = (h + 1) & t->emask;
    }
    return -1;
}

/* --- growable arrays ----------------------------------------------------------------------- */
typedef struct {
    void *data;
    Py_ssize_t len, cap, item;
} Vec;

static int vec_reserve(Vec *v, Py_ssize_t need) {
    if (need <= v->cap) return 0;
    Py_ssize_t cap = v->cap ? v->cap : 64;
    while (cap < need) cap *= 2;
    void *p = PyMem_Realloc(v->data, (size_t)(cap * v->item));
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    v->data = p;
    v->cap = cap;
    return 0;
}

#define VEC(type) {NULL, 0, 0, sizeof(type)}
#define AT(v, type, i) (((type *)(v).data)[i])
#define PUSH(v, type, x) (vec_reserve(&(v), (v).len + 1) < 0 ? -1 : ((((type *)(v).data)[(v).len++] = (x)), 0))

/* --- build ------------------------------------------------------------------------------- */
static PyObject *bytes_of(const void *data, Py_ssize_t n) {
    return PyBytes_FromStringAndSize((const char *)data, n);
}

static PyObject *new_bytes(Py_ssize_t n, void **data) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, n);
    if (b) *data = PyBytes_AS_STRING(b);
    return b;
}

/* build(words, keys): the tables are filled in place in the bytes objects returned (no copy:
 * at 10^6 entities the edge table alone is hundreds of MB). */
static PyObject *scan_build(PyObject *self, PyObject *args) {
    PyObject *words, *keys;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &words, &PyList_Type, &keys)) return NULL;
    Py_ssize_t n_words = PyList_GET_SIZE(words), n_keys = PyList_GET_SIZE(keys);
    if (n_words >= INT32_MAX || n_keys >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many words or keys for the word index");
        return NULL;
    }
    PyObject *result = NULL, *blob_b = NULL, *ptr_b = NULL, *wtable_b = NULL, *ekeys_b = NULL, *evals_b = NULL;
    Vec rows = VEC(int32_t);
    unsigned char *blob;
    int64_t *ptr;
    int32_t *wtable, *evals;
    uint64_t *ekeys;
    Tables t;
    memset(&t, 0, sizeof(t));

    Py_ssize_t blob_len = 0;
    for (Py_ssize_t i = 0; i < n_words; i++) {
        Py_ssize_t n;
        if (!PyUnicode_Check(PyList_GET_ITEM(words, i))) {
            PyErr_Format(PyExc_TypeError, "word %zd is not a string", i);
            goto done;
        }
        if (!PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(words, i), &n)) goto done;
        blob_len += n;
    }
    Py_ssize_t wsize = table_size(n_words);
    if (!(blob_b = new_bytes(blob_len, (void **)&blob)) ||
        !(ptr_b = new_bytes((Py_ssize_t)sizeof(int64_t) * (n_words + 1), (void **)&ptr)) ||
        !(wtable_b = new_bytes((Py_ssize_t)sizeof(int32_t) * wsize, (void **)&wtable)))
        goto done;
    memset(wtable, 0xff, sizeof(int32_t) * (size_t)wsize);
    ptr[0] = 0;
    for (Py_ssize_t i = 0; i < n_words; i++) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(words, i), &n);
        memcpy(blob + ptr[i], s, (size_t)n);
        ptr[i + 1] = ptr[i] + n;
    }
    t.blob = blob;
    t.blob_len = blob_len;
    t.ptr = ptr;
    t.n_words = n_words;
    t.wtable = wtable;
    t.wmask = (uint64_t)wsize - 1;
    for (Py_ssize_t i = 0; i < n_words; i++) {
        const unsigned char *s = blob + ptr[i];
        Py_ssize_t n = (Py_ssize_t)(ptr[i + 1] - ptr[i]);
        if (word_id(&t, s, n) >= 0) {
            PyErr_Format(PyExc_ValueError, "word %zd of the vocabulary is a duplicate", i);
            goto done;
        }
        uint64_t h = fnv1a(s, n) & t.wmask;
        while (wtable[h] >= 0) h = (h + 1) & t.wmask;
        wtable[h] = (int32_t)i;
    }

    /* Upper bound of the edges: the words of all keys. */
    Py_ssize_t total = 0;
    for (Py_ssize_t r = 0; r < n_keys; r++) {
        PyObject *k = PyList_GET_ITEM(keys, r);
        if (!PyUnicode_Check(k)) {
            PyErr_Format(PyExc_TypeError, "key %zd is not a string", r);
            goto done;
        }
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(k, &n);
        if (!s) goto done;
        total += 1;
        for (Py_ssize_t i = 0; i < n; i++) total += s[i] == ' ';
    }
    Py_ssize_t esize = table_size(total);
    if (!(ekeys_b = new_bytes((Py_ssize_t)sizeof(uint64_t) * esize, (void **)&ekeys)) ||
        !(evals_b = new_bytes((Py_ssize_t)sizeof(int32_t) * esize, (void **)&evals)))
        goto done;
    memset(ekeys, 0xff, sizeof(uint64_t) * (size_t)esize);
    memset(evals, 0, sizeof(int32_t) * (size_t)esize);
    t.ekeys = ekeys;
    t.evals = evals;
    t.emask = (uint64_t)esize - 1;
    if (PUSH(rows, int32_t, -1) < 0) goto done; /* the root */
    for (Py_ssize_t r = 0; r < n_keys; r++) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(keys, r), &n);
        int32_t node = 0;
        Py_ssize_t a = 0;
        if (n == 0) {
            PyErr_Format(PyExc_ValueError, "key %zd is empty", r);
            goto done;
        }
        while (a <= n) {
            Py_ssize_t b = a;
            while (b < n && s[b] != ' ') b++;
            int32_t w = word_id(&t, (const unsigned char *)s + a, b - a);
            if (w < 0) {
                PyErr_Format(PyExc_ValueError, "key %zd (%R) has a word that is not in the vocabulary", r,
                             PyList_GET_ITEM(keys, r));
                goto done;
            }
            t.rows = rows.data;
            t.n_nodes = rows.len;
            int32_t c = child(&t, node, w);
            if (c < 0) {
                if (rows.len >= INT32_MAX) {
                    PyErr_SetString(PyExc_ValueError, "too many trie nodes for the word index");
                    goto done;
                }
                c = (int32_t)rows.len;
                if (PUSH(rows, int32_t, -1) < 0) goto done;
                uint64_t key = ((uint64_t)(uint32_t)node << 32) | (uint32_t)w;
                uint64_t h = mix64(key) & t.emask;
                while (ekeys[h] != EMPTY_EDGE) h = (h + 1) & t.emask;
                ekeys[h] = key;
                evals[h] = c;
            }
            node = c;
            a = b + 1;
        }
        AT(rows, int32_t, node) = (int32_t)r;
    }
    result = Py_BuildValue("(OOOOON)", blob_b, ptr_b, wtable_b, ekeys_b, evals_b,
                           bytes_of(rows.data, (Py_ssize_t)sizeof(int32_t) * rows.len));
done:
    Py_XDECREF(blob_b);
    Py_XDECREF(ptr_b);
    Py_XDECREF(wtable_b);
    Py_XDECREF(ekeys_b);
    Py_XDECREF(evals_b);
    PyMem_Free(rows.data);
    return result;
}

/* --- the index object ------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    Py_buffer views[6];
    int n_views;
    Tables t;
} WordIndex;

static void WordIndex_dealloc(WordIndex *self) {
    for (int i = 0; i < self->n_views; i++) PyBuffer_Release(&self->views[i]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int is_pow2(Py_ssize_t n) { return n > 0 && (n & (n - 1)) == 0; }

static int WordIndex_init(WordIndex *self, PyObject *args, PyObject *kwds) {
    PyObject *arrays[6];
    static const Py_ssize_t items[6] = {1, 8, 4, 8, 4, 4};
    if (self->n_views) {
        PyErr_SetString(PyExc_RuntimeError, "WordIndex is already initialised");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOOOOO", &arrays[0], &arrays[1], &arrays[2], &arrays[3], &arrays[4], &arrays[5]))
        return -1;
    for (int i = 0; i < 6; i++) {
        if (PyObject_GetBuffer(arrays[i], &self->views[i], PyBUF_C_CONTIGUOUS) < 0) return -1;
        self->n_views = i + 1;
        if (self->views[i].len % items[i] != 0) {
            PyErr_Format(PyExc_ValueError, "word index array %d has a size that is not a multiple of %zd", i, items[i]);
            return -1;
        }
    }
    Tables *t = &self->t;
    t->blob = self->views[0].buf;
    t->blob_len = self->views[0].len;
    t->ptr = self->views[1].buf;
    t->n_words = self->views[1].len / 8 - 1;
    t->wtable = self->views[2].buf;
    Py_ssize_t wsize = self->views[2].len / 4, esize = self->views[3].len / 8;
    t->ekeys = self->views[3].buf;
    t->evals = self->views[4].buf;
    t->rows = self->views[5].buf;
    t->n_nodes = self->views[5].len / 4;
    if (t->n_words < 0 || !is_pow2(wsize) || !is_pow2(esize) || self->views[4].len / 4 != esize || t->n_nodes < 1) {
        PyErr_SetString(PyExc_ValueError, "damaged word index (inconsistent table sizes)");
        return -1;
    }
    t->wmask = (uint64_t)wsize - 1;
    t->emask = (uint64_t)esize - 1;
    return 0;
}

/* Python's str.isupper() / isalpha() and the normaliser's rules, on an ASCII word. */
static int ascii_isupper(const char *w, Py_ssize_t n) {
    int cased = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = w[i];
        if (c >= 'a' && c <= 'z') return 0;
        if (c >= 'A' && c <= 'Z') cased = 1;
    }
    return cased;
}

static Py_ssize_t ascii_alpha(const char *w, Py_ssize_t n) {
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) k += ((w[i] | 32) >= 'a' && (w[i] | 32) <= 'z');
    return k;
}

static int ends(const char *w, Py_ssize_t n, const char *suffix) {
    Py_ssize_t m = (Py_ssize_t)strlen(suffix);
    return n >= m && memcmp(w + n - m, suffix, (size_t)m) == 0;
}

/* The normalised form of the ASCII word w[0:n] into out (capacity n + 1); returns its length. */
static Py_ssize_t ascii_word(const char *w, Py_ssize_t n, char *out, int acronym_max_len, int fold_plurals) {
    if (acronym_max_len > 0 && n >= 2) {
        if (ascii_isupper(w, n)) {
            Py_ssize_t k = ascii_alpha(w, n);
            if (k >= 2 && k <= acronym_max_len) {
                memcpy(out, w, (size_t)n);
                return n;
            }
        } else if (n > 2 && w[n - 1] == 's' && ascii_isupper(w, n - 1)) {
            Py_ssize_t k = ascii_alpha(w, n) - 1;
            if (k >= 2 && k <= acronym_max_len) {
                memcpy(out, w, (size_t)(n - 1));
                return n - 1;
            }
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) out[i] = (w[i] >= 'A' && w[i] <= 'Z') ? (char)(w[i] + 32) : w[i];
    if (!fold_plurals || n <= 3 || ascii_alpha(out, n) != n) return n;
    if (ends(out, n, "ies") && !ends(out, n, "eies") && !ends(out, n, "aies")) {
        out[n - 3] = 'y';
        return n - 2;
    }
    if (ends(out, n, "sses")) return n - 2;
    if (ends(out, n, "es") && !ends(out, n, "aes") && !ends(out, n, "ees") && !ends(out, n, "oes")) return n - 1;
    if (ends(out, n, "s") && !ends(out, n, "us") && !ends(out, n, "ss") && !ends(out, n, "is")) return n - 1;
    return n;
}

static int is_break_char(Py_UCS4 c) {
    switch (c) {
        case '.': case ';': case ':': case '!': case '?': case '(': case ')': case '[': case ']':
        case '{': case '}': case '\n': case '\r': case '\t': case '|': case '<': case '>': case '"': case ',':
            return 1;
        default:
            return 0;
    }
}

/* matching.exact.word_breaks for the gap text[a:b] between two words. */
static int gap_breaks(int kind, const void *data, Py_ssize_t a, Py_ssize_t b, int digits_around) {
    if (b - a == 1 && PyUnicode_READ(kind, data, a) == ' ') return 0;
    int any = 0;
    for (Py_ssize_t i = a; i < b && !any; i++) any = is_break_char(PyUnicode_READ(kind, data, i));
    if (!any) return 0;
    if (!digits_around) return 1;
    /* ^\s*[.,]\s*$ */
    Py_ssize_t i = a;
    while (i < b && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i))) i++;
    if (i >= b) return 1;
    Py_UCS4 c = PyUnicode_READ(kind, data, i);
    if (c != '.' && c != ',') return 1;
    for (i++; i < b; i++)
        if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i))) return 1;
    return 0;
}

/* --- the normaliser's steps, shared by the scan and normalize_keys --------------------- */

/* Characters of `text` -> letters, digits, "'" and " " into mp (text.Normalizer._map_chars):
 * ASCII here, every other character through `char_fn`; with ms/me (else NULL) the original
 * range of each mapped character (a dropped mark extends the character before it). */
static int map_chars(PyObject *text, PyObject *char_fn, Vec *mp, Vec *ms, Vec *me) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    mp->len = 0;
    if (ms) ms->len = me->len = 0;
    if (vec_reserve(mp, len) < 0 || (ms && (vec_reserve(ms, len) < 0 || vec_reserve(me, len) < 0))) return -1;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 128) {
            Py_UCS4 m = (Py_UNICODE_ISALNUM(c) || c == '\'') ? c : ' ';
            if (PUSH(*mp, Py_UCS4, m) < 0 || (ms && (PUSH(*ms, Py_ssize_t, i) < 0 || PUSH(*me, Py_ssize_t, i + 1) < 0)))
                return -1;
            continue;
        }
        PyObject *ch = PyUnicode_FromOrdinal((int)c);
        if (!ch) return -1;
        PyObject *m = PyObject_CallOneArg(char_fn, ch);
        Py_DECREF(ch);
        if (!m) return -1;
        if (!PyUnicode_Check(m)) {
            Py_DECREF(m);
            PyErr_SetString(PyExc_TypeError, "the character function must return a str");
            return -1;
        }
        Py_ssize_t mn = PyUnicode_GET_LENGTH(m);
        if (mn == 0 && ms && me->len) AT(*me, Py_ssize_t, me->len - 1) = i + 1;
        for (Py_ssize_t k = 0; k < mn; k++) {
            if (PUSH(*mp, Py_UCS4, PyUnicode_READ_CHAR(m, k)) < 0 ||
                (ms && (PUSH(*ms, Py_ssize_t, i) < 0 || PUSH(*me, Py_ssize_t, i + 1) < 0))) {
                Py_DECREF(m);
                return -1;
            }
        }
        Py_DECREF(m);
    }
    return 0;
}

/* The next word of M[*a:n] (a run of characters other than " " and "'"; a possessive "s" after
 * "'" is skipped) as [*wa, *wb), with whether it is ASCII; 0 at the end. */
static int next_word(const Py_UCS4 *M, Py_ssize_t n, Py_ssize_t *a, Py_ssize_t *wa, Py_ssize_t *wb, int *ascii) {
    while (*a < n) {
        if (M[*a] == ' ' || M[*a] == '\'') {
            (*a)++;
            continue;
        }
        Py_ssize_t b = *a;
        *ascii = 1;
        while (b < n && M[b] != ' ' && M[b] != '\'') {
            *ascii &= M[b] < 128;
            b++;
        }
        *wa = *a;
        *wb = b;
        *a = b;
        if (b - *wa == 1 && (M[*wa] == 's' || M[*wa] == 'S') && *wa > 0 && M[*wa - 1] == '\'') continue;
        return 1;
    }
    return 0;
}

/* The normalised form of the word w[0:n] as a new str (possibly empty): ASCII here, else
 * `word_fn(word)[0]` (text.Normalizer._word); `buf` is scratch space. NULL on error. */
static PyObject *normalize_word(const Py_UCS4 *w, Py_ssize_t n, int ascii, PyObject *word_fn, int acronym_max_len,
                                int fold_plurals, Vec *buf) {
    if (ascii) {
        if (vec_reserve(buf, 2 * n + 2) < 0) return NULL;
        char *raw = (char *)buf->data + n + 1, *out = buf->data;
        for (Py_ssize_t k = 0; k < n; k++) raw[k] = (char)w[k];
        return PyUnicode_FromStringAndSize(out, ascii_word(raw, n, out, acronym_max_len, fold_plurals));
    }
    PyObject *word = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, w, n);
    if (!word) return NULL;
    PyObject *r = PyObject_CallOneArg(word_fn, word);
    Py_DECREF(word);
    if (!r) return NULL;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(r, 0))) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "the word function must return (str, offsets)");
        return NULL;
    }
    PyObject *out = PyTuple_GET_ITEM(r, 0);
    Py_INCREF(out);
    Py_DECREF(r);
    return out;
}

/* The matches of the words with ids ID[0:n] (-1: no KB word) and breaks BR[0:n-1], pushed to
 * `out` as int32 triples (i, j, alias row): every run of at most max_words words, not crossing a
 * break, that is an alias key, by start word, then end word (matching.exact.ExactMatcher's order). */
static int walk(const Tables *t, const int32_t *ID, const char *BR, Py_ssize_t n, int max_words, Vec *out) {
    out->len = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ID[i] < 0) continue;
        int32_t node = child(t, 0, ID[i]);
        Py_ssize_t j = i + 1;
        while (node > 0) {
            int32_t row = t->rows[node];
            if (row >= 0 && (PUSH(*out, int32_t, (int32_t)i) < 0 || PUSH(*out, int32_t, (int32_t)j) < 0 ||
                             PUSH(*out, int32_t, row) < 0))
                return -1;
            if (j >= n || j - i >= max_words || BR[j - 1] || ID[j] < 0) break;
            node = child(t, node, ID[j]);
            j++;
        }
    }
    return 0;
}

/* Scratch of text_words: the mapped characters with their ranges, and per word its start and
 * end character, id, digit flags (1: begins with a digit, 2: ends with one) and the break after it. */
typedef struct {
    Vec mp, ms, me, buf, ws, we, wid, digit, br;
} Words;
#define WORDS_INIT {VEC(Py_UCS4), VEC(Py_ssize_t), VEC(Py_ssize_t), VEC(char), VEC(Py_ssize_t), VEC(Py_ssize_t), \
                    VEC(int32_t), VEC(unsigned char), VEC(char)}

static void words_free(Words *w) {
    Vec *v[] = {&w->mp, &w->ms, &w->me, &w->buf, &w->ws, &w->we, &w->wid, &w->digit, &w->br};
    for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
        PyMem_Free(v[k]->data);
        v[k]->data = NULL;
        v[k]->len = v[k]->cap = 0;
    }
}

/* The words of `text` as text.Normalizer.normalize makes them (each normalised str appended to
 * `out` unless NULL), with their ids in the word index, and the breaks of
 * matching.exact.word_breaks between them, into `w`. */
static int text_words(const Tables *t, PyObject *text, PyObject *char_fn, PyObject *word_fn, int acronym_max_len,
                      int fold_plurals, Words *w, PyObject *out) {
    w->ws.len = w->we.len = w->wid.len = w->digit.len = w->br.len = 0;
    /* 1. characters -> letters, digits, "'" and " ", each with its original range */
    if (map_chars(text, char_fn, &w->mp, &w->ms, &w->me) < 0) return -1;
    /* 2. words, normalised, with their ids and whether they start or end with a digit */
    const Py_UCS4 *M = w->mp.data;
    Py_ssize_t a = 0, wa, wb;
    int ascii;
    while (next_word(M, w->mp.len, &a, &wa, &wb, &ascii)) {
        if (ascii && !out) {
            /* an ASCII word, normalised into w->buf and looked up without making a str */
            Py_ssize_t n = wb - wa;
            if (vec_reserve(&w->buf, 2 * n + 2) < 0) return -1;
            char *raw = (char *)w->buf.data + n + 1, *norm = w->buf.data;
            for (Py_ssize_t k = 0; k < n; k++) raw[k] = (char)M[wa + k];
            Py_ssize_t on = ascii_word(raw, n, norm, acronym_max_len, fold_plurals);
            if (on == 0) continue;
            int first_digit = norm[0] >= '0' && norm[0] <= '9', last_digit = norm[on - 1] >= '0' && norm[on - 1] <= '9';
            if (PUSH(w->ws, Py_ssize_t, AT(w->ms, Py_ssize_t, wa)) < 0 ||
                PUSH(w->we, Py_ssize_t, AT(w->me, Py_ssize_t, wb - 1)) < 0 ||
                PUSH(w->wid, int32_t, word_id(t, (const unsigned char *)norm, on)) < 0 ||
                PUSH(w->digit, unsigned char, (unsigned char)(first_digit | (last_digit << 1))) < 0)
                return -1;
            continue;
        }
        PyObject *word = normalize_word(M + wa, wb - wa, ascii, word_fn, acronym_max_len, fold_plurals, &w->buf);
        if (!word) return -1;
        Py_ssize_t on = PyUnicode_GET_LENGTH(word), bn;
        if (on == 0) {
            Py_DECREF(word);
            continue;
        }
        const char *bytes = PyUnicode_AsUTF8AndSize(word, &bn);
        if (!bytes) {
            Py_DECREF(word);
            return -1;
        }
        int32_t id = word_id(t, (const unsigned char *)bytes, bn);
        int first_digit = Py_UNICODE_ISDIGIT(PyUnicode_READ_CHAR(word, 0));
        int last_digit = Py_UNICODE_ISDIGIT(PyUnicode_READ_CHAR(word, on - 1));
        int err = out ? PyList_Append(out, word) : 0;
        Py_DECREF(word);
        if (err < 0 || PUSH(w->ws, Py_ssize_t, AT(w->ms, Py_ssize_t, wa)) < 0 ||
            PUSH(w->we, Py_ssize_t, AT(w->me, Py_ssize_t, wb - 1)) < 0 || PUSH(w->wid, int32_t, id) < 0 ||
            PUSH(w->digit, unsigned char, (unsigned char)(first_digit | (last_digit << 1))) < 0)
            return -1;
    }
    /* 3. breaks between words */
    Py_ssize_t n = w->ws.len;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t *WS = w->ws.data, *WE = w->we.data;
    const unsigned char *DG = w->digit.data;
    for (Py_ssize_t k = 0; k + 1 < n; k++)
        if (PUSH(w->br, char, (char)gap_breaks(kind, data, WE[k], WS[k + 1], (DG[k] & 2) && (DG[k + 1] & 1))) < 0)
            return -1;
    return 0;
}

/* The words of `w` as three new lists: their ids, start and end characters. */
static int word_lists(const Words *w, PyObject **ids, PyObject **starts, PyObject **ends) {
    Py_ssize_t n = w->ws.len;
    *ids = PyList_New(n);
    *starts = PyList_New(n);
    *ends = PyList_New(n);
    if (!*ids || !*starts || !*ends) return -1;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *a = PyLong_FromLong(AT(w->wid, int32_t, k)), *b = PyLong_FromSsize_t(AT(w->ws, Py_ssize_t, k)),
                 *c = PyLong_FromSsize_t(AT(w->we, Py_ssize_t, k));
        if (!a || !b || !c) {
            Py_XDECREF(a);
            Py_XDECREF(b);
            Py_XDECREF(c);
            return -1;
        }
        PyList_SET_ITEM(*ids, k, a);
        PyList_SET_ITEM(*starts, k, b);
        PyList_SET_ITEM(*ends, k, c);
    }
    return 0;
}

static PyObject *WordIndex_scan(WordIndex *self, PyObject *args) {
    PyObject *text, *char_fn, *word_fn;
    int max_words, acronym_max_len, fold_plurals;
    if (!PyArg_ParseTuple(args, "UOOiip", &text, &char_fn, &word_fn, &max_words, &acronym_max_len, &fold_plurals))
        return NULL;
    PyObject *result = NULL, *words = NULL, *starts = NULL, *ends_ = NULL, *breaks = NULL, *ids = NULL, *matches = NULL;
    Words w = WORDS_INIT;
    Vec found = VEC(int32_t);
    words = PyList_New(0);
    if (!words || text_words(&self->t, text, char_fn, word_fn, acronym_max_len, fold_plurals, &w, words) < 0) goto done;
    /* 4. the trie walk */
    Py_ssize_t n = w.ws.len;
    breaks = PyBytes_FromStringAndSize(w.br.data, w.br.len);
    if (!breaks || walk(&self->t, w.wid.data, w.br.data, n, max_words, &found) < 0) goto done;
    matches = PyList_New(found.len / 3);
    if (!matches) goto done;
    for (Py_ssize_t k = 0; k < found.len / 3; k++) {
        PyObject *m = Py_BuildValue("(iii)", AT(found, int32_t, 3 * k), AT(found, int32_t, 3 * k + 1),
                                    AT(found, int32_t, 3 * k + 2));
        if (!m) goto done;
        PyList_SET_ITEM(matches, k, m);
    }
    if (word_lists(&w, &ids, &starts, &ends_) < 0) goto done;
    result = PyTuple_Pack(6, words, starts, ends_, breaks, ids, matches);
done:
    Py_XDECREF(words);
    Py_XDECREF(starts);
    Py_XDECREF(ends_);
    Py_XDECREF(breaks);
    Py_XDECREF(ids);
    Py_XDECREF(matches);
    words_free(&w);
    PyMem_Free(found.data);
    return result;
}

/* normalize_keys(texts, char_fn, word_fn, acronym_max_len, fold_plurals): text.Normalizer's
 * normalize_key of every text (words joined by single spaces), ASCII words here and every
 * other character and word through the normaliser's own cached functions. */
static PyObject *scan_normalize_keys(PyObject *self, PyObject *args) {
    PyObject *texts, *char_fn, *word_fn;
    int acronym_max_len, fold_plurals;
    if (!PyArg_ParseTuple(args, "O!OOip", &PyList_Type, &texts, &char_fn, &word_fn, &acronym_max_len, &fold_plurals))
        return NULL;
    Py_ssize_t n_texts = PyList_GET_SIZE(texts);
    PyObject *result = PyList_New(n_texts);
    Vec mp = VEC(Py_UCS4), out = VEC(Py_UCS4), buf = VEC(char);
    if (!result) return NULL;
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "text %zd is not a str", t);
            goto fail;
        }
        if (map_chars(text, char_fn, &mp, NULL, NULL) < 0) goto fail;
        out.len = 0;
        Py_ssize_t a = 0, wa, wb;
        int ascii, first = 1;
        while (next_word(mp.data, mp.len, &a, &wa, &wb, &ascii)) {
            /* " ".join of every word's form, empty ones included, as normalize_key does */
            if (!first && PUSH(out, Py_UCS4, ' ') < 0) goto fail;
            first = 0;
            PyObject *word = normalize_word((const Py_UCS4 *)mp.data + wa, wb - wa, ascii, word_fn, acronym_max_len,
                                            fold_plurals, &buf);
            if (!word) goto fail;
            for (Py_ssize_t k = 0; k < PyUnicode_GET_LENGTH(word); k++)
                if (PUSH(out, Py_UCS4, PyUnicode_READ_CHAR(word, k)) < 0) {
                    Py_DECREF(word);
                    goto fail;
                }
            Py_DECREF(word);
        }
        PyObject *key = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out.data ? out.data : (void *)"", out.len);
        if (!key) goto fail;
        PyList_SET_ITEM(result, t, key);
    }
    PyMem_Free(mp.data);
    PyMem_Free(out.data);
    PyMem_Free(buf.data);
    return result;
fail:
    Py_DECREF(result);
    PyMem_Free(mp.data);
    PyMem_Free(out.data);
    PyMem_Free(buf.data);
    return NULL;
}

static PyObject *WordIndex_word_id(WordIndex *self, PyObject *arg) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!s) return NULL;
    return PyLong_FromLong(word_id(&self->t, (const unsigned char *)s, n));
}

static PyMethodDef WordIndex_methods[] = {
    {"scan", (PyCFunction)WordIndex_scan, METH_VARARGS,
     "scan(text, char_fn, word_fn, max_words, acronym_max_len, fold_plurals) -> "
     "(words, word_starts, word_ends, breaks, word_ids, matches)"},
    {"word_id", (PyCFunction)WordIndex_word_id, METH_O, "word_id(word) -> id, or -1"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WordIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spacy_entlink.matching._scan.WordIndex",
    .tp_basicsize = sizeof(WordIndex),
    .tp_dealloc = (destructor)WordIndex_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "WordIndex(word_blob, word_ptr, word_table, edge_keys, edge_vals, node_row): the word trie of a KB's alias keys",
    .tp_methods = WordIndex_methods,
    .tp_init = (initproc)WordIndex_init,
    .tp_new = PyType_GenericNew,
};

/* --- exact matching over a Doc's tokens ------------------------------------------------------
 * TokenScan(index, char_fn, word_fn, acronym_max_len, fold_plurals, max_words)
 * .matches(orth_spacy, strings, texts) gives the matches that WordIndex.scan finds in the Doc's text, as
 * tokens aligned like doc.char_span(..., alignment_mode="expand"), from the Doc's (n, 2) uint64
 * array of ORTH and SPACY, without building the text. Each lexeme is described once (its words,
 * their ids, the breaks between them, whether it begins or ends with a separator, summaries of
 * the text before and after its words: matching.exact.describe_piece, the Python reference) and
 * cached by its hash. Tokens joined without a separator between them ("Crohn" + "'s", "10" +
 * "mg", a non-ASCII character at the joint) are read together as one piece of text, so every word
 * is the one the text normaliser makes; the breaks between pieces follow
 * matching.exact.word_breaks from the summaries of the text between their words. */
enum { HARD_START = 1, HARD_END = 2, FIRST_DIGIT = 4, LAST_DIGIT = 8 };
enum { GAP_BREAK = 1, GAP_DOTCOMMA = 8 };
#define MAX_PIECES (1 << 20)

typedef struct {
    int32_t off, n, len;
    uint8_t flags, lead, trail;
} Piece;

typedef struct {
    PyObject_HEAD
    PyObject *index, *char_fn, *word_fn;
    int acronym_max_len, fold_plurals, max_words;
    uint64_t *keys; /* orth -> piece number (vals), open addressing; vals[h] < 0: empty */
    int32_t *vals;
    Py_ssize_t mask, filled;
    Vec pieces, ids, brk;                                  /* described lexemes: Piece, word ids, breaks */
    Vec tok, start, w_ids, w_brk, w_first, w_last, found, arr; /* per-document scratch */
    Words w;
} TokenScan;

/* A gap summary (matching.exact.gap_summary): bit 0 a break character, bits 1-2 the number of
 * non-space characters (2 = more), bit 3 that one character is "." or ",". */
static inline int gap_chars(uint8_t g) { return (g >> 1) & 3; }

static inline uint8_t join_gaps(uint8_t a, uint8_t b) {
    int n = gap_chars(a) + gap_chars(b);
    uint8_t dc = gap_chars(a) == 1 ? (a & GAP_DOTCOMMA) : gap_chars(b) == 1 ? (b & GAP_DOTCOMMA) : 0;
    return (uint8_t)(((a | b) & GAP_BREAK) | ((n < 2 ? n : 2) << 1) | dc);
}

static inline char gap_is_break(uint8_t g, int digits_around) {
    if (!(g & GAP_BREAK)) return 0;
    return !(digits_around && gap_chars(g) == 1 && (g & GAP_DOTCOMMA));
}

static uint8_t gap_summary(int kind, const void *data, Py_ssize_t a, Py_ssize_t b) {
    int brk = 0, n = 0;
    Py_UCS4 one = 0;
    for (Py_ssize_t i = a; i < b; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        brk |= is_break_char(c);
        if (!Py_UNICODE_ISSPACE(c)) {
            n += n < 2;
            one = c;
        }
    }
    return (uint8_t)(brk | (n << 1) | ((n == 1 && (one == '.' || one == ',')) ? GAP_DOTCOMMA : 0));
}

/* A separator wherever it stands: ASCII other than letters, digits and the apostrophe. */
static inline int separator(Py_UCS4 c) { return c < 128 && !Py_UNICODE_ISALNUM(c) && c != '\''; }

/* The words of `text` into self->w, and the piece's length, flags and gap summaries. */
static int describe(TokenScan *self, PyObject *text, Piece *p) {
    if (text_words(&((WordIndex *)self->index)->t, text, self->char_fn, self->word_fn, self->acronym_max_len,
                   self->fold_plurals, &self->w, NULL) < 0)
        return -1;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), n = self->w.ws.len;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    p->off = 0;
    p->n = (int32_t)n;
    p->len = (int32_t)len;
    p->flags = (uint8_t)(len ? (separator(PyUnicode_READ(kind, data, 0)) ? HARD_START : 0) |
                                   (separator(PyUnicode_READ(kind, data, len - 1)) ? HARD_END : 0)
                             : 0);
    if (n == 0) {
        p->lead = gap_summary(kind, data, 0, len);
        p->trail = 0;
        return 0;
    }
    const unsigned char *DG = self->w.digit.data;
    p->flags |= (uint8_t)(((DG[0] & 1) ? FIRST_DIGIT : 0) | ((DG[n - 1] & 2) ? LAST_DIGIT : 0));
    p->lead = gap_summary(kind, data, 0, AT(self->w.ws, Py_ssize_t, 0));
    p->trail = gap_summary(kind, data, AT(self->w.we, Py_ssize_t, n - 1), len);
    return 0;
}

static void TokenScan_free_cache(TokenScan *self) {
    PyMem_Free(self->keys);
    PyMem_Free(self->vals);
    self->keys = NULL;
    self->vals = NULL;
    self->mask = -1;
    self->filled = 0;
    self->pieces.len = self->ids.len = self->brk.len = 0;
}

static void TokenScan_dealloc(TokenScan *self) {
    TokenScan_free_cache(self);
    Vec *v[] = {&self->pieces, &self->ids, &self->brk, &self->tok, &self->start, &self->w_ids,
                &self->w_brk, &self->w_first, &self->w_last, &self->found, &self->arr};
    for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) PyMem_Free(v[k]->data);
    words_free(&self->w);
    Py_XDECREF(self->index);
    Py_XDECREF(self->char_fn);
    Py_XDECREF(self->word_fn);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int TokenScan_init(TokenScan *self, PyObject *args, PyObject *kwds) {
    PyObject *index, *char_fn, *word_fn;
    int acronym_max_len, fold_plurals, max_words;
    if (!PyArg_ParseTuple(args, "O!OOipi", &WordIndexType, &index, &char_fn, &word_fn, &acronym_max_len,
                          &fold_plurals, &max_words))
        return -1;
    if (self->index) {
        PyErr_SetString(PyExc_RuntimeError, "TokenScan is already initialised");
        return -1;
    }
    Vec fresh[] = {VEC(Piece), VEC(int32_t), VEC(char), VEC(int32_t), VEC(int64_t), VEC(int32_t), VEC(char),
                   VEC(int32_t), VEC(int32_t), VEC(int32_t), VEC(uint64_t)};
    Vec *v[] = {&self->pieces, &self->ids, &self->brk, &self->tok, &self->start, &self->w_ids,
                &self->w_brk, &self->w_first, &self->w_last, &self->found, &self->arr};
    for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) *v[k] = fresh[k];
    Words w = WORDS_INIT;
    self->w = w;
    Py_INCREF(index);
    Py_INCREF(char_fn);
    Py_INCREF(word_fn);
    self->index = index;
    self->char_fn = char_fn;
    self->word_fn = word_fn;
    self->acronym_max_len = acronym_max_len;
    self->fold_plurals = fold_plurals;
    self->max_words = max_words;
    self->mask = -1;
    return 0;
}

static int32_t lexeme_find(const TokenScan *self, uint64_t orth) {
    if (self->mask < 0) return -1;
    for (uint64_t h = mix64(orth) & (uint64_t)self->mask;; h = (h + 1) & (uint64_t)self->mask) {
        if (self->vals[h] < 0) return -1;
        if (self->keys[h] == orth) return self->vals[h];
    }
}

static int lexeme_insert(TokenScan *self, uint64_t orth, int32_t piece) {
    if (2 * (self->filled + 1) > self->mask + 1) {
        Py_ssize_t size = self->mask < 0 ? 1024 : 2 * (self->mask + 1);
        uint64_t *keys = PyMem_Malloc((size_t)size * sizeof(uint64_t));
        int32_t *vals = PyMem_Malloc((size_t)size * sizeof(int32_t));
        if (!keys || !vals) {
            PyMem_Free(keys);
            PyMem_Free(vals);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t h = 0; h < size; h++) vals[h] = -1;
        for (Py_ssize_t h = 0; h <= self->mask; h++) {
            if (self->vals[h] < 0) continue;
            uint64_t g = mix64(self->keys[h]) & (uint64_t)(size - 1);
            while (vals[g] >= 0) g = (g + 1) & (uint64_t)(size - 1);
            keys[g] = self->keys[h];
            vals[g] = self->vals[h];
        }
        PyMem_Free(self->keys);
        PyMem_Free(self->vals);
        self->keys = keys;
        self->vals = vals;
        self->mask = size - 1;
    }
    uint64_t h = mix64(orth) & (uint64_t)self->mask;
    while (self->vals[h] >= 0) h = (h + 1) & (uint64_t)self->mask;
    self->keys[h] = orth;
    self->vals[h] = piece;
    self->filled++;
    return 0;
}

/* The text of the lexeme `orth`: from `texts` (a dict orth -> str, shared with doc_layout), or
 * from the StringStore `strings`, which fills `texts`. */
static PyObject *lexeme_text(PyObject *strings, PyObject *texts, uint64_t orth) {
    PyObject *key = PyLong_FromUnsignedLongLong(orth);
    if (!key) return NULL;
    PyObject *text = PyDict_GetItemWithError(texts, key);
    if (text) {
        Py_INCREF(text);
        Py_DECREF(key);
        return text;
    }
    text = PyErr_Occurred() ? NULL : PyObject_GetItem(strings, key);
    if (text && (!PyUnicode_Check(text) || PyDict_SetItem(texts, key, text) < 0)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a token text is not a str");
        Py_CLEAR(text);
    }
    Py_DECREF(key);
    return text;
}

/* The piece number of lexeme `orth`, described and cached on first sight; -1 on error. */
static int32_t lexeme_piece(TokenScan *self, uint64_t orth, PyObject *strings, PyObject *texts) {
    int32_t p = lexeme_find(self, orth);
    if (p >= 0) return p;
    PyObject *text = lexeme_text(strings, texts, orth);
    Piece piece;
    if (!text) return -1;
    int err = describe(self, text, &piece);
    Py_DECREF(text);
    if (err < 0) return -1;
    piece.off = (int32_t)self->ids.len;
    for (int32_t k = 0; k < piece.n; k++)
        if (PUSH(self->ids, int32_t, AT(self->w.wid, int32_t, k)) < 0 ||
            PUSH(self->brk, char, k + 1 < piece.n ? AT(self->w.br, char, k) : 0) < 0)
            return -1;
    p = (int32_t)self->pieces.len;
    if (PUSH(self->pieces, Piece, piece) < 0 || lexeme_insert(self, orth, p) < 0) return -1;
    return p;
}

typedef struct {
    uint8_t gap;    /* summary of the text since the last word */
    int have_word;  /* a word came before */
    int last_digit; /* the last word ends with a digit */
} Joint;

static int add_word(TokenScan *self, int32_t id, char brk, int32_t first, int32_t last) {
    return (PUSH(self->w_ids, int32_t, id) < 0 || PUSH(self->w_brk, char, brk) < 0 ||
            PUSH(self->w_first, int32_t, first) < 0 || PUSH(self->w_last, int32_t, last) < 0) ? -1 : 0;
}

/* The break between the last word so far and a piece's first word. */
static void join_piece(TokenScan *self, Joint *j, uint8_t lead, int flags) {
    if (j->have_word)
        AT(self->w_brk, char, self->w_brk.len - 1) = gap_is_break(join_gaps(j->gap, lead), j->last_digit && (flags & FIRST_DIGIT));
}

/* Tokens i..k, joined without a separator, read together as one piece of text. */
static int chunk(TokenScan *self, const uint64_t *A, int stride, Py_ssize_t i, Py_ssize_t k, PyObject *strings,
                 PyObject *texts, Joint *jt) {
    PyObject *parts = PyList_New(0), *text = NULL, *empty = NULL;
    Piece p;
    int rc = -1;
    if (!parts) return -1;
    for (Py_ssize_t t = i; t <= k; t++) {
        PyObject *s = lexeme_text(strings, texts, A[stride * t]);
        if (!s || PyList_Append(parts, s) < 0) {
            Py_XDECREF(s);
            goto done;
        }
        Py_DECREF(s);
    }
    empty = PyUnicode_FromString("");
    if (!empty || !(text = PyUnicode_Join(empty, parts)) || describe(self, text, &p) < 0) goto done;
    if (p.n == 0) {
        jt->gap = join_gaps(jt->gap, p.lead);
        rc = 0;
        goto done;
    }
    join_piece(self, jt, p.lead, p.flags);
    const int64_t *S = self->start.data;
    int64_t base = S[i];
    for (int32_t w = 0; w < p.n; w++) {
        Py_ssize_t a = AT(self->w.ws, Py_ssize_t, w), b = AT(self->w.we, Py_ssize_t, w);
        /* the last token of the chunk that starts at or before the word's first / last character */
        Py_ssize_t f = k, l = k;
        while (f > i && S[f] > base + a) f--;
        while (l > i && S[l] > base + b - 1) l--;
        if (add_word(self, AT(self->w.wid, int32_t, w), w + 1 < p.n ? AT(self->w.br, char, w) : 0, (int32_t)f,
                     (int32_t)l) < 0)
            goto done;
    }
    jt->have_word = 1;
    jt->last_digit = (p.flags & LAST_DIGIT) != 0;
    jt->gap = p.trail;
    rc = 0;
done:
    Py_DECREF(parts);
    Py_XDECREF(empty);
    Py_XDECREF(text);
    return rc;
}

static int token_array(PyObject *array, Py_buffer *b, int columns);

/* --- a Doc's tokens read and its entity tags written in place ---------------------------------
 * spaCy's TokenC and the start of its LexemeC (spacy/structs.pxd) and its Doc object
 * (spacy/tokens/doc.pxd), mirrored as plain C (spaCy's own .pxd files need C++). They are used
 * only once check_doc_layout() has found them to agree with what spaCy's Python API reports for
 * a test Doc (object size, token count, user_data and spans objects, every token's orth, offset,
 * space and entity fields); otherwise the Doc goes through to_array/from_array as before. */
typedef struct {
    uint64_t flags, lang, id, length, orth;
} SpacyLexeme;

typedef struct {
    const SpacyLexeme *lex;
    uint64_t morph;
    int pos;
    int spacy;
    uint64_t tag;
    int idx;
    uint64_t lemma, norm;
    int head;
    uint64_t dep;
    uint32_t l_kids, r_kids, l_edge, r_edge;
    int sent_start, ent_iob;
    uint64_t ent_type, ent_kb_id, ent_id;
} SpacyToken;

typedef struct {
    PyObject_HEAD
    void *vtab;
    PyObject *mem, *vocab, *vector, *vector_norm, *tensor, *cats, *user_data, *spans;
    SpacyToken *c;
    float sentiment;
    PyObject *user_hooks, *user_token_hooks, *user_span_hooks;
    int has_unknown_spaces;
    PyObject *context;
    int length, max_length;
    PyObject *noun_chunks_iterator, *weakref;
} SpacyDoc;

static PyTypeObject *doc_type = NULL; /* spaCy's Doc, once its layout is checked */

/* check_doc_layout(doc, tokens): whether the mirrored layouts hold for `doc`, whose tokens are
 * [(orth, idx, whitespace, ent_iob, ent_type, ent_kb_id)] as spaCy's API reports them; True
 * enables the in-place paths for Docs of its type. */
static PyObject *scan_check_doc_layout(PyObject *self, PyObject *args) {
    PyObject *doc, *tokens, *user_data = NULL, *spans = NULL;
    if (!PyArg_ParseTuple(args, "OO!", &doc, &PyList_Type, &tokens)) return NULL;
    int ok = Py_TYPE(doc)->tp_basicsize == (Py_ssize_t)sizeof(SpacyDoc) && PyList_GET_SIZE(tokens) > 0;
    const SpacyDoc *d = (const SpacyDoc *)doc;
    if (ok) {
        user_data = PyObject_GetAttrString(doc, "user_data");
        spans = PyObject_GetAttrString(doc, "spans");
        if (!user_data || !spans) {
            Py_XDECREF(user_data);
            Py_XDECREF(spans);
            return NULL;
        }
        ok = d->user_data == user_data && d->spans == spans && d->length == PyList_GET_SIZE(tokens) && d->c != NULL;
        Py_DECREF(user_data);
        Py_DECREF(spans);
    }
    for (Py_ssize_t i = 0; ok && i < PyList_GET_SIZE(tokens); i++) {
        unsigned long long orth, ent_type, ent_kb_id;
        int idx, space, ent_iob;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(tokens, i), "KipiKK", &orth, &idx, &space, &ent_iob, &ent_type, &ent_kb_id))
            return NULL;
        const SpacyToken *t = &d->c[i];
        ok = t->lex && t->lex->orth == orth && t->idx == idx && (t->spacy != 0) == (space != 0) && t->ent_iob == ent_iob &&
             t->ent_type == ent_type && t->ent_kb_id == ent_kb_id;
    }
    if (ok && !doc_type) {
        Py_INCREF(Py_TYPE(doc));
        doc_type = Py_TYPE(doc);
    }
    return PyBool_FromLong(ok);
}

/* The (n, columns) ORTH, SPACY[, ENT_IOB] values of `obj`: a Doc read in place into `scratch`
 * (*b untouched), or an array from Doc.to_array (*b holds its buffer: release it). */
static int doc_tokens(PyObject *obj, int columns, Vec *scratch, Py_buffer *b, const uint64_t **A, Py_ssize_t *n) {
    b->obj = NULL;
    if (doc_type && PyObject_TypeCheck(obj, doc_type)) {
        const SpacyDoc *d = (const SpacyDoc *)obj;
        scratch->len = 0;
        if (vec_reserve(scratch, (Py_ssize_t)columns * d->length + 1) < 0) return -1;
        uint64_t *out = scratch->data;
        for (int i = 0; i < d->length; i++) {
            out[columns * i] = d->c[i].lex->orth;
            out[columns * i + 1] = d->c[i].spacy != 0;
            if (columns == 3) out[columns * i + 2] = (uint64_t)d->c[i].ent_iob;
        }
        *A = out;
        *n = d->length;
        return 0;
    }
    if (token_array(obj, b, columns) < 0) return -1;
    *A = b->buf;
    *n = b->len / (8 * columns);
    return 0;
}

static void release(Py_buffer *b) {
    if (b->obj) PyBuffer_Release(b);
}

/* The matches of a Doc's (n, 2) ORTH/SPACY array A into self->found (word triples), with the
 * tokens each word lies on in self->w_first / w_last and every token's start character in
 * self->start. */
static int scan_tokens(TokenScan *self, const uint64_t *A, Py_ssize_t n, int stride, PyObject *strings, PyObject *texts) {
    if (self->pieces.len >= MAX_PIECES) TokenScan_free_cache(self);
    self->tok.len = self->start.len = self->w_ids.len = self->w_brk.len = self->w_first.len = self->w_last.len = 0;
    self->found.len = 0;
    if (vec_reserve(&self->tok, n) < 0 || vec_reserve(&self->start, n + 1) < 0) return -1;
    /* 1. every token's piece, and where it starts in the text */
    int64_t offset = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t p = lexeme_piece(self, A[stride * i], strings, texts);
        if (p < 0) return -1;
        AT(self->tok, int32_t, i) = p;
        AT(self->start, int64_t, i) = offset;
        offset += AT(self->pieces, Piece, p).len + (A[stride * i + 1] ? 1 : 0);
    }
    const Piece *P = self->pieces.data;
    const int32_t *T = self->tok.data;
    /* 2. the words, the tokens they lie on, and the breaks between them */
    Joint jt = {0, 0, 0};
    for (Py_ssize_t i = 0; i < n;) {
        Py_ssize_t k = i;
        while (k + 1 < n && !A[stride * k + 1] && !(P[T[k]].flags & HARD_END) && !(P[T[k + 1]].flags & HARD_START)) k++;
        if (k > i) {
            if (chunk(self, A, stride, i, k, strings, texts, &jt) < 0) return -1;
        } else {
            const Piece *e = &P[T[i]];
            if (e->n == 0) {
                jt.gap = join_gaps(jt.gap, e->lead);
            } else {
                join_piece(self, &jt, e->lead, e->flags);
                for (int32_t w = 0; w < e->n; w++)
                    if (add_word(self, AT(self->ids, int32_t, e->off + w), AT(self->brk, char, e->off + w), (int32_t)i,
                                 (int32_t)i) < 0)
                        return -1;
                jt.have_word = 1;
                jt.last_digit = (e->flags & LAST_DIGIT) != 0;
                jt.gap = e->trail;
            }
        }
        i = k + 1; /* a space after token k adds nothing to the gap's summary */
    }
    /* 3. the trie walk */
    return walk(&((WordIndex *)self->index)->t, self->w_ids.data, self->w_brk.data, self->w_ids.len, self->max_words,
                &self->found);
}

static int token_array(PyObject *array, Py_buffer *b, int columns) {
    if (PyObject_GetBuffer(array, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (b->len % (8 * columns)) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_ValueError, "expected an (n, %d) uint64 array of ORTH, SPACY%s", columns,
                     columns == 3 ? " and ENT_IOB" : "");
        return -1;
    }
    return 0;
}

static PyObject *TokenScan_matches(TokenScan *self, PyObject *args) {
    PyObject *array, *strings, *texts, *result = NULL;
    Py_buffer b;
    const uint64_t *A;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOO!", &array, &strings, &PyDict_Type, &texts) ||
        doc_tokens(array, 2, &self->arr, &b, &A, &n) < 0)
        return NULL;
    if (scan_tokens(self, A, n, 2, strings, texts) < 0) goto done;
    Py_ssize_t m = self->found.len / 3;
    result = PyList_New(m);
    if (!result) goto done;
    const Piece *P = self->pieces.data;
    const int32_t *T = self->tok.data, *F = self->found.data, *WF = self->w_first.data, *WL = self->w_last.data;
    const int64_t *S = self->start.data;
    for (Py_ssize_t q = 0; q < m; q++) {
        int32_t first = WF[F[3 * q]], last = WL[F[3 * q + 1] - 1];
        PyObject *t = Py_BuildValue("(iiiLL)", first, last + 1, F[3 * q + 2], (long long)S[first],
                                    (long long)(S[last] + P[T[last]].len));
        if (!t) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, q, t);
    }
done:
    release(&b);
    return result;
}

/* --- the dictionary's output for exact matches only, in a Doc without entities ---------------
 * TokenScan.annotate(orth_spacy_iob, strings, texts, rows, row_info, assign, ents, values) is what
 * pipeline.dictionary.DictionaryMatcher.annotate does (its Python path stays the reference and
 * the tests compare the two) when the matches are exact ones only and the Doc has no entities
 * yet: every fusion policy then takes the longest spans, earliest first (all scores are 1.0).
 * `orth_spacy_iob` is the Doc's (n, 3) array of ORTH, SPACY and ENT_IOB; `rows` the component's
 * cache alias row -> (ids, label), filled by `row_info(row)`; assign 0/1/2 =
 * "unambiguous"/"top"/"never"; ents 0 = leave the entities alone ("spans_only"), 1 = no entities
 * ("ner_only"), 2 = the longest spans; `values` None, or where the spans' extension values go
 * (span_values). Returns None where the Doc has entities already, else (the Doc's
 * ENT_IOB/ENT_TYPE/ENT_KB_ID as (n, 3) uint64 bytes, or None with ents 0; the span group as
 * [(start, end, label, kb_id, ids)] by (start, end)). */
typedef struct {
    int32_t start, end;
    PyObject *label; /* borrowed from the row cache */
    PyObject *ids;   /* a new list */
    int chosen, resolved;
} Cand;

static int cmp_longest(const void *a, const void *b) {
    const Cand *x = *(Cand *const *)a, *y = *(Cand *const *)b;
    int lx = x->end - x->start, ly = y->end - y->start;
    if (lx != ly) return ly - lx;
    return x->start - y->start;
}

static int cmp_position(const void *a, const void *b) {
    const Cand *x = *(Cand *const *)a, *y = *(Cand *const *)b;
    if (x->start != y->start) return x->start - y->start;
    return x->end - y->end;
}

/* The candidates of the matches in self->found: one per token span, ids united in match order. */
static Py_ssize_t candidates(TokenScan *self, PyObject *rows, PyObject *row_info, Cand **out) {
    Py_ssize_t m = self->found.len / 3, nc = 0, size = 16;
    while (size < 2 * m) size <<= 1;
    Cand *C = PyMem_Calloc((size_t)(m ? m : 1), sizeof(Cand));
    int32_t *slot = PyMem_Malloc((size_t)size * sizeof(int32_t));
    if (!C || !slot) {
        PyMem_Free(C);
        PyMem_Free(slot);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t h = 0; h < size; h++) slot[h] = -1;
    const int32_t *F = self->found.data, *WF = self->w_first.data, *WL = self->w_last.data;
    for (Py_ssize_t q = 0; q < m; q++) {
        int32_t start = WF[F[3 * q]], end = WL[F[3 * q + 1] - 1] + 1;
        PyObject *row = PyLong_FromLong(F[3 * q + 2]), *info;
        if (!row) goto fail;
        info = PyDict_GetItemWithError(rows, row);
        if (!info) {
            if (PyErr_Occurred() || !(info = PyObject_CallOneArg(row_info, row)) || PyDict_SetItem(rows, row, info) < 0) {
                Py_XDECREF(info);
                Py_DECREF(row);
                goto fail;
            }
            Py_DECREF(info); /* the cache holds it */
        }
        Py_DECREF(row);
        if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) < 2 || !PyList_Check(PyTuple_GET_ITEM(info, 0))) {
            PyErr_SetString(PyExc_TypeError, "row_info() must return (ids list, label)");
            goto fail;
        }
        PyObject *ids = PyTuple_GET_ITEM(info, 0);
        if (PyList_GET_SIZE(ids) == 0) continue;
        uint64_t h = mix64(((uint64_t)(uint32_t)start << 32) | (uint32_t)end) & (uint64_t)(size - 1);
        while (slot[h] >= 0 && !(C[slot[h]].start == start && C[slot[h]].end == end)) h = (h + 1) & (uint64_t)(size - 1);
        if (slot[h] < 0) {
            Cand *c = &C[nc];
            c->start = start;
            c->end = end;
            c->label = PyTuple_GET_ITEM(info, 1);
            if (!(c->ids = PyList_GetSlice(ids, 0, PyList_GET_SIZE(ids)))) goto fail;
            slot[h] = (int32_t)nc++;
            continue;
        }
        Cand *c = &C[slot[h]];
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(ids); k++) {
            PyObject *id = PyList_GET_ITEM(ids, k);
            int has = PySequence_Contains(c->ids, id);
            if (has < 0 || (!has && PyList_Append(c->ids, id) < 0)) goto fail;
        }
    }
    PyMem_Free(slot);
    *out = C;
    return nc;
fail:
    for (Py_ssize_t k = 0; k < nc; k++) Py_XDECREF(C[k].ids);
    PyMem_Free(C);
    PyMem_Free(slot);
    return -1;
}

/* One sense per discourse (DictionaryMatcher._disambiguate) over the chosen candidates. */
static int disambiguate(Cand **chosen, Py_ssize_t n) {
    PyObject *sure = PySet_New(NULL);
    if (!sure) return -1;
    for (Py_ssize_t k = 0; k < n; k++)
        if (PyList_GET_SIZE(chosen[k]->ids) == 1 && PySet_Add(sure, PyList_GET_ITEM(chosen[k]->ids, 0)) < 0) goto fail;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *ids = chosen[k]->ids, *hit = NULL;
        Py_ssize_t hits = 0, at = 0;
        if (PyList_GET_SIZE(ids) < 2) continue;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ids); i++) {
            int in = PySet_Contains(sure, PyList_GET_ITEM(ids, i));
            if (in < 0) goto fail;
            if (in) {
                hits++;
                hit = PyList_GET_ITEM(ids, i);
                at = i;
            }
        }
        if (hits != 1) continue;
        Py_INCREF(hit);
        if (PySequence_DelItem(ids, at) < 0 || PyList_Insert(ids, 0, hit) < 0) {
            Py_DECREF(hit);
            goto fail;
        }
        Py_DECREF(hit);
        chosen[k]->resolved = 1;
    }
    Py_DECREF(sure);
    return 0;
fail:
    Py_DECREF(sure);
    return -1;
}

static int string_hash(PyObject *strings, PyObject *s, uint64_t *out) {
    PyObject *h = PyObject_CallMethod(strings, "add", "O", s);
    if (!h) return -1;
    *out = PyLong_AsUnsignedLongLong(h);
    Py_DECREF(h);
    return PyErr_Occurred() ? -1 : 0;
}

/* The span's extension values (score, source, candidates) written into doc.user_data under
 * spaCy's own keys ("._.", name, start char, end char): `values` is (user_data, prefix, score name,
 * source name, candidates name, score, source) (extensions.set_span_values does the same). */
static int span_values(TokenScan *self, PyObject *values, const Cand *c) {
    if (!PyTuple_Check(values) || PyTuple_GET_SIZE(values) != 7 || !PyDict_Check(PyTuple_GET_ITEM(values, 0))) {
        PyErr_SetString(PyExc_TypeError, "values must be (user_data, prefix, score, source, candidates names, score, "
                                         "source)");
        return -1;
    }
    const Piece *P = self->pieces.data;
    const int32_t *T = self->tok.data;
    const int64_t *S = self->start.data;
    PyObject *data = PyTuple_GET_ITEM(values, 0), *prefix = PyTuple_GET_ITEM(values, 1);
    PyObject *a = PyLong_FromLongLong(S[c->start]), *b = PyLong_FromLongLong(S[c->end - 1] + P[T[c->end - 1]].len);
    int rc = (a && b) ? 0 : -1;
    PyObject *value[3] = {PyTuple_GET_ITEM(values, 5), PyTuple_GET_ITEM(values, 6), c->ids};
    for (int k = 0; k < 3 && rc == 0; k++) {
        PyObject *key = PyTuple_Pack(4, prefix, PyTuple_GET_ITEM(values, 2 + k), a, b);
        rc = key ? PyDict_SetItem(data, key, value[k]) : -1;
        Py_XDECREF(key);
    }
    Py_XDECREF(a);
    Py_XDECREF(b);
    return rc;
}

static PyObject *TokenScan_annotate(TokenScan *self, PyObject *args) {
    PyObject *array, *strings, *texts, *rows, *row_info, *values, *result = NULL, *ent_bytes = NULL, *group = NULL;
    int assign, ents;
    Py_buffer b;
    Cand *C = NULL, **order = NULL;
    Py_ssize_t nc = 0;
    const uint64_t *A;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOO!O!OiiO", &array, &strings, &PyDict_Type, &texts, &PyDict_Type, &rows, &row_info,
                          &assign, &ents, &values) ||
        doc_tokens(array, 3, &self->arr, &b, &A, &n) < 0)
        return NULL;
    SpacyDoc *in_place = b.obj ? NULL : (SpacyDoc *)array; /* a Doc whose entity tags are written here */
    for (Py_ssize_t i = 0; i < n; i++)
        if (A[3 * i + 2] == 3) { /* a "B": the Doc has entities already; the Python path fuses them */
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
    if (scan_tokens(self, A, n, 3, strings, texts) < 0 || (nc = candidates(self, rows, row_info, &C)) < 0) goto done;
    order = PyMem_Malloc((size_t)(nc ? nc : 1) * sizeof(Cand *));
    if (!order) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nc; k++) order[k] = &C[k];
    if (ents) {
        uint64_t *E;
        ent_bytes = new_bytes(3 * n * (Py_ssize_t)sizeof(uint64_t), (void **)&E);
        if (!ent_bytes) goto done;
        for (Py_ssize_t i = 0; i < n; i++) E[3 * i] = 2, E[3 * i + 1] = E[3 * i + 2] = 0; /* O */
        Py_ssize_t n_chosen = 0;
        if (ents == 2) {
            /* the longest spans first, then the earliest; none overlapping one taken before */
            char *used = PyMem_Calloc((size_t)(n ? n : 1), 1);
            if (!used) {
                PyErr_NoMemory();
                goto done;
            }
            qsort(order, (size_t)nc, sizeof(Cand *), cmp_longest);
            for (Py_ssize_t k = 0; k < nc; k++) {
                Cand *c = order[k];
                int free_ = 1;
                for (int32_t t = c->start; t < c->end && free_; t++) free_ = !used[t];
                if (!free_) continue;
                memset(used + c->start, 1, (size_t)(c->end - c->start));
                c->chosen = 1;
                order[n_chosen++] = c;
            }
            PyMem_Free(used);
            qsort(order, (size_t)n_chosen, sizeof(Cand *), cmp_position);
            if (disambiguate(order, n_chosen) < 0) goto done;
        }
        for (Py_ssize_t k = 0; k < n_chosen; k++) {
            Cand *c = order[k];
            Py_ssize_t nid = PyList_GET_SIZE(c->ids);
            int sure = nid == 1 || c->resolved;
            uint64_t label, kb = 0;
            if (string_hash(strings, c->label, &label) < 0 ||
                (nid && (assign == 1 || (assign == 0 && sure)) && string_hash(strings, PyList_GET_ITEM(c->ids, 0), &kb) < 0))
                goto done;
            for (int32_t t = c->start; t < c->end; t++) E[3 * t] = t == c->start ? 3 : 1, E[3 * t + 1] = label, E[3 * t + 2] = kb;
        }
        for (Py_ssize_t k = 0; k < nc; k++) order[k] = &C[k];
    }
    /* the span group: every candidate by (start, end) */
    qsort(order, (size_t)nc, sizeof(Cand *), cmp_position);
    group = PyList_New(nc);
    if (!group) goto done;
    for (Py_ssize_t k = 0; k < nc; k++) {
        Cand *c = order[k];
        PyObject *kb = PyList_GET_SIZE(c->ids) == 1 ? PyList_GET_ITEM(c->ids, 0) : NULL;
        PyObject *t = kb ? Py_BuildValue("(iiOOO)", c->start, c->end, c->label, kb, c->ids)
                         : Py_BuildValue("(iiOsO)", c->start, c->end, c->label, "", c->ids);
        if (!t) goto done;
        PyList_SET_ITEM(group, k, t);
        if (values != Py_None && span_values(self, values, c) < 0) goto done;
    }
    if (ent_bytes && in_place) {
        /* what Doc.from_array([ENT_IOB, ENT_TYPE, ENT_KB_ID], ...) does, token by token */
        const uint64_t *E = (const uint64_t *)PyBytes_AS_STRING(ent_bytes);
        for (Py_ssize_t i = 0; i < n; i++) {
            in_place->c[i].ent_iob = (int)E[3 * i];
            in_place->c[i].ent_type = E[3 * i + 1];
            in_place->c[i].ent_kb_id = E[3 * i + 2];
        }
        Py_DECREF(ent_bytes);
        ent_bytes = Py_True;
        Py_INCREF(ent_bytes);
    }
    result = PyTuple_Pack(2, ent_bytes ? ent_bytes : Py_None, group);
done:
    for (Py_ssize_t k = 0; k < nc; k++) Py_XDECREF(C[k].ids);
    PyMem_Free(C);
    PyMem_Free(order);
    Py_XDECREF(ent_bytes);
    Py_XDECREF(group);
    release(&b);
    return result;
}

static PyObject *TokenScan_describe(TokenScan *self, PyObject *text) {
    Piece p;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "describe() takes a str");
        return NULL;
    }
    if (describe(self, text, &p) < 0) return NULL;
    PyObject *ids = NULL, *starts = NULL, *ends_ = NULL, *r = NULL;
    if (word_lists(&self->w, &ids, &starts, &ends_) < 0) goto done;
    r = Py_BuildValue("(Oy#OOiii)", ids, p.n > 1 ? (const char *)self->w.br.data : "", (Py_ssize_t)(p.n > 1 ? p.n - 1 : 0),
                      starts, ends_,
                      (int)p.flags, (int)p.lead, (int)p.trail);
done:
    Py_XDECREF(ids);
    Py_XDECREF(starts);
    Py_XDECREF(ends_);
    return r;
}

static PyObject *TokenScan_cached(TokenScan *self, PyObject *noargs) {
    return PyLong_FromSsize_t(self->pieces.len);
}

static PyMethodDef TokenScan_methods[] = {
    {"matches", (PyCFunction)TokenScan_matches, METH_VARARGS,
     "matches(orth_spacy, strings, texts) -> [(first token, end token, alias row, start char, end char)]"},
    {"annotate", (PyCFunction)TokenScan_annotate, METH_VARARGS,
     "annotate(orth_spacy_iob, strings, texts, rows, row_info, assign, ents, values) -> (ENT array bytes or None, "
     "[(start, end, label, kb_id, ids)])"},
    {"describe", (PyCFunction)TokenScan_describe, METH_O,
     "describe(text) -> (ids, breaks, starts, ends, flags, lead, trail): matching.exact.describe_piece"},
    {"cached", (PyCFunction)TokenScan_cached, METH_NOARGS, "cached() -> how many lexemes are described"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TokenScanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spacy_entlink.matching._scan.TokenScan",
    .tp_basicsize = sizeof(TokenScan),
    .tp_dealloc = (destructor)TokenScan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TokenScan(index, char_fn, word_fn, acronym_max_len, fold_plurals, max_words): exact matches over a "
              "Doc's ORTH/SPACY array",
    .tp_methods = TokenScan_methods,
    .tp_init = (initproc)TokenScan_init,
    .tp_new = PyType_GenericNew,
};

/* doc_layout(orth_spacy, cache, strings): (text, token starts, token ends) of a Doc from its
 * (n, 2) uint64 array of ORTH and SPACY: the text is "".join(token.text_with_ws); token texts
 * come from `cache` (orth -> str) or, on a miss, from `strings` (the vocab's StringStore),
 * which fills the cache. */
static PyObject *scan_doc_layout(PyObject *self, PyObject *args) {
    PyObject *array, *cache, *strings;
    if (!PyArg_ParseTuple(args, "OO!O", &array, &PyDict_Type, &cache, &strings)) return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(array, &b, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    PyObject *result = NULL, *pieces = NULL, *space = NULL, *empty = NULL, *starts = NULL, *ends_ = NULL,
             *text = NULL;
    Py_ssize_t n = b.len / 16, offset = 0;
    if (b.len % 16) {
        PyErr_SetString(PyExc_ValueError, "doc_layout: expected an (n, 2) uint64 array of ORTH and SPACY");
        goto done;
    }
    const uint64_t *A = b.buf;
    pieces = PyList_New(0);
    starts = PyList_New(n);
    ends_ = PyList_New(n);
    space = PyUnicode_FromString(" ");
    empty = PyUnicode_FromString("");
    if (!pieces || !starts || !ends_ || !space || !empty) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyLong_FromUnsignedLongLong(A[2 * i]);
        if (!key) goto done;
        PyObject *tok = PyDict_GetItemWithError(cache, key);
        if (tok) {
            Py_INCREF(tok);
        } else if (PyErr_Occurred()) {
            Py_DECREF(key);
            goto done;
        } else {
            tok = PyObject_GetItem(strings, key);
            if (!tok || !PyUnicode_Check(tok) || PyDict_SetItem(cache, key, tok) < 0) {
                if (tok && !PyUnicode_Check(tok)) PyErr_SetString(PyExc_TypeError, "doc_layout: a token text is not a str");
                Py_XDECREF(tok);
                Py_DECREF(key);
                goto done;
            }
        }
        Py_DECREF(key);
        Py_ssize_t len = PyUnicode_GET_LENGTH(tok);
        PyObject *s0 = PyLong_FromSsize_t(offset), *s1 = PyLong_FromSsize_t(offset + len);
        if (!s0 || !s1) {
            Py_XDECREF(s0);
            Py_XDECREF(s1);
            Py_DECREF(tok);
            goto done;
        }
        PyList_SET_ITEM(starts, i, s0);
        PyList_SET_ITEM(ends_, i, s1);
        offset += len + (A[2 * i + 1] ? 1 : 0);
        int err = PyList_Append(pieces, tok);
        Py_DECREF(tok);
        if (err < 0 || (A[2 * i + 1] && PyList_Append(pieces, space) < 0)) goto done;
    }
    text = PyUnicode_Join(empty, pieces);
    if (!text) goto done;
    result = PyTuple_Pack(3, text, starts, ends_);
done:
    Py_XDECREF(text);
    Py_XDECREF(pieces);
    Py_XDECREF(starts);
    Py_XDECREF(ends_);
    Py_XDECREF(space);
    Py_XDECREF(empty);
    PyBuffer_Release(&b);
    return result;
}

/* --- the trigram shortlist of fuzzy search (kb/grams.py GramIndex.shortlist) ------------- */
typedef struct {
    int64_t start, size;
} List;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Per-process scratch over alias rows (or gids): cnt[r] = in how many of the query's lists
 * row r is, for the rows of the current shortlist; EXCLUDED for a row seen but outside the
 * length range (postings of rows). Zero between shortlists: each one resets what it touched.
 * (One byte per row: at 10^6 names the rows of one length range fit in the cache, where
 * stamps and slots did not; counts stay under MAX_COUNT because the count filter runs only
 * for queries with fewer distinct trigrams.) */
#define EXCLUDED 0xFF
#define MAX_COUNT 0xFE
static uint8_t *cnt = NULL;
static Py_ssize_t cnt_cap = 0;

static int ensure_counts(Py_ssize_t n) {
    if (n <= cnt_cap) return 0;
    uint8_t *c = PyMem_Calloc((size_t)n, sizeof(uint8_t));
    if (!c) {
        PyErr_NoMemory();
        return -1;
    }
    PyMem_Free(cnt);
    cnt = c;
    cnt_cap = n;
    return 0;
}

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t item, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len % item) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "shortlist: %s has items of the wrong size", what);
        return -1;
    }
    return 0;
}

typedef struct {
    const uint64_t *grams;
    const int64_t *ptr;
    const uint32_t *post;
    const uint16_t *key_len;
    Py_ssize_t n_grams, n_post, n_keys;
    const uint32_t *row_of_gid; /* NULL: the postings hold rows (a KB built before gram ids) */
    const uint16_t *gid_len;    /* key length of each gid, ascending */
    /* The length directory (NULL: none, the cuts are searched in the lists): entries
     * dir_ptr[i]..dir_ptr[i+1] of trigram i give each key length in its list (dir_len,
     * ascending) and where in the list that length starts (dir_off). */
    const int64_t *dir_ptr;
    const uint16_t *dir_len;
    const uint32_t *dir_off;
    Py_ssize_t n_dir;
} Grams;

static Py_ssize_t lower_bound_u32(const uint32_t *a, Py_ssize_t n, uint64_t x) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t m = lo + (hi - lo) / 2;
        if (a[m] < x) lo = m + 1; else hi = m;
    }
    return lo;
}

/* lower_bound_u32 for an ascending list whose values spread roughly evenly over [a[0], a[n-1]]
 * (gids of a posting list): a guess by interpolation, then galloping outwards from it, so a
 * long list costs a few neighbouring reads instead of a bisection's scattered ones. */
static Py_ssize_t lower_bound_interp(const uint32_t *a, Py_ssize_t n, uint64_t x) {
    if (n == 0 || x <= a[0]) return 0;
    if (x > a[n - 1]) return n;
    Py_ssize_t g = (Py_ssize_t)((double)(x - a[0]) / ((double)a[n - 1] - a[0] + 1.0) * (double)n);
    if (g >= n) g = n - 1;
    Py_ssize_t lo, hi, step = 1; /* find a[lo] < x <= a[hi] */
    if (a[g] < x) {
        lo = g;
        while (lo + step < n && a[lo + step] < x) {
            lo += step;
            step <<= 1;
        }
        hi = lo + step < n ? lo + step : n - 1;
    } else {
        hi = g;
        while (hi - step >= 0 && a[hi - step] >= x) {
            hi -= step;
            step <<= 1;
        }
        lo = hi - step >= 0 ? hi - step : 0;
        if (a[lo] >= x) return lo; /* only at 0, excluded above */
    }
    return lo + 1 + lower_bound_u32(a + lo + 1, hi - lo - 1, x);
}

/* gids of the keys with a length in [lo, hi] (GramIndex.gid_range) */
static void gid_range(const Grams *g, long long lo, long long hi, Py_ssize_t *g0, Py_ssize_t *g1) {
    if (lo < 0) lo = 0;
    if (hi > 65535) hi = 65535;
    if (lo > hi) {
        *g0 = *g1 = 0;
        return;
    }
    Py_ssize_t a = 0, b = g->n_keys;
    while (a < b) {
        Py_ssize_t m = a + (b - a) / 2;
        if (g->gid_len[m] < lo) a = m + 1; else b = m;
    }
    *g0 = a;
    b = g->n_keys;
    while (a < b) {
        Py_ssize_t m = a + (b - a) / 2;
        if (g->gid_len[m] <= hi) a = m + 1; else b = m;
    }
    *g1 = a;
}

/* The places [*a0, *a1) of list `gram` (of `size` gids) that hold keys with a length in
 * [lo, hi], from the length directory; 0 where there is none (or it is inconsistent). */
static int directory_cut(const Grams *g, Py_ssize_t gram, int64_t size, long long lo, long long hi, Py_ssize_t *a0,
                         Py_ssize_t *a1) {
    if (!g->dir_ptr) return 0;
    int64_t d0 = g->dir_ptr[gram], d1 = g->dir_ptr[gram + 1];
    if (d0 < 0 || d1 < d0 || d1 > g->n_dir) return 0;
    if (lo < 0) lo = 0;
    if (hi > 65535) hi = 65535;
    int64_t k0 = d0, k1 = d1, b = d1;
    while (k0 < b) { /* first entry with a length >= lo */
        int64_t m = k0 + (b - k0) / 2;
        if (g->dir_len[m] < lo) k0 = m + 1; else b = m;
    }
    int64_t a = k0;
    while (a < k1) { /* first entry with a length > hi */
        int64_t m = a + (k1 - a) / 2;
        if (g->dir_len[m] <= hi) a = m + 1; else k1 = m;
    }
    int64_t o0 = k0 < d1 ? g->dir_off[k0] : size, o1 = k1 < d1 ? g->dir_off[k1] : size;
    if (o0 < 0 || o1 < o0 || o1 > size) return 0;
    *a0 = (Py_ssize_t)o0;
    *a1 = (Py_ssize_t)o1;
    return 1;
}

/* The rows that may lie within max_edits edits of the key with distinct sorted trigrams
 * q[0:nq] and a length in [lo, hi], ascending, into *out (PyMem); -1 on error. The caller has
 * checked need = nq - 3 * max_edits > 0. */
static Py_ssize_t do_shortlist(const Grams *g, const uint64_t *q, Py_ssize_t nq, int max_edits, long long lo,
                               long long hi, uint32_t **out) {
    const uint64_t *grams = g->grams;
    const int64_t *ptr = g->ptr;
    const uint32_t *post = g->post;
    const uint16_t *key_len = g->key_len;
    Py_ssize_t n_grams = g->n_grams, n_post = g->n_post, n_keys = g->n_keys;
    Py_ssize_t need = nq - 3 * (Py_ssize_t)max_edits;
    List *lists = NULL;
    uint32_t *cand = NULL;
    Py_ssize_t result = -1, g0 = 0, g1 = n_keys;
    if (g->row_of_gid) gid_range(g, lo, hi, &g0, &g1);
    lists = PyMem_Malloc(sizeof(List) * (size_t)(nq ? nq : 1));
    if (!lists) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < nq; i++) {
        Py_ssize_t a = 0, b = n_grams;
        while (a < b) {
            Py_ssize_t m = a + (b - a) / 2;
            if (grams[m] < q[i]) a = m + 1; else b = m;
        }
        lists[i].start = 0;
        lists[i].size = 0;
        if (a < n_grams && grams[a] == q[i]) {
            int64_t s0 = ptr[a], s1 = ptr[a + 1];
            if (s0 >= 0 && s1 >= s0 && s1 <= n_post) {
                lists[i].start = s0;
                lists[i].size = s1 - s0;
                if (g->row_of_gid) {  /* cut to the gids of the right lengths */
                    Py_ssize_t a0, a1;
                    if (!directory_cut(g, a, s1 - s0, lo, hi, &a0, &a1)) {
                        a0 = lower_bound_interp(post + s0, s1 - s0, (uint64_t)g0);
                        a1 = a0 + lower_bound_interp(post + s0 + a0, s1 - s0 - a0, (uint64_t)g1);
                    }
                    lists[i].start = s0 + a0;
                    lists[i].size = a1 - a0;
                }
            }
        }
    }
    /* stable insertion sort by size (query keys have few trigrams) */
    for (Py_ssize_t i = 1; i < nq; i++) {
        List x = lists[i];
        Py_ssize_t j = i;
        while (j > 0 && lists[j - 1].size > x.size) {
            lists[j] = lists[j - 1];
            j--;
        }
        lists[j] = x;
    }
    Py_ssize_t take = 3 * (Py_ssize_t)max_edits + 1, total = 0, empty = 0;
    if (take > nq) take = nq;
    while (empty < nq && lists[empty].size == 0) empty++;
    if (nq - empty < need) { /* too few of the query's trigrams occur in keys of these lengths */
        *out = PyMem_Malloc(sizeof(uint32_t));
        if (!*out) PyErr_NoMemory();
        result = *out ? 0 : -1;
        goto fail;
    }
    for (Py_ssize_t i = 0; i < take; i++) total += lists[i].size;
    cand = PyMem_Malloc(sizeof(uint32_t) * (size_t)(total ? total : 1));
    if (!cand || ensure_counts(n_keys) < 0) {
        if (!cand) PyErr_NoMemory();
        goto fail;
    }
    /* Union of the `take` shortest lists, counting in how many of them each row is, with the
     * length filter (rows outside the range stay in `cand`, marked EXCLUDED, until reset). */
    Py_ssize_t nc = 0;
    for (Py_ssize_t i = 0; i < take; i++) {
        const uint32_t *lst = post + lists[i].start;
        for (int64_t e = 0; e < lists[i].size; e++) {
            uint32_t r = lst[e];
            if (r >= n_keys) continue;
            uint8_t c = cnt[r];
            if (c == 0) {
                long long len = g->row_of_gid ? lo : key_len[r];  /* gids are in range already */
                cnt[r] = (len < lo || len > hi) ? EXCLUDED : 1;
                cand[nc++] = r;
            } else if (c < MAX_COUNT) {
                cnt[r] = c + 1;
            }
        }
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t c = 0; c < nc; c++) { /* drop (and reset) the excluded */
        uint32_t r = cand[c];
        if (cnt[r] == EXCLUDED) cnt[r] = 0; else cand[kept++] = r;
    }
    nc = kept;
    if (nc > 64 && need > 1 && nq < MAX_COUNT) {
        /* Count filter: the other non-empty lists, shortest first; a row that cannot reach
         * `need` even if it is in every list left is dropped (its count reset) at once. */
        Py_ssize_t left = 0;
        for (Py_ssize_t i = take; i < nq; i++) left += lists[i].size > 0;
        for (Py_ssize_t i = take; i < nq && nc; i++) {
            if (lists[i].size == 0) continue;
            const uint32_t *lst = post + lists[i].start;
            int64_t size = lists[i].size;
            left--;
            if (size < 4 * (int64_t)nc) {
                /* a list shorter than the bisections would cost: one pass over it, counting
                 * the candidates it holds */
                for (int64_t e = 0; e < size; e++) {
                    uint32_t r = lst[e];
                    if (r < n_keys && cnt[r]) cnt[r]++;
                }
            } else {
                for (Py_ssize_t c = 0; c < nc; c++) {
                    int64_t a = 0, b = size;
                    while (a < b) {
                        int64_t m = a + (b - a) / 2;
                        if (lst[m] < cand[c]) a = m + 1; else b = m;
                    }
                    cnt[cand[c]] += (a < size && lst[a] == cand[c]);
                }
            }
            Py_ssize_t alive = 0;
            for (Py_ssize_t c = 0; c < nc; c++) {
                uint32_t r = cand[c];
                if (cnt[r] + left >= need) cand[alive++] = r; else cnt[r] = 0;
            }
            nc = alive;
        }
        kept = 0;
        for (Py_ssize_t c = 0; c < nc; c++) {
            uint32_t r = cand[c];
            if (cnt[r] >= need) cand[kept++] = r;
            cnt[r] = 0;
        }
        nc = kept;
    } else {
        for (Py_ssize_t c = 0; c < nc; c++) cnt[cand[c]] = 0;
    }
    if (g->row_of_gid)
        for (Py_ssize_t c = 0; c < nc; c++) cand[c] = g->row_of_gid[cand[c]];
    qsort(cand, (size_t)nc, sizeof(uint32_t), cmp_u32);
    *out = cand;
    cand = NULL;
    result = nc;
fail:
    PyMem_Free(lists);
    PyMem_Free(cand);
    return result;
}

/* The optional gid arrays (None for a KB built before gram ids) into v[*got], v[*got + 1]. */
static int gids_from(PyObject *rows_obj, PyObject *len_obj, Py_buffer *v, int *got, Grams *g) {
    g->row_of_gid = NULL;
    g->gid_len = NULL;
    g->dir_ptr = NULL;
    g->dir_len = NULL;
    g->dir_off = NULL;
    g->n_dir = 0;
    if (rows_obj == Py_None || len_obj == Py_None) return 0;
    if (get_buffer(rows_obj, &v[*got], 4, "gram_rows") < 0) return -1;
    (*got)++;
    if (get_buffer(len_obj, &v[*got], 2, "gram_len") < 0) return -1;
    (*got)++;
    if (v[*got - 2].len / 4 != g->n_keys || v[*got - 1].len / 2 != g->n_keys) {
        PyErr_SetString(PyExc_ValueError, "gram ids do not match the trigram index");
        return -1;
    }
    g->row_of_gid = v[*got - 2].buf;
    g->gid_len = v[*got - 1].buf;
    return 0;
}

/* The optional length directory, (dir_ptr, dir_len, dir_off) or None, into v[*got..]. */
static int directory_from(PyObject *dir, Py_buffer *v, int *got, Grams *g) {
    if (dir == Py_None || !g->row_of_gid) return 0;
    if (!PyTuple_Check(dir) || PyTuple_GET_SIZE(dir) != 3) {
        PyErr_SetString(PyExc_TypeError, "the length directory must be None or (dir_ptr, dir_len, dir_off)");
        return -1;
    }
    static const Py_ssize_t items[3] = {8, 2, 4};
    static const char *names[3] = {"dir_ptr", "dir_len", "dir_off"};
    int first = *got;
    for (int k = 0; k < 3; k++, (*got)++)
        if (get_buffer(PyTuple_GET_ITEM(dir, k), &v[*got], items[k], names[k]) < 0) return -1;
    if (v[first].len / 8 != g->n_grams + 1 || v[first + 1].len / 2 != v[first + 2].len / 4) {
        PyErr_SetString(PyExc_ValueError, "the length directory does not match the trigram index");
        return -1;
    }
    g->dir_ptr = v[first].buf;
    g->dir_len = v[first + 1].buf;
    g->dir_off = v[first + 2].buf;
    g->n_dir = v[first + 1].len / 2;
    return 0;
}

static int grams_from(PyObject **objs, Py_buffer *v, int *got, Grams *g) {
    static const Py_ssize_t items[4] = {8, 8, 4, 2};
    static const char *names[4] = {"grams", "ptr", "post", "key_len"};
    for (; *got < 4; (*got)++)
        if (get_buffer(objs[*got], &v[*got], items[*got], names[*got]) < 0) return -1;
    g->grams = v[0].buf;
    g->ptr = v[1].buf;
    g->post = v[2].buf;
    g->key_len = v[3].buf;
    g->n_grams = v[0].len / 8;
    g->n_post = v[2].len / 4;
    g->n_keys = v[3].len / 2;
    if (v[1].len / 8 != g->n_grams + 1) {
        PyErr_SetString(PyExc_ValueError, "inconsistent trigram index");
        return -1;
    }
    return 0;
}

/* shortlist(grams, ptr, post, key_len, q, max_edits, lo, hi) -> bytes of uint32 alias rows, or
 * None when the count filter cannot apply (fewer than 3 * max_edits + 1 query trigrams). */
static PyObject *scan_shortlist(PyObject *self, PyObject *args) {
    PyObject *objs[5], *rows_obj, *len_obj, *dir = Py_None;
    int max_edits;
    long long lo, hi;
    if (!PyArg_ParseTuple(args, "OOOOOiLLOO|O", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &max_edits, &lo, &hi,
                          &rows_obj, &len_obj, &dir))
        return NULL;
    Py_buffer v[10];
    int got = 0;
    Grams g;
    PyObject *result = NULL;
    uint32_t *cand = NULL;
    if (grams_from(objs, v, &got, &g) < 0) goto done;
    if (get_buffer(objs[4], &v[4], 8, "q") < 0) goto done;
    got = 5;
    const uint64_t *qbuf = v[4].buf;
    Py_ssize_t nq = v[4].len / 8;
    if (gids_from(rows_obj, len_obj, v, &got, &g) < 0 || directory_from(dir, v, &got, &g) < 0) goto done;
    if (max_edits < 1 || nq - 3 * (Py_ssize_t)max_edits <= 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    Py_ssize_t nc = do_shortlist(&g, qbuf, nq, max_edits, lo, hi, &cand);
    if (nc < 0) goto done;
    result = PyBytes_FromStringAndSize((const char *)cand, (Py_ssize_t)sizeof(uint32_t) * nc);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    PyMem_Free(cand);
    return result;
}

/* Levenshtein distance of a[0:n] and b[0:m], or k + 1 when it is over k. */
static int levenshtein(const Py_UCS4 *a, Py_ssize_t n, const Py_UCS4 *b, Py_ssize_t m, int k, int *row) {
    if (n - m > k || m - n > k) return k + 1;
    for (Py_ssize_t j = 0; j <= m; j++) row[j] = (int)j;
    for (Py_ssize_t i = 1; i <= n; i++) {
        int prev = row[0], low;
        row[0] = (int)i;
        low = row[0];
        for (Py_ssize_t j = 1; j <= m; j++) {
            int cur = row[j];
            int v = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < v) v = row[j] + 1;
            if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
            row[j] = v;
            prev = cur;
            if (v < low) low = v;
        }
        if (low > k) return k + 1;
    }
    return row[m] <= k ? row[m] : k + 1;
}

/* UTF-8 (as written by Python) to code points; returns the count, or -1 for a bad sequence. */
static Py_ssize_t utf8_decode(const unsigned char *s, Py_ssize_t n, Py_UCS4 *out) {
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n;) {
        unsigned char c = s[i];
        int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (extra < 0) return -1;
        Py_UCS4 cp = extra == 0 ? c : extra == 1 ? (c & 0x1f) : extra == 2 ? (c & 0x0f) : (c & 0x07);
        for (int e = 1; e <= extra; e++) {
            if (i + e >= n || (s[i + e] & 0xc0) != 0x80) return -1;
            cp = (cp << 6) | (s[i + e] & 0x3f);
        }
        out[k++] = cp;
        i += extra + 1;
    }
    return k;
}

typedef struct {
    uint32_t row;
    int d;
    double sim;
} Hit;

static int cmp_hit(const void *a, const void *b) {
    const Hit *x = a, *y = b;
    if (x->d != y->d) return x->d - y->d;
    if (x->sim != y->sim) return x->sim > y->sim ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* fuzzy_search(grams, ptr, post, key_len, key_text, key_text_ptr, key, max_edits, limit) ->
 * [(row, edits, similarity)] best first (kb/grams.py GramIndex.search), or None when the
 * count filter cannot apply. */
static PyObject *scan_fuzzy_search(PyObject *self, PyObject *args) {
    PyObject *objs[6], *key, *rows_obj, *len_obj, *dir = Py_None;
    int max_edits, limit;
    if (!PyArg_ParseTuple(args, "OOOOOOUiiOO|O", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &key,
                          &max_edits, &limit, &rows_obj, &len_obj, &dir))
        return NULL;
    Py_buffer v[11];
    int got = 0;
    Grams g;
    PyObject *result = NULL;
    uint32_t *cand = NULL;
    uint64_t *q = NULL;
    Py_UCS4 *kq = NULL, *other = NULL;
    int *row = NULL;
    Hit *hits = NULL;
    if (grams_from(objs, v, &got, &g) < 0) goto done;
    if (get_buffer(objs[4], &v[4], 1, "key_text") < 0) goto done;
    got = 5;
    if (get_buffer(objs[5], &v[5], 8, "key_text_ptr") < 0) goto done;
    got = 6;
    if (gids_from(rows_obj, len_obj, v, &got, &g) < 0 || directory_from(dir, v, &got, &g) < 0) goto done;
    const unsigned char *text = v[4].buf;
    const int64_t *tptr = v[5].buf;
    Py_ssize_t text_len = v[4].len;
    if (v[5].len / 8 != g.n_keys + 1) {
        PyErr_SetString(PyExc_ValueError, "key texts do not match the trigram index");
        goto done;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(key);
    kq = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(n + 2));
    q = PyMem_Malloc(sizeof(uint64_t) * (size_t)(n + 1));
    if (!kq || !q) {
        PyErr_NoMemory();
        goto done;
    }
    kq[0] = ' ';
    for (Py_ssize_t i = 0; i < n; i++) kq[i + 1] = PyUnicode_READ_CHAR(key, i);
    kq[n + 1] = ' ';
    Py_ssize_t nq = 0;
    for (Py_ssize_t i = 0; i + 2 < n + 2; i++)
        q[nq++] = ((uint64_t)kq[i] << 42) | ((uint64_t)kq[i + 1] << 21) | (uint64_t)kq[i + 2];
    qsort(q, (size_t)nq, sizeof(uint64_t), cmp_u64);
    Py_ssize_t u = 0;
    for (Py_ssize_t i = 0; i < nq; i++)
        if (!u || q[u - 1] != q[i]) q[u++] = q[i];
    nq = u;
    if (max_edits < 1 || nq - 3 * (Py_ssize_t)max_edits <= 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    long long lo = (long long)n - max_edits, hi = (long long)n + max_edits;
    if (hi >= 65535) hi = 1LL << 62;
    Py_ssize_t nc = do_shortlist(&g, q, nq, max_edits, lo, hi, &cand);
    if (nc < 0) goto done;
    hits = PyMem_Malloc(sizeof(Hit) * (size_t)(nc ? nc : 1));
    Py_ssize_t cap = n + max_edits + 8, nh = 0;
    other = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)cap);
    row = PyMem_Malloc(sizeof(int) * (size_t)(cap + 1));
    if (!hits || !other || !row) {
        PyErr_NoMemory();
        goto done;
    }
    const Py_UCS4 *a = kq + 1;
    for (Py_ssize_t c = 0; c < nc; c++) {
        uint32_t r = cand[c];
        int64_t s0 = tptr[r], s1 = tptr[r + 1];
        if (s0 < 0 || s1 < s0 || s1 > text_len) continue;
        if (s1 - s0 > cap) {
            if (s1 - s0 > 4 * (n + max_edits) + 4) continue;  /* too many bytes to be within max_edits */
            cap = (Py_ssize_t)(s1 - s0);
            Py_UCS4 *o = PyMem_Realloc(other, sizeof(Py_UCS4) * (size_t)cap);
            int *rw = PyMem_Realloc(row, sizeof(int) * (size_t)(cap + 1));
            if (o) other = o;
            if (rw) row = rw;
            if (!o || !rw) {
                PyErr_NoMemory();
                goto done;
            }
        }
        Py_ssize_t m = utf8_decode(text + s0, (Py_ssize_t)(s1 - s0), other);
        if (m < 0) continue;
        int d = levenshtein(a, n, other, m, max_edits, row);
        if (d <= max_edits) {
            Py_ssize_t longest = n > m ? n : m;
            hits[nh].row = r;
            hits[nh].d = d;
            hits[nh].sim = 1.0 - (double)d / (double)(longest > 1 ? longest : 1);
            nh++;
        }
    }
    qsort(hits, (size_t)nh, sizeof(Hit), cmp_hit);
    if (limit >= 0 && nh > limit) nh = limit;
    result = PyList_New(nh);
    if (!result) goto done;
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *t = Py_BuildValue("(kid)", (unsigned long)hits[i].row, hits[i].d, hits[i].sim);
        if (!t) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, t);
    }
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    PyMem_Free(cand);
    PyMem_Free(q);
    PyMem_Free(kq);
    PyMem_Free(other);
    PyMem_Free(row);
    PyMem_Free(hits);
    return result;
}

/* --- building the trigram postings (kb/grams.py build_gram_index) ------------------------ */
typedef struct {
    uint64_t *codes; /* UINT64_MAX: empty */
    int32_t *ids;
    Py_ssize_t size, used;
} GramTable;

static int gram_table_init(GramTable *t, Py_ssize_t size) {
    t->codes = PyMem_Malloc(sizeof(uint64_t) * (size_t)size);
    t->ids = PyMem_Malloc(sizeof(int32_t) * (size_t)size);
    if (!t->codes || !t->ids) {
        PyMem_Free(t->codes);
        PyMem_Free(t->ids);
        PyErr_NoMemory();
        return -1;
    }
    memset(t->codes, 0xff, sizeof(uint64_t) * (size_t)size);
    t->size = size;
    t->used = 0;
    return 0;
}

/* The id of `code` (a new one, numbered in first-seen order, when `add`), or -1. */
static int32_t gram_table_id(GramTable *t, uint64_t code, int add) {
    uint64_t mask = (uint64_t)t->size - 1, h = mix64(code) & mask;
    while (t->codes[h] != UINT64_MAX) {
        if (t->codes[h] == code) return t->ids[h];
        h = (h + 1) & mask;
    }
    if (!add) return -1;
    if (t->used >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "more than 2^31 distinct trigrams");
        return -2;
    }
    if ((t->used + 1) * 3 > t->size * 2) { /* grow to keep the load under 2/3 */
        GramTable bigger;
        if (gram_table_init(&bigger, t->size * 2) < 0) return -2;
        for (Py_ssize_t i = 0; i < t->size; i++) {
            if (t->codes[i] == UINT64_MAX) continue;
            uint64_t m = (uint64_t)bigger.size - 1, g = mix64(t->codes[i]) & m;
            while (bigger.codes[g] != UINT64_MAX) g = (g + 1) & m;
            bigger.codes[g] = t->codes[i];
            bigger.ids[g] = t->ids[i];
        }
        bigger.used = t->used;
        PyMem_Free(t->codes);
        PyMem_Free(t->ids);
        *t = bigger;
        return gram_table_id(t, code, add);
    }
    t->codes[h] = code;
    t->ids[h] = (int32_t)t->used;
    return (int32_t)t->used++;
}

/* The trigram codes of the key " " + text + " " (three 21-bit code points each, repeats
 * included) into *codes (grown as needed); their number, or -1 on error. */
static Py_ssize_t key_trigrams(const unsigned char *s, Py_ssize_t n, Vec *cps, Vec *codes) {
    if (vec_reserve(cps, n + 2) < 0) return -1;
    Py_UCS4 *cp = cps->data;
    cp[0] = ' ';
    Py_ssize_t m = utf8_decode(s, n, cp + 1);
    if (m < 0) {
        PyErr_SetString(PyExc_ValueError, "gram_postings: a key is not valid UTF-8");
        return -1;
    }
    cp[m + 1] = ' ';
    if (vec_reserve(codes, m > 0 ? m : 1) < 0) return -1;
    uint64_t *c = codes->data;
    for (Py_ssize_t i = 0; i < m; i++) /* the trigrams of the m + 2 padded code points */
        c[i] = ((uint64_t)cp[i] << 42) | ((uint64_t)cp[i + 1] << 21) | (uint64_t)cp[i + 2];
    return m;
}

/* Trigram ids (first-seen order): ASCII trigrams through a direct table, others hashed. */
typedef struct {
    GramTable table;
    int32_t *ascii; /* 2^21 entries, -1: not seen */
} GramIds;

static int32_t gram_id(GramIds *g, uint64_t code, int add) {
    uint64_t c1 = code >> 42, c2 = (code >> 21) & 0x1fffff, c3 = code & 0x1fffff;
    if ((c1 | c2 | c3) < 128) {
        int32_t *slot = &g->ascii[(c1 << 14) | (c2 << 7) | c3];
        if (*slot < 0 && add) *slot = gram_table_id(&g->table, code, 1);
        return *slot;
    }
    return gram_table_id(&g->table, code, add);
}

typedef struct {
    uint64_t code;
    int32_t id;
} CodeId;

static int cmp_code(const void *a, const void *b) {
    uint64_t x = ((const CodeId *)a)->code, y = ((const CodeId *)b)->code;
    return (x > y) - (x < y);
}

/* The three buffer arguments of a builder, with items of the given sizes, into v[0..2]; *got
 * counts those acquired (to release), -1 on error. */
static int three_buffers(PyObject *args, const Py_ssize_t items[3], const char *names[3], Py_buffer v[3], int *got) {
    PyObject *objs[3];
    if (!PyArg_ParseTuple(args, "OOO", &objs[0], &objs[1], &objs[2])) return -1;
    for (; *got < 3; (*got)++)
        if (get_buffer(objs[*got], &v[*got], items[*got], names[*got]) < 0) return -1;
    return 0;
}

/* gram_postings(key_text, key_text_ptr, row_of_gid) -> (grams, ptr, post) as bytes of uint64,
 * int64 and uint32: the distinct trigrams of all keys ascending, and for each the gram ids of
 * the keys holding it, ascending (two passes over the keys in gram-id order: count, fill). */
static PyObject *scan_gram_postings(PyObject *self, PyObject *args) {
    static const Py_ssize_t items[3] = {1, 8, 4};
    static const char *names[3] = {"key_text", "key_text_ptr", "row_of_gid"};
    Py_buffer v[3];
    int got = 0;
    PyObject *result = NULL, *grams_b = NULL, *ptr_b = NULL, *post_b = NULL;
    GramIds ids = {{NULL, NULL, 0, 0}, NULL};
    int64_t *fill = NULL;
    int32_t *rank = NULL;
    CodeId *order = NULL;
    /* cnt: keys per trigram id; last: 1 + the last gid counted under each id (repeats within
     * one key counted once) */
    Vec cps = VEC(Py_UCS4), codes = VEC(uint64_t), cnt = VEC(int64_t), last = VEC(uint32_t);
    if (three_buffers(args, items, names, v, &got) < 0) goto done;
    const unsigned char *text = v[0].buf;
    const int64_t *tptr = v[1].buf;
    const uint32_t *row_of_gid = v[2].buf;
    Py_ssize_t n_rows = v[1].len / 8 - 1, n = v[2].len / 4, text_len = v[0].len;
    if (n_rows < 0 || n != n_rows || n >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "gram_postings: row_of_gid and key_text_ptr disagree");
        goto done;
    }
    if (gram_table_init(&ids.table, 1 << 16) < 0) goto done;
    ids.ascii = PyMem_Malloc(sizeof(int32_t) << 21);
    if (!ids.ascii) {
        PyErr_NoMemory();
        goto done;
    }
    memset(ids.ascii, 0xff, sizeof(int32_t) << 21);
    int64_t total = 0;
    uint32_t *post = NULL;
    for (int pass = 0; pass < 2; pass++) {
        if (pass) memset(last.data, 0, sizeof(uint32_t) * (size_t)last.len);
        for (Py_ssize_t gid = 0; gid < n; gid++) {
            uint32_t row = row_of_gid[gid], stamp = (uint32_t)gid + 1;
            if ((Py_ssize_t)row >= n_rows || tptr[row] < 0 || tptr[row + 1] < tptr[row] || tptr[row + 1] > text_len) {
                PyErr_SetString(PyExc_ValueError, "gram_postings: a key offset is out of range");
                goto done;
            }
            Py_ssize_t k = key_trigrams(text + tptr[row], (Py_ssize_t)(tptr[row + 1] - tptr[row]), &cps, &codes);
            if (k < 0) goto done;
            const uint64_t *c = codes.data;
            for (Py_ssize_t i = 0; i < k; i++) {
                int32_t id = gram_id(&ids, c[i], !pass);
                if (id < 0) {
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "gram_postings: a trigram vanished");
                    goto done;
                }
                if (id == last.len && (PUSH(cnt, int64_t, 0) < 0 || PUSH(last, uint32_t, 0) < 0)) goto done;
                if (AT(last, uint32_t, id) == stamp) continue;
                AT(last, uint32_t, id) = stamp;
                if (pass) {
                    post[fill[rank[id]]++] = (uint32_t)gid;
                } else {
                    AT(cnt, int64_t, id)++;
                    total++;
                }
            }
        }
        if (pass) break;
        /* grams ascending; ptr from the counts in that order; fill[r]: next free place in list r */
        Py_ssize_t ng = ids.table.used;
        order = PyMem_Malloc(sizeof(CodeId) * (size_t)(ng ? ng : 1));
        rank = PyMem_Malloc(sizeof(int32_t) * (size_t)(ng ? ng : 1));
        fill = PyMem_Malloc(sizeof(int64_t) * (size_t)(ng ? ng : 1));
        if (!order || !rank || !fill) {
            PyErr_NoMemory();
            goto done;
        }
        Py_ssize_t j = 0;
        for (Py_ssize_t i = 0; i < ids.table.size; i++)
            if (ids.table.codes[i] != UINT64_MAX) order[j++] = (CodeId){ids.table.codes[i], ids.table.ids[i]};
        qsort(order, (size_t)ng, sizeof(CodeId), cmp_code);
        void *gdata = NULL, *pdata = NULL, *qdata = NULL;
        grams_b = new_bytes(8 * ng, &gdata);
        ptr_b = new_bytes(8 * (ng + 1), &pdata);
        post_b = new_bytes(4 * (Py_ssize_t)total, &qdata);
        if (!grams_b || !ptr_b || !post_b) goto done;
        uint64_t *G = gdata;
        int64_t *P = pdata;
        post = qdata;
        P[0] = 0;
        for (Py_ssize_t r = 0; r < ng; r++) {
            G[r] = order[r].code;
            rank[order[r].id] = (int32_t)r;
            fill[r] = P[r];
            P[r + 1] = P[r] + AT(cnt, int64_t, order[r].id);
        }
    }
    result = PyTuple_Pack(3, grams_b, ptr_b, post_b);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    Py_XDECREF(grams_b);
    Py_XDECREF(ptr_b);
    Py_XDECREF(post_b);
    PyMem_Free(ids.table.codes);
    PyMem_Free(ids.table.ids);
    PyMem_Free(ids.ascii);
    PyMem_Free(fill);
    PyMem_Free(rank);
    PyMem_Free(order);
    PyMem_Free(cps.data);
    PyMem_Free(codes.data);
    PyMem_Free(cnt.data);
    PyMem_Free(last.data);
    return result;
}

/* --- numbering strings (kb/build.py): open addressing over Python's own str hash ---------- */
typedef struct {
    Py_ssize_t *slots; /* index into `items`, -1: empty */
    Py_ssize_t mask;
} StrTable;

static int str_table_init(StrTable *t, Py_ssize_t n) {
    Py_ssize_t size = table_size(n);
    t->slots = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)size);
    if (!t->slots) {
        PyErr_NoMemory();
        return -1;
    }
    memset(t->slots, 0xff, sizeof(Py_ssize_t) * (size_t)size);
    t->mask = size - 1;
    return 0;
}

/* The place of `s` among items[0..] (a list of str), or the empty slot where it would go:
 * *found says which. -1 on error. */
static Py_ssize_t str_table_find(const StrTable *t, PyObject *items, PyObject *s, int *found) {
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "expected a list of str");
        return -1;
    }
    Py_hash_t h = PyUnicode_Type.tp_hash(s); /* str's own hash, never a subclass's Python code */
    if (h == -1) return -1;
    Py_ssize_t i = (Py_ssize_t)(mix64((uint64_t)h) & (uint64_t)t->mask);
    for (;;) {
        Py_ssize_t k = t->slots[i];
        if (k < 0) {
            *found = 0;
            return i;
        }
        PyObject *o = PyList_GET_ITEM(items, k);
        if (o == s || (PyUnicode_GET_LENGTH(o) == PyUnicode_GET_LENGTH(s) && PyUnicode_Compare(o, s) == 0)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & t->mask;
    }
}

/* number_strings(strings) -> (int64 bytes, distinct): each string's number in first-seen order
 * and the distinct strings in that order (what `dict.setdefault(s, len(d))` over all would give). */
static PyObject *scan_number_strings(PyObject *self, PyObject *args) {
    PyObject *strings;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &strings)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(strings);
    StrTable t = {NULL, 0};
    PyObject *distinct = PyList_New(0), *ids_b = NULL, *result = NULL;
    void *data;
    if (!distinct || str_table_init(&t, n) < 0 || !(ids_b = new_bytes(8 * n, &data))) goto done;
    int64_t *ids = data;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *s = PyList_GET_ITEM(strings, j);
        int found;
        Py_ssize_t i = str_table_find(&t, distinct, s, &found);
        if (i < 0) goto done;
        if (!found) {
            t.slots[i] = PyList_GET_SIZE(distinct);
            if (PyList_Append(distinct, s) < 0) goto done;
        }
        ids[j] = t.slots[i];
    }
    result = PyTuple_Pack(2, ids_b, distinct);
done:
    PyMem_Free(t.slots);
    Py_XDECREF(distinct);
    Py_XDECREF(ids_b);
    return result;
}

/* positions(needles, haystack) -> int64 bytes: the index of each needle in `haystack` (a list
 * of distinct str), -1 where absent. */
static PyObject *scan_positions(PyObject *self, PyObject *args) {
    PyObject *needles, *haystack;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &needles, &PyList_Type, &haystack)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(needles), m = PyList_GET_SIZE(haystack);
    StrTable t = {NULL, 0};
    PyObject *out = NULL, *result = NULL;
    void *data;
    if (str_table_init(&t, m) < 0 || !(out = new_bytes(8 * n, &data))) goto done;
    for (Py_ssize_t k = 0; k < m; k++) {
        int found;
        Py_ssize_t i = str_table_find(&t, haystack, PyList_GET_ITEM(haystack, k), &found);
        if (i < 0) goto done;
        if (!found) t.slots[i] = k;
    }
    int64_t *pos = data;
    for (Py_ssize_t j = 0; j < n; j++) {
        int found;
        Py_ssize_t i = str_table_find(&t, haystack, PyList_GET_ITEM(needles, j), &found);
        if (i < 0) goto done;
        pos[j] = found ? t.slots[i] : -1;
    }
    result = out;
    out = NULL;
done:
    PyMem_Free(t.slots);
    Py_XDECREF(out);
    return result;
}

/* gram_directory(ptr, post, gid_len) -> (dir_ptr, dir_len, dir_off) as bytes of int64, uint16
 * and uint32: for each trigram list (gids ascending, so key lengths ascending), every key
 * length in it and the place where it starts. */
static PyObject *scan_gram_directory(PyObject *self, PyObject *args) {
    static const Py_ssize_t items[3] = {8, 4, 2};
    static const char *names[3] = {"ptr", "post", "gid_len"};
    Py_buffer v[3];
    int got = 0;
    PyObject *result = NULL, *ptr_b = NULL, *len_b = NULL, *off_b = NULL;
    Vec lens = VEC(uint16_t), offs = VEC(uint32_t);
    if (three_buffers(args, items, names, v, &got) < 0) goto done;
    const int64_t *ptr = v[0].buf;
    const uint32_t *post = v[1].buf;
    const uint16_t *gid_len = v[2].buf;
    Py_ssize_t n_grams = v[0].len / 8 - 1, n_post = v[1].len / 4, n_gids = v[2].len / 2;
    if (n_grams < 0) {
        PyErr_SetString(PyExc_ValueError, "gram_directory: empty ptr");
        goto done;
    }
    void *pdata;
    if (!(ptr_b = new_bytes(8 * (n_grams + 1), &pdata))) goto done;
    int64_t *dptr = pdata;
    dptr[0] = 0;
    for (Py_ssize_t i = 0; i < n_grams; i++) {
        int64_t s0 = ptr[i], s1 = ptr[i + 1];
        if (s0 < 0 || s1 < s0 || s1 > n_post) {
            PyErr_SetString(PyExc_ValueError, "gram_directory: inconsistent postings");
            goto done;
        }
        int last = -1;
        for (int64_t e = s0; e < s1; e++) {
            uint32_t gid = post[e];
            if ((Py_ssize_t)gid >= n_gids) {
                PyErr_SetString(PyExc_ValueError, "gram_directory: a gid out of range");
                goto done;
            }
            int len = gid_len[gid];
            if (len != last) {
                if (PUSH(lens, uint16_t, (uint16_t)len) < 0 || PUSH(offs, uint32_t, (uint32_t)(e - s0)) < 0) goto done;
                last = len;
            }
        }
        dptr[i + 1] = lens.len;
    }
    len_b = PyBytes_FromStringAndSize(lens.data ? lens.data : "", 2 * lens.len);
    off_b = PyBytes_FromStringAndSize(offs.data ? offs.data : "", 4 * offs.len);
    if (len_b && off_b) result = PyTuple_Pack(3, ptr_b, len_b, off_b);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    Py_XDECREF(ptr_b);
    Py_XDECREF(len_b);
    Py_XDECREF(off_b);
    PyMem_Free(lens.data);
    PyMem_Free(offs.data);
    return result;
}

static PyMethodDef module_methods[] = {
    {"gram_directory", scan_gram_directory, METH_VARARGS,
     "gram_directory(ptr, post, gid_len) -> (dir_ptr, dir_len, dir_off) as bytes"},
    {"number_strings", scan_number_strings, METH_VARARGS,
     "number_strings(strings) -> (int64 numbers as bytes, distinct strings in first-seen order)"},
    {"positions", scan_positions, METH_VARARGS, "positions(needles, haystack) -> int64 indices as bytes, -1: absent"},
    {"gram_postings", scan_gram_postings, METH_VARARGS,
     "gram_postings(key_text, key_text_ptr, row_of_gid) -> (grams, ptr, post) as bytes"},
    {"normalize_keys", scan_normalize_keys, METH_VARARGS,
     "normalize_keys(texts, char_fn, word_fn, acronym_max_len, fold_plurals) -> [normalised key]"},
    {"fuzzy_search", scan_fuzzy_search, METH_VARARGS,
     "fuzzy_search(grams, ptr, post, key_len, key_text, key_text_ptr, key, max_edits, limit, gram_rows, gram_len"
     "[, directory]) -> [(row, edits, sim)]"},
    {"shortlist", scan_shortlist, METH_VARARGS,
     "shortlist(grams, ptr, post, key_len, q, max_edits, lo, hi, gram_rows, gram_len[, directory]) -> uint32 rows "
     "as bytes, or None"},
    {"check_doc_layout", scan_check_doc_layout, METH_VARARGS,
     "check_doc_layout(doc, [(orth, idx, whitespace, ent_iob, ent_type, ent_kb_id)]) -> whether Docs can be read and "
     "written in place"},
    {"doc_layout", scan_doc_layout, METH_VARARGS,
     "doc_layout(orth_spacy, cache, strings) -> (text, token starts, token ends)"},
    {"build", scan_build, METH_VARARGS,
     "build(words, keys) -> (word_blob, word_ptr, word_table, edge_keys, edge_vals, node_row) as bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", "Compiled exact matching of KB alias keys.", -1,
                                    module_methods};

PyMODINIT_FUNC PyInit__scan(void) {
    if (PyType_Ready(&WordIndexType) < 0 || PyType_Ready(&TokenScanType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "WordIndex", (PyObject *)&WordIndexType) < 0 ||
        PyModule_AddObjectRef(m, "TokenScan", (PyObject *)&TokenScanType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
