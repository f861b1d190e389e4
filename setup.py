"""The compiled part of spacy-entlink (everything else is in pyproject.toml): the exact
matcher's word-trie scan, plain C against the CPython API, built by `pip install` with gcc."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("spacy_entlink.matching._scan", ["spacy_entlink/matching/_scan.c"],
                             extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                                 "-Wno-missing-field-initializers"])])
